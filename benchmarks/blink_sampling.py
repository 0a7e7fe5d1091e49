"""Does the blink test catch REAL blinks at the page's capture rate (8 fps), and at 12 or 15 fps?

    nice -n 10 python benchmarks/blink_sampling.py [--rates 8,12,15] [--budget-s 540]
    nice -n 10 python benchmarks/blink_sampling.py --more-attacks --budget-s 330   # more photos, added up
    python benchmarks/blink_sampling.py --render        # the README section again from the JSON

Every measurement below is made at each capture rate of ``--rates`` (the page's 8 fps and the faster
rates a blink / open-mouth step could ask for, steps.capture_fps): the clips' per-frame observations are
made once at the source rate and sampled at each rate (phases spread over that rate's frame interval);
the warped turns/nods are rendered per rate (2 phases, to bound the run) and the attacks once at the
highest rate, 8 s, sampled down by time for the lower ones (one render = one tremor step, so at the
highest rate the hand moves a little faster than at 8 fps in session 4's run). The attacks stop at
``--budget-s`` (wall, from the start); ``--more-attacks`` continues the same pick of photos.

A blink closes the eye for ~100-300 ms; the page samples the camera every 125 ms, so which part of
a blink lands on a sampled frame depends on the phase. For each real clip in ../shared/faces/video
(made a portrait camera frame as the benchmarks do, attacks.genuine_frame), every source frame gets
dlib's 68 landmarks and the eye aspect ratio (EAR); the open-eye baseline is the clip's 75th EAR
percentile (production takes a high percentile over the settle frames). A blink event is a run of
frames below 0.85 x baseline. For 8 evenly spaced phases of each rate's sampling, the lowest sampled
EAR of each event is compared with the blink test's cut ``min(blink_drop x base, base - min_abs_drop)``
(lifecert.engine.liveness.detect_blink) for several ``blink_drop`` values. Reported: events x phases
caught. The other side is NOT measured here (an "event" is any run under 0.85, so no open-eye frame can
fall under a cut <= 0.85 by construction): a talking face dips to ~0.8 without blinking, which is why
0.85 was tried and reverted (see lifecert.engine.liveness.LivenessParams). Real footage only; 3 clips of
3 people, not elderly.

The eye PIXELS (lifecert.engine.eyes, ``LivenessParams.eye_cut``), measured the same way with production's
own blink test (liveness.detect_blink_any: the EAR dip, else the pixel dip) on each rate's samples:
1. blinks caught: per event x phase, the test over the samples from 0.7 s before to 0.7 s after the event,
   caught when its closed frame lies within 0.3 s of the event (dlib's EAR minimum lags the closure seen in
   the pixels by a frame or two), split by the signal that saw it (EAR / pixels only / either);
2. false fires on REAL non-blink footage: every run of samples further than 0.3 s from any event, per phase
   (talking_head_a talks throughout); and the same runs with a synthetic head turn (attacks.turn_head,
   yaw 0 -> +-20/35 deg -> 0 in 0.75 s) or nod (pitch 15 deg), open-eye reference not required;
3. prints and stills: LFW photos through attacks.PaperPrint (tremor, curl, tilt) or a phone screen
   (attacks.PhoneScreen) and attacks.Camera, 8 s each (PRINTS + STILLS photos, alternating), the whole
   sequence judged;
4. cost: CPU per frame of eye_patches on the 480x640 frames, and of the pixel test on one 8-s window.
A summary line per rate closes the README section: blinks caught against false fires.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import attacks as atk  # noqa: E402
from _common import machine, now, publish  # noqa: E402
from pad_eval import read_clip  # noqa: E402

from lifecert.config import Settings  # noqa: E402
from lifecert.engine import eyes, geometry  # noqa: E402
from lifecert.engine.base import FaceEngine  # noqa: E402
from lifecert.engine.image import read_image_file  # noqa: E402
from lifecert.engine.liveness import (  # noqa: E402
    Baseline,
    LivenessParams,
    Signals,
    detect_blink_any,
    detect_blink_pixels,
)
from lifecert.engine.loader import load_engine  # noqa: E402

CLIPS = ("blink_7_times_1080p.mp4", "talking_head_a.mp4", "blink_2_times_tiny.mp4")
DROPS = (0.70, 0.75, 0.80, 0.85)
FPS = 8.0  # the rate being measured (main() sets it per rate of --rates)
RATES = (8, 12, 15)
PHASES = 8
ATTACK_S = 8.0  # attack sequence length (the blink step's window)


def events(ratio: np.ndarray, below: float = 0.85, gap: int = 2) -> list[list[int]]:
    out: list[list[int]] = []
    for i in np.nonzero(ratio < below)[0]:
        if out and i - out[-1][-1] <= gap:
            out[-1].append(int(i))
        else:
            out.append([int(i)])
    return out


def study(ear: np.ndarray, fps: float, p: LivenessParams) -> dict[str, Any]:
    base = float(np.nanpercentile(ear, 75))
    ratio = ear / base
    evs = events(ratio)
    step = fps / FPS
    res: dict[str, Any] = {"frames": len(ear), "fps": fps, "baseline_ear": round(base, 4), "events": len(evs),
                           "event_min_full_rate": [round(float(np.nanmin(ratio[e])), 3) for e in evs]}
    for d in DROPS:
        cut = min(d * base, base - p.blink_min_abs_drop)
        caught = total = 0
        for ph in np.linspace(0.0, step, PHASES, endpoint=False):
            t = np.arange(ph, len(ear) - 0.5, step).round().astype(int)
            t = t[t < len(ear)]
            for e in evs:
                s = [i for i in t if e[0] - 1 <= i <= e[-1] + 1 and not np.isnan(ear[i])]
                total += 1
                caught += int(bool(s) and min(ear[i] for i in s) < cut)
        res[f"drop_{d:.2f}"] = {"cut_ratio": round(cut / base, 3), "caught": caught, "event_phases": total}
    return res


EYE_CUT = 0.10  # the pixel rule's cut measured here (LivenessParams.eye_cut when adopted)
NEAR_S = 0.3  # a closed frame this close to an event is that blink; samples this far from every event are open
TURNS = ((20.0, 0.0), (-20.0, 0.0), (35.0, 0.0), (-35.0, 0.0), (0.0, 15.0))  # (yaw, pitch) degrees
PRINTS, STILLS = 16, 16
MOTION_PHASES = 2

Patch = np.ndarray | None


def observe(engine: FaceEngine, img: np.ndarray) -> tuple[float, Patch, np.ndarray | None]:
    """(EAR, eye patches, landmarks) of one frame's main face; (nan, None, None) without one."""
    det = engine.detect(img)
    if not det or det[0].landmarks68 is None:
        return float("nan"), None, None
    lm = det[0].landmarks68
    return geometry.eye_aspect_ratio(lm), eyes.eye_patches(img, lm), lm


def judge(ear: np.ndarray, patches: list[Patch], lms: list[np.ndarray | None], t_ms: list[int], base_ear: float,
          p: LivenessParams) -> tuple[bool, int | None, str]:
    """Production's blink test (detect_blink_any) over one run of samples: (seen, index of its frame, signal)."""
    n = len(ear)
    nan = np.full(n, np.nan)
    yaw = np.array([np.nan if m is None else geometry.yaw_ratio(m) for m in lms])
    pitch = np.array([np.nan if m is None else geometry.pitch_ratio(m) for m in lms])
    sig = Signals(np.asarray(t_ms, np.int64), np.asarray(ear, np.float64), nan, yaw, pitch, tuple(patches))
    base = Baseline(base_ear, float("nan"), float("nan"), float("nan"), 0)
    ok, i, _v, _thr, signal = detect_blink_any(sig, np.arange(n), base, p)
    return ok, i, signal


def samples(n: int, fps: float, phase: float) -> np.ndarray:
    t = np.arange(phase, n - 0.5, fps / FPS).round().astype(int)
    return t[t < n]


def pixel_study(ear: np.ndarray, patches: list[Patch], lms: list[np.ndarray | None], fps: float,
                p: LivenessParams) -> dict[str, Any]:
    """Blinks caught by signal (1.) and false fires on the open-eye runs (2.), 8 fps x PHASES phases."""
    base = float(np.nanpercentile(ear, 75))
    evs = events(ear / base)
    t_ms = [round(i * 1000 / fps) for i in range(len(ear))]
    near = round(NEAR_S * fps)
    blocked = {i for e in evs for i in range(e[0] - near, e[-1] + near + 1)}
    caught = {"ear": 0, "eye_pixels": 0, "either": 0}
    total = runs = fires_ear = fires_px = 0
    open_s = 0.0
    for ph in np.linspace(0.0, fps / FPS, PHASES, endpoint=False):
        t = samples(len(ear), fps, ph)
        for e in evs:
            w = [int(i) for i in t if t_ms[e[0]] - 700 <= t_ms[i] <= t_ms[e[-1]] + 700]
            total += 1
            ok, i, signal = judge(ear[w], [patches[j] for j in w], [lms[j] for j in w], [t_ms[j] for j in w], base, p)
            if ok and i is not None and e[0] - near <= w[i] <= e[-1] + near:
                caught[signal] += 1
                caught["either"] += 1
        run: list[int] = []
        for i in [*t.tolist(), -1]:
            if i >= 0 and i not in blocked:
                run.append(i)
                continue
            if len(run) >= 3:
                runs += 1
                open_s += (run[-1] - run[0]) / fps
                ok, _i, signal = judge(ear[run], [patches[j] for j in run], [lms[j] for j in run],
                                       [t_ms[j] for j in run], base, p)
                fires_ear += int(ok and signal == "ear")
                fires_px += int(ok and signal == "eye_pixels")
            run = []
    cutout = 0  # all open samples of a phase as ONE sequence (blinks cut out, real times kept)
    for ph in np.linspace(0.0, fps / FPS, PHASES, endpoint=False):
        w = [int(i) for i in samples(len(ear), fps, ph) if int(i) not in blocked]
        ok, _i, signal = judge(ear[w], [patches[j] for j in w], [lms[j] for j in w], [t_ms[j] for j in w], base, p)
        cutout += int(ok and signal == "eye_pixels")
    return {"cutout_fires_pixels": cutout, "events": len(evs), "event_phases": total, "caught": caught,
            "open_runs": runs,
            "open_run_s": round(open_s, 1), "false_fires_ear": fires_ear, "false_fires_pixels": fires_px}


def head_motion(engine: FaceEngine, frames: list[np.ndarray], ear: np.ndarray, lms: list[np.ndarray | None],
                fps: float, p: LivenessParams) -> dict[str, Any]:
    """Turns and nods acted by warping open-eye runs (2.): pixel fires over all warps, no open-eye reference
    demanded (ref_ok None: stricter than production)."""
    base = float(np.nanpercentile(ear, 75))
    evs = events(ear / base)
    near = round(NEAR_S * fps)
    blocked = {i for e in evs for i in range(e[0] - near, e[-1] + near + 1)}
    # out and back in 0.75 s, then 0.25 s held (9 samples at 8 fps), sampled at the rate measured
    at_8 = (0.0, 0.35, 0.8, 1.0, 0.8, 0.35, 0.0, 0.0, 0.0)
    shape = np.interp(np.arange(round(FPS) + 1) / FPS, np.arange(9) / 8.0, at_8)
    profile = tuple(float(v) for v in shape)
    seqs = fires = fires_ear = raw = 0
    for ph in np.linspace(0.0, fps / FPS, MOTION_PHASES, endpoint=False):
        t = [int(i) for i in samples(len(frames), fps, ph) if i not in blocked and lms[i] is not None]
        for k in range(0, len(t) - len(profile), len(profile)):
            src = t[k : k + len(profile)]
            if src[-1] - src[0] > len(profile) * fps / FPS + 1:  # not one open-eye run
                continue
            for yaw, pitch in TURNS:
                pats: list[Patch] = []
                ears: list[float] = []
                lmw: list[np.ndarray | None] = []
                for j, f in zip(src, profile, strict=True):
                    lm = lms[j]
                    assert lm is not None
                    x1, y1 = lm.min(axis=0)
                    x2, y2 = lm.max(axis=0)
                    img = atk.turn_head(frames[j], (x1, y1 - 0.3 * (y2 - y1), x2, y2), yaw * f, pitch * f)
                    e_, p_, l_ = observe(engine, img)
                    pats.append(p_)
                    ears.append(e_)
                    lmw.append(l_)
                seqs += 1
                tm = [round(q * 1000 / FPS) for q in range(len(pats))]
                raw += int(eyes.closure_dip(pats, tm, cut=p.eye_cut or EYE_CUT, back=p.eye_back,
                                            span_ms=p.eye_span_ms) is not None)
                ok, _i, signal = judge(np.array(ears), pats, lmw, tm, base, p)
                fires += int(ok and signal == "eye_pixels")
                fires_ear += int(ok and signal == "ear")
    return {"sequences": seqs, "pixel_fires": fires, "ear_fires": fires_ear, "pixel_dips_unguarded": raw}


def attacks_study(engine: FaceEngine, faces: Path, p: LivenessParams, rates: tuple[int, ...],
                  deadline: float, start: int = 0) -> dict[int, dict[str, Any]]:
    """LFW photos as paper prints and on phone screens (3.): the whole 8-s sequence through the blink test,
    rendered once at the highest rate (one render = one frame interval of tremor) and sampled down by time
    for the lower rates. Photos alternate print/still; stops at ``deadline`` (time.time())."""
    photos = sorted((faces / "lfw" / "images").rglob("*.jpg"))
    pick = photos[:: max(1, len(photos) // (PRINTS + STILLS))][: PRINTS + STILLS]
    top = max(rates)
    out: dict[int, dict[str, Any]] = {
        r: {"print": {"sessions": 0, "fires_ear": 0, "fires_pixels": 0},
            "still": {"sessions": 0, "fires_ear": 0, "fires_pixels": 0}, "photos": []} for r in rates}
    for k, path in enumerate(pick):
        if k < start:
            continue
        if time.time() > deadline:
            break
        rng = np.random.default_rng([7, k])
        photo = read_image_file(path)
        kind = "print" if k % 2 == 0 else "still"
        cam = atk.Camera.random(rng)
        n_top = round(ATTACK_S * top)
        if kind == "print":
            paper = atk.PaperPrint(rng, photo)
            imgs = [cam.shoot(paper.render()) for _ in range(n_top)]
        else:
            phone = atk.PhoneScreen(rng)
            imgs = [cam.shoot(phone.render(photo)) for _ in range(n_top)]
        got_top = [observe(engine, im) for im in imgs]
        del imgs
        for rate in rates:
            pick_i = sorted({min(n_top - 1, round(q * top / rate)) for q in range(round(ATTACK_S * rate))})
            got = [got_top[i] for i in pick_i]
            ear = np.array([g[0] for g in got])
            if np.isnan(ear).all():
                continue
            lead = round(rate)  # the first second stands in for the settle frames
            base = (float(np.nanpercentile(ear[:lead], 75)) if not np.isnan(ear[:lead]).all()
                    else float(np.nanpercentile(ear, 75)))
            ok, _i, signal = judge(ear, [g[1] for g in got], [g[2] for g in got],
                                   [round(i * 1000 / top) for i in pick_i], base, p)
            r = out[rate][kind]
            r["sessions"] += 1
            r["fires_ear"] += int(ok and signal == "ear")
            r["fires_pixels"] += int(ok and signal == "eye_pixels")
            if ok:
                out[rate]["photos"].append(f"{kind}:{path.name}:{signal}")
        for rate in rates:
            out[rate]["done"] = k + 1  # photos of the pick tried so far
    return out


def cost(patches_src: list[tuple[np.ndarray, np.ndarray]], p: LivenessParams) -> dict[str, Any]:
    """CPU ms per frame of eye_patches (480x640 frames), and of the pixel test over one 8-s window at 8 fps."""
    c0 = time.process_time()
    reps = 0
    for img, lm in patches_src:
        eyes.eye_patches(img, lm)
        reps += 1
    per_frame = (time.process_time() - c0) * 1000 / max(1, reps)
    pats = [eyes.eye_patches(img, lm) for img, lm in patches_src[: int(8 * FPS)]]
    n = len(pats)
    t_ms = np.round(np.arange(n) * 1000 / FPS).astype(np.int64)
    sig = Signals(t_ms, np.ones(n), np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan), tuple(pats))
    base = Baseline(0.9, float("nan"), float("nan"), float("nan"), 0)
    c0 = time.process_time()
    for _ in range(5):
        detect_blink_pixels(sig, np.arange(n), base, p)
    window = (time.process_time() - c0) * 1000 / 5
    return {"eye_patches_ms_per_frame": round(per_frame, 3), "frames_timed": reps,
            "pixel_test_ms_per_8s_window": round(window, 2), "window_frames": n}


def set_rate(rate: float) -> None:
    """The capture rate the sampling functions measure (module constant FPS)."""
    global FPS
    FPS = float(rate)


def merge_attacks(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Two attacks_study results over disjoint photos of the same pick, added up."""
    out: dict[str, Any] = {"photos": [*old.get("photos", []), *new.get("photos", [])],
                           "done": max(old.get("done", 0), new.get("done", 0))}
    for kind in ("print", "still"):
        out[kind] = {k: old[kind][k] + new[kind][k] for k in ("sessions", "fires_ear", "fires_pixels")}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rates", default=",".join(str(r) for r in RATES), help="capture rates (fps), comma-separated")
    ap.add_argument("--budget-s", type=float, default=540.0, help="stop rendering attacks after this (wall s)")
    ap.add_argument("--more-attacks", action="store_true",
                    help="only the attacks: continue the pick where results/blink_sampling.json stopped, add them up")
    ap.add_argument("--render", action="store_true", help="only rewrite the README section from the JSON")
    args = ap.parse_args()
    t0, c0 = time.time(), time.process_time()
    faces = ROOT.parent / "shared" / "faces"
    if args.render or args.more_attacks:
        data = json.loads((ROOT / "benchmarks" / "results" / "blink_sampling.json").read_text())
        if args.more_attacks:
            rates = tuple(int(r) for r in data["capture_fps"])
            p = LivenessParams()
            px = replace(p, eye_cut=p.eye_cut or EYE_CUT)
            start = min(int(data["by_rate"][str(r)]["eye_pixels"]["attacks"].get("done", 0)) for r in rates)
            more = attacks_study(load_engine(Settings(), name="dlib"), faces, px, rates, t0 + args.budget_s, start)
            for r in rates:
                ep = data["by_rate"][str(r)]["eye_pixels"]
                ep["attacks"] = merge_attacks(ep["attacks"], more[r])
            data["attacks_more"] = {"date": now(), "from_photo": start, "elapsed_s": round(time.time() - t0, 1),
                                    "cpu_s": round(time.process_time() - c0, 1)}
        publish("blink_sampling", "blink_sampling", data, render(data))
        return 0
    rates = tuple(sorted({int(r) for r in args.rates.split(",")}))
    engine = load_engine(Settings(), name="dlib")
    p = LivenessParams()
    px = replace(p, eye_cut=p.eye_cut or EYE_CUT)
    rows: dict[int, dict[str, Any]] = {r: {} for r in rates}
    pixels: dict[int, dict[str, Any]] = {r: {} for r in rates}
    motion: dict[int, dict[str, Any]] = {r: {} for r in rates}
    timed: list[tuple[np.ndarray, np.ndarray]] = []
    for name in CLIPS:
        frames, fps = read_clip(faces / "video" / name, max_h=1080)
        shots = [atk.genuine_frame(f) if min(f.shape[:2]) >= 256 else f for f in frames]  # tiny stays as it is
        del frames
        got = [observe(engine, g) for g in shots]
        ear = np.array([g[0] for g in got], dtype=np.float64)
        lms = [g[2] for g in got]
        for rate in rates:
            set_rate(rate)
            rows[rate][name] = study(ear, fps, p)
            pixels[rate][name] = pixel_study(ear, [g[1] for g in got], lms, fps, px)
            if name != "blink_2_times_tiny.mp4":
                motion[rate][name] = head_motion(engine, shots, ear, lms, fps, px)
        if name != "blink_2_times_tiny.mp4":
            timed += [(g, lm) for g, lm in zip(shots, lms, strict=True) if lm is not None][:80]
        del shots
    prints = attacks_study(engine, faces, px, rates, t0 + args.budget_s)
    cpu: dict[int, dict[str, Any]] = {}
    for rate in rates:
        set_rate(rate)
        cpu[rate] = cost(timed, px)
    data = {"date": now(), "machine": machine(), "capture_fps": list(rates), "phases": PHASES,
            "motion_phases": MOTION_PHASES, "attack_s": ATTACK_S,
            "blink_min_abs_drop": p.blink_min_abs_drop, "shipped_blink_drop": p.blink_drop,
            "by_rate": {str(r): {"clips": rows[r],
                                 "eye_pixels": {"eye_cut": px.eye_cut, "eye_back": px.eye_back,
                                                "eye_span_ms": px.eye_span_ms, "shipped_eye_cut": p.eye_cut,
                                                "near_s": NEAR_S, "clips": pixels[r], "head_motion": motion[r],
                                                "attacks": prints[r], "cost": cpu[r]}} for r in rates},
            "elapsed_s": round(time.time() - t0, 1), "cpu_s": round(time.process_time() - c0, 1)}
    publish("blink_sampling", "blink_sampling", data, render(data))
    return 0


def render(data: dict[str, Any]) -> str:
    """The README section from the JSON (``data``)."""
    rates = [int(r) for r in data["capture_fps"]]
    by = {r: data["by_rate"][str(r)] for r in rates}
    ep0 = by[rates[0]]["eye_pixels"]
    rate_list = "/".join(str(r) for r in rates)
    lines = [
        f"## Real blinks at {rate_list} fps (`benchmarks/blink_sampling.py`)",
        "",
        f"{data['date']}, {data['machine'].get('nproc', '?')} cores, {data['elapsed_s']} s wall / {data['cpu_s']} s "
        "CPU. REAL clips (../shared/faces/video), dlib EAR "
        "per source frame on the portrait camera frame; a blink event = a run under 0.85 × the clip's open-eye "
        f"EAR; {data['phases']} phases of each capture rate's sampling (spread over its frame interval) per event. "
        "*caught* = events × phases whose lowest sampled EAR "
        "is under the blink test's cut. "
        f"Shipped `blink_drop` = {data['shipped_blink_drop']}.",
        "",
        "| clip | fps | events | lowest EAR ratio per event (full rate) | "
        + " | ".join(f"drop {d:.2f}: caught" for d in DROPS) + " |",
        "|---|---|---|---|" + "---|" * len(DROPS),
    ]
    for name in CLIPS:
        for rate in rates:
            r = by[rate]["clips"][name]
            cells = [f"{r[f'drop_{d:.2f}']['caught']}/{r[f'drop_{d:.2f}']['event_phases']}" for d in DROPS]
            lines.append(f"| {name} | {rate} | {r['events']} | {r['event_min_full_rate']} | "
                         + " | ".join(cells) + " |")
    lines += [
        "",
        f"**Eye pixels** (`lifecert.engine.eyes`, cut {ep0['eye_cut']} = 1 − correlation of both eyes' patches, "
        f"back {ep0['eye_back']}, span {ep0['eye_span_ms']} ms; shipped `eye_cut` = {ep0['shipped_eye_cut']}). "
        "Production's blink test "
        "(`detect_blink_any`: EAR dip, else pixel dip) over each rate's samples from 0.7 s before to 0.7 s after "
        f"each event; caught = its closed frame within {ep0['near_s']} s of the event. False fires: every run of ≥ 3 "
        f"samples further than {ep0['near_s']} s from every event, per phase (REAL frames; talking_head_a talks "
        "throughout); turn/nod: those runs warped by attacks.turn_head (yaw ±20/±35°, pitch 15°, out and back "
        f"in 0.75 s, {data['motion_phases']} phases) through production's test (*unguarded*: the bare pixel dip, no "
        "EAR/pose checks); *blinks cut out*: per phase ALL samples further than 0.3 s from every event as one "
        "sequence.",
        "",
        "| clip | fps | events × phases | caught by EAR | by pixels only | either | open runs (s) | fires EAR / pixels "
        "| blinks cut out: pixel fires | turn/nod runs: pixel fires |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in CLIPS:
        for rate in rates:
            r, m = by[rate]["eye_pixels"]["clips"][name], by[rate]["eye_pixels"]["head_motion"].get(name)
            c = r["caught"]
            hm = f"{m['pixel_fires']}/{m['sequences']} (unguarded dips {m['pixel_dips_unguarded']})" if m else "–"
            lines.append(f"| {name} | {rate} | {r['event_phases']} | {c['ear']} | {c['eye_pixels']} | {c['either']} | "
                         f"{r['open_runs']} ({r['open_run_s']} s) | {r['false_fires_ear']} / "
                         f"{r['false_fires_pixels']} | {r['cutout_fires_pixels']}/{data['phases']} | {hm} |")
    more = data.get("attacks_more")
    lines += [
        "",
        f"Attacks (SYNTHETIC renderings of REAL LFW photos, {data['attack_s']:.0f} s each, rendered at {max(rates)} "
        "fps and sampled down by time, the whole sequence judged, the first second as the open-eye reference; "
        "the same photos and renderings at every rate"
        + (f"; photos from #{more['from_photo']} added by `--more-attacks` {more['date']}, "
           f"{more['elapsed_s']} s wall" if more else "") + "):",
        "",
        "| fps | paper prints: fires EAR / pixels of n | phone-screen stills: fires EAR / pixels of n | "
        "eye_patches ms CPU / 480×640 frame | pixel test ms / 8-s window (frames) |",
        "|---|---|---|---|---|",
    ]
    for rate in rates:
        ep = by[rate]["eye_pixels"]
        pr, st, c = ep["attacks"]["print"], ep["attacks"]["still"], ep["cost"]
        lines.append(f"| {rate} | {pr['fires_ear']} / {pr['fires_pixels']} of {pr['sessions']} | {st['fires_ear']} / "
                     f"{st['fires_pixels']} of {st['sessions']} | {c['eye_patches_ms_per_frame']} | "
                     f"{c['pixel_test_ms_per_8s_window']} ({c['window_frames']}) |")
    # the summary: blinks caught vs false fires, per rate
    lines += ["", "Per rate, production's blink test (EAR or pixels): blinks caught (events × phases, all "
              "clips; the shallow blinker blink_7 alone) / false fires on real open-eye runs, warped turns/nods "
              "(pixels) and attacks (EAR + pixels, prints + stills):", ""]
    for rate in rates:
        ep = by[rate]["eye_pixels"]
        cl = ep["clips"]
        caught = sum(v["caught"]["either"] for v in cl.values())
        total = sum(v["event_phases"] for v in cl.values())
        b7 = cl["blink_7_times_1080p.mp4"]["caught"]["either"]
        fo = sum(v["false_fires_ear"] + v["false_fires_pixels"] for v in cl.values())
        runs = sum(v["open_runs"] for v in cl.values())
        hm = ep["head_motion"].values()
        fm = sum(m["pixel_fires"] + m["ear_fires"] for m in hm)
        nm = sum(m["sequences"] for m in hm)
        a = ep["attacks"]
        fa_ = sum(a[k]["fires_ear"] + a[k]["fires_pixels"] for k in ("print", "still"))
        na = sum(a[k]["sessions"] for k in ("print", "still"))
        lines.append(f"- {rate} fps: caught {caught}/{total} (blink_7 {b7}/72); fires {fo}/{runs} open runs, "
                     f"{fm}/{nm} turns/nods, {fa_}/{na} attacks")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
