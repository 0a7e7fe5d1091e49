"""Session and nonce handling: look-up, single-use nonce claim, upload metadata checks.

A nonce is stored only as its sha256. It is claimed with one conditional UPDATE
(``used_at IS NULL``), so two concurrent uploads cannot both win, on SQLite or PostgreSQL.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from lifecert.domain.errors import ErrorCode, LifecertError, NotFound
from lifecert.storage.models_verification import VerificationSession

TAIL_MS = 10_000  # timestamps beyond the last window + this are refused


def sha256_hex(s: str) -> str:
    return hashlib.sha256(s.encode()).hexdigest()


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(d: datetime) -> datetime:
    return d if d.tzinfo else d.replace(tzinfo=UTC)


def check_session(db: Session, session_id: str, nonce: str) -> VerificationSession:
    """The session when ``nonce`` is its unused, unexpired nonce; else a typed error.

    The nonce is compared first: without it a caller learns nothing about the session
    (not whether it was used or has expired)."""
    vs = db.get(VerificationSession, session_id)
    if vs is None:
        raise NotFound("no such verification session")
    if not hmac.compare_digest(sha256_hex(nonce), vs.nonce_hash):
        raise LifecertError("the nonce does not belong to this session", code=ErrorCode.BAD_NONCE)
    if utcnow() > as_utc(vs.expires_at):
        raise LifecertError("the session has expired; please start again", code=ErrorCode.SESSION_EXPIRED)
    if vs.used_at is not None:
        raise LifecertError("this session's nonce was already used", code=ErrorCode.NONCE_USED)
    return vs


def claim_nonce(db: Session, session_id: str, frame_count: int) -> None:
    """Mark the session's nonce used (atomically); a concurrent second claim gets NONCE_USED."""
    claimed = db.execute(  # type: ignore[attr-defined]
        update(VerificationSession)
        .where(VerificationSession.id == session_id, VerificationSession.used_at.is_(None))
        .values(used_at=utcnow(), frame_count=frame_count)
    ).rowcount
    if claimed != 1:
        raise LifecertError("this session's nonce was already used", code=ErrorCode.NONCE_USED)


def parse_timestamps(raw: str | list[int], n: int, end_ms: int) -> list[int]:
    """``n`` non-decreasing integer ms in 0..``end_ms`` from a JSON array (or a list)."""
    try:
        ts = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError as exc:
        raise LifecertError("timestamps must be a JSON array of integers", code=ErrorCode.BAD_TIMESTAMPS) from exc
    if not isinstance(ts, list) or not all(isinstance(t, int) and not isinstance(t, bool) for t in ts):
        raise LifecertError("timestamps must be a JSON array of integers", code=ErrorCode.BAD_TIMESTAMPS)
    if len(ts) != n:
        raise LifecertError(
            f"{len(ts)} timestamps for {n} frames", code=ErrorCode.BAD_TIMESTAMPS, frames=n, timestamps=len(ts)
        )
    for i, t in enumerate(ts):
        if t < 0 or t > end_ms:
            raise LifecertError(f"timestamp {t} ms is outside 0..{end_ms}", code=ErrorCode.BAD_TIMESTAMPS, index=i)
        if i and t < ts[i - 1]:
            raise LifecertError(
                "timestamps must be non-decreasing (frames in capture order)", code=ErrorCode.BAD_TIMESTAMPS, index=i
            )
    return ts
