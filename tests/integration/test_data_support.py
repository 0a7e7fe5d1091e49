"""Helpers for the data-comparison tests: synthetic pensioners and extracts (no real personal data).

ID numbers are computed with the GB 11643 check digit by ``make_id_number``; names are generic.
This module holds no tests.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime
from pathlib import Path

from openpyxl import Workbook

from lifecert.config import Settings
from lifecert.domain.idnumber import make_id_number
from lifecert.services.context import AppContext
from lifecert.services.datamatch import ImportSummary, run_import
from lifecert.services.templates import upsert_pensioner

RECEIVED = datetime(2026, 4, 8, 9, 0, tzinfo=UTC)  # an extract for 2026-03, due 2026-04-10

DEATH_HEADER = ["公民身份号码", "姓名", "死亡日期", "注销原因"]
CREMATION_HEADER = ["死者身份证号", "死者姓名", "死亡日期"]
SENTENCE_HEADER = ["身份证号", "姓名", "刑期起日", "刑期止日", "罪名"]
RELEASE_HEADER = ["身份证号", "姓名", "释放日期"]
MEDICAL_HEADER = ["参保人身份证号", "参保人姓名", "结算日期", "就诊机构"]


def open_ctx(settings: Settings) -> Iterator[AppContext]:
    """Body of each module's ``data_ctx`` fixture: a fresh data directory and SQLite database,
    without a face engine (data comparison needs none)."""
    c = AppContext(settings)
    yield c
    c.close()


def idn(seq: int, born: date = date(1950, 6, 1), region: str = "110101") -> str:
    return make_id_number(region, born, seq)


def add_pensioners(ctx: AppContext, people: Sequence[tuple[str, str]]) -> dict[str, int]:
    """Register (id_number, name) pairs; returns id_number -> pensioner id."""
    with ctx.db.session() as s:
        return {i: upsert_pensioner(s, i, n).id for i, n in people}


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[object]], encoding: str = "utf-8") -> Path:
    with path.open("w", encoding=encoding, newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def write_xlsx(path: Path, header: Sequence[str], rows: Sequence[Sequence[object]]) -> Path:
    wb = Workbook()
    ws = wb.active
    ws.append(list(header))
    for r in rows:
        ws.append(list(r))
    wb.save(path)
    return path


def do_import(ctx: AppContext, department: str, path: Path, **kw: object) -> ImportSummary:
    kw.setdefault("received_at", RECEIVED)
    kw.setdefault("actor", "cli:test")
    return run_import(ctx.settings, ctx.db, department, path, **kw)  # type: ignore[arg-type]
