"""Which face box should MiniFASNet's context crop be built on? dlib's five detectors against five landmarks.

    nice -n 10 python benchmarks/pad_box.py [--cache /tmp/lifecert-pad-eval/<scoring key>-s12]

dlib's HOG "frontal" face detector is five detectors in one (frontal, looking left, looking right, and two
rotated ones); ``run`` says which one fired. Their boxes place the same face at different sizes and offsets,
and the PAD crop (2.7x and 4.0x the box, lifecert.engine.pad) moves with the box. Two measurements:

1. **Real photos and frames** (../shared/faces: photos/, 150 LFW photos, every 10th frame of the two real
   clips; no synthesis): per detection, which sub-detector fired, and its box in units of the face's scale
   ``s`` = max(eye-mouth distance, 1.08 x eye distance) from its own five landmarks (engine.landmarks_at in
   that box): side / s, centre below the eyes / s, and the eye-mouth / eye distance ratio. The frontal
   detector's medians are the constants of lifecert.engine.pad.FivePointBox.
2. **pad_eval's cached frames** (``--cache``; the newest synthesis version of each session; per frame the
   detector box, 68 landmarks and P(real) as scored with the DETECTOR's box): frames whose detector box
   agrees with the five-point box (IoU >= 0.8, i.e. the frontal convention) against those where it does not,
   P(real) per kind of session. What the five-point box changes in pad_eval's decisions is measured by
   pad_eval itself (README ``pad`` section).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _common import machine, now, publish  # noqa: E402

from lifecert.config import Settings  # noqa: E402
from lifecert.engine import geometry  # noqa: E402
from lifecert.engine.loader import load_engine  # noqa: E402
from lifecert.engine.pad import FIVE_POINT_BOX, box_xyxy_to_xywh, five_point_box  # noqa: E402

SUB = {0: "frontal", 1: "left", 2: "right", 3: "rotated_a", 4: "rotated_b"}


def real_images(faces: Path, n_lfw: int = 150) -> list[tuple[str, np.ndarray]]:
    out = [(str(f.relative_to(faces)), cv2.imread(str(f))) for f in sorted((faces / "photos").glob("*/*"))]
    lfw = sorted((faces / "lfw" / "images").glob("*/*.jpg"))
    random.Random(1).shuffle(lfw)
    out += [(str(f.relative_to(faces)), cv2.imread(str(f))) for f in lfw[:n_lfw]]
    for clip in ("talking_head_a", "blink_7_times_1080p"):
        cap = cv2.VideoCapture(str(faces / "video" / f"{clip}.mp4"))
        i = 0
        while True:
            ok, fr = cap.read()
            if not ok:
                break
            if i % 10 == 0:
                out.append((f"{clip}#{i}", fr))
            i += 1
        cap.release()
    return [(k, v) for k, v in out if v is not None]


def scale_of(five: np.ndarray) -> tuple[float, float, np.ndarray]:
    eyes, mouth = (five[0] + five[1]) / 2, (five[3] + five[4]) / 2
    em, iod = float(np.hypot(*(mouth - eyes))), float(np.hypot(*(five[1] - five[0])))
    return max(em, FIVE_POINT_BOX.mouth_per_eyes * iod), em / iod, eyes


def measure_real(faces: Path) -> dict[str, Any]:
    import dlib

    engine = load_engine(Settings(), name="dlib")
    hog = dlib.get_frontal_face_detector()
    rows: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
    for _name, img in real_images(faces):
        rgb = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        rects, _scores, idx = hog.run(rgb, 1 if max(img.shape[:2]) < 400 else 0, 0.0)
        if not rects:
            continue
        k = max(range(len(rects)), key=lambda j: rects[j].area())
        r = rects[k]
        box = np.array([r.left(), r.top(), r.right(), r.bottom()], np.float32)
        face = engine.landmarks_at(img, box)
        if face is None:
            continue
        s, ratio, eyes = scale_of(np.asarray(face.landmarks5, np.float64))
        cy = (box[1] + box[3]) / 2
        rows[SUB.get(int(idx[k]), str(idx[k]))].append(((box[2] - box[0]) / s, (cy - eyes[1]) / s, ratio))
    out = {}
    for sub, v in sorted(rows.items(), key=lambda kv: -len(kv[1])):
        a = np.asarray(v)
        out[sub] = {"n": len(a), "side_per_s": round(float(np.median(a[:, 0])), 3),
                    "below_eyes_per_s": round(float(np.median(a[:, 1])), 3),
                    "eye_mouth_per_eyes": round(float(np.median(a[:, 2])), 3)}
    return out


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def measure_cache(cache: Path) -> dict[str, Any]:
    groups: dict[str, dict[str, list[float]]] = defaultdict(lambda: {"agrees": [], "differs": []})
    newest: dict[str, tuple[str, Path]] = {}  # session file stem without "-g2"/"-c3" -> (version, file)
    for p in cache.glob("*.json"):
        m = re.fullmatch(r"(.+?)(?:-([gc]\d+))?", p.stem)
        if p.name.startswith("_") or m is None:
            continue
        ver = m.group(2) or ""
        if m.group(1) not in newest or ver > newest[m.group(1)][0]:
            newest[m.group(1)] = (ver, p)
    for _ver, p in sorted(newest.values()):
        for row in json.loads(p.read_text()):
            if row["name"].startswith("tight/"):
                continue
            kind = row["kind"] if row["kind"] != "bona_fide" else f"genuine_{row['source']}"
            for f in row["frames"]:
                if f["lm"] is None or f["pad"] is None:
                    continue
                five = geometry.five_from_68(np.asarray(f["lm"], np.float32))
                agree = iou(box_xyxy_to_xywh(f["box"]), five_point_box(five)) >= 0.8
                groups[kind]["agrees" if agree else "differs"].append(float(f["pad"]))
    out = {}
    for kind, g in sorted(groups.items()):
        out[kind] = {k: {"frames": len(v), "p_real_median": round(float(np.median(v)), 3) if v else None,
                         "p_real_p10": round(float(np.percentile(v, 10)), 3) if v else None}
                     for k, v in g.items()}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--faces", type=Path, default=ROOT.parent / "shared" / "faces")
    ap.add_argument("--cache", type=Path, default=None, help="a pad_eval scoring folder scored with detector boxes")
    a = ap.parse_args(argv)
    real = measure_real(a.faces)
    cached = measure_cache(a.cache) if a.cache else {}
    data = {"machine": machine(), "date": now(), "dataset": str(a.faces), "real": real, "cache": str(a.cache or ""),
            "pad_by_box": cached}
    lines = [f"### pad_box — the PAD crop's face box ({data['date']}, `benchmarks/pad_box.py`)", "",
             "dlib's HOG detector is five detectors; per sub-detector, its box against the face's own five "
             "landmarks (s = max(eye-mouth, 1.08 x eye distance)), medians on REAL photos and frames of "
             "../shared/faces:", "",
             "| sub-detector | faces | side / s | centre below the eyes / s | eye-mouth / eye distance |",
             "|---|---|---|---|---|"]
    lines += [f"| {k} | {v['n']} | {v['side_per_s']} | {v['below_eyes_per_s']} | {v['eye_mouth_per_eyes']} |"
              for k, v in real.items()]
    lines += ["", "lifecert.engine.pad.FivePointBox keeps the frontal detector's convention "
              f"(side {FIVE_POINT_BOX.side} s, {FIVE_POINT_BOX.below_eyes} s below the eyes), on which the "
              "threshold was calibrated, for every frame whichever detector fired."]
    if cached:
        lines += ["", f"pad_eval frames scored with the DETECTOR's box (`{a.cache}`): P(real) median / 10th percentile "
                  "where that box agrees with the five-point box (IoU >= 0.8) and where it does not:", "",
                  "| kind | frames agree | P(real) agree | frames differ | P(real) differ |", "|---|---|---|---|---|"]
        for k, v in cached.items():
            ag, di = v["agrees"], v["differs"]
            lines.append(f"| {k} | {ag['frames']} | {ag['p_real_median']} / {ag['p_real_p10']} | {di['frames']} | "
                         f"{di['p_real_median']} / {di['p_real_p10']} |")
    publish("pad_box", "pad_box", data, "\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
