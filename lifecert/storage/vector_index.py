"""faiss index over the active templates of one model: a rebuildable cache of the database.

Exact inner-product search (IndexFlatIP) up to ``exact_max`` vectors; beyond it an
IVF index (IndexIVFFlat, inner product, ~4*sqrt(N) lists, ``nprobe`` configurable).
The index lives in memory only, built from the sealed template rows: decrypted
templates never touch the disk (issue 11 H2; an index file would hold every template
in plaintext next to pensioner ids). Each index carries a stamp (count and newest
template id/time for the model); :meth:`IndexManager.is_stale` compares the stamp
with the database, so a changed template set is never searched with an old index.
Index files written by earlier versions are deleted on first use.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np
from numpy.typing import NDArray
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lifecert.storage.crypto import Cipher
from lifecert.storage.models import FaceTemplate

log = logging.getLogger(__name__)
# Files an earlier version wrote under data_dir/index: the faiss index held plaintext templates.
LEGACY_INDEX_PATTERNS = ("*.faiss", "*.ids.npz", "*.stamp.json", "*.tmp")


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


def template_count(session: Session, model_key: str) -> int:
    return int(_stamp(session, model_key)["count"])  # type: ignore[call-overload]


class VectorIndex:
    def __init__(self, dim: int, index: faiss.Index, ids: NDArray[np.int64], owners: NDArray[np.int64]) -> None:
        self.dim = dim
        self.index = index
        self.template_ids = ids
        self.pensioner_ids = owners
        self._owner_rows: dict[int, NDArray[np.int64]] | None = None

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
        if isinstance(index, faiss.IndexIVF):
            index.make_direct_map()  # reconstruct() for scores_of (fused 1:N needs every engine's score)
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


    def best_by_owner(self, query: NDArray[np.float32], owner: int | None, k: int = 20) -> dict[int, float]:
        """Best cosine per pensioner among the ``k`` nearest templates, ``owner`` left out."""
        out: dict[int, float] = {}
        for hit in self.search(query, k):
            if hit.pensioner_id != owner and hit.score > out.get(hit.pensioner_id, -2.0):
                out[hit.pensioner_id] = hit.score
        return out

    def scores_of(self, query: NDArray[np.float32], owners: set[int]) -> dict[int, float]:
        """Exact best cosine of ``query`` to the templates of each pensioner in ``owners`` (those with
        none here are absent). Reads the stored vectors back (no search): for a few candidates."""
        out: dict[int, float] = {}
        if not owners or self.size == 0:
            return out
        by_owner = self._rows_by_owner()
        q = np.asarray(query, dtype=np.float32).reshape(-1)
        for pid in owners:
            for r in by_owner.get(pid, ()):
                s = float(self.index.reconstruct(int(r)) @ q)
                if s > out.get(pid, -2.0):
                    out[pid] = s
        return out

    def _rows_by_owner(self) -> dict[int, NDArray[np.int64]]:
        """Index rows of each pensioner, made once per index (an index is immutable once built; two
        threads racing here build the same dict)."""
        cached = self._owner_rows
        if cached is None:
            order = np.argsort(self.pensioner_ids, kind="stable")
            owners, starts = np.unique(self.pensioner_ids[order], return_index=True)
            cached = {int(o): rows for o, rows in zip(owners, np.split(order, starts[1:]), strict=True)}
            self._owner_rows = cached
        return cached


class IndexManager:
    """One in-memory index per model key, rebuilt from the database when stale (never saved)."""

    def __init__(self, root: Path, cipher: Cipher, *, exact_max: int = 200_000, nprobe: int = 32) -> None:
        self.root = root  # where earlier versions kept index files; only ever cleaned, never written
        self.cipher = cipher
        self.exact_max = exact_max
        self.nprobe = nprobe
        self._cache: dict[str, tuple[VectorIndex, dict[str, object]]] = {}
        self._lock = threading.Lock()
        self._cleaned = False
        # When this node first saw its index older than the database (per model key): for the
        # staleness metric. Several API nodes each keep their own index and compare stamps.
        self._stale_since: dict[str, float] = {}

    def remove_legacy_files(self) -> int:
        """Delete plaintext index files left by earlier versions; returns how many were removed."""
        n = 0
        if self.root.is_dir():
            for pattern in LEGACY_INDEX_PATTERNS:
                for f in self.root.glob(pattern):
                    f.unlink(missing_ok=True)
                    n += 1
        if n:
            log.warning("removed %d plaintext index file(s) under %s (the index is kept in memory now)", n, self.root)
        self._cleaned = True
        return n

    def is_stale(self, session: Session, model_key: str) -> bool:
        cached = self._cache.get(model_key)
        stale = cached is None or cached[1] != _stamp(session, model_key)
        if stale and cached is not None:
            self._stale_since.setdefault(model_key, time.monotonic())
        return stale

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
        if not self._cleaned:
            self.remove_legacy_files()
        self._cache[model_key] = (idx, stamp)
        self._stale_since.pop(model_key, None)
        return idx

    def get(self, session: Session, model_key: str) -> VectorIndex:
        """A fresh index for ``model_key`` (rebuilt first when the database changed)."""
        with self._lock:
            if self.is_stale(session, model_key):
                return self.rebuild(session, model_key)
            return self._cache[model_key][0]

    def refresh(self, session: Session, model_key: str) -> bool:
        """Rebuild when the template stamp in the database changed; True when it did. API nodes call
        this periodically (server start-up hook) so the first search after an enrollment elsewhere
        does not pay for the rebuild; :meth:`get` checks the stamp again on every search anyway."""
        with self._lock:
            if self.is_stale(session, model_key):
                self.rebuild(session, model_key)
                return True
            return False

    def stale_for_seconds(self, model_key: str) -> float:
        """Seconds since this node noticed its index is older than the database (0: not stale)."""
        since = self._stale_since.get(model_key)
        return 0.0 if since is None else time.monotonic() - since

    def cached_size(self, model_key: str) -> int:
        cached = self._cache.get(model_key)
        return cached[0].size if cached else 0

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

    def best_by_owner(self, vec: NDArray[np.float32], owner: int | None, k: int = 20) -> dict[int, float]:
        """Best cosine per pensioner among the ``k`` nearest templates (base and this run's),
        ``owner`` left out."""
        out = self.base.best_by_owner(vec, owner, k)
        if self.new is not None and self.new.ntotal:
            q = np.ascontiguousarray(vec.reshape(1, -1), dtype=np.float32)
            scores, idx = self.new.search(q, min(k, self.new.ntotal))
            for s, i in zip(scores[0], idx[0], strict=True):
                if i < 0:
                    continue
                pid = self.new_owners[i]
                if pid != owner and float(s) > out.get(pid, -2.0):
                    out[pid] = float(s)
        return out

    def scores_of(self, vec: NDArray[np.float32], owners: set[int]) -> dict[int, float]:
        """Exact best cosine per pensioner in ``owners`` (base and this run's templates)."""
        out = self.base.scores_of(vec, owners)
        if self.new is not None and self.new.ntotal and owners:
            q = np.asarray(vec, dtype=np.float32).reshape(-1)
            for i, pid in enumerate(self.new_owners):
                if pid in owners:
                    s = float(self.new.reconstruct(i) @ q)
                    if s > out.get(pid, -2.0):
                        out[pid] = s
        return out

    def add(self, vec: NDArray[np.float32], owner: int) -> None:
        if self.new is None:
            self.new = faiss.IndexFlatIP(int(vec.shape[-1]))
        self.new.add(np.ascontiguousarray(vec.reshape(1, -1), dtype=np.float32))
        self.new_owners.append(owner)
