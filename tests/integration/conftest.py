"""Fixtures shared by the integration tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lifecert.config import Settings, get_settings
from lifecert.services.context import AppContext
from tests.conftest import empty_postgres
from tests.integration.test_data_support import open_ctx


@pytest.fixture
def data_ctx(settings: Settings) -> Iterator[AppContext]:
    """A fresh data directory and SQLite database without a face engine (data comparison needs none)."""
    yield from open_ctx(settings)


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The environment a ``lifecert`` command reads (data directory under tmp_path, SQLite, test
    mode), with the cached settings cleared before and after; yields the data directory."""
    data = tmp_path / "data"
    monkeypatch.setenv("LIFECERT_DATA_DIR", str(data))
    monkeypatch.setenv("LIFECERT_ENV", "test")
    monkeypatch.delenv("LIFECERT_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    yield data
    get_settings.cache_clear()


@pytest.fixture
def pg_ctx(postgres_url: str, tmp_path: Path) -> Iterator[AppContext]:
    """A context on the test PostgreSQL server, schema emptied first (no face engine)."""
    empty_postgres(postgres_url)
    ctx = AppContext(Settings(env="test", data_dir=tmp_path / "data", database_url=postgres_url))
    yield ctx
    ctx.close()
