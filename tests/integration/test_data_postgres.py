"""The data comparison on a real PostgreSQL server: raw DB-API bulk inserts and IN-list lookups
(``%s`` placeholders, JSON text, dates) behave as on SQLite."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select

from lifecert.services.audit import verify_chain
from lifecert.services.context import AppContext
from lifecert.services.datamatch.reports import export_suspensions
from lifecert.storage.models import ConfirmationMethod, SurvivalConfirmation
from lifecert.storage.models_data import DataRecord, Outcome
from tests.integration.test_data_support import (
    DEATH_HEADER,
    MEDICAL_HEADER,
    add_pensioners,
    do_import,
    idn,
    write_csv,
)

pytestmark = pytest.mark.postgres


def test_given_postgres_when_extracts_imported_then_outcomes_duplicates_and_reimport_as_on_sqlite(
        pg_ctx: AppContext, tmp_path: Path) -> None:
    assert pg_ctx.db.engine.dialect.name == "postgresql"
    people = [(idn(700 + i), f"测试{i}") for i in range(12)]
    ids = add_pensioners(pg_ctx, people)
    rows = [[i, n, "2026-03-02", "医院"] for i, n in people[1:]] + [[people[1][0], people[1][1], "2026-03-02", ""]]
    med = write_csv(tmp_path / "m.csv", MEDICAL_HEADER, rows)
    death = write_csv(tmp_path / "d.csv", DEATH_HEADER, [[people[0][0], people[0][1], "2026-03-05", ""]])

    d = do_import(pg_ctx, "police_deregistration", death)
    m = do_import(pg_ctx, "medical_settlement", med, chunk_size=4)
    again = do_import(pg_ctx, "medical_settlement", med, chunk_size=4)

    assert d.outcomes == {Outcome.DECEASED: 1}
    assert (m.confirmations, m.rows_duplicate, again.already_imported) == (11, 1, True)
    with pg_ctx.db.session() as s:
        q = select(SurvivalConfirmation).where(SurvivalConfirmation.pensioner_id == ids[people[5][0]])
        conf = s.scalars(q).one()
        assert (conf.method, conf.evidence_date, conf.evidence["type"]) == (
            ConfirmationMethod.DATA_COMPARISON, date(2026, 3, 2), "医院")
        assert s.scalars(select(DataRecord.event_date).where(DataRecord.import_id == d.import_id)).one() == date(
            2026, 3, 5)
        assert verify_chain(s).ok
    assert export_suspensions(pg_ctx.db, tmp_path / "s.csv", actor="cli:test") == 1
