"""``lifecert data ...``: monthly data comparison from the command line.

Until staff accounts and roles exist, the CLI (run by an operator on the server, with
access to the data directory) is the only way to import extracts and produce lists;
every import and export is audited with the operating-system user as actor.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from lifecert.config import Settings
    from lifecert.services.datamatch.importer import ImportSummary
    from lifecert.storage.db import Database

console = Console()


def _open() -> tuple[Settings, Database]:
    from lifecert.config import get_settings
    from lifecert.storage.db import Database

    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    return settings, Database(settings.resolved_database_url, audit_key=settings.audit_key_bytes())


def _print_summary(s: ImportSummary) -> None:
    if s.already_imported:
        console.print(f"[yellow]already imported[/] as import #{s.import_id} ({s.file_name}); nothing changed")
    t = Table(title=f"import #{s.import_id}: {s.department} ({s.kind}) period {s.period}", show_header=False)
    timing = "on time" if s.on_time else "[red]late[/]"
    for k, v in [
        ("file", f"{s.file_name} [{s.file_format} {s.encoding}] sha256 {s.file_sha256[:12]}"),
        ("due", f"{s.due_date} ({timing})"),
        ("rows", s.rows_total), ("valid", s.rows_valid), ("rejected", s.rows_rejected),
        ("duplicate in file", s.rows_duplicate), ("seen in earlier files", s.rows_seen_before),
        ("matched", s.matches),
        ("outcomes", ", ".join(f"{k}={v}" for k, v in sorted(s.outcomes.items())) or "-"),
        ("suspensions", s.suspensions), ("resumptions", s.resumptions),
        ("confirmations", s.confirmations), ("review cases", s.review_cases),
    ]:
        t.add_row(k, str(v))
    console.print(t)
    if s.rejects:
        console.print(f"first {len(s.rejects)} rejected rows:")
        for r in s.rejects:
            console.print(f"  row {r.row_no}: {r.reason} {r.detail} {r.id_masked}")


def register(app: typer.Typer) -> None:
    from lifecert.cli import friendly_errors

    data = typer.Typer(no_args_is_help=True, help="Monthly data comparison: department extracts, lists, reports")
    app.add_typer(data, name="data")

    @data.command("import")
    @friendly_errors
    def import_(
        files: Annotated[list[Path], typer.Argument(help="CSV or XLSX extract(s) from this department")],
        source: Annotated[str, typer.Option("--source", "-s", help="department code (its mapping file name)")],
        kind: Annotated[str | None, typer.Option(help="death | imprisonment | alive_evidence (checked)")] = None,
        period: Annotated[str | None, typer.Option(help="month covered, YYYY-MM (default: last month)")] = None,
        mapping: Annotated[Path | None, typer.Option(help="explicit mapping YAML instead of the data dir's")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
        ledger: Annotated[Path | None, typer.Option(
            help="payment ledger CSV (id_number, month, amount): compute overpayments after the import")] = None,
    ) -> None:
        """Import extract file(s): validate, match, suspend/resume, confirm, queue reviews."""
        from lifecert.services.datamatch import run_import
        from lifecert.services.datamatch.reports import compute_overpayments

        settings, db = _open()
        for f in files:
            s = run_import(settings, db, source, f, kind=kind, period=period, mapping_path=mapping)
            if as_json:
                console.print_json(json.dumps(s.as_dict(), ensure_ascii=False))
            else:
                _print_summary(s)
        if ledger is not None:
            r = compute_overpayments(db, ledger)
            console.print("ledger already processed; nothing changed" if r.already_computed else
                          f"overpayments: {r.pensioners} pensioner(s), {r.months} month(s), "
                          f"{r.amount_cents / 100:.2f} yuan to recover (list: lifecert data overpayments -o FILE)")

    @data.command("suspensions")
    @friendly_errors
    def suspensions(
        out: Annotated[Path, typer.Option("--out", "-o", help=".csv or .xlsx for the payment system")],
        all_: Annotated[bool, typer.Option("--all", help="include suspensions exported before")] = False,
    ) -> None:
        """Write the suspension list (new recommendations unless --all)."""
        from lifecert.services.datamatch.reports import export_suspensions

        _, db = _open()
        n = export_suspensions(db, out, include_exported=all_)
        console.print(f"{n} suspension(s) written to {out}")

    @data.command("resumptions")
    @friendly_errors
    def resumptions(
        out: Annotated[Path, typer.Option("--out", "-o", help=".csv or .xlsx for the payment system")],
        as_of: Annotated[str | None, typer.Option(help="due on or before this date (default today)")] = None,
    ) -> None:
        """Write resumptions due (sentence ended or release reported) and apply them."""
        from lifecert.services.datamatch.reports import export_resumptions

        _, db = _open()
        n = export_resumptions(db, out, as_of=date.fromisoformat(as_of) if as_of else None)
        console.print(f"{n} resumption(s) written to {out}")

    @data.command("unmatched")
    @friendly_errors
    def unmatched(
        out: Annotated[Path, typer.Option("--out", "-o")],
        source: Annotated[str | None, typer.Option("--source", "-s", help="one department only")] = None,
        import_id: Annotated[int | None, typer.Option(help="one import only")] = None,
    ) -> None:
        """Write records that matched no pensioner, per department."""
        from lifecert.services.datamatch.reports import export_unmatched

        _, db = _open()
        n = export_unmatched(db, out, department=source, import_id=import_id)
        console.print(f"{n} unmatched record(s) written to {out}")

    @data.command("rejects")
    @friendly_errors
    def rejects(
        out: Annotated[Path, typer.Option("--out", "-o")],
        import_id: Annotated[int | None, typer.Option(help="one import only")] = None,
    ) -> None:
        """Write rejected and duplicate rows with their reasons (to send back to the department)."""
        from lifecert.services.datamatch.reports import export_rejects

        _, db = _open()
        n = export_rejects(db, out, import_id=import_id)
        console.print(f"{n} rejected row(s) written to {out}")

    @data.command("runs")
    @friendly_errors
    def runs(limit: Annotated[int, typer.Option(help="how many recent imports")] = 30) -> None:
        """List recent imports with their row counts and outcomes."""
        from lifecert.services.datamatch.reports import recent_imports

        _, db = _open()
        t = Table(title="recent imports")
        for h in ("#", "department", "period", "received", "on time", "rows", "valid", "rejected", "matches",
                  "outcomes"):
            t.add_column(h)
        for i in recent_imports(db, limit):
            t.add_row(str(i.id), i.department, i.period, f"{i.received_at:%Y-%m-%d}", "yes" if i.on_time else "late",
                      str(i.rows_total), str(i.rows_valid), str(i.rows_rejected), str(i.matches),
                      ", ".join(f"{k}={v}" for k, v in sorted((i.counts or {}).items())))
        console.print(t)

    @data.command("report")
    @friendly_errors
    def report(
        year: Annotated[int, typer.Option(help="calendar year of the extract periods")],
        out: Annotated[Path | None, typer.Option("--out", "-o", help="also write .csv or .xlsx")] = None,
    ) -> None:
        """Yearly department report: extracts delivered, on time/late, rows, valid rows, matches, outcomes."""
        from lifecert.services.datamatch.reports import export_yearly_report, yearly_report

        settings, db = _open()
        rep = (export_yearly_report(settings, db, year, out) if out
               else yearly_report(settings, db, year))
        t = Table(title=f"department report {year}")
        for h in ("department", "kind", "delivered/expected", "on time", "late", "rows", "valid", "matches",
                  "outcomes"):
            t.add_column(h)
        for r in rep:
            t.add_row(r.department, r.kind, f"{r.delivered}/{r.expected}", str(r.on_time), str(r.late),
                      str(r.rows), str(r.valid_rows), str(r.matches),
                      ", ".join(f"{k}={v}" for k, v in sorted(r.outcomes.items())))
        console.print(t)
        if out:
            console.print(f"written to {out}")

    @data.command("overpayments")
    @friendly_errors
    def overpayments(
        ledger: Annotated[Path, typer.Option(help="payment ledger CSV: id_number, month, amount")],
        out: Annotated[Path | None, typer.Option("--out", "-o", help="write the recovery list")] = None,
    ) -> None:
        """Compute months paid after recorded deaths from a payment ledger."""
        from lifecert.services.datamatch.reports import compute_overpayments, export_overpayments

        _, db = _open()
        r = compute_overpayments(db, ledger)
        if r.already_computed:
            console.print("this ledger was already processed; nothing changed")
        else:
            console.print(f"{r.ledger_rows} ledger rows: {r.pensioners} pensioner(s), {r.months} month(s), "
                          f"{r.amount_cents / 100:.2f} yuan to recover")
        if out:
            n = export_overpayments(db, out)
            console.print(f"{n} overpayment(s) written to {out}")

    @data.command("tipoff")
    @friendly_errors
    def tipoff(
        description: Annotated[str, typer.Option(help="what was reported")],
        id_number: Annotated[str | None, typer.Option(help="the pensioner's ID number")] = None,
        name: Annotated[str | None, typer.Option(help="the pensioner's name")] = None,
        contact: Annotated[str | None, typer.Option(help="the reporter's contact (optional)")] = None,
    ) -> None:
        """Record a tip-off received by phone or letter as a review case."""
        from lifecert.services import audit
        from lifecert.services.datamatch.tipoffs import TipOff, submit_tipoff

        _, db = _open()
        with db.session() as s:
            r = submit_tipoff(s, TipOff(description, id_number, name, contact), actor=audit.cli_actor(), role="cli")
        console.print(f"review case #{r.case_id} opened" + (" (pensioner found)" if r.matched_pensioner else ""))

    @data.command("mappings")
    @friendly_errors
    def mappings() -> None:
        """List the departments' column mappings in the data directory (seeding the shipped examples)."""
        from lifecert.services.datamatch.mapping import MappingError, load_mapping, seed_mappings

        settings, _ = _open()
        d = seed_mappings(settings)
        console.print(f"mappings in {d}:")
        for p in sorted(d.glob("*.yaml")):
            try:
                m = load_mapping(p)
                console.print(f"  {m.department:28} {m.kind:15} every {m.cadence_months} month(s), due day "
                              f"{m.due_day}  {m.name}")
            except MappingError as exc:
                console.print(f"  [red]{p.name}: {exc.message}[/]")
