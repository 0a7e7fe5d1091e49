"""Session helpers: nonce hashing, UTC times, upload metadata checks.

A nonce is stored only as its sha256; the paced capture swaps it for a new one per chunk with
one conditional UPDATE (:meth:`.paced.PacedCapture.submit_chunk`), so two concurrent chunks
cannot both win, on SQLite or PostgreSQL.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

from lifecert.domain.errors import ErrorCode, LifecertError


def sha256_hex(s: str) -> str:
    return hashlib.sha256(s.encode()).hexdigest()


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(d: datetime) -> datetime:
    return d if d.tzinfo else d.replace(tzinfo=UTC)


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
