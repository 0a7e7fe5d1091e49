"""Fused 1:1 verification: the configured engine's score and a second engine's score combined
by the manifest's calibrated logistic model (``[fusion.<primary>_<second>]``, see
:mod:`lifecert.domain.fusion` and ``benchmarks/accuracy.py --engine dlib+edgeface``).

Active when ``settings.fusion_engine`` names a second engine, the manifest has the fusion, and
that engine's packs are installed (:meth:`FusedScorer.from_settings` returns None otherwise and
says why once in the log). The second embedding reuses the primary engine's detection and five
points (no second detector). A pensioner without a template of the second model is verified by
the primary engine alone (``lifecert templates rebuild --engine edgeface`` adds them).

1:N duplicate and fraud searches still use the primary engine's index (not fused yet).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy.orm import Session

from lifecert.domain.errors import LifecertError
from lifecert.domain.fusion import FusionModel, from_manifest
from lifecert.engine import packs
from lifecert.engine.base import FaceEngine, l2_normalize
from lifecert.engine.manifest import load_manifest, model_info
from lifecert.engine.types import Face, ImageBGR
from lifecert.services.context import AppContext
from lifecert.services.templates import match_pensioner

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FusedMatch:
    score: float
    threshold: float
    second_match: float
    second_template_id: int
    model: str

    def as_dict(self) -> dict[str, Any]:
        return {"score": round(self.score, 4), "threshold": self.threshold, "second_match": round(self.second_match, 4),
                "second_template_id": self.second_template_id, "model": self.model}


class FusedScorer:
    """Loads the second engine once (thread-safe: EdgeFace keeps no per-call state)."""

    def __init__(self, ctx: AppContext, second: str, model: FusionModel) -> None:
        self.ctx = ctx
        self.second = second
        self.model = model
        self._engine: FaceEngine | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, ctx: AppContext) -> FusedScorer | None:
        s = ctx.settings
        second = s.fusion_engine
        if not second or second == s.engine:
            return None
        name = f"{s.engine}_{second}"
        wanted = load_manifest(s.manifest_path).get("engines", {}).get(second, {})
        if not all(packs.is_installed(s, str(wanted.get(k))) for k in ("pack", "detector_pack") if wanted.get(k)):
            return None  # the second engine is not installed: nothing to fuse, nothing to warn about
        raw = load_manifest(s.manifest_path).get("fusion", {}).get(name)
        if raw is None:
            log.warning("fusion %s not calibrated in the manifest: verifying with %s alone", name, s.engine)
            return None
        try:
            keys = [model_info(s.engine, s.manifest_path).key, model_info(second, s.manifest_path).key]
            model = from_manifest(name, raw, keys)
            scorer = cls(ctx, second, model)
            scorer.engine()  # packs present and verified, or None below
        except LifecertError as exc:
            log.warning("fusion %s off: %s", name, exc.message)
            return None
        return scorer

    def engine(self) -> FaceEngine:
        with self._lock:
            if self._engine is None:
                from lifecert.engine.loader import load_engine

                self._engine = load_engine(self.ctx.settings, self.second)
            return self._engine

    def one_to_one(
        self, db: Session, pensioner_id: int, primary_score: float, faces: Sequence[tuple[ImageBGR, Face]],
        weights: NDArray[np.floating] | None = None, *, with_refresh: bool = False,
    ) -> FusedMatch | None:
        """Fused score of the session's best faces against the pensioner; None when the pensioner
        has no template of the second model."""
        eng = self.engine()
        key = eng.info.key
        embs = eng.embed_faces(list(faces), self.ctx.settings.embedding.probe_profile)
        w = np.ones(len(embs), dtype=np.float32) if weights is None else np.asarray(weights, dtype=np.float32)
        probe = l2_normalize((embs * w[:, None]).sum(axis=0))
        try:
            matches = match_pensioner(self.ctx, db, pensioner_id, probe, model_key=key)
        except LifecertError:
            return None
        score = self.model.score({self.model.keys[0]: primary_score, key: matches[0].score})
        use_refresh = (with_refresh or any(m.kind == "refresh" for m in matches)) and \
            "verify_refresh" in self.model.thresholds
        thr = self.model.threshold("verify_refresh" if use_refresh else "verify")
        return FusedMatch(score, thr, matches[0].score, matches[0].template_id, self.model.name)
