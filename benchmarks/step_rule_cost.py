"""What the paced step rule costs per chunk: CPU of the rule beside the whole chunk, in slow sessions. Simulated.

    nice -n 10 python benchmarks/step_rule_cost.py [--seeds 2]    # ~3 min on one core; results + README section

Every chunk of a challenge step re-reads the step's frames so far: steps.judge_challenge, and since session 10
steps.under_way (a turn/nod step past its window's end) and steps.tried_before (the chunk that carries the prompt's
hearing report). The verify_latency harness never reaches the latter two (its user acts 800 ms after each prompt,
the page reports no hearing), so this measures them where they run:

1. sessions: benchmarks/slow_move.one (the paced service in-process, real frames of talking_head_a and the real
   dlib engine, turns warped by benchmarks.attacks.turn_head, a virtual clock; no PAD pack) for three people:
   ``appeared`` (one quick turn 2.7 s after the prompt, 600/600/600 ms), ``retry`` (too small first, then a slow
   full turn 2500/1500/2500 ms after the hint; the under_way hold runs) and ``retry_heard`` (the same on a page that
   reports hearings: tried_before, the awaiting window up to the 29 s cap) and, since session 12, the slow mouth
   ``listener`` of slow_move's README slow_mouth (open_mouth: too small first, then a 4.2 s opening after OPEN_WIDER,
   6.1 s prompt; steps.mouth_opening holds her step). Thread CPU (time.thread_time) of the
   service's chunk calls (PacedCapture.submit_chunk) of the settle and turn/mouth steps (slow_move stops when that
   step is over: no blink/nod step, no final decision) and, inside them, of each rule function
   (benchmarks.verify_latency.StageTimer: the same clock around each call);
2. per call against the step's length: the same functions on the turn-step observations those sessions stored,
   tiled to 64 / 216 / 405 frames (8 s at 8 fps, 27 s at 8 fps, 27 s at the blink step's 15 fps), timestamps
   renumbered at that rate, ``--reps`` calls each.

Not in it: loading the step's observations from the database (PacedCapture._obs; its JSON decode is timed in 2 as
Obs.from_json), PAD (the turn bench has no pack), the HTTP server, other machines.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import slow_move as sm  # noqa: E402
from benchmarks._common import int_list, machine, now, publish  # noqa: E402
from benchmarks.hint_recovery import turn_bench  # noqa: E402
from benchmarks.verify_latency import StageTimer  # noqa: E402
from lifecert.engine.liveness import LivenessParams  # noqa: E402
from lifecert.services.verification import paced, steps  # noqa: E402
from lifecert.storage.models_verification import VerificationChunk  # noqa: E402

RULES = ("settle", "judge_challenge", "under_way", "tried_before", "signals")
# (label = slow_move mode, challenge, out/hold/back ms, peak, first try's peak, ms the page says the prompt (None:
# espeak-ng's)); the turn warps in degrees, the mouth in MAR x 100 (slow_move's units)
TURN_PEOPLE = (("appeared", "turn_left", (600, 600, 600), 30, 20, None),
               ("retry", "turn_left", (2500, 1500, 2500), 30, 20, None),
               ("retry_heard", "turn_left", (2500, 1500, 2500), 30, 20, None))
# the slow mouth opener (slow_move README slow_mouth's 4.2 s cell: held by steps.mouth_opening at her window's end)
MOUTH_PEOPLE = (("listener", "open_mouth", (4200, 1000, 4200), 45, 15, 6100),)
PEOPLE = TURN_PEOPLE + MOUTH_PEOPLE
LENGTHS = ((8, 64), (8, 216), (15, 405))  # (fps, frames in the step)
COLUMNS = ("person", "out/hold/back ms", "seen", "turn window ms", "chunks", "chunk CPU ms", "rule CPU ms", "rule %",
           "judge_challenge ms", "under_way ms (calls)", "tried_before ms (calls)", "signals ms (calls)")
HEAD = "| " + " | ".join(COLUMNS) + " |\n|" + "---|" * len(COLUMNS)


@contextmanager
def timed(obj: Any, attr: str, timer: StageTimer, stage: str) -> Iterator[None]:
    """``obj.attr`` wrapped by ``timer`` under ``stage`` (module functions and class methods), restored after."""
    orig = getattr(obj, attr)
    setattr(obj, attr, timer.wrap(stage, orig))
    try:
        yield
    finally:
        setattr(obj, attr, orig)


def session_costs(b: Any, warp: sm.Warper, people: Any, seeds: int, lags: list[int]) -> list[dict[str, Any]]:
    speech = sm.speech_ms()
    out = []
    for mode, challenge, prof, peak, small, said in people:
        for lag in lags:
            for seed in range(seeds):
                chunk, rule = StageTimer(), StageTimer()
                with timed(paced.PacedCapture, "submit_chunk", chunk, "chunk"), \
                        timed(steps, "settle", rule, "settle"), \
                        timed(steps, "judge_challenge", rule, "judge_challenge"), \
                        timed(steps, "under_way", rule, "under_way"), \
                        timed(steps, "tried_before", rule, "tried_before"), \
                        timed(steps, "signals", rule, "signals"):
                    # signals: since session 12 paced.py computes the step's signals once per chunk and passes them
                    # to the rule (before, each rule function computed them inside its own call, timed there)
                    r = sm.one(b, warp, seed, challenge, prof, peak, lag, mode, 2700, speech, small, said)
                total = chunk.cpu["chunk"]
                rules = sum(rule.cpu.values())
                out.append({
                    "mode": mode, "challenge": challenge, "profile": list(prof), "lag": lag, "seed": seed,
                    "outcome": r["outcome"],
                    "window_ms": r.get("window_ms"), "rule": r.get("rule"), "chunks": chunk.calls["chunk"],
                    "chunk_cpu_ms": round(total * 1000, 1), "rule_cpu_ms": round(rules * 1000, 1),
                    "rule_share": round(rules / total, 4) if total else None,
                    "by_rule": {k: {"ms": round(rule.cpu[k] * 1000, 1), "calls": rule.calls[k]} for k in RULES},
                    "session": r,  # slow_move.one's whole record: to compare runs of two codes field by field
                })
                print(out[-1], flush=True)
    return out


def stored_turn_obs(b: Any) -> list[dict[str, Any]]:
    """The observations (JSON as stored) of every turn step's frames with a face in the bench's database."""
    with b.ctx.db.session() as s:
        rows = s.scalars(select(VerificationChunk.observations).where(VerificationChunk.step == 1)
                         .order_by(VerificationChunk.session_id, VerificationChunk.seq))
        return [d for r in rows for d in r if d.get("lm") is not None]


def per_call(ds: list[dict[str, Any]], reps: int) -> list[dict[str, Any]]:
    p = LivenessParams()
    base = steps.baseline_of([steps.Obs.from_json(d).frame_obs(0) for d in ds[:24]])

    def cost(fn: Callable[..., object], *args: Any) -> float:
        c0 = time.thread_time()
        for _ in range(reps):
            fn(*args)
        return round((time.thread_time() - c0) / reps * 1000, 2)

    def decode(js: list[dict[str, Any]]) -> list[steps.Obs]:
        return [steps.Obs.from_json(d) for d in js]

    out = []
    for fps, n in LENGTHS:
        js = [dict(ds[i % len(ds)], t=int(i * 1000 / fps)) for i in range(n)]
        fo = [o.frame_obs(0) for o in decode(js)]
        row = {"fps": fps, "frames": n, "from_json_ms": cost(decode, js),
               "judge_challenge_ms": cost(steps.judge_challenge, "turn_left", fo, base, 0, p),
               "under_way_ms": cost(steps.under_way, "turn_left", fo, base, 0, p),
               "tried_before_ms": cost(steps.tried_before, "turn_left", fo, base, 0, fo[-1].t_ms, p)}
        out.append(row)
        print(row, flush=True)
    return out


def _span(xs: list[float]) -> str:
    return f"{min(xs):g}-{max(xs):g}" if xs else "-"


def report(d: dict[str, Any]) -> str:
    rows = []
    for mode, challenge, prof, *_ in PEOPLE:
        rs = [r for r in d["sessions"] if r["mode"] == mode and r.get("challenge", "turn_left") == challenge]
        if not rs:
            continue
        seen = sum(1 for r in rs if r["outcome"] == "seen")
        by = {k: _span([r["by_rule"].get(k, {"ms": 0})["ms"] for r in rs]) for k in RULES}
        calls = {k: _span([r["by_rule"].get(k, {"calls": 0})["calls"] for r in rs])
                 for k in ("under_way", "tried_before", "signals")}
        rows.append(
            f"| {mode} ({challenge}) | {'/'.join(map(str, prof))} | {seen}/{len(rs)} | "
            f"{_span([r['window_ms'] for r in rs])} | "
            f"{_span([r['chunks'] for r in rs])} | {_span([r['chunk_cpu_ms'] for r in rs])} | "
            f"{_span([r['rule_cpu_ms'] for r in rs])} | {_span([round(100 * r['rule_share'], 1) for r in rs])} | "
            f"{by['judge_challenge']} | {by['under_way']} ({calls['under_way']}) | "
            f"{by['tried_before']} ({calls['tried_before']}) | {by['signals']} ({calls['signals']}) |")
    calls_rows = [f"| {c['fps']} | {c['frames']} | {c['from_json_ms']} | {c['judge_challenge_ms']} | "
                  f"{c['under_way_ms']} | {c['tried_before_ms']} |" for c in d["per_call"]]
    m = d["machine"]
    nl = "\n"
    return f"""## Step rule cost per chunk (`benchmarks/step_rule_cost.py`)

{d["when"]}, {m["nproc"]} × {m["cpu"]} (shared, niced; load average {d["load_average_1m"]["before"]} →
{d["load_average_1m"]["after"]}). SIMULATED people (slow_move's sessions: real talking_head_a frames, the real dlib
engine and paced service on a virtual clock, turns and mouth openings warped; no PAD pack), thread CPU, code
{d.get("code", "?")}. Per session: the service's chunk calls of the settle step and the turn_left (open_mouth) step
(submit_chunk: decode, detection + landmarks, the rule, records; the session stops when that step is over) and,
inside them, the step rule: settle, judge_challenge, session 10's under_way / tried_before, and `signals` (since
session 12 paced.py computes the step's per-frame signals once per chunk and passes them to the other three; before,
each computed them inside its own call and its column held that). Cells: ranges over {d["seeds"]} seeds × lag
{", ".join(map(str, d["lags"]))} ms; calls in brackets; "turn window" is the step's window.

{HEAD}
{nl.join(rows)}

Per call against the step's length (the same sessions' stored turn-step frames, tiled; {d["reps"]} calls each,
ms of thread CPU): every chunk pays `from_json` (the step's observations) and judge_challenge; a turn/nod chunk past
the window's end also under_way; the chunk with the prompt's report tried_before.

| fps | frames in the step | Obs.from_json ms | judge_challenge ms | under_way ms | tried_before ms |
|---|---|---|---|---|---|
{nl.join(calls_rows)}

Rerun: `{d["rerun"]}`."""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--lag", default="0,1000", help="extra ms per chunk answer (server + network)")
    ap.add_argument("--reps", type=int, default=20, help="calls per function and length in part 2")
    ap.add_argument("--no-mouth", action="store_true", help="only the turn people (session 11's run)")
    ap.add_argument("--name", default="step_rule_cost", help="results/<name>.json (the README section keeps its name)")
    ap.add_argument("--no-readme", action="store_true")
    a = ap.parse_args()
    load_before = os.getloadavg()[0]
    lags = int_list(a.lag)
    with turn_bench(seq=84, challenges="turn_left,blink") as b:
        sessions = session_costs(b, sm.Warper(b.clip, b.frame_engine), TURN_PEOPLE, a.seeds, lags)
        calls = per_call(stored_turn_obs(b), a.reps)
    if not a.no_mouth:
        with turn_bench(seq=84, challenges=sm.FIXED["open_mouth"]) as b:
            warp = sm.Warper(b.clip, b.frame_engine, sm.mouth_pool(b.frame_engine, b.video))
            sessions += session_costs(b, warp, MOUTH_PEOPLE, a.seeds, lags)
    data = {"when": now(), "machine": machine(), "seeds": a.seeds, "lags": lags, "reps": a.reps,
            "load_average_1m": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
            "rerun": f"python benchmarks/step_rule_cost.py --seeds {a.seeds} --lag {a.lag} --reps {a.reps}"
                     + (" --no-mouth" if a.no_mouth else ""),
            "code": os.popen(f"git -C {ROOT} rev-parse --short HEAD").read().strip(),
            "sessions": sessions, "per_call": calls, "per_call_lengths": [list(x) for x in LENGTHS]}
    publish(a.name, "step_rule_cost", data, report(data), readme=not a.no_readme)


if __name__ == "__main__":
    main()
