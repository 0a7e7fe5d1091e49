"""Decisions on a case: assign, approve (survival confirmed), reject, home visit, suspected fraud,
unfounded tip-off, a spot check's "the living pensioner", notes. Each checks that the case type allows
the decision and is audited."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from lifecert.domain.cases import (
    Decision,
    SpotCheck,
    decisions_for,
    load_payload,
)
from lifecert.domain.errors import (
    Conflict,
    ErrorCode,
    LifecertError,
)
from lifecert.services.context import AppContext
from lifecert.services.review.access import (
    MAX_CASE_NOTE,
    CaseStatus,
    audit_decision,
    check_note,
    close,
    get_case,
    open_for_decision,
    pensioner_of,
)
from lifecert.services.staff import Principal
from lifecert.storage.models import (
    ConfirmationMethod,
    ReviewCase,
    SurvivalConfirmation,
)
from lifecert.storage.models_agency import Suspension
from lifecert.storage.models_staff import CaseNote, HomeVisitTask


def assign_to_me(session: Session, case_id: int, who: Principal, *, client_addr: str = "") -> ReviewCase:
    case = get_case(session, case_id, who, client_addr=client_addr)
    if case.status == CaseStatus.CLOSED:
        raise Conflict(f"case {case_id} is already closed")
    previous = case.assignee_id
    case.assignee_id = who.user_id
    case.status = CaseStatus.ASSIGNED
    audit_decision(session, case, who, "case.assign", client_addr, previous_assignee_id=previous)
    return case


def approve(
    ctx: AppContext, session: Session, case_id: int, who: Principal, *, note: str = "", client_addr: str = "",
    today: date | None = None,
) -> SurvivalConfirmation:
    """The reviewer is satisfied the pensioner is alive: record a survival confirmation (method
    ``caseworker_review``, created_by the reviewer) and close the case. Only for case types that allow
    it (never a tip-off); where it is not the primary decision the note must give the evidence."""
    from lifecert.services.confirmations import record_confirmation

    case = open_for_decision(session, case_id, who, Decision.APPROVED, client_addr=client_addr, note=note)
    if decisions_for(load_payload(case.payload), case.reason)[0] != Decision.APPROVED and not note.strip():
        # The trigger speaks against survival (a death record, a face of someone else): say what
        # evidence outweighs it.
        raise LifecertError("confirming survival on this case needs the evidence in the note",
                            code=ErrorCode.BAD_REQUEST, field="note")
    p = pensioner_of(session, case)
    conf = record_confirmation(
        session, p, ConfirmationMethod.CASEWORKER_REVIEW, today or date.today(), f"review_case:{case.id}",
        {"case_id": case.id, "kind": case.kind, "reason": case.reason, "reviewer": who.username,
         "verification_session_id": case.verification_session_id, "note": note.strip()},
        created_by=who.user_id, cycle_months=ctx.settings.confirmation_cycle_months,
    )
    close(session, case, who, Decision.APPROVED, note, action="case.approve", client_addr=client_addr,
          confirmation_id=conf.id)
    return conf


def reject(session: Session, case_id: int, who: Principal, reason: str, *, client_addr: str = "") -> ReviewCase:
    """Close the case without confirming survival; the reason is required and kept."""
    return _close_with_reason(session, case_id, who, Decision.REJECTED, reason, "case.reject", client_addr)


def request_home_visit(
    session: Session, case_id: int, who: Principal, *, note: str = "", client_addr: str = ""
) -> HomeVisitTask:
    """Create a task for community staff at the pensioner's address/region and close the case."""
    case = open_for_decision(session, case_id, who, Decision.HOME_VISIT, client_addr=client_addr, note=note)
    p = pensioner_of(session, case)
    task = HomeVisitTask(case_id=case.id, pensioner_id=p.id, region_code=p.region_code, address=p.address or "",
                         phone=p.phone or "", note=note.strip(), created_by=who.user_id)
    session.add(task)
    session.flush()
    close(session, case, who, Decision.HOME_VISIT, note, action="case.home_visit", client_addr=client_addr,
          task_id=task.id)
    return task


def mark_suspected_fraud(
    session: Session, case_id: int, who: Principal, *, note: str = "", client_addr: str = ""
) -> Suspension:
    """Close the case as suspected fraud and PROPOSE the payment suspension with this caseworker's
    signature (lifecert.services.suspensions): the payment stops, and the pensioner is flagged, only
    when a different caseworker approves it on the suspensions page. On a spot check the proposal also
    names the confirmations under check: the same approval withdraws them (then the pensioner is due
    or overdue again); until then, and if the proposal is declined, they stand."""
    from lifecert.services.suspensions import propose_fraud

    case = open_for_decision(session, case_id, who, Decision.FRAUD, client_addr=client_addr, note=note)
    p = pensioner_of(session, case)
    payload = load_payload(case.payload)
    under_check: list[SurvivalConfirmation] = []
    if isinstance(payload, SpotCheck):
        confs = {c.id: c for c in session.scalars(select(SurvivalConfirmation).where(
            SurvivalConfirmation.id.in_(payload.confirmation_ids)))}
        # one withdrawn meanwhile (by other means) has nothing left to withdraw
        under_check = [confs[i] for i in payload.confirmation_ids if i in confs and confs[i].withdrawn_at is None]
    susp = propose_fraud(session, p, case.id, who, note=note, client_addr=client_addr, withdraws=under_check)
    close(session, case, who, Decision.FRAUD, note, action="case.fraud", client_addr=client_addr,
          note=note.strip()[:500], suspension_id=susp.id,
          withdraws_on_approval=[c.id for c in under_check])
    return susp


def confirm_genuine(session: Session, case_id: int, who: Principal, *, note: str = "",
                    client_addr: str = "") -> ReviewCase:
    """A spot check: the caseworker saw the living pensioner in the frames of every session under check.
    Closes the case and records nothing new (the sessions' confirmations are already on record)."""
    case = open_for_decision(session, case_id, who, Decision.GENUINE, client_addr=client_addr, note=note)
    payload = load_payload(case.payload)
    conf_ids = list(payload.confirmation_ids) if isinstance(payload, SpotCheck) else []
    close(session, case, who, Decision.GENUINE, note, action="case.genuine", client_addr=client_addr,
          confirmation_id=conf_ids[0] if conf_ids else None, confirmation_ids=conf_ids,
          verification_session_id=case.verification_session_id)
    return case


def close_unfounded(session: Session, case_id: int, who: Principal, reason: str, *,
                    client_addr: str = "") -> ReviewCase:
    """A tip-off checked and found baseless: close it with the reason. Records nothing about the
    pensioner (in particular no survival confirmation)."""
    return _close_with_reason(session, case_id, who, Decision.UNFOUNDED, reason, "case.unfounded", client_addr)


def _close_with_reason(session: Session, case_id: int, who: Principal, decision: Decision, reason: str,
                       action: str, client_addr: str) -> ReviewCase:
    """Close a case that records nothing about the pensioner; the reason is required and kept."""
    if not reason.strip():
        raise LifecertError(f"a reason is required to close a case as {decision}", code=ErrorCode.BAD_REQUEST,
                            field="note")
    case = open_for_decision(session, case_id, who, decision, client_addr=client_addr, note=reason)
    close(session, case, who, decision, reason, action=action, client_addr=client_addr, note=reason.strip()[:500])
    return case


def add_note(session: Session, case_id: int, who: Principal, text: str, *, client_addr: str = "") -> CaseNote:
    if not text.strip():
        raise LifecertError("the note is empty", code=ErrorCode.BAD_REQUEST)
    check_note(text, limit=MAX_CASE_NOTE, field="text")
    case = get_case(session, case_id, who, client_addr=client_addr)
    n = CaseNote(case_id=case.id, author_id=who.user_id, text=text.strip())
    session.add(n)
    session.flush()
    audit_decision(session, case, who, "case.note", client_addr, note_id=n.id)
    return n


