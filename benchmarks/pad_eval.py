"""Presentation-attack detection (PAD) evaluation: active checks alone, MiniFASNet PAD alone, both.

    python benchmarks/pad_eval.py [--faces ../shared/faces] [--sessions 6] [--write-manifest]

Every sequence is a list of FULL camera frames (480x640 portrait unless the source says
otherwise) with timestamps. Frames go through the production path: dlib detect + 68
landmarks per frame → lifecert.engine.liveness.analyze_liveness (still / flat-photo / track /
multi-face and the drawn challenges) and lifecert.engine.pad (MiniFASNet on the full frame
with the detector's box, fused per session). How the attack and genuine frames were made is
in benchmarks/attacks.py (synthetic: screen, paper, head-turn warps) — read it before quoting
a number.

Sequence types (``kind``; attacks first):

* ``print`` — synthetic hand-held print: a NUAA real frame of each subject, or a photo from
  photos/, printed on curled paper with white margins, tilted back and forth, in front of a
  background (attacks.PaperPrint); the drawn challenges are prompted but paper cannot act.
* ``print_nuaa`` — REAL prints: NUAA attack_print sessions (printed photos held to a camera),
  each crop made into a full frame by stretching its own border (attacks.place_crop).
* ``replay`` — a genuine clip (video/) playing on a phone screen held in front of the camera,
  NOT cued (attacks.PhoneScreen).
* ``replay_apfol`` — REAL screen replays: apfol attack_replay crops (chunks) in full frames.
* ``still`` — one photo on a phone screen, held (tremor only).
* ``cued_replay`` — the clip ACTS the drawn challenges (blink/mouth cued from the clip's own
  frames; turns and nods by the cylinder warp of attacks.turn_head), on a phone screen.
* ``bona_fide`` — genuine: the same clips acting the challenges shown directly as camera
  frames (``video_acted``: normal 0.8 s reaction, ``slow`` 2.5 s, ``late`` face enters 2.2 s
  late), NUAA / apfol real crops in full frames (``crops``: PAD and passive checks only,
  their subjects were asked nothing), and the 96x128 clip (``tiny``: reported, not in the floor).

Protocol: a 1 s lead-in, then two challenges (policy of issue 12: one of turn_left /
turn_right and one of blink / open_mouth, random order; nods are not drawn because the
synthetic nod warp is not a fair genuine nod) each in a 6 s window, 5 fps; a session's frames
stop 1 s after its last action. Prints and stills: 2.5 fps over the lead-in and the first
window only (they cannot act; the second challenge is "not seen" either way).
*active* rejects when a passive reason fires (still, flat photo at the engine's current
cut-off, track break, no face, several faces) or a challenge is not seen. *pad* rejects when
the fused session P(real) is below the threshold. *both* rejects when either does.

Split: sequences are split into a CALIBRATION half (even session numbers; NUAA subjects
0001-0004; the first half of apfol) and a REPORT half (the rest). The PAD threshold is
chosen on the calibration half only (the lowest threshold whose calibration BPCER ≤ 2 %
that minimises the worst APCER) and every number in the table is from the report half.

Also measured: PAD on the raw TIGHT crops (the NUAA/apfol files as they are, no context)
to show what collapsing the context crop does.

Writes benchmarks/results/pad.json and the pad section of benchmarks/README.md; with
``--write-manifest`` the ``[packs.minifasnet.threshold]`` table of models/manifest.toml.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import pickle
import re
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import attacks as atk  # noqa: E402
from benchmarks.accuracy import update_readme  # noqa: E402
from lifecert.config import Settings  # noqa: E402
from lifecert.engine import geometry, spoof_cues  # noqa: E402
from lifecert.engine.base import FaceEngine, count_significant  # noqa: E402
from lifecert.engine.image import read_image_file  # noqa: E402
from lifecert.engine.liveness import FrameObs, LivenessParams, analyze_liveness  # noqa: E402
from lifecert.engine.loader import load_engine  # noqa: E402
from lifecert.engine.manifest import REPO_MANIFEST, manifest_sha256  # noqa: E402
from lifecert.engine.pad import PadModel, box_xyxy_to_xywh, fuse_session, load_pad_from, pad_spec  # noqa: E402
from lifecert.services.evaluation import machine_info  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
LEAD_IN_MS = 1000
WINDOW_MS = 6000
FPS = 5.0  # frames per second of the acted sessions (challenges need the frames)
FPS_PASSIVE = 2.5  # prints and stills: they cannot act; fewer frames on a shared machine
# Nods are not drawn: the cylinder warp of attacks.turn_head moved pitch_ratio by only +0.02 to +0.09
# at 36 degrees depending on the clip (threshold 0.05), so a synthetic nod is not a fair genuine nod.
HEAD = ("turn_left", "turn_right")
NON_RIGID = ("blink", "open_mouth")
ATTACKS = ("print", "print_nuaa", "replay", "replay_apfol", "still", "cued_replay")
FLOOR = {"print": 0.01, "print_nuaa": 0.01, "still": 0.01, "replay": 0.05, "replay_apfol": 0.05,
         "cued_replay": 0.05}
BPCER_FLOOR = 0.03
CAL_BPCER = 0.02


@dataclass
class Seq:
    name: str
    kind: str  # an attack type or "bona_fide"
    source: str  # video_acted, slow, late, crops, tiny, nuaa, apfol, photos, ...
    split: str  # "cal" | "report"
    frames: list[np.ndarray]
    t_ms: list[int]
    challenges: list[str] = field(default_factory=list)


def _num(p: Path) -> int:
    m = re.findall(r"\d+", p.stem)
    return int(m[-1]) if m else 0


def draw_challenges(rng: np.random.Generator, clip_can_mouth: bool) -> list[str]:
    head = str(rng.choice(HEAD))
    nr = str(rng.choice(NON_RIGID if clip_can_mouth else ("blink",)))
    return [head, nr] if rng.random() < 0.5 else [nr, head]


def read_clip(path: Path) -> tuple[list[np.ndarray], float]:
    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    frames = []
    while True:
        ok, fr = cap.read()
        if not ok:
            break
        frames.append(fr)
    cap.release()
    return frames, float(fps)


def index_clip(engine: FaceEngine, frames: list[np.ndarray], fps: float) -> atk.FootageIndex:
    boxes: list[Any] = []
    ear, mar = [], []
    for f in frames:
        faces = engine.detect(f)
        if not faces or faces[0].landmarks68 is None:
            boxes.append(None)
            ear.append(np.nan)
            mar.append(np.nan)
            continue
        boxes.append(faces[0].box)
        ear.append(geometry.eye_aspect_ratio(faces[0].landmarks68))
        mar.append(geometry.mouth_aspect_ratio(faces[0].landmarks68))
    return atk.FootageIndex(boxes, np.array(ear), np.array(mar), fps)


# -- sequence builders ---------------------------------------------------------------------------------


def acted_sequences(clips: dict[str, tuple[list[np.ndarray], atk.FootageIndex]], sessions: int,
                    seed: int) -> Iterator[Seq]:
    """Genuine acted (normal / slow / late) and the cued replay of the same acting on a phone."""
    for ci, (clip, (frames, index)) in enumerate(sorted(clips.items())):
        can_mouth = bool(index.mouth_frames())
        for s in range(sessions):
            split = "cal" if s % 2 == 0 else "report"
            for variant, delay, late in (("video_acted", 800, 0), ("slow", 2500, 0), ("late", 800, 2200)):
                rng = np.random.default_rng([seed, ci, s, len(variant)])
                ch = draw_challenges(rng, can_mouth)
                shots, times = atk.act(index, ch, rng, lead_in_ms=LEAD_IN_MS, window_ms=WINDOW_MS, fps=FPS,
                                       delay_ms=delay, late_ms=late)
                cam = atk.Camera(rng)
                empty = atk.background(rng)
                imgs = [cam.shoot(atk.genuine_frame(atk.render_shot(frames, index, sh)) if sh.face_visible else empty)
                        for sh in shots]
                yield Seq(f"{variant}/{clip}/{s}", "bona_fide", variant, split, imgs, times, ch)
            # cued replay: an attacker cueing the same clip by hand (reaction 0.8-1.5 s) on a phone screen
            rng = np.random.default_rng([seed, ci, s, 99])
            ch = draw_challenges(rng, can_mouth)
            shots, times = atk.act(index, ch, rng, lead_in_ms=LEAD_IN_MS, window_ms=WINDOW_MS, fps=FPS,
                                   delay_ms=int(rng.uniform(800, 1500)))
            phone, cam = atk.PhoneScreen(rng), atk.Camera(rng)
            imgs = [cam.shoot(phone.render(atk.render_shot(frames, index, sh))) for sh in shots]
            yield Seq(f"cued_replay/{clip}/{s}", "cued_replay", clip, split, imgs, times, ch)
            # plain replay: the clip plays on, nobody cues it
            rng = np.random.default_rng([seed, ci, s, 77])
            ch = draw_challenges(rng, can_mouth)
            n = int((LEAD_IN_MS + WINDOW_MS + 3000) / 1000 * FPS)
            start = int(rng.integers(0, len(frames)))
            phone, cam = atk.PhoneScreen(rng), atk.Camera(rng)
            times = [round(i * 1000 / FPS) for i in range(n)]
            imgs = [cam.shoot(phone.render(frames[(start + round(t * index.fps / 1000)) % len(frames)]))
                    for t in times]
            yield Seq(f"replay/{clip}/{s}", "replay", clip, split, imgs, times, ch)


def nuaa_sessions(root: Path, kind_dir: str, max_len: int) -> list[tuple[str, int, list[Path]]]:
    out = []
    for subj in sorted((root / kind_dir).iterdir()):
        groups: dict[str, list[Path]] = defaultdict(list)
        for f in subj.glob("*.jpg"):
            groups[f.stem.rsplit("_", 1)[0]].append(f)
        for g, files in sorted(groups.items()):
            files = sorted(files, key=_num)[:max_len]
            if len(files) >= 5:
                out.append((g, int(subj.name), files))
    return out


def crop_sequences(faces: Path, seq_len: int, seed: int, max_len: int = 8) -> Iterator[tuple[Seq, Seq]]:
    """NUAA/apfol crops made into full frames, each with the same crops as they are (tight)."""
    spoof = faces / "spoof"
    for kind_dir, kind in (("real", "bona_fide"), ("attack_print", "print_nuaa")):
        sess = nuaa_sessions(spoof / "nuaa", kind_dir, max_len)
        if kind_dir == "attack_print":
            sess = sess[::4]  # 20 of the 80 print sessions keep the run short on a shared machine
        for g, subj, files in sess:
            split = "cal" if subj <= 4 else "report"
            crops = [read_image_file(f) for f in files]
            ts = [(_num(f) - _num(files[0])) * 50 for f in files]  # NUAA: 20 fps
            cam = atk.Camera(np.random.default_rng([seed, subj, _num(files[0])]))
            src = "crops" if kind == "bona_fide" else "nuaa"
            placed = [cam.shoot(atk.place_crop(c)) for c in crops]
            yield (Seq(f"nuaa/{kind_dir}/{g}", kind, src, split, placed, ts),
                   Seq(f"tight/nuaa/{kind_dir}/{g}", kind, src, split, crops, ts))
    for kind_dir, kind in (("real", "bona_fide"), ("attack_replay", "replay_apfol")):
        files = sorted((spoof / "apfol" / kind_dir).glob("*.png"), key=_num)
        chunks = [files[i : i + seq_len] for i in range(0, len(files) - seq_len + 1, seq_len)]
        chunks = chunks[:: max(1, len(chunks) // 8)]  # at most ~8 chunks per kind, spread over the recording
        for ci, chunk in enumerate(chunks):
            split = "cal" if ci < len(chunks) / 2 else "report"
            crops = [read_image_file(f) for f in chunk]
            ts = [(_num(f) - _num(chunk[0])) * 40 for f in chunk]
            cam = atk.Camera(np.random.default_rng([seed, 500, ci]))
            src = "crops" if kind == "bona_fide" else "apfol"
            placed = [cam.shoot(atk.place_crop(c)) for c in crops]
            yield (Seq(f"apfol/{kind_dir}/{ci}", kind, src, split, placed, ts),
                   Seq(f"tight/apfol/{kind_dir}/{ci}", kind, src, split, crops, ts))


def print_and_still_sequences(faces: Path, seed: int, n_frames: int) -> Iterator[Seq]:
    spoof = faces / "spoof"
    sources = [next(iter(sorted((spoof / "nuaa" / "real" / s.name).glob("*.jpg"))))
               for s in sorted((spoof / "nuaa" / "real").iterdir())]
    sources += sorted((faces / "photos").glob("*/*.jpg"))[::12]
    times = [round(i * 1000 / FPS_PASSIVE) for i in range(n_frames)]
    for i, p in enumerate(sources):
        photo = read_image_file(p)
        split = "cal" if i % 2 == 0 else "report"
        rng = np.random.default_rng([seed, 300, i])
        ch = draw_challenges(rng, True)
        paper, cam = atk.PaperPrint(rng, photo), atk.Camera(rng)
        yield Seq(f"print/{p.parent.name}/{p.name}", "print", "synthetic", split,
                  [cam.shoot(paper.render()) for _ in times], times, ch)
        yield Seq(f"still/{p.parent.name}/{p.name}", "still", "synthetic", split,
                  atk.still_on_screen(photo, rng, n_frames), times, list(ch))


def tiny_sequence(faces: Path) -> Seq:
    frames, fps = read_clip(faces / "video" / "blink_2_times_tiny.mp4")
    step = max(1, round(fps / FPS))
    kept = frames[::step]
    return Seq("tiny/blink_2_times_tiny", "bona_fide", "tiny", "report", kept,
               [round(i * step * 1000 / fps) for i in range(len(kept))])


# -- scoring ------------------------------------------------------------------------------------------------


def observe(engine: FaceEngine, pad: PadModel, seq: Seq) -> tuple[list[FrameObs], list[float], list[Any]]:
    obs, boxes_for_pad, idx = [], [], []
    for i, (img, t) in enumerate(zip(seq.frames, seq.t_ms, strict=True)):
        faces = engine.detect(img)
        if not faces:
            obs.append(FrameObs(t, None))
            continue
        m = faces[0]
        obs.append(FrameObs(t, m.landmarks68, m.box, count_significant(faces)))
        boxes_for_pad.append(box_xyxy_to_xywh(m.box))
        idx.append(i)
    scores = [float("nan")] * len(seq.frames)
    if idx:
        s = pad.score_many([seq.frames[i] for i in idx], boxes_for_pad)
        for i, v in zip(idx, s, strict=True):
            scores[i] = float(v)
    return obs, scores, [o.box if o.box is not None else None for o in obs]


def active_decision(obs: list[FrameObs], seq: Seq, params: LivenessParams) -> dict[str, Any]:
    n = len(obs)
    with_face = [o for o in obs if o.has_face]
    multi = sum(1 for o in with_face if o.num_faces > 1)
    live = analyze_liveness(obs, seq.challenges, LEAD_IN_MS, WINDOW_MS, params)
    reasons = []
    if len(with_face) < max(2, 0.5 * n) and seq.source != "late":
        reasons.append("no_face")
    if multi >= max(2, 0.2 * n):
        reasons.append("multiple_faces")
    if live.still:
        reasons.append("still")
    if live.flat.decided and live.flat.flat:
        reasons.append("flat")
    if live.track_breaks:
        reasons.append("track_break")
    missed = [c.name for c in live.challenges if not c.passed]
    return {
        "passive_reasons": reasons, "missed": missed, "active_reject": bool(reasons or missed),
        "flat_decided": live.flat.decided, "flat_residual": live.flat.residual, "motion": round(live.motion, 5),
    }


def rate(rows: Sequence[dict[str, Any]], rejected: Callable[[dict[str, Any]], bool], attack: bool) -> dict[str, Any]:
    """APCER (attack=True: share NOT rejected) or BPCER (attack=False: share rejected)."""
    n = len(rows)
    k = sum(1 for r in rows if rejected(r) != attack)
    return {"n": n, "errors": k, "rate": (k / n) if n else None}


# Calibration targets: the full-frame attack types. print_nuaa / replay_apfol are real captures but only as
# tight crops whose full frame is synthesised around them (attacks.place_crop): reported, not calibrated on.
CALIBRATE_ON = ("print", "still", "replay", "cued_replay")


def choose_threshold(cal: list[dict[str, Any]], method: str) -> tuple[float, dict[str, Any]]:
    """Lowest-risk threshold on the calibration half: among thresholds with BPCER ≤ CAL_BPCER on the
    genuine sequences (tiny excluded), the one minimising the worst APCER over CALIBRATE_ON; ties → the
    middle of the tied range (margin on both sides)."""
    gen = np.array([r["pad"][method] for r in cal if r["kind"] == "bona_fide" and r["source"] != "tiny"])
    gen = np.nan_to_num(gen, nan=0.0)
    att: dict[str, Any] = {}
    for r in cal:
        if r["kind"] in CALIBRATE_ON:
            att.setdefault(r["kind"], []).append(r["pad"][method])
    att = {k: np.nan_to_num(np.array(v), nan=0.0) for k, v in att.items()}
    grid = np.round(np.arange(0.01, 1.0, 0.005), 4)
    best: list[tuple[float, float]] = []
    for t in grid:
        bp = float((gen < t).mean()) if gen.size else 0.0
        if bp > CAL_BPCER:
            continue
        worst = max(float((v >= t).mean()) for v in att.values()) if att else 0.0
        best.append((worst, float(t)))
    if not best:
        return 0.01, {"note": "no threshold met the calibration BPCER", "margin": 0.0}
    low = min(w for w, _ in best)
    tied = [t for w, t in best if w == low]
    t = float(np.round((min(tied) + max(tied)) / 2, 4))
    return t, {"cal_worst_apcer": low, "tied_range": [min(tied), max(tied)], "margin": max(tied) - min(tied),
               "cal_genuine": int(gen.size), "calibrated_on": list(CALIBRATE_ON)}


def choose_fusion(cal: list[dict[str, Any]]) -> tuple[str, float, dict[str, Any]]:
    """The session fusion (mean, median, p25) with the lowest calibration worst-APCER, then the widest margin."""
    options = []
    for m in ("mean", "median", "p25"):
        t, info = choose_threshold(cal, m)
        options.append((info.get("cal_worst_apcer", 1.0), -info.get("margin", 0.0), m, t, info))
    options.sort(key=lambda o: (o[0], o[1]))
    _, _, m, t, info = options[0]
    info["fusion_options"] = {o[2]: {"threshold": o[3], "cal_worst_apcer": o[0], "margin": -o[1]} for o in options}
    return m, t, info


def write_manifest_threshold(path: Path, value: float, fusion: str, apcer: dict[str, Any], bpcer: float | None,
                             dataset: str, date: str) -> None:
    text = path.read_text()
    worst = max((v["rate"] for v in apcer.values() if v["rate"] is not None), default=None)
    block = (
        "[packs.minifasnet.threshold]\n"
        f"# calibrated by benchmarks/pad_eval.py on its calibration half; APCER/BPCER below are its REPORT half\n"
        f"# (synthetic full-frame attacks + real NUAA/apfol crops in synthesised frames; see benchmarks/README.md)\n"
        f"value = {value}\n"
        f'fusion = "{fusion}"\n'
        f"apcer = {round(worst, 4) if worst is not None else 'nan'}  # worst attack type\n"
        + "".join(f"apcer_{k} = {round(v['rate'], 4)}\n" for k, v in sorted(apcer.items()) if v["rate"] is not None)
        + f"bpcer = {round(bpcer, 4) if bpcer is not None else 'nan'}\n"
        f'dataset = "{dataset}"\n'
        f'date = "{date}"\n'
    )
    # the table runs to the first blank line or the next table header (comments of the next section stay)
    pat = re.compile(r"\[packs\.minifasnet\.threshold\]\n(?:(?!\n\n|\n\[).)*", re.S)
    if not pat.search(text):
        raise SystemExit(f"{path} has no [packs.minifasnet.threshold] table")
    path.write_text(pat.sub(lambda _: block.rstrip("\n"), text, count=1))


def auc(pos: Sequence[float], neg: Sequence[float]) -> float | None:
    """P(a random attack value > a random genuine value), ties counted half; None when a side is empty."""
    p = np.array([v for v in pos if v is not None and not math.isnan(v)], dtype=np.float64)
    n = np.array([v for v in neg if v is not None and not math.isnan(v)], dtype=np.float64)
    if not p.size or not n.size:
        return None
    gt = (p[:, None] > n[None, :]).mean()
    eq = (p[:, None] == n[None, :]).mean()
    return float(gt + 0.5 * eq)


def cue_measurements(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Does each spoof cue separate attacks from genuine sequences? On REAL captures (NUAA prints vs
    NUAA real, apfol replay vs apfol real — both as crops in synthesised frames, so only the
    face-region cues mean anything there) and on the synthetic full-frame attacks vs genuine
    acted clips. AUC = P(attack value > genuine value); 0.5 = no separation."""
    def vals(sel: Callable[[dict[str, Any]], bool], key: str) -> list[float]:
        out = []
        for r in rows:
            if not sel(r):
                continue
            v = r["flat_residual"] if key == "flat_residual" else r["cues"].get(key)
            if key == "flat_residual" and not r["flat_decided"]:
                continue
            if key == "rigid_enclosure":
                v = float(r["cues"]["enclosure"] or 0) if r["cues"]["rigid"] else 0.0
            out.append(float("nan") if v is None else float(v))
        return out

    real_gen_nuaa = lambda r: r["kind"] == "bona_fide" and r["name"].startswith("nuaa/")  # noqa: E731
    real_gen_apfol = lambda r: r["kind"] == "bona_fide" and r["name"].startswith("apfol/")  # noqa: E731
    synth_gen = lambda r: r["kind"] == "bona_fide" and r["source"] in ("video_acted", "slow", "late")  # noqa: E731
    out: dict[str, Any] = {}
    for cue in ("moire", "specular", "enclosure", "rigid_enclosure"):
        out[cue] = {
            "real_print_nuaa": auc(vals(lambda r: r["kind"] == "print_nuaa", cue), vals(real_gen_nuaa, cue)),
            "real_replay_apfol": auc(vals(lambda r: r["kind"] == "replay_apfol", cue), vals(real_gen_apfol, cue)),
            **{f"synthetic_{k}": auc(vals(lambda r, k=k: r["kind"] == k, cue), vals(synth_gen, cue))
               for k in ("print", "replay", "still", "cued_replay")},
        }
    # the flat-photo (homography) test: a LOW residual means planar; AUC here = P(genuine residual > print's)
    flat: dict[str, Any] = {}
    for name, sel in (("print_nuaa", lambda r: r["kind"] == "print_nuaa"), ("print", lambda r: r["kind"] == "print"),
                      ("genuine_acted", synth_gen), ("genuine_crops", lambda r: r["source"] == "crops")):
        v = [x for x in vals(sel, "flat_residual") if not math.isnan(x)]
        n_all = sum(1 for r in rows if sel(r))
        flat[name] = {"sequences": n_all, "decided": len(v),
                      "residual_quantiles": [round(float(q), 4) for q in np.quantile(v, [0, 0.1, 0.5, 0.9, 1])]
                      if v else None}
    out["flat_residual"] = flat
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--faces", type=Path, default=ROOT.parent / "shared" / "faces")
    ap.add_argument("--models", type=Path, default=None, help="folder with the minifasnet files")
    ap.add_argument("--sessions", type=int, default=6, help="acted sessions per clip and variant")
    ap.add_argument("--seq-len", type=int, default=8, help="apfol chunk length (frames)")
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--write-manifest", action="store_true")
    ap.add_argument("--fusion", default="auto", choices=["auto", "mean", "median", "p25"],
                    help="session fusion of per-frame P(real); auto = chosen on the calibration half")
    ap.add_argument("--summarize-only", action="store_true",
                    help="rebuild the summary, README and manifest from results/pad_rows.json (no rescoring)")
    a = ap.parse_args(argv)
    t_start = time.time()
    settings = Settings()
    if a.summarize_only:
        if (RESULTS / "pad_rows.json").is_file():
            saved = json.loads((RESULTS / "pad_rows.json").read_text())
        else:  # a pad.json written by a full run
            old = json.loads((RESULTS / "pad.json").read_text())
            saved = {"rows": old["sequences"], "tight_rows": old["tight_crops"]["rows"],
                     "meta": {k: old[k] for k in ("dataset", "engine", "seed", "sessions", "elapsed_s", "load_avg")}}
        summarize(saved["rows"], saved["tight_rows"], saved["meta"], a.fusion, a.write_manifest, settings)
        return 0
    engine = load_engine(settings, name="dlib")
    models = a.models or a.faces.parent / "models" / "minifasnet"
    pad = load_pad_from(models, pad_spec(), threads=1)
    params = LivenessParams()

    clips = {}
    for name in ("talking_head_a.mp4", "blink_7_times_1080p.mp4"):
        frames, fps = read_clip(a.faces / "video" / name)
        cache = Path(tempfile.gettempdir()) / f"lifecert-pad-index-{name}.pkl"  # landmarks of a shared clip
        if cache.is_file():
            ix = pickle.loads(cache.read_bytes())
        else:
            ix = index_clip(engine, frames, fps)
            cache.write_bytes(pickle.dumps(ix))
        clips[name.removesuffix(".mp4")] = (frames, ix)
        print(f"indexed {name}: {len(frames)} frames, blinks {len(ix.blink_frames())}, mouth {len(ix.mouth_frames())}",
              flush=True)
    # paper and stills: the lead-in and the first challenge window (they cannot act any challenge;
    # the second window then has no frames and is "not seen" — the same outcome, 30 % less CPU)
    n_still = int((LEAD_IN_MS + WINDOW_MS) / 1000 * FPS_PASSIVE)
    rows: list[dict[str, Any]] = []
    tight_rows: list[dict[str, Any]] = []

    def run(s: Seq) -> None:
        obs, scores, boxes = observe(engine, pad, s)
        cues = spoof_cues.analyze(s.frames, boxes)
        r = {"name": s.name, "kind": s.kind, "source": s.source, "split": s.split, "challenges": s.challenges,
             "frames": len(s.frames), "with_face": sum(1 for o in obs if o.has_face),
             **active_decision(obs, s, params),
             "pad": {m: fuse_session(scores, m) for m in ("mean", "median", "p25")},
             "cues": cues.as_dict(),
             "pad_frames": [None if math.isnan(v) else round(v, 4) for v in scores]}
        rows.append(r)
        print(f"{s.name:44s} {s.kind:12s} {s.split:6s} active={'REJ' if r['active_reject'] else 'acc'} "
              f"{r['passive_reasons']}{r['missed']} pad={r['pad']['mean']:.3f} flat={r['flat_residual']} "
              f"cues={cues.enclosure},{cues.rigid},{cues.moire:.1f},{cues.specular:.3f}", flush=True)

    for s in acted_sequences(clips, a.sessions, a.seed):
        run(s)
    for s in print_and_still_sequences(a.faces, a.seed, n_still):
        run(s)
    for s, t in crop_sequences(a.faces, a.seq_len, a.seed):
        run(s)
        _, scores, _ = observe(engine, pad, t)
        tight_rows.append({"name": t.name, "kind": t.kind, "source": t.source, "split": t.split,
                           "pad": {m: fuse_session(scores, m) for m in ("mean", "median", "p25")}})
    run(tiny_sequence(a.faces))

    meta = {
        "dataset": str(a.faces), "engine": engine.info.key, "seed": a.seed, "sessions": a.sessions,
        "elapsed_s": round(time.time() - t_start, 1), "load_avg": [round(x, 2) for x in os.getloadavg()],
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "pad_rows.json").write_text(json.dumps({"meta": meta, "rows": rows, "tight_rows": tight_rows},
                                                      default=str) + "\n")
    summarize(rows, tight_rows, meta, a.fusion, a.write_manifest, settings)
    return 0


def summarize(rows: list[dict[str, Any]], tight_rows: list[dict[str, Any]], meta: dict[str, Any], fusion: str,
              write_manifest: bool, settings: Settings) -> None:
    """Threshold on the calibration half, rates on the report half, cue measurements, README, manifest."""
    cal = [r for r in rows if r["split"] == "cal"]
    rep = [r for r in rows if r["split"] == "report"]
    if fusion == "auto":
        fusion, thr, cal_info = choose_fusion(cal)
    else:
        thr, cal_info = choose_threshold(cal, fusion)

    def pad_rej(r: dict[str, Any]) -> bool:
        v = r["pad"][fusion]
        return bool(math.isnan(v) or v < thr)

    protocols: dict[str, Callable[[dict[str, Any]], bool]] = {
        "active": lambda r: bool(r["active_reject"]),
        "pad": pad_rej,
        "both": lambda r: bool(r["active_reject"]) or pad_rej(r),
    }
    kinds = [k for k in ATTACKS if any(r["kind"] == k for r in rows)]
    gen_sources = ["video_acted", "slow", "late", "crops", "tiny"]
    summary: dict[str, Any] = {}
    for proto, rej in protocols.items():
        summary[proto] = {
            "apcer": {k: rate([r for r in rep if r["kind"] == k], rej, True) for k in kinds},
            "bpcer": {src: rate([r for r in rep if r["kind"] == "bona_fide" and r["source"] == src], rej, False)
                      for src in gen_sources},
            "bpcer_floor_set": rate([r for r in rep if r["kind"] == "bona_fide" and r["source"] != "tiny"], rej,
                                    False),
        }
    tight_summary = {
        "apcer": {k: rate([r for r in tight_rows if r["kind"] == k and r["split"] == "report"], pad_rej, True)
                  for k in ("print_nuaa", "replay_apfol")},
        "bpcer": rate([r for r in tight_rows if r["kind"] == "bona_fide" and r["split"] == "report"], pad_rej, False),
    }
    full_same = {
        "apcer": {k: v for k, v in summary["pad"]["apcer"].items() if k in ("print_nuaa", "replay_apfol")},
        "bpcer": summary["pad"]["bpcer"]["crops"],
    }
    today = dt.date.today().isoformat()
    load = meta["load_avg"]
    cues = cue_measurements(rows)
    report = {
        **meta, "manifest_sha256": manifest_sha256(settings.manifest_path),
        "machine": machine_info(), "date": today, "fps": FPS, "lead_in_ms": LEAD_IN_MS, "window_ms": WINDOW_MS,
        "fusion": fusion, "threshold": thr, "calibration": cal_info, "summary": summary, "cues": cues,
        "tight_crops": {"report_half": tight_summary, "same_sequences_in_full_frames": full_same,
                        "rows": tight_rows},
        "liveness_params": LivenessParams().__dict__, "sequences": rows,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "pad.json").write_text(json.dumps(report, indent=1, default=str) + "\n")

    def cell(x: dict[str, Any], floor: float | None = None) -> str:
        if x["rate"] is None:
            return "—"
        mark = "" if floor is None else (" ✓" if x["rate"] <= floor else " ✗")
        return f"{100 * x['rate']:.1f}% ({x['errors']}/{x['n']}){mark}"

    n_rep = len(rep)
    lines = [
        "## Presentation attacks (`benchmarks/pad_eval.py`)",
        "",
        f"Machine: {report['machine']['nproc']} × {report['machine']['cpu']} (shared with other sessions; load "
        f"{load[0]:.1f}), {today}, {meta['elapsed_s']:.0f} s. Full camera frames (480×640) through dlib detect + "
        "68 landmarks → `analyze_liveness` (*active*: still / flat photo at the engine's cut-off / track / faces / "
        f"the two drawn challenges, 1 s lead-in + 2 × {WINDOW_MS // 1000} s windows, {FPS:.0f} fps, prints/stills "
        f"{FPS_PASSIVE} fps) and MiniFASNet "
        f"V2+V1SE on the full frame with dlib's box (*pad*: session {fusion} of P(real) < {thr}); *both* = either "
        "rejects. Threshold and fusion chosen on the calibration half (even sessions, NUAA subjects 1–4, first half of "
        "apfol) against the full-frame attack types only (print, still, replay, cued_replay: print_nuaa/replay_apfol "
        "are tight crops with a synthesised frame, reported but not calibrated on); "
        f"**every rate below is the other half** ({n_rep} sequences). APCER = attacks not rejected, BPCER = genuine "
        "rejected (ISO/IEC 30107-3); ✓/✗ against the issue-12 floors (≤ 1 % print/still, ≤ 5 % replay, BPCER ≤ 3 %).",
        "",
        "How the sequences were made (benchmarks/attacks.py): *print* = a photo printed on curled paper with white "
        "margins, tilted back and forth in front of a procedural room; *print_nuaa* = REAL NUAA print captures and "
        "*replay_apfol* = REAL apfol screen-replay captures, each tight crop made into a full frame by stretching its "
        "border; *replay* = a genuine clip on a phone screen (bezel, glare, sub-pixel moiré, tilt, hand tremor), not "
        "cued; *still* = one photo on the phone; *cued_replay* = the clip ACTING the drawn challenges (blink/mouth "
        "cued from its own frames, turns by a cylinder warp) on the phone. Genuine: the same clips acting the "
        "challenges straight to the camera (*video_acted* 0.8 s reaction, *slow* 2.5 s, *late* face enters 2.2 s "
        "late), NUAA/apfol real crops in full frames (*crops*, passive only), and the 96×128 clip (*tiny*, outside "
        "the floor). Synthetic attacks are easier than real ones, and the genuine head turns are warps too.",
        "",
        "| protocol | " + " | ".join(f"APCER {k}" for k in kinds) + " | BPCER genuine (floor set) | "
        + " | ".join(f"BPCER {s}" for s in gen_sources) + " |",
        "|---|" + "---|" * (len(kinds) + 1 + len(gen_sources)),
    ]
    for proto in protocols:
        s = summary[proto]
        lines.append(
            f"| {proto} | " + " | ".join(cell(s["apcer"][k], FLOOR[k]) for k in kinds)
            + f" | {cell(s['bpcer_floor_set'], BPCER_FLOOR)} | "
            + " | ".join(cell(s["bpcer"][src]) for src in gen_sources) + " |"
        )
    lines += [
        "",
        "Reading the table: *print_nuaa*, *replay_apfol* and the genuine *crops* carry no challenge (their "
        "subjects were asked nothing), so *active* there is the passive checks alone. The *active* failures of "
        "genuine acted clips come from the synthesis, not from a person: on blink_7_times_1080p the cylinder warp "
        "rarely moves yaw_ratio past 0.22 to the image's left (turn_right) and the clip's blinks dip the eye "
        "aspect ratio only just below the engine's cut at 5 fps; the browser tests with real pacing are the "
        "measure of active BPCER. Samples are small (2 sessions per clip and variant on a shared 2-core machine: "
        "2 cued replays in the report half), so ✓ means \"no error seen\", not a demonstrated rate.",
        "",
        f"Tight crops (the files of faces/spoof as they are, no context; same threshold, report half): BPCER "
        f"{cell(tight_summary['bpcer'])}, APCER print_nuaa {cell(tight_summary['apcer']['print_nuaa'])}, replay_apfol "
        f"{cell(tight_summary['apcer']['replay_apfol'])} — against BPCER {cell(full_same['bpcer'])} and APCER "
        + ", ".join(f"{k} {cell(v)}" for k, v in full_same["apcer"].items())
        + " for the same crops in full frames. A tight crop collapses both context crops (2.7× and 4.0×) onto the "
        "face itself.",
        "",
        "Spoof cues (`lifecert/engine/spoof_cues.py`), AUC = P(attack value > genuine value) per session, all "
        "sequences (0.5 = no separation). *real* columns: NUAA/apfol captures (only the face-region cues, moiré and "
        "specular, mean anything there: their context is synthesised); *synthetic* columns: the full-frame attacks "
        "above against the genuine acted clips — they separate partly because attacks.py drew what the cue looks for.",
        "",
        "| cue | real print_nuaa | real replay_apfol | synthetic print | synthetic replay | synthetic still | "
        "synthetic cued_replay |",
        "|---|---|---|---|---|---|---|",
    ]

    def a3(v: float | None) -> str:
        return "—" if v is None else f"{v:.2f}"

    for cue in ("moire", "specular", "enclosure", "rigid_enclosure"):
        c = cues[cue]
        lines.append(f"| {cue} | {a3(c['real_print_nuaa'])} | {a3(c['real_replay_apfol'])} | "
                     f"{a3(c['synthetic_print'])} | {a3(c['synthetic_replay'])} | {a3(c['synthetic_still'])} | "
                     f"{a3(c['synthetic_cued_replay'])} |")
    fl = cues["flat_residual"]
    lines += [
        "",
        "Flat-photo test (homography residual of the rigid landmarks over the frame pairs with the largest pose "
        "change, face widths; the engine's cut-off is "
        f"{LivenessParams().flat_residual}): sessions where it decided / all, residual min · 10 % · median · 90 % · "
        "max: "
        + "; ".join(f"{k} {v['decided']}/{v['sequences']} {v['residual_quantiles']}" for k, v in fl.items()) + ".",
    ]
    update_readme("pad", "\n".join(lines))
    print("\n".join(lines))
    if write_manifest:
        worst_b = summary["pad"]["bpcer_floor_set"]["rate"]
        write_manifest_threshold(
            settings.manifest_path or REPO_MANIFEST, thr, fusion, summary["pad"]["apcer"], worst_b,
            "benchmarks/pad_eval.py: ../shared/faces video/ clips acted + synthetic screen/paper attacks; "
            "NUAA and apfol crops in full frames", today,
        )
        print(f"wrote threshold {thr} to the manifest")
    return 0




if __name__ == "__main__":
    raise SystemExit(main())
