"""A face far from the camera: what the capture page hears, and what finding it costs.

An elderly user with presbyopia holds the phone at arm's length to read the screen; the face is then a
small part of the frame. The page should say "请靠近一点" (MOVE_CLOSER, from ``FACE_TOO_SMALL``), not
"没有看到您的脸" (NO_FACE): the user IS looking at the camera. The verification service detects on a copy
shrunk to ``FRAME_DETECT_MAX_SIDE`` (320 px), where dlib's HOG finds no face box under ~53 px, i.e. about
0.22 of a portrait frame's width — while ``FACE_TOO_SMALL`` asks for a jaw under 0.15 of it.

For each face size (the detector's box width over the frame width, ``--fractions``) and each frame shape
(portrait 480x640, landscape 640x480), one chunk of 8 frames (1 s at production's 8 fps) of
talking_head_a (real frames, every 3rd from --start) is shrunk so its face has that size and centred in
the frame; what the clip does not cover is its own border stretched and blurred (``attacks.extend_frame``:
synthetic surroundings). Each chunk goes through production's ``frames.observe`` with production's frame
engine (dlib, 320 px detection copy) and ``steps.hints`` with the default quality settings: frames with a
face, the hint, detector runs. Then the cost where there is no face at all (a grey frame and the clip's
border alone): CPU ms of ``observe`` per chunk, median of --repeats.

Writes benchmarks/results/far_face.json (``--out``) and the README section between the far_face markers.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._common import machine, now, update_readme_section  # noqa: E402
from lifecert.config import Settings  # noqa: E402
from lifecert.engine.liveness import FrameObs  # noqa: E402
from lifecert.services.verification import frames as fa  # noqa: E402
from lifecert.services.verification import load_frame_engine, steps  # noqa: E402

SHAPES = {"portrait": (480, 640), "landscape": (640, 480)}
FRACTIONS = (0.08, 0.1, 0.12, 0.14, 0.16, 0.18, 0.2, 0.22, 0.25, 0.3, 0.4)


def clip_frames(path: Path, start: int, n: int, step: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    out: list[np.ndarray] = []
    i = 0
    while len(out) < n:
        ok, f = cap.read()
        if not ok:
            break
        if i >= start and (i - start) % step == 0:
            out.append(f)
        i += 1
    cap.release()
    if len(out) < n:
        raise SystemExit(f"{path}: fewer than {n} frames from {start}")
    return out


def place(frame: np.ndarray, box_w: float, frac: float, size: tuple[int, int]) -> np.ndarray:
    """``frame`` shrunk so a face box ``box_w`` px wide becomes ``frac`` of the width, centred in ``size``."""
    from benchmarks.attacks import extend_frame

    w, h = size
    k = frac * w / box_w
    small = cv2.resize(frame, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
    sh, sw = small.shape[:2]
    if sw > w or sh > h:  # crop the centre
        x = max(0, (sw - w) // 2)
        y = max(0, (sh - h) // 2)
        small = small[y:y + min(h, sh), x:x + min(w, sw)]
        sh, sw = small.shape[:2]
    return extend_frame(np.ascontiguousarray(small), (w, h), (w - sw) // 2, (h - sh) // 2)


def run_chunk(engine: Any, images: list[np.ndarray], g: Any) -> dict[str, Any]:
    infos = [fa.FrameInfo(i, 125 * i, img, (img.shape[1], img.shape[0]), FrameObs(125 * i, None))
             for i, img in enumerate(images)]
    t0 = time.process_time()
    runs = fa.observe(engine, infos, eyes=False)
    cpu_ms = 1000 * (time.process_time() - t0)
    obs = [steps.Obs(t_ms=f.t_ms, size=f.size, landmarks=f.obs.landmarks,
                     box=None if f.face is None else tuple(float(v) for v in f.face.box),  # type: ignore[arg-type]
                     num_faces=f.obs.num_faces, sharpness=f.sharpness,
                     brightness=f.brightness if f.obs.has_face else f.frame_brightness) for f in infos]
    fracs = [steps.face_fraction(o) for o in obs]
    return {"with_face": sum(f.face is not None for f in infos), "frames": len(infos),
            "hints": steps.hints(obs, g), "detector_runs": runs, "cpu_ms": round(cpu_ms, 1),
            "issues": [None if i is None else str(i) for i in (o.issue(g) for o in obs)],
            "face_fraction": None if not any(x is not None for x in fracs)
            else round(float(np.median([x for x in fracs if x is not None])), 3)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--faces", type=Path, default=ROOT.parent / "shared" / "faces")
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--fractions", default=",".join(str(f) for f in FRACTIONS))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--label", default="current", help="the results key (e.g. before / after a change)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "far_face.json")
    ap.add_argument("--no-readme", action="store_true")
    args = ap.parse_args(argv)

    settings = Settings()
    engine = load_frame_engine(settings, name="dlib")
    g = settings.quality
    src = clip_frames(args.faces / "video" / "talking_head_a.mp4", args.start, 8, 3)
    boxes = [engine.detect(f) for f in src]
    if not all(boxes):
        raise SystemExit("the clip's frames must each show a face")
    box_w = float(np.median([b[0].width for b in boxes]))
    rows = []
    for shape, size in SHAPES.items():
        for frac in (float(x) for x in args.fractions.split(",")):
            r = run_chunk(engine, [place(f, box_w, frac, size) for f in src], g)
            rows.append({"shape": shape, "fraction": frac, **r})
            print(shape, frac, r["with_face"], r["hints"], r["face_fraction"], flush=True)
    empty: dict[str, Any] = {}
    for shape, (w, h) in SHAPES.items():
        blank = [np.full((h, w, 3), 128, np.uint8)] * 8
        border = [place(f, box_w, 0.3, (w, h)) for f in src]
        for f in border:  # the clip's surroundings with the face painted out
            cv2.rectangle(f, (w // 4, h // 5), (3 * w // 4, 4 * h // 5), (120, 120, 120), -1)
        for name, imgs in (("grey", blank), ("no_face", border)):
            costs = [run_chunk(engine, imgs, g) for _ in range(args.repeats)]
            empty[f"{shape}_{name}"] = {
                "cpu_ms_median": round(float(np.median([c["cpu_ms"] for c in costs])), 1),
                "detector_runs": costs[0]["detector_runs"], "hints": costs[0]["hints"],
                "with_face": costs[0]["with_face"]}
            print(shape, name, empty[f"{shape}_{name}"], flush=True)
    load = Path("/proc/loadavg").read_text().split()[0]
    result = {"label": args.label, "date": now(), "machine": machine(), "load": load,
              "clip": "talking_head_a.mp4", "box_w_px": round(box_w, 1), "rows": rows, "no_face": empty}
    data = json.loads(args.out.read_text()) if args.out.exists() else {}
    data[args.label] = result
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    if not args.no_readme:
        update_readme_section("far_face", readme(data))
    return 0


def readme(data: dict[str, Any]) -> str:
    labels = list(data)
    first = data[labels[0]]
    lines = ["## A face far from the camera (`benchmarks/far_face.py`)", "",
             f"{first['date']}, {first['machine'].get('cpu', '?')} (load {first['load']}). "
             "talking_head_a (8 real frames, one 1 s chunk at 8 fps) shrunk "
             "so that the detector's face box is the given share of the frame width, centred; synthetic "
             "surroundings (the clip's border stretched). Production's `frames.observe` (dlib, 320 px detection "
             "copy) and `steps.hints` (default quality settings). Cell: frames with a face / 8, the hint the page "
             "gets. " + " ".join(f"`{k}`: {data[k]['date']}." for k in labels), ""]
    fracs = sorted({r["fraction"] for r in first["rows"]})
    head = "| shape | run | " + " | ".join(f"{f:.2f}" for f in fracs) + " |"
    lines += [head, "|---|---|" + "---|" * len(fracs)]
    for shape in SHAPES:
        for k in labels:
            cells = []
            for f in fracs:
                r = next((r for r in data[k]["rows"] if r["shape"] == shape and r["fraction"] == f), None)
                cells.append("–" if r is None else f"{r['with_face']}/8 {','.join(r['hints']) or 'none'}")
            lines.append(f"| {shape} | {k} | " + " | ".join(cells) + " |")
    lines += ["", "No face in the picture (CPU ms of `observe` per 8-frame chunk, median; detector runs; hint):", ""]
    for k in labels:
        parts = [f"{name} {v['cpu_ms_median']} ms, {v['detector_runs']} runs, {','.join(v['hints'])}"
                 for name, v in data[k]["no_face"].items()]
        lines.append(f"- `{k}`: " + "; ".join(parts))
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
