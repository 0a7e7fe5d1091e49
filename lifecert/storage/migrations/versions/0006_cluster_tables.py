"""rate_limit_bucket and blob: state shared by several API nodes through the database

Revision ID: 0006_cluster_tables
Revises: 0005_keyed_audit_chain
Create Date: 2026-11-30 11:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_cluster_tables"
down_revision = "0005_keyed_audit_chain"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_limit_bucket",
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("allowed", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_index(op.f("ix_rate_limit_bucket_updated_at"), "rate_limit_bucket", ["updated_at"], unique=False)
    op.create_table(
        "blob",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("blob")
    op.drop_index(op.f("ix_rate_limit_bucket_updated_at"), table_name="rate_limit_bucket")
    op.drop_table("rate_limit_bucket")
