"""department exchange credentials and replay window; assisted certifications; closing home visits

Revision ID: 0009_exchange_assisted
Revises: 0008_agency_cycle
Create Date: 2026-11-30 14:10:00

Existing home-visit tasks stay unassigned, with no result.
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_exchange_assisted"
down_revision = "0008_agency_cycle"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "department_credential",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("department", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("key_id", sa.String(length=48), nullable=False),
        sa.Column("match", sa.String(length=512), nullable=False),
        sa.Column("secret_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key_id", name="uq_department_credential_key_id"),
    )
    with op.batch_alter_table("department_credential", schema=None) as batch_op:
        batch_op.create_index("ix_department_credential_match", ["kind", "match"], unique=False)
        batch_op.create_index("ix_department_credential_department", ["department"], unique=False)
    op.create_table(
        "exchange_replay",
        sa.Column("signature", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=48), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("signature"),
    )
    with op.batch_alter_table("exchange_replay", schema=None) as batch_op:
        batch_op.create_index("ix_exchange_replay_seen_at", ["seen_at"], unique=False)
    op.create_table(
        "assisted_certification",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.String(length=64), nullable=False),
        sa.Column("worker_id", sa.Integer(), nullable=False),
        sa.Column("pensioner_id", sa.Integer(), nullable=False),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.Column("device", sa.String(length=128), nullable=False),
        sa.Column("location", sa.String(length=128), nullable=False),
        sa.Column("client_addr", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["pensioner_id"], ["pensioner.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["session_id"], ["verification_session.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["worker_id"], ["staff_user.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("session_id"),
    )
    with op.batch_alter_table("assisted_certification", schema=None) as batch_op:
        batch_op.create_index("ix_assisted_worker_created", ["worker_id", "created_at"], unique=False)
        batch_op.create_index("ix_assisted_certification_pensioner_id", ["pensioner_id"], unique=False)
    with op.batch_alter_table("home_visit_task", schema=None) as batch_op:
        batch_op.add_column(sa.Column("assignee_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("closed_by", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("result", sa.String(length=32), server_default="", nullable=False))
        batch_op.add_column(sa.Column("photo_sha256", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("match_score", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("confirmation_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("attempts", sa.Integer(), server_default="0", nullable=False))
        batch_op.create_index("ix_home_visit_task_assignee_id", ["assignee_id"], unique=False)
        batch_op.create_foreign_key("fk_home_visit_task_assignee", "staff_user", ["assignee_id"], ["id"])
        batch_op.create_foreign_key("fk_home_visit_task_closed_by", "staff_user", ["closed_by"], ["id"])
        batch_op.create_foreign_key("fk_home_visit_task_confirmation", "survival_confirmation",
                                    ["confirmation_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("home_visit_task", schema=None) as batch_op:
        batch_op.drop_constraint("fk_home_visit_task_confirmation", type_="foreignkey")
        batch_op.drop_constraint("fk_home_visit_task_closed_by", type_="foreignkey")
        batch_op.drop_constraint("fk_home_visit_task_assignee", type_="foreignkey")
        batch_op.drop_index("ix_home_visit_task_assignee_id")
        for col in ("attempts", "confirmation_id", "match_score", "photo_sha256", "result", "closed_by",
                    "assignee_id"):
            batch_op.drop_column(col)
    op.drop_table("assisted_certification")
    op.drop_table("exchange_replay")
    op.drop_table("department_credential")
