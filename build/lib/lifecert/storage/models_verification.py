"""Verification sessions of the phone-browser proof of life.

One row per session: who, which challenges, the nonce (only its sha256 is kept),
expiry, when the nonce was used, the decision and its reason, the scores and the
per-challenge results. The uploaded frames are kept encrypted for the review period:
all frames in one AES-GCM sealed blob under ``data_dir/sessions`` (``frames_blob``),
the best frames also in the photo store (``best_frame_shas``) so the review console
can show them. ``lifecert purge`` clears frames and scores after the review period.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from lifecert.storage.db import Base
from lifecert.storage.models import TZDateTime, utcnow


class Decision:
    CONFIRMED = "CONFIRMED"
    RETRY = "RETRY"
    REVIEW = "REVIEW"


class VerificationSession(Base):
    __tablename__ = "verification_session"
    __table_args__ = (Index("ix_vsession_pensioner_created", "pensioner_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # random, opaque (token_urlsafe)
    pensioner_id: Mapped[int] = mapped_column(ForeignKey("pensioner.id", ondelete="CASCADE"))
    nonce_hash: Mapped[str] = mapped_column(String(64))  # sha256 hex of the nonce
    challenges: Mapped[list[str]] = mapped_column(JSON, default=list)
    lead_in_ms: Mapped[int] = mapped_column(Integer)
    challenge_window_ms: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow, index=True)
    expires_at: Mapped[datetime] = mapped_column(TZDateTime())
    used_at: Mapped[datetime | None] = mapped_column(TZDateTime(), default=None)
    decided_at: Mapped[datetime | None] = mapped_column(TZDateTime(), default=None)
    decision: Mapped[str | None] = mapped_column(String(16), default=None, index=True)
    reason_code: Mapped[str | None] = mapped_column(String(48), default=None)
    detail_reason: Mapped[str | None] = mapped_column(String(48), default=None)  # underlying reason of escalations
    scores: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    challenge_results: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    model_key: Mapped[str] = mapped_column(String(128), default="")
    client_addr: Mapped[str] = mapped_column(String(64), default="")
    retry_count: Mapped[int] = mapped_column(Integer, default=0)  # consecutive RETRYs before this session
    frame_count: Mapped[int] = mapped_column(Integer, default=0)
    frames_blob: Mapped[str | None] = mapped_column(String(255), default=None)  # file name under data_dir/sessions
    best_frame_shas: Mapped[list[str]] = mapped_column(JSON, default=list)
    confirmation_id: Mapped[int | None] = mapped_column(ForeignKey("survival_confirmation.id"), default=None)
    review_case_id: Mapped[int | None] = mapped_column(ForeignKey("review_case.id"), default=None)
    purged_at: Mapped[datetime | None] = mapped_column(TZDateTime(), default=None)
    # Server-paced capture (protocol "paced"): the state machine lives here so that any API node
    # can take the next chunk. ``steps``: one dict per step (0 = settle, then the challenges) with
    # its state, server reveal time, jitter, window and result; times are server ms since created_at.
    protocol: Mapped[str] = mapped_column(String(16), default="oneshot", server_default="oneshot")
    current_step: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    chunk_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    clock_offset_ms: Mapped[int | None] = mapped_column(BigInteger, default=None)  # server ms - client ms
    baseline: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # the settle step's per-user baseline


class VerificationChunk(Base):
    """One uploaded chunk of a paced session: its frames sealed (AES-GCM, aad names session and
    sequence number) and what the server saw in each frame (landmarks, box, stats, PAD score)."""

    __tablename__ = "verification_chunk"
    __table_args__ = (Index("ix_vchunk_session_step", "session_id", "step"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("verification_session.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)  # 0, 1, ... within the session
    step: Mapped[int] = mapped_column(Integer)
    received_ms: Mapped[int] = mapped_column(BigInteger)  # server ms since the session was created
    frames_sealed: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)  # None once purged
    observations: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
