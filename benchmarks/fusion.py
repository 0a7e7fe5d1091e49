"""Multi-frame fusion and template refresh: how much do they cut false rejects at a fixed FAR?

    python benchmarks/fusion.py [--lfw ../shared/faces/lfw] [--min-photos 5] [--max-photos 8]
    python benchmarks/fusion.py --source protocol --engine dlib|edgeface|dlib+edgeface@dlib [--min-photos 4]

Identities with several photos (LFW people with >= ``--min-photos``; photos sorted by
file name, at most ``--max-photos`` each) go through the production pipeline
(decode → detect → gates → align → embed, lifecert.services.evaluation). With ``--source
protocol`` the photos are those of the LFW pairs protocol, read from the embedding caches that
``benchmarks/accuracy.py`` left for each engine (no new embedding pass); ``dlib+edgeface``
scores every comparison with the manifest's fused model (``[fusion.dlib_edgeface]``). Per identity:
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
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.accuracy import update_readme  # noqa: E402
from lifecert.config import Settings  # noqa: E402
from lifecert.domain.fusion import FusionModel  # noqa: E402
from lifecert.engine.fusion import model_engine  # noqa: E402
from lifecert.engine.manifest import manifest_sha256, model_info  # noqa: E402
from lifecert.services import evaluation as ev  # noqa: E402
from lifecert.services.evaluation.fusion import fusion_name  # noqa: E402

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


def protocol_caches(engines: list[str], settings: Settings, pairs_file: Path) -> dict[str, dict[str, ev.ImageResult]]:
    """The embedding caches benchmarks/accuracy.py wrote for ``pairs_file`` (one per engine)."""
    out = {}
    for e in engines:
        enroll, probe = ev.settings_profiles(settings)
        if "@" in e:  # the second engine on the primary's faces enrolls under the fusion's own profile
            enroll = settings.embedding.fusion_enroll_profile
        key = ev._cache_key(pairs_file, settings, e, "central", list(dict.fromkeys(["single", enroll, probe])))
        f = CACHE / f"{key}.npz"
        if not f.is_file():
            raise SystemExit(f"no embedding cache {f.name} for {e}: run benchmarks/accuracy.py --engine {e} first")
        out[e] = ev.load_cache(f)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lfw", type=Path, default=ROOT.parent / "shared" / "faces" / "lfw")
    ap.add_argument("--source", choices=("folders", "protocol"), default="folders")
    ap.add_argument("--engine", default=None, help="engine, or dlib+edgeface for the fused score (protocol source)")
    ap.add_argument("--write-manifest", action="store_true",
                    help="write the two-template threshold at FAR 1e-3 as thresholds.verify_refresh")
    ap.add_argument("--min-photos", type=int, default=5)
    ap.add_argument("--max-photos", type=int, default=8)
    ap.add_argument("--k", type=int, default=3, help="frames fused per probe")
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args(argv)
    settings = Settings()
    engines = (a.engine or settings.engine).split("+")
    enroll, probe = ev.settings_profiles(settings)
    fusion: FusionModel | None = None
    if len(engines) > 1:
        fusion = load_fusion(settings, engines)
        verify_t, key = fusion.threshold("verify"), "fused " + "+".join(fusion.keys)
    else:
        info = model_info(engines[0], settings.manifest_path)
        verify_t, key = info.threshold("verify"), info.key

    people: dict[str, list[Path]] = {}
    if a.source == "protocol":
        caches = protocol_caches(engines, settings, a.lfw / "pairs.txt")
        by_person: dict[str, list[Path]] = {}
        for pth in sorted(caches[engines[0]]):
            by_person.setdefault(Path(pth).parent.name, []).append(Path(pth))
        people = {n: ps[: a.max_photos] for n, ps in by_person.items() if len(ps) >= a.min_photos}
    else:
        for d in sorted((a.lfw / "images").iterdir()):
            photos = sorted(d.glob("*.jpg"))
            if len(photos) >= a.min_photos:
                people[d.name] = photos[: a.max_photos]
        paths = [p for ps in people.values() for p in ps]
        caches = {engines[0]: load_embeddings(paths, settings, a.workers)}
    if fusion is None:
        g, i, ids, n_probes, n_fused = strategies(people, caches[engines[0]], enroll, probe, a.k)
        rows = {label: frr_at_far(gs, is_, (1e-2, 1e-3), verify_t) for label, (gs, is_) in zip(
            strategy_labels(a.k), zip(g, i, strict=True), strict=True)}
    else:
        # the second engine's ID templates are enrolled under fusion_enroll_profile, as production writes them
        enrolls = [enroll] + [settings.embedding.fusion_enroll_profile] * (len(engines) - 1)
        per = [strategies(people, caches[e], ep, probe, a.k, keep=common_people(people, caches, engines))
               for e, ep in zip(engines, enrolls, strict=True)]
        ids, n_probes, n_fused = per[0][2], per[0][3], per[0][4]
        rows = {}
        for j, label in enumerate(strategy_labels(a.k)):
            gs = fusion.scores(np.stack([p[0][j] for p in per], axis=-1))
            is_ = fusion.scores(np.stack([p[1][j] for p in per], axis=-1))
            rows[label] = frr_at_far(gs, is_, (1e-2, 1e-3), verify_t)
    report = {
        "dataset": (f"LFW pairs-protocol images (folds 1-5), people with >= {a.min_photos} of them "
                    f"(first {a.max_photos})" if a.source == "protocol"
                    else f"{a.lfw} people with >= {a.min_photos} photos (first {a.max_photos})"),
        "identities": len(ids), "probe_images": n_probes, "fused_probes": n_fused, "k": a.k,
        "engine": key, "manifest_sha256": manifest_sha256(settings.manifest_path),
        "verify_threshold": verify_t, "machine": ev.machine_info(), "date": dt.date.today().isoformat(),
        "load": os.getloadavg(), "strategies": rows,
    }
    if a.write_manifest:
        t = rows["two-templates"]["far_0.001"]["threshold"]
        if t is not None:
            write_refresh_threshold(settings, engines, float(t), report)
            report["manifest_written"] = True
    name = ("fusion" if a.source == "folders" and a.engine is None
            else f"fusion_{'_'.join(e.replace('@', '_on_') for e in engines)}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    update_readme("fusion", readme_section())
    print(json.dumps({k: v["far_0.001"]["frr"] for k, v in rows.items()}, indent=1))
    return 0


def write_refresh_threshold(settings: Settings, engines: list[str], t: float, report: dict[str, Any]) -> None:
    """``[engines.X.thresholds.verify_refresh]`` (or ``[fusion.NAME.thresholds.verify_refresh]``): the
    1:1 threshold at FAR 1e-3 when the probe is compared with the ID template AND a refresh template
    (best of two), calibrated on this run's impostor scores."""
    manifest = settings.manifest_path or ROOT / "models" / "manifest.toml"
    header = (f"[fusion.{fusion_name(engines)}.thresholds.verify_refresh]" if len(engines) > 1
              else f"[engines.{engines[0]}.thresholds.verify_refresh]")
    body = [f"# best of ID + refresh template; {report['strategies']['two-templates']['impostor']} impostor "
            f"comparisons (benchmarks/fusion.py --source protocol)", f"similarity = {t:.4f}", "far = 0.001",
            f'dataset = "{report["dataset"]}"', f'date = "{report["date"]}"']
    lines = manifest.read_text(encoding="utf-8").splitlines()
    # a new table goes right after the engine's (or fusion's) verify threshold table
    ev.set_table(lines, header, body, after=header.replace("verify_refresh", "verify"))
    manifest.write_text("\n".join(lines) + "\n", encoding="utf-8")


def strategy_labels(k: int) -> list[str]:
    return ["single", f"fused-{k}", "two-templates", f"two-templates + fused-{k}"]


def common_people(people: dict[str, list[Path]], caches: dict[str, dict[str, ev.ImageResult]],
                  engines: list[str]) -> set[str]:
    """People every engine could enroll (ID photo passes the gates, selfie detected)."""
    keep = set(people)
    for e in engines:
        for n, ps in people.items():
            res = [caches[e][str(p)] for p in ps]
            if not res[0].enrolled or not res[1].detected or any(not r.detected for r in res[2:]):
                keep.discard(n)
    return keep


def strategies(
    people: dict[str, list[Path]], cache: dict[str, ev.ImageResult], enroll: str, probe: str, k: int,
    keep: set[str] | None = None,
) -> tuple[list[np.ndarray], list[np.ndarray], list[str], int, int]:
    """Genuine and impostor score arrays per strategy (strategy_labels order)."""
    ids: list[str] = []
    tmpl_id: list[np.ndarray] = []
    tmpl_selfie: list[np.ndarray] = []
    probes: list[tuple[int, np.ndarray]] = []
    fused: list[tuple[int, np.ndarray]] = []
    for name, ps in people.items():
        res = [cache[str(p)] for p in ps]
        if keep is not None and name not in keep:
            continue
        if not res[0].enrolled or not res[1].detected:
            continue  # no usable ID photo / selfie: this person would not be enrolled
        later: list[np.ndarray] = [v for r in res[2:] if (v := r.vector(probe)) is not None]
        if len(later) < k:
            continue
        t_enr, t_sel = res[0].vector(enroll), res[1].vector(probe)
        if t_enr is None or t_sel is None:  # pragma: no cover - enrolled/detected checked above
            continue
        i = len(ids)
        ids.append(name)
        tmpl_id.append(t_enr)
        tmpl_selfie.append(t_sel)  # a verified selfie is stored as its probe embedding
        probes += [(i, e) for e in later]
        for j in range(0, len(later) - k + 1, k):
            m = np.mean(later[j : j + k], axis=0)
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

    gens: list[np.ndarray] = []
    imps: list[np.ndarray] = []
    for items, two in ((probes, False), (fused, False), (probes, True), (fused, True)):
        g_s, i_s = scores(items, two)
        gens.append(g_s)
        imps.append(i_s)
    return gens, imps, ids, len(probes), len(fused)


def load_fusion(settings: Settings, engines: list[str]) -> FusionModel:
    from lifecert.domain.fusion import from_manifest
    from lifecert.engine.manifest import load_manifest

    name = fusion_name(engines)
    raw = load_manifest(settings.manifest_path).get("fusion", {}).get(name)
    if raw is None:
        raise SystemExit(f"no [fusion.{name}] in the manifest: run benchmarks/accuracy.py --engine "
                         f"{'+'.join(engines)} --write-manifest first")
    return from_manifest(name, raw, [model_info(model_engine(e), settings.manifest_path).key for e in engines])


def readme_section() -> str:
    def p(x: float | None) -> str:
        return "—" if x is None else f"{100 * x:.2f}%"

    lines = [
        "## Multi-frame fusion and template refresh (`benchmarks/fusion.py`)",
        "",
        "Per identity: photo 1 = ID template (enroll profile), photo 2 = verified selfie kept as a refresh "
        "template, photos 3.. = later probes (probe profile). FRR at a FAR fixed per strategy (threshold from that "
        "strategy's own impostor scores: with two templates the best of two impostor scores counts, so the "
        "threshold rises), and FRR / FAR at the manifest's verify threshold. Fused LFW photos vary more than "
        "frames of one session, so fused-k is an upper bound. LFW photos of one person are mostly months, not "
        "decades, apart: this measures the refresh mechanism, not an age gap. Load average recorded in the JSON: "
        "the machine was shared with other engineers' jobs.",
        "",
        "| run | engine | identities | strategy | genuine | impostor | FRR @ FAR 1e-2 | FRR @ FAR 1e-3 | "
        "FRR / FAR at verify threshold |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for f in sorted(RESULTS.glob("fusion*.json")):
        r = json.loads(f.read_text())
        if "strategies" not in r:  # another benchmark's file (fusion_alignment.json)
            continue
        for label, row in r["strategies"].items():
            lines.append(f"| {f.stem} ({r['date']}) | {r['engine']} | {r['identities']} | {label} | {row['genuine']} | "
                         f"{row['impostor']} | {p(row['far_0.01']['frr'])} | {p(row['far_0.001']['frr'])} | "
                         f"{p(row['frr_at_verify_threshold'])} / {p(row['far_at_verify_threshold'])} |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
