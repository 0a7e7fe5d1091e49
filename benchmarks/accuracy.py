"""Verification accuracy on a pair protocol through the whole production pipeline.

    python benchmarks/accuracy.py --pairs ../shared/faces/lfw/pairs.txt [--write-manifest]
    python benchmarks/accuracy.py --pairs ../shared/faces/pairs.csv

Writes benchmarks/results/accuracy_<name>.json, accuracy_<name>_roc.png and
accuracy_<name>_hist.png, and the accuracy section of benchmarks/README.md.
Same as ``lifecert eval``. Embeddings are cached under var/eval-cache/ (keyed by the
pairs file, quality settings and engine source) so re-runs only recompute metrics;
``--no-cache`` forces a fresh pass.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lifecert.config import Settings  # noqa: E402
from lifecert.engine.views import PROFILES  # noqa: E402
from lifecert.services import evaluation as ev  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
README = ROOT / "benchmarks" / "README.md"
README_HEADER = "# Benchmarks\n\nEach section is written by its script; numbers are measured on the machine named.\n"


def pct(x: float | None, nd: int = 2) -> str:
    return "—" if x is None else f"{100 * x:.{nd}f}%"


def summary_lines(r: dict) -> list[str]:
    h = r["headline"]["views"]
    hp = r["headline_profiles"]
    out = [
        f"dataset {r['dataset']}  engine {r['model_key']}  pairs {r['pairs']}  folds {r['folds']}  "
        f"enrolled side {hp['enroll']}, probe side {hp['probe']}"
    ]
    for view in ("detected", "enrolled", "fte_as_errors"):
        v = h[view]
        out.append(
            f"  {view:14s} accuracy {pct(v['accuracy_mean'])} ± {pct(v['accuracy_std'])}  "
            f"(pairs {v['pairs']}, forced wrong {v['pairs_forced_wrong']})  EER {pct(v.get('eer'))}"
        )
        for t in v.get("tar_at_far", []):
            tar = t["note"] if t["tar"] is None else f"{pct(t['tar'])} (t={t['threshold']:.4f})"
            out.append(f"      TAR@FAR={t['far']:g}: {tar}")
    f = r["fte"]
    out.append(
        f"  FTE {pct(f['fte_rate'])} of {f['images']} images (undetected {f['undetected']}, "
        f"quality gates {f['quality_gate_failures']}: {f['reasons']}); detector {f['detector_used']}"
    )
    for m, res in r["profile_modes"].items():
        v = res["views"]["detected"]
        out.append(
            f"  enrolled/probe {m:14s} detected-view accuracy {pct(v['accuracy_mean'])} ± "
            f"{pct(v['accuracy_std'])}  enrolled-view {pct(res['views']['enrolled']['accuracy_mean'])}"
        )
    for k, t in r["thresholds"].items():
        out.append(
            f"  threshold {k}: similarity {t['similarity']} at FAR {t['far']:g} from {t['impostor_pairs']} "
            f"impostor pairs ({t['impostor_source']}); TAR {pct(t.get('tar_protocol_genuine'))} "
            f"on protocol genuine pairs"
        )
    return out


def update_readme(section: str, body: str) -> None:
    text = README.read_text() if README.is_file() else README_HEADER
    start, end = f"<!-- {section}:start -->", f"<!-- {section}:end -->"
    block = f"{start}\n{body.rstrip()}\n{end}"
    if start in text and end in text:
        a, b = text.index(start), text.index(end) + len(end)
        text = text[:a] + block + text[b:]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    README.write_text(text)


def readme_section() -> str:
    """The accuracy section, rebuilt from every accuracy_*.json in results/."""
    rows = []
    for f in sorted(RESULTS.glob("accuracy_*.json")):
        r = json.loads(f.read_text())
        h = r["headline"]["views"]
        tars = {t["far"]: t for t in h["detected"].get("tar_at_far", [])}

        def tar(far: float, tars: dict = tars) -> str:
            t = tars.get(far)
            if t is None:
                return "—"
            return "n/a (not enough impostor pairs)" if t["tar"] is None else pct(t["tar"])

        hp = r["headline_profiles"]
        rows.append(
            f"| {Path(r['dataset']).name} | {r['model_key']} | {r['pairs']} | "
            f"{pct(h['detected']['accuracy_mean'])} ± {pct(h['detected']['accuracy_std'])} | "
            f"{pct(h['enrolled']['accuracy_mean'])} ({h['enrolled']['pairs']} pairs) | "
            f"{pct(h['fte_as_errors']['accuracy_mean'])} | "
            f"{hp['enroll']} / {hp['probe']} | "
            f"{pct(h['detected'].get('eer'))} | {tar(1e-2)} | {tar(1e-3)} | {tar(1e-4)} | "
            f"{pct(r['fte']['fte_rate'])} ({pct(r['fte']['undetected_rate'])} undetected) | "
            f"{r['thresholds']['verify']['similarity']} / {r['thresholds']['duplicate']['similarity']} | "
            f"[ROC](results/{f.stem}_roc.png), [hist](results/{f.stem}_hist.png) |"
        )
    any_r = json.loads(sorted(RESULTS.glob("accuracy_*.json"))[0].read_text()) if rows else None
    machine = f"{any_r['machine']['nproc']} × {any_r['machine']['cpu']}, {any_r['date']}" if any_r else ""
    return "\n".join(
        [
            "## Verification accuracy (`benchmarks/accuracy.py`, `lifecert eval`)",
            "",
            f"Machine: {machine}. Full production pipeline: read_image_file → detect (HOG, CNN fallback) → "
            "quality gates (settings.quality) → 5-point chip (one per view) → dlib ResNet on onnxruntime → "
            "cosine. Accuracy is leave-one-fold-out (threshold chosen on the other folds). "
            "Views: **detected** = quality gates ignored, undetected images "
            "count as errors (comparable with published LFW figures); **enrolled** = only pairs whose two images "
            "pass the gates; **FTE as errors** = every pair touching a failure-to-enrol image counts as wrong. "
            "Profiles: embedding views of the enrolled template (side a) / of the probe (side b), "
            "as settings.embedding configures production (`single` 1 pass, `flip` crop + mirror 2 passes, "
            "`jitter` 8 passes: mirror, ±3°, ±2% shifts; lifecert/engine/views.py). TAR@FAR on the detected "
            "view's pairs. Thresholds = verify / duplicate cosine similarity written to models/manifest.toml "
            "for those profiles.",
            "",
            "| pairs | model | n | accuracy (detected) | accuracy (enrolled) | accuracy (FTE as errors) | "
            "profiles enrolled / probe | EER | TAR@1e-2 | TAR@1e-3 | TAR@1e-4 | FTE | thresholds | plots |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
            *rows,
            "",
            *tradeoff_table(),
        ]
    )


def _sec(x: float | None) -> str:
    return "—" if x is None else f"{x:.3f}"


def tradeoff_table() -> list[str]:
    """Accuracy of every (enrolled, probe) profile pair of the LFW run with its embedding cost."""
    f = RESULTS / "accuracy_lfw.json"
    if not f.is_file():
        return []
    r = json.loads(f.read_text())
    cost = r.get("profile_seconds", {})
    out = [
        "### Enrolled/probe profiles on LFW: accuracy against embedding cost",
        "",
        "Same embeddings, every profile pair (detected view, leave-one-fold-out). Seconds per face on one "
        "core (detect + align + the profile's recogniser passes) measured by `--time-profiles` on "
        f"{cost.get('_images', '?')} LFW images; a batch of 11,362 LFW-sized photos on 2 worker processes takes "
        "≈ 11,362 × enrolled seconds / 2 plus the job's overhead.",
        "",
        "| enrolled | probe | accuracy (detected) | enrolled s/face | probe s/face | 11,362 photos on 2 cores |",
        "|---|---|---|---|---|---|",
    ]
    for m, res in r["profile_modes"].items():
        a, b = m.split("/")
        v = res["views"]["detected"]
        ca, cb = cost.get(a), cost.get(b)
        batch = "—" if ca is None else f"≈ {11362 * ca / 2 / 60:.0f} min"
        mark = " **(default)**" if {"enroll": a, "probe": b} == r["headline_profiles"] else ""
        out.append(
            f"| {a} | {b}{mark} | {pct(v['accuracy_mean'])} ± {pct(v['accuracy_std'])} | {_sec(ca)} | "
            f"{_sec(cb)} | {batch} |"
        )
    return out


def time_profiles(run: ev.ProtocolRun, settings: Settings, engine_name: str | None, n: int) -> dict:
    """Seconds per face of detect + align + embed under each profile, on one core, over the
    first ``n`` detected images of the run (after one warm-up call)."""
    import time

    from lifecert.engine.dlib_engine import set_thread_count
    from lifecert.engine.image import read_image_file
    from lifecert.engine.loader import load_engine

    set_thread_count(1)
    engine = load_engine(settings, name=engine_name)
    paths = [p for p, res in sorted(run.cache.items()) if res.detected][:n]
    if not paths:
        return {"_images": 0}
    images = [read_image_file(Path(p)) for p in paths]
    out: dict = {"_images": len(images)}
    engine.embed(images[0], engine.detect(images[0])[0])
    cpus = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cpus)})
    try:
        for profile in PROFILES:
            t0 = time.perf_counter()
            for img in images:
                faces = engine.detect(img)
                if faces:
                    engine.embed(img, faces[0], profile=profile)
            out[profile] = round((time.perf_counter() - t0) / len(images), 4)
    finally:
        os.sched_setaffinity(0, cpus)
    return out


def fused_readme_section() -> str:
    """The score-fusion section, rebuilt from every fused_*.json in results/."""
    rows = []
    for f in sorted(RESULTS.glob("fused_*.json")):
        r = json.loads(f.read_text())
        acc, tar = r["accuracy_detected"], r["tar_within_fold_pairs"]
        profiles = {e["engine"]: f"{e['enroll_profile']}/{e['probe_profile']}" for e in r["engines"]}
        for name in [*(e["engine"] for e in r["engines"]), "fused"]:
            t = {x["far"]: x for x in tar[name]["tar_at_far"]}

            def at(far: float, t: dict = t) -> str:
                return "—" if far not in t or t[far]["tar"] is None else pct(t[far]["tar"])

            weight = r["model"]["weights"].get(name)
            wcol = f"bias {r['model']['bias']:.2f}" if weight is None else f"{weight:.2f}"
            rows.append(
                f"| {Path(r['dataset']).name} | {r.get('method', 'logistic')} | {name} | "
                f"{profiles.get(name, '+'.join(profiles))} | "
                f"{pct(acc[name]['accuracy_mean'])} ± {pct(acc[name]['accuracy_std'])} | {at(1e-2)} | {at(1e-3)} | "
                f"{at(1e-4)} | {pct(tar[name]['eer'])} | {tar[name]['impostor_pairs']} | "
                f"{wcol} |"
            )
    if not rows:
        return ""
    files = sorted(RESULTS.glob("fused_*.json"))
    any_r = json.loads(next((f for f in files if "znorm" in f.name), files[0]).read_text())
    th = any_r["thresholds"]
    return "\n".join([
        "## Score fusion (`benchmarks/accuracy.py --engine dlib+edgeface`, `lifecert eval --engine dlib+edgeface`)",
        "",
        f"Machine: {any_r['machine']['nproc']} × {any_r['machine']['cpu']}, {any_r['date']} (shared with other "
        "engineers' jobs). `dlib` runs the full production pipeline; `edgeface@dlib` is EdgeFace's views and "
        "embeddings of the faces dlib finds and gates (what enrollment and verification compute: no second "
        "detector); a plain engine name (e.g. the logistic row's `edgeface`) ran its own detector and gates; the "
        "fused score is linear in the engines' cosine similarities (lifecert/domain/fusion.py): **znorm** = "
        "each similarity standardised by its impostor mean/deviation, then averaged (no tuned weight; the "
        "production method), **logistic** = logistic regression (tried first: below EdgeFace alone). "
        "Accuracy: leave-one-fold-out — for each fold the weights AND the threshold come from the other folds. "
        "TAR@FAR: every same-identity and cross-identity image pair within each fold, fused with the weights "
        "fitted on the other folds (LFW folds are identity-disjoint), every engine on exactly the same pairs. "
        f"Production ({any_r.get('method')}) weights from all pairs; fused thresholds: verify "
        f"{th['verify']['similarity']} at FAR "
        f"{th['verify']['far']:g}, duplicate {th['duplicate']['similarity']} at FAR {th['duplicate']['far']:g} "
        "(all cross-identity pairs), written to `[fusion.*]` in models/manifest.toml.",
        "",
        "| pairs | method | engine | profiles | accuracy (detected) | TAR@1e-2 | TAR@1e-3 | TAR@1e-4 | EER | "
        "impostor pairs | weight |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        *rows,
    ])


def quality_band_section() -> str:
    """Error rates per quality band at each engine's calibrated verify threshold (every LFW protocol pair
    whose worse image fails that gate; ``ok`` = both images pass), from the accuracy_*.json reports."""
    rows = []
    for f in sorted(RESULTS.glob("accuracy_lfw*.json")):
        r = json.loads(f.read_text())
        qb, hp = r.get("quality_bands"), r.get("headline_profiles", {})
        if not qb:
            continue
        for band, x in sorted(qb.items(), key=lambda kv: (kv[0] != "ok", kv[0])):
            frr = "—" if x["frr"] is None else f"{100 * x['frr']:.1f}%"
            far = "—" if x["far"] is None else f"{100 * x['far']:.2f}%"
            rows.append(f"| {r['model_key'].split(':')[0]} | {hp.get('enroll')}/{hp.get('probe')} | {band} | "
                        f"{x['genuine']} | {frr} | {x['impostor']} | {far} |")
    return "\n".join([
        "### Accuracy per quality band (`benchmarks/accuracy.py`, `quality_bands` in the JSON)",
        "",
        "LFW folds 1–5, each engine's own pipeline, at its calibrated verify threshold (FAR 1e-3 over all "
        "cross-identity pairs). A pair falls in the band of the first quality gate one of its images fails "
        "(`ok`: both pass the enrollment gates); the errors are what the service would make if such a photo "
        "were enrolled anyway. Few pairs per band: read FRR in the small bands as indications (impostor rates "
        "at 0.1% need thousands of pairs). Age bands: none, see the EdgeFace and fusion findings.",
        "",
        "| engine | profiles | band | genuine pairs | FRR | impostor pairs | FAR |",
        "|---|---|---|---|---|---|---|",
        *rows,
    ])


def main_fused(a: argparse.Namespace, settings: Settings) -> int:
    from lifecert.services.evaluation import fusion as fu

    engines = [e for e in a.engine.split("+") if e]
    _, r = fu.run_fused_protocol(
        a.pairs, settings, engines, root=a.root, workers=a.workers, folds=a.folds,
        enroll_profile=a.enroll_profile, probe_profile=a.probe_profile, target_far=a.target_far,
        duplicate_far=a.duplicate_far, cache_dir=None if a.no_cache else ROOT / "var" / "eval-cache", limit=a.limit,
        method=a.fusion_method, second_enroll_profile=a.second_enroll_profile,
        second_on_primary=not a.second_own_pipeline,
    )
    name = a.name or ("lfw" if a.pairs.suffix != ".csv" else a.pairs.stem)
    if a.write_manifest:
        manifest = settings.manifest_path or ROOT / "models" / "manifest.toml"
        fu.write_manifest_fusion(manifest, r["fusion"], r, f"{name} {a.pairs.name}", r["date"])
        r["manifest_written"] = True
    out = RESULTS / f"fused_{name}_{r['fusion']}_{a.fusion_method}.json"
    out.write_text(json.dumps(r, indent=2, default=float) + "\n")
    update_readme("fusion-accuracy", fused_readme_section())
    print("\n".join(fu.summary_lines(r)))
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=Path, required=True, help="LFW pairs.txt or CSV file_a,file_b,same")
    ap.add_argument("--root", type=Path, default=None, help="image root (default: the pairs file's folder)")
    ap.add_argument("--engine", default=None, help="engine name (default: settings.engine)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--folds", type=int, default=10, help="folds for CSV protocols (LFW files carry theirs)")
    ap.add_argument(
        "--enroll-profile",
        choices=list(PROFILES),
        default=None,
        help="views of the enrolled side (default: settings.embedding.enroll_profile)",
    )
    ap.add_argument(
        "--probe-profile",
        choices=list(PROFILES),
        default=None,
        help="views of the probe side (default: settings.embedding.probe_profile)",
    )
    ap.add_argument(
        "--all-profiles", action="store_true", help="compute every profile's views and report every enrolled/probe pair"
    )
    ap.add_argument(
        "--time-profiles",
        type=int,
        default=200,
        metavar="N",
        help="time each profile per face on N of the protocol's images, pinned to one CPU (0: skip)",
    )
    ap.add_argument("--target-far", type=float, default=1e-3, help="FAR of the verify threshold")
    ap.add_argument("--duplicate-far", type=float, default=1e-6, help="FAR of the duplicate threshold")
    ap.add_argument("--name", default=None, help="result name (default: from the pairs file)")
    ap.add_argument("--no-cache", action="store_true")
    ap.add_argument("--limit", type=int, default=None, help="first N pairs only (smoke runs)")
    ap.add_argument("--fusion-method", choices=("znorm", "logistic"), default="znorm",
                    help="score fusion for ENGINE+ENGINE (lifecert/domain/fusion.py)")
    ap.add_argument("--second-enroll-profile", choices=list(PROFILES), default=None,
                    help="ENGINE+ENGINE: enrolled views of the second engine (default: "
                         "settings.embedding.fusion_enroll_profile, what enrollment writes)")
    ap.add_argument("--second-own-pipeline", action="store_true",
                    help="ENGINE+ENGINE: the second engine runs its own detector and gates (default: it embeds the "
                         "faces the first engine finds and gates, as production does)")
    ap.add_argument("--write-manifest", action="store_true", help="write thresholds into models/manifest.toml")
    a = ap.parse_args(argv)

    settings = Settings()
    if a.engine and "+" in a.engine:
        return main_fused(a, settings)
    run = ev.run_protocol(
        a.pairs,
        settings,
        root=a.root,
        engine_name=a.engine,
        workers=a.workers,
        folds=a.folds,
        enroll_profile=a.enroll_profile,
        probe_profile=a.probe_profile,
        extra_profiles=list(PROFILES) if a.all_profiles else (),
        target_far=a.target_far,
        duplicate_far=a.duplicate_far,
        cache_dir=None if a.no_cache else ROOT / "var" / "eval-cache",
        limit=a.limit,
    )
    name = a.name or ("lfw" if a.pairs.suffix != ".csv" else a.pairs.stem)
    stem = f"accuracy_{name}"
    r = run.report
    r["plots"] = [str(p.relative_to(ROOT)) for p in ev.write_plots(run, RESULTS, stem)]
    if a.time_profiles:
        r["profile_seconds"] = time_profiles(run, settings, a.engine, a.time_profiles)
    if a.write_manifest:
        manifest = settings.manifest_path or ROOT / "models" / "manifest.toml"
        th = {
            k: {
                "similarity": v["similarity"],
                "far": v["far"],
                "note": f"{v['impostor_pairs']} impostor pairs ({v['impostor_source']})",
                "enroll_profile": v["enroll_profile"],
                "probe_profile": v["probe_profile"],
            }
            for k, v in r["thresholds"].items()
            if v["similarity"] is not None
        }
        ev.write_manifest_thresholds(manifest, r["engine"], th, f"{name} {a.pairs.name}", r["date"])
        r["manifest_written"] = True
        from lifecert.engine.manifest import manifest_sha256

        r["manifest_sha256_after_write"] = manifest_sha256(manifest)
    (RESULTS / f"{stem}.json").write_text(json.dumps(r, indent=2, default=float) + "\n")
    update_readme("accuracy", readme_section())
    update_readme("quality-bands", quality_band_section())
    print("\n".join(summary_lines(r)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
