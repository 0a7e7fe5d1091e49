"""Synthesised full-frame presentation attacks and genuine sequences (importable; used by
benchmarks/pad_eval.py and by the browser tests' fake camera).

Everything is made from ../shared/faces with OpenCV and numpy; nothing is downloaded. How:

* **Camera** (:class:`Camera`, applied to EVERY frame, genuine or attack): 3:4 portrait frame
  (480x640 by default), a slight defocus blur, Gaussian sensor noise, JPEG at quality 85 (what
  the page uploads); :meth:`Camera.random` draws defocus, noise, JPEG quality and exposure
  per session (a different phone and room light).
* **Background** (:func:`background`): a procedural room — a vertical wall gradient, a door or
  window as a light rectangle with straight edges (so genuine frames have straight lines too,
  and the bezel cue cannot just find "any rectangle"), a few blurred blobs.
* **Phone-screen replay** (:class:`PhoneScreen`): the source footage is centre-cropped to a
  9:19.5 portrait screen, shown with a display's tone curve (raised black level, lower contrast,
  slight blue tint), an RGB sub-pixel stripe pattern at ~3 screen pixels whose resampling by the
  camera makes moiré, a soft moving glare (a specular ellipse), a black bezel with rounded
  corners and a grey phone body; the phone is perspective-warped (tilt +-8 % of its size per
  corner) into the frame at 40-75 % of the frame width, and moves by a smooth random walk
  (hand tremor: ~1-2 % of the frame per second, +-2 degrees of rotation), in front of a background.
  Each artefact has a switch (``glare``, ``subpixel``, ``tone``, ``tint``, ``bezel``, ``body_grey``; session 7,
  benchmarks/replay_sweep.py); the defaults draw them all, and a switch never changes the generator's draws.
* **Hand-held print** (:class:`PaperPrint`): the photo is "printed" (lower contrast and
  saturation, warm paper white, fine halftone noise) with a white margin of 6-12 % of its size,
  curled (a cylindrical bend: columns shift in depth and get a cosine shading), tilted back and
  forth (a perspective tilt that varies sinusoidally, up to ~12 degrees-equivalent, i.e. the
  attacker "nods" the paper), held at 60-85 % of the frame width in front of a background with all
  four paper edges visible.
* **Cut-out print** (:class:`CutoutPrint`, session 13; benchmarks/cutout.py): the pensioner's printed photo with
  the mouth (and the eyes) cut out (:func:`hole_mask`), held over the attacker's face: his REAL mouth / eyes (frames
  of a real clip, aligned onto the printed ones) show through the holes and open / blink when he does; the paper is
  a FLAT plane turned in 3D (:func:`plane_homography`: pinhole camera, an axis behind the paper) to act a turn or
  nod, with hand tremor. Not modelled: curl, the parallax between the paper and the face behind it, glare.
* **Still photo** (:func:`still_on_screen`): one photo on the phone screen, repeated (tremor only).
* **Head motion** (:func:`turn_head`): no head-turn video exists in ../shared, so turns and nods
  are made by re-projecting the face region of a real frame onto a cylinder (vertical axis for
  yaw, horizontal for pitch) and rotating it: the nose moves by R·sin(angle) while the face's
  sides compress, as on a turning head; outside an ellipse around the face the frame is unchanged
  (blended). It is a 2D warp: real footage of a turning head has parallax this lacks.
  **Depth-aware turn** (:func:`turn_head_3d`, session 6; pad_eval's genuine sessions since g4): the head as
  an ellipsoid over the face outline with the nose standing out of it, sized from the frame's own 68
  landmarks with anthropometric ratios (Farkas 1994; Goode's nasal tip projection), rotated and ray-cast
  in weak perspective, so the nose moves against the face outline as on a real head (the flat-photo test's
  nose parallax); validated against real measurements by benchmarks/turn_synth.py (README ``turn_synth``).
  **Calibrated amplitude** (session 3): the same warp angle reads very differently per clip. Measured with
  dlib (geometry.yaw_ratio change, median of 8 frames, benchmarks/pad_eval.turn_table): a "45 degree" warp
  gives talking_head_a 0.65 left / 0.43 right but blink_7_times_1080p only ~0.2-0.3 (see the tables in
  pad_eval's cache, turns-*.json, and notes/bench-3.md) — i.e. the blink clip's "45 degree" turn read like a
  REAL ~15 degree turn, at liveness turn_yaw 0.22, and most genuine turn_right failures came from it. A real
  turn measured on ../shared/faces (photos/ turned 8-26 degrees by solvePnP: median 0.0145 per degree;
  pose/lower_face 35 degrees: 0.57) gives REAL_YAW_RATIO_PER_DEG = 0.015. So a session now draws the real
  turn a person makes (TURN_REAL_DEG, 20-40 degrees: an assumption) and :func:`turn_warp_for` picks the
  warp angle whose measured change on that clip reaches 0.015 x that angle (capped where the warp stops
  growing; the clip's reach is kept with the session). Genuine and cued-replay sessions use the same rule.
* **A real print turned as a sheet** (:func:`print_turned`, :func:`paced_pose`; session 13,
  benchmarks/flat_eval.py): a camera frame of a held print warped by the exact homography of the print's plane
  turned or nodded in 3D about the face's centre (or by the ray-cast of the same sheet bowed into a cylinder),
  along a paced out-and-back movement: the flat-photo test's tilted prints, made of REAL print frames.
* **Acting the challenges** (:func:`act`): given drawn challenges and a reaction delay, a
  schedule picks per output frame a source frame of the footage and a (yaw, pitch) warp: blinks
  and mouth openings are cued from the footage's own blink/mouth frames (found with the
  engine's 68 landmarks), turns and nods are warps ramping up and back over ~1.2 s. The cued
  replay puts that acted footage on the phone screen; the genuine sequences use it directly as
  the camera frame (synthetic head turns of real footage — say so when reporting).
* **Hearing an action hint** (:meth:`Actor.hint`, session 7): production's first action hint of a step is
  heard once the page has said it (:func:`hint_speech_ms`: the page's Mandarin text at an ASSUMED speech rate)
  and acted on after the person's own delay: the turn again (farther after TURN_MORE), another of the clip's
  blink / mouth frames; the cued-replay attacker re-cues the same way. Nothing measured backs the speech rate.
* **A synthetic mouth opening** (:func:`open_mouth`, :class:`MouthAct`; session 11): production draws open_mouth
  in every set, and blink_7_times_1080p never opens its mouth, so a GENUINE person acting it from that clip
  opens it by a warp of the lower face (lower lip and jaw down, a dark inner mouth drawn in the gap; ramp, hold
  0.6-1.2 s, close). Checked by benchmarks/mouth_synth.py (production's MAR over the threshold; PAD of the
  same frames warped vs not). The cued-replay attacker does not get it (found footage) except in pad_eval's
  "edited" row.
* **Genuine crops in full frames** (:func:`place_crop`): NUAA / apfol real face crops pasted
  on a background with a feathered elliptical mask (no hard edge), face at ~40 % of the width.
* **Late start**: the first ``late_ms`` of a sequence show only the background (face not yet in
  view); **slow reaction**: the action starts ``delay_ms`` after each prompt (2.5 s in the
  "slow" variant against ~0.8 s normally).

Deterministic for a given ``numpy.random.Generator`` seed. Frames are (H, W, 3) uint8 BGR.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

Image = NDArray[np.uint8]
CAMERA = (480, 640)  # width, height: a portrait phone camera frame


# -- camera and scene ---------------------------------------------------------------------------


@dataclass
class Camera:
    """The phone camera every frame passes through: defocus, noise, JPEG."""

    rng: np.random.Generator
    blur_sigma: float = 0.7
    noise_sigma: float = 2.5
    jpeg_quality: int = 85
    gain: float = 1.0  # exposure: < 1 is a dim room (the noise stays, so the picture gets noisier)

    @classmethod
    def random(cls, rng: np.random.Generator) -> Camera:
        """A different phone and room light per session: defocus 0.4-1.2 px, noise 1.5-4.5 grey
        levels, JPEG 70-92, exposure 0.6-1.15 (elderly users often sit in dim rooms)."""
        return cls(rng, blur_sigma=float(rng.uniform(0.4, 1.2)), noise_sigma=float(rng.uniform(1.5, 4.5)),
                   jpeg_quality=int(rng.integers(70, 93)), gain=float(rng.uniform(0.6, 1.15)))

    def shoot(self, scene: Image) -> Image:
        img = cv2.GaussianBlur(scene, (0, 0), self.blur_sigma) if self.blur_sigma > 0 else scene
        noisy = img.astype(np.float32) * np.float32(self.gain)
        noisy += self.rng.normal(0.0, self.noise_sigma, img.shape).astype(np.float32)
        img = np.clip(noisy, 0, 255).astype(np.uint8)
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
        if not ok:  # pragma: no cover - OpenCV always encodes a uint8 image
            return img
        return np.asarray(cv2.imdecode(buf, cv2.IMREAD_COLOR), dtype=np.uint8)


def background(rng: np.random.Generator, size: tuple[int, int] = CAMERA) -> Image:
    """A procedural room: wall gradient, one door/window rectangle, blurred furniture blobs."""
    w, h = size
    top = rng.uniform(90, 210, 3)
    bottom = top * rng.uniform(0.55, 0.9)
    ramp = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    img = (top[None, None, :] * (1 - ramp) + bottom[None, None, :] * ramp) * np.ones((1, w, 1), np.float32)
    # a door or window: light rectangle with straight edges, partly out of frame
    x1 = int(rng.uniform(-0.3, 0.6) * w)
    y1 = int(rng.uniform(-0.2, 0.3) * h)
    x2 = x1 + int(rng.uniform(0.3, 0.7) * w)
    y2 = y1 + int(rng.uniform(0.4, 0.9) * h)
    colour = np.clip(top * rng.uniform(1.05, 1.4), 0, 255)
    cv2.rectangle(img, (x1, y1), (x2, y2), colour.tolist(), -1)
    cv2.rectangle(img, (x1, y1), (x2, y2), (colour * 0.6).tolist(), max(2, w // 120))
    for _ in range(int(rng.integers(2, 5))):
        c = (int(rng.uniform(0, w)), int(rng.uniform(0.4, 1.0) * h))
        ax = (int(rng.uniform(0.05, 0.25) * w), int(rng.uniform(0.05, 0.2) * h))
        cv2.ellipse(img, c, ax, 0, 0, 360, rng.uniform(30, 200, 3).tolist(), -1)
    img = cv2.GaussianBlur(img, (0, 0), 3.0)
    return np.clip(img, 0, 255).astype(np.uint8)


def fit_cover(src: Image, size: tuple[int, int]) -> Image:
    """Scale and centre-crop ``src`` to exactly ``size`` (width, height), keeping its aspect."""
    w, h = size
    sh, sw = src.shape[:2]
    s = max(w / sw, h / sh)
    r = cv2.resize(src, (max(w, round(sw * s)), max(h, round(sh * s))), interpolation=cv2.INTER_AREA if s < 1 else
                   cv2.INTER_LINEAR)
    y0 = (r.shape[0] - h) // 2
    x0 = (r.shape[1] - w) // 2
    return np.ascontiguousarray(r[y0 : y0 + h, x0 : x0 + w])


def _paste(dst: Image, src: Image, alpha: NDArray[np.float32]) -> Image:
    a = alpha[..., None]
    return np.clip(dst.astype(np.float32) * (1 - a) + src.astype(np.float32) * a, 0, 255).astype(np.uint8)


@dataclass
class Tremor:
    """A smooth random walk of a held object's pose: (dx, dy) in frame fractions, rotation degrees."""

    rng: np.random.Generator
    amp: float = 0.015
    rot_deg: float = 2.0
    state: NDArray[np.float64] = field(default_factory=lambda: np.zeros(3))

    def step(self) -> tuple[float, float, float]:
        self.state = 0.85 * self.state + self.rng.normal(0, 1, 3) * np.array([self.amp, self.amp, self.rot_deg]) * 0.4
        return float(self.state[0]), float(self.state[1]), float(self.state[2])


def _quad(cx: float, cy: float, w: float, h: float, rot_deg: float, tilt: NDArray[np.float64]) -> NDArray[np.float32]:
    """Corners (TL, TR, BR, BL) of a w x h rectangle centred at (cx, cy), rotated, each corner moved
    by ``tilt`` (4, 2) fractions of (w, h) — a perspective tilt."""
    base = np.array([[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]])
    base = base + tilt * np.array([w, h])
    a = math.radians(rot_deg)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return (base @ rot.T + np.array([cx, cy])).astype(np.float32)


def _warp_onto(scene: Image, obj: Image, obj_alpha: NDArray[np.float32], quad: NDArray[np.float32]) -> Image:
    h, w = obj.shape[:2]
    src = np.float32([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]])
    m = cv2.getPerspectiveTransform(src, quad)
    size = (scene.shape[1], scene.shape[0])
    warped = cv2.warpPerspective(obj, m, size, flags=cv2.INTER_LINEAR)
    a = cv2.warpPerspective(obj_alpha, m, size, flags=cv2.INTER_LINEAR)
    return _paste(scene, warped, a)


# -- phone-screen replay --------------------------------------------------------------------------


@dataclass
class PhoneScreen:
    """A phone held in front of the camera showing footage; :meth:`render` one source frame at a time."""

    rng: np.random.Generator
    size: tuple[int, int] = CAMERA
    scene: Image | None = None
    width_frac: float | None = None  # phone width / frame width (default: random 0.4-0.75)
    tremor_amp: float = 0.012
    centre: tuple[float, float] = (0.5, 0.5)  # where the phone is held, fractions of the frame (off-centre: close)
    tilt_scale: float = 1.0  # scales the random perspective tilt of the corners
    # Artefact switches (benchmarks/replay_sweep.py turns them off one at a time); the defaults draw every
    # artefact as before. Switching one off never changes what the generator draws, so the same seed gives
    # the same phone, pose and tremor with and without it.
    glare: bool = True  # the drifting specular ellipse (+110 grey levels at its centre)
    subpixel: bool = True  # RGB sub-pixel stripes (12 % modulation): the camera resamples them into moiré
    tone: bool = True  # the display's tone curve: raised black level, lower contrast
    tint: bool = True  # the display's bluish white point
    bezel: bool = True  # False: an edge-to-edge screen (no black bezel, no phone body around the picture)
    body_grey: int | None = None  # the phone body's grey level (None: drawn 40-90 per frame, as before)
    last_quad: NDArray[np.float32] | None = field(init=False, default=None)  # corners drawn by the last render
    _tremor: Tremor = field(init=False)
    _tilt: NDArray[np.float64] = field(init=False)
    _glare: NDArray[np.float64] = field(init=False)
    _t: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        if self.scene is None:
            self.scene = background(self.rng, self.size)
        if self.width_frac is None:
            self.width_frac = float(self.rng.uniform(0.4, 0.75))
        self._tremor = Tremor(self.rng, self.tremor_amp)
        self._tilt = self.rng.uniform(-0.08, 0.08, (4, 2)) * self.tilt_scale
        self._glare = np.array([self.rng.uniform(0.1, 0.9), self.rng.uniform(0.1, 0.9), self.rng.uniform(0.1, 0.3)])
        self._pitch = float(self.rng.uniform(2.6, 3.4))  # sub-pixel stripe period, screen pixels
        self._tint = self.rng.uniform([1.0, 0.97, 0.85], [1.08, 1.02, 0.97])  # B, G, R gains: bluish

    def _body_size(self) -> tuple[int, int, int]:
        """The phone's (width, height) and bezel width in camera pixels, before the warp."""
        assert self.width_frac is not None
        pw = int(self.size[0] * self.width_frac)
        return pw, int(pw * 2.05), max(3, pw // 28)  # 9:18.5 body

    def screen_size(self) -> tuple[int, int]:
        """The picture's (width, height) in camera pixels before the warp (what :meth:`render`'s source is
        scaled to cover)."""
        pw, ph, bezel = self._body_size()
        if self.bezel:
            return pw - 2 * bezel - 2, ph - 2 * bezel - 2 * (bezel + 4)
        return pw, ph  # the picture covers the whole front, to the rounded corners

    def _phone(self, src: Image) -> tuple[Image, NDArray[np.float32]]:
        pw, ph, bezel = self._body_size()
        grey = self.rng.integers(40, 90)  # drawn even when body_grey is set: the generator's sequence is kept
        body = np.full((ph, pw, 3), grey if self.body_grey is None else self.body_grey, np.uint8)
        alpha = np.zeros((ph, pw), np.float32)
        r = pw // 9
        cv2.rectangle(alpha, (r, 0), (pw - 1 - r, ph - 1), 1.0, -1)
        cv2.rectangle(alpha, (0, r), (pw - 1, ph - 1 - r), 1.0, -1)
        for cx, cy in ((r, r), (pw - 1 - r, r), (r, ph - 1 - r), (pw - 1 - r, ph - 1 - r)):
            cv2.circle(alpha, (cx, cy), r, 1.0, -1)
        sw, sh = self.screen_size()
        screen = fit_cover(src, (sw, sh)).astype(np.float32)
        # display tone curve: raised blacks, lower contrast; blue tint
        if self.tone:
            screen = 18 + screen * 0.86
        if self.tint:
            screen = screen * self._tint
        # RGB sub-pixel stripes: the camera resamples them into moiré
        if self.subpixel:
            xs = np.arange(sw, dtype=np.float32)
            stripes = 0.88 + 0.12 * np.cos(2 * np.pi * xs / self._pitch)
            screen = screen * stripes[None, :, None]
        # glare: a soft specular ellipse that drifts
        if self.glare:
            gx, gy, gs = self._glare
            gx = gx + 0.05 * math.sin(self._t / 7.0)
            yy, xx = np.mgrid[0:sh, 0:sw].astype(np.float32)
            d = ((xx / sw - gx) / gs) ** 2 + ((yy / sh - gy) / (gs * 1.6)) ** 2
            screen = screen + 110.0 * np.exp(-d)[..., None]
        if not self.bezel:
            return np.clip(screen, 0, 255).astype(np.uint8), alpha
        y0 = bezel + bezel + 4
        body[bezel : ph - bezel, bezel : pw - bezel] = 10  # black bezel
        body[y0 : y0 + sh, bezel + 1 : bezel + 1 + sw] = np.clip(screen, 0, 255).astype(np.uint8)
        return body, alpha

    def render(self, src: Image) -> Image:
        """The scene with the phone showing ``src`` (any size, BGR), before the camera."""
        assert self.scene is not None
        self._t += 1
        phone, alpha = self._phone(src)
        dx, dy, rot = self._tremor.step()
        fw, fh = self.size
        ph, pw = phone.shape[:2]
        quad = _quad(fw * (self.centre[0] + dx), fh * (self.centre[1] + dy), pw, ph, rot, self._tilt)
        self.last_quad = quad
        return _warp_onto(self.scene, phone, alpha, quad)


# -- hand-held print --------------------------------------------------------------------------------


def print_look(img: Image, rng: np.random.Generator) -> NDArray[np.float32]:
    """``img`` (BGR) as printed on paper, float32 0-255: lower contrast and saturation, a raised black level, a
    halftone-like grain (one draw of ``rng``)."""
    f = img.astype(np.float32)
    grey = f.mean(axis=2, keepdims=True)
    f = grey + (f - grey) * 0.8
    f = 25 + f * 0.82
    return np.asarray(f + rng.normal(0, 4.0, f.shape[:2])[..., None], np.float32)


@dataclass
class PaperPrint:
    """A photo printed on paper, curled, held and tilted in front of the camera."""

    rng: np.random.Generator
    photo: Image
    size: tuple[int, int] = CAMERA
    scene: Image | None = None
    tilt_amp: float = 0.10  # peak perspective tilt (corner move / side); the paper is "nodded"
    _tremor: Tremor = field(init=False)
    _paper: Image = field(init=False)
    _alpha: NDArray[np.float32] = field(init=False)
    _t: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        if self.scene is None:
            self.scene = background(self.rng, self.size)
        self._tremor = Tremor(self.rng, 0.01, 1.5)
        fw = self.size[0]
        pw = int(fw * self.rng.uniform(0.6, 0.85))
        img = fit_cover(self.photo, (pw, int(pw * 1.25)))
        f = print_look(img, self.rng)
        margin = int(pw * self.rng.uniform(0.06, 0.12))
        paper_white = np.array([225, 238, 244], np.float32) * self.rng.uniform(0.85, 1.0)
        paper = np.empty((img.shape[0] + 2 * margin, pw + 2 * margin, 3), np.float32)
        paper[:] = paper_white
        paper[margin : margin + img.shape[0], margin : margin + pw] = f
        # curl: columns bend in depth -> horizontal compression toward the edges + cosine shading
        ph_, pw_ = paper.shape[:2]
        bend = self.rng.uniform(0.15, 0.45)
        u = np.linspace(-1, 1, pw_, dtype=np.float32)
        src_x = ((np.sin(u * bend * math.pi / 2) / math.sin(bend * math.pi / 2)) + 1) * (pw_ - 1) / 2
        map_x = np.tile(src_x[None, :], (ph_, 1)).astype(np.float32)
        map_y = np.tile(np.arange(ph_, dtype=np.float32)[:, None], (1, pw_))
        curled = cv2.remap(paper, map_x, map_y, cv2.INTER_LINEAR)
        shade = (0.78 + 0.22 * np.cos(u * bend * math.pi / 2)) * self.rng.uniform(0.85, 1.05)
        curled = curled * shade[None, :, None]
        self._paper = np.clip(curled, 0, 255).astype(np.uint8)
        self._alpha = np.ones(self._paper.shape[:2], np.float32)
        self._phase = float(self.rng.uniform(0, 2 * math.pi))

    def render(self) -> Image:
        assert self.scene is not None
        self._t += 1
        dx, dy, rot = self._tremor.step()
        fw, fh = self.size
        ph, pw = self._paper.shape[:2]
        s = math.sin(self._t / 4.0 + self._phase) * self.tilt_amp
        # tilt about the horizontal axis: top edge narrower/wider than the bottom (a nod of the paper)
        tilt = np.array([[s / 2, s / 3], [-s / 2, s / 3], [0, 0], [0, 0]])
        quad = _quad(fw * (0.5 + dx), fh * (0.52 + dy), pw, ph, rot, tilt)
        return _warp_onto(self.scene, self._paper, self._alpha, quad)


# -- a cut-out print: the pensioner's photo with holes, the attacker behind them (session 13) ----------------

# The holes an attacker cuts (ASSUMED sizes, chosen by eye before any run), from the PRINTED face's 68 landmarks:
# the mouth hole is an ellipse over the mouth, CUT_MOUTH_WIDE x the mouth's width (48-54) wide, from
# CUT_MOUTH_TOP of the way from the nose's base (33) to the upper lip (51) down to CUT_MOUTH_BOTTOM of the way
# from the lower lip (57) to the chin (8): room for the attacker's lips to part and his jaw to drop behind it.
# An eye hole is an ellipse over the eye, CUT_EYE_WIDE x the eye's width (36-39 / 42-45) wide, CUT_EYE_HIGH x
# its width high.
CUT_MOUTH_WIDE = 1.5
CUT_MOUTH_TOP = 0.35
CUT_MOUTH_BOTTOM = 0.5
CUT_EYE_WIDE = 1.5
CUT_EYE_HIGH = 0.8
# The ADAPTIVE attacker (session 14), who knows the jaw test (lifecert/engine/jaw.py: the chin must drop when the
# lips part) and cuts so that his OWN chin shows and moves (ASSUMED shapes, chosen by eye before any run):
# ``lower_face``: everything of the printed face below the nose: from CUT_LOWER_TOP of the way from the nose's base
# (33) to the upper lip (51) down along the printed jaw line (points 2-14), the outline pushed out from the nose's
# base by CUT_LOWER_GROW (x, y) (its sides at the printed cheeks, its bottom past the printed chin): his mouth, chin
# and jaw line in place of hers. ``mouth_chin``: the mouth hole plus a chin slot: an ellipse over the printed chin
# (8), CUT_CHIN_WIDE x the chin's width (6-10) wide, from CUT_CHIN_TOP of the way from the lower lip (57) to the
# chin down to CUT_CHIN_BELOW of that distance below the chin (a paper bridge left between the two holes). For both,
# he lines his lower face up with the print's (its scale when printed, where he holds it): his reference face mapped
# onto the printed one by a similarity on the nose's base, the mouth corners AND the jaw (LOWER_ANCHOR_68), not on
# the nose and mouth alone (MOUTH_ANCHOR_68), so his chin lies behind the printed chin.
CUT_LOWER_TOP = 0.25
CUT_LOWER_GROW = (1.05, 1.3)
CUT_CHIN_WIDE = 1.2
CUT_CHIN_TOP = 0.62
CUT_CHIN_BELOW = 0.45
CUTS = ("mouth", "lower_face", "mouth_chin")
CUT_RIM_SHADE = 0.35  # the paper's cut edge shades the skin behind it by up to this much, over CUT_RIM_PX
CUT_RIM_PX = 3.0
# Where the attacker holds the paper (the page's oval asks for a face of 0.50-0.70 of the frame's width):
# ``close``: the print is larger than the view, its edges out of the picture; else the paper's four edges in view.
CUT_FACE_CLOSE = (0.52, 0.66)
CUT_FACE_EDGE = (0.42, 0.52)
CUT_PICTURE_CLOSE = (3.2, 4.2)  # the printed picture's (width, height) in face widths
CUT_PICTURE_EDGE = (1.45, 1.9)
CUT_FOCAL = 433.0  # camera focal length, pixels of a 480-wide frame: ~58 degrees across (a phone's front camera)
CUT_PIVOT_DEPTH = 0.7  # the paper turns with the attacker's head: about an axis this many face widths behind it


def hole_mask(landmarks68: NDArray[np.floating], size: tuple[int, int], eyes: bool = False,
              cut: str = "mouth") -> NDArray[np.float32]:
    """Where the paper is cut away, (h, w) float32 1 = hole (anti-aliased edge), for a printed face with
    ``landmarks68`` ((68, 2) pixels of an image of ``size`` (width, height)): the mouth hole (``cut`` "mouth"; see
    CUT_MOUTH_*), the mouth hole and a chin slot ("mouth_chin", CUT_CHIN_*) or the whole face below the nose
    ("lower_face", CUT_LOWER_*); with ``eyes`` the two eye holes too (CUT_EYE_*)."""
    if cut not in CUTS:
        raise ValueError(f"unknown cut {cut!r} (one of {CUTS})")
    lm = np.asarray(landmarks68, np.float64)
    w, h = size
    ss = 4  # drawn at 4x and averaged down: a clean cut edge without a staircase
    big = np.zeros((h * ss, w * ss), np.uint8)

    def ellipse(cx: float, cy: float, ax: float, ay: float, angle: float) -> None:
        cv2.ellipse(big, (round(cx * ss), round(cy * ss)), (max(1, round(ax * ss)), max(1, round(ay * ss))),
                    angle, 0, 360, 255, -1, cv2.LINE_AA)

    roll = math.degrees(math.atan2(lm[54, 1] - lm[48, 1], lm[54, 0] - lm[48, 0]))
    if cut == "lower_face":
        # the printed jaw line below the cut's top edge, pushed out from the nose's base; the top edge a straight cut
        top = lm[33, 1] + CUT_LOWER_TOP * (lm[51, 1] - lm[33, 1])
        base = lm[33]
        jaw = base + np.array(CUT_LOWER_GROW) * (lm[2:15] - base)
        below = jaw[jaw[:, 1] > top]
        left, right = jaw[0], jaw[-1]  # where the pushed-out jaw line crosses the top edge (or starts below it)
        for i in range(len(jaw) - 1):
            a, b = jaw[i], jaw[i + 1]
            if a[1] <= top < b[1]:
                left = a + (top - a[1]) / (b[1] - a[1]) * (b - a)
            if b[1] <= top < a[1]:
                right = b + (top - b[1]) / (a[1] - b[1]) * (a - b)
        poly = np.vstack([[left[0], top], below, [right[0], top]])
        cv2.fillPoly(big, [np.round(poly * ss).astype(np.int32)], 255, cv2.LINE_AA)
    else:
        mouth_w = float(np.linalg.norm(lm[54] - lm[48]))
        top = lm[33, 1] + CUT_MOUTH_TOP * (lm[51, 1] - lm[33, 1])
        bottom = lm[57, 1] + CUT_MOUTH_BOTTOM * (lm[8, 1] - lm[57, 1])
        ellipse(float(lm[48:60, 0].mean()), (top + bottom) / 2, CUT_MOUTH_WIDE * mouth_w / 2, (bottom - top) / 2,
                roll)
    if cut == "mouth_chin":
        drop = float(lm[8, 1] - lm[57, 1])
        top, bottom = lm[57, 1] + CUT_CHIN_TOP * drop, lm[8, 1] + CUT_CHIN_BELOW * drop
        ellipse(float(lm[8, 0]), (top + bottom) / 2, CUT_CHIN_WIDE * float(np.linalg.norm(lm[10] - lm[6])) / 2,
                (bottom - top) / 2, roll)
    if eyes:
        for a, b in ((36, 42), (42, 48)):
            e = lm[a:b]
            ew = float(np.linalg.norm(e[3] - e[0]))
            ang = math.degrees(math.atan2(e[3, 1] - e[0, 1], e[3, 0] - e[0, 0]))
            c = e.mean(axis=0)
            ellipse(float(c[0]), float(c[1]), CUT_EYE_WIDE * ew / 2, CUT_EYE_HIGH * ew / 2, ang)
    small = cv2.resize(big, (w, h), interpolation=cv2.INTER_AREA)
    return np.asarray(small, np.float32) / 255.0


def plane_homography(pivot_src: tuple[float, float], scale: float, at: tuple[float, float], yaw_deg: float,
                     pitch_deg: float, roll_deg: float = 0.0, size: tuple[int, int] = CAMERA,
                     focal: float = CUT_FOCAL, pivot_depth: float = 0.0) -> NDArray[np.float64]:
    """The 3x3 homography from a flat picture's pixels to the camera frame when the picture is a plane turned in
    3D: facing the camera, the picture's point ``pivot_src`` lands at frame pixel ``at`` with ``scale`` frame
    pixels per picture pixel, at the depth where one frame pixel is one unit (``focal``); then the plane turns
    about an axis ``pivot_depth`` frame pixels BEHIND that point (a head's axis: the plane swings sideways as it
    turns) by ``yaw_deg`` (> 0: its image-right side goes away from the camera, so the picture's content shifts
    toward image right, as a nose does in :func:`turn_head`), ``pitch_deg`` (> 0: its bottom goes away, as in a
    nod down) and ``roll_deg`` (in the image plane), and is projected by a pinhole camera (principal point at the
    frame's centre). A real perspective projection: the far side shrinks."""
    w, h = size
    cy_, sy = math.cos(math.radians(yaw_deg)), math.sin(math.radians(yaw_deg))
    cp, sp = math.cos(math.radians(pitch_deg)), math.sin(math.radians(pitch_deg))
    cr, sr = math.cos(math.radians(roll_deg)), math.sin(math.radians(roll_deg))
    r_yaw = np.array([[cy_, 0.0, -sy], [0.0, 1.0, 0.0], [sy, 0.0, cy_]])  # (X, 0, 0) -> (X cos, 0, X sin)
    r_pitch = np.array([[1.0, 0.0, 0.0], [0.0, cp, -sp], [0.0, sp, cp]])  # (0, Y, 0) -> (0, Y cos, Y sin)
    r_roll = np.array([[cr, -sr, 0.0], [sr, cr, 0.0], [0.0, 0.0, 1.0]])
    rot = r_roll @ r_pitch @ r_yaw
    pivot = np.array([0.0, 0.0, pivot_depth])
    t = pivot - rot @ pivot + np.array([at[0] - w / 2, at[1] - h / 2, focal])
    k = np.array([[focal, 0.0, w / 2], [0.0, focal, h / 2], [0.0, 0.0, 1.0]])
    a = np.array([[scale, 0.0, -scale * pivot_src[0]], [0.0, scale, -scale * pivot_src[1]], [0.0, 0.0, 1.0]])
    m = k @ np.column_stack([rot[:, 0], rot[:, 1], t]) @ a
    return np.asarray(m / m[2, 2], np.float64)


def _similarity(src: NDArray[np.float64], dst: NDArray[np.float64]) -> NDArray[np.float64]:
    """The 2x3 least-squares similarity transform src -> dst ((n, 2) points each)."""
    m, _ = cv2.estimateAffinePartial2D(src.astype(np.float32), dst.astype(np.float32), method=cv2.LMEDS)
    if m is None:  # pragma: no cover - only for degenerate points
        raise ValueError("no similarity fits these points")
    return np.asarray(m, np.float64)


def _then(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    """The 2x3 affine map "a, then b"."""
    a3 = np.vstack([a, [0.0, 0.0, 1.0]])
    b3 = np.vstack([b, [0.0, 0.0, 1.0]])
    return np.asarray((b3 @ a3)[:2], np.float64)


STABLE_68 = np.array([27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 39, 42, 45], dtype=np.int64)  # nose + eye corners
MOUTH_ANCHOR_68 = np.array([48, 54, 33, 31, 35], dtype=np.int64)  # mouth corners and the nose's base
EYE_ANCHOR_68 = np.array([36, 39, 42, 45, 27], dtype=np.int64)
LOWER_ANCHOR_68 = np.array([31, 33, 35, 48, 54, 4, 8, 12], dtype=np.int64)  # + the jaw: the adaptive cuts


@dataclass
class CutoutPrint:
    """A printed photo of the pensioner (``photo``, BGR, its 68 landmarks ``photo_lm``) with the mouth (``eyes``:
    and the eyes) cut out, held over the attacker's face: through the holes the camera sees the attacker's own
    mouth (eyes), which open (blink) when he does. The ISO/IEC 30107 "cut photo" / paper-mask attack.

    * The paper: the photo placed on a larger printed picture (:func:`extend_frame`: the photo's border stretched
      and blurred, as a portrait's background; CUT_PICTURE_CLOSE / _EDGE face widths), printed
      (:func:`print_look`; ``look`` False: the picture as it is, a photo-quality print), with a white margin when
      ``close`` is False; a FLAT plane (no curl), projected by
      :func:`plane_homography`: the face at CUT_FACE_CLOSE (the print larger than the view, its edges out of the
      picture) or CUT_FACE_EDGE (all four edges in view) of the frame's width, a rest pose of +-5 degrees, hand
      tremor (:class:`Tremor`: shift, roll, and +-~1.5 degrees of tilt).
    * The attacker behind the holes: frames of a real clip (``attacker_lm`` their 68 landmarks) mapped into the
      picture per frame: his head's motion against his reference frame ``attacker_ref`` (a similarity on the nose
      and eye corners, which do not move when the mouth opens), then his reference mouth onto the printed mouth
      (corners and nose base) and his eyes onto the printed eyes: his mouth sits in the hole and opens in it. His
      skin is NOT printed (seen directly); the cut edge shades it (CUT_RIM_SHADE). Treated as lying in the paper's
      plane (he holds the paper against his face): the parallax between the paper and his face behind it, a
      centimetre or two, is not modelled.
    * ``cut`` (session 14, the attacker who knows the jaw test): "lower_face" cuts away everything below the
      printed nose and "mouth_chin" adds a slot over the printed chin (see CUT_LOWER_* / CUT_CHIN_*); his face is
      then lined up on the nose's base, mouth corners and jaw (LOWER_ANCHOR_68): his own chin drops in the hole.
    * Acting a turn / nod: the paper turned as a plane (``yaw_deg`` / ``pitch_deg`` of :meth:`render`, about an
      axis CUT_PIVOT_DEPTH face widths behind it); the printed nose stays in the paper's plane.

    :meth:`render` gives the scene before the camera (:class:`Camera`); ``last_homography`` maps the paper image
    (``paper``, with its margin) to that frame; ``paper_lm`` are the printed face's landmarks in the paper image."""

    rng: np.random.Generator
    photo: Image
    photo_lm: NDArray[np.floating]
    attacker_ref: NDArray[np.floating]
    eyes: bool = False
    close: bool = True
    look: bool = True  # False: a photo-quality print (the picture as it is: no contrast loss, no grain)
    cut: str = "mouth"  # the mouth hole; "lower_face" / "mouth_chin": the adaptive attacker's (see CUT_LOWER_*)
    size: tuple[int, int] = CAMERA
    scene: Image | None = None
    last_homography: NDArray[np.float64] | None = field(init=False, default=None)
    paper: Image = field(init=False)
    paper_lm: NDArray[np.float64] = field(init=False)
    holes: NDArray[np.float32] = field(init=False)
    _tremor: Tremor = field(init=False)
    _tilt: Tremor = field(init=False)

    def __post_init__(self) -> None:
        if self.scene is None:
            self.scene = background(self.rng, self.size)
        lm = np.asarray(self.photo_lm, np.float64)
        fw = max(float(np.linalg.norm(lm[16] - lm[0])), 1.0)
        pic_w, pic_h = CUT_PICTURE_CLOSE if self.close else CUT_PICTURE_EDGE
        cw, ch = round(pic_w * fw), round(pic_h * fw)
        cx, cy = float(lm[0, 0] + lm[16, 0]) / 2, float(lm[[36, 45, 8], 1].mean())
        # the photo's part inside the picture, the face's centre at (0.5, 0.48) of it
        x0, y0 = round(cx - 0.5 * cw), round(cy - 0.48 * ch)
        ph, pw = self.photo.shape[:2]
        sx0, sy0, sx1, sy1 = max(0, x0), max(0, y0), min(pw, x0 + cw), min(ph, y0 + ch)
        part = np.ascontiguousarray(self.photo[sy0:sy1, sx0:sx1])
        picture = extend_frame(part, (cw, ch), sx0 - x0, sy0 - y0)
        printed = print_look(picture, self.rng)  # drawn either way: the same paper, pose and tremor with or without
        if not self.look:
            printed = picture.astype(np.float32)
        margin = 0 if self.close else round(cw * float(self.rng.uniform(0.05, 0.09)))
        paper = np.empty((ch + 2 * margin, cw + 2 * margin, 3), np.float32)
        paper[:] = np.array([225, 238, 244], np.float32) * float(self.rng.uniform(0.85, 1.0))
        paper[margin : margin + ch, margin : margin + cw] = printed
        self.paper = np.clip(paper * float(self.rng.uniform(0.85, 1.05)), 0, 255).astype(np.uint8)
        self.paper_lm = lm - np.array([x0 - margin, y0 - margin])
        self.holes = hole_mask(self.paper_lm, (self.paper.shape[1], self.paper.shape[0]), self.eyes, self.cut)
        # the cut edge's shade on the skin behind: strongest at the rim, gone CUT_RIM_PX inside
        inner = cv2.erode((self.holes > 0.5).astype(np.uint8), np.ones((3, 3), np.uint8))
        dist = cv2.distanceTransform(inner, cv2.DIST_L2, 3)
        self._shade = np.asarray(1.0 - CUT_RIM_SHADE * np.clip(1.0 - dist / CUT_RIM_PX, 0.0, 1.0), np.float32)
        ys, xs = np.nonzero(self.holes > 0)
        self._roi = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
        lo, hi = CUT_FACE_CLOSE if self.close else CUT_FACE_EDGE
        self.face_frac = float(self.rng.uniform(lo, hi))
        self._scale = self.face_frac * self.size[0] / fw
        self._at = (self.size[0] * float(self.rng.uniform(0.47, 0.53)),
                    self.size[1] * float(self.rng.uniform(0.42, 0.5)))
        self._rest = (float(self.rng.uniform(-5, 5)), float(self.rng.uniform(-5, 5)))
        self._pivot = (float(self.paper_lm[30, 0]), float(self.paper_lm[30, 1]))
        self._tremor = Tremor(self.rng, 0.006, 1.2)
        self._tilt = Tremor(self.rng, 1.5, 0.0)  # (yaw, pitch) jitter in degrees (its "shift" terms)
        ref = np.asarray(self.attacker_ref, np.float64)
        anchor = MOUTH_ANCHOR_68 if self.cut == "mouth" else LOWER_ANCHOR_68
        self._to_mouth = _similarity(ref[anchor], self.paper_lm[anchor])
        self._to_eyes = _similarity(ref[EYE_ANCHOR_68], self.paper_lm[EYE_ANCHOR_68])

    def sheet(self, attacker: Image, attacker_lm: NDArray[np.floating]) -> Image:
        """The paper image with the attacker's frame showing through its holes (the paper's own pixels; BGR)."""
        ref = np.asarray(self.attacker_ref, np.float64)
        head = _similarity(np.asarray(attacker_lm, np.float64)[STABLE_68], ref[STABLE_68])
        x0, y0, x1, y1 = self._roi
        out = self.paper.copy()
        region = out[y0:y1, x0:x1].astype(np.float32)
        alpha = self.holes[y0:y1, x0:x1].copy()
        shift = np.array([[0.0, 0.0, -x0], [0.0, 0.0, -y0]])
        maps: list[tuple[NDArray[np.float64], float | None]] = [(self._to_mouth, None)]
        if self.eyes:
            # the eye holes show the eyes aligned on the printed eyes; the mouth hole the mouth (below the nose)
            nose_line = float(self.paper_lm[[31, 35], 1].mean()) - y0
            maps.append((self._to_eyes, nose_line))
        for to, split in maps:
            m = _then(head, to) + shift
            seen = cv2.warpAffine(attacker, m, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
            seen *= self._shade[y0:y1, x0:x1, None]
            a = alpha.copy()
            rows = np.arange(y1 - y0, dtype=np.float32)[:, None]
            if split is not None:
                a *= rows < split
            elif self.eyes:
                a *= rows >= float(self.paper_lm[[31, 35], 1].mean()) - y0
            region = region * (1 - a[..., None]) + seen * a[..., None]
        out[y0:y1, x0:x1] = np.clip(region, 0, 255).astype(np.uint8)
        return out

    def render(self, attacker: Image, attacker_lm: NDArray[np.floating], yaw_deg: float = 0.0,
               pitch_deg: float = 0.0) -> Image:
        """The scene (before the camera) with the paper turned by ``yaw_deg`` / ``pitch_deg`` on top of its rest
        pose and the hand's tremor, the attacker's ``attacker`` frame (BGR, its landmarks ``attacker_lm``) in the
        holes."""
        assert self.scene is not None
        dx, dy, rot = self._tremor.step()
        jy, jp, _ = self._tilt.step()
        fw = float(np.linalg.norm(self.paper_lm[16] - self.paper_lm[0])) * self._scale
        m = plane_homography(self._pivot, self._scale,
                             (self._at[0] + dx * self.size[0], self._at[1] + dy * self.size[1]),
                             self._rest[0] + jy + yaw_deg, self._rest[1] + jp + pitch_deg, rot, self.size,
                             pivot_depth=CUT_PIVOT_DEPTH * fw)
        self.last_homography = m
        sheet = self.sheet(attacker, attacker_lm)
        wh = (self.size[0], self.size[1])
        warped = np.asarray(cv2.warpPerspective(sheet, m, wh, flags=cv2.INTER_LINEAR), np.uint8)
        a = np.asarray(cv2.warpPerspective(np.ones(sheet.shape[:2], np.float32), m, wh, flags=cv2.INTER_LINEAR),
                       np.float32)
        return _paste(self.scene, warped, a)


# -- genuine crops in a frame, head motion ---------------------------------------------------------------


def extend_frame(img: Image, size: tuple[int, int], x0: int, y0: int) -> Image:
    """``img`` placed with its top-left at (x0, y0) in a ``size`` (width, height) frame, the rest of the
    frame filled by stretching its own border outward and blurring it progressively with the distance
    from it (no pasted edge, no foreign background). ``img`` must fit inside the frame.

    A synthetic surrounding, and MiniFASNet reads it: for talking_head_a shrunk to 0.62-0.88 (genuine
    framing) and shot by Camera.random, P(real) median 0.987 (p10 0.877) with this fill, 0.922 (p10 0.688)
    when the fill was also faded toward a 3x blurrier copy (a defocused room). The stretched stripes give
    the HOG detector a second face in about 1 of 100 frames of a clip shrunk to 0.62-0.68."""
    fw, fh = size
    ch, cw = img.shape[:2]
    if not (0 <= x0 <= fw - cw and 0 <= y0 <= fh - ch):
        raise ValueError(f"a {cw}x{ch} image at ({x0}, {y0}) does not fit a {fw}x{fh} frame")
    big = cv2.copyMakeBorder(img, y0, fh - y0 - ch, x0, fw - x0 - cw, cv2.BORDER_REPLICATE)
    blurred = cv2.GaussianBlur(big, (0, 0), max(2.0, cw * 0.08))
    inside = np.zeros((fh, fw), np.float32)
    inside[y0 : y0 + ch, x0 : x0 + cw] = 1.0
    alpha = cv2.GaussianBlur(inside, (0, 0), cw * 0.05)
    return _paste(blurred, big, alpha)


def place_crop(crop: Image, size: tuple[int, int] = CAMERA, face_frac: float = 0.45) -> Image:
    """A tight face crop as a full camera frame: scaled so the face is ``face_frac`` of the frame
    width, the rest of the frame filled by :func:`extend_frame`."""
    fw, fh = size
    cw = min(fw, max(8, int(fw * face_frac / 0.8)))  # tight crops: the face is ~80 % of the crop's width
    ch = min(fh, max(8, int(cw * crop.shape[0] / crop.shape[1])))
    c = cv2.resize(crop, (cw, ch), interpolation=cv2.INTER_LINEAR)
    return extend_frame(c, size, (fw - cw) // 2, min(max(0, int(fh * 0.42 - ch / 2)), fh - ch))


def turn_head(frame: Image, box_xyxy: Sequence[float], yaw_deg: float = 0.0, pitch_deg: float = 0.0) -> Image:
    """Re-project the face region onto a cylinder and rotate it (see the module docstring).

    ``yaw_deg`` > 0 moves the nose toward the image's right (the pensioner's own left on an
    unmirrored camera frame); ``pitch_deg`` > 0 moves it down (looking down, a nod).
    """
    if abs(yaw_deg) < 1e-3 and abs(pitch_deg) < 1e-3:
        return frame
    h, w = frame.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box_xyxy[:4])
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2 + 0.05 * (y2 - y1)
    rx, ry = 0.62 * (x2 - x1), 0.72 * (y2 - y1)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)

    def axis(out: NDArray[np.float32], c: float, r: float, deg: float) -> NDArray[np.float32]:
        u = np.clip((out - c) / r, -1.0, 1.0)
        th = np.arcsin(u) - math.radians(deg)
        th = np.clip(th, -math.pi / 2, math.pi / 2)
        return np.asarray(c + r * np.sin(th), dtype=np.float32)

    map_x = axis(xx, cx, rx, yaw_deg)
    map_y = axis(yy, cy, ry, pitch_deg)
    # blend back to the unwarped frame outside an ellipse around the face
    e = ((xx - cx) / (rx * 1.25)) ** 2 + ((yy - cy) / (ry * 1.2)) ** 2
    wgt = np.clip((1.4 - e) / 0.5, 0.0, 1.0).astype(np.float32)
    map_x = wgt * map_x + (1 - wgt) * xx
    map_y = wgt * map_y + (1 - wgt) * yy
    return np.asarray(cv2.remap(frame, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE), np.uint8)


# -- a depth-aware head turn (genuine sessions, g4) --------------------------------------------------------
# Depth of a head in units of the frame's own face width fw = |landmark 16 - landmark 0| (the face's
# outline at the cheekbones, ~ the bizygomatic width zy-zy). Anthropometric means of young North
# American adults (Farkas LG, Anthropometry of the Head and Face, 2nd ed., Raven Press 1994; rounded, men /
# women): zy-zy ~137 / 130 mm, head breadth eu-eu ~151 / 144 mm, head length g-op ~197 / 187 mm. So the
# head's half-breadth is ~0.55 fw and its half-length (the ellipsoid's depth semi-axis, the vertical yaw
# axis through the head's middle) ~0.72 fw. Set once from these numbers; never tuned on pad_eval.
HEAD_HALF_WIDTH = 0.55  # eu-eu / (2 zy-zy)
HEAD_HALF_DEPTH = 0.72  # g-op / (2 zy-zy)
# The face's front is nearly flat from brow to chin: soft-tissue facial convexity G'-Sn-Pog' ~12 degrees
# (Legan & Burstone, J Oral Surg 1980), i.e. the chin only ~15 mm (~0.11 fw) behind the brow. An ellipsoid
# centred at eye level with its chin ~0.86 fw below (en-gn / zy-zy) and that drop needs a vertical
# semi-axis of ~1.6 fw.
HEAD_HALF_HEIGHT = 1.6
# The nose's tip stands out of the face by ~0.55-0.60 of the nasal length (alar crease to tip over nasion to
# tip: Goode's ratio, Powell & Humphreys, Proportions of the Aesthetic Face, 1984): 0.57 x |landmark 30 -
# landmark 27|. Its base is as wide as the alae (landmarks 31-35; al-al ~35 mm), its root ~0.55 of that
# (Farkas: mf-mf ~19 mm); the ridge rises linearly from the root (27) to the tip (30) and falls back to
# the lip at the subnasale (33); across, the height falls off as 1 - (d / half width)^2.
NOSE_TIP_PROJECTION = 0.57
NOSE_ROOT_WIDTH = 0.55
# Rendering choice (not anthropometry): outside the head's turned outline the map blends back to the
# unwarped frame over 0.35 of the head's half-width; vertically the blended region reaches 1.0 fw from
# eye level (the crown and the neck do not follow a 1.6 fw ellipsoid).
HEAD_BLEND = 0.35
HEAD_BLEND_HALF_HEIGHT = 1.0


def _rotation(yaw_deg: float, pitch_deg: float) -> NDArray[np.float64]:
    """Head frame (x right, y down, z toward the camera) -> turned: yaw about y, then pitch about x."""
    cy_, sy = math.cos(math.radians(yaw_deg)), math.sin(math.radians(yaw_deg))
    cp, sp = math.cos(math.radians(pitch_deg)), math.sin(math.radians(pitch_deg))
    ry = np.array([[cy_, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy_]])
    rp = np.array([[1.0, 0.0, 0.0], [0.0, cp, sp], [0.0, -sp, cp]])
    return rp @ ry


def nose_height(lm: NDArray[np.float64], x: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.float64]:
    """How far the nose stands out of the head's surface at image points (x, y), pixels (same shape as x),
    from the frame's 68 landmarks (see NOSE_TIP_PROJECTION, NOSE_ROOT_WIDTH); 0 off the nose."""
    root, tip, sub = lm[27], lm[30], lm[33]
    axis = tip - root
    length = max(float(np.linalg.norm(axis)), 1e-6)
    e = axis / length
    n = np.array([-e[1], e[0]])
    half_base = max(float(np.linalg.norm(lm[35] - lm[31])) / 2, 1e-6)
    s = ((x - root[0]) * e[0] + (y - root[1]) * e[1]) / length  # 0 at the root, 1 at the tip
    d = (x - root[0]) * n[0] + (y - root[1]) * n[1]
    s_sub = max(float((sub - root) @ e) / length, 1.0 + 1e-3)
    peak = NOSE_TIP_PROJECTION * length
    ridge = np.where(s <= 1.0, peak * np.clip(s, 0.0, 1.0), peak * np.clip((s_sub - s) / (s_sub - 1.0), 0.0, 1.0))
    half = half_base * np.where(s <= 1.0, NOSE_ROOT_WIDTH + (1 - NOSE_ROOT_WIDTH) * np.clip(s, 0.0, 1.0), 1.0)
    return np.asarray(ridge * np.clip(1.0 - (d / half) ** 2, 0.0, None), np.float64)


def turn_head_3d(frame: Image, landmarks68: NDArray[np.floating], yaw_deg: float = 0.0, pitch_deg: float = 0.0,
                 depth: float = 1.0) -> Image:
    """Turn the head of a (near-frontal) frame in 3D: the head is an ellipsoid over the face (semi-axes
    HEAD_HALF_WIDTH, HEAD_HALF_HEIGHT, HEAD_HALF_DEPTH x the face width, centred between landmarks 0 and
    16 at eye level) with the nose standing out of it (:func:`nose_height`), rotated by ``yaw_deg`` about
    its vertical axis and ``pitch_deg`` about its horizontal one, seen in weak perspective (orthographic at
    the frame's scale). Each output pixel casts a ray onto the turned ellipsoid (closed form: the nearest
    of the two intersections, so the far side's fold hides itself; a ray that misses takes its closest
    point, which keeps the map continuous) and reads the frame where that surface point was; the nose is
    drawn over it by forward-mapping its points (0.25 px steps) with a depth buffer, so the nose hides the
    far cheek and the near flank widens. Outside the turned outline the map blends back to the unwarped
    frame (HEAD_BLEND). ``depth`` scales every depth (1 = the anthropometric head; 0 = a flat picture of
    the face turned as a plane: the sanity check of benchmarks/turn_synth.py).

    ``frame``: (H, W, 3) uint8 BGR; ``landmarks68``: (68, 2) pixels of that frame (dlib order). Signs as
    :func:`turn_head`: ``yaw_deg`` > 0 moves the nose toward the image's right, ``pitch_deg`` > 0 down.
    The texture the frame never showed (the side of the head turning into view) is the frame's own pixels
    stretched; no roll is modelled (the clips are upright)."""
    if abs(yaw_deg) < 1e-3 and abs(pitch_deg) < 1e-3:
        return frame
    lm = np.asarray(landmarks68, np.float64)
    h, w = frame.shape[:2]
    fw = max(float(np.linalg.norm(lm[16] - lm[0])), 1.0)
    cx = float(lm[0, 0] + lm[16, 0]) / 2
    cy = float(lm[[36, 39, 42, 45], 1].mean())
    a, b, c = HEAD_HALF_WIDTH * fw, HEAD_HALF_HEIGHT * fw, HEAD_HALF_DEPTH * fw * depth
    rot = _rotation(yaw_deg, pitch_deg)
    # the turned outline's half-extents (for the blend) and the region that can change
    ax = math.hypot(a * rot[0, 0], c * rot[0, 2])
    by = math.hypot(HEAD_BLEND_HALF_HEIGHT * fw * rot[1, 1], c * rot[1, 2])
    reach = 1.0 + HEAD_BLEND
    x0, x1 = max(0, int(cx - reach * ax) - 2), min(w, int(cx + reach * ax) + 3)
    y0, y1 = max(0, int(cy - reach * by) - 2), min(h, int(cy + reach * by) + 3)
    if x1 <= x0 or y1 <= y0:
        return frame
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float64)
    qx, qy = xx - cx, yy - cy
    if c > 1e-6 * fw:
        m = rot @ np.diag([1 / a**2, 1 / b**2, 1 / c**2]) @ rot.T
        bq = m[0, 2] * qx + m[1, 2] * qy
        cq = m[0, 0] * qx**2 + 2 * m[0, 1] * qx * qy + m[1, 1] * qy**2 - 1.0
        t = (-bq + np.sqrt(np.clip(bq**2 - m[2, 2] * cq, 0.0, None))) / m[2, 2]  # the surface nearest the camera
        sx = rot[0, 0] * qx + rot[1, 0] * qy + rot[2, 0] * t  # rot.T @ (qx, qy, t)
        sy_ = rot[0, 1] * qx + rot[1, 1] * qy + rot[2, 1] * t
        sz = rot[0, 2] * qx + rot[1, 2] * qy + rot[2, 2] * t
        # A point of the head's back half (turning into view) was never seen: read it from just outside the
        # face's outline instead (ears, hair), radius 1 - x inside -> 1 + x outside: continuous at the rim.
        rho = np.sqrt((sx / a) ** 2 + (sy_ / b) ** 2)
        back = np.where(sz < 0, np.clip((2.0 - rho) / np.maximum(rho, 1e-6), 1.0, 3.0), 1.0)
        sx, sy_ = sx * back, sy_ * back
        surf_z = t
    else:  # a plane: solve the turned plane's 2x2 projection
        inv = np.linalg.inv(rot[:2, :2])
        sx = inv[0, 0] * qx + inv[0, 1] * qy
        sy_ = inv[1, 0] * qx + inv[1, 1] * qy
        surf_z = rot[2, 0] * sx + rot[2, 1] * sy_
    map_x, map_y = sx + cx, sy_ + cy
    if depth > 0:
        _draw_nose(lm, rot, (cx, cy), (a, b, c), depth, (x0, y0), surf_z, map_x, map_y)
    r = np.sqrt((qx / ax) ** 2 + (qy / by) ** 2)
    wgt = np.clip((reach - r) / HEAD_BLEND, 0.0, 1.0)
    map_x = wgt * map_x + (1 - wgt) * xx
    map_y = wgt * map_y + (1 - wgt) * yy
    full_x, full_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    full_x[y0:y1, x0:x1] = map_x
    full_y[y0:y1, x0:x1] = map_y
    return np.asarray(cv2.remap(frame, full_x, full_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE), np.uint8)


def _draw_nose(lm: NDArray[np.float64], rot: NDArray[np.float64], centre: tuple[float, float],
               axes: tuple[float, float, float], depth: float, origin: tuple[int, int],
               surf_z: NDArray[np.float64], map_x: NDArray[np.float64], map_y: NDArray[np.float64]) -> None:
    """Forward-map the nose's points onto the output (in place on ``map_x``/``map_y``, the region at
    ``origin``): a nose point is drawn where it lands in front of the turned head's surface (``surf_z``)
    and of every other nose point landing there (a depth buffer)."""
    cx, cy = centre
    a, b, c = axes
    x0, y0 = origin
    pts = lm[[27, 28, 29, 30, 31, 32, 33, 34, 35]]
    half_base = float(np.linalg.norm(lm[35] - lm[31])) / 2
    lo = pts.min(axis=0) - half_base - 2
    hi = pts.max(axis=0) + half_base + 2
    gx, gy = np.meshgrid(np.arange(lo[0], hi[0], 0.25), np.arange(lo[1], hi[1], 0.25))
    nose = nose_height(lm, gx, gy) * depth
    on = nose > 1e-3
    sx, sy = gx[on], gy[on]
    u, v = (sx - cx) / a, (sy - cy) / b
    z = c * np.sqrt(np.clip(1.0 - u**2 - v**2, 0.0, None)) + nose[on]
    p = np.stack([sx - cx, sy - cy, z])
    q = rot @ p
    dx = np.rint(q[0] + cx).astype(np.int64) - x0
    dy = np.rint(q[1] + cy).astype(np.int64) - y0
    hh, ww = map_x.shape
    ok = (dx >= 0) & (dx < ww) & (dy >= 0) & (dy < hh)
    dx, dy, zq, sx, sy = dx[ok], dy[ok], q[2][ok], sx[ok], sy[ok]
    front = zq > surf_z[dy, dx]
    dx, dy, zq, sx, sy = dx[front], dy[front], zq[front], sx[front], sy[front]
    if not len(dx):
        return
    cell = dy * ww + dx
    order = np.lexsort((zq, cell))  # by cell, then depth: the last of each cell is the nearest
    cell, sx, sy = cell[order], sx[order], sy[order]
    last = np.r_[cell[1:] != cell[:-1], True]
    map_x.reshape(-1)[cell[last]] = sx[last]
    map_y.reshape(-1)[cell[last]] = sy[last]


# -- a synthetic mouth opening (session 11) -------------------------------------------------------------

# The inner mouth shown where the lips part: a dark red-brown, darker in the middle (BGR). Chosen by eye, not
# measured; no teeth or tongue are drawn.
MOUTH_INNER_BGR = (38.0, 34.0, 62.0)
MOUTH_INNER_CORE = 0.55  # the middle of the gap is this fraction of MOUTH_INNER_BGR
MOUTH_LATERAL = 1.25  # the opening's lateral profile reaches this x half the OUTER mouth width (48-54)
MOUTH_NECK_BAND = 0.45  # below the chin the shift fades to 0 over this x the face width (jaw over the neck)


def open_mouth(frame: Image, landmarks68: NDArray[np.floating], gap: float) -> Image:
    """The frame with the mouth opened by ``gap`` (the inner-lip opening added, as a fraction of the inner
    mouth width 60-64 — what geometry.mouth_aspect_ratio measures): the genuine acted sessions' open_mouth
    where the footage never opens its mouth (blink_7_times_1080p). A SYNTHETIC render, in the spirit of
    :func:`turn_head_3d`.

    Model, per image column x under the inner-lip line (through the corners 60/64 and the midpoints of 61/67,
    62/66, 63/65): the lips part by ``G(x) = gap x inner width x (1 - v^2)``, v = (x - mouth centre) / half the
    inner width (a lens, closed at the corners); the chin and jaw drop by ``S(x)``, the same at the centre but
    with u = (x - centre) / (MOUTH_LATERAL x half the OUTER width) (a jaw dropping, the cheeks stretching).
    The lower lip follows the gap (shift G) and the shift grows to S over half the way to the chin; below the
    chin it fades to 0 over MOUTH_NECK_BAND x the face width (the jaw moves over the neck). The gap is filled
    with a dark inner mouth (MOUTH_INNER_BGR, darker in the middle, edges feathered over ~1.5 px). Nothing
    above the lip line moves; the map stays monotonic down each column.

    ``frame``: (H, W, 3) uint8 BGR; ``landmarks68``: (68, 2) pixels of that frame (dlib order). ``gap`` <= 0
    returns ``frame`` itself."""
    if gap <= 0.0:
        return frame
    lm = np.asarray(landmarks68, np.float64)
    h, w = frame.shape[:2]
    inner_w = max(float(np.linalg.norm(lm[64] - lm[60])), 1.0)
    d = float(gap) * inner_w
    cx = float(lm[60, 0] + lm[64, 0]) / 2
    half = MOUTH_LATERAL * max(float(np.linalg.norm(lm[54] - lm[48])), 2.0) / 2
    # the inner-lip line: corners and the midpoints of the facing inner-lip points, ascending x
    line = np.array([lm[60], (lm[61] + lm[67]) / 2, (lm[62] + lm[66]) / 2, (lm[63] + lm[65]) / 2, lm[64]])
    line = line[np.argsort(line[:, 0])]
    face_w = max(float(np.linalg.norm(lm[16] - lm[0])), 1.0)
    chin = float(lm[8, 1])
    band = max(MOUTH_NECK_BAND * face_w, 2.0 * d)
    x0, x1 = max(0, int(cx - half) - 2), min(w, math.ceil(cx + half) + 3)
    y0 = max(0, int(line[:, 1].min()) - 2)
    y1 = min(h, math.ceil(chin + d + band) + 2)
    if x1 <= x0 or y1 <= y0:
        return frame
    xs = np.arange(x0, x1, dtype=np.float64)
    ys = np.arange(y0, y1, dtype=np.float64)
    u = (xs - cx) / half
    v = (xs - cx) / (inner_w / 2)
    jaw = d * np.clip(1.0 - u * u, 0.0, None)[None, :]  # S(x), pixels
    lips = d * np.clip(1.0 - v * v, 0.0, None)[None, :]  # G(x), pixels
    y_line = np.interp(xs, line[:, 0], line[:, 1])[None, :]  # the lip line per column (flat beyond the corners)
    yy = ys[:, None]
    below = yy - y_line  # output distance under the lip line
    reach = np.maximum(0.5 * (chin - y_line), 2.0)  # the lower lip's shift G grows to the jaw's S over this
    r = np.clip((below - lips) / reach, 0.0, 1.0)
    shift = lips + (jaw - lips) * r * r * (3.0 - 2.0 * r)
    t = np.clip((yy - (chin + jaw)) / band, 0.0, 1.0)  # below the moved chin: fade to 0 (smoothstep)
    shift = shift * (1.0 - t * t * (3.0 - 2.0 * t))
    src_y = np.where(below >= 0.0, yy - shift, yy)
    # inside the gap (0 <= below < G) the source would be the upper lip: the inner mouth is drawn there
    src_y = np.where((below >= 0.0) & (below < lips), y_line, src_y)
    map_x = np.broadcast_to(xs[None, :], src_y.shape).astype(np.float32)
    roi = cv2.remap(frame, map_x, src_y.astype(np.float32), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    # the inner mouth: alpha 1 inside the gap, feathered over ~1.5 px at its edges; darker in the middle
    edge = np.minimum(below, lips - below)
    alpha = np.clip((edge + 0.75) / 1.5, 0.0, 1.0) * (lips > 0.5)
    depth = np.clip(np.where(lips > 0, 1.0 - np.abs(2.0 * below / np.maximum(lips, 1e-6) - 1.0), 0.0), 0.0, 1.0)
    tone = 1.0 - (1.0 - MOUTH_INNER_CORE) * depth * np.clip(1.0 - np.abs(v), 0.0, 1.0)[None, :]
    inner = np.asarray(MOUTH_INNER_BGR, np.float64)[None, None, :] * tone[..., None]
    a = alpha[..., None]
    out = frame.copy()
    out[y0:y1, x0:x1] = np.clip(roi.astype(np.float64) * (1.0 - a) + inner * a, 0, 255).astype(np.uint8)
    return out


def mouth_landmarks(landmarks68: NDArray[np.floating], gap: float) -> NDArray[np.float64]:
    """Where :func:`open_mouth` moves the 68 landmarks (approximately: the lower-lip points down by G(x), the
    jaw points down by S(x); the rest unchanged): the warped frame's landmarks, for a turn drawn on top of it."""
    lm = np.array(landmarks68, np.float64)
    if gap <= 0.0:
        return lm
    inner_w = max(float(np.linalg.norm(lm[64] - lm[60])), 1.0)
    cx = float(lm[60, 0] + lm[64, 0]) / 2
    half = MOUTH_LATERAL * max(float(np.linalg.norm(lm[54] - lm[48])), 2.0) / 2
    d = gap * inner_w
    lips = [55, 56, 57, 58, 59, 65, 66, 67]
    v = (lm[lips, 0] - cx) / (inner_w / 2)
    lm[lips, 1] += d * np.clip(1.0 - v * v, 0.0, None)
    jaw = list(range(4, 13))
    u = (lm[jaw, 0] - cx) / half
    lm[jaw, 1] += d * np.clip(1.0 - u * u, 0.0, None)
    return lm


# -- acting the challenges ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FootageIndex:
    """Per-frame facts of a source clip, from the engine's landmarks: face box (x1, y1, x2, y2) or
    None, eye aspect ratio and mouth aspect ratio (NaN without a face). ``fps`` of the clip.
    ``landmarks``: (n, 68, 2) pixels (NaN rows without a face) when known — what :func:`turn_head_3d` needs;
    None in indexes made before it (their pickles load with the default)."""

    boxes: list[NDArray[np.float32] | None]
    ear: NDArray[np.float64]
    mar: NDArray[np.float64]
    fps: float
    landmarks: NDArray[np.float64] | None = None

    def blink_frames(self) -> list[int]:
        """Frames at the bottom of a blink: EAR below 0.75 x the clip's 75th percentile, local minimum."""
        base = np.nanpercentile(self.ear, 75)
        e = np.nan_to_num(self.ear, nan=base)
        found = [i for i in range(1, len(e) - 1) if e[i] < 0.75 * base and e[i] <= e[i - 1] and e[i] <= e[i + 1]]
        # the deeper half: a 5 fps capture sees one frame of a blink, the deepest one when cued
        found.sort(key=lambda i: e[i])
        return sorted(found[: max(1, (len(found) + 1) // 2)]) if found else []

    def mouth_frames(self, min_mar: float = 0.34) -> list[int]:
        m = np.nan_to_num(self.mar, nan=0.0)
        return [i for i in range(1, len(m) - 1) if m[i] > min_mar and m[i] >= m[i - 1] and m[i] >= m[i + 1]]


@dataclass(frozen=True)
class Shot:
    """One output frame: source frame index, head warp, whether the face is in view."""

    src: int
    yaw_deg: float = 0.0
    pitch_deg: float = 0.0
    face_visible: bool = True
    mouth_gap: float = 0.0  # a synthetic mouth opening (:func:`open_mouth`), 0 = the footage as filmed


# -- hearing a hint ------------------------------------------------------------------------------------------

# The page (mobile-web/app.js ``speak``) says a hint with the browser's Mandarin voice at rate 0.85. How long that
# takes on a phone was never measured: SPEECH_CHARS_PER_S is an ASSUMPTION (ordinary read Mandarin runs at about
# 4-5 syllables a second, one syllable per character; taken at 4.5 for rate 1.0), SPEECH_PAUSE_MS one pause per
# comma or full stop (also assumed). No voice start-up latency and no queue behind a framing hint are modelled.
I18N_JS = Path(__file__).resolve().parents[1] / "mobile-web" / "i18n.js"
SPEECH_CHARS_PER_S = 4.5
SPEECH_RATE = 0.85  # app.js: u.rate
SPEECH_PAUSE_MS = 250
# hints after which a person acts again (LOOK_BACK / LOOK_UP ask to come back: the acted motion already does)
REACTING_HINTS = frozenset({"TURN_MORE", "NOD_MORE", "DO_ACTION", "BLINK_FIRMLY", "OPEN_WIDER"})


@functools.cache
def page_texts() -> dict[str, str]:
    """The Mandarin strings of the pensioner's page (the ``zh`` block of mobile-web/i18n.js), key -> text."""
    src = I18N_JS.read_text(encoding="utf-8")
    zh = src[src.index("zh:") : src.index("en:")]
    return dict(re.findall(r'"([A-Za-z_.]+)":\s*"([^"]*)"', zh))


def hint_speech_ms(code: str, challenge: str) -> int:
    """How long the page takes to say action hint ``code`` during ``challenge`` (ms), from its Mandarin text
    (DO_ACTION says the step's prompt again): characters at SPEECH_CHARS_PER_S x SPEECH_RATE, plus a pause
    per comma / full stop. A model, not a measurement (see SPEECH_CHARS_PER_S)."""
    texts = page_texts()
    text = texts[f"hint.{code}"].replace("{prompt}", texts[f"challenge.{challenge}"])
    pauses = sum(text.count(c) for c in "，。,.")
    chars = sum(1 for c in text if not c.isspace() and c not in "，。,.")
    return round(1000.0 * chars / (SPEECH_CHARS_PER_S * SPEECH_RATE)) + SPEECH_PAUSE_MS * pauses


def hint_heard_ms(code: str, challenge: str, answered_ms: int) -> int:
    """When a person has heard action hint ``code``: the chunk answer that carried it reached the phone at
    ``answered_ms`` (pad_eval: the end of the chunk production judged; no network lag) and the page says it."""
    return answered_ms + hint_speech_ms(code, challenge)


@dataclass(frozen=True)
class MouthAct:
    """How a synthetic person opens the mouth when asked (:func:`open_mouth`; session 11): to ``gap`` (the
    inner-lip opening added, a fraction of the inner mouth width), in ``ramp_ms``, held ``hold_ms``, closed in
    ``ramp_ms``; after an OPEN_WIDER hint to ``wider``. All ASSUMED (no footage of anyone opening on request)."""

    gap: float
    wider: float
    ramp_ms: float
    hold_ms: float

    @classmethod
    def random(cls, rng: np.random.Generator) -> MouthAct:
        """MOUTH_GAP, MOUTH_RAMP_MS, MOUTH_HOLD_MS drawn; ``wider`` = MOUTH_WIDER x gap, capped at MOUTH_GAP_MAX."""
        gap = float(rng.uniform(*MOUTH_GAP))
        return cls(gap, min(MOUTH_GAP_MAX, MOUTH_WIDER * gap), float(rng.uniform(*MOUTH_RAMP_MS)),
                   float(rng.uniform(*MOUTH_HOLD_MS)))

    def level(self, dt_ms: float) -> float:
        """The opening's share of its widest ``dt_ms`` after it began (smoothstep ramps; 0 outside)."""
        if dt_ms <= 0.0 or dt_ms >= 2 * self.ramp_ms + self.hold_ms:
            return 0.0
        x = min(1.0, dt_ms / self.ramp_ms, (2 * self.ramp_ms + self.hold_ms - dt_ms) / self.ramp_ms)
        return x * x * (3.0 - 2.0 * x)


# A person asked to open the mouth (assumed; pad_eval's genuine blink_7 sessions): on that clip the gap drawn from
# MOUTH_GAP reads as an inner-lip MAR of 0.30-0.40 at 0.45 and 0.54-0.67 at 0.9 (benchmarks/mouth_synth.py,
# production's frame engine; the step's threshold is 0.30), so a first attempt at the low end can fall short and
# OPEN_WIDER (x MOUTH_WIDER) matters.
MOUTH_GAP = (0.45, 0.9)
MOUTH_GAP_MAX = 1.2
MOUTH_WIDER = 1.3
MOUTH_RAMP_MS = (200.0, 350.0)
MOUTH_HOLD_MS = (600.0, 1200.0)


class Actor:
    """A person (the clip) answering prompts that arrive one at a time, as a server-paced capture shows them.

    The clip plays at its own speed from a drawn start (natural motion, its own blinks included); each
    challenge is acted ``delay_ms`` after its prompt for ``action_ms``: turns and nods by the head warp
    (``turn_deg``: the peak angle, one per challenge), blink and open_mouth by re-cueing the clip so that one
    of its blink / mouth-opening frames is shown at the action's middle frame. After that the clip simply
    plays on, however long the capture keeps running (a missed step's window, the wait for the next prompt),
    unless the person hears an action hint (:meth:`hint`). Everything random is drawn in the constructor, so a
    session is the same whatever the schedule turns out to be.

    **Hearing a hint** (:meth:`hint`, session 7; pad_eval g6/c6). Production answers a step not yet seen 3.5 s
    after its prompt with one action hint and the page says it. The model, fixed before any rate was looked at:

    * when: the person has heard the hint at ``heard_ms`` (:func:`hint_heard_ms`: the end of the chunk production
      answered with it + the time the page takes to say it, :func:`hint_speech_ms`, an assumed speech rate) and
      acts again ``delay_ms`` later (their own reaction time, the same as to a prompt), for ``action_ms``, on the
      step's capture grid; only to the FIRST action hint of a step (production lengthens the window once; that
      a person reacts once is an assumption); not when the page has moved on before the reaction starts (the
      step was seen meanwhile, :meth:`passed`: the person follows the page, not the old hint);
    * what: TURN_MORE: the turn again, farther (``more_deg``: pad_eval passes the warp of the top of
      TURN_REAL_DEG through the clip's turn table, capped at what the clip reaches); NOD_MORE: the nod again at
      ``more_nod_deg`` (default the same nod: no nod calibration exists and pad_eval draws no nods);
      DO_ACTION: the drawn turn or nod again, as first acted; BLINK_FIRMLY / OPEN_WIDER: the clip re-cued so that
      ANOTHER of its blink / mouth frames (the next in its pool, the same one if it has one) is shown mid-action:
      the clip cannot blink harder or open wider than it was filmed; LOOK_BACK / LOOK_UP: nothing new (the acted
      turn or nod already comes back; the hint only says so).
    * invented: the speech rate, the single reaction, the reaction time equal to the prompt's, the farther turn
      being the top of TURN_REAL_DEG. A cued-replay attacker hears the same hint and re-cues the same way with
      his own cue delay (whatever helps the genuine person helps him).

    :meth:`prompt` registers challenge k's prompt (in order) with the capture rate of its step (the frames
    of the step are at ``at_ms + i * 1000 / fps``); :meth:`shot` gives the frame shown at any time."""

    def __init__(self, index: FootageIndex, challenges: Sequence[str], rng: np.random.Generator, *,
                 delay_ms: int = 800, late_ms: int = 0, turn_deg: float | Sequence[float] = 45.0,
                 nod_deg: float = 36.0, action_ms: int = 1200, more_deg: float | Sequence[float] | None = None,
                 more_nod_deg: float | None = None, mouth: MouthAct | None = None) -> None:
        self.index, self.challenges = index, list(challenges)
        self.delay_ms, self.late_ms, self.nod_deg, self.action_ms = delay_ms, late_ms, nod_deg, action_ms
        n = len(self.challenges)
        self.degs = [float(turn_deg)] * n if isinstance(turn_deg, (int, float)) else [float(d) for d in turn_deg]
        more = self.degs if more_deg is None else more_deg
        self.more_degs = [float(more)] * n if isinstance(more, (int, float)) else [float(d) for d in more]
        self.more_nod_deg = nod_deg if more_nod_deg is None else more_nod_deg
        self.n_src = len(index.boxes)
        self.start = int(rng.integers(0, max(1, self.n_src // 3)))
        blinks, mouths = index.blink_frames(), index.mouth_frames()
        self.pools = {"blink": blinks, "open_mouth": mouths}
        self.targets = [int(rng.choice(self.pools[c])) if self.pools.get(c) else None for c in self.challenges]
        self.prompts: list[int] = []
        self.rates: list[float] = []  # capture rate of each prompted step
        self.heard: dict[int, tuple[str, int, int | None]] = {}  # step -> (hint, heard ms, acted again from ms)
        self._hint_moves: dict[int, tuple[float, float, bool, float]] = {}  # step -> the move acted after its hint
        self._hint_cues: dict[int, tuple[int, int]] = {}  # step -> the re-cue acted after its hint
        self._cues: list[tuple[int, int]] = [(-(10**9), self.start)]  # (from ms, source offset)
        self._moves: list[tuple[float, float, bool, float]] = []  # (from ms, span ms, nod?, peak degrees)
        # a SYNTHETIC mouth opening for open_mouth when the footage has no mouth frames (session 11, ``mouth``)
        self.mouth = mouth if not mouths else None
        self._mouths: list[tuple[float, float]] = []  # (from ms, peak gap)
        self._hint_mouths: dict[int, tuple[float, float]] = {}

    def prompt(self, at_ms: int, fps: float) -> None:
        """Challenge ``len(self.prompts)`` is prompted at ``at_ms``; its step is captured at ``fps``."""
        k = len(self.prompts)
        self.prompts.append(at_ms)
        self.rates.append(fps)
        name = self.challenges[k]
        if name == "open_mouth" and self.mouth is not None:
            self._open(at_ms + self.delay_ms, self.mouth.gap)
            return
        peak = self.nod_deg if name == "nod" else self.degs[k]
        self._act(k, at_ms + self.delay_ms, peak, self.targets[k])

    def _open(self, t_act: int, gap: float) -> None:
        """A synthetic mouth opening (``self.mouth``'s ramps and hold) from ``t_act`` to ``gap`` at its widest."""
        self._mouths.append((float(t_act), float(gap)))

    def hint(self, k: int, heard_ms: int, code: str) -> int | None:
        """Challenge ``k``'s action hint ``code`` was heard at ``heard_ms`` (see the class docstring for the
        model): the action again ``delay_ms`` later, farther for TURN_MORE / NOD_MORE, another of the clip's
        blink / mouth frames for BLINK_FIRMLY / OPEN_WIDER, nothing for LOOK_BACK / LOOK_UP. Only the first hint
        of a step counts. Returns when the action starts again (ms), or None when nothing is acted."""
        if k in self.heard or k >= len(self.prompts):
            return None
        name = self.challenges[k]
        start: int | None = heard_ms + self.delay_ms
        n_moves, n_cues, n_mouths = len(self._moves), len(self._cues), len(self._mouths)
        if code in REACTING_HINTS:
            if name in ("turn_left", "turn_right", "nod"):
                more = code in ("TURN_MORE", "NOD_MORE")
                peak = (self.more_nod_deg if more else self.nod_deg) if name == "nod" else (
                    self.more_degs[k] if more else self.degs[k])
                self._act(k, start, peak, None)
            elif name == "open_mouth" and self.mouth is not None:  # OPEN_WIDER: wider; DO_ACTION: the same
                self._open(heard_ms + self.delay_ms, self.mouth.wider if code == "OPEN_WIDER" else self.mouth.gap)
            else:
                pool, target = self.pools.get(name) or [], self.targets[k]
                again = pool[(pool.index(target) + 1) % len(pool)] if target in pool else target
                self._act(k, start, 0.0, again)
        if len(self._moves) > n_moves:
            self._hint_moves[k] = self._moves[-1]
        elif len(self._cues) > n_cues:
            self._hint_cues[k] = self._cues[-1]
        elif len(self._mouths) > n_mouths:
            self._hint_mouths[k] = self._mouths[-1]
        else:  # nothing to act (LOOK_BACK / LOOK_UP, a clip without such frames)
            start = None
        self.heard[k] = (code, heard_ms, start)
        return start

    def passed(self, k: int, at_ms: int) -> bool:
        """Step ``k`` was seen and the page moved on at ``at_ms``: a reaction to its hint that has not started by
        then is not acted (the person follows the page). True when one was dropped."""
        start = self.heard[k][2] if k in self.heard else None
        if start is None or start < at_ms:
            return False
        move, cue, mouth = self._hint_moves.pop(k, None), self._hint_cues.pop(k, None), self._hint_mouths.pop(k, None)
        if move is not None:
            self._moves.remove(move)
        if mouth is not None:
            self._mouths.remove(mouth)
        if cue is not None:
            self._cues.remove(cue)
        self.heard[k] = (self.heard[k][0], self.heard[k][1], None)
        return True

    def _act(self, k: int, t_act: int, peak_deg: float, target: int | None) -> None:
        """Challenge ``k`` acted from ``t_act`` for ``action_ms`` on its step's frame grid (prompt + i / fps): a
        turn / nod of ``peak_deg`` up and back, or the clip re-cued so that source frame ``target`` is shown at
        the action's middle frame."""
        at_ms, name = self.prompts[k], self.challenges[k]
        dt = 1000.0 / self.rates[k]
        first = math.ceil((t_act - at_ms) / dt)
        ts = [round(at_ms + i * dt) for i in range(first, first + int(self.action_ms / dt) + 2)]
        ts = [t for t in ts if t_act <= t <= t_act + self.action_ms]
        if not ts:
            return
        if name in ("turn_left", "turn_right", "nod"):
            # up and back over the action's frames: sin(pi * (j + 0.5) / n) at its j-th of n frames, continued
            # between them (a frame of another grid during the action, e.g. the next prompt's, sees the same head)
            peak = peak_deg if name in ("turn_left", "nod") else -peak_deg
            self._moves.append((ts[0] - dt / 2, len(ts) * dt, name == "nod", peak))
        elif target is not None:  # re-cue the clip from here on so that the target is shown mid-action
            mid = ts[len(ts) // 2]
            self._cues.append((ts[0], int(target) - round(mid * self.index.fps / 1000.0)))

    def shot(self, t_ms: int) -> Shot:
        offset = next(o for since, o in reversed(self._cues) if since <= t_ms)
        yaw = pitch = 0.0
        for since, span, nod, peak in self._moves:
            if since <= t_ms < since + span:
                amp = peak * math.sin(math.pi * (t_ms - since) / span)
                yaw, pitch = (0.0, amp) if nod else (amp, 0.0)
        gap = 0.0
        if self.mouth is not None:
            for since, peak in self._mouths:
                gap = max(gap, peak * self.mouth.level(t_ms - since))
        return Shot((offset + round(t_ms * self.index.fps / 1000.0)) % self.n_src, yaw, pitch,
                    face_visible=t_ms >= self.late_ms, mouth_gap=gap)


def step_times(start_ms: int, end_ms: int, fps: float) -> list[int]:
    """Capture times of one step: from ``start_ms`` (inclusive) to ``end_ms`` (exclusive) at ``fps``."""
    dt = 1000.0 / fps
    n = max(0, math.ceil((end_ms - start_ms) / dt - 1e-9))
    return [round(start_ms + i * dt) for i in range(n)]


def act(
    index: FootageIndex,
    challenges: Sequence[str],
    rng: np.random.Generator,
    *,
    lead_in_ms: int = 1000,
    window_ms: int = 6000,
    fps: float | Sequence[float] = 5.0,
    lead_fps: float | None = None,
    delay_ms: int = 800,
    late_ms: int = 0,
    turn_deg: float | Sequence[float] = 45.0,
    nod_deg: float = 36.0,
    action_ms: int = 1200,
    prompts_ms: Sequence[int] | None = None,
) -> tuple[list[Shot], list[int]]:
    """A FIXED schedule performing ``challenges`` (challenge k prompted at ``prompts_ms[k]``, by default
    lead_in + k*window) by an :class:`Actor`: the frames before the first prompt at ``lead_fps`` (default: the
    first step's rate), step k's frames from its prompt at ``fps`` (one for all or one per step), until 1 s
    after the last action. Returns the shots and their times (ms). pad_eval's acted sessions do not use a
    fixed schedule: they are paced by production's judgement (pad_eval.Worker.paced)."""
    prompts = [lead_in_ms + k * window_ms for k in range(len(challenges))] if prompts_ms is None else list(prompts_ms)
    rates = [float(fps)] * len(challenges) if isinstance(fps, (int, float)) else [float(f) for f in fps]
    actor = Actor(index, challenges, rng, delay_ms=delay_ms, late_ms=late_ms, turn_deg=turn_deg, nod_deg=nod_deg,
                  action_ms=action_ms)
    total = (prompts[-1] if prompts else lead_in_ms) + delay_ms + action_ms + 1000
    bounds = [*prompts, total]
    times = step_times(0, bounds[0], lead_fps or (rates[0] if rates else 5.0))
    for k, at in enumerate(prompts):
        actor.prompt(at, rates[k])
        times += step_times(at, bounds[k + 1], rates[k])
    return [actor.shot(t) for t in times], times


def mirror_footage(frames: Sequence[Image], index: FootageIndex) -> tuple[list[Image], FootageIndex]:
    """The clip flipped left-right (a person facing slightly the other way; front cameras often mirror):
    a direction the warp cannot turn a clip far enough is then the one it can (see :func:`turn_warp_for`)."""
    out = [np.ascontiguousarray(f[:, ::-1]) for f in frames]
    w = float(frames[0].shape[1]) if frames else 0.0
    boxes = [None if b is None else np.array([w - b[2], b[1], w - b[0], b[3]], np.float32) for b in index.boxes]
    lms = None if index.landmarks is None else mirror_landmarks(index.landmarks, w)
    return out, FootageIndex(boxes, index.ear, index.mar, index.fps, lms)


# dlib 68-point order: the index each point takes when the face is flipped left-right
MIRROR_68 = np.array([*range(16, -1, -1), *range(26, 16, -1), 27, 28, 29, 30, 35, 34, 33, 32, 31,
                      45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40,
                      54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55, 64, 63, 62, 61, 60, 67, 66, 65], dtype=np.int64)


def mirror_landmarks(lm: NDArray[np.float64], width: float) -> NDArray[np.float64]:
    """68 landmarks ((..., 68, 2) pixels) of a frame ``width`` wide, flipped left-right: x -> width - x and
    the points renumbered (the left eye's corners become the right eye's, ...)."""
    out = np.array(lm, np.float64)[..., MIRROR_68, :]
    out[..., 0] = width - out[..., 0]
    return out


# A REAL head turn as the detector reads it (geometry.yaw_ratio, half face widths), measured with dlib on
# ../shared/faces (head yaw from cv2.solvePnP of six landmarks on a generic 3D head): 17 photos of photos/
# turned 8-26 degrees give a median 0.0145 per degree; pose/lower_face (35 degrees) 0.57; pose/left_face
# (profile, ~71 degrees) 0.82. So ~0.015 per degree up to ~35 degrees; liveness turn_yaw 0.22 ~ a 15 degree turn.
REAL_YAW_RATIO_PER_DEG = 0.015
TURN_REAL_DEG = (20.0, 40.0)  # how far a prompted person turns: an assumption (no footage of elderly users)


def turn_warp_for(table: Sequence[Sequence[float]], target: float) -> float:
    """The warp angle (degrees, :func:`turn_head`) whose yaw_ratio change on a clip reaches ``target``.
    ``table``: [warp degrees, measured median change] rows of that clip and direction, ascending
    (benchmarks/pad_eval.turn_table). Linear between rows on the running maximum; a target beyond what the
    warp reaches gets the angle of the largest change (the clip cannot act more: report it)."""
    best_deg, best = 0.0, 0.0
    prev_deg, prev = 0.0, 0.0
    for deg, val in table:
        if val > best:
            if val >= target:
                return float(prev_deg + (deg - prev_deg) * (target - prev) / max(val - prev, 1e-9))
            best_deg, best = float(deg), float(val)
            prev_deg, prev = float(deg), float(val)
    return best_deg if best > 0 else 45.0


def render_shot(frames: Sequence[Image], index: FootageIndex, shot: Shot, depth: bool = False) -> Image:
    """The footage frame of ``shot`` with its head turn applied (BGR, the clip's own size): the cylinder warp
    (:func:`turn_head`), or with ``depth`` the depth-aware :func:`turn_head_3d` (needs ``index.landmarks``)."""
    f = frames[shot.src]
    box = index.boxes[shot.src]
    if shot.mouth_gap > 0.0 and index.landmarks is not None and not np.isnan(index.landmarks[shot.src]).any():
        lm = index.landmarks[shot.src]
        f = open_mouth(f, lm, shot.mouth_gap)
        if shot.yaw_deg != 0.0 or shot.pitch_deg != 0.0:
            if depth:
                return turn_head_3d(f, mouth_landmarks(lm, shot.mouth_gap), shot.yaw_deg, shot.pitch_deg)
            if box is not None:
                return turn_head(f, [float(v) for v in box], shot.yaw_deg, shot.pitch_deg)
        return f
    if box is None or (shot.yaw_deg == 0.0 and shot.pitch_deg == 0.0):
        return f
    if depth:
        if index.landmarks is None:
            raise ValueError("turn_head_3d needs the clip's landmarks (FootageIndex.landmarks)")
        lm = index.landmarks[shot.src]
        if np.isnan(lm).any():
            return f
        return turn_head_3d(f, lm, shot.yaw_deg, shot.pitch_deg)
    return turn_head(f, box, shot.yaw_deg, shot.pitch_deg)


def still_on_screen(photo: Image, rng: np.random.Generator, n: int, size: tuple[int, int] = CAMERA) -> list[Image]:
    """A still photo on a phone screen held in front of the camera, ``n`` frames (tremor only)."""
    phone = PhoneScreen(rng, size)
    cam = Camera(rng)
    return [cam.shoot(phone.render(photo)) for _ in range(n)]


def genuine_frame(src: Image, size: tuple[int, int] = CAMERA, zoom: float = 1.0,
                  shift: tuple[float, float] = (0.0, 0.0)) -> Image:
    """A genuine clip frame as a portrait camera frame: centre-cropped to 3:4 and scaled.
    ``zoom`` > 1 crops the central 1/zoom of the frame first (the phone held closer), moved by
    ``shift`` (fractions of the frame, clipped so the crop stays inside). ``zoom`` < 1 (the phone held
    further away than the clip was filmed): the WHOLE clip frame is scaled by ``zoom`` times the scale
    that made it cover the frame, so the clip's own sides come back into view before anything is made
    up; what it still does not cover is filled by :func:`extend_frame` (its border stretched and
    blurred); moved by ``shift``."""
    if zoom >= 1.0:
        if zoom > 1.0:
            h, w = src.shape[:2]
            cw, ch = round(w / zoom), round(h / zoom)
            x0 = int(np.clip((w - cw) / 2 + shift[0] * w, 0, w - cw))
            y0 = int(np.clip((h - ch) / 2 + shift[1] * h, 0, h - ch))
            src = src[y0 : y0 + ch, x0 : x0 + cw]
        return fit_cover(src, size)
    fw, fh = size
    sh, sw = src.shape[:2]
    s = max(fw / sw, fh / sh) * zoom
    scaled = cv2.resize(src, (max(8, round(sw * s)), max(8, round(sh * s))),
                        interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    # Centre (+ shift) the scaled frame on the camera frame; keep the part that falls inside it.
    ox = round((fw - scaled.shape[1]) / 2 + shift[0] * fw)
    oy = round((fh - scaled.shape[0]) / 2 + shift[1] * fh)
    x0, y0 = max(0, ox), max(0, oy)
    part = scaled[y0 - oy : y0 - oy + fh - y0, x0 - ox : x0 - ox + fw - x0]
    return extend_frame(np.ascontiguousarray(part), size, x0, y0)


# -- a real print turned or nodded as a rigid (or curled) sheet (session 13, benchmarks/flat_eval.py) ----------


def print_turned(img: Image, yaw_deg: float, pitch_deg: float, pivot: Sequence[float], focal_px: float,
                 curl: float = 0.0, curl_axis: str = "vertical", curl_half_span: float = 1.0,
                 roll_deg: float = 0.0) -> Image:
    """A camera frame of a held print re-seen after the sheet is rotated about ``pivot`` (image pixels, a
    point on the print: the face's centre) by ``yaw_deg`` (about the sheet's vertical axis; > 0 moves its
    right half away from the camera), ``pitch_deg`` (about its horizontal axis; > 0 moves its top away)
    and ``roll_deg`` (in its plane), through a pinhole camera of focal length ``focal_px`` whose principal
    point is the image centre.

    The print is a sheet at depth ``focal_px`` facing the camera: the frame's pixel (u, v) is its texture
    point (u - cx, v - cy). ``curl`` = 0: a rigid plane, so the result is exactly the homography of a
    plane rotated in 3D (whatever the sheet's real pose in ``img``, it stays the image of a plane).
    ``curl`` != 0 bends it into a parabolic cylinder (a circular bow to second order): depth
    ``curl * (1 - (d / curl_half_span)^2)`` toward the camera (negative: away) at distance ``d`` from the
    pivot across the bend; ``curl`` and ``curl_half_span`` in pixels at the sheet's depth (the caller
    converts from face widths); ``curl_axis`` "vertical" = the sheet bows left-right (held by its sides),
    "horizontal" = top-bottom. The texture is the sheet's projection (no arc-length stretch:
    second order in the bend). Each output pixel casts its ray onto the turned sheet (closed form; the
    nearer root), and reads ``img`` there (cv2.remap, border replicated). (H, W, 3) uint8 BGR in and out."""
    h, w = img.shape[:2]
    cx, cy = (w - 1) / 2, (h - 1) / 2
    f = float(focal_px)
    rot = _rotation(-yaw_deg, pitch_deg)  # _rotation's yaw > 0 brings the right half toward the camera
    if roll_deg:
        c, s = math.cos(math.radians(roll_deg)), math.sin(math.radians(roll_deg))
        rot = rot @ np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    ox, oy = float(pivot[0]) - cx, float(pivot[1]) - cy
    o = np.array([ox, oy, f])
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    d = np.stack([(xx - cx) / f, (yy - cy) / f, np.ones_like(xx)])  # rays, camera frame
    a = np.tensordot(rot.T, d, axes=1)  # the ray's direction in the sheet's frame
    b = -(rot.T @ o)  # the camera centre in the sheet's frame (origin at the pivot)
    # sheet: z = -curl * (1 - (t / span)^2), z toward the camera negative (camera looks along +z)
    k = 0 if curl_axis == "vertical" else 1
    q = curl / max(curl_half_span, 1e-6) ** 2
    z0 = -curl
    ak, bk = a[k], b[k]
    if abs(q) < 1e-12:
        lam = (z0 - b[2]) / a[2]
    else:
        qa = q * ak**2
        qb = 2 * q * ak * bk - a[2]
        qc = q * bk**2 + z0 - b[2]
        disc = np.sqrt(np.clip(qb**2 - 4 * qa * qc, 0.0, None))
        safe = np.where(np.abs(qa) < 1e-15, 1e-15, qa)
        r1, r2 = (-qb - disc) / (2 * safe), (-qb + disc) / (2 * safe)
        lin = np.where(np.abs(qb) < 1e-15, 0.0, -qc / np.where(np.abs(qb) < 1e-15, 1.0, qb))
        # the nearer intersection in front of the camera (the parabola's other sheet is far away)
        r1 = np.where(r1 > 0, r1, np.inf)
        r2 = np.where(r2 > 0, r2, np.inf)
        lam = np.where(np.abs(qa) < 1e-15, lin, np.minimum(r1, r2))
        lam = np.where(np.isfinite(lam), lam, 1.0)
    sx = lam * a[0] + b[0] + ox + cx
    sy = lam * a[1] + b[1] + oy + cy
    return np.asarray(cv2.remap(img, sx.astype(np.float32), sy.astype(np.float32), cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REPLICATE), np.uint8)


def paced_pose(t_ms: Sequence[float], start_ms: float, out_ms: float, hold_ms: float, back_ms: float,
               peak_deg: float) -> NDArray[np.float64]:
    """A turn or nod out and back: 0 before ``start_ms``, a half-cosine ramp to ``peak_deg`` over ``out_ms``,
    held ``hold_ms``, back to 0 over ``back_ms``; degrees at each time (ms)."""
    t = np.asarray(t_ms, np.float64) - start_ms
    up = np.clip(t / max(out_ms, 1.0), 0.0, 1.0)
    down = np.clip((t - out_ms - hold_ms) / max(back_ms, 1.0), 0.0, 1.0)
    return peak_deg * (0.5 - 0.5 * np.cos(math.pi * up)) * (0.5 + 0.5 * np.cos(math.pi * down))
