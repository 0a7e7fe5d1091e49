"""Re-embedding stored photos when the model or the enroll embedding profile changes
(``lifecert templates rebuild``)."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import select

from lifecert.services import templates
from lifecert.services.audit import cli_actor, record
from lifecert.services.context import AppContext
from lifecert.services.enrollment import assess_bytes
from lifecert.storage.models import FaceTemplate


def rebuild_templates(ctx: AppContext, batch: int = 64) -> Counter[str]:
    """For every (pensioner, photo) with an active template of another model and none of
    ``ctx.model``, embed the stored photo with ``ctx.engine`` and add a template."""
    key = ctx.model.key
    counts: Counter[str] = Counter()
    with ctx.db.session() as s:
        have = {(pid, sha) for pid, sha in s.execute(
            select(FaceTemplate.pensioner_id, FaceTemplate.photo_sha256).where(FaceTemplate.model_key == key)
        )}
        todo = [
            (t.id, t.pensioner_id, t.photo_sha256, t.kind)
            for t in s.scalars(select(FaceTemplate).where(FaceTemplate.active.is_(True), FaceTemplate.model_key != key))
            if (t.pensioner_id, t.photo_sha256) not in have
        ]
    for i in range(0, len(todo), batch):
        with ctx.db.session() as s:
            for _tid, pid, sha, kind in todo[i : i + batch]:
                if (pid, sha) in have:
                    continue
                st = ctx.settings
                a = assess_bytes(ctx.engine, ctx.photos.get(sha), st.quality,
                                 max_bytes=st.images.max_bytes, max_pixels=st.images.max_pixels,
                                 profile=st.embedding.enroll_profile)
                counts[str(a.reason)] += 1
                if a.embedding is None:
                    continue
                from lifecert.storage.models import Pensioner

                p = s.get(Pensioner, pid)
                if p is None:
                    continue
                templates.add_template(ctx, s, p, a.embedding, photo_sha256=sha, quality=a.quality, kind=kind)
                have.add((pid, sha))
    counts.update(upgrade_profiles(ctx, batch))
    with ctx.db.session() as s:
        record(s, actor=cli_actor(), role="admin", action="templates.rebuild", object_type="model",
               object_id=key, detail=dict(counts))
        ctx.index.rebuild(s, key)
    return counts


def upgrade_profiles(ctx: AppContext, batch: int = 64) -> Counter[str]:
    """Re-embed, in place, every active template of ``ctx.model`` made under another embedding
    profile than ``settings.embedding.enroll_profile`` (the thresholds are calibrated for that
    one). A photo that no longer passes the quality gates keeps its old template and is counted
    under its reason."""
    key, profile = ctx.model.key, ctx.settings.embedding.enroll_profile
    counts: Counter[str] = Counter()
    with ctx.db.session() as s:
        ids = list(s.scalars(select(FaceTemplate.id).where(
            FaceTemplate.active.is_(True), FaceTemplate.model_key == key, FaceTemplate.embedding_profile != profile,
        ).order_by(FaceTemplate.id)))
    st = ctx.settings
    for i in range(0, len(ids), batch):
        with ctx.db.session() as s:
            for t in s.scalars(select(FaceTemplate).where(FaceTemplate.id.in_(ids[i : i + batch]))):
                a = assess_bytes(ctx.engine, ctx.photos.get(t.photo_sha256), st.quality,
                                 max_bytes=st.images.max_bytes, max_pixels=st.images.max_pixels, profile=profile)
                if a.embedding is None:
                    counts[f"kept {t.embedding_profile} ({a.reason})"] += 1
                    continue
                t.embedding_enc = ctx.cipher.seal_embedding(a.embedding, t.aad())
                t.embedding_profile = profile
                counts[f"re-embedded as {profile}"] += 1
    return counts
