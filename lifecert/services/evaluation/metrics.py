"""Metrics: on plain score arrays (k-fold accuracy, ROC, EER, TAR@FAR, threshold at a FAR,
rule-of-three bounds; independent of any engine) and on scored pairs of a protocol
(per FTE view, failure to enrol, all cross-identity pairs)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lifecert.services.evaluation.embedding import ImageResult
from lifecert.services.evaluation.protocol import Pair

FAR_TARGETS = (1e-2, 1e-3, 1e-4)
NOT_ENOUGH = "not enough impostor pairs"


def candidate_thresholds(scores: NDArray[np.floating]) -> NDArray[np.float64]:
    """Midpoints between sorted distinct scores, plus one below and one above all of them."""
    u = np.unique(np.asarray(scores, dtype=np.float64))
    if u.size == 0:
        return np.array([0.0])
    mids = (u[:-1] + u[1:]) / 2
    return np.concatenate([[u[0] - 1e-6], mids, [u[-1] + 1e-6]])


def best_threshold(scores: NDArray[np.floating], labels: NDArray[np.bool_]) -> float:
    """Threshold maximising accuracy of ``score >= t`` ⇒ same; ties → the middle of the best range."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=bool)
    t = candidate_thresholds(s)
    order = np.argsort(s)
    ss, yy = s[order], y[order]
    # accepted(t) = scores >= t. Count correct = genuine above + impostors below.
    idx = np.searchsorted(ss, t, side="left")
    gen_below = np.concatenate([[0], np.cumsum(yy)])[idx]
    imp_below = np.concatenate([[0], np.cumsum(~yy)])[idx]
    correct = (yy.sum() - gen_below) + imp_below
    best = np.flatnonzero(correct == correct.max())
    return float((t[best[0]] + t[best[-1]]) / 2)


@dataclass(frozen=True, slots=True)
class KFoldResult:
    mean: float
    std: float
    fold_accuracy: list[float]
    fold_threshold: list[float]


def kfold_accuracy(
    scores: NDArray[np.floating],
    labels: NDArray[np.bool_],
    folds: NDArray[np.integer],
    forced_wrong: NDArray[np.bool_] | None = None,
) -> KFoldResult:
    """Leave-one-fold-out: the threshold is chosen on the other folds, accuracy measured on
    the held-out fold. ``forced_wrong`` marks pairs that count as errors whatever their
    score (FTE pairs in the ``fte_as_errors`` view); they are excluded from threshold choice."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=bool)
    f = np.asarray(folds)
    bad = np.zeros_like(y) if forced_wrong is None else np.asarray(forced_wrong, dtype=bool)
    accs: list[float] = []
    ths: list[float] = []
    for k in np.unique(f):
        train = (f != k) & ~bad
        test = f == k
        t = best_threshold(s[train], y[train])
        ok = ((s[test] >= t) == y[test]) & ~bad[test]
        accs.append(float(ok.mean()) if test.any() else float("nan"))
        ths.append(t)
    a = np.array(accs)
    return KFoldResult(float(np.nanmean(a)), float(np.nanstd(a)), accs, ths)


@dataclass(frozen=True, slots=True)
class Roc:
    """Operating points of ``score >= threshold``, thresholds descending; FAR/TAR in [0, 1]."""

    threshold: NDArray[np.float64]
    far: NDArray[np.float64]
    tar: NDArray[np.float64]


def roc(genuine: NDArray[np.floating], impostor: NDArray[np.floating]) -> Roc:
    g = np.sort(np.asarray(genuine, dtype=np.float64))
    i = np.sort(np.asarray(impostor, dtype=np.float64))
    t = candidate_thresholds(np.concatenate([g, i]))[::-1]
    tar = 1.0 - np.searchsorted(g, t, side="left") / max(len(g), 1)
    far = 1.0 - np.searchsorted(i, t, side="left") / max(len(i), 1)
    return Roc(t, far, tar)


def eer(genuine: NDArray[np.floating], impostor: NDArray[np.floating]) -> tuple[float, float]:
    """(equal error rate, threshold): where FAR crosses FRR = 1 - TAR (linear interpolation)."""
    r = roc(genuine, impostor)
    frr = 1.0 - r.tar
    d = r.far - frr  # thresholds descending: d goes from negative (strict) to positive (lax)
    j = int(np.argmax(d >= 0))
    if j == 0:
        return float(r.far[0]), float(r.threshold[0])
    d0, d1 = d[j - 1], d[j]
    w = 0.0 if d1 == d0 else -d0 / (d1 - d0)
    rate = (r.far[j - 1] + w * (r.far[j] - r.far[j - 1]) + frr[j - 1] + w * (frr[j] - frr[j - 1])) / 2
    th = r.threshold[j - 1] + w * (r.threshold[j] - r.threshold[j - 1])
    return float(rate), float(th)


def min_impostors_for(far: float) -> int:
    """Fewest impostor pairs that can express a FAR of ``far`` at all (one false accept)."""
    return math.ceil(1.0 / far - 1e-9)


def threshold_at_far(impostor: NDArray[np.floating], far: float) -> float | None:
    """Lowest threshold t with FAR(score >= t) <= ``far``; None when the impostor count is
    below ``1/far`` (the FAR cannot be measured). With ``n`` impostors, at most
    ``floor(far * n)`` of them may score >= t."""
    i = np.sort(np.asarray(impostor, dtype=np.float64))[::-1]
    n = len(i)
    if n < min_impostors_for(far):
        return None
    allowed = math.floor(far * n + 1e-9)
    if allowed >= n:
        return float(i[-1])
    # threshold just above the (allowed+1)-th highest impostor score
    return float(np.nextafter(i[allowed], np.inf))


def tar_at_far(genuine: NDArray[np.floating], impostor: NDArray[np.floating], far: float) -> dict[str, Any]:
    """TAR at a FAR target, with the threshold used and the impostor count behind it,
    or ``{"tar": None, "note": "not enough impostor pairs", ...}``."""
    n = len(impostor)
    t = threshold_at_far(impostor, far)
    if t is None:
        return {
            "far": far,
            "tar": None,
            "threshold": None,
            "impostors": n,
            "note": f"{NOT_ENOUGH} ({n} < {min_impostors_for(far)})",
        }
    g = np.asarray(genuine, dtype=np.float64)
    achieved = float((np.asarray(impostor) >= t).mean())
    return {
        "far": far,
        "tar": float((g >= t).mean()),
        "threshold": t,
        "impostors": n,
        "achieved_far": achieved,
        "false_accepts_allowed": math.floor(far * n + 1e-9),
        "far_upper_95": rule_of_three_upper(n, math.floor(far * n + 1e-9)),
    }


def rule_of_three_upper(n: int, k: int) -> float:
    """Approximate one-sided 95% upper bound on a rate with ``k`` events in ``n`` trials
    (rule of three for k = 0; Wilson-style bound otherwise)."""
    if n == 0:
        return 1.0
    if k == 0:
        return 3.0 / n
    p = k / n
    z = 1.645
    den = 1 + z * z / n
    centre = p + z * z / (2 * n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return float((centre + half) / den)


@dataclass
class PairScores:
    """Scores of pairs whose two images were embedded; ``status`` per pair is
    "ok", "gate" (an image failed a quality gate) or "undetected" (decode/no face)."""

    scores: NDArray[np.float64]
    labels: NDArray[np.bool_]
    folds: NDArray[np.int64]
    status: list[str] = field(default_factory=list)


def score_pairs(
    pairs: Sequence[Pair], cache: dict[str, ImageResult], *, enroll: str = "single", probe: str = "single"
) -> PairScores:
    """Cosine scores of side a under the ``enroll`` profile against side b under ``probe``."""
    scores, labels, folds, status = [], [], [], []
    for p in pairs:
        ra, rb = cache[str(p.a)], cache[str(p.b)]
        va = ra.vector(enroll)
        vb = rb.vector(probe)
        if va is None or vb is None:
            status.append("undetected")
            scores.append(float("nan"))
        else:
            status.append("ok" if ra.enrolled and rb.enrolled else "gate")
            scores.append(float(np.dot(va, vb)))
        labels.append(p.same)
        folds.append(p.fold)
    return PairScores(np.array(scores), np.array(labels, dtype=bool), np.array(folds, dtype=np.int64), status)


def view_metrics(ps: PairScores, view: str) -> dict[str, Any]:
    """Metrics for one way of treating FTE pairs: "enrolled", "fte_as_errors" or "detected"."""
    st = np.array(ps.status)
    if view == "enrolled":
        keep = st == "ok"
        bad = np.zeros(int(keep.sum()), dtype=bool)
    elif view == "fte_as_errors":
        keep = np.ones(len(st), dtype=bool)
        bad = st != "ok"
    elif view == "detected":
        keep = np.ones(len(st), dtype=bool)
        bad = st == "undetected"
    else:  # pragma: no cover - programming error
        raise ValueError(view)
    s, y, f = ps.scores[keep], ps.labels[keep], ps.folds[keep]
    s = np.where(np.isnan(s), -2.0, s)  # never used for decisions: such pairs are in ``bad``
    kf = kfold_accuracy(s, y, f, bad)
    good = ~bad
    gen, imp = s[good & y], s[good & ~y]
    out: dict[str, Any] = {
        "pairs": int(keep.sum()),
        "pairs_forced_wrong": int(bad.sum()),
        "genuine": len(gen),
        "impostor": len(imp),
        "accuracy_mean": kf.mean,
        "accuracy_std": kf.std,
        "fold_accuracy": kf.fold_accuracy,
        "fold_threshold": kf.fold_threshold,
    }
    if len(gen) and len(imp):
        e, et = eer(gen, imp)
        out["eer"] = e
        out["eer_threshold"] = et
        out["tar_at_far"] = [tar_at_far(gen, imp, far) for far in FAR_TARGETS]
    return out


def fte_summary(cache: dict[str, ImageResult]) -> dict[str, Any]:
    n = len(cache)
    reasons: dict[str, int] = {}
    for r in cache.values():
        why = r.error or r.gate
        if why:
            reasons[why] = reasons.get(why, 0) + 1
    undetected = sum(1 for r in cache.values() if not r.detected)
    gated = sum(1 for r in cache.values() if r.detected and r.gate)
    detectors: dict[str, int] = {}
    for r in cache.values():
        if r.detector:
            detectors[r.detector] = detectors.get(r.detector, 0) + 1
    return {
        "images": n,
        "undetected": undetected,
        "quality_gate_failures": gated,
        "fte": undetected + gated,
        "fte_rate": (undetected + gated) / n if n else 0.0,
        "undetected_rate": undetected / n if n else 0.0,
        "reasons": dict(sorted(reasons.items())),
        "detector_used": dict(sorted(detectors.items())),
        "multiple_faces_found": sum(1 for r in cache.values() if r.num_faces > 1),
    }


def evaluate(
    pairs: Sequence[Pair], cache: dict[str, ImageResult], *, enroll: str = "single", probe: str = "single"
) -> dict[str, Any]:
    """All metrics for one (enroll, probe) profile pair, in each FTE view."""
    ps = score_pairs(pairs, cache, enroll=enroll, probe=probe)
    return {
        "enroll_profile": enroll,
        "probe_profile": probe,
        "views": {v: view_metrics(ps, v) for v in ("detected", "enrolled", "fte_as_errors")},
    }


def impostor_scores_all(
    cache: dict[str, ImageResult],
    identity_of: dict[str, str],
    *,
    enroll: str = "single",
    probe: str = "single",
    enrolled_only: bool = True,
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """(genuine, impostor) cosine scores of ALL image pairs among the cached images (each
    unordered pair once: the first image under ``enroll``, the second under ``probe``),
    for calibrating low FARs beyond what a protocol's few impostor pairs allow.
    ``identity_of`` maps an image path to its identity label. Memory: O(n²) floats."""
    paths = [p for p, r in sorted(cache.items()) if (r.enrolled if enrolled_only else r.detected) and p in identity_of]
    if len(paths) < 2:
        return np.zeros(0, np.float32), np.zeros(0, np.float32)
    enr = np.stack([cache[p].vector(enroll) for p in paths])  # type: ignore[misc]
    prb = enr if probe == enroll else np.stack([cache[p].vector(probe) for p in paths])  # type: ignore[misc]
    _, codes = np.unique(np.array([identity_of[p] for p in paths]), return_inverse=True)
    sims = enr @ prb.T
    iu = np.triu_indices(len(paths), k=1)
    same = codes[iu[0]] == codes[iu[1]]
    s = sims[iu]
    return s[same].astype(np.float32), s[~same].astype(np.float32)



def quality_bands(
    pairs: Sequence[Pair], cache: dict[str, ImageResult], threshold: float, *, enroll: str = "single",
    probe: str = "single",
) -> dict[str, dict[str, Any]]:
    """Error rates per quality band at a fixed threshold (e.g. the calibrated verify threshold).

    A pair's band is ``ok`` when both images pass the enrollment quality gates, else the gate the
    first failing image tripped (POSE_TOO_LARGE, EYES_CLOSED, MULTIPLE_FACES, ...), or
    ``undetected``. Per band: genuine pairs and their false-reject rate, impostor pairs and their
    false-accept rate. (The gates reject these photos in production; the bands show what the
    recogniser would do with them.)"""
    ps = score_pairs(pairs, cache, enroll=enroll, probe=probe)
    bands: dict[str, dict[str, Any]] = {}
    for p, s, same in zip(pairs, ps.scores, ps.labels, strict=True):
        ra, rb = cache[str(p.a)], cache[str(p.b)]
        if not (ra.detected and rb.detected):
            band = "undetected"
        elif ra.enrolled and rb.enrolled:
            band = "ok"
        else:
            band = str(ra.gate if ra.gate is not None else rb.gate)
        b = bands.setdefault(band, {"genuine": 0, "false_rejects": 0, "impostor": 0, "false_accepts": 0})
        if same:
            b["genuine"] += 1
            b["false_rejects"] += int(not (s >= threshold))
        else:
            b["impostor"] += 1
            b["false_accepts"] += int(bool(s >= threshold))
    for b in bands.values():
        b["frr"] = b["false_rejects"] / b["genuine"] if b["genuine"] else None
        b["far"] = b["false_accepts"] / b["impostor"] if b["impostor"] else None
    return dict(sorted(bands.items()))
