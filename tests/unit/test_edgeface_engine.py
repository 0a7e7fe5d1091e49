"""The EdgeFace engine on the real weights (../shared/models, installed as packs) and real
photos: YuNet detection and landmark order, 68 points on YuNet boxes, ArcFace alignment,
views re-cut from the full image, 512-d embeddings that separate people."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lifecert import cli_models
from lifecert.config import Settings
from lifecert.domain.errors import ErrorCode, ModelError
from lifecert.engine.base import FaceEngine
from lifecert.engine.edgeface_engine import EdgeFaceEngine
from lifecert.engine.image import read_image_file
from lifecert.engine.loader import load_engine
from lifecert.engine.views import VIEWS, profile_views
from tests.conftest import make_settings


@pytest.fixture(scope="module")
def esettings(tmp_path_factory: pytest.TempPathFactory, shared_models_dir: Path) -> Settings:
    s = make_settings(tmp_path_factory.mktemp("edgeface"), engine="edgeface", inference_threads=1)
    cli_models.install_models(s, shared_models_dir / "edgeface", "edgeface")
    cli_models.install_models(s, shared_models_dir / "yunet", "yunet")
    return s


@pytest.fixture(scope="module")
def engine(esettings: Settings) -> EdgeFaceEngine:
    e = load_engine(esettings)
    assert isinstance(e, EdgeFaceEngine)
    return e


def _photo(faces_dir: Path, who: str, name: str) -> np.ndarray:
    return read_image_file(faces_dir / "photos" / who / name)


def test_given_no_packs_when_edgeface_engine_loads_then_model_missing_names_the_install_command(
    tmp_path: Path,
) -> None:
    with pytest.raises(ModelError) as err:
        load_engine(make_settings(tmp_path, engine="edgeface"))

    assert err.value.code == ErrorCode.MODEL_MISSING
    assert "lifecert models install edgeface --from DIR" in err.value.message


def test_given_portrait_when_detected_then_one_face_with_arcface_ordered_points_and_68_landmarks(
    engine: EdgeFaceEngine, faces_dir: Path
) -> None:
    img = _photo(faces_dir, "deepface_p01", "img1.jpg")

    faces = engine.detect(img)

    assert len(faces) == 1
    f = faces[0]
    x1, y1, x2, y2 = f.box
    p = f.landmarks5
    assert p[0, 0] < p[1, 0] and p[3, 0] < p[4, 0], "eye and mouth corner on the image's left come first"
    assert p[0, 1] < p[2, 1] < p[3, 1], "eyes above the nose above the mouth"
    assert np.all((p[:, 0] > x1) & (p[:, 0] < x2) & (p[:, 1] > y1) & (p[:, 1] < y2))
    lm = f.landmarks68
    assert lm is not None and lm.shape == (68, 2) and lm.dtype == np.float32
    # dlib's 68 points on the YuNet-derived box: eye centres (36-41, 42-47) lie near YuNet's eyes.
    eyes = np.array([lm[36:42].mean(axis=0), lm[42:48].mean(axis=0)])
    assert float(np.abs(eyes - p[:2]).max()) < 0.08 * f.width


def test_given_group_photo_when_detected_then_several_faces_largest_first(
    engine: EdgeFaceEngine, faces_dir: Path
) -> None:
    group = sorted((faces_dir / "multi").iterdir())[0]

    faces = engine.detect(read_image_file(group))

    assert len(faces) >= 2
    assert [f.area for f in faces] == sorted((f.area for f in faces), reverse=True)


def test_given_views_when_cut_then_plain_view_is_the_aligned_crop_and_mirror_its_flip(
    engine: EdgeFaceEngine, faces_dir: Path
) -> None:
    img = _photo(faces_dir, "deepface_p01", "img1.jpg")
    face = engine.detect(img)[0]

    crop = engine.align(img, face)
    plain, mirror, rotated = engine.align_views(img, face, (VIEWS["id"], VIEWS["mirror"], VIEWS["rot+3"]))

    assert crop.shape == (112, 112, 3) and crop.dtype == np.uint8
    assert np.array_equal(plain, crop) and np.array_equal(mirror, crop[:, ::-1])
    assert not np.array_equal(rotated, crop)
    assert int((rotated == 0).all(axis=2).sum()) <= int((crop == 0).all(axis=2).sum()) + 5, \
        "a re-cut window holds image pixels, not new black border"


def test_given_two_people_when_embedded_then_same_person_scores_far_above_another(
    engine: EdgeFaceEngine, faces_dir: Path
) -> None:
    def emb(who: str, name: str, profile: str = "single") -> np.ndarray:
        img = _photo(faces_dir, who, name)
        return engine.embed(img, engine.detect(img)[0], profile=profile)

    a1, a2 = emb("deepface_p01", "img1.jpg"), emb("deepface_p01", "img2.jpg")
    b1 = emb("deepface_p02", sorted(p.name for p in (faces_dir / "photos" / "deepface_p02").iterdir())[0])

    assert a1.shape == (512,) and a1.dtype == np.float32
    assert abs(float(np.linalg.norm(a1)) - 1.0) < 1e-5
    genuine, impostor = float(a1 @ a2), float(a1 @ b1)
    assert genuine > 0.4 and impostor < 0.25 and genuine - impostor > 0.3
    jit = emb("deepface_p01", "img1.jpg", "jitter")
    assert abs(float(np.linalg.norm(jit)) - 1.0) < 1e-5 and 0.9 < float(jit @ a1) < 1.0
    assert len(profile_views("jitter")) == 8


def test_given_edgeface_and_dlib_when_keys_compared_then_embedding_spaces_differ(
    engine: EdgeFaceEngine, face_engine: FaceEngine
) -> None:
    assert engine.info.key == "edgeface:edgeface_xs_q:1"
    assert engine.info.key != face_engine.info.key and engine.info.embedding_size == 512


def test_given_edgeface_on_dlib_when_loaded_by_name_then_dlibs_faces_and_gates_with_edgefaces_embeddings(
    esettings: Settings, engine: EdgeFaceEngine, face_engine: FaceEngine, faces_dir: Path
) -> None:
    from lifecert.engine.loader import load_engine
    from lifecert.engine.pipeline import process_face
    from lifecert.engine.second_on_primary import SecondOnPrimary

    on = load_engine(esettings, "edgeface@dlib")
    assert isinstance(on, SecondOnPrimary) and on.info.key == engine.info.key
    img = read_image_file(faces_dir / "lfw/images/Tony_Blair/Tony_Blair_0003.jpg")
    out = process_face(on, img, esettings.quality, views="flip")
    ref = process_face(face_engine, img, esettings.quality, views="flip")  # what enrollment gates on
    assert out.face is not None and ref.face is not None
    assert np.allclose(out.face.box, ref.face.box) and out.reason == ref.reason
    assert out.quality is not None and ref.quality is not None
    assert out.quality.as_dict() == ref.quality.as_dict(), "gated on dlib's own crop, as production gates"
    assert out.embedding is not None and out.embedding.shape == (512,)
    assert np.allclose(out.embedding, engine.embed_faces([(img, ref.face)], "flip")[0], atol=1e-5), \
        "EdgeFace's flip embedding of dlib's face, as enrollment computes it"
