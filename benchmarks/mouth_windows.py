"""Does a PLAIN replay of found footage pass the blink or the open_mouth step without acting anything?

    nice -n 10 .venv/bin/python benchmarks/mouth_windows.py       # ~1-2 min; results/mouth_windows.json + README

Issue 12's outside attacker replayed footage of the pensioner and cued it by hand: "every failure was an
open_mouth challenge the footage could not act". A blink, by contrast, is spontaneous (people blink every few
seconds). This measures both on the two REAL clips in ../shared/faces/video (talking_head_a: a person talking,
8 s; blink_7_times_1080p: a person blinking 7 times, silent, 10.3 s), played as they are (looped), nothing cued:

* every frame of the clip as a portrait camera frame (attacks.genuine_frame, the face at ~0.6 of the width,
  the page's oval; no camera noise or screen: the footage at its cleanest) through PRODUCTION's frame engine
  (verification.load_frame_engine: dlib HOG on a 320 px copy, 68 landmarks, eye patches as frames.observe);
* a paced step as production judges it (steps.judge_challenge: counted from MIN_REACTION_MS after the reveal,
  only after a frame at rest), the pensioner's baseline from the 0.8 s before the reveal at the settle rate
  (steps.baseline_of over steps.SETTLE_STEADY_MS, as steps.settle), the step's frames at its capture rate
  (steps.capture_fps: 8 fps for open_mouth, 15 fps for blink) for W ms after the reveal;
* (a) the share of reveal phases (every source frame of the looped clip: 200 and 308 starts; overlapping
  windows of ONE clip each, so they are phases, not independent people) at which such a plain replay passes
  the open_mouth step and the blink step, for W = 6 s, 8 s (steps.CHALLENGE_WINDOW_MS) and 11 s (+ the action
  hint's steps.HINT_EXTRA_WINDOW_MS); for open_mouth also under a candidate HOLD rule (k consecutive face frames
  over the same threshold, after a frame at rest; not production's rule);
* (c) whether plain speech would hold an open_mouth step open past its window (session 11's
  steps.mouth_opening, via steps.under_way / held_window, chunk by chunk): :func:`opening_hold`;
* (b) runs of consecutive 8 fps frames over the open_mouth threshold (max(mouth_open_abs, baseline MAR +
  mouth_open_delta), the baseline the clip's median MAR) over the whole looped clip, for 25 phases of the 8 fps
  grid (5 ms apart), and the same at the clip's own frame rate (run durations in ms).

What is NOT here: other people's footage (two clips, two people), a replay through a screen and camera (the
cleanest case for the attacker is measured), cued footage (replay_sweep's ``cued_*`` rows do that).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import attacks as atk  # noqa: E402
from benchmarks._common import machine, now, publish  # noqa: E402
from benchmarks.pad_eval import read_clip  # noqa: E402
from lifecert.config import Settings  # noqa: E402
from lifecert.engine import geometry  # noqa: E402
from lifecert.engine.eyes import eye_patches  # noqa: E402
from lifecert.engine.liveness import Baseline, FrameObs, LivenessParams, signals  # noqa: E402
from lifecert.services.verification import load_frame_engine, steps  # noqa: E402

FACES = Path(os.environ.get("LIFECERT_SHARED_FACES", ROOT.parent / "shared" / "faces"))
CLIPS = ("talking_head_a", "blink_7_times_1080p")
FACE_FRAC = 0.60  # face box width / frame width: the middle of pad_eval.GENUINE_FACE_FRAC (the page's oval)
WINDOWS_MS = (6_000, steps.CHALLENGE_WINDOW_MS, steps.CHALLENGE_WINDOW_MS + steps.HINT_EXTRA_WINDOW_MS)
HOLDS = (1, 2, 3)  # k consecutive frames over the threshold (1 = production's single frame)
PHASES = 25  # (b): 8 fps grids, 5 ms apart


def observe_clip(engine: Any, frames: list[np.ndarray]) -> tuple[list[FrameObs | None], float]:
    """Each source frame as production's engine sees it (t_ms set later): FrameObs without time, or None."""
    probe = engine.detect(atk.genuine_frame(frames[0]))
    zoom = 1.0
    if probe:
        zoom = FACE_FRAC / ((probe[0].box[2] - probe[0].box[0]) / atk.CAMERA[0])
    out: list[FrameObs | None] = []
    widths = []
    for fr in frames:
        img = atk.genuine_frame(fr, zoom=zoom)
        faces = engine.detect(img)
        if not faces or faces[0].landmarks68 is None:
            out.append(None)
            continue
        lm = np.asarray(faces[0].landmarks68, np.float32)
        widths.append((faces[0].box[2] - faces[0].box[0]) / atk.CAMERA[0])
        out.append(FrameObs(0, lm, np.asarray(faces[0].box[:4], np.float32), len(faces), eye_patches(img, lm)))
    return out, float(np.median(widths)) if widths else float("nan")


def at(obs: list[FrameObs | None], fps: float, t_ms: float, stamp: int) -> FrameObs:
    """The looped clip's frame shown at ``t_ms`` (clip time), stamped ``stamp`` (session ms)."""
    o = obs[round(t_ms * fps / 1000.0) % len(obs)]
    return FrameObs(stamp, None) if o is None else FrameObs(stamp, o.landmarks, o.box, o.num_faces, o.eyes)


def grid(start_ms: float, span_ms: float, rate: float) -> list[float]:
    return [start_ms + i * 1000.0 / rate for i in range(int(span_ms * rate / 1000.0) + 1)]


def held_mouth(frames: list[FrameObs], base: Baseline, reveal_ms: int, k: int, p: LivenessParams) -> bool:
    """Candidate hold rule: after a frame at rest (counted from MIN_REACTION_MS after the reveal, as
    judge_challenge), k consecutive face frames over the open_mouth threshold."""
    sig = signals(frames)
    thr = max(p.mouth_open_abs, base.mar + p.mouth_open_delta)
    rested, run = False, 0
    for t, m in zip(sig.t_ms, sig.mar, strict=True):
        if math.isnan(m):
            run = 0
            continue
        if t < reveal_ms + steps.MIN_REACTION_MS:
            continue
        if m < thr:
            rested, run = True, 0
            continue
        if rested:
            run += 1
            if run >= k:  # a frame without a face in between restarts the count (below)
                return True
    return False


def windows(obs: list[FrameObs | None], fps: float, p: LivenessParams) -> dict[str, Any]:
    """(a): per window length, passes over every reveal phase (one per source frame)."""
    n = len(obs)
    settle_rate = steps.capture_fps(None)
    out: dict[str, Any] = {}
    for w in WINDOWS_MS:
        cnt: Counter[str] = Counter()
        phases = 0
        for s in range(n):
            reveal = 10_000  # session ms of the reveal; clip time s / fps there
            clip0 = s * 1000.0 / fps
            lead = [at(obs, fps, clip0 + (t - reveal), round(t))
                    for t in grid(reveal - steps.SETTLE_STEADY_MS, steps.SETTLE_STEADY_MS, settle_rate)]
            lead = [f for f in lead if f.landmarks is not None]
            if len(lead) < steps.SETTLE_MIN_FRAMES:
                cnt["no_baseline"] += 1
                continue
            base = steps.baseline_of(lead)
            phases += 1
            for name in ("open_mouth", "blink"):
                rate = steps.capture_fps(name)
                fr = [at(obs, fps, clip0 + (t - reveal), round(t)) for t in grid(reveal, w, rate)]
                j = steps.judge_challenge(name, fr, base, reveal, p)
                cnt[name] += int(j.seen)
                if name == "open_mouth":
                    for k in HOLDS:
                        cnt[f"open_mouth_hold{k}"] += int(held_mouth(fr, base, reveal, k, p))
        out[str(w)] = {"phases": phases, **{k: v for k, v in sorted(cnt.items())}}
    return out


def opening_hold(obs: list[FrameObs | None], fps: float, p: LivenessParams) -> dict[str, Any]:
    """(c): would plain speech hold an open_mouth step open (steps.under_way -> steps.mouth_opening)? For every reveal
    phase (one per source frame), baseline and frames as (a), the page's chunks every steps.CHUNK_MS from the
    reveal: at each chunk's end past the step's window (from steps.CHALLENGE_WINDOW_MS; and from the ``heard``
    rule's longest, CHALLENGE_WINDOW_MS + HINT_EXTRA_WINDOW_MS) the step is held to steps.held_window when the
    newest frame shows the mouth opening, chunk by chunk, as paced.py does, never past the cap. Counted twice: as
    production judges (the step over once seen), and IGNORING the judge (a talker whose openings never reach the
    threshold: what speech alone does to the hold). Also the share of all 8 fps frames of the window at which the
    rule would fire."""
    n = len(obs)
    settle_rate = steps.capture_fps(None)
    rate = steps.capture_fps("open_mouth")
    out: dict[str, Any] = {}
    for w in (steps.CHALLENGE_WINDOW_MS, steps.CHALLENGE_WINDOW_MS + steps.HINT_EXTRA_WINDOW_MS):
        cnt: Counter[str] = Counter()
        holds_ms: list[int] = []
        fired = frames_seen = 0
        for s in range(n):
            reveal = 10_000
            clip0 = s * 1000.0 / fps
            lead = [at(obs, fps, clip0 + (t - reveal), round(t))
                    for t in grid(reveal - steps.SETTLE_STEADY_MS, steps.SETTLE_STEADY_MS, settle_rate)]
            lead = [f for f in lead if f.landmarks is not None]
            if len(lead) < steps.SETTLE_MIN_FRAMES:
                continue
            base = steps.baseline_of(lead)
            cnt["phases"] += 1
            fr = [at(obs, fps, clip0 + (t - reveal), round(t))
                  for t in grid(reveal, steps.HINT_MAX_WINDOW_MS + steps.CHUNK_MS, rate)]
            for k in range(len(fr)):  # (the rule at every frame of the window)
                if fr[k].t_ms - reveal <= w:
                    frames_seen += 1
                    fired += int(steps.mouth_opening(fr[: k + 1], base, reveal, p))
            for judged in (True, False):
                window, seen_at, chunk = w, None, steps.CHUNK_MS
                while True:
                    upto = [f for f in fr if f.t_ms < reveal + chunk]
                    if judged and steps.judge_challenge("open_mouth", upto, base, reveal, p).seen:
                        seen_at = chunk
                        break
                    if chunk > window:
                        if steps.under_way("open_mouth", upto, base, reveal, p):
                            held = steps.held_window(window, upto[-1].t_ms - reveal)
                            if held > window:
                                window = held
                                chunk += steps.CHUNK_MS
                                continue
                        break
                    chunk += steps.CHUNK_MS
                tag = "judged" if judged else "speech_only"
                if window > w:
                    cnt[f"{tag}_held"] += 1
                    if not judged:
                        holds_ms.append(window - w)
                    if window >= steps.HINT_MAX_WINDOW_MS:
                        cnt[f"{tag}_to_cap"] += 1
                if judged and seen_at is not None:
                    cnt["judged_seen"] += 1
                    cnt["judged_seen_in_hold"] += int(seen_at > w and window > w)
        out[str(w)] = {**dict(sorted(cnt.items())), "frames": frames_seen, "frames_fired": fired,
                       "speech_only_hold_ms": sorted(holds_ms)}
    return out


def runs(obs: list[FrameObs | None], fps: float, p: LivenessParams) -> dict[str, Any]:
    """(b): runs of consecutive frames over the open_mouth threshold, at 8 fps (every phase) and at the clip's
    own rate, the threshold from the clip's median MAR."""
    mar = np.array([np.nan if o is None or o.landmarks is None else geometry.mouth_aspect_ratio(o.landmarks)
                    for o in obs])
    base_mar = float(np.nanmedian(mar))
    thr = max(p.mouth_open_abs, base_mar + p.mouth_open_delta)

    def run_lengths(vals: np.ndarray) -> list[int]:
        over = np.nan_to_num(vals, nan=0.0) > thr
        if over.all():
            return [len(over)]
        # looped clip: start counting just after a frame under the threshold
        k0 = int(np.argmin(over))
        rolled = np.roll(over, -k0)
        out, r = [], 0
        for o in rolled:
            if o:
                r += 1
            elif r:
                out.append(r)
                r = 0
        if r:
            out.append(r)
        return out

    rate = steps.capture_fps("open_mouth")
    per_phase: list[list[int]] = []
    dur = 1000.0 * len(obs) / fps
    for ph in range(PHASES):  # the 8 fps grid shifted by 1/PHASES of its interval each time
        t = [ph * 1000.0 / rate / PHASES + i * 1000.0 / rate for i in range(int(dur * rate / 1000.0))]
        per_phase.append(run_lengths(np.array([mar[round(x * fps / 1000.0) % len(obs)] for x in t])))
    all_runs = [r for ph in per_phase for r in ph]
    native = run_lengths(mar)
    return {"baseline_mar_median": round(base_mar, 4), "threshold": round(thr, 4),
            "mar_max": round(float(np.nanmax(mar)), 4), "mar_p90": round(float(np.nanpercentile(mar, 90)), 4),
            "source_frames_over": int(np.sum(np.nan_to_num(mar) > thr)), "source_frames": len(obs),
            "phases_8fps": len(per_phase), "runs_8fps_per_phase": per_phase,
            "run_length_8fps_counts": dict(sorted(Counter(all_runs).items())),
            "runs_native_ms": [round(r * 1000.0 / fps) for r in native]}


def text(res: dict[str, Any]) -> str:
    lines = ["## A plain replay against the blink and open_mouth steps (`benchmarks/mouth_windows.py`)", "",
             f"{res['date']}, {res['machine']['cpu']} ({res['machine']['nproc']} cores, shared, niced). **Real**: "
             "the two clips of ../shared/faces/video played as they are, looped, NOTHING cued, every frame through "
             "production's frame engine (dlib HOG on a 320 px copy, 68 landmarks, eye patches) with the face at 0.6 "
             "of a 480x640 frame; no screen, no camera noise (the footage at its cleanest). Each step judged by "
             "`steps.judge_challenge` (from 250 ms after the reveal, after a frame at rest), the baseline from the "
             "0.8 s before the reveal at 8 fps, the step's frames at `steps.capture_fps` (open_mouth 8 fps, blink 15 "
             "fps). One window per source frame of the clip (phases of ONE person's footage, overlapping: not "
             "independent sessions). `hold k`: a candidate rule, k consecutive frames over the same threshold "
             "(k = 1 is production's).", "",
             "| clip | window | phases | open_mouth passed (plain replay) | hold 2 | hold 3 | blink passed (plain "
             "replay) |", "|---|---|---|---|---|---|---|"]
    for clip, r in res["clips"].items():
        for w, c in r["windows"].items():
            n = c["phases"]

            def pct(k: str, n: int = n, c: dict[str, Any] = c) -> str:
                return f"{c.get(k, 0)}/{n} = {100 * c.get(k, 0) / max(n, 1):.0f} %"

            lines.append(f"| {clip} | {int(w) / 1000:.0f} s | {n} | {pct('open_mouth')} | {pct('open_mouth_hold2')} | "
                         f"{pct('open_mouth_hold3')} | {pct('blink')} |")
    lines += ["", "Runs of consecutive frames over the open_mouth threshold (max(0.30, median MAR + 0.12)) in the "
              "whole looped clip, at 8 fps over every phase, and at the clip's own rate:", "",
              "| clip | median MAR | threshold | max MAR | source frames over | runs at 8 fps: length -> count (all "
              "phases) | runs at the clip's rate (ms) |", "|---|---|---|---|---|---|---|"]
    for clip, r in res["clips"].items():
        b = r["runs"]
        lines.append(f"| {clip} | {b['baseline_mar_median']} | {b['threshold']} | {b['mar_max']} | "
                     f"{b['source_frames_over']}/{b['source_frames']} | "
                     f"{', '.join(f'{k}: {v}' for k, v in b['run_length_8fps_counts'].items()) or 'none'} "
                     f"({b['phases_8fps']} phases) | {', '.join(map(str, b['runs_native_ms'])) or 'none'} |")
    o = res.get("opening", {})
    lines += ["", "(c) Would plain speech hold an open_mouth step open (`steps.under_way` -> `steps.mouth_opening`: "
              f"the newest frame's MAR >= baseline + {o.get('delta', '?')} and under the threshold, the mean of the "
              f"newest {o.get('recent_frames', '?')} above every frame {o.get('gap_ms', '?')}-{o.get('rise_ms', '?')} "
              "ms before it)? Same "
              "phases and baseline as above, the page's chunks every 1 s from the reveal, held chunk by chunk as "
              "paced.py does (`steps.held_window`, 2 s past the newest frame, cap `steps.HINT_MAX_WINDOW_MS`). "
              "*judged*: as production (over once seen); *speech only*: the judge ignored (a talker whose openings "
              "never reach the threshold: what speech alone does to the hold). `frames fired`: share of all 8 fps "
              "frames of the window at which the rule fires.", "",
              "| clip | window | phases | frames fired | judged: held / seen / seen in the hold | speech only: held "
              "| speech only: to the cap | speech only: hold ms (each held phase) |",
              "|---|---|---|---|---|---|---|---|"]
    for clip, r in res["clips"].items():
        for w, c in r.get("opening_hold", {}).items():
            n = c.get("phases", 0)
            hold = ", ".join(f"{k}: {v}" for k, v in sorted(Counter(c.get("speech_only_hold_ms", [])).items()))
            lines.append(f"| {clip} | {int(w) / 1000:.0f} s | {n} | {c['frames_fired']}/{c['frames']} = "
                         f"{100 * c['frames_fired'] / max(c['frames'], 1):.1f} % | {c.get('judged_held', 0)} / "
                         f"{c.get('judged_seen', 0)} / {c.get('judged_seen_in_hold', 0)} | "
                         f"{c.get('speech_only_held', 0)}/{n} | {c.get('speech_only_to_cap', 0)} | {hold or 'none'} |")
    lines += ["", res.get("reading", "")]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-readme", action="store_true")
    a = ap.parse_args(argv)
    engine = load_frame_engine(Settings(), name="dlib")
    p = LivenessParams()
    res: dict[str, Any] = {"date": now(), "machine": machine(), "face_frac": FACE_FRAC,
                           "capture_fps": {"open_mouth": steps.capture_fps("open_mouth"),
                                           "blink": steps.capture_fps("blink"), "settle": steps.capture_fps(None)},
                           "params": {"mouth_open_abs": p.mouth_open_abs, "mouth_open_delta": p.mouth_open_delta},
                           "opening": {"delta": steps.MOUTH_OPENING_DELTA, "rise_ms": steps.MOUTH_RISE_MS,
                                       "gap_ms": steps.MOUTH_RISE_GAP_MS, "recent_frames": steps.MOUTH_RECENT_FRAMES,
                                       "hold_ms": steps.UNDER_WAY_HOLD_MS,
                                       "cap_ms": steps.HINT_MAX_WINDOW_MS},
                           "clips": {}}
    for clip in CLIPS:
        frames, fps = read_clip(FACES / "video" / f"{clip}.mp4", 640)
        obs, width = observe_clip(engine, frames)
        res["clips"][clip] = {"fps": fps, "frames": len(frames), "with_face": sum(o is not None for o in obs),
                              "face_width_median": round(width, 3), "windows": windows(obs, fps, p),
                              "runs": runs(obs, fps, p), "opening_hold": opening_hold(obs, fps, p)}
        print(clip, res["clips"][clip]["windows"], res["clips"][clip]["runs"]["run_length_8fps_counts"],
              res["clips"][clip]["opening_hold"], flush=True)
    prev = ROOT / "benchmarks" / "results" / "mouth_windows.json"
    if prev.is_file():  # the reading is written by hand after a run; keep it
        import json

        res["reading"] = json.loads(prev.read_text()).get("reading", "")
    publish("mouth_windows", "mouth_windows", res, text(res), readme=not a.no_readme)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
