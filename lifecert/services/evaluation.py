"""Accuracy evaluation of the face pipeline on pair protocols.

Every image goes through the production path: decode (``read_image_file``) →
detect → quality gates (``lifecert.domain.quality.gate`` with ``settings.quality``)
→ align → embed; a pair's score is the cosine similarity of the two L2-normalised
embeddings. As in production, the first image of a pair is the enrolled template (embedded
under ``settings.embedding.enroll_profile``) and the second the probe (``probe_profile``);
every image's per-view embeddings are kept, so any profile pair can be scored from one pass.
Images are processed once per run (embedding cache) and can be spread over a process pool
whose workers each load the engine once.

Failure to enrol (FTE): an image that cannot be decoded, has no detected face or
fails a quality gate. Pairs touching an FTE image are scored two ways:

* ``fte_as_errors`` — every such pair counts as a wrong decision (the operator's view:
  a person who cannot be enrolled or verified is a failure, whatever the label);
* ``enrolled`` — such pairs are left out and the metrics cover the remaining pairs.

A third view, ``detected`` (quality gates ignored, only undecodable/undetected
images are FTE, counted as errors), is what published LFW figures compare to.

Metric helpers (k-fold accuracy, ROC, EER, TAR@FAR, threshold at a target FAR) work
on plain score arrays and are independent of the engine.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from lifecert.domain.errors import ErrorCode, LifecertError
from lifecert.engine.base import fuse_views
from lifecert.engine.pipeline import process_face
from lifecert.engine.views import PROFILES, views_union

if TYPE_CHECKING:
    from lifecert.config import Settings
    from lifecert.engine.base import FaceEngine

FAR_TARGETS = (1e-2, 1e-3, 1e-4)
NOT_ENOUGH = "not enough impostor pairs"


# --------------------------------------------------------------------------------------------
# Pair protocols
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Pair:
    """Two image paths, whether they show the same person, and the fold the pair belongs to."""

    a: Path
    b: Path
    same: bool
    fold: int


def _lfw_path(root: Path, name: str, idx: str) -> Path:
    return root / "images" / name / f"{name}_{int(idx):04d}.jpg"


def read_lfw_pairs(path: Path, root: Path | None = None) -> list[Pair]:
    """LFW View-2 ``pairs.txt``: header ``<folds>\\t<n>``, then per fold ``n`` same-person
    lines ``name i j`` and ``n`` different-person lines ``name1 i name2 j``.
    Images are ``<root>/images/<name>/<name>_<iiii>.jpg`` (root defaults to the file's folder)."""
    root = root or path.parent
    lines = [ln.split() for ln in path.read_text().splitlines() if ln.strip()]
    if not lines or len(lines[0]) != 2:
        raise LifecertError(
            f"{path.name}: first line must be '<folds> <pairs per half-fold>'", code=ErrorCode.BAD_REQUEST
        )
    folds, n = int(lines[0][0]), int(lines[0][1])
    body = lines[1:]
    if len(body) != folds * 2 * n:
        raise LifecertError(
            f"{path.name}: expected {folds * 2 * n} pair lines, found {len(body)}", code=ErrorCode.BAD_REQUEST
        )
    pairs: list[Pair] = []
    for i, parts in enumerate(body):
        fold = i // (2 * n)
        if len(parts) == 3:
            pairs.append(Pair(_lfw_path(root, parts[0], parts[1]), _lfw_path(root, parts[0], parts[2]), True, fold))
        elif len(parts) == 4:
            pairs.append(Pair(_lfw_path(root, parts[0], parts[1]), _lfw_path(root, parts[2], parts[3]), False, fold))
        else:
            raise LifecertError(
                f"{path.name}: line {i + 2} has {len(parts)} fields (3 or 4 expected)", code=ErrorCode.BAD_REQUEST
            )
    return pairs


def read_csv_pairs(path: Path, root: Path | None = None, folds: int = 10) -> list[Pair]:
    """CSV with header ``file_a,file_b,same`` (paths relative to ``root``, default the CSV's
    folder; ``same`` is 1/0 or true/false). Pair ``i`` goes to fold ``i % folds``."""
    root = root or path.parent
    pairs: list[Pair] = []
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"file_a", "file_b", "same"} - set(reader.fieldnames or [])
        if missing:
            raise LifecertError(f"{path.name}: missing column(s) {sorted(missing)}", code=ErrorCode.BAD_REQUEST)
        for i, row in enumerate(reader):
            same = row["same"].strip().lower() in ("1", "true", "yes", "same")
            pairs.append(Pair(root / row["file_a"].strip(), root / row["file_b"].strip(), same, i % folds))
    return pairs


def read_pairs(path: Path, root: Path | None = None, folds: int = 10) -> list[Pair]:
    """Pick the reader by extension: ``.csv`` → CSV, anything else → LFW ``pairs.txt``."""
    if not path.is_file():
        raise LifecertError(f"pairs file not found: {path}", code=ErrorCode.FILE_MISSING)
    if path.suffix.lower() == ".csv":
        return read_csv_pairs(path, root, folds)
    return read_lfw_pairs(path, root)


# --------------------------------------------------------------------------------------------
# Running images through the pipeline
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ImageResult:
    """Outcome of one image. ``views``: (V, D) float32, the L2-normalised embedding of the
    face under each view named in ``view_names`` (None when no face was found).
    ``gate``: the first failing quality gate (an ErrorCode value) or None.
    ``error``: why no face could be embedded (decode error code, NO_FACE) or None."""

    path: str
    error: str | None
    gate: str | None = None
    detector: str | None = None  # "hog" | "cnn" when the engine reports it
    num_faces: int = 0
    views: NDArray[np.float32] | None = None
    view_names: tuple[str, ...] = ()

    @property
    def detected(self) -> bool:
        return self.views is not None

    @property
    def enrolled(self) -> bool:
        return self.views is not None and self.gate is None

    @property
    def embedding(self) -> NDArray[np.float32] | None:
        """The plain (``id`` view) embedding."""
        return None if self.views is None else self.views[self.view_names.index("id")]

    def has_profile(self, profile: str) -> bool:
        return all(n in self.view_names for n in PROFILES[profile])

    def vector(self, profile: str) -> NDArray[np.float32] | None:
        """The embedding under ``profile``: the normalised mean of its views (as
        :meth:`FaceEngine.embed_faces` computes it in production)."""
        if self.views is None:
            return None
        try:
            idx = [self.view_names.index(n) for n in PROFILES[profile]]
        except ValueError:
            raise LifecertError(
                f"{self.path}: profile '{profile}' needs views that were not computed (have {list(self.view_names)})",
                code=ErrorCode.BAD_REQUEST,
            ) from None
        return fuse_views(self.views[idx], len(idx))[0]


def settings_profiles(settings: Settings) -> tuple[str, str]:
    return settings.embedding.enroll_profile, settings.embedding.probe_profile


def process_image(
    engine: FaceEngine,
    path: Path,
    settings: Settings,
    *,
    profiles: Sequence[str] | None = None,
    pick: str = "largest",
) -> ImageResult:
    """Decode → detect → quality gates → align → embed one image, under every view that
    ``profiles`` (default: the settings' enroll and probe profiles) need. As in enrollment,
    a photo with more than one significant face fails with MULTIPLE_FACES (still embedded,
    for the ``detected`` view); ``pick`` chooses which face (see :func:`lifecert.engine.pipeline.pick_face`)."""
    from lifecert.engine.image import read_image_file

    try:
        image = read_image_file(path, max_bytes=settings.images.max_bytes, max_pixels=settings.images.max_pixels)
    except LifecertError as exc:
        return ImageResult(str(path), error=str(exc.code))
    views = views_union(["single", *(profiles or settings_profiles(settings))])  # the plain crop first
    out = process_face(engine, image, settings.quality, views=views, pick=pick, embed_rejects=True)
    if out.face is None:
        return ImageResult(str(path), error=str(out.reason), detector=out.detector)
    return ImageResult(
        str(path),
        error=None,
        gate=None if out.reason is None else str(out.reason),
        detector=out.detector,
        num_faces=out.num_faces,
        views=out.view_embeddings,
        view_names=out.view_names,
    )


_WORKER: dict[str, Any] = {}


def _worker_init(settings: Settings, engine_name: str | None, pick: str, profiles: Sequence[str] | None) -> None:
    from lifecert.engine.dlib_engine import set_thread_count
    from lifecert.engine.loader import load_engine

    set_thread_count(1)
    _WORKER["settings"] = settings
    _WORKER["pick"] = pick
    _WORKER["profiles"] = profiles
    _WORKER["engine"] = load_engine(settings, name=engine_name)


def _worker_run(path: str) -> ImageResult:
    return process_image(
        _WORKER["engine"], Path(path), _WORKER["settings"], pick=_WORKER["pick"], profiles=_WORKER["profiles"]
    )


def embed_images(
    paths: Iterable[Path],
    settings: Settings,
    *,
    workers: int = 2,
    engine: FaceEngine | None = None,
    engine_name: str | None = None,
    pick: str = "largest",
    profiles: Sequence[str] | None = None,
) -> dict[str, ImageResult]:
    """Process each distinct image once. ``workers`` > 1 uses a process pool (each worker
    loads its own engine once); otherwise ``engine`` (or a freshly loaded one) runs in-process."""
    unique = sorted({str(p) for p in paths})
    if workers <= 1 or len(unique) < 8:
        if engine is None:
            from lifecert.engine.loader import load_engine

            engine = load_engine(settings, name=engine_name)
        return {p: process_image(engine, Path(p), settings, pick=pick, profiles=profiles) for p in unique}
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with ProcessPoolExecutor(
        max_workers=workers, initializer=_worker_init, initargs=(settings, engine_name, pick, profiles)
    ) as pool:
        results = list(pool.map(_worker_run, unique, chunksize=16))
    return dict(zip(unique, results, strict=True))


# --------------------------------------------------------------------------------------------
# Metrics on score arrays
# --------------------------------------------------------------------------------------------
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


# --------------------------------------------------------------------------------------------
# Pair-level evaluation
# --------------------------------------------------------------------------------------------
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


def save_cache(path: Path, cache: dict[str, ImageResult]) -> None:
    """Store per-image results (per-view embeddings as one (N, V, D) float32 array) in one ``.npz``.
    All detected images must carry the same views."""
    keys = sorted(cache)
    first = next((r for r in cache.values() if r.views is not None), None)
    names = first.view_names if first is not None else ()
    shape = (len(keys), len(names), first.views.shape[1] if first is not None and first.views is not None else 0)
    emb = np.zeros(shape, np.float32)
    has = np.zeros(len(keys), bool)
    for i, k in enumerate(keys):
        r = cache[k]
        if r.views is not None:
            if r.view_names != names:
                raise ValueError(f"{k}: views {r.view_names} differ from {names}")
            emb[i], has[i] = r.views, True
    meta = np.array(
        [
            [k, r.error or "", r.gate or "", r.detector or "", str(r.num_faces)]
            for k, r in ((k, cache[k]) for k in keys)
        ],
        dtype=object,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, views=emb, has=has, view_names=np.array(names, dtype=str), meta=meta.astype(str))


def load_cache(path: Path) -> dict[str, ImageResult]:
    with np.load(path, allow_pickle=False) as z:  # each z[...] access decompresses the array anew: read once
        names = tuple(str(n) for n in z["view_names"].tolist())
        views, has, meta = z["views"], z["has"], z["meta"].tolist()
    out: dict[str, ImageResult] = {}
    for i, (k, err, gt, det, nf) in enumerate(meta):
        out[str(k)] = ImageResult(
            str(k), error=str(err) or None, gate=str(gt) or None, detector=str(det) or None, num_faces=int(nf),
            views=views[i].copy() if has[i] else None, view_names=names if has[i] else (),
        )
    return out


# --------------------------------------------------------------------------------------------
# A whole protocol run (shared by `lifecert eval` and benchmarks/accuracy.py)
# --------------------------------------------------------------------------------------------
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
    pkg = Path(__file__).resolve().parents[1]
    # the files whose code decides an image's result (others' edits elsewhere keep the cache)
    for rel in (
        "engine/base.py",
        "engine/geometry.py",
        "engine/image.py",
        "engine/views.py",
        "domain/quality.py",
        f"engine/{engine_name}_engine.py",
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
    calib: dict[str, Any] = {}
    for key, far, sides, imp_pool in (("verify", target_far, (enroll, probe), imp_all),
                                      ("duplicate", duplicate_far, (enroll, enroll), dup_all)):
        use_protocol = sides == (enroll, probe) and len(imp_protocol) >= 10 * min_impostors_for(far)
        imp = imp_protocol if use_protocol else imp_pool
        t = threshold_at_far(imp, far)
        entry: dict[str, Any] = {
            "far": far,
            "enroll_profile": sides[0],
            "probe_profile": sides[1],
            "similarity": None if t is None else round(t, 4),
            "impostor_pairs": len(imp),
            "impostor_source": "protocol impostor pairs"
            if use_protocol
            else "all cross-identity pairs among the protocol's detected images",
            "protocol_impostor_pairs": len(imp_protocol),
            "protocol_threshold": threshold_at_far(imp_protocol, far),
        }
        if t is not None:
            entry["tar_protocol_genuine"] = float((gen_protocol >= t).mean()) if len(gen_protocol) else None
            entry["tar_all_genuine"] = float((gen_all >= t).mean()) if len(gen_all) else None
            entry["far_protocol_impostors"] = float((imp_protocol >= t).mean()) if len(imp_protocol) else None
            entry["false_accepts_allowed"] = math.floor(far * len(imp) + 1e-9)
            entry["far_upper_95"] = rule_of_three_upper(len(imp), entry["false_accepts_allowed"])
        calib[key] = entry

    info = model_info(name, settings.manifest_path)
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


def write_manifest_thresholds(
    manifest: Path, engine: str, thresholds: dict[str, dict[str, Any]], dataset: str, date: str
) -> None:
    """Rewrite ``[engines.<engine>.thresholds.<name>]`` tables in place (other text kept).
    ``thresholds``: name → {"similarity": float, "far": float, "note": optional str,
    "enroll_profile"/"probe_profile": optional str}."""
    lines = manifest.read_text().splitlines()
    for name, t in thresholds.items():
        header = f"[engines.{engine}.thresholds.{name}]"
        body = []
        if t.get("note"):
            body.append(f"# {t['note']}")
        body += [
            f"similarity = {t['similarity']:.4f}",
            f"far = {t['far']:g}",
            f'dataset = "{dataset}"',
            f'date = "{date}"',
        ]
        body += [f'{k} = "{t[k]}"' for k in ("enroll_profile", "probe_profile") if t.get(k)]
        if header in lines:
            i = lines.index(header)
            j = i + 1
            while j < len(lines) and not lines[j].startswith("["):
                j += 1
            while j > i + 1 and not lines[j - 1].strip():
                j -= 1  # keep the blank line(s) before the next table
            lines[i + 1 : j] = body
        else:
            lines += ["", header, *body]
    manifest.write_text("\n".join(lines) + "\n")
