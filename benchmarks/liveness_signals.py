"""How far natural motion moves the challenge signals, and how far real actions move them.

The challenge thresholds in :class:`lifecert.engine.liveness.LivenessParams` decide two errors:
natural motion that passes a challenge nobody acted (it helps a replay: a talking clip "nods"),
and real actions that fall short (an elderly user's small nod fails). This measures both on the
real footage in ../shared/faces, with the per-user baseline the paced protocol uses (the first
0.8 s of steady frames):

- NOISE: the three real videos at 8 fps (talking head, 7 blinks at 1080p, 2 blinks tiny), in
  every 8 s window (the paced step window), the largest excursion of each signal from the
  baseline, and how often each challenge detector passes on natural motion alone at candidate
  thresholds (no action was asked for; blinks and mouth movement are natural in these clips, so
  blink/open_mouth "false passes" there are real events, reported for completeness);
- SIGNAL: real blinks (the blink videos: EAR ratio at the lowest point), real mouth openings
  (talking head MAR), and the pose stills (looking down/up, turned left/right) against the
  talking head's frontal baseline. No real head-turn or nod FOOTAGE exists in ../shared: the
  stills are single photos of another face, so their deltas are a cross-person estimate of a
  full pose change, not of a small elderly nod.

Usage: .venv/bin/python benchmarks/liveness_signals.py
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._common import machine, now, update_readme_section, write_json  # noqa: E402
from benchmarks.pad_eval import read_clip  # noqa: E402

FACES = Path(os.environ.get("LIFECERT_SHARED_FACES", ROOT.parent / "shared" / "faces"))
VIDEOS = ("talking_head_a.mp4", "blink_7_times_1080p.mp4", "blink_2_times_tiny.mp4")
WINDOW_MS = 8000
NOD = (0.03, 0.035, 0.04, 0.045, 0.05)
TURN = (0.12, 0.15, 0.18, 0.22)


def frames_8fps(path: Path) -> tuple[list[np.ndarray], float]:
    """Every frame of the clip at about 8 fps, and the milliseconds between two of them."""
    out, fps = read_clip(path)
    step = max(1, round(fps / 8))
    return out[::step], 1000.0 * step / fps


def main() -> None:
    from dataclasses import replace

    from lifecert.config import Settings
    from lifecert.engine import geometry
    from lifecert.engine.image import read_image_file
    from lifecert.engine.liveness import FrameObs, LivenessParams, detect_nod, detect_turn, signals
    from lifecert.services.verification import load_frame_engine
    from lifecert.services.verification.steps import baseline_of

    eng = load_frame_engine(Settings(), name="dlib")
    p0 = LivenessParams()
    out: dict[str, Any] = {"videos": {}, "stills": {}}
    talking_base = None
    for name in VIDEOS:
        frames, dt = frames_8fps(FACES / "video" / name)
        obs = []
        for i, f in enumerate(frames):
            d = eng.detect(f)
            obs.append(FrameObs(round(i * dt), d[0].landmarks68 if d else None, None, len(d)))
        face = [o for o in obs if o.landmarks is not None]
        base = baseline_of([o for o in face if o.t_ms < 800] or face[:7])
        if name.startswith("talking"):
            talking_base = base
        sig = signals(obs)
        ok = ~np.isnan(sig.ear)
        d_yaw = np.abs(sig.yaw[ok] - base.yaw)
        d_pitch = sig.pitch[ok] - base.pitch
        ear_ratio = sig.ear[ok] / base.ear
        res: dict[str, Any] = {
            "frames": len(obs),
            "with_face": int(ok.sum()),
            "baseline": {"ear": round(base.ear, 4), "mar": round(base.mar, 4), "yaw": round(base.yaw, 4),
                         "pitch": round(base.pitch, 4)},
            "noise": {
                "abs_yaw_change_p95": round(float(np.percentile(d_yaw, 95)), 4),
                "abs_yaw_change_max": round(float(d_yaw.max()), 4),
                "pitch_down_change_p95": round(float(np.percentile(d_pitch, 95)), 4),
                "pitch_down_change_max": round(float(d_pitch.max()), 4),
                "pitch_up_change_min": round(float(d_pitch.min()), 4),
                "mar_max": round(float(np.nanmax(sig.mar[ok])), 4),
                "ear_ratio_min": round(float(ear_ratio.min()), 4),
            },
        }
        # Sliding 8 s windows (step 1 s): does natural motion alone pass nod / turn?
        t_end = int(sig.t_ms.max())
        starts = list(range(0, max(1, t_end - WINDOW_MS + 1), 1000)) or [0]
        passes: dict[str, dict[str, float]] = {"nod": {}, "turn_left": {}, "turn_right": {}}
        for thr in NOD:
            p = replace(p0, nod_pitch=thr)
            hits = sum(detect_nod(sig, np.nonzero((sig.t_ms >= s) & (sig.t_ms < s + WINDOW_MS))[0], base, p)[0]
                       for s in starts)
            passes["nod"][str(thr)] = round(hits / len(starts), 3)
        for thr in TURN:
            p = replace(p0, turn_yaw=thr)
            for side in ("left", "right"):
                hits = sum(
                    detect_turn(sig, np.nonzero((sig.t_ms >= s) & (sig.t_ms < s + WINDOW_MS))[0], base, p, side)[0]
                    for s in starts
                )
                passes[f"turn_{side}"][str(thr)] = round(hits / len(starts), 3)
        res["natural_motion_pass_rate"] = passes | {"windows": len(starts)}
        out["videos"][name] = res
    assert talking_base is not None
    for f in sorted((FACES / "pose").iterdir()):
        img = read_image_file(f)
        d = eng.detect(img)
        if not d or d[0].landmarks68 is None:
            out["stills"][f.name] = "no face"
            continue
        lm = d[0].landmarks68
        out["stills"][f.name] = {
            "yaw_ratio": round(geometry.yaw_ratio(lm), 4),
            "pitch_ratio": round(geometry.pitch_ratio(lm), 4),
            "yaw_change_vs_talking_baseline": round(geometry.yaw_ratio(lm) - talking_base.yaw, 4),
            "pitch_change_vs_talking_baseline": round(geometry.pitch_ratio(lm) - talking_base.pitch, 4),
        }
    result = {
        "machine": machine(),
        "date": now(),
        "dataset": "../shared/faces/video/* at 8 fps, ../shared/faces/pose/*",
        "params_in_force": {"nod_pitch": p0.nod_pitch, "turn_yaw": p0.turn_yaw},
        **out,
    }
    write_json("liveness_signals", result)
    print(json.dumps(result, indent=1))
    _readme(result)


def _readme(r: dict[str, Any]) -> None:
    rows = []
    for name, v in r["videos"].items():
        n = v["noise"]
        pr = v["natural_motion_pass_rate"]
        nod = ", ".join(f"{k}: {x:.0%}" for k, x in pr["nod"].items())
        turn = ", ".join(f"{k}: {max(pr['turn_left'][k], pr['turn_right'][k]):.0%}" for k in pr["turn_left"])
        rows.append(
            f"| {name} | {v['with_face']}/{v['frames']} | {n['pitch_down_change_p95']} / {n['pitch_down_change_max']} "
            f"| {n['abs_yaw_change_p95']} / {n['abs_yaw_change_max']} | {n['ear_ratio_min']} | {n['mar_max']} | "
            f"{nod} | {turn} |"
        )
    stills = []
    for name, s in r["stills"].items():
        if isinstance(s, dict):
            stills.append(
                f"| {name} | {s['yaw_change_vs_talking_baseline']} | {s['pitch_change_vs_talking_baseline']} |"
            )
    body = f"""## Challenge signals on real footage (`benchmarks/liveness_signals.py`)

{r["date"]}. Per-user baseline = the first 0.8 s of the clip (as the paced settle step). "Natural pass" = share
of 8 s windows (the paced step window) in which the detector passes with NOBODY acting the challenge, per
threshold. Thresholds in force: nod {r["params_in_force"]["nod_pitch"]}, turn {r["params_in_force"]["turn_yaw"]}.
No real nod or head-turn footage exists in ../shared/faces; the pose stills are single photos of another face
(cross-person deltas against the talking head's baseline: a full pose change, not a small elderly nod).

| clip | frames with face | pitch-down change p95 / max | abs yaw change p95 / max | EAR ratio min | MAR max \
| nod natural pass | turn natural pass |
|---|---|---|---|---|---|---|---|
""" + "\n".join(rows) + """

| pose still | yaw change | pitch change |
|---|---|---|
""" + "\n".join(stills)
    update_readme_section("liveness_signals", body)


if __name__ == "__main__":
    main()
