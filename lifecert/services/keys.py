"""Key rotation for sealed biometric data (issue 11 M8).

Every sealed blob names its key (lifecert.storage.crypto envelope v2). ``rotate`` re-seals, under the
current ``LIFECERT_TEMPLATE_KEY``, every blob still sealed with a retired key (or with no key id, from
before the keyring): face templates, photos, verification frame files and paced-capture chunks.

Online and resumable: it works in small batches, each its own transaction (rows) or atomic blob
replacement (files), skips what is already under the current key, and reports progress; stopping it
at any point and running it again continues where it left off. The service keeps running meanwhile
(it opens blobs under any configured key). When ``status`` shows nothing left under a retired key,
remove that key from ``LIFECERT_RETIRED_TEMPLATE_KEYS``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select

from lifecert.services.context import AppContext
from lifecert.storage.models import FaceTemplate, Photo
from lifecert.storage.models_verification import VerificationChunk, VerificationSession
from lifecert.storage.photos import PhotoStore

Progress = Callable[[str, int, int], None]  # (kind, re-sealed so far, examined so far)
KINDS = ("templates", "photos", "session_frames", "paced_chunks")


@dataclass
class RotationReport:
    resealed: Counter[str] = field(default_factory=Counter)
    examined: Counter[str] = field(default_factory=Counter)
    missing: Counter[str] = field(default_factory=Counter)  # rows whose blob is gone (e.g. purged)


def _session_aad(session_id: str) -> bytes:
    from lifecert.services.verification import store

    return store._aad(session_id)


def _chunk_aad(session_id: str, seq: int) -> bytes:
    from lifecert.services.verification import paced

    return paced._aad(session_id, seq)


def rotate(ctx: AppContext, *, batch: int = 200, progress: Progress | None = None) -> RotationReport:
    rep = RotationReport()
    cipher = ctx.cipher
    tell = progress or (lambda kind, done, seen: None)

    # Templates: one transaction per batch, rows re-read and updated under the session.
    last_id = 0
    while True:
        with ctx.db.session() as s:
            rows = list(s.scalars(select(FaceTemplate).where(FaceTemplate.id > last_id)
                                  .order_by(FaceTemplate.id).limit(batch)))
            for t in rows:
                rep.examined["templates"] += 1
                if cipher.needs_rotation(t.embedding_enc):
                    t.embedding_enc = cipher.reseal(t.embedding_enc, t.aad())
                    rep.resealed["templates"] += 1
            if rows:
                last_id = rows[-1].id
        if not rows:
            break
        tell("templates", rep.resealed["templates"], rep.examined["templates"])

    # Photos: content-addressed blobs; the replacement is atomic in every blob store.
    last_sha = ""
    while True:
        with ctx.db.session() as s:
            shas = list(s.scalars(select(Photo.sha256).where(Photo.sha256 > last_sha)
                                  .order_by(Photo.sha256).limit(batch)))
        for sha in shas:
            rep.examined["photos"] += 1
            name = PhotoStore.name_for(sha)
            if not ctx.blobs.exists(name):
                rep.missing["photos"] += 1
                continue
            blob = ctx.blobs.get(name)
            if cipher.needs_rotation(blob):
                ctx.blobs.put(name, cipher.reseal(blob, sha.encode()))
                rep.resealed["photos"] += 1
        if not shas:
            break
        last_sha = shas[-1]
        tell("photos", rep.resealed["photos"], rep.examined["photos"])

    # One-shot verification frame files.
    last_sid = ""
    while True:
        with ctx.db.session() as s:
            rows2 = list(s.execute(select(VerificationSession.id, VerificationSession.frames_blob)
                                   .where(VerificationSession.id > last_sid,
                                          VerificationSession.frames_blob.is_not(None))
                                   .order_by(VerificationSession.id).limit(batch)).all())
        for sid, fname in rows2:
            rep.examined["session_frames"] += 1
            name = f"sessions/{fname}"
            if not ctx.blobs.exists(name):
                rep.missing["session_frames"] += 1
                continue
            blob = ctx.blobs.get(name)
            if cipher.needs_rotation(blob):
                ctx.blobs.put(name, cipher.reseal(blob, _session_aad(sid)))
                rep.resealed["session_frames"] += 1
        if not rows2:
            break
        last_sid = rows2[-1][0]
        tell("session_frames", rep.resealed["session_frames"], rep.examined["session_frames"])

    # Paced-capture chunks sealed in the database.
    last_chunk = 0
    while True:
        with ctx.db.session() as s:
            chunks = list(s.scalars(select(VerificationChunk).where(VerificationChunk.id > last_chunk,
                                                                    VerificationChunk.frames_sealed.is_not(None))
                                    .order_by(VerificationChunk.id).limit(batch)))
            for c in chunks:
                rep.examined["paced_chunks"] += 1
                if c.frames_sealed is not None and cipher.needs_rotation(c.frames_sealed):
                    c.frames_sealed = cipher.reseal(c.frames_sealed, _chunk_aad(c.session_id, c.seq))
                    rep.resealed["paced_chunks"] += 1
            if chunks:
                last_chunk = chunks[-1].id
        if not chunks:
            break
        tell("paced_chunks", rep.resealed["paced_chunks"], rep.examined["paced_chunks"])
    return rep


def status(ctx: AppContext, batch: int = 1000) -> dict[str, Counter[str]]:
    """Blobs per key id and kind ("v1" = sealed before key ids existed)."""
    out: dict[str, Counter[str]] = {k: Counter() for k in KINDS}

    def kid(blob: bytes) -> str:
        return ctx.cipher.key_id_of(blob) or "v1"

    with ctx.db.session() as s:
        for blob in s.scalars(select(FaceTemplate.embedding_enc).execution_options(yield_per=batch)):
            out["templates"][kid(blob)] += 1
        for (sealed,) in s.execute(select(VerificationChunk.frames_sealed)
                                   .where(VerificationChunk.frames_sealed.is_not(None))
                                   .execution_options(yield_per=batch)):
            if sealed is not None:
                out["paced_chunks"][kid(sealed)] += 1
        shas = list(s.scalars(select(Photo.sha256)))
        files = list(s.scalars(select(VerificationSession.frames_blob)
                               .where(VerificationSession.frames_blob.is_not(None))))
    for sha in shas:
        name = PhotoStore.name_for(sha)
        if ctx.blobs.exists(name):
            out["photos"][kid(ctx.blobs.get(name))] += 1
    for f in files:
        if f and ctx.blobs.exists(f"sessions/{f}"):
            out["session_frames"][kid(ctx.blobs.get(f"sessions/{f}"))] += 1
    return out
