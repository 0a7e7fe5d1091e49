"""Does the chin drop when the lips part? The open_mouth step against a cut-out print.

A mouth opens by the jaw: the mandible swings down about its joint by the ear, and the lower lip
and the chin go down with it. On a living face the chin's drop (from the eye line, along the face's
vertical) is of the order of the inner-lip gap's growth. A "cut-out print" (ISO/IEC 30107's cut
photo: the pensioner's printed photo with the mouth cut out, the attacker's own moving lips behind
the hole) parts its lips inside the hole while the printed chin stays where it was printed.

Statistic (per session, on the open_mouth step's frames): for each frame whose inner-lip MAR reached
the step's threshold, the chin's drop since the mouth was at rest divided by the inner-lip gap's
growth (both along the axis perpendicular to the eye line, in inter-ocular distances — turns and
distance cancel in the ratio); the median over those frames. LOW = lips moving over a still chin.
"At rest": the step's own frames with the mouth closed (MAR under the baseline + REST_MAR), else the
session's near-frontal closed-mouth frames. The test abstains without an opened frame or two rest
frames.

Measured (benchmarks/jaw_eval.py, benchmarks/README.md ``jaw``): REAL deliberate openings of 14
people (Yale "surprised" against their own neutral photo), REAL speech openings (talking_head_a) and
the synthetic openings the genuine benchmarks draw, against the cut-out prints of
benchmarks/cutout.py (SYNTHETIC print, REAL attacker lips). dlib's 68-point fit moves a printed chin
down with the lips in some sessions (its cascade moves the whole shape): the test catches the cut-out
prints whose chin stays put, not all of them.

Landmarks: (68, 2) image pixels (dlib 68-point order). Pure numpy; microseconds per session.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from lifecert.engine import geometry
from lifecert.engine.liveness import FrameObs

REST_MAR = 0.06  # a frame is "at rest" when its MAR is at most the baseline's + this
REST_MAX_YAW = 0.10  # session-wide rest frames: yaw_ratio within this of the baseline ...
REST_MAX_PITCH = 0.03  # ... and pitch_ratio within this (the settle step's frontal face)
MIN_GAP_GROWTH = 0.05  # inter-ocular distances: an opened frame counts only if its gap grew at least this
# Median chin drop / gap growth below JAW_CUT: the lips moved over a still chin. Chosen AFTER seeing all of these
# (no held-out half; benchmarks/jaw_eval.py): REAL deliberate openings (Yale "surprised", 12 people) 0.77-1.29,
# REAL speech openings in production's paced sessions (talking_head_a, cutout.py's 60 controls) 0.83-1.09; the
# cut-out prints' open_mouth steps (cutout.py, 148 sessions, SYNTHETIC prints) median ~0.35, 98/148 under 0.45,
# and 3 of the 5 cut-out prints production CONFIRMED (-0.01, 0.29, 0.34; the other two 0.67, 1.19).
JAW_CUT = 0.45


@dataclass(frozen=True)
class JawCheck:
    decided: bool
    still_chin: bool  # decided and ratio < JAW_CUT
    ratio: float | None  # median chin drop / inner-lip gap growth over the opened frames
    opened: int  # opened frames used
    rest: int  # rest frames used
    rest_from: str  # "step" or "session"

    def as_dict(self) -> dict[str, object]:
        return {
            "decided": self.decided,
            "still_chin": self.still_chin,
            "ratio": None if self.ratio is None else round(self.ratio, 4),
            "opened": self.opened,
            "rest": self.rest,
            "rest_from": self.rest_from,
            "cut": JAW_CUT,
        }


def chin_and_gap(lm68: NDArray[np.floating]) -> tuple[float, float]:
    """(chin below the nose's base, inner-lip gap) along the face's vertical (perpendicular to the eye line), in
    inter-ocular distances. From the nose's base rather than the eyes: a head tilted back or forward while the mouth
    opens shortens the chin's distance from the eyes twice as much (the chin is ~2 inter-ocular distances below the
    eyes, ~1.1 below the nose)."""
    lm = np.asarray(lm68, np.float64)
    left, right = lm[36:42].mean(axis=0), lm[42:48].mean(axis=0)
    across = right - left
    iod = max(float(np.linalg.norm(across)), 1e-6)
    down = np.array([-across[1], across[0]]) / iod
    if down[1] < 0:  # image y grows downward
        down = -down
    return float(np.dot(lm[8] - lm[33], down) / iod), float(np.dot(lm[66] - lm[62], down) / iod)


def _usable(frames: Sequence[FrameObs]) -> list[NDArray[np.float32]]:
    return [f.landmarks for f in frames if f.landmarks is not None and f.num_faces == 1]


def jaw_follows(
    step_frames: Sequence[FrameObs],
    session_frames: Sequence[FrameObs],
    base_mar: float,
    base_yaw: float,
    base_pitch: float,
    open_mar: float,
) -> JawCheck:
    """The test on the open_mouth step's frames (``step_frames``) with the session's frames as the fallback
    for rest frames. ``base_*``: the settle step's baseline; ``open_mar``: the step's threshold (what
    judge_challenge counted as open)."""
    lms = _usable(step_frames)
    mar = np.array([geometry.mouth_aspect_ratio(lm) for lm in lms])
    rest_cut = base_mar + REST_MAR
    opened = [lm for lm, m in zip(lms, mar, strict=True) if m >= open_mar]
    rest = [lm for lm, m in zip(lms, mar, strict=True) if m <= rest_cut]
    rest_from = "step"
    if len(rest) < 2:
        rest_from = "session"
        rest = [
            lm
            for lm in _usable(session_frames)
            if geometry.mouth_aspect_ratio(lm) <= rest_cut
            and abs(geometry.yaw_ratio(lm) - base_yaw) <= REST_MAX_YAW
            and abs(geometry.pitch_ratio(lm) - base_pitch) <= REST_MAX_PITCH
        ]
    if not opened or len(rest) < 2:
        return JawCheck(False, False, None, len(opened), len(rest), rest_from)
    at_rest = np.array([chin_and_gap(lm) for lm in rest])
    chin0, gap0 = np.median(at_rest, axis=0)
    ratios = []
    for lm in opened:
        chin, gap = chin_and_gap(lm)
        if gap - gap0 >= MIN_GAP_GROWTH:
            ratios.append((chin - chin0) / (gap - gap0))
    if not ratios:
        return JawCheck(False, False, None, 0, len(rest), rest_from)
    ratio = float(np.median(ratios))
    return JawCheck(True, ratio < JAW_CUT, ratio, len(ratios), len(rest), rest_from)
