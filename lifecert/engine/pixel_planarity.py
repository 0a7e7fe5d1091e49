"""Is the upper face a flat picture? One homography against the PIXELS' motion (not wired into any decision).

A printed photo (or a screen) turned, nodded or held at a slant moves as a plane: between two frames every point of
the printed face moves by ONE homography, whatever the angle. A head does not: the nose, the eye sockets and the
cheeks lie at different depths, so a turn or a nod moves them with parallax that no homography explains. The
landmark test (lifecert.engine.planarity) asks this of dlib's 68 points, whose shape prior invents depth on a
foreshortened print; this module asks it of the image itself.

Per session: the reference frame is the one nearest the session's median face shape, paired with the MAX_PAIRS frames
whose landmarks moved most beyond a similarity (a turn or a nod; landmarks choose the pairs and place the region, they
are not measured). Per pair, both frames are cut to the UPPER face (brows, eyes, nose down to its base, the face's
sides at eye level: what a cut-out print keeps printed; mouth and chin may be a real person behind a hole, and move
non-rigidly in everyone) at CROP_FW pixels per face width, frame b aligned onto a by the landmarks' similarity; corners
(cv2.goodFeaturesToTrack) are tracked a -> b by pyramidal Lucas-Kanade with a forward-backward check, a RANSAC
homography is fitted to the tracks, and (plane + parallax) frame b is warped onto a by it and the corners are tracked
AGAIN: what is left is what the plane does not explain, read where the two crops already agree, so the tracker's square
window is not biased by foreshortening (a REAL frame turned 30 degrees as a plane leaves a median first-pass residual
of ~0.3 px, a second-pass one of ~0.06 px). Pair value = the 80th percentile of the second pass's residuals against its
own RANSAC homography (``p2_p80``) over the pair's motion (median distance left after the best similarity of the
first-pass tracks): scale-free, LOW = planar. Session value = the median over pairs that moved at least MIN_MOTION_PX
crop pixels; fewer than MIN_PAIRS such pairs: abstain (``decided`` False), never flat.

Measured (benchmarks/pixflat_eval.py, benchmarks/README.md ``pixflat``, 2026-12-02). The variant (statistic, minimum
motion, minimum pairs: 30 of them) and a cut were chosen on a calibration half (cut 0.40 = that half's lowest GENUINE
value rounded down: a verify_latency session turned by the 2D cylinder warp, 0.401) and are reported on the other
half: cut-out prints of the informed attacker (lower face / chin cut out; production's kept sessions, SYNTHETIC
rigid print and movement, REAL attacker) 167/180 = 93 % [88-96] flat (the landmark test 71/180; either 171/180),
mouth / eyes holes 245/300 = 82 % [77-86]; genuine 0 flat on every report half (verify_latency 0/417 [0-0.9 %],
camera_sweep 0/206 [0-1.8 %], turn_head_3d renders 0/60, the REAL clips unwarped 0/19, NUAA live 0/10, cutout's two
controls 0/15 each). Of the 21 informed-attacker sessions production CONFIRMED (both halves) it calls 20 flat.
But REAL NUAA prints as captured: 0/40 [0-9 %] (the landmark test 20/40), and the same REAL print frames turned as a
sheet 3/80, bowed 1/80: NUAA's real hand-held captures are not one homography in pixels from frame to frame, while ONE
frame of the same prints moved rigidly (no bend, light or focus change between frames) reads flat in 67/80 sessions
(0.03-0.19; bowed too: 66/80). On real paper held by a hand this test is therefore UNPROVEN; what breaks it on NUAA
(the hand bending the photo, which NUAA's protocol includes, or webcam noise and blur on low-texture 200-pixel crops)
was not separated; per-frame noise alone does much of it (the rigid frames, each degraded on its own with noise SD
6 / JPEG 60 / blur <= 1.2 px, read flat in 12/80 only), and a stricter corner quality or a pre-blur did not help.
apfol's 3 sessions all abstain.

PIXEL_CUT 0.30 is NOT the calibration half's 0.40: chosen AFTER seeing every set (post hoc) to keep a margin under the
lowest genuine values, all on SYNTHETIC warps: the 2D cylinder warp of verify_latency's and cutout's control sessions
reads as low as 0.401 (89 of those 889 sessions under 0.54: that warp has no nose parallax and bends the face
smoothly), a turn_head_3d render 0.418 once (then 0.72 or more); camera_sweep 0.66 or more; REAL unwarped footage
1.007 or more (the clips, a person barely moving: 17 of 39 decided), NUAA live 1.63 or more. At 0.30, all sessions:
informed attacker 329/360, holes 505/600, genuine 0 of 1,486 (the landmark test alone: 1, a verify_latency session).
Cost: thread CPU p50 ~35-140 ms per session (p95 <=
195 ms) on the 2-core machine under load ~10, plus ~5-10 ms to decrypt and decode the up to MAX_PAIRS + 1 frames. Pure
numpy + cv2; OpenCV's RANSAC is seeded the same on every call (same frames, same value).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
from numpy.typing import NDArray

from lifecert.engine import geometry
from lifecert.engine.geometry import face_width
from lifecert.engine.types import ImageBGR

ImageLoader = Callable[[Sequence[int]], Sequence[ImageBGR | None]]

# The region a cut-out print keeps printed: brows, eyes, nose down to its base, the face's sides at eye level.
ROI_IDX = np.array([0, 1, 15, 16, *range(17, 27), *range(27, 36), *range(36, 48)], dtype=np.int64)
ALIGN_IDX = np.array([*range(17, 27), 27, 28, 29, 30, 36, 39, 42, 45], dtype=np.int64)  # brows, bridge, eye corners
PAIR_IDX = np.array([0, 1, 15, 16, *range(17, 36), 36, 39, 42, 45], dtype=np.int64)  # landmark motion for pair choice
CROP_FW = 160.0  # the crop's scale: face width (landmarks 0-16) in crop pixels
MAX_CROP = 4 * CROP_FW  # a crop over this means collapsed landmarks (a face is ~1.2 x 0.8 CROP_FW): no reading
MAX_FRAMES = 120  # landmark frames considered for the pair choice (evenly spaced)
MAX_PAIRS = 6  # pairs measured: reference frame against the frames that moved most (decodes MAX_PAIRS + 1 frames)
MAX_CORNERS = 200
FB_MAX_PX = 0.5  # forward-backward error (crop pixels) above which a track is dropped
MIN_TRACKS = 25
QUALITY = 0.005  # goodFeaturesToTrack's quality level (share of the crop's strongest corner)
MIN_NOSE_TRACKS = 5
NOSE_IDX = np.arange(27, 36, dtype=np.int64)
NOSE_PAD_FW = 0.06
H_RANSAC_PX = 1.0  # RANSAC inlier distance, crop pixels (the second pass: half of it)
# Chosen on pixflat_eval's calibration half (see the module docstring); the alternatives it ranked lower: the nose's
# tracks against the plane of the others (nose_res, cut 0.26: fewer sessions decided, the nose has little texture) and
# the median residual (p2_med).
STAT = "p2_p80"
MIN_MOTION_PX = 0.5  # a pair counts when its tracks moved this much beyond a similarity (0.003 face widths)
MIN_PAIRS = 2
PIXEL_CUT = 0.30  # post hoc, under the calibration half's 0.40 (module docstring)


@dataclass(frozen=True)
class PairReading:
    """One frame pair (session indices i = reference, j). First pass: the tracks as followed; second pass (``p2_*``,
    ``nose_res``, ``rest_res``): after frame j was warped onto i by the first pass's homography. None: too few
    tracks for that part."""

    i: int
    j: int
    tracks: int
    nose_tracks: int
    noise: float  # median forward-backward error / 2, crop pixels
    motion: float  # median residual after the best similarity, crop pixels (all tracks)
    motion_rest: float  # the same over the tracks off the nose
    h_res: float  # median residual after the RANSAC homography of all tracks, crop pixels
    h_p80: float
    inliers: float  # share of tracks within H_RANSAC_PX of that homography
    nose_res: float | None  # median residual of the nose's tracks against the homography of the others
    rest_res: float | None  # median residual of the others against it
    p2_p80: float | None = None  # 80th percentile residual of all second-pass tracks against their own homography
    p2_med: float | None = None
    p2_in: float | None = None  # share of them within H_RANSAC_PX / 2 of it


@dataclass(frozen=True)
class PixelPlanarity:
    """``decided`` False: fewer than MIN_PAIRS pairs moved MIN_MOTION_PX beyond a similarity (or could be tracked);
    ``value``: the session's STAT over motion (LOW = planar); ``motion``: the moving pairs' median, crop pixels."""

    decided: bool
    flat: bool
    value: float | None = None
    pairs: int = 0
    motion: float | None = None
    readings: tuple[PairReading, ...] = field(default_factory=tuple)


def _sim_residual(p: NDArray[np.float64], q: NDArray[np.float64]) -> NDArray[np.float64]:
    m = geometry.similarity_transform(p, q)
    pred = p @ m[:, :2].T + m[:, 2]
    return np.asarray(np.linalg.norm(pred - q, axis=1), np.float64)


def _crop_frame(lm: NDArray[np.float64]) -> tuple[NDArray[np.float64], tuple[int, int]]:
    """2x3 map from image pixels to the crop (face width CROP_FW, the ROI with a margin) and the crop's size."""
    s = CROP_FW / face_width(lm)
    pts = lm[ROI_IDX] * s
    lo, hi = pts.min(axis=0) - 0.08 * CROP_FW, pts.max(axis=0) + 0.08 * CROP_FW
    m = np.array([[s, 0.0, -lo[0]], [0.0, s, -lo[1]]])
    size = (int(np.ceil(hi[0] - lo[0])), int(np.ceil(hi[1] - lo[1])))
    return m, size


def _roi_mask(lm_crop: NDArray[np.float64], size: tuple[int, int]) -> NDArray[np.uint8]:
    mask = np.zeros((size[1], size[0]), np.uint8)
    hull = cv2.convexHull(lm_crop[ROI_IDX].astype(np.float32)).astype(np.int32)
    cv2.fillConvexPoly(mask, hull, 255)
    # stop at the nose's base: what lies below may be a real mouth behind a hole
    base = float(lm_crop[31:36, 1].max()) + 0.02 * CROP_FW
    mask[int(min(max(base, 0), size[1])):, :] = 0
    # keep off the face's outline (background beside a real head)
    return np.asarray(cv2.erode(mask, np.ones((5, 5), np.uint8)), np.uint8)


def _nose_mask(lm_crop: NDArray[np.float64], size: tuple[int, int]) -> NDArray[np.uint8]:
    """The nose: the hull of its landmarks (bridge 27-30, base 31-35) widened by NOSE_PAD_FW on each side."""
    mask = np.zeros((size[1], size[0]), np.uint8)
    pts = lm_crop[NOSE_IDX]
    pad = NOSE_PAD_FW * CROP_FW
    wide = np.vstack([pts, pts + np.array([pad, 0.0]), pts - np.array([pad, 0.0]), pts + np.array([0.0, pad / 2])])
    hull = cv2.convexHull(wide.astype(np.float32)).astype(np.int32)
    cv2.fillConvexPoly(mask, hull, 255)
    return mask


def _gray(img: ImageBGR) -> NDArray[np.uint8]:
    return img if img.ndim == 2 else np.asarray(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), np.uint8)


def _track(a: NDArray[np.uint8], b: NDArray[np.uint8], pts: NDArray[np.float32], levels: int
           ) -> tuple[NDArray[np.float32], NDArray[np.bool_], NDArray[np.float64]]:
    """Pyramidal Lucas-Kanade a -> b and back: (where each point went, tracked both ways, forward-backward error in
    pixels). ``pts``: (N, 1, 2) float32."""
    crit = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01)
    fwd, st1, _ = cv2.calcOpticalFlowPyrLK(a, b, pts, np.empty_like(pts), winSize=(15, 15), maxLevel=levels,
                                           criteria=crit)
    out = np.asarray(fwd, np.float32)
    back, st2, _ = cv2.calcOpticalFlowPyrLK(b, a, out, np.empty_like(out), winSize=(15, 15), maxLevel=levels,
                                            criteria=crit)
    fb = np.linalg.norm((pts - np.asarray(back, np.float32)).reshape(-1, 2), axis=1).astype(np.float64)
    ok = (np.asarray(st1).ravel() == 1) & (np.asarray(st2).ravel() == 1)
    return out, ok, fb


def _warp(img: ImageBGR, m: NDArray[np.float64], size: tuple[int, int]) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
    """The grey crop and where it holds picture (not the border beyond the frame), eroded by the tracker's window."""
    g = cv2.warpAffine(_gray(img), m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    valid = cv2.warpAffine(np.full(img.shape[:2], 255, np.uint8), m, size, flags=cv2.INTER_NEAREST,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return np.asarray(g, np.uint8), np.asarray(cv2.erode(valid, np.ones((9, 9), np.uint8)), np.uint8)


def pair_reading(img_a: ImageBGR, lm_a: NDArray[np.float64], img_b: ImageBGR, lm_b: NDArray[np.float64],
                 i: int = 0, j: int = 1) -> PairReading | None:
    """The upper face's tracks from frame a to frame b (b first aligned onto a by the landmarks' similarity, so the
    tracker follows only what a similarity does not explain) and how well one homography explains them."""
    m_a, size = _crop_frame(lm_a)
    if max(size) > MAX_CROP:  # bounded memory whatever the landmarks: no giant crop from a collapsed jaw line
        return None
    sim_ba = geometry.similarity_transform(lm_b[ALIGN_IDX], lm_a[ALIGN_IDX])  # image b -> image a
    m_b = (np.vstack([m_a, [0, 0, 1]]) @ np.vstack([sim_ba, [0, 0, 1]]))[:2]
    ga, va = _warp(img_a, m_a, size)
    gb, vb = _warp(img_b, m_b, size)
    lm_crop = lm_a @ m_a[:, :2].T + m_a[:, 2]
    mask = cv2.bitwise_and(cv2.bitwise_and(_roi_mask(lm_crop, size), va), vb)
    corners = cv2.goodFeaturesToTrack(ga, MAX_CORNERS, QUALITY, 4, mask=mask, blockSize=5)
    if corners is None or len(corners) < MIN_TRACKS:
        return None
    p0 = np.asarray(corners, np.float32).reshape(-1, 1, 2)
    p1, tracked, fb = _track(ga, gb, p0, 3)
    q_all = p1.reshape(-1, 2)
    inside = np.zeros(len(q_all), bool)
    qi = np.round(q_all).astype(int)
    okq = (qi[:, 0] >= 0) & (qi[:, 1] >= 0) & (qi[:, 0] < size[0]) & (qi[:, 1] < size[1])
    inside[okq] = vb[qi[okq, 1], qi[okq, 0]] > 0
    ok = tracked & (fb < FB_MAX_PX) & inside
    if int(ok.sum()) < MIN_TRACKS:
        return None
    p = p0.reshape(-1, 2)[ok].astype(np.float64)
    q = q_all[ok].astype(np.float64)
    noise = float(np.median(fb[ok])) / 2
    sim = _sim_residual(p, q)
    h, _ = cv2.findHomography(p, q, cv2.RANSAC, H_RANSAC_PX, maxIters=500)
    if h is None:
        return None
    res = np.linalg.norm(cv2.perspectiveTransform(p.reshape(-1, 1, 2), h).reshape(-1, 2) - q, axis=1)
    nmask = _nose_mask(lm_crop, size)
    pi = np.clip(np.round(p).astype(int), 0, [size[0] - 1, size[1] - 1])
    on_nose = nmask[pi[:, 1], pi[:, 0]] > 0
    motion_rest = float(np.median(sim[~on_nose])) if (~on_nose).sum() else float("nan")
    second = _plane_and_parallax(ga, img_b, m_b, size, p, q, on_nose)
    return PairReading(i, j, len(p), int(on_nose.sum()), noise, float(np.median(sim)), motion_rest,
                       float(np.median(res)), float(np.percentile(res, 80)), float(np.mean(res <= H_RANSAC_PX)),
                       *second)


def _plane_and_parallax(ga: NDArray[np.uint8], img_b: ImageBGR, m_b: NDArray[np.float64], size: tuple[int, int],
                        p: NDArray[np.float64], q: NDArray[np.float64], on_nose: NDArray[np.bool_]
                        ) -> tuple[float | None, float | None, float | None, float | None, float | None]:
    """Plane + parallax: frame b is warped onto a by the homography of the tracks off the nose and the tracks
    followed again, so what is left is what that plane does not explain, measured where the two crops already
    agree (no foreshortening left for the tracker's square window to be biased by). Returns the median residual
    (crop pixels) of the nose's tracks and of the others against the plane refitted on the others."""
    none = (None, None, None, None, None)
    fit_on = ~on_nose if (~on_nose).sum() >= MIN_TRACKS else np.ones(len(p), bool)
    h, _ = cv2.findHomography(p[fit_on], q[fit_on], cv2.RANSAC, H_RANSAC_PX, maxIters=500)
    if h is None:
        return none
    mb3 = np.vstack([m_b, [0, 0, 1]])
    warp = np.linalg.inv(h) @ mb3
    g = _gray(img_b)
    gb2 = np.asarray(cv2.warpPerspective(g, warp, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE),
                     np.uint8)
    p1, tracked, fb = _track(ga, gb2, p.astype(np.float32).reshape(-1, 1, 2), 1)
    ok = tracked & (fb < FB_MAX_PX)
    if ok.sum() < MIN_TRACKS:
        return none
    q2 = p1.reshape(-1, 2).astype(np.float64)
    hall, _ = cv2.findHomography(p[ok], q2[ok], cv2.RANSAC, H_RANSAC_PX / 2, maxIters=500)
    if hall is None:
        return none
    ra = np.linalg.norm(cv2.perspectiveTransform(p[ok].reshape(-1, 1, 2), hall).reshape(-1, 2) - q2[ok], axis=1)
    allstats = (float(np.percentile(ra, 80)), float(np.median(ra)), float(np.mean(ra <= H_RANSAC_PX / 2)))
    nose, rest = ok & on_nose, ok & ~on_nose
    if nose.sum() < MIN_NOSE_TRACKS or rest.sum() < MIN_TRACKS:
        return (None, None, *allstats)
    h2, _ = cv2.findHomography(p[rest], q2[rest], cv2.RANSAC, H_RANSAC_PX / 2, maxIters=500)
    if h2 is None:
        return (None, None, *allstats)
    rr = np.linalg.norm(cv2.perspectiveTransform(p.reshape(-1, 1, 2), h2).reshape(-1, 2) - q2, axis=1)
    return (float(np.median(rr[nose])), float(np.median(rr[rest])), *allstats)


def choose_pairs(lms: Sequence[NDArray[np.float64] | None], max_frames: int = MAX_FRAMES,
                 max_pairs: int = MAX_PAIRS) -> list[tuple[int, int]]:
    """(reference, other) frame indices: the reference is the frame nearest the session's median face shape (its
    rest pose), the others the frames whose landmarks moved most from it beyond a similarity (a turn, a nod)."""
    idx = [k for k, lm in enumerate(lms) if lm is not None]
    if len(idx) < 2:
        return []
    if len(idx) > max_frames:
        idx = [idx[k] for k in np.linspace(0, len(idx) - 1, max_frames).round().astype(int)]
    pts = [np.asarray(lms[k], np.float64)[PAIR_IDX] for k in idx]
    base = pts[0]
    aligned = []
    for x in pts:
        m = geometry.similarity_transform(x, base)
        aligned.append(x @ m[:, :2].T + m[:, 2])
    med = np.median(np.stack(aligned), axis=0)
    ref = int(np.argmin([float(np.median(_sim_residual(x, med))) for x in pts]))
    fw = face_width(np.asarray(lms[idx[ref]], np.float64))
    d = np.array([float(np.median(_sim_residual(pts[ref], x))) / fw for x in pts])
    order = [k for k in np.argsort(-d, kind="stable") if k != ref][:max_pairs]
    return [(idx[ref], idx[int(k)]) for k in order]


def pair_value(r: PairReading, stat: str = STAT) -> float | None:
    """One pair's planarity: its residual statistic ``stat`` (a PairReading field, crop pixels) over its motion."""
    v = getattr(r, stat)
    return None if v is None else float(v) / max(r.motion, 1e-9)


def session_value(readings: Sequence[PairReading], *, stat: str = STAT, min_motion: float = MIN_MOTION_PX,
                  min_pairs: int = MIN_PAIRS) -> tuple[float | None, int, float | None]:
    """(median pair value over the moving pairs, moving pairs, their median motion); value None (abstain) with
    fewer than ``min_pairs`` pairs that moved ``min_motion`` crop pixels beyond a similarity and could be read."""
    moving = [r for r in readings if r.motion >= min_motion and pair_value(r, stat) is not None]
    if len(moving) < min_pairs:
        return None, len(moving), None
    vals = [pair_value(r, stat) for r in moving]
    return (float(np.median([v for v in vals if v is not None])), len(moving),
            float(np.median([r.motion for r in moving])))


def pixel_planarity(
    lms: Sequence[NDArray[np.floating] | None], images: ImageLoader, *, cut: float = PIXEL_CUT,
    max_pairs: int = MAX_PAIRS,
) -> PixelPlanarity:
    """The session's pixel planarity (module docstring): ``flat`` when decided and under ``cut``. ``lms``: per
    frame (68, 2) image pixels or None; ``images``: loads the frames at the given indices (BGR uint8, the same
    pixels the landmarks were taken on; None where a frame is gone). Decodes at most ``max_pairs`` + 1 frames."""
    arr = [None if lm is None else np.asarray(lm, np.float64) for lm in lms]
    pairs = choose_pairs(arr, max_pairs=max_pairs)
    if not pairs:
        return PixelPlanarity(False, False)
    want = sorted({k for p in pairs for k in p})
    got = dict(zip(want, images(want), strict=True))
    readings = []
    for i, j in pairs:
        ia, ib, la, lb = got.get(i), got.get(j), arr[i], arr[j]
        if ia is None or ib is None or la is None or lb is None:
            continue
        r = pair_reading(ia, la, ib, lb, i, j)
        if r is not None:
            readings.append(r)
    value, n, motion = session_value(readings)
    if value is None:
        return PixelPlanarity(False, False, None, n, None, tuple(readings))
    return PixelPlanarity(True, value < cut, value, n, motion, tuple(readings))
