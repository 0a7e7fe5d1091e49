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
from typing import Any

from sqlalchemy import select

from lifecert.services.context import AppContext
from lifecert.storage.models import FaceTemplate, Photo
from lifecert.storage.models_verification import VerificationChunk, VerificationSession
from lifecert.storage.photos import PhotoStore

Progress = Callable[[str, int, int], None]  # (kind, re-sealed so far, examined so far)
KINDS = ("templates", "photos", "session_frames", "paced_chunks", "exchange_keys")


@dataclass
class RotationReport:
    resealed: Counter[str] = field(default_factory=Counter)
    examined: Counter[str] = field(default_factory=Counter)
    missing: Counter[str] = field(default_factory=Counter)  # rows whose blob is gone (e.g. purged)


def _session_aad(session_id: str) -> bytes:
    from lifecert.services.verification import store

    return store.session_blob_aad(session_id)


def _chunk_aad(session_id: str, seq: int) -> bytes:
    from lifecert.services.verification import store

    return store.chunk_aad(session_id, seq)


def _reseal_rows(ctx: AppContext, rep: RotationReport, tell: Progress, kind: str, model: Any, attr: str,
                 aad: Callable[[Any], bytes], batch: int, *where: Any) -> None:
    """Re-seal ``model.<attr>`` of every row (matching ``where``) still under a retired key: keyset
    pages of ``batch`` rows by id, each page one transaction, progress told after each page."""
    last_id = 0
    while True:
        with ctx.db.session() as s:
            rows = list(s.scalars(select(model).where(model.id > last_id, *where).order_by(model.id).limit(batch)))
            for row in rows:
                rep.examined[kind] += 1
                blob = getattr(row, attr)
                if blob is not None and ctx.cipher.needs_rotation(blob):
                    setattr(row, attr, ctx.cipher.reseal(blob, aad(row)))
                    rep.resealed[kind] += 1
        if not rows:
            break
        last_id = rows[-1].id
        tell(kind, rep.resealed[kind], rep.examined[kind])


def rotate(ctx: AppContext, *, batch: int = 200, progress: Progress | None = None) -> RotationReport:
    rep = RotationReport()
    cipher = ctx.cipher
    tell = progress or (lambda kind, done, seen: None)

    # Templates: one transaction per batch, rows re-read and updated under the session.
    _reseal_rows(ctx, rep, tell, "templates", FaceTemplate, "embedding_enc", FaceTemplate.aad, batch)

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
    _reseal_rows(ctx, rep, tell, "paced_chunks", VerificationChunk, "frames_sealed",
                 lambda c: _chunk_aad(c.session_id, c.seq), batch, VerificationChunk.frames_sealed.is_not(None))

    # Department API-key secrets of the exchange API.
    from lifecert.services.exchange import sealed_secret_aad
    from lifecert.storage.models_exchange import DepartmentCredential

    _reseal_rows(ctx, rep, tell, "exchange_keys", DepartmentCredential, "secret_sealed",
                 lambda c: sealed_secret_aad(c.key_id), batch, DepartmentCredential.secret_sealed.is_not(None))
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
        from lifecert.storage.models_exchange import DepartmentCredential

        for key_blob in s.scalars(select(DepartmentCredential.secret_sealed)
                                  .where(DepartmentCredential.secret_sealed.is_not(None))):
            if key_blob is not None:
                out["exchange_keys"][kid(key_blob)] += 1
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
