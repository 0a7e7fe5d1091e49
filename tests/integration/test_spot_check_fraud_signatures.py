"""Suspected fraud on a spot check takes two signatures before the confirmation is withdrawn: the first
caseworker's decision only proposes the fraud suspension (naming the confirmation under check), the
second caseworker's approval suspends the payment AND withdraws the confirmation; a declined proposal
leaves it standing. The overdue sweep opens no second case beside a fraud case. Real services on the
test database (no face session needed: the case is opened the way verification opens it)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from lifecert.domain.cases import DrawnSession, SpotCheck
from lifecert.domain.errors import ErrorCode, LifecertError
from lifecert.domain.idnumber import make_id_number
from lifecert.services import cases, review, suspensions
from lifecert.services.audit import verify_chain
from lifecert.services.confirmations import record_confirmation, status_of
from lifecert.services.context import AppContext
from lifecert.services.staff import Principal
from lifecert.storage.models import (
    AuditEvent,
    ConfirmationMethod,
    Pensioner,
    PensionerStatus,
    SurvivalConfirmation,
)
from lifecert.storage.models_agency import Suspension, SuspensionReason, SuspensionStatus
from tests.integration.console_support import make_user
from tests.integration.test_suspensions import principal

TODAY = date(2026, 12, 1)
REGISTERED = datetime(2025, 1, 10, tzinfo=UTC)
OLDER = date(2025, 6, 1)  # alone it leaves her overdue on TODAY (due 2026-06-01, grace to 2026-07-01)
AUDITED = date(2026, 11, 30)  # the spot-checked session's confirmation


def _pensioner_with_spot_check(ctx: AppContext, seq: int, *, older: bool = True) -> tuple[int, int, int]:
    """A pensioner confirmed on ``AUDITED`` by face (and on ``OLDER`` before, when ``older``), with a
    RANDOM_SAMPLE spot-check case over the newest confirmation: (pensioner id, confirmation id, case id)."""
    with ctx.db.session() as s:
        p = Pensioner(id_number=make_id_number("220202", date(1950, 3, 7), seq), name="张桂兰", sex="F",
                      birth_date=date(1950, 3, 7), region_code="220202", created_at=REGISTERED)
        s.add(p)
        s.flush()
        if older:
            record_confirmation(s, p, ConfirmationMethod.HOME_VISIT, OLDER, "visit", {}, cycle_months=12)
        conf = record_confirmation(s, p, ConfirmationMethod.FACE_SELF_SERVICE, AUDITED, "verification_session:x",
                                   {}, cycle_months=12)
        case = cases.open_case(s, SpotCheck(session_id="x", reasons=("RANDOM_SAMPLE",), confirmation_id=conf.id,
                                            method="face_self_service", sample_rate=0.02),
                               reason="RANDOM_SAMPLE", pensioner=p)
        return p.id, conf.id, case.id


def _state(ctx: AppContext, pid: int) -> str:
    with ctx.db.session() as s:
        p = s.get(Pensioner, pid)
        assert p is not None
        return str(status_of(s, p, today=TODAY).state)


def _withdrawn(ctx: AppContext, conf_id: int) -> tuple[datetime | None, int | None]:
    with ctx.db.session() as s:
        c = s.get(SurvivalConfirmation, conf_id)
        assert c is not None
        return c.withdrawn_at, c.withdrawn_by


@pytest.fixture
def signers(data_ctx: AppContext) -> tuple[Principal, Principal]:
    return (principal(data_ctx, make_user(data_ctx, "cw_a", "caseworker")),
            principal(data_ctx, make_user(data_ctx, "cw_b", "caseworker")))


def test_given_fraud_on_a_spot_check_when_a_second_caseworker_approves_then_the_confirmation_is_withdrawn(
        data_ctx: AppContext, signers: tuple[Principal, Principal]) -> None:
    a, b = signers
    pid, conf_id, case_id = _pensioner_with_spot_check(data_ctx, 31)
    assert _state(data_ctx, pid) == "valid"

    with data_ctx.db.session() as s:  # the first signature: a proposal, nothing withdrawn yet
        sid = review.mark_suspected_fraud(s, case_id, a, note="画面是手机屏幕翻拍").id
    assert _withdrawn(data_ctx, conf_id) == (None, None)
    assert _state(data_ctx, pid) == "valid", "one caseworker's word does not change the pensioner's standing"
    with data_ctx.db.session() as s:
        susp = s.get(Suspension, sid)
        assert susp is not None and (susp.status, susp.reason, susp.proposed_by) == (
            SuspensionStatus.PROPOSED, SuspensionReason.FRAUD, a.user_id)
        assert suspensions.withdraws_of(susp) == [(conf_id, AUDITED)]
        fraud = s.scalars(select(AuditEvent).where(AuditEvent.action == "case.fraud")).one()
        assert fraud.detail["withdraws_on_approval"] == [conf_id]
        assert not s.scalars(select(AuditEvent).where(AuditEvent.action == "confirmation.withdraw")).all()

    with pytest.raises(LifecertError) as e, data_ctx.db.session() as s:  # the proposer cannot sign twice
        suspensions.approve(s, sid, a, today=TODAY)
    assert e.value.code is ErrorCode.TWO_PERSON_RULE
    assert _withdrawn(data_ctx, conf_id) == (None, None) and _state(data_ctx, pid) == "valid"

    with data_ctx.db.session() as s:  # the second signature
        suspensions.approve(s, sid, b, today=TODAY)
    at, by = _withdrawn(data_ctx, conf_id)
    assert at is not None and by == b.user_id
    assert _state(data_ctx, pid) == "overdue", "the older confirmation decides again"
    with data_ctx.db.session() as s:
        p = s.get(Pensioner, pid)
        assert p is not None and (p.status, p.fraud_flag) == (PensionerStatus.SUSPENDED, True)
        susp = s.get(Suspension, sid)
        assert susp is not None and susp.detail[suspensions.WITHDRAWN] == [conf_id]
        w = s.scalars(select(AuditEvent).where(AuditEvent.action == "confirmation.withdraw")).one()
        assert (w.actor, w.object_id) == ("cw_b", str(conf_id))
        assert (w.detail["proposed_by"], w.detail["approved_by"], w.detail["suspension_id"]) == (
            a.user_id, b.user_id, sid)
        assert w.detail["case_id"] == case_id
        ok = s.scalars(select(AuditEvent).where(AuditEvent.action == "suspension.approve")).one()
        assert (ok.detail["proposed_by"], ok.detail["approved_by"], ok.detail["withdrawn_confirmation_ids"]) == (
            a.user_id, b.user_id, [conf_id])
        c = s.get(SurvivalConfirmation, conf_id)
        assert c is not None and f"#{sid}" in (c.withdrawn_reason or "")
        assert verify_chain(s).ok


def test_given_the_only_confirmation_under_check_when_approved_then_never_confirmed(
        data_ctx: AppContext, signers: tuple[Principal, Principal]) -> None:
    a, b = signers
    pid, _, case_id = _pensioner_with_spot_check(data_ctx, 33, older=False)
    with data_ctx.db.session() as s:
        sid = review.mark_suspected_fraud(s, case_id, a).id
    assert _state(data_ctx, pid) == "valid"
    with data_ctx.db.session() as s:
        suspensions.approve(s, sid, b, today=TODAY)
    assert _state(data_ctx, pid) == "never_confirmed"


def test_given_a_spot_check_of_two_sessions_when_fraud_is_signed_twice_then_both_confirmations_are_withdrawn(
        data_ctx: AppContext, signers: tuple[Principal, Principal]) -> None:
    a, b = signers
    with data_ctx.db.session() as s:
        p = Pensioner(id_number=make_id_number("220202", date(1950, 3, 7), 43), name="张桂兰", sex="F",
                      birth_date=date(1950, 3, 7), region_code="220202", created_at=REGISTERED)
        s.add(p)
        s.flush()
        one, two = (record_confirmation(s, p, ConfirmationMethod.FACE_SELF_SERVICE, d, f"verification_session:{n}",
                                        {}, cycle_months=12) for n, d in (("x", date(2026, 11, 20)), ("y", AUDITED)))
        payload = SpotCheck(session_id="x", reasons=("RANDOM_SAMPLE",), confirmation_id=one.id,
                            method="face_self_service",
                            later=(DrawnSession(session_id="y", reasons=("RANDOM_SAMPLE",), confirmation_id=two.id,
                                                method="face_self_service"),))
        case_id = cases.open_case(s, payload, reason="RANDOM_SAMPLE", pensioner=p).id
        pid, ids = p.id, [one.id, two.id]
    with data_ctx.db.session() as s:
        sid = review.mark_suspected_fraud(s, case_id, a).id
        susp = s.get(Suspension, sid)
        assert susp is not None and suspensions.withdraws_of(susp) == [(ids[0], date(2026, 11, 20)), (ids[1], AUDITED)]
    assert _state(data_ctx, pid) == "valid"
    with data_ctx.db.session() as s:
        suspensions.approve(s, sid, b, today=TODAY)
    assert all(_withdrawn(data_ctx, i)[1] == b.user_id for i in ids)
    assert _state(data_ctx, pid) == "never_confirmed"


def test_given_a_fraud_proposal_from_a_spot_check_when_declined_then_the_confirmation_stands(
        data_ctx: AppContext, signers: tuple[Principal, Principal]) -> None:
    a, b = signers
    pid, conf_id, case_id = _pensioner_with_spot_check(data_ctx, 35)
    with data_ctx.db.session() as s:
        sid = review.mark_suspected_fraud(s, case_id, a).id
    with data_ctx.db.session() as s:
        suspensions.decline(s, sid, b, note="看过原始视频，是本人在病床上")
    assert _withdrawn(data_ctx, conf_id) == (None, None)
    assert _state(data_ctx, pid) == "valid"
    with data_ctx.db.session() as s:
        susp = s.get(Suspension, sid)
        assert susp is not None and susp.status == SuspensionStatus.CANCELLED
        p = s.get(Pensioner, pid)
        assert p is not None and (p.status, p.fraud_flag) == (PensionerStatus.ACTIVE, False)
        ev = s.scalars(select(AuditEvent).where(AuditEvent.action == "suspension.decline")).one()
        assert ev.detail["confirmations_kept"] == [conf_id]
    with pytest.raises(LifecertError) as e, data_ctx.db.session() as s:  # a declined case cannot be approved after
        suspensions.approve(s, sid, a, today=TODAY)
    assert e.value.code is ErrorCode.CONFLICT
    assert _withdrawn(data_ctx, conf_id) == (None, None)


def test_given_a_fraud_case_under_way_when_the_overdue_sweep_runs_then_no_second_case_opens(
        data_ctx: AppContext, signers: tuple[Principal, Principal]) -> None:
    """Two moments: the proposal still waiting on a sweep day when the audited confirmation has lapsed too
    (she is overdue and active: only the 'case under way' rule holds the sweep back), and after approval
    (confirmation withdrawn, overdue on the older one, payment suspended for fraud). Both times the fraud
    case stays her only one, while a pensioner overdue without a case gets one on the same sweep."""
    a, b = signers
    pid, conf_id, case_id = _pensioner_with_spot_check(data_ctx, 37)
    first_control, _, _ = _pensioner_with_spot_check(data_ctx, 39)
    with data_ctx.db.session() as s:
        sid = review.mark_suspected_fraud(s, case_id, a).id

    lapsed = date(2028, 1, 15)  # past AUDITED's window and grace (2027-11-30 + 30 days)
    with data_ctx.db.session() as s:
        p = s.get(Pensioner, pid)
        assert p is not None and str(status_of(s, p, today=lapsed).state) == "overdue"
        assert suspensions.sweep(s, lapsed).opened == 1  # the control only
    with data_ctx.db.session() as s:
        rows = [(x.pensioner_id, x.reason) for x in s.scalars(select(Suspension).order_by(Suspension.id))]
    assert rows == [(pid, SuspensionReason.FRAUD), (first_control, SuspensionReason.OVERDUE)]

    with data_ctx.db.session() as s:
        suspensions.approve(s, sid, b, today=TODAY)
    assert _state(data_ctx, pid) == "overdue" and _withdrawn(data_ctx, conf_id)[0] is not None
    with data_ctx.db.session() as s:  # a second control: overdue on the older confirmation alone
        other = Pensioner(id_number=make_id_number("220202", date(1950, 3, 7), 41), name="李秀英", sex="F",
                          birth_date=date(1950, 3, 7), region_code="220202", created_at=REGISTERED)
        s.add(other)
        s.flush()
        record_confirmation(s, other, ConfirmationMethod.HOME_VISIT, OLDER, "visit", {}, cycle_months=12)
        second_control = other.id
    with data_ctx.db.session() as s:
        assert suspensions.sweep(s, date(2026, 12, 2)).opened == 1  # the second control only
        mine = [(x.reason, x.status) for x in s.scalars(select(Suspension).where(Suspension.pensioner_id == pid))]
        theirs = s.scalars(select(Suspension).where(Suspension.pensioner_id == second_control)).one()
    assert mine == [(SuspensionReason.FRAUD, SuspensionStatus.APPROVED)]
    assert theirs.reason == SuspensionReason.OVERDUE
