"""Score-level fusion of face models: one decision from the cosine similarities of several
embedding spaces (e.g. dlib's 128-d and EdgeFace's 512-d).

The fused score is linear in the models' cosine similarities ``sᵢ``: ``bias + Σ wᵢ·sᵢ`` (same
person → higher). Two fits: :func:`fit_znorm` (default; each similarity standardised by its own
impostor mean and deviation, then averaged — a z-normalised sum) and :func:`fit_logistic` (log-odds
of a logistic model). Either way each model's scale is learned from labelled pairs, not guessed; its
own thresholds (verify, duplicate) are calibrated at a stated FAR on impostor pairs like any
single model's, and live with the weights in ``models/manifest.toml`` ``[fusion.NAME]``.

Pure functions on plain data: no I/O, no engines.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from lifecert.domain.errors import ErrorCode, LifecertError


@dataclass(frozen=True, slots=True)
class FusionModel:
    """``keys``: the model keys (``engine:model:version``) whose similarities are fused, in the
    order of ``weights``; ``thresholds``: name (verify, duplicate) → fused score."""

    name: str
    keys: tuple[str, ...]
    bias: float
    weights: tuple[float, ...]
    thresholds: dict[str, float] = field(default_factory=dict)

    def score(self, sims: Mapping[str, float]) -> float:
        """Fused score (log-odds) of one comparison; every key must be present."""
        missing = [k for k in self.keys if k not in sims]
        if missing:
            raise LifecertError(f"fusion '{self.name}' needs scores of {', '.join(missing)}",
                                code=ErrorCode.CONFIG_ERROR)
        return float(self.bias + sum(w * float(sims[k]) for k, w in zip(self.keys, self.weights, strict=True)))

    def scores(self, sims: NDArray[np.floating]) -> NDArray[np.float64]:
        """Fused scores of (..., K) similarity arrays (last axis in ``keys`` order)."""
        return self.bias + np.asarray(sims, dtype=np.float64) @ np.asarray(self.weights, dtype=np.float64)

    def threshold(self, name: str = "verify") -> float:
        if name not in self.thresholds:
            raise LifecertError(f"fusion '{self.name}' has no '{name}' threshold", code=ErrorCode.CONFIG_ERROR)
        return self.thresholds[name]

    def accepts(self, sims: Mapping[str, float], name: str = "verify") -> bool:
        return self.score(sims) >= self.threshold(name)


def fit_logistic(
    x: NDArray[np.floating], y: NDArray[np.bool_], *, ridge: float = 1e-3, iterations: int = 50
) -> tuple[float, NDArray[np.float64]]:
    """Logistic regression by Newton's method (IRLS) with a small ridge on the weights (not the
    bias) so separable data still converge. ``x``: (N, K) similarities, ``y``: (N,) same-person.
    Returns (bias, (K,) weights). Deterministic; raises BAD_REQUEST without both classes."""
    xs = np.asarray(x, dtype=np.float64)
    ys = np.asarray(y, dtype=np.float64)
    if xs.ndim != 2 or len(xs) != len(ys) or len(xs) == 0:
        raise LifecertError("fit_logistic needs (N, K) scores and N labels", code=ErrorCode.BAD_REQUEST)
    if ys.min() == ys.max():
        raise LifecertError("fit_logistic needs genuine and impostor pairs", code=ErrorCode.BAD_REQUEST)
    a = np.hstack([np.ones((len(xs), 1)), xs])
    beta = np.zeros(a.shape[1])
    reg = np.eye(a.shape[1]) * ridge * len(xs)
    reg[0, 0] = 0.0
    for _ in range(iterations):
        z = np.clip(a @ beta, -30, 30)
        p = 1.0 / (1.0 + np.exp(-z))
        w = p * (1 - p)
        grad = a.T @ (p - ys) + reg @ beta
        hess = (a * w[:, None]).T @ a + reg + 1e-9 * np.eye(a.shape[1])
        step = np.linalg.solve(hess, grad)
        beta -= step
        if float(np.abs(step).max()) < 1e-10:
            break
    return float(beta[0]), beta[1:].copy()


def fit_znorm(x: NDArray[np.floating], y: NDArray[np.bool_]) -> tuple[float, NDArray[np.float64]]:
    """Equal-weight z-normalised sum: each model's similarity standardised by the mean and standard
    deviation of its IMPOSTOR scores, then averaged. As a linear model: weights 1/(K·σᵢ), bias
    −Σ μᵢ/(K·σᵢ). No weight is tuned, only the impostor statistics are estimated."""
    xs = np.asarray(x, dtype=np.float64)
    imp = xs[~np.asarray(y, dtype=bool)]
    if len(imp) < 2:
        raise LifecertError("fit_znorm needs impostor pairs", code=ErrorCode.BAD_REQUEST)
    mu, sd = imp.mean(axis=0), np.maximum(imp.std(axis=0), 1e-9)
    k = xs.shape[1]
    return float(-(mu / (k * sd)).sum()), 1.0 / (k * sd)


FITS = {"znorm": fit_znorm, "logistic": fit_logistic}


def from_manifest(name: str, raw: Mapping[str, object], keys_of: Sequence[str]) -> FusionModel:
    """A :class:`FusionModel` from a manifest ``[fusion.NAME]`` table: ``models`` (engine names),
    ``bias``, ``weights`` and ``[fusion.NAME.thresholds.X] similarity``. ``keys_of``: the model key
    of each engine named in ``models`` (same order)."""
    try:
        weights = tuple(float(w) for w in raw["weights"])  # type: ignore[attr-defined]
        th = {k: float(v["similarity"]) for k, v in dict(raw.get("thresholds", {})).items()}  # type: ignore[call-overload]
        model = FusionModel(name=name, keys=tuple(keys_of), bias=float(raw["bias"]),  # type: ignore[arg-type]
                            weights=weights, thresholds=th)
    except (KeyError, TypeError, ValueError) as exc:
        raise LifecertError(f"manifest fusion '{name}' is malformed: {exc}", code=ErrorCode.CONFIG_ERROR) from exc
    if len(model.weights) != len(model.keys):
        raise LifecertError(f"manifest fusion '{name}' has {len(model.weights)} weights for {len(model.keys)} models",
                            code=ErrorCode.CONFIG_ERROR)
    return model
