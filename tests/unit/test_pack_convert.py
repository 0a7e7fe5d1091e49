"""`lifecert models pull minifasnet` from the upstream .pth files: the restricted torch reader,
the ONNX graph built in code (equal to the shipped conversion on real frames), and the pull
from a 127.0.0.1 HTTP server serving ../shared/models/minifasnet/*.pth."""

from __future__ import annotations

import hashlib
import io
import pickle
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest

from lifecert.domain.errors import ModelError
from lifecert.engine.base import FaceEngine
from lifecert.engine.minifasnet_onnx import ArchitectureError, build_minifasnet
from lifecert.engine.packs import pack_spec
from lifecert.engine.pad import box_xyxy_to_xywh, crop_context, load_pad, softmax, to_tensor
from lifecert.engine.torch_weights import MAGIC_NUMBER, PROTOCOL_VERSION, WeightsError, read_state_dict
from tests.conftest import make_settings

PTH = {"pad_v2": "2.7_80x80_MiniFASNetV2.pth", "pad_v1se": "4_0_0_80x80_MiniFASNetV1SE.pth"}


@pytest.fixture(scope="module")
def pack_src(shared_models_dir: Path) -> Path:
    d = shared_models_dir / "minifasnet"
    if not all((d / f).is_file() for f in PTH.values()):
        pytest.skip("../shared/models/minifasnet/*.pth not found")
    return d


@pytest.fixture(scope="module")
def converted(pack_src: Path) -> dict[str, bytes]:
    spec = pack_spec("minifasnet")
    out = {}
    for f in spec.files:
        assert f.upstream_name == PTH[f.role] and f.architecture
        out[f.role] = build_minifasnet(read_state_dict((pack_src / PTH[f.role]).read_bytes()), f.architecture)
    return out


# -- the restricted reader ---------------------------------------------------------------------------


def test_given_upstream_pth_when_read_without_torch_then_every_tensor_is_there(pack_src: Path) -> None:
    sd = read_state_dict((pack_src / PTH["pad_v2"]).read_bytes())
    assert len(sd) == 334 and "torch" not in sys.modules
    assert sd["module.conv1.conv.weight"].shape == (32, 3, 3, 3) and sd["module.conv1.conv.weight"].dtype == np.float32
    assert sd["module.prob.weight"].shape == (3, 128)
    assert sd["module.conv1.bn.num_batches_tracked"].dtype == np.int64
    se = read_state_dict((pack_src / PTH["pad_v1se"]).read_bytes())
    assert {k for k in se if "se_module.fc1" in k} == {
        f"module.{s}.se_module.fc1.weight" for s in ("conv_3.model.3", "conv_4.model.5", "conv_5.model.1")}


class _Boom:
    """Unpickling an instance of this calls os.system — what a hostile .pth does."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return (os.system, ("touch /tmp/lifecert-pwned-by-pickle",))


def _legacy(obj: object, keys: list[str] | None = None, tail: bytes = b"") -> bytes:
    buf = io.BytesIO()
    for part in (MAGIC_NUMBER, PROTOCOL_VERSION, {"little_endian": True}, obj, keys or []):
        pickle.dump(part, buf, protocol=2)
    return buf.getvalue() + tail


def test_given_pth_naming_os_system_when_read_then_refused_before_anything_runs(tmp_path: Path) -> None:
    marker = Path("/tmp/lifecert-pwned-by-pickle")
    marker.unlink(missing_ok=True)
    with pytest.raises(WeightsError, match="global"):
        read_state_dict(_legacy({"w": _Boom()}))
    assert not marker.exists()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b[: len(b) - 100], "truncated"),
        (lambda b: b + b"\0", "after the last storage"),
        (lambda b: b"PK\x03\x04" + b[4:], "zip-format"),
        (lambda b: b[:2] + b"\x8a\x0a\x00" + b[5:], "magic|readable"),
    ],
    ids=["truncated", "trailing", "zip", "magic"],
)
def test_given_damaged_pth_when_read_then_typed_error(pack_src: Path, mutate: object, message: str) -> None:
    data = (pack_src / PTH["pad_v2"]).read_bytes()
    with pytest.raises(WeightsError, match=message):
        read_state_dict(mutate(data))  # type: ignore[operator]


def test_given_state_dict_of_another_network_when_built_then_refused(pack_src: Path) -> None:
    sd = read_state_dict((pack_src / PTH["pad_v2"]).read_bytes())
    with pytest.raises(ArchitectureError, match="se_module"):  # V2 weights are not a V1SE network
        build_minifasnet(sd, "MiniFASNetV1SE")
    extra = dict(read_state_dict((pack_src / PTH["pad_v1se"]).read_bytes()))
    with pytest.raises(ArchitectureError, match="does not use"):  # V1SE weights have tensors V2 never uses
        build_minifasnet(extra, "MiniFASNetV2")


# -- the conversion equals the shipped ONNX on real frames -------------------------------------------------


def _real_frames(faces_dir: Path) -> Iterator[np.ndarray]:
    for name in ("silentface_image_T1_real.jpg", "silentface_image_F1_attack.jpg", "silentface_image_F2_attack.jpg"):
        img = cv2.imread(str(faces_dir / "spoof" / name))
        assert img is not None
        yield img
    cap = cv2.VideoCapture(str(faces_dir / "video" / "talking_head_a.mp4"))
    for i in range(60):
        ok, fr = cap.read()
        assert ok
        if i % 20 == 0:
            yield fr
    cap.release()


def test_given_converted_models_when_run_on_real_frames_then_outputs_equal_the_shipped_onnx(
    faces_dir: Path, pack_src: Path, converted: dict[str, bytes], face_engine: FaceEngine
) -> None:
    spec = pack_spec("minifasnet")
    frames = list(_real_frames(faces_dir))
    boxes = [box_xyxy_to_xywh(face_engine.detect(f)[0].box) for f in frames]
    scale = {"pad_v2": 2.7, "pad_v1se": 4.0}
    for f in spec.files:
        x = to_tensor([crop_context(fr, b, scale[f.role], f.input_size) for fr, b in zip(frames, boxes, strict=True)])
        ours = ort.InferenceSession(converted[f.role], providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
        shipped = ort.InferenceSession(str(pack_src / f.name), providers=["CPUExecutionProvider"]).run(
            None, {"input": x})[0]
        assert ours.shape == shipped.shape == (len(frames), 3)
        np.testing.assert_allclose(ours, shipped, atol=1e-4, rtol=0)  # measured: ≤ 6.7e-6
        np.testing.assert_allclose(softmax(ours), softmax(shipped), atol=1e-5, rtol=0)
        assert np.abs(shipped).max() > 1.0  # real frames give confident logits, not a degenerate input


def test_given_the_pinned_pth_when_converted_then_bytes_are_the_manifests_converted_pin(
    converted: dict[str, bytes],
) -> None:
    for f in pack_spec("minifasnet").files:
        assert hashlib.sha256(converted[f.role]).hexdigest() == f.converted_sha256


# -- the pull from a local mirror of the upstream files ------------------------------------------------------


@pytest.mark.parametrize("tamper", [False, True])
def test_given_upstream_pth_on_local_http_when_pulling_then_converted_and_installed_only_if_pinned(
    tmp_path: Path, pack_src: Path, faces_dir: Path, face_engine: FaceEngine, tamper: bool,
    mirror: tuple[str, Path],
) -> None:
    """`lifecert models pull minifasnet --upstream-base URL`: this machine cannot reach GitHub, so a
    127.0.0.1 server stands in for github.com/minivision-ai/Silent-Face-Anti-Spoofing/raw/<commit>/…"""
    from lifecert.cli_models import pull_models, verify_models

    base, folder = mirror
    base += "/"
    for name in PTH.values():
        shutil.copyfile(pack_src / name, folder / name)
    if tamper:  # one float of the V1SE weights changed: still a valid checkpoint, but not the pinned one
        p = folder / PTH["pad_v1se"]
        data = bytearray(p.read_bytes())
        data[-1000] ^= 0x01
        p.write_bytes(bytes(data))
    s = make_settings(tmp_path)
    if tamper:
        with pytest.raises(ModelError, match="sha256"):
            pull_models(s, "minifasnet", upstream_base=base)
        assert load_pad(s) is None
        assert not (s.resolved_models_dir / "minifasnet").exists()
        assert [p.name for p in s.resolved_models_dir.iterdir()] == []  # no staging left behind
    else:
        record = pull_models(s, "minifasnet", upstream_base=base)
        assert record["source"].startswith("converted from http://127.0.0.1")
        assert [c.status for c in verify_models(s, "minifasnet")] == ["ok"] * 2
        model = load_pad(s)
        assert model is not None and len(model.nets) == 2
        frame = cv2.imread(str(faces_dir / "spoof" / "silentface_image_T1_real.jpg"))
        assert frame is not None
        assert model.score(frame, box_xyxy_to_xywh(face_engine.detect(frame)[0].box)) > 0.9


