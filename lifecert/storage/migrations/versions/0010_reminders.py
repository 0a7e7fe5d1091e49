"""reminder: the durable record of certification reminders sent (idempotent per window and stage)

Revision ID: 0010_reminders
Revises: 0009_exchange_assisted
Create Date: 2026-11-30 14:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_reminders"
down_revision = "0009_exchange_assisted"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reminder",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pensioner_id", sa.Integer(), nullable=False),
        sa.Column("campaign", sa.String(length=7), nullable=False),
        sa.Column("window_closes", sa.Date(), nullable=False),
        sa.Column("stage", sa.String(length=8), nullable=False),
        sa.Column("via", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=255), nullable=True),
        sa.Column("to_masked", sa.String(length=32), nullable=False),
        sa.Column("text_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["pensioner_id"], ["pensioner.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("pensioner_id", "window_closes", "stage", name="uq_reminder_window_stage"),
    )
    op.create_index("ix_reminder_pensioner_id", "reminder", ["pensioner_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_reminder_pensioner_id", table_name="reminder")
    op.drop_table("reminder")
