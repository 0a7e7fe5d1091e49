"""Eye closure from the PIXELS of the eye regions, for blinks the 68 landmarks miss.

dlib's eyelid points barely move for some people during a real blink (their eye aspect ratio bottoms
at 0.74-0.86 of the open-eye value, benchmarks/blink_sampling.py), while the image of the eye changes
a lot: the iris and the white disappear and the lashes meet. This module cuts one small grey patch
per eye, placed by the two eye corners only (so head translation, in-plane rotation and scale drop
out, and the fit of the eyelid points — which jitters on a still photo — does not move it),
normalised to zero mean and unit variance (so light level and contrast drop out), and compares
patches by correlation.

Patches: (2, EYE_PATCH_H, EYE_PATCH_W), eye 0 = landmarks 36-41 (the image's left eye), eye 1 =
42-47; each spans EYE_PATCH_SPAN x the corner-to-corner distance, centred between the corners (the
eye's six-point centroid lies within 0.05 eye widths of there on the real clips). Stored quantised as
int8 (z-score x EYE_PATCH_SCALE, clipped) and, in JSON, as base64.

Everything is pure numpy/OpenCV; one frame costs two tiny warps (benchmarks/blink_sampling.py
reports the cost).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence

import cv2
import numpy as np
from numpy.typing import NDArray

EYE_PATCH_W = 16
EYE_PATCH_H = 8
EYE_PATCH_SPAN = 1.2  # patch width / eye corner distance
EYE_PATCH_SCALE = 24.0  # int8 = round(z * scale): |z| up to ~5.3 kept
_OVERSAMPLE = 4  # warp at 4x the patch size, then area-average down (no aliasing from a 3x shrink)
_EYES = ((36, 39), (42, 45))


def eye_patches(image: NDArray[np.uint8], lm68: NDArray[np.float32]) -> NDArray[np.int8] | None:
    """Both eyes' normalised grey patches, (2, EYE_PATCH_H, EYE_PATCH_W) int8, from a BGR (H, W, 3)
    uint8 frame and its (68, 2) landmarks in that frame's pixels. None when an eye's corners coincide."""
    out = np.empty((2, EYE_PATCH_H, EYE_PATCH_W), np.int8)
    ow, oh = EYE_PATCH_W * _OVERSAMPLE, EYE_PATCH_H * _OVERSAMPLE
    for e, (a, b) in enumerate(_EYES):
        p, q = lm68[a].astype(np.float64), lm68[b].astype(np.float64)
        centre = (p + q) / 2.0  # the corners only: eyelid points jitter (and move in a blink)
        v = q - p
        width = float(np.hypot(v[0], v[1]))
        if width < 1.0:
            return None
        u = v / width
        n = np.array([-u[1], u[0]])
        s = ow / (EYE_PATCH_SPAN * width)  # output pixels per image pixel
        src = np.array([centre, centre + u * width, centre + n * width], dtype=np.float32)
        dst = np.array([[ow / 2, oh / 2], [ow / 2 + s * width, oh / 2], [ow / 2, oh / 2 + s * width]], dtype=np.float32)
        m = cv2.getAffineTransform(src, dst)
        big = cv2.warpAffine(image, m, (ow, oh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        small = cv2.resize(big, (EYE_PATCH_W, EYE_PATCH_H), interpolation=cv2.INTER_AREA)
        grey = (cv2.cvtColor(small, cv2.COLOR_BGR2GRAY) if small.ndim == 3 else small).astype(np.float64)
        z = (grey - grey.mean()) / (grey.std() + 1e-6)
        out[e] = np.clip(np.round(z * EYE_PATCH_SCALE), -127, 127).astype(np.int8)
    return out


def encode(patches: NDArray[np.int8]) -> str:
    """Base64 of the (2, H, W) int8 patches (the JSON form)."""
    return base64.b64encode(np.ascontiguousarray(patches, np.int8).tobytes()).decode("ascii")


def decode(text: str) -> NDArray[np.int8]:
    """Inverse of :func:`encode`; raises ValueError on a wrong length."""
    raw = base64.b64decode(text.encode("ascii"), validate=True)
    if len(raw) != 2 * EYE_PATCH_H * EYE_PATCH_W:
        raise ValueError(f"eye patches: {len(raw)} bytes, expected {2 * EYE_PATCH_H * EYE_PATCH_W}")
    return np.frombuffer(raw, np.int8).reshape(2, EYE_PATCH_H, EYE_PATCH_W).copy()


SHIFT_X, SHIFT_Y = 2, 1  # patch pixels (~0.15 / 0.075 eye widths): how far a landmark fit may jitter


def _corr_shifted(x: NDArray[np.float64], y: NDArray[np.float64]) -> float:
    """Best correlation of ``y``'s centre (the patch minus SHIFT_X/SHIFT_Y on each side) with ``x`` at any
    shift up to SHIFT_X/SHIFT_Y: the same eye seen through a jittered corner fit lines up again."""
    h, w = y.shape
    core = y[SHIFT_Y : h - SHIFT_Y, SHIFT_X : w - SHIFT_X]
    core = core - core.mean()
    cn = float(np.sqrt((core * core).sum())) + 1e-9
    best = -1.0
    for dy in range(2 * SHIFT_Y + 1):
        for dx in range(2 * SHIFT_X + 1):
            win = x[dy : dy + core.shape[0], dx : dx + core.shape[1]]
            win = win - win.mean()
            best = max(best, float((win * core).sum()) / (float(np.sqrt((win * win).sum())) * cn + 1e-9))
    return best


def change(a: NDArray[np.int8], b: NDArray[np.int8]) -> NDArray[np.float64]:
    """Per eye, 1 - correlation of two frames' patches, the better of both ways over shifts up to
    SHIFT_X/SHIFT_Y patch pixels (a landmark fit that jitters moves the patch; a closing lid changes it):
    (2,) in [0, 2]; 0 = the same picture."""
    x = a.astype(np.float64)
    y = b.astype(np.float64)
    return np.array([1.0 - max(_corr_shifted(x[e], y[e]), _corr_shifted(y[e], x[e])) for e in range(2)])


def both_changed(a: NDArray[np.int8], b: NDArray[np.int8]) -> float:
    """How much BOTH eyes changed between two frames: the smaller of the two eyes' :func:`change`."""
    return float(change(a, b).min())


def closure_dip(
    patches: Sequence[NDArray[np.int8] | None],
    t_ms: Sequence[int],
    *,
    cut: float,
    back: float,
    span_ms: int,
    ref_ok: Sequence[bool] | None = None,
    pair_ok: Callable[[int, int], bool] | None = None,
) -> tuple[int, int, float] | None:
    """A blink seen in the pixels: frames a < b < c within ``span_ms`` (t of c - t of a) where b differs
    from both a and c by more than ``cut`` in BOTH eyes while a and c are alike (each eye's
    :func:`change` <= ``back``: the eye came back to how it was). The reference is the frame
    just before, not the session's baseline, so slow changes (talking, a smile, a drifting pose) do not
    add up into a dip. ``patches``: per frame (None without a face), in capture order; ``ref_ok``: per
    frame, may it be frame a (the caller's "eye open" by other means; None: any frame); ``pair_ok(a, b)``:
    may b be the closed frame against a (the caller's landmark checks; None: always).
    Returns (index a, index b, dip value) of the deepest dip, or None."""
    have = [(i, p) for i, p in enumerate(patches) if p is not None]
    best: tuple[int, int, float] | None = None
    for ka, (a, pa) in enumerate(have):
        if ref_ok is not None and not ref_ok[a]:
            continue
        for kb in range(ka + 1, len(have)):
            b, pb = have[kb]
            if t_ms[b] - t_ms[a] >= span_ms:
                break
            if pair_ok is not None and not pair_ok(a, b):
                continue
            dip_ab = both_changed(pa, pb)
            if dip_ab <= cut:
                continue
            for c, pc in have[kb + 1 :]:
                if t_ms[c] - t_ms[a] > span_ms:
                    break
                if float(change(pa, pc).max()) <= back:
                    dip = min(dip_ab, both_changed(pb, pc))
                    if dip > cut and (best is None or dip > best[2]):
                        best = (a, b, dip)
                    break
    return best
