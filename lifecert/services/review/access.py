"""Who may see and work which case: the role per queue, the staff member's region (PIPL minimum
necessary), and the checks every read and decision goes through.

A staff member with a ``region_code`` sees only cases whose region lies inside it; the code is a
GB/T 2260 administrative code whose trailing ``00`` pairs widen it (``220000`` a province, ``220200``
a prefecture, ``220202`` a district). Without a region code a staff member is not limited (central
staff). Cases without a region (a tip-off naming no known pensioner) are seen only by unlimited
staff. A case outside the region answers exactly like a case that does not exist (404), and the
attempt is audited in its own transaction (the request's own transaction is rolled back with the error).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from lifecert.domain.cases import (
    Decision,
    decisions_for,
    load_payload,
)
from lifecert.domain.errors import (
    AccessDenied,
    Conflict,
    ErrorCode,
    LifecertError,
    NotFound,
)
from lifecert.services import audit
from lifecert.services.staff import Principal, Role
from lifecert.storage.models import (
    Pensioner,
    ReviewCase,
    ReviewKind,
    utcnow,
)


class CaseStatus:
    OPEN = "open"
    ASSIGNED = "assigned"
    CLOSED = "closed"


# Which roles may work which queue. Enrollment staff fix enrollment rejects; caseworkers work everything.
KIND_ROLES: dict[str, frozenset[Role]] = {
    ReviewKind.ENROLLMENT: frozenset({Role.CASEWORKER, Role.ENROLLMENT_STAFF}),
}
DEFAULT_KIND_ROLES = frozenset({Role.CASEWORKER})


def region_scope(region_code: str | None) -> str | None:
    """The region-code prefix a staff member may see (None: everywhere). ``220200`` → ``2202``."""
    code = (region_code or "").strip()
    if not code:
        return None
    while len(code) > 2 and code.endswith("00"):
        code = code[:-2]
    return code


def in_scope(who: Principal, region_code: str | None) -> bool:
    scope = region_scope(who.region_code)
    return scope is None or (region_code or "").startswith(scope)


def scope_clause(who: Principal, column: Any) -> Any:
    """A WHERE clause limiting ``column`` (a region-code column) to the staff member's region, or None."""
    scope = region_scope(who.region_code)
    return None if scope is None else column.startswith(scope, autoescape=True)


def _audit_denied(session: Session, who: Principal, case_id: int, client_addr: str) -> None:
    """Record a refused look at another region's case in a transaction of its own (the caller's
    transaction is rolled back when the NOT_FOUND propagates)."""
    with Session(session.get_bind(), info=dict(session.info)) as s, s.begin():  # info: the audit key
        audit.record(s, actor=who.username, role=who.role, action="case.denied_region", object_type="review_case",
                     object_id=case_id, client_addr=client_addr, detail={"staff_region": who.region_code or ""})


# The longest decision note (the reason kept on the case, a fraud proposal's note, a home visit's note) and
# the longest case note. Longer is a BAD_REQUEST before anything changes, never cut silently.
MAX_DECISION_NOTE = 2000
MAX_CASE_NOTE = 4000


def check_note(text: str, *, limit: int = MAX_DECISION_NOTE, field: str = "note") -> None:
    """A note the caseworker typed, at most ``limit`` characters once stripped (else BAD_REQUEST)."""
    if len(text.strip()) > limit:
        raise LifecertError(f"the {field} is longer than {limit} characters", code=ErrorCode.BAD_REQUEST,
                            field=field, limit=limit)


def kinds_for(role: Role) -> tuple[str, ...]:
    all_kinds = (ReviewKind.VERIFICATION, ReviewKind.ENROLLMENT, ReviewKind.DATA_CONFLICT,
                 ReviewKind.NAME_MISMATCH, ReviewKind.TIP_OFF, ReviewKind.SPOT_CHECK)
    return tuple(k for k in all_kinds if role in KIND_ROLES.get(k, DEFAULT_KIND_ROLES))



def get_case(session: Session, case_id: int, who: Principal, *, client_addr: str = "") -> ReviewCase:
    """The case, if the staff member's role works its queue and it lies in their region. A case
    of another region is NOT_FOUND, like one that does not exist (and the attempt is audited)."""
    case = session.get(ReviewCase, case_id)
    if case is None:
        raise NotFound(f"no review case {case_id}")
    if not in_scope(who, case.region_code):
        _audit_denied(session, who, case_id, client_addr)
        raise NotFound(f"no review case {case_id}")
    if who.role not in KIND_ROLES.get(case.kind, DEFAULT_KIND_ROLES):
        raise AccessDenied(f"role {who.role} may not work {case.kind} cases")
    return case


def open_for_decision(session: Session, case_id: int, who: Principal, decision: Decision, *,
                      client_addr: str = "", note: str = "") -> ReviewCase:
    """The case, if it is open, not someone else's, and ``decision`` is one its type allows; ``note`` (the
    decision's note or reason) at most MAX_DECISION_NOTE characters, checked before anything is read."""
    check_note(note)
    case = get_case(session, case_id, who, client_addr=client_addr)
    if case.status == CaseStatus.CLOSED:
        raise Conflict(f"case {case_id} is already closed ({case.decision})")
    if case.assignee_id is not None and case.assignee_id != who.user_id:
        raise Conflict(f"case {case_id} is assigned to someone else; assign it to yourself first")
    if decision not in decisions_for(load_payload(case.payload), case.reason):
        raise Conflict(f"a {case.kind} case ({case.reason}) cannot be closed as {decision}")
    return case


def close(session: Session, case: ReviewCase, who: Principal, decision: str, decision_note: str | None, *,
          action: str, client_addr: str, **detail: Any) -> None:
    """Close ``case`` with ``decision`` and audit it as ``action`` in the same step, so no decision
    goes unaudited (``detail`` joins the audit row)."""
    case.status = CaseStatus.CLOSED
    case.assignee_id = who.user_id
    case.decision = decision
    case.decision_note = (decision_note or "").strip() or None
    case.decided_by = who.user_id
    case.decided_at = utcnow()
    audit_decision(session, case, who, action, client_addr, **detail)


def audit_decision(session: Session, case: ReviewCase, who: Principal, action: str, client_addr: str,
                    **detail: Any) -> None:
    audit.record(session, actor=who.username, role=who.role, action=action, object_type="review_case",
                 object_id=case.id, client_addr=client_addr,
                 detail={"pensioner_id": case.pensioner_id, "kind": case.kind, "reason": case.reason, **detail})


def pensioner_of(session: Session, case: ReviewCase) -> Pensioner:
    p = session.get(Pensioner, case.pensioner_id) if case.pensioner_id else None
    if p is None:
        raise Conflict(f"case {case.id} has no pensioner to decide on")
    return p


