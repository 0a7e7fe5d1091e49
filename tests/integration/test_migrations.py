"""Alembic migrations create exactly the schema the models describe (SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from lifecert.storage.db import Base, import_all_models, make_engine
from lifecert.storage.migrate import upgrade_to_head
from tests.conftest import empty_postgres


def _diff(url: str) -> list[object]:
    engine = make_engine(url)
    upgrade_to_head(engine)
    import_all_models()
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, Base.metadata)
        assert conn.execute(text("select version_num from alembic_version")).scalar() is not None
    tables = set(inspect(engine).get_table_names())
    engine.dispose()
    assert set(Base.metadata.tables) <= tables
    return diff


def test_given_an_empty_sqlite_database_when_migrated_then_schema_matches_models(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.sqlite'}"
    assert _diff(url) == []
    assert _diff(url) == []  # upgrading again is a no-op


@pytest.mark.postgres
def test_given_an_empty_postgres_database_when_migrated_then_schema_matches_models(postgres_url: str) -> None:
    empty_postgres(postgres_url)
    assert _diff(postgres_url) == []
