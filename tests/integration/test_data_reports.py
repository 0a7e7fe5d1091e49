"""Lists for the payment system, unmatched records, overpayments and the yearly department report."""

from __future__ import annotations

import csv
import stat
from datetime import UTC, date, datetime
from pathlib import Path

from openpyxl import load_workbook
from sqlalchemy import select

from lifecert.services.audit import verify_chain
from lifecert.services.context import AppContext
from lifecert.services.datamatch.reports import (
    compute_overpayments,
    export_overpayments,
    export_rejects,
    export_resumptions,
    export_suspensions,
    export_unmatched,
    export_yearly_report,
    yearly_report,
)
from lifecert.storage.models import AuditEvent, Pensioner, PensionerStatus
from tests.integration.test_data_support import (
    CREMATION_HEADER,
    DEATH_HEADER,
    MEDICAL_HEADER,
    SENTENCE_HEADER,
    add_pensioners,
    do_import,
    idn,
    write_csv,
)


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_given_deaths_and_sentences_when_suspension_list_exported_then_new_ones_listed_once_in_private_file(
        data_ctx: AppContext, tmp_path: Path) -> None:
    a, b, c = idn(11), idn(13), idn(15)
    add_pensioners(data_ctx, [(a, "甲一"), (b, "乙二"), (c, "丙三")])
    do_import(data_ctx, "police_deregistration", write_csv(tmp_path / "d.csv", DEATH_HEADER,
                                                           [[a, "甲一", "2026-03-05", ""]]))
    do_import(data_ctx, "court_sentence", write_csv(tmp_path / "s.csv", SENTENCE_HEADER,
                                                    [[b, "乙二", "2026-02-01", "2027-01-31", ""]]))
    out = tmp_path / "out" / "suspensions.csv"

    n = export_suspensions(data_ctx.db, out, actor="cli:test")

    rows = _read_csv(out)
    assert n == 2
    assert {(r["id_number"], r["reason"], r["effective_date"], r["end_date"]) for r in rows} == {
        (a, "deceased", "2026-03-05", ""), (b, "imprisoned", "2026-02-01", "2027-01-31")}
    assert _mode(out) == 0o600
    assert export_suspensions(data_ctx.db, tmp_path / "again.csv") == 0
    xlsx = tmp_path / "all.xlsx"
    assert export_suspensions(data_ctx.db, xlsx, include_exported=True) == 2
    ws = load_workbook(xlsx, read_only=True).worksheets[0]
    assert [r[1] for r in ws.iter_rows(min_row=2, values_only=True)].count(a) == 1
    assert _mode(xlsx) == 0o600


def test_given_sentence_ending_later_when_resumptions_exported_then_listed_only_once_due_and_status_restored(
        data_ctx: AppContext, tmp_path: Path) -> None:
    a = idn(17)
    ids = add_pensioners(data_ctx, [(a, "丁四")])
    do_import(data_ctx, "court_sentence", write_csv(tmp_path / "s.csv", SENTENCE_HEADER,
                                                    [[a, "丁四", "2025-07-01", "2026-06-30", ""]]))

    early = export_resumptions(data_ctx.db, tmp_path / "r1.csv", as_of=date(2026, 5, 31))
    due = export_resumptions(data_ctx.db, tmp_path / "r2.csv", as_of=date(2026, 7, 1))
    again = export_resumptions(data_ctx.db, tmp_path / "r3.csv", as_of=date(2026, 7, 1))

    assert (early, due, again) == (0, 1, 0)
    assert _read_csv(tmp_path / "r2.csv")[0]["effective_date"] == "2026-06-30"
    with data_ctx.db.session() as s:
        assert s.get(Pensioner, ids[a]).status == PensionerStatus.ACTIVE  # type: ignore[union-attr]


def test_given_unknown_people_in_two_departments_when_unmatched_exported_per_department_then_only_that_one(
        data_ctx: AppContext, tmp_path: Path) -> None:
    x, y = idn(901, region="320102"), idn(903, region="320102")
    do_import(data_ctx, "police_deregistration", write_csv(tmp_path / "d.csv", DEATH_HEADER,
                                                           [[x, "外甲", "2026-03-01", ""]]))
    do_import(data_ctx, "medical_settlement", write_csv(tmp_path / "m.csv", MEDICAL_HEADER,
                                                        [[y, "外乙", "2026-03-01", ""]]))

    n_all = export_unmatched(data_ctx.db, tmp_path / "all.csv")
    n_med = export_unmatched(data_ctx.db, tmp_path / "med.csv", department="medical_settlement")

    assert (n_all, n_med) == (2, 1)
    assert [(r["department"], r["id_number"]) for r in _read_csv(tmp_path / "med.csv")] == [("medical_settlement", y)]


def test_given_a_year_of_extracts_when_reported_then_per_department_delivery_timeliness_rows_and_outcomes(
        data_ctx: AppContext, tmp_path: Path) -> None:
    a, b = idn(21), idn(23)
    add_pensioners(data_ctx, [(a, "戊五"), (b, "己六")])
    do_import(data_ctx, "police_deregistration", write_csv(tmp_path / "d1.csv", DEATH_HEADER, [
        [a, "戊五", "2026-01-20", ""], ["bad-id", "某", "2026-01-02", ""]]),
        period="2026-01", received_at=datetime(2026, 2, 5, tzinfo=UTC))
    do_import(data_ctx, "police_deregistration", write_csv(tmp_path / "d2.csv", DEATH_HEADER, [
        [idn(25, region="320102"), "庚七", "2026-02-03", ""]]),
        period="2026-02", received_at=datetime(2026, 3, 20, tzinfo=UTC))  # late: due 2026-03-10
    do_import(data_ctx, "civil_affairs_cremation", write_csv(tmp_path / "c1.csv", CREMATION_HEADER, [
        [a, "戊五", "2026-01-20"], [b, "己六", "2026-01-25"]]),
        period="2026-01", received_at=datetime(2026, 2, 1, tzinfo=UTC))

    rep = {r.department: r for r in yearly_report(data_ctx.settings, data_ctx.db, 2026)}

    police, cremation, bus = rep["police_deregistration"], rep["civil_affairs_cremation"], rep["bus_card_check"]
    assert (police.delivered, police.on_time, police.late, police.expected, police.missing) == (2, 1, 1, 12, 10)
    assert (police.rows, police.valid_rows, police.rejected_rows, police.matches) == (3, 2, 1, 1)
    assert police.outcomes == {"deceased": 1, "unmatched": 1}
    assert cremation.outcomes == {"already_deceased": 1, "deceased": 1}
    assert (bus.delivered, bus.expected, bus.missing) == (0, 2, 2)  # every six months, nothing delivered
    assert rep == {r.department: r for r in yearly_report(data_ctx.settings, data_ctx.db, 2026)}
    assert all(r.delivered == 0 for r in yearly_report(data_ctx.settings, data_ctx.db, 2025))

    out = tmp_path / "report.xlsx"
    export_yearly_report(data_ctx.settings, data_ctx.db, 2026, out, actor="cli:test")
    rows = list(load_workbook(out, read_only=True).worksheets[0].iter_rows(values_only=True))
    header = list(rows[0])
    police_row = next(r for r in rows[1:] if r[0] == "police_deregistration")
    assert police_row[header.index("late")] == 1
    assert police_row[header.index("deceased")] == 1


def test_given_payment_ledger_when_overpayments_computed_then_months_after_death_month_are_recovered_once(
        data_ctx: AppContext, tmp_path: Path) -> None:
    a, b = idn(31), idn(33)
    add_pensioners(data_ctx, [(a, "辛八"), (b, "壬九")])
    do_import(data_ctx, "police_deregistration", write_csv(tmp_path / "d.csv", DEATH_HEADER,
                                                           [[a, "辛八", "2026-03-05", ""]]))
    ledger = write_csv(tmp_path / "ledger.csv", ["身份证号", "月份", "金额"],
                       [[p, f"2026-{m:02d}", "3125.50"] for p in (a, b) for m in range(2, 7)])

    r = compute_overpayments(data_ctx.db, ledger, actor="cli:test")
    again = compute_overpayments(data_ctx.db, ledger, actor="cli:test")

    assert (r.pensioners, r.months, r.amount_cents) == (1, 3, 3 * 312550)  # April, May, June
    assert again.already_computed
    out = tmp_path / "over.csv"
    assert export_overpayments(data_ctx.db, out) == 1
    row = _read_csv(out)[0]
    assert (row["id_number"], row["months"], row["amount_yuan"]) == (a, "2026-04 2026-05 2026-06", "9376.50")


def test_given_import_with_bad_rows_when_rejects_exported_then_every_row_and_reason_listed(
        data_ctx: AppContext, tmp_path: Path) -> None:
    a = idn(35)
    add_pensioners(data_ctx, [(a, "癸十")])
    s = do_import(data_ctx, "police_deregistration", write_csv(tmp_path / "d.csv", DEATH_HEADER, [
        [a, "癸十", "2026-03-05", ""], [a, "癸十", "2026-03-05", ""], ["123", "某", "2026-03-05", ""],
        [a, "", "2026-03-06", ""]]))

    n = export_rejects(data_ctx.db, tmp_path / "rej.csv", import_id=s.import_id)

    rows = _read_csv(tmp_path / "rej.csv")
    assert n == 3
    assert [(r["row_no"], r["reason"]) for r in rows] == [("3", "DUPLICATE_ROW"), ("4", "BAD_ID_NUMBER"),
                                                          ("5", "MISSING_NAME")]
    assert all(r["department"] == "police_deregistration" for r in rows)


def test_given_exports_when_done_then_each_is_audited_in_an_intact_chain(data_ctx: AppContext, tmp_path: Path) -> None:
    export_suspensions(data_ctx.db, tmp_path / "s.csv", actor="cli:test")
    export_resumptions(data_ctx.db, tmp_path / "r.csv", actor="cli:test")
    export_unmatched(data_ctx.db, tmp_path / "u.csv", actor="cli:test")

    with data_ctx.db.session() as s:
        actions = s.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
        assert actions == ["data.export.suspensions", "data.export.resumptions", "data.export.unmatched"]
        assert verify_chain(s).ok
