"""The caseworker queues: filters, one page of cases with counts, neighbours for j/k, assignees."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from lifecert.domain.idnumber import mask_id_number
from lifecert.services import audit
from lifecert.services.review.access import CaseStatus, kinds_for, scope_clause
from lifecert.services.staff import Principal, Role
from lifecert.storage.models import (
    Pensioner,
    ReviewCase,
    ReviewKind,
    StaffUser,
)
from lifecert.storage.queries import within_days

# --- queue ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueFilter:
    """``status``: "active" (open + assigned), "open", "assigned", "closed" or "all".
    ``assignee``: a username, "me" (needs ``me``), "none" (unassigned) or None (anyone).
    ``region`` matches a region-code prefix (e.g. "2202" for a prefecture)."""

    kind: str | None = None
    kinds: tuple[str, ...] | None = None
    reason: str | None = None
    region: str | None = None
    assignee: str | None = None
    status: str = "active"
    date_from: date | None = None
    date_to: date | None = None
    me: int | None = None
    scope: Any = None  # the staff member's region clause (set by list_queue, never from a request)


@dataclass(frozen=True)
class QueueRow:
    id: int
    kind: str
    reason: str
    status: str
    id_number_masked: str
    name: str
    region_code: str
    assignee: str | None
    created_at: datetime
    decision: str | None


@dataclass(frozen=True)
class QueuePage:
    """One page of the review queue; also the JSON body of `GET /api/staff/cases`."""

    rows: list[QueueRow]
    total: int
    by_reason: dict[str, int]
    by_kind: dict[str, int]
    by_status: dict[str, int]


def _queue_query(q: Any, f: QueueFilter, session: Session) -> Any:
    if f.scope is not None:
        q = q.where(f.scope)
    if f.kind:
        q = q.where(ReviewCase.kind == f.kind)
    if f.kinds is not None:
        q = q.where(ReviewCase.kind.in_(f.kinds))
    if f.reason:
        q = q.where(ReviewCase.reason == f.reason)
    if f.region:
        q = q.where(ReviewCase.region_code.startswith(f.region, autoescape=True))
    if f.status == "active":
        q = q.where(ReviewCase.status.in_((CaseStatus.OPEN, CaseStatus.ASSIGNED)))
    elif f.status in (CaseStatus.OPEN, CaseStatus.ASSIGNED, CaseStatus.CLOSED):
        q = q.where(ReviewCase.status == f.status)
    if f.assignee == "none":
        q = q.where(ReviewCase.assignee_id.is_(None))
    elif f.assignee == "me":
        q = q.where(ReviewCase.assignee_id == (f.me or -1))
    elif f.assignee:
        uid = session.scalar(select(StaffUser.id).where(StaffUser.username == f.assignee))
        q = q.where(ReviewCase.assignee_id == (uid or -1))
    return q.where(*within_days(ReviewCase.created_at, f.date_from, f.date_to))



def list_queue(
    session: Session, f: QueueFilter, who: Principal, *, client_addr: str = "", limit: int = 100, offset: int = 0
) -> QueuePage:
    """One page of cases (oldest first: first come, first served; spot checks of confirmed sessions after
    every other kind, so they never push a failed verification down the page) with counts by reason,
    kind and status under the same filters. ID numbers are masked. The listing is audited (it shows names)."""
    f = QueueFilter(**{**f.__dict__, "kinds": kinds_for(who.role), "me": who.user_id,
                       "scope": scope_clause(who, ReviewCase.region_code)})
    base = _queue_query(select(ReviewCase, Pensioner.name, StaffUser.username), f, session)
    base = base.outerjoin(Pensioner, Pensioner.id == ReviewCase.pensioner_id).outerjoin(
        StaffUser, StaffUser.id == ReviewCase.assignee_id
    )
    rows = []
    later = case((ReviewCase.kind == ReviewKind.SPOT_CHECK, 1), else_=0)  # not urgent: the confirmation stands
    for case_, name, assignee in session.execute(base.order_by(later, ReviewCase.created_at, ReviewCase.id)
                                                .limit(limit).offset(offset)):
        rows.append(QueueRow(
            id=case_.id, kind=case_.kind, reason=case_.reason, status=case_.status,
            id_number_masked=mask_id_number(case_.id_number) if case_.id_number else "",
            name=name or "", region_code=case_.region_code or "", assignee=assignee,
            created_at=case_.created_at, decision=case_.decision,
        ))

    def counts(col: Any, filt: QueueFilter) -> dict[str, int]:
        q = _queue_query(select(col, func.count(ReviewCase.id)), filt, session).group_by(col).order_by(col)
        return {str(k): int(n) for k, n in session.execute(q)}

    total = int(session.scalar(_queue_query(select(func.count(ReviewCase.id)), f, session)) or 0)
    by_reason = counts(ReviewCase.reason, QueueFilter(**{**f.__dict__, "reason": None}))
    by_kind = counts(ReviewCase.kind, QueueFilter(**{**f.__dict__, "kind": None}))
    by_status = counts(ReviewCase.status, QueueFilter(**{**f.__dict__, "status": "all"}))
    audit.record(session, actor=who.username, role=who.role, action="queue.view", object_type="review_case",
                 object_id="*", client_addr=client_addr,
                 detail={"filter": {k: str(v) for k, v in f.__dict__.items()
                                    if k not in ("kinds", "me", "scope") and v},
                         "shown": [r.id for r in rows]})
    return QueuePage(rows, total, by_reason, by_kind, by_status)



def neighbours(session: Session, who: Principal, case_id: int) -> tuple[int | None, int | None]:
    """The previous and next open case (by id) the staff member may work, for j/k on the case page."""
    base = select(ReviewCase.id).where(ReviewCase.status != CaseStatus.CLOSED,
                                       ReviewCase.kind.in_(kinds_for(who.role)))
    clause = scope_clause(who, ReviewCase.region_code)
    if clause is not None:
        base = base.where(clause)
    prev = session.scalar(base.where(ReviewCase.id < case_id).order_by(ReviewCase.id.desc()).limit(1))
    nxt = session.scalar(base.where(ReviewCase.id > case_id).order_by(ReviewCase.id).limit(1))
    return prev, nxt


def assignable_staff(session: Session) -> list[str]:
    """Usernames the queue's assignee filter offers (caseworkers and enrollment staff)."""
    return list(session.scalars(select(StaffUser.username).where(
        StaffUser.role.in_((Role.CASEWORKER, Role.ENROLLMENT_STAFF))).order_by(StaffUser.username)))
