"""Does a user who needs to HEAR the action hint pass, when saying it takes long? Simulated, through the real service.

    python benchmarks/hint_heard.py [--seeds 2]        # ~5 min on one core; writes results + README section

As benchmarks/hint_recovery.py (its frames, turns and virtual clock): the paced service in-process (SQLite, the
real dlib engine, tests/paced_client's SimClock), ``video/talking_head_a.mp4`` at 8 fps, challenges fixed to
``turn_left,blink``. Per session the person turns too little ``first`` ms after the turn_left prompt; the answer
that brings the action hint reaches the phone; the page says it for ``speech`` ms; the person turns fully
``react`` ms after the speech ENDED. Two pages are compared on the same draws:

- *report*: the page sends ``hint_heard_ms`` (= the end of the speech) and ``hint_heard_via=speech`` with every
  chunk after it, as mobile-web/app.js does: production's ``steps.hint_window`` then sets the window;
- *no report*: an older page: the fixed +steps.HINT_EXTRA_WINDOW_MS after the hint.

``speech``: 3000 (about benchmarks/attacks.hint_speech_ms's assumption), 4700 and 6300 (espeak-ng's cmn voice
saying BLINK_FIRMLY / TURN_MORE at the page's rate: README section ``hint_speech``; not a phone's voice). The voice
is taken to be free when the hint arrives (a prompt still being said would delay it further). ``react``: 1000 and
2700 (issue 12's slowest). ``lag``: extra ms per chunk answer (server + network). Synthetic: the turn (a warp), the
person's timing, the speech time, the network; the face frames and the engine are real.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._common import machine, now, publish  # noqa: E402
from benchmarks.hint_recovery import FULL, HINTS, LIMIT_MS, SMALL, TurnBench, turn_bench  # noqa: E402
from lifecert.services.verification import steps  # noqa: E402
from lifecert.storage.models_verification import VerificationSession  # noqa: E402
from tests.paced_client import Phone, SimClock, VirtualTime, service_sender, step_of  # noqa: E402


def one(b: TurnBench, clock: VirtualTime, seed: int, first: int, speech: int, react: int, lag: int,
        report: bool) -> dict[str, Any]:
    """One session; the outcome of the turn step, when the hint reached the phone and was heard, the window."""
    svc, clip, small, full = b.service(clock, seed), b.clip, b.small, b.full
    start = svc.create_session(b.who[0], b.who[1], "10.9.9.8")
    sim = SimClock(clock, server_lag_ms=lag)
    heard_at: list[int] = []

    def heard(step: int, sent_ms: int) -> tuple[int, str] | None:
        ok = report and step == 1 and heard_at and sent_ms >= heard_at[0]
        return (heard_at[0], "speech") if ok else None

    phone = Phone(service_sender(svc, start.session_id, sim, heard=heard), step_of(start.step), clip, sim,
                  act=False, session_id=start.session_id)
    phone.neutral(1500)
    while phone.step.index == 0 and not phone.decided and phone.t < LIMIT_MS:
        phone.tick()
    if phone.step.challenge != "turn_left":
        return {"outcome": "no_turn_step"}
    prompt = phone.prompt_at
    phone.script, phone.script_at = list(small), prompt + first
    small_end = prompt + first + len(small) * 125
    hint_at: int | None = None
    n = len(phone.answers)
    end = phone.t + LIMIT_MS + steps.HINT_MAX_WINDOW_MS
    while phone.t < end and not phone.decided and phone.step.index == 1:
        phone.tick()
        if hint_at is None and len(phone.answers) > n:
            n = len(phone.answers)
            if HINTS & set(phone.answers[-1].hints):
                hint_at = phone.t
                heard_at.append(hint_at + speech)
                phone.script, phone.script_at = list(full), max(heard_at[0] + react, small_end + 125)
    with b.ctx.db.session() as s:
        vs = s.get(VerificationSession, start.session_id)
        st = {} if vs is None else dict(vs.steps[1])
    out: dict[str, Any] = {"outcome": "seen" if phone.step.index == 2 else "missed",
                           "window_ms": st.get("window_ms"), "rule": (st.get("hint") or {}).get("rule")}
    if hint_at is not None:
        out |= {"hint_ms": hint_at - prompt, "heard_ms": heard_at[0] - prompt,
                "full_turn_ms": max(heard_at[0] + react, small_end + 125) - prompt}
    return out


HEAD = ("| speech (ms) | react (ms) | server lag (ms) | seen, report | seen, no report | hint reached phone | heard "
        "| full turn began | window (rule) |")


def _of(rs: list[dict[str, Any]], key: str) -> list[Any]:
    return [r[key] for r in rs if r.get(key) is not None]


def _span(xs: list[int]) -> str:
    return f"{min(xs)}-{max(xs)}" if xs else "-"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--first", type=int, default=2700, help="ms from the prompt to the too-small turn")
    ap.add_argument("--speech", default="3000,4700,6300", help="ms the page takes to say the hint")
    ap.add_argument("--react", default="1000,2700", help="ms from the end of the speech to the full turn")
    ap.add_argument("--lag", default="0,1000", help="extra ms per chunk answer (server + network)")
    ap.add_argument("--no-readme", action="store_true")
    a = ap.parse_args()
    speeches = [int(x) for x in a.speech.split(",")]
    reacts = [int(x) for x in a.react.split(",")]
    lags = [int(x) for x in a.lag.split(",")]
    cells: dict[str, list[dict[str, Any]]] = defaultdict(list)
    with turn_bench(seq=82) as b:
        for speech in speeches:
            for react in reacts:
                for lag in lags:
                    for report in (True, False):
                        for seed in range(a.seeds):
                            clock = VirtualTime()
                            r = one(b, clock, seed, a.first, speech, react, lag, report)
                            cells[f"{speech}/{react}/{lag}/{int(report)}"].append(r | {"seed": seed})
                            print(speech, react, lag, report, seed, r, flush=True)
    rows = []
    for speech in speeches:
        for react in reacts:
            for lag in lags:
                rep, old = cells[f"{speech}/{react}/{lag}/1"], cells[f"{speech}/{react}/{lag}/0"]
                seen = [f"{sum(1 for r in rs if r['outcome'] == 'seen')}/{len(rs)}" for rs in (rep, old)]
                rows.append(f"| {speech} | {react} | {lag} | {seen[0]} | {seen[1]} | {_span(_of(rep, 'hint_ms'))} | "
                            f"{_span(_of(rep, 'heard_ms'))} | {_span(_of(rep, 'full_turn_ms'))} | "
                            f"{_span(_of(rep, 'window_ms'))} ({', '.join(sorted(set(_of(rep, 'rule'))))}) |")
    text = f"""## Hinted users who must hear the hint first (`benchmarks/hint_heard.py`)

{now()}; SIMULATED person, real frames and engine, the real paced service on a virtual clock (as `hint_recovery`;
see the script's docstring): a turn too small {a.first} ms after the prompt; the action hint is said for `speech` ms
from when it reached the phone; the full turn begins `react` ms after the speech ended. *report*: the page reports
when it was heard (mobile-web/app.js; window = max(8 s + {steps.HINT_EXTRA_WINDOW_MS} ms, heard +
{steps.HINT_HEARD_WINDOW_MS} ms), at most {steps.HINT_MAX_WINDOW_MS} ms from the prompt); *no report*: the fixed
+{steps.HINT_EXTRA_WINDOW_MS} ms after the hint. Cells: turn step seen / sessions ({a.seeds} prompt-delay seeds, the
same for both pages); ms after the prompt appeared (the report's sessions); the window and the rule that set it.
Speech 4700 and 6300 ms are espeak-ng's (NOT a phone's) times for BLINK_FIRMLY and TURN_MORE (`hint_speech`).

{HEAD}
|---|---|---|---|---|---|---|---|---|
{chr(10).join(rows)}

Rerun: `python benchmarks/hint_heard.py --seeds {a.seeds} --first {a.first} --speech {a.speech} --react {a.react} \
--lag {a.lag}`."""
    data = {"when": now(), "first_ms": a.first, "hint_extra_window_ms": steps.HINT_EXTRA_WINDOW_MS,
            "hint_heard_window_ms": steps.HINT_HEARD_WINDOW_MS, "hint_max_window_ms": steps.HINT_MAX_WINDOW_MS,
            "small_deg": SMALL, "full_deg": FULL, "cells": cells, "machine": machine()}
    publish("hint_heard", "hint_heard", data, text, readme=not a.no_readme)


if __name__ == "__main__":
    main()
