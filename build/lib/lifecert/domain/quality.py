"""Face quality measurements and the gate that turns them into a reason code."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Protocol

from lifecert.domain.errors import ErrorCode


@dataclass(frozen=True, slots=True)
class Quality:
    """Per-face quality. Angles in degrees; grey levels 0..255; ``face_px`` in source pixels.

    Pose sign convention (camera image as delivered, not mirrored):
    ``yaw`` > 0 when the nose points toward the image's right side,
    ``pitch`` > 0 when the face looks up, ``roll`` > 0 when the head tilts so
    that the eye line rotates clockwise in the image.
    """

    face_px: float  # width of the face box
    sharpness: float  # variance of Laplacian on the aligned grey crop
    brightness: float  # mean grey level of the aligned crop
    contrast: float  # std of grey levels of the aligned crop
    yaw: float
    pitch: float
    roll: float
    eye_aspect_ratio: float  # mean of both eyes; ~0.3 open, < 0.15 closed
    mouth_aspect_ratio: float  # inner lips; ~0 closed, > 0.5 wide open
    num_faces: int = 1

    def as_dict(self) -> dict[str, Any]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


class QualityGates(Protocol):
    min_face_px: int
    min_sharpness: float
    min_brightness: float
    max_brightness: float
    min_contrast: float
    max_yaw_deg: float
    max_pitch_deg: float
    max_roll_deg: float
    min_eye_aspect_ratio: float


def gate(q: Quality, g: QualityGates, *, check_eyes: bool = True) -> ErrorCode | None:
    """First failing gate in a fixed order (most fundamental first), or None if usable."""
    if q.face_px < g.min_face_px:
        return ErrorCode.FACE_TOO_SMALL
    if q.brightness < g.min_brightness:
        return ErrorCode.TOO_DARK
    if q.brightness > g.max_brightness:
        return ErrorCode.TOO_BRIGHT
    if q.contrast < g.min_contrast:
        return ErrorCode.LOW_CONTRAST
    if q.sharpness < g.min_sharpness:
        return ErrorCode.BLURRY
    if abs(q.yaw) > g.max_yaw_deg or abs(q.pitch) > g.max_pitch_deg or abs(q.roll) > g.max_roll_deg:
        return ErrorCode.POSE_TOO_LARGE
    if check_eyes and q.eye_aspect_ratio < g.min_eye_aspect_ratio:
        return ErrorCode.EYES_CLOSED
    return None
