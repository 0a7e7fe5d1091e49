"""Assessing one enrollment photo: decode → detect → quality gates → align → embed.

Shared by the batch job (``enrollment/``), template rebuilds and the accuracy
harness, so every path applies exactly the same gates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from lifecert.domain.enrollment import ItemReason
from lifecert.domain.errors import ImageError
from lifecert.domain.quality import QualityGates, gate
from lifecert.engine.base import FaceEngine, count_significant, fuse_views
from lifecert.engine.image import decode_image
from lifecert.engine.types import ImageBGR
from lifecert.engine.views import profile_views

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


def thumbnail(image: ImageBGR, side: int = THUMB_SIDE) -> bytes:
    h, w = image.shape[:2]
    k = side / max(h, w)
    small = cv2.resize(image, (max(1, round(w * k)), max(1, round(h * k))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", small, [int(cv2.IMWRITE_JPEG_QUALITY), 80])
    return bytes(buf) if ok else b""


def assess_image(engine: FaceEngine, image: ImageBGR, gates: QualityGates, *, profile: str = "single") -> Assessment:
    """Quality-gate the largest face of an already decoded BGR image and embed it (under the
    embedding ``profile``, normally ``settings.embedding.enroll_profile``) if it passes."""
    h, w = image.shape[:2]
    faces = engine.detect(image)
    if not faces:
        return Assessment(ItemReason.NO_FACE, "no face found", width=w, height=h)
    n = count_significant(faces)
    face = faces[0]
    views = profile_views(profile)
    crops = engine.align_views(image, face, views)  # crops[0]: the plain aligned crop, measured below
    q = engine.quality(image, face, crops[0], num_faces=n)
    if n > 1:
        return Assessment(ItemReason.MULTIPLE_FACES, f"{n} faces", q.as_dict(), width=w, height=h)
    failed = gate(q, gates)
    if failed is not None:
        return Assessment(ItemReason(str(failed)), _explain(str(failed), q.as_dict()), q.as_dict(), width=w, height=h)
    emb = fuse_views(engine.embed_aligned(crops), len(views))[0]
    return Assessment(ItemReason.ENROLLED, "", q.as_dict(), emb, width=w, height=h)


def assess_bytes(
    engine: FaceEngine, data: bytes, gates: QualityGates, *, max_bytes: int, max_pixels: int, profile: str = "single"
) -> Assessment:
    try:
        image = decode_image(data, max_bytes=max_bytes, max_pixels=max_pixels)
    except ImageError as exc:
        return Assessment(ItemReason(str(exc.code)), exc.message)
    a = assess_image(engine, image, gates, profile=profile)
    if not a.reason.is_success:
        a.thumbnail = thumbnail(image)
    return a


def _explain(code: str, q: dict[str, Any]) -> str:
    keys = {
        "FACE_TOO_SMALL": "face_px",
        "TOO_DARK": "brightness",
        "TOO_BRIGHT": "brightness",
        "LOW_CONTRAST": "contrast",
        "BLURRY": "sharpness",
        "EYES_CLOSED": "eye_aspect_ratio",
    }
    if code == "POSE_TOO_LARGE":
        return f"yaw {q['yaw']:.0f}°, pitch {q['pitch']:.0f}°, roll {q['roll']:.0f}°"
    k = keys.get(code)
    return f"{k} = {q[k]:.3g}" if k else ""
