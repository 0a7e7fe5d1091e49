"""Shared pieces of the ArcFace-style engines (insightface packs, EdgeFace): the 112x112
five-point template, the similarity fit that aligns a face onto it, ONNX Runtime
sessions with explicit thread counts for injecting into insightface's ``model_zoo``, and
:class:`Recogniser`, the checked, batched embedding step both engines run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from lifecert.domain.errors import ErrorCode, ModelError
from lifecert.engine.base import l2_normalize
from lifecert.engine.geometry import similarity_transform
from lifecert.engine.types import Face, ImageBGR

# The ArcFace reference points of a 112x112 crop (x, y), in the Face.landmarks5 order
# (right eye, left eye, nose tip, right mouth corner, left mouth corner as seen in the image).
ARCFACE_DST = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float32,
)


def norm_crop(image: ImageBGR, face: Face, size: tuple[int, int] = (112, 112)) -> ImageBGR:
    """insightface-style ``norm_crop``: the (w, h) BGR uint8 crop whose five points sit on the
    ArcFace template (scaled to ``size``), bilinear, black outside the image."""
    w, h = size
    m = similarity_transform(face.landmarks5, ARCFACE_DST * (w / 112.0))
    warped = cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))
    return np.ascontiguousarray(warped, dtype=np.uint8)


def make_session(path: Path, threads: int) -> Any:
    """A CPU ONNX Runtime session with explicit thread counts (no oversubscription
    when several workers share a machine)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = max(1, int(threads))
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])


class Recogniser:
    """An ArcFace-style recognition model (insightface ``ArcFaceONNX`` with an injected session and
    the manifest's mean/std already set) checked against the manifest's embedding size.

    ``embed`` takes aligned (h, w, 3) uint8 BGR crops (the wrapper converts to RGB and applies
    ``(x - mean) / std``) and returns (N, D) L2-normalised float32 embeddings, in batches of the
    model's fixed batch size when it has one. Stateless per call: safe to share between threads.
    """

    def __init__(self, model: Any, name: str, embedding_size: int) -> None:
        out_dim = model.output_shape[-1]
        if isinstance(out_dim, int) and out_dim != embedding_size:
            raise ModelError(f"{name} outputs {out_dim}-d vectors; the manifest says {embedding_size}",
                             code=ErrorCode.MODEL_MISSING)
        batch = model.input_shape[0]
        self.model = model
        self.embedding_size = embedding_size
        self.batch = batch if isinstance(batch, int) and batch > 0 else None

    def embed(self, crops: list[ImageBGR]) -> NDArray[np.float32]:
        if not crops:
            return np.zeros((0, self.embedding_size), dtype=np.float32)
        step = self.batch or len(crops)
        parts = [np.asarray(self.model.get_feat(crops[i:i + step]), dtype=np.float32)
                 for i in range(0, len(crops), step)]
        return l2_normalize(np.concatenate(parts, axis=0).reshape(len(crops), -1))
