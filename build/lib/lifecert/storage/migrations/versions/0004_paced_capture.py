"""verification: server-paced capture (step state on the session, chunk table)

Revision ID: 0004_paced_capture
Revises: 0003_typed_case_payloads
Create Date: 2026-11-30 11:00:00

Sessions written before this revision used the one-shot upload: protocol "oneshot".
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_paced_capture"
down_revision = "0003_typed_case_payloads"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("verification_session", schema=None) as batch_op:
        batch_op.add_column(sa.Column("protocol", sa.String(length=16), server_default="oneshot", nullable=False))
        batch_op.add_column(sa.Column("current_step", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("steps", sa.JSON(), server_default=sa.text("'[]'"), nullable=False))
        batch_op.add_column(sa.Column("chunk_count", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("clock_offset_ms", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("baseline", sa.JSON(), server_default=sa.text("'{}'"), nullable=False))
    op.create_table(
        "verification_chunk",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("session_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("received_ms", sa.BigInteger(), nullable=False),
        sa.Column("frames_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("observations", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["session_id"], ["verification_session.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_vchunk_session_step", "verification_chunk", ["session_id", "step"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_vchunk_session_step", table_name="verification_chunk")
    op.drop_table("verification_chunk")
    with op.batch_alter_table("verification_session", schema=None) as batch_op:
        for col in ("baseline", "clock_offset_ms", "chunk_count", "steps", "current_step", "protocol"):
            batch_op.drop_column(col)
