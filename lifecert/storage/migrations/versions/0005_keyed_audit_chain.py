"""audit_event.chain_v: rows are chained with HMAC-SHA256 under LIFECERT_AUDIT_KEY from now on

Revision ID: 0005_keyed_audit_chain
Revises: 0004_paced_capture
Create Date: 2026-11-30 11:30:00

Existing rows keep their plain sha256 hashes (chain_v = 1): the migration cannot know the audit key
and must not re-hash rows it cannot vouch for. The first keyed row (chain_v = 2) links to the last
plain row, so the old tail is anchored by the keyed chain; verify refuses a plain row after a keyed
one (no downgrade). Take a signed checkpoint right after upgrading (lifecert audit checkpoint).
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_keyed_audit_chain"
down_revision = "0004_paced_capture"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.add_column(sa.Column("chain_v", sa.Integer(), server_default="1", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.drop_column("chain_v")
