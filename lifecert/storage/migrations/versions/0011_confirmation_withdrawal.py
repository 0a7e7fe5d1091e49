"""survival_confirmation.withdrawn_at / withdrawn_by / withdrawn_reason: a confirmation a caseworker
withdrew (a spot check found fraud) stays on record but no longer counts

Revision ID: 0011_confirmation_withdrawal
Revises: 0010_reminders
Create Date: 2026-12-01 14:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_confirmation_withdrawal"
down_revision = "0010_reminders"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # batch mode: SQLite cannot add a foreign key to an existing table in place
    with op.batch_alter_table("survival_confirmation") as batch:
        batch.add_column(sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("withdrawn_by", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("withdrawn_reason", sa.String(length=500), nullable=True))
        batch.create_foreign_key("fk_survival_confirmation_withdrawn_by", "staff_user", ["withdrawn_by"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("survival_confirmation") as batch:
        batch.drop_constraint("fk_survival_confirmation_withdrawn_by", type_="foreignkey")
        batch.drop_column("withdrawn_reason")
        batch.drop_column("withdrawn_by")
        batch.drop_column("withdrawn_at")
