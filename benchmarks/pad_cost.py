"""CPU cost of passive PAD and the spoof cues per camera frame (for the per-step latency budget).

    python benchmarks/pad_cost.py [--faces ../shared/faces] [--frames 40] [--batch 5]

Real 480x640 frames (video/blink_7_times_1080p.mp4 centre-cropped to 3:4) with dlib's face box;
times `PadModel.score_many` on batches of ``--batch`` frames (one onnxruntime thread, as the server
runs it), the manifest's dim-room correction (``pad.ExposureNorm``) on the same frames darkened to gain
0.4 (where it brightens and blurs; on the frames as they are it only measures the face luma) and
`spoof_cues.analyze` per frame, in process CPU time (the machine is shared, so wall
time would measure the neighbours). Writes benchmarks/results/pad_cost.json and the pad_cost
section of benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.accuracy import update_readme  # noqa: E402
from benchmarks.attacks import genuine_frame  # noqa: E402
from lifecert.config import Settings  # noqa: E402
from lifecert.engine import spoof_cues  # noqa: E402
from lifecert.engine.loader import load_engine  # noqa: E402
from lifecert.engine.pad import ExposureNorm, apply_gain, box_xyxy_to_xywh, load_pad_from, pad_spec  # noqa: E402
from lifecert.services.evaluation import machine_info  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--faces", type=Path, default=ROOT.parent / "shared" / "faces")
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--batch", type=int, default=5)
    a = ap.parse_args(argv)
    engine = load_engine(Settings(), name="dlib")
    pad = load_pad_from(a.faces.parent / "models" / "minifasnet", pad_spec(), threads=1)
    cap = cv2.VideoCapture(str(a.faces / "video" / "blink_7_times_1080p.mp4"))
    frames, boxes = [], []
    while len(frames) < a.frames:
        ok, fr = cap.read()
        if not ok:
            break
        f = genuine_frame(fr)
        faces = engine.detect(f)
        if faces:
            frames.append(f)
            boxes.append(faces[0].box)
    cap.release()
    pad.warm_up()
    t0 = time.process_time()
    for i in range(0, len(frames), a.batch):
        pad.score_many(frames[i : i + a.batch], [box_xyxy_to_xywh(b) for b in boxes[i : i + a.batch]])
    pad_ms = (time.process_time() - t0) * 1000 / len(frames)
    norm = pad.exposure or ExposureNorm(70.0, 2.5, 0.8)
    dim = [apply_gain(f, 0.4) for f in frames]
    xywh = [box_xyxy_to_xywh(b) for b in boxes]
    t0 = time.process_time()
    for f, b in zip(dim, xywh, strict=True):
        norm.apply(f, b)
    norm_dim_ms = (time.process_time() - t0) * 1000 / len(frames)
    t0 = time.process_time()
    for f, b in zip(frames, xywh, strict=True):
        norm.apply(f, b)
    norm_ms = (time.process_time() - t0) * 1000 / len(frames)
    t0 = time.process_time()
    for f, b in zip(frames, boxes, strict=True):
        spoof_cues.frame_cues(f, b)
    cue_ms = (time.process_time() - t0) * 1000 / len(frames)
    load = os.getloadavg()
    m = machine_info()
    report = {"frames": len(frames), "batch": a.batch, "pad_cpu_ms_per_frame": round(pad_ms, 2),
              "cues_cpu_ms_per_frame": round(cue_ms, 2),
              "exposure_cpu_ms_per_frame": {"dim_gain_0.4": round(norm_dim_ms, 3), "as_is": round(norm_ms, 3)},
              "exposure": {"target": norm.target, "max_gain": norm.max_gain, "denoise_sigma": norm.denoise_sigma},
              "frame_size": [480, 640], "machine": m,
              "load_avg": [round(x, 2) for x in load], "date": time.strftime("%Y-%m-%d"),
              "dataset": "video/blink_7_times_1080p.mp4 centre-cropped to 3:4, 480x640"}
    out = ROOT / "benchmarks" / "results" / "pad_cost.json"
    out.write_text(json.dumps(report, indent=1) + "\n")
    update_readme("pad_cost", "\n".join([
        "## PAD cost per frame (`benchmarks/pad_cost.py`)",
        "",
        f"Machine: {m['nproc']} × {m['cpu']} (shared; load {load[0]:.1f}), {report['date']}. {len(frames)} real "
        f"480×640 frames ({report['dataset']}), dlib box. Process CPU time, one onnxruntime thread.",
        "",
        "| step | CPU ms per frame |",
        "|---|---|",
        f"| MiniFASNet V2 + V1SE (batches of {a.batch}) | {pad_ms:.1f} |",
        f"| spoof cues (edges, moiré, specular) | {cue_ms:.1f} |",
        f"| dim-room correction (ExposureNorm target {norm.target:g}, blur {norm.denoise_sigma:g} px) on the frames "
        f"darkened to gain 0.4 / as they are (face luma only) | {norm_dim_ms:.2f} / {norm_ms:.2f} |",
    ]))
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
