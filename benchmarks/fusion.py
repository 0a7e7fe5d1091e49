"""Multi-frame fusion and template refresh: how much do they cut false rejects at a fixed FAR?

    python benchmarks/fusion.py [--lfw ../shared/faces/lfw] [--min-photos 5] [--max-photos 8]

Identities with several photos (LFW people with >= ``--min-photos``; photos sorted by
file name, at most ``--max-photos`` each) go through the production pipeline
(decode → detect → gates → align → embed, lifecert.services.evaluation). Per identity:
photo 1 plays the police ID photo (enrolled template; must pass the quality gates),
photo 2 a verified recent selfie, photos 3.. are later verification attempts (probes).

Strategies, each scored against its own impostor distribution (other identities'
probes against this identity's template(s)), so every row is at the same FAR:

* ``single``: ID template vs one probe image;
* ``fused-k``: ID template vs the L2-normalised mean of k probe images (a verification
  session's best-k frames; LFW photos vary far more than video frames of one session,
  so this overstates what k frames of one session give);
* ``two-templates``: max over {ID photo, verified selfie} vs one probe (template refresh);
* ``two-templates + fused-k``: both.

Writes benchmarks/results/fusion.json and the fusion section of benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.accuracy import update_readme  # noqa: E402
from lifecert.config import Settings  # noqa: E402
from lifecert.engine.manifest import manifest_sha256, model_info  # noqa: E402
from lifecert.services import evaluation as ev  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
CACHE = ROOT / "var" / "eval-cache"


def load_embeddings(paths: list[Path], settings: Settings, workers: int) -> dict[str, ev.ImageResult]:
    """Production pipeline (largest face, enrolment gates) on every photo, cached under
    var/eval-cache/ by a key of the photo list, settings and pipeline code."""
    import hashlib

    listing = hashlib.sha256("\n".join(map(str, paths)).encode()).hexdigest()[:12]
    key = ev._cache_key(Path(f"fusion-{listing}"), settings, settings.engine, "largest", ev.settings_profiles(settings))
    f = CACHE / f"{key}.npz"
    if f.is_file():
        return ev.load_cache(f)
    cache = ev.embed_images(paths, settings, workers=workers, pick="largest")
    ev.save_cache(f, cache)
    return cache


def frr_at_far(gen: np.ndarray, imp: np.ndarray, fars: tuple[float, ...], fixed: float) -> dict[str, Any]:
    out: dict[str, Any] = {"genuine": len(gen), "impostor": len(imp),
                           "frr_at_verify_threshold": float((gen < fixed).mean()) if len(gen) else None,
                           "far_at_verify_threshold": float((imp >= fixed).mean()) if len(imp) else None}
    for far in fars:
        t = ev.threshold_at_far(imp, far)
        out[f"far_{far:g}"] = {"threshold": t, "frr": None if t is None else float((gen < t).mean()),
                               "note": None if t is not None else ev.NOT_ENOUGH}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lfw", type=Path, default=ROOT.parent / "shared" / "faces" / "lfw")
    ap.add_argument("--min-photos", type=int, default=5)
    ap.add_argument("--max-photos", type=int, default=8)
    ap.add_argument("--k", type=int, default=3, help="frames fused per probe")
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args(argv)
    settings = Settings()
    info = model_info(settings.engine, settings.manifest_path)
    verify_t = info.threshold("verify")

    people = {}
    for d in sorted((a.lfw / "images").iterdir()):
        photos = sorted(d.glob("*.jpg"))
        if len(photos) >= a.min_photos:
            people[d.name] = photos[: a.max_photos]
    paths = [p for ps in people.values() for p in ps]
    cache = load_embeddings(paths, settings, a.workers)

    enroll, probe = ev.settings_profiles(settings)
    ids, tmpl_id, tmpl_selfie = [], [], []
    probes: list[tuple[int, np.ndarray]] = []
    fused: list[tuple[int, np.ndarray]] = []
    for name, ps in people.items():
        res = [cache[str(p)] for p in ps]
        if not res[0].enrolled or not res[1].detected:
            continue  # no usable ID photo / selfie: this person would not be enrolled
        later = [r.vector(probe) for r in res[2:] if r.detected]
        if len(later) < a.k:
            continue
        i = len(ids)
        ids.append(name)
        tmpl_id.append(res[0].vector(enroll))
        tmpl_selfie.append(res[1].vector(probe))  # a verified selfie is stored as its probe embedding
        probes += [(i, e) for e in later]
        for j in range(0, len(later) - a.k + 1, a.k):
            m = np.mean(later[j : j + a.k], axis=0)
            fused.append((i, m / np.linalg.norm(m)))
    t_id, t_s = np.stack(tmpl_id), np.stack(tmpl_selfie)

    def scores(items: list[tuple[int, np.ndarray]], two: bool) -> tuple[np.ndarray, np.ndarray]:
        owner = np.array([i for i, _ in items])
        x = np.stack([e for _, e in items])
        s = x @ t_id.T  # (probes, identities)
        if two:
            s = np.maximum(s, x @ t_s.T)
        mate = owner[:, None] == np.arange(len(ids))[None, :]
        return s[mate], s[~mate]

    fars = (1e-2, 1e-3)
    rows = {}
    for label, items, two in (("single", probes, False), (f"fused-{a.k}", fused, False),
                              ("two-templates", probes, True), (f"two-templates + fused-{a.k}", fused, True)):
        g, i = scores(items, two)
        rows[label] = frr_at_far(g, i, fars, verify_t)
    report = {
        "dataset": f"{a.lfw} people with >= {a.min_photos} photos (first {a.max_photos})",
        "identities": len(ids), "probe_images": len(probes), "fused_probes": len(fused), "k": a.k,
        "engine": info.key, "manifest_sha256": manifest_sha256(settings.manifest_path),
        "verify_threshold": verify_t, "machine": ev.machine_info(), "date": dt.date.today().isoformat(),
        "strategies": rows,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "fusion.json").write_text(json.dumps(report, indent=2) + "\n")

    def p(x: float | None) -> str:
        return "—" if x is None else f"{100 * x:.2f}%"

    lines = [
        "## Multi-frame fusion and template refresh (`benchmarks/fusion.py`)",
        "",
        f"Machine: {report['machine']['nproc']} × {report['machine']['cpu']}, {report['date']}. {report['dataset']}: "
        f"{len(ids)} identities (photo 1 = ID template, photo 2 = verified selfie, photos 3.. = probes), "
        f"{len(probes)} probe images, {len(fused)} fused probes of k={a.k}; templates embedded with the "
        f"'{enroll}' profile, selfies and probes with '{probe}'. FRR at a FAR fixed per strategy "
        f"(threshold from that strategy's own impostor scores), and at the manifest verify threshold "
        f"{verify_t}. Fused LFW photos vary more than frames of one session, so fused-k is an upper bound.",
        "",
        "| strategy | genuine | impostor | FRR @ FAR 1e-2 | FRR @ FAR 1e-3 | FRR / FAR at verify threshold |",
        "|---|---|---|---|---|---|",
    ]
    for label, r in rows.items():
        lines.append(f"| {label} | {r['genuine']} | {r['impostor']} | {p(r['far_0.01']['frr'])} | "
                     f"{p(r['far_0.001']['frr'])} | {p(r['frr_at_verify_threshold'])} / "
                     f"{p(r['far_at_verify_threshold'])} |")
    update_readme("fusion", "\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
