"""Is the face a flat picture? Nose parallax against the plane of the face's outline.

A head is not flat: its nose stands some 0.3-0.4 face widths in front of the plane of the jaw
line, brows and eye corners, so when the head turns or nods the nose moves off where a planar
mapping (homography) of that outline sends it, by about depth × angle. A printed photo (or a
screen) held, tilted or bent in front of the camera keeps the nose on the outline's plane: the
homography of the outline predicts the nose to within landmark noise.

Statistic (per session): over frame pairs whose rigid landmarks moved at least ``min_motion``
face widths beyond the best similarity transform (a turn, a nod, a tilt — not a mere shift or
zoom), the nose's residual against the outline's homography divided by that motion; the median
over the pairs. LOW = planar. The test abstains (``decided`` False) when it has too little motion to
judge: fewer than MIN_PAIRS moving pairs, or moving pairs that all share ONE frame — then the only
"motion" is that single frame (a landmark glitch or a one-frame jolt of an otherwise still face), and
the ratio is one frame's noise over a near-noise motion, not a pose change (see ``one_odd_frame``).
Measured on REAL captures only by ``benchmarks/flat_eval.py`` (benchmarks/README.md, ``flat``
section): NUAA printed photos held to a camera vs NUAA live people, apfol live and the two real
video clips; the abstain rule also by ``benchmarks/flat_cache.py`` (section ``flat_cache``) on
pad_eval's cached sessions of every kind. The cut-off :data:`PARALLAX_CUT` and its
measured rates are recorded there and below; the engine's older homography-residual test
(lifecert.engine.liveness.flat_check) did not separate the same prints.

Landmarks: (68, 2) image pixels (dlib 68-point order). Pure numpy + cv2.findHomography.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from lifecert.engine.liveness import RIGID_IDX, FrameObs

OUTLINE_IDX = np.array([*range(0, 17), *range(17, 27), 36, 39, 42, 45], dtype=np.int64)  # jaw, brows, eye corners
NOSE_IDX = np.arange(27, 36, dtype=np.int64)  # bridge and base of the nose
MIN_MOTION = 0.01  # face widths left after the similarity fit: above dlib's landmark noise on 150-px crops
MIN_PAIRS = 3
MAX_FRAMES = 20  # evenly spaced face frames used (190 pairs): bounded cost on long sessions
# From benchmarks/flat_eval.py (2026-11-30, benchmarks/README.md `flat`), REAL captures: AUC 0.98 (genuine
# value > print value; 77/80 NUAA print sessions and 35/38 live sessions decided). The cut is the
# calibration half's lowest genuine value (genuine false alarms there 0 ≤ 3 %); on the other half it fired
# on 48 % [32-64] of the prints (19/40) and 0 % [0-17] of the genuine sessions (0/20). Over all sessions a
# cut of 1.0 would fire on 72/80 prints and 1/38 genuine — chosen after seeing everything, so not shipped.

PARALLAX_CUT = 0.71


@dataclass(frozen=True)
class PlanarityCheck:
    """``decided`` False when fewer than MIN_PAIRS frame pairs had enough non-similarity motion."""

    decided: bool
    flat: bool
    parallax: float | None = None  # median nose residual / motion over the moving pairs
    pairs: int = 0  # moving pairs used
    motion: float | None = None  # median motion of those pairs (face widths)


def similarity_residual(a: NDArray[np.float64], b: NDArray[np.float64]) -> float:
    """Mean distance (pixels) left after the least-squares similarity transform a → b (Umeyama)."""
    ma, mb = a.mean(axis=0), b.mean(axis=0)
    ac, bc = a - ma, b - mb
    va = float((ac**2).sum())
    if va <= 1e-12:
        return float(np.linalg.norm(bc, axis=1).mean())
    cov = bc.T @ ac / len(a)
    u, d, vt = np.linalg.svd(cov)
    s = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        s[1, 1] = -1.0
    rot = u @ s @ vt
    scale = float(np.trace(np.diag(d) @ s)) / (va / len(a))
    pred = scale * ac @ rot.T + mb
    return float(np.linalg.norm(pred - b, axis=1).mean())


def nose_residual(a: NDArray[np.float64], b: NDArray[np.float64]) -> float | None:
    """Mean distance (pixels) between the nose points of ``b`` and where the homography of the
    outline points a → b sends the nose points of ``a``; None when no homography fits."""
    h, _ = cv2.findHomography(a[OUTLINE_IDX], b[OUTLINE_IDX], 0)
    if h is None:
        return None
    pred = cv2.perspectiveTransform(a[NOSE_IDX].reshape(-1, 1, 2), h).reshape(-1, 2)
    return float(np.linalg.norm(pred - b[NOSE_IDX], axis=1).mean())


def one_odd_frame(pairs: Sequence[tuple[int, int]]) -> bool:
    """True when one frame index is in every pair: all the "motion" is that one frame against the rest.

    Measured on pad_eval's cache (benchmarks/flat_cache.py): the one genuine session the parallax test
    called flat (REAL NUAA live crop 0004_01_00_02: 3 moving pairs, all against frame 5, median motion
    0.011 face widths, just over MIN_MOTION) abstains under this rule, while no REAL NUAA print the test
    caught is lost (their motion spans several frames)."""
    if not pairs:
        return False
    common = set(pairs[0])
    for p in pairs[1:]:
        common &= set(p)
    return bool(common)


def nose_parallax(
    frames: Sequence[FrameObs], *, min_motion: float = MIN_MOTION, cut: float = PARALLAX_CUT,
    max_frames: int = MAX_FRAMES, one_frame_abstains: bool = True,
) -> PlanarityCheck:
    """The session's planarity (see the module docstring); ``flat`` when decided and below ``cut``.
    ``one_frame_abstains`` False = the rule before 2026-11-30 (kept for benchmarks/flat_cache.py's comparison)."""
    lms = [np.asarray(f.landmarks, np.float64) for f in frames if f.landmarks is not None]
    if len(lms) > max_frames:
        keep = np.linspace(0, len(lms) - 1, max_frames).round().astype(int)
        lms = [lms[i] for i in keep]
    ratios, motions = [], []
    members: list[tuple[int, int]] = []
    for i in range(len(lms)):
        for j in range(i + 1, len(lms)):
            a, b = lms[i], lms[j]
            fw = max(float(np.linalg.norm(a[16] - a[0])), 1e-6)
            motion = similarity_residual(a[RIGID_IDX], b[RIGID_IDX]) / fw
            if motion < min_motion:
                continue
            nose = nose_residual(a, b)
            if nose is None:
                continue
            ratios.append(nose / fw / motion)
            motions.append(motion)
            members.append((i, j))
    if len(ratios) < MIN_PAIRS or (one_frame_abstains and one_odd_frame(members)):
        return PlanarityCheck(False, False, None, len(ratios))
    value = float(np.median(ratios))
    return PlanarityCheck(True, value < cut, value, len(ratios), float(np.median(motions)))
