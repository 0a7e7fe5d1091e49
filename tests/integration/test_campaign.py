"""Certification policies in the database and the monthly campaign plan (service and CLI)."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from lifecert.cli import app
from lifecert.config import get_settings
from lifecert.domain.errors import Conflict
from lifecert.domain.policy import CertificationPolicy, Channel, DueState, PolicyKind
from lifecert.services.campaign import PLAN_HEADER, plan_month, write_plan
from lifecert.services.context import AppContext
from lifecert.services.policy import due_of, policies_in_force, set_policy
from lifecert.storage.db import Database
from lifecert.storage.models import AuditEvent, ConfirmationMethod, PensionerStatus
from tests.integration.agency_support import confirm, person, template_row


def test_given_birthday_policy_for_a_province_when_planning_march_then_due_by_region_and_channel(
        data_ctx: AppContext) -> None:
    with data_ctx.db.session() as s:
        set_policy(s, CertificationPolicy("22", PolicyKind.BIRTHDAY_WINDOW, date(2025, 1, 1), grace_days=30),
                   actor="t", role="admin")
        march_face = person(s, "220202", date(1950, 3, 9), 11)  # confirmed by face in March 2026
        confirm(s, march_face, ConfirmationMethod.FACE_SELF_SERVICE, date(2026, 3, 20))
        march_dc = person(s, "220203", date(1951, 3, 2), 13, phone=None)  # passive last year
        confirm(s, march_dc, ConfirmationMethod.DATA_COMPARISON, date(2026, 2, 20))
        june = person(s, "220202", date(1952, 6, 1), 15)  # window opens 2 May: not in March
        confirm(s, june, ConfirmationMethod.FACE_SELF_SERVICE, date(2026, 6, 3))
        april = person(s, "220202", date(1953, 4, 5), 17)  # 2027 window opens 2 March: in the plan
        confirm(s, april, ConfirmationMethod.CASEWORKER_REVIEW, date(2026, 4, 7))
        late = person(s, "220202", date(1940, 12, 1), 19)  # missed Dec 2026, grace to 30 Jan 2027
        confirm(s, late, ConfirmationMethod.FACE_SELF_SERVICE, date(2025, 12, 1))
        fixed = person(s, "110101", date(1955, 8, 8), 21)  # default: fixed 12-month cycle
        confirm(s, fixed, ConfirmationMethod.FACE_SELF_SERVICE, date(2026, 3, 15))
        dead = person(s, "220202", date(1950, 3, 1), 23, status=PensionerStatus.DECEASED)
        for p in (march_face, march_dc, late):
            template_row(s, p)
        ids = {n: p.id for n, p in [("march_face", march_face), ("march_dc", march_dc), ("june", june),
                                     ("april", april), ("late", late), ("fixed", fixed), ("dead", dead)]}

    with data_ctx.db.session() as s:
        rows = {r.pensioner_id: r for r in plan_month(s, 2027, 3)}
    got = {n for n, i in ids.items() if i in rows}
    assert got == {"march_face", "march_dc", "april", "late", "fixed"}
    # templates for three of them: self-service (phone), passive, and the 86-year-old assisted; the
    # others have nothing to match a selfie against: home visit
    assert rows[ids["march_face"]].channel is Channel.SELF_SERVICE
    assert rows[ids["march_dc"]].channel is Channel.DATA_COMPARISON
    assert rows[ids["late"]].channel is Channel.ASSISTED
    assert rows[ids["april"]].channel is Channel.HOME_VISIT and rows[ids["fixed"]].channel is Channel.HOME_VISIT
    assert rows[ids["march_face"]].state is DueState.OPEN
    assert rows[ids["march_face"]].closes == date(2027, 3, 31)
    assert rows[ids["april"]].opens == date(2027, 3, 2) and rows[ids["april"]].state is DueState.OPEN
    assert rows[ids["late"]].state is DueState.OVERDUE
    assert rows[ids["fixed"]].closes == date(2027, 3, 15) and rows[ids["fixed"]].policy == "fixed_cycle:*"
    assert rows[ids["march_face"]].policy == "birthday_window:22"
    assert all("*" in r.id_masked and len(r.id_masked) == 18 for r in rows.values())

    with data_ctx.db.session() as s:
        without_overdue = {r.pensioner_id for r in plan_month(s, 2027, 3, include_overdue=False)}
        only_110 = {r.pensioner_id for r in plan_month(s, 2027, 3, region_prefix="11")}
    assert ids["late"] not in without_overdue and ids["march_face"] in without_overdue
    assert only_110 == {ids["fixed"]}

    with data_ctx.db.session() as s:
        buf = io.StringIO()
        summary = write_plan(plan_month(s, 2027, 3), buf, fmt="csv", month="2027-03")
    lines = list(csv.reader(io.StringIO(buf.getvalue())))
    assert lines[0] == PLAN_HEADER and len(lines) == 6 and summary.rows == 5
    assert summary.by_region_channel[("220202", "home_visit")] == 1
    assert summary.by_region_channel[("220203", "data_comparison")] == 1
    assert summary.by_state == {"open": 4, "overdue": 1}


def test_given_a_later_confirmation_of_another_kind_when_asking_due_then_it_counts(data_ctx: AppContext) -> None:
    with data_ctx.db.session() as s:
        p = person(s, "110101", date(1950, 5, 5), 31)
        confirm(s, p, ConfirmationMethod.FACE_SELF_SERVICE, date(2026, 1, 10))
        assert due_of(s, p, date(2027, 1, 12)).state is DueState.GRACE
        confirm(s, p, ConfirmationMethod.DATA_COMPARISON, date(2026, 12, 1))
        d = due_of(s, p, date(2027, 1, 12))
    assert d.state is DueState.NOT_YET and d.window.closes == date(2027, 12, 1) and d.passive


def test_given_a_policy_for_the_same_region_and_day_when_set_again_then_conflict_and_audited_once(
        data_ctx: AppContext) -> None:
    pol = CertificationPolicy("2202", PolicyKind.FIXED_CYCLE, date(2027, 1, 1), cycle_months=6)
    with data_ctx.db.session() as s:
        set_policy(s, pol, actor="admin1", role="admin")
    with pytest.raises(Conflict), data_ctx.db.session() as s:
        set_policy(s, pol, actor="admin1", role="admin")
    with data_ctx.db.session() as s:
        assert [p.cycle_months for p in policies_in_force(s, cycle_months=12)] == [12, 6]
        events = s.scalars(select(AuditEvent).where(AuditEvent.action == "policy.set")).all()
    assert len(events) == 1 and events[0].detail["cycle_months"] == 6


def test_given_cli_when_setting_policy_and_planning_then_jsonl_out_and_audited(cli_env: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    r = runner.invoke(app, ["policy", "set", "birthday_window", "--region", "2202", "--from", "2026-01-01"])
    assert r.exit_code == 0, r.output
    bad = runner.invoke(app, ["policy", "set", "weekly"])
    assert bad.exit_code == 2 and "BAD_REQUEST" in bad.output
    bad_region = runner.invoke(app, ["policy", "set", "fixed_cycle", "--region", "2"])
    assert bad_region.exit_code == 2
    settings = get_settings()
    db = Database(settings.resolved_database_url, audit_key=settings.audit_key_bytes())
    with db.session() as s:
        p = person(s, "220202", date(1950, 3, 9), 41)
        confirm(s, p, ConfirmationMethod.FACE_SELF_SERVICE, date(2026, 3, 20))
        pid = p.id
    out, summ = tmp_path / "plan.jsonl", tmp_path / "summary.json"
    r = runner.invoke(app, ["campaign", "plan", "--month", "2027-03", "--format", "jsonl", "-o", str(out),
                            "--summary-json", str(summ)])
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [(x["pensioner_id"], x["state"], x["closes"]) for x in rows] == [(pid, "open", "2027-03-31")]
    assert json.loads(summ.read_text())["by_region"] == {"220202": {"home_visit": 1}}
    assert out.stat().st_mode & 0o077 == 0
    for bad_month in ("2027-13", "March"):
        r = runner.invoke(app, ["campaign", "plan", "--month", bad_month])
        assert r.exit_code == 2 and "BAD_REQUEST" in r.output
    with db.session() as s:
        ev = s.scalars(select(AuditEvent).where(AuditEvent.action == "campaign.plan")).one()
    db.dispose()
    assert ev.detail["rows"] == 1 and ev.object_id == "2027-03"


def test_given_cli_when_sweeping_and_exporting_suspensions_then_counts_and_file(cli_env: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    settings = get_settings()
    db = Database(settings.resolved_database_url, audit_key=settings.audit_key_bytes())
    with db.session() as s:
        person(s, "220202", date(1950, 3, 9), 51)  # never confirmed
    db.dispose()
    r = runner.invoke(app, ["suspensions", "sweep", "--today", "2027-03-01"])
    assert r.exit_code == 0 and "opened 1" in r.output, r.output
    r = runner.invoke(app, ["suspensions", "sweep", "--today", "2027-03-02"])
    assert "opened 0" in r.output
    assert runner.invoke(app, ["suspensions", "sweep", "--today", "tomorrow"]).exit_code == 2
    r = runner.invoke(app, ["suspensions", "status"])
    assert r.exit_code == 0 and "220202" in r.output
    r = runner.invoke(app, ["suspensions", "export", "-o", str(tmp_path / "s.csv")])
    assert r.exit_code == 0 and "0 row(s)" in r.output  # nothing approved: nothing to hand over
    assert runner.invoke(app, ["suspensions", "export", "-o", str(tmp_path / "s.txt")]).exit_code == 2
