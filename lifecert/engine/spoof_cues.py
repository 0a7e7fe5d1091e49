"""Screen and print cues computed beside the PAD model, each MEASURED before it is trusted.

All inputs are full camera frames, (H, W, 3) uint8 BGR, with the main face box per frame as
(x1, y1, x2, y2) image pixels (None where no face was found). Everything is plain OpenCV and
numpy; the cost is a few milliseconds per frame.

Cues (session values are medians over the frames with a face):

* ``enclosure`` — how many sides (0-4) of the face are flanked by a long straight edge (a
  phone bezel, a monitor frame, a paper edge) within 3 face widths, each edge at least 0.8
  face heights (widths) long and roughly parallel to that side; ``rigid`` — whether those
  edges keep their offset to the face while the face moves (a held screen or paper moves
  rigidly with the face; door frames and windows do not);
* ``moire`` — peakiness of the face region's high-frequency spectrum (a screen's pixel grid
  resampled by the camera gives isolated peaks; skin gives a smooth fall-off);
* ``specular`` — share of near-white, colourless pixels in the face region (screen glare).

Which cues are TRUSTED (allowed to flag a session) is decided by ``benchmarks/pad_eval.py``
measurements and recorded in :data:`TRUSTED` with the numbers; an untrusted cue is still
computed and reported (for the caseworker and the next measurement) but never flags.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

Box = NDArray[np.float32] | Sequence[float]

# Cut-offs and trust, from benchmarks/pad_eval.py (benchmarks/README.md, pad section; 2026-11-30).
# A cue is trusted only when it separates genuine from attack sequences on REAL captures. Measured AUC
# (P(attack value > genuine value), per session): moiré 0.94 on real NUAA prints but 0.52 on real apfol
# screen replays; specular 0.86 on real apfol replays but 0.11 (inverted) on real NUAA prints; the
# enclosure / rigid-enclosure cues only on synthetic frames (0.55-1.00, where attacks.py drew the bezel and
# paper edge it looks for) — no real full-frame attack exists here to test them. None is trusted yet.
# Rerun 2026-11-30 on 365 sessions (benchmarks/README.md pad section): moiré 0.93 on 74 real NUAA print
# sessions vs the real live crops but 0.47-0.53 on screen replays; specular 0.09 (inverted) on real prints;
# enclosure 0.50 on real prints. No genuine-false-alarm operating point was measured: still untrusted.
# benchmarks/cue_eval.py (2026-11-30; README cue_eval): genuine FALSE ALARMS on real full frames. The
# enclosure rule above (>= 3 sides, any line) fires on 28 % of LFW frames (mostly the black fill of LFW's
# alignment; 2/482 without it) and on 8/30 synthetic replays, 0/21 held close; requiring the edge to run
# past the face (side_offsets span) gives 8/6922 LFW frames but detects no synthetic replay (their face
# fills the screen: the bezel runs through the face box). A straight edge crossing the face box
# (through_face) detects <= 7/29 replays and fires on 316 LFW frames. No operating point meets <= 0.3 %
# LFW + 0 clip sessions with any detection: enclosure stays untrusted. Moiré's LFW cut (~25: JPEG news
# photos have peaky spectra) is above all 80 real NUAA print sessions; specular's fires on 2/17 real live
# NUAA sessions and no real attack. All stay untrusted.
TRUSTED: dict[str, bool] = {"enclosure": False, "moire": False, "specular": False}
ENCLOSURE_MIN_SIDES = 3  # >= this many flanked sides in the median frame ...
RIGID_MAX_STD = 0.08  # ... and edge offsets to the face varying less than this (face widths)
# The per-frame enclosure rule and the session vote (enclosure_fires / enclosure_session), from
# benchmarks/cue_eval.py; see TRUSTED for whether it may flag.
ENCLOSURE_SPAN = 0.5  # face sizes a flanking line must run past both ends of the face ...
ENCLOSURE_BORDER = True  # ... or to the frame's border (a phone held close runs out of the picture)
ENCLOSURE_MAX_OFFSET = 3.0  # face widths from the face box
ENCLOSURE_VOTE = 0.5  # share of a session's scored frames that must fire
MOIRE_MIN = 6.0
SPECULAR_MIN = 0.02


@dataclass(frozen=True)
class FrameCues:
    sides: int  # 0-4 sides of the face flanked by a long straight edge
    offsets: tuple[float, float, float, float]  # left, top, right, bottom edge offsets / face width (NaN: none)
    moire: float
    specular: float


@dataclass(frozen=True)
class CueReport:
    """Session cue values; ``flags`` lists only TRUSTED cues above their cut-off."""

    frames: int
    enclosure: float  # median sides flanked
    rigid: bool | None  # None: not enough frames with edges or face motion to tell
    rigid_std: float | None
    moire: float
    specular: float
    flags: tuple[str, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict[str, Any]:
        def r(v: float | None) -> float | None:
            return None if v is None or (isinstance(v, float) and math.isnan(v)) else round(float(v), 4)

        return {"frames": self.frames, "enclosure": r(self.enclosure), "rigid": self.rigid,
                "rigid_std": r(self.rigid_std), "moire": r(self.moire), "specular": r(self.specular),
                "flags": list(self.flags)}


def _face_rect(box: Box, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    h, w = shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    return max(0, int(x1)), max(0, int(y1)), min(w, math.ceil(x2)), min(h, math.ceil(y2))


def outside_lines(frame: NDArray[np.uint8], box: Box) -> NDArray[np.float64]:
    """Long straight lines outside the face box, (n, 4) as x1, y1, x2, y2 image pixels: Canny on the
    blurred grey frame with the face region blanked (the face has many edges of its own), then a
    probabilistic Hough transform keeping lines at least 0.8 face sizes long."""
    grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    fw, fh = max(x2 - x1, 1.0), max(y2 - y1, 1.0)
    edges = cv2.Canny(cv2.GaussianBlur(grey, (5, 5), 0), 40, 120)
    fx1, fy1, fx2, fy2 = _face_rect(box, frame.shape)
    edges[fy1:fy2, fx1:fx2] = 0
    lines = cv2.HoughLinesP(edges, 1, np.pi / 180, threshold=40, minLineLength=int(0.8 * min(fw, fh)),
                            maxLineGap=6)
    if lines is None:
        return np.zeros((0, 4), np.float64)
    return np.asarray(lines, np.float64).reshape(-1, 4)


def face_lines(frame: NDArray[np.uint8], box: Box, min_len: float = 0.6) -> NDArray[np.float64]:
    """Long straight lines over the face and around it (the face NOT blanked), (n, 4) x1, y1, x2, y2
    image pixels, at least ``min_len`` face heights long, within 20 degrees of vertical or horizontal.
    A live head hides the background behind it, so no long straight edge crosses a real face; the
    edge of a screen or paper showing a face that fills it does."""
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    fw, fh = max(x2 - x1, 1.0), max(y2 - y1, 1.0)
    h, w = frame.shape[:2]
    rx1, ry1 = max(0, int(x1 - 0.5 * fw)), max(0, int(y1 - 0.5 * fh))
    rx2, ry2 = min(w, math.ceil(x2 + 0.5 * fw)), min(h, math.ceil(y2 + 0.5 * fh))
    if rx2 - rx1 < 16 or ry2 - ry1 < 16:
        return np.zeros((0, 4), np.float64)
    grey = cv2.cvtColor(frame[ry1:ry2, rx1:rx2], cv2.COLOR_BGR2GRAY)
    edges = cv2.Canny(cv2.GaussianBlur(grey, (5, 5), 0), 40, 120)
    lines = cv2.HoughLinesP(edges, 1, np.pi / 180, threshold=40, minLineLength=int(min_len * fh), maxLineGap=6)
    if lines is None:
        return np.zeros((0, 4), np.float64)
    out = np.asarray(lines, np.float64).reshape(-1, 4) + np.array([rx1, ry1, rx1, ry1], np.float64)
    ang = np.abs(np.degrees(np.arctan2(out[:, 3] - out[:, 1], out[:, 2] - out[:, 0]))) % 180
    keep = (np.abs(ang - 90) < 20) | (ang < 20) | (ang > 160)
    return out[keep]


def through_face(lines: NDArray[np.float64], box: Box, margin: float = 0.1, cover: float = 0.9) -> int:
    """How many straight lines cross the face box: vertical ones inside it (``margin`` face widths
    in from its sides) covering >= ``cover`` of its height, horizontal ones likewise across its width."""
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    fw, fh = max(x2 - x1, 1.0), max(y2 - y1, 1.0)
    n = 0
    for lx1, ly1, lx2, ly2 in lines:
        ang = abs(math.degrees(math.atan2(ly2 - ly1, lx2 - lx1))) % 180
        mx, my = (lx1 + lx2) / 2, (ly1 + ly2) / 2
        if abs(ang - 90) < 20 and x1 + margin * fw < mx < x2 - margin * fw:
            n += int(min(max(ly1, ly2), y2) - max(min(ly1, ly2), y1) >= cover * fh)
        elif (ang < 20 or ang > 160) and y1 + margin * fh < my < y2 - margin * fh:
            n += int(min(max(lx1, lx2), x2) - max(min(lx1, lx2), x1) >= cover * fw)
    return n


def side_offsets(lines: NDArray[np.float64], box: Box, max_offset: float = 3.0, span: float = 0.0,
                 frame_size: tuple[int, int] | None = None) -> tuple[float, float, float, float]:
    """Each side's (left, top, right, bottom) nearest flanking line offset from the face box in face
    widths (NaN where none within ``max_offset``). A flanking line is within 20 degrees of parallel
    to that side and overlaps the face's extent along it; with ``span`` > 0 it must reach ``span``
    face sizes BEYOND both ends of the face (a screen's or paper's edge runs past the face it frames);
    with ``frame_size`` (w, h) an end that reaches the frame's border (within 4 px) also counts (a
    phone held close runs out of the picture)."""
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    fw, fh = max(x2 - x1, 1.0), max(y2 - y1, 1.0)
    # where a flanking line must reach: span face sizes past the face, or the frame's border
    lo_x, hi_x, lo_y, hi_y = x1 - span * fw, x2 + span * fw, y1 - span * fh, y2 + span * fh
    if frame_size is not None:
        lo_x, hi_x = max(lo_x, 4.0), min(hi_x, frame_size[0] - 5.0)
        lo_y, hi_y = max(lo_y, 4.0), min(hi_y, frame_size[1] - 5.0)
    offsets = [math.inf] * 4  # left, top, right, bottom
    for lx1, ly1, lx2, ly2 in lines:
        ang = abs(math.degrees(math.atan2(ly2 - ly1, lx2 - lx1))) % 180
        vertical = abs(ang - 90) < 20
        horizontal = ang < 20 or ang > 160
        mx, my = (lx1 + lx2) / 2, (ly1 + ly2) / 2
        if vertical and min(ly1, ly2) < y2 and max(ly1, ly2) > y1:
            if span > 0 and not (min(ly1, ly2) <= lo_y and max(ly1, ly2) >= hi_y):
                continue
            if mx < x1:
                offsets[0] = min(offsets[0], (x1 - mx) / fw)
            elif mx > x2:
                offsets[2] = min(offsets[2], (mx - x2) / fw)
        elif horizontal and min(lx1, lx2) < x2 and max(lx1, lx2) > x1:
            if span > 0 and not (min(lx1, lx2) <= lo_x and max(lx1, lx2) >= hi_x):
                continue
            if my < y1:
                offsets[1] = min(offsets[1], (y1 - my) / fw)
            elif my > y2:
                offsets[3] = min(offsets[3], (my - y2) / fw)
    offs = [o if o <= max_offset else float("nan") for o in offsets]
    return offs[0], offs[1], offs[2], offs[3]


def edge_enclosure(frame: NDArray[np.uint8], box: Box) -> tuple[int, tuple[float, float, float, float]]:
    """Sides of the face flanked by a long straight edge, and each side's nearest edge offset
    from the face box in face widths (NaN where none). Lines from Canny + probabilistic Hough."""
    offs = side_offsets(outside_lines(frame, box), box)
    return sum(1 for o in offs if not math.isnan(o)), offs


def enclosure_fires(frame: NDArray[np.uint8], box: Box) -> tuple[int, bool]:
    """The per-frame enclosure rule (benchmarks/cue_eval.py): sides flanked by a line that runs
    ENCLOSURE_SPAN face sizes past both ends of the face within ENCLOSURE_MAX_OFFSET face widths,
    and whether that is >= ENCLOSURE_MIN_SIDES. Cheap (Canny + Hough outside the face, ~0.5 ms)."""
    size = (frame.shape[1], frame.shape[0]) if ENCLOSURE_BORDER else None
    offs = side_offsets(outside_lines(frame, box), box, ENCLOSURE_MAX_OFFSET, ENCLOSURE_SPAN, size)
    sides = sum(1 for o in offs if not math.isnan(o))
    return sides, sides >= ENCLOSURE_MIN_SIDES


def enclosure_session(fired: Sequence[bool]) -> bool | None:
    """Session vote over the frames the rule ran on: flagged when at least ENCLOSURE_VOTE of them
    fired (None without frames). A session vote, not one frame: a door frame seen once does not flag."""
    if not fired:
        return None
    return sum(bool(f) for f in fired) / len(fired) >= ENCLOSURE_VOTE - 1e-9


def moire_score(frame: NDArray[np.uint8], box: Box, size: int = 128) -> float:
    """Peak-to-median ratio of the face region's spectrum in the upper frequency band (0.25-0.5 of
    Nyquist-normalised radius), after removing the low-frequency trend. Larger = more periodic."""
    x1, y1, x2, y2 = _face_rect(box, frame.shape)
    if x2 - x1 < 16 or y2 - y1 < 16:
        return float("nan")
    crop = cv2.cvtColor(frame[y1:y2, x1:x2], cv2.COLOR_BGR2GRAY).astype(np.float32)
    grey = np.asarray(cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA), dtype=np.float32)
    hp = grey - np.asarray(cv2.GaussianBlur(grey, (0, 0), 3.0), dtype=np.float32)
    win = np.outer(np.hanning(size), np.hanning(size)).astype(np.float32)
    mag = np.abs(np.fft.fftshift(np.fft.fft2(hp * win)))
    yy, xx = np.mgrid[0:size, 0:size]
    r = np.hypot(xx - size / 2, yy - size / 2) / (size / 2)
    band = mag[(r > 0.25) & (r < 0.5)]
    med = float(np.median(band))
    return float(band.max() / med) if med > 0 else float("nan")


def specular_share(frame: NDArray[np.uint8], box: Box) -> float:
    """Share of the face region's pixels that are near-white and colourless (V > 235, S < 40)."""
    x1, y1, x2, y2 = _face_rect(box, frame.shape)
    if x2 <= x1 or y2 <= y1:
        return float("nan")
    hsv = cv2.cvtColor(frame[y1:y2, x1:x2], cv2.COLOR_BGR2HSV)
    return float(((hsv[..., 2] > 235) & (hsv[..., 1] < 40)).mean())


def frame_cues(frame: NDArray[np.uint8], box: Box) -> FrameCues:
    sides, offs = edge_enclosure(frame, box)
    return FrameCues(sides, offs, moire_score(frame, box), specular_share(frame, box))


def _rigidity(per: Sequence[FrameCues], boxes: Sequence[Box]) -> tuple[bool | None, float | None]:
    """Do the flanking edges keep their offset to the face while the face moves? The std over
    frames of each side's offset (face widths), averaged over sides seen in >= half the frames;
    decided only when the face centre moved by at least 0.1 face widths."""
    if len(per) < 3:
        return None, None
    centres = np.array([[(float(b[0]) + float(b[2])) / 2, (float(b[1]) + float(b[3])) / 2] for b in boxes])
    width = float(np.median([float(b[2]) - float(b[0]) for b in boxes]))
    moved = float(np.max(np.linalg.norm(centres - centres[0], axis=1))) / max(width, 1.0)
    offs = np.array([c.offsets for c in per], dtype=np.float64)
    stds = [float(np.nanstd(offs[:, k])) for k in range(4) if np.sum(~np.isnan(offs[:, k])) >= max(3, len(per) / 2)]
    if not stds or moved < 0.1:
        return None, (float(np.mean(stds)) if stds else None)
    s = float(np.mean(stds))
    return s < RIGID_MAX_STD, s


def analyze(frames: Sequence[NDArray[np.uint8]], boxes: Sequence[Box | None]) -> CueReport:
    """Cues of one session: ``frames`` full BGR camera frames, ``boxes`` the main face box per
    frame (x1, y1, x2, y2) or None. Frames without a face are skipped."""
    if len(frames) != len(boxes):
        raise ValueError("one box (or None) per frame")
    pairs = [(f, b) for f, b in zip(frames, boxes, strict=True) if b is not None]
    if not pairs:
        return CueReport(0, float("nan"), None, None, float("nan"), float("nan"))
    per = [frame_cues(f, b) for f, b in pairs]
    enclosure = float(np.median([c.sides for c in per]))
    rigid, rstd = _rigidity(per, [b for _, b in pairs])
    moire = float(np.nanmedian([c.moire for c in per])) if any(not math.isnan(c.moire) for c in per) else math.nan
    spec = float(np.nanmedian([c.specular for c in per])) if any(not math.isnan(c.specular) for c in per) else math.nan
    flags = []
    if TRUSTED["enclosure"] and enclosure >= ENCLOSURE_MIN_SIDES and rigid:
        flags.append("enclosure")
    if TRUSTED["moire"] and moire >= MOIRE_MIN:
        flags.append("moire")
    if TRUSTED["specular"] and spec >= SPECULAR_MIN:
        flags.append("specular")
    return CueReport(len(pairs), enclosure, rigid, rstd, moire, spec, tuple(flags))
