"""Build the fake camera for Chromium (``--use-file-for-fake-video-capture=<file>.y4m``) from real face frames.

Frames come from a real talking-head video and are chosen by what the engine measures on them
(eye aspect ratio, mouth aspect ratio), never by hard-coded frame numbers:

* neutral  — eyes open, mouth closed: the longest run of such consecutive frames, played back and forth;
* blink    — the video's deepest blink (a run of frames with the eyes closed), with the closed eyes held
             long enough that a capture at 5–10 fps sees them in several frames;
* open_mouth — the widest mouth opening with the eyes open, held the same way.

Timeline: Chromium starts the file at frame 0 when the page opens the camera and loops it; the page starts
its capture clock right after the first camera frame plays, a little *after* the file started (``delta`` ms,
typically a few hundred). The file lasts exactly ``lead_in + n * window`` so that a loop lines up with the
session. Each challenge's action is centred in its window (shifted by ``EXPECTED_DELTA_MS``) and everything
else is neutral, so the capture lands right for any ``delta`` from 0 to about one second.

Y4M is written by hand: ``YUV4MPEG2 W.. H.. F<fps>:1 Ip A1:1 C420jpeg`` then ``FRAME\\n`` + I420 planes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from lifecert.engine import geometry
from lifecert.engine.base import FaceEngine

SUPPORTED_CHALLENGES = ("blink", "open_mouth")
EXPECTED_DELTA_MS = 100  # typical lag between the file's first frame and the page's capture start
NEUTRAL_MIN_EAR = 0.33
NEUTRAL_MAX_MAR = 0.13
CLOSED_MAX_EAR = 0.20
OPEN_MIN_EAR = 0.30  # eyes open while the mouth opens
BLINK_HOLD_MS = 450  # closed eyes held this long (a capture at 8 fps sees 3–4 frames)
MOUTH_HOLD_MS = 1100
NOISE_SIGMA = 1.5  # grey levels; real sensors never deliver two identical frames


@dataclass(frozen=True, slots=True)
class FrameScore:
    """Measurements of one source frame (``index`` in the source video; ratios from the 68 landmarks)."""

    index: int
    ear: float
    mar: float
    yaw: float


@dataclass(frozen=True, slots=True)
class Timeline:
    """The session's timeline as the API hands it out (milliseconds)."""

    lead_in_ms: int
    challenge_window_ms: int
    challenges: tuple[str, ...]

    @property
    def total_ms(self) -> int:
        return self.lead_in_ms + len(self.challenges) * self.challenge_window_ms


def read_frames(video: Path) -> list[NDArray[np.uint8]]:
    """All frames of ``video`` as (H, W, 3) uint8 BGR."""
    cap = cv2.VideoCapture(str(video))
    frames = []
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            frames.append(frame)
    finally:
        cap.release()
    if not frames:
        raise ValueError(f"no frames could be read from {video}")
    return frames


def score_frames(engine: FaceEngine, frames: Sequence[NDArray[np.uint8]]) -> list[FrameScore | None]:
    """Eye/mouth aspect ratios and yaw per frame; None where no face with 68 landmarks is found."""
    out: list[FrameScore | None] = []
    for i, frame in enumerate(frames):
        faces = engine.detect(frame)
        if not faces or faces[0].landmarks68 is None:
            out.append(None)
            continue
        lm = faces[0].landmarks68
        out.append(
            FrameScore(i, geometry.eye_aspect_ratio(lm), geometry.mouth_aspect_ratio(lm), geometry.yaw_ratio(lm))
        )
    return out


def _is_neutral(s: FrameScore | None) -> bool:
    return s is not None and s.ear >= NEUTRAL_MIN_EAR and s.mar <= NEUTRAL_MAX_MAR


def neutral_run(scores: Sequence[FrameScore | None]) -> list[int]:
    """The longest run of consecutive neutral frames (eyes open, mouth closed)."""
    best: list[int] = []
    run: list[int] = []
    for s in scores:
        if s is not None and _is_neutral(s):
            run.append(s.index)
            if len(run) > len(best):
                best = list(run)
        else:
            run = []
    if len(best) < 4:
        raise ValueError("the video has no run of at least 4 neutral frames")
    return best


def blink_frames(scores: Sequence[FrameScore | None]) -> tuple[list[int], list[int], list[int]]:
    """(closing, closed, opening) source indices of the deepest blink."""
    valid = [s for s in scores if s is not None]
    closed_all = [s for s in valid if s.ear < CLOSED_MAX_EAR]
    if not closed_all:
        raise ValueError("the video has no frame with closed eyes")
    deepest = min(closed_all, key=lambda s: s.ear)
    closed = [deepest.index]
    i = deepest.index - 1
    while i >= 0 and scores[i] is not None and scores[i].ear < CLOSED_MAX_EAR:  # type: ignore[union-attr]
        closed.insert(0, i)
        i -= 1
    closing = [j for j in range(max(0, i - 1), i + 1) if scores[j] is not None]
    j = deepest.index + 1
    while j < len(scores) and scores[j] is not None and scores[j].ear < CLOSED_MAX_EAR:  # type: ignore[union-attr]
        closed.append(j)
        j += 1
    opening = [k for k in range(j, min(len(scores), j + 2)) if scores[k] is not None]
    return closing, closed, opening


def mouth_frames(scores: Sequence[FrameScore | None]) -> tuple[list[int], list[int], list[int]]:
    """(opening, open, closing) source indices around the widest mouth opening with the eyes open."""
    valid = [s for s in scores if s is not None and s.ear >= OPEN_MIN_EAR]
    peak = max(valid, key=lambda s: s.mar)
    # Frames near the peak that are also clearly open (at least 70 % of the peak) form the held phase.
    near = [
        s.index for s in valid
        if abs(s.index - peak.index) <= 2 and s.mar >= 0.7 * peak.mar
    ]
    lo, hi = min(near), max(near)
    opening = [k for k in range(max(0, lo - 2), lo) if scores[k] is not None]
    closing = [k for k in range(hi + 1, min(len(scores), hi + 3)) if scores[k] is not None]
    return opening, near, closing


def used_frames(scores: Sequence[FrameScore | None]) -> set[int]:
    """Every source frame the fake camera may show (to keep the enrollment photo out of it)."""
    used = set(neutral_run(scores))
    for part in (*blink_frames(scores), *mouth_frames(scores)):
        used.update(part)
    return used


def _hold(indices: list[int], n: int) -> list[int]:
    """``n`` indices cycling back and forth through ``indices`` (a held pose that still moves a little)."""
    if len(indices) == 1:
        return indices * n
    cycle = indices + indices[-2:0:-1]
    return [cycle[k % len(cycle)] for k in range(n)]


def plan(scores: Sequence[FrameScore | None], timeline: Timeline, fps: int) -> list[int]:
    """Source frame index for every output frame of the looped file (``total_ms * fps / 1000`` frames)."""
    for c in timeline.challenges:
        if c not in SUPPORTED_CHALLENGES:
            raise ValueError(f"the talking-head video cannot act out '{c}' (supported: {SUPPORTED_CHALLENGES})")
    n_out = round(timeline.total_ms * fps / 1000)
    neutral = neutral_run(scores)
    out = _hold(neutral, n_out)
    ms_per_frame = 1000.0 / fps
    for k, name in enumerate(timeline.challenges):
        if name == "blink":
            before, held, after = blink_frames(scores)
            hold_ms = BLINK_HOLD_MS
        else:
            before, held, after = mouth_frames(scores)
            hold_ms = MOUTH_HOLD_MS
        action = before + _hold(held, max(1, round(hold_ms / ms_per_frame))) + after
        centre_ms = timeline.lead_in_ms + (k + 0.5) * timeline.challenge_window_ms + EXPECTED_DELTA_MS
        start = round(centre_ms / ms_per_frame) - len(action) // 2
        out[start : start + len(action)] = action
    return out[:n_out]


def write_y4m(path: Path, frames: Sequence[NDArray[np.uint8]], fps: int) -> None:
    """Write (H, W, 3) uint8 BGR frames (even W and H) as an uncompressed 4:2:0 Y4M file."""
    h, w = frames[0].shape[:2]
    if h % 2 or w % 2:
        raise ValueError("Y4M 4:2:0 needs an even width and height")
    with path.open("wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode("ascii"))
        for frame in frames:
            if frame.shape[:2] != (h, w):
                raise ValueError("all frames must have the same size")
            f.write(b"FRAME\n")
            f.write(cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).tobytes())


@dataclass(frozen=True)
class SourceVideo:
    """A decoded video with per-frame measurements (scored once, used for the camera file and enrollment)."""

    frames: list[NDArray[np.uint8]]
    scores: list[FrameScore | None]

    @classmethod
    def load(cls, engine: FaceEngine, video: Path) -> SourceVideo:
        frames = read_frames(video)
        return cls(frames, score_frames(engine, frames))


def build_fake_camera(
    source: SourceVideo, out: Path, timeline: Timeline, *, fps: int = 20, seed: int = 7, gain: float = 1.0
) -> list[int]:
    """Write ``out`` (.y4m) acting out ``timeline``; returns the source frame index of every output frame.

    ``gain`` scales every pixel (below 1: a dim room) before the sensor noise is added.
    """
    order = plan(source.scores, timeline, fps)
    rng = np.random.default_rng(seed)
    noisy = []
    for idx in order:
        frame = source.frames[idx].astype(np.float32) * gain
        noise = rng.normal(0.0, NOISE_SIGMA, frame.shape)
        noisy.append(np.clip(frame + noise, 0, 255).astype(np.uint8))
    write_y4m(out, noisy, fps)
    return order


def enrollment_frame(source: SourceVideo, avoid: Sequence[int]) -> NDArray[np.uint8]:
    """The most open-eyed neutral frame that the fake camera does not show (the 'ID photo' stand-in), BGR."""
    used = set(avoid)
    candidates = [s for s in source.scores if s is not None and _is_neutral(s) and s.index not in used]
    if not candidates:
        raise ValueError("no unused neutral frame for enrollment")
    return source.frames[max(candidates, key=lambda s: s.ear).index]
