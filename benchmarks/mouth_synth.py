"""Does the SYNTHETIC mouth opening (attacks.open_mouth) read as an open mouth, and does it change PAD?

    nice -n 10 .venv/bin/python benchmarks/mouth_synth.py     # ~2-4 min; results/mouth_synth.json + README

Since session 11 production draws open_mouth in every challenge set. pad_eval's genuine sessions of
blink_7_times_1080p (a silent clip: it never opens its mouth, MAR <= 0.16) act it with attacks.open_mouth (a
warp of the lower face plus a dark inner mouth; attacks.MouthAct draws how wide). Before any session number is
quoted this checks, on frames of the two REAL clips in ../shared/faces/video:

* production's reading: the frame as a portrait camera frame (attacks.genuine_frame, face at 0.60 of the width;
  attacks.Camera with a fixed middle setting) through PRODUCTION's frame engine (verification.load_frame_engine),
  geometry.mouth_aspect_ratio (the inner-lip MAR steps.judge_challenge uses), for the warp's gap at the ends and
  middle of attacks.MOUTH_GAP and at its OPEN_WIDER cap; against the step's threshold with the unwarped frame as
  the baseline (max(mouth_open_abs, baseline MAR + mouth_open_delta), LivenessParams);
* PAD: MiniFASNet P(real) (the shipped pack, the detector's box, as steps score frames) of the SAME frame warped
  and unwarped, through the same camera noise draw (paired): the warp must not turn a genuine frame into a
  spoof or raise it. Per-frame differences and how many frames cross the shipped threshold either way.

Frames: every k-th frame of each clip (``--frames`` per clip, evenly spaced, frames with a face; for
talking_head_a only frames whose own MAR is under 0.2, a closed mouth, so the warp opens a closed mouth).
One person per clip: this is a check of the render on two faces, not a population figure.
"""

from __future__ import annotations

import argparse
import os
import sys
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
from lifecert.engine.liveness import LivenessParams  # noqa: E402
from lifecert.engine.loader import load_engine  # noqa: E402
from lifecert.engine.pad import load_pad_from, pad_spec  # noqa: E402
from lifecert.services.verification import load_frame_engine  # noqa: E402

FACES = Path(os.environ.get("LIFECERT_SHARED_FACES", ROOT.parent / "shared" / "faces"))
MODELS = Path(os.environ.get("LIFECERT_SHARED_MODELS", ROOT.parent / "shared" / "models")) / "minifasnet"
CLIPS = ("talking_head_a", "blink_7_times_1080p")
FACE_FRAC = 0.60
CLOSED_MAR = 0.2
GAPS = (atk.MOUTH_GAP[0], sum(atk.MOUTH_GAP) / 2, atk.MOUTH_GAP[1], atk.MOUTH_GAP_MAX)


def _q(v: list[float]) -> dict[str, float | None]:
    if not v:
        return {"min": None, "p10": None, "median": None, "p90": None, "max": None}
    a = np.asarray(v, np.float64)
    return {k: round(float(np.percentile(a, p)), 4) for k, p in
            (("min", 0), ("p10", 10), ("median", 50), ("p90", 90), ("max", 100))}


def measure(clip: str, n_frames: int, seed: int) -> dict[str, Any]:
    engine = load_frame_engine(Settings(), name="dlib")
    full = load_engine(Settings(), name="dlib")  # pad_eval's engine (its sessions' landmarks)
    pad = load_pad_from(MODELS, pad_spec(), threads=1)
    shipped = pad_spec().threshold.value
    p = LivenessParams()
    frames, _fps = read_clip(FACES / "video" / f"{clip}.mp4", 640)
    # the clip's landmarks (in its own pixels) where a face is found; closed mouths only
    cand: list[tuple[int, np.ndarray]] = []
    for i in range(0, len(frames), max(1, len(frames) // (3 * n_frames))):
        faces = engine.detect(frames[i])
        if faces and faces[0].landmarks68 is not None:
            lm = np.asarray(faces[0].landmarks68, np.float64)
            if geometry.mouth_aspect_ratio(lm.astype(np.float32)) < CLOSED_MAR:
                cand.append((i, lm))
    pick = [cand[j] for j in np.linspace(0, len(cand) - 1, min(n_frames, len(cand))).round().astype(int)]
    probe = engine.detect(atk.genuine_frame(frames[pick[0][0]]))[0].box  # as mouth_windows: the face at FACE_FRAC
    zoom = FACE_FRAC / ((probe[2] - probe[0]) / atk.CAMERA[0])
    rows = []
    for i, lm in pick:
        row: dict[str, Any] = {"frame": i}
        for gap in (0.0, *GAPS):
            src = atk.open_mouth(frames[i], lm, gap)
            cam = atk.Camera(np.random.default_rng([seed, i]))  # the same noise draw for every gap (paired)
            img = cam.shoot(atk.genuine_frame(src, zoom=zoom))
            faces = engine.detect(img)
            if not faces or faces[0].landmarks68 is None:
                row[f"{gap:.3f}"] = {"face": False}
                continue
            m = faces[0]
            mar = geometry.mouth_aspect_ratio(np.asarray(m.landmarks68, np.float32))
            score = float(pad.score_many([img], [pad.box_for(m.box, m.landmarks5)])[0])
            ev = full.detect(img)
            mar_eval = geometry.mouth_aspect_ratio(np.asarray(ev[0].landmarks68, np.float32)) \
                if ev and ev[0].landmarks68 is not None else None
            row[f"{gap:.3f}"] = {"face": True, "mar": round(mar, 4), "pad": round(score, 5),
                                 "mar_eval": None if mar_eval is None else round(mar_eval, 4)}
        rows.append(row)
    out: dict[str, Any] = {"clip": clip, "frames": len(rows), "zoom": round(float(zoom), 3), "gaps": {}}
    base = [r["0.000"] for r in rows]
    for gap in GAPS:
        k = f"{gap:.3f}"
        pairs = [(b, r[k]) for b, r in zip(base, rows, strict=True) if b.get("face") and r[k].get("face")]
        thr = [max(p.mouth_open_abs, b["mar"] + p.mouth_open_delta) for b, _ in pairs]
        over = sum(w["mar"] > t for (_, w), t in zip(pairs, thr, strict=True))
        evp = [(b["mar_eval"], w["mar_eval"]) for b, w in pairs
               if b["mar_eval"] is not None and w["mar_eval"] is not None]
        over_eval = sum(w > max(p.mouth_open_abs, b + p.mouth_open_delta) for b, w in evp)
        diffs = [w["pad"] - b["pad"] for b, w in pairs]
        out["gaps"][k] = {
            "n": len(pairs), "lost_face": sum(1 for r in rows if not r[k].get("face")),
            "mar": _q([w["mar"] for _, w in pairs]), "over_threshold": over,
            "mar_eval": _q([w for _, w in evp]), "over_threshold_eval": over_eval, "n_eval": len(evp),
            "pad_warped": _q([w["pad"] for _, w in pairs]), "pad_diff": _q(diffs),
            "pad_mean_diff": round(float(np.mean(diffs)), 4) if diffs else None,
            "crossed_to_spoof": sum(b["pad"] >= shipped > w["pad"] for b, w in pairs),
            "crossed_to_real": sum(b["pad"] < shipped <= w["pad"] for b, w in pairs),
        }
    out["unwarped"] = {"mar": _q([b["mar"] for b in base if b.get("face")]),
                       "pad": _q([b["pad"] for b in base if b.get("face")]),
                       "under_shipped": sum(1 for b in base if b.get("face") and b["pad"] < shipped)}
    out["rows"] = rows
    return out


def text(res: dict[str, Any]) -> str:
    lines = [
        "## Synthetic mouth opening (`benchmarks/mouth_synth.py`)",
        "",
        f"{res['date']}, {res['machine'].get('cpu', '')} ({res['machine'].get('nproc', '')} cores, shared, niced). "
        "The check behind pad_eval's session-11 rows (open_mouth in every draw): attacks.open_mouth opens the "
        "mouth of a frame by warping the lower face down (lower lip by a lens-shaped gap closed at the corners, "
        "chin and jaw by a broader profile, fading under the chin) and drawing a dark inner mouth in the gap "
        "(SYNTHETIC; no teeth or tongue). `gap` = the inner-lip opening added, as a fraction of the inner mouth "
        f"width; pad_eval's genuine blink_7 sessions draw it from {atk.MOUTH_GAP[0]}-{atk.MOUTH_GAP[1]} "
        f"(attacks.MouthAct, an ASSUMPTION: nobody was filmed opening on request) and x{atk.MOUTH_WIDER} (cap "
        f"{atk.MOUTH_GAP_MAX}) after OPEN_WIDER. Frames of the two real clips with a closed mouth (own MAR < "
        f"{CLOSED_MAR}), face at {FACE_FRAC} of a 480x640 frame, one fixed camera (blur 0.7, noise 2.5, JPEG 85, "
        "the same noise draw warped and unwarped), production's frame engine (`load_frame_engine`) and inner-lip "
        "MAR; threshold = max(0.30, the unwarped frame's MAR + 0.12) as `steps.judge_challenge` with that frame as "
        f"the baseline; PAD = the shipped MiniFASNet pack's P(real) per frame (shipped threshold {res['shipped']}, "
        "a per-SESSION median in production). *pad_eval's engine*: `load_engine` dlib on the full frame, which "
        "pad_eval's sessions use (its landmarks differ from the frame engine's 320 px detection).",
        "",
        "| clip | gap | n | MAR median [min-max] | over threshold | pad_eval's engine: MAR median, over | "
        "PAD P(real) median warped | PAD diff warped-unwarped median [min-max] | crossed real->spoof / spoof->real |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for c in res["clips"]:
        u = c["unwarped"]
        lines.append(f"| {c['clip']} | 0 (unwarped) | {c['frames']} | {u['mar']['median']} [{u['mar']['min']}-"
                     f"{u['mar']['max']}] | - | - | {u['pad']['median']} | - | under shipped: {u['under_shipped']} |")
        for k, g in c["gaps"].items():
            lines.append(f"| {c['clip']} | {k} | {g['n']} | {g['mar']['median']} [{g['mar']['min']}-"
                         f"{g['mar']['max']}] | {g['over_threshold']}/{g['n']} | {g['mar_eval']['median']}, "
                         f"{g['over_threshold_eval']}/{g['n_eval']} | {g['pad_warped']['median']} | "
                         f"{g['pad_diff']['median']:+.4f} [{g['pad_diff']['min']:+.4f} to {g['pad_diff']['max']:+.4f}]"
                         f" | {g['crossed_to_spoof']} / {g['crossed_to_real']} |")
    lines += ["", res.get("reading", "")]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=30, help="frames per clip")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--no-readme", action="store_true")
    a = ap.parse_args(argv)
    import cv2

    cv2.setNumThreads(1)
    res: dict[str, Any] = {"date": now(), "machine": machine(), "face_frac": FACE_FRAC, "gaps": list(GAPS),
                           "shipped": pad_spec().threshold.value, "seed": a.seed,
                           "clips": [measure(c, a.frames, a.seed) for c in CLIPS]}
    publish("mouth_synth", "mouth_synth", res, text(res), readme=not a.no_readme)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
