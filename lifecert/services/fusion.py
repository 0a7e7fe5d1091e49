"""Fused scores of two face engines: the configured engine's cosine and a second engine's
(``settings.fusion_engine``, EdgeFace) combined by the manifest's calibrated model
(``[fusion.<primary>_<second>]``, see :mod:`lifecert.domain.fusion` and
``benchmarks/accuracy.py --engine dlib+edgeface``), for 1:1 and for 1:N.

Active when ``settings.fusion_engine`` names a second engine, the manifest has the fusion and that
engine's packs are installed (:func:`fusion_spec` returns None otherwise and says why once in the
log). The second embedding always reuses the primary engine's detection and five points (no second
detector). Enrollment writes the second engine's template beside the primary's, embedded under
``settings.embedding.fusion_enroll_profile`` (the profile the fusion is calibrated for).

Fallbacks: a pensioner without a template of the second model is scored by the primary engine
alone, against the primary engine's thresholds (``lifecert templates rebuild --engine edgeface``
adds the missing templates).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray
from sqlalchemy.orm import Session

from lifecert.domain.errors import LifecertError
from lifecert.engine.base import FaceEngine, l2_normalize
from lifecert.engine.fusion import FusionSpec, fusion_spec, load_second_engine, warn_once
from lifecert.engine.types import Face, ImageBGR
from lifecert.services.context import AppContext
from lifecert.services.templates import match_pensioner

__all__ = ["FusedMatch", "FusedScorer", "FusionSpec", "OtherMatch", "fused_others", "fusion_spec"]


@dataclass(frozen=True, slots=True)
class OtherMatch:
    """The best 1:N match among OTHER pensioners: whose, its score and the threshold that score is
    judged by (fused score and the fusion's threshold, or the primary cosine and the primary
    model's threshold when either side lacks a second-model template)."""

    owner: int | None
    score: float
    threshold: float
    fused: bool


class _Searchable(Protocol):
    def best_by_owner(self, vec: NDArray[np.float32], owner: int | None, k: int = 20) -> dict[int, float]: ...

    def scores_of(self, vec: NDArray[np.float32], owners: set[int]) -> dict[int, float]: ...


def fused_others(
    spec: FusionSpec, primary: _Searchable, second: _Searchable, v1: NDArray[np.float32],
    v2: NDArray[np.float32] | None, owner: int | None, *, threshold: str, primary_threshold: float, k: int = 20,
) -> list[OtherMatch]:
    """Every other pensioner among either engine's ``k`` nearest, each with its fused score (both
    engines' exact best cosines) or, lacking a template of the second model, its primary cosine.
    ``threshold``: the fusion threshold name (``duplicate`` at enrollment, ``verify`` for the
    fraud check); ``primary_threshold``: the primary model's threshold of the same meaning.
    Best first by margin over its own threshold."""
    s1 = primary.best_by_owner(v1, owner, k)
    s2 = second.best_by_owner(v2, owner, k) if v2 is not None else {}
    cands = set(s1) | set(s2)
    s1 |= primary.scores_of(v1, cands - set(s1))
    if v2 is not None:
        s2 |= second.scores_of(v2, cands - set(s2))
    t_fused = spec.model.threshold(threshold)
    out = []
    for pid in cands:
        if pid not in s1:  # a second-model template without a primary one: not comparable, skip
            continue
        if pid in s2:
            out.append(OtherMatch(pid, spec.fused(s1[pid], s2[pid]), t_fused, True))
        else:
            out.append(OtherMatch(pid, s1[pid], primary_threshold, False))
    return sorted(out, key=lambda m: m.score - m.threshold, reverse=True)


@dataclass(frozen=True, slots=True)
class FusedMatch:
    score: float
    threshold: float
    second_match: float
    second_template_id: int
    model: str
    # 1:N among other pensioners (fraud check): fused scores, and the primary cosines of those
    # without a template of the second model (judged by the primary threshold)
    other_fused: tuple[float, ...] = ()
    other_primary: tuple[float, ...] = ()
    others: tuple[dict[str, Any], ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"score": round(self.score, 4), "threshold": self.threshold, "second_match": round(self.second_match, 4),
                "second_template_id": self.second_template_id, "model": self.model,
                "other_fused": [round(x, 4) for x in self.other_fused],
                "other_primary": [round(x, 4) for x in self.other_primary], "one_to_n": list(self.others)}


class FusedScorer:
    """Loads the second engine once (thread-safe: EdgeFace keeps no per-call state)."""

    def __init__(self, ctx: AppContext, spec: FusionSpec) -> None:
        self.ctx = ctx
        self.spec = spec
        self.second = spec.second
        self.model = spec.model
        self._engine: FaceEngine | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, ctx: AppContext) -> FusedScorer | None:
        spec = fusion_spec(ctx.settings)
        if spec is None:
            return None
        scorer = cls(ctx, spec)
        try:
            scorer.engine()  # packs present and verified, or None below
        except LifecertError as exc:
            warn_once(spec.name + "/load", f"fusion {spec.name} off: {exc.message}")
            return None
        return scorer

    def engine(self) -> FaceEngine:
        with self._lock:
            if self._engine is None:
                self._engine = load_second_engine(self.ctx.settings, self.spec)
            return self._engine

    def one_to_one(
        self, db: Session, pensioner_id: int, primary_score: float, faces: Sequence[tuple[ImageBGR, Face]],
        weights: NDArray[np.floating] | None = None, *, with_refresh: bool = False,
        primary_probe: NDArray[np.float32] | None = None,
    ) -> FusedMatch | None:
        """Fused score of the session's best faces against the pensioner; None when the pensioner
        has no template of the second model. With ``primary_probe`` (the primary engine's fused
        probe) also the fused 1:N scores of other pensioners (both engines' indexes)."""
        eng = self.engine()
        key = eng.info.key
        embs = eng.embed_faces(list(faces), self.ctx.settings.embedding.probe_profile)
        w = np.ones(len(embs), dtype=np.float32) if weights is None else np.asarray(weights, dtype=np.float32)
        probe = l2_normalize((embs * w[:, None]).sum(axis=0))
        try:
            matches = match_pensioner(self.ctx, db, pensioner_id, probe, model_key=key)
        except LifecertError:
            return None
        score = self.spec.fused(primary_score, matches[0].score)
        use_refresh = (with_refresh or any(m.kind == "refresh" for m in matches)) and \
            "verify_refresh" in self.model.thresholds
        thr = self.model.threshold("verify_refresh" if use_refresh else "verify")
        m = FusedMatch(score, thr, matches[0].score, matches[0].template_id, self.model.name)
        if primary_probe is None:
            return m
        others = fused_others(
            self.spec, self.ctx.index.get(db, self.spec.primary_key), self.ctx.index.get(db, key), primary_probe,
            probe, pensioner_id, threshold="verify", primary_threshold=self.ctx.model.threshold("verify"), k=10,
        )[:5]
        return replace(
            m, other_fused=tuple(o.score for o in others if o.fused),
            other_primary=tuple(o.score for o in others if not o.fused),
            others=tuple({"pensioner_id": o.owner, "score": round(o.score, 4), "fused": o.fused} for o in others),
        )
