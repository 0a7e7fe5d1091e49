"""Tiny stand-ins for the buffalo_l ONNX models, built with onnx.helper.

They keep the real models' tensor names and shapes (det_10g: ``input.1`` → nine
SCRFD heads 448…500 for strides 8/16/32 with 2 anchors; w600k_r50: ``input.1``
N×3×112×112 → ``683`` N×512; 1k3d68: ``data`` 1×3×192×192 → ``fc1`` 1×3309) but a
handful of weights, so the engine's code path runs without the real 330 MB pack.

The detector's heads are constant (zero kernels, chosen biases): a stride whose
score bias is positive "sees" a 4-stride-wide face at every anchor, with five
keypoints in a face-like layout; a negative bias sees nothing. The recogniser and
the landmark model have random weights, so their outputs depend on the pixels.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 13
IR_VERSION = 8
STRIDES = (8, 16, 32)
SCORE_NAMES = ("448", "471", "494")
BBOX_NAMES = ("451", "474", "497")
KPS_NAMES = ("454", "477", "500")
# Keypoint offsets from the anchor centre in strides: eyes, nose, mouth corners (ArcFace order).
KPS_LAYOUT = np.array([[-0.55, -0.35], [0.55, -0.35], [0.0, 0.15], [-0.45, 0.6], [0.45, 0.6]], dtype=np.float32)


def _model(graph: onnx.GraphProto) -> bytes:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model.SerializeToString()


def detector(score_bias: tuple[float, float, float] = (-8.0, -8.0, 3.0), box_half: float = 2.0) -> bytes:
    """SCRFD-shaped detector: input ``input.1`` (1, 3, ?, ?); outputs in insightface's
    order (scores, boxes, keypoints; each for strides 8, 16, 32), rank 2, 2 anchors."""
    inp = helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, "?", "?"])
    nodes, inits, outs = [], [], []
    heads = (("score", 1, SCORE_NAMES), ("bbox", 4, BBOX_NAMES), ("kps", 10, KPS_NAMES))
    for kind, width, names in heads:
        for i, stride in enumerate(STRIDES):
            ch = 2 * width
            w = np.zeros((ch, 3, stride, stride), dtype=np.float32)
            if kind == "score":
                b = np.full(ch, score_bias[i], dtype=np.float32)
            elif kind == "bbox":
                b = np.full(ch, box_half, dtype=np.float32)
            else:
                b = np.tile(KPS_LAYOUT.reshape(-1), 2).astype(np.float32)
            wn, bn, shp = f"{kind}{stride}_w", f"{kind}{stride}_b", f"{kind}{stride}_shape"
            inits += [numpy_helper.from_array(w, wn), numpy_helper.from_array(b, bn),
                      numpy_helper.from_array(np.array([-1, width], dtype=np.int64), shp)]
            conv, tr = f"{kind}{stride}_conv", f"{kind}{stride}_nhwc"
            flat = f"{kind}{stride}_flat" if kind == "score" else names[i]
            nodes += [
                helper.make_node("Conv", ["input.1", wn, bn], [conv], kernel_shape=[stride, stride],
                                 strides=[stride, stride], name=conv),
                helper.make_node("Transpose", [conv], [tr], perm=[0, 2, 3, 1], name=tr),
                helper.make_node("Reshape", [tr, shp], [flat], name=f"{kind}{stride}_reshape"),
            ]
            if kind == "score":
                nodes.append(helper.make_node("Sigmoid", [flat], [names[i]], name=f"score{stride}_sigmoid"))
            outs.append(helper.make_tensor_value_info(names[i], TensorProto.FLOAT, [f"n{kind}{stride}", width]))
    return _model(helper.make_graph(nodes, "scrfd_tiny", [inp], outs, inits))


def recognizer(batch: int | str = "None", dim: int = 512, seed: int = 0) -> bytes:
    """ArcFace-shaped recogniser: ``input.1`` (batch, 3, 112, 112) → ``683`` (batch, dim)."""
    rng = np.random.default_rng(seed)
    inp = helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [batch, 3, 112, 112])
    out = helper.make_tensor_value_info("683", TensorProto.FLOAT, [batch, dim])
    w = rng.standard_normal((3 * 14 * 14, dim)).astype(np.float32)
    b = rng.standard_normal(dim).astype(np.float32) * 0.1
    nodes = [
        helper.make_node("AveragePool", ["input.1"], ["pooled"], kernel_shape=[8, 8], strides=[8, 8], name="pool"),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1, name="flatten"),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["683"], name="fc"),
    ]
    inits = [numpy_helper.from_array(w, "fc_w"), numpy_helper.from_array(b, "fc_b")]
    return _model(helper.make_graph(nodes, "arcface_tiny", [inp], [out], inits))


def landmark68(seed: int = 1) -> bytes:
    """1k3d68-shaped model: ``data`` (1, 3, 192, 192) → ``fc1`` (1, 3309). The last 68x3
    outputs are a face-shaped point set (insightface's mean shape) plus a small
    pixel-dependent term, in the model's [-1, 1] crop coordinates."""
    from insightface.data import get_object

    rng = np.random.default_rng(seed)
    mean = np.asarray(get_object("meanshape_68.pkl"), dtype=np.float32)[:, :3]
    mean = mean - mean.mean(axis=0)
    mean = mean / np.abs(mean[:, :2]).max() * 0.5
    bias = np.zeros(3309, dtype=np.float32)
    bias[-68 * 3:] = mean.reshape(-1)
    w = (rng.standard_normal((3 * 12 * 12, 3309)) * 1e-5).astype(np.float32)
    inp = helper.make_tensor_value_info("data", TensorProto.FLOAT, [1, 3, 192, 192])
    out = helper.make_tensor_value_info("fc1", TensorProto.FLOAT, [1, 3309])
    nodes = [
        helper.make_node("AveragePool", ["data"], ["pooled"], kernel_shape=[16, 16], strides=[16, 16], name="pool"),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1, name="flatten"),
        helper.make_node("Gemm", ["flat", "fc1_w", "fc1_b"], ["fc1"], name="fc1"),
    ]
    inits = [numpy_helper.from_array(w, "fc1_w"), numpy_helper.from_array(bias, "fc1_b")]
    return _model(helper.make_graph(nodes, "lmk68_tiny", [inp], [out], inits))


def buffalo_files(*, rec_batch: int | str = "None", rec_dim: int = 512, faces: bool = True,
                  landmarks: bool = True) -> dict[str, bytes]:
    """The buffalo_l file names mapped to tiny models."""
    files = {
        "det_10g.onnx": detector() if faces else detector(score_bias=(-8.0, -8.0, -8.0)),
        "w600k_r50.onnx": recognizer(batch=rec_batch, dim=rec_dim),
    }
    if landmarks:
        files["1k3d68.onnx"] = landmark68()
    return files


def write_zip(path: Path, files: dict[str, bytes], *, folder: str | None = None) -> Path:
    """Zip ``files`` (name → bytes) flat, or inside ``folder/`` like antelopev2.zip."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(f"{folder}/{name}" if folder else name, data)
    path.write_bytes(buf.getvalue())
    return path
