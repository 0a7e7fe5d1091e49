"""Worker-process side of the batch job: each worker loads the engine once, then
reads, stores (encrypted, content-addressed) and assesses photos. The main process
does all database writes, so there is a single writer."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from enrollment.manifest import SourceRef
from lifecert.config import Settings
from lifecert.domain.errors import ErrorCode, LifecertError
from lifecert.engine.base import FaceEngine
from lifecert.engine.fusion import SecondEmbedder, make_second_embedder
from lifecert.engine.loader import load_engine
from lifecert.services.enrollment import Assessment, assess_bytes
from lifecert.storage.blobs import open_blob_store
from lifecert.storage.crypto import Cipher
from lifecert.storage.db import Database
from lifecert.storage.photos import PhotoStore


@dataclass(frozen=True, slots=True)
class Task:
    row_no: int
    source: SourceRef
    sha256: str
    store_photo: bool  # False on --dry-run


@dataclass
class Outcome:
    row_no: int
    sha256: str
    assessment: Assessment


class Worker:
    """Engine + photo store for one process. Not shared across processes."""

    def __init__(self, settings: Settings, engine: FaceEngine | None = None,
                 second: SecondEmbedder | None = None) -> None:
        """``engine``/``second``: the caller's loaded engines (in-process runs); a pool process
        passes neither and loads both (the fusion's second engine when it is installed)."""
        self.settings = settings
        self.engine = engine or load_engine(settings)
        self.second = second if engine is not None else make_second_embedder(settings)
        # Database blob store: this process's own connection (workers never write other rows).
        blobs = open_blob_store(settings, Database(settings.resolved_database_url, create=False))
        self.photos = PhotoStore(blobs, Cipher(settings.template_key_bytes(), settings.retired_template_key_bytes()))

    def run(self, task: Task) -> Outcome:
        s = self.settings
        try:
            data = task.source.read(s.images.max_bytes)
        except LifecertError as exc:  # grew past the limit since the main process hashed it
            return Outcome(task.row_no, task.sha256, Assessment(ErrorCode.IMAGE_TOO_LARGE, exc.message))
        a = assess_bytes(
            self.engine, data, s.quality, max_bytes=s.images.max_bytes, max_pixels=s.images.max_pixels,
            profile=s.embedding.enroll_profile, second=self.second,
        )
        if task.store_photo and a.width:
            # Accepted photos are kept for template rebuilds; rejects for the review queue.
            # The writer syncs once per batch before committing rows that reference these photos.
            self.photos.put(data, task.sha256, durable=False)
        return Outcome(task.row_no, task.sha256, a)


_worker: Worker | None = None  # one per worker process, set by the pool initializer


def init_process(settings: Settings, threads: int = 1) -> None:
    global _worker
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)
    import cv2

    cv2.setNumThreads(threads)
    # Engines that size their onnxruntime pools from settings (EdgeFace, insightface) get the pool's
    # per-process share too: W processes x 2 spinning ORT threads on 2 cores oversubscribe the machine.
    _worker = Worker(settings.model_copy(update={"inference_threads": threads}))


def run_in_process(task: Task) -> Outcome:
    if _worker is None:  # pragma: no cover - initializer always runs first
        raise RuntimeError("worker not initialised")
    return _worker.run(task)


def warm(_: Any = None) -> int:
    return os.getpid()
