"""dlib's ResNet converted to ONNX must compute what dlib computes, on real faces."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lifecert.domain.errors import ErrorCode, ModelError
from lifecert.engine.base import FaceEngine
from lifecert.engine.dlib_engine import DlibEngine, _model_files
from lifecert.engine.dlib_onnx import OnnxRecognizer, build_onnx, read_dlib_resnet
from lifecert.engine.image import read_image_file
from lifecert.engine.manifest import model_info


@pytest.fixture(scope="module")
def crops(faces_dir: Path, face_engine: FaceEngine) -> list[np.ndarray]:
    out = []
    for p in sorted((faces_dir / "photos").glob("*/*.jpg"))[:12]:
        img = read_image_file(p)
        faces = face_engine.detect(img)
        if faces:
            out.append(face_engine.align(img, faces[0]))
    assert len(out) >= 8
    return out


def test_given_dlib_model_file_when_parsed_then_the_published_architecture() -> None:
    net = read_dlib_resnet(_model_files()["recognition"])
    kinds = [layer.kind for layer in net.layers]
    assert net.size == (150, 150)
    assert np.allclose(net.mean_rgb, (122.782, 117.001, 104.298), atol=1e-3)
    assert kinds[:3] == ["con", "affine", "max_pool"] and kinds[-2:] == ["avg_pool", "fc"]
    assert kinds.count("con") == 29
    assert net.layers[-1].num_inputs == 256 and net.layers[-1].num_outputs == 128
    model = build_onnx(net)
    assert [o.name for o in model.graph.output] == ["embedding"]


def test_given_real_face_crops_when_onnx_and_dlib_embed_then_same_vectors(crops: list[np.ndarray]) -> None:
    info = model_info("dlib")
    onnx_engine = DlibEngine(info, recognizer="onnx")
    dlib_engine = DlibEngine(info, recognizer="dlib")

    a = onnx_engine.embed_aligned(crops)
    b = dlib_engine.embed_aligned(crops)

    assert a.shape == b.shape == (len(crops), 128)
    assert np.abs(a - b).max() < 1e-4
    assert float((a * b).sum(axis=1).min()) > 0.99999
    # and they are not trivially equal vectors: different faces stay apart
    assert float((a @ a.T)[~np.eye(len(crops), dtype=bool)].min()) < 0.9


def test_given_batch_when_embedded_then_same_as_one_at_a_time(crops: list[np.ndarray]) -> None:
    rec = OnnxRecognizer(_model_files()["recognition"])
    rgb = [np.ascontiguousarray(c[:, :, ::-1]) for c in crops]
    batch = rec(rgb)
    single = np.concatenate([rec([c]) for c in rgb])
    assert np.allclose(batch, single, atol=1e-5)


@pytest.mark.parametrize("cut", [0.5, 0.999], ids=["half", "last-byte-missing"])
def test_given_truncated_model_file_when_read_then_model_error(tmp_path: Path, cut: float) -> None:
    data = _model_files()["recognition"].read_bytes()
    bad = tmp_path / "truncated.dat"
    bad.write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(ModelError) as e:
        read_dlib_resnet(bad)
    assert e.value.code == ErrorCode.MODEL_MISSING


def test_given_other_file_when_read_then_model_error(tmp_path: Path) -> None:
    other = tmp_path / "other.dat"
    other.write_bytes(b"\x00" * 1000)
    with pytest.raises(ModelError):
        read_dlib_resnet(other)
    with pytest.raises(ModelError):
        read_dlib_resnet(tmp_path / "missing.dat")


def test_given_unknown_recognizer_when_engine_built_then_config_error() -> None:
    with pytest.raises(ModelError) as e:
        DlibEngine(model_info("dlib"), recognizer="tensorflow")
    assert e.value.code == ErrorCode.CONFIG_ERROR
