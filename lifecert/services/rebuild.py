"""Re-embedding stored photos when the model or the enroll embedding profile changes
(``lifecert templates rebuild``), and adding the fusion's second-model templates to photos
enrolled before that engine was installed (``lifecert templates rebuild --engine edgeface``)."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import select

from lifecert.services import templates
from lifecert.services.audit import cli_actor, record
from lifecert.services.context import AppContext
from lifecert.services.enrollment import assess_bytes
from lifecert.services.fusion import fusion_spec
from lifecert.storage.models import FaceTemplate, Pensioner, TemplateKind


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


def rebuild_second_templates(ctx: AppContext, batch: int = 64) -> Counter[str]:
    """The fusion's second model for ``ctx`` (primary engine ``ctx.engine``): every active ID-photo
    template of the primary model without a second-model template of the same photo made under
    ``settings.embedding.fusion_enroll_profile`` gets one, embedded exactly as enrollment does (the
    primary engine's face, the second engine's views); an older one of that photo is re-embedded
    in place. Raises CONFIG_ERROR when fusion is off or the second engine is not installed."""
    from lifecert.domain.errors import ErrorCode, LifecertError

    spec, second = fusion_spec(ctx.settings), ctx.second_embedder()
    if spec is None or second is None:
        raise LifecertError(f"no fusion with {ctx.settings.fusion_engine or 'a second engine'} is configured and "
                            "installed (lifecert models install ...)", code=ErrorCode.CONFIG_ERROR)
    counts: Counter[str] = Counter()
    with ctx.db.session() as s:
        have = {(t.pensioner_id, t.photo_sha256): (t.id, t.embedding_profile) for t in s.scalars(
            select(FaceTemplate).where(FaceTemplate.model_key == spec.second_key, FaceTemplate.active.is_(True)))}
        todo = [(t.pensioner_id, t.photo_sha256) for t in s.scalars(select(FaceTemplate).where(
            FaceTemplate.active.is_(True), FaceTemplate.model_key == ctx.model.key,
            FaceTemplate.kind == TemplateKind.ID_PHOTO).order_by(FaceTemplate.id))
            if have.get((t.pensioner_id, t.photo_sha256), (0, ""))[1] != spec.enroll_profile]
    st = ctx.settings
    for i in range(0, len(todo), batch):
        with ctx.db.session() as s:
            for pid, sha in todo[i : i + batch]:
                a = assess_bytes(ctx.engine, ctx.photos.get(sha), st.quality, max_bytes=st.images.max_bytes,
                                 max_pixels=st.images.max_pixels, profile="single", second=second)
                emb = a.second.get(spec.second_key)
                if emb is None:
                    counts[f"kept ({a.reason})"] += 1
                    continue
                old = have.get((pid, sha))
                if old is not None:
                    t = s.get(FaceTemplate, old[0])
                    if t is not None:
                        t.embedding_enc = ctx.cipher.seal_embedding(emb, t.aad())
                        t.embedding_profile = spec.enroll_profile
                        counts[f"re-embedded as {spec.enroll_profile}"] += 1
                        continue
                p = s.get(Pensioner, pid)
                if p is not None:
                    templates.add_template(ctx, s, p, emb, photo_sha256=sha, quality=a.quality,
                                           model_key=spec.second_key, engine=spec.second, profile=spec.enroll_profile)
                    counts[f"added {spec.second}"] += 1
    with ctx.db.session() as s:
        record(s, actor=cli_actor(), role="admin", action="templates.rebuild", object_type="model",
               object_id=spec.second_key, detail=dict(counts))
        ctx.index.rebuild(s, spec.second_key)
    return counts
