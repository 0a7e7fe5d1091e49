"""Assessing one enrollment photo with the face pipeline, in the shape the batch job reports.

Shared by the batch job (``enrollment/``), the console's photo fix and template rebuilds;
the pipeline itself (:mod:`lifecert.engine.pipeline`) is also what the accuracy harness runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from lifecert.domain.enrollment import ItemOutcome, ItemReason
from lifecert.domain.quality import QualityGates
from lifecert.engine.base import FaceEngine
from lifecert.engine.fusion import SecondEmbedder
from lifecert.engine.pipeline import process_face
from lifecert.engine.types import ImageBGR

THUMB_SIDE = 96


@dataclass
class Assessment:
    reason: ItemReason
    detail: str = ""
    quality: dict[str, Any] = field(default_factory=dict)
    embedding: NDArray[np.float32] | None = None
    width: int = 0
    height: int = 0
    thumbnail: bytes | None = None  # small JPEG of the photo for reject reports
    # the second (fusion) engine's embedding of the same face (its model key → (D,) vector), when
    # fusion is on: enrollment stores it as that model's template beside the primary's
    second: dict[str, NDArray[np.float32]] = field(default_factory=dict)


def thumbnail(image: ImageBGR, side: int = THUMB_SIDE) -> bytes:
    h, w = image.shape[:2]
    k = side / max(h, w)
    small = cv2.resize(image, (max(1, round(w * k)), max(1, round(h * k))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", small, [int(cv2.IMWRITE_JPEG_QUALITY), 80])
    return bytes(buf) if ok else b""


def assess_bytes(
    engine: FaceEngine, data: bytes | ImageBGR, gates: QualityGates, *, max_bytes: int, max_pixels: int,
    profile: str = "single", second: SecondEmbedder | None = None,
) -> Assessment:
    """The face pipeline (:func:`lifecert.engine.pipeline.process_face`) on one enrollment photo:
    the largest face, quality-gated, embedded under ``profile`` (normally
    ``settings.embedding.enroll_profile``) when it passes; a thumbnail for rejects. ``second``:
    also embed the accepted face with the fusion's second engine (on the primary's detection)."""
    out = process_face(engine, data, gates, views=profile, max_bytes=max_bytes, max_pixels=max_pixels)
    if out.reason is None:
        a = Assessment(ItemOutcome.ENROLLED, "", out.quality_dict(), out.embedding, out.width, out.height)
        if second is not None and out.image is not None and out.face is not None:
            emb = second.engine.embed_faces([(out.image, out.face)], second.profile)[0]
            a.second = {second.engine.info.key: np.asarray(emb, dtype=np.float32)}
        return a
    a = Assessment(out.reason, out.detail, out.quality_dict(), width=out.width, height=out.height)
    if out.image is not None:
        a.thumbnail = thumbnail(out.image)
    return a
