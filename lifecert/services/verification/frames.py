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
from lifecert.engine.eyes import eye_patches
from lifecert.engine.image import decode_image
from lifecert.engine.liveness import RIGID_IDX, FrameObs
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


# Landmark tracking between detections (dlib: HOG ~14 ms a frame at 320 px, the 68-point fit in a
# given box ~2.5 ms). The first frame of a chunk is always detected, then one in REDETECT_EVERY; the
# frames between fit the landmarks in the last detected box moved with the face. A fit that jumps
# (the face moved fast, turned, left) is thrown away and that frame is detected instead.
REDETECT_EVERY = 4
TRACK_MAX_SHIFT = 0.25  # landmark centre moved more than this x face width since the previous frame
TRACK_MAX_SCALE = 0.2  # face width (jaw to jaw) changed by more than this fraction
TRACK_MAX_SHAPE = 0.08  # rigid landmarks moved (translation removed) more than this x face width on average


def _jaw_width(lm: NDArray[np.float32]) -> float:
    return max(float(np.linalg.norm(lm[16] - lm[0])), 1e-6)


def track_consistent(prev: NDArray[np.float32], new: NDArray[np.float32]) -> bool:
    """Is ``new`` (68, 2) a plausible next position of ``prev`` (68, 2) one frame later? Pure geometry:
    the centre moved less than TRACK_MAX_SHIFT face widths, the width changed less than TRACK_MAX_SCALE
    and the rigid points (jaw, brows, nose, eye corners) kept their shape within TRACK_MAX_SHAPE."""
    w = _jaw_width(prev)
    if abs(_jaw_width(new) / w - 1.0) > TRACK_MAX_SCALE:
        return False
    a, b = prev[RIGID_IDX], new[RIGID_IDX]
    shift = b.mean(axis=0) - a.mean(axis=0)
    if float(np.linalg.norm(shift)) > TRACK_MAX_SHIFT * w:
        return False
    return float(np.linalg.norm(b - shift - a, axis=1).mean()) <= TRACK_MAX_SHAPE * w


def shifted(face: Face, dx: float, dy: float) -> Face:
    """``face`` found in a crop whose top-left corner is (dx, dy) of the frame, in the frame's pixels."""
    d2 = np.array([dx, dy], np.float32)
    return Face(box=(face.box + np.array([dx, dy, dx, dy], np.float32)).astype(np.float32), score=face.score,
                landmarks5=(face.landmarks5 + d2).astype(np.float32),
                landmarks68=None if face.landmarks68 is None else (face.landmarks68 + d2).astype(np.float32))


def far_applies(engine: FaceEngine, image: ImageBGR) -> bool:
    """Does :func:`detect_far` see more than the plain detector: is the frame shrunk for detection?"""
    h, w = image.shape[:2]
    return max(w, h) > engine.detect_max_side and min(w, h) >= 64


def detect_far(engine: FaceEngine, image: ImageBGR) -> list[Face]:
    """Faces too small for the engine's shrunk detection copy: the detector on the frame's central square
    of ``engine.detect_max_side`` pixels, at full resolution (dlib's HOG finds no box under ~53 px of the
    copy, about 0.22 of a 480 px wide frame on the 320 px copy). Empty when the frame is not shrunk for
    detection (the plain detector already saw it at full resolution). Boxes and landmarks in frame pixels.

    A pensioner with presbyopia holds the phone at arm's length to read it: the face is small but in the
    middle of the picture (the page's oval). Found, it gets FACE_TOO_SMALL ("请靠近一点") instead of
    NO_FACE ("没有看到您的脸"), or passes when it is not too small (MIN_FACE_FRACTION)."""
    if not far_applies(engine, image):
        return []
    h, w = image.shape[:2]
    side = min(w, h, engine.detect_max_side)
    x0, y0 = (w - side) // 2, (h - side) // 2
    found = engine.detect(np.ascontiguousarray(image[y0:y0 + side, x0:x0 + side]))
    return [shifted(f, x0, y0) for f in found]


def observe(
    engine: FaceEngine, infos: Sequence[FrameInfo], redetect_every: int = REDETECT_EVERY, *, eyes: bool = True
) -> int:
    """Landmarks (and with ``eyes`` the eye patches) of the main face on every frame of one chunk (fills
    ``obs``, ``face``, stats), detecting on the first frame and every ``redetect_every``-th, tracking between
    (see REDETECT_EVERY; 1 = detect every frame). A tracked frame keeps the face count of the last detection.
    Where the detector finds nothing, :func:`detect_far` looks for a small face in the middle: once per chunk,
    and on every later detection of the chunk once it found one (a far face stays far for a second).
    Returns how many detector runs the chunk took (a far look counts as one)."""
    anchor: Face | None = None  # the last detected face
    count = 0  # faces found by that detection
    prev: NDArray[np.float32] | None = None  # landmarks of the previous frame
    since = 0  # frames since the last detection
    detections = 0
    far_tried = far = False  # looked for a far face in this chunk; the last look found one
    for f in infos:
        f.frame_brightness = float(cv2.cvtColor(f.image, cv2.COLOR_BGR2GRAY).mean())
        face: Face | None = None
        if anchor is not None and prev is not None and anchor.landmarks68 is not None and since < redetect_every:
            moved = prev.mean(axis=0) - anchor.landmarks68.mean(axis=0)
            box = (anchor.box + np.concatenate([moved, moved])).astype(np.float32)
            fit = engine.landmarks_at(f.image, box)
            if fit is not None and fit.landmarks68 is not None and track_consistent(prev, fit.landmarks68):
                face = fit
                since += 1
        if face is None:
            detections += 1
            faces = engine.detect(f.image)
            if not faces and (far or not far_tried) and far_applies(engine, f.image):
                far_tried = True
                faces = detect_far(engine, f.image)
                detections += 1
                far = bool(faces)
            anchor, prev, since = (faces[0], faces[0].landmarks68, 1) if faces else (None, None, 0)
            if not faces:
                continue
            face, count = faces[0], count_significant(faces)
        prev = face.landmarks68
        # The eye patches for blinks the landmarks miss (lifecert.engine.eyes; two tiny warps).
        lm = face.landmarks68
        f.obs = FrameObs(f.t_ms, lm, face.box, count, None if lm is None or not eyes else eye_patches(f.image, lm))
        f.face = face
        f.sharpness, f.brightness = face_region_stats(f.image, face.box)
    return detections


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


# pitch_ratio away from the person's own rest (the settle step's) at which a frame counts as not frontal at all.
# A nod's peak frame is not a face to embed: benchmarks/camera_sweep.py (session 13) saw two genuine sessions go to
# REVIEW as DIFFERENT_PERSONS because the nod step's best frame was the nod's peak (pitch +0.25-0.30 over rest;
# the other best frame frontal; similarity 0.90 / 0.93 against the 0.93 threshold). Rest frames wander by ~0.05.
PITCH_SPAN = 0.25


def quality_score(landmarks: NDArray[np.float32] | None, sharpness: float, brightness: float, base_ear: float,
                  base_pitch: float = float("nan")) -> float:
    """0..1: frontal (yaw; and pitch near ``base_pitch``, the person's rest pitch_ratio, when known), eyes open,
    mouth closed, sharp, well lit. ``landmarks``: (68, 2) pixels."""
    if landmarks is None:
        return 0.0
    lm = landmarks
    frontal = max(0.0, 1.0 - abs(geometry.yaw_ratio(lm)) / 0.5)
    if not np.isnan(base_pitch):
        frontal *= max(0.0, 1.0 - abs(geometry.pitch_ratio(lm) - base_pitch) / PITCH_SPAN)
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
