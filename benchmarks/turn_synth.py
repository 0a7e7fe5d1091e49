"""Does the synthetic head turn look like a real one to the detector? attacks.turn_head_3d (depth-aware:
an anthropometric head ellipsoid with the nose standing out of it) against the old cylinder warp
(attacks.turn_head), on the two real clips, before pad_eval's genuine sessions use it.

    nice -n 10 python benchmarks/turn_synth.py          # ~4 min on one core

Frames: REAL frames of ../shared/faces/video (talking_head_a, blink_7_times_1080p; the clips pad_eval's
genuine sessions act with), each turned by a renderer, made a camera frame as pad_eval's genuine
sessions are (attacks.genuine_frame with the face at pad_eval.TABLE_FACE_FRAC of the width, then
attacks.Camera noise/blur/JPEG), then dlib detect + 68 landmarks (the production engine). The turns are
SYNTHETIC; what they are compared with is REAL:

* (a) ``yaw``: geometry.yaw_ratio change per degree of turn, median over YAW_FRAMES frames spread over each
  clip, per angle and direction, against attacks.REAL_YAW_RATIO_PER_DEG (0.015 / degree, measured with dlib
  on real turned photos of ../shared/faces; see attacks.py).
* (b) ``parallax``: planarity.nose_parallax (the shipped flat-photo statistic, cut PARALLAX_CUT) of short
  sequences: SEQ_FRAMES consecutive clip frames at 8 fps (the clip's own real motion), of which frames
  TURN_FROM.. TURN_FROM+TURN_FRAMES-1 turn out and back (peak x sin), peaks of TURN_PEAKS degrees, from
  SEQ_STARTS starts per clip (alternating direction). Compared with the REAL genuine distribution of
  benchmarks/flat_eval.py (README ``flat``: real people's small natural motions) and with the same
  sequences unturned (the clip alone).
* (c) ``flat``: the same renderer with depth 0 (the face as a flat picture turned as a plane) must read flat
  (parallax well under the cut).

Writes benchmarks/results/turn_synth.json and the ``turn_synth`` section of benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import attacks as atk  # noqa: E402
from benchmarks.accuracy import update_readme  # noqa: E402
from benchmarks.pad_eval import CLIP_MAX_H, CLIPS, TABLE_FACE_FRAC, read_clip  # noqa: E402
from lifecert.config import Settings  # noqa: E402
from lifecert.engine import geometry  # noqa: E402
from lifecert.engine.base import FaceEngine  # noqa: E402
from lifecert.engine.liveness import FrameObs  # noqa: E402
from lifecert.engine.loader import load_engine  # noqa: E402
from lifecert.engine.planarity import PARALLAX_CUT, nose_parallax  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
YAW_FRAMES = 8
YAW_DEGS = (10, 20, 30, 40)
SEQ_FPS = 8.0
SEQ_FRAMES = 24
TURN_FROM, TURN_FRAMES = 8, 10  # 1.25 s out and back at 8 fps, as pad_eval's acted turns (1.2 s)
TURN_PEAKS = (5, 10, 20, 30, 40)
SEQ_STARTS = 3
# REAL genuine nose parallax (benchmarks/README.md `flat`, flat_eval.py: NUAA live, apfol live, windows of the
# two clips; natural small motions) and REAL NUAA prints, as min / p10 / median / p90.
REAL_GENUINE = {"min": 0.71, "p10": 1.10, "median": 1.43, "p90": 1.87}
REAL_PRINTS = {"min": 0.27, "p10": 0.47, "median": 0.73, "p90": 0.94}
RENDERERS = ("3d", "cylinder", "flat")


class Clip:
    """One real clip, its frames' landmarks (raw frame) and camera frames with their landmarks, cached."""

    def __init__(self, engine: FaceEngine, path: Path) -> None:
        self.engine = engine
        self.frames, self.fps = read_clip(path, CLIP_MAX_H)
        self._lm: dict[int, tuple[np.ndarray, np.ndarray] | None] = {}
        widths = []
        for i in np.linspace(0, len(self.frames) - 1, 12).round().astype(int):
            got = self.raw(int(i))
            if got is not None:
                widths.append(float(got[1][2] - got[1][0]))
        cover = max(atk.CAMERA[0] / self.frames[0].shape[1], atk.CAMERA[1] / self.frames[0].shape[0])
        self.zoom = TABLE_FACE_FRAC / (float(np.median(widths)) * cover / atk.CAMERA[0])

    def raw(self, i: int) -> tuple[np.ndarray, np.ndarray] | None:
        """(68 landmarks, box) of clip frame ``i`` as filmed, or None without a face."""
        if i not in self._lm:
            faces = self.engine.detect(self.frames[i])
            ok = faces and faces[0].landmarks68 is not None
            self._lm[i] = (np.asarray(faces[0].landmarks68, np.float64), np.asarray(faces[0].box, np.float64)) \
                if ok else None
        return self._lm[i]

    def render(self, i: int, kind: str, yaw: float) -> np.ndarray:
        got = self.raw(i)
        f = self.frames[i]
        if got is None or abs(yaw) < 1e-3:
            return f
        lm, box = got
        if kind == "cylinder":
            return atk.turn_head(f, box, yaw)
        return atk.turn_head_3d(f, lm, yaw, depth=0.0 if kind == "flat" else 1.0)

    def observe(self, img: np.ndarray, seed: list[int], t_ms: int = 0) -> FrameObs:
        cam = atk.Camera(np.random.default_rng(seed))
        shot = cam.shoot(atk.genuine_frame(img, zoom=self.zoom))
        faces = self.engine.detect(shot)
        if not faces or faces[0].landmarks68 is None:
            return FrameObs(t_ms, None)
        return FrameObs(t_ms, np.asarray(faces[0].landmarks68, np.float32), np.asarray(faces[0].box, np.float32), 1)


def yaw_table(clip: Clip, ci: int) -> dict[str, Any]:
    """(a): per renderer, angle and direction the median yaw_ratio change per degree over YAW_FRAMES frames."""
    picks = [int(i) for i in np.linspace(0, len(clip.frames) - 1, YAW_FRAMES + 2).round()[1:-1]]
    picks = [i for i in picks if clip.raw(i) is not None]

    def yr(o: FrameObs) -> float:
        return float("nan") if o.landmarks is None else geometry.yaw_ratio(o.landmarks)

    base = {i: yr(clip.observe(clip.frames[i], [ci, i, 0])) for i in picks}
    out: dict[str, Any] = {}
    for kind in ("3d", "cylinder"):
        rows = []
        for deg in YAW_DEGS:
            for sign in (1.0, -1.0):
                d = [sign * (yr(clip.observe(clip.render(i, kind, sign * deg), [ci, i, 0])) - base[i]) for i in picks]
                per = np.array(d) / deg
                rows.append({"deg": deg, "direction": "right" if sign > 0 else "left", "frames": len(picks),
                             "per_deg_median": round(float(np.nanmedian(per)), 4),
                             "per_deg_min": round(float(np.nanmin(per)), 4),
                             "per_deg_max": round(float(np.nanmax(per)), 4)})
        out[kind] = rows
    return out


def sequences(clip: Clip, ci: int, log: Callable[[str], None]) -> list[dict[str, Any]]:
    """(b)/(c): nose_parallax of every start x peak x renderer, in two modes: ``clip`` (the clip plays on at
    8 fps, its own real motion included, as in pad_eval's sessions) and ``still`` (the start frame held: only
    the turn moves, so the value is the renderer's own); and of each start's clip sequence unturned."""
    step = clip.fps / SEQ_FPS
    span = round(SEQ_FRAMES * step)
    starts = [int(s) for s in np.linspace(0, len(clip.frames) - span - 1, SEQ_STARTS).round()]
    out = []
    for k, s in enumerate(starts):
        sign = 1.0 if k % 2 == 0 else -1.0
        for mode in ("clip", "still"):
            idx = [s + (round(j * step) if mode == "clip" else 0) for j in range(SEQ_FRAMES)]
            base = [clip.observe(clip.frames[i], [ci, i, j], round(j * 1000 / SEQ_FPS)) for j, i in enumerate(idx)]
            pc = nose_parallax(base)
            out.append({"start": s, "mode": mode, "renderer": "none", "peak_deg": 0, "decided": pc.decided,
                        "parallax": None if pc.parallax is None else round(pc.parallax, 3), "pairs": pc.pairs})
            for kind in RENDERERS:
                for peak in TURN_PEAKS:
                    obs = list(base)
                    for j in range(TURN_FROM, TURN_FROM + TURN_FRAMES):
                        yaw = sign * peak * float(np.sin(np.pi * (j - TURN_FROM + 0.5) / TURN_FRAMES))
                        t_ms = round(j * 1000 / SEQ_FPS)
                        obs[j] = clip.observe(clip.render(idx[j], kind, yaw), [ci, idx[j], j], t_ms)
                    pc = nose_parallax(obs)
                    out.append({"start": s, "mode": mode, "renderer": kind, "peak_deg": peak * sign,
                                "decided": pc.decided,
                                "parallax": None if pc.parallax is None else round(pc.parallax, 3), "pairs": pc.pairs,
                                "motion": None if pc.motion is None else round(pc.motion, 4)})
                    log(f"  start {s} {mode} {kind:8s} peak {peak * sign:+4.0f}: parallax {out[-1]['parallax']} "
                        f"(pairs {pc.pairs})")
    return out


def quantiles(vals: list[float]) -> dict[str, Any]:
    if not vals:
        return {"n": 0}
    a = np.array(vals)
    return {"n": len(vals), "min": round(float(a.min()), 3), "p10": round(float(np.percentile(a, 10)), 3),
            "median": round(float(np.median(a)), 3), "max": round(float(a.max()), 3),
            "flat": int((a < PARALLAX_CUT).sum())}


def summarize(res: dict[str, Any]) -> dict[str, Any]:
    summ: dict[str, Any] = {"yaw": {}, "parallax": {}}
    for kind in ("3d", "cylinder"):
        for deg in YAW_DEGS:
            vals = [r["per_deg_median"] for c in res["clips"].values() for r in c["yaw"][kind] if r["deg"] == deg]
            summ["yaw"][f"{kind}/{deg}"] = {"per_clip_direction": vals, "median": round(float(np.median(vals)), 4)}
    seqs = [r for c in res["clips"].values() for r in c["sequences"]]
    for mode in ("clip", "still"):
        for kind in ("none", *RENDERERS):
            for group, peaks in (("small", (5, 10)), ("20-40", (20, 30, 40))):
                if kind == "none" and group == "20-40":
                    continue
                sel = [r for r in seqs if r["mode"] == mode and r["renderer"] == kind
                       and (kind == "none" or abs(r["peak_deg"]) in peaks)]
                vals = [r["parallax"] for r in sel if r["decided"]]
                key = f"{mode}/{kind}" + ("" if kind == "none" else f"/{group}")
                summ["parallax"][key] = quantiles(vals) | {"sequences": len(sel)}
    return summ


def readme(res: dict[str, Any]) -> str:
    s = res["summary"]
    lines = [
        "## Synthetic head turns against real ones (`benchmarks/turn_synth.py`)",
        "",
        f"{res['date']}, {res['elapsed_s']} s. REAL frames of the two clips turned SYNTHETICALLY by "
        "attacks.turn_head_3d (`3d`: anthropometric head ellipsoid + nose, depth constants from Farkas 1994 / "
        "Goode's ratio, set once), the "
        "old cylinder warp attacks.turn_head (`cylinder`) and turn_head_3d with depth 0 (`flat`: a flat picture "
        "turned as a plane), made camera frames as pad_eval's genuine sessions (face at "
        f"{TABLE_FACE_FRAC:.2f} of the width, camera noise/JPEG), dlib 68 landmarks.",
        "",
        f"(a) geometry.yaw_ratio change per degree (median over {YAW_FRAMES} frames per clip; the four values are "
        "talking_head_a right/left, blink_7 right/left). REAL (dlib on turned photos, attacks.py): "
        f"{atk.REAL_YAW_RATIO_PER_DEG} per degree.",
        "",
        "| turn | 3d | cylinder |",
        "|---|---|---|",
    ]
    for deg in YAW_DEGS:
        a, b = s["yaw"][f"3d/{deg}"], s["yaw"][f"cylinder/{deg}"]
        lines.append(f"| {deg}° | {a['median']:.4f} ({', '.join(f'{v:.3f}' for v in a['per_clip_direction'])}) | "
                     f"{b['median']:.4f} ({', '.join(f'{v:.3f}' for v in b['per_clip_direction'])}) |")
    lines += [
        "",
        f"(b, c) planarity.nose_parallax (cut {PARALLAX_CUT}; below = called flat) of {SEQ_FRAMES}-frame sequences "
        f"({SEQ_STARTS} starts per clip, frames {TURN_FROM}-{TURN_FROM + TURN_FRAMES - 1} turned out and back); "
        "`clip` = the clip plays on at 8 fps (its own real motion too, as pad_eval's sessions), `still` = the start "
        "frame held "
        "(only the turn moves: the renderer's own parallax); `none` = not turned; `small` = peaks 5 and 10°, "
        "`20-40` = peaks 20, 30, 40°. n = decided sequences of all "
        "(undecided: too little motion). REAL genuine (flat_eval, natural motion): min "
        f"{REAL_GENUINE['min']} · p10 {REAL_GENUINE['p10']} · median {REAL_GENUINE['median']} · p90 "
        f"{REAL_GENUINE['p90']}; REAL NUAA prints: {REAL_PRINTS['min']} · {REAL_PRINTS['p10']} · "
        f"{REAL_PRINTS['median']} · {REAL_PRINTS['p90']}.",
        "",
        "| sequences | n | min | p10 | median | max | called flat |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, q in s["parallax"].items():
        if q["n"]:
            lines.append(f"| {key} | {q['n']}/{q['sequences']} | {q['min']:.2f} | {q['p10']:.2f} | {q['median']:.2f} | "
                         f"{q['max']:.2f} | {q['flat']}/{q['n']} |")
        else:
            lines.append(f"| {key} | 0/{q['sequences']} | — | — | — | — | — |")
    lines += ["", res.get("reading", "")]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faces", type=Path, default=ROOT.parent / "shared" / "faces")
    ap.add_argument("--no-readme", action="store_true")
    ap.add_argument("--readme-only", action="store_true", help="the README section from results/turn_synth.json")
    a = ap.parse_args(argv)
    if a.readme_only:
        update_readme("turn_synth", readme(json.loads((RESULTS / "turn_synth.json").read_text())))
        return 0
    t0 = time.time()
    engine = load_engine(Settings(), name="dlib")
    res: dict[str, Any] = {"date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"), "clips": {}}
    for ci, name in enumerate(CLIPS):
        clip = Clip(engine, a.faces / "video" / f"{name}.mp4")
        print(f"{name}: {len(clip.frames)} frames at {clip.fps:.1f} fps, zoom {clip.zoom:.3f}", flush=True)
        yt = yaw_table(clip, ci)
        print(json.dumps(yt), flush=True)
        res["clips"][name] = {"zoom": round(clip.zoom, 3), "yaw": yt, "sequences": sequences(clip, ci, print)}
    res["elapsed_s"] = round(time.time() - t0)
    res["summary"] = summarize(res)
    print(json.dumps(res["summary"], indent=1), flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "turn_synth.json").write_text(json.dumps(res, indent=1))
    if not a.no_readme:
        update_readme("turn_synth", readme(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
