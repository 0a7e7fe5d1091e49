"""Which action hints production would give, recomputed from pad_eval's per-session cache (no re-scoring).

    python benchmarks/action_hints.py /tmp/lifecert-pad-eval/v4-09ee31cf-s12     # ~20 s; the cache is only read

For every cached PACED session (genuine acted ``-g<n>``, cued replays ``-c<n>``; of each session the file of
pad_eval's current synthesis version, else the newest: flat_cache.session_files) the script takes the baseline
as pad_eval's ``production_decision`` does (the settle step) and judges each revealed challenge step the way
paced.py does after every chunk: chunks on pad_eval.pace's 1-second grid, ``steps.judge_challenge`` over the
step's frames so far, then ``steps.step_hints`` (framing hints of the chunk, then the action hint of
``steps.action_hint`` once ``ACTION_HINT_AFTER_MS`` have passed) — until the step is seen or its window
ends (CHALLENGE_WINDOW_MS, + steps.HINT_EXTRA_WINDOW_MS from its first action hint, as paced.py; cut at the next
prompt). It counts, per kind of session, the steps that got an action hint before they were seen (a genuine
user who would have passed anyway hears it: a nuisance) and the missed steps that got one (the user it is
for), with the first code and when it came.

Since pad_eval g6/c6 the footage reacts to the first action hint of a step (attacks.Actor.hint: the person, and
the cued-replay attacker, act again once the page has said it), so a hinted step seen here may be seen BECAUSE of
the hint; how well that reaction is modelled is not measured (an assumed speech rate, one reaction). What is
real and what is synthetic: ``video_acted``/``slow``/``late`` are the two REAL clips acting the challenges, with
synthetic head turns (3D renders); ``cued_replay`` is the synthetic screen replay acting them (see pad_eval's
docstring).
Writes benchmarks/results/action_hints.json and the ``action_hints`` section of benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import pad_eval as pe  # noqa: E402
from benchmarks._common import machine, now, publish  # noqa: E402
from benchmarks.flat_cache import session_files  # noqa: E402
from lifecert.config import QualitySettings  # noqa: E402
from lifecert.engine.liveness import Baseline, LivenessParams  # noqa: E402
from lifecert.services.verification import steps  # noqa: E402

KINDS = ("video_acted", "slow", "late", "cued_replay")


def baseline(obs: list[steps.Obs], prompts: list[int], g: QualitySettings) -> Baseline | None:
    """The settle step's baseline as pad_eval.production_decision takes it (with its framing-wait shortcut)."""
    settled, res = pe.settle_of(obs, g)
    if prompts and (settled is None or settled > prompts[0]):
        late, late_res = pe.settle_of(obs, g, framing_wait_ms=0)
        if late is not None and (settled is None or late < settled):
            res = late_res
    return res.baseline


def step_hints_over(name: str, obs: list[steps.Obs], base: Baseline, reveal: int, end: int,
                    g: QualitySettings, p: LivenessParams, hinted_end: int | None = None) -> dict[str, Any]:
    """One challenge step judged chunk by chunk: seen or not, the action hints given before, and when. The window
    ends at ``end``, or at ``hinted_end`` once an action hint was given (paced.py lengthens it at the first)."""
    step_obs = [o for o in obs if reveal <= o.t_ms < max(end, hinted_end or end) + steps.CHUNK_MS]
    codes: list[tuple[int, str]] = []  # (ms after the reveal of the chunk's newest frame, code)
    c = (reveal // steps.CHUNK_MS + 1) * steps.CHUNK_MS
    seen = False
    while c <= end + steps.CHUNK_MS:
        upto = [o for o in step_obs if o.t_ms < c]
        chunk = [o for o in upto if o.t_ms >= c - steps.CHUNK_MS]
        c += steps.CHUNK_MS
        if not chunk:
            continue
        j = steps.judge_challenge(name, [o.frame_obs(0) for o in upto], base, reveal, p)
        elapsed = chunk[-1].t_ms - reveal
        act = steps.action_in(steps.step_hints(steps.hints(chunk, g), name, j, elapsed, p))
        if act is not None:
            codes.append((elapsed, act))
            end = max(end, hinted_end or end)
        if j.seen:
            seen = True
            break
        if chunk[-1].t_ms > end:
            break
    return {"seen": seen, "hints": codes}


def run(cache: Path) -> dict[str, Any]:
    g, p = QualitySettings(), LivenessParams()
    per_kind: dict[str, Counter[str]] = defaultdict(Counter)
    listed: list[dict[str, Any]] = []
    files, _used = session_files(cache)
    paced = [f for f in files if re.search(r"-[gc]\d+$", f.stem)]
    versions: dict[str, int] = defaultdict(int)
    for f in paced:
        versions[f.stem.rsplit("-", 1)[1]] += 1
    for path in paced:
        row = json.loads(path.read_text())[0]
        kind = "cued_replay" if row["kind"] != "bona_fide" else row["source"]
        obs, prompts = pe.obs_of(row), pe.prompts_of(row)
        base = baseline(obs, prompts, g)
        if base is None:
            per_kind[kind]["no_baseline"] += 1
            continue
        per_kind[kind]["sessions"] += 1
        for k, name in enumerate(row["challenges"][: len(prompts)]):
            end = prompts[k] + steps.CHALLENGE_WINDOW_MS
            hinted_end = end + steps.HINT_EXTRA_WINDOW_MS
            if k + 1 < len(prompts):
                end, hinted_end = min(end, prompts[k + 1]), min(hinted_end, prompts[k + 1])
            r = step_hints_over(name, obs, base, prompts[k], end, g, p, hinted_end)
            state = "seen" if r["seen"] else "missed"
            per_kind[kind][f"{state}_steps"] += 1
            if r["hints"]:
                first_ms, first = r["hints"][0]
                per_kind[kind][f"{state}_hinted"] += 1
                per_kind[kind][f"code:{first}"] += 1
                listed.append({"session": row["name"], "kind": kind, "challenge": name, "state": state,
                               "first_hint": first, "first_hint_ms": first_ms,
                               "codes": [code for _, code in r["hints"]]})
            if not r["seen"]:
                break
    return {"per_kind": {k: dict(v) for k, v in per_kind.items()}, "hinted_steps": listed,
            "files_by_version": dict(versions)}


def report(res: dict[str, Any], cache: Path) -> str:
    pk = res["per_kind"]
    rows = []
    for kind in KINDS:
        c = pk.get(kind, {})
        codes = ", ".join(f"{code} {c[f'code:{code}']}" for code in sorted(steps.ACTION_HINT_CODES)
                          if c.get(f"code:{code}"))
        rows.append(f"| {kind} | {c.get('sessions', 0)} | {c.get('seen_hinted', 0)}/{c.get('seen_steps', 0)} | "
                    f"{c.get('missed_hinted', 0)}/{c.get('missed_steps', 0)} | {codes or '-'} |")
    genuine = [h for h in res["hinted_steps"] if h["kind"] != "cued_replay"]
    lines = "\n".join(f"| {h['session']} | {h['challenge']} | {h['state']} | {h['first_hint']} at "
                      f"{h['first_hint_ms']} ms | {' '.join(h['codes'])} |" for h in genuine)
    return f"""## Action hints on pad_eval's cached sessions (`benchmarks/action_hints.py`)

{now()}; recomputed from `{cache}` (paced sessions only, files by synthesis version {res["files_by_version"]};
nothing re-scored). Each challenge step is judged chunk by chunk (1 s grid) as paced.py does, with the hint of
`steps.step_hints` (action hint from {steps.ACTION_HINT_AFTER_MS} ms after the prompt, framing hints first). Cells:
steps that got an action hint before they were seen / steps seen, and missed steps that got one / steps missed;
a step's window is {steps.CHALLENGE_WINDOW_MS} ms, + {steps.HINT_EXTRA_WINDOW_MS} ms from its first action hint.
Since pad_eval g6/c6 the footage reacts to that hint (`attacks.Actor.hint`, an assumed speech rate, one reaction;
the cued-replay attacker re-cues likewise), so a hinted step counted as seen may be seen because of it. REAL clips
with SYNTHETIC head turns (3D renders) for the genuine kinds; cued replays are synthetic attacks.

| kind | sessions | seen steps hinted first | missed steps hinted | first codes |
|---|---|---|---|---|
{chr(10).join(rows)}

Genuine steps that got an action hint:

| session | challenge | step | first hint | codes per chunk until seen or over |
|---|---|---|---|---|
{lines}

Rerun: `python benchmarks/action_hints.py {cache}`."""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("cache", type=Path, help="pad_eval's per-session cache directory")
    ap.add_argument("--no-readme", action="store_true", help="print and write the JSON only")
    a = ap.parse_args()
    res = run(a.cache)
    data = {"when": now(), "cache": str(a.cache), "action_hint_after_ms": steps.ACTION_HINT_AFTER_MS,
            "machine": machine()} | res
    publish("action_hints", "action_hints", data, report(res, a.cache), readme=not a.no_readme)


if __name__ == "__main__":
    main()
