"""Agency dashboards (issue 15 item 5): the certification cycle per region (due / certified by
channel / overdue / suspended) and the yearly department evaluation, through the service and
through the real console pages and CSV exports, region-scoped.

The register is built with the producers (upsert_pensioner, record_confirmation, set_policy,
run_import); only the pensioners' registration dates are set to the past, and the payment
suspensions are written as rows (the two-person sign-off service is the agency engineer's)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from lifecert.domain.errors import LifecertError
from lifecert.domain.idnumber import make_id_number
from lifecert.domain.policy import CertificationPolicy, PolicyKind
from lifecert.engine.base import FaceEngine
from lifecert.services import dashboard, staff
from lifecert.services.confirmations import record_confirmation
from lifecert.services.context import AppContext
from lifecert.services.policy import set_policy
from lifecert.services.staff import Principal, Role
from lifecert.services.templates import upsert_pensioner
from lifecert.storage.models import AuditEvent, Pensioner, PensionerStatus
from lifecert.storage.models_agency import Suspension, SuspensionReason, SuspensionStatus
from server.app import create_app
from tests.conftest import make_settings
from tests.integration.console_support import PASSWORD, login
from tests.integration.test_data_support import DEATH_HEADER, do_import, write_csv

TODAY = date(2026, 11, 30)
JILIN, HEBEI = "220201", "130102"
EVIL = '=HYPERLINK("http://evil.example/x","点我")'


def _who(region: str | None) -> Principal:
    return Principal(user_id=1, username="viewer", role=Role.CASEWORKER, display_name="", region_code=region,
                     via="cli")


def _person(s: object, region: str, born: date, seq: int, status: str = PensionerStatus.ACTIVE) -> Pensioner:
    p = upsert_pensioner(s, make_id_number(region, born, seq), f"测试{seq}")  # type: ignore[arg-type]
    p.created_at = datetime(2024, 1, 1, tzinfo=UTC)  # on the register since 2024
    p.status = status
    return p


def _confirm(s: object, p: Pensioner, method: str, day: date) -> None:
    record_confirmation(s, p, method, day, "test", {}, cycle_months=12)  # type: ignore[arg-type]


def _build_world(ctx: AppContext) -> None:
    """Two regions. Jilin (220201) runs the default fixed 12-month cycle, Hebei (130102) a birthday
    window from 2025. Expected per region in the 2026 cycle on 30 Nov 2026 (see each person):

    Jilin: register 5, due 5, certified 2 (self-service 1, assisted 1, home visit 1), overdue 2,
    suspended 1. Hebei: register 2, due 2, certified 0, overdue 1, resumed 1."""
    with ctx.db.session() as s:
        set_policy(s, CertificationPolicy("13", PolicyKind.BIRTHDAY_WINDOW, date(2025, 1, 1)), actor="test",
                   role="cli")
        a = _person(s, JILIN, date(1950, 4, 2), 1)  # due 2026-03-01, certified 2026-02-20 (self-service)
        _confirm(s, a, "face_self_service", date(2025, 3, 1))
        _confirm(s, a, "face_self_service", date(2026, 2, 20))
        b = _person(s, JILIN, date(1951, 5, 3), 2)  # due 2026-06-10 by data comparison last year: overdue
        _confirm(s, b, "data_comparison", date(2025, 6, 10))
        c = _person(s, JILIN, date(1940, 7, 4), 3)  # due 2026-12-20; certified assisted + home visit
        _confirm(s, c, "caseworker_review", date(2025, 12, 20))
        _confirm(s, c, "assisted", date(2026, 1, 5))
        _confirm(s, c, "home_visit", date(2026, 10, 1))
        d = _person(s, JILIN, date(1945, 8, 5), 4, PensionerStatus.SUSPENDED)  # never confirmed: suspended
        late = _person(s, JILIN, date(1946, 9, 9), 8)  # registered mid-2026, never confirmed: overdue
        late.created_at = datetime(2026, 6, 1, tzinfo=UTC)
        e = _person(s, HEBEI, date(1950, 12, 6), 5)  # birthday window Nov-Dec 2026 open now: due, not overdue
        _confirm(s, e, "face_self_service", date(2025, 12, 31))
        h = _person(s, HEBEI, date(1952, 3, 7), 6)  # birthday window Feb-Mar 2026 missed: overdue
        _confirm(s, h, "face_self_service", date(2025, 3, 10))
        _person(s, HEBEI, date(1930, 1, 8), 7, PensionerStatus.DECEASED)  # not on the register
        s.flush()
        s.add(Suspension(pensioner_id=d.id, region_code=JILIN, reason=SuspensionReason.OVERDUE,
                         status=SuspensionStatus.APPROVED, approved_at=datetime(2026, 3, 15, 9, tzinfo=UTC),
                         effective_from=date(2026, 4, 1)))
        s.add(Suspension(pensioner_id=e.id, region_code=HEBEI, reason=SuspensionReason.OVERDUE,
                         status=SuspensionStatus.RESUMED, approved_at=datetime(2025, 5, 1, tzinfo=UTC),
                         resumed_on=date(2026, 2, 1), months_owed=9))


@pytest.fixture
def world(tmp_path: Path) -> Iterator[AppContext]:
    ctx = AppContext(make_settings(tmp_path, confirmation_cycle_months=12))
    _build_world(ctx)
    yield ctx
    ctx.close()


@pytest.fixture
def pg_world(pg_ctx: AppContext) -> AppContext:
    _build_world(pg_ctx)
    return pg_ctx


def _counts(r: dashboard.RegionCycle) -> tuple[int, ...]:
    return r.register, r.due, r.certified, r.overdue, r.suspended, r.resumed


def test_given_two_regions_when_the_2026_cycle_is_counted_then_due_certified_by_channel_overdue_suspended(
        world: AppContext) -> None:
    with world.db.session() as s:
        board = dashboard.region_cycle(s, _who(None), 2026, today=TODAY, cycle_months=12)

    rows = {r.region_code: r for r in board.regions}
    assert set(rows) == {JILIN, HEBEI}
    assert _counts(rows[JILIN]) == (5, 5, 2, 2, 1, 0)
    assert dict(rows[JILIN].by_channel) == {"face_self_service": 1, "assisted": 1, "home_visit": 1}
    assert _counts(rows[HEBEI]) == (2, 2, 0, 1, 0, 1)
    assert _counts(board.total) == (7, 7, 2, 3, 1, 1)
    assert board.cycle.as_of == TODAY and board.scope == ""
    assert board.channels[:5] == dashboard.CHANNELS


def test_given_the_same_register_on_postgresql_when_counted_then_the_same_numbers(pg_world: AppContext) -> None:
    with pg_world.db.session() as s:
        board = dashboard.region_cycle(s, _who(None), 2026, today=TODAY, cycle_months=12)
        scoped = dashboard.region_cycle(s, _who("220200"), 2026, today=TODAY, cycle_months=12)
    rows = {r.region_code: r for r in board.regions}
    assert _counts(rows[JILIN]) == (5, 5, 2, 2, 1, 0) and _counts(rows[HEBEI]) == (2, 2, 0, 1, 0, 1)
    assert dict(rows[JILIN].by_channel) == {"face_self_service": 1, "assisted": 1, "home_visit": 1}
    assert [r.region_code for r in scoped.regions] == [JILIN]


def test_given_a_past_cycle_when_counted_then_it_runs_to_its_last_day_and_later_evidence_is_ignored(
        world: AppContext) -> None:
    with world.db.session() as s:
        board = dashboard.region_cycle(s, _who(None), 2025, today=TODAY, cycle_months=12)
    rows = {r.region_code: r for r in board.regions}
    assert board.cycle.as_of == date(2025, 12, 31)
    # 2025: A (face 2025-03-01), B (data 2025-06-10), C (caseworker 2025-12-20), E, H (face) certified
    assert rows[JILIN].certified == 3 and rows[HEBEI].certified == 2
    assert rows[JILIN].register == 4, "registered in 2026: not on the 2025 register"
    assert dict(rows[JILIN].by_channel) == {"face_self_service": 1, "data_comparison": 1, "caseworker_review": 1}
    assert rows[HEBEI].resumed == 0 and rows[HEBEI].suspended == 1  # approved 2025-05-01, resumed in 2026


def test_given_staff_bound_to_a_region_when_the_cycle_is_counted_then_only_their_region_is_seen(
        world: AppContext) -> None:
    jilin_staff = _who("220200")  # prefecture-level: scope 2202
    with world.db.session() as s:
        own = dashboard.region_cycle(s, jilin_staff, 2026, today=TODAY, cycle_months=12)
        wider = dashboard.region_cycle(s, jilin_staff, 2026, region="22", today=TODAY, cycle_months=12)
        other = dashboard.region_cycle(s, jilin_staff, 2026, region="13", today=TODAY, cycle_months=12)
        hebei_only = dashboard.region_cycle(s, _who(None), 2026, region=HEBEI, today=TODAY, cycle_months=12)

    assert [r.region_code for r in own.regions] == [JILIN] and own.scope == "2202"
    assert wider.scope == "2202" and _counts(wider.total) == _counts(own.total)
    assert other.regions == [] and _counts(other.total) == (0, 0, 0, 0, 0, 0)
    assert [r.region_code for r in hebei_only.regions] == [HEBEI]


@pytest.mark.parametrize("bad", [{"year": 1999}, {"year": 2027}, {"region": "22'--"}, {"region": "1234567"}])
def test_given_bad_year_or_region_when_counted_then_bad_request_and_nothing_read(
        world: AppContext, bad: dict[str, object]) -> None:
    with world.db.session() as s, pytest.raises(LifecertError) as err:
        dashboard.region_cycle(s, _who(None), int(bad.get("year", 2026)),  # type: ignore[arg-type]
                               region=bad.get("region"), today=TODAY)  # type: ignore[arg-type]
    assert err.value.code == "BAD_REQUEST"


@pytest.fixture
def dept_world(tmp_path: Path) -> Iterator[AppContext]:
    """A police extract for January 2026 (a Jilin and a Hebei death, one unknown ID, one bad row) and
    a second department, named like a spreadsheet formula, that delivered nothing."""
    ctx = AppContext(make_settings(tmp_path))
    with ctx.db.session() as s:
        x = upsert_pensioner(s, make_id_number(JILIN, date(1944, 2, 2), 11), "吉林甲")
        y = upsert_pensioner(s, make_id_number(HEBEI, date(1944, 2, 2), 12), "河北乙")
        xid, yid = x.id_number, y.id_number
    unknown = make_id_number("320102", date(1944, 2, 2), 13)
    do_import(ctx, "police_deregistration", write_csv(tmp_path / "p.csv", DEATH_HEADER, [
        [xid, "吉林甲", "2026-01-03", ""], [yid, "河北乙", "2026-01-04", ""], [unknown, "某丙", "2026-01-05", ""],
        ["not-an-id", "某丁", "2026-01-06", ""]]), period="2026-01", received_at=datetime(2026, 2, 5, tzinfo=UTC))
    mappings = ctx.settings.data_dir / "mappings"
    (mappings / "evil_dept.yaml").write_text(
        (mappings / "police_deregistration.yaml").read_text(encoding="utf-8")
        .replace("department: police_deregistration", "department: evil_dept")
        .replace("name: 公安局户籍注销（死亡）", f"name: '{EVIL}'"), encoding="utf-8")
    yield ctx
    ctx.close()


def test_given_a_year_of_extracts_when_evaluated_then_provision_is_department_wide_and_use_is_scoped(
        dept_world: AppContext) -> None:
    with dept_world.db.session() as s:
        everyone = {d.provision.department: d for d in dashboard.department_evaluation(
            dept_world.settings, s, _who(None), 2026, today=TODAY).departments}
        jilin = {d.provision.department: d for d in dashboard.department_evaluation(
            dept_world.settings, s, _who("220201"), 2026, today=TODAY).departments}

    police = everyone["police_deregistration"]
    p = police.provision
    assert (p.expected, p.delivered, p.on_time, p.late, p.missing) == (12, 1, 1, 0, 11)
    assert (p.rows, p.valid_rows, p.rejected_rows) == (4, 3, 1)
    assert police.matched == 2 and police.outcomes == {"deceased": 2, "unmatched": 1}
    assert jilin["police_deregistration"].provision == p, "provision counts are the same for every viewer"
    assert jilin["police_deregistration"].matched == 1
    assert jilin["police_deregistration"].outcomes == {"deceased": 1}
    assert everyone["evil_dept"].provision.name == EVIL and everyone["evil_dept"].provision.delivered == 0


def test_given_an_evaluation_with_a_formula_like_name_when_exported_then_the_cell_is_inert(
        dept_world: AppContext) -> None:
    with dept_world.db.session() as s:
        board = dashboard.department_evaluation(dept_world.settings, s, _who(None), 2026, today=TODAY)
    rows = list(csv.DictReader(io.StringIO(dashboard.evaluation_csv(board).lstrip("\ufeff"))))
    evil = next(r for r in rows if r["department"] == "evil_dept")
    assert evil["name"] == "'" + EVIL
    police = next(r for r in rows if r["department"] == "police_deregistration")
    assert (police["rows"], police["rejected_rows"], police["matched"], police["deceased"]) == ("4", "1", "2", "2")


# --- the console pages ----------------------------------------------------------------------------


@pytest.fixture
def console(world: AppContext, face_engine: FaceEngine) -> Iterator[tuple[AppContext, TestClient]]:
    world.set_engine(face_engine)
    with world.db.session() as s:
        for name, role, region in (("cw_jilin", Role.CASEWORKER, "220200"), ("auditor_all", Role.AUDITOR, None),
                                   ("enroller", Role.ENROLLMENT_STAFF, None)):
            staff.create_user(s, name, PASSWORD, role, region_code=region, actor="test", actor_role="cli")
    with TestClient(create_app(world.settings, world)) as client:
        yield world, client


def test_given_a_region_bound_caseworker_when_the_dashboard_is_opened_then_only_their_region_and_audited(
        console: tuple[AppContext, TestClient]) -> None:
    ctx, client = console
    login(client, "cw_jilin")

    page = client.get("/console/dashboard", params={"year": 2026})

    assert page.status_code == 200, page.text
    assert f'data-region="{JILIN}"' in page.text and HEBEI not in page.text
    assert f"/console/dashboard?year=2026&amp;region={JILIN}" in page.text, "each region links to its own view"
    assert 'id="departments"' in page.text and "police_deregistration" in page.text
    with ctx.db.session() as s:
        ev = s.scalars(select(AuditEvent).where(AuditEvent.action == "dashboard.view")).all()
        assert [(e.actor, e.object_id) for e in ev] == [("cw_jilin", "2026:2202")]


def test_given_an_auditor_when_exporting_regions_then_csv_has_every_region_and_a_total_and_is_audited(
        console: tuple[AppContext, TestClient]) -> None:
    ctx, client = console
    login(client, "auditor_all")

    r = client.get("/console/dashboard/regions.csv", params={"year": 2026})

    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"] and r.headers["cache-control"] == "no-store, private"
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert [x["region_code"] for x in rows] == [HEBEI, JILIN, "* (total)"]
    total = rows[-1]
    assert (total["register"], total["certified"], total["certified_assisted"], total["suspended"]) == (
        "7", "2", "1", "1")
    with ctx.db.session() as s:
        assert s.scalars(select(AuditEvent).where(AuditEvent.action == "dashboard.export.regions",
                                                  AuditEvent.actor == "auditor_all")).first() is not None


def test_given_enrollment_staff_or_nobody_when_the_dashboard_is_asked_for_then_refused(
        console: tuple[AppContext, TestClient]) -> None:
    _, client = console
    anon = client.get("/console/dashboard/regions.csv", follow_redirects=False)
    assert anon.status_code in (303, 401) and "text/csv" not in anon.headers.get("content-type", "")
    login(client, "enroller")
    assert client.get("/console/dashboard").status_code == 403
    assert client.get("/console/dashboard/departments.csv").status_code == 403


def test_given_a_bad_year_when_the_page_is_asked_for_then_typed_error_not_a_crash(
        console: tuple[AppContext, TestClient]) -> None:
    _, client = console
    login(client, "auditor_all")
    r = client.get("/console/dashboard/regions.csv", params={"year": 1850})
    assert r.status_code == 400
    assert client.get("/console/dashboard", params={"year": "x"}).status_code == 422
