"""Outputs for the payment system and for management: suspension and resumption lists,
unmatched records per department, overpayments from a payment ledger, and the yearly
department report. Every export is audited; every file is written with mode 0600.
"""

from __future__ import annotations

import csv
import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from lifecert.config import Settings
from lifecert.domain.cells import spreadsheet_safe
from lifecert.services import audit
from lifecert.services.datamatch.mapping import all_mappings, normalize_header
from lifecert.services.datamatch.outcomes import IMPRISONED_PREFIX
from lifecert.services.datamatch.reader import ExtractError, inspect_file
from lifecert.storage.db import Database
from lifecert.storage.models import Pensioner, PensionerStatus
from lifecert.storage.models_data import (
    ActionKind,
    ActionStatus,
    DataImport,
    DataRecord,
    DataReject,
    DataSource,
    MatchStatus,
    Outcome,
    Overpayment,
    PaymentAction,
)

REPORT_OUTCOMES = (
    Outcome.DECEASED, Outcome.ALREADY_DECEASED, Outcome.IMPRISONED, Outcome.RELEASED, Outcome.ALIVE_EVIDENCE,
    Outcome.CONFLICT, Outcome.NAME_MISMATCH, Outcome.UNMATCHED,
)


def _open_private(path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # also when the file existed with wider permissions
    return fd


def write_table(path: Path, headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """Write ``rows`` as CSV (UTF-8 with BOM, opens cleanly in Excel) or XLSX by the file suffix; mode 0600.
    Returns the number of data rows."""
    n = 0
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".xlsx"):
        raise ExtractError(f"output {path.name}: use a .csv or .xlsx file name")
    fd = _open_private(path)
    if suffix == ".csv":
        with os.fdopen(fd, "w", encoding="utf-8-sig", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(headers)
            for r in rows:
                w.writerow(["" if v is None else spreadsheet_safe(v) for v in r])
                n += 1
        return n
    os.close(fd)
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("data")
    ws.append(list(headers))

    def cell(v: Any) -> Any:
        if isinstance(v, date):
            v = v.isoformat()
        if not isinstance(v, str):
            return v
        # openpyxl stores any text starting with "=" as a formula; an explicit string cell is shown
        # exactly as the department wrote it and never evaluated (formula injection, issue 11 M6).
        c = WriteOnlyCell(ws, value=v)
        c.data_type = "s"
        return c

    for r in rows:
        ws.append([cell(v) for v in r])
        n += 1
    wb.save(path)
    os.chmod(path, 0o600)
    return n


def _audit(session: Session, actor: str | None, role: str, action: str, path: Path, rows: int,
           **detail: Any) -> None:
    audit.record(session, actor=actor or audit.cli_actor(), role=role, action=action, object_type="file",
                 object_id=path.name[:64], detail={"path": str(path), "rows": rows, **detail})


ACTION_HEADERS = ("action_id", "id_number", "name", "reason", "effective_date", "end_date", "department",
                  "import_id", "row_no", "status")


def _action_rows(session: Session, kind: str, where: list[Any]) -> list[tuple[Any, ...]]:
    q = (
        select(PaymentAction.id, Pensioner.id_number, Pensioner.name, PaymentAction.reason,
               PaymentAction.effective_date, PaymentAction.end_date, PaymentAction.department,
               PaymentAction.import_id, PaymentAction.row_no, PaymentAction.status)
        .join(Pensioner, Pensioner.id == PaymentAction.pensioner_id)
        .where(PaymentAction.kind == kind, *where)
        .order_by(PaymentAction.effective_date, PaymentAction.id)
    )
    return [tuple(r) for r in session.execute(q).all()]


def export_suspensions(db: Database, out: Path, *, include_exported: bool = False, actor: str | None = None,
                       role: str = "cli") -> int:
    """The suspension list for the payment system: recommended suspensions not yet handed over
    (all of them with ``include_exported``). Marks them exported."""
    with db.session() as s:
        where = [] if include_exported else [PaymentAction.status == ActionStatus.RECOMMENDED]
        rows = _action_rows(s, ActionKind.SUSPENSION, where)
        n = write_table(out, ACTION_HEADERS, rows)
        now = datetime.now(UTC)
        for a in s.scalars(select(PaymentAction).where(PaymentAction.id.in_([r[0] for r in rows]))):
            a.status, a.exported_at = ActionStatus.EXPORTED, now
        _audit(s, actor, role, "data.export.suspensions", out, n)
        return n


def export_resumptions(db: Database, out: Path, *, as_of: date | None = None, actor: str | None = None,
                       role: str = "cli") -> int:
    """Resumptions due on or before ``as_of`` (default today) for pensioners not deceased.
    Exporting applies them: a pensioner suspended for imprisonment becomes active again."""
    as_of = as_of or date.today()
    with db.session() as s:
        rows = _action_rows(s, ActionKind.RESUMPTION, [
            PaymentAction.status != ActionStatus.APPLIED, PaymentAction.effective_date <= as_of,
            Pensioner.status != PensionerStatus.DECEASED,
        ])
        n = write_table(out, ACTION_HEADERS, rows)
        now = datetime.now(UTC)
        for a in s.scalars(select(PaymentAction).where(PaymentAction.id.in_([r[0] for r in rows]))):
            a.status, a.exported_at = ActionStatus.APPLIED, now
            p = s.get(Pensioner, a.pensioner_id)
            if p is not None and p.status == PensionerStatus.SUSPENDED and (p.status_reason or "").startswith(
                    IMPRISONED_PREFIX):
                p.status, p.status_reason = PensionerStatus.ACTIVE, f"resumed {a.effective_date} (released)"
        _audit(s, actor, role, "data.export.resumptions", out, n, as_of=as_of.isoformat())
        return n


UNMATCHED_HEADERS = ("department", "import_id", "period", "row_no", "id_number", "name", "event_date", "end_date",
                     "detail")


def export_unmatched(db: Database, out: Path, *, department: str | None = None, import_id: int | None = None,
                     actor: str | None = None, role: str = "cli") -> int:
    """Records that named no pensioner, per department (to send back or to check by hand)."""
    with db.session() as s:
        q = (
            select(DataRecord.department, DataRecord.import_id, DataImport.period, DataRecord.row_no,
                   DataRecord.id_number, DataRecord.name, DataRecord.event_date, DataRecord.end_date,
                   DataRecord.detail)
            .join(DataImport, DataImport.id == DataRecord.import_id)
            .where(DataRecord.match == MatchStatus.UNMATCHED)
            .order_by(DataRecord.department, DataRecord.import_id, DataRecord.row_no)
        )
        if department:
            q = q.where(DataRecord.department == department)
        if import_id:
            q = q.where(DataRecord.import_id == import_id)
        n = write_table(out, UNMATCHED_HEADERS, (tuple(r) for r in s.execute(q)))
        _audit(s, actor, role, "data.export.unmatched", out, n, department=department, import_id=import_id)
        return n


REJECT_HEADERS = ("import_id", "department", "file_name", "row_no", "reason", "detail", "id_number_masked")


def export_rejects(db: Database, out: Path, *, import_id: int | None = None, actor: str | None = None,
                   role: str = "cli") -> int:
    """Every rejected or duplicate row with its reason (all imports, or one), to send back to the department."""
    with db.session() as s:
        q = (
            select(DataReject.import_id, DataImport.department, DataImport.file_name, DataReject.row_no,
                   DataReject.reason, DataReject.detail, DataReject.id_number_masked)
            .join(DataImport, DataImport.id == DataReject.import_id)
            .order_by(DataReject.import_id, DataReject.row_no)
        )
        if import_id:
            q = q.where(DataReject.import_id == import_id)
        n = write_table(out, REJECT_HEADERS, (tuple(r) for r in s.execute(q)))
        _audit(s, actor, role, "data.export.rejects", out, n, import_id=import_id)
        return n


def recent_imports(db: Database, limit: int = 30) -> list[DataImport]:
    with db.session() as s:
        rows = list(s.scalars(select(DataImport).order_by(DataImport.id.desc()).limit(limit)))
        s.expunge_all()
        return rows


@dataclass(frozen=True)
class DepartmentYear:
    department: str
    name: str
    kind: str
    expected: int
    delivered: int
    on_time: int
    late: int
    missing: int
    rows: int
    valid_rows: int
    rejected_rows: int
    duplicate_rows: int
    matches: int
    outcomes: dict[str, int]

    def flat(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "outcomes"}
        d.update({o: self.outcomes.get(o, 0) for o in REPORT_OUTCOMES})
        return d


def yearly_report(settings: Settings, db: Database, year: int) -> list[DepartmentYear]:
    """Per department and year: extracts expected and delivered, on time or late, rows, valid rows,
    matches and outcomes. Departments with a mapping but no delivery show as missing."""
    with db.session() as s:
        return department_years(settings, s, year)


def department_years(settings: Settings, session: Session, year: int) -> list[DepartmentYear]:
    """:func:`yearly_report` in the caller's session (the agency dashboard reads it beside its own queries)."""
    depts: dict[str, tuple[str, str, int]] = {m.department: (m.name, m.kind, m.cadence_months)
                                             for m in all_mappings(settings)}
    for src in session.scalars(select(DataSource)):
        depts.setdefault(src.code, (src.name, src.kind, src.cadence_months))
    imports = session.scalars(select(DataImport).where(DataImport.period.like(f"{year:04d}-%"),
                                                       DataImport.status == "finished")).all()
    by: dict[str, list[DataImport]] = defaultdict(list)
    for imp in imports:
        by[imp.department].append(imp)
        depts.setdefault(imp.department, (imp.department, imp.kind, 1))
    out = []
    for code in sorted(depts):
        name, kind, cadence = depts[code]
        imps = by.get(code, [])
        expected = 12 // cadence
        periods = {i.period for i in imps}
        outcomes: dict[str, int] = defaultdict(int)
        for i in imps:
            for k, v in (i.counts or {}).items():
                outcomes[k] += int(v)
        out.append(DepartmentYear(
            department=code, name=name, kind=kind, expected=expected, delivered=len(imps),
            on_time=sum(1 for i in imps if i.on_time), late=sum(1 for i in imps if not i.on_time),
            missing=max(0, expected - len(periods)), rows=sum(i.rows_total for i in imps),
            valid_rows=sum(i.rows_valid for i in imps), rejected_rows=sum(i.rows_rejected for i in imps),
            duplicate_rows=sum(i.rows_duplicate for i in imps), matches=sum(i.matches for i in imps),
            outcomes=dict(outcomes),
        ))
    return out


def export_yearly_report(settings: Settings, db: Database, year: int, out: Path, *, actor: str | None = None,
                         role: str = "cli") -> list[DepartmentYear]:
    rep = yearly_report(settings, db, year)
    rows = [r.flat() for r in rep]
    headers = list(rows[0]) if rows else ["department"]
    with db.session() as s:
        n = write_table(out, headers, ([r[h] for h in headers] for r in rows))
        _audit(s, actor, role, "data.export.report", out, n, year=year)
    return rep


# -- overpayments ---------------------------------------------------------------------------------

LEDGER_COLUMNS = {
    "id_number": ("id_number", "身份证号", "身份证号码", "公民身份号码"),
    "month": ("month", "月份", "发放月份"),
    "amount": ("amount", "金额", "发放金额"),
}


@dataclass(frozen=True)
class OverpaymentSummary:
    ledger_rows: int
    pensioners: int
    months: int
    amount_cents: int
    already_computed: bool


def _month(s: str) -> str:
    s = s.strip().replace("/", "-").replace(".", "-")
    if len(s) == 6 and s.isdigit():
        s = f"{s[:4]}-{s[4:]}"
    y, m = s[:7].split("-")
    return f"{int(y):04d}-{int(m):02d}"


def compute_overpayments(db: Database, ledger: Path, *, actor: str | None = None, role: str = "cli"
                         ) -> OverpaymentSummary:
    """Months paid after the month of death, per deceased pensioner, from a payment ledger CSV with
    columns id_number, month (YYYY-MM), amount (yuan). The pension for the month of death itself is
    due; later months are overpaid. The same ledger file is only counted once."""
    info = inspect_file(ledger)
    if info.format != "csv":
        raise ExtractError(f"{ledger.name}: the payment ledger must be a CSV file")
    with db.session() as s:
        done = s.scalar(select(func.count()).select_from(Overpayment)
                        .where(Overpayment.ledger_sha256 == info.sha256)) or 0
        if done:
            return OverpaymentSummary(0, done, 0, 0, True)
        deaths: dict[str, tuple[int, int, date]] = {}
        q = (select(Pensioner.id_number, Pensioner.id, PaymentAction.id, PaymentAction.effective_date)
             .join(PaymentAction, PaymentAction.pensioner_id == Pensioner.id)
             .where(PaymentAction.kind == ActionKind.SUSPENSION, PaymentAction.reason == Outcome.DECEASED)
             .order_by(PaymentAction.effective_date.desc()))
        for idn, pid, aid, d in s.execute(q):
            deaths[idn] = (pid, aid, d)  # earliest death date wins (ordered descending)
        months: dict[str, dict[str, int]] = defaultdict(dict)
        n = 0
        with ledger.open("r", encoding=info.encoding, newline="") as fh:
            reader = csv.reader(fh)
            header = [normalize_header(h) for h in next(reader, [])]
            idx = {}
            for fld, names in LEDGER_COLUMNS.items():
                found = [header.index(c) for c in names if c in header]
                if not found:
                    raise ExtractError(f"{ledger.name}: ledger needs a {fld} column (one of {', '.join(names)})")
                idx[fld] = found[0]
            for line_no, row in enumerate(reader, start=2):
                if not row:
                    continue
                n += 1
                idn = row[idx["id_number"]].strip().upper()
                hit = deaths.get(idn)
                if hit is None:
                    continue
                try:
                    month = _month(row[idx["month"]])
                    cents = round(float(row[idx["amount"]]) * 100)
                except (ValueError, IndexError) as exc:
                    raise ExtractError(f"{ledger.name} line {line_no}: bad month or amount ({exc})") from exc
                if month > f"{hit[2]:%Y-%m}":
                    months[idn][month] = months[idn].get(month, 0) + cents
        total_m = total_c = 0
        rows = []
        for idn, per in months.items():
            pid, aid, d = deaths[idn]
            cents = sum(per.values())
            total_m += len(per)
            total_c += cents
            rows.append({"pensioner_id": pid, "action_id": aid, "death_date": d, "months": sorted(per),
                         "month_count": len(per), "amount_cents": cents, "ledger_sha256": info.sha256,
                         "created_at": datetime.now(UTC)})
        if rows:
            s.execute(insert(Overpayment), rows)
        audit.record(s, actor=actor or audit.cli_actor(), role=role, action="data.overpayments",
                     object_type="file", object_id=ledger.name[:64],
                     detail={"ledger_sha256": info.sha256, "rows": n, "pensioners": len(rows),
                             "months": total_m, "amount_cents": total_c})
        return OverpaymentSummary(n, len(rows), total_m, total_c, False)


def export_overpayments(db: Database, out: Path, *, actor: str | None = None, role: str = "cli") -> int:
    with db.session() as s:
        q = (select(Pensioner.id_number, Pensioner.name, Overpayment.death_date, Overpayment.month_count,
                    Overpayment.amount_cents, Overpayment.months, Overpayment.ledger_sha256)
             .join(Pensioner, Pensioner.id == Overpayment.pensioner_id).order_by(Overpayment.id))
        rows = ((idn, name, d, mc, f"{cents / 100:.2f}", " ".join(m), sha[:12])
                for idn, name, d, mc, cents, m, sha in s.execute(q))
        n = write_table(out, ("id_number", "name", "death_date", "months_overpaid", "amount_yuan", "months",
                              "ledger"), rows)
        _audit(s, actor, role, "data.export.overpayments", out, n)
        return n
