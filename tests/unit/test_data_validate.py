"""Row validation: ID check digit, names, dates, sentence terms, row keys."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from lifecert.domain.idnumber import make_id_number
from lifecert.services.datamatch.mapping import parse_mapping
from lifecert.services.datamatch.outcomes import add_months
from lifecert.services.datamatch.validate import (
    RowReject,
    RowValidator,
    ValidRow,
    fast_normalize_name,
    parse_date,
)
from lifecert.services.templates import normalize_name

TODAY = date(2026, 4, 8)
ID = make_id_number("440305", date(1948, 2, 29), 7)
DEATH = parse_mapping({"department": "d1", "kind": "death", "columns": {
    "id_number": "a", "name": "b", "death_date": "c"}})
PRISON = parse_mapping({"department": "p1", "kind": "imprisonment", "columns": {
    "id_number": "a", "name": "b", "term_start": "c", "term_end": "d", "release_date": "e"}})


def test_given_valid_death_row_when_validated_then_accepted_with_normalised_name_and_key() -> None:
    r = RowValidator(DEATH, TODAY)([f" {ID} ", " 艾力·买买提 ", "2026-03-01"], 7)

    assert isinstance(r, ValidRow)
    assert (r.row_no, r.id_number, r.name, r.event_date) == (7, ID, "艾力·买买提", date(2026, 3, 1))
    assert len(r.row_key) == 24


def test_given_lower_case_x_full_width_digits_or_excel_apostrophe_when_validated_then_id_normalised() -> None:
    x_id = next(make_id_number("110101", date(1950, 1, 1), s) for s in range(1, 999)
                if make_id_number("110101", date(1950, 1, 1), s).endswith("X"))
    full_width = "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c for c in ID)

    a = RowValidator(DEATH, TODAY)([x_id.lower(), "某", "2026-03-01"], 2)
    b = RowValidator(DEATH, TODAY)([full_width, "某", "2026-03-01"], 3)

    c = RowValidator(DEATH, TODAY)(["'" + ID, "某", "2026-03-01"], 4)

    assert isinstance(a, ValidRow) and a.id_number == x_id
    assert isinstance(b, ValidRow) and b.id_number == ID
    assert isinstance(c, ValidRow) and c.id_number == ID


@pytest.mark.parametrize(("values", "reason"), [
    ([ID[:-1] + ("1" if ID[-1] != "1" else "2"), "某", "2026-03-01"], "BAD_ID_NUMBER"),
    ([ID[:17], "某", "2026-03-01"], "BAD_ID_NUMBER"),
    ([None, "某", "2026-03-01"], "BAD_ID_NUMBER"),
    ([ID, "  ", "2026-03-01"], "MISSING_NAME"),
    ([ID, "某" * 65, "2026-03-01"], "NAME_TOO_LONG"),
    ([ID, "某", "2026-02-30"], "BAD_DATE"),
    ([ID, "某", "yesterday"], "BAD_DATE"),
    ([ID, "某", "2026-04-09"], "FUTURE_DATE"),
    ([ID, "某", "1940-01-01"], "DATE_ORDER"),
    ([ID, "某", ""], "MISSING_DATE"),
])
def test_given_faulty_row_when_validated_then_rejected_with_reason(values: list[object], reason: str) -> None:
    r = RowValidator(DEATH, TODAY)(values, 5)

    assert isinstance(r, RowReject)
    assert (r.row_no, r.reason) == (5, reason)
    assert ID[6:14] not in r.id_masked  # no birth date in reports


def test_given_sentence_ending_in_future_when_validated_then_accepted_but_end_before_start_is_not() -> None:
    v = RowValidator(PRISON, TODAY)
    ok = v([ID, "某", "2025-01-01", "2030-12-31", ""], 2)
    bad = v([ID, "某", "2025-01-01", "2024-12-31", ""], 3)
    release = v([ID, "某", "", "", "2026-03-15"], 4)

    assert isinstance(ok, ValidRow) and (ok.event_date, ok.end_date, ok.release) == (
        date(2025, 1, 1), date(2030, 12, 31), False)
    assert isinstance(bad, RowReject) and bad.reason == "DATE_ORDER"
    assert isinstance(release, ValidRow) and (release.event_date, release.end_date, release.release) == (
        None, date(2026, 3, 15), True)


def test_given_same_fact_with_other_spelling_when_validated_then_same_key_and_other_fact_other_key() -> None:
    v = RowValidator(DEATH, TODAY)
    a = v([ID, "张三", "2026-03-01"], 2)
    b = v([ID.lower(), "张 三", "20260301"], 3)
    c = v([ID, "张三", "2026-03-02"], 4)

    assert isinstance(a, ValidRow) and isinstance(b, ValidRow) and isinstance(c, ValidRow)
    assert a.row_key == b.row_key != c.row_key


@pytest.mark.parametrize(("cell", "expected"), [
    ("2026-03-01", date(2026, 3, 1)),
    ("2026-03-01 14:22:00", date(2026, 3, 1)),
    ("20260301", date(2026, 3, 1)),
    ("2026/3/1", date(2026, 3, 1)),
    ("2026年3月1日", date(2026, 3, 1)),
    (20260301, date(2026, 3, 1)),
    (datetime(2026, 3, 1, 8, 30), date(2026, 3, 1)),
    (date(2026, 3, 1), date(2026, 3, 1)),
    ("", None),
    (None, None),
])
def test_given_date_cell_in_common_forms_when_parsed_then_date(cell: object, expected: date | None) -> None:
    assert parse_date(cell, ("%Y-%m-%d", "%Y%m%d", "%Y/%m/%d", "%Y年%m月%d日")) == expected


@pytest.mark.parametrize("name", [
    "王秀英", "王 秀英", "ＷＡＮＧ　Ｘｉｕ", "阿依古丽•买买提", "A.B", "艾力‧买买提", "  李四 "])
def test_given_any_name_when_fast_normalised_then_same_as_reference_normaliser(name: str) -> None:
    assert fast_normalize_name(name) == normalize_name(name)


def test_given_month_end_dates_when_months_added_then_day_clamped() -> None:
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert add_months(date(2027, 12, 31), 2) == date(2028, 2, 29)
    assert add_months(date(2026, 3, 31), 12) == date(2027, 3, 31)
    assert add_months(date(2026, 1, 15), -1) == date(2025, 12, 15)
