"""The case page shows what opened each kind of case, and offers only the decisions that fit it.
Cases come from the real producers (a department extract through the importer, a tip-off through
the public form), never from hand-built payloads."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from lifecert.domain.errors import ErrorCode, LifecertError
from lifecert.services import review, staff
from lifecert.services.context import AppContext
from lifecert.storage.models import ConfirmationMethod, ReviewCase, StaffUser, SurvivalConfirmation
from server.app import create_app
from tests.integration.console_support import case_row, login, make_user
from tests.integration.test_data_support import (
    CREMATION_HEADER,
    DEATH_HEADER,
    add_pensioners,
    do_import,
    idn,
    write_csv,
)


@pytest.fixture
def client(data_ctx: AppContext) -> TestClient:
    # Not entered as a context manager: the lifespan would warm up a face engine these cases never use.
    return TestClient(create_app(ctx=data_ctx))


def _principal(ctx: AppContext, username: str) -> staff.Principal:
    with ctx.db.session() as s:
        u = s.scalars(select(StaffUser).where(StaffUser.username == username)).one()
        return staff.principal_for(u, "cli")


def _only_case(ctx: AppContext) -> int:
    with ctx.db.session() as s:
        return int(s.scalars(select(ReviewCase.id)).one())


def _decision_ids(html: str) -> list[str]:
    """The decision buttons in page order (the first is the primary action)."""
    block = html.split('id="decisions"', 1)[1].split("</div>", 1)[0]
    return re.findall(r'<button type="submit" class="[^"]*" id="([a-z-]+)"', block)


def _no_confirmations(ctx: AppContext) -> bool:
    with ctx.db.session() as s:
        return s.scalars(select(SurvivalConfirmation)).first() is None


def test_given_cremation_record_with_other_spelling_when_case_opened_then_department_record_beside_ours(
    data_ctx: AppContext, client: TestClient, tmp_path: Path
) -> None:
    a = idn(61)
    add_pensioners(data_ctx, [(a, "周敏")])
    do_import(data_ctx, "civil_affairs_cremation",
              write_csv(tmp_path / "cremation-2026-03.csv", CREMATION_HEADER, [[a, "周明", "2026-02-10"]]),
              period="2026-03")
    cid = _only_case(data_ctx)
    make_user(data_ctx, "wang", "caseworker")
    login(client, "wang")
    page = client.get(f"/console/cases/{cid}")
    assert page.status_code == 200
    rec = page.text.split('id="dept-record"', 1)[1].split('id="our-record"', 1)[0]
    assert "cremation-2026-03.csv" in rec and "2026-03" in rec
    # the department as the caseworker names it, its code kept in the title
    assert '<dd id="rec-department" title="civil_affairs_cremation">民政局</dd>' in rec
    assert re.search(r'id="rec-name"[^>]*>周明<', rec) and "2026-02-10" in rec
    assert re.search(r'id="our-name">周敏<', page.text)
    assert _decision_ids(page.text)[0] == "visit"


def test_given_tip_off_when_caseworker_opens_it_then_details_shown_and_no_survival_decision_possible(
    data_ctx: AppContext, client: TestClient
) -> None:
    a = idn(63)
    add_pensioners(data_ctx, [(a, "钱多多")])
    r = client.post("/api/v1/tipoffs", json={"id_number": a, "name": "钱多多",
                                             "description": "老人去年已去世，家属仍在领取养老金 <b>x</b>",
                                             "contact": "13800000000"})
    assert r.status_code == 201
    cid = _only_case(data_ctx)
    make_user(data_ctx, "li", "caseworker")
    csrf = login(client, "li")
    page = client.get(f"/console/cases/{cid}")
    assert "老人去年已去世，家属仍在领取养老金 &lt;b&gt;x&lt;/b&gt;" in page.text  # as written, escaped
    assert re.search(r'id="tip-contact">13800000000<', page.text) and re.search(r'id="tip-name">钱多多<', page.text)
    ids = _decision_ids(page.text)
    assert ids[0] == "visit" and "approve" not in ids and "unfounded" in ids
    # Even a hand-made POST cannot turn the tip-off into a survival confirmation.
    r = client.post(f"/console/cases/{cid}/approve", data={"csrf_token": csrf, "note": "looked fine"},
                    follow_redirects=False)
    assert r.status_code == 303 and "error=CONFLICT" in r.headers["location"]
    assert case_row(data_ctx, cid).status == "open" and _no_confirmations(data_ctx)
    r = client.post(f"/console/cases/{cid}/unfounded", data={"csrf_token": csrf, "note": "visited: alive, well"},
                    follow_redirects=False)
    assert r.status_code == 303 and "error" not in r.headers["location"]
    row = case_row(data_ctx, cid)
    assert (row.status, row.decision) == ("closed", "unfounded") and _no_confirmations(data_ctx)


def test_given_tip_off_when_approving_through_the_service_or_api_then_conflict(
    data_ctx: AppContext, client: TestClient
) -> None:
    from lifecert.services.datamatch.tipoffs import TipOff, submit_tipoff

    a = idn(65)
    add_pensioners(data_ctx, [(a, "孙丽")])
    with data_ctx.db.session() as s:
        cid = submit_tipoff(s, TipOff(description="她已经过世三年了，还在领钱", id_number=a)).case_id
    make_user(data_ctx, "zhao", "caseworker")
    who = _principal(data_ctx, "zhao")
    with pytest.raises(LifecertError) as e, data_ctx.db.session() as s:
        review.approve(data_ctx, s, cid, who, note="called her")
    assert e.value.code == ErrorCode.CONFLICT and _no_confirmations(data_ctx)
    with data_ctx.db.session() as s:
        raw, _ = staff.create_api_token(s, "zhao", actor="test", actor_role="cli")
    r = client.post(f"/api/staff/cases/{cid}/decision", headers={"Authorization": f"Bearer {raw}"},
                    json={"decision": "approve", "note": "called her"})
    assert r.status_code == 409 and _no_confirmations(data_ctx)


def test_given_death_record_after_face_confirmation_when_deciding_then_visit_first_and_survival_needs_evidence(
    data_ctx: AppContext, client: TestClient, tmp_path: Path
) -> None:
    a = idn(67)
    ids = add_pensioners(data_ctx, [(a, "何平")])
    with data_ctx.db.session() as s:
        s.add(SurvivalConfirmation(pensioner_id=ids[a], method=ConfirmationMethod.FACE_SELF_SERVICE,
                                   evidence_date=date(2026, 3, 1), valid_until=date(2027, 3, 1), source="vs-1"))
    do_import(data_ctx, "police_deregistration",
              write_csv(tmp_path / "dereg.csv", DEATH_HEADER, [[a, "何平", "2026-02-14", "死亡"]]))
    cid = _only_case(data_ctx)
    make_user(data_ctx, "qian", "caseworker")
    csrf = login(client, "qian")
    page = client.get(f"/console/cases/{cid}")
    assert "police_deregistration" in page.text and "dereg.csv" in page.text
    assert re.search(r'id="rec-date">2026-02-14', page.text) and re.search(r'id="conf-date">2026-03-01<', page.text)
    ids_ = _decision_ids(page.text)
    assert ids_[0] == "visit" and ids_.index("approve") > 0
    assert 'class="good" id="approve"' not in page.text  # never the green primary action here
    r = client.post(f"/console/cases/{cid}/approve", data={"csrf_token": csrf}, follow_redirects=False)
    assert "error=BAD_REQUEST" in r.headers["location"] and _no_confirmations(data_ctx) is False  # only the old one
    assert case_row(data_ctx, cid).status == "open"
    r = client.post(f"/console/cases/{cid}/approve",
                    data={"csrf_token": csrf, "note": "home visit 2026-04-02: alive, death record is a clerical error"},
                    follow_redirects=False)
    assert "error" not in r.headers["location"]
    assert case_row(data_ctx, cid).decision == "approved"
