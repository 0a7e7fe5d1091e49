"""faiss index over the active templates of one model: a rebuildable cache of the database.

Exact inner-product search (IndexFlatIP) up to ``exact_max`` vectors; beyond it an
IVF index (IndexIVFFlat, inner product, ~4*sqrt(N) lists, ``nprobe`` configurable).
The index is saved next to the database with a JSON stamp (count and newest
template id/time for the model); :meth:`IndexManager.is_stale` compares the stamp
with the database, so a changed template set is never searched with an old index.
"""

from __future__ import annotations

import json
import math
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np
from numpy.typing import NDArray
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lifecert.storage.crypto import Cipher
from lifecert.storage.models import FaceTemplate


@dataclass(frozen=True, slots=True)
class Hit:
    template_id: int
    pensioner_id: int
    score: float


def _stamp(session: Session, model_key: str) -> dict[str, object]:
    row = session.execute(
        select(func.count(FaceTemplate.id), func.max(FaceTemplate.id), func.max(FaceTemplate.replaced_at))
        .where(FaceTemplate.model_key == model_key, FaceTemplate.active.is_(True))
    ).one()
    return {"model_key": model_key, "count": int(row[0]), "max_id": row[1], "max_replaced": str(row[2])}


class VectorIndex:
    def __init__(self, dim: int, index: faiss.Index, ids: NDArray[np.int64], owners: NDArray[np.int64]) -> None:
        self.dim = dim
        self.index = index
        self.template_ids = ids
        self.pensioner_ids = owners

    @property
    def size(self) -> int:
        return int(self.index.ntotal)

    @classmethod
    def build(
        cls, vectors: NDArray[np.float32], template_ids: NDArray[np.int64], pensioner_ids: NDArray[np.int64],
        *, exact_max: int = 200_000, nprobe: int = 32,
    ) -> VectorIndex:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        n, dim = vectors.shape
        if n <= exact_max:
            index: faiss.Index = faiss.IndexFlatIP(dim)
        else:
            nlist = max(16, int(4 * math.sqrt(n)))
            quant = faiss.IndexFlatIP(dim)
            ivf = faiss.IndexIVFFlat(quant, dim, nlist, faiss.METRIC_INNER_PRODUCT)
            rng = np.random.default_rng(0)
            train = vectors[rng.choice(n, size=min(n, nlist * 64), replace=False)]
            ivf.train(train)
            ivf.nprobe = nprobe
            index = ivf
        if n:
            index.add(vectors)
        return cls(dim, index, np.asarray(template_ids, dtype=np.int64), np.asarray(pensioner_ids, dtype=np.int64))

    def search(self, query: NDArray[np.float32], k: int = 5) -> list[Hit]:
        if self.size == 0:
            return []
        q = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
        scores, idx = self.index.search(q, min(k, self.size))
        return [
            Hit(int(self.template_ids[i]), int(self.pensioner_ids[i]), float(s))
            for s, i in zip(scores[0], idx[0], strict=True)
            if i >= 0
        ]

    def save(self, path: Path, stamp: dict[str, object]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        faiss.write_index(self.index, str(tmp))
        os.replace(tmp, path)
        np.savez(path.with_suffix(".ids.npz"), t=self.template_ids, p=self.pensioner_ids)
        path.with_suffix(".stamp.json").write_text(json.dumps(stamp))

    @classmethod
    def load(cls, path: Path) -> tuple[VectorIndex, dict[str, object]]:
        index = faiss.read_index(str(path))
        ids = np.load(path.with_suffix(".ids.npz"))
        stamp = json.loads(path.with_suffix(".stamp.json").read_text())
        return cls(index.d, index, ids["t"], ids["p"]), stamp


class IndexManager:
    """One index per model key, loaded from disk when fresh, rebuilt from the database when stale."""

    def __init__(self, root: Path, cipher: Cipher, *, exact_max: int = 200_000, nprobe: int = 32) -> None:
        self.root = root
        self.cipher = cipher
        self.exact_max = exact_max
        self.nprobe = nprobe
        self._cache: dict[str, tuple[VectorIndex, dict[str, object]]] = {}
        self._lock = threading.Lock()

    def path(self, model_key: str) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", model_key)
        return self.root / f"{safe}.faiss"

    def is_stale(self, session: Session, model_key: str) -> bool:
        cached = self._cache.get(model_key)
        if cached is None:
            p = self.path(model_key)
            if not p.exists():
                return True
            cached = VectorIndex.load(p)
            self._cache[model_key] = cached
        return cached[1] != _stamp(session, model_key)

    def rebuild(self, session: Session, model_key: str) -> VectorIndex:
        stamp = _stamp(session, model_key)
        rows = session.execute(
            select(FaceTemplate.id, FaceTemplate.pensioner_id, FaceTemplate.photo_sha256, FaceTemplate.embedding_enc)
            .where(FaceTemplate.model_key == model_key, FaceTemplate.active.is_(True))
            .order_by(FaceTemplate.id)
        ).all()
        from lifecert.storage.models import template_aad

        vecs = [self.cipher.open_embedding(r[3], template_aad(r[1], model_key, r[2])) for r in rows]
        dim = vecs[0].shape[0] if vecs else 1
        mat = np.vstack(vecs).astype(np.float32) if vecs else np.zeros((0, dim), np.float32)
        idx = VectorIndex.build(
            mat,
            np.array([r[0] for r in rows], dtype=np.int64),
            np.array([r[1] for r in rows], dtype=np.int64),
            exact_max=self.exact_max,
            nprobe=self.nprobe,
        )
        idx.save(self.path(model_key), stamp)
        self._cache[model_key] = (idx, stamp)
        return idx

    def get(self, session: Session, model_key: str) -> VectorIndex:
        """A fresh index for ``model_key`` (rebuilt first when the database changed)."""
        with self._lock:
            if self.is_stale(session, model_key):
                return self.rebuild(session, model_key)
            return self._cache[model_key][0]

    def invalidate(self, model_key: str) -> None:
        with self._lock:
            self._cache.pop(model_key, None)


class OverlayIndex:
    """A fresh :class:`VectorIndex` plus the vectors added since it was taken (in memory).

    A batch enrolment searches the database's templates and those it enrolled itself in the
    same run without rebuilding the index after every photo. ``owner`` ids are pensioner ids;
    a caller may use negative ids for people not stored yet (a dry run)."""

    def __init__(self, base: VectorIndex) -> None:
        self.base = base
        self.new: faiss.IndexFlatIP | None = None  # made on the first add (its dimension)
        self.new_owners: list[int] = []

    def best_other(self, vec: NDArray[np.float32], owner: int | None) -> tuple[int | None, float]:
        """The most similar template of anyone but ``owner``: (owner id, cosine) or (None, -1.0)."""
        best: tuple[int | None, float] = (None, -1.0)
        for hit in self.base.search(vec, 5):
            if hit.pensioner_id != owner and hit.score > best[1]:
                best = (hit.pensioner_id, hit.score)
        if self.new is not None and self.new.ntotal:
            q = np.ascontiguousarray(vec.reshape(1, -1), dtype=np.float32)
            scores, idx = self.new.search(q, min(5, self.new.ntotal))
            for s, i in zip(scores[0], idx[0], strict=True):
                if i >= 0 and self.new_owners[i] != owner and s > best[1]:
                    best = (self.new_owners[i], float(s))
        return best

    def add(self, vec: NDArray[np.float32], owner: int) -> None:
        if self.new is None:
            self.new = faiss.IndexFlatIP(int(vec.shape[-1]))
        self.new.add(np.ascontiguousarray(vec.reshape(1, -1), dtype=np.float32))
        self.new_owners.append(owner)
