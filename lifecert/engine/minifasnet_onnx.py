"""MiniFASNet (minivision-ai Silent-Face-Anti-Spoofing) as an ONNX graph built in code from its
upstream state dict — no torch, no export.

The network is written out layer by layer as upstream's ``src/model_lib/MiniFASNet.py`` defines
it (MiniFASNetV2 and MiniFASNetV1SE; eval mode): which variant a file is comes from the
manifest (``architecture``), never from its tensor shapes. Channel counts and kernel sizes are
the weights' own; every key of the state dict must be used exactly once (a missing or an extra
tensor is an error, so a different network cannot slip through as this one).

Layers (input N×3×80×80, BGR 0–255, see lifecert.engine.pad):
``conv1`` Conv_block 3×3/2 → ``conv2_dw`` depthwise Conv_block 3×3 → ``conv_23`` Depth_Wise /2 →
``conv_3`` 4 residual Depth_Wise → ``conv_34`` /2 → ``conv_4`` 6 residual → ``conv_45`` /2 →
``conv_5`` 2 residual → ``conv_6_sep`` 1×1 Conv_block → ``conv_6_dw`` depthwise Linear_block
(kernel = the remaining 5×5, no padding) → flatten → ``linear`` (no bias) → ``bn`` (1-d) →
``prob`` (no bias) → logits N×3. Conv_block = conv (no bias) + BatchNorm + PReLU, Linear_block =
conv + BatchNorm, Depth_Wise = 1×1 Conv_block → depthwise 3×3 Conv_block → 1×1 Linear_block
(+ input when residual). In V1SE the LAST block of conv_3/conv_4/conv_5 adds an SE module after
``project``: global average pool → 1×1 conv + BN → ReLU → 1×1 conv + BN → sigmoid → scale.
Every BatchNorm (eps 1e-5, running statistics) is folded into the preceding conv / linear in
float64, then stored as float32. Dropout is the identity in eval mode.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import onnx
from numpy.typing import NDArray
from onnx import TensorProto, helper, numpy_helper

ARCHITECTURES = ("MiniFASNetV2", "MiniFASNetV1SE")
BN_EPS = 1e-5
OPSET = 13
IR_VERSION = 8  # fixed, so the same weights always give the same bytes (the manifest pins them)
# (stage, residual blocks) as upstream builds both variants
RESIDUAL_STAGES = (("conv_3", 4), ("conv_4", 6), ("conv_5", 2))
DOWNSAMPLE = ("conv_23", "conv_34", "conv_45")


class ArchitectureError(ValueError):
    """The state dict does not fit the named MiniFASNet variant."""


class _Builder:
    def __init__(self, weights: Mapping[str, NDArray[Any]]) -> None:
        # upstream saved the DataParallel wrapper's dict: every key starts with "module."
        self.w = {k.removeprefix("module."): v for k, v in weights.items()}
        self.used: set[str] = set()
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []

    def take(self, key: str) -> NDArray[np.float64]:
        if key not in self.w:
            raise ArchitectureError(f"state dict has no '{key}'")
        self.used.add(key)
        return np.asarray(self.w[key], dtype=np.float64)

    def const(self, name: str, value: NDArray[Any]) -> str:
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value, dtype=np.float32), name))
        return name

    def bn_scale(self, prefix: str) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(scale, shift) of BatchNorm ``prefix`` in eval mode: y = x * scale + shift."""
        gamma, beta = self.take(f"{prefix}.weight"), self.take(f"{prefix}.bias")
        mean, var = self.take(f"{prefix}.running_mean"), self.take(f"{prefix}.running_var")
        self.used.add(f"{prefix}.num_batches_tracked")  # a training counter, not used in eval
        scale = gamma / np.sqrt(var + BN_EPS)
        return scale, beta - mean * scale

    def conv_bn(self, x: str, conv_key: str, bn_prefix: str, out: str, *, stride: int, pad: int,
                depthwise: bool) -> str:
        w = self.take(conv_key)
        if w.ndim != 4:
            raise ArchitectureError(f"{conv_key} is not a 2-d convolution weight")
        if depthwise and w.shape[1] != 1:
            raise ArchitectureError(f"{conv_key} should be depthwise (one input channel per group)")
        scale, shift = self.bn_scale(bn_prefix)
        if scale.shape[0] != w.shape[0]:
            raise ArchitectureError(f"{bn_prefix} has {scale.shape[0]} channels, {conv_key} {w.shape[0]}")
        wn, bn = self.const(f"{out}.w", w * scale[:, None, None, None]), self.const(f"{out}.b", shift)
        k = [int(w.shape[2]), int(w.shape[3])]
        self.nodes.append(helper.make_node(
            "Conv", [x, wn, bn], [out], kernel_shape=k, strides=[stride, stride], pads=[pad] * 4,
            group=int(w.shape[0]) if depthwise else 1, dilations=[1, 1]))
        return out

    def conv_block(self, x: str, prefix: str, *, stride: int = 1, pad: int = 0, depthwise: bool = False) -> str:
        y = self.conv_bn(x, f"{prefix}.conv.weight", f"{prefix}.bn", f"{prefix}.conv", stride=stride, pad=pad,
                         depthwise=depthwise)
        slope = self.take(f"{prefix}.prelu.weight")
        s = self.const(f"{prefix}.prelu.slope", slope.reshape(-1, 1, 1))
        self.nodes.append(helper.make_node("PRelu", [y, s], [f"{prefix}.prelu"]))
        return f"{prefix}.prelu"

    def linear_block(self, x: str, prefix: str, *, stride: int = 1, pad: int = 0, depthwise: bool = False) -> str:
        return self.conv_bn(x, f"{prefix}.conv.weight", f"{prefix}.bn", f"{prefix}.out", stride=stride, pad=pad,
                            depthwise=depthwise)

    def se(self, x: str, prefix: str) -> str:
        self.nodes.append(helper.make_node("GlobalAveragePool", [x], [f"{prefix}.pool"]))
        a = self.conv_bn(f"{prefix}.pool", f"{prefix}.fc1.weight", f"{prefix}.bn1", f"{prefix}.fc1", stride=1,
                         pad=0, depthwise=False)
        self.nodes.append(helper.make_node("Relu", [a], [f"{prefix}.relu"]))
        b = self.conv_bn(f"{prefix}.relu", f"{prefix}.fc2.weight", f"{prefix}.bn2", f"{prefix}.fc2", stride=1,
                         pad=0, depthwise=False)
        self.nodes.append(helper.make_node("Sigmoid", [b], [f"{prefix}.gate"]))
        self.nodes.append(helper.make_node("Mul", [x, f"{prefix}.gate"], [f"{prefix}.out"]))
        return f"{prefix}.out"

    def depth_wise(self, x: str, prefix: str, *, stride: int, residual: bool, se: bool) -> str:
        y = self.conv_block(x, f"{prefix}.conv")
        y = self.conv_block(y, f"{prefix}.conv_dw", stride=stride, pad=1, depthwise=True)
        y = self.linear_block(y, f"{prefix}.project")
        if se:
            y = self.se(y, f"{prefix}.se_module")
        if residual:
            self.nodes.append(helper.make_node("Add", [x, y], [f"{prefix}.sum"]))
            return f"{prefix}.sum"
        return y

    def dense_bn(self, x: str) -> str:
        """linear (no bias) + BatchNorm1d folded into one Gemm, then prob (no bias)."""
        w = self.take("linear.weight")
        scale, shift = self.bn_scale("bn")
        if w.ndim != 2 or scale.shape[0] != w.shape[0]:
            raise ArchitectureError("linear/bn shapes do not fit")
        self.nodes.append(helper.make_node(
            "Gemm", [x, self.const("linear.w", w * scale[:, None]), self.const("linear.b", shift)], ["embedding"],
            transB=1))
        p = self.take("prob.weight")
        self.nodes.append(helper.make_node(
            "Gemm", ["embedding", self.const("prob.w", p), self.const("prob.b", np.zeros(p.shape[0]))], ["logits"],
            transB=1))
        return "logits"


def build_minifasnet(weights: Mapping[str, NDArray[Any]], architecture: str, *, input_size: int = 80) -> bytes:
    """The serialised ONNX model (opset 13, input ``input`` [N,3,H,W] float32, output ``logits``
    [N,3]) of ``architecture`` (one of :data:`ARCHITECTURES`) with ``weights`` (an upstream state
    dict). Deterministic: the same weights give the same bytes. Raises :class:`ArchitectureError`."""
    if architecture not in ARCHITECTURES:
        raise ArchitectureError(f"unknown architecture '{architecture}' (known: {', '.join(ARCHITECTURES)})")
    se = architecture == "MiniFASNetV1SE"
    b = _Builder(weights)
    x = b.conv_block("input", "conv1", stride=2, pad=1)
    x = b.conv_block(x, "conv2_dw", stride=1, pad=1, depthwise=True)
    for down, (stage, blocks) in zip(DOWNSAMPLE, RESIDUAL_STAGES, strict=True):
        x = b.depth_wise(x, down, stride=2, residual=False, se=False)
        for i in range(blocks):
            x = b.depth_wise(x, f"{stage}.model.{i}", stride=1, residual=True, se=se and i == blocks - 1)
    x = b.conv_block(x, "conv_6_sep")
    x = b.linear_block(x, "conv_6_dw", depthwise=True)  # kernel = what is left of the map (5x5 at 80x80)
    b.nodes.append(helper.make_node("Flatten", [x], ["flat"], axis=1))
    b.dense_bn("flat")
    unused = sorted(set(b.w) - b.used)
    if unused:
        raise ArchitectureError(f"state dict has tensors {architecture} does not use: {', '.join(unused[:5])}")
    graph = helper.make_graph(
        b.nodes, architecture,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, input_size, input_size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 3])],
        initializer=b.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION,
                              producer_name="lifecert.engine.minifasnet_onnx", producer_version="1")
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())
