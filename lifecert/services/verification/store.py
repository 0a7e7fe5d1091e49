"""Encrypted storage of a session's frames for the review period, and the retention purge.

A paced session's frames are kept per chunk in ``verification_chunk.frames_sealed`` (AES-GCM,
aad names the session and the chunk's sequence number); the best frames also go to the photo
store so the case page can show them. Sessions from before paced capture (the retired one-shot
upload) kept all frames in one sealed blob ``sessions/<id>.bin`` (``frames_blob``): the purge and
the key rotation still handle those.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from lifecert.domain.errors import ErrorCode, LifecertError
from lifecert.services import audit
from lifecert.services.context import AppContext
from lifecert.storage.models import ReviewCase
from lifecert.storage.models_verification import VerificationChunk, VerificationSession


def sessions_dir(ctx: AppContext) -> Path:
    """Where the LOCAL blob store keeps session blobs (other stores: blob ``sessions/<id>.bin``)."""
    return ctx.settings.data_dir / "sessions"


def session_blob_aad(session_id: str) -> bytes:
    """aad of a pre-paced session's one sealed blob (``frames_blob``; read only by the key rotation now)."""
    return f"vsession|{session_id}".encode()


def chunk_aad(session_id: str, seq: int) -> bytes:
    return f"vchunk|{session_id}|{seq}".encode()


def seal_chunk(ctx: AppContext, session_id: str, seq: int, ts: list[int], frames: list[bytes]) -> bytes:
    """One chunk's frames (JPEG bytes, capture order) with their client timestamps (ms), sealed."""
    header = json.dumps({"timestamps": ts, "sizes": [len(b) for b in frames]}).encode()
    return ctx.cipher.seal(len(header).to_bytes(4, "big") + header + b"".join(frames), chunk_aad(session_id, seq))


def open_chunk(ctx: AppContext, session_id: str, seq: int, sealed: bytes) -> tuple[list[int], list[bytes]]:
    """(client timestamps, JPEG bytes per frame) of one sealed chunk."""
    blob = ctx.cipher.open(sealed, chunk_aad(session_id, seq))
    n = int.from_bytes(blob[:4], "big")
    header = json.loads(blob[4 : 4 + n])
    out, pos = [], 4 + n
    for size in header["sizes"]:
        out.append(blob[pos : pos + size])
        pos += size
    return list(header["timestamps"]), out


def open_session_frames(ctx: AppContext, session_id: str) -> tuple[list[int], list[bytes]]:
    """(client timestamps, JPEG bytes) of every frame a session kept, in capture order; FILE_MISSING
    when none are kept (purged, or nothing was uploaded)."""
    ts: list[int] = []
    frames: list[bytes] = []
    with ctx.db.session() as db:
        rows = db.execute(
            select(VerificationChunk.seq, VerificationChunk.frames_sealed)
            .where(VerificationChunk.session_id == session_id, VerificationChunk.frames_sealed.is_not(None))
            .order_by(VerificationChunk.seq)
        ).all()
    for seq, sealed in rows:
        if sealed is None:  # pragma: no cover - filtered above
            continue
        t, f = open_chunk(ctx, session_id, seq, sealed)
        ts += t
        frames += f
    if not frames:
        raise LifecertError(
            "frames of this session are not kept (purged or never uploaded)", code=ErrorCode.FILE_MISSING
        )
    return ts, frames


@dataclass(frozen=True)
class PurgeReport:
    sessions: int
    blobs_deleted: int
    photos_deleted: int
    held_open_review: int


def purge_expired(ctx: AppContext, *, now: datetime | None = None, retention_days: int | None = None,
                  limit: int | None = None) -> PurgeReport:
    """Delete frames and scores of sessions older than the review period.

    The session row, its decision and reason stay (the audit trail refers to them). Sessions
    whose review case is still open are held until the case is closed.
    """
    from lifecert.storage.models import FaceTemplate, Photo

    days = ctx.settings.review_retention_days if retention_days is None else retention_days
    cutoff = (now or datetime.now(UTC)) - timedelta(days=days)
    n = blobs = photos = held = 0
    with ctx.db.session() as db:
        rows = db.scalars(
            select(VerificationSession).where(
                VerificationSession.created_at < cutoff, VerificationSession.purged_at.is_(None)
            ).order_by(VerificationSession.created_at)
        ).all()
        for vs in rows:
            if limit is not None and n >= limit:
                break  # bounded run (the service's scheduled purge); the rest goes next time
            if vs.review_case_id is not None:
                case = db.get(ReviewCase, vs.review_case_id)
                if case is not None and case.status != "closed":
                    held += 1
                    continue
            if vs.frames_blob and ctx.blobs.delete(f"sessions/{vs.frames_blob}"):
                blobs += 1
            for sha in vs.best_frame_shas or []:
                used = db.scalars(select(FaceTemplate.id).where(FaceTemplate.photo_sha256 == sha).limit(1)).first()
                if used is not None:
                    continue
                if ctx.photos.delete(sha):
                    photos += 1
                photo = db.get(Photo, sha)
                if photo is not None:
                    db.delete(photo)
            for chunk in db.scalars(select(VerificationChunk).where(VerificationChunk.session_id == vs.id)):
                chunk.frames_sealed = None  # paced sessions: the sealed frames and the landmarks go
                chunk.observations = []
            vs.frames_blob = None
            vs.best_frame_shas = []
            vs.scores = {}
            vs.challenge_results = [{"name": c, "passed": None, "note": "purged"} for c in vs.challenges]
            vs.purged_at = datetime.now(UTC)
            n += 1
        if n:
            audit.record(
                db,
                actor=audit.cli_actor(),
                role="system",
                action="verification.purged",
                object_type="verification_session",
                object_id="*",
                detail={"sessions": n, "cutoff": cutoff.isoformat()},
            )
    return PurgeReport(n, blobs, photos, held)
