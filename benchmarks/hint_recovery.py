"""Does a user who turns too little pass once hinted, within the step's window? Simulated, through the real service.

    python benchmarks/hint_recovery.py [--seeds 2]         # ~5 min on one core; writes results + README section

The paced service runs in-process (SQLite, the real dlib engine, a virtual server clock: tests/paced_client's
SimClock, so an 8 s window costs no wall time). The phone shows real frames of ``video/talking_head_a.mp4``
at 8 fps; the video holds no head turn, so its calm frames are turned by benchmarks.attacks.turn_head (a 2D
cylinder warp; the engine reads ~22 degrees as a yaw change under steps' 0.22 threshold and 45 degrees
well past it). Challenges are fixed to ``turn_left,blink``. Per session the person:

1. reacts ``first`` ms after the turn_left prompt appears with a turn too small (8 frames: 8-15-22-22-22-22-15-8
   degrees, 1 s, and back);
2. when a chunk answer brings an action hint (steps.action_hint: TURN_MORE, LOOK_BACK or DO_ACTION), turns fully
   (15-30-45-45-45-30-15-0 degrees) ``after_hint`` ms after that answer reached the phone (not before the small
   turn has ended).

Reported per (first, after_hint, server lag), with the step's window growing by steps.HINT_EXTRA_WINDOW_MS after
the first action hint (production) and without (``--extra-window 0``; the constant is set for the run): sessions
whose turn step was then SEEN / sessions, and when the hint reached the phone (ms after the prompt appeared).
``lag``: extra ms each chunk answer spends in the server or network (SimClock.server_lag_ms; the simulated
upload itself is 80 ms). The prompt delay is drawn by the service
(random.Random(seed)). What is synthetic: the turn (a warp), the person's timing, the network; the face
frames and the engine are real.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._common import int_list, machine, now, publish  # noqa: E402
from benchmarks.attacks import turn_head  # noqa: E402
from lifecert.config import Settings, VerificationSettings  # noqa: E402
from lifecert.engine.base import FaceEngine  # noqa: E402
from lifecert.engine.image import encode_jpeg  # noqa: E402
from lifecert.engine.loader import load_engine  # noqa: E402
from lifecert.services.context import AppContext  # noqa: E402
from lifecert.services.verification import VerificationService, load_frame_engine, steps  # noqa: E402
from lifecert.storage.models_verification import VerificationSession  # noqa: E402
from tests.integration.verification_support import TEMPLATE_FRAME, VIDEO, enroll, read_video  # noqa: E402
from tests.paced_client import (  # noqa: E402
    Clip,
    HeardReport,
    Phone,
    SimClock,
    VirtualTime,
    service_sender,
    step_of,
    talking_head_clip,
)


def faces_dir() -> Path:
    """../shared/faces, or LIFECERT_SHARED_FACES (a worktree has no ../shared); read when a bench starts."""
    return Path(os.environ.get("LIFECERT_SHARED_FACES", ROOT.parent / "shared" / "faces"))


SMALL = [8, 15, 22, 22, 22, 22, 15, 8]
FULL = [15, 30, 45, 45, 45, 30, 15, 0]
HINTS = {"TURN_MORE", "LOOK_BACK", "DO_ACTION"}
LIMIT_MS = 20_000


def turned(clip: Clip, engine: FaceEngine, degrees: list[int]) -> list[bytes]:
    out = []
    for k, deg in enumerate(degrees):
        img = cv2.imdecode(np.frombuffer(clip.neutral[k % len(clip.neutral)], np.uint8), cv2.IMREAD_COLOR)
        box = engine.detect(img)[0].box
        out.append(encode_jpeg(turn_head(img, box, yaw_deg=deg) if deg else img, 85))
    return out


@dataclass(frozen=True)
class TurnBench:
    """What a simulated turn session needs: the service's context (turn_left,blink fixed, no rate limit), the
    enrolled person, the clip at 8 fps and its too-small and full turns (JPEG frames), the frame engine, the
    clip's source video (slow_move's mouth openings)."""

    ctx: AppContext
    who: tuple[str, str]  # (ID number, name)
    clip: Clip
    small: list[bytes]
    full: list[bytes]
    frame_engine: FaceEngine
    video: list[NDArray[np.uint8]] = field(default_factory=list)  # the clip's source video, BGR, 25 fps

    def service(self, clock: VirtualTime, seed: int) -> VerificationService:
        """A service on ``clock`` whose prompt delays are drawn by random.Random(seed)."""
        svc = VerificationService(self.ctx, engine_factory=lambda: self.frame_engine, clock=clock)
        svc.rng = random.Random(seed)
        return svc


@contextmanager
def turn_bench(seq: int, challenges: str = "turn_left,blink") -> Iterator[TurnBench]:
    """The paced service in-process over a temporary SQLite data dir, the talking-head person enrolled (``seq``:
    their ID number's sequence), for hint_recovery, hint_heard and slow_move. ``challenges``: the session's fixed
    challenges (Settings.fixed_challenges; slow_move asks "nod,blink" too)."""
    video = read_video(faces_dir() / VIDEO)
    frame_engine = load_frame_engine(Settings(), name="dlib")
    clip = talking_head_clip(frame_engine, video)
    small, full = turned(clip, frame_engine, SMALL), turned(clip, frame_engine, FULL)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(env="test", data_dir=Path(tmp) / "data", fixed_challenges=challenges,
                            verification=VerificationSettings(rate_limit_per_id_per_hour=100_000,
                                                              rate_limit_per_client_per_hour=100_000))
        ctx = AppContext(settings)
        try:
            ctx.set_engine(load_engine(settings, name="dlib"))
            p = enroll(ctx, video[TEMPLATE_FRAME], seq=seq)
            yield TurnBench(ctx, (p.id_number, p.name), clip, small, full, frame_engine, video)
        finally:
            ctx.close()


def turn_phone(svc: VerificationService, clock: VirtualTime, who: tuple[str, str], clip: Clip, lag: int,
               client_addr: str, heard: HeardReport | None = None,
               prompt_heard: HeardReport | None = None, challenge: str = "turn_left") -> Phone | None:
    """A new session's simulated phone (acting nothing on its own) walked through the settle step to the revealed
    ``challenge`` step, or None when the drawn step is another. ``heard`` / ``prompt_heard``: the page's reports
    (tests.paced_client.service_sender)."""
    start = svc.create_session(who[0], who[1], client_addr)
    sim = SimClock(clock, server_lag_ms=lag)
    phone = Phone(service_sender(svc, start.session_id, sim, heard=heard, prompt_heard=prompt_heard),
                  step_of(start.step), clip, sim, act=False, session_id=start.session_id)
    phone.neutral(1500)
    while phone.step.index == 0 and not phone.decided and phone.t < LIMIT_MS:
        phone.tick()
    return phone if phone.step.challenge == challenge else None


def one(svc: VerificationService, clock: VirtualTime, who: tuple[str, str], clip: Clip, small: list[bytes],
        full: list[bytes], first: int, after_hint: int, lag: int) -> dict[str, Any]:
    phone = turn_phone(svc, clock, who, clip, lag, "10.9.9.9")
    if phone is None:
        return {"outcome": "no_turn_step"}
    prompt = phone.prompt_at
    phone.script, phone.script_at = list(small), prompt + first
    small_end = prompt + first + len(small) * 125
    hint_at: int | None = None
    seen_answers = len(phone.answers)
    end = phone.t + LIMIT_MS
    while phone.t < end and not phone.decided and phone.step.index == 1:
        phone.tick()
        if hint_at is None and len(phone.answers) > seen_answers:
            seen_answers = len(phone.answers)
            if HINTS & set(phone.answers[-1].hints):
                hint_at = phone.t
                phone.script, phone.script_at = list(full), max(hint_at + after_hint, small_end + 125)
    passed = phone.step.index == 2
    with svc.ctx.db.session() as s:  # the turn step as the server recorded it: its window and why
        vs = s.get(VerificationSession, phone.session_id)
        st = dict(vs.steps[1]) if vs is not None else {}
    return {"outcome": "seen" if passed else "missed", "hint_ms": None if hint_at is None else hint_at - prompt,
            "full_turn_ms": None if hint_at is None else max(hint_at + after_hint, small_end + 125) - prompt,
            "window_ms": st.get("window_ms"), "held_ms": st.get("held_ms")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--first", default="2700", help="ms from the prompt to the too-small turn")
    ap.add_argument("--after-hint", default="1000,2000,3000,3500,4000,5000,6000",
                    help="ms from the hint to the full turn")
    ap.add_argument("--extra-window", default=f"{steps.HINT_EXTRA_WINDOW_MS},0",
                    help="steps.HINT_EXTRA_WINDOW_MS values to compare (production's first)")
    ap.add_argument("--lag", default="0,500,1000", help="extra ms per chunk answer (server + network)")
    ap.add_argument("--no-readme", action="store_true")
    a = ap.parse_args()
    firsts = int_list(a.first)
    afters = int_list(a.after_hint)
    lags = int_list(a.lag)
    extras = int_list(a.extra_window)
    cells: dict[str, list[dict[str, Any]]] = defaultdict(list)
    with turn_bench(seq=81) as b:
        for first in firsts:
            for after in afters:
                for lag in lags:
                    for extra in extras:
                        steps.HINT_EXTRA_WINDOW_MS = extra  # read by paced.py at every chunk
                        for seed in range(a.seeds):
                            clock = VirtualTime()
                            r = one(b.service(clock, seed), clock, b.who, b.clip, b.small, b.full, first, after, lag)
                            cells[f"{first}/{after}/{lag}/{extra}"].append(r | {"seed": seed})
                            print(first, after, lag, extra, seed, r, flush=True)
        steps.HINT_EXTRA_WINDOW_MS = extras[0]
    rows = []
    for first in firsts:
        for after in afters:
            for lag in lags:
                seen = []
                rs = []
                for extra in extras:
                    rs = cells[f"{first}/{after}/{lag}/{extra}"]
                    held = sum(1 for r in rs if r.get("held_ms"))
                    seen.append(f"{sum(1 for r in rs if r['outcome'] == 'seen')}/{len(rs)}"
                                + (f" (held {held})" if held else ""))
                hints = [r["hint_ms"] for r in rs if r.get("hint_ms") is not None]
                fulls = [r["full_turn_ms"] for r in rs if r.get("full_turn_ms") is not None]
                rows.append(f"| {first} | {after} | {lag} | {' | '.join(seen)} | "
                            f"{min(hints) if hints else '-'}-{max(hints) if hints else '-'} | "
                            f"{min(fulls) if fulls else '-'}-{max(fulls) if fulls else '-'} |")
    heads = " | ".join(f"seen, window +{e} ms after the hint" for e in extras)
    text = f"""## Hinted users passing in time (`benchmarks/hint_recovery.py`)

{now()}; SIMULATED person, real frames and engine, the real paced service on a virtual clock (see the script's
docstring): a turn too small `first` ms after the prompt, then the full turn `after hint` ms after the action
hint reached the phone. Window {steps.CHALLENGE_WINDOW_MS} ms from the prompt, hint from
{steps.ACTION_HINT_AFTER_MS} ms (frames' server clock). Cells: turn step seen / sessions ({a.seeds} prompt-delay
seeds each; "held k": in k of them the step was held open because the turn was under way at the window's end,
steps.under_way / held_window, since session 10); when the hint reached the phone and when the full turn began, ms
after the prompt appeared.

| first (ms) | after hint (ms) | server lag (ms) | {heads} | hint reached phone | full turn began |
|---|---|---|{'---|' * len(extras)}---|---|
{chr(10).join(rows)}

Rerun: `python benchmarks/hint_recovery.py --seeds {a.seeds} --first {a.first} --after-hint {a.after_hint} \
--lag {a.lag} --extra-window {a.extra_window}`."""
    data = {"when": now(), "window_ms": steps.CHALLENGE_WINDOW_MS, "hint_after_ms": steps.ACTION_HINT_AFTER_MS,
            "extra_window_ms": extras,
            "small_deg": SMALL, "full_deg": FULL, "cells": cells, "machine": machine()}
    publish("hint_recovery", "hint_recovery", data, text, readme=not a.no_readme)


if __name__ == "__main__":
    main()
