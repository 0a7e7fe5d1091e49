"""The application context: settings, database, cipher, photo store, index, engine.

Built once per process (CLI command, server start-up, batch worker) and passed
to services; ``with AppContext() as ctx:`` closes the database pool however the block ends.
The face engine loads lazily on first use, then stays shared.
"""

from __future__ import annotations

import logging
import threading
from functools import cached_property

from lifecert.config import Settings, get_settings
from lifecert.engine.base import FaceEngine
from lifecert.engine.fusion import SecondEmbedder, make_second_embedder
from lifecert.engine.loader import load_engine
from lifecert.engine.manifest import ModelInfo, model_info
from lifecert.storage.blobs import open_blob_store
from lifecert.storage.crypto import Cipher
from lifecert.storage.db import Database
from lifecert.storage.photos import PhotoStore
from lifecert.storage.vector_index import IndexManager

log = logging.getLogger(__name__)


class AppContext:
    def __init__(self, settings: Settings | None = None, *, create_schema: bool = True) -> None:
        self.settings = settings or get_settings()
        self.settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.db = Database(self.settings.resolved_database_url, create=create_schema,
                           audit_key=self.settings.audit_key_bytes())
        self.cipher = Cipher(self.settings.template_key_bytes(), self.settings.retired_template_key_bytes())
        self.blobs = open_blob_store(self.settings, self.db)
        self.photos = PhotoStore(self.blobs, self.cipher)
        self.index = IndexManager(
            self.settings.data_dir / "index",
            self.cipher,
            exact_max=self.settings.index.exact_max,
            nprobe=self.settings.index.ivf_nprobe,
        )
        self._engine_lock = threading.Lock()
        self._engine: FaceEngine | None = None
        self._second: SecondEmbedder | None = None
        self._second_checked = False

    @property
    def engine(self) -> FaceEngine:
        with self._engine_lock:
            if self._engine is None:
                self._engine = load_engine(self.settings)
            return self._engine

    @property
    def engine_loaded(self) -> bool:
        """Is the engine in memory (:attr:`engine` loads it on first use)?"""
        return self._engine is not None

    def set_engine(self, engine: FaceEngine) -> None:
        self._engine = engine

    def second_embedder(self) -> SecondEmbedder | None:
        """The fusion's second engine for enrollment (lifecert.services.fusion), loaded once; None
        when fusion is off or its packs are not installed."""
        with self._engine_lock:
            if not self._second_checked:
                self._second = make_second_embedder(self.settings)
                self._second_checked = True
            return self._second

    @cached_property
    def model(self) -> ModelInfo:
        """Manifest entry of the configured engine (readable without loading weights). Warns when
        the verify threshold was calibrated for other embedding profiles than the configured ones."""
        info = model_info(self.settings.engine, self.settings.manifest_path)
        t = info.thresholds.get("verify")
        e = self.settings.embedding
        if t is not None and t.enroll_profile and (t.enroll_profile, t.probe_profile) != (
            e.enroll_profile,
            e.probe_profile,
        ):
            log.warning(
                "verify threshold %.4f was calibrated for enroll=%s probe=%s but settings use enroll=%s probe=%s; "
                "its false-accept rate is not the manifest's (recalibrate with lifecert eval --write-manifest)",
                t.similarity, t.enroll_profile, t.probe_profile, e.enroll_profile, e.probe_profile,
            )
        return info

    def close(self) -> None:
        self.db.dispose()

    def __enter__(self) -> AppContext:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
