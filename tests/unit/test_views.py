"""Embedding profiles (test-time augmentation views) on a real face through the dlib engine."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lifecert.domain.errors import ErrorCode, LifecertError
from lifecert.engine.base import FaceEngine, l2_normalize
from lifecert.engine.image import read_image_file
from lifecert.engine.views import PROFILES, VIEWS, View, profile_views, views_union, warp_crop


@pytest.fixture(scope="module")
def photo(faces_dir: Path) -> np.ndarray:
    return read_image_file(next(iter(sorted((faces_dir / "photos").glob("deepface_p04/*.jpg")))))


def test_given_unknown_profile_when_resolved_then_config_error() -> None:
    with pytest.raises(LifecertError) as e:
        profile_views("jitter-99")
    assert e.value.code == ErrorCode.CONFIG_ERROR


def test_given_any_profile_then_its_first_view_is_the_plain_crop() -> None:
    # quality is measured on the first crop of a profile (services.enrollment.assess_image)
    for name in PROFILES:
        first = profile_views(name)[0]
        assert first.is_plain and not first.mirror, name


def test_given_profiles_when_unioned_then_each_view_once_in_order() -> None:
    u = views_union(["flip", "jitter", "single"])
    names = [v.name for v in u]
    assert names[:2] == ["id", "mirror"]
    assert len(names) == len(set(names)) == len(set(PROFILES["jitter"]) | {"id", "mirror"})


def test_given_plain_view_when_warped_then_crop_unchanged_and_mirror_flips() -> None:
    crop = np.random.default_rng(0).integers(0, 255, (150, 150, 3), dtype=np.uint8)
    assert np.array_equal(warp_crop(crop, VIEWS["id"]), crop)
    assert np.array_equal(warp_crop(crop, VIEWS["mirror"]), crop[:, ::-1])
    moved = warp_crop(crop, View("t", dx=0.02))
    assert moved.shape == crop.shape and not np.array_equal(moved, crop)


def test_given_dlib_face_when_views_cut_then_plain_view_is_the_aligned_crop(
    face_engine: FaceEngine, photo: np.ndarray
) -> None:
    face = face_engine.detect(photo)[0]
    crop = face_engine.align(photo, face)
    views = profile_views("jitter")
    cuts = face_engine.align_views(photo, face, views)
    assert len(cuts) == len(views)
    assert np.array_equal(cuts[0], crop)
    assert np.array_equal(cuts[1], crop[:, ::-1])
    for v, c in zip(views[2:], cuts[2:], strict=True):
        assert c.shape == crop.shape, v.name
        assert not np.array_equal(c, crop), f"view {v.name} must change the window"


@pytest.mark.parametrize("profile", list(PROFILES))
def test_given_profile_when_face_embedded_then_unit_mean_of_its_views_and_deterministic(
    face_engine: FaceEngine, photo: np.ndarray, profile: str
) -> None:
    face = face_engine.detect(photo)[0]
    views = profile_views(profile)
    per_view = face_engine.embed_aligned(face_engine.align_views(photo, face, views))
    expected = l2_normalize(per_view.mean(axis=0))

    got = face_engine.embed(photo, face, profile=profile)

    assert got.shape == (face_engine.info.embedding_size,)
    assert np.allclose(got, expected, atol=1e-5)
    assert np.array_equal(face_engine.embed(photo, face, profile=profile), got), "no randomness in views"
    if profile != "single":
        single = face_engine.embed(photo, face)
        assert 0.95 < float(got @ single) < 0.9999, "augmented embedding: same person, not the same vector"


def test_given_two_faces_when_batched_then_same_as_one_by_one(face_engine: FaceEngine, photo: np.ndarray) -> None:
    face = face_engine.detect(photo)[0]
    small = np.ascontiguousarray(photo[::2, ::2])
    face_small = face_engine.detect(small)[0]
    batch = face_engine.embed_faces([(photo, face), (small, face_small)], "flip")
    assert np.allclose(batch[0], face_engine.embed(photo, face, profile="flip"), atol=1e-5)
    assert np.allclose(batch[1], face_engine.embed(small, face_small, profile="flip"), atol=1e-5)


def test_given_profiles_other_than_calibrated_when_context_reads_model_then_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from lifecert.config import Settings
    from lifecert.services.context import AppContext

    calibrated = AppContext(Settings(env="test", data_dir=tmp_path / "a"))
    with caplog.at_level("WARNING"):
        assert calibrated.model.threshold("verify") > 0
    assert "calibrated for" not in caplog.text
    calibrated.close()

    other = AppContext(Settings(env="test", data_dir=tmp_path / "b", embedding={"probe_profile": "single"}))
    with caplog.at_level("WARNING"):
        other.model.threshold("verify")
    assert "calibrated for enroll=jitter probe=flip but settings use enroll=jitter probe=single" in caplog.text
    other.close()
