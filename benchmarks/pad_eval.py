"""Presentation-attack detection (PAD) evaluation of the active-liveness checks.

    python benchmarks/pad_eval.py [--faces ../shared/faces] [--seq-len 24]

Sequences of frames go through the production frame path (detect → 68 landmarks →
lifecert.engine.liveness.analyze_liveness) and the liveness part of the verification
decision (lifecert.services.verification): a sequence is REJECTED as an attack when it is
a still image, or the flat-photo (planar homography) test decides "flat", or the face
track breaks, or more than one face is seen in >= 20% of frames, or (full protocol only)
the requested challenge is not seen. ISO/IEC 30107-3 terms:

* APCER (per attack type): share of attack presentations NOT rejected;
* BPCER: share of bona fide presentations rejected.

Two protocols are reported:

* ``passive`` — still / flat / track / multi-face only (no challenge); applies to every
  sequence, including the NUAA and apfol genuine crops whose subjects were not asked to
  do anything;
* ``blink`` — passive + a blink challenge in the window after a 1 s lead-in; bona fide =
  the genuine videos in video/ (which contain natural blinks), attacks = all attack types.

Attack types: ``print`` (NUAA printed photos held to the camera, per subject session),
``replay`` (apfol: recording replayed on a screen, chunks of ``--seq-len`` frames),
``still`` (one photo repeated) and ``still_warped`` (one photo with small random
perspective warps and brightness changes per frame — a photo moved in the hand).
Bona fide: NUAA real sessions, apfol real chunks, and the three videos (every
``--video-step``-th frame).

Writes benchmarks/results/pad.json and the pad section of benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.accuracy import update_readme  # noqa: E402
from lifecert.config import Settings  # noqa: E402
from lifecert.engine.base import FaceEngine, count_significant  # noqa: E402
from lifecert.engine.image import read_image_file  # noqa: E402
from lifecert.engine.liveness import FrameObs, LivenessParams, analyze_liveness  # noqa: E402
from lifecert.engine.loader import load_engine  # noqa: E402
from lifecert.engine.manifest import manifest_sha256  # noqa: E402
from lifecert.services.evaluation import machine_info  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
LEAD_IN_MS = 1000


@dataclass
class Sequence:
    name: str
    kind: str  # attack type or "bona_fide"
    source: str  # data set
    frames: list[np.ndarray]  # (H, W, 3) uint8 BGR
    t_ms: list[int]
    has_blink: bool = False  # bona fide sequence known to contain a blink


def _num(p: Path) -> int:
    m = re.findall(r"\d+", p.stem)
    return int(m[-1]) if m else 0


def nuaa_sequences(root: Path, kind_dir: str, kind: str, max_len: int) -> list[Sequence]:
    """One sequence per NUAA session (file prefix ``subject_a_b_session``), frames by number;
    NUAA was filmed at 20 fps, so t = frame number x 50 ms."""
    out = []
    for subj in sorted((root / kind_dir).iterdir()):
        groups: dict[str, list[Path]] = defaultdict(list)
        for f in subj.glob("*.jpg"):
            groups[f.stem.rsplit("_", 1)[0]].append(f)
        for g, files in sorted(groups.items()):
            files = sorted(files, key=_num)[:max_len]
            if len(files) < 5:
                continue
            frames = [read_image_file(f) for f in files]
            out.append(Sequence(f"nuaa/{kind_dir}/{g}", kind, "NUAA", frames, [_num(f) * 50 for f in files]))
    return out


def apfol_sequences(root: Path, kind_dir: str, kind: str, seq_len: int) -> list[Sequence]:
    """Consecutive chunks of ``seq_len`` frames (file name = frame number at 25 fps)."""
    files = sorted((root / kind_dir).glob("*.png"), key=_num)
    out = []
    for i in range(0, len(files) - seq_len + 1, seq_len):
        chunk = files[i : i + seq_len]
        t0 = _num(chunk[0])
        out.append(Sequence(f"apfol/{kind_dir}/{i // seq_len}", kind, "apfol",
                            [read_image_file(f) for f in chunk], [(_num(f) - t0) * 40 for f in chunk]))
    return out


def still_sequences(photos: list[Path], seq_len: int, seed: int) -> list[Sequence]:
    """Each photo repeated (``still``) and slightly warped per frame (``still_warped``), 5 fps."""
    rng = np.random.default_rng(seed)
    out = []
    for p in photos:
        img = read_image_file(p)
        h, w = img.shape[:2]
        ts = [i * 200 for i in range(seq_len)]
        out.append(Sequence(f"still/{p.parent.name}/{p.name}", "still", "photos", [img] * seq_len, ts))
        warped = []
        src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
        for _ in range(seq_len):
            jitter = rng.normal(0, 0.015, size=(4, 2)) * [w, h]  # corners move ~1.5% of the side
            m = cv2.getPerspectiveTransform(src, (src + jitter).astype(np.float32))
            f = cv2.warpPerspective(img, m, (w, h), borderMode=cv2.BORDER_REPLICATE)
            f = cv2.convertScaleAbs(f, alpha=float(rng.uniform(0.9, 1.1)), beta=float(rng.uniform(-8, 8)))
            warped.append(f)
        out.append(Sequence(f"still_warped/{p.parent.name}/{p.name}", "still_warped", "photos", warped, ts))
    return out


def video_sequences(video_dir: Path, step: int) -> list[Sequence]:
    out = []
    for f in sorted(video_dir.glob("*.mp4")):
        cap = cv2.VideoCapture(str(f))
        fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
        frames, ts, i = [], [], 0
        while True:
            ok, fr = cap.read()
            if not ok:
                break
            if i % step == 0:
                frames.append(fr)
                ts.append(round(i * 1000 / fps))
            i += 1
        cap.release()
        if frames:
            out.append(Sequence(f"video/{f.name}", "bona_fide", "video", frames, ts, has_blink=True))
    return out


def observe(engine: FaceEngine, seq: Sequence) -> list[FrameObs]:
    obs = []
    for img, t in zip(seq.frames, seq.t_ms, strict=True):
        faces = engine.detect(img)
        if not faces:
            obs.append(FrameObs(t, None))
            continue
        m = faces[0]
        obs.append(FrameObs(t, m.landmarks68, m.box, count_significant(faces)))
    return obs


def decide(obs: list[FrameObs], seq: Sequence, params: LivenessParams) -> dict[str, Any]:
    """The liveness part of lifecert.services.verification's decision, for two protocols."""
    n = len(obs)
    with_face = [o for o in obs if o.has_face]
    multi = sum(1 for o in with_face if o.num_faces > 1)
    duration = seq.t_ms[-1] - seq.t_ms[0] if n > 1 else 0
    window = max(1, duration - LEAD_IN_MS)
    t0 = seq.t_ms[0]
    rebased = [FrameObs(o.t_ms - t0, o.landmarks, o.box, o.num_faces) for o in obs]
    live = analyze_liveness(rebased, ["blink"], LEAD_IN_MS, window, params)
    reasons = []
    if len(with_face) < max(2, 0.5 * n):
        reasons.append("no_face")
    if multi >= max(2, 0.2 * n):
        reasons.append("multiple_faces")
    if live.still:
        reasons.append("still")
    if live.flat.decided and live.flat.flat:
        reasons.append("flat")
    if live.track_breaks:
        reasons.append("track_break")
    passive_reject = bool(reasons)
    blink_seen = live.all_challenges_passed
    return {
        "name": seq.name, "kind": seq.kind, "source": seq.source, "frames": n, "with_face": len(with_face),
        "duration_ms": duration, "reasons": reasons, "passive_reject": passive_reject,
        "blink_seen": blink_seen, "blink_reject": passive_reject or not blink_seen,
        "motion": round(live.motion, 5), "flat": live.flat.decided and live.flat.flat,
        "flat_decided": live.flat.decided, "flat_residual": live.flat.residual,
    }


def rate(rows: list[dict[str, Any]], key: str, accepted: bool) -> dict[str, Any]:
    """Share of rows where ``key`` says rejected (accepted=False) or not rejected (accepted=True)."""
    n = len(rows)
    k = sum(1 for r in rows if (not r[key]) == accepted)
    return {"n": n, "errors": k, "rate": (k / n) if n else None}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--faces", type=Path, default=ROOT.parent / "shared" / "faces")
    ap.add_argument("--seq-len", type=int, default=24)
    ap.add_argument("--video-step", type=int, default=2, help="keep every n-th video frame")
    ap.add_argument("--seed", type=int, default=11)
    a = ap.parse_args(argv)
    settings = Settings()
    engine = load_engine(settings, name="dlib")
    params = LivenessParams()
    spoof = a.faces / "spoof"

    still_src = sorted((a.faces / "photos").glob("*/*.jpg"))[::3] + [
        next(iter(sorted((spoof / "nuaa" / "real" / s.name).glob("*.jpg"))))
        for s in sorted((spoof / "nuaa" / "real").iterdir())
    ]
    seqs: list[Sequence] = [
        *nuaa_sequences(spoof / "nuaa", "real", "bona_fide", 40),
        *nuaa_sequences(spoof / "nuaa", "attack_print", "print", 40),
        *apfol_sequences(spoof / "apfol", "real", "bona_fide", a.seq_len),
        *apfol_sequences(spoof / "apfol", "attack_replay", "replay", a.seq_len),
        *still_sequences(still_src, a.seq_len, a.seed),
        *video_sequences(a.faces / "video", a.video_step),
    ]
    rows = []
    for s in seqs:
        r = decide(observe(engine, s), s, params)
        rows.append(r)
        print(f"{r['name']:48s} {r['kind']:12s} reasons={r['reasons']} blink={r['blink_seen']} "
              f"motion={r['motion']} flat_res={r['flat_residual']}", flush=True)

    attacks = sorted({r["kind"] for r in rows if r["kind"] != "bona_fide"})
    bona = [r for r in rows if r["kind"] == "bona_fide"]
    video = [r for r in bona if r["source"] == "video"]
    summary: dict[str, Any] = {
        "passive": {
            "apcer": {k: rate([r for r in rows if r["kind"] == k], "passive_reject", accepted=True) for k in attacks},
            "bpcer": {src: rate([r for r in bona if r["source"] == src], "passive_reject", accepted=False)
                      for src in sorted({r["source"] for r in bona})},
        },
        "blink": {
            "apcer": {k: rate([r for r in rows if r["kind"] == k], "blink_reject", accepted=True) for k in attacks},
            "bpcer": {"video": rate(video, "blink_reject", accepted=False)},
        },
    }
    report = {
        "dataset": str(a.faces), "engine": engine.info.key, "manifest_sha256": manifest_sha256(settings.manifest_path),
        "machine": machine_info(), "date": dt.date.today().isoformat(), "seq_len": a.seq_len,
        "liveness_params": params.__dict__ if hasattr(params, "__dict__") else {},
        "summary": summary, "sequences": rows,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "pad.json").write_text(json.dumps(report, indent=2, default=str) + "\n")

    def cell(x: dict[str, Any]) -> str:
        return "—" if x["rate"] is None else f"{100 * x['rate']:.1f}% ({x['errors']}/{x['n']})"

    lines = [
        "## Presentation attacks (`benchmarks/pad_eval.py`)",
        "",
        f"Machine: {report['machine']['nproc']} × {report['machine']['cpu']}, {report['date']}. Data: "
        "../shared/faces/spoof (NUAA print per subject session; apfol screen replay in chunks of "
        f"{a.seq_len} frames), still-photo sequences built from photos/ and NUAA real frames (repeated; "
        "slightly warped), genuine videos from video/. Frames → dlib detect + 68 landmarks → "
        "lifecert.engine.liveness.analyze_liveness → the liveness part of the verification decision. "
        "APCER = attacks not rejected; BPCER = bona fide rejected (ISO/IEC 30107-3). *passive* = still / "
        "flat-photo / track-break / multi-face checks only; *blink* = passive + a blink challenge.",
        "",
        "| protocol | " + " | ".join(f"APCER {k}" for k in attacks) + " | BPCER (bona fide source) |",
        "|---|" + "---|" * len(attacks) + "---|",
    ]
    for proto in ("passive", "blink"):
        s = summary[proto]
        b = ", ".join(f"{src}: {cell(v)}" for src, v in s["bpcer"].items())
        lines.append(f"| {proto} | " + " | ".join(cell(s["apcer"][k]) for k in attacks) + f" | {b} |")
    update_readme("pad", "\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
