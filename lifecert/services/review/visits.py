"""Home-visit tasks: created by case decisions, listed for staff, assigned to community workers and
closed on site with a photo (issue 15 item 3).

A caseworker (or admin) assigns an open home-visit task to a community worker of the region. Only
THAT worker can close it, with an on-site photo and a note. The photo runs through the one face
pipeline (:func:`lifecert.engine.pipeline.process_face`, the probe profile of verification) and is
matched against the pensioner's active templates with the verification threshold:

- a match → survival confirmation with method ``home_visit`` (the worker as ``created_by``), task done;
- no usable face (NO_FACE, MULTIPLE_FACES, a quality gate, an unreadable image) → the task stays
  open with that reason and the worker may take another photo;
- a face that does not match → the task goes to review (a caseworker case with the photo), never
  a confirmation.

Every step is audited; the photo is kept sealed in the photo store (the case page shows it).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from lifecert.domain.cases import FrameRef, VerificationReview
from lifecert.domain.errors import AccessDenied, Conflict, ErrorCode, LifecertError, NotFound
from lifecert.engine.pipeline import process_face
from lifecert.services import audit
from lifecert.services.cases import open_case
from lifecert.services.confirmations import record_confirmation
from lifecert.services.context import AppContext
from lifecert.services.refresh import verify_threshold
from lifecert.services.review.access import in_scope, scope_clause
from lifecert.services.staff import Principal, Role
from lifecert.services.templates import match_pensioner, store_photo
from lifecert.storage.models import ConfirmationMethod, Pensioner, PensionerStatus, StaffUser
from lifecert.storage.models_staff import HomeVisitStatus, HomeVisitTask

MAX_NOTE = 2000
ASSIGNERS = frozenset({Role.CASEWORKER, Role.ADMIN})
CONFIRMED = "CONFIRMED"


@dataclass(frozen=True)
class VisitOutcome:
    task_id: int
    status: str  # open | done | review
    result: str  # CONFIRMED | NO_FACE | MULTIPLE_FACES | LOW_MATCH | ...
    match: float | None
    threshold: float | None
    confirmation_id: int | None
    review_case_id: int | None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def list_visits(session: Session, who: Principal, *, region: str | None = None, status: str = HomeVisitStatus.OPEN,
                client_addr: str = "") -> list[tuple[HomeVisitTask, Pensioner]]:
    q = select(HomeVisitTask, Pensioner).join(Pensioner, Pensioner.id == HomeVisitTask.pensioner_id)
    if status != "all":
        q = q.where(HomeVisitTask.status == status)
    if region:
        q = q.where(HomeVisitTask.region_code.startswith(region, autoescape=True))
    clause = scope_clause(who, HomeVisitTask.region_code)
    if clause is not None:
        q = q.where(clause)
    rows = [(t, p) for t, p in session.execute(q.order_by(HomeVisitTask.created_at).limit(500))]
    audit.record(session, actor=who.username, role=who.role, action="visits.view", object_type="home_visit_task",
                 object_id="*", client_addr=client_addr, detail={"region": region or "", "shown": len(rows)})
    return rows


def _task(session: Session, who: Principal, task_id: int, client_addr: str) -> HomeVisitTask:
    task = session.get(HomeVisitTask, task_id)
    if task is None or not in_scope(who, task.region_code):
        raise NotFound(f"no home-visit task {task_id}")
    return task


def assign_visit(session: Session, who: Principal, task_id: int, worker_username: str, *,
                 client_addr: str = "") -> HomeVisitTask:
    """Give an open task to a community worker whose region covers the task's region."""
    if who.role not in ASSIGNERS:
        raise AccessDenied("only caseworkers and admins assign home visits")
    task = _task(session, who, task_id, client_addr)
    if task.status != HomeVisitStatus.OPEN:
        raise Conflict(f"home-visit task {task_id} is {task.status}")
    if not worker_username or any(ord(c) < 32 for c in worker_username):
        raise LifecertError("give the community worker's username", code=ErrorCode.BAD_REQUEST)
    worker = session.scalars(select(StaffUser).where(StaffUser.username == worker_username)).first()
    if worker is None or not worker.active or worker.role != Role.COMMUNITY_WORKER:
        raise LifecertError(f"{worker_username!r} is not an active community worker", code=ErrorCode.BAD_REQUEST)
    scope_ok = in_scope(Principal(worker.id, worker.username, Role.COMMUNITY_WORKER, "", worker.region_code,
                                  "cli"), task.region_code)
    if not scope_ok:
        raise LifecertError(f"{worker_username!r} works in region {worker.region_code}, not {task.region_code}",
                            code=ErrorCode.BAD_REQUEST)
    task.assignee_id = worker.id
    audit.record(session, actor=who.username, role=who.role, action="visit.assigned", object_type="home_visit_task",
                 object_id=task.id, client_addr=client_addr,
                 detail={"pensioner_id": task.pensioner_id, "worker": worker.username})
    return task


def my_visits(session: Session, who: Principal, *, client_addr: str = "") -> list[tuple[HomeVisitTask, Pensioner]]:
    """The open tasks assigned to this community worker (audited: it shows addresses)."""
    q = (select(HomeVisitTask, Pensioner).join(Pensioner, Pensioner.id == HomeVisitTask.pensioner_id)
         .where(HomeVisitTask.assignee_id == who.user_id, HomeVisitTask.status == HomeVisitStatus.OPEN)
         .order_by(HomeVisitTask.created_at).limit(500))
    clause = scope_clause(who, HomeVisitTask.region_code)
    if clause is not None:
        q = q.where(clause)
    rows = [(t, p) for t, p in session.execute(q)]
    audit.record(session, actor=who.username, role=who.role, action="visits.view_mine", object_type="home_visit_task",
                 object_id="*", client_addr=client_addr, detail={"shown": len(rows)})
    return rows


def close_visit(ctx: AppContext, session: Session, who: Principal, task_id: int, photo: bytes, note: str, *,
                client_addr: str = "", now: datetime | None = None) -> VisitOutcome:
    """Close ``task_id`` with an on-site photo (see the module docstring). Runs the face engine: call it
    from a worker thread. Writes in the caller's transaction."""
    if who.role != Role.COMMUNITY_WORKER:
        raise AccessDenied("home visits are closed by the community worker they are assigned to")
    note = (note or "").strip()
    if not note:
        raise LifecertError("a note on what was seen is required", code=ErrorCode.BAD_REQUEST)
    if len(note) > MAX_NOTE:
        raise LifecertError(f"the note is longer than {MAX_NOTE} characters", code=ErrorCode.BAD_REQUEST)
    if any(ord(c) < 32 and c not in "\n\r\t" for c in note):
        raise LifecertError("the note has control characters", code=ErrorCode.BAD_REQUEST)
    task = _task(session, who, task_id, client_addr)
    if task.assignee_id != who.user_id:
        raise AccessDenied(f"home-visit task {task_id} is not assigned to you")
    if task.status != HomeVisitStatus.OPEN:
        raise Conflict(f"home-visit task {task_id} is already {task.status}")
    p = session.get(Pensioner, task.pensioner_id)
    if p is None:  # pragma: no cover - cascade
        raise NotFound(f"no home-visit task {task_id}")
    st = ctx.settings
    out = process_face(ctx.engine, photo, st.quality, views=st.embedding.probe_profile,
                       max_bytes=st.images.max_bytes, max_pixels=st.images.max_pixels)
    task.attempts = (task.attempts or 0) + 1
    base = {"pensioner_id": p.id, "attempt": task.attempts}
    if out.reason is not None or out.embedding is None or out.image is None:
        task.result = str(out.reason or ErrorCode.NO_FACE)
        audit.record(session, actor=who.username, role=who.role, action="visit.photo_refused",
                     object_type="home_visit_task", object_id=task.id, client_addr=client_addr,
                     detail={**base, "reason": task.result, "detail": out.detail})
        return VisitOutcome(task.id, task.status, task.result, None, None, None, None)
    sha = hashlib.sha256(photo).hexdigest()
    store_photo(ctx, session, photo, sha, out.width, out.height, original_name=f"home_visit_{task.id}.jpg")
    matches = match_pensioner(ctx, session, p.id, out.embedding)
    score = matches[0].score
    thr = verify_threshold(ctx.model, [m.kind for m in matches])
    task.photo_sha256, task.match_score, task.closed_by = sha, round(score, 4), who.user_id
    when = now or datetime.now(UTC)
    stamp = f"[{when:%Y-%m-%d %H:%M} {who.username}] {note}"
    task.note = f"{task.note}\n{stamp}".strip() if task.note else stamp
    evidence = {"home_visit_task": task.id, "worker": who.username, "worker_id": who.user_id, "photo_sha256": sha,
                "match": round(score, 4), "threshold": thr, "model_key": ctx.model.key,
                "template_id": matches[0].template_id}
    if score >= thr and p.status != PensionerStatus.DECEASED:
        conf = record_confirmation(session, p, ConfirmationMethod.HOME_VISIT, when.date(), f"home_visit:{task.id}",
                                   evidence, created_by=who.user_id, cycle_months=st.confirmation_cycle_months)
        task.status, task.result, task.confirmation_id = HomeVisitStatus.DONE, CONFIRMED, conf.id
        task.completed_at = when
        audit.record(session, actor=who.username, role=who.role, action="visit.closed", object_type="home_visit_task",
                     object_id=task.id, client_addr=client_addr,
                     detail={**base, "confirmation_id": conf.id, "match": round(score, 4), "threshold": thr})
        return VisitOutcome(task.id, task.status, task.result, round(score, 4), thr, conf.id, None)
    reason = str(ErrorCode.LOW_MATCH) if score < thr else "PENSIONER_DECEASED"
    case = open_case(
        session,
        VerificationReview(session_id=f"home_visit:{task.id}", reason=reason, match=round(score, 4), threshold=thr,
                           model_key=ctx.model.key, best_frames=(FrameRef(sha256=sha, index=0),),
                           analysis={"home_visit_task": task.id, "worker": who.username, "note": note[:500]}),
        reason=reason, pensioner=p,
    )
    task.status, task.result = HomeVisitStatus.REVIEW, reason
    audit.record(session, actor=who.username, role=who.role, action="visit.to_review", object_type="home_visit_task",
                 object_id=task.id, client_addr=client_addr,
                 detail={**base, "reason": reason, "match": round(score, 4), "threshold": thr, "case_id": case.id})
    return VisitOutcome(task.id, task.status, task.result, round(score, 4), thr, None, case.id)
