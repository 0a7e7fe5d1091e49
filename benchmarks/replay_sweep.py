"""Screen replays unlike attacks.py's own: how much of PAD's catch is attacks.PhoneScreen's artefacts.

    nice -n 10 .venv/bin/python benchmarks/replay_sweep.py --per-variant 30 --workers 2 --budget-min 35
    .venv/bin/python benchmarks/replay_sweep.py --summarize-only     # tables from the cache, no scoring

pad_eval's synthetic replays always show a strong glare, RGB sub-pixel stripes, a bluish display tone curve,
a black bezel and a grey phone body, the phone at 0.40-0.75 of the frame width; the real apfol screen-replay
crops pass PAD 23/25. Here the two REAL clips (../shared/faces/video: talking_head_a, blink_7_times_1080p)
are replayed PLAIN (not cued: nothing acts a challenge) on an attacks.PhoneScreen with one artefact switched
off at a time, all of them off ("clean"), and held close (phone 0.75-1.0 and 1.0-1.4 of the frame width:
bezel partly / fully out of view), and judged by PAD as production judges it:

* frames at 8 fps over 7 s (56 frames; production's capture rate, a settle step plus a challenge step);
* every frame through production's frame engine (verification.load_frame_engine: dlib HOG on a 320 px copy,
  no CNN fallback; pad_eval.Worker.observe: 68 landmarks, the PAD crop box of the pack's rule) and MiniFASNet
  (pad_eval.Worker.score); production's choice of scored frames
  (pad_eval.production_pad_scores: steps.pad_pick per steps.CHUNK_MS chunk); the manifest's session fusion and
  threshold (lifecert.engine.pad.PadModel.fuse / is_attack). No face found in any frame = no PAD score = an
  attack as far as PAD can tell (PadModel.is_attack on NaN), counted as stopped and listed apart.

Held close, the attacker frames the face as the capture page asks (its oval): the clip is sized on the screen
so that the face takes pad_eval.GENUINE_FACE_FRAC (0.50-0.70) of the camera frame's width, what the clip
does not cover filled as attacks.genuine_frame fills it (its own border stretched and blurred; oval_picture).
The one-factor variants show the clip as attacks.py does (scaled to cover the screen).

CUED rows (``cued_*``, added by the lead in session 7): the clip ACTS the drawn challenges on the phone as
pad_eval's cued replays do (Worker.acting, attacks.Actor with a 0.8-1.5 s cue delay and the reaction to
production's first action hint, turns by attacks.turn_head_3d), captured as production paces it (Worker.paced)
through production's frame engine, and judged by production's active checks (pad_eval.production_decision) as
well as PAD: the issue's attack, measured directly rather than estimated from a plain replay's PAD rate.

SMALLER FACE rows (``*_f25``, ``*_f35``, session 8): the face drawn at FACE_F25 (0.25-0.35) or FACE_F35
(0.35-0.45) of the frame width instead of the oval's 0.50-0.70 (bands fixed before the first run): would a page
asking for a smaller face (the phone held farther) give MiniFASNet its 2.7x / 4.0x context crops (they fit the
frame up to a face of ~0.37 / ~0.25 of its width) and refuse held-closer replays? The phone is still held
closer (1.0-1.4 of the width, its edges out of the picture), so the screen shows the clip ZOOMED OUT. Zoomed
out that far the clip frames (talking_head_a 512x512, its face 0.80 of its width; blink_7 1920x1080) do not
cover the screen: :func:`oval_picture` makes up the rest as for the oval-sized rows (the whole clip frame scaled,
sharp; around it attacks.genuine_frame's fill, the clip's border stretched outward and blurred, made at a
quarter of the size). The genuine controls at the same face sizes (``genuine_f25``, ``genuine_f35``) are made by
the very same function at the camera frame's size (``fill``), so the made-up surroundings are the same relative
to the face in both and PAD cannot tell them apart by it; ``genuine_fill`` is that control at the oval's size
(the older ``genuine`` rows use attacks.genuine_frame, as pad_eval).
ACTED GENUINE rows (``acted_genuine*``, ``fill`` too): the genuine person ACTS the drawn challenges (the same
challenge, acting and hint draws as the cued rows of the same session number; a 0.6-1.2 s reaction as pad_eval's
video_acted), paced as production, judged by production's active checks and PAD: what a smaller face costs the
blink / turn detection and the genuine user.

PER-NET rows (``*_nets``, session 8): closer_default, cued_closer_default and genuine again (the same draws, so
the same frames and PAD scores), with each MiniFASNet's own P(real) of production's PAD frames kept
(:class:`NetRecorder`); :func:`net_check` asks whether one net alone or their minimum would separate the replays
from the genuine controls better than production's mean (split halves, as :func:`statistic_check`).

GENUINE controls: the same clips straight to the camera as pad_eval's genuine sessions (attacks.genuine_frame,
face at GENUINE_FACE_FRAC of the width, shift +-0.04), the same camera draws.

Pairing: session k of a clip draws its room, phone pose, tremor, glare position, clip start, camera and face
size from the same seeds in every variant (a switch never changes PhoneScreen's draws), so variants differ
only by what they switch. Cameras: attacks.Camera.random (pad_eval's draw) in every row, plus rows with a
high-quality camera (HQ_CAMERA).

PER-SESSION results: the results JSON keeps every cached session's record (``sessions``, :func:`session_record`:
variant, clip, number, half, fused PAD score, PAD's verdict, the active decision of the cued / acted rows and
whether production would confirm it; no images), so that a rule on the session scores (benchmarks/audit_band.py)
is evaluated without rescoring. A run of a few variants (``--variants``) writes its tables and sessions to
``--out`` (e.g. benchmarks/results/replay_sweep_band.json) with ``--no-readme``, leaving the full sweep's
replay_sweep.json and README table as they are.

Real: the two clips (the people and their motion). Synthetic: the phone and its screen, the room behind it,
the hand tremor, the camera (blur, noise, JPEG, exposure). No threshold or switch here is chosen on these
numbers: the variants, the framing and the camera were fixed before the first run.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import datetime as dt
import json
import math
import multiprocessing as mp
import os
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import attacks as atk  # noqa: E402
from benchmarks import pad_eval as pe  # noqa: E402
from benchmarks.accuracy import update_readme  # noqa: E402
from lifecert.config import Settings  # noqa: E402
from lifecert.engine.liveness import LivenessParams  # noqa: E402
from lifecert.engine.pad import REAL_CLASS, PadModel, fuse_session, pad_spec  # noqa: E402
from lifecert.services.evaluation import machine_info  # noqa: E402
from lifecert.services.verification import load_frame_engine, steps  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
VERSION = "r2"  # bump when a session's synthesis changes (r2: the cued / acted rows draw open_mouth in every
# session, production's draw since session 11: pad_eval.draw_challenges(mouth_always=True))
SEED = 7
FPS = 8.0  # production's capture rate (steps.capture_fps of settle / turns / nod / open_mouth)
SECONDS = 7.0
CLIP_ID = {name: i for i, name in enumerate(pe.CLIPS)}
# A good phone in good light: little defocus and noise, JPEG at the top of Camera.random's range, no gain.
HQ_CAMERA = {"blur_sigma": 0.3, "noise_sigma": 1.0, "jpeg_quality": 92, "gain": 1.0}
WIDE_PHONE = (0.75, 1.0)  # phone width / frame width: the bezel partly out of view
WIDER_PHONE = (1.0, 1.4)  # the bezel out of view at the sides too
# face box width / frame width of the smaller-face rows (session 8, fixed before the first run): the 2.7x context
# crop fits the frame below ~0.37, the 4.0x one below ~0.25 (lifecert.engine.pad.context_box)
FACE_F25 = (0.25, 0.35)
FACE_F35 = (0.35, 0.45)
ALL_OFF: tuple[tuple[str, Any], ...] = (("glare", False), ("subpixel", False), ("tone", False), ("tint", False),
                                        ("bezel", False))


@dataclass(frozen=True)
class Variant:
    name: str
    what: str
    genuine: bool = False
    switches: tuple[tuple[str, Any], ...] = ()  # attacks.PhoneScreen keyword arguments
    width: tuple[float, float] | None = None  # phone width / frame width (None: attacks.py's 0.40-0.75)
    camera: str = "random"  # "random" (attacks.Camera.random) or "hq" (HQ_CAMERA)
    cued: bool = False  # the clip ACTS the drawn challenges as pad_eval's cued replays, paced as production
    face: tuple[float, float] | None = None  # face box width / frame width (None: pad_eval.GENUINE_FACE_FRAC)
    acted: bool = False  # genuine: the person ACTS the drawn challenges, paced as production (active checks too)
    fill: bool = False  # genuine frames by oval_picture (the screens' picture function), not attacks.genuine_frame
    nets: bool = False  # also keep each MiniFASNet's own P(real) of production's PAD frames (NetRecorder)


VARIANTS: tuple[Variant, ...] = (
    Variant("default", "attacks.PhoneScreen as pad_eval's replay: every artefact"),
    Variant("no_glare", "default without the glare ellipse", switches=(("glare", False),)),
    Variant("no_subpixel", "default without the RGB sub-pixel stripes", switches=(("subpixel", False),)),
    Variant("no_tone", "default without the display's tone curve and bluish tint",
            switches=(("tone", False), ("tint", False))),
    Variant("no_bezel", "default with an edge-to-edge screen (no black bezel, no body)", switches=(("bezel", False),)),
    Variant("light_body", "default with a light grey phone body (215) instead of dark grey",
            switches=(("body_grey", 215),)),
    Variant("clean", "no glare, stripes, tone, tint or bezel: the clip's picture on a rectangle", switches=ALL_OFF),
    Variant("close_default", "held close, 0.75-1.0 of the width, face in the oval; every artefact",
            width=WIDE_PHONE),
    Variant("close_clean", "held close, 0.75-1.0 of the width, face in the oval; clean", switches=ALL_OFF,
            width=WIDE_PHONE),
    Variant("closer_default", "held closer, 1.0-1.4 of the width, face in the oval; every artefact",
            width=WIDER_PHONE),
    Variant("closer_clean", "held closer, 1.0-1.4 of the width, face in the oval; clean", switches=ALL_OFF,
            width=WIDER_PHONE),
    Variant("clean_hq", "clean, high-quality camera", switches=ALL_OFF, camera="hq"),
    Variant("closer_clean_hq", "held closer, clean, high-quality camera", switches=ALL_OFF, width=WIDER_PHONE,
            camera="hq"),
    Variant("cued_default", "CUED (acts the drawn challenges, paced as production), attacks.py's framing; every "
            "artefact", cued=True),
    Variant("cued_closer_default", "CUED, held closer, 1.0-1.4 of the width, face in the oval; every artefact",
            width=WIDER_PHONE, cued=True),
    Variant("genuine", "GENUINE: the clip straight to the camera (pad_eval's framing)", genuine=True),
    Variant("genuine_hq", "GENUINE, high-quality camera", genuine=True, camera="hq"),
    # session 8: a smaller face in the frame (the phone held farther), the clip zoomed out on the screen
    Variant("closer_default_f25", "held closer, 1.0-1.4 of the width, face 0.25-0.35 of the width; every artefact",
            width=WIDER_PHONE, face=FACE_F25),
    Variant("closer_default_f35", "held closer, 1.0-1.4 of the width, face 0.35-0.45 of the width; every artefact",
            width=WIDER_PHONE, face=FACE_F35),
    Variant("closer_clean_f25", "held closer, 1.0-1.4 of the width, face 0.25-0.35 of the width; clean",
            switches=ALL_OFF, width=WIDER_PHONE, face=FACE_F25),
    Variant("closer_clean_f35", "held closer, 1.0-1.4 of the width, face 0.35-0.45 of the width; clean",
            switches=ALL_OFF, width=WIDER_PHONE, face=FACE_F35),
    Variant("cued_closer_default_f25", "CUED, held closer, 1.0-1.4 of the width, face 0.25-0.35; every artefact",
            width=WIDER_PHONE, cued=True, face=FACE_F25),
    Variant("cued_closer_default_f35", "CUED, held closer, 1.0-1.4 of the width, face 0.35-0.45; every artefact",
            width=WIDER_PHONE, cued=True, face=FACE_F35),
    Variant("genuine_f25", "GENUINE, face 0.25-0.35 of the width, made by the screens' oval_picture",
            genuine=True, face=FACE_F25, fill=True),
    Variant("genuine_f35", "GENUINE, face 0.35-0.45 of the width, made by the screens' oval_picture",
            genuine=True, face=FACE_F35, fill=True),
    Variant("genuine_fill", "GENUINE, the oval's face size, made by the screens' oval_picture", genuine=True,
            fill=True),
    Variant("acted_genuine", "GENUINE ACTING the drawn challenges, paced as production, the oval's face size",
            genuine=True, acted=True, fill=True),
    Variant("acted_genuine_f25", "GENUINE ACTING the drawn challenges, face 0.25-0.35 of the width", genuine=True,
            acted=True, face=FACE_F25, fill=True),
    Variant("acted_genuine_f35", "GENUINE ACTING the drawn challenges, face 0.35-0.45 of the width", genuine=True,
            acted=True, face=FACE_F35, fill=True),
    # session 8: the rows above again (the same draws and frames), with each net's P(real) kept (net_check)
    Variant("closer_default_nets", "closer_default, each net's P(real) kept", width=WIDER_PHONE, nets=True),
    Variant("cued_closer_default_nets", "cued_closer_default, each net's P(real) kept", width=WIDER_PHONE, cued=True,
            nets=True),
    Variant("genuine_nets", "genuine, each net's P(real) kept", genuine=True, nets=True),
)
BY_NAME = {v.name: v for v in VARIANTS}


def cache_file(cache_dir: Path, variant: str, clip: str, number: int) -> Path:
    return cache_dir / f"{pe.scoring_key()}-{VERSION}-s{SEED}" / f"{variant}-{clip}-{number}.json"


def times_ms() -> list[int]:
    return [round(i * 1000 / FPS) for i in range(int(SECONDS * FPS))]


def camera(v: Variant, rng: np.random.Generator) -> atk.Camera:
    return atk.Camera(rng, **HQ_CAMERA) if v.camera == "hq" else atk.Camera.random(rng)


def oval_picture(src: np.ndarray, size: tuple[int, int], zoom: float,
                 shift: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """The screen's picture (``size`` = (width, height)) when the attacker zooms the clip out (``zoom`` < 1) so
    that the face fills the page's oval: the clip scaled to ``zoom`` x the scale that covers ``size``, centred
    (moved by ``shift``, fractions of the size), sharp; around it what attacks.genuine_frame fills in (the clip's
    border stretched and blurred), made at a quarter of the size (it is a blur: the quarter costs a sixteenth,
    and the phone screen is large). Also the genuine controls' frames of the ``fill`` rows (the same
    surroundings, relative to the face, as the screens')."""
    if zoom >= 1.0:
        return atk.genuine_frame(src, size, zoom, shift)
    w, h = size
    fill = cv2.resize(atk.genuine_frame(src, (max(8, w // 4), max(8, h // 4)), zoom, shift), size,
                      interpolation=cv2.INTER_LINEAR)
    sh, sw = src.shape[:2]
    s = max(w / sw, h / sh) * zoom
    scaled = cv2.resize(src, (round(sw * s), round(sh * s)), interpolation=cv2.INTER_AREA if s < 1 else
                        cv2.INTER_LINEAR)

    def place(n: int, m: int, d: float) -> int:  # top-left of an m-long clip side on an n-long picture side
        return ((n - m) // 2 if m <= n else -((m - n) // 2)) + round(d * n)

    ox, oy = place(w, scaled.shape[1], shift[0]), place(h, scaled.shape[0], shift[1])
    x0, y0 = max(0, ox), max(0, oy)
    x1, y1 = min(w, ox + scaled.shape[1]), min(h, oy + scaled.shape[0])
    inside = np.zeros((h, w), np.float32)
    inside[y0 + 2 : y1 - 2, x0 + 2 : x1 - 2] = 1.0
    alpha = cv2.blur(inside, (5, 5))[..., None]  # a 2 px feather: the clip's own edge, not a drawn line
    out = fill.astype(np.float32)
    sharp = out.copy()
    sharp[y0:y1, x0:x1] = scaled[y0 - oy : y1 - oy, x0 - ox : x1 - ox]
    return np.clip(out * (1 - alpha) + sharp * alpha, 0, 255).astype(np.uint8)


class NetRecorder:
    """Stands in for the worker's PadModel while a session is scored: box_for and the rest are the model's,
    score_many returns what PadModel.score_many returns (the nets' mean P(real), after the exposure
    normalisation) and keeps each net's own P(real) in ``per_net`` (net name -> values, in call order)."""

    def __init__(self, pad: PadModel) -> None:
        self.pad = pad
        self.per_net: dict[str, list[float]] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.pad, name)

    def score_many(self, frames: Sequence[np.ndarray], boxes: Sequence[Any]) -> np.ndarray:
        if not frames:
            return np.zeros(0, dtype=np.float64)
        if self.pad.exposure is not None:
            norm = self.pad.exposure
            frames = [norm.apply(f, b) for f, b in zip(frames, boxes, strict=True)]
        total = np.zeros((len(frames), 3), dtype=np.float64)
        for net in self.pad.nets:
            p = net.probabilities(frames, boxes)
            total += p
            self.per_net.setdefault(net.name, []).extend(float(x) for x in p[:, REAL_CLASS])
        return np.asarray(total[:, REAL_CLASS] / len(self.pad.nets), dtype=np.float64)


def production_pad_index(row: dict[str, Any]) -> list[int]:
    """The indices into ``row["frames"]`` of the frames pad_eval.production_pad_scores takes (the same rule:
    per steps.CHUNK_MS chunk, steps.pad_pick among the frames with a PAD score)."""
    chunks: dict[int, list[int]] = defaultdict(list)
    for i, f in enumerate(row["frames"]):
        if f["pad"] is not None:
            chunks[int(f["t"]) // steps.CHUNK_MS].append(i)
    return [i for _, idx in sorted(chunks.items()) for k, i in enumerate(idx) if k in steps.pad_pick(len(idx))]


@dataclass(frozen=True)
class Draws:
    """What a session draws before its frames (:meth:`Sweep.draws`)."""

    rng_phone: np.random.Generator  # feeds attacks.PhoneScreen (its pose, tremor, glare)
    cam: atk.Camera
    start: int  # clip frame shown first
    face_target: float  # the face's share of the frame width (Variant.face, else pad_eval.GENUINE_FACE_FRAC)
    shift: tuple[float, float]  # genuine framing offset
    width: float | None  # phone width / frame width (None: attacks.py's draw)


class Sweep:
    """Per-process state: pad_eval's Worker (engine, PAD, the clips and their index)."""

    def __init__(self, faces: Path, models: Path, cache_dir: Path) -> None:
        self.worker = pe.Worker(faces, models, cache_dir, SEED)
        # production's frame engine (verification.load_frame_engine: detection on a 320 px copy, no CNN
        # fallback), not pad_eval's (640 px, CNN fallback when HOG finds nothing): which frames have a face
        # decides which frames PAD scores
        self.worker.engine = load_frame_engine(Settings(), name="dlib")

    def draws(self, v: Variant, clip: str, number: int) -> Draws:
        """Session ``number``'s draws, the same in every variant (three generators: scene/phone, camera, clip
        start and framing), so that variants differ only by what they switch."""
        cid = CLIP_ID[clip]
        rng = np.random.default_rng([SEED, 3, cid, number])
        start = int(rng.integers(0, len(self.worker.clips[clip][0])))
        # the same uniform draw in every variant, mapped onto the variant's face band
        face_target = float(rng.uniform(*(v.face or pe.GENUINE_FACE_FRAC)))
        shift = (float(rng.uniform(-0.04, 0.04)), float(rng.uniform(-0.04, 0.04)))
        width = float(rng.uniform(*v.width)) if v.width else None
        return Draws(np.random.default_rng([SEED, 1, cid, number]),
                     camera(v, np.random.default_rng([SEED, 2, cid, number])), start, face_target, shift, width)

    def frames(self, v: Variant, clip: str, number: int) -> tuple[list[np.ndarray], dict[str, Any]]:
        """The session's camera frames (BGR, attacks.CAMERA) and what was drawn."""
        jpgs, index = self.worker.clips[clip]  # the clip as JPEG in memory: decode only the frames shown
        d = self.draws(v, clip, number)
        rng_phone, cam, start, face_target, shift, width = d.rng_phone, d.cam, d.start, d.face_target, d.shift, d.width
        meta: dict[str, Any] = {"start": start, "camera": {k: round(float(getattr(cam, k)), 3) for k in HQ_CAMERA}}

        def pick(t: int) -> np.ndarray:
            return np.asarray(cv2.imdecode(jpgs[(start + round(t * index.fps / 1000)) % len(jpgs)],
                                           cv2.IMREAD_COLOR), np.uint8)

        ts = times_ms()
        if v.genuine:
            zoom = face_target / self.worker.face_frac[clip]
            meta |= {"face_target": round(face_target, 3), "zoom": round(zoom, 3)}
            if v.fill:  # the held-close screens' picture function, at the camera frame's size
                return [cam.shoot(oval_picture(pick(t), atk.CAMERA, zoom, shift)) for t in ts], meta
            return [cam.shoot(atk.genuine_frame(pick(t), zoom=zoom, shift=shift)) for t in ts], meta
        phone = atk.PhoneScreen(rng_phone, width_frac=width, **dict(v.switches))
        meta["width_frac"] = round(float(phone.width_frac or 0.0), 3)
        if width is None:  # attacks.py's way: the clip scaled to cover the screen
            return [cam.shoot(phone.render(pick(t))) for t in ts], meta
        # held close: the clip sized on the screen so that the face fills the page's oval
        sw, sh = phone.screen_size()
        on_screen = pe.clip_face_fraction(index, pick(0).shape[:2], (sw, sh))
        zoom = face_target * atk.CAMERA[0] / sw / on_screen
        meta |= {"face_target": round(face_target, 3), "screen_zoom": round(zoom, 3)}
        return [cam.shoot(phone.render(oval_picture(pick(t), (sw, sh), zoom))) for t in ts], meta

    def cued(self, v: Variant, clip: str, number: int) -> tuple[pe.Seq, dict[str, Any]]:
        """A cued replay on the variant's phone: the clip acts the drawn challenges as pad_eval's cued_replay
        sessions do (pad_eval.Worker.acting, attacks.Actor with an 0.8-1.5 s cue delay, reacting to production's
        first action hint of a step; turns by attacks.turn_head_3d), captured as production paces it
        (pad_eval.Worker.paced). The phone, camera and framing draws are those of :meth:`frames` for the same
        session number; the acting draws come from a generator of their own."""
        w = self.worker
        d = self.draws(v, clip, number)  # the clip start and shift are unused: the actor plays its own
        rng_phone, cam, face_target, width = d.rng_phone, d.cam, d.face_target, d.width
        act = np.random.default_rng([SEED, 4, CLIP_ID[clip], number])
        ch = pe.draw_challenges(act, bool(w.clips[clip][1].mouth_frames()), mouth_always=True)
        frames, index, degs, more, meta = w.acting(act, clip, ch, depth=True)
        actor = atk.Actor(index, ch, act, delay_ms=int(act.uniform(800, 1500)), turn_deg=degs, more_deg=more)
        jitters = [int(act.uniform(*steps.PROMPT_DELAY_MS)) for _ in ch]
        phone = atk.PhoneScreen(rng_phone, width_frac=width, **dict(v.switches))
        meta |= {"challenges": list(ch), "width_frac": round(float(phone.width_frac or 0.0), 3)}
        if width is None:
            def render(sh: atk.Shot) -> np.ndarray:
                return cam.shoot(phone.render(atk.render_shot(frames, index, sh, depth=True)))
        else:
            sw, shh = phone.screen_size()
            zoom = face_target * atk.CAMERA[0] / sw / pe.clip_face_fraction(index, frames[0].shape[:2], (sw, shh))
            meta |= {"face_target": round(face_target, 3), "screen_zoom": round(zoom, 3)}

            def render(sh: atk.Shot) -> np.ndarray:
                return cam.shoot(phone.render(oval_picture(atk.render_shot(frames, index, sh, depth=True),
                                                           (sw, shh), zoom)))
        sq = pe.Seq(f"{v.name}/{clip}/{number}", "cued_replay", clip, "-", [], [], list(ch), [], meta)
        return w.paced(sq, actor, render, jitters), meta

    def acted(self, v: Variant, clip: str, number: int) -> tuple[pe.Seq, dict[str, Any]]:
        """A genuine person acting the drawn challenges straight to the camera, paced as production: the
        challenges, the acting (turn warps, hint reaction) and the prompt jitters from the generator of
        :meth:`cued` for the same session number (the same draws, in the same order), a reaction delay of
        0.6-1.2 s (pad_eval's video_acted) from the draw the cued attacker's 0.8-1.5 s cue delay comes from; the
        camera, face size and framing shift from :meth:`draws`; each frame made as the genuine controls' are
        (:func:`oval_picture` of the acted clip frame at the camera frame's size, the ``fill`` rows' function)."""
        w = self.worker
        d = self.draws(v, clip, number)
        act = np.random.default_rng([SEED, 4, CLIP_ID[clip], number])
        ch = pe.draw_challenges(act, bool(w.clips[clip][1].mouth_frames()), mouth_always=True)
        frames, index, degs, more, meta = w.acting(act, clip, ch, depth=True)
        actor = atk.Actor(index, ch, act, delay_ms=int(act.uniform(600, 1200)), turn_deg=degs, more_deg=more)
        jitters = [int(act.uniform(*steps.PROMPT_DELAY_MS)) for _ in ch]
        zoom = d.face_target / w.face_frac[clip]
        meta |= {"challenges": list(ch), "face_target": round(d.face_target, 3), "zoom": round(zoom, 3)}

        def render(sh: atk.Shot) -> np.ndarray:
            return d.cam.shoot(oval_picture(atk.render_shot(frames, index, sh, depth=True), atk.CAMERA, zoom,
                                            d.shift))

        sq = pe.Seq(f"{v.name}/{clip}/{number}", "bona_fide", "video_acted", "-", [], [], list(ch), [], meta)
        return w.paced(sq, actor, render, jitters), meta

    def run(self, variant: str, clip: str, number: int) -> dict[str, Any]:
        t0 = time.process_time()
        v = BY_NAME[variant]
        pad_model = self.worker.pad
        if v.nets:
            self.worker.pad = NetRecorder(pad_model)  # type: ignore[assignment]
        try:
            out = self._run(v, clip, number, t0)
        finally:
            rec, self.worker.pad = self.worker.pad, pad_model
        if isinstance(rec, NetRecorder):
            row = out.pop("_row")
            face = [i for i, f in enumerate(row["frames"]) if f["pad"] is not None]  # Worker.score's order
            at = {i: k for k, i in enumerate(face)}
            picks = production_pad_index(row)
            if [round(row["frames"][i]["pad"], 5) for i in picks] != out["pad_scores"]:
                raise RuntimeError(f"{variant}/{clip}/{number}: production's PAD frames not found again")
            out["net_scores"] = {name: [round(vals[at[i]], 5) for i in picks] for name, vals in rec.per_net.items()}
        out.pop("_row", None)
        return out

    def _run(self, v: Variant, clip: str, number: int, t0: float) -> dict[str, Any]:
        variant = v.name
        active: dict[str, Any] = {}
        if v.cued or v.acted:
            sq, meta = self.cued(v, clip, number) if v.cued else self.acted(v, clip, number)
            imgs = sq.frames
            row = self.worker.score(sq, cues=True)
            st = Settings()
            d = pe.production_decision(row, LivenessParams(), st.quality, st.verification.min_frames)
            active = {"active_pass": not d["active_reject"], "decision": d["decision"], "reason": d["reason"],
                      "missed": d["missed"],
                      "steps": [[c["name"], bool(c["passed"])] for c in d["challenge_results"]]}
        else:
            imgs, meta = self.frames(v, clip, number)
            ts = times_ms()
            sq = pe.Seq(f"{variant}/{clip}/{number}", "bona_fide" if v.genuine else "replay", clip, "-", imgs, ts)
            row = self.worker.score(sq, cues=True)
        scores = pe.production_pad_scores(row)
        pad = self.worker.pad
        session = pad.fuse(scores)
        w = float(atk.CAMERA[0])
        face_w = [(f["box"][2] - f["box"][0]) / w for f in row["frames"] if f["box"] is not None]
        return {"variant": variant, "clip": clip, "number": number, "meta": meta,
                "frames": len(imgs), "with_face": len(face_w), "pad_frames": len(scores),
                "pad_scores": [round(s, 5) for s in scores],
                "all_frame_scores": [f["pad"] for f in row["frames"] if f["pad"] is not None],
                "session_score": None if math.isnan(session) else round(session, 5),
                "threshold": pad.threshold.value, "fusion": pad.threshold.fusion,
                "pad_attack": pad.is_attack(session),
                "face_width_median": round(float(np.median(face_w)), 3) if face_w else None,
                "cues": row["cues"], "cpu_s": round(time.process_time() - t0, 2), "_row": row} | active


_SWEEP: Sweep | None = None


def _init(faces: Path, models: Path, cache_dir: Path) -> None:
    global _SWEEP
    cur = os.nice(0)
    if cur < 10:  # background work on a shared machine: at least nice 10
        os.nice(10 - cur)
    _SWEEP = Sweep(faces, models, cache_dir)


def _run(job: tuple[str, str, int]) -> dict[str, Any]:
    assert _SWEEP is not None
    return _SWEEP.run(*job)


def plan(per_variant: int, variants: Sequence[str]) -> list[tuple[str, str, int]]:
    """Round-robin over (variant, clip) cells, session number by session number: a run stopped by its time box
    leaves every cell with about the same n."""
    return [(v, c, k) for k in range(per_variant) for v in variants for c in pe.CLIPS]


# -- summary ---------------------------------------------------------------------------------------------------


def quantiles(vals: Sequence[float]) -> dict[str, float] | None:
    if not vals:
        return None
    q = np.quantile(np.asarray(vals, np.float64), [0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0])
    return dict(zip(("min", "p10", "p25", "median", "p75", "p90", "max"), (round(float(x), 3) for x in q),
                    strict=True))


def cell(rows: Sequence[dict[str, Any]], genuine: bool) -> dict[str, Any]:
    """APCER (attacks: share PAD lets through) or BPCER (genuine: share PAD refuses), Clopper-Pearson 95 %."""
    res = pe.rate(rows, lambda r: bool(r["pad_attack"]), attack=not genuine)
    scores = [r["session_score"] for r in rows if r["session_score"] is not None]
    faces = [r["face_width_median"] for r in rows if r["face_width_median"] is not None]
    cues: dict[str, Any] = {}
    for k in CUES:
        vals = [r["cues"][k] for r in rows if r["cues"].get(k) is not None]
        cues[k] = round(float(np.median(vals)), 3) if vals else None
    return res | {"no_face": sum(1 for r in rows if r["session_score"] is None),
                  "score_quantiles": quantiles(scores),
                  "face_width": quantiles(faces), "cue_medians": cues,
                  "cpu_s_median": round(float(np.median([r["cpu_s"] for r in rows])), 2) if rows else None}


CUES = ("enclosure", "moire", "specular")


def cue_auc(rows: dict[tuple[str, str], list[dict[str, Any]]]) -> dict[str, dict[str, float | None]]:
    """Per attack variant, each spoof_cues session value's AUC against the genuine controls with the same camera
    (pad_eval.auc: P(replay value > genuine value); 0.5 = no separation). Measured, not trusted: none flags."""
    out: dict[str, dict[str, float | None]] = {}
    for v in VARIANTS:
        if v.genuine:
            continue
        att = [r for c in pe.CLIPS for r in rows[(v.name, c)]]
        gen = [r for c in pe.CLIPS for r in rows[("genuine_hq" if v.camera == "hq" else "genuine", c)]]
        if att and gen:
            out[v.name] = {k: (None if (a := pe.auc([r["cues"][k] for r in att], [r["cues"][k] for r in gen])) is None
                               else round(a, 2)) for k in CUES}
    return out


STATISTIC_CHECK = ("per fusion, threshold = the lowest session score of the genuine controls (random camera) with "
                   "even session numbers (half A, BPCER 0 there); rates of the odd session numbers (half B)")


def statistic_check(rows: dict[tuple[str, str], list[dict[str, Any]]]) -> dict[str, Any]:
    """Would another session statistic of the same per-frame P(real) separate the replays from the genuine
    controls? Split halves, so nothing is chosen on what is reported: per fusion (mean, median, p25) the
    threshold is the lowest session score of the genuine controls (random camera) with EVEN session numbers
    (half A: BPCER 0 there); the rates are those of the ODD session numbers (half B) at that threshold."""
    def score(r: dict[str, Any], fusion: str) -> float:
        return fuse_session(r["pad_scores"], fusion)

    out: dict[str, Any] = {"how": STATISTIC_CHECK}
    for fusion in ("mean", "median", "p25"):
        cal = [score(r, fusion) for c in pe.CLIPS for r in rows[("genuine", c)] if r["number"] % 2 == 0]
        cal = [v for v in cal if not math.isnan(v)]
        if not cal:
            continue
        thr = min(cal)
        res: dict[str, Any] = {"threshold_half_a": round(thr, 4), "n_half_a": len(cal), "half_b": {}}
        for v in VARIANTS:
            b = [r for c in pe.CLIPS for r in rows[(v.name, c)] if r["number"] % 2 == 1]
            if b:
                res["half_b"][v.name] = pe.rate(b, lambda r, f=fusion, t=thr: math.isnan(score(r, f)) or
                                                score(r, f) < t, attack=not v.genuine)
        out[fusion] = res
    return out


NET_FUSIONS = ("mean", "min", "pad_v2", "pad_v1se")  # mean = production (PadModel.score_many)
NET_CHECK = ("per frame, the two nets' P(real) fused as named (mean = production; min; one net alone: pad_v2 = "
             "MiniFASNetV2 on the 2.7x crop, pad_v1se = MiniFASNetV1SE on the 4.0x crop), per session the manifest's "
             "fusion over production's PAD frames; threshold = the lowest session score of `genuine_nets` with even "
             "session numbers (half A, BPCER 0 there); rates of the odd session numbers (half B)")


def net_check(rows: dict[tuple[str, str], list[dict[str, Any]]], fusion: str) -> dict[str, Any]:
    """Do the two nets differ on held-closer replays? For each way of fusing the nets per frame (NET_FUSIONS),
    the session statistic is production's (``fusion``); threshold from half A of the genuine controls, rates
    from half B (:func:`statistic_check`'s split), for the ``nets`` rows (PAD alone; cued rows also PAD +
    active)."""
    def frame_values(r: dict[str, Any], how: str) -> list[float]:
        v2, v1 = r["net_scores"].get("pad_v2", []), r["net_scores"].get("pad_v1se", [])  # none: no face found
        if how == "mean":
            return [(a + b) / 2 for a, b in zip(v2, v1, strict=True)]
        if how == "min":
            return [min(a, b) for a, b in zip(v2, v1, strict=True)]
        return list(r["net_scores"].get(how, []))

    def score(r: dict[str, Any], how: str) -> float:
        return fuse_session(frame_values(r, how), fusion)

    def refused(r: dict[str, Any], how: str, thr: float) -> bool:
        s = score(r, how)
        return math.isnan(s) or s < thr

    nets = [v for v in VARIANTS if v.nets]
    out: dict[str, Any] = {"how": NET_CHECK}
    gen = [r for c in pe.CLIPS for r in rows[("genuine_nets", c)] if "net_scores" in r]
    for how in NET_FUSIONS:
        cal = [s for r in gen if r["number"] % 2 == 0 and not math.isnan(s := score(r, how))]
        if not cal:
            continue
        thr = min(cal)
        res: dict[str, Any] = {"threshold_half_a": round(thr, 4), "n_half_a": len(cal), "half_b": {}}
        for v in nets:
            b = [r for c in pe.CLIPS for r in rows[(v.name, c)] if r["number"] % 2 == 1 and "net_scores" in r]
            if not b:
                continue
            res["half_b"][v.name] = pe.rate(b, lambda r, h=how, t=thr: refused(r, h, t), attack=not v.genuine)
            if v.cued:
                res["half_b"][v.name + "+active"] = pe.rate(
                    b, lambda r, h=how, t=thr: refused(r, h, t) or not r["active_pass"], attack=True)
        out[how] = res
    med = {}
    for v in nets:
        both = [r for c in pe.CLIPS for r in rows[(v.name, c)] if "net_scores" in r]
        if both:
            med[v.name] = {how: round(float(np.nanmedian([score(r, how) for r in both])), 3) for how in NET_FUSIONS}
    out["median_session_score"] = med
    return out


def cued_rates(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Cued replays: APCER of the active checks alone and of production's decision (PAD + active: a session
    passes only when PAD lets it through AND the active checks confirm it)."""
    return {"active_alone": pe.rate(rows, lambda r: not r["active_pass"], attack=True),
            "pad_and_active": pe.rate(rows, lambda r: bool(r["pad_attack"]) or not r["active_pass"], attack=True)}


def acted_rates(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Genuine people acting the challenges: BPCER of the active checks alone and of production's decision (PAD
    + active: refused when PAD calls it an attack OR the active checks do not confirm it); RETRY for no face;
    per challenge kind, the steps judged and the steps missed (a missed step ends the session)."""
    per: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in rows:
        for name, seen in r.get("steps", []):
            per[name][0] += 1
            per[name][1] += 0 if seen else 1
    return {"active_alone": pe.rate(rows, lambda r: not r["active_pass"], attack=False),
            "pad_and_active": pe.rate(rows, lambda r: bool(r["pad_attack"]) or not r["active_pass"], attack=False),
            "retry_no_face": sum(1 for r in rows if r.get("reason") == "NO_FACE"),
            "reasons": dict(sorted(Counter(str(r["reason"]) for r in rows if r.get("reason")).items())),
            "steps": {k: {"judged": v[0], "missed": v[1]} for k, v in sorted(per.items())}}


def session_record(r: dict[str, Any]) -> dict[str, Any]:
    """One cached session (its verdict already at today's manifest, :func:`summarize`) -> what a rule on session
    scores needs, no frames or images: the half (even session numbers A, odd B, as :func:`statistic_check`), the
    fused PAD score (None: no face found), ``pad_pass``, and for the cued / acted rows the active checks' verdict
    and ``confirmed`` = production would confirm the session (PAD passes AND the active checks confirm); plain
    replays and genuine controls have no active checks (``active_pass`` / ``confirmed`` None)."""
    v = BY_NAME[r["variant"]]
    active = r.get("active_pass") if (v.cued or v.acted) else None
    pad_pass = not r["pad_attack"]
    return {"variant": r["variant"], "clip": r["clip"], "number": r["number"],
            "split": "A" if r["number"] % 2 == 0 else "B", "genuine": v.genuine,
            "session_score": r["session_score"], "pad_pass": pad_pass, "active_pass": active,
            "decision": r.get("decision"), "reason": r.get("reason"),
            "confirmed": None if active is None else bool(pad_pass and active)}


def summarize(cache_dir: Path) -> dict[str, Any]:
    """Every cached session of this version, per variant and clip (a later run with a larger --per-variant only
    adds sessions)."""
    spec = pad_spec()
    judge = PadModel(nets=(), threshold=spec.threshold)  # production's fusion and threshold, no nets needed
    rows: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    folder = cache_file(cache_dir, "x", "x", 0).parent
    for p in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        r = json.loads(p.read_text())
        if r["variant"] not in BY_NAME:
            continue
        # the verdict at TODAY's manifest (the per-frame scores do not depend on the threshold)
        s = judge.fuse(r["pad_scores"])
        r["session_score"] = None if math.isnan(s) else round(s, 5)
        r["pad_attack"] = judge.is_attack(s)
        rows[(r["variant"], r["clip"])].append(r)
    out: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine_info(),
        "threshold": spec.threshold.value, "fusion": spec.threshold.fusion, "fps": FPS, "seconds": SECONDS,
        "pad_frames_rule": "steps.pad_pick per steps.CHUNK_MS chunk (pad_eval.production_pad_scores)",
        "hq_camera": HQ_CAMERA, "scoring_key": f"{pe.scoring_key()}-{VERSION}-s{SEED}",
        "real": "the two clips ../shared/faces/video/talking_head_a.mp4 and blink_7_times_1080p.mp4",
        "synthetic": "the phone and its screen (attacks.PhoneScreen), the room, the hand tremor, the camera",
        "variants": {}}
    out["sessions"] = [session_record(r) for v in VARIANTS for c in pe.CLIPS
                       for r in sorted(rows[(v.name, c)], key=lambda r: r["number"])]
    out["statistic_check"] = statistic_check(rows)
    out["net_check"] = net_check(rows, spec.threshold.fusion)
    out["cue_auc_vs_genuine"] = cue_auc(rows)
    for v in VARIANTS:
        per_clip = {c: cell(rows[(v.name, c)], v.genuine) for c in pe.CLIPS if rows[(v.name, c)]}
        both = [r for c in pe.CLIPS for r in rows[(v.name, c)]]
        if not both:
            continue
        out["variants"][v.name] = {"what": v.what, "genuine": v.genuine, "camera": v.camera,
                                   "switches": dict(v.switches), "width": v.width,
                                   "both": cell(both, v.genuine), "clips": per_clip}
        if v.cued:
            out["variants"][v.name]["cued"] = cued_rates(both)
        if v.acted:
            out["variants"][v.name]["acted"] = acted_rates(both)
    return out


def _pct(c: dict[str, Any]) -> str:
    if not c["n"]:
        return "—"
    lo, hi = c["ci95"]
    return f"{c['errors']}/{c['n']} = {100 * c['rate']:.0f} % [{100 * lo:.0f}–{100 * hi:.0f}]"


def readme(res: dict[str, Any]) -> str:
    lines = [
        "## Screen replays unlike attacks.py's own (`benchmarks/replay_sweep.py`)",
        "",
        f"{res['date']}, {res['machine']['cpu']} ({res['machine']['nproc']} cores, shared, niced). PAD exactly as "
        f"production: {res['fps']:.0f} fps over {res['seconds']:.0f} s, {res['pad_frames_rule']}, session "
        f"{res['fusion']} against the manifest's {res['threshold']}. **Real**: {res['real']} (plain replays, "
        f"nothing acted). **Synthetic**: {res['synthetic']}. One artefact off at a time from attacks.py's default, "
        "all off (`clean`), and held close with the face in the page's oval. Sessions are paired across variants "
        "(same room, phone pose, clip start, camera per session number). Attack rows: PAD PASSES (APCER); "
        "genuine rows: PAD REFUSES (BPCER); 95 % Clopper–Pearson. `no face`: sessions with no face found "
        "(PAD has no score and refuses).",
        "",
        "| variant | camera | PAD passes (attacks) / refuses (genuine), both clips | talking_head_a | blink_7 | "
        "no face | session score p10 / median / p90 | face box width p10–p90 (HOG's boxes come in steps) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, v in res["variants"].items():
        b = v["both"]
        q = b["score_quantiles"] or {}
        clips = v["clips"]
        fw = b["face_width"] or {}
        lines.append(
            f"| {'**GENUINE** ' if v['genuine'] else ''}`{name}` | {v['camera']} | {_pct(b)} | "
            f"{_pct(clips['talking_head_a']) if 'talking_head_a' in clips else '—'} | "
            f"{_pct(clips['blink_7_times_1080p']) if 'blink_7_times_1080p' in clips else '—'} | {b['no_face']} | "
            f"{q.get('p10', float('nan')):.2f} / {q.get('median', float('nan')):.2f} / "
            f"{q.get('p90', float('nan')):.2f} | {fw.get('p10', float('nan')):.2f}–{fw.get('p90', float('nan')):.2f} |")
    cued = {k: v["cued"] for k, v in res["variants"].items() if "cued" in v}
    if cued:
        lines += ["", "Cued replays (the clip acts the drawn challenges as pad_eval's cued replays, paced as "
                  "production; production's active checks, `pad_eval.production_decision`), passes: " + "; ".join(
                      f"`{k}` PAD alone {_pct(res['variants'][k]['both'])}, active alone {_pct(c['active_alone'])}, "
                      f"**PAD + active {_pct(c['pad_and_active'])}**" for k, c in cued.items()) + "."]
    acted = {k: v["acted"] for k, v in res["variants"].items() if "acted" in v}
    if acted:
        lines += ["", "Genuine people acting the drawn challenges (paced as production, production's active checks "
                  "and PAD), REFUSED: " + "; ".join(
                      f"`{k}` PAD alone {_pct(res['variants'][k]['both'])}, active alone {_pct(a['active_alone'])} "
                      f"(no-face retries {a['retry_no_face']}), **PAD + active {_pct(a['pad_and_active'])}**; "
                      "steps missed / judged: " + ", ".join(f"{n} {s['missed']}/{s['judged']}"
                                                           for n, s in a["steps"].items())
                      for k, a in acted.items()) + "."]
    lines += ["", "What each variant is: " + "; ".join(f"`{k}`: {v['what']}" for k, v in res["variants"].items())
              + "."]
    sc = res.get("statistic_check", {})
    if sc:
        lines += ["", f"**Another session statistic?** ({sc['how']}). Half-B rates, PAD passes (attacks) / refuses "
                  "(genuine):", "", "| fusion | threshold (half A) | " + " | ".join(
                      f"`{k}`" for k in res["variants"]) + " |", "|---|---|" + "---|" * len(res["variants"])]
        for fusion in ("mean", "median", "p25"):
            if fusion in sc:
                hb = sc[fusion]["half_b"]
                lines.append(f"| {fusion} | {sc[fusion]['threshold_half_a']:.3f} | " + " | ".join(
                    f"{hb[k]['errors']}/{hb[k]['n']}" if k in hb else "—" for k in res["variants"]) + " |")
    nc = res.get("net_check", {})
    if any(h in nc for h in NET_FUSIONS):
        cols = sorted({k for h in NET_FUSIONS if h in nc for k in nc[h]["half_b"]})
        lines += ["", f"**Do the two nets differ?** ({nc['how']}). Half-B rates, PAD passes (attacks) / refuses "
                  "(genuine):", "", "| nets fused per frame | threshold (half A) | " + " | ".join(
                      f"`{k}`" for k in cols) + " | median session score (" + ", ".join(
                      f"`{k}`" for k in nc["median_session_score"]) + ") |", "|---|---|" + "---|" * (len(cols) + 1)]
        for how in NET_FUSIONS:
            if how in nc:
                hb = nc[how]["half_b"]
                lines.append(f"| {how} | {nc[how]['threshold_half_a']:.3f} | " + " | ".join(
                    _pct(hb[k]) if k in hb else "—" for k in cols) + " | " + ", ".join(
                    f"{m[how]:.2f}" for m in nc["median_session_score"].values()) + " |")
    ca = res.get("cue_auc_vs_genuine", {})
    if ca:
        lines += ["", "**spoof_cues against the genuine controls** (AUC, P(replay value > genuine value); 0.5 = no "
                  "separation): " + "; ".join(f"`{k}` " + ", ".join(f"{c} {a if a is not None else '—'}"
                                                                  for c, a in v.items()) for k, v in ca.items()) + "."]
    lines += ["", res.get("reading", "")]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faces", type=Path, default=ROOT.parent / "shared" / "faces")
    ap.add_argument("--models", type=Path, default=None, help="folder with the minifasnet files")
    ap.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "lifecert-pad-eval",
                    help="pad_eval's cache (its clip index is reused); sessions go to a folder of their own in it")
    ap.add_argument("--per-variant", type=int, default=30, help="sessions per variant per clip")
    ap.add_argument("--variants", default=",".join(v.name for v in VARIANTS))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--budget-min", type=float, default=35.0, help="stop submitting new sessions after this")
    ap.add_argument("--summarize-only", action="store_true")
    ap.add_argument("--no-readme", action="store_true")
    ap.add_argument("--out", type=Path, default=RESULTS / "replay_sweep.json",
                    help="results JSON (tables and per-session records); a run of a few variants writes elsewhere "
                         "(with --no-readme) so that the full sweep's file stays")
    a = ap.parse_args(argv)
    models = a.models or a.faces.parent / "models" / "minifasnet"
    names = [n for n in a.variants.split(",") if n]
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        ap.error(f"unknown variants {unknown}")
    for name in pe.CLIPS:  # pad_eval's clip index, landmarks and turn tables (pad_eval.Worker needs them)
        if not (a.cache_dir / f"index-{name}-{pe.CLIP_MAX_H}.pkl").is_file():
            ap.error(f"{a.cache_dir} lacks pad_eval's clip index: run benchmarks/pad_eval.py once with this cache")
    if not a.summarize_only:
        todo = [j for j in plan(a.per_variant, names) if not cache_file(a.cache_dir, *j).is_file()]
        cache_file(a.cache_dir, "x", "x", 0).parent.mkdir(parents=True, exist_ok=True)
        deadline = time.time() + 60 * a.budget_min
        print(f"{len(todo)} sessions to score", flush=True)
        # spawn, not fork: dlib / onnxruntime threads (as pad_eval)
        with cf.ProcessPoolExecutor(a.workers, mp_context=mp.get_context("spawn"), initializer=_init,
                                    initargs=(a.faces, models, a.cache_dir)) as ex:
            it = iter(todo)
            running: dict[cf.Future[dict[str, Any]], tuple[str, str, int]] = {}
            done = 0
            while True:
                while len(running) < 2 * a.workers and time.time() < deadline:
                    job = next(it, None)
                    if job is None:
                        break
                    running[ex.submit(_run, job)] = job
                if not running:
                    break
                fin, _ = cf.wait(running, timeout=60, return_when=cf.FIRST_COMPLETED)
                for fu in fin:
                    job = running.pop(fu)
                    r = fu.result()
                    p = cache_file(a.cache_dir, *job)
                    tmp = p.with_suffix(".tmp")
                    tmp.write_text(json.dumps(r))
                    tmp.replace(p)  # whole files only: a killed run leaves no half session
                    done += 1
                    print(f"{done:4d}/{len(todo)} {'/'.join(map(str, job)):40s} cpu={r['cpu_s']}s "
                          f"score={r['session_score']} face={r['face_width_median']}", flush=True)
        if time.time() >= deadline:
            print(f"time box of {a.budget_min} min reached; rerun to continue (cached)", flush=True)
    res = summarize(a.cache_dir)
    prev = a.out
    if prev.is_file():  # the reading is written by hand after a run; keep it
        res["reading"] = json.loads(prev.read_text()).get("reading", "")
    prev.parent.mkdir(parents=True, exist_ok=True)
    prev.write_text(json.dumps(res, indent=1) + "\n")
    if not a.no_readme:
        update_readme("replay_sweep", readme(res))
    for name, v in res["variants"].items():
        print(f"{name:18s} {_pct(v['both']):28s} median={(v['both']['score_quantiles'] or {}).get('median')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
