"""The suspensions page: two caseworkers sign through the real console forms (CSRF, roles)."""

from __future__ import annotations

from datetime import date

from fastapi.testclient import TestClient
from sqlalchemy import select

from lifecert.services import suspensions
from lifecert.services.context import AppContext
from lifecert.storage.models import AuditEvent, Pensioner, PensionerStatus
from lifecert.storage.models_agency import Suspension, SuspensionStatus
from server.app import create_app
from tests.integration.console_support import login, make_pensioner, make_user


def test_given_overdue_case_when_two_caseworkers_sign_in_console_then_suspended_exported_and_lifted_by_two(
        ctx: AppContext) -> None:
    make_user(ctx, "cw_one", "caseworker")
    make_user(ctx, "cw_two", "caseworker")
    pid = make_pensioner(ctx, 5)  # registered today, never confirmed: overdue once the grace period ends
    with ctx.db.session() as s:
        assert suspensions.sweep(s, date.today().replace(year=date.today().year + 1)).opened == 1
        sid = s.scalars(select(Suspension.id)).one()
    app = create_app(ctx.settings, ctx)
    with TestClient(app) as one, TestClient(app) as two:
        csrf1, csrf2 = login(one, "cw_one"), login(two, "cw_two")
        page = one.get("/console/suspensions")
        assert page.status_code == 200 and f"/console/suspensions/{sid}/propose" in page.text
        assert "张桂兰" in page.text and "19500307" not in page.text  # name shown, ID number masked
        # without the CSRF token: refused, nothing signed
        assert one.post(f"/console/suspensions/{sid}/propose", data={"note": "x"}).status_code == 403
        r = one.post(f"/console/suspensions/{sid}/propose", data={"note": "电话三次未接", "csrf_token": csrf1},
                     follow_redirects=False)
        assert r.status_code == 303
        # the proposer sees no approve button, and a forged approve is refused with the typed error
        assert f"/console/suspensions/{sid}/approve" not in one.get("/console/suspensions").text
        r = one.post(f"/console/suspensions/{sid}/approve", data={"csrf_token": csrf1}, follow_redirects=False)
        assert r.status_code == 303 and "err_TWO_PERSON_RULE" in r.headers["location"]
        assert "提议人不能自己批准" in one.get(r.headers["location"]).text
        with ctx.db.session() as s:
            assert s.get(Suspension, sid).status == SuspensionStatus.PROPOSED  # type: ignore[union-attr]
        assert f"/console/suspensions/{sid}/approve" in two.get("/console/suspensions").text
        r = two.post(f"/console/suspensions/{sid}/approve", data={"csrf_token": csrf2}, follow_redirects=False)
        assert r.status_code == 303 and "error" not in r.headers["location"]
        csv_resp = two.post("/console/suspensions/export", data={"csrf_token": csrf2})
        assert csv_resp.status_code == 200 and csv_resp.headers["content-type"].startswith("text/csv")
        lines = csv_resp.content.decode("utf-8-sig").splitlines()
        assert len(lines) == 2 and lines[1].startswith(f"{sid},") and ",approved," in lines[1]
        # she turns out to be fine: lifting needs two signatures as well
        r = two.post(f"/console/suspensions/{sid}/propose-lift",
                     data={"note": "已上门核实本人健在", "csrf_token": csrf2}, follow_redirects=False)
        assert r.status_code == 303 and "error" not in r.headers["location"]
        r = two.post(f"/console/suspensions/{sid}/approve-lift", data={"csrf_token": csrf2}, follow_redirects=False)
        assert "err_TWO_PERSON_RULE" in r.headers["location"]
        assert f"/console/suspensions/{sid}/approve-lift" in one.get("/console/suspensions?status=approved").text
        r = one.post(f"/console/suspensions/{sid}/approve-lift", data={"csrf_token": csrf1}, follow_redirects=False)
        assert r.status_code == 303 and "error" not in r.headers["location"]
    with ctx.db.session() as s:
        p = s.get(Pensioner, pid)
        assert p is not None and p.status == PensionerStatus.ACTIVE
        actors = [(e.action, e.actor) for e in s.scalars(select(AuditEvent).where(
            AuditEvent.object_type == "payment_suspension", AuditEvent.action != "suspension.list")  # page reads
            .order_by(AuditEvent.id))]
    assert actors == [("suspension.open", "system"), ("suspension.propose", "cw_one"),
                      ("suspension.refused_same_signer", "cw_one"), ("suspension.approve", "cw_two"),
                      ("suspension.export", "cw_two"), ("suspension.propose_lift", "cw_two"),
                      ("suspension.refused_same_signer", "cw_two"), ("suspension.lift", "cw_one")]
