"""Running images through the production face pipeline (decode → detect → gates → views →
embed), in a process pool, and the on-disk embedding cache."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
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

