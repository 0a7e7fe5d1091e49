"""``lifecert policy ...`` and ``lifecert campaign ...``: the agency's yearly certification cycle.

Run by an operator on the server; every change and every list written is audited with the
operating-system user as actor (counts only, never who was listed).
"""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from lifecert.services.campaign import PlanSummary
    from lifecert.storage.db import Database

console = Console(stderr=True)


def _db() -> Database:
    from lifecert.config import get_settings
    from lifecert.storage.db import Database

    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    return Database(settings.resolved_database_url, audit_key=settings.audit_key_bytes())


def _print_summary(s: PlanSummary) -> None:
    t = Table(title=f"campaign {s.month}: {s.rows} pensioner(s) due")
    channels = sorted({ch for _, ch in s.by_region_channel})
    t.add_column("region")
    for ch in channels:
        t.add_column(ch, justify="right")
    regions = sorted({r for r, _ in s.by_region_channel})
    for r in regions:
        t.add_row(r, *(str(s.by_region_channel.get((r, ch), 0)) for ch in channels))
    console.print(t)
    console.print("by state: " + (", ".join(f"{k}={v}" for k, v in sorted(s.by_state.items())) or "-"))


def register(app: typer.Typer) -> None:
    from lifecert.cli import friendly_errors

    policy = typer.Typer(no_args_is_help=True, help="Certification policy per region (cycle or birthday window)")
    campaign = typer.Typer(no_args_is_help=True, help="Monthly certification campaign: who is due")
    app.add_typer(policy, name="policy")
    app.add_typer(campaign, name="campaign")

    @policy.command("set")
    @friendly_errors
    def policy_set(
        kind: Annotated[str, typer.Argument(help="fixed_cycle | birthday_window")],
        region: Annotated[str, typer.Option(help="region prefix: 2, 4 or 6 digits; '' = everywhere")] = "",
        effective_from: Annotated[str | None, typer.Option("--from", help="YYYY-MM-DD (default today)")] = None,
        cycle_months: Annotated[int, typer.Option(help="fixed_cycle: months between certifications")] = 12,
        open_days: Annotated[int, typer.Option(help="days the window opens before the due date / birthday month")] = 30,
        grace_days: Annotated[int, typer.Option(help="days after the window closes before overdue")] = 30,
        early_credit_days: Annotated[int, typer.Option(
            help="birthday_window: a confirmation this many days before the window opens counts for it")] = 90,
    ) -> None:
        """Set a region's policy from a date on (earlier policies stay for history)."""
        from lifecert.domain.errors import ErrorCode, LifecertError
        from lifecert.domain.policy import CertificationPolicy, PolicyKind
        from lifecert.services.audit import cli_actor
        from lifecert.services.policy import set_policy

        try:
            k = PolicyKind(kind)
            start = date.fromisoformat(effective_from) if effective_from else date.today()
        except ValueError:
            raise LifecertError("kind must be fixed_cycle or birthday_window and --from YYYY-MM-DD",
                                code=ErrorCode.BAD_REQUEST) from None
        p = CertificationPolicy(region, k, start, cycle_months=cycle_months, open_days=open_days,
                                grace_days=grace_days, early_credit_days=early_credit_days)
        db = _db()
        with db.session() as s:
            row = set_policy(s, p, actor=cli_actor(), role="operator")
            where = row.region_prefix or "*"
            console.print(f"policy #{row.id}: {row.kind} for region '{where}' from {row.effective_from}")

    @policy.command("list")
    @friendly_errors
    def policy_list() -> None:
        """Every stored policy, oldest first (the default applies where none matches)."""
        from lifecert.services.policy import EPOCH, policies_in_force

        with _db().session() as s:
            t = Table("region", "kind", "from", "cycle months", "open days", "grace days", "early credit days")
            for p in policies_in_force(s):
                label = p.region_prefix or ("* (built-in default)" if p.effective_from == EPOCH else "*")
                t.add_row(label, str(p.kind), p.effective_from.isoformat(),
                          str(p.cycle_months), str(p.open_days), str(p.grace_days), str(p.early_credit_days))
            console.print(t)

    @campaign.command("plan")
    @friendly_errors
    def plan(
        month: Annotated[str, typer.Option(help="YYYY-MM")],
        out: Annotated[Path | None, typer.Option("--out", "-o", help="file to write (default: stdout)")] = None,
        fmt: Annotated[str, typer.Option("--format", help="csv | jsonl")] = "csv",
        region: Annotated[str, typer.Option(help="only this region prefix")] = "",
        include_overdue: Annotated[bool, typer.Option("--overdue/--no-overdue",
                                                      help="also list those already overdue")] = True,
        summary_json: Annotated[Path | None, typer.Option(help="write the counts as JSON here")] = None,
    ) -> None:
        """Who is due in MONTH, by region and channel (streamed: constant memory)."""
        from lifecert.domain.errors import ErrorCode, LifecertError
        from lifecert.domain.policy import parse_month
        from lifecert.services import audit
        from lifecert.services.campaign import plan_month, write_plan

        y, m = parse_month(month)
        if fmt not in ("csv", "jsonl"):
            raise LifecertError("format must be csv or jsonl", code=ErrorCode.BAD_REQUEST)
        if region and not (region.isdigit() and len(region) <= 6):
            raise LifecertError("region must be up to 6 digits", code=ErrorCode.BAD_REQUEST)
        db = _db()
        with db.session() as s:
            rows = plan_month(s, y, m, region_prefix=region, include_overdue=include_overdue)
            if out is None:
                summary = write_plan(rows, sys.stdout, fmt=fmt, month=month)  # type: ignore[arg-type]
            else:
                with out.open("w", encoding="utf-8", newline="") as fh:
                    summary = write_plan(rows, fh, fmt=fmt, month=month)  # type: ignore[arg-type]
                out.chmod(0o600)
        with db.session() as s:
            audit.record(s, actor=audit.cli_actor(), role="operator", action="campaign.plan", object_type="campaign",
                         object_id=month, detail={"rows": summary.rows, "region": region, "format": fmt,
                                                  "by_state": dict(summary.by_state)})
        if summary_json is not None:
            summary_json.write_text(json.dumps(summary.as_dict(), ensure_ascii=False, indent=1), encoding="utf-8")
        _print_summary(summary)

    susp = typer.Typer(no_args_is_help=True, help="Payment suspensions of the overdue (two-person sign-off)")
    app.add_typer(susp, name="suspensions")

    @susp.command("sweep")
    @friendly_errors
    def susp_sweep(
        today: Annotated[str | None, typer.Option(help="YYYY-MM-DD (default today)")] = None,
        region: Annotated[str, typer.Option(help="only this region prefix")] = "",
    ) -> None:
        """The daily job: resume or cancel cases with new confirmations, open cases for the newly overdue.
        Signing (propose, approve) happens in the console by two different caseworkers."""
        from lifecert.domain.errors import ErrorCode, LifecertError
        from lifecert.services import suspensions

        try:
            day = date.fromisoformat(today) if today else date.today()
        except ValueError:
            raise LifecertError("--today must be YYYY-MM-DD", code=ErrorCode.BAD_REQUEST) from None
        with _db().session() as s:
            r = suspensions.sweep(s, day, region_prefix=region)
        console.print(f"opened {r.opened}, cancelled {r.cancelled}, resumed {r.resumed}")

    @susp.command("export")
    @friendly_errors
    def susp_export(
        out: Annotated[Path, typer.Option("--out", "-o", help=".csv or .xlsx for the payment system")],
        all_: Annotated[bool, typer.Option("--all", help="include rows handed over before")] = False,
    ) -> None:
        """Approved suspensions and resumptions (with months owed) not yet handed to the payment system."""
        from lifecert.services import audit, suspensions

        with _db().session() as s:
            n = suspensions.export_for_payment(s, out, actor=audit.cli_actor(), role="operator", include_exported=all_)
        console.print(f"{n} row(s) written to {out}")

    @susp.command("status")
    @friendly_errors
    def susp_status(region: Annotated[str, typer.Option(help="only this region prefix")] = "") -> None:
        """Cases by region and status."""
        from lifecert.services import suspensions

        with _db().session() as s:
            counts = suspensions.counts_by_region(s, region_prefix=region)
        states = ("open", "proposed", "approved", "resumed", "cancelled")
        t = Table("region", *states)
        for r, c in sorted(counts.items()):
            t.add_row(r, *(str(c.get(k, 0)) for k in states))
        console.print(t)

    @app.command("remind")
    @friendly_errors
    def remind_cmd(
        month: Annotated[str, typer.Option(help="YYYY-MM: remind those whose window or grace runs this month")],
        page_url: Annotated[str, typer.Option(help="the pensioner page's https address, written in the text")],
        csv_out: Annotated[Path | None, typer.Option("--csv", help="write phone,text,ref for an SMS gateway")] = None,
        smtp: Annotated[str | None, typer.Option(help="HOST:PORT of an SMTP relay (e-mail-to-SMS gateway)")] = None,
        smtp_from: Annotated[str, typer.Option(help="sender address")] = "noreply@localhost",
        smtp_to: Annotated[str, typer.Option(help="recipient address template")] = "{phone}@sms.invalid",
        smtp_starttls: Annotated[bool, typer.Option(help="STARTTLS before sending")] = False,
        smtp_user: Annotated[str | None, typer.Option(envvar="LIFECERT_REMIND_SMTP_USER")] = None,
        smtp_password: Annotated[str | None, typer.Option(envvar="LIFECERT_REMIND_SMTP_PASSWORD",
                                                          hidden=True)] = None,
        webhook: Annotated[str | None, typer.Option(help="URL of an SMS gateway's HTTP API (signed JSON POST)")] = None,
        webhook_secret: Annotated[str | None, typer.Option(envvar="LIFECERT_REMIND_WEBHOOK_SECRET", hidden=True,
                                                           help="HMAC key (from the environment)")] = None,
        channel: Annotated[list[str] | None, typer.Option(help="channels to remind (default self_service)")] = None,
        region: Annotated[str, typer.Option(help="only this region prefix")] = "",
        rate: Annotated[float, typer.Option(help="sends per second (0: unlimited)")] = 10.0,
        retries: Annotated[int, typer.Option(help="retries of a transient failure")] = 3,
        backoff: Annotated[float, typer.Option(help="first retry after this many seconds, doubling")] = 1.0,
        dry_run: Annotated[bool, typer.Option("--dry-run", help="count only: send and record nothing")] = False,
    ) -> None:
        """Send the month's certification reminders (once per pensioner, window and stage)."""
        from lifecert.domain.errors import ErrorCode, LifecertError
        from lifecert.domain.policy import Channel, parse_month
        from lifecert.services import audit
        from lifecert.services.notify import Notifier, SmtpNotifier, WebhookNotifier
        from lifecert.services.reminders import remind

        y, m = parse_month(month)
        outputs = [x for x in (csv_out, smtp, webhook) if x]
        if len(outputs) != 1:
            raise LifecertError("give exactly one of --csv, --smtp or --webhook", code=ErrorCode.BAD_REQUEST)
        try:
            chans = tuple(Channel(c) for c in (channel or ["self_service"]))
        except ValueError:
            raise LifecertError("unknown channel", code=ErrorCode.BAD_REQUEST) from None
        notifier: Notifier | None = None
        if smtp:
            host, _, port = smtp.rpartition(":")
            if not host or not port.isdigit():
                raise LifecertError("--smtp must be HOST:PORT", code=ErrorCode.BAD_REQUEST)
            notifier = SmtpNotifier(host, int(port), smtp_from, to_template=smtp_to, starttls=smtp_starttls,
                                    username=smtp_user, password=smtp_password)
        elif webhook:
            if not webhook_secret:
                raise LifecertError("set LIFECERT_REMIND_WEBHOOK_SECRET", code=ErrorCode.BAD_REQUEST)
            notifier = WebhookNotifier(webhook, webhook_secret.encode())
        r = remind(_db(), y, m, page_url=page_url, notifier=notifier, csv_out=csv_out, dry_run=dry_run,
                   channels=chans, region_prefix=region, rate_per_s=rate, retries=retries, backoff_s=backoff,
                   actor=audit.cli_actor(), role="operator")
        verb = "would remind" if dry_run else "sent"
        n = sum(r.by_stage.values()) if dry_run else r.sent + r.exported
        console.print(f"{month}: {r.candidates} due; {verb} {n}"
                      f" ({', '.join(f'{k}={v}' for k, v in sorted(r.by_stage.items())) or '-'}); already {r.already}; "
                      f"no mobile number {r.no_phone}; failed {r.failed}; retries {r.retries}")
