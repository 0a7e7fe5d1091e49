"""review_case: at most one spot-check case not yet closed per pensioner, enforced by the database (a
partial unique index; two sessions decided at the same instant could each open one before)

Revision ID: 0012_one_open_spot_check
Revises: 0011_confirmation_withdrawal
Create Date: 2026-12-01 17:00:00

Duplicates already present are refused, not merged: merging would rewrite caseworker cases (the session
lists, which case each session points at) with no entry in the keyed audit chain, which a migration cannot
write (it has no audit key). The error names the cases; a caseworker decides all but one of each
pensioner's (the previous release still runs), then the upgrade is run again. Nothing is changed.
"""

import sqlalchemy as sa
from alembic import op

from lifecert.domain.errors import Conflict

revision = "0012_one_open_spot_check"
down_revision = "0011_confirmation_withdrawal"
branch_labels = None
depends_on = None

INDEX = "uq_review_case_open_spot_check"
OPEN_SPOT_CHECK = "kind = 'spot_check' AND status <> 'closed'"


def upgrade() -> None:
    rows = op.get_bind().execute(sa.text(
        f"SELECT pensioner_id, id FROM review_case WHERE {OPEN_SPOT_CHECK} AND pensioner_id IN "
        f"(SELECT pensioner_id FROM review_case WHERE {OPEN_SPOT_CHECK} GROUP BY pensioner_id "
        f"HAVING count(*) > 1) ORDER BY pensioner_id, id")).all()
    if rows:
        by: dict[int, list[int]] = {}
        for pid, cid in rows:
            by.setdefault(pid, []).append(cid)
        listed = "; ".join(f"pensioner {pid}: cases {', '.join(map(str, ids))}" for pid, ids in by.items())
        raise Conflict(
            f"migration 0012 refused: {len(by)} pensioner(s) have more than one open spot-check case ({listed}). "
            "With the previous release, decide all but one of each pensioner's spot-check cases in the console, "
            "then upgrade again. Nothing was changed.")
    op.create_index(INDEX, "review_case", ["pensioner_id"], unique=True,
                    sqlite_where=sa.text(OPEN_SPOT_CHECK), postgresql_where=sa.text(OPEN_SPOT_CHECK))


def downgrade() -> None:
    op.drop_index(INDEX, table_name="review_case")
