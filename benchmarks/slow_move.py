"""Does a pensioner who MOVES slowly, or not far, pass the paced turn, nod and mouth steps? Simulated, real service.

    python benchmarks/slow_move.py [--seeds 2]      # ~10 min on one busy core; writes results + README section

As benchmarks/hint_recovery.py (its session walk ``turn_phone``, its bench ``turn_bench``): the paced service
in-process (SQLite, the real dlib engine, tests/paced_client's SimClock, a virtual server clock), real frames of
``video/talking_head_a.mp4`` at 8 fps, challenges fixed to ``turn_left,blink``, ``turn_right,blink``, ``nod,blink``
or ``open_mouth,nod`` (:data:`FIXED`; the asked one is step 1). The clip holds no head turn or nod, so its calm frames
are turned (yaw) or tilted down (pitch) by benchmarks.attacks.turn_head (a 2D cylinder warp; the table ``amplitude``
says what yaw / pitch ratio change the engine reads at each warp angle). A mouth cannot be warped open: a slow
opening is made of REAL frames of the clip's talk (its 25 fps video) whose mouth aspect ratio follows the same eased
curve (:class:`Warper`), the face moving a little between them.

Per session the person makes ONE movement (the ``retry`` modes: two, below): it starts ``react`` ms after the
prompt, eases out (half-cosine) to ``peak`` degrees over ``out`` ms, holds ``hold`` ms and eases back over ``back``
ms to rest (:func:`pose_curve`). Profiles (out, hold, back, ms): 600/600/600 (tests/e2e/fake_camera's POSE_RAMP_MS /
POSE_HOLD_MS: every actor so far), 1200/800/1200, 2000/1000/2000 and 2500/1500/2500 (a stiff neck: cervical
spondylosis is common over 70; these durations are ASSUMED, no footage of elderly users was measured). She does not
react to the action hints the server sends during a movement (she is still moving; the hints' own effect, a longer
window, is what is measured).

People (``--modes``):

- *appeared*: she moves ``react`` (2700) ms after the prompt APPEARED; the page reports nothing (a page without
  a voice, or an older one), so production's strictest windows apply: CHALLENGE_WINDOW_MS, +HINT_EXTRA_WINDOW_MS
  once an action hint was given (steps.hint_window rule ``fixed``);
- *heard*: she moves ``react`` ms after the phone has finished SAYING the prompt (espeak-ng's voiced length of
  the zh prompt at the page's rate, results/hint_speech.json: turn_left 6.1 s, nod 3.6 s); the page reports the
  prompt's and the newest action hint's hearing as mobile-web/app.js does (benchmarks/hint_heard.PageReports /
  PageVoice, page ``both``), so steps.prompt_window, the ``awaiting`` and ``heard`` rules apply;
- *retry*: "not far" first: ``react`` ms after the prompt appeared she turns (nods) at the same pace only to
  ``--small-peak`` (``--small-nod-peak``) degrees, under the threshold; ``react`` ms after the first action hint
  reached the phone (read: the page reports nothing), and not before that try ended, she makes the full movement;
- *retry_heard*: the same on the page that reports hearings, the full movement ``react`` ms after the first action
  hint was heard SAID (PageVoice; the prompt is said first, in espeak-ng's time): the READER;
- *listener*: the slow LISTENER (hint_heard --first-from heard, small first try) who is also a slow mover: her
  too-small try ``react`` ms after the prompt was SAID; her full one ``react`` ms after she heard a hint asking for
  MORE (:data:`MORE_HINTS`) said, once the first try has ended.

A try is never cut off by the next (:func:`then_show`). ``--prompt-speech`` sets how long the page takes to say the
prompt (default: espeak-ng's time per challenge) for the modes whose page reports hearings.

Reported per cell (challenge, profile, peak, server lag): seen / sessions, when the movement counted (the first
frame back under the "back" bound after passing the threshold, ms after the prompt; server clock), the step's
window and the rule that set it, and for each miss WHY: the rule that ended the step and by how many ms (the
frames read by the engine as the server stored them; a frame never sent is read the same way from the frame the
phone would have sent). Synthetic: the movement (a 2D warp; real heads have parallax this lacks), its timing, the
speech times (espeak-ng, not a phone's voice), the network. Real: the face frames, the dlib engine, the service's
rules and clock mapping.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray
from sqlalchemy import select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._common import int_list, machine, now, publish, update_readme_section  # noqa: E402
from benchmarks.attacks import REAL_YAW_RATIO_PER_DEG as REAL  # noqa: E402
from benchmarks.attacks import turn_head  # noqa: E402
from benchmarks.hint_heard import PageReports, step_answers  # noqa: E402
from benchmarks.hint_recovery import TurnBench, turn_bench, turn_phone  # noqa: E402
from lifecert.engine import geometry  # noqa: E402
from lifecert.engine.base import FaceEngine  # noqa: E402
from lifecert.engine.image import encode_jpeg  # noqa: E402
from lifecert.engine.liveness import LivenessParams  # noqa: E402
from lifecert.services.verification import steps  # noqa: E402
from lifecert.storage.models_verification import VerificationChunk, VerificationSession  # noqa: E402
from tests.paced_client import FRAME_MS, Clip, Phone, VirtualTime  # noqa: E402

PROFILES = "600/600/600,1200/800/1200,2000/1000/2000,2500/1500/2500"
SPEECH_JSON = ROOT / "benchmarks" / "results" / "hint_speech.json"
P = LivenessParams()


def pose_curve(out_ms: int, hold_ms: int, back_ms: int, frame_ms: int = FRAME_MS) -> list[float]:
    """The movement's fraction of its peak at each camera frame (``frame_ms`` apart): a half-cosine ease out over
    ``out_ms``, held ``hold_ms``, a half-cosine ease back over ``back_ms``; the last frame is at rest (0.0)."""
    n_out, n_hold, n_back = max(1, round(out_ms / frame_ms)), max(0, round(hold_ms / frame_ms)), \
        max(1, round(back_ms / frame_ms))
    up = [0.5 - 0.5 * math.cos(math.pi * (k + 1) / n_out) for k in range(n_out)]
    down = [0.5 + 0.5 * math.cos(math.pi * (k + 1) / n_back) for k in range(n_back)]
    return up + [1.0] * n_hold + down


def speech_ms() -> dict[str, int]:
    """ms the page's voice takes per hint code and per prompt (challenge name): espeak-ng's voiced length at the
    page's rate, measured by benchmarks/hint_speech.py (not a phone's voice)."""
    rows = json.loads(SPEECH_JSON.read_text(encoding="utf-8"))["rows"]
    return {r["code"]: int(r["rate_085_voiced_ms"]) for r in rows}


# (JPEG, yaw ratio, pitch ratio, inner-lip MAR) of one frame as the engine reads it
Reading = tuple[bytes, float, float, float]


def value_of(challenge: str, r: Reading) -> float:
    """The raw signal ``challenge`` is judged on, signed so that the asked action makes it grow: the yaw ratio
    (turn_right: its negative), the pitch ratio (down), the inner-lip mouth aspect ratio."""
    return {"turn_left": r[1], "turn_right": -r[1], "nod": r[2], "open_mouth": r[3]}[challenge]


def read(engine: FaceEngine, img: NDArray[np.uint8]) -> Reading:
    """``img`` (BGR) as JPEG at quality 85 and the engine's signals on it (NaN without a face)."""
    faces = engine.detect(img)
    lm = faces[0].landmarks68 if faces else None
    nan = float("nan")
    return (encode_jpeg(img, 85), nan if lm is None else geometry.yaw_ratio(lm),
            nan if lm is None else geometry.pitch_ratio(lm), nan if lm is None else geometry.mouth_aspect_ratio(lm))


def mouth_pool(engine: FaceEngine, video: list[NDArray[np.uint8]]) -> list[Reading]:
    """Every frame of the clip's video (25 fps) with a face and the eyes open (EAR >= 0.85 x its 75th percentile,
    as tests.paced_client.talking_head_clip's calm run), read by the engine: the REAL mouth openings a slow one is
    made of (:meth:`Warper.frame`). The clip's talking holds openings from closed to MAR ~0.45-0.54."""
    ears = []
    for img in video:
        faces = engine.detect(img)
        lm = faces[0].landmarks68 if faces else None
        ears.append(float("nan") if lm is None else geometry.eye_aspect_ratio(lm))
    open_eye = 0.85 * float(np.nanpercentile(ears, 75))
    return [read(engine, img) for img, e in zip(video, ears, strict=True) if not np.isnan(e) and e >= open_eye]


@dataclass
class Warper:
    """The poses a movement is made of, as the engine reads them, cached. Turns and nods: the clip's calm frames
    turned (yaw, degrees; turn_right the other way) or tilted down (pitch) by turn_head, per (calm frame, angle in
    half degrees). open_mouth: REAL frames of the clip's video (``mouths``, :func:`mouth_pool`) whose MAR is
    nearest the movement's point between the calm frames' median MAR and ``peak`` / 100 (a mouth opening cannot
    be warped; these frames come from different moments of the talk, so the face moves a little between them)."""

    clip: Clip
    engine: FaceEngine
    mouths: list[Reading] = field(default_factory=list)
    cache: dict[tuple[int, int, int], Reading] = field(default_factory=dict)

    def frame(self, k: int, yaw: float = 0.0, pitch: float = 0.0) -> Reading:
        key = (k % len(self.clip.neutral), round(yaw * 2), round(pitch * 2))
        if key not in self.cache:
            img = cv2.imdecode(np.frombuffer(self.clip.neutral[key[0]], np.uint8), cv2.IMREAD_COLOR)
            box = self.engine.detect(img)[0].box
            out = turn_head(img, box, yaw_deg=key[1] / 2, pitch_deg=key[2] / 2) if key[1] or key[2] else img
            self.cache[key] = read(self.engine, out)
        return self.cache[key]

    @cached_property
    def rest_mar(self) -> float:
        """The calm frames' median MAR (a mouth opening starts there)."""
        return float(np.nanmedian([self.frame(k)[3] for k in range(len(self.clip.neutral))]))

    def mouth(self, k: int, f: float, peak: float) -> Reading:
        """Frame ``k`` of a mouth opening at ``f`` (0..1) of the way to MAR ``peak`` / 100: calm frame ``k`` at
        rest, else one of the real frames within 0.015 of the target MAR (taken in turn by ``k``), else the
        nearest one."""
        rest = self.rest_mar
        target = rest + f * (peak / 100 - rest)
        if not self.mouths:
            raise ValueError("open_mouth needs the mouth frames (mouth_pool)")
        if target <= rest + 0.01:
            return self.frame(k)
        near = sorted(self.mouths, key=lambda r: abs(r[3] - target))
        close = [r for r in near if abs(r[3] - target) <= 0.015] or near[:1]
        return close[k % len(close)]

    def change(self, challenge: str, deg: float, n: int = 8) -> float:
        """Median change of the signal ``challenge`` is judged on (:func:`value_of`) over ``n`` calm frames posed
        at ``deg`` (open_mouth: MAR x 100) against the same frames at rest."""
        return float(np.nanmedian([value_of(challenge, self._pose(challenge, k, deg, 1.0))
                                   - value_of(challenge, self.frame(k)) for k in range(n)]))

    def _pose(self, challenge: str, k: int, peak: float, f: float) -> Reading:
        if challenge == "open_mouth":
            return self.mouth(k, f, peak)
        if challenge == "nod":
            return self.frame(k, pitch=peak * f)
        return self.frame(k, yaw=(peak if challenge == "turn_left" else -peak) * f)

    def movement(self, challenge: str, curve: list[float], peak: float) -> list[tuple[bytes, float]]:
        """(JPEG, the judged signal's raw value, :func:`value_of`) per frame of a movement to ``peak`` degrees
        (open_mouth: MAR x 100) along ``curve``."""
        return [(r[0], value_of(challenge, r)) for r in
                (self._pose(challenge, k, peak, f) for k, f in enumerate(curve))]


def rule_of(challenge: str, base_mar: float = 0.0) -> tuple[float, float | None]:
    """(threshold, back bound) of the challenge's detector (liveness.detect_turn / detect_nod; detect_open_mouth:
    MAR past max(mouth_open_abs, ``base_mar`` + mouth_open_delta), no way back asked: None)."""
    if challenge in ("turn_left", "turn_right"):
        return P.turn_yaw, P.turn_back * P.turn_yaw
    if challenge == "open_mouth":
        return max(P.mouth_open_abs, base_mar + P.mouth_open_delta), None
    return P.nod_pitch, P.nod_pitch / 2


def counted_at(ts: list[int], vals: list[float], thr: float, back: float | None) -> tuple[int | None, int | None]:
    """(first time past ``thr``, first later time under ``back``) of a signal (liveness.detect_turn's rule: a peak
    past the threshold, then a frame back toward rest; ``back`` None: counted at the crossing, the open mouth);
    None where it never happens."""
    crossed = next((t for t, v in zip(ts, vals, strict=True) if v > thr), None)
    if crossed is None or back is None:
        return crossed, crossed
    return crossed, next((t for t, v in zip(ts, vals, strict=True) if t > crossed and v < back), None)


def then_show(phone: Phone, frames: list[bytes], at: int) -> None:
    """Script ``frames`` from the first camera frame at or after client ms ``at``, AFTER the frames still scripted
    (a try under way is finished, not cut off), calm frames of the clip in between. The phone shows a scripted
    frame at each tick from ``script_at`` on (tests.paced_client.Phone.tick), every FRAME_MS (8 fps: a turn, nod or
    mouth step)."""
    tick = -(-at // FRAME_MS) * FRAME_MS
    if not phone.script:
        phone.script, phone.script_at = list(frames), tick
        return
    next_tick = max(phone.t, -(-phone.script_at // FRAME_MS) * FRAME_MS)  # when the next scripted frame shows
    free = next_tick + len(phone.script) * FRAME_MS
    calm = phone.clip.neutral
    gap = [calm[k % len(calm)] for k in range(max(0, (tick - free) // FRAME_MS))]
    phone.script = [*phone.script, *gap, *frames]


# the modes (see the module docstring): the page's reports, and whether her first try is too small
PAGE = {"appeared": "none", "heard": "both", "retry": "none", "retry_heard": "both", "listener": "both"}
TWO_TRIES = frozenset({"retry", "retry_heard", "listener"})  # a too-small try first, the full one after a hint
FROM_SAID = frozenset({"heard", "listener"})  # her first try waits until the prompt was SAID
RETRY_HINTS = frozenset({"TURN_MORE", "LOOK_BACK", "DO_ACTION", "NOD_MORE", "LOOK_UP", "OPEN_WIDER"})
# the listener tries fully only once told to do MORE (as hint_heard --first-from heard's small first try); the
# prompt said again (DO_ACTION) makes her do what she did
MORE_HINTS = frozenset({"TURN_MORE", "NOD_MORE", "OPEN_WIDER"})
# the session's fixed challenges per asked one (step 1 is the asked one; the policy wants a head motion and a
# non-rigid action)
FIXED = {"turn_left": "turn_left,blink", "turn_right": "turn_right,blink", "nod": "nod,blink",
         "open_mouth": "open_mouth,nod"}


def one(b: TurnBench, warp: Warper, seed: int, challenge: str, profile: tuple[int, int, int], peak: float,
        lag: int, mode: str, react: int, speech: dict[str, int], small_peak: float = 0.0,
        prompt_speech: int | None = None) -> dict[str, Any]:
    """One session: the person moves once, or (:data:`TWO_TRIES` modes) first to ``small_peak`` and then fully after
    the first action hint (see the module docstring); the challenge step's outcome and why. ``prompt_speech``: ms
    the page takes to say the prompt (None: espeak-ng's time for ``challenge``, ``speech``)."""
    clock = VirtualTime()
    svc = b.service(clock, seed)
    rep = PageReports(PAGE[mode])
    phone = turn_phone(svc, clock, b.who, b.clip, lag, "10.9.9.7", heard=rep.heard, prompt_heard=rep.prompt_heard,
                       challenge=challenge)
    if phone is None:
        return {"outcome": "no_step"}
    prompt = phone.prompt_at
    said = (speech[challenge] if prompt_speech is None else prompt_speech) if PAGE[mode] == "both" else 0
    lengths = {c: speech.get(c, said) for c in steps.ACTION_HINT_CODES} | {"DO_ACTION": said}
    voice = rep.start(prompt, said, lengths)
    retry = mode in TWO_TRIES
    curve = pose_curve(*profile)
    move = warp.movement(challenge, curve, peak)
    start = prompt + (said if mode in FROM_SAID else 0) + react
    first = warp.movement(challenge, curve, small_peak) if retry else move
    phone.script, phone.script_at = [f for f, _ in first], start
    first_end = -(-start // FRAME_MS) * FRAME_MS + len(first) * FRAME_MS
    full_at: int | None = None if retry else start
    codes: list[tuple[str, int]] = []
    cue_code = ""
    for code, spoke in step_answers(phone, rep, voice, lambda hints: steps.action_in(hints) or ""):
        if code and (not codes or codes[-1][0] != code):
            codes.append((code, phone.t - prompt))
        # the full try: `react` after the first action hint reached her (read on a page that reports nothing, heard
        # said on one that reports hearings), once her first try has ended
        cues = MORE_HINTS if mode == "listener" else RETRY_HINTS
        cue = phone.t if PAGE[mode] == "none" and code in cues else (
            spoke[1] if spoke is not None and code in cues else None)
        if retry and full_at is None and cue is not None:
            full_at, cue_code = max(cue + react, first_end), code
            then_show(phone, [f for f, _ in move], full_at)
    first_ms = -(-start // FRAME_MS) * FRAME_MS  # client ms of her first try's first frame
    start = full_at if full_at is not None else start
    if full_at is None:
        move = first
    seen = phone.step.index == 2
    with b.ctx.db.session() as s:
        vs = s.get(VerificationSession, phone.session_id)
        assert vs is not None
        st, offset, base = dict(vs.steps[1]), int(vs.clock_offset_ms or 0), dict(vs.baseline or {})
        rows = s.scalars(select(VerificationChunk.observations).where(
            VerificationChunk.session_id == vs.id, VerificationChunk.step == 1).order_by(VerificationChunk.seq))
        obs = [steps.Obs.from_json(d) for r in rows for d in r]
    reveal = int(st["reveal_ms"])
    rel = offset - reveal  # client ms -> ms after the prompt (server clock)
    # her signal against her own settle baseline (a mouth: its MAR itself, judged against a bound of the baseline)
    ref = {"turn_left": float(base["yaw"]), "turn_right": -float(base["yaw"]), "nod": float(base["pitch"]),
           "open_mouth": 0.0}[challenge]
    sig = {"turn_left": geometry.yaw_ratio, "turn_right": lambda lm: -geometry.yaw_ratio(lm),
           "nod": geometry.pitch_ratio, "open_mouth": geometry.mouth_aspect_ratio}[challenge]
    stored = [(o.t_ms + rel, sig(o.landmarks) - ref) for o in obs if o.landmarks is not None]
    thr, back = rule_of(challenge, float(base.get("mar", 0.0)))
    c_ms, b_ms = counted_at([t for t, _ in stored], [v for _, v in stored], thr, back)
    # the whole movement as the phone would send it (frame k at the first tick >= start, then every FRAME_MS)
    first_tick = -(-start // FRAME_MS) * FRAME_MS
    planned = [(first_tick + k * FRAME_MS + rel, v - ref) for k, (_, v) in enumerate(move)]
    pc_ms, pb_ms = counted_at([t for t, _ in planned], [v for _, v in planned], thr, back)
    hint = st.get("hint") or {}
    window = int(st["window_ms"])
    last = max(t for t, _ in stored) if stored else None
    out: dict[str, Any] = {
        "outcome": "seen" if seen else "missed", "window_ms": window,
        "rule": "under_way" if st.get("held_ms") else (
            hint.get("rule") or (st.get("prompt_heard") or {}).get("rule") or "base"),
        "held_ms": st.get("held_ms"),
        "prompt_window_ms": (st.get("prompt_heard") or {}).get("window_ms"),
        "prompt_said_ms": said or None,
        "move_start_ms": first_tick + rel, "move_end_ms": first_tick + rel + (len(move) - 1) * FRAME_MS,
        "first_try_ms": first_ms + rel if retry else None, "full_try": full_at is not None,
        "full_after": cue_code or None,
        "peak_change": round(max(v for _, v in planned), 4), "crossed_ms": c_ms, "back_ms": b_ms,
        "threshold": round(thr, 4), "last_frame_ms": last, "hints": codes,
    }
    if not seen:
        out["why"] = why(challenge, window, out["rule"], last, pc_ms, pb_ms, max(v for _, v in planned), thr, back)
    return out


def why(challenge: str, window: int, rule: str, last: int | None, crossed: int | None, back_at: int | None,
        top: float, thr: float, back: float | None) -> str:
    """Which rule cut a missed movement off, by how many ms (see :func:`one`)."""
    det = {"nod": "liveness.detect_nod", "open_mouth": "liveness.detect_open_mouth"}.get(
        challenge, "liveness.detect_turn")
    if crossed is None:
        return f"{det}: her furthest change {top:.3f} never passed the threshold {thr}"
    if back is None:
        return (f"steps.step_over: the window ({window} ms, rule {rule}) ended the step; the last frame judged was at "
                f"{last} ms; her mouth passed {thr:.3f} at {crossed} ms, {crossed - window} ms after the window's end")
    if back_at is None:
        return f"{det}: she never came back under {back:.3f}"
    return (f"steps.step_over: the window ({window} ms, rule {rule}) ended the step; the last frame judged was at "
            f"{last} ms; she passed {thr} at {crossed} ms and was back under {back:.3f} at {back_at} ms, "
            f"{back_at - window} ms after the window's end")


def cells_of(d: dict[str, Any]) -> Iterator[tuple[str, str, list[int], int, int, int | None, str]]:
    """Every cell of a run, in order: (mode, challenge, profile, peak, lag, prompt said (None: espeak-ng's for the
    challenge, or a page that says nothing), its key in ``cells``). ``d``: the run's settings as in its JSON (older
    runs have no turn_right / open_mouth settings and no prompt lengths)."""
    for mode in d["modes"]:
        for ch in d["challenges"]:
            profiles = (d.get("mouth_profiles") or d["profiles"]) if ch == "open_mouth" else d["profiles"]
            prompts = (d.get("prompt_speech") or [None]) if PAGE[mode] == "both" else [None]
            for ps in prompts:
                for prof in profiles:
                    for peak in d["peaks"][ch]:
                        for lag in d["lags"]:
                            key = f"{mode}/{ch}/{'-'.join(map(str, prof))}/{peak}/{lag}"
                            yield mode, ch, list(prof), peak, lag, ps, key if ps is None else f"{key}/p{ps}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--react", type=int, default=2700, help="ms from the prompt (appeared / heard said) to moving")
    ap.add_argument("--profiles", default=PROFILES, help="out/hold/back ms of the movement, comma-separated")
    ap.add_argument("--mouth-profiles", default="", help="the same for open_mouth (default: --profiles)")
    ap.add_argument("--peaks", default="30,35,45", help="turn_head warp angle at the turn's peak, degrees")
    ap.add_argument("--nod-peaks", default="20,25,30", help="the same for the nod (45 breaks the pitch warp)")
    ap.add_argument("--mouth-peaks", default="45", help="open_mouth: the MAR x 100 at the opening's widest")
    ap.add_argument("--challenges", default="turn_left,nod", help="turn_left, turn_right, nod, open_mouth")
    ap.add_argument("--lag", default="0,1000", help="extra ms per chunk answer (server + network)")
    ap.add_argument("--modes", default="appeared,heard", help="appeared, heard, retry, retry_heard, listener")
    ap.add_argument("--prompt-speech", default="",
                    help="ms the page takes to say the prompt, comma-separated (default: espeak-ng's per challenge)")
    ap.add_argument("--small-peak", type=int, default=20, help="retry modes: the first try's turn warp, degrees")
    ap.add_argument("--small-nod-peak", type=int, default=10, help="retry modes: the first try's nod warp")
    ap.add_argument("--small-mouth-peak", type=int, default=15, help="retry modes: the first try's MAR x 100")
    ap.add_argument("--amplitudes", default="5,10,15,20,25,30,35,45", help="warp angles for the amplitude table")
    ap.add_argument("--name", default="slow_move", help="results/<name>.json and the README section")
    ap.add_argument("--extra-window", type=int, default=steps.HINT_EXTRA_WINDOW_MS,
                    help="steps.HINT_EXTRA_WINDOW_MS for the run (production's by default; 0: what the hint's +3 s "
                         "is worth to her)")
    ap.add_argument("--render", help="only rewrite the README section from this results JSON (no sessions run)")
    ap.add_argument("--faces", help="the shared faces folder (sets LIFECERT_SHARED_FACES)")
    ap.add_argument("--no-readme", action="store_true")
    a = ap.parse_args()
    if a.render:
        data = json.loads(Path(a.render).read_text(encoding="utf-8"))
        update_readme_section(a.name, report(data, a.name))
        return
    if a.faces:
        os.environ["LIFECERT_SHARED_FACES"] = a.faces
    profiles = [[int(x) for x in p.split("/")] for p in a.profiles.split(",")]
    mouth_profiles = [[int(x) for x in p.split("/")] for p in a.mouth_profiles.split(",") if p] or profiles
    peaks = {"turn_left": int_list(a.peaks), "turn_right": int_list(a.peaks), "nod": int_list(a.nod_peaks),
             "open_mouth": int_list(a.mouth_peaks)}
    small = {"turn_left": a.small_peak, "turn_right": a.small_peak, "nod": a.small_nod_peak,
             "open_mouth": a.small_mouth_peak}
    lags, modes, challenges = int_list(a.lag), a.modes.split(","), a.challenges.split(",")
    prompts = int_list(a.prompt_speech) if a.prompt_speech else []
    speech = speech_ms()
    steps.HINT_EXTRA_WINDOW_MS = a.extra_window  # read by paced.py at every chunk
    grid = {"modes": modes, "challenges": challenges, "profiles": profiles, "mouth_profiles": mouth_profiles,
            "prompt_speech": prompts, "peaks": peaks, "lags": lags}
    cells: dict[str, list[dict[str, Any]]] = defaultdict(list)
    amplitude: dict[str, dict[int, float]] = {}
    for ch in challenges:
        with turn_bench(seq=83, challenges=FIXED[ch]) as b:
            pool = mouth_pool(b.frame_engine, b.video) if ch == "open_mouth" else []
            warp = Warper(b.clip, b.frame_engine, pool)
            amps = peaks[ch] + ([small[ch]] if ch == "open_mouth" else int_list(a.amplitudes))
            amplitude[ch] = {d: round(warp.change(ch, d), 4) for d in sorted(set(amps))}
            print(ch, amplitude[ch], flush=True)
            for mode, c, prof, peak, lag, ps, key in cells_of(grid | {"challenges": [ch]}):
                for seed in range(a.seeds):
                    r = one(b, warp, seed, c, tuple(prof), peak, lag, mode, a.react, speech,  # type: ignore[arg-type]
                            small[c], ps)
                    cells[key].append(r | {"seed": seed})
                    print(key, seed, r, flush=True)
    rerun = (f"python benchmarks/slow_move.py --seeds {a.seeds} --react {a.react} --profiles {a.profiles} "
             f"--peaks {a.peaks} --nod-peaks {a.nod_peaks} --challenges {a.challenges} --lag {a.lag} --modes {a.modes}"
             f" --extra-window {a.extra_window} --name {a.name}"
             + (f" --small-peak {a.small_peak} --small-nod-peak {a.small_nod_peak}"
                if any(m in TWO_TRIES for m in modes) else "")
             + (f" --mouth-peaks {a.mouth_peaks} --small-mouth-peak {a.small_mouth_peak}"
                + (f" --mouth-profiles {a.mouth_profiles}" if a.mouth_profiles else "")
                if "open_mouth" in challenges else "")
             + (f" --prompt-speech {a.prompt_speech}" if prompts else ""))
    data = {"when": now(), "rerun": rerun, "seeds": a.seeds, "small_peak": a.small_peak, "small": small,
            "react_ms": a.react, **grid, "amplitude": amplitude, "speech_ms": speech,
            "thresholds": {"turn_yaw": P.turn_yaw, "turn_back": P.turn_back * P.turn_yaw,
                           "nod_pitch": P.nod_pitch, "nod_back": P.nod_pitch / 2,
                           "mouth_open_abs": P.mouth_open_abs, "mouth_open_delta": P.mouth_open_delta},
            "window_ms": steps.CHALLENGE_WINDOW_MS, "extra_ms": steps.HINT_EXTRA_WINDOW_MS,
            "max_window_ms": steps.HINT_MAX_WINDOW_MS, "cells": cells, "machine": machine()}
    publish(a.name, a.name, data, report(json.loads(json.dumps(data)), a.name), readme=not a.no_readme)


def _span(xs: list[int]) -> str:
    return "-" if not xs else (f"{min(xs)}" if min(xs) == max(xs) else f"{min(xs)}-{max(xs)}")


def _fspan(xs: list[float]) -> str:
    return "-" if not xs else (f"{min(xs):.3f}" if min(xs) == max(xs) else f"{min(xs):.3f}-{max(xs):.3f}")


def report(d: dict[str, Any], name: str = "slow_move") -> str:
    """The README section ``name`` from a run's results (its JSON form, results/<name>.json)."""
    cells: dict[str, list[dict[str, Any]]] = d["cells"]
    amp_rows = []
    for ch in d["challenges"]:
        thr, back = rule_of(ch)
        real = (lambda v: f" (~{v / REAL:.0f} real)") if ch.startswith("turn_") else (lambda v: "")
        what = {"turn_left": "yaw ratio", "turn_right": "yaw ratio, the other way", "nod": "pitch ratio"}.get(ch)
        amp_rows.append(
            f"| {ch} ({what}; counted > {thr}, back < {back:.2f}) | " if back is not None else
            f"| {ch} (peak = inner-lip MAR x 100 at the widest; MAR change from the calm frames'; counted > "
            f"max({thr}, baseline + {P.mouth_open_delta})) | ")
        amp_rows[-1] += ", ".join(f"{k}: {v:.3f}{real(v)}" for k, v in d["amplitude"][ch].items()) + " |"
    rows = []
    misses = []
    for mode, ch, prof, peak, lag, ps, key in cells_of(d):
        rs = [r for r in cells[key] if r["outcome"] != "no_step"]
        seen = sum(1 for r in rs if r["outcome"] == "seen")
        rules = ", ".join(sorted({r["rule"] for r in rs}))
        said = "-" if PAGE[mode] == "none" else (ps or d["speech_ms"][ch])
        rows.append(
            f"| {mode} | {ch} | {said} | {'/'.join(map(str, prof))} | {peak} | {lag} | {seen}/{len(rs)} | "
            f"{_span([r['move_start_ms'] for r in rs])} | {_fspan([r['peak_change'] for r in rs])} | "
            f"{_span([r['back_ms'] for r in rs if r['back_ms'] is not None])} | "
            f"{_span([r['window_ms'] for r in rs])} ({rules}) | "
            f"{_span([r['last_frame_ms'] for r in rs if r['last_frame_ms'] is not None])} | "
            f"{_span([r['window_ms'] - r['back_ms'] for r in rs if r['back_ms'] is not None])} |")
        misses += [f"- {key} seed {r['seed']}: {r['why']}" for r in rs if r["outcome"] == "missed"]
    m, sp = d["machine"], d["speech_ms"]
    return f"""## Slow movers (`benchmarks/slow_move.py`{'' if name == 'slow_move' else f', results/{name}.json'})

{d['when']}, {m['nproc']} x {m['cpu']} (shared, niced). SIMULATED movement of real frames (talking_head_a at 8
fps, turned / tilted by benchmarks.attacks.turn_head, a 2D warp), the real dlib engine and the real paced service on
a virtual clock (as `hint_recovery`; see the script's docstring). One movement per session, eased out over `out`
ms to `peak` degrees of warp, held `hold` ms, eased back over `back` ms; it starts {d['react_ms']} ms after the
prompt appeared (*appeared*: a page that reports nothing, production's strictest windows) or after the phone
finished saying it (*heard*: the page reports prompt and hint hearings as app.js does; the prompt said in `said`
ms, espeak-ng's time unless the run set it: turn_left {sp['turn_left']} ms, nod {sp['nod']} ms). She ignores the
hints while moving. *retry* / *retry_heard*: first the same movement only to {d.get('small_peak', 20)} degrees (too
little; nod {d.get('small', {}).get('nod', 10)}), then the full one {d['react_ms']} ms after the first action hint
reached her (read / heard said), once the first has ended. *listener*: the slow LISTENER who is also a slow mover:
her too-little try waits until the prompt was SAID, then {d['react_ms']} ms; the full one {d['react_ms']} ms after
she heard the first hint asking for MORE said (TURN_MORE, NOD_MORE, OPEN_WIDER; the prompt said again, DO_ACTION, is
not one: as hint_heard's listener), once her first try has ended. open_mouth (when run): `peak` is the inner-lip MAR
x 100 at the widest; the opening is made of REAL frames of the clip's talk whose MAR follows the same eased curve
(the face moves a little between them), too little = MAR {d.get('small', {}).get('open_mouth', '-')} / 100; it
counts at the first frame past its bound (no way back asked). {d['seeds']} prompt-delay seeds per cell.

What the engine reads at each warp angle (median change over 8 calm frames of the clip; open_mouth: the MAR):

| signal | warp degrees: change |
|---|---|
{chr(10).join(amp_rows)}

Cells: seen / sessions; `lag`: server + network ms per answer; `moved`: her (full) movement's first frame; `peak
read`: her largest change against her own settle baseline (the engine on the frames the server stored); `counted`:
the first frame back under the bound after passing the threshold (when liveness counts it; open_mouth: the first
frame past it); `said`: ms the page took to say the prompt (`-`: a page that says nothing); `window (rule)`: the
step's window and the rule that set it (`base`: CHALLENGE_WINDOW_MS {d['window_ms']}, or from the prompt's hearing
`heard`; `fixed`: + {d['extra_ms']} ms after the first action hint; `awaiting` / `heard` / `capped`:
steps.hint_window; `under_way`: held open while her head was still out, steps.held_window); `last`: the step's last
frame judged (frames past the window's end in the chunk that crosses it are judged too); `spare`: window minus
counted (she could have come back at least that much later); all ms after the prompt appeared, server clock. A
turn's warp reads like a real turn of (change / {REAL}) degrees at
benchmarks.attacks.REAL_YAW_RATIO_PER_DEG (measured on real photos of ../shared/faces).

| person | challenge | said | out/hold/back ms | peak deg | lag | seen | moved | peak read | counted | window (rule) \
| last | spare |
|---|---|---|---|---|---|---|---|---|---|---|---|---|
{chr(10).join(rows)}

Misses and why: {"none." if not misses else chr(10) + chr(10).join(misses)}

Not measured: real elderly movement (no footage: the durations and angles are assumptions, and a 2D warp has no
parallax; a mouth opening from frames of talk is not a real slow opening), the challenges and modes this run did
not list, more than two tries, a phone's voice (espeak-ng times), frame drops or a slower camera.

Rerun: `{d['rerun']}`."""


if __name__ == "__main__":
    main()
