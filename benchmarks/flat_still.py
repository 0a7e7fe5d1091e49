"""A genuine user who never moves the head: does the flat-photo test call the face flat?

The flat-photo test (lifecert.engine.planarity.nose_parallax) judges the nose's parallax over frame pairs whose
landmarks moved beyond a similarity. A still user gives a few pairs just over MIN_MOTION (speech-like expression,
landmark jitter) and nothing turned, so the nose follows the outline's homography and the ratio can read flat.
The e2e test of a user who does not act (tests/e2e/test_mobile_paced.py) got REVIEW flat_photo instead of RETRY
that way in one CI run of session 14 (17 pairs, median motion 0.0109, parallax 0.7165).

What is measured: the e2e fake camera's REAL neutral loop (tests/e2e/fake_camera.py: the longest eyes-open,
mouth-closed run of ../shared/faces/video/talking_head_a.mp4, played back and forth at 15 fps, in the genuine
scene: the frame as filmed, a few pixels of hand shake, sensor noise, JPEG 90; and the same in the dim room,
every pixel at 0.2), landmarks by production's frame engine (load_frame_engine: dlib, 320 px detection copy).
A still session = the loop captured at 8 fps for 9-14 s from a random phase (drawn per session, seeded): the
settle step and a challenge the user never acts, as the server sees them. Per scene: sessions the test decides and
calls flat, under the shipped rule and with ``decide_motion=0`` (the rule before session 15). SYNTHETIC: the
capture timing, the shake, the noise; REAL: the face and its small movements. Not measured: real still users
filmed by phones, other faces.

    python benchmarks/flat_still.py --faces ../shared/faces [--sessions 300] [--no-readme]

Writes benchmarks/results/flat_still.json and the README section between the flat_still markers.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._common import machine, now, publish  # noqa: E402
from lifecert.config import Settings  # noqa: E402
from lifecert.engine.liveness import FrameObs  # noqa: E402
from lifecert.engine.loader import load_engine  # noqa: E402
from lifecert.engine.planarity import DECIDE_MOTION, PARALLAX_CUT, nose_parallax  # noqa: E402
from lifecert.services.verification import load_frame_engine  # noqa: E402
from tests.e2e.conftest import DARK_GAIN, TALKING_HEAD  # noqa: E402
from tests.e2e.fake_camera import CLIP_FPS, SourceVideo, build_clips, genuine_scene, render_camera  # noqa: E402

CAPTURE_FPS = 8  # production's settle / turn capture rate (steps.capture_fps)
DURATION_S = (9.0, 14.0)  # settle + one challenge window that runs out (8 s, + 3 s after the first hint)


def loop_landmarks(engine: Any, jpegs: list[bytes]) -> list[np.ndarray | None]:
    out: list[np.ndarray | None] = []
    for b in jpegs:
        faces = engine.detect(cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_COLOR))
        out.append(np.asarray(faces[0].landmarks68, np.float32) if len(faces) == 1 else None)
    return out


def still_session(lms: list[np.ndarray | None], rng: np.random.Generator) -> list[FrameObs]:
    start, dur = rng.uniform(0, 10), rng.uniform(*DURATION_S)
    ts = np.arange(0.0, dur, 1.0 / CAPTURE_FPS)
    idx = np.floor((start + ts) * CLIP_FPS).astype(int) % len(lms)
    return [FrameObs(int(t * 1000), lms[i]) for t, i in zip(ts, idx, strict=True) if lms[i] is not None]


def judge(sessions: list[list[FrameObs]], decide_motion: float) -> dict[str, Any]:
    checks = [nose_parallax(s, decide_motion=decide_motion) for s in sessions]
    decided = [c for c in checks if c.decided]
    flat = [c for c in decided if c.flat]
    motions = [c.motion for c in checks if c.motion is not None]
    return {"n": len(checks), "decided": len(decided), "flat": len(flat),
            "flat_parallax": sorted(round(c.parallax, 4) for c in flat if c.parallax is not None),
            "motion_p50": None if not motions else round(float(np.median(motions)), 4),
            "motion_max": None if not motions else round(float(np.max(motions)), 4)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--faces", type=Path, default=ROOT.parent / "shared" / "faces")
    ap.add_argument("--sessions", type=int, default=300, help="still sessions per scene")
    ap.add_argument("--seed", type=int, default=15)
    ap.add_argument("--no-readme", action="store_true")
    args = ap.parse_args(argv)
    video = args.faces / TALKING_HEAD
    if not video.is_file():
        print(f"{video} not found: nothing to measure", file=sys.stderr)
        return 2
    t0, c0 = time.time(), time.process_time()
    settings = Settings()
    source = SourceVideo.load(load_engine(settings), video)
    clips = build_clips(source)
    frame_engine = load_frame_engine(settings)
    scenes: dict[str, Any] = {}
    for name, gain in (("plain", 1.0), ("dim", DARK_GAIN)):
        jpegs = render_camera(clips, genuine_scene(gain=gain))["neutral"]
        lms = loop_landmarks(frame_engine, jpegs)
        rng = np.random.default_rng([args.seed, round(gain * 100)])
        sessions = [still_session(lms, rng) for _ in range(args.sessions)]
        scenes[name] = {"gain": gain, "loop_frames": len(lms), "loop_faces": sum(x is not None for x in lms),
                        "shipped": judge(sessions, DECIDE_MOTION), "before": judge(sessions, 0.0)}
    data = {"date": now(), "machine": machine(), "sessions": args.sessions, "seed": args.seed,
            "decide_motion": DECIDE_MOTION, "cut": PARALLAX_CUT, "scenes": scenes,
            "wall_s": round(time.time() - t0, 1), "cpu_s": round(time.process_time() - c0, 1)}
    publish("flat_still", "flat_still", data, readme(data), readme=not args.no_readme)
    return 0


def readme(d: dict[str, Any]) -> str:
    rows = []
    for name, s in d["scenes"].items():
        for rule, label in (("before", "before session 15 (decide_motion 0)"),
                            ("shipped", f"shipped (decide_motion {d['decide_motion']})")):
            r = s[rule]
            rows.append(f"| {name} (gain {s['gain']}) | {label} | {r['n']} | {r['decided']} | **{r['flat']}** | "
                        f"{r['motion_p50']} / {r['motion_max']} |")
    return "\n".join([
        "## A genuine user who never moves the head (`benchmarks/flat_still.py`)",
        "",
        f"{d['date']}, {d['machine'].get('cpu', '?')}; {d['wall_s']} s wall, {d['cpu_s']} s CPU. The e2e fake "
        "camera's REAL neutral loop of talking_head_a (eyes open, mouth closed, played back and forth at 15 fps; "
        "genuine scene: the frame as filmed, hand shake, sensor noise, JPEG 90; dim = every pixel at 0.2), "
        "landmarks by production's frame engine, captured at 8 fps for 9-14 s from a random phase per session "
        f"(seed {d['seed']}): a user who never acts. `planarity.nose_parallax` (cut {d['cut']}) under the rule "
        "before session 15 and as shipped (abstain when the moving pairs' median motion is under "
        "DECIDE_MOTION). *flat* = decided and below the cut: the session would go to REVIEW flat_photo instead "
        "of RETRY. Motion = the moving pairs' median motion (face widths), median / max over sessions.",
        "",
        "| scene | rule | sessions | decided | flat | motion p50 / max |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        "SYNTHETIC: capture timing, shake, noise, the dim gain. REAL: the face and its small movements. Not "
        "measured: real still users filmed by phones; other faces.",
    ])


if __name__ == "__main__":
    raise SystemExit(main())
