"""The batch job with the fusion's second engine installed (real EdgeFace + YuNet weights from
../shared/models, real LFW photos): every enrolled photo gets both models' templates, and the
duplicate check scores other pensioners with the fused score and the fusion's own threshold."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from sqlalchemy import select

from lifecert import cli_models
from lifecert.engine.base import FaceEngine
from lifecert.engine.image import read_image_file
from lifecert.services.context import AppContext
from lifecert.services.enrollment import assess_bytes
from lifecert.services.fusion import FusionSpec, fusion_spec
from lifecert.storage.models import EnrollmentItem, FaceTemplate, ReviewCase
from tests.conftest import make_settings
from tests.integration.test_enrollment_job import (
    frontal_lfw,
    ids,
    lfw_people,
    reasons,
    run,
    stage_photos,
    write_manifest,
)


@pytest.fixture
def fused_ctx(tmp_path: Path, face_engine: FaceEngine, shared_models_dir: Path) -> AppContext:
    settings = make_settings(tmp_path, inference_threads=1)
    for pack in ("edgeface", "yunet"):
        cli_models.install_models(settings, shared_models_dir / pack, pack)
    ctx = AppContext(settings)
    ctx.set_engine(face_engine)
    yield ctx  # type: ignore[misc]
    ctx.close()


@pytest.fixture
def spec(fused_ctx: AppContext) -> FusionSpec:
    found = fusion_spec(fused_ctx.settings)
    assert found is not None, "packs installed and [fusion.dlib_edgeface] in the manifest: fusion is on"
    return found


def _active(ctx: AppContext) -> dict[str, dict[int, FaceTemplate]]:
    with ctx.db.session() as s:
        out: dict[str, dict[int, FaceTemplate]] = {}
        for t in s.scalars(select(FaceTemplate).where(FaceTemplate.active.is_(True))):
            out.setdefault(t.model_key, {})[t.pensioner_id] = t
            s.expunge(t)
        return out


def test_given_edgeface_installed_when_the_batch_job_enrolls_then_each_photo_has_both_templates(
    tmp_path: Path, faces_dir: Path, fused_ctx: AppContext, spec: FusionSpec
) -> None:
    ctx = fused_ctx
    assert spec.enroll_profile == "flip"
    photos = tmp_path / "photos"
    rows = stage_photos(photos, frontal_lfw(faces_dir, 4), ids(4, start=300), "双模")

    result = run(ctx, photos, write_manifest(photos, rows))

    assert set(reasons(result).values()) == {"ENROLLED"}, result.rows
    by_key = _active(ctx)
    primary, second = by_key[ctx.model.key], by_key[spec.second_key]
    assert set(primary) == set(second) and len(primary) == 4
    second_engine = ctx.second_embedder()
    assert second_engine is not None
    st = ctx.settings
    for pid, t in second.items():
        assert (t.engine, t.embedding_profile, t.photo_sha256) == ("edgeface", "flip", primary[pid].photo_sha256)
        assert primary[pid].embedding_profile == "jitter"
        emb = ctx.cipher.open_embedding(t.embedding_enc, t.aad())
        # the same face dlib found, embedded by EdgeFace under flip (no second detector)
        again = assess_bytes(ctx.engine, ctx.photos.get(t.photo_sha256), st.quality, max_bytes=st.images.max_bytes,
                             max_pixels=st.images.max_pixels, profile="jitter", second=second_engine)
        assert emb.shape == (512,) and np.allclose(emb, again.second[spec.second_key], atol=1e-5)
    with ctx.db.session() as s:
        idx = ctx.index.get(s, spec.second_key)
        assert idx.size == 4
        t = next(iter(second.values()))
        assert idx.search(ctx.cipher.open_embedding(t.embedding_enc, t.aad()), 1)[0].pensioner_id == t.pensioner_id


def test_given_fusion_when_a_rescanned_photo_comes_with_another_id_then_duplicate_by_fused_score(
    tmp_path: Path, faces_dir: Path, fused_ctx: AppContext, spec: FusionSpec
) -> None:
    ctx = fused_ctx
    photos = tmp_path / "photos"
    people = lfw_people(faces_dir, 3)
    idns = ids(4, start=320)
    rows = stage_photos(photos, [p[0] for p in people], idns[:3], "原件")
    # person 0's ID photo scanned again (90% size, JPEG 85) offered under a fourth ID number
    img = read_image_file(people[0][0])
    small = cv2.resize(img, None, fx=0.9, fy=0.9, interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(photos / "rescan.jpg"), small, [int(cv2.IMWRITE_JPEG_QUALITY), 85])
    rows.append((idns[3], "冒名", "rescan.jpg"))

    result = run(ctx, photos, write_manifest(photos, rows))

    got = reasons(result)
    assert [got[r] for r in sorted(got)] == ["ENROLLED", "ENROLLED", "ENROLLED", "DUPLICATE_FACE"], result.rows
    by_key = _active(ctx)
    with ctx.db.session() as s:
        item = s.scalars(select(EnrollmentItem).where(EnrollmentItem.reason == "DUPLICATE_FACE")).one()
        first = s.scalars(select(EnrollmentItem).where(EnrollmentItem.row_no == item.row_no - 3)).one()
        assert item.duplicate_of_pensioner_id == first.pensioner_id
        case = s.scalars(select(ReviewCase).where(ReviewCase.enrollment_item_id == item.id)).one()
        # the recorded score is the fused one: recompute it from both stored templates and the photo
        a = assess_bytes(ctx.engine, ctx.photos.get(item.photo_sha256 or ""), ctx.settings.quality,
                         max_bytes=ctx.settings.images.max_bytes, max_pixels=ctx.settings.images.max_pixels,
                         profile="jitter", second=ctx.second_embedder())
        t1, t2 = by_key[ctx.model.key][first.pensioner_id], by_key[spec.second_key][first.pensioner_id]
        assert a.embedding is not None
        expected = spec.fused(float(ctx.cipher.open_embedding(t1.embedding_enc, t1.aad()) @ a.embedding),
                              float(ctx.cipher.open_embedding(t2.embedding_enc, t2.aad()) @ a.second[spec.second_key]))
        assert item.similarity is not None and abs(item.similarity - expected) < 1e-3
        assert case.payload["threshold"] == spec.model.threshold("duplicate") > 1.0, "the fusion's own threshold"
        assert "fused dlib_edgeface score" in item.detail
    assert set(by_key[spec.second_key]) == set(by_key[ctx.model.key]) and len(by_key[ctx.model.key]) == 3, \
        "the duplicate got a person record for review but no template of either model"


def test_given_fused_templates_when_someone_claims_another_pensioner_then_fused_1n_finds_the_real_one(
    tmp_path: Path, faces_dir: Path, fused_ctx: AppContext
) -> None:
    from lifecert.services.fusion import FusedScorer
    from lifecert.services.templates import match_pensioner
    from lifecert.services.verification import rules

    ctx = fused_ctx
    photos = tmp_path / "photos"
    people = lfw_people(faces_dir, 3, min_photos=3)
    rows = stage_photos(photos, [p[0] for p in people], ids(3, start=340), "冒领")
    result = run(ctx, photos, write_manifest(photos, rows))
    assert set(reasons(result).values()) == {"ENROLLED"}, result.rows
    scorer = FusedScorer.from_settings(ctx)
    assert scorer is not None
    with ctx.db.session() as s:
        pid = {r["row_no"]: s.scalars(select(EnrollmentItem.pensioner_id).where(
            EnrollmentItem.row_no == r["row_no"])).one() for r in result.rows}
        # person 0's OTHER photo (a later selfie) claimed as person 1
        img = read_image_file(people[0][1])
        face = ctx.engine.detect(img)[0]
        probe = ctx.engine.embed(img, face, profile="flip")
        victim, impostor = pid[2], pid[1]
        own = match_pensioner(ctx, s, victim, probe)[0].score
        m = scorer.one_to_one(s, victim, own, [(img, face)], primary_probe=probe)
        assert m is not None
        fz = m.as_dict()
        assert fz["one_to_n"][0]["pensioner_id"] == impostor and fz["one_to_n"][0]["fused"]
        assert fz["other_fused"][0] >= m.threshold > m.score, fz
        ev = rules.Evidence(threshold=ctx.model.threshold("verify"), own_match=own, one_person_min=1.0,
                            **rules.match_evidence(fz, []))
        assert rules.decide(ev).reason == "MATCHES_OTHER_PENSIONER"
        # claimed as themselves: no other pensioner fuses above them
        own_real = match_pensioner(ctx, s, impostor, probe)[0].score
        real = scorer.one_to_one(s, impostor, own_real, [(img, face)], primary_probe=probe)
        assert real is not None and real.score >= real.threshold
        assert all(x < real.score for x in real.other_fused)


def test_given_photos_enrolled_before_edgeface_when_rebuilt_for_fusion_then_made_as_enrollment_makes_them(
    tmp_path: Path, faces_dir: Path, face_engine: FaceEngine, shared_models_dir: Path
) -> None:
    from lifecert.services.rebuild import rebuild_second_templates

    photos = tmp_path / "photos"
    rows = stage_photos(photos, frontal_lfw(faces_dir, 3), ids(3, start=360), "补模")
    settings = make_settings(tmp_path, inference_threads=1)
    before = AppContext(settings)
    before.set_engine(face_engine)
    assert before.second_embedder() is None, "no packs yet: dlib alone"
    run(before, photos, write_manifest(photos, rows))
    before.close()
    for pack in ("edgeface", "yunet"):
        cli_models.install_models(settings, shared_models_dir / pack, pack)
    ctx = AppContext(settings)
    ctx.set_engine(face_engine)
    spec, second = fusion_spec(settings), ctx.second_embedder()
    assert spec is not None and second is not None

    counts = rebuild_second_templates(ctx)

    by_key = _active(ctx)
    assert counts == {"added edgeface": 3} and set(by_key[spec.second_key]) == set(by_key[ctx.model.key])
    st = ctx.settings
    for t in by_key[spec.second_key].values():
        assert t.embedding_profile == "flip"
        a = assess_bytes(ctx.engine, ctx.photos.get(t.photo_sha256), st.quality, max_bytes=st.images.max_bytes,
                         max_pixels=st.images.max_pixels, profile="single", second=second)
        assert np.allclose(ctx.cipher.open_embedding(t.embedding_enc, t.aad()), a.second[spec.second_key], atol=1e-5)
    assert rebuild_second_templates(ctx) == {}, "nothing left to add"
    ctx.close()


def test_given_a_batch_big_enough_for_the_worker_pool_when_enrolled_then_pool_workers_write_both_models(
    tmp_path: Path, faces_dir: Path, fused_ctx: AppContext, spec: FusionSpec
) -> None:
    from enrollment.job import IN_PROCESS_BELOW, JobOptions, run_job

    ctx = fused_ctx
    photos = tmp_path / "photos"
    rows = stage_photos(photos, frontal_lfw(faces_dir, IN_PROCESS_BELOW), ids(IN_PROCESS_BELOW, start=400), "池")

    # two spawned worker processes: each loads dlib AND the fusion's EdgeFace from the settings' packs
    result = run_job(ctx, photos, write_manifest(photos, rows), JobOptions(workers=2))

    enrolled = {r["row_no"] for r in result.rows if r["reason"] == "ENROLLED"}
    by_key = _active(ctx)
    assert len(enrolled) >= IN_PROCESS_BELOW // 2, result.counts
    assert set(by_key[spec.second_key]) == set(by_key[ctx.model.key])
    assert len(by_key[ctx.model.key]) == len(enrolled)
    assert {t.embedding_profile for t in by_key[spec.second_key].values()} == {"flip"}


def test_given_fusion_when_the_console_fixes_a_photo_then_both_models_templates_and_old_ones_retired(
    faces_dir: Path, fused_ctx: AppContext, spec: FusionSpec
) -> None:
    from lifecert.services import review, staff
    from lifecert.storage.models import ReviewKind, StaffUser
    from tests.integration.console_support import make_case, make_pensioner, make_user

    ctx = fused_ctx
    make_user(ctx, "enr", "enrollment_staff")
    with ctx.db.session() as s:
        who = staff.principal_for(s.scalars(select(StaffUser).where(StaffUser.username == "enr")).one(), "cli")
    pid = make_pensioner(ctx)
    first, second = (faces_dir / f"lfw/images/Tony_Blair/Tony_Blair_000{i}.jpg" for i in (3, 4))
    for photo in (first, second):
        cid = make_case(ctx, pid, kind=ReviewKind.ENROLLMENT, reason="NO_FACE")
        with ctx.db.session() as s:
            review.fix_photo(ctx, s, cid, who, photo.read_bytes(), filename=photo.name)

    by_key = _active(ctx)
    t1, t2 = by_key[ctx.model.key][pid], by_key[spec.second_key][pid]
    assert t1.photo_sha256 == t2.photo_sha256 and t2.embedding_profile == "flip"
    with ctx.db.session() as s:
        all_second = list(s.scalars(select(FaceTemplate).where(FaceTemplate.pensioner_id == pid,
                                                               FaceTemplate.model_key == spec.second_key)))
        assert len(all_second) == 2 and sum(t.active for t in all_second) == 1, "the first photo's retired"


def test_given_the_cli_when_templates_rebuilt_for_the_fusion_engine_then_edgeface_templates_beside_dlibs(
    tmp_path: Path, faces_dir: Path, face_engine: FaceEngine, shared_models_dir: Path, cli_env: Path
) -> None:
    from typer.testing import CliRunner

    from lifecert.cli import app
    from lifecert.config import get_settings

    photos = tmp_path / "photos"
    rows = stage_photos(photos, frontal_lfw(faces_dir, 2), ids(2, start=380), "命令")
    settings = get_settings()  # the CLI's own settings (LIFECERT_DATA_DIR from cli_env)
    ctx = AppContext(settings)
    ctx.set_engine(face_engine)
    run(ctx, photos, write_manifest(photos, rows))  # before the packs: dlib only
    ctx.close()
    for pack in ("edgeface", "yunet"):
        cli_models.install_models(settings, shared_models_dir / pack, pack)

    r = CliRunner().invoke(app, ["templates", "rebuild", "--engine", "edgeface"])

    assert r.exit_code == 0, r.output
    assert "added edgeface: 2" in r.output
    ctx = AppContext(get_settings())
    spec = fusion_spec(ctx.settings)
    assert spec is not None
    by_key = _active(ctx)
    assert set(by_key[spec.second_key]) == set(by_key[ctx.model.key]) and len(by_key[ctx.model.key]) == 2
    assert {t.embedding_profile for t in by_key[spec.second_key].values()} == {"flip"}
    ctx.close()
