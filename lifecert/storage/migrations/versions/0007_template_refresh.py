"""face_template: refresh templates from verified selfies (provenance, expiry, revocation)

Revision ID: 0007_template_refresh
Revises: 0006_cluster_tables
Create Date: 2026-11-30 11:30:00

Existing templates get no session, no expiry, not revoked and an empty provenance.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_template_refresh"
down_revision = "0006_cluster_tables"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("face_template", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source_session_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("provenance", sa.JSON(), server_default=sa.text("'{}'"), nullable=False))
        batch_op.create_index("ix_face_template_source_session_id", ["source_session_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("face_template", schema=None) as batch_op:
        batch_op.drop_index("ix_face_template_source_session_id")
        batch_op.drop_column("provenance")
        batch_op.drop_column("revoked_at")
        batch_op.drop_column("expires_at")
        batch_op.drop_column("source_session_id")
