"""Score-level fusion on a pair protocol: several engines' runs of the same protocol (each
through the full production pipeline, see :mod:`.reports`) → one fused score per pair.

* Accuracy: leave-one-fold-out. For fold k the logistic weights are fitted on the other folds'
  pairs and the decision threshold chosen on the other folds' fused scores; fold k is scored
  with both. LFW folds are identity-disjoint, so nothing of fold k is seen while fitting.
* TAR@FAR: every cross-identity pair among the images of fold k, scored with the weights of
  the other folds (pooled over folds), against every same-identity pair of those images. The
  single engines are scored on exactly the same pairs, so the rows compare like with like.
* Production weights and thresholds: fitted on all protocol pairs; the verify threshold at the
  target FAR and the duplicate threshold (enrolled vs enrolled profiles) from all
  cross-identity pairs among the protocol's images.

A pair where any engine found no face counts as an error in the ``detected`` view (as for
one engine); pairs touching an image that failed a quality gate in any engine are left out
of the ``enrolled`` view.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lifecert.domain.fusion import FITS
from lifecert.engine.fusion import model_engine
from lifecert.services.evaluation.embedding import ImageResult
from lifecert.services.evaluation.metrics import (
    FAR_TARGETS,
    best_threshold,
    eer,
    rule_of_three_upper,
    score_pairs,
    tar_at_far,
    threshold_at_far,
)
from lifecert.services.evaluation.protocol import Pair


@dataclass(frozen=True, slots=True)
class EngineScores:
    """One engine's run of a protocol: its image cache and headline profiles."""

    engine: str
    model_key: str
    cache: Mapping[str, ImageResult]
    enroll: str
    probe: str


def _identity(path: str) -> str:
    from pathlib import Path

    return Path(path).parent.name


def image_folds(pairs: Sequence[Pair]) -> dict[str, int]:
    """Fold of each image (LFW folds are identity-disjoint, so an image has one fold)."""
    out: dict[str, int] = {}
    for p in pairs:
        out.setdefault(str(p.a), p.fold)
        out.setdefault(str(p.b), p.fold)
    return out


def _pair_matrix(
    runs: Sequence[EngineScores], pairs: Sequence[Pair]
) -> tuple[NDArray[np.float64], NDArray[np.bool_], NDArray[np.int64], NDArray[np.bool_], NDArray[np.bool_]]:
    """(N, K) pair scores, labels, folds, detected by every engine, enrolled by every engine."""
    cols, detected, enrolled = [], [], []
    for r in runs:
        ps = score_pairs(pairs, dict(r.cache), enroll=r.enroll, probe=r.probe)
        cols.append(ps.scores)
        st = np.array(ps.status)
        detected.append(st != "undetected")
        enrolled.append(st == "ok")
    x = np.stack(cols, axis=1)
    det = np.asarray(np.logical_and.reduce(detected), dtype=bool)
    enr = np.asarray(np.logical_and.reduce(enrolled), dtype=bool)
    labels = np.array([p.same for p in pairs], dtype=bool)
    folds = np.array([p.fold for p in pairs], dtype=np.int64)
    return x, labels, folds, det, enr


def _vectors(runs: Sequence[EngineScores], paths: Sequence[str], side: str) -> list[NDArray[np.float32]]:
    out = []
    for r in runs:
        prof = r.enroll if side == "enroll" else r.probe
        out.append(np.stack([r.cache[p].vector(prof) for p in paths]))  # type: ignore[misc]
    return out


def _all_pair_scores(
    runs: Sequence[EngineScores], paths: Sequence[str], *, probe_side: str = "probe"
) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
    """(P, K) similarities of every unordered image pair (first image enrolled, second under
    ``probe_side``'s profile) and whether the pair is the same identity."""
    enr = _vectors(runs, paths, "enroll")
    prb = _vectors(runs, paths, probe_side)
    iu = np.triu_indices(len(paths), k=1)
    cols = [(e @ p.T)[iu] for e, p in zip(enr, prb, strict=True)]  # float32: 7M pairs of LFW fit easily
    codes = np.unique(np.array([_identity(p) for p in paths]), return_inverse=True)[1]
    same = codes[iu[0]] == codes[iu[1]]
    return np.stack(cols, axis=1), same


def fuse_protocol(
    runs: Sequence[EngineScores],
    pairs: Sequence[Pair],
    *,
    target_far: float = 1e-3,
    duplicate_far: float = 1e-6,
    method: str = "znorm",
) -> dict[str, Any]:
    """Cross-validated accuracy and TAR@FAR of the fused score and of each engine alone, plus
    production weights and thresholds (``method``: znorm | logistic, see lifecert.domain.fusion).
    JSON-ready."""
    fit = FITS[method]
    x, labels, folds, det, enr = _pair_matrix(runs, pairs)
    names = [r.engine for r in runs]
    fold_ids = np.unique(folds)
    fused_cv = np.full(len(pairs), np.nan)
    per_fold: list[dict[str, Any]] = []
    acc_fused, acc_single = [], {n: [] for n in names}  # type: ignore[var-annotated]
    for k in fold_ids:
        train = (folds != k) & det
        test = folds == k
        b, w = fit(x[train], labels[train])
        fused = b + x @ w
        fused_cv[test] = fused[test]
        t = best_threshold(fused[train], labels[train])
        ok = (fused[test] >= t) == labels[test]
        acc_fused.append(float((ok & det[test]).mean()))
        for j, n in enumerate(names):
            tj = best_threshold(x[train, j], labels[train])
            acc_single[n].append(float((((x[test, j] >= tj) == labels[test]) & det[test]).mean()))
        per_fold.append({"fold": int(k), "bias": b, "weights": dict(zip(names, map(float, w), strict=True)),
                         "threshold": t})

    def summary(accs: list[float]) -> dict[str, Any]:
        a = np.array(accs)
        return {"accuracy_mean": float(a.mean()), "accuracy_std": float(a.std()), "per_fold": accs}

    # TAR@FAR on all within-fold image pairs, fused with the weights of the other folds.
    fold_of = image_folds(pairs)
    pooled: list[NDArray[np.float64]] = []
    pooled_same: list[NDArray[np.bool_]] = []
    for i, k in enumerate(fold_ids):
        paths = sorted(p for p, f in fold_of.items() if f == k and all(r.cache[p].detected for r in runs))
        if len(paths) < 2:
            continue
        s, same = _all_pair_scores(runs, paths)
        fb = per_fold[i]
        fused = fb["bias"] + s @ np.array([fb["weights"][n] for n in names])
        pooled.append(np.column_stack([s, fused]))
        pooled_same.append(same)
    allp = np.concatenate(pooled) if pooled else np.zeros((0, len(names) + 1))
    same_all = np.concatenate(pooled_same) if pooled_same else np.zeros(0, dtype=bool)
    tar: dict[str, Any] = {}
    for j, n in enumerate([*names, "fused"]):
        gen, imp = allp[same_all, j], allp[~same_all, j]
        e, _ = eer(gen, imp)
        tar[n] = {"tar_at_far": [tar_at_far(gen, imp, f) for f in FAR_TARGETS], "eer": e,
                  "genuine_pairs": len(gen), "impostor_pairs": len(imp)}
    # Protocol-pair TAR@FAR with cross-fitted fused scores (1,500 impostors: FAR 1e-3 at best).
    proto = {n: tar_at_far(x[det & labels, j], x[det & ~labels, j], target_far) for j, n in enumerate(names)}
    proto["fused"] = tar_at_far(fused_cv[det & labels], fused_cv[det & ~labels], target_far)

    # Production model: weights from all protocol pairs, thresholds from all image pairs.
    bias, weights = fit(x[det], labels[det])
    paths = sorted(p for p in fold_of if all(r.cache[p].detected for r in runs))
    s_all, same = _all_pair_scores(runs, paths)
    f_all = bias + s_all @ weights
    s_dup, _ = _all_pair_scores(runs, paths, probe_side="enroll")
    f_dup = bias + s_dup @ weights
    thresholds = {}
    for key, far, scores in (("verify", target_far, f_all), ("duplicate", duplicate_far, f_dup)):
        imp = scores[~same]
        th = threshold_at_far(imp, far)
        allowed = int(np.floor(far * len(imp) + 1e-9))
        thresholds[key] = {
            "similarity": None if th is None else round(float(th), 4),
            "far": far,
            "impostor_pairs": len(imp),
            "tar_all_genuine": None if th is None else float((scores[same] >= th).mean()),
            "far_upper_95": rule_of_three_upper(len(imp), allowed),
        }
    return {
        "method": method,
        "engines": [{"engine": r.engine, "model_key": r.model_key, "enroll_profile": r.enroll,
                     "probe_profile": r.probe} for r in runs],
        "pairs": len(pairs),
        "folds": [int(k) for k in fold_ids],
        "pairs_detected_by_all": int(det.sum()),
        "pairs_enrolled_by_all": int(enr.sum()),
        "accuracy_detected": {"fused": summary(acc_fused), **{n: summary(a) for n, a in acc_single.items()}},
        "tar_within_fold_pairs": tar,
        "tar_protocol_pairs": proto,
        "per_fold_models": per_fold,
        "model": {"bias": bias, "weights": dict(zip(names, map(float, weights), strict=True))},
        "thresholds": thresholds,
    }


def write_manifest_fusion(manifest: Any, name: str, report: dict[str, Any], dataset: str, date: str) -> None:
    """Rewrite the ``[fusion.NAME]`` tables of the manifest (other text kept)."""
    from pathlib import Path

    path = Path(manifest)
    lines = path.read_text(encoding="utf-8").splitlines()
    prefix = f"[fusion.{name}"
    keep: list[str] = []
    skipping = False
    for ln in lines:
        if ln.startswith("["):
            skipping = ln.startswith(prefix + "]") or ln.startswith(prefix + ".")
        if not skipping:
            keep.append(ln)
    while keep and not keep[-1].strip():
        keep.pop()
    runs = [e["engine"] for e in report["engines"]]
    engines = [model_engine(e) for e in runs]
    m = report["model"]
    block = [
        "",
        f"[fusion.{name}]",
        f"# {report.get('method', 'znorm')} score fusion: fused = bias + sum(weight * cosine similarity); written by",
        "# benchmarks/accuracy.py --engine " + "+".join(engines) + " --write-manifest",
        "models = [" + ", ".join(f'"{e}"' for e in engines) + "]",
        f"bias = {m['bias']:.6f}",
        "weights = [" + ", ".join(f"{m['weights'][e]:.6f}" for e in runs) + "]",
        "profiles = [" + ", ".join(f'"{e["enroll_profile"]}/{e["probe_profile"]}"' for e in report["engines"]) + "]",
    ]
    for key, t in report["thresholds"].items():
        if t["similarity"] is None:
            continue
        block += ["", f"[fusion.{name}.thresholds.{key}]",
                  f"# {t['impostor_pairs']} impostor pairs (all cross-identity pairs among the protocol's images)",
                  f"similarity = {t['similarity']:.4f}", f"far = {t['far']:g}", f'dataset = "{dataset}"',
                  f'date = "{date}"']
    path.write_text("\n".join(keep + block) + "\n", encoding="utf-8")


def fusion_name(engines: Sequence[str]) -> str:
    """Manifest name of a fusion: engine names joined by ``_`` (``dlib_edgeface``; an evaluation run
    ``edgeface@dlib`` counts as ``edgeface``)."""
    return "_".join(model_engine(e) for e in engines)


def run_fused_protocol(
    pairs_file: Any, settings: Any, engines: Sequence[str], *, target_far: float = 1e-3,
    duplicate_far: float = 1e-6, method: str = "znorm", second_enroll_profile: str | None = None,
    second_on_primary: bool = True, **kw: Any,
) -> tuple[list[Any], dict[str, Any]]:
    """Run the protocol once per engine (each with its embedding cache, see
    :func:`.reports.run_protocol`) and fuse them. ``enroll_profile`` (in ``kw``) is the first
    engine's, ``second_enroll_profile`` the others' (default ``settings.embedding.fusion_enroll_profile``).
    ``second_on_primary`` (default): the other engines embed the faces the first engine finds and gates
    (``"edgeface@dlib"``, :class:`lifecert.engine.second_on_primary.SecondOnPrimary`) — what production
    computes, so ``--write-manifest`` calibrates what runs; False: each engine's own full pipeline.
    Returns (the per-engine runs, the fusion report)."""
    import datetime as dt

    from lifecert.services.evaluation.reports import machine_info, run_protocol

    enroll = kw.pop("enroll_profile", None) or settings.embedding.enroll_profile
    # The second and later engines enroll under settings.embedding.fusion_enroll_profile, as production
    # writes their templates (lifecert.services.fusion); the primary's enroll profile is computed too so
    # the embedding cache of a plain run of that engine is reused.
    profiles = [enroll] + [second_enroll_profile or settings.embedding.fusion_enroll_profile] * (len(engines) - 1)
    if second_on_primary:
        engines = [engines[0]] + [f"{model_engine(e)}@{engines[0]}" for e in engines[1:]]
    runs = [run_protocol(pairs_file, settings, engine_name=e, target_far=target_far, duplicate_far=duplicate_far,
                         enroll_profile=p, extra_profiles=[enroll] if p != enroll and "@" not in e else (), **kw)
            for e, p in zip(engines, profiles, strict=True)]
    scores = [EngineScores(e, r.report["model_key"], r.cache, r.report["headline_profiles"]["enroll"],
                           r.report["headline_profiles"]["probe"]) for e, r in zip(engines, runs, strict=True)]
    report = fuse_protocol(scores, runs[0].pairs, target_far=target_far, duplicate_far=duplicate_far, method=method)
    report = {"dataset": str(pairs_file), "fusion": fusion_name(engines), "date": dt.date.today().isoformat(),
              "machine": machine_info(), **report,
              "single_engine_reports": {e: {"accuracy_detected": r.report["headline"]["views"]["detected"]
                                            ["accuracy_mean"], "thresholds": r.report["thresholds"]}
                                        for e, r in zip(engines, runs, strict=True)}}
    return runs, report


def summary_lines(report: dict[str, Any]) -> list[str]:
    """Human-readable lines of a fusion report (CLI and benchmark print the same)."""
    out = [f"fusion {report['fusion']} ({report.get('method')}) on {report['dataset']}: {report['pairs']} pairs, "
           f"folds {report['folds']}, "
           f"{report['pairs_detected_by_all']} detected by every engine"]
    acc = report["accuracy_detected"]
    tar = report["tar_within_fold_pairs"]
    for name in [*(e["engine"] for e in report["engines"]), "fused"]:
        a = acc[name]
        t3 = next((t for t in tar[name]["tar_at_far"] if t["far"] == 1e-3), None)
        t3s = "n/a" if t3 is None or t3["tar"] is None else f"{100 * t3['tar']:.2f}%"
        out.append(f"  {name:10s} accuracy {100 * a['accuracy_mean']:.2f}% ± {100 * a['accuracy_std']:.2f}%  "
                   f"TAR@FAR=1e-3 {t3s} (within-fold pairs: {tar[name]['impostor_pairs']} impostors)  "
                   f"EER {100 * tar[name]['eer']:.2f}%")
    m = report["model"]
    out.append("  weights " + ", ".join(f"{k}={v:.3f}" for k, v in m["weights"].items()) + f", bias {m['bias']:.3f}")
    for k, t in report["thresholds"].items():
        out.append(f"  threshold {k}: fused score {t['similarity']} at FAR {t['far']:g} "
                   f"({t['impostor_pairs']} impostor pairs)")
    return out
