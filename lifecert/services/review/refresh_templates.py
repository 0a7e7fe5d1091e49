"""Template refresh from the case page: "use as template" on a verification review case (the
session's best frame becomes a refresh template, :func:`lifecert.services.refresh.consider_session`
with the caseworker as approver) and "revoke" on a refresh template of the case's pensioner.

Both go through the case's access checks (role, region, assignee) and are audited twice: the
template event (``template.refresh_added`` / ``_skipped`` / ``_revoked``) and the case event
(``case.use_as_template`` / ``case.revoke_template``) in the same transaction as the change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from lifecert.domain.cases import Decision
from lifecert.domain.errors import Conflict, ErrorCode, LifecertError, NotFound
from lifecert.services import refresh
from lifecert.services.context import AppContext
from lifecert.services.review.access import CaseStatus, audit_decision, get_case, pensioner_of
from lifecert.services.staff import Principal
from lifecert.storage.models import AuditEvent, FaceTemplate, ReviewCase, ReviewKind, TemplateKind
from lifecert.storage.models_verification import VerificationSession


@dataclass(frozen=True)
class RefreshTemplateView:
    """One refresh template of the pensioner, as the case page lists it."""

    template_id: int
    model_key: str
    created_at: datetime
    expires_at: datetime | None
    session_id: str | None
    match: float | None
    approved_by: str | None
    active: bool
    revoked: bool


def refresh_templates_of(session: Session, pensioner_id: int) -> list[RefreshTemplateView]:
    """The pensioner's refresh templates (every model, newest first), active or not."""
    return [
        RefreshTemplateView(t.id, t.model_key, t.created_at, t.expires_at, t.source_session_id,
                            (t.provenance or {}).get("match"), (t.provenance or {}).get("approved_by"),
                            t.active, t.revoked_at is not None)
        for t in session.scalars(select(FaceTemplate).where(
            FaceTemplate.pensioner_id == pensioner_id, FaceTemplate.kind == TemplateKind.REFRESH,
        ).order_by(FaceTemplate.id.desc()).limit(20))
    ]


def _workable(session: Session, case_id: int, who: Principal, client_addr: str) -> ReviewCase:
    case = get_case(session, case_id, who, client_addr=client_addr)
    if case.assignee_id is not None and case.assignee_id != who.user_id and case.status != CaseStatus.CLOSED:
        raise Conflict(f"case {case_id} is assigned to someone else; assign it to yourself first")
    return case


def use_as_template(
    ctx: AppContext, session: Session, case_id: int, who: Principal, *, client_addr: str = ""
) -> tuple[FaceTemplate | None, str]:
    """The case's verification session becomes a refresh template (a caseworker vouches for the
    person in the frames): (template, "") or (None, why not) — a spoof, a failed challenge, frames
    that fail the quality gates (the refresh rules' codes). The refusal is an answer, not an error:
    it is audited and committed like a success. Only on a verification case that is open or was
    closed as survival confirmed (else CONFLICT)."""
    case = _workable(session, case_id, who, client_addr)
    if case.kind != ReviewKind.VERIFICATION or not case.verification_session_id:
        raise Conflict(f"case {case_id} has no verification session to take a template from")
    if case.status == CaseStatus.CLOSED and case.decision != Decision.APPROVED:
        raise Conflict(f"case {case_id} was closed as {case.decision}: its frames cannot become a template")
    vs = session.get(VerificationSession, case.verification_session_id)
    if vs is None or vs.decision is None:
        raise NotFound("the case's verification session is not decided")
    p = pensioner_of(session, case)
    tpl, reason = refresh.consider_with_reason(ctx, session, vs, p, approved_by=who.username)
    if tpl is None:
        audit_decision(session, case, who, "case.use_as_template", client_addr, session_id=vs.id, refused=reason)
        return None, reason
    audit_decision(session, case, who, "case.use_as_template", client_addr, session_id=vs.id, template_id=tpl.id)
    return tpl, ""


def last_refusal(session: Session, case_id: int) -> str | None:
    """Why the case's latest "use as template" was refused (None: never tried, or it succeeded)."""
    last = session.scalars(select(AuditEvent.detail).where(
        AuditEvent.action == "case.use_as_template", AuditEvent.object_type == "review_case",
        AuditEvent.object_id == str(case_id)).order_by(AuditEvent.id.desc())).first()
    refused = last.get("refused") if isinstance(last, dict) else None
    return str(refused) if refused else None


def revoke_template(
    session: Session, case_id: int, template_id: int, who: Principal, reason: str, *, client_addr: str = ""
) -> list[int]:
    """Revoke a refresh template of the case's pensioner (and the same frame's template of the
    other model); the reason is required and kept. Returns the revoked template ids."""
    if not reason.strip():
        raise LifecertError("a reason is required to revoke a template", code=ErrorCode.BAD_REQUEST, field="reason")
    case = _workable(session, case_id, who, client_addr)
    t = session.get(FaceTemplate, template_id)
    if t is None or t.kind != TemplateKind.REFRESH or t.pensioner_id != case.pensioner_id:
        raise NotFound(f"no refresh template {template_id} of this case's pensioner")
    if t.revoked_at is not None:
        raise Conflict(f"template {template_id} is already revoked")
    ids = refresh.revoke_in(session, t, actor=who.username, role=who.role, reason=reason.strip(),
                            client_addr=client_addr)
    audit_decision(session, case, who, "case.revoke_template", client_addr, template_ids=ids,
                   note=reason.strip()[:500])
    return ids
