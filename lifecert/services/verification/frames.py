"""Frame analysis of a paced chunk: decode, observe, framing issues, quality, best frames.

No database and no session state: functions take decoded frames (or their observations)
and settings values and return plain data, so they are unit-tested on plain inputs. The
only model call is :func:`observe` (detection + 68 landmarks through the given engine).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from lifecert.config import QualitySettings
from lifecert.domain.errors import ErrorCode, ImageError
from lifecert.engine import geometry
from lifecert.engine.base import FaceEngine, count_significant
from lifecert.engine.image import decode_image
from lifecert.engine.liveness import FrameObs
from lifecert.engine.types import Face, ImageBGR

FRAME_DETECT_MAX_SIDE = 320  # selfie faces are large: detect on a small copy, landmarks on the full frame
FRAME_MAX_SIDE = 960  # decoded frames are shrunk to this side at once (bounded memory per session)
FRAME_MAX_PIXELS = 4_000_000  # decompression guard per frame (header check before decoding)
CENTRE_TOLERANCE = 0.3  # landmark centre within this fraction of the frame size from its centre
MIN_FACE_FRACTION = 0.15  # face width (jaw to jaw) at least this fraction of the frame's short side


@dataclass
class FrameInfo:
    """One decoded frame and what was seen in it."""

    index: int
    t_ms: int
    image: ImageBGR  # (H, W, 3) uint8 BGR, at most FRAME_MAX_SIDE
    size: tuple[int, int]  # original (width, height)
    obs: FrameObs
    face: Face | None = None  # the main face (aligned crops are made only for the best frames)
    sharpness: float = 0.0
    brightness: float = 0.0
    frame_brightness: float = 0.0


FRAME_MAGIC = {b"\xff\xd8\xff": "JPEG", b"\x89PNG\r\n\x1a\n": "PNG"}


def check_frame_bytes(frames: Sequence[bytes], *, max_bytes: int) -> None:
    """Cheap checks before any decoding: each frame non-empty, within ``max_bytes`` and starting
    like a JPEG or PNG (the capture page sends JPEG). Raises :class:`ImageError` naming the frame."""
    for i, data in enumerate(frames):
        if not data:
            raise ImageError(f"frame {i} is empty", code=ErrorCode.UNREADABLE_IMAGE, frame=i)
        if len(data) > max_bytes:
            raise ImageError(f"frame {i} is larger than {max_bytes} bytes", code=ErrorCode.PAYLOAD_TOO_LARGE, frame=i)
        if not any(data.startswith(m) for m in FRAME_MAGIC):
            raise ImageError(f"frame {i} is not a JPEG or PNG image", code=ErrorCode.UNSUPPORTED_FORMAT, frame=i)


def decode_frames(
    frames: Sequence[bytes], *, max_bytes: int, max_pixels: int
) -> list[tuple[ImageBGR, tuple[int, int]]]:
    """Decode JPEG/PNG frames, each shrunk to at most FRAME_MAX_SIDE. Raises :class:`ImageError`
    naming the frame on the first bad one. Returns ((H, W, 3) uint8 BGR, original (w, h))."""
    out = []
    for i, data in enumerate(frames):
        try:
            img = decode_image(data, max_bytes=max_bytes, max_pixels=min(max_pixels, FRAME_MAX_PIXELS))
        except ImageError as exc:
            raise ImageError(f"frame {i}: {exc.message}", code=exc.code, frame=i) from exc
        h, w = img.shape[:2]
        k = FRAME_MAX_SIDE / max(h, w)
        if k < 1:
            img = np.ascontiguousarray(
                cv2.resize(img, (round(w * k), round(h * k)), interpolation=cv2.INTER_AREA), dtype=np.uint8
            )
        out.append((img, (int(w), int(h))))
    return out


def observe(engine: FaceEngine, infos: Sequence[FrameInfo]) -> None:
    """Detection + landmarks of the main face on every frame (fills ``obs``, ``face``, stats)."""
    for f in infos:
        f.frame_brightness = float(cv2.cvtColor(f.image, cv2.COLOR_BGR2GRAY).mean())
        faces = engine.detect(f.image)
        if not faces:
            continue
        main = faces[0]
        f.obs = FrameObs(f.t_ms, main.landmarks68, main.box, count_significant(faces))
        f.face = main
        f.sharpness, f.brightness = face_region_stats(f.image, main.box)


def face_region_stats(image: ImageBGR, box: NDArray[np.float32]) -> tuple[float, float]:
    """(sharpness, brightness) of the central face region, resized to 150 px wide so that sharpness
    (variance of the Laplacian) compares across resolutions like the aligned-crop statistic.
    ``image``: (H, W, 3) uint8 BGR; ``box``: (x1, y1, x2, y2) pixels."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box)
    bw, bh = x2 - x1, y2 - y1
    # Inner part of the box: skip hair, background and jaw edges.
    xa, xb = int(max(0, x1 + 0.15 * bw)), int(min(w, x2 - 0.15 * bw))
    ya, yb = int(max(0, y1 + 0.2 * bh)), int(min(h, y2 - 0.1 * bh))
    if xb - xa < 8 or yb - ya < 8:
        return 0.0, 0.0
    grey = cv2.cvtColor(image[ya:yb, xa:xb], cv2.COLOR_BGR2GRAY)
    k = 150.0 / grey.shape[1]
    grey = cv2.resize(grey, (150, max(8, round(grey.shape[0] * k))), interpolation=cv2.INTER_AREA)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var()), float(grey.mean())


def framing_issue(
    obs: FrameObs, frame_size: tuple[int, int], brightness: float, g: QualitySettings
) -> ErrorCode | None:
    """What is wrong with one frame's framing (None: fine). ``frame_size``: (w, h) of the
    analysed image; ``brightness``: mean grey of the face region (or of the frame without a face)."""
    if not obs.has_face:
        return ErrorCode.TOO_DARK if brightness < g.min_brightness else ErrorCode.NO_FACE
    if obs.num_faces > 1:
        return ErrorCode.MULTIPLE_FACES
    if brightness < g.min_brightness:
        return ErrorCode.TOO_DARK
    if brightness > g.max_brightness:
        return ErrorCode.TOO_BRIGHT
    w, h = frame_size
    lm = obs.landmarks
    if lm is not None:
        cx, cy = lm.mean(axis=0)
        if abs(cx - w / 2) > CENTRE_TOLERANCE * w or abs(cy - h / 2) > CENTRE_TOLERANCE * h:
            return ErrorCode.FACE_NOT_CENTRED
    if obs.face_width < MIN_FACE_FRACTION * min(h, w):
        return ErrorCode.FACE_TOO_SMALL
    return None


def quality_score(landmarks: NDArray[np.float32] | None, sharpness: float, brightness: float, base_ear: float) -> float:
    """0..1: frontal, eyes open, mouth closed, sharp, well lit. ``landmarks``: (68, 2) pixels."""
    if landmarks is None:
        return 0.0
    lm = landmarks
    frontal = max(0.0, 1.0 - abs(geometry.yaw_ratio(lm)) / 0.5)
    ear = geometry.eye_aspect_ratio(lm)
    eyes = min(1.0, ear / base_ear) if base_ear > 0 and not np.isnan(base_ear) else 1.0
    mouth = max(0.2, 1.0 - max(0.0, geometry.mouth_aspect_ratio(lm) - 0.15))
    sharp = min(1.0, sharpness / 150.0)
    light = 1.0 - min(1.0, abs(brightness - 125.0) / 125.0)
    return float(frontal * eyes**2 * mouth * (0.3 + 0.7 * sharp) * (0.5 + 0.5 * light))


def pick_best(quality: Sequence[float], k: int, break_at: Sequence[int]) -> tuple[list[int], list[int]]:
    """Which frames to embed: positions (into ``quality``, frames in capture order) of the best
    frame of each of ``k`` consecutive time segments (so a swap mid-session is seen), and the
    frames on both sides of each tracking break (``break_at``: positions where the face jumped)."""
    k = max(1, min(k, len(quality)))
    segs = np.array_split(np.arange(len(quality)), k)
    best = [int(max(seg, key=lambda j: quality[j])) for seg in segs if len(seg)]
    extra: list[int] = []
    for j in break_at:
        extra += [x for x in (j - 1, j) if 0 <= x < len(quality) and x not in best and x not in extra]
    return best, extra
