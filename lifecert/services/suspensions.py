"""Payment suspension with two-person sign-off (issue 15 item 2).

A pensioner still unconfirmed after their window's grace period (lifecert.services.policy) gets a
suspension case ``open`` (``open_overdue``, run daily by ``lifecert suspensions sweep``). One
caseworker ``propose``s it; a DIFFERENT staff member ``approve``s it, which suspends the payment
(pensioner status ``suspended``). A caseworker's "suspected fraud" decision on a review case opens
a case already ``proposed`` by that caseworker (``propose_fraud``): the same second signature
is needed. A fraud case proposed from a spot check also carries the audited confirmation(s): they are
withdrawn when the second caseworker approves (a withdrawal changes the pensioner's standing, so it
takes the same two signatures), and stand if the case is declined. A fraud decision while the pensioner's
fraud case is still pending joins it (its confirmations are added, and whoever added them may not
approve); while one is in force, it is refused (FRAUD_SUSPENSION_IN_FORCE). A later confirmation of any
kind ``cancel``s a pending overdue case, or ``resume``s an approved one with the months of payment
withheld (owed back) computed. Fraud suspensions are never resumed by a confirmation: a caseworker
decides those. While any case is under way for a pensioner (a fraud one included) the overdue sweep
opens no second one. Every step is audited in the keyed
chain, with ids and dates, never names or ID numbers.

``on_confirmation`` is called by ``record_confirmation``; confirmations written in bulk (data
comparison imports) are caught by ``sweep``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lifecert.domain.errors import AccessDenied, Conflict, ErrorCode, LifecertError, NotFound
from lifecert.domain.policy import CertificationPolicy, DueState, months_owed, next_due, policy_for
from lifecert.services import audit
from lifecert.services.policy import default_policy, iter_register, policies_in_force
from lifecert.services.review.access import in_scope
from lifecert.services.staff import Principal, Role
from lifecert.services.withdrawal import withdraw_confirmation
from lifecert.storage.models import AuditEvent, Pensioner, PensionerStatus, StaffUser, SurvivalConfirmation
from lifecert.storage.models_agency import Suspension, SuspensionReason, SuspensionStatus

SIGNING_ROLES = (Role.CASEWORKER,)  # not admin: account management and payment decisions stay apart
STATUS_PREFIX = "payment suspension #"  # pensioner.status_reason of a suspension made here


class TwoPersonRule(LifecertError):
    """The second signature came from the first signer."""

    code = ErrorCode.TWO_PERSON_RULE


class FraudSuspensionInForce(LifecertError):
    """A fraud decision while the pensioner's payment is already suspended for fraud: nothing to propose,
    and a confirmation cannot join a suspension whose second signature is already given."""

    code = ErrorCode.FRAUD_SUSPENSION_IN_FORCE


def _now() -> datetime:
    return datetime.now(UTC)


def _audit(session: Session, who: Principal | None, action: str, s: Suspension, client_addr: str = "",
           **detail: Any) -> AuditEvent:
    return audit.record(session, actor=who.username if who else "system", role=str(who.role) if who else "system",
                 action=action, object_type="payment_suspension", object_id=s.id, client_addr=client_addr,
                 detail={"pensioner_id": s.pensioner_id, "reason": s.reason, "status": s.status, **detail})


def _check_signer(who: Principal, s: Suspension) -> None:
    if who.role not in SIGNING_ROLES:
        raise AccessDenied("only caseworkers sign payment suspensions", role=str(who.role))
    if not in_scope(who, s.region_code):
        # like a case of another region: it does not exist for this staff member
        raise NotFound(f"suspension {s.id} not found")


def get(session: Session, suspension_id: int, *, for_update: bool = False) -> Suspension:
    q = select(Suspension).where(Suspension.id == suspension_id)
    if for_update:
        q = q.with_for_update()
    s = session.scalars(q).first()
    if s is None:
        raise NotFound(f"suspension {suspension_id} not found")
    return s


def active_of(session: Session, pensioner_id: int) -> list[Suspension]:
    return list(session.scalars(select(Suspension).where(
        Suspension.pensioner_id == pensioner_id, Suspension.status.in_(SuspensionStatus.ACTIVE))))


def open_overdue(session: Session, today: date, *, policies: list[CertificationPolicy] | None = None,
                 region_prefix: str = "", batch: int = 1000) -> int:
    """Open a case for every active pensioner overdue on ``today`` (past the grace period of the
    window they owe) who has no case under way. Returns how many were opened. The register is read
    in one streamed pass; cases are written in batches (one INSERT each) and let go of afterwards, so
    a first sweep over a large register does not hold every row in memory."""
    ps = policies if policies is not None else policies_in_force(session)
    fallback = default_policy()
    busy = set(session.scalars(select(Suspension.pensioner_id).where(Suspension.status.in_(SuspensionStatus.ACTIVE))))
    by_region: dict[str, CertificationPolicy] = {}
    found: list[tuple[int, str, date, date, date | None, str]] = []
    for r in iter_register(session, region_prefix=region_prefix):
        if r.pensioner_id in busy:
            continue
        pol = by_region.get(r.region_code)
        if pol is None:
            pol = by_region[r.region_code] = policy_for(ps, r.region_code, today) or fallback
        w = next_due(pol, birth_month=r.birth_month, last_confirmation=r.last_confirmation, registered=r.registered)
        if w.state_on(today) is DueState.OVERDUE:
            found.append((r.pensioner_id, r.region_code, w.closes, w.grace_until, r.last_confirmation,
                          f"{pol.kind}:{pol.region_prefix or '*'}"))
    for i in range(0, len(found), batch):  # after the register cursor is exhausted
        made = [Suspension(pensioner_id=pid, region_code=region, reason=SuspensionReason.OVERDUE,
                           status=SuspensionStatus.OPEN, window_closes=closes, grace_until=grace,
                           detail={"last_confirmation": last.isoformat() if last else None, "policy": label,
                                   "as_of": today.isoformat()})
                for pid, region, closes, grace, last, label in found[i:i + batch]]
        session.add_all(made)
        session.flush()
        events = [_audit(session, None, "suspension.open", s, window_closes=s.window_closes.isoformat()
                         if s.window_closes else None,
                         grace_until=s.grace_until.isoformat() if s.grace_until else None) for s in made]
        for obj in (*made, *events):
            session.expunge(obj)
    return len(found)


def propose(session: Session, suspension_id: int, who: Principal, *, note: str = "",
            client_addr: str = "") -> Suspension:
    """First signature: the caseworker checked the case and proposes to suspend payment."""
    s = get(session, suspension_id, for_update=True)
    _check_signer(who, s)
    if s.status != SuspensionStatus.OPEN:
        raise Conflict(f"suspension {s.id} is {s.status}, not open", status=s.status)
    s.status, s.proposed_by, s.proposed_at = SuspensionStatus.PROPOSED, who.user_id, _now()
    s.proposal_note = note.strip()[:2000] or None
    _audit(session, who, "suspension.propose", s, client_addr)
    return s


WITHDRAWS = "withdraws"  # detail key: [{"confirmation_id", "evidence_date"}] withdrawn on approval
WITHDRAWN = "withdrawn"  # detail key: the confirmation ids approval withdrew


def propose_fraud(session: Session, pensioner: Pensioner, review_case_id: int | None, who: Principal, *, note: str = "",
                  client_addr: str = "", withdraws: Sequence[SurvivalConfirmation] = ()) -> Suspension:
    """A caseworker's "suspected fraud" decision: a case already carrying their signature; the payment
    stops only when a different staff member approves. ``withdraws``: confirmations of this pensioner
    that approval also withdraws (a spot check's audited sessions); until then they stand. One already
    withdrawn, or another pensioner's, is a Conflict and nothing is written."""
    if who.role not in SIGNING_ROLES:
        raise AccessDenied("only caseworkers sign payment suspensions", role=str(who.role))
    for c in withdraws:
        if c.pensioner_id != pensioner.id or c.withdrawn_at is not None:
            raise Conflict(f"survival confirmation {c.id} is not a standing confirmation of this pensioner")
    pending = [{"confirmation_id": c.id, "evidence_date": c.evidence_date.isoformat()} for c in withdraws]
    for other in active_of(session, pensioner.id):
        if other.reason != SuspensionReason.FRAUD:
            continue
        if other.status in SuspensionStatus.PENDING:
            return _join_fraud(session, other, review_case_id, who, note, client_addr, pending)
        raise FraudSuspensionInForce(
            f"payment is already suspended for suspected fraud (suspension {other.id}, {other.status}): "
            "confirmations cannot be added to a suspension in force; ask for a home visit", suspension_id=other.id)
    s = Suspension(pensioner_id=pensioner.id, region_code=pensioner.region_code, reason=SuspensionReason.FRAUD,
                   status=SuspensionStatus.PROPOSED, review_case_id=review_case_id, proposed_by=who.user_id,
                   proposed_at=_now(), proposal_note=note.strip()[:2000] or None,
                   detail={WITHDRAWS: pending} if pending else {})
    session.add(s)
    session.flush()
    _audit(session, who, "suspension.propose", s, client_addr, review_case_id=review_case_id,
           withdraws_on_approval=[w["confirmation_id"] for w in pending])
    return s


JOINED = "joined_cases"  # detail key: review cases whose fraud decision joined this pending case


def _join_fraud(session: Session, s: Suspension, review_case_id: int | None, who: Principal, note: str,
                client_addr: str, pending: list[dict[str, Any]]) -> Suspension:
    """A fraud decision on another case while ``s`` (a fraud case of the same pensioner) is still pending:
    the decision joins it instead of opening a second one. Its confirmations are added to those approval
    withdraws, each marked with who added it (``added_by``: that caseworker may not give the second
    signature). An OPEN case (opened by someone who does not sign) takes this decision as its first
    signature (:func:`propose`). A case outside the caseworker's region (the pensioner moved after it was
    opened) does not exist for them, as on the suspensions page: NotFound, nothing changed."""
    _check_signer(who, s)
    if s.status == SuspensionStatus.OPEN:
        propose(session, s.id, who, note=note, client_addr=client_addr)
    before = {cid for cid, _ in withdraws_of(s)}
    added = [w | {"added_by": who.user_id, "review_case_id": review_case_id}
             for w in pending if w["confirmation_id"] not in before]
    detail = dict(s.detail or {})
    if added:
        detail[WITHDRAWS] = [*(detail.get(WITHDRAWS) or []), *added]
    joined = list(detail.get(JOINED) or [])
    if review_case_id is not None and review_case_id != s.review_case_id and review_case_id not in joined:
        detail[JOINED] = [*joined, review_case_id]
    s.detail = detail
    _audit(session, who, "suspension.join", s, client_addr, review_case_id=review_case_id,
           withdraws_on_approval=[w["confirmation_id"] for w in added], note=note.strip()[:500])
    return s


def added_by_of(s: Suspension) -> set[int]:
    """The caseworkers who added confirmations to ``s`` after it was proposed (none may approve it)."""
    return {w["added_by"] for w in (s.detail or {}).get(WITHDRAWS) or []
            if isinstance(w, dict) and isinstance(w.get("added_by"), int)}


def withdraws_of(s: Suspension) -> list[tuple[int, date]]:
    """(confirmation id, evidence date) of the confirmations approving ``s`` withdraws (or withdrew)."""
    out = []
    for w in (s.detail or {}).get(WITHDRAWS) or []:
        if isinstance(w, dict) and isinstance(w.get("confirmation_id"), int):
            out.append((w["confirmation_id"], date.fromisoformat(str(w.get("evidence_date")))))
    return out


def _withdraw_on_approval(session: Session, s: Suspension, who: Principal, client_addr: str) -> list[int]:
    """The second signature withdraws the confirmations the proposal named (those still standing), each
    audited as ``confirmation.withdraw`` with both signers."""
    done: list[int] = []
    signers = {"suspension_id": s.id, "proposed_by": s.proposed_by, "approved_by": who.user_id}
    entries = {w["confirmation_id"]: w for w in (s.detail or {}).get(WITHDRAWS) or [] if isinstance(w, dict)}
    for conf_id, _ in withdraws_of(s):
        conf = session.get(SurvivalConfirmation, conf_id)
        if conf is None or conf.withdrawn_at is not None:
            continue  # withdrawn meanwhile by other means: nothing left to do
        entry = entries.get(conf_id, {})
        added_by, case_id = entry.get("added_by"), entry.get("review_case_id", s.review_case_id)
        why = (f"{STATUS_PREFIX}{s.id} approved (suspected fraud, review case {case_id}): "
               + (f"added by staff #{added_by} to the proposal of staff #{s.proposed_by}" if added_by is not None
                  else f"proposed by staff #{s.proposed_by}") + f", approved by staff #{who.user_id}")
        withdraw_confirmation(session, conf_id, by=who.user_id, actor=who.username, role=str(who.role), reason=why,
                              case_id=case_id, client_addr=client_addr,
                              extra=signers | ({"added_by": added_by} if added_by is not None else {}))
        done.append(conf_id)
    return done


def open_fraud(session: Session, pensioner: Pensioner, review_case_id: int, who: Principal, *,
               client_addr: str = "", **detail: Any) -> Suspension:
    """A finding that calls for a fraud suspension but was made by someone who does not sign payment
    suspensions (e.g. enrollment staff confirming a duplicate face): an OPEN case that two caseworkers
    still sign. At most one fraud case under way per pensioner (the existing one is returned)."""
    for other in active_of(session, pensioner.id):
        if other.reason == SuspensionReason.FRAUD:
            return other
    s = Suspension(pensioner_id=pensioner.id, region_code=pensioner.region_code, reason=SuspensionReason.FRAUD,
                   status=SuspensionStatus.OPEN, review_case_id=review_case_id, detail=dict(detail))
    session.add(s)
    session.flush()
    _audit(session, who, "suspension.open", s, client_addr, review_case_id=review_case_id)
    return s


def approve(session: Session, suspension_id: int, who: Principal, *, today: date, note: str = "",
            client_addr: str = "") -> Suspension:
    """Second signature, by someone other than the proposer: the payment is suspended from ``today``, and
    the confirmations the proposal named (a spot check's) are withdrawn, audited with both signers."""
    s = get(session, suspension_id, for_update=True)
    _check_signer(who, s)
    if s.status != SuspensionStatus.PROPOSED:
        raise Conflict(f"suspension {s.id} is {s.status}, not proposed", status=s.status)
    if s.proposed_by == who.user_id or who.user_id in added_by_of(s):
        # one who added a confirmation to the proposal signed its withdrawal once already
        _refused(session, who, s, client_addr)
        raise TwoPersonRule("the second signature must come from another staff member than the proposer "
                            "and than anyone who added a confirmation to the proposal")
    p = session.get(Pensioner, s.pensioner_id)
    if p is None or p.status == PensionerStatus.DECEASED:
        raise Conflict(f"pensioner of suspension {s.id} is no longer active")
    s.status, s.approved_by, s.approved_at, s.effective_from = SuspensionStatus.APPROVED, who.user_id, _now(), today
    s.close_note = note.strip()[:2000] or None
    if p.status == PensionerStatus.ACTIVE:
        p.status, p.status_reason = PensionerStatus.SUSPENDED, f"{STATUS_PREFIX}{s.id} ({s.reason})"
    if s.reason == SuspensionReason.FRAUD:
        p.fraud_flag = True
    withdrawn = _withdraw_on_approval(session, s, who, client_addr) if withdraws_of(s) else []
    if withdrawn:
        s.detail = {**(s.detail or {}), WITHDRAWN: withdrawn}
    _audit(session, who, "suspension.approve", s, client_addr, effective_from=today.isoformat(),
           proposed_by=s.proposed_by, approved_by=who.user_id, withdrawn_confirmation_ids=withdrawn)
    return s


def propose_lift(session: Session, suspension_id: int, who: Principal, *, note: str,
                 client_addr: str = "") -> Suspension:
    """First signature to lift a suspension in force (e.g. the fraud suspicion proved unfounded): the
    reason is required; the payment stays suspended until a different caseworker agrees."""
    if not note.strip():
        raise LifecertError("a reason is required to lift a suspension", code=ErrorCode.BAD_REQUEST, field="note")
    s = get(session, suspension_id, for_update=True)
    _check_signer(who, s)
    if s.status != SuspensionStatus.APPROVED:
        raise Conflict(f"suspension {s.id} is {s.status}, not in force", status=s.status)
    s.status = SuspensionStatus.LIFT_PROPOSED
    s.detail = {**(s.detail or {}), "lift_proposed_by": who.user_id, "lift_note": note.strip()[:2000],
                "lift_proposed_at": _now().isoformat()}
    _audit(session, who, "suspension.propose_lift", s, client_addr)
    return s


def approve_lift(session: Session, suspension_id: int, who: Principal, *, today: date, note: str = "",
                 client_addr: str = "") -> Suspension:
    """Second signature to lift, by someone other than the proposer: payment resumes from ``today``'s
    month with the months withheld owed back; a fraud flag set by this suspension is cleared."""
    s = get(session, suspension_id, for_update=True)
    _check_signer(who, s)
    if s.status != SuspensionStatus.LIFT_PROPOSED:
        raise Conflict(f"suspension {s.id} is {s.status}, no lift proposed", status=s.status)
    if (s.detail or {}).get("lift_proposed_by") == who.user_id:
        _refused(session, who, s, client_addr)
        raise TwoPersonRule("the second signature must come from another staff member than the proposer")
    s.status, s.resumed_on, s.closed_at = SuspensionStatus.RESUMED, today, _now()
    s.months_owed = months_owed(s.effective_from or today, today)
    s.close_note = note.strip()[:2000] or s.close_note
    s.exported_at = None  # the payment system must hear of the resumption
    p = session.get(Pensioner, s.pensioner_id)
    if p is not None and p.status == PensionerStatus.SUSPENDED and (p.status_reason or "").startswith(
            f"{STATUS_PREFIX}{s.id} "):
        p.status, p.status_reason = PensionerStatus.ACTIVE, f"resumed {today} after {STATUS_PREFIX}{s.id} (lifted)"
        if s.reason == SuspensionReason.FRAUD:
            p.fraud_flag = False
    _audit(session, who, "suspension.lift", s, client_addr, resumed_on=today.isoformat(), months_owed=s.months_owed)
    return s


def _refused(session: Session, who: Principal, s: Suspension, client_addr: str) -> None:
    """Record the refused second signature in a transaction of its own (the caller's rolls back)."""
    with Session(session.get_bind(), info=dict(session.info)) as own, own.begin():  # info: the audit key
        audit.record(own, actor=who.username, role=str(who.role), action="suspension.refused_same_signer",
                     object_type="payment_suspension", object_id=s.id, client_addr=client_addr,
                     detail={"pensioner_id": s.pensioner_id})


def decline(session: Session, suspension_id: int, who: Principal, *, note: str, client_addr: str = "") -> Suspension:
    """A signer finds the case unfounded (e.g. the pensioner is in hospital and a visit is booked):
    cancelled, with the reason. Confirmations the proposal would have withdrawn keep standing."""
    if not note.strip():
        raise LifecertError("a reason is required to decline a suspension", code=ErrorCode.BAD_REQUEST, field="note")
    s = get(session, suspension_id, for_update=True)
    _check_signer(who, s)
    if s.status not in SuspensionStatus.PENDING:
        raise Conflict(f"suspension {s.id} is {s.status}; only open or proposed ones can be declined")
    s.status, s.closed_at, s.close_note = SuspensionStatus.CANCELLED, _now(), note.strip()[:2000]
    # the confirmations a fraud proposal named stand: nothing was withdrawn before the second signature
    _audit(session, who, "suspension.decline", s, client_addr,
           confirmations_kept=[cid for cid, _ in withdraws_of(s)])
    return s


def may_certify(p: Pensioner) -> bool:
    """Whether ``p`` may start a certification: active pensioners, and those whose payment this module
    suspended for being overdue (their confirmation is what resumes the payment). Not the deceased,
    nor those suspended for fraud, imprisonment or a duplicate face."""
    if p.status == PensionerStatus.ACTIVE:
        return True
    reason = p.status_reason or ""
    return (p.status == PensionerStatus.SUSPENDED and reason.startswith(STATUS_PREFIX)
            and reason.endswith(f"({SuspensionReason.OVERDUE})"))


def _basis(s: Suspension) -> date | None:
    v = (s.detail or {}).get("last_confirmation")
    return date.fromisoformat(v) if v else None


def on_confirmation(session: Session, pensioner_id: int, evidence_date: date, confirmation_id: int | None,
                    *, today: date | None = None) -> list[Suspension]:
    """A new confirmation arrived: cancel the pensioner's pending overdue case, or resume the approved
    one (payment from ``today``'s month on; the months withheld before it are owed). Only evidence
    newer than what the case was opened on counts. Fraud cases are left to the caseworkers."""
    t = today or date.today()
    changed: list[Suspension] = []
    for s in active_of(session, pensioner_id):
        if s.reason != SuspensionReason.OVERDUE:
            continue
        basis = _basis(s)
        if basis is not None and evidence_date <= basis:
            continue
        s.closed_at = _now()
        if s.status in SuspensionStatus.PENDING:
            s.status = SuspensionStatus.CANCELLED
            s.close_note = "confirmed before approval"
            _audit(session, None, "suspension.cancel", s, confirmation_id=confirmation_id)
        else:
            s.status, s.resumed_on, s.resumed_by_confirmation_id = SuspensionStatus.RESUMED, t, confirmation_id
            s.months_owed = months_owed(s.effective_from or t, t)
            s.exported_at = None  # the payment system must hear of the resumption too
            p = session.get(Pensioner, pensioner_id)
            if p is not None and p.status == PensionerStatus.SUSPENDED and (p.status_reason or "").startswith(
                    f"{STATUS_PREFIX}{s.id} "):
                p.status, p.status_reason = PensionerStatus.ACTIVE, f"resumed {t} after {STATUS_PREFIX}{s.id}"
            _audit(session, None, "suspension.resume", s, confirmation_id=confirmation_id,
                   resumed_on=t.isoformat(), months_owed=s.months_owed)
        changed.append(s)
    return changed


@dataclass(frozen=True)
class SweepResult:
    opened: int
    cancelled: int
    resumed: int


def sweep(session: Session, today: date, *, region_prefix: str = "") -> SweepResult:
    """The daily job: resume/cancel cases whose pensioner has newer evidence (also confirmations
    written in bulk by data imports), then open cases for the newly overdue."""
    last = (select(SurvivalConfirmation.pensioner_id.label("pid"),
                   func.max(SurvivalConfirmation.evidence_date).label("d"),
                   func.max(SurvivalConfirmation.id).label("cid"))
            .where(SurvivalConfirmation.stands())
            .group_by(SurvivalConfirmation.pensioner_id).subquery())
    rows = session.execute(
        select(Suspension.pensioner_id, last.c.d, last.c.cid).join(last, last.c.pid == Suspension.pensioner_id)
        .where(Suspension.status.in_(SuspensionStatus.ACTIVE), Suspension.reason == SuspensionReason.OVERDUE)
    ).all()
    cancelled = resumed = 0
    for pid, d, cid in rows:
        for s in on_confirmation(session, pid, d, cid, today=today):
            if s.status == SuspensionStatus.RESUMED:
                resumed += 1
            else:
                cancelled += 1
    return SweepResult(open_overdue(session, today, region_prefix=region_prefix), cancelled, resumed)


def list_cases(session: Session, who: Principal, *, statuses: Sequence[str] = SuspensionStatus.ACTIVE,
               limit: int = 200, client_addr: str = "") -> list[Suspension]:
    """Cases in the staff member's region, newest first. The listing is audited (``suspension.list``, the
    ids shown): the page shows names, masked ID numbers and the fraud suspicion."""
    from lifecert.services.review.access import region_scope

    q = select(Suspension).where(Suspension.status.in_(statuses))
    scope = region_scope(who.region_code)
    if scope is not None:
        q = q.where(Suspension.region_code.startswith(scope, autoescape=True))
    rows = list(session.scalars(q.order_by(Suspension.id.desc()).limit(limit)))
    audit.record(session, actor=who.username, role=str(who.role), action="suspension.list",
                 object_type="payment_suspension", object_id="*", client_addr=client_addr,
                 detail={"statuses": sorted(statuses), "shown": [s.id for s in rows]})
    return rows


def pensioners_of(session: Session, cases: Sequence[Suspension]) -> dict[int, Pensioner]:
    """The pensioners the listed cases are about, by id (one query; for the console list)."""
    ids = {c.pensioner_id for c in cases}
    if not ids:
        return {}
    return {p.id: p for p in session.scalars(select(Pensioner).where(Pensioner.id.in_(ids)))}


def signers_of(session: Session, cases: Sequence[Suspension]) -> dict[int, str]:
    """The usernames of the staff who signed the listed cases (proposed, added a confirmation, approved, proposed
    the lift), by id."""
    ids = {i for c in cases for i in (c.proposed_by, c.approved_by, (c.detail or {}).get("lift_proposed_by"),
                                      *added_by_of(c)) if isinstance(i, int)}
    if not ids:
        return {}
    return {u.id: u.username for u in session.scalars(select(StaffUser).where(StaffUser.id.in_(ids)))}


def withdrawn_by(cases: Sequence[Suspension]) -> dict[int, Suspension]:
    """confirmation id -> the approved case whose second signature withdrew it (detail ``withdrawn``)."""
    out: dict[int, Suspension] = {}
    for c in cases:
        for cid in (c.detail or {}).get(WITHDRAWN) or []:
            if isinstance(cid, int):
                out.setdefault(cid, c)
    return out


def counts_by_region(session: Session, *, region_prefix: str = "") -> dict[str, dict[str, int]]:
    """{region_code: {status: count}} (for dashboards)."""
    q = select(Suspension.region_code, Suspension.status, func.count()).group_by(
        Suspension.region_code, Suspension.status)
    if region_prefix:
        q = q.where(Suspension.region_code.startswith(region_prefix))
    out: dict[str, dict[str, int]] = {}
    for region, status, n in session.execute(q):
        out.setdefault(region, {})[status] = n
    return out


EXPORT_HEADERS = ("suspension_id", "id_number", "name", "region_code", "reason", "status", "effective_from",
                  "resumed_on", "months_owed")


def _export_rows(session: Session, include_exported: bool) -> Iterator[tuple[Any, ...]]:
    q = (select(Suspension.id, Pensioner.id_number, Pensioner.name, Suspension.region_code, Suspension.reason,
                Suspension.status, Suspension.effective_from, Suspension.resumed_on, Suspension.months_owed)
         .join(Pensioner, Pensioner.id == Suspension.pensioner_id)
         .where(Suspension.status.in_((*SuspensionStatus.SUSPENDED, SuspensionStatus.RESUMED)))
         .order_by(Suspension.id))
    if not include_exported:
        q = q.where(Suspension.exported_at.is_(None))
    yield from (tuple(r) for r in session.execute(q))


def export_for_payment(session: Session, out: Path, *, actor: str, role: str, include_exported: bool = False,
                       client_addr: str = "") -> int:
    """The list for the payment system: suspensions in force (stop paying from ``effective_from``)
    and resumptions (pay again, with ``months_owed`` back payments), not yet handed over unless
    ``include_exported``. CSV (UTF-8 BOM) or XLSX by suffix, mode 0600, cells a spreadsheet would
    run are quoted. Marks them exported; audited with the count only."""
    from lifecert.services.datamatch.reports import write_table

    rows = list(_export_rows(session, include_exported))
    n = write_table(out, EXPORT_HEADERS, rows)
    now = _now()
    for s in session.scalars(select(Suspension).where(Suspension.id.in_([r[0] for r in rows]))):
        s.exported_at = now
    audit.record(session, actor=actor, role=role, action="suspension.export", object_type="payment_suspension",
                 object_id="-", client_addr=client_addr, detail={"rows": n, "file": out.name[:128]})
    return n
