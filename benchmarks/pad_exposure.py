"""PAD P(real) against exposure, with and without exposure normalisation (lifecert.engine.pad.ExposureNorm).

    python benchmarks/pad_exposure.py [--faces ../shared/faces] [--gains 0.4 0.5 0.6 0.8 1.0 1.2]
                                      [--targets 110 130] [--max-gain 2.5] [--per-group 8]

Every sample is one scene BEFORE the camera; each gain passes it through ``attacks.Camera`` with that
exposure gain (gain, then the same sensor noise 2.5 grey levels, then JPEG 85 — exactly what
pad_eval's sessions get, exposure being the only thing varied), and MiniFASNet scores the shot with
the face box dlib found on the gain-1.0 shot (so the box is the same at every gain and only the
pixels change). Groups:

* REAL genuine: frames of the three ``video/*.mp4`` clips made portrait (``attacks.genuine_frame``),
  NUAA ``real`` and apfol ``real`` crops placed in a frame (``attacks.place_crop``), LFW photos
  as whole frames (``attacks.fit_cover`` to 480x640).
* REAL attacks: NUAA ``attack_print`` and apfol ``attack_replay`` crops via ``place_crop``,
  ``spoof/*_attack.jpg`` as they are (full frames).
* SYNTHETIC attacks: ``attacks.PhoneScreen`` replaying the clips, ``attacks.PaperPrint`` and
  ``attacks.still_on_screen`` of LFW / photos/ pictures.

For each group, gain and variant (``off`` = today's scoring; ``tNNN`` = ExposureNorm(target NNN,
max gain ``--max-gain``)) it reports the mean P(real) and how many samples are at or above the
manifest's threshold. One frame per sample: this is a per-FRAME measurement, not sessions.
Writes benchmarks/results/pad_exposure.json and the ``pad_exposure`` section of benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import attacks as atk  # noqa: E402
from benchmarks.accuracy import update_readme  # noqa: E402
from benchmarks.pad_eval import nuaa_sessions, read_clip  # noqa: E402
from lifecert.config import Settings  # noqa: E402
from lifecert.engine.image import read_image_file  # noqa: E402
from lifecert.engine.loader import load_engine  # noqa: E402
from lifecert.engine.pad import (  # noqa: E402
    ExposureNorm,
    PadModel,
    box_xyxy_to_xywh,
    crop_context,
    face_luma,
    load_pad_from,
    pad_spec,
    softmax,
    to_tensor,
)
from lifecert.services.evaluation import machine_info  # noqa: E402

GENUINE = ("video", "nuaa_real", "apfol_real", "lfw")
ATTACK = ("nuaa_print", "apfol_replay", "spoof_full", "syn_replay", "syn_print", "syn_still")
CLIPS = ("blink_7_times_1080p.mp4", "talking_head_a.mp4", "blink_2_times_tiny.mp4")


def _spread(items: list[Any], n: int) -> list[Any]:
    if len(items) <= n:
        return items
    return [items[round(i * (len(items) - 1) / (n - 1))] for i in range(n)] if n > 1 else items[:1]


def _num(p: Path) -> int:
    digits = "".join(c for c in p.stem.rsplit("_", 1)[-1] if c.isdigit())
    return int(digits) if digits else 0


def scenes(faces: Path, per: int, seed: int) -> list[tuple[str, str, Any]]:
    """(group, name, scene BGR before the camera) for every sample."""
    out: list[tuple[str, str, Any]] = []
    clip_frames = {}
    for c in CLIPS:
        frames, _ = read_clip(faces / "video" / c, max_h=720)
        clip_frames[c] = frames
        for i, f in enumerate(_spread(frames, max(2, per // len(CLIPS) + 1))):
            out.append(("video", f"{c}#{i}", atk.genuine_frame(f)))
    spoof = faces / "spoof"
    for kind_dir, group in (("real", "nuaa_real"), ("attack_print", "nuaa_print")):
        sess = _spread(nuaa_sessions(spoof / "nuaa", kind_dir, 8), per)
        for g, _subj, files in sess:
            out.append((group, f"nuaa/{kind_dir}/{g}", atk.place_crop(read_image_file(files[0]))))
    for kind_dir, group in (("real", "apfol_real"), ("attack_replay", "apfol_replay")):
        files = sorted((spoof / "apfol" / kind_dir).glob("*.png"), key=_num)
        for f in _spread(files, per):
            out.append((group, f"apfol/{kind_dir}/{f.name}", atk.place_crop(read_image_file(f))))
    people = sorted(d for d in (faces / "lfw" / "images").iterdir() if d.is_dir())
    rng = np.random.default_rng([seed, 7])
    picks = [people[int(i)] for i in rng.choice(len(people), size=3 * per, replace=False)]
    lfw = [sorted(d.glob("*.jpg"))[0] for d in picks]
    for f in lfw[:per]:
        out.append(("lfw", f"lfw/{f.name}", atk.fit_cover(read_image_file(f), atk.CAMERA)))
    for f in sorted(spoof.glob("*_attack.jpg")):
        out.append(("spoof_full", f"spoof/{f.name}", read_image_file(f)))
    for i in range(per):
        c = CLIPS[i % 2]  # the two clips with a face big enough for a phone screen
        fr = _spread(clip_frames[c], per)[i]
        out.append(("syn_replay", f"replay/{c}#{i}", atk.PhoneScreen(np.random.default_rng([seed, 11, i])).render(fr)))
        photo = read_image_file(lfw[per + i])
        out.append(("syn_print", f"print/{lfw[per + i].name}",
                    atk.PaperPrint(np.random.default_rng([seed, 12, i]), photo).render()))
        photo = read_image_file(lfw[2 * per + i])
        out.append(("syn_still", f"still/{lfw[2 * per + i].name}",
                    atk.PhoneScreen(np.random.default_rng([seed, 13, i])).render(photo)))
    return out


class _BlurOnly(ExposureNorm):
    """Control experiment: the denoise blur on the frames the correction would brighten, WITHOUT the gain."""

    def apply(self, frame_bgr: Any, box: Any) -> Any:
        if self.gain(frame_bgr, box) <= 1.0:
            return frame_bgr
        return cv2.GaussianBlur(frame_bgr, (0, 0), self.denoise_sigma)


class _BlurAll(ExposureNorm):
    """Control experiment: the denoise blur on EVERY frame, dim or not, no gain (does the luma gate matter?)."""

    def apply(self, frame_bgr: Any, box: Any) -> Any:
        return cv2.GaussianBlur(frame_bgr, (0, 0), self.denoise_sigma)


def shoot(scene: Any, gain: float, seed: list[int]) -> Any:
    return atk.Camera(np.random.default_rng(seed), gain=gain).shoot(scene)


def measure(pad: PadModel, engine: Any, samples: list[tuple[str, str, Any]], gains: list[float],
            variants: dict[str, ExposureNorm | None], seed: int) -> tuple[list[dict[str, Any]], int]:
    rows = []
    dropped = 0
    for k, (group, name, scene) in enumerate(samples):
        ref = shoot(scene, 1.0, [seed, k, 1000])
        faces = engine.detect(ref)
        if not faces:
            dropped += 1
            continue
        box = box_xyxy_to_xywh(max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1])).box)
        shots = [shoot(scene, g, [seed, k, gi]) for gi, g in enumerate(gains)]
        row: dict[str, Any] = {"group": group, "name": name,
                               "luma": [round(face_luma(s, box), 1) for s in shots], "p": {}}
        for v, norm in variants.items():
            imgs = shots if norm is None else [norm.apply(s, box) for s in shots]
            row["p"][v] = [round(float(x), 4) for x in pad.score_many(imgs, [box] * len(imgs))]
        rows.append(row)
    return rows, dropped


def summarize(rows: list[dict[str, Any]], gains: list[float], variants: list[str], thr: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for group in (*GENUINE, *ATTACK, "genuine_all", "attack_all"):
        sel = [r for r in rows if r["group"] == group or (group == "genuine_all" and r["group"] in GENUINE)
               or (group == "attack_all" and r["group"] in ATTACK)]
        if not sel:
            continue
        g: dict[str, Any] = {"n": len(sel),
                             "luma_median": [round(float(np.median([r["luma"][i] for r in sel])), 1)
                                             for i in range(len(gains))]}
        for v in variants:
            ps = np.array([r["p"][v] for r in sel])
            g[v] = {"mean": [round(float(x), 3) for x in ps.mean(axis=0)],
                    "pass": [int(x) for x in (ps >= thr).sum(axis=0)]}
        out[group] = g
    return out


def pooled(rows: list[dict[str, Any]], gains: list[float], variants: list[str], thr: float) -> dict[str, Any]:
    """Genuine vs attack frames pooled over gain ranges: ROC AUC (P(real) of a genuine frame above an attack
    frame's), BPCER/APCER at the manifest threshold, and BPCER at the threshold that lets 10 % of attack frames
    through (the threshold moves with the variant, so this compares separations, not one operating point)."""
    out: dict[str, Any] = {}
    ranges = {"all": list(range(len(gains))), "dim (gain <= 0.6)": [i for i, g in enumerate(gains) if g <= 0.6],
              "normal (gain >= 0.8)": [i for i, g in enumerate(gains) if g >= 0.8]}
    for rname, idx in ranges.items():
        if not idx:
            continue
        out[rname] = {}
        for v in variants:
            gen = np.array([r["p"][v][i] for r in rows if r["group"] in GENUINE for i in idx])
            att = np.array([r["p"][v][i] for r in rows if r["group"] in ATTACK for i in idx])
            auc = float((gen[:, None] > att[None, :]).mean() + 0.5 * (gen[:, None] == att[None, :]).mean())
            t10 = float(np.quantile(att, 0.90))
            out[rname][v] = {"auc": round(auc, 3), "n_genuine": int(gen.size), "n_attack": int(att.size),
                             "bpcer_at_thr": int((gen < thr).sum()), "apcer_at_thr": int((att >= thr).sum()),
                             "thr_apcer10": round(t10, 3), "bpcer_at_apcer10": int((gen < t10).sum())}
    return out


FACTORS: dict[str, dict[str, Any]] = {
    # pad_eval's genuine sessions draw each of these per session (attacks.Camera.random, zoom, acted turns)
    "baseline": {},
    "gain 0.6": {"gain": 0.6}, "gain 0.85": {"gain": 0.85}, "gain 1.15": {"gain": 1.15},
    "noise 1.5": {"noise": 1.5}, "noise 4.5": {"noise": 4.5},
    "blur 0.4": {"blur": 0.4}, "blur 1.2": {"blur": 1.2},
    "jpeg 70": {"jpeg": 70}, "jpeg 92": {"jpeg": 92},
    "zoom 1.12": {"zoom": 1.12}, "zoom 1.25": {"zoom": 1.25},
    "turn 20°": {"yaw": 20.0}, "turn 35°": {"yaw": 35.0}, "nod 20°": {"pitch": 20.0},
    "worst: gain 0.6 noise 4.5 blur 1.2 jpeg 70 zoom 1.25": {"gain": 0.6, "noise": 4.5, "blur": 1.2, "jpeg": 70,
                                                           "zoom": 1.25},
}


def factor_study(pad: PadModel, norm: ExposureNorm, engine: Any, faces: Path, n_frames: int,
                 seed: int, thr: float) -> dict[str, Any]:
    """pad_eval's genuine clips, one factor of its per-session draw at a time from a baseline camera
    (gain 1, noise 2.5, blur 0.7, JPEG 85, zoom 1, no head warp): which factor costs genuine P(real)?"""
    out: dict[str, Any] = {}
    for clip in ("talking_head_a.mp4", "blink_7_times_1080p.mp4"):
        frames, _ = read_clip(faces / "video" / clip, max_h=720)
        picked = []
        for f in _spread(frames, n_frames):
            det = engine.detect(f)
            if det:
                picked.append((f, det[0].box))
        for fname, fac in FACTORS.items():
            shots, boxes, missed = [], [], 0
            for k, (f, box) in enumerate(picked):
                src = atk.turn_head(f, box, fac.get("yaw", 0.0), fac.get("pitch", 0.0))
                cam = atk.Camera(np.random.default_rng([seed, 77, k]), blur_sigma=fac.get("blur", 0.7),
                                 noise_sigma=fac.get("noise", 2.5), jpeg_quality=fac.get("jpeg", 85),
                                 gain=fac.get("gain", 1.0))
                shot = cam.shoot(atk.genuine_frame(src, zoom=fac.get("zoom", 1.0)))
                det = engine.detect(shot)
                if not det:
                    missed += 1
                    continue
                shots.append(shot)
                boxes.append(box_xyxy_to_xywh(det[0].box))
            plain = pad.score_many(shots, boxes)
            corr = pad.score_many([norm.apply(s_, b) for s_, b in zip(shots, boxes, strict=True)], boxes)
            out.setdefault(fname, {})[clip] = {
                "n": len(shots), "missed": missed,
                "off": {"mean": round(float(plain.mean()), 3), "under": int((plain < thr).sum())},
                "corrected": {"mean": round(float(corr.mean()), 3), "under": int((corr < thr).sum())}}
    return out


def _padded_crop(frame: Any, box: Any, scale: float, size: tuple[int, int], border: int) -> Any:
    """Experiment (NOT adopted): the context crop at its full ``scale`` even when it leaves the frame, the
    frame extended by ``border`` (cv2.BORDER_*); where it fits, exactly pad.crop_context."""
    h, w = frame.shape[:2]
    x, y, bw, bh = box
    cx, cy = x + bw / 2, y + bh / 2
    x1, y1 = int(cx - bw * scale / 2), int(cy - bh * scale / 2)
    x2, y2 = int(cx + bw * scale / 2), int(cy + bh * scale / 2)
    if x1 >= 0 and y1 >= 0 and x2 <= w - 1 and y2 <= h - 1:
        return crop_context(frame, box, scale, size)
    left, top, right, bottom = max(0, -x1), max(0, -y1), max(0, x2 - (w - 1)), max(0, y2 - (h - 1))
    big = cv2.copyMakeBorder(frame, top, bottom, left, right, border, value=(0, 0, 0))
    patch = big[y1 + top : y2 + top + 1, x1 + left : x2 + left + 1]
    return cv2.resize(patch, size, interpolation=cv2.INTER_LINEAR)


CROP_MODES = {"upstream": -1, "replicate": cv2.BORDER_REPLICATE, "reflect": cv2.BORDER_REFLECT_101,
              "black": cv2.BORDER_CONSTANT}


def crop_study(pad: PadModel, engine: Any, faces: Path, n: int, seed: int, thr: float) -> dict[str, Any]:
    """Faces that fill the frame: upstream's crop (shifted inside and SHRUNK toward the face when the
    2.7x / 4.0x context does not fit) against padding the frame so the context keeps its scale."""
    sets: dict[str, list[Any]] = {}
    for clip in ("talking_head_a.mp4", "blink_7_times_1080p.mp4"):
        frames, _ = read_clip(faces / "video" / clip, max_h=720)
        fr = _spread(frames, n)
        for z in (1.0, 1.12, 1.25):
            sets[f"genuine {clip.split('.')[0]} zoom {z}"] = [
                atk.Camera(np.random.default_rng([seed, 80, k])).shoot(atk.genuine_frame(f, zoom=z))
                for k, f in enumerate(fr)]
        if clip.startswith("talking"):
            for wf in (0.75, 0.95):
                phone, cam = atk.PhoneScreen(np.random.default_rng([seed, 81, int(wf * 100)]), width_frac=wf), \
                    atk.Camera(np.random.default_rng([seed, 82]))
                sets[f"ATTACK replay of {clip.split('.')[0]}, phone {wf:.0%} of the width"] = [
                    cam.shoot(phone.render(f)) for f in fr]
    people = sorted(d for d in (faces / "lfw" / "images").iterdir() if d.is_dir())
    lfw = [read_image_file(sorted(d.glob("*.jpg"))[0]) for d in _spread(people, n)]
    sets["genuine LFW photo as a frame, zoom 1.4"] = [
        atk.Camera(np.random.default_rng([seed, 83, k])).shoot(
            atk.genuine_frame(atk.fit_cover(p, atk.CAMERA), zoom=1.4))
        for k, p in enumerate(lfw)]
    sets["ATTACK LFW still on a phone 95 % of the width"] = [
        atk.Camera(np.random.default_rng([seed, 84, k])).shoot(
            atk.PhoneScreen(np.random.default_rng([seed, 85, k]), width_frac=0.95).render(p))
        for k, p in enumerate(lfw)]
    out: dict[str, Any] = {}
    for name, frames in sets.items():
        keep, boxes = [], []
        for f in frames:
            det = engine.detect(f)
            if det:
                keep.append(f)
                boxes.append(box_xyxy_to_xywh(det[0].box))
        row: dict[str, Any] = {"n": len(keep), "face_width_frac": round(float(np.mean(
            [b[2] / f.shape[1] for f, b in zip(keep, boxes, strict=True)])), 2) if keep else None}
        for mode, border in CROP_MODES.items():
            total = np.zeros((len(keep), 3))
            for net in pad.nets:
                crops = [crop_context(f, b, net.crop_scale, net.input_size) if border < 0 else
                         _padded_crop(f, b, net.crop_scale, net.input_size, border) for f, b in zip(keep, boxes,
                                                                                                  strict=True)]
                inp = net.session.get_inputs()[0].name
                total += softmax(np.asarray(net.session.run(None, {inp: to_tensor(crops)})[0]))
            p = total[:, 1] / max(1, len(pad.nets))
            row[mode] = {"mean": round(float(p.mean()), 3) if len(p) else None, "under": int((p < thr).sum())}
        out[name] = row
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--faces", type=Path, default=ROOT.parent / "shared" / "faces")
    ap.add_argument("--gains", type=float, nargs="+", default=[0.4, 0.5, 0.6, 0.8, 1.0, 1.2])
    ap.add_argument("--targets", type=float, nargs="+", default=[110.0, 130.0])
    ap.add_argument("--max-gain", type=float, default=2.5)
    ap.add_argument("--denoise", type=float, default=0.0,
                    help="also the variants tNd = ExposureNorm(N, max gain, denoise_sigma=this) and the control bN = "
                         "the same blur without the gain")
    ap.add_argument("--per-group", type=int, default=8)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "pad_exposure.json")
    ap.add_argument("--no-readme", action="store_true")
    ap.add_argument("--crop-study", type=int, default=0, metavar="N",
                    help="only the face-fills-the-frame study (N frames per set): upstream crop vs padded frame")
    ap.add_argument("--factors", type=int, default=0, metavar="N",
                    help="only the factor study: N frames of each of pad_eval's genuine clips, one camera/zoom/warp "
                         "factor at a time; written into --out's report under 'factors' and the README section")
    ap.add_argument("--resummarize", action="store_true",
                    help="recompute the summary, pooled table and README section from --out's rows (no scoring)")
    a = ap.parse_args(argv)
    if a.crop_study:
        report = json.loads(a.out.read_text())
        engine = load_engine(Settings(), name="dlib")
        spec = pad_spec()
        pad = load_pad_from(a.faces.parent / "models" / "minifasnet", spec, threads=1)
        report["crop_study"] = crop_study(pad, engine, a.faces, a.crop_study, a.seed, report["threshold"])
        a.out.write_text(json.dumps(report, indent=1) + "\n")
        for name, row in report["crop_study"].items():
            print(name.ljust(52), row["n"], row["face_width_frac"],
                  "  ".join(f"{m_} {row[m_]['mean']} ({row[m_]['under']})" for m_ in CROP_MODES))
        if not a.no_readme:
            update_readme("pad_exposure", readme(report))
        return 0
    if a.factors:
        report = json.loads(a.out.read_text())
        engine = load_engine(Settings(), name="dlib")
        spec = pad_spec()
        pad = dataclasses.replace(load_pad_from(a.faces.parent / "models" / "minifasnet", spec, threads=1),
                                  exposure=None)
        norm = spec.exposure or ExposureNorm(70.0, a.max_gain, a.denoise)
        report["factors"] = factor_study(pad, norm, engine, a.faces, a.factors, a.seed, report["threshold"])
        report["factors_corrected_with"] = dataclasses.asdict(norm)
        a.out.write_text(json.dumps(report, indent=1) + "\n")
        for fname, per in report["factors"].items():
            print(fname.ljust(55), "  ".join(f"{c[:12]} off {v['off']['mean']:.3f} ({v['off']['under']}/{v['n']}) "
                                             f"corr {v['corrected']['mean']:.3f} ({v['corrected']['under']})"
                                             for c, v in per.items()))
        if not a.no_readme:
            update_readme("pad_exposure", readme(report))
        return 0
    if a.resummarize:
        report = json.loads(a.out.read_text())
        vs = list(report["variants"])
        report["summary"] = summarize(report["rows"], report["gains"], vs, report["threshold"])
        report["pooled"] = pooled(report["rows"], report["gains"], vs, report["threshold"])
        a.out.write_text(json.dumps(report, indent=1) + "\n")
        print_table(report["summary"], report["gains"], vs, report["threshold"])
        if not a.no_readme:
            update_readme("pad_exposure", readme(report))
        return 0
    t0 = time.process_time()
    engine = load_engine(Settings(), name="dlib")
    spec = pad_spec()
    # the variants apply their own correction: the nets must see the frames as given (manifest's correction off)
    pad = dataclasses.replace(load_pad_from(a.faces.parent / "models" / "minifasnet", spec, threads=1), exposure=None)
    variants: dict[str, ExposureNorm | None] = {"off": None}
    for t in a.targets:
        variants[f"t{t:g}"] = ExposureNorm(t, a.max_gain)
    if a.denoise > 0:
        for t in a.targets:
            variants[f"t{t:g}d"] = ExposureNorm(t, a.max_gain, a.denoise)
            variants[f"b{t:g}"] = _BlurOnly(t, a.max_gain, a.denoise)
        variants["ball"] = _BlurAll(255.0, a.max_gain, a.denoise)
    samples = scenes(a.faces, a.per_group, a.seed)
    rows, dropped = measure(pad, engine, samples, a.gains, variants, a.seed)
    thr = spec.threshold.value
    summary = summarize(rows, a.gains, list(variants), thr)
    # cost of the correction itself on a dim 480x640 frame (one that it does brighten and blur)
    norm = spec.exposure or ExposureNorm(70.0, a.max_gain, a.denoise)
    r0 = rows[0]
    frame = shoot(samples[0][2], 0.3, [a.seed, 0, 99])
    box = (frame.shape[1] * 0.3, frame.shape[0] * 0.3, frame.shape[1] * 0.4, frame.shape[0] * 0.3)
    if norm.gain(frame, box) <= 1.0:
        raise RuntimeError("the cost frame is not dim enough to be corrected")
    c0 = time.process_time()
    for _ in range(200):
        norm.apply(frame, box)
    norm_ms = (time.process_time() - c0) * 1000 / 200
    load = os.getloadavg()
    report = {"gains": a.gains, "variants": {k: (None if v is None else {"target": v.target, "max_gain": v.max_gain,
                                                            "denoise_sigma": v.denoise_sigma,
                                                            "gain": not isinstance(v, (_BlurOnly, _BlurAll)),
                                                            "every_frame": isinstance(v, _BlurAll)})
                                             for k, v in variants.items()},
              "threshold": thr, "dropped_no_face": dropped, "summary": summary,
              "pooled": pooled(rows, a.gains, list(variants), thr), "rows": rows,
              "norm_cpu_ms_per_frame": round(norm_ms, 3),
              "norm_timed": {"target": norm.target, "max_gain": norm.max_gain, "denoise_sigma": norm.denoise_sigma},
              "manifest_exposure": None if spec.exposure is None else dataclasses.asdict(spec.exposure),
              "frame_size": list(frame.shape[1::-1]),
              "camera": "attacks.Camera(gain=g): blur 0.7 px, noise 2.5, JPEG 85", "seed": a.seed,
              "cpu_s": round(time.process_time() - t0, 1), "machine": machine_info(),
              "load_avg": [round(x, 2) for x in load], "date": time.strftime("%Y-%m-%d"), "first": r0["name"]}
    a.out.write_text(json.dumps(report, indent=1) + "\n")
    print_table(summary, a.gains, list(variants), thr)
    print(f"dropped (no face at gain 1.0): {dropped}; correction {norm_ms:.2f} ms/frame; cpu {report['cpu_s']} s")
    if not a.no_readme:
        update_readme("pad_exposure", readme(report))
    return 0


def print_table(summary: dict[str, Any], gains: list[float], variants: list[str], thr: float) -> None:
    print(f"gain            {'  '.join(f'{g:>11}' for g in gains)}")
    for group, g in summary.items():
        print(f"{group} n={g['n']} face luma {g['luma_median']}")
        for v in variants:
            cells = "  ".join(f"{m:.3f} {p:>2}/{g['n']:<2}" for m, p in zip(g[v]["mean"], g[v]["pass"], strict=True))
            print(f"  {v:>6}        {cells}")


def readme(r: dict[str, Any]) -> str:
    gains = r["gains"]
    variants = list(r["variants"])
    head = "| group (n) | variant | " + " | ".join(f"gain {g:g}" for g in gains) + " |"
    lines = [
        "## PAD against exposure (`benchmarks/pad_exposure.py`)",
        "",
        f"{r['date']}, seed {r['seed']}. Per FRAME (one frame per sample, not sessions): mean MiniFASNet P(real) and "
        f"how many frames are at or above the manifest threshold {r['threshold']} (n per group in the first column). "
        f"Each scene passes {r['camera']} with the exposure gain of the column (gain, then noise, then JPEG), face "
        "box from dlib on the gain-1.0 shot. REAL genuine: video/*.mp4 frames made portrait, NUAA/apfol real crops "
        "placed in a frame, LFW photos as frames; REAL attacks: NUAA prints and apfol screen replays via place_crop, "
        "spoof/*_attack.jpg; SYNTHETIC attacks: attacks.PhoneScreen (clips), PaperPrint and a still on a phone "
        "(LFW photos). `off` = frames scored as they come; `tN` = ExposureNorm gain only: one gain on the whole "
        "frame so the median luma of the central face box reaches N, 1 ≤ gain ≤ "
        f"{next(v for v in r['variants'].values() if v)['max_gain']}; `tNd` = the same gain, then a Gaussian blur of "
        f"{next((v['denoise_sigma'] for v in r['variants'].values() if v and v.get('denoise_sigma')), 0)} px on the "
        "frames it brightened (the gain amplified the sensor noise); `bN` = CONTROL: that blur on the same frames "
        "without the gain; `ball` = CONTROL: that blur on every frame, dim or not. The correction costs "
        f"{r['norm_cpu_ms_per_frame']} ms CPU per dim 480×640 frame "
        f"({r['norm_timed']}); the manifest sets {r['manifest_exposure']}.",
        "",
        head,
        "|" + "---|" * (len(gains) + 2),
    ]
    for group, g in r["summary"].items():
        for v in variants:
            cells = " | ".join(f"{m:.2f} ({p})" for m, p in zip(g[v]["mean"], g[v]["pass"], strict=True))
            lines.append(f"| {group} ({g['n']}) | {v} | {cells} |")
    if "pooled" in r:
        lines += ["", "Pooled genuine vs attack FRAMES (all groups above; AUC = P(a genuine frame scores above an "
                  "attack frame); BPCER@APCER 10 % uses, per variant, the threshold that lets 10 % of attack frames "
                  "through):", "",
                  f"| gains | variant | AUC | BPCER at {r['threshold']} | APCER at {r['threshold']} | "
                  "BPCER at APCER 10 % (threshold) |", "|---|---|---|---|---|---|"]
        for rname, per in r["pooled"].items():
            for v, m in per.items():
                lines.append(f"| {rname} | {v} | {m['auc']:.3f} | {m['bpcer_at_thr']}/{m['n_genuine']} | "
                             f"{m['apcer_at_thr']}/{m['n_attack']} | {m['bpcer_at_apcer10']}/{m['n_genuine']} "
                             f"({m['thr_apcer10']}) |")
        lines += ["", *reading(r)]
        for label, rep in r.get("replicates", {}).items():
            lines += ["", f"Replicate ({label}: other LFW people, attack renderings and camera noise; the same video, "
                      "NUAA and apfol frames):", *reading({**r, "pooled": rep})]
    if "factors" in r:
        clips = list(next(iter(r["factors"].values())))
        lines += ["", "What costs pad_eval's GENUINE sessions? Its two clips, frames made portrait as its genuine "
                  "sequences are, one factor of its per-session draw at a time from a baseline camera (gain 1, noise "
                  "2.5, blur 0.7 px, JPEG 85, zoom 1, no head warp); mean P(real) and frames under "
                  f"{r['threshold']} of n (off / with the manifest's correction):", "",
                  "| factor | " + " | ".join(f"{c} off | {c} corrected" for c in clips) + " |",
                  "|---|" + "---|---|" * len(clips)]
        for fname, per in r["factors"].items():
            cells = " | ".join(f"{per[c]['off']['mean']:.2f} ({per[c]['off']['under']}/{per[c]['n']}) | "
                               f"{per[c]['corrected']['mean']:.2f} ({per[c]['corrected']['under']}/{per[c]['n']})"
                               for c in clips)
            lines.append(f"| {fname} | {cells} |")
        lines += ["", FACTORS_READING]
    if "crop_study" in r:
        lines += ["", "Faces that fill the frame (`--crop-study`): mean P(real) (frames under the threshold) with "
                  "upstream's crop (context shifted inside and SHRUNK toward the face when 2.7×/4.0× does not fit) "
                  "against padding the frame so the context keeps its scale (replicated edge, mirrored, black):", "",
                  "| set | n | face width / frame width | " + " | ".join(CROP_MODES) + " |",
                  "|---|---|---|" + "---|" * len(CROP_MODES)]
        for name, row in r["crop_study"].items():
            lines.append(f"| {name} | {row['n']} | {row['face_width_frac']} | " + " | ".join(
                f"{row[m]['mean']} ({row[m]['under']})" for m in CROP_MODES) + " |")
        lines += ["", CROP_READING]
    if (r.get("manifest_exposure") or {}).get("denoise_sigma") == 0.8 and (r["manifest_exposure"]["target"] == 70.0):
        lines += ["", VERDICT]
    return "\n".join(lines)


FACTORS_READING = (
    "Reading: on pad_eval's genuine clips the exposure draw (0.6–1.15) costs nothing and the correction never "
    "fires (their face luma stays above 70 even at gain 0.6), so it cannot change pad_eval's genuine sessions. "
    "What costs talking_head_a (whose face already fills 77–93 % of the frame width) is ZOOM (its context "
    "crops, already too big for the frame, shrink further toward the face: 6–7 of 12 frames under the "
    "threshold), the synthetic head warps (nod 20°: 6/12) and the camera's noise / defocus / JPEG; all together "
    "11/12. blink_7_times_1080p (smaller face) barely moves. n = 12 frames per clip and factor: a diagnosis, "
    "not a rate."
)


CROP_READING = (
    "Reading (seed 3, n = 12 frames per set): padding with the replicated edge rescues the genuine close faces "
    "(talking_head_a at zoom 1.12–1.25: 6 of 12 frames under the threshold → 0; LFW at zoom 1.4: 5 → 1) but it "
    "rescues the close-held attacks too (a replay on a phone filling 95 % of the width: 9 of 12 under → 0; at "
    "75 %: 12 → 7; a still at 95 %: 12 → 5); mirroring even fails blink_7's ordinary frames (12/12 under) and "
    "black padding reads everything as a spoof. "
    "With the face filling the frame MiniFASNet has no context left to judge by. Not adopted (pad.py keeps "
    "upstream's crop). The fix belongs to the capture: ask the pensioner to hold the phone a little further away "
    "(face ≲ 60 % of the frame width) before the PAD frames are taken."
)


VERDICT = (
    "Verdict (session 3, light): the manifest sets `t70d` (exposure_target 70, exposure_max_gain 2.5, "
    "exposure_denoise_sigma 0.8) as a modest, provisional improvement — it is NOT the cause or the cure of "
    "pad_eval's 22/134 genuine sessions lost at 0.7325. Dim genuine frames under the threshold fall 75 → 51 of 198; "
    "dim attack frames at or above it rise 32 → 39 of 249: the extra ones are REAL apfol replays at gain 0.4 "
    "(3 → 7 of 16) and synthetic stills (0 → 1 and 0 → 2 of 16), each still no more than the same attacks reach in "
    "normal light without any correction (apfol replays 16/16 and stills 2/16 at gain 1.0), so dimming the room "
    "gains an attacker nothing (seed 4 replicates this); in normal light one dark NUAA print crop rises (6 → 7 of "
    "16 at gain 1.2). The separation gain is small (BPCER at APCER 10 %: 222 → 192 of 396 over all "
    "gains). The control says the BLUR does most of it, not the brightening (AUC: gain only 0.867, blur only "
    "0.876, both 0.878, none 0.861): MiniFASNet reads amplified sensor noise as a spoof texture; the gain alone "
    "even lowers the NUAA live crops at gain 0.4–0.5. Blurring EVERY frame instead (`ball`) separates worse "
    "(AUC 0.869) and lets more attacks through in normal light (NUAA prints at gain 1.0: 3 → 6 of 16): the luma "
    "gate matters. Exposure is not what costs the video frames: their P(real) "
    "is flat across gains (blink_2_times_tiny ≈ 0.5 at every gain; talking_head_a 0.77–0.97 at gain 0.5 as at "
    "1.0). Frames whose face luma is ≥ 70 are scored bit-identically to before."
)


def reading(r: dict[str, Any]) -> list[str]:
    """The comparison the manifest's choice rests on, in words (numbers from the pooled table)."""
    pool = r["pooled"]
    vs = [v for v in r["variants"] if v != "off"]
    chosen = next((v for v in vs if v.endswith("d")), None)
    if chosen is None or "dim (gain <= 0.6)" not in pool:
        return []
    control = "b" + chosen[1:-1]
    gain_only = chosen[:-1]
    out = []
    for rname in ("dim (gain <= 0.6)", "all"):
        p = pool[rname]
        o, c = p["off"], p[chosen]
        out.append(f"* {rname}: `off` → `{chosen}`: genuine frames below {r['threshold']} {o['bpcer_at_thr']} → "
                   f"{c['bpcer_at_thr']} of {o['n_genuine']}, attack frames at or above it {o['apcer_at_thr']} → "
                   f"{c['apcer_at_thr']} of {o['n_attack']}; AUC {o['auc']:.3f} → {c['auc']:.3f}; BPCER at APCER 10 % "
                   f"{o['bpcer_at_apcer10']} → {c['bpcer_at_apcer10']}"
                   + (f"; gain only `{gain_only}`: AUC {p[gain_only]['auc']:.3f}, BPCER at APCER 10 % "
                      f"{p[gain_only]['bpcer_at_apcer10']}" if gain_only in p else "")
                   + (f"; blur only `{control}`: AUC {p[control]['auc']:.3f}, BPCER at APCER 10 % "
                      f"{p[control]['bpcer_at_apcer10']}" if control in p else "")
                   + (f"; blur on every frame `ball`: AUC {p['ball']['auc']:.3f}, BPCER at APCER 10 % "
                      f"{p['ball']['bpcer_at_apcer10']}, attack frames at or above {r['threshold']} "
                      f"{p['ball']['apcer_at_thr']}" if "ball" in p else "") + ".")
    return out


if __name__ == "__main__":
    raise SystemExit(main())
