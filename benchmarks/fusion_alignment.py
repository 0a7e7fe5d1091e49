"""Does EdgeFace on dlib's face match EdgeFace on its own (YuNet) face? The fusion is calibrated on
EdgeFace embeddings made through EdgeFace's own pipeline (YuNet box and five points), while
production embeds EdgeFace on the face dlib found (its five points from the 68, no second detector).

    python benchmarks/fusion_alignment.py [--pairs 600]

For an evenly spaced subset of the LFW protocol pairs (folds 1–5): EdgeFace under flip on dlib's
centred face vs the cached EdgeFace embedding of the same image (``benchmarks/accuracy.py --engine
edgeface`` left it in var/eval-cache); per-image cosine between the two, and on the pairs the
genuine/impostor score statistics (the z-normalisation uses the impostor mean and deviation) and
the best-threshold accuracy of each. Writes benchmarks/results/fusion_alignment.json and the
"fusion-alignment" section of benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._common import machine, now, publish  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=600)
    ap.add_argument("--lfw-pairs", type=Path, default=Path("../shared/faces/lfw/pairs.txt"))
    ap.add_argument("--no-readme", action="store_true")
    a = ap.parse_args(argv)

    from lifecert.config import Settings
    from lifecert.engine.image import read_image_file
    from lifecert.engine.loader import load_engine
    from lifecert.services import evaluation as ev

    caches = sorted(glob.glob(str(ROOT / "var" / "eval-cache" / "pairs-edgeface-*.npz")))
    if not caches:
        raise SystemExit("no EdgeFace embedding cache: run benchmarks/accuracy.py --pairs ... --engine edgeface first")
    cache = ev.load_cache(Path(caches[-1]))
    s = Settings(inference_threads=1)
    profile = s.embedding.fusion_enroll_profile
    pairs = ev.read_pairs(a.lfw_pairs, None, 10)
    sel = pairs[:: max(1, len(pairs) // a.pairs)][: a.pairs]
    dlib, edge = load_engine(s, "dlib"), load_engine(s, "edgeface")
    load0 = os.getloadavg()
    on_dlib: dict[str, np.ndarray] = {}
    own: dict[str, np.ndarray] = {}
    cos: list[float] = []
    for p in sel:
        for path in (p.a, p.b):
            k = str(path)
            r = cache.get(k)
            if k in on_dlib or r is None or r.vector(profile) is None:
                continue
            img = read_image_file(Path(path))
            faces = dlib.detect(img)
            if not faces:
                continue
            cx, cy = img.shape[1] / 2, img.shape[0] / 2  # LFW names the centred face
            f = min(faces, key=lambda f: ((f.box[0] + f.box[2]) / 2 - cx) ** 2 + ((f.box[1] + f.box[3]) / 2 - cy) ** 2)
            on_dlib[k] = edge.embed_faces([(img, f)], profile)[0]
            own[k] = np.asarray(r.vector(profile), dtype=np.float32)
            cos.append(float(on_dlib[k] @ own[k]))
    out: dict[str, Any] = {
        "date": now(), "machine": machine(), "load_before": load0, "load_after": os.getloadavg(),
        "dataset": f"LFW pairs.txt folds 1-5, {len(sel)} evenly spaced pairs", "profile": profile,
        "images": len(cos),
        "per_image_cosine": {"median": float(np.median(cos)), "p5": float(np.percentile(cos, 5)),
                             "min": float(min(cos))},
    }
    for name, emb in (("edgeface_own_face", own), ("edgeface_on_dlib_face", on_dlib)):
        sc, lab = [], []
        for p in sel:
            ka, kb = str(p.a), str(p.b)
            if ka in emb and kb in emb:
                sc.append(float(emb[ka] @ emb[kb]))
                lab.append(bool(p.same))
        x, y = np.array(sc), np.array(lab)
        out[name] = {"pairs": len(x), "genuine_mean": float(x[y].mean()), "impostor_mean": float(x[~y].mean()),
                     "impostor_sd": float(x[~y].std()),
                     "best_threshold_accuracy": float(max(((x >= t) == y).mean() for t in np.unique(x)))}
    publish("fusion_alignment", "fusion-alignment", out, readme(out), readme=not a.no_readme)
    return 0


def readme(o: dict[str, Any]) -> str:
    rows = [f"| {n.replace('_', ' ')} | {o[n]['pairs']} | {o[n]['genuine_mean']:.4f} | {o[n]['impostor_mean']:.4f} | "
            f"{o[n]['impostor_sd']:.4f} | {100 * o[n]['best_threshold_accuracy']:.2f}% |"
            for n in ("edgeface_own_face", "edgeface_on_dlib_face")]
    c = o["per_image_cosine"]
    d, y = o["edgeface_on_dlib_face"], o["edgeface_own_face"]
    return "\n".join([
        "## EdgeFace on dlib's face vs on its own (`benchmarks/fusion_alignment.py`)",
        "",
        f"{o['date']}, {o['machine']['nproc']} × {o['machine']['cpu']} (load {o['load_before'][0]:.1f}; accuracy does "
        f"not depend on it). {o['dataset']}, EdgeFace under '{o['profile']}'. The fusion is calibrated on EdgeFace's "
        "own pipeline (YuNet box and five points); production embeds EdgeFace on dlib's face. Per image, the two "
        f"embeddings' cosine: median {c['median']:.3f}, 5th percentile {c['p5']:.3f}, min {c['min']:.3f} "
        f"({o['images']} images). On dlib's face vs its own: impostor mean "
        f"{d['impostor_mean'] - y['impostor_mean']:+.4f}, "
        f"impostor sd {d['impostor_sd'] - y['impostor_sd']:+.4f} (what the z-normalised fusion and its thresholds rest "
        f"on), best-threshold accuracy {100 * (d['best_threshold_accuracy'] - y['best_threshold_accuracy']):+.2f} "
        f"points ({y['pairs']} pairs: one pair is {100 / max(1, y['pairs']):.2f} points).",
        "",
        "| EdgeFace embedding | pairs | genuine mean | impostor mean | impostor sd | best-threshold accuracy |",
        "|---|---|---|---|---|---|",
        *rows,
    ])


if __name__ == "__main__":
    raise SystemExit(main())
