"""``templates rebuild`` re-embeds templates made under another embedding profile, in place."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sqlalchemy import select

from lifecert.engine.base import FaceEngine
from lifecert.services.context import AppContext
from lifecert.services.enrollment import assess_bytes
from lifecert.services.rebuild import rebuild_templates
from lifecert.storage.models import AuditEvent, FaceTemplate
from tests.conftest import make_settings
from tests.integration.test_enrollment_job import frontal_lfw, ids, run, stage_photos, write_manifest


def _enroll_lfw(ctx: AppContext, faces_dir: Path, tmp_path: Path, n: int, *, start: int, name: str) -> None:
    """Enroll ``n`` frontal LFW people through the batch job (IDs from ``start``, names ``name0``...)."""
    photos = tmp_path / "photos"
    run(ctx, photos, write_manifest(photos, stage_photos(photos, frontal_lfw(faces_dir, n), ids(n, start=start), name)))


def _templates(ctx: AppContext) -> dict[int, tuple[str, np.ndarray, str]]:
    with ctx.db.session() as s:
        return {t.id: (t.embedding_profile, ctx.cipher.open_embedding(t.embedding_enc, t.aad()), t.photo_sha256)
                for t in s.scalars(select(FaceTemplate).where(FaceTemplate.active.is_(True)))}


def test_given_single_view_templates_when_rebuilt_under_jitter_then_re_embedded_in_place(
    tmp_path: Path, faces_dir: Path, face_engine: FaceEngine
) -> None:
    old_ctx = AppContext(make_settings(tmp_path, embedding={"enroll_profile": "single"}))
    old_ctx.set_engine(face_engine)
    _enroll_lfw(old_ctx, faces_dir, tmp_path, 4, start=40, name="重建")
    before = _templates(old_ctx)
    old_ctx.close()
    assert len(before) >= 3 and {p for p, _, _ in before.values()} == {"single"}

    ctx = AppContext(make_settings(tmp_path))  # defaults: jitter templates
    ctx.set_engine(face_engine)
    counts = rebuild_templates(ctx)
    after = _templates(ctx)

    assert counts["re-embedded as jitter"] == len(before)
    assert set(after) == set(before), "same rows, upgraded in place"
    st = ctx.settings
    for tid, (profile, emb, sha) in after.items():
        assert profile == "jitter"
        expected = assess_bytes(face_engine, ctx.photos.get(sha), st.quality, max_bytes=st.images.max_bytes,
                                max_pixels=st.images.max_pixels, profile="jitter").embedding
        assert expected is not None and np.allclose(emb, expected, atol=1e-5)
        old = before[tid][1]
        assert 0.95 < float(emb @ old) < 0.9999, "same face, different views"
    with ctx.db.session() as s:
        idx = ctx.index.get(s, ctx.model.key)
        tid, (_, emb, _) = next(iter(after.items()))
        assert idx.search(emb, 1)[0].template_id == tid  # the index was rebuilt from the new vectors
        assert s.scalars(select(AuditEvent).where(AuditEvent.action == "templates.rebuild")).first() is not None

    again = rebuild_templates(ctx)
    assert "re-embedded as jitter" not in again, "nothing left to upgrade"
    ctx.close()


def test_given_dlib_templates_when_rebuilt_with_edgeface_then_each_photo_gains_an_edgeface_template(
    tmp_path: Path, faces_dir: Path, face_engine: FaceEngine, shared_models_dir: Path
) -> None:
    from lifecert import cli_models
    from lifecert.engine.loader import load_engine

    dlib_ctx = AppContext(make_settings(tmp_path))
    dlib_ctx.set_engine(face_engine)
    _enroll_lfw(dlib_ctx, faces_dir, tmp_path, 3, start=60, name="换模")
    dlib_key = dlib_ctx.model.key
    dlib_ctx.close()

    es = make_settings(tmp_path, engine="edgeface", inference_threads=1)
    for pack in ("edgeface", "yunet"):
        cli_models.install_models(es, shared_models_dir / pack, pack)
    ctx = AppContext(es)
    ctx.set_engine(load_engine(es))
    counts = rebuild_templates(ctx)

    with ctx.db.session() as s:
        rows_by_key: dict[str, set[tuple[int, str]]] = {}
        for t in s.scalars(select(FaceTemplate).where(FaceTemplate.active.is_(True))):
            rows_by_key.setdefault(t.model_key, set()).add((t.pensioner_id, t.photo_sha256))
        assert rows_by_key[ctx.model.key] == rows_by_key[dlib_key], "every photo, now in both spaces"
        assert len(rows_by_key[ctx.model.key]) == 3 and sum(counts.values()) >= 3, counts
        t = s.scalars(select(FaceTemplate).where(FaceTemplate.model_key == ctx.model.key)).first()
        assert t is not None
        emb = ctx.cipher.open_embedding(t.embedding_enc, t.aad())
        assert emb.shape == (512,)
        assert ctx.index.get(s, ctx.model.key).search(emb, 1)[0].template_id == t.id
    ctx.close()
