"""Alembic migrations create exactly the schema the models describe (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from lifecert.storage.db import Base, import_all_models, make_engine
from lifecert.storage.migrate import alembic_config, upgrade_to_head
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


def _upgrade(engine: Engine, revision: str) -> None:
    with engine.begin() as conn:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def _cases_0003(url: str) -> None:
    """A database at 0002 holding review cases in the shapes the producers wrote then, upgraded: the
    case page's reader loads every one as its typed payload (the verification score and frames too)."""
    from lifecert.domain.cases import TipOffReport, VerificationReview, load_payload

    sha = "c" * 64
    engine = make_engine(url)
    _upgrade(engine, "0002_template_profile")
    legacy = [
        ("verification", "LOW_MATCH", {
            "session_id": "s1", "reason": "LOW_MATCH", "retry_count": 0, "model_key": "m",
            "scores": {"match": 0.41, "threshold": 0.5, "best_frames": [{"index": 1, "t_ms": 125, "quality": 0.7}]},
            "challenges": [{"name": "blink", "passed": True}], "best_frame_shas": [sha], "one_to_n": []}),
        ("tip_off", "TIP_OFF", {"description": "去年已去世，家属仍在领取", "name": "孙某某", "id_number": None,
                                "contact": "138", "client_addr": "127.0.0.1"}),
        ("verification", "LOW_MATCH", {"score": 0.4}),  # no producer wrote this: left alone
    ]
    with engine.begin() as conn:
        for kind, reason, payload in legacy:
            conn.execute(text("insert into review_case (kind, reason, status, payload, created_at) "
                              "values (:k, :r, 'open', :p, CURRENT_TIMESTAMP)"),
                         {"k": kind, "r": reason, "p": json.dumps(payload, ensure_ascii=False)})
    _upgrade(engine, "head")
    with engine.connect() as conn:
        rows = [json.loads(p) if isinstance(p, str) else p
                for (p,) in conn.execute(text("select payload from review_case order by id"))]
    engine.dispose()
    v, tip, odd = (load_payload(r) for r in rows)
    assert isinstance(v, VerificationReview) and v.match == 0.41 and [f.sha256 for f in v.best_frames] == [sha]
    assert isinstance(tip, TipOffReport) and tip.description.startswith("去年")
    assert rows[2] == {"score": 0.4} and odd.type == "unreadable"


def test_given_sqlite_with_untyped_case_payloads_when_migrated_then_typed(tmp_path: Path) -> None:
    _cases_0003(f"sqlite:///{tmp_path / 'c.sqlite'}")


@pytest.mark.postgres
def test_given_postgres_with_untyped_case_payloads_when_migrated_then_typed(postgres_url: str) -> None:
    empty_postgres(postgres_url)
    _cases_0003(postgres_url)
