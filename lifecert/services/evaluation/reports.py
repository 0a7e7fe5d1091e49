"""A whole protocol run (shared by ``lifecert eval`` and ``benchmarks/accuracy.py``): the
report, its plots, the machine description."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lifecert.engine.views import PROFILES, views_union
from lifecert.services.evaluation.calibration import calibrate_thresholds
from lifecert.services.evaluation.embedding import ImageResult, embed_images, load_cache, process_image, save_cache
from lifecert.services.evaluation.metrics import (
    evaluate,
    fte_summary,
    impostor_scores_all,
    quality_bands,
    roc,
    score_pairs,
)
from lifecert.services.evaluation.protocol import Pair, read_pairs

if TYPE_CHECKING:
    from lifecert.config import Settings
    from lifecert.engine.base import FaceEngine


def profile_pairs(cache: dict[str, ImageResult]) -> list[tuple[str, str]]:
    """Every (enroll, probe) pair of profiles whose views the cache holds."""
    first = next((r for r in cache.values() if r.views is not None), None)
    have = [p for p in PROFILES if first is not None and first.has_profile(p)]
    return [(a, b) for a in have for b in have]


def mode_name(enroll: str, probe: str) -> str:
    return f"{enroll}/{probe}"


def identity_of_path(path: str) -> str:
    """Identity label of an image: its folder name (LFW ``images/<Name>/``, ``photos/<id>/``)."""
    return Path(path).parent.name


def machine_info() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": cpu}


def _cache_key(
    pairs_file: Path, settings: Settings, engine_name: str, pick: str = "largest", profiles: Sequence[str] = ()
) -> str:
    import hashlib

    h = hashlib.sha256()
    h.update(pick.encode())
    h.update(",".join(v.name for v in views_union(["single", *profiles])).encode())
    h.update(str(pairs_file.resolve()).encode())
    h.update(settings.quality.model_dump_json().encode())
    h.update(settings.images.model_dump_json().encode())
    pkg = Path(__file__).resolve().parents[2]
    # the files whose code decides an image's result (others' edits elsewhere keep the cache)
    for rel in (
        "engine/base.py",
        "engine/geometry.py",
        "engine/image.py",
        "engine/views.py",
        "domain/quality.py",
        *(f"engine/{part}_engine.py" for part in engine_name.split("@")),  # "edgeface@dlib": both engines
        *(("engine/second_on_primary.py",) if "@" in engine_name else ()),
    ):
        f = pkg / rel
        if f.is_file():
            h.update(f.read_bytes())
    import inspect

    h.update(inspect.getsource(process_image).encode())
    return f"{pairs_file.stem}-{engine_name}-{h.hexdigest()[:16]}"


@dataclass
class ProtocolRun:
    """Everything one run produced: the report (JSON-ready) and the raw scores for plots."""

    report: dict[str, Any]
    pairs: list[Pair]
    cache: dict[str, ImageResult]


def run_protocol(
    pairs_file: Path,
    settings: Settings,
    *,
    root: Path | None = None,
    engine_name: str | None = None,
    workers: int = 2,
    folds: int = 10,
    enroll_profile: str | None = None,
    probe_profile: str | None = None,
    extra_profiles: Sequence[str] = (),
    target_far: float = 1e-3,
    duplicate_far: float = 1e-6,
    cache_dir: Path | None = None,
    engine: FaceEngine | None = None,
    limit: int | None = None,
    pick: str = "auto",
) -> ProtocolRun:
    """Run a pair protocol end to end and compute every metric.

    Side a of each pair is embedded as an enrolled template (``enroll_profile``, default the
    settings'), side b as a probe (``probe_profile``); that pair of profiles gives the headline
    figures and the calibrated thresholds. Views of ``extra_profiles`` are computed too and
    every profile pair the cache allows is reported alongside (the cost/accuracy trade-off).
    Thresholds: ``verify`` at ``target_far`` and ``duplicate`` at ``duplicate_far``, each from
    the protocol's impostor pairs when they are enough, else from all cross-identity pairs
    among the protocol's images (reported)."""
    import datetime as dt
    import time

    from lifecert.engine.fusion import model_engine
    from lifecert.engine.manifest import manifest_sha256, model_info

    name = engine_name or settings.engine
    if pick == "auto":  # LFW names the centred face; elsewhere production's largest face
        pick = "largest" if pairs_file.suffix.lower() == ".csv" else "central"
    enroll = enroll_profile or settings.embedding.enroll_profile
    probe = probe_profile or settings.embedding.probe_profile
    profiles = list(dict.fromkeys(["single", enroll, probe, *extra_profiles]))
    views_union(profiles)  # unknown names fail here, before any work
    pairs = read_pairs(pairs_file, root, folds)
    if limit is not None:
        pairs = pairs[:limit]
    paths = [p.a for p in pairs] + [p.b for p in pairs]
    cache_file = cache_dir / f"{_cache_key(pairs_file, settings, name, pick, profiles)}.npz" if cache_dir else None
    t0 = time.perf_counter()
    if cache_file is not None and cache_file.is_file():
        cache = load_cache(cache_file)
        cached = True
    else:
        cache = embed_images(
            paths, settings, workers=workers, engine=engine, engine_name=name, pick=pick, profiles=profiles
        )
        cached = False
        if cache_file is not None:
            save_cache(cache_file, cache)
    elapsed = time.perf_counter() - t0
    missing = [str(p) for p in paths if str(p) not in cache]
    if missing:  # a stale cache from another subset: recompute
        cache = embed_images(
            paths, settings, workers=workers, engine=engine, engine_name=name, pick=pick, profiles=profiles
        )
        cached = False

    modes = {mode_name(a, b): evaluate(pairs, cache, enroll=a, probe=b) for a, b in profile_pairs(cache)}
    ps = score_pairs(pairs, cache, enroll=enroll, probe=probe)
    det = np.array([s != "undetected" for s in ps.status])
    imp_protocol = ps.scores[det & ~ps.labels]
    gen_protocol = ps.scores[det & ps.labels]
    ident = {p: identity_of_path(p) for p in cache}
    gen_all, imp_all = impostor_scores_all(cache, ident, enroll=enroll, probe=probe, enrolled_only=False)
    # The duplicate check compares a new template with stored ones: both sides enrolled.
    dup_all = imp_all if probe == enroll else impostor_scores_all(cache, ident, enroll=enroll, probe=enroll,
                                                                  enrolled_only=False)[1]
    calib = calibrate_thresholds(
        imp_protocol, gen_protocol, gen_all, imp_all, dup_all,
        enroll=enroll, probe=probe, target_far=target_far, duplicate_far=duplicate_far,
    )

    info = model_info(model_engine(name), settings.manifest_path)  # "edgeface@dlib": EdgeFace's model
    fresh = not cached
    n_img = len(cache)
    report: dict[str, Any] = {
        "dataset": str(pairs_file),
        "protocol": "csv" if pairs_file.suffix.lower() == ".csv" else "lfw-pairs",
        "pairs": len(pairs),
        "folds": len(np.unique([p.fold for p in pairs])),
        "engine": name,
        "model_key": info.key,
        "manifest_sha256": manifest_sha256(settings.manifest_path),
        "machine": machine_info(),
        "date": dt.date.today().isoformat(),
        "headline_profiles": {"enroll": enroll, "probe": probe},
        "views": [v.name for v in views_union(profiles)],
        "face_pick": pick,
        "images": n_img,
        "embedding_seconds": round(elapsed, 1) if fresh else None,
        "seconds_per_image_per_worker": round(elapsed * max(1, workers) / n_img, 4) if fresh and n_img else None,
        "embedding_cache": "reused" if cached else "computed",
        "fte": fte_summary(cache),
        "headline": modes[mode_name(enroll, probe)],
        "profile_modes": modes,
        "thresholds": calib,
        "quality_bands": None if calib["verify"]["similarity"] is None else quality_bands(
            pairs, cache, calib["verify"]["similarity"], enroll=enroll, probe=probe),
        "all_pairs": {"genuine": len(gen_all), "impostor": len(imp_all)},
    }
    return ProtocolRun(report, pairs, cache)


def write_plots(run: ProtocolRun, out_dir: Path, stem: str) -> list[Path]:
    """ROC (log-FAR) and genuine/impostor score histograms as PNG; returns the files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    hp = run.report["headline_profiles"]
    ps = score_pairs(run.pairs, run.cache, enroll=hp["enroll"], probe=hp["probe"])
    ok = np.array([s != "undetected" for s in ps.status])
    gen, imp = ps.scores[ok & ps.labels], ps.scores[ok & ~ps.labels]
    files = []
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    have = set(profile_pairs(run.cache))
    shown = [
        m for m in dict.fromkeys([("single", "single"), ("flip", "flip"), (hp["enroll"], hp["probe"])]) if m in have
    ]
    floor = 1.0
    for enroll, probe in shown:
        pm = score_pairs(run.pairs, run.cache, enroll=enroll, probe=probe)
        okm = np.array([s != "undetected" for s in pm.status])
        r = roc(pm.scores[okm & pm.labels], pm.scores[okm & ~pm.labels])
        far = np.maximum(r.far, 1.0 / max(1, len(imp)) / 2)
        ax.plot(far, r.tar, label=f"enrolled {enroll} / probe {probe}")
        measurable = r.far >= max(1e-3, 1.0 / max(1, len(imp)))
        if measurable.any():
            floor = min(floor, float(r.tar[measurable].min()))
    ax.set_ylim(max(0.0, floor - 0.03), 1.002)  # zoom on the part where the curves differ
    ax.set_xscale("log")
    ax.set_xlabel("FAR (impostor pairs accepted)")
    ax.set_ylabel("TAR (genuine pairs accepted)")
    ax.set_title(f"ROC — {stem} ({run.report['engine']})")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right")
    f = out_dir / f"{stem}_roc.png"
    fig.tight_layout()
    fig.savefig(f, dpi=110)
    plt.close(fig)
    files.append(f)
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    lo = float(np.min(ps.scores[ok])) - 0.02 if ok.any() else 0.0
    bins = np.linspace(lo, 1.0, 80).tolist()
    ax.hist(imp, bins=bins, alpha=0.6, label=f"impostor (n={len(imp)})", color="tab:red")
    ax.hist(gen, bins=bins, alpha=0.6, label=f"genuine (n={len(gen)})", color="tab:green")
    v = run.report["thresholds"]["verify"]["similarity"]
    if v is not None:
        far_v = run.report["thresholds"]["verify"]["far"]
        ax.axvline(v, color="k", ls="--", lw=1, label=f"verify {v:.3f} @FAR {far_v:g}")
    ax.set_xlabel("cosine similarity")
    ax.set_ylabel("pairs")
    ax.set_title(f"Scores — {stem} ({hp['enroll']} / {hp['probe']})")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    f = out_dir / f"{stem}_hist.png"
    fig.savefig(f, dpi=110)
    plt.close(fig)
    files.append(f)
    return files

