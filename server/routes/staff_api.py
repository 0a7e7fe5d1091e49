"""Staff JSON API (bearer tokens): who am I, the case queue, one case, decisions, audit chain check.

Same services and role declarations as the console; ID numbers are masked except in the case detail
(whose read is audited like the case page).
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from lifecert.services import audit, review
from server.deps import ClientAddr, Ctx, DbId, DbSession, Limit, Offset
from server.security import Auditor, CaseStaff, Caseworker, CurrentStaff

router = APIRouter(prefix="/api/staff", tags=["staff"])


class Me(BaseModel):
    username: str
    role: str
    display_name: str
    region_code: str | None


class DecisionIn(BaseModel):
    decision: Literal["approve", "reject", "home_visit", "fraud", "unfounded", "genuine"]
    note: str = Field(default="", max_length=review.MAX_DECISION_NOTE)


class DecisionOut(BaseModel):
    case_id: int
    status: str
    decision: str | None
    confirmation_id: int | None = None
    home_visit_task_id: int | None = None


class ChainOut(BaseModel):
    ok: bool
    rows: int
    first_bad_id: int | None
    problem: str


@router.get("/me", response_model=Me)
def me(who: CurrentStaff) -> Me:
    return Me(username=who.username, role=who.role, display_name=who.display_name, region_code=who.region_code)


@router.get("/cases", response_model=review.QueuePage)
def cases(
    session: DbSession, who: CaseStaff, client: ClientAddr, kind: str | None = None, reason: str | None = None,
    region: str | None = None, assignee: str | None = None, status: str = "active",
    date_from: date | None = None, date_to: date | None = None, limit: Limit = 100, offset: Offset = 0,
) -> review.QueuePage:
    f = review.QueueFilter(kind=kind, reason=reason, region=region, assignee=assignee, status=status,
                           date_from=date_from, date_to=date_to)
    return review.list_queue(session, f, who, client_addr=client, limit=min(max(limit, 1), 500), offset=offset)


@router.get("/cases/{case_id}")
def case_detail(ctx: Ctx, session: DbSession, who: CaseStaff, client: ClientAddr, case_id: DbId) -> dict[str, Any]:
    v = review.case_view(ctx, session, case_id, who, client_addr=client)
    c = v.case
    return {
        "id": c.id, "kind": c.kind, "reason": c.reason, "status": c.status, "decision": c.decision,
        "pensioner_id": c.pensioner_id, "id_number": v.id_number, "name": v.pensioner.name if v.pensioner else None,
        "pensioner_status": v.pensioner.status if v.pensioner else None,
        "score": v.score, "threshold": v.threshold, "enrolled_photos": v.enrolled_photos,
        "best_frames": v.best_frames, "liveness": [ch.__dict__ for ch in v.liveness],
        "payload": v.payload_json, "decisions": [str(d) for d in v.decisions],
        "hits": [{"pensioner_id": h.pensioner_id, "score": h.score, "id_number_masked": h.id_number_masked}
                 for h in v.hits],
    }


@router.post("/cases/{case_id}/decision", response_model=DecisionOut)
def decide(ctx: Ctx, session: DbSession, who: Caseworker, client: ClientAddr, case_id: DbId,
           body: DecisionIn) -> DecisionOut:
    out = DecisionOut(case_id=case_id, status="", decision=None)
    if body.decision == "approve":
        out.confirmation_id = review.approve(ctx, session, case_id, who, note=body.note, client_addr=client).id
    elif body.decision == "reject":
        review.reject(session, case_id, who, body.note, client_addr=client)
    elif body.decision == "home_visit":
        out.home_visit_task_id = review.request_home_visit(session, case_id, who, note=body.note,
                                                           client_addr=client).id
    elif body.decision == "unfounded":
        review.close_unfounded(session, case_id, who, body.note, client_addr=client)
    elif body.decision == "genuine":  # a spot check: the confirmation stands
        review.confirm_genuine(session, case_id, who, note=body.note, client_addr=client)
    else:
        review.mark_suspected_fraud(session, case_id, who, note=body.note, client_addr=client)
    case = review.get_case(session, case_id, who, client_addr=client)
    out.status, out.decision = case.status, case.decision
    return out


@router.get("/audit/verify", response_model=ChainOut)
def audit_verify(session: DbSession, who: Auditor, client: ClientAddr) -> ChainOut:
    rep = audit.verify_chain(session)
    audit.record(session, actor=who.username, role=who.role, action="audit.verify", object_type="audit_event",
                 object_id="*", client_addr=client, detail={"ok": rep.ok, "rows": rep.rows})
    return ChainOut(ok=rep.ok, rows=rep.rows, first_bad_id=rep.first_bad_id, problem=rep.problem)
