"""``lifecert remind``: reminders through a real SMTP sink and a local webhook on 127.0.0.1, retries
with backoff, the durable record (a rerun sends nothing twice), dry run, CSV for SMS gateways."""

from __future__ import annotations

import csv
import logging
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from lifecert.cli import app
from lifecert.config import get_settings
from lifecert.domain.errors import LifecertError
from lifecert.services.context import AppContext
from lifecert.services.notify import SmtpNotifier, WebhookNotifier
from lifecert.services.reminders import remind, valid_mobile
from lifecert.storage.db import Database
from lifecert.storage.models import AuditEvent, ConfirmationMethod
from lifecert.storage.models_agency import Reminder, ReminderStatus
from tests.integration.agency_support import Webhook, confirm, person, smtp_sink, template_row, webhook_server

URL = "https://rz.example.gov.cn/"
SECRET = b"webhook-secret-0123456789"


def _register(db: Database) -> dict[str, int]:
    """Three due in March 2027 under the default 12-month cycle (window opens 30 days before)."""
    out = {}
    with db.session() as s:
        for key, seq, phone in (("a", 11, "138 0013 8000"), ("b", 13, "+86 139-0000-1111"), ("nophone", 15, None),
                                ("badphone", 17, "0431-1234567")):
            p = person(s, "220202", date(1955, 5, 5), seq, phone=phone, name="王秀英")
            template_row(s, p)
            confirm(s, p, ConfirmationMethod.FACE_SELF_SERVICE, date(2026, 3, 20))
            out[key] = p.id
    return out


def test_given_due_pensioners_when_reminding_by_smtp_then_sent_once_recorded_and_rerun_sends_nothing(
        data_ctx: AppContext, caplog: pytest.LogCaptureFixture) -> None:
    ids = _register(data_ctx.db)
    caplog.set_level(logging.DEBUG)
    with smtp_sink() as sink:
        got = sink.messages
        n = SmtpNotifier("127.0.0.1", sink.port, "noreply@rz.example.gov.cn", to_template="{phone}@sms.example.cn")
        r = remind(data_ctx.db, 2027, 3, page_url=URL, notifier=n, rate_per_s=0)
        # the one without any phone is an assisted-channel pensioner: not a candidate for a text
        assert (r.candidates, r.sent, r.no_phone, r.failed, r.already) == (3, 2, 1, 0, 0)
        assert sorted(m["To"] for m in got) == ["13800138000@sms.example.cn", "13900001111@sms.example.cn"]
        body = got[0].get_payload(decode=True).decode("utf-8")  # type: ignore[union-attr]
        assert URL in body and "2027年3月20日前完成" in body and "养老金领取资格认证" in body
        again = remind(data_ctx.db, 2027, 3, page_url=URL, notifier=n, rate_per_s=0)
        assert (again.sent, again.already) == (0, 2) and len(got) == 2
    with data_ctx.db.session() as s:
        rows = s.scalars(select(Reminder).order_by(Reminder.pensioner_id)).all()
        assert [(r.pensioner_id, r.status, r.via, r.stage, r.to_masked) for r in rows] == [
            (ids["a"], "sent", "smtp", "open", "138****8000"), (ids["b"], "sent", "smtp", "open", "139****1111")]
        runs = s.scalars(select(AuditEvent).where(AuditEvent.action == "reminders.run")).all()
    assert len(runs) == 2 and runs[0].detail["sent"] == 2
    # our logs (the SMTP sink's own mail.log is the test server's, not ours)
    logged = "\n".join(rec.getMessage() for rec in caplog.records if not rec.name.startswith("mail."))
    assert "13800138000" not in logged and "王秀英" not in logged and "reminders 2027-03" in logged


def test_given_failing_webhook_when_reminding_then_retried_with_backoff_and_signed(data_ctx: AppContext) -> None:
    _register(data_ctx.db)
    sleeps: list[float] = []
    with webhook_server(Webhook(SECRET, fail_first=2, fail_status=503)) as hook:
        r = remind(data_ctx.db, 2027, 3, page_url=URL, notifier=WebhookNotifier(hook.url, SECRET), rate_per_s=0,
                   retries=3, backoff_s=0.5, sleep=sleeps.append)
    assert (r.sent, r.failed, r.retries) == (2, 0, 2)
    assert sleeps == [0.5, 1.0]  # exponential backoff after each 503
    assert hook.calls == 4 and hook.bad_signatures == 0
    assert sorted(x["to"] for x in hook.received) == ["13800138000", "13900001111"]
    with data_ctx.db.session() as s:
        attempts = sorted(s.scalars(select(Reminder.attempts)))
    assert attempts == [1, 3]


def test_given_webhook_refusing_for_good_when_reminding_then_failed_recorded_and_rerun_retries(
        data_ctx: AppContext) -> None:
    _register(data_ctx.db)
    with webhook_server(Webhook(SECRET, fail_first=2, fail_status=400)) as hook:
        n = WebhookNotifier(hook.url, SECRET)
        r = remind(data_ctx.db, 2027, 3, page_url=URL, notifier=n, rate_per_s=0, retries=3, sleep=lambda _: None)
        assert (r.sent, r.failed, r.retries) == (0, 2, 0) and hook.calls == 2  # 4xx: no retry
        with data_ctx.db.session() as s:
            assert {(x.status, x.last_error) for x in s.scalars(select(Reminder))} == {("failed", "HTTP 400")}
        r2 = remind(data_ctx.db, 2027, 3, page_url=URL, notifier=n, rate_per_s=0, sleep=lambda _: None)
    assert (r2.sent, r2.already) == (2, 0)


def test_given_rate_limit_when_reminding_then_sends_spaced(data_ctx: AppContext) -> None:
    _register(data_ctx.db)
    now = [100.0]
    waits: list[float] = []

    def sleep(d: float) -> None:
        waits.append(round(d, 3))
        now[0] += d

    with webhook_server(Webhook(SECRET)) as hook:
        remind(data_ctx.db, 2027, 3, page_url=URL, notifier=WebhookNotifier(hook.url, SECRET), rate_per_s=2,
               sleep=sleep, clock=lambda: now[0])
    assert waits == [0.5]  # two sends at 2/s: the second waits half a second


def test_given_dry_run_and_csv_when_reminding_then_nothing_recorded_then_csv_once(
        data_ctx: AppContext, tmp_path: Path) -> None:
    _register(data_ctx.db)
    out = tmp_path / "sms.csv"
    dry = remind(data_ctx.db, 2027, 3, page_url=URL, csv_out=out, dry_run=True)
    assert dry.by_stage == {"open": 2} and dry.exported == 0 and not out.exists()
    with data_ctx.db.session() as s:
        assert s.scalars(select(Reminder)).first() is None
    r = remind(data_ctx.db, 2027, 3, page_url=URL, csv_out=out)
    rows = list(csv.reader(out.open(encoding="utf-8-sig")))
    assert r.exported == 2 and rows[0] == ["phone", "text", "ref"] and len(rows) == 3
    assert out.stat().st_mode & 0o077 == 0
    r2 = remind(data_ctx.db, 2027, 3, page_url=URL, csv_out=tmp_path / "sms2.csv")
    assert r2.exported == 0 and r2.already == 2
    with data_ctx.db.session() as s:
        assert {x.status for x in s.scalars(select(Reminder))} == {ReminderStatus.EXPORTED}
    # the grace stage is a different reminder: April 2027 (window closed 20 March, grace to 19 April)
    r3 = remind(data_ctx.db, 2027, 4, page_url=URL, csv_out=tmp_path / "sms3.csv")
    assert r3.exported == 2 and r3.by_stage == {"grace": 2}
    assert "暂停发放" in (tmp_path / "sms3.csv").read_text(encoding="utf-8-sig")


def test_given_bad_arguments_when_reminding_then_typed_errors(data_ctx: AppContext, tmp_path: Path) -> None:
    for kw in ({"page_url": "javascript:alert(1)", "csv_out": tmp_path / "x.csv"},
               {"page_url": URL},
               {"page_url": URL, "csv_out": tmp_path / "x.csv", "retries": 99}):
        with pytest.raises(LifecertError):
            remind(data_ctx.db, 2027, 3, **kw)  # type: ignore[arg-type]
    for bad_url in ("ftp://x", "http://sms.example.cn/send", "https://", "javascript:alert(1)"):
        with pytest.raises(LifecertError):
            WebhookNotifier(bad_url, SECRET)
    with pytest.raises(LifecertError):
        remind(data_ctx.db, 2027, 3, page_url="https://rz.example.gov.cn/ 点这里", csv_out=tmp_path / "x.csv")
    with pytest.raises(LifecertError):
        WebhookNotifier("https://x", b"short")
    assert [valid_mobile(x) for x in ("13800138000", "8613800138000", "12800138000", "138001380", None, "１３８")] == [
        "13800138000", "13800138000", None, None, None, None]


def test_given_cli_when_reminding_by_webhook_then_sent_and_dry_run_first(cli_env: Path) -> None:
    settings = get_settings()
    db = Database(settings.resolved_database_url, audit_key=settings.audit_key_bytes())
    _register(db)
    db.dispose()
    runner = CliRunner()
    with webhook_server(Webhook(SECRET)) as hook:
        env = {"LIFECERT_REMIND_WEBHOOK_SECRET": SECRET.decode()}
        base = ["remind", "--month", "2027-03", "--page-url", URL, "--webhook", hook.url]
        r = runner.invoke(app, [*base, "--dry-run"], env=env)
        assert r.exit_code == 0 and hook.calls == 0, r.output
        r = runner.invoke(app, base, env=env)
        assert r.exit_code == 0 and "sent 2" in r.output, r.output
        assert hook.calls == 2
    r = runner.invoke(app, ["remind", "--month", "2027-03", "--page-url", URL])
    assert r.exit_code == 2 and "BAD_REQUEST" in r.output
