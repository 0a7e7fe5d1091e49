"""Active liveness on a sequence of 68-point landmark sets: challenges, still and flat photos.

Input is one :class:`FrameObs` per uploaded frame, in capture order, with the client
timestamp in milliseconds and the main face's iBUG-68 landmarks in source-image pixels
(x to the image's right, y down). Frames are the camera's UNMIRRORED images: when the
pensioner turns to their own left, the nose moves toward the image's right, so
:func:`lifecert.engine.geometry.yaw_ratio` grows (> 0).

Everything here is pure numpy/OpenCV on landmarks — no model calls — so it is cheap
enough to run on every frame. Thresholds live in :class:`LivenessParams`.

Timeline (the API contract): frames with ``t < lead_in_ms`` are the neutral lead-in
(they give the pensioner's own open-eye, mouth and pose baselines); challenge k is
shown from ``lead_in + k*window`` to ``lead_in + (k+1)*window`` and must be seen in
that window, ``slack_ms`` allowed at both ends.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from lifecert.engine import eyes, geometry

KNOWN_CHALLENGES = ("blink", "turn_left", "turn_right", "open_mouth", "nod")

# Landmarks that move little with expressions (jaw line, brows, nose, eye corners):
# the flat-photo test fits a homography to these, so a blink or a smile does not look "3D".
RIGID_IDX = np.array([*range(0, 17), *range(17, 27), *range(27, 36), 36, 39, 42, 45], dtype=np.int64)


@dataclass(frozen=True)
class LivenessParams:
    """Thresholds; ratios are relative to the pensioner's own lead-in baseline."""

    slack_ms: int = 500
    # blink_drop: benchmarks/blink_sampling.py, REAL clips sampled at the page's 8 fps: one clip's shallow
    # blinks bottom out at 0.74-0.86 of the open-eye EAR, so 0.75 catches 2 of 72 blink x phase samples of
    # that person (0.85 would catch 22). 0.85 was tried and reverted: a talking face's EAR dips that far
    # without a blink (tests/integration/test_verification_paced.py: the neutral talking-head frames then
    # read as a blink 262 ms after the prompt). dlib's eye landmarks cannot tell those apart at 8 fps.
    blink_drop: float = 0.75  # EAR must fall below blink_drop * open-eye baseline ...
    blink_recover: float = 0.85  # ... and come back above blink_recover * baseline
    blink_min_abs_drop: float = 0.05  # and fall by at least this much in absolute EAR
    # A blink in the PIXELS of both eyes (lifecert.engine.eyes.closure_dip), for blinks the eyelid landmarks
    # miss: a frame whose eye patches differ by more than eye_cut (1 - correlation, both eyes) from an
    # open-eye frame before it (EAR at rest) and from a frame after it that looks like that one again
    # (each eye within eye_back), all within eye_span_ms; the closed frame's EAR at least eye_min_ear_drop
    # below the open one's (the lids do move a little) and the head's pose held (yaw_ratio within eye_max_yaw,
    # pitch_ratio within eye_max_pitch): a static photo whose landmark fit jumps, or a turn, changes the
    # patches too, but not that way. benchmarks/blink_sampling.py (REAL clips at 8 fps, eye_cut 0.10): the
    # shallow blinker's blinks caught 2 -> 48 of 72 (EAR or pixels), no pixel fire on real open-eye footage
    # or warped turns/nods, 0 of 24 synthetic prints, but 1 of 24 synthetic phone-screen stills fired. ON:
    # a still that "blinks" still has to act the head-motion challenge every session holds (and pass PAD);
    # benchmarks/pad_eval.py judges its acted sessions with it (genuine missed blinks, cued replays passed).
    # None = EAR alone.
    eye_cut: float | None = 0.10
    eye_back: float = 0.15
    eye_span_ms: int = 750
    eye_min_ear_drop: float = 0.03
    eye_max_yaw: float = 0.05
    eye_max_pitch: float = 0.03
    turn_yaw: float = 0.22  # yaw_ratio change from baseline (half face widths)
    turn_back: float = 0.5  # "back": within turn_back * turn_yaw of the baseline
    mouth_open_abs: float = 0.30  # inner-lip MAR must exceed this ...
    mouth_open_delta: float = 0.12  # ... and the lead-in median by this much
    # pitch_ratio change (looking down) from the per-user baseline. benchmarks/liveness_signals.py: people
    # sitting still move it by <= 0.022 (max over two real clips, 8 s windows); genuine elderly nods that
    # failed at 0.05 peaked at 0.047-0.049 (issue 12). A talking clip exceeds 0.073 anyway, so the lower cut
    # costs nothing against replays (those are PAD's and the timing rules' job).
    nod_pitch: float = 0.04
    still_motion: float = 0.004  # max landmark displacement / face width below this: still image
    flat_min_yaw_change: float = 0.12  # pose change needed before the flat-photo test decides
    flat_min_pitch_change: float = 0.04
    flat_residual: float = 0.012  # mean homography residual / face width below this: planar (photo)
    track_max_jump: float = 0.6  # centre jump between consecutive frames / face width
    track_max_scale: float = 1.6  # face width ratio between consecutive frames


@dataclass(frozen=True)
class FrameObs:
    """One frame's main face. ``landmarks``: (68, 2) float32 image pixels or None when no face;
    ``box``: (x1, y1, x2, y2); ``num_faces``: significant faces in the frame; ``eyes``: the eye
    patches of :func:`lifecert.engine.eyes.eye_patches` ((2, H, W) int8), None where not computed."""

    t_ms: int
    landmarks: NDArray[np.float32] | None
    box: NDArray[np.float32] | None = None
    num_faces: int = 0
    eyes: NDArray[np.int8] | None = None

    @property
    def has_face(self) -> bool:
        return self.landmarks is not None

    @property
    def face_width(self) -> float:
        if self.landmarks is None:
            return 0.0
        lm = self.landmarks
        return max(float(np.linalg.norm(lm[16] - lm[0])), 1e-6)


@dataclass(frozen=True)
class Signals:
    """Per-frame measurements, NaN where the frame has no face. Shapes: (N,)."""

    t_ms: NDArray[np.int64]
    ear: NDArray[np.float64]
    mar: NDArray[np.float64]
    yaw: NDArray[np.float64]
    pitch: NDArray[np.float64]
    eyes: tuple[NDArray[np.int8] | None, ...] = ()  # per frame (FrameObs.eyes), () when none has them


@dataclass(frozen=True)
class Baseline:
    ear: float
    mar: float
    yaw: float
    pitch: float
    frames: int  # lead-in frames it came from (0: fell back to the whole sequence)


@dataclass(frozen=True)
class ChallengeResult:
    name: str
    passed: bool
    window_ms: tuple[int, int]
    frames: int  # frames with a face inside the window (with slack)
    peak_t_ms: int | None = None
    peak_value: float | None = None
    baseline: float | None = None
    threshold: float | None = None
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["window_ms"] = list(self.window_ms)
        for k in ("peak_value", "baseline", "threshold"):
            if d[k] is not None:
                d[k] = round(float(d[k]), 4)
        return d


@dataclass(frozen=True)
class FlatCheck:
    """``decided`` False when there was not enough pose change to judge."""

    decided: bool
    flat: bool
    residual: float | None = None
    pose_change: float = 0.0
    pairs: int = 0


@dataclass(frozen=True)
class LivenessReport:
    challenges: list[ChallengeResult]
    still: bool
    motion: float  # max landmark displacement from the first face frame / face width
    flat: FlatCheck
    baseline: Baseline
    track_breaks: list[int] = field(default_factory=list)  # indices i where frame i-1 -> i jumps

    @property
    def all_challenges_passed(self) -> bool:
        return all(c.passed for c in self.challenges)

    def as_dict(self) -> dict[str, Any]:
        return {
            "challenges": [c.as_dict() for c in self.challenges],
            "still": self.still,
            "motion": round(self.motion, 5),
            "flat": {k: (round(v, 5) if isinstance(v, float) else v) for k, v in asdict(self.flat).items()},
            "baseline": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self.baseline).items()},
            "track_breaks": list(self.track_breaks),
        }


# -- signals and baseline ---------------------------------------------------------------


def signals(frames: Sequence[FrameObs]) -> Signals:
    n = len(frames)
    ear = np.full(n, np.nan)
    mar = np.full(n, np.nan)
    yaw = np.full(n, np.nan)
    pitch = np.full(n, np.nan)
    for i, f in enumerate(frames):
        if f.landmarks is None:
            continue
        ear[i] = geometry.eye_aspect_ratio(f.landmarks)
        mar[i] = geometry.mouth_aspect_ratio(f.landmarks)
        yaw[i] = geometry.yaw_ratio(f.landmarks)
        pitch[i] = geometry.pitch_ratio(f.landmarks)
    eye = tuple(f.eyes if f.landmarks is not None else None for f in frames)
    return Signals(np.array([f.t_ms for f in frames], dtype=np.int64), ear, mar, yaw, pitch,
                   eye if any(e is not None for e in eye) else ())


def baseline(sig: Signals, lead_in_ms: int) -> Baseline:
    """Neutral values from the lead-in; the open-eye EAR is a high percentile so that a
    blink during the lead-in does not lower it. Falls back to the whole sequence."""
    lead = (sig.t_ms < lead_in_ms) & ~np.isnan(sig.ear)
    if lead.sum() >= 2:
        return baseline_over(sig, lead)
    return replace(baseline_over(sig, ~np.isnan(sig.ear)), frames=0)


def baseline_over(sig: Signals, use: NDArray[np.bool_]) -> Baseline:
    """Neutral values over the frames ``use`` marks (frames with a face): open-eye EAR as the 75th
    percentile, mouth ratio and head pose as medians; all NaN when ``use`` marks none."""
    if not use.any():
        return Baseline(float("nan"), float("nan"), float("nan"), float("nan"), 0)
    return Baseline(
        ear=float(np.percentile(sig.ear[use], 75)),
        mar=float(np.median(sig.mar[use])),
        yaw=float(np.median(sig.yaw[use])),
        pitch=float(np.median(sig.pitch[use])),
        frames=int(use.sum()),
    )


# -- challenge detectors ----------------------------------------------------------------


def _window(sig: Signals, lo: int, hi: int) -> NDArray[np.int64]:
    idx = np.nonzero((sig.t_ms >= lo) & (sig.t_ms <= hi))[0]
    return idx


def detect_blink(
    sig: Signals, idx: NDArray[np.int64], base: Baseline, p: LivenessParams
) -> tuple[bool, int | None, float | None, float]:
    """EAR dips below ``blink_drop`` x baseline and comes back up. Returns (seen, peak index, min EAR, threshold)."""
    thr = min(p.blink_drop * base.ear, base.ear - p.blink_min_abs_drop)
    rec = p.blink_recover * base.ear
    vals = [(int(i), float(sig.ear[i])) for i in idx if not np.isnan(sig.ear[i])]
    best: tuple[int, float] | None = None
    for k, (i, v) in enumerate(vals):
        if v < thr and any(w >= rec for _, w in vals[k + 1 :]) and (best is None or v < best[1]):
            best = (i, v)
    if best is None:
        low = min(vals, key=lambda x: x[1]) if vals else None
        return False, low[0] if low else None, low[1] if low else None, thr
    return True, best[0], best[1], thr


def detect_blink_pixels(
    sig: Signals, idx: NDArray[np.int64], base: Baseline, p: LivenessParams
) -> tuple[bool, int | None, float | None, float]:
    """A blink in the eye PIXELS (see ``LivenessParams.eye_cut``) among the frames ``idx``, the open-eye
    reference frame at rest by EAR (>= blink_recover x baseline), the closed one with lower lids and the
    same head pose. Returns (seen, index of the closed frame,
    its dip: 1 - correlation, both eyes, eye_cut); (False, None, None, eye_cut or nan) without eye patches."""
    if p.eye_cut is None or not sig.eyes or np.isnan(base.ear):
        return False, None, None, float("nan") if p.eye_cut is None else p.eye_cut
    ids = [int(i) for i in idx]
    rest = [bool(sig.ear[i] >= p.blink_recover * base.ear) for i in ids]

    def held(ka: int, kb: int) -> bool:  # lids a little lower, head pose held (see LivenessParams.eye_cut)
        a, b = ids[ka], ids[kb]
        return bool(sig.ear[b] <= (1.0 - p.eye_min_ear_drop) * sig.ear[a]
                    and abs(sig.yaw[b] - sig.yaw[a]) <= p.eye_max_yaw
                    and abs(sig.pitch[b] - sig.pitch[a]) <= p.eye_max_pitch)

    got = eyes.closure_dip([sig.eyes[i] for i in ids], [int(sig.t_ms[i]) for i in ids], cut=p.eye_cut,
                           back=p.eye_back, span_ms=p.eye_span_ms, ref_ok=rest, pair_ok=held)
    if got is None:
        return False, None, None, p.eye_cut
    return True, ids[got[1]], got[2], p.eye_cut


def detect_blink_any(
    sig: Signals, idx: NDArray[np.int64], base: Baseline, p: LivenessParams
) -> tuple[bool, int | None, float | None, float, str]:
    """The blink test: the EAR dip (:func:`detect_blink`), else the pixel dip (:func:`detect_blink_pixels`).
    The last item names the signal that decided ("ear" or "eye_pixels"; "ear" when neither saw one)."""
    ok, i, v, thr = detect_blink(sig, idx, base, p)
    if not ok:
        pok, pi, pv, pthr = detect_blink_pixels(sig, idx, base, p)
        if pok:
            return True, pi, pv, pthr, "eye_pixels"
    return ok, i, v, thr, "ear"


def detect_turn(
    sig: Signals, idx: NDArray[np.int64], base: Baseline, p: LivenessParams, direction: str
) -> tuple[bool, int | None, float | None, float]:
    """Yaw beyond ``turn_yaw`` in the asked direction, then back toward the baseline.

    ``direction``: "left" or "right", the PENSIONER's own side. Their left moves the nose
    toward the unmirrored image's right: yaw_ratio - baseline > 0.
    """
    sign = 1.0 if direction == "left" else -1.0
    vals = [(int(i), sign * (float(sig.yaw[i]) - base.yaw)) for i in idx if not np.isnan(sig.yaw[i])]
    back = p.turn_back * p.turn_yaw
    best: tuple[int, float] | None = None
    for k, (i, v) in enumerate(vals):
        if v > p.turn_yaw and any(w < back for _, w in vals[k + 1 :]) and (best is None or v > best[1]):
            best = (i, v)
    if best is None:
        top = max(vals, key=lambda x: x[1]) if vals else None
        return False, top[0] if top else None, top[1] if top else None, p.turn_yaw
    return True, best[0], best[1], p.turn_yaw


def detect_open_mouth(
    sig: Signals, idx: NDArray[np.int64], base: Baseline, p: LivenessParams
) -> tuple[bool, int | None, float | None, float]:
    thr = max(p.mouth_open_abs, base.mar + p.mouth_open_delta)
    vals = [(int(i), float(sig.mar[i])) for i in idx if not np.isnan(sig.mar[i])]
    if not vals:
        return False, None, None, thr
    top = max(vals, key=lambda x: x[1])
    return top[1] > thr, top[0], top[1], thr


def detect_nod(
    sig: Signals, idx: NDArray[np.int64], base: Baseline, p: LivenessParams
) -> tuple[bool, int | None, float | None, float]:
    """Head goes down (pitch_ratio grows by ``nod_pitch``) and comes back up."""
    vals = [(int(i), float(sig.pitch[i]) - base.pitch) for i in idx if not np.isnan(sig.pitch[i])]
    best: tuple[int, float] | None = None
    for k, (i, v) in enumerate(vals):
        back = any(w < p.nod_pitch / 2 for _, w in vals[k + 1 :])
        if v > p.nod_pitch and back and (best is None or v > best[1]):
            best = (i, v)
    if best is None:
        top = max(vals, key=lambda x: x[1]) if vals else None
        return False, top[0] if top else None, top[1] if top else None, p.nod_pitch
    return True, best[0], best[1], p.nod_pitch


def check_challenges(
    sig: Signals,
    challenges: Sequence[str],
    lead_in_ms: int,
    window_ms: int,
    base: Baseline,
    p: LivenessParams | None = None,
) -> list[ChallengeResult]:
    """Each challenge inside its own window (± slack), and each one after the previous one."""
    p = p or LivenessParams()
    out: list[ChallengeResult] = []
    last_peak_t = -1
    for k, name in enumerate(challenges):
        start = lead_in_ms + k * window_ms
        lo, hi = start - p.slack_ms, start + window_ms + p.slack_ms
        idx = _window(sig, lo, hi)
        idx = idx[sig.t_ms[idx] > last_peak_t] if last_peak_t >= 0 else idx
        n_face = int(np.sum(~np.isnan(sig.ear[idx]))) if len(idx) else 0
        if np.isnan(base.ear):
            out.append(ChallengeResult(name, False, (start, start + window_ms), n_face, note="no face"))
            continue
        if name == "blink":
            ok, i, v, thr, _signal = detect_blink_any(sig, idx, base, p)
            b = base.ear
        elif name in ("turn_left", "turn_right"):
            ok, i, v, thr = detect_turn(sig, idx, base, p, name.removeprefix("turn_"))
            b = base.yaw
        elif name == "open_mouth":
            ok, i, v, thr = detect_open_mouth(sig, idx, base, p)
            b = base.mar
        elif name == "nod":
            ok, i, v, thr = detect_nod(sig, idx, base, p)
            b = base.pitch
        else:
            out.append(ChallengeResult(name, False, (start, start + window_ms), n_face, note="unknown challenge"))
            continue
        note = "" if ok else ("no face in window" if n_face == 0 else "not seen")
        peak_t = int(sig.t_ms[i]) if i is not None else None
        out.append(ChallengeResult(name, ok, (start, start + window_ms), n_face, peak_t, v, b, thr, note))
        if ok and peak_t is not None:
            last_peak_t = peak_t
    return out


# -- still photo, flat photo, tracking -------------------------------------------------


def _face_frames(frames: Sequence[FrameObs]) -> list[tuple[int, FrameObs]]:
    return [(i, f) for i, f in enumerate(frames) if f.landmarks is not None]


def landmark_motion(frames: Sequence[FrameObs]) -> float:
    """Largest mean landmark displacement from the first face frame, in face widths.
    Exactly 0 for a sequence of identical images."""
    ff = _face_frames(frames)
    if len(ff) < 2:
        return 0.0
    ref = ff[0][1]
    ref_lm = ref.landmarks
    if ref_lm is None:  # pragma: no cover - filtered above
        return 0.0
    w = ref.face_width
    return max(
        float(np.linalg.norm(f.landmarks - ref_lm, axis=1).mean()) / w for _, f in ff[1:] if f.landmarks is not None
    )


def homography_residual(src: NDArray[np.float32], dst: NDArray[np.float32], face_width: float) -> float:
    """Mean residual (face widths) of the least-squares planar homography mapping ``src`` to ``dst``,
    both (K, 2) image pixels. ~landmark noise for a flat photo; larger for a 3D face that turned."""
    h, _ = cv2.findHomography(src.astype(np.float64), dst.astype(np.float64), 0)
    if h is None:
        return float("inf")
    proj = cv2.perspectiveTransform(src.reshape(-1, 1, 2).astype(np.float64), h).reshape(-1, 2)
    return float(np.linalg.norm(proj - dst, axis=1).mean()) / max(face_width, 1e-6)


def flat_check(
    frames: Sequence[FrameObs], sig: Signals, p: LivenessParams | None = None, max_pairs: int = 4
) -> FlatCheck:
    """Across frame pairs with the largest pose change, is one planar homography enough?

    Decides only when some pair differs by at least ``flat_min_yaw_change`` in yaw_ratio or
    ``flat_min_pitch_change`` in pitch_ratio; otherwise returns ``decided=False``.
    """
    p = p or LivenessParams()
    ff = [i for i, f in _face_frames(frames)]
    if len(ff) < 2:
        return FlatCheck(False, False)
    yaw = sig.yaw[ff]
    pitch = sig.pitch[ff]
    # Pairs: each frame against the frame with the most different pose (cheap O(N^2) on N <= 80).
    dy = np.abs(yaw[:, None] - yaw[None, :]) / p.flat_min_yaw_change
    dp = np.abs(pitch[:, None] - pitch[None, :]) / p.flat_min_pitch_change
    change = np.maximum(dy, dp)
    order = np.dstack(np.unravel_index(np.argsort(-change, axis=None), change.shape))[0]
    pairs: list[tuple[int, int]] = []
    for a, b in order:
        if a >= b:
            continue
        if change[a, b] < 1.0 or len(pairs) >= max_pairs:
            break
        pairs.append((ff[a], ff[b]))
    top = float(change.max())
    if not pairs:
        return FlatCheck(False, False, None, top, 0)
    res = []
    for a, b in pairs:
        fa, fb = frames[a], frames[b]
        if fa.landmarks is None or fb.landmarks is None:  # pragma: no cover - filtered
            continue
        res.append(homography_residual(fa.landmarks[RIGID_IDX], fb.landmarks[RIGID_IDX], fa.face_width))
    r = float(np.median(res))
    return FlatCheck(True, r < p.flat_residual, r, top, len(res))


def track_breaks(frames: Sequence[FrameObs], p: LivenessParams | None = None) -> list[int]:
    """Indices where the main face jumps (position or size) from the previous face frame —
    a sign that a different face took its place."""
    p = p or LivenessParams()
    ff = _face_frames(frames)
    out = []
    for (_, a), (j, b) in itertools.pairwise(ff):
        if a.landmarks is None or b.landmarks is None:  # pragma: no cover - filtered
            continue
        wa, wb = a.face_width, b.face_width
        jump = float(np.linalg.norm(a.landmarks.mean(axis=0) - b.landmarks.mean(axis=0))) / max(wa, wb)
        scale = max(wa, wb) / max(min(wa, wb), 1e-6)
        if jump > p.track_max_jump or scale > p.track_max_scale:
            out.append(j)
    return out


def analyze_liveness(
    frames: Sequence[FrameObs],
    challenges: Sequence[str],
    lead_in_ms: int,
    window_ms: int,
    p: LivenessParams | None = None,
) -> LivenessReport:
    """Run every landmark-based liveness test on one session's frames."""
    p = p or LivenessParams()
    sig = signals(frames)
    base = baseline(sig, lead_in_ms)
    motion = landmark_motion(frames)
    return LivenessReport(
        challenges=check_challenges(sig, challenges, lead_in_ms, window_ms, base, p),
        still=motion < p.still_motion,
        motion=motion,
        flat=flat_check(frames, sig, p),
        baseline=base,
        track_breaks=track_breaks(frames, p),
    )
