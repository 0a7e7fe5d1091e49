"""Overdue → suspension with two-person sign-off → export → resumption with months owed."""

from __future__ import annotations

import csv
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from lifecert.domain.errors import AccessDenied, Conflict, ErrorCode, LifecertError, NotFound
from lifecert.domain.idnumber import make_id_number
from lifecert.services import suspensions
from lifecert.services.audit import verify_chain
from lifecert.services.confirmations import record_confirmation
from lifecert.services.context import AppContext
from lifecert.services.staff import Principal, Role
from lifecert.storage.models import AuditEvent, ConfirmationMethod, Pensioner, PensionerStatus, StaffUser
from lifecert.storage.models_agency import Suspension, SuspensionStatus
from tests.integration.console_support import make_user

REGISTERED = datetime(2025, 1, 10, tzinfo=UTC)


def principal(ctx: AppContext, user_id: int) -> Principal:
    with ctx.db.session() as s:
        u = s.get(StaffUser, user_id)
        assert u is not None
        return Principal(u.id, u.username, Role(u.role), u.display_name, u.region_code, "cli")


def _register(ctx: AppContext, seq: int, last: date | None, region: str = "220202") -> int:
    """A pensioner on the default policy (fixed 12 months, grace 30 days) last confirmed on ``last``."""
    with ctx.db.session() as s:
        p = Pensioner(id_number=make_id_number(region, date(1950, 3, 7), seq), name="张桂兰", sex="F",
                      birth_date=date(1950, 3, 7), region_code=region, created_at=REGISTERED)
        s.add(p)
        s.flush()
        if last is not None:
            record_confirmation(s, p, ConfirmationMethod.FACE_SELF_SERVICE, last, "t", {}, cycle_months=12)
        return p.id


@pytest.fixture
def staff3(data_ctx: AppContext) -> tuple[Principal, Principal, Principal]:
    a = principal(data_ctx, make_user(data_ctx, "cw_a", "caseworker"))
    b = principal(data_ctx, make_user(data_ctx, "cw_b", "caseworker"))
    e = principal(data_ctx, make_user(data_ctx, "enrol", "enrollment_staff"))
    return a, b, e


def test_given_overdue_pensioner_when_two_caseworkers_sign_then_suspended_exported_and_resumed_with_months_owed(
        data_ctx: AppContext, staff3: tuple[Principal, Principal, Principal], tmp_path: Path) -> None:
    a, b, enrol = staff3
    late = _register(data_ctx, 11, date(2026, 1, 15))  # due 2027-01-15, grace to 2027-02-14
    fine = _register(data_ctx, 13, date(2026, 6, 1))
    never = _register(data_ctx, 15, None)  # due on registration: long overdue

    with data_ctx.db.session() as s:
        assert suspensions.open_overdue(s, date(2027, 2, 14)) == 1  # only `never`: late is in grace
        r = suspensions.sweep(s, date(2027, 2, 15))
        assert (r.opened, r.cancelled, r.resumed) == (1, 0, 0)
        assert suspensions.sweep(s, date(2027, 2, 16)).opened == 0  # one case per pensioner
        cases = {x.pensioner_id: x for x in s.scalars(select(Suspension))}
    assert set(cases) == {late, never} and fine not in cases
    sid = cases[late].id
    assert cases[late].grace_until == date(2027, 2, 14) and cases[late].status == SuspensionStatus.OPEN

    with pytest.raises(Conflict), data_ctx.db.session() as s:  # approve before any proposal
        suspensions.approve(s, sid, b, today=date(2027, 2, 20))
    with pytest.raises(AccessDenied), data_ctx.db.session() as s:
        suspensions.propose(s, sid, enrol)
    with data_ctx.db.session() as s:
        suspensions.propose(s, sid, a, note="三次短信未回复")
    with pytest.raises(LifecertError) as e, data_ctx.db.session() as s:
        suspensions.approve(s, sid, a, today=date(2027, 2, 20))
    assert e.value.code is ErrorCode.TWO_PERSON_RULE
    with data_ctx.db.session() as s:
        assert s.get(Suspension, sid).status == SuspensionStatus.PROPOSED  # type: ignore[union-attr]
        assert s.get(Pensioner, late).status == PensionerStatus.ACTIVE  # type: ignore[union-attr]
        suspensions.approve(s, sid, b, today=date(2027, 2, 20))
        assert s.get(Pensioner, late).status == PensionerStatus.SUSPENDED  # type: ignore[union-attr]

    out = tmp_path / "suspend.csv"
    with data_ctx.db.session() as s:
        assert suspensions.export_for_payment(s, out, actor="cli:t", role="cli") == 1
        assert suspensions.export_for_payment(s, tmp_path / "again.csv", actor="cli:t", role="cli") == 0
    rows = list(csv.DictReader(out.open(encoding="utf-8-sig")))
    assert [(r["status"], r["effective_from"], r["months_owed"]) for r in rows] == [("approved", "2027-02-20", "")]
    assert out.stat().st_mode & 0o077 == 0

    # a home visit in May confirms her: resumed in May, February..April owed
    with data_ctx.db.session() as s:
        p = s.get(Pensioner, late)
        assert p is not None
        record_confirmation(s, p, "home_visit", date(2027, 5, 9), "visit", {}, cycle_months=12)
    with data_ctx.db.session() as s:
        case = s.get(Suspension, sid)
        assert case is not None and case.status == SuspensionStatus.RESUMED
        assert (case.resumed_on, case.months_owed) == (date(2027, 5, 9), 3)
        assert s.get(Pensioner, late).status == PensionerStatus.ACTIVE  # type: ignore[union-attr]
        assert suspensions.export_for_payment(s, tmp_path / "resume.csv", actor="cli:t", role="cli") == 1
        actions = [ev.action for ev in s.scalars(select(AuditEvent).where(
            AuditEvent.object_type == "payment_suspension", AuditEvent.object_id == str(sid)).order_by(AuditEvent.id))]
        refused = s.scalars(select(AuditEvent).where(AuditEvent.action == "suspension.refused_same_signer")).all()
        assert verify_chain(s).ok
        names = [str(ev.detail) for ev in s.scalars(select(AuditEvent).where(AuditEvent.object_type
                                                                               == "payment_suspension"))]
    assert actions == ["suspension.open", "suspension.propose", "suspension.refused_same_signer",
                       "suspension.approve", "suspension.resume"]
    assert len(refused) == 1 and refused[0].actor == "cw_a"
    assert names and not any("张桂兰" in d or "19500307" in d for d in names)  # no personal data


def test_given_pending_case_when_data_comparison_arrives_in_bulk_then_sweep_cancels_it(
        data_ctx: AppContext, staff3: tuple[Principal, Principal, Principal]) -> None:
    a, _, _ = staff3
    pid = _register(data_ctx, 21, date(2026, 1, 15))
    with data_ctx.db.session() as s:
        suspensions.sweep(s, date(2027, 3, 1))
        sid = s.scalars(select(Suspension.id)).one()
        suspensions.propose(s, sid, a)
        # a data-comparison hit written as a bulk import does (no record_confirmation hook)
        from lifecert.storage.models import SurvivalConfirmation

        s.add(SurvivalConfirmation(pensioner_id=pid, method=ConfirmationMethod.DATA_COMPARISON,
                                   evidence_date=date(2027, 2, 20), valid_until=date(2028, 2, 20), source="dept"))
        s.flush()
        r = suspensions.sweep(s, date(2027, 3, 2))
        assert (r.cancelled, r.resumed, r.opened) == (1, 0, 0)
        assert s.get(Suspension, sid).status == SuspensionStatus.CANCELLED  # type: ignore[union-attr]


def test_given_staff_of_another_region_when_signing_then_not_found_and_decline_needs_reason(
        data_ctx: AppContext, staff3: tuple[Principal, Principal, Principal]) -> None:
    a, _, _ = staff3
    other = principal(data_ctx, make_user(data_ctx, "cw_far", "caseworker"))
    other = Principal(other.user_id, other.username, other.role, "", "110101", "cli")
    _register(data_ctx, 31, None)
    with data_ctx.db.session() as s:
        suspensions.sweep(s, date(2027, 3, 1))
        sid = s.scalars(select(Suspension.id)).one()
    with pytest.raises(NotFound), data_ctx.db.session() as s:
        suspensions.propose(s, sid, other)
    with pytest.raises(LifecertError) as e, data_ctx.db.session() as s:
        suspensions.decline(s, sid, a, note="  ")
    assert e.value.code is ErrorCode.BAD_REQUEST
    with data_ctx.db.session() as s:
        suspensions.decline(s, sid, a, note="住院，已安排上门")
        assert s.get(Suspension, sid).status == SuspensionStatus.CANCELLED  # type: ignore[union-attr]
        assert suspensions.counts_by_region(s) == {"220202": {"cancelled": 1}}


def test_given_each_kind_of_suspension_when_asking_may_certify_then_only_overdue_ones_may() -> None:
    def p(status: str, reason: str | None) -> Pensioner:
        return Pensioner(status=status, status_reason=reason)

    assert suspensions.may_certify(p(PensionerStatus.ACTIVE, None))
    assert suspensions.may_certify(p(PensionerStatus.SUSPENDED, "payment suspension #7 (overdue)"))
    assert not suspensions.may_certify(p(PensionerStatus.SUSPENDED, "payment suspension #7 (fraud)"))
    assert not suspensions.may_certify(p(PensionerStatus.SUSPENDED, "imprisoned: sentence from 2026-03-01"))
    assert not suspensions.may_certify(p(PensionerStatus.DECEASED, "payment suspension #7 (overdue)"))


def test_given_enrollment_staff_confirm_a_duplicate_face_when_deciding_then_flagged_but_paid_until_two_sign(
        data_ctx: AppContext, staff3: tuple[Principal, Principal, Principal]) -> None:
    from lifecert.domain.cases import DuplicateFace
    from lifecert.services import review
    from lifecert.storage.models import ReviewKind
    from tests.integration.console_support import make_case

    a, b, enrol = staff3
    pid = _register(data_ctx, 41, date(2026, 6, 1))
    other = _register(data_ctx, 43, date(2026, 6, 1))
    cid = make_case(data_ctx, pid, kind=ReviewKind.ENROLLMENT, reason="DUPLICATE_FACE",
                    payload=DuplicateFace(photo_sha256="c" * 64, duplicate_of_pensioner_id=other, similarity=0.97))
    with data_ctx.db.session() as s:
        review.confirm_duplicate(s, cid, enrol, note="同一人两次建档")
    with data_ctx.db.session() as s:
        p = s.get(Pensioner, pid)
        assert p is not None and p.fraud_flag and p.status == PensionerStatus.ACTIVE  # one person: no stop
        case = s.scalars(select(Suspension).where(Suspension.pensioner_id == pid)).one()
        assert (case.status, case.reason, case.review_case_id) == (SuspensionStatus.OPEN, "fraud", cid)
        assert case.detail["duplicate_of_pensioner_id"] == other
        suspensions.propose(s, case.id, a)
        suspensions.approve(s, case.id, b, today=date(2027, 1, 5))
        assert s.get(Pensioner, pid).status == PensionerStatus.SUSPENDED  # type: ignore[union-attr]
        # a later confirmation does not resume a fraud suspension: caseworkers decide those
        record_confirmation(s, s.get(Pensioner, pid), ConfirmationMethod.DATA_COMPARISON,  # type: ignore[arg-type]
                            date(2027, 2, 1), "dept", {}, cycle_months=12)
        assert s.get(Suspension, case.id).status == SuspensionStatus.APPROVED  # type: ignore[union-attr]


def test_given_more_overdue_than_a_batch_when_opening_then_all_opened_once_and_audited_in_chain(
        data_ctx: AppContext) -> None:
    ids = [_register(data_ctx, 51 + 2 * i, None) for i in range(5)]
    with data_ctx.db.session() as s:
        assert suspensions.open_overdue(s, date(2027, 3, 1), batch=2) == 5
        assert suspensions.open_overdue(s, date(2027, 3, 2), batch=2) == 0
    with data_ctx.db.session() as s:
        assert sorted(s.scalars(select(Suspension.pensioner_id))) == sorted(ids)
        opened = s.scalars(select(AuditEvent).where(AuditEvent.action == "suspension.open")).all()
        assert len(opened) == 5 and verify_chain(s).ok


def test_given_fraud_suspension_found_unfounded_when_two_caseworkers_lift_it_then_resumed_with_months_owed(
        data_ctx: AppContext, staff3: tuple[Principal, Principal, Principal], tmp_path: Path) -> None:
    a, b, _ = staff3
    pid = _register(data_ctx, 61, date(2026, 6, 1))
    with data_ctx.db.session() as s:
        p = s.get(Pensioner, pid)
        assert p is not None
        sid = suspensions.propose_fraud(s, p, None, a, note="举报").id
        suspensions.approve(s, sid, b, today=date(2027, 1, 10))
        assert p.fraud_flag and p.status == PensionerStatus.SUSPENDED
    with pytest.raises(LifecertError) as e, data_ctx.db.session() as s:
        suspensions.propose_lift(s, sid, b, note=" ")
    assert e.value.code is ErrorCode.BAD_REQUEST
    with data_ctx.db.session() as s:
        suspensions.propose_lift(s, sid, b, note="核查：举报不实，本人健在")
        assert s.get(Pensioner, pid).status == PensionerStatus.SUSPENDED  # type: ignore[union-attr]
    with pytest.raises(LifecertError) as e, data_ctx.db.session() as s:
        suspensions.approve_lift(s, sid, b, today=date(2027, 4, 2))
    assert e.value.code is ErrorCode.TWO_PERSON_RULE
    with data_ctx.db.session() as s:
        case = suspensions.approve_lift(s, sid, a, today=date(2027, 4, 2))
        assert (case.status, case.months_owed, case.resumed_on) == (SuspensionStatus.RESUMED, 3, date(2027, 4, 2))
        p = s.get(Pensioner, pid)
        assert p is not None and p.status == PensionerStatus.ACTIVE and not p.fraud_flag
        out = tmp_path / "pay.csv"
        assert suspensions.export_for_payment(s, out, actor="cli:t", role="cli") == 1
    assert ",resumed," in out.read_text(encoding="utf-8-sig")
