"""Presentation-attack detection (PAD) evaluation: active checks alone, MiniFASNet PAD alone, both.

    nice -n 10 python benchmarks/pad_eval.py --per-type 200 --workers 2 --budget-min 60
    python benchmarks/pad_eval.py --summarize-only          # tables from the cache, no scoring
    nice -n 10 python benchmarks/pad_eval.py --per-type 100 --genuine-per-variant 34 \
        --kinds video_acted,slow,late,crops                 # only the genuine BPCER set (see --kinds)

Every session is a list of FULL camera frames (480x640 portrait unless the source says
otherwise) with timestamps. Frames go through the production path: dlib detect + 68
landmarks per frame → PRODUCTION's decision recomputed on the cached landmarks
(:func:`production_decision`: services/verification/steps.py settle / judge_challenge /
passive_liveness and rules.decide, as paced.py runs them) and lifecert.engine.pad (MiniFASNet on the full frame
with the detector's box, fused per session). How the attack and genuine frames were made is
in benchmarks/attacks.py (synthetic: screen, paper, head-turn warps) — read it before quoting
a number.

Session types (``kind``; attacks first). Every synthetic session is DISTINCT: its own seed
draws the source (photo / clip start), the phone or paper (size, tilt, curl, glare, sub-pixel
pitch, bezel grey, tremor), the room (background), the camera (defocus, noise, JPEG quality,
exposure: attacks.Camera.random), the challenges and the reaction delay.

* ``print`` — synthetic hand-held print of a photo (one per session, drawn without repeats
  from a pool of LFW people (one photo each), photos/ and the NUAA real subjects), on curled
  paper with white margins, tilted back and forth (attacks.PaperPrint); paper cannot act.
* ``print_nuaa`` — REAL prints: every NUAA attack_print session (printed photos held to a
  camera), each crop made into a full frame by stretching its own border (attacks.place_crop).
* ``replay`` — a genuine clip (video/) playing on a phone screen, NOT cued (attacks.PhoneScreen).
* ``replay_apfol`` — REAL screen replays: apfol attack_replay crops (chunks) in full frames.
* ``still`` — one photo (same pool as print) on a phone screen, held (tremor only).
* ``cued_replay`` — the clip ACTS the drawn challenges (blink/mouth cued from the clip's own
  frames; turns by attacks.turn_head_3d since c4), on a phone screen, cued by hand
  (reaction 0.8–1.5 s).
* ``bona_fide`` — genuine: the two clips acting the challenges straight to the camera (turns: attacks.turn_head_3d)
  (``video_acted``: reaction 0.6–1.2 s; ``slow``: 1.8–2.8 s; ``late``: the face enters 1.5–3 s
  late), each framed as the capture page asks (GENUINE_FACE_FRAC: the face box 50–70 % of the frame
  width; talking_head_a's own 512x512 frame is tighter, so it is shrunk and the surroundings it lacks
  are its own border stretched and blurred, attacks.extend_frame) and shifted; NUAA / apfol real crops in
  full frames (``crops``: PAD and passive checks only, their subjects were asked nothing); the
  96x128 clip (``tiny``: reported, not in the floor).

Protocol (policy of issue 12: one of turn_left / turn_right and one of blink / open_mouth, random
order; nods are not drawn because the synthetic nod warp is not a fair genuine nod). Production draws
open_mouth in EVERY set since session 11 (lifecert.domain.challenges.draw); the main table's sessions
draw the older policy (caches g6/c6). ``--draw s11`` (a restricted run: ``--kinds video_acted,slow,late,
cued_replay[,cued_edited]``) reruns the acted sessions with the new one (:func:`draw_challenges` ``mouth_always``,
caches g7/c7; same keys, halves and other draws) and writes results/pad_s11.json and the README section
``pad_s11`` (:func:`s11_summary`: the main run's 2-fold thresholds and the shipped one, not recalibrated). There
a genuine person whose clip never opens its mouth (blink_7_times_1080p) opens it by the SYNTHETIC
attacks.open_mouth (benchmarks/mouth_synth.py checks it); the cued-replay attacker's found footage does not,
except in ``--edited`` sessions (cued_edited/...: the attacker edits the same opening into his clip).
replay_sweep's cued / acted rows draw the new one too. Acted sessions
(genuine and cued replays, g3/c3) are captured as production paces them (:func:`pace`): frames at
steps.capture_fps(None) until the settle step is seen (judged per CHUNK_MS chunk), the first prompt
PROMPT_DELAY_MS later; each step captured at steps.capture_fps(challenge) and judged per chunk by
:func:`production_decision`; the next prompt comes PROMPT_DELAY_MS after the chunk in which the step
was seen; a step not seen keeps being captured until CHALLENGE_WINDOW_MS after its prompt (plus
steps.HINT_EXTRA_WINDOW_MS once production's first action hint for it came, g5/c5: :func:`first_action_hint`),
which ends the session; the capture stops once the last step was seen. The synthetic user (attacks.Actor) acts
each prompt once and, since g6/c6, once more after hearing production's first action hint for the step
(attacks.Actor.hint: heard once the chunk answer that carried it has been spoken, attacks.hint_heard_ms, then the
person's own reaction delay; TURN_MORE: the turn again, farther; DO_ACTION: the turn again; BLINK_FIRMLY /
OPEN_WIDER: another of the clip's blink / mouth frames; LOOK_BACK: nothing new); the cued-replay attacker hears
the same hint and re-cues likewise (g5/c5: the footage never reacted to a hint). Otherwise, during a long window
its real clip keeps playing as filmed (its own later blinks, talking, head motion count as they would for a real
person). Before
g3/c3 the frames stopped 1 s after the last action and prompts were 6 s apart, so a step whose
action was not seen was cut short of production's window (e.g. the shallow blinker's cued blink as
the last step, 22-37 frames). Turns: a drawn REAL turn of 20-40 degrees made
by a warp calibrated on each clip (attacks.turn_warp_for; v3). Since g4 the GENUINE sessions' turns are made
by attacks.turn_head_3d (an anthropometric head ellipsoid with the nose standing out of it, so the turn has
the nose-against-outline parallax of a real head; validated against real measurements by
benchmarks/turn_synth.py, README ``turn_synth``) with its own turn tables (turns3d-*.json, the same
calibration rule); before g4 they were the cylinder warp of attacks.turn_head, a smooth 1-D remap with no
nose standing out, which the flat test (planarity.nose_parallax) called flat on 3 blink_7 sessions. The cued
replays act with the same turn_head_3d turns since c4 (the same acting as the genuine sessions, shown on the
phone screen; c3 used the cylinder warp, on which the flat test fired on none of them, flat_cache 0/100).
Prints, stills and plain replays:
2.5 fps over 7 s (they cannot act; the second challenge is never reached). *active* =
production's decision without PAD (:func:`production_decision`: settle baseline, each challenge
by steps.judge_challenge from its prompt over CHALLENGE_WINDOW_MS (cut at the next prompt), the first miss ends the
session, still / flat (residual OR nose parallax) / track breaks / too few usable frames). *pad* rejects when
the fused session P(real) is below the threshold. *both* rejects when either does.

Split and statistics: sessions are split into halves A (even session numbers; NUAA subjects
0001-0004; the first half of apfol) and B (the rest). The PAD threshold is chosen on one half
(the threshold with calibration BPCER ≤ 2 % that minimises the worst APCER over the
full-frame attack types) and applied to the other, both ways (2-fold): every session is
judged by a threshold not chosen on it, so the pooled rates use every session. The threshold
written to the manifest is half A's; its half-B rates are reported too. Each rate carries its
exact 95 % Clopper–Pearson interval. Sessions of one kind share two source clips (genuine,
replays) or a photo pool, so they are not independent people: the intervals are those of the
presentations, not of a population.

Cost: each session's frames are synthesised and scored ONCE; the per-frame results (68
landmarks, box, face count, P(real)) and the session's cue values are cached per session key
(kind/source/number + seed + CACHE_VERSION + a digest of the PAD pack's scoring settings,
:func:`scoring_key`) in ``--cache-dir``; the summary (active decision, fusion, thresholds,
flat-photo statistics) is recomputed from the cache. Sessions are scored in
a process pool (``--workers``, each process niced and single-threaded) in an interleaved order
so that a run stopped by ``--budget-min`` has balanced counts; the summary is rewritten every
``--summary-every`` sessions, so a partial run leaves usable tables.

Also measured: PAD on the raw TIGHT crops (the NUAA/apfol files as they are, no context)
to show what collapsing the context crop does.

Per-session results (``--sessions-out``, default benchmarks/results/pad_sessions.json; no images): every
scored session's key, kind, source, half, fused PAD score at the manifest's fusion (and the other fusions),
PAD's verdict at the manifest's threshold, the active decision and whether production would CONFIRM it (active
checks confirm AND PAD passes), so that a rule on the session scores (benchmarks/audit_band.py) is evaluated
without rescoring. ``--kinds`` restricts the plan to sessions whose kind or source is listed (e.g.
``video_acted,slow,late,crops``: the genuine BPCER set; ``cued_replay``); the sessions keep their keys, draws
and halves (the plan is the same, filtered). A restricted run writes only the per-session file: pad.json, the
README table and the manifest are the full run's.

Writes benchmarks/results/pad.json and the pad section of benchmarks/README.md; with
``--write-manifest half-a`` (half A's threshold) or ``shipped`` (the shipped value, this run's rates at it) the
``[packs.minifasnet.threshold]`` table of models/manifest.toml.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import dataclasses
import datetime as dt
import functools
import hashlib
import json
import math
import multiprocessing as mp
import os
import pickle
import re
import sys
import tempfile
import time
import traceback
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import attacks as atk  # noqa: E402
from benchmarks.accuracy import update_readme  # noqa: E402
from lifecert.config import QualitySettings, Settings  # noqa: E402
from lifecert.domain.errors import ErrorCode  # noqa: E402
from lifecert.engine import geometry, spoof_cues  # noqa: E402
from lifecert.engine.base import FaceEngine, count_significant  # noqa: E402
from lifecert.engine.eyes import encode as encode_eyes  # noqa: E402
from lifecert.engine.eyes import eye_patches  # noqa: E402
from lifecert.engine.image import read_image_file  # noqa: E402
from lifecert.engine.liveness import Baseline, FrameObs, LivenessParams, analyze_liveness  # noqa: E402
from lifecert.engine.loader import load_engine  # noqa: E402
from lifecert.engine.manifest import REPO_MANIFEST, load_manifest, manifest_sha256  # noqa: E402
from lifecert.engine.pad import fuse_session, load_pad_from, pad_spec  # noqa: E402
from lifecert.services.evaluation import machine_info  # noqa: E402
from lifecert.services.verification import rules, steps  # noqa: E402
from lifecert.services.verification.frames import face_region_stats  # noqa: E402
from lifecert.services.verification.paced import open_mouth_jaw  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
CACHE_VERSION = "v4"  # bump when the synthesis or the per-frame scoring changes (v3: calibrated turns, prompts;
# v4: acted sessions at production's 8 fps)
# Sessions of these kinds are cached under their own version too (a synthesis change for one kind re-scores
# only that kind): g2 = genuine users framed as the page asks (GENUINE_FACE_FRAC) instead of a random zoom.
# g3/c3: paced as production paces them (pace(): prompt after the previous step was seen, a missed step's
# footage plays on to its window end, per-step steps.capture_fps)
# g4: genuine head turns by the depth-aware attacks.turn_head_3d (an anthropometric head + nose: real 3D
# parallax) instead of the cylinder warp, calibrated by their own turn tables (turns3d-*.json)
# c4: the cued replays' turns too (c3: cylinder; their turns are shown on a flat screen, the flat test never fired)
# g5/c5: a challenge step's window grows by steps.HINT_EXTRA_WINDOW_MS at its first action hint, as paced.py does
# (production_decision / first_action_hint); the footage never reacts to the hint (the clip plays on). Only a
# session whose step missed its 8 s window after a hint is filmed differently: every other g4/c4 session is the
# same capture and is reused as it is (reuse_unchanged).
# g6/c6: the person (and the cued-replay attacker) hears production's first action hint of a step and acts again
# (attacks.Actor.hint, called by pace()). Only a session in which some step got a hint that makes the person act
# again, early enough to show in its frames, is filmed differently: the others are reused from g5/c5.
KIND_VERSION = {"bona_fide": "g6", "cued_replay": "c6"}  # c2: turns from the framed turn tables
# g7/c7 (session 11, ``--draw s11``): production's draw (open_mouth in every set); a genuine person whose footage
# never opens its mouth (blink_7_times_1080p) opens it by the SYNTHETIC attacks.open_mouth (attacks.MouthAct,
# drawn from a generator of its own: the session's other draws stay those of its g6 session); the cued-replay
# attacker does not (found footage), except in the "edited" row (cued_edited/...: the same warp in his clip).
KIND_VERSION_S11 = {"bona_fide": "g7", "cued_replay": "c7"}
PREVIOUS_VERSION = {"g6": "g5", "c6": "c5"}
# Genuine framing: the face box's share of the frame width. The capture page's oval is 0.70 of the width,
# the MOVE_BACK hint comes above steps.TOO_CLOSE_FRACTION (0.72) and the settle step waits for it
# (steps.SETTLE_FRAMING_WAIT_MS): a user who follows the page holds the phone where the face is 0.50-0.70.
GENUINE_FACE_FRAC = (0.50, 0.70)
TABLE_FACE_FRAC = sum(GENUINE_FACE_FRAC) / 2  # the framing the turn tables are measured at
LEAD_IN_MS = 1000
WINDOW_MS = 6000
FPS = 8.0  # the tiny clip's sampling; acted sessions use steps.capture_fps per step (g3/c3; v4 was 8 fps for all)
FPS_PASSIVE = 2.5  # prints, stills, plain replays: they cannot act; fewer frames on a shared machine
# Nods are not drawn: the cylinder warp of attacks.turn_head moved pitch_ratio by only +0.02 to +0.09
# at 36 degrees depending on the clip (threshold 0.05), so a synthetic nod is not a fair genuine nod.
HEAD = ("turn_left", "turn_right")
NON_RIGID = ("blink", "open_mouth")
CLIPS = ("talking_head_a", "blink_7_times_1080p")
CLIP_MAX_H = 640  # clips are kept at most this high (the camera frame is 640 high; nothing is lost)
ATTACKS = ("print", "print_nuaa", "replay", "replay_apfol", "still", "cued_replay")
SYNTH_KINDS = ("video_acted", "slow", "late", "cued_replay", "replay", "print", "still")
KIND_ID = {k: i for i, k in enumerate(SYNTH_KINDS)}
FLOOR = {"print": 0.01, "print_nuaa": 0.01, "still": 0.01, "replay": 0.05, "replay_apfol": 0.05,
         "cued_replay": 0.05}
BPCER_FLOOR = 0.03
FLOOR_MIN_N = 100  # a floor counts as met only with the point estimate under it on at least this many sessions
CAL_BPCER = 0.02
GEN_SOURCES = ("video_acted", "slow", "late", "crops", "tiny")


# -- statistics ------------------------------------------------------------------------------------------


def _binom_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p), summed in log space (n up to thousands)."""
    if k < 0:
        return 0.0
    if k >= n or p <= 0.0:
        return 1.0
    if p >= 1.0:
        return 0.0
    lp, lq = math.log(p), math.log1p(-p)
    lg = math.lgamma(n + 1)
    return min(1.0, sum(math.exp(lg - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * lp + (n - i) * lq)
                        for i in range(k + 1)))


def clopper_pearson(k: int, n: int, conf: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper–Pearson) two-sided confidence interval of a binomial rate k/n.

    Lower bound: the p with P(X >= k) = (1-conf)/2 (0 when k = 0); upper: the p with
    P(X <= k) = (1-conf)/2 (1 when k = n). Found by bisection on the binomial CDF."""
    if n <= 0 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n and n > 0, got k={k} n={n}")
    a = (1.0 - conf) / 2.0

    def solve(f: Callable[[float], float]) -> float:  # f increasing in p, root in [0, 1]
        lo, hi = 0.0, 1.0
        for _ in range(60):
            mid = (lo + hi) / 2
            if f(mid) < 0:
                lo = mid
            else:
                hi = mid
        return (lo + hi) / 2

    lower = 0.0 if k == 0 else solve(lambda p: (1.0 - _binom_cdf(k - 1, n, p)) - a)
    upper = 1.0 if k == n else solve(lambda p: a - _binom_cdf(k, n, p))
    return lower, upper


def floor_mark(r: float, n: int, floor: float) -> str:
    """✓ the rate is under the floor on at least FLOOR_MIN_N sessions; ~ under it on fewer (not
    demonstrated); ✗ over it."""
    if r > floor:
        return "✗"
    return "✓" if n >= FLOOR_MIN_N else "~"


def cell(x: dict[str, Any], floor: float | None = None) -> str:
    """A rate for the README: percent (errors/n) [95 % interval], with the floor's mark when ``floor`` is given."""
    if x["rate"] is None:
        return "—"
    lo, hi = x["ci95"]
    mark = "" if floor is None else " " + floor_mark(x["rate"], x["n"], floor)
    return f"{100 * x['rate']:.1f}% ({x['errors']}/{x['n']}) [{100 * lo:.1f}–{100 * hi:.1f}]{mark}"


def rate(rows: Sequence[dict[str, Any]], rejected: Callable[[dict[str, Any]], bool], attack: bool) -> dict[str, Any]:
    """APCER (attack=True: share NOT rejected) or BPCER (attack=False: share rejected), with the
    95 % Clopper–Pearson interval."""
    n = len(rows)
    k = sum(1 for r in rows if rejected(r) != attack)
    if not n:
        return {"n": 0, "errors": 0, "rate": None, "ci95": None}
    lo, hi = clopper_pearson(k, n)
    return {"n": n, "errors": k, "rate": k / n, "ci95": [round(lo, 4), round(hi, 4)]}


# -- sessions: plan (cheap specs), synthesis (in the worker), scoring ------------------------------------


@dataclass(frozen=True)
class Spec:
    """What to synthesise; small, so it crosses the process boundary instead of the frames."""

    key: str  # unique: kind/source/number (the cache file name)
    kind: str  # an attack type or "bona_fide"
    source: str  # video_acted, slow, late, crops, tiny, nuaa, apfol, a clip name, a photo path
    split: str  # "A" | "B"
    number: int = 0
    clip: str = ""
    files: tuple[str, ...] = ()  # crops (NUAA / apfol sessions) or the photo of a print / still
    # the challenge draw of acted sessions: "s10" (blink or open_mouth, the g6/c6 caches) or "s11" (production's
    # since session 11: open_mouth in every set, :func:`draw_challenges` ``mouth_always``; g7/c7 caches)
    draw: str = "s10"
    edited: bool = False  # a cued replay whose attacker edits a mouth opening into footage that has none (s11)


@dataclass
class Seq:
    name: str
    kind: str
    source: str
    split: str
    frames: list[np.ndarray]
    t_ms: list[int]
    challenges: list[str] = field(default_factory=list)
    prompts_ms: list[int] = field(default_factory=list)  # when each challenge's prompt appeared (the actor's cue)
    synth: dict[str, Any] = field(default_factory=dict)  # how the turns were made (warp vs the real turn drawn)
    per: list[dict[str, Any]] | None = None  # per-frame engine results already taken (paced sessions)


def _num(p: Path) -> int:
    m = re.findall(r"\d+", p.stem)
    return int(m[-1]) if m else 0


def draw_challenges(rng: np.random.Generator, clip_can_mouth: bool, mouth_always: bool = False) -> list[str]:
    """A head turn and a non-rigid challenge in random order. Default: the policy before session 11 (blink or
    open_mouth; blink alone for a clip with no mouth frames), which this script's cached sessions (g6/c6) were
    made with. ``mouth_always``: production's draw since session 11 (lifecert.domain.challenges.draw: open_mouth
    in every set; its optional third challenge is not modelled), whatever the clip can act — a clip with no
    open mouth then has nothing to cue for it. The generator is consumed the same way either way, so a session
    number keeps its other draws (head, order, delays, camera) and only the non-rigid challenge changes."""
    head = str(rng.choice(HEAD))
    nr = str(rng.choice(NON_RIGID if clip_can_mouth else ("blink",)))
    if mouth_always:
        nr = "open_mouth"
    return [head, nr] if rng.random() < 0.5 else [nr, head]


def read_clip(path: Path, max_h: int = 0) -> tuple[list[np.ndarray], float]:
    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    frames = []
    while True:
        ok, fr = cap.read()
        if not ok:
            break
        if max_h and fr.shape[0] > max_h:
            s = max_h / fr.shape[0]
            fr = cv2.resize(fr, (round(fr.shape[1] * s), max_h), interpolation=cv2.INTER_AREA)
        frames.append(fr)
    cap.release()
    return frames, float(fps)


def index_clip(engine: FaceEngine, frames: list[np.ndarray], fps: float) -> atk.FootageIndex:
    boxes: list[Any] = []
    ear, mar = [], []
    for f in frames:
        faces = engine.detect(f)
        if not faces or faces[0].landmarks68 is None:
            boxes.append(None)
            ear.append(np.nan)
            mar.append(np.nan)
            continue
        boxes.append(faces[0].box)
        ear.append(geometry.eye_aspect_ratio(faces[0].landmarks68))
        mar.append(geometry.mouth_aspect_ratio(faces[0].landmarks68))
    return atk.FootageIndex(boxes, np.array(ear), np.array(mar), fps)


TURN_WARP_DEG = (15, 25, 35, 45, 55, 65, 75)  # warp angles measured per clip (attacks.turn_head)
TURN_TABLE_FRAMES = 8


def turns_file(cache_dir: Path, name: str, depth: bool = False) -> Path:
    """Where a clip's turn table is cached (f60: measured at the genuine framing, see turn_table; turns3d: of
    attacks.turn_head_3d, the genuine sessions' turns since g4)."""
    return cache_dir / f"turns{'3d' if depth else ''}-{name}-{CLIP_MAX_H}-f{round(100 * TABLE_FACE_FRAC)}.json"


def landmarks_file(cache_dir: Path, name: str) -> Path:
    """The clip's per-frame 68 landmarks ((n, 68, 2) float64, NaN without a face): attacks.turn_head_3d's input."""
    return cache_dir / f"lm68-{name}-{CLIP_MAX_H}.npy"


def clip_landmarks(engine: FaceEngine, frames: list[np.ndarray]) -> np.ndarray:
    out = np.full((len(frames), 68, 2), np.nan)
    for i, f in enumerate(frames):
        faces = engine.detect(f)
        if faces and faces[0].landmarks68 is not None:
            out[i] = np.asarray(faces[0].landmarks68, np.float64)
    return out


def turn_table(engine: FaceEngine, frames: list[np.ndarray], index: atk.FootageIndex,
               depth: bool = False) -> dict[str, list[list[float]]]:
    """What the cylinder warp (``depth``: attacks.turn_head_3d) gives on THIS clip, as the detector reads it:
    per direction, [warp degrees,
    median change of geometry.yaw_ratio] over TURN_TABLE_FRAMES frames spread over the clip, each made a
    camera frame as the genuine sessions are, with the face at TABLE_FACE_FRAC of the frame width. (At
    zoom 1 talking_head_a's face fills 0.80 of the width and a turned face leaves the frame; the landmarks
    of a cut face read 0.69-0.76 for a warp that reads 0.09-0.23 with the whole face in view, so a table
    measured there under-warped every genuine and cued turn.)"""
    zoom = TABLE_FACE_FRAC / clip_face_fraction(index, frames[0].shape[:2])
    with_box = [i for i, b in enumerate(index.boxes) if b is not None]
    picks = [with_box[int(k)] for k in np.linspace(0, len(with_box) - 1, TURN_TABLE_FRAMES).round()]

    def yaw(img: np.ndarray) -> float:
        faces = engine.detect(img)
        return float("nan") if not faces or faces[0].landmarks68 is None else geometry.yaw_ratio(faces[0].landmarks68)

    out: dict[str, list[list[float]]] = {"turn_left": [], "turn_right": []}
    base = {i: yaw(atk.genuine_frame(frames[i], zoom=zoom)) for i in picks}
    for name, sign in (("turn_left", 1.0), ("turn_right", -1.0)):
        for deg in TURN_WARP_DEG:
            d = [sign * (yaw(atk.genuine_frame(atk.render_shot(frames, index, atk.Shot(i, sign * deg), depth),
                                               zoom=zoom))
                      - base[i]) for i in picks]
            out[name].append([float(deg), round(float(np.nanmedian(d)), 4) if not np.all(np.isnan(d)) else 0.0])
    return out


def clip_face_fraction(index: atk.FootageIndex, clip_hw: tuple[int, int], size: tuple[int, int] = atk.CAMERA) -> float:
    """The clip's median face-box width as a share of the camera frame's width once the clip frame is
    made a camera frame at zoom 1 (attacks.genuine_frame: scaled to cover ``size``, centre-cropped)."""
    widths = [float(b[2] - b[0]) for b in index.boxes if b is not None]
    if not widths:
        raise ValueError("the clip has no face")
    h, w = clip_hw
    cover = max(size[0] / w, size[1] / h)
    return float(np.median(widths)) * cover / size[0]


def nuaa_sessions(root: Path, kind_dir: str, max_len: int) -> list[tuple[str, int, list[Path]]]:
    out = []
    for subj in sorted((root / kind_dir).iterdir()):
        groups: dict[str, list[Path]] = defaultdict(list)
        for f in subj.glob("*.jpg"):
            groups[f.stem.rsplit("_", 1)[0]].append(f)
        for g, files in sorted(groups.items()):
            files = sorted(files, key=_num)[:max_len]
            if len(files) >= 5:
                out.append((g, int(subj.name), files))
    return out


def photo_pool(faces: Path) -> list[str]:
    """Photos an attacker could print or show: one per LFW person, photos/, the NUAA real subjects."""
    pool = [str(next(iter(sorted(d.glob("*.jpg"))))) for d in sorted((faces / "lfw" / "images").iterdir())
            if d.is_dir() and any(d.glob("*.jpg"))] if (faces / "lfw" / "images").is_dir() else []
    pool += [str(p) for p in sorted((faces / "photos").glob("*/*.jpg"))]
    pool += [str(next(iter(sorted(s.glob("*.jpg"))))) for s in sorted((faces / "spoof" / "nuaa" / "real").iterdir())]
    return pool


def plan(faces: Path, per_type: int, genuine_per_variant: int, seed: int, seq_len: int,
         max_len: int = 8, replay_share: float = 1.0, draw: str = "s10", edited: int = 0) -> list[Spec]:
    """Every session of the run, interleaved (one of each synthetic kind in turn, real captures spread
    through) so that a run stopped early has balanced counts. ``draw``: the acted sessions' challenge draw
    (Spec.draw); ``edited``: that many cued replays of the clip without mouth frames (blink_7_times_1080p) whose
    attacker edits a mouth opening into it (key cued_edited/..., paired with cued_replay's session of the same
    number: the same draws)."""
    pool = photo_pool(faces)
    perm = np.random.default_rng([seed, 4242]).permutation(len(pool))
    synth: list[Spec] = []
    for n in range(max(per_type, genuine_per_variant)):
        split = "A" if n % 2 == 0 else "B"
        clip = CLIPS[(n // 2) % len(CLIPS)]  # both halves see both clips
        if n < genuine_per_variant:
            synth += [Spec(f"{v}/{clip}/{n}", "bona_fide", v, split, n, clip, draw=draw)
                      for v in ("video_acted", "slow", "late")]
        if n < per_type:
            synth.append(Spec(f"cued_replay/{clip}/{n}", "cued_replay", clip, split, n, clip, draw=draw))
            if n < 2 * edited and clip == CLIPS[1]:
                synth.append(Spec(f"cued_edited/{clip}/{n}", "cued_replay", clip, split, n, clip, draw=draw,
                                  edited=True))
            if n < per_type * replay_share:  # an attack type of issue 12's table: as many (2.5 fps, cheap)
                synth.append(Spec(f"replay/{clip}/{n}", "replay", clip, split, n, clip))
            for j, kind in enumerate(("print", "still")):
                ph = pool[int(perm[(2 * n + j) % len(pool)])]
                synth.append(Spec(f"{kind}/{n}", kind, "synthetic", split, n, files=(ph,)))
    real: list[Spec] = []
    spoof = faces / "spoof"
    for kind_dir, kind in (("real", "bona_fide"), ("attack_print", "print_nuaa")):
        for g, subj, files in nuaa_sessions(spoof / "nuaa", kind_dir, max_len):
            real.append(Spec(f"nuaa/{kind_dir}/{g}", kind, "crops" if kind == "bona_fide" else "nuaa",
                             "A" if subj <= 4 else "B", files=tuple(str(f) for f in files)))
    for kind_dir, kind in (("real", "bona_fide"), ("attack_replay", "replay_apfol")):
        files_ = sorted((spoof / "apfol" / kind_dir).glob("*.png"), key=_num)
        chunks = [files_[i : i + seq_len] for i in range(0, len(files_) - seq_len + 1, seq_len)]
        for ci, chunk in enumerate(chunks):
            real.append(Spec(f"apfol/{kind_dir}/{ci}", kind, "crops" if kind == "bona_fide" else "apfol",
                             "A" if ci < len(chunks) / 2 else "B", ci, files=tuple(str(f) for f in chunk)))
    real.append(Spec("tiny/blink_2_times_tiny", "bona_fide", "tiny", "B"))
    # spread the real captures evenly through the synthetic ones
    out: list[Spec] = []
    step = max(1, len(synth) // max(1, len(real)))
    ri = 0
    for i, s in enumerate(synth):
        out.append(s)
        if i % step == step - 1 and ri < len(real):
            out.append(real[ri])
            ri += 1
    return out + real[ri:]


class Worker:
    """Per-process state: the engine, PAD, the clips (JPEG in memory) and their landmark index."""

    def __init__(self, faces: Path, models: Path, cache_dir: Path, seed: int) -> None:
        cv2.setNumThreads(1)
        self.faces, self.seed = faces, seed
        self.engine = load_engine(Settings(), name="dlib")
        self.pad = load_pad_from(models, pad_spec(), threads=1)
        self.clips: dict[str, tuple[list[np.ndarray], atk.FootageIndex]] = {}
        self.turn_tables: dict[str, dict[str, list[list[float]]]] = {}
        self.turn_tables_3d: dict[str, dict[str, list[list[float]]]] = {}
        self.face_frac: dict[str, float] = {}
        for name in CLIPS:
            frames, _ = read_clip(faces / "video" / f"{name}.mp4", CLIP_MAX_H)
            jpgs = [cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, 95])[1] for f in frames]
            index = pickle.loads((cache_dir / f"index-{name}-{CLIP_MAX_H}.pkl").read_bytes())
            index = dataclasses.replace(index, landmarks=np.load(landmarks_file(cache_dir, name)))
            self.clips[name] = (jpgs, index)
            self.face_frac[name] = clip_face_fraction(index, frames[0].shape[:2])
            self.turn_tables[name] = json.loads(turns_file(cache_dir, name).read_text())
            self.turn_tables_3d[name] = json.loads(turns_file(cache_dir, name, True).read_text())

    def _frames(self, clip: str) -> tuple[list[np.ndarray], atk.FootageIndex]:
        jpgs, index = self.clips[clip]
        return [np.asarray(cv2.imdecode(j, cv2.IMREAD_COLOR), np.uint8) for j in jpgs], index

    def acting(self, rng: np.random.Generator, clip: str, ch: Sequence[str], depth: bool = False
               ) -> tuple[list[np.ndarray], atk.FootageIndex, list[float], list[float], dict[str, Any]]:
        """The footage and per challenge the warp angle that makes it read like a REAL turn of a drawn angle
        (attacks.TURN_REAL_DEG × attacks.REAL_YAW_RATIO_PER_DEG, through the clip's measured turn table), and the
        warp of the turn acted again after a TURN_MORE hint (g6/c6: the top of TURN_REAL_DEG through the same
        table, capped where the clip stops reaching; no random draw, so the session's other draws are unchanged).
        When the warp reaches less in the asked direction than in the other, the clip is mirrored
        (attacks.mirror_footage) and the other direction's table applies."""
        frames, index = self._frames(clip)
        table = (self.turn_tables_3d if depth else self.turn_tables)[clip]  # depth: turn_head_3d's angles
        other = {"turn_left": "turn_right", "turn_right": "turn_left"}
        reach = {k: max(v for _, v in rows) for k, rows in table.items()}
        head = next((c for c in ch if c in other), None)
        mirrored = head is not None and reach[head] < reach[other[head]]
        if mirrored:
            frames, index = atk.mirror_footage(frames, index)
        degs: list[float] = []
        more: list[float] = []
        meta: dict[str, Any] = {"mirrored": mirrored}
        for name in ch:
            if name not in other:
                degs.append(0.0)
                more.append(0.0)
                continue
            rows = table[other[name]] if mirrored else table[name]
            real = float(rng.uniform(*atk.TURN_REAL_DEG))
            target = atk.REAL_YAW_RATIO_PER_DEG * real
            warp = atk.turn_warp_for(rows, target)
            degs.append(warp)
            farther = atk.turn_warp_for(rows, atk.REAL_YAW_RATIO_PER_DEG * atk.TURN_REAL_DEG[1])
            more.append(farther)
            meta[name] = {"real_deg": round(real, 1), "target_yaw_ratio": round(target, 3), "warp_deg": round(warp, 1),
                          "clip_reaches": max(v for _, v in rows), "more_warp_deg": round(farther, 1)}
        return frames, index, degs, more, meta

    def build(self, sp: Spec) -> list[Seq]:
        """The session's frames (and for real crops the same crops as they are, tight)."""
        rng = np.random.default_rng([self.seed, KIND_ID.get(sp.source if sp.kind == "bona_fide" else sp.kind, 99),
                                     sp.number, len(sp.clip)])
        n_passive = int((LEAD_IN_MS + WINDOW_MS) / 1000 * FPS_PASSIVE)
        passive_t = [round(i * 1000 / FPS_PASSIVE) for i in range(n_passive)]
        mouth = self.mouth_act(sp)
        if sp.kind == "bona_fide" and sp.source in ("video_acted", "slow", "late"):
            ch = draw_challenges(rng, bool(self.clips[sp.clip][1].mouth_frames()), sp.draw == "s11")
            delay = {"video_acted": (600, 1200), "slow": (1800, 2800), "late": (600, 1200)}[sp.source]
            late = int(rng.uniform(1500, 3000)) if sp.source == "late" else 0
            # the draws in g2's order (the same person, delay, clip start, camera, framing as g2's session with
            # this key; only the pacing differs); the later prompts' jitter from a generator of their own
            jitters = [int(rng.uniform(*steps.PROMPT_DELAY_MS))]
            frames, index, degs, more, meta = self.acting(rng, sp.clip, ch, depth=True)
            actor = atk.Actor(index, ch, rng, delay_ms=int(rng.uniform(*delay)), late_ms=late, turn_deg=degs,
                              more_deg=more, mouth=mouth)
            cam = atk.Camera.random(rng)
            target = float(rng.uniform(*GENUINE_FACE_FRAC))
            zoom = target / self.face_frac[sp.clip]
            meta |= {"face_frac_target": round(target, 3), "zoom": round(zoom, 3)}
            shift = (float(rng.uniform(-0.04, 0.04)), float(rng.uniform(-0.04, 0.04)))
            empty = atk.background(rng)
            jitters += self.later_jitters(sp, len(ch))

            def genuine(sh: atk.Shot) -> np.ndarray:
                if not sh.face_visible:
                    return empty  # as g2 (the empty room is not passed through the camera)
                return cam.shoot(atk.genuine_frame(atk.render_shot(frames, index, sh, depth=True), zoom=zoom,
                                                   shift=shift))

            sq = Seq(sp.key, "bona_fide", sp.source, sp.split, [], [], ch, [], meta)
            return [self.paced(sq, actor, genuine, jitters)]
        if sp.kind == "cued_replay":
            ch = draw_challenges(rng, bool(self.clips[sp.clip][1].mouth_frames()), sp.draw == "s11")
            jitters = [int(rng.uniform(*steps.PROMPT_DELAY_MS))]  # draws in c2's order (see bona_fide)
            frames, index, degs, more, meta = self.acting(rng, sp.clip, ch, depth=True)  # the genuine acting
            # the attacker hears the same hints and re-cues his clip the same way, after his own cue delay
            actor = atk.Actor(index, ch, rng, delay_ms=int(rng.uniform(800, 1500)), turn_deg=degs, more_deg=more,
                              mouth=mouth if sp.edited else None)
            phone, cam = atk.PhoneScreen(rng), atk.Camera.random(rng)
            jitters += self.later_jitters(sp, len(ch))
            sq = Seq(sp.key, "cued_replay", sp.clip, sp.split, [], [], ch, [], meta)
            return [self.paced(sq, actor,
                               lambda sh: cam.shoot(phone.render(atk.render_shot(frames, index, sh, depth=True))),
                               jitters)]
        if sp.kind == "replay":
            frames, index = self._frames(sp.clip)
            ch = draw_challenges(rng, bool(index.mouth_frames()))
            start = int(rng.integers(0, len(frames)))
            phone, cam = atk.PhoneScreen(rng), atk.Camera.random(rng)
            imgs = [cam.shoot(phone.render(frames[(start + round(t * index.fps / 1000)) % len(frames)]))
                    for t in passive_t]
            return [Seq(sp.key, "replay", sp.clip, sp.split, imgs, list(passive_t), ch)]
        if sp.kind in ("print", "still"):
            photo = read_image_file(Path(sp.files[0]))
            ch = draw_challenges(rng, True)
            cam = atk.Camera.random(rng)
            if sp.kind == "print":
                paper = atk.PaperPrint(rng, photo)
                imgs = [cam.shoot(paper.render()) for _ in passive_t]
            else:
                phone = atk.PhoneScreen(rng)
                imgs = [cam.shoot(phone.render(photo)) for _ in passive_t]
            return [Seq(sp.key, sp.kind, sp.files[0], sp.split, imgs, list(passive_t), ch)]
        if sp.source == "tiny":
            frames, fps = read_clip(self.faces / "video" / "blink_2_times_tiny.mp4")
            step = max(1, round(fps / FPS))
            kept = frames[::step]
            return [Seq(sp.key, "bona_fide", "tiny", sp.split, kept,
                        [round(i * step * 1000 / fps) for i in range(len(kept))])]
        # real crops (NUAA 20 fps, every 5th frame kept; apfol 25 fps): in full frames, and tight
        paths = [Path(f) for f in sp.files]
        crops = [read_image_file(f) for f in paths]
        ms = 50 if sp.key.startswith("nuaa/") else 40
        ts = [(_num(f) - _num(paths[0])) * ms for f in paths]
        cam = atk.Camera(np.random.default_rng([self.seed, 500, _num(paths[0]), sp.number]))
        placed = [cam.shoot(atk.place_crop(c)) for c in crops]
        return [Seq(sp.key, sp.kind, sp.source, sp.split, placed, ts),
                Seq(f"tight/{sp.key}", sp.kind, sp.source, sp.split, crops, ts)]

    def mouth_act(self, sp: Spec) -> atk.MouthAct | None:
        """How this session's person opens the mouth where the footage has no opening (s11 draw; attacks.Actor
        uses it only then), from a generator of its own (the session's generator is left as g6/c6 drew it)."""
        if sp.draw != "s11" or not sp.clip:
            return None
        return atk.MouthAct.random(np.random.default_rng(
            [self.seed, 700, KIND_ID.get(sp.source if sp.kind == "bona_fide" else sp.kind, 99), sp.number,
             len(sp.clip)]))

    def later_jitters(self, sp: Spec, n: int) -> list[int]:
        """PROMPT_DELAY_MS of prompts 2..n, from their own generator (the session's generator feeds the camera
        and phone while frames are rendered, so drawing from it would change g2's/c2's frames)."""
        rng = np.random.default_rng([self.seed, 600, KIND_ID.get(sp.source if sp.kind == "bona_fide" else sp.kind, 99),
                                     sp.number, len(sp.clip)])
        return [int(rng.uniform(*steps.PROMPT_DELAY_MS)) for _ in range(n - 1)]

    def paced(self, sq: Seq, actor: atk.Actor, render: Callable[[atk.Shot], np.ndarray],
              jitters: Sequence[int]) -> Seq:
        """``sq`` with the frames of a session paced as production paces it (:func:`pace`): each frame is
        rendered (``render`` of the actor's shot) and observed once, when the schedule reaches it."""
        imgs: list[np.ndarray] = []

        def observe(t: int) -> dict[str, Any]:
            imgs.append(render(actor.shot(t)))
            return self.observe(imgs[-1], t)

        h, w = atk.CAMERA[1], atk.CAMERA[0]
        base = {"name": sq.name, "kind": sq.kind, "source": sq.source, "challenges": sq.challenges, "size": [w, h]}
        per, prompts, meta = pace(base, actor, observe, jitters)
        return Seq(sq.name, sq.kind, sq.source, sq.split, imgs, [int(f["t"]) for f in per], sq.challenges, prompts,
                   sq.synth | {"paced": meta}, per)

    def observe(self, img: np.ndarray, t: int) -> dict[str, Any]:
        """One frame through the production path (detector, 68 landmarks, face-region brightness, eye
        patches); the PAD score is added later for all face frames at once (:meth:`score`)."""
        faces = self.engine.detect(img)
        if not faces or faces[0].landmarks68 is None:
            br = float(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).mean())  # as production: whole frame
            return {"t": t, "lm": None, "box": None, "nf": 0, "pad": None, "br": round(br, 1)}
        m = faces[0]
        _sharp, br = face_region_stats(img, np.asarray(m.box[:4], np.float32))
        eye = eye_patches(img, m.landmarks68)  # as frames.observe: production's blink pixels
        return {"t": t, "lm": np.round(np.asarray(m.landmarks68, np.float64), 2).tolist(),
                "box": [round(float(v), 2) for v in m.box[:4]], "nf": count_significant(faces), "pad": None,
                "br": round(float(br), 1), "eye": None if eye is None else encode_eyes(eye),
                "_box": self.pad.box_for(m.box, m.landmarks5)}  # unrounded, for PAD (dropped before caching)

    def rescore_pad(self, sp: Spec, old: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``old`` (a cached session of an earlier scoring key) with only its PAD scores recomputed: the frames
        are rebuilt (:meth:`build` is deterministic for a seed) and scored with the pack's crop box from the
        cached landmarks; landmarks, boxes, brightness, eye patches and cues are kept. Only for sessions that
        are not paced (their frames do not depend on the judgement) and whose synthesis did not change."""
        seqs = {sq.name: sq for sq in self.build(sp)}
        for row in old:
            sq = seqs[row["name"]]
            if len(sq.frames) != len(row["frames"]):
                raise RuntimeError(f"{row['name']}: rebuilt {len(sq.frames)} frames, cached {len(row['frames'])}")
            idx = [i for i, f in enumerate(row["frames"]) if f["lm"] is not None]
            boxes = [self.pad.box_for(row["frames"][i]["box"],
                                      geometry.five_from_68(np.asarray(row["frames"][i]["lm"], np.float32)))
                     for i in idx]
            scores = self.pad.score_many([sq.frames[i] for i in idx], boxes)
            for i, v in zip(idx, scores, strict=True):
                row["frames"][i]["pad"] = round(float(v), 5)
            row["pad_rescored"] = True
        return old

    def score(self, sq: Seq, cues: bool = True) -> dict[str, Any]:
        """Per-frame engine + PAD results (what the cache keeps) and the session's cue values."""
        per = sq.per if sq.per is not None else [self.observe(img, t) for img, t in zip(sq.frames, sq.t_ms,
                                                                                       strict=True)]
        idx = [i for i, f in enumerate(per) if f["box"] is not None]
        boxes = [per[i].pop("_box") for i in idx]
        if idx:
            for i, v in zip(idx, self.pad.score_many([sq.frames[i] for i in idx], boxes), strict=True):
                per[i]["pad"] = round(float(v), 5)
        h, w = sq.frames[0].shape[:2]
        row: dict[str, Any] = {"name": sq.name, "kind": sq.kind, "source": sq.source, "split": sq.split,
                               "challenges": sq.challenges, "prompts_ms": sq.prompts_ms, "synth": sq.synth,
                               "size": [w, h], "frames": per}
        if cues:
            row["cues"] = spoof_cues.analyze(sq.frames, [np.array(f["box"]) if f["box"] else None
                                                         for f in per]).as_dict()
        return row


_WORKER: Worker | None = None


def _init_worker(faces: Path, models: Path, cache_dir: Path, seed: int) -> None:
    global _WORKER
    cur = os.nice(0)
    if cur < 10:  # scoring is background work on a shared machine: at least nice 10
        os.nice(10 - cur)
    _WORKER = Worker(faces, models, cache_dir, seed)


def _run_spec(sp: Spec, old: Path | None = None) -> list[dict[str, Any]]:
    assert _WORKER is not None
    t0 = time.process_time()
    if old is not None:
        rows = _WORKER.rescore_pad(sp, json.loads(old.read_text()))
        rows[0]["cpu_s_pad_only"] = round(time.process_time() - t0, 2)
        return rows
    rows = []
    for sq in _WORKER.build(sp):
        rows.append(_WORKER.score(sq, cues=not sq.name.startswith("tight/")))
    rows[0]["cpu_s"] = round(time.process_time() - t0, 2)
    return rows


def cache_path(cache_dir: Path, sp: Spec, seed: int) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", sp.key)
    version = (KIND_VERSION_S11 if sp.draw == "s11" else KIND_VERSION).get(sp.kind)
    if version and sp.source not in ("crops", "tiny"):  # real crops and the tiny clip are not synthesised
        safe += f"-{version}"
    return cache_dir / f"{scoring_key()}-s{seed}" / f"{safe}.json"


def reacted_hints(row: dict[str, Any], d: dict[str, Any]) -> list[dict[str, Any]]:
    """The action hints of a paced session (``row`` as cached, ``d`` its :func:`production_decision`) that make
    the actor act again (atk.REACTING_HINTS) early enough to change a captured frame: the new action starts
    (atk.Actor.hint: heard at atk.hint_heard_ms from the end of the answered chunk, plus the actor's delay, read
    from the row's paced steps) before the step was seen (else atk.Actor.passed drops it) and no later than half
    a frame of its step after the session's last frame (a turn's warp begins half a frame before its first
    frame). One entry per such step: name, hint, when it acts again."""
    paced = (row.get("synth") or {}).get("paced") or {}
    meta = paced.get("steps") or []
    last = max((int(f["t"]) for f in row["frames"]), default=0)
    out = []
    for k, c in enumerate(d["challenge_results"]):
        code = c.get("action_hint")
        if code not in atk.REACTING_HINTS:
            continue
        if k >= len(meta):  # no record of the actor's delay: count it as changed
            out.append({"name": c["name"], "hint": code, "acts_again_ms": None})
            continue
        st = meta[k]
        answered = (int(st["prompt_ms"]) + int(c["hint_ms_after_prompt"])) // steps.CHUNK_MS * steps.CHUNK_MS
        answered += steps.CHUNK_MS
        again = atk.hint_heard_ms(str(code), str(c["name"]), answered) + int(st["acted_ms"]) - int(st["prompt_ms"])
        if st.get("seen_ms") is not None and again >= int(st["seen_ms"]):
            continue  # the page moved on first: no reaction
        if again - 500.0 / float(st["fps"]) <= last:
            out.append({"name": c["name"], "hint": code, "acts_again_ms": again})
    return out


def reuse_unchanged(cache_dir: Path, sp: Spec, seed: int) -> bool:
    """Copy the previous version's file of ``sp`` (PREVIOUS_VERSION) under the current name when the change
    cannot alter its capture: g6/c6 (the actor hears the first action hint of a step and may act again) — no step
    got an action hint that makes the actor act again early enough to change a frame (:func:`reacted_hints`;
    LOOK_BACK / LOOK_UP change nothing). True when copied."""
    new = cache_path(cache_dir, sp, seed)
    version = KIND_VERSION.get(sp.kind)
    prev = PREVIOUS_VERSION.get(version or "")
    if prev is None or new.is_file() or not new.name.endswith(f"-{version}.json"):
        return False
    old = new.with_name(new.name[: -len(f"-{version}.json")] + f"-{prev}.json")
    if not old.is_file():
        return False
    raw = json.loads(old.read_text())
    st = Settings()
    for r in raw:
        if r["name"].startswith("tight/") or not r.get("challenges"):
            continue
        d = production_decision(r, LivenessParams(), st.quality, st.verification.min_frames)
        if reacted_hints(r, d):
            return False
    tmp = new.with_suffix(".tmp")
    tmp.write_text(old.read_text())
    tmp.replace(new)
    return True


@functools.cache
def scoring_key() -> str:
    """CACHE_VERSION plus a digest of the PAD pack's manifest table without its threshold (files, crop
    scales, any exposure correction): a change in how frames are scored starts a fresh cache instead of
    mixing old and new per-frame scores."""
    table = {k: v for k, v in load_manifest()["packs"]["minifasnet"].items() if k != "threshold"}
    digest = hashlib.sha256(json.dumps(table, sort_keys=True, default=str).encode()).hexdigest()[:8]
    return f"{CACHE_VERSION}-{digest}"


# -- decisions from the cached per-frame results -----------------------------------------------------------


def frame_obs(row: dict[str, Any]) -> list[FrameObs]:
    """The cached frames as liveness sees them; the eye patches only where the row has them (rows cached
    before they were kept judge blinks on the eye aspect ratio alone, as before)."""
    out = []
    for f in row["frames"]:
        if f["lm"] is None:
            out.append(FrameObs(f["t"], None))
        else:
            out.append(FrameObs(f["t"], np.asarray(f["lm"], np.float32), np.asarray(f["box"], np.float32), f["nf"],
                                steps.eyes_of(f.get("eye"))))
    return out


NEUTRAL_BRIGHTNESS = 128.0  # v2 cache rows carry no brightness: light is then not judged


def prompts_of(row: dict[str, Any]) -> list[int]:
    """When each challenge's prompt appeared (ms of the session) — the time the actor reacted to.
    v2 cache rows carry none: the fixed schedule of that synthesis (lead-in + k windows)."""
    got = row.get("prompts_ms") or []
    if got or "paced" in (row.get("synth") or {}):  # a paced session whose settle step never ended: none shown
        return [int(v) for v in got]
    return [LEAD_IN_MS + k * WINDOW_MS for k in range(len(row["challenges"]))]


def obs_of(row: dict[str, Any]) -> list[steps.Obs]:
    """The cached frames as production keeps them per chunk (steps.Obs; client ms = server ms here)."""
    w, h = row.get("size") or ((96, 128) if row["source"] == "tiny" else atk.CAMERA)
    out = []
    for f in row["frames"]:
        lm = None if f["lm"] is None else np.asarray(f["lm"], np.float32).reshape(68, 2)
        box = None if f["box"] is None else (float(f["box"][0]), float(f["box"][1]), float(f["box"][2]),
                                             float(f["box"][3]))
        out.append(steps.Obs(int(f["t"]), (int(w), int(h)), lm, box, int(f["nf"]) if lm is not None else 0, 0.0,
                             float(f.get("br", NEUTRAL_BRIGHTNESS)), f["pad"],
                             steps.eyes_of(f.get("eye")) if lm is not None else None))
    return out


def settle_of(obs: Sequence[steps.Obs], g: QualitySettings,
              framing_wait_ms: int = steps.SETTLE_FRAMING_WAIT_MS) -> tuple[int | None, steps.SettleResult]:
    """The first time the settle step would be SEEN (production judges it after every chunk; here after
    every frame, i.e. up to one chunk earlier) and its result (the baseline)."""
    for i in range(steps.SETTLE_MIN_FRAMES - 1, len(obs)):
        r = steps.settle(obs[: i + 1], 0, g, framing_wait_ms)
        if r.steady:
            return obs[i].t_ms, r
    return None, steps.SettleResult(False)


def first_action_hint(name: str, obs: Sequence[steps.Obs], fobs: Sequence[FrameObs], base: Baseline, rv: int,
                      params: LivenessParams, g: QualitySettings) -> tuple[str, int] | None:
    """The first action hint production gives a challenge step revealed at ``rv`` (code, ms after the prompt),
    or None: paced.py judges the step after every chunk (here the CHUNK_MS grid of :func:`pace`) and, while it
    is not seen, answers with steps.step_hints of that chunk; the first action hint lengthens the step's window
    by steps.HINT_EXTRA_WINDOW_MS (counted from the chunk that reaches past the base window, as paced.py checks
    the hint before the window's end)."""
    c = (rv // steps.CHUNK_MS + 1) * steps.CHUNK_MS
    last = max((o.t_ms for o in obs), default=rv)
    while c - steps.CHUNK_MS <= rv + steps.CHALLENGE_WINDOW_MS and c - steps.CHUNK_MS <= last:
        chunk = [o for o in obs if c - steps.CHUNK_MS <= o.t_ms < c]
        if chunk:
            elapsed = chunk[-1].t_ms - rv
            if elapsed >= steps.ACTION_HINT_AFTER_MS:
                j = steps.judge_challenge(name, [f for f in fobs if rv <= f.t_ms < c], base, rv, params)
                if j.seen:
                    return None
                code = steps.action_in(steps.step_hints(steps.hints(chunk, g), name, j, elapsed, params))
                if code is not None:
                    return code, elapsed
        c += steps.CHUNK_MS
    return None


def seen_chunk_end(name: str, fobs: Sequence[FrameObs], base: Baseline, rv: int, end: int,
                   params: LivenessParams) -> int:
    """The end of the chunk (CHUNK_MS grid, as :func:`pace`) after which production judged a seen step SEEN: its
    next step's chunks start there (their frames are the prompt delay, then the next prompt's answer)."""
    c = (rv // steps.CHUNK_MS + 1) * steps.CHUNK_MS
    while c < end + steps.CHUNK_MS:
        if steps.judge_challenge(name, [f for f in fobs if rv <= f.t_ms < min(c, end)], base, rv, params).seen:
            return c
        c += steps.CHUNK_MS
    return end


def step_of_frames(fobs: Sequence[FrameObs], bounds: Sequence[int]) -> list[int]:
    """The step whose chunk held each frame, as paced.py stores it (VerificationChunk.step): 0 (settle) before
    ``bounds[0]``, k + 1 from ``bounds[k]`` to ``bounds[k + 1]``, -1 after the last bound (never captured)."""
    out = []
    for f in fobs:
        k = next((i for i, b in enumerate(bounds) if f.t_ms < b), len(bounds))
        out.append(k if k < len(bounds) else -1)
    return out


def production_decision(row: dict[str, Any], params: LivenessParams, g: QualitySettings,
                        min_frames: int) -> dict[str, Any]:
    """The active part of production's decision for one cached session, on plain data (no rescoring).

    As services/verification does it: the settle step (steps.settle: a steady face for SETTLE_STEADY_MS)
    gives the baseline; each challenge is judged by steps.judge_challenge over the frames from its prompt to
    prompt + CHALLENGE_WINDOW_MS (+ HINT_EXTRA_WINDOW_MS after an action hint, :func:`first_action_hint`; the
    hint is recorded, ``action_hint`` / ``hint_ms_after_prompt``, for every step that got one before it was seen;
    cut at the next prompt: those frames are the actor's answer to another
    prompt, which production would not have shown yet), counting only frames MIN_REACTION_MS after the
    prompt; the first challenge not seen ends the session (later ones are never revealed, the capture
    stops at the end of its window); then the final decision of paced.py: too few usable frames → RETRY;
    steps.passive_liveness (still / homography residual OR nose parallax / track breaks), the jaw test of the
    open_mouth step (paced.open_mouth_jaw on the frames production's chunks would have given that step: from the
    chunk after the previous step was seen, :func:`seen_chunk_end`, to the chunk it was seen in; ``jaw``) and the
    missed challenge through rules.decide (PAD is added in the summary with the 2-fold thresholds).

    Sessions without challenges (NUAA/apfol crops, tiny: their subjects were asked nothing) get the
    passive part only. Prints, stills and plain replays are captured at 2.5 fps, too few frames for
    the settle step's SETTLE_MIN_FRAMES in SETTLE_STEADY_MS: their baseline comes from the frames before
    the first prompt ("settle": "low_fps") — a benchmark shortcut, never a rejection."""
    obs = obs_of(row)
    prompts = prompts_of(row)
    fobs = [o.frame_obs(0) for o in obs]
    out: dict[str, Any] = {"settled_ms": None, "settle": None, "challenge_results": [], "missed": [],
                           "prompt_before_settle": False}
    end_ms = obs[-1].t_ms if obs else 0
    reason: str | None = None
    challenges = list(row["challenges"])
    bounds: list[int] = []  # where each step's chunks begin (paced.py's VerificationChunk.step)
    step_states: list[dict[str, Any]] = []
    base: Baseline | None = None
    if challenges:
        settled, res = settle_of(obs, g)
        if prompts and (settled is None or settled > prompts[0]):
            # A face held too close: production's settle step waits up to SETTLE_FRAMING_WAIT_MS for it to
            # move back and prompts later; the synthetic session was acted on an earlier schedule. Judge it
            # with the baseline production would take once the wait is over (never a rejection for the wait).
            late, late_res = settle_of(obs, g, framing_wait_ms=0)
            if late is not None and (settled is None or late < settled):
                out["framing_wait_not_modelled"] = True
                settled, res = late, late_res
        base = res.baseline
        out["settled_ms"], out["settle"] = settled, "steady" if base is not None else None
        if base is None:
            fps = 1000.0 * (len(obs) - 1) / max(1, end_ms) if len(obs) > 1 else 0.0
            if fps * steps.SETTLE_STEADY_MS / 1000.0 < steps.SETTLE_MIN_FRAMES - 1:
                lead = [f for f, o in zip(fobs, obs, strict=True)
                        if prompts and o.t_ms < prompts[0] and o.issue(g) is None]
                base = steps.baseline_of(lead) if lead else None
                out["settle"] = "low_fps" if base is not None else None
        elif settled is not None and prompts and settled > prompts[0]:
            out["prompt_before_settle"] = True  # production would have shown the prompt later (v2 late sessions)
        if base is None:  # the settle step times out: RETRY with the most common framing issue
            reason = str(steps.most_common_issue(obs, g))
        else:
            # the settle step's chunks end at its seen chunk (low_fps: the first prompt)
            bounds = [(settled // steps.CHUNK_MS + 1) * steps.CHUNK_MS if settled is not None
                      else (prompts[0] if prompts else 0)]
            step_states = [{"kind": "settle", "challenge": None, "state": "seen"}] + [
                {"kind": "challenge", "challenge": c, "state": "pending"} for c in challenges]
            for k, name in enumerate(challenges):
                if k >= len(prompts):  # never revealed (a paced session ended before it): not seen
                    out["missed"] = [name]
                    break
                rv = prompts[k]
                nxt = prompts[k + 1] if k + 1 < len(prompts) else None
                window = steps.CHALLENGE_WINDOW_MS
                end = rv + window if nxt is None else min(rv + window, nxt)
                j = steps.judge_challenge(name, [f for f in fobs if rv <= f.t_ms < end], base, rv, params)
                # production's first action hint, also for a step seen after it (g6: the person reacts to it)
                hint = first_action_hint(name, obs, fobs, base, rv, params, g)
                if hint is not None:  # paced.py: the step's window grows once, at its first action hint
                    window += steps.HINT_EXTRA_WINDOW_MS
                    end = rv + window if nxt is None else min(rv + window, nxt)
                    if not j.seen:  # seen in the base window: seen (the judgement of a seen step is kept as it was)
                        j = steps.judge_challenge(name, [f for f in fobs if rv <= f.t_ms < end], base, rv, params)
                out["challenge_results"].append(j.as_dict(name, rv) | {"window_ms": window} | (
                    {"action_hint": hint[0], "hint_ms_after_prompt": hint[1]} if hint else {}))
                step_states[k + 1]["state"] = "seen" if j.seen else "timed_out"
                bounds.append(seen_chunk_end(name, fobs, base, rv, end, params) if j.seen else end)
                if not j.seen:
                    out["missed"] = [name]
                    end_ms = min(end_ms, end)
                    break
    kept = [f for f in fobs if f.t_ms <= end_ms]
    usable = sum(1 for f in kept if f.landmarks is not None and f.num_faces == 1)
    live = steps.passive_liveness(kept, params)
    chin = (open_mouth_jaw(step_states, step_of_frames(kept, bounds), kept, base, params)
            if bounds and base is not None else None)
    out["jaw"] = None if chin is None else chin.as_dict()
    out |= {"motion": round(live.motion, 5), "flat_decided": live.flat.decided, "flat_residual": live.flat.residual,
            "planar": {"decided": live.planar.decided, "flat": live.planar.flat, "parallax": live.planar.parallax},
            "track_breaks": len(live.breaks), "usable": usable}
    if reason is None and usable < min_frames:
        reason = str(ErrorCode.TOO_FEW_FRAMES)
    if reason is not None:
        out |= {"decision": "RETRY", "reason": reason, "issue": None, "active_reject": True}
        return out
    v = rules.decide(rules.Evidence(threshold=0.0, own_match=1.0, one_person_min=1.0, still=live.still,
                                    flat=live.flat_photo, challenges_passed=not out["missed"], pad_spoof=False))
    # the jaw test does not refuse (a STILL_CHIN spot check of a CONFIRMED session: domain/spotcheck.py)
    out |= {"decision": str(v.decision), "reason": None if v.reason is None else str(v.reason), "issue": v.issue,
            "active_reject": v.decision != "CONFIRMED",
            "spot_check_still_chin": v.decision == "CONFIRMED" and chin is not None and chin.still_chin}
    return out


def pace_rates() -> str:
    """The capture rates the paced sessions use, for the README (steps.capture_fps per step)."""
    rates = {"settle": steps.capture_fps(None)} | {c: steps.capture_fps(c) for c in (*HEAD, *NON_RIGID)}
    return ", ".join(f"{k} {v} fps" for k, v in rates.items())


def pace(base: dict[str, Any], actor: atk.Actor, observe: Callable[[int], dict[str, Any]], jitters: Sequence[int],
         params: LivenessParams | None = None, g: QualitySettings | None = None) -> tuple[
             list[dict[str, Any]], list[int], dict[str, Any]]:
    """Capture one acted session the way production paces it; returns the per-frame rows, the prompt times
    and what happened per step. ``observe(t)`` renders and observes the frame at ``t`` ms (once, in order).

    Production (paced.py) judges the current step after every chunk (~CHUNK_MS) and reveals the next prompt
    PROMPT_DELAY_MS (here ``jitters[k]``, drawn with the session) after the chunk in which the step was SEEN;
    a challenge not seen within CHALLENGE_WINDOW_MS of its prompt ends the session. So here: frames at
    steps.capture_fps(None) until the settle step is seen (steps.settle through :func:`settle_of`, at most
    SETTLE_WINDOW_MS), then for each challenge frames at steps.capture_fps(challenge) from its prompt, judged
    chunk by chunk by :func:`production_decision` (the same judge the summary uses); seen → the next prompt
    comes ``jitters[k + 1]`` after that chunk (the last step seen: the capture stops there); not seen by the
    end of its window → the capture stops with the first frame past it. The footage meanwhile is the real
    clip playing on (atk.Actor): during a long window the person does not act again, but their own clip may
    blink, move or talk as filmed — except that the first action hint production gives a step (its answer to
    the chunk, :func:`production_decision`'s ``action_hint``) is told to the actor (atk.Actor.hint, heard at
    atk.hint_heard_ms from the end of that chunk), which may act again. Only frames production would capture are
    rendered and scored (a step seen early costs fewer frames than a fixed schedule; a missed one runs to its
    end)."""
    params, g = params or LivenessParams(), g or QualitySettings()
    frames: list[dict[str, Any]] = []
    prompts: list[int] = []
    meta: dict[str, Any] = {"steps": []}
    row = base | {"prompts_ms": prompts, "frames": frames}

    def capture(times: Sequence[int]) -> None:
        frames.extend(observe(t) for t in times)

    def chunk_end(t: int) -> int:
        return (t // steps.CHUNK_MS + 1) * steps.CHUNK_MS

    rate = float(steps.capture_fps(None))
    t0, n = 0, 0  # the current grid: frames at t0 + n * 1000 / rate
    seen_at: int | None = None
    while seen_at is None and t0 + n * 1000 / rate < steps.SETTLE_WINDOW_MS:
        end = chunk_end(round(t0 + n * 1000 / rate))
        times = [t for t in atk.step_times(t0, end, rate) if t >= t0 + n * 1000 / rate - 0.5]
        capture(times)
        n += len(times)
        settled, _res = settle_of(obs_of(row), g)
        if settled is not None:
            seen_at = end
    meta["settle_seen_ms"] = seen_at
    for k, name in enumerate(base["challenges"]):
        if seen_at is None:
            break
        reveal = seen_at + int(jitters[k])
        capture([t for t in atk.step_times(t0, reveal, rate) if t >= t0 + n * 1000 / rate - 0.5])
        rate = float(steps.capture_fps(name))
        t0, n = reveal, 0
        prompts.append(reveal)
        actor.prompt(reveal, rate)
        window_end = reveal + steps.CHALLENGE_WINDOW_MS
        seen_at = None
        told: dict[str, Any] = {}
        while True:
            end = chunk_end(round(t0 + n * 1000 / rate))
            times = [t for t in atk.step_times(t0, end, rate) if t >= t0 + n * 1000 / rate - 0.5]
            capture(times)
            n += len(times)
            res = production_decision(row, params, g, 0)["challenge_results"]
            if len(res) > k and "action_hint" in res[k] and k not in actor.heard:  # the answer to this chunk
                code, given = res[k]["action_hint"], chunk_end(reveal + int(res[k]["hint_ms_after_prompt"]))
                heard = atk.hint_heard_ms(code, name, given)
                again = actor.hint(k, heard, code)
                told = {"hint": code, "hint_answered_ms": given, "hint_heard_ms": heard, "acted_again_ms": again}
            if len(res) > k and res[k]["passed"]:
                seen_at = end
                if actor.passed(k, end):  # heard, but the step was seen before the person acted on it
                    told["acted_again_ms"], told["dropped"] = None, True
                break
            if len(res) > k:  # an action hint lengthened the window (production_decision, as paced.py)
                window_end = reveal + int(res[k].get("window_ms", steps.CHALLENGE_WINDOW_MS))
            if frames and frames[-1]["t"] > window_end:
                break
        peak = res[k]["peak_ms_after_prompt"] if len(res) > k else None
        meta["steps"].append({"name": name, "prompt_ms": reveal, "fps": rate, "acted_ms": reveal + actor.delay_ms,
                              "seen_ms": seen_at, "peak_ms": None if peak is None else reveal + int(peak),
                              "window_ms": window_end - reveal,
                              "frames": sum(1 for f in frames if f["t"] >= reveal)} | told)
    return frames, prompts, meta


def reject_reason(d: dict[str, Any]) -> str | None:
    """One label per rejected session: the missed challenge, else the passive issue / reason."""
    if not d["active_reject"]:
        return None
    if d["missed"] and d["reason"] == str(ErrorCode.CHALLENGE_NOT_SEEN):
        return f"missed {d['missed'][0]}"
    return str(d["issue"] or d["reason"])


def active_decision(obs: list[FrameObs], row: dict[str, Any], params: LivenessParams) -> dict[str, Any]:
    """Session 2's fixed-window judgement (engine.liveness.analyze_liveness): kept for comparison only."""
    n = len(obs)
    with_face = [o for o in obs if o.has_face]
    multi = sum(1 for o in with_face if o.num_faces > 1)
    live = analyze_liveness(obs, row["challenges"], LEAD_IN_MS, WINDOW_MS, params)
    reasons = []
    if len(with_face) < max(2, 0.5 * n) and row["source"] != "late":
        reasons.append("no_face")
    if multi >= max(2, 0.2 * n):
        reasons.append("multiple_faces")
    if live.still:
        reasons.append("still")
    if live.flat.decided and live.flat.flat:
        reasons.append("flat")
    if live.track_breaks:
        reasons.append("track_break")
    missed = [c.name for c in live.challenges if not c.passed]
    return {
        "passive_reasons": reasons, "missed": missed, "active_reject": bool(reasons or missed),
        "flat_decided": live.flat.decided, "flat_residual": live.flat.residual, "motion": round(live.motion, 5),
    }


def production_pad_scores(row: dict[str, Any]) -> list[float]:
    """The P(real) values production would have: per CHUNK_MS chunk of frames, only the frames
    steps.pad_pick chooses among those with a face (the cache holds a score for every face frame)."""
    chunks: dict[int, list[float]] = defaultdict(list)
    for f in row["frames"]:
        if f["pad"] is not None:
            chunks[int(f["t"]) // steps.CHUNK_MS].append(float(f["pad"]))
    return [v for _, vals in sorted(chunks.items()) for i, v in enumerate(vals) if i in steps.pad_pick(len(vals))]


def derive(row: dict[str, Any], params: LivenessParams, g: QualitySettings | None = None,
           min_frames: int = 5) -> dict[str, Any]:
    """A cached session → the row the summary works on (no frames). ``active_reject``: production's decision
    (production_decision); ``fixed_windows``: session 2's analyze_liveness judgement, for comparison."""
    g = g or QualitySettings()
    all_scores = [float("nan") if f["pad"] is None else float(f["pad"]) for f in row["frames"]]
    scores = production_pad_scores(row) if not row["name"].startswith("tight/") else all_scores
    out = {k: row[k] for k in ("name", "kind", "source", "split", "challenges")}
    out["frames"] = len(row["frames"])
    out["with_face"] = sum(1 for f in row["frames"] if f["lm"] is not None)
    out["pad_frames"] = len(scores)
    out["pad"] = {m: fuse_session(scores, m) for m in ("mean", "median", "p25")}
    out["pad_all_frames"] = {m: fuse_session(all_scores, m) for m in ("mean", "median", "p25")}
    if row["name"].startswith("tight/"):
        return out
    out.update(production_decision(row, params, g, min_frames))
    out["reject_reason"] = reject_reason(out)
    old = active_decision(frame_obs(row), row, params)
    out["fixed_windows"] = {"reject": old["active_reject"], "missed": old["missed"],
                            "passive_reasons": old["passive_reasons"]}
    out["cues"] = row.get("cues", {})
    out["cpu_s"] = row.get("cpu_s")
    return out


# Calibration targets: the full-frame attack types. print_nuaa / replay_apfol are real captures but only as
# tight crops whose full frame is synthesised around them (attacks.place_crop): reported, not calibrated on.
CALIBRATE_ON = ("print", "still", "replay", "cued_replay")


def choose_threshold(cal: list[dict[str, Any]], method: str) -> tuple[float, dict[str, Any]]:
    """Lowest-risk threshold on the calibration half: among thresholds with BPCER ≤ CAL_BPCER on the
    genuine sequences (tiny excluded), the one minimising the worst APCER over CALIBRATE_ON; ties → the
    middle of the tied range (margin on both sides)."""
    gen = np.array([r["pad"][method] for r in cal if r["kind"] == "bona_fide" and r["source"] != "tiny"])
    gen = np.nan_to_num(gen, nan=0.0)
    att: dict[str, Any] = {}
    for r in cal:
        if r["kind"] in CALIBRATE_ON:
            att.setdefault(r["kind"], []).append(r["pad"][method])
    att = {k: np.nan_to_num(np.array(v), nan=0.0) for k, v in att.items()}
    grid = np.round(np.arange(0.01, 1.0, 0.005), 4)
    best: list[tuple[float, float]] = []
    for t in grid:
        bp = float((gen < t).mean()) if gen.size else 0.0
        if bp > CAL_BPCER:
            continue
        worst = max(float((v >= t).mean()) for v in att.values()) if att else 0.0
        best.append((worst, float(t)))
    if not best:
        return 0.01, {"note": "no threshold met the calibration BPCER", "margin": 0.0}
    low = min(w for w, _ in best)
    tied = [t for w, t in best if w == low]
    t = float(np.round((min(tied) + max(tied)) / 2, 4))
    return t, {"cal_worst_apcer": low, "tied_range": [min(tied), max(tied)], "margin": max(tied) - min(tied),
               "cal_genuine": int(gen.size), "calibrated_on": list(CALIBRATE_ON)}


def choose_fusion(cal: list[dict[str, Any]]) -> tuple[str, float, dict[str, Any]]:
    """The session fusion (mean, median, p25) with the lowest calibration worst-APCER, then the widest margin."""
    options = []
    for m in ("mean", "median", "p25"):
        t, info = choose_threshold(cal, m)
        options.append((info.get("cal_worst_apcer", 1.0), -info.get("margin", 0.0), m, t, info))
    options.sort(key=lambda o: (o[0], o[1]))
    _, _, m, t, info = options[0]
    info["fusion_options"] = {o[2]: {"threshold": o[3], "cal_worst_apcer": o[0], "margin": -o[1]} for o in options}
    return m, t, info


HALF_A_NOTE = "calibrated by benchmarks/pad_eval.py on its calibration half; APCER/BPCER below are its REPORT half"
SHIPPED_NOTE = ("value and fusion kept as shipped; APCER/BPCER below: PAD alone at this value on every pad_eval "
                "session (none chose it)")


def write_manifest_threshold(path: Path, value: float, fusion: str, apcer: dict[str, Any], bpcer: float | None,
                             dataset: str, date: str, note: str = HALF_A_NOTE) -> None:
    text = path.read_text()
    worst = max((v["rate"] for v in apcer.values() if v["rate"] is not None), default=None)
    block = (
        "[packs.minifasnet.threshold]\n"
        f"# {note}\n"
        f"# (synthetic full-frame attacks + real NUAA/apfol crops in synthesised frames; see benchmarks/README.md)\n"
        f"value = {value}\n"
        f'fusion = "{fusion}"\n'
        f"apcer = {round(worst, 4) if worst is not None else 'nan'}  # worst attack type\n"
        + "".join(f"apcer_{k} = {round(v['rate'], 4)}\n" for k, v in sorted(apcer.items()) if v["rate"] is not None)
        + f"bpcer = {round(bpcer, 4) if bpcer is not None else 'nan'}\n"
        f'dataset = "{dataset}"\n'
        f'date = "{date}"\n'
    )
    # the table runs to the first blank line or the next table header (comments of the next section stay)
    pat = re.compile(r"\[packs\.minifasnet\.threshold\]\n(?:(?!\n\n|\n\[).)*", re.S)
    if not pat.search(text):
        raise SystemExit(f"{path} has no [packs.minifasnet.threshold] table")
    path.write_text(pat.sub(lambda _: block.rstrip("\n"), text, count=1))


def auc(pos: Sequence[float], neg: Sequence[float]) -> float | None:
    """P(a random attack value > a random genuine value), ties counted half; None when a side is empty."""
    p = np.array([v for v in pos if v is not None and not math.isnan(v)], dtype=np.float64)
    n = np.array([v for v in neg if v is not None and not math.isnan(v)], dtype=np.float64)
    if not p.size or not n.size:
        return None
    gt = (p[:, None] > n[None, :]).mean()
    eq = (p[:, None] == n[None, :]).mean()
    return float(gt + 0.5 * eq)


def cue_measurements(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Does each spoof cue separate attacks from genuine sequences? On REAL captures (NUAA prints vs
    NUAA real, apfol replay vs apfol real — both as crops in synthesised frames, so only the
    face-region cues mean anything there) and on the synthetic full-frame attacks vs genuine
    acted clips. AUC = P(attack value > genuine value); 0.5 = no separation."""
    def vals(sel: Callable[[dict[str, Any]], bool], key: str) -> list[float]:
        out = []
        for r in rows:
            if not sel(r):
                continue
            v = r["flat_residual"] if key == "flat_residual" else r["cues"].get(key)
            if key == "flat_residual" and not r["flat_decided"]:
                continue
            if key == "rigid_enclosure":
                v = float(r["cues"]["enclosure"] or 0) if r["cues"]["rigid"] else 0.0
            out.append(float("nan") if v is None else float(v))
        return out

    real_gen_nuaa = lambda r: r["kind"] == "bona_fide" and r["name"].startswith("nuaa/")  # noqa: E731
    real_gen_apfol = lambda r: r["kind"] == "bona_fide" and r["name"].startswith("apfol/")  # noqa: E731
    synth_gen = lambda r: r["kind"] == "bona_fide" and r["source"] in ("video_acted", "slow", "late")  # noqa: E731
    out: dict[str, Any] = {}
    for cue in ("moire", "specular", "enclosure", "rigid_enclosure"):
        out[cue] = {
            "real_print_nuaa": auc(vals(lambda r: r["kind"] == "print_nuaa", cue), vals(real_gen_nuaa, cue)),
            "real_replay_apfol": auc(vals(lambda r: r["kind"] == "replay_apfol", cue), vals(real_gen_apfol, cue)),
            **{f"synthetic_{k}": auc(vals(lambda r, k=k: r["kind"] == k, cue), vals(synth_gen, cue))
               for k in ("print", "replay", "still", "cued_replay")},
        }
    # the flat-photo (homography) test: a LOW residual means planar; AUC here = P(genuine residual > print's)
    flat: dict[str, Any] = {}
    for name, sel in (("print_nuaa", lambda r: r["kind"] == "print_nuaa"), ("print", lambda r: r["kind"] == "print"),
                      ("genuine_acted", synth_gen), ("genuine_crops", lambda r: r["source"] == "crops")):
        v = [x for x in vals(sel, "flat_residual") if not math.isnan(x)]
        n_all = sum(1 for r in rows if sel(r))
        flat[name] = {"sequences": n_all, "decided": len(v),
                      "residual_quantiles": [round(float(q), 4) for q in np.quantile(v, [0, 0.1, 0.5, 0.9, 1])]
                      if v else None}
    out["flat_residual"] = flat
    return out


def load_cached(cache_dir: Path, specs: Sequence[Spec], seed: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Derived rows of every planned session already scored (full frames, tight crops)."""
    params = LivenessParams()
    st = Settings()
    rows: list[dict[str, Any]] = []
    tight: list[dict[str, Any]] = []
    for sp in specs:
        p = cache_path(cache_dir, sp, seed)
        if not p.is_file():
            continue
        for raw in json.loads(p.read_text()):
            (tight if raw["name"].startswith("tight/") else rows).append(
                derive(raw, params, st.quality, st.verification.min_frames))
    return rows, tight


def select_kinds(specs: Sequence[Spec], kinds: Sequence[str]) -> list[Spec]:
    """The sessions of ``specs`` whose kind (bona_fide, cued_replay, print, ...), source (video_acted, slow,
    late, crops, tiny, nuaa, apfol, a clip name) or key prefix (cued_edited) is in ``kinds``, in plan order; all
    of them when ``kinds`` is empty."""
    want = set(kinds)
    return [sp for sp in specs if not want or sp.kind in want or sp.source in want or sp.key.split("/")[0] in want]


def session_record(row: dict[str, Any], value: float, fusion: str) -> dict[str, Any]:
    """A derived session row (:func:`derive`) -> what a rule on session scores needs (no frames, no images):
    the fused PAD score at the manifest's ``fusion`` (None: no frame scored), PAD's verdict at its threshold
    ``value`` (production: a session whose score is below it, or has none, is an attack), the active decision
    and ``confirmed`` = production would confirm it (the active checks confirm AND PAD passes)."""
    score = row["pad"][fusion]
    has = score is not None and not math.isnan(score)
    pad_pass = bool(has and score >= value)
    return {"key": row["name"], "kind": row["kind"], "source": row["source"], "split": row["split"],
            "challenges": list(row.get("challenges") or []),
            "pad_score": round(float(score), 5) if has else None,
            "pad_fusions": {m: (None if math.isnan(v) else round(float(v), 5)) for m, v in row["pad"].items()},
            "pad_frames": row["pad_frames"], "pad_pass": pad_pass,
            "active_decision": row.get("decision"), "active_reason": row.get("reject_reason"),
            "confirmed": pad_pass and not row.get("active_reject", True)}


def write_sessions(path: Path, rows: Sequence[dict[str, Any]], meta: dict[str, Any], value: float,
                   fusion: str) -> None:
    """benchmarks/results/pad_sessions.json: :func:`session_record` of every scored session (whole file)."""
    out = {"meta": meta | {"threshold": value, "fusion": fusion,
                           "confirmed": "active checks confirm AND the fused PAD score >= threshold"},
           "sessions": [session_record(r, value, fusion) for r in rows]}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(out, indent=0) + "\n")
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--faces", type=Path, default=ROOT.parent / "shared" / "faces")
    ap.add_argument("--models", type=Path, default=None, help="folder with the minifasnet files")
    ap.add_argument("--per-type", type=int, default=200, help="sessions per synthetic attack type")
    ap.add_argument("--genuine-per-variant", type=int, default=70, help="acted genuine sessions per variant")
    ap.add_argument("--seq-len", type=int, default=8, help="apfol chunk length (frames)")
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--budget-min", type=float, default=60.0, help="stop submitting sessions after this long")
    ap.add_argument("--summary-every", type=int, default=40)
    ap.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "lifecert-pad-eval")
    ap.add_argument("--write-manifest", choices=["half-a", "shipped"], default=None,
                    help="half-a: write half A's calibrated threshold; shipped: keep the manifest's value and fusion "
                         "and write the rates this run measured at it")
    ap.add_argument("--fusion", default="auto", choices=["auto", "mean", "median", "p25"],
                    help="session fusion of per-frame P(real); auto = chosen on the calibration half")
    ap.add_argument("--summarize-only", action="store_true", help="tables from the cache, no scoring")
    ap.add_argument("--only", default="", help="comma-separated session keys (e.g. slow/blink_7_times_1080p/7): "
                    "score just those and print production's decision per session; no README / results written")
    ap.add_argument("--pad-only-from", type=Path, default=None,
                    help="an earlier scoring folder (e.g. /tmp/lifecert-pad-eval/v4-ca84e9ad-s12): sessions that are "
                         "not paced and whose file is there keep its landmarks and cues and get only PAD re-scored "
                         "(for a change of the PAD crop alone; ~1-3 s a session instead of ~10-40)")
    ap.add_argument("--kinds", default="",
                    help="comma-separated kinds or sources (e.g. video_acted,slow,late,crops = the genuine BPCER set; "
                         "cued_replay): score and summarise only those sessions of the plan (same keys, draws and "
                         "halves); writes only --sessions-out, not pad.json / README / manifest")
    ap.add_argument("--draw", choices=["s10", "s11"], default="s10",
                    help="the acted sessions' challenge draw: s10 = blink or open_mouth (the main table's g6/c6), "
                         "s11 = production's since session 11 (open_mouth in every set; g7/c7, a restricted run)")
    ap.add_argument("--edited", type=int, default=0,
                    help="with --draw s11: this many cued replays per half of blink_7_times_1080p whose attacker "
                         "edits the synthetic mouth opening into his footage (key cued_edited/...)")
    ap.add_argument("--sessions-out", type=Path, default=RESULTS / "pad_sessions.json",
                    help="per-session results (key, kind, half, fused PAD score, verdicts; no images)")
    a = ap.parse_args(argv)
    if a.kinds and a.write_manifest:
        ap.error("--kinds: a restricted run does not write the manifest (its threshold is the full run's)")
    t_start = time.time()
    settings = Settings()
    models = a.models or a.faces.parent / "models" / "minifasnet"
    kinds = [k.strip() for k in a.kinds.split(",") if k.strip()]
    if a.draw == "s11" and not kinds:
        ap.error("--draw s11: a restricted run (--kinds): the attack kinds that cannot act were not rerun")
    specs = select_kinds(plan(a.faces, a.per_type, a.genuine_per_variant, a.seed, a.seq_len, draw=a.draw,
                              edited=a.edited), kinds)
    if kinds and not specs:
        ap.error(f"--kinds: no session of the plan has kind or source {', '.join(kinds)}")
    if a.only:
        wanted = {k.strip() for k in a.only.split(",") if k.strip()}
        specs = [sp for sp in specs if sp.key in wanted]
        if missing := wanted - {sp.key for sp in specs}:
            ap.error(f"--only: not in the plan: {', '.join(sorted(missing))}")
    (a.cache_dir / f"{scoring_key()}-s{a.seed}").mkdir(parents=True, exist_ok=True)
    elapsed_before = 0.0
    state = a.cache_dir / f"{scoring_key()}-s{a.seed}" / "_elapsed.json"
    if state.is_file():
        elapsed_before = float(json.loads(state.read_text()).get("elapsed_s", 0.0))

    def summary_now(final: bool) -> None:
        rows, tight = load_cached(a.cache_dir, specs, a.seed)
        if a.only:  # a sample: one line per session, the README and results are the full run's
            shipped = pad_spec(settings.manifest_path).threshold
            for r in rows:
                steps_ = [f"{c['name']}:{'seen' if c['passed'] else 'MISSED'}({c['frames']}f)"
                          for c in r.get("challenge_results", [])]
                pad = r["pad"][shipped.fusion]
                pad_ok = pad is not None and pad >= shipped.value
                print(f"{r['name']:44s} active={r.get('decision')} {r.get('reject_reason') or ''} "
                      f"frames={r['frames']} {' '.join(steps_)} pad_{shipped.fusion}={pad or float('nan'):.3f} "
                      f"(shipped {shipped.value}: {'real' if pad_ok else 'SPOOF'}) both="
                      f"{'CONFIRMED' if pad_ok and not r.get('active_reject') else 'REJECT'}", flush=True)
            return
        cpu = sum(float(r.get("cpu_s") or 0) for r in rows)
        meta = {"dataset": str(a.faces), "engine": "dlib", "seed": a.seed, "per_type": a.per_type,
                "genuine_per_variant": a.genuine_per_variant, "planned_sessions": len(specs),
                "scored_sessions": len(rows), "elapsed_s": round(elapsed_before + time.time() - t_start, 1),
                "cpu_s_sessions": round(cpu, 1), "workers": a.workers,
                "load_avg": [round(x, 2) for x in os.getloadavg()], "complete": final, "kinds": kinds or "all"}
        if rows:
            shipped = pad_spec(settings.manifest_path).threshold
            write_sessions(a.sessions_out, rows, meta | {"date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
                                                         "machine": machine_info()}, shipped.value, shipped.fusion)
        if rows and not kinds:
            summarize(rows, tight, meta, a.fusion, a.write_manifest if final else None, settings)
        if rows and a.draw == "s11":
            main_run = json.loads((RESULTS / "pad.json").read_text())
            shipped = pad_spec(settings.manifest_path).threshold
            res = s11_summary(rows, main_run["sessions"], main_run, (shipped.value, shipped.fusion))
            meta_ = meta | {"date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine_info()}
            (RESULTS / "pad_s11.json").write_text(json.dumps(meta_ | res, indent=1, default=str) + "\n")
            update_readme("pad_s11", s11_readme(res, meta_))

    if a.summarize_only:
        summary_now(True)
        return 0
    reused = sum(reuse_unchanged(a.cache_dir, sp, a.seed) for sp in specs)
    if reused:
        print(f"{reused} sessions reused from the previous version (their capture is unchanged)", flush=True)
    todo = [sp for sp in specs if not cache_path(a.cache_dir, sp, a.seed).is_file()]
    print(f"{len(specs)} sessions planned, {len(specs) - len(todo)} cached, {len(todo)} to score", flush=True)
    if todo:
        engine = load_engine(settings, name="dlib")
        for name in CLIPS:  # the landmark index of each clip, once, before the pool starts
            ip = a.cache_dir / f"index-{name}-{CLIP_MAX_H}.pkl"
            if not ip.is_file():
                frames, fps = read_clip(a.faces / "video" / f"{name}.mp4", CLIP_MAX_H)
                ix = index_clip(engine, frames, fps)
                ip.write_bytes(pickle.dumps(ix))
                print(f"indexed {name}: {len(frames)} frames, blinks {len(ix.blink_frames())}, "
                      f"mouth {len(ix.mouth_frames())}", flush=True)
            lp = landmarks_file(a.cache_dir, name)
            if not lp.is_file():
                frames, _fps = read_clip(a.faces / "video" / f"{name}.mp4", CLIP_MAX_H)
                np.save(lp, clip_landmarks(engine, frames))
            for depth in (False, True):
                tp = turns_file(a.cache_dir, name, depth)
                if not tp.is_file():
                    frames, _fps = read_clip(a.faces / "video" / f"{name}.mp4", CLIP_MAX_H)
                    ix = dataclasses.replace(pickle.loads(ip.read_bytes()), landmarks=np.load(lp))
                    table = turn_table(engine, frames, ix, depth)
                    tp.write_text(json.dumps(table))
                    print(f"turn table{' (3d)' if depth else ''} {name}: {table}", flush=True)
        del engine
    def reusable(sp: Spec) -> Path | None:
        """The earlier scoring of ``sp`` whose PAD alone is re-scored (--pad-only-from), if any."""
        paced = sp.kind == "cued_replay" or (sp.kind == "bona_fide" and sp.source in ("video_acted", "slow", "late"))
        if a.pad_only_from is None or paced:
            return None
        p = a.pad_only_from / cache_path(a.cache_dir, sp, a.seed).name
        return p if p.is_file() else None

    deadline = t_start + 60 * a.budget_min
    done = 0
    stopped_early = False
    # spawn, not fork: a child forked after dlib/onnxruntime started their threads can deadlock
    with cf.ProcessPoolExecutor(a.workers, mp_context=mp.get_context("spawn"), initializer=_init_worker,
                                initargs=(a.faces, models, a.cache_dir, a.seed)) as ex:
        it = iter(todo)
        running: dict[cf.Future[list[dict[str, Any]]], Spec] = {}
        while True:
            while len(running) < 2 * a.workers and time.time() < deadline:
                sp = next(it, None)
                if sp is None:
                    break
                running[ex.submit(_run_spec, sp, reusable(sp))] = sp
            if not running:
                stopped_early = time.time() >= deadline and next(it, None) is not None
                break
            fin, _ = cf.wait(running, timeout=60, return_when=cf.FIRST_COMPLETED)
            for fu in fin:
                sp = running.pop(fu)
                out = fu.result()
                p = cache_path(a.cache_dir, sp, a.seed)
                tmp = p.with_suffix(".tmp")
                tmp.write_text(json.dumps(out))
                tmp.replace(p)  # whole files only: a run killed mid-write leaves no half session
                done += 1
                r = out[0]
                pads = [f["pad"] for f in r["frames"] if f["pad"] is not None]
                print(f"{done:4d}/{len(todo)} {sp.key:44s} {sp.split} cpu={r.get('cpu_s')}s "
                      f"pad_median={float(np.median(pads)) if pads else float('nan'):.3f}", flush=True)
                if done % a.summary_every == 0:
                    state.write_text(json.dumps({"elapsed_s": elapsed_before + time.time() - t_start}))
                    try:  # a summary bug must not stop the scoring (the cache keeps every session)
                        summary_now(False)
                    except Exception:  # logged, the run goes on
                        traceback.print_exc()
    state.write_text(json.dumps({"elapsed_s": elapsed_before + time.time() - t_start}))
    if stopped_early:
        print(f"budget of {a.budget_min} min reached: {done} scored this run; rerun to continue (cached)", flush=True)
    summary_now(not stopped_early and all(cache_path(a.cache_dir, sp, a.seed).is_file() for sp in specs))
    return 0


# -- the session-11 draw (restricted run, --draw s11) -------------------------------------------------------

S11_GROUPS = (("cued_replay", True), ("cued_edited", True), ("video_acted", False), ("slow", False),
              ("late", False))


def _group(r: dict[str, Any]) -> str:
    return str(r["name"]).split("/")[0]


def _clip(r: dict[str, Any]) -> str:
    return "crops" if r.get("source") == "crops" else str(r["name"]).split("/")[1]


def s11_summary(rows: Sequence[dict[str, Any]], old: Sequence[dict[str, Any]], two_fold: dict[str, Any],
                shipped: tuple[float, str]) -> dict[str, Any]:
    """The acted rows under production's session-11 draw (``rows``: derived sessions of a ``--draw s11`` run),
    judged like the main table: *active* = production's decision without PAD; *pad* / *both* at the main run's
    2-fold thresholds (``two_fold``: pad.json's fusion, threshold_A chosen on half A and applied to half B and
    vice versa; NOT recalibrated: the attack kinds that cannot act were not rerun) and at the ``shipped``
    (value, fusion). Per group (cued_replay, cued_edited, video_acted, slow, late; genuine = the three acted)
    and per clip. ``old``: the main run's derived sessions (pad.json), the same keys under the s10 draw, for the
    paired comparison."""
    fz, ta, tb = str(two_fold["fusion"]), float(two_fold["threshold_A"]), float(two_fold["threshold_B"])
    sv, sf = shipped

    def pad_2fold(r: dict[str, Any]) -> bool:
        v = r["pad"][fz]
        return bool(v is None or math.isnan(v) or v < (tb if r["split"] == "A" else ta))

    def pad_shipped(r: dict[str, Any]) -> bool:
        v = r["pad"][sf]
        return bool(v is None or math.isnan(v) or v < sv)

    judges: dict[str, Callable[[dict[str, Any]], bool]] = {
        "active": lambda r: bool(r["active_reject"]),
        "pad": pad_2fold, "both": lambda r: bool(r["active_reject"]) or pad_2fold(r),
        "pad_shipped": pad_shipped, "both_shipped": lambda r: bool(r["active_reject"]) or pad_shipped(r)}

    # the real live crops carry no challenge (the draw does not touch them): the main run's, for the floor set
    crops = [r for r in old if r["kind"] == "bona_fide" and r["source"] == "crops"]

    def table(rs: Sequence[dict[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        acted = [r for r in rs if r["kind"] == "bona_fide" and r["source"] != "crops"]
        for g, attack in (*S11_GROUPS, ("genuine", False), ("floor_set", False)):
            sel = [r for r in rs if _group(r) == g] if g not in ("genuine", "floor_set") else (
                acted if g == "genuine" else acted + crops)
            if not sel:
                continue
            out[g] = {"attack": attack, "n": len(sel)}
            for name, j in judges.items():
                out[g][name] = rate(sel, j, attack)
                out[g][name]["by_clip"] = {c: rate([r for r in sel if _clip(r) == c], j, attack)
                                           for c in (*CLIPS, "crops") if any(_clip(r) == c for r in sel)}
            reasons: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
            for r in sel:
                reasons[_clip(r)][str(r.get("reject_reason"))] += 1
            out[g]["active_outcome_by_clip"] = {c: dict(v) for c, v in reasons.items()}
        return out

    new = table(rows)
    keys = {r["name"] for r in rows}
    # the main run's sessions with the same keys (cued_edited has no s10 twin: its s10 twin is cued_replay's)
    old_same = [r for r in old if r["name"] in keys or r in crops]
    same_draw = [(r, o) for r in rows for o in old_same
                 if o["name"] == r["name"] and o["challenges"] == r["challenges"]]
    return {"groups": new, "old_draw_same_keys": table(old_same),
            "same_challenges_as_old": {
                "n": len(same_draw),
                "pad_identical": sum(1 for r, o in same_draw
                                     if abs(float(r["pad"]["median"]) - float(o["pad"]["median"])) < 1e-9),
                "decision_identical": sum(1 for r, o in same_draw if r.get("decision") == o.get("decision"))},
            "two_fold": {"fusion": fz, "threshold_A": ta, "threshold_B": tb}, "shipped": {"value": sv, "fusion": sf}}


def s11_readme(res: dict[str, Any], meta: dict[str, Any]) -> str:
    def clips(x: dict[str, Any]) -> str:
        return ", ".join(f"{c.split('_')[0]} {v['errors']}/{v['n']}" for c, v in x["by_clip"].items())

    g, old = res["groups"], res["old_draw_same_keys"]
    tf, sh = res["two_fold"], res["shipped"]
    part = "" if meta["complete"] else (f" PARTIAL RUN: {meta['scored_sessions']} of {meta['planned_sessions']} "
                                        "planned sessions scored (the plan is interleaved: balanced counts).")
    heads = [(k, "APCER" if g[k]["attack"] else "BPCER")
             for k in (*[k for k, _ in S11_GROUPS], "genuine", "floor_set") if k in g]
    lines = [
        "### Presentation attacks under the session-11 draw (`pad_eval.py --draw s11`)",
        "",
        f"Machine: {meta['machine'].get('nproc')} × {meta['machine'].get('cpu')} (shared, other helpers' e2e runs "
        f"alongside; load {meta['load_avg'][0]} at the end), {meta['date']}; {meta['elapsed_s']:.0f} s wall, "
        f"{meta['cpu_s_sessions']:.0f} s CPU over {meta['scored_sessions']} sessions, 2 niced workers.{part} "
        "The same plan, keys, halves and per-session draws as the table above (seed 12), but every acted session "
        "draws production's set since session 11 (`lifecert.domain.challenges.draw`: open_mouth + one head "
        "turn, random order; its optional third challenge is not modelled; `draw_challenges(mouth_always=True)`, "
        "caches g7/c7). Only the acted rows were rerun: prints, stills, plain replays and the real crops cannot act "
        "and are in the table above. PAD thresholds are NOT recalibrated: *pad* / *both* use the table above's "
        f"2-fold thresholds ({tf['fusion']}: {tf['threshold_A']} chosen on half A, applied to half B; "
        f"{tf['threshold_B']} chosen on half B, applied to half A); *shipped* = the manifest's {sh['value']} "
        f"({sh['fusion']}), what production decides. Brackets: exact 95 % Clopper–Pearson; marks as above.",
        "",
        "What is synthetic: everything in the table above, plus: **blink_7_times_1080p never opens its mouth** "
        "(MAR <= 0.16 over the clip), so its GENUINE sessions open it by `attacks.open_mouth` (a warp of the "
        "lower face and a drawn dark inner mouth; how wide, how long: `attacks.MouthAct`, ASSUMED; checked in "
        "`mouth_synth` below: it reads over the step's threshold and moves PAD by a few hundredths). "
        "talking_head_a acts open_mouth with its own speech frames, as before. *cued_replay*: the attacker's "
        "footage is found footage, NOT edited: blink_7's has no open mouth to cue, so every blink_7 cued replay "
        "misses open_mouth — footage without the action, not a detector gain. *cued_edited*: the blink_7 cued "
        "replays (same session numbers and draws as cued_replay's) with the attacker editing the SAME synthetic "
        "opening into his footage (`Spec.edited`): the honest ceiling for an attacker who edits footage.",
        "",
        "| protocol | " + " | ".join(f"{h} {k}" for k, h in heads) + " |",
        "|---|" + "---|" * len(heads),
    ]
    for name, label in (("active", "active"), ("pad", "pad (2-fold)"), ("both", "both (2-fold)"),
                        ("pad_shipped", f"pad (shipped {sh['value']})"), ("both_shipped", "both (shipped)")):
        cells = []
        for k, _h in heads:
            floor = FLOOR["cued_replay"] if g[k]["attack"] else (BPCER_FLOOR if k == "floor_set" else None)
            cells.append(cell(g[k][name], floor))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "*genuine* = the three acted rows (rerun); *floor_set* = those plus the 26 real live crops of the "
              "table above (no challenge: the draw does not touch them), the issue-12 BPCER set as above.", "",
              "Per clip (errors/n: attacks NOT rejected, genuine rejected; talking = talking_head_a, blink = "
              "blink_7_times_1080p):", ""]
    for k, _h in heads:
        lines.append(f"- *{k}*: " + "; ".join(f"{n} {clips(g[k][n])}" for n in ("active", "pad", "both",
                                                                                "both_shipped")))
        lines.append("  active outcome: " + "; ".join(
            f"{c.split('_')[0]}: " + ", ".join(f"{'passed' if r == 'None' else r} {n}" for r, n in sorted(v.items()))
            for c, v in g[k]["active_outcome_by_clip"].items()))
    lines += ["", "The SAME session keys under the draw before session 11 (the table above; per clip, errors/n):", ""]
    for k, _h in heads:
        if k in old:
            lines.append(f"- *{k}*: " + "; ".join(f"{n} {cell(old[k][n])} ({clips(old[k][n])})"
                                                 for n in ("active", "both", "both_shipped")))
    sd = res["same_challenges_as_old"]
    lines += ["", f"Check: {sd['n']} sessions drew the same challenges under both draws (talking_head_a sessions "
              f"that already had open_mouth); their PAD session median is identical in {sd['pad_identical']} and "
              f"production's decision in {sd['decision_identical']}."]
    return "\n".join(lines)


def _judge(rows: list[dict[str, Any]], fusion: str, thr: float) -> Callable[[dict[str, Any]], bool]:
    def pad_rej(r: dict[str, Any]) -> bool:
        v = r["pad"][fusion]
        return bool(math.isnan(v) or v < thr)
    return pad_rej


def summarize(rows: list[dict[str, Any]], tight_rows: list[dict[str, Any]], meta: dict[str, Any], fusion: str,
              write_manifest: str | None, settings: Settings) -> None:
    """Thresholds per half (2-fold), pooled rates with Clopper–Pearson intervals, cues, README, manifest."""
    half = {h: [r for r in rows if r["split"] == h] for h in ("A", "B")}
    if fusion == "auto":
        fusion, thr_a, cal_a = choose_fusion(half["A"])
    else:
        thr_a, cal_a = choose_threshold(half["A"], fusion)
    thr_b, cal_b = choose_threshold(half["B"], fusion)
    other = {"A": thr_b, "B": thr_a}  # each half judged by the threshold chosen on the other

    def pad_rej(r: dict[str, Any]) -> bool:
        v = r["pad"][fusion]
        return bool(math.isnan(v) or v < other[r["split"]])

    pad_rej_a = _judge(rows, fusion, thr_a)  # what --write-manifest half-a would write
    protocols: dict[str, Callable[[dict[str, Any]], bool]] = {
        "active": lambda r: bool(r["active_reject"]),
        "pad": pad_rej,
        "both": lambda r: bool(r["active_reject"]) or pad_rej(r),
    }
    kinds = [k for k in ATTACKS if any(r["kind"] == k for r in rows)]

    def table(sel_rows: list[dict[str, Any]], rej: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        return {
            "apcer": {k: rate([r for r in sel_rows if r["kind"] == k], rej, True) for k in kinds},
            "bpcer": {src: rate([r for r in sel_rows if r["kind"] == "bona_fide" and r["source"] == src], rej, False)
                      for src in GEN_SOURCES},
            "bpcer_floor_set": rate([r for r in sel_rows if r["kind"] == "bona_fide" and r["source"] != "tiny"], rej,
                                    False),
            "bpcer_acted": rate([r for r in sel_rows if r["kind"] == "bona_fide"
                                 and r["source"] in ("video_acted", "slow", "late")], rej, False),
        }

    summary = {proto: table(rows, rej) for proto, rej in protocols.items()}
    genuine_reasons: dict[str, dict[str, int]] = {}
    for r in rows:
        if r["kind"] == "bona_fide" and r.get("reject_reason"):
            d = genuine_reasons.setdefault(r["source"], {})
            d[r["reject_reason"]] = d.get(r["reject_reason"], 0) + 1
    fixed_windows_bpcer = rate([r for r in rows if r["kind"] == "bona_fide"
                                and r["source"] in ("video_acted", "slow", "late")],
                               lambda r: bool(r["fixed_windows"]["reject"]), False)
    prompt_before_settle = sum(1 for r in rows if r.get("prompt_before_settle"))
    framing_wait: dict[str, int] = {}
    for r in rows:
        if r.get("framing_wait_not_modelled"):
            framing_wait[r["kind"]] = framing_wait.get(r["kind"], 0) + 1
    manifest_half_b = table(half["B"], pad_rej_a)
    # What production decides TODAY: the shipped threshold and fusion (calibrated on other sessions, so every
    # session here is a fair test of it), PAD alone and with the active checks.
    shipped = pad_spec(settings.manifest_path).threshold
    ship_rej = _judge(rows, shipped.fusion, shipped.value)
    shipped_summary = {"threshold": shipped.value, "fusion": shipped.fusion, "pad": table(rows, ship_rej),
                       "both": table(rows, lambda r: bool(r["active_reject"]) or ship_rej(r))}
    by_clip: dict[str, list[int]] = {}  # genuine PAD rejections at the shipped threshold, per source clip
    for r in rows:
        if r["kind"] == "bona_fide" and r["source"] != "tiny":
            clip = r["name"].split("/")[1] if r["source"] in ("video_acted", "slow", "late") else "crops"
            n = by_clip.setdefault(clip, [0, 0])
            n[0] += int(ship_rej(r))
            n[1] += 1
    shipped_summary["pad_bpcer_by_clip"] = by_clip
    tight_summary = {
        "apcer": {k: rate([r for r in tight_rows if r["kind"] == k], pad_rej, True)
                  for k in ("print_nuaa", "replay_apfol")},
        "bpcer": rate([r for r in tight_rows if r["kind"] == "bona_fide"], pad_rej, False),
    }
    full_same = {
        "apcer": {k: v for k, v in summary["pad"]["apcer"].items() if k in ("print_nuaa", "replay_apfol")},
        "bpcer": summary["pad"]["bpcer"]["crops"],
    }
    today = dt.date.today().isoformat()
    load = meta["load_avg"]
    cues = cue_measurements(rows)
    report = {
        **meta, "manifest_sha256": manifest_sha256(settings.manifest_path),
        "machine": machine_info(), "date": today, "fps": FPS, "fps_passive": FPS_PASSIVE, "lead_in_ms": LEAD_IN_MS,
        "window_ms": WINDOW_MS, "fusion": fusion, "threshold_A": thr_a, "threshold_B": thr_b,
        "calibration_A": cal_a, "calibration_B": cal_b,
        "summary_2fold": summary, "manifest_threshold_on_half_B": manifest_half_b,
        "shipped_threshold": shipped_summary, "cues": cues,
        "genuine_active_reject_reasons": genuine_reasons, "fixed_windows_bpcer_acted": fixed_windows_bpcer,
        "prompt_before_settle": prompt_before_settle, "framing_wait_not_modelled": framing_wait,
        "tight_crops": {"summary_2fold": tight_summary, "same_sequences_in_full_frames": full_same,
                        "rows": tight_rows},
        "counts": {k: sum(1 for r in rows if r["kind"] == k) for k in (*kinds, "bona_fide")},
        "liveness_params": LivenessParams().__dict__,
        "sessions": [{k: v for k, v in r.items() if k != "cues"} | {"cues": r.get("cues")} for r in rows],
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "pad.json").write_text(json.dumps(report, indent=1, default=str) + "\n")

    part = "" if meta["complete"] else (f" PARTIAL RUN: {meta['scored_sessions']} of {meta['planned_sessions']} "
                                        "planned sessions scored when this table was written.")
    lines = [
        "## Presentation attacks (`benchmarks/pad_eval.py`)",
        "",
        f"Machine: {report['machine']['nproc']} × {report['machine']['cpu']} (shared; "
        f"load {load[0]:.1f} at the end), {today}; {meta['elapsed_s']:.0f} s wall, "
        f"{meta['cpu_s_sessions']:.0f} s CPU over {meta['scored_sessions']} sessions, {meta['workers']} niced worker "
        f"processes.{part} Full camera frames (480×640) through dlib detect + 68 landmarks, then PRODUCTION's decision "
        "recomputed from the cached per-frame results (*active*, `production_decision`): the settle step "
        "(`steps.settle`, a steady face) gives the baseline, each challenge is judged by `steps.judge_challenge` "
        f"from its prompt over CHALLENGE_WINDOW_MS ({steps.CHALLENGE_WINDOW_MS // 1000} s, cut at the next prompt; "
        f"frames from MIN_REACTION_MS = {steps.MIN_REACTION_MS} ms after it), the first missed challenge ends the "
        "session, then paced.py's final decision (`steps.passive_liveness`: still / homography residual OR nose "
        "parallax / track breaks, too few usable frames, `rules.decide`). Acted sessions (genuine and cued "
        "replays) are captured as production paces them (`pace`): each step at its `steps.capture_fps` rate "
        f"({pace_rates()}), judged per {steps.CHUNK_MS} ms chunk by the same `production_decision`; the first "
        "prompt comes after the chunk in which the settle step was seen, each next one PROMPT_DELAY_MS "
        f"({steps.PROMPT_DELAY_MS[0]}–{steps.PROMPT_DELAY_MS[1]} ms, drawn per session) after the chunk in which "
        "the previous step was seen; a step not seen yet keeps being captured until its window runs out "
        "(8 s, + 3 s once production's "
        "first action hint for it came: `first_action_hint`), which ends the session; the capture stops once the "
        "last step was seen. The synthetic user acts each prompt once and, since g6/c6, once more after HEARING "
        "the step's first action hint (`attacks.Actor.hint`: the answer to the chunk that carried it, plus the "
        "time the page takes to say it at an ASSUMED speech rate, plus the person's own reaction delay; TURN_MORE: "
        "the turn again, as far as a real 40° turn reads on that clip; DO_ACTION: the same turn again; "
        "BLINK_FIRMLY / OPEN_WIDER: another of the clip's own blink / mouth frames; LOOK_BACK: nothing new); the "
        "cued-replay attacker hears the same hint and re-cues likewise with his own cue delay. Otherwise the "
        "clip simply plays on: whatever the real footage does later (its own blinks, talking, small head "
        "motion) is captured as filmed. Prints, stills "
        f"and plain replays {FPS_PASSIVE} fps over 7 s. *pad*: MiniFASNet V2+V1SE on the full frame with dlib's box, "
        "on the frames production scores "
        f"(`steps.pad_pick`: {steps.PAD_FRAMES_PER_CHUNK} per {steps.CHUNK_MS} ms chunk), session {fusion} of "
        "P(real) below the threshold; *both* = either rejects.",
        "",
        "Statistics: 2-fold — the PAD threshold is chosen on half A (even session numbers, NUAA subjects 1–4, first "
        f"half of apfol; → {thr_a}) and on half B (→ {thr_b}) with the same rule (calibration BPCER ≤ 2 % on the "
        "genuine sessions, minimise the worst APCER over print/still/replay/cued_replay), and **every session is "
        "judged by the threshold chosen on the other half**, so the counts below use every session. Brackets: exact "
        "95 % Clopper–Pearson interval. ✓ = the rate is under the issue-12 floor (≤ 1 % print/still, ≤ 5 % "
        f"replay, BPCER ≤ 3 %) on n ≥ {FLOOR_MIN_N} sessions (read the interval too), ~ = under it on fewer than "
        f"{FLOOR_MIN_N} (not demonstrated), ✗ = over it. "
        "APCER = attacks not rejected, BPCER = genuine rejected (ISO/IEC 30107-3). The sessions of a kind are "
        "distinct syntheses but share two source clips (genuine, replays) or one photo pool (prints, stills): "
        "the intervals are about presentations, not about a population of people.",
        "",
        "What is real and what is synthetic (benchmarks/attacks.py): *print* = a photo (one per session, no repeats, "
        "from one photo per LFW person, photos/ and the NUAA real subjects) printed on curled paper with white "
        "margins, tilted back and forth in front of a procedural room; *still* = such a photo on a phone screen; "
        "*replay* = one of the two real clips playing on a phone screen (bezel, glare, sub-pixel moiré, tilt, hand "
        "tremor), not cued; *cued_replay* = the clip ACTING the drawn challenges (blink/mouth cued from its own "
        "frames, turns by the depth-aware attacks.turn_head_3d since c4) on the phone, cued with a 0.8–1.5 s "
        "reaction. All four are SYNTHETIC. "
        "*print_nuaa* (every NUAA print session) and *replay_apfol* (apfol screen replays) are REAL attack captures, "
        "but only as tight crops whose full frame is synthesised by stretching their border. Genuine: the two REAL "
        "clips acting the challenges straight to the camera (*video_acted* 0.6–1.2 s reaction, *slow* 1.8–2.8 s, "
        "*late* face enters 1.5–3 s late; turns are synthetic renders of real frames, attacks.turn_head_3d), "
        "NUAA/apfol REAL live crops in full frames "
        "(*crops*, passive checks only), the 96×128 clip (*tiny*, outside the floor). Every synthetic session draws "
        "its own phone/paper, room, camera (defocus, noise, JPEG 70–92, exposure 0.6–1.15) and framing. Genuine "
        f"users hold the phone as the page asks: the face box {GENUINE_FACE_FRAC[0]:.2f}–{GENUINE_FACE_FRAC[1]:.2f} "
        "of the frame width (the page's oval is 0.70; above 0.72 it says `MOVE_BACK` and the settle step waits "
        f"up to {steps.SETTLE_FRAMING_WAIT_MS // 1000} s for it); talking_head_a's own 512×512 frame puts its face "
        "at 0.80, so its frames are shrunk and the surroundings the clip does not have are its border stretched "
        "and blurred (`attacks.extend_frame`, as the real crops get) — synthetic context. The previous run "
        "(commit 5376b99, the clip as filmed at 0.77–0.93 of the width, i.e. users ignoring `MOVE_BACK` for "
        "the whole session) lost 21 of 54 talking_head_a sessions to PAD at the shipped threshold.",
        "",
        "| protocol | " + " | ".join(f"APCER {k}" for k in kinds) + " | BPCER genuine (floor set) | "
        + " | ".join(f"BPCER {s}" for s in GEN_SOURCES) + " |",
        "|---|" + "---|" * (len(kinds) + 1 + len(GEN_SOURCES)),
    ]
    for proto in protocols:
        s = summary[proto]
        lines.append(
            f"| {proto} | " + " | ".join(cell(s["apcer"][k], FLOOR[k]) for k in kinds)
            + f" | {cell(s['bpcer_floor_set'], BPCER_FLOOR)} | "
            + " | ".join(cell(s["bpcer"][src]) for src in GEN_SOURCES) + " |"
        )
    mb = manifest_half_b

    def reasons(src: str) -> str:
        d = genuine_reasons.get(src, {})
        return ", ".join(f"{k} {v}" for k, v in sorted(d.items(), key=lambda kv: -kv[1])) or "none"

    lines += [
        "",
        "Genuine sessions rejected by *active* (production decision), by reason: "
        + "; ".join(f"*{src}*: {reasons(src)}" for src in GEN_SOURCES)
        + f". Session 2's fixed-window judgement (`analyze_liveness`) on the same acted sessions: BPCER "
        f"{cell(fixed_windows_bpcer)}. Sessions whose settle step ended after the first prompt (the v2 'late' "
        f"synthesis prompted before the face was in view; production would prompt later): {prompt_before_settle}. "
        "Sessions whose face was too close for the settle "
        f"step's framing wait (production would have waited up to {steps.SETTLE_FRAMING_WAIT_MS // 1000} s and "
        "prompted later; judged with the baseline taken after the wait, never rejected for it): "
        + (", ".join(f"{k} {v}" for k, v in sorted(framing_wait.items())) or "none") + ".",
        "",
        f"Half A's threshold ({thr_a}, what `--write-manifest half-a` would write) on half B alone: PAD APCER "
        + ", ".join(f"{k} {cell(v, FLOOR[k])}" for k, v in mb["apcer"].items())
        + f"; BPCER floor set {cell(mb['bpcer_floor_set'], BPCER_FLOOR)}.",
        "",
        f"The SHIPPED threshold ({report['shipped_threshold']['threshold']}, session "
        f"{report['shipped_threshold']['fusion']} of P(real); models/manifest.toml, calibrated in session 1 on other "
        "sessions, so every session here tests it), what production decides today — PAD alone: "
        + ", ".join(f"{k} {cell(v, FLOOR[k])}" for k, v in report["shipped_threshold"]["pad"]["apcer"].items())
        + f"; BPCER {cell(report['shipped_threshold']['pad']['bpcer_floor_set'], BPCER_FLOOR)}. With the active "
        "checks (both): "
        + ", ".join(f"{k} {cell(v, FLOOR[k])}" for k, v in report["shipped_threshold"]["both"]["apcer"].items())
        + f"; BPCER {cell(report['shipped_threshold']['both']['bpcer_floor_set'], BPCER_FLOOR)}. Genuine sessions "
        "PAD rejects at the shipped threshold, per source: "
        + ", ".join(f"{k} {v[0]}/{v[1]}" for k, v in report["shipped_threshold"]["pad_bpcer_by_clip"].items())
        + ".",
        "",
        "Reading the table: *print_nuaa*, *replay_apfol* and the genuine *crops* carry no challenge (their "
        "subjects were asked nothing), so *active* there is the passive checks alone. Genuine turns are synthetic "
        "3D renders of real footage (attacks.turn_head_3d since g4: an anthropometric head with the nose "
        "standing out of it, validated by benchmarks/turn_synth.py) calibrated to read like a real 20–40° turn "
        "(0.015 yaw_ratio per degree, measured on "
        "../shared/faces photos and pose/; the warp's effect measured per clip with the face at "
        f"{TABLE_FACE_FRAC:.2f} of the frame width; the clip is mirrored when the warp cannot reach the asked side); "
        "blinks are the clips' own at production's capture rate. *active* failures of acted clips are therefore "
        "partly synthesis, not a "
        "person; the browser tests with real pacing are the other measure of active BPCER. Synthetic attacks "
        "are easier than real ones.",
        "",
        f"Tight crops (the files of faces/spoof as they are, no context; 2-fold thresholds): BPCER "
        f"{cell(tight_summary['bpcer'])}, APCER print_nuaa {cell(tight_summary['apcer']['print_nuaa'])}, replay_apfol "
        f"{cell(tight_summary['apcer']['replay_apfol'])} — against BPCER {cell(full_same['bpcer'])} and APCER "
        + ", ".join(f"{k} {cell(v)}" for k, v in full_same["apcer"].items())
        + " for the same crops in full frames. A tight crop collapses both context crops (2.7× and 4.0×) onto the "
        "face itself.",
        "",
        "Spoof cues (`lifecert/engine/spoof_cues.py`), AUC = P(attack value > genuine value) per session "
        "(0.5 = no separation). *real* columns: NUAA/apfol captures (only the face-region cues, moiré and "
        "specular, mean anything there: their context is synthesised); *synthetic* columns: the full-frame attacks "
        "against the genuine acted clips — they separate partly because attacks.py drew what the cue looks for.",
        "",
        "| cue | real print_nuaa | real replay_apfol | synthetic print | synthetic replay | synthetic still | "
        "synthetic cued_replay |",
        "|---|---|---|---|---|---|---|",
    ]

    def a3(v: float | None) -> str:
        return "—" if v is None else f"{v:.2f}"

    for cue in ("moire", "specular", "enclosure", "rigid_enclosure"):
        c = cues[cue]
        lines.append(f"| {cue} | {a3(c['real_print_nuaa'])} | {a3(c['real_replay_apfol'])} | "
                     f"{a3(c['synthetic_print'])} | {a3(c['synthetic_replay'])} | {a3(c['synthetic_still'])} | "
                     f"{a3(c['synthetic_cued_replay'])} |")
    fl = cues["flat_residual"]
    lines += [
        "",
        "Flat-photo test as the engine runs it (homography residual, cut-off "
        f"{LivenessParams().flat_residual}): sessions where it decided / all, residual min · 10 % · median · 90 % · "
        "max: "
        + "; ".join(f"{k} {v['decided']}/{v['sequences']} {v['residual_quantiles']}" for k, v in fl.items()) + ".",
    ]
    update_readme("pad", "\n".join(lines))
    print("\n".join(lines[-12:]), flush=True)
    if write_manifest == "half-a":
        write_manifest_threshold(
            settings.manifest_path or REPO_MANIFEST, thr_a, fusion, mb["apcer"], mb["bpcer_floor_set"]["rate"],
            f"benchmarks/pad_eval.py half A ({meta['scored_sessions']} sessions in all): ../shared/faces clips acted + "
            "synthetic screen/paper attacks; NUAA and apfol crops in full frames", today,
        )
        print(f"wrote threshold {thr_a} to the manifest", flush=True)
    elif write_manifest == "shipped":
        sp = shipped_summary["pad"]
        write_manifest_threshold(
            settings.manifest_path or REPO_MANIFEST, shipped.value, shipped.fusion, sp["apcer"],
            sp["bpcer_floor_set"]["rate"],
            f"benchmarks/pad_eval.py, all {meta['scored_sessions']} sessions: ../shared/faces clips acted (framed as "
            "the page asks) + synthetic screen/paper attacks; NUAA and apfol crops in full frames", today, SHIPPED_NOTE,
        )
        print(f"wrote the shipped threshold's measured rates ({shipped.value}) to the manifest", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
