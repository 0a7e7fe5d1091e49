"""The one face pipeline: decode → detect → pick a face → quality gates → views → embed.

Every path that turns a photo into a template or a measured embedding runs this function:
batch enrollment and the console's photo fix (through :mod:`lifecert.services.enrollment`),
template rebuilds and the accuracy harness (:mod:`lifecert.services.evaluation`). One place,
so the gates, the face choice and the embedding views cannot drift apart.

Each call decodes the photo once and runs the recogniser once per view (8 passes for the
``jitter`` profile).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lifecert.domain.errors import ErrorCode, ImageError
from lifecert.domain.quality import Quality, QualityGates, gate
from lifecert.engine.base import SECOND_FACE_RATIO, FaceEngine, count_significant, fuse_views
from lifecert.engine.image import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, decode_image
from lifecert.engine.types import Embedding, Face, ImageBGR
from lifecert.engine.views import View, profile_views

PICKS = ("largest", "central")


@dataclass(frozen=True, slots=True)
class FaceOutcome:
    """What the pipeline found in one photo.

    ``reason`` is None when the photo passed every check, else the first failure
    (decode error, NO_FACE, MULTIPLE_FACES or a quality gate). ``view_embeddings`` is
    (V, D) float32, one L2-normalised row per view in ``view_names`` order (the plain
    ``id`` crop first); ``embedding`` is their normalised mean, (D,). Both are None when
    nothing was embedded (no face, or a rejected face without ``embed_rejects``).
    ``image`` is the decoded (H, W, 3) uint8 BGR photo (None when it did not decode).
    """

    reason: ErrorCode | None
    detail: str = ""
    image: ImageBGR | None = None
    face: Face | None = None
    num_faces: int = 0  # every detection
    significant: int = 0  # faces at least SECOND_FACE_RATIO as wide as the largest
    detector: str | None = None
    quality: Quality | None = None
    view_names: tuple[str, ...] = ()
    view_embeddings: NDArray[np.float32] | None = None
    embedding: Embedding | None = None

    @property
    def ok(self) -> bool:
        return self.reason is None

    @property
    def width(self) -> int:
        return 0 if self.image is None else int(self.image.shape[1])

    @property
    def height(self) -> int:
        return 0 if self.image is None else int(self.image.shape[0])

    def quality_dict(self) -> dict[str, Any]:
        return self.quality.as_dict() if self.quality is not None else {}


def pick_face(faces: list[Face], image_shape: tuple[int, ...], pick: str) -> Face:
    """The face to use: ``largest`` (production: faces come largest first) or ``central``
    (the significant face nearest the image centre — LFW's subject is the centred face, and
    ~0.5% of its images hold a larger bystander)."""
    if pick == "largest" or len(faces) < 2:
        return faces[0]
    h, w = image_shape[:2]
    significant = [f for f in faces if f.width >= SECOND_FACE_RATIO * faces[0].width]

    def off_centre(f: Face) -> float:
        return float(((f.box[0] + f.box[2]) / 2 - w / 2) ** 2 + ((f.box[1] + f.box[3]) / 2 - h / 2) ** 2)

    return min(significant, key=off_centre)


def process_face(
    engine: FaceEngine,
    source: bytes | ImageBGR,
    gates: QualityGates,
    *,
    views: str | Sequence[View] = "single",
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    pick: str = "largest",
    embed_rejects: bool = False,
) -> FaceOutcome:
    """Run the pipeline on encoded bytes or an already decoded BGR image.

    ``views``: an embedding profile name (``settings.embedding.enroll_profile`` for templates)
    or explicit views whose first is the plain crop (quality is measured on it).
    ``embed_rejects``: also embed a face that fails MULTIPLE_FACES or a gate (evaluation
    measures those too); enrollment leaves it off and saves the recogniser passes.
    Never raises for a bad photo: the failure is the outcome's ``reason``.
    """
    if isinstance(source, bytes | bytearray | memoryview):
        try:
            image = decode_image(bytes(source), max_bytes=max_bytes, max_pixels=max_pixels)
        except ImageError as exc:
            return FaceOutcome(ErrorCode(exc.code), exc.message)
    else:
        image = source
    vs = profile_views(views) if isinstance(views, str) else tuple(views)
    if not vs or not vs[0].is_plain or vs[0].mirror:
        raise ValueError("the first view must be the plain aligned crop")
    detect_verbose = getattr(engine, "detect_verbose", None)  # engines with several detectors say which found it
    detector: str | None = None
    if detect_verbose is not None:
        faces, detector = detect_verbose(image)
    else:
        faces = engine.detect(image)
    if not faces:
        return FaceOutcome(ErrorCode.NO_FACE, "no face found", image=image, detector=detector)
    face = pick_face(faces, image.shape, pick)
    n = count_significant(faces)
    crops = engine.align_views(image, face, vs)
    q = engine.quality(image, face, crops[0], num_faces=n)
    reason: ErrorCode | None
    if n > 1:
        reason, detail = ErrorCode.MULTIPLE_FACES, f"{n} faces"
    else:
        reason = gate(q, gates)
        detail = "" if reason is None else explain(reason, q)
    found = FaceOutcome(reason, detail, image=image, face=face, num_faces=len(faces), significant=n,
                        detector=detector, quality=q, view_names=tuple(v.name for v in vs))
    if reason is not None and not embed_rejects:
        return found
    per_view = np.asarray(engine.embed_aligned(crops), dtype=np.float32)
    return replace(found, view_embeddings=per_view, embedding=fuse_views(per_view, len(vs))[0])


_MEASURE = {
    ErrorCode.FACE_TOO_SMALL: "face_px",
    ErrorCode.TOO_DARK: "brightness",
    ErrorCode.TOO_BRIGHT: "brightness",
    ErrorCode.LOW_CONTRAST: "contrast",
    ErrorCode.BLURRY: "sharpness",
    ErrorCode.EYES_CLOSED: "eye_aspect_ratio",
}


def explain(code: ErrorCode, q: Quality) -> str:
    """The measurement behind a failed gate, for reports and review cases."""
    if code == ErrorCode.POSE_TOO_LARGE:
        return f"yaw {q.yaw:.0f}°, pitch {q.pitch:.0f}°, roll {q.roll:.0f}°"
    k = _MEASURE.get(code)
    return f"{k} = {getattr(q, k):.3g}" if k else ""
