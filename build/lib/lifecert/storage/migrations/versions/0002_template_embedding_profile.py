"""face_template.embedding_profile: which embedding views made each template

Revision ID: 0002_template_profile
Revises: 0001_baseline
Create Date: 2026-11-25 16:00:00

Templates written before this revision were embedded from one plain crop: "single".
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_template_profile"
down_revision = "0001_baseline"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("face_template", schema=None) as batch_op:
        batch_op.add_column(sa.Column("embedding_profile", sa.String(length=16), server_default="single",
                                      nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("face_template", schema=None) as batch_op:
        batch_op.drop_column("embedding_profile")
