"""Suspected fraud on a spot check while the pensioner's fraud suspension is already under way (opened
from another case): a pending one is JOINED (the confirmation under check is added to what its approval
withdraws; whoever added it may not give the second signature), one already in force refuses with a
code and a page text that says what to do, and changes nothing. Real services and the real console on the
test database."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, date, datetime
from html import unescape

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from lifecert.domain.cases import SpotCheck
from lifecert.domain.errors import ErrorCode, LifecertError
from lifecert.domain.idnumber import make_id_number
from lifecert.services import cases, review, suspensions
from lifecert.services.audit import verify_chain
from lifecert.services.confirmations import record_confirmation, status_of
from lifecert.services.context import AppContext
from lifecert.services.staff import Principal
from lifecert.storage.models import AuditEvent, ConfirmationMethod, Pensioner, ReviewCase, SurvivalConfirmation
from lifecert.storage.models_agency import Suspension, SuspensionStatus
from server.app import create_app
from tests.integration.console_support import login, make_case, make_user
from tests.integration.test_suspensions import principal

TODAY = date(2026, 12, 1)
OLDER = date(2025, 6, 1)
AUDITED = date(2026, 11, 30)


@pytest.fixture
def staff(data_ctx: AppContext) -> tuple[Principal, Principal, Principal]:
    return tuple(principal(data_ctx, make_user(data_ctx, u, "caseworker"))  # type: ignore[return-value]
                 for u in ("cw_a", "cw_b", "cw_c"))


def _pensioner(ctx: AppContext, seq: int) -> tuple[int, int, int]:
    """A pensioner confirmed at a home visit on OLDER and by face on AUDITED, with a spot check over the face
    confirmation: (pensioner id, audited confirmation id, spot-check case id)."""
    with ctx.db.session() as s:
        p = Pensioner(id_number=make_id_number("220202", date(1950, 3, 7), seq), name="张桂兰", sex="F",
                      birth_date=date(1950, 3, 7), region_code="220202",
                      created_at=datetime(2025, 1, 10, tzinfo=UTC))
        s.add(p)
        s.flush()
        record_confirmation(s, p, ConfirmationMethod.HOME_VISIT, OLDER, "visit", {}, cycle_months=12)
        conf = record_confirmation(s, p, ConfirmationMethod.FACE_SELF_SERVICE, AUDITED, "verification_session:x",
                                   {}, cycle_months=12)
        case = cases.open_case(s, SpotCheck(session_id="x", reasons=("RANDOM_SAMPLE",), confirmation_id=conf.id,
                                            method="face_self_service", sample_rate=0.02),
                               reason="RANDOM_SAMPLE", pensioner=p)
        return p.id, conf.id, case.id


def _tip_off_proposal(ctx: AppContext, pid: int, who: Principal) -> int:
    """A fraud suspension proposed by ``who`` from another case (a tip-off), before the spot check's decision."""
    other = make_case(ctx, pid, kind="tip_off", reason="TIP_OFF")
    with ctx.db.session() as s:
        return review.mark_suspected_fraud(s, other, who, note="举报：本人已去世").id


def _withdrawn(ctx: AppContext, conf_id: int) -> tuple[datetime | None, int | None]:
    with ctx.db.session() as s:
        c = s.get(SurvivalConfirmation, conf_id)
        assert c is not None
        return c.withdrawn_at, c.withdrawn_by


def _state(ctx: AppContext, pid: int) -> str:
    with ctx.db.session() as s:
        p = s.get(Pensioner, pid)
        assert p is not None
        return str(status_of(s, p, today=TODAY).state)


def _text(html: str, element_id: str) -> str:
    m = re.search(rf'<(\w+)[^>]*\bid="{re.escape(element_id)}"[^>]*>(.*?)</\1>', html, re.S)
    assert m, f"no #{element_id}"
    return " ".join(unescape(re.sub(r"<[^>]+>", "", m.group(2))).split())


def _client(ctx: AppContext, username: str) -> tuple[TestClient, str]:
    client = TestClient(create_app(ctx=ctx))  # not entered: no face engine warm-up for these pages
    return client, login(client, username)


def test_given_a_pending_fraud_proposal_when_a_spot_check_finds_fraud_then_its_confirmation_joins_the_proposal(
        data_ctx: AppContext, staff: tuple[Principal, Principal, Principal]) -> None:
    """cw_a proposed fraud from a tip-off; cw_b finds fraud on the spot check: no second suspension, the
    spot check's confirmation is added to cw_a's proposal (the case page says so before and after). Neither
    cw_a (proposer) nor cw_b (added it) may approve; cw_c approves: payment suspended AND the confirmation
    withdrawn, audited with who added it and who approved."""
    a, b, c = staff
    pid, conf_id, case_id = _pensioner(data_ctx, 61)
    sid = _tip_off_proposal(data_ctx, pid, a)

    client, csrf = _client(data_ctx, "cw_b")
    page = client.get(f"/console/cases/{case_id}").text
    assert _text(page, "fraud-joins") == (f"已有待批准的疑似冒领暂停（#{sid}）：标记疑似欺诈会把 {AUDITED} "
                                          "的认证附到该案，另一位经办人批准时一并撤销")
    r = client.post(f"/console/cases/{case_id}/fraud", data={"csrf_token": csrf, "note": "屏幕翻拍"},
                    follow_redirects=False)
    assert r.status_code == 303 and "error" not in r.headers["location"], r.headers["location"]
    after = client.get(f"/console/cases/{case_id}").text
    assert _text(after, "fraud-suspension") == f"疑似欺诈 #{sid}：待批准 — 批准时同时撤销 {AUDITED} 的认证"
    listing = client.get("/console/suspensions").text
    assert f'id="susp-joined-{sid}-{case_id}"' in listing
    assert f'<small id="susp-added-by-{sid}">附加认证：cw_b</small>' in listing
    assert f"/console/suspensions/{sid}/approve" not in listing, "cw_b added it: no approve button for cw_b"
    assert f'id="susp-needs-second-{sid}"' in listing
    third, _ = _client(data_ctx, "cw_c")
    assert f"/console/suspensions/{sid}/approve" in third.get("/console/suspensions").text

    with data_ctx.db.session() as s:
        (susp,) = s.scalars(select(Suspension).where(Suspension.pensioner_id == pid)).all()
        assert (susp.id, susp.status, susp.proposed_by) == (sid, SuspensionStatus.PROPOSED, a.user_id)
        assert suspensions.withdraws_of(susp) == [(conf_id, AUDITED)]
        assert suspensions.added_by_of(susp) == {b.user_id}
        row = s.get(ReviewCase, case_id)
        assert row is not None and (row.status, row.decision) == ("closed", "suspected_fraud")
        joined = s.scalars(select(AuditEvent).where(AuditEvent.action == "suspension.join")).one()
        assert (joined.actor, joined.detail["review_case_id"], joined.detail["withdraws_on_approval"]) == (
            "cw_b", case_id, [conf_id])
    assert _withdrawn(data_ctx, conf_id) == (None, None) and _state(data_ctx, pid) == "valid"

    for signer in (a, b):  # the proposer, and the caseworker who added the confirmation
        with pytest.raises(LifecertError) as e, data_ctx.db.session() as s:
            suspensions.approve(s, sid, signer, today=TODAY)
        assert e.value.code is ErrorCode.TWO_PERSON_RULE
    assert _withdrawn(data_ctx, conf_id) == (None, None)

    with data_ctx.db.session() as s:
        suspensions.approve(s, sid, c, today=TODAY)
    assert _withdrawn(data_ctx, conf_id)[1] == c.user_id
    assert _state(data_ctx, pid) == "overdue", "the older confirmation decides again"
    with data_ctx.db.session() as s:
        w = s.scalars(select(AuditEvent).where(AuditEvent.action == "confirmation.withdraw")).one()
        assert (w.detail["added_by"], w.detail["proposed_by"], w.detail["approved_by"], w.detail["case_id"]) == (
            b.user_id, a.user_id, c.user_id, case_id)
        assert verify_chain(s).ok


def test_given_an_open_fraud_case_from_enrollment_when_a_spot_check_finds_fraud_then_it_is_the_first_signature(
        data_ctx: AppContext, staff: tuple[Principal, Principal, Principal]) -> None:
    """Enrollment staff left an OPEN fraud case (a duplicate face): cw_a's fraud decision on the spot check
    proposes it and adds the confirmation; cw_b's approval withdraws it."""
    a, b, _ = staff
    pid, conf_id, case_id = _pensioner(data_ctx, 63)
    es = principal(data_ctx, make_user(data_ctx, "es_zhao", "enrollment_staff"))
    dup_case = make_case(data_ctx, pid)
    with data_ctx.db.session() as s:
        p = s.get(Pensioner, pid)
        assert p is not None
        sid = suspensions.open_fraud(s, p, dup_case, es).id
    with data_ctx.db.session() as s:
        assert review.mark_suspected_fraud(s, case_id, a).id == sid
    with data_ctx.db.session() as s:
        susp = s.get(Suspension, sid)
        assert susp is not None and (susp.status, susp.proposed_by) == (SuspensionStatus.PROPOSED, a.user_id)
        assert suspensions.withdraws_of(susp) == [(conf_id, AUDITED)]
    with data_ctx.db.session() as s:
        suspensions.approve(s, sid, b, today=TODAY)
    assert _withdrawn(data_ctx, conf_id)[1] == b.user_id


def test_given_a_fraud_suspension_in_force_when_a_spot_check_finds_fraud_then_refused_saying_what_to_do(
        data_ctx: AppContext, staff: tuple[Principal, Principal, Principal]) -> None:
    """Payment already suspended for fraud (two signatures given): the decision is refused with its own code,
    the case page says what to do (home visit) before and after the attempt, nothing is changed."""
    a, b, c = staff
    pid, conf_id, case_id = _pensioner(data_ctx, 65)
    sid = _tip_off_proposal(data_ctx, pid, a)
    with data_ctx.db.session() as s:
        suspensions.approve(s, sid, b, today=TODAY)

    with pytest.raises(LifecertError) as e, data_ctx.db.session() as s:
        review.mark_suspected_fraud(s, case_id, c)
    assert e.value.code is ErrorCode.FRAUD_SUSPENSION_IN_FORCE

    client, csrf = _client(data_ctx, "cw_c")
    page = client.get(f"/console/cases/{case_id}").text
    assert _text(page, "fraud-in-force") == (f"已因疑似冒领暂停发放（#{sid}）：不能再标记疑似欺诈。"
                                             "如需核实本人，请选“上门核实”")
    r = client.post(f"/console/cases/{case_id}/fraud", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].endswith("error=FRAUD_SUSPENSION_IN_FORCE")
    shown = client.get(r.headers["location"]).text
    assert "已因疑似冒领暂停发放，不能再附加认证。如需核实本人，请选“上门核实”" in shown

    with data_ctx.db.session() as s:
        row = s.get(ReviewCase, case_id)
        assert row is not None and row.status != "closed"
        (susp,) = s.scalars(select(Suspension).where(Suspension.pensioner_id == pid)).all()
        assert suspensions.withdraws_of(susp) == []
        acted = [(ev.action, ev.object_id) for ev in s.scalars(select(AuditEvent).where(AuditEvent.action.in_(
            ("suspension.join", "case.fraud", "confirmation.withdraw"))))]
        assert ("case.fraud", str(case_id)) not in acted and [a for a, _ in acted] == ["case.fraud"]  # the tip-off's
    assert _withdrawn(data_ctx, conf_id) == (None, None)


def test_given_a_pending_fraud_proposal_outside_the_caseworkers_region_when_a_spot_check_finds_fraud_then_not_joined(
        data_ctx: AppContext, staff: tuple[Principal, Principal, Principal]) -> None:
    """The pensioner moved after cw_a's proposal (the suspension keeps its old region): a caseworker of the new
    region deciding fraud on her spot check may not sign a suspension outside their region, as on the
    suspensions page: refused, nothing added, the case still open."""
    a, _, c = staff
    pid, conf_id, case_id = _pensioner(data_ctx, 67)
    sid = _tip_off_proposal(data_ctx, pid, a)
    with data_ctx.db.session() as s:
        susp = s.get(Suspension, sid)
        assert susp is not None
        susp.region_code = "110101"  # the old district
    here = dataclasses.replace(c, region_code="220202")
    with pytest.raises(LifecertError) as e, data_ctx.db.session() as s:
        review.mark_suspected_fraud(s, case_id, here)
    assert e.value.code is ErrorCode.NOT_FOUND
    with data_ctx.db.session() as s:
        susp = s.get(Suspension, sid)
        assert susp is not None and suspensions.withdraws_of(susp) == []
        row = s.get(ReviewCase, case_id)
        assert row is not None and row.status != "closed"
    assert _withdrawn(data_ctx, conf_id) == (None, None)
