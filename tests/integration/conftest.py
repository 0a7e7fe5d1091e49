"""Fixtures shared by the integration tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lifecert.config import Settings
from lifecert.services.context import AppContext
from tests.integration.test_data_support import open_ctx


@pytest.fixture
def data_ctx(settings: Settings) -> Iterator[AppContext]:
    """A fresh data directory and SQLite database without a face engine (data comparison needs none)."""
    yield from open_ctx(settings)
