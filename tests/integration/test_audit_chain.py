"""Audit trail: edits and deletions made behind the application's back are found at the right row."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, text
from typer.testing import CliRunner

from lifecert.config import get_settings
from lifecert.services import audit
from lifecert.services.context import AppContext
from lifecert.storage.models import AuditEvent


@pytest.fixture
def cli_env(ctx: AppContext, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Point the CLI (which reads settings from the environment, cached) at the test's data directory."""
    monkeypatch.setenv("LIFECERT_DATA_DIR", str(ctx.settings.data_dir))
    monkeypatch.setenv("LIFECERT_ENV", "test")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _seed(ctx: AppContext, n: int = 6) -> list[int]:
    with ctx.db.session() as s:
        return [audit.record(s, actor="wang", role="caseworker", action="case.view", object_type="review_case",
                             object_id=i, client_addr="10.1.2.3", detail={"i": i}).id for i in range(n)]


def test_given_intact_trail_then_verify_ok(ctx: AppContext) -> None:
    _seed(ctx)
    with ctx.db.session() as s:
        rep = audit.verify_chain(s)
    assert (rep.ok, rep.rows, rep.first_bad_id) == (True, 6, None)


@pytest.mark.parametrize("column,value", [("detail", '{"i": 999}'), ("actor", "someone_else"),
                                          ("at", "2020-01-01 00:00:00.000000")])
def test_given_a_row_edited_with_raw_sql_then_verify_fails_at_that_row(
    ctx: AppContext, column: str, value: str
) -> None:
    ids = _seed(ctx)
    with ctx.db.engine.begin() as conn:
        conn.execute(text(f"UPDATE audit_event SET {column} = :v WHERE id = :id"), {"v": value, "id": ids[3]})
    with ctx.db.session() as s:
        rep = audit.verify_chain(s)
    assert not rep.ok and rep.first_bad_id == ids[3] and rep.rows == 3


def test_given_a_row_deleted_then_verify_fails_at_the_next_row(ctx: AppContext) -> None:
    ids = _seed(ctx)
    with ctx.db.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_event WHERE id = :id"), {"id": ids[2]})
    with ctx.db.session() as s:
        rep = audit.verify_chain(s)
    assert not rep.ok and rep.first_bad_id == ids[3] and "link" in rep.problem


def test_given_edited_row_with_recomputed_hash_then_next_row_link_breaks(ctx: AppContext) -> None:
    """A forger who also recomputes the edited row's hash is caught by the following row's link."""
    ids = _seed(ctx)
    with ctx.db.session() as s:
        ev = s.get(AuditEvent, ids[1])
        assert ev is not None
        ev.detail = {"i": "forged"}
        ev.row_hash = audit.row_hash(ev, audit.audit_key_of(s))
    with ctx.db.session() as s:
        rep = audit.verify_chain(s)
    assert not rep.ok and rep.first_bad_id == ids[2]


def test_given_cli_when_chain_broken_then_exit_nonzero_naming_the_row(
    ctx: AppContext, cli_env: None, tmp_path: Path
) -> None:
    from lifecert.cli import app

    ids = _seed(ctx)
    runner = CliRunner()
    ok = runner.invoke(app, ["audit", "verify"])
    assert ok.exit_code == 0, ok.output
    with ctx.db.engine.begin() as conn:
        conn.execute(text("UPDATE audit_event SET detail = '{}' WHERE id = :id"), {"id": ids[4]})
    bad = runner.invoke(app, ["audit", "verify"])
    assert bad.exit_code == 1, (ok.output, bad.output)
    assert f"row id {ids[4]}" in bad.output


def test_given_cli_export_then_csv_has_every_row_with_hashes_and_the_export_is_audited(
    ctx: AppContext, cli_env: None, tmp_path: Path
) -> None:
    from lifecert.cli import app

    _seed(ctx, 3)
    with ctx.db.session() as s:
        audit.record(s, actor="=cmd|' /C calc'!A0", role="caseworker", action="case.view", object_type="x",
                     object_id=1)
    out = tmp_path / "trail.csv"
    r = CliRunner().invoke(app, ["audit", "export", "--out", str(out)])
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    with ctx.db.session() as s:
        db_rows = s.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
        assert [e.action for e in db_rows][-1] == "audit.export"
        assert [r["row_hash"] for r in rows] == [e.row_hash for e in db_rows]
    assert rows[3]["actor"].startswith("'=")  # spreadsheet formula neutralised


def test_given_filters_when_querying_then_only_matching_events(ctx: AppContext) -> None:
    _seed(ctx, 3)
    with ctx.db.session() as s:
        audit.record(s, actor="li", role="auditor", action="audit.view", object_type="audit_event", object_id="*")
        assert [e.actor for e in audit.query_events(s, audit.AuditFilter(role="auditor"))] == ["li"]
        assert audit.count_events(s, audit.AuditFilter(action="case.")) == 3
        assert audit.count_events(s, audit.AuditFilter(actor="wang", object_id="2")) == 1
