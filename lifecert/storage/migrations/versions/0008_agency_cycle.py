"""certification_policy and payment_suspension: the agency's yearly cycle

Revision ID: 0008_agency_cycle
Revises: 0007_template_refresh
Create Date: 2026-11-30 14:10:00

New tables only: no policy row means the default (fixed cycle of confirmation_cycle_months).
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_agency_cycle"
down_revision = "0007_template_refresh"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "certification_policy",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("region_prefix", sa.String(length=6), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("cycle_months", sa.Integer(), nullable=False),
        sa.Column("open_days", sa.Integer(), nullable=False),
        sa.Column("grace_days", sa.Integer(), nullable=False),
        sa.Column("early_credit_days", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("region_prefix", "effective_from", name="uq_policy_region_from"),
    )
    op.create_table(
        "payment_suspension",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pensioner_id", sa.Integer(), nullable=False),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("window_closes", sa.Date(), nullable=True),
        sa.Column("grace_until", sa.Date(), nullable=True),
        sa.Column("review_case_id", sa.Integer(), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("proposed_by", sa.Integer(), nullable=True),
        sa.Column("proposed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("proposal_note", sa.Text(), nullable=True),
        sa.Column("approved_by", sa.Integer(), nullable=True),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("effective_from", sa.Date(), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("close_note", sa.Text(), nullable=True),
        sa.Column("resumed_on", sa.Date(), nullable=True),
        sa.Column("resumed_by_confirmation_id", sa.Integer(), nullable=True),
        sa.Column("months_owed", sa.Integer(), nullable=True),
        sa.Column("exported_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["pensioner_id"], ["pensioner.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["review_case_id"], ["review_case.id"]),
        sa.ForeignKeyConstraint(["proposed_by"], ["staff_user.id"]),
        sa.ForeignKeyConstraint(["approved_by"], ["staff_user.id"]),
        sa.ForeignKeyConstraint(["resumed_by_confirmation_id"], ["survival_confirmation.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_payment_suspension_pensioner_id", "payment_suspension", ["pensioner_id"], unique=False)
    op.create_index("ix_suspension_status_region", "payment_suspension", ["status", "region_code"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_suspension_status_region", table_name="payment_suspension")
    op.drop_index("ix_payment_suspension_pensioner_id", table_name="payment_suspension")
    op.drop_table("payment_suspension")
    op.drop_table("certification_policy")
