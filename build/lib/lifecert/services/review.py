"""Review cases: the caseworker queues, the case view and the decisions.

Other services open cases through :func:`lifecert.services.cases.open_case` with a typed payload
(:mod:`lifecert.domain.cases`); the case view reads the same type back, and each case type allows
only the decisions :func:`lifecert.domain.cases.decisions_for` lists. Every read of personal or
biometric data and every decision writes an audit event in the same transaction as the work it
records.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lifecert.domain.cases import (
    AliveAfterDeath,
    CasePayload,
    ChallengeOutcome,
    DeathAfterConfirmation,
    Decision,
    DuplicateFace,
    EnrollmentReject,
    IdCollision,
    NameMismatch,
    UnreadablePayload,
    VerificationReview,
    decisions_for,
    dump_payload,
    load_payload,
    other_pensioner_ids,
    photo_shas,
)
from lifecert.domain.enrollment import is_success
from lifecert.domain.errors import (
    AccessDenied,
    Conflict,
    ErrorCode,
    FaceQualityError,
    ImageError,
    LifecertError,
    NotFound,
)
from lifecert.domain.idnumber import mask_id_number
from lifecert.services import audit
from lifecert.services.context import AppContext
from lifecert.services.staff import Principal, Role
from lifecert.storage.models import (
    ConfirmationMethod,
    EnrollmentItem,
    FaceTemplate,
    Pensioner,
    PensionerStatus,
    ReviewCase,
    ReviewKind,
    StaffUser,
    SurvivalConfirmation,
    TemplateKind,
    utcnow,
)
from lifecert.storage.models_data import DataImport
from lifecert.storage.models_staff import CaseNote, HomeVisitStatus, HomeVisitTask


class CaseStatus:
    OPEN = "open"
    ASSIGNED = "assigned"
    CLOSED = "closed"


# Which roles may work which queue. Enrollment staff fix enrollment rejects; caseworkers work everything.
KIND_ROLES: dict[str, frozenset[Role]] = {
    ReviewKind.ENROLLMENT: frozenset({Role.CASEWORKER, Role.ENROLLMENT_STAFF}),
}
DEFAULT_KIND_ROLES = frozenset({Role.CASEWORKER})


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
    rows: list[QueueRow]
    total: int
    by_reason: dict[str, int]
    by_kind: dict[str, int]
    by_status: dict[str, int]


def _queue_query(q: Any, f: QueueFilter, session: Session) -> Any:
    if f.kind:
        q = q.where(ReviewCase.kind == f.kind)
    if f.kinds is not None:
        q = q.where(ReviewCase.kind.in_(f.kinds))
    if f.reason:
        q = q.where(ReviewCase.reason == f.reason)
    if f.region:
        q = q.where(ReviewCase.region_code.startswith(f.region))
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
    if f.date_from:
        q = q.where(ReviewCase.created_at >= datetime.combine(f.date_from, time.min, tzinfo=UTC))
    if f.date_to:
        q = q.where(ReviewCase.created_at < datetime.combine(f.date_to + timedelta(days=1), time.min, tzinfo=UTC))
    return q


def kinds_for(role: Role) -> tuple[str, ...]:
    all_kinds = (ReviewKind.VERIFICATION, ReviewKind.ENROLLMENT, ReviewKind.DATA_CONFLICT,
                 ReviewKind.NAME_MISMATCH, ReviewKind.TIP_OFF)
    return tuple(k for k in all_kinds if role in KIND_ROLES.get(k, DEFAULT_KIND_ROLES))


def list_queue(
    session: Session, f: QueueFilter, who: Principal, *, client_addr: str = "", limit: int = 100, offset: int = 0
) -> QueuePage:
    """One page of cases (oldest first: first come, first served) with counts by reason, kind and status
    under the same filters. ID numbers are masked. The listing is audited (it shows names)."""
    f = QueueFilter(**{**f.__dict__, "kinds": kinds_for(who.role), "me": who.user_id})
    base = _queue_query(select(ReviewCase, Pensioner.name, StaffUser.username), f, session)
    base = base.outerjoin(Pensioner, Pensioner.id == ReviewCase.pensioner_id).outerjoin(
        StaffUser, StaffUser.id == ReviewCase.assignee_id
    )
    rows = []
    for case, name, assignee in session.execute(base.order_by(ReviewCase.created_at, ReviewCase.id)
                                                .limit(limit).offset(offset)):
        rows.append(QueueRow(
            id=case.id, kind=case.kind, reason=case.reason, status=case.status,
            id_number_masked=mask_id_number(case.id_number) if case.id_number else "",
            name=name or "", region_code=case.region_code or "", assignee=assignee,
            created_at=case.created_at, decision=case.decision,
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
                 detail={"filter": {k: str(v) for k, v in f.__dict__.items() if v and k not in ("kinds", "me")},
                         "shown": [r.id for r in rows]})
    return QueuePage(rows, total, by_reason, by_kind, by_status)


# --- one case ---------------------------------------------------------------------------------


def _get_case(session: Session, case_id: int, who: Principal) -> ReviewCase:
    case = session.get(ReviewCase, case_id)
    if case is None:
        raise NotFound(f"no review case {case_id}")
    if who.role not in KIND_ROLES.get(case.kind, DEFAULT_KIND_ROLES):
        raise AccessDenied(f"role {who.role} may not work {case.kind} cases")
    return case


@dataclass(frozen=True)
class Hit:
    pensioner_id: int
    score: float
    name: str
    id_number_masked: str
    photo_sha256s: list[str]


@dataclass(frozen=True)
class ConfirmationView:
    method: str
    evidence_date: date
    valid_until: date
    confirmed_at: datetime
    source: str
    by: str | None


@dataclass(frozen=True)
class ExtractView:
    """The delivered extract a department record came from."""

    import_id: int
    department: str
    kind: str
    period: str
    file_name: str


@dataclass(frozen=True)
class CaseView:
    """Everything the case page shows. ``id_number`` is the full number (the view is audited).
    ``payload`` is what opened the case (typed, see :mod:`lifecert.domain.cases`); ``decisions`` the
    caseworker decisions it allows, the first being the primary one."""

    case: ReviewCase
    pensioner: Pensioner | None
    id_number: str
    payload: CasePayload | UnreadablePayload
    decisions: tuple[Decision, ...]
    enrolled_photos: list[str]
    best_frames: list[str]
    item_photo: str | None
    score: float | None
    threshold: float | None
    liveness: list[ChallengeOutcome]
    quality: dict[str, Any]
    hits: list[Hit]
    duplicate_of: Hit | None
    extracts: dict[int, ExtractView]
    assignee: str | None
    decided_by: str | None
    notes: list[tuple[str, datetime, str]]
    confirmations: list[ConfirmationView]
    visits: list[HomeVisitTask]

    @property
    def closed(self) -> bool:
        return self.case.status == CaseStatus.CLOSED

    @property
    def payload_json(self) -> dict[str, Any]:
        """The payload as stored (JSON-ready); for an unreadable one, the error and the keys seen."""
        if isinstance(self.payload, UnreadablePayload):
            return {"type": "unreadable", "error": self.payload.error, "keys": list(self.payload.keys)}
        return dump_payload(self.payload)


def _photos_of(session: Session, pensioner_id: int) -> list[str]:
    """Photos of the pensioner's active templates, ID photos first."""
    tpls = session.scalars(
        select(FaceTemplate).where(FaceTemplate.pensioner_id == pensioner_id, FaceTemplate.active.is_(True))
        .order_by(FaceTemplate.kind != TemplateKind.ID_PHOTO, FaceTemplate.id)
    )
    seen: list[str] = []
    for t in tpls:
        if t.photo_sha256 not in seen:
            seen.append(t.photo_sha256)
    return seen


def _hit(session: Session, pensioner_id: int, score: float) -> Hit | None:
    p = session.get(Pensioner, pensioner_id)
    if p is None:
        return None
    return Hit(p.id, score, p.name, mask_id_number(p.id_number), _photos_of(session, p.id))


def _extracts(session: Session, payload: CasePayload | UnreadablePayload) -> dict[int, ExtractView]:
    records = []
    if isinstance(payload, NameMismatch):
        records = [payload.record]
    elif isinstance(payload, AliveAfterDeath):
        records = [payload.alive_evidence]
    elif isinstance(payload, DeathAfterConfirmation):
        records = [payload.death]
    ids = [r.import_id for r in records if r.import_id is not None]
    if isinstance(payload, AliveAfterDeath) and payload.death.import_id is not None:
        ids.append(payload.death.import_id)
    if not ids:
        return {}
    return {i.id: ExtractView(i.id, i.department, i.kind, i.period, i.file_name)
            for i in session.scalars(select(DataImport).where(DataImport.id.in_(ids)))}


def case_view(ctx: AppContext, session: Session, case_id: int, who: Principal, *, client_addr: str = "") -> CaseView:
    """Load a case for the case page and audit the look (full ID number and biometric data shown)."""
    case = _get_case(session, case_id, who)
    p = session.get(Pensioner, case.pensioner_id) if case.pensioner_id else None
    payload = load_payload(case.payload)
    score: float | None = None
    threshold: float | None = None
    liveness: list[ChallengeOutcome] = []
    hits: list[Hit] = []
    duplicate_of: Hit | None = None
    quality: dict[str, Any] = {}
    if isinstance(payload, VerificationReview):
        score, threshold = payload.match, payload.threshold
        if threshold is None:
            threshold = ctx.model.threshold("verify")
        liveness = list(payload.challenges)
        for fh in payload.one_to_n:
            if p is not None and fh.pensioner_id == p.id:
                continue
            hit = _hit(session, fh.pensioner_id, fh.score)
            if hit is not None:
                hits.append(hit)
    elif isinstance(payload, DuplicateFace):
        score, threshold = payload.similarity, payload.threshold or ctx.model.threshold("duplicate")
        duplicate_of = _hit(session, payload.duplicate_of_pensioner_id, payload.similarity)
        quality = dict(payload.quality)
    elif isinstance(payload, EnrollmentReject):
        quality = dict(payload.quality)
    elif isinstance(payload, IdCollision):
        score = payload.similarity
    item = session.get(EnrollmentItem, case.enrollment_item_id) if case.enrollment_item_id else None
    item_photo = None
    if isinstance(payload, EnrollmentReject | DuplicateFace | IdCollision):
        item_photo = payload.photo_sha256 or (item.photo_sha256 if item else None)
    users = {u.id: u.username for u in session.scalars(select(StaffUser))}
    notes = [(users.get(n.author_id or 0, "?"), n.created_at, n.text) for n in session.scalars(
        select(CaseNote).where(CaseNote.case_id == case.id).order_by(CaseNote.id))]
    confs = []
    visits: list[HomeVisitTask] = []
    if p is not None:
        for c in session.scalars(select(SurvivalConfirmation).where(SurvivalConfirmation.pensioner_id == p.id)
                                 .order_by(SurvivalConfirmation.id.desc()).limit(5)):
            confs.append(ConfirmationView(c.method, c.evidence_date, c.valid_until, c.confirmed_at, c.source,
                                          users.get(c.created_by or 0)))
        visits = list(session.scalars(select(HomeVisitTask).where(HomeVisitTask.pensioner_id == p.id)
                                      .order_by(HomeVisitTask.id.desc()).limit(5)))
    view = CaseView(
        case=case, pensioner=p, id_number=(p.id_number if p else case.id_number) or "",
        payload=payload, decisions=decisions_for(payload, case.reason),
        enrolled_photos=_photos_of(session, p.id) if p else [],
        best_frames=photo_shas(payload) if isinstance(payload, VerificationReview) else [],
        item_photo=item_photo, score=score, threshold=threshold, liveness=liveness, quality=quality,
        hits=hits, duplicate_of=duplicate_of, extracts=_extracts(session, payload),
        assignee=users.get(case.assignee_id or 0), decided_by=users.get(case.decided_by or 0),
        notes=notes, confirmations=confs, visits=visits,
    )
    audit.record(session, actor=who.username, role=who.role, action="case.view", object_type="review_case",
                 object_id=case.id, client_addr=client_addr,
                 detail={"pensioner_id": case.pensioner_id, "id_number_shown": bool(view.id_number),
                         "photos": len(view.enrolled_photos) + len(view.best_frames) + len(view.hits)})
    return view


def case_photo_shas(session: Session, case: ReviewCase) -> set[str]:
    """Every photo the case page may show: the pensioner's, the session's frames, the item's, the hits'."""
    payload = load_payload(case.payload)
    shas = set(photo_shas(payload))
    if case.pensioner_id:
        shas.update(_photos_of(session, case.pensioner_id))
    if case.enrollment_item_id:
        item = session.get(EnrollmentItem, case.enrollment_item_id)
        if item is not None and item.photo_sha256:
            shas.add(item.photo_sha256)
    for pid in other_pensioner_ids(payload):
        shas.update(_photos_of(session, pid))
    return shas


def read_case_photo(
    ctx: AppContext, session: Session, case_id: int, sha: str, who: Principal, *, client_addr: str = ""
) -> bytes:
    """Decrypt one photo that belongs to the case (any other sha → NOT_FOUND). Audited."""
    case = _get_case(session, case_id, who)
    if sha not in case_photo_shas(session, case):
        raise NotFound("no such photo on this case")
    data = ctx.photos.get(sha)
    audit.record(session, actor=who.username, role=who.role, action="photo.view", object_type="photo",
                 object_id=sha[:16], client_addr=client_addr, detail={"case_id": case.id, "sha256": sha})
    return data


# --- work on a case ---------------------------------------------------------------------------


def _open_for_decision(session: Session, case_id: int, who: Principal, decision: Decision) -> ReviewCase:
    """The case, if it is open, not someone else's, and ``decision`` is one its type allows."""
    case = _get_case(session, case_id, who)
    if case.status == CaseStatus.CLOSED:
        raise Conflict(f"case {case_id} is already closed ({case.decision})")
    if case.assignee_id is not None and case.assignee_id != who.user_id:
        raise Conflict(f"case {case_id} is assigned to someone else; assign it to yourself first")
    if decision not in decisions_for(load_payload(case.payload), case.reason):
        raise Conflict(f"a {case.kind} case ({case.reason}) cannot be closed as {decision}")
    return case


def _close(case: ReviewCase, who: Principal, decision: str, note: str | None) -> None:
    case.status = CaseStatus.CLOSED
    case.assignee_id = who.user_id
    case.decision = decision
    case.decision_note = (note or "").strip() or None
    case.decided_by = who.user_id
    case.decided_at = utcnow()


def _audit_decision(session: Session, case: ReviewCase, who: Principal, action: str, client_addr: str,
                    **detail: Any) -> None:
    audit.record(session, actor=who.username, role=who.role, action=action, object_type="review_case",
                 object_id=case.id, client_addr=client_addr,
                 detail={"pensioner_id": case.pensioner_id, "kind": case.kind, "reason": case.reason, **detail})


def _pensioner_of(session: Session, case: ReviewCase) -> Pensioner:
    p = session.get(Pensioner, case.pensioner_id) if case.pensioner_id else None
    if p is None:
        raise Conflict(f"case {case.id} has no pensioner to decide on")
    return p


def assign_to_me(session: Session, case_id: int, who: Principal, *, client_addr: str = "") -> ReviewCase:
    case = _get_case(session, case_id, who)
    if case.status == CaseStatus.CLOSED:
        raise Conflict(f"case {case_id} is already closed")
    previous = case.assignee_id
    case.assignee_id = who.user_id
    case.status = CaseStatus.ASSIGNED
    _audit_decision(session, case, who, "case.assign", client_addr, previous_assignee_id=previous)
    return case


def approve(
    ctx: AppContext, session: Session, case_id: int, who: Principal, *, note: str = "", client_addr: str = "",
    today: date | None = None,
) -> SurvivalConfirmation:
    """The reviewer is satisfied the pensioner is alive: record a survival confirmation (method
    ``caseworker_review``, created_by the reviewer) and close the case. Only for case types that allow
    it (never a tip-off); where it is not the primary decision the note must give the evidence."""
    from lifecert.services.confirmations import record_confirmation

    case = _open_for_decision(session, case_id, who, Decision.APPROVED)
    if decisions_for(load_payload(case.payload), case.reason)[0] != Decision.APPROVED and not note.strip():
        # The trigger speaks against survival (a death record, a face of someone else): say what
        # evidence outweighs it.
        raise LifecertError("confirming survival on this case needs the evidence in the note",
                            code=ErrorCode.BAD_REQUEST, field="note")
    p = _pensioner_of(session, case)
    conf = record_confirmation(
        session, p, ConfirmationMethod.CASEWORKER_REVIEW, today or date.today(), f"review_case:{case.id}",
        {"case_id": case.id, "kind": case.kind, "reason": case.reason, "reviewer": who.username,
         "verification_session_id": case.verification_session_id, "note": note.strip()},
        created_by=who.user_id, cycle_months=ctx.settings.confirmation_cycle_months,
    )
    _close(case, who, Decision.APPROVED, note)
    _audit_decision(session, case, who, "case.approve", client_addr, confirmation_id=conf.id)
    return conf


def reject(session: Session, case_id: int, who: Principal, reason: str, *, client_addr: str = "") -> ReviewCase:
    """Close the case without confirming survival; the reason is required and kept."""
    if not reason.strip():
        raise LifecertError("a reason is required to reject", code=ErrorCode.BAD_REQUEST)
    case = _open_for_decision(session, case_id, who, Decision.REJECTED)
    _close(case, who, Decision.REJECTED, reason)
    _audit_decision(session, case, who, "case.reject", client_addr, note=reason.strip()[:500])
    return case


def request_home_visit(
    session: Session, case_id: int, who: Principal, *, note: str = "", client_addr: str = ""
) -> HomeVisitTask:
    """Create a task for community staff at the pensioner's address/region and close the case."""
    case = _open_for_decision(session, case_id, who, Decision.HOME_VISIT)
    p = _pensioner_of(session, case)
    task = HomeVisitTask(case_id=case.id, pensioner_id=p.id, region_code=p.region_code, address=p.address or "",
                         phone=p.phone or "", note=note.strip(), created_by=who.user_id)
    session.add(task)
    session.flush()
    _close(case, who, Decision.HOME_VISIT, note)
    _audit_decision(session, case, who, "case.home_visit", client_addr, task_id=task.id)
    return task


def mark_suspected_fraud(
    session: Session, case_id: int, who: Principal, *, note: str = "", client_addr: str = ""
) -> Pensioner:
    """Flag the pensioner and suspend payment pending the payment-suspension review."""
    case = _open_for_decision(session, case_id, who, Decision.FRAUD)
    p = _pensioner_of(session, case)
    p.fraud_flag = True
    p.status = PensionerStatus.SUSPENDED
    p.status_reason = f"suspected fraud (review case {case.id})"
    _close(case, who, Decision.FRAUD, note)
    _audit_decision(session, case, who, "case.fraud", client_addr, note=note.strip()[:500])
    return p


def close_unfounded(session: Session, case_id: int, who: Principal, reason: str, *,
                    client_addr: str = "") -> ReviewCase:
    """A tip-off checked and found baseless: close it with the reason. Records nothing about the
    pensioner (in particular no survival confirmation)."""
    if not reason.strip():
        raise LifecertError("a reason is required to close a tip-off as unfounded", code=ErrorCode.BAD_REQUEST)
    case = _open_for_decision(session, case_id, who, Decision.UNFOUNDED)
    _close(case, who, Decision.UNFOUNDED, reason)
    _audit_decision(session, case, who, "case.unfounded", client_addr, note=reason.strip()[:500])
    return case


def add_note(session: Session, case_id: int, who: Principal, text: str, *, client_addr: str = "") -> CaseNote:
    if not text.strip():
        raise LifecertError("the note is empty", code=ErrorCode.BAD_REQUEST)
    case = _get_case(session, case_id, who)
    n = CaseNote(case_id=case.id, author_id=who.user_id, text=text.strip()[:4000])
    session.add(n)
    session.flush()
    _audit_decision(session, case, who, "case.note", client_addr, note_id=n.id)
    return n


# --- enrollment rejects -----------------------------------------------------------------------


def _enrollment_case(session: Session, case_id: int, who: Principal, decision: Decision) -> ReviewCase:
    case = _open_for_decision(session, case_id, who, decision)
    if case.kind != ReviewKind.ENROLLMENT:
        raise Conflict(f"case {case_id} is not an enrollment case")
    return case


def _enroll_bytes(
    ctx: AppContext, session: Session, p: Pensioner, data: bytes, name: str | None, *, accept_duplicate: bool = False,
    accept_new_face: bool = True,
) -> FaceTemplate:
    """Enroll ``data`` for ``p`` through the face pipeline (one decode, one embedding under the
    enroll profile) and the enrolling rules; a reject is its typed error and writes nothing.
    A staff member chose this photo for this pensioner, so a new face is accepted by default."""
    from lifecert.services.enrollment import assess_bytes
    from lifecert.services.enrollment_writer import Candidate, EnrollmentWriter
    from lifecert.storage.photos import sha256_bytes

    st = ctx.settings
    a = assess_bytes(ctx.engine, data, st.quality, max_bytes=st.images.max_bytes, max_pixels=st.images.max_pixels,
                     profile=st.embedding.enroll_profile)
    if not is_success(a.reason):
        err = ErrorCode(a.reason)
        if err in (ErrorCode.UNREADABLE_IMAGE, ErrorCode.UNSUPPORTED_FORMAT, ErrorCode.IMAGE_TOO_LARGE):
            raise ImageError(a.detail or "the photo cannot be read", code=err)
        raise FaceQualityError(f"photo fails the quality gate: {err}" + (f" ({a.detail})" if a.detail else ""),
                               code=err, quality=a.quality)
    c = Candidate(id_number=p.id_number, name="", photo_name=(name or "")[:255], photo_sha256=sha256_bytes(data),
                  photo_size=len(data), assessment=a, photo_data=data)
    v = EnrollmentWriter(ctx, session=session).enroll_for(session, p, c, accept_duplicate=accept_duplicate,
                                                          accept_new_face=accept_new_face)
    if v.reason == ErrorCode.DUPLICATE_FACE:
        raise Conflict(f"this face matches pensioner #{v.duplicate_of} (similarity {v.similarity or 0:.3f})",
                       pensioner_id=v.duplicate_of, similarity=round(v.similarity or 0.0, 4))
    if v.template is None:
        raise Conflict(f"the photo was not enrolled: {v.reason} {v.detail}".strip())
    return v.template


def fix_photo(
    ctx: AppContext, session: Session, case_id: int, who: Principal, data: bytes, *, filename: str | None = None,
    client_addr: str = "",
) -> FaceTemplate:
    """Enroll a corrected ID photo for the case's pensioner (same pipeline and rules as the batch
    job) and close the case. A photo whose face is another pensioner's (≥ duplicate threshold)
    is refused."""
    case = _enrollment_case(session, case_id, who, Decision.PHOTO_FIXED)
    p = _pensioner_of(session, case)
    tpl = _enroll_bytes(ctx, session, p, data, filename)
    _close(case, who, Decision.PHOTO_FIXED, None)
    _audit_decision(session, case, who, "enrollment.fix_photo", client_addr, template_id=tpl.id,
                    photo_sha256=tpl.photo_sha256)
    return tpl


def confirm_duplicate(session: Session, case_id: int, who: Principal, *, note: str = "",
                      client_addr: str = "") -> ReviewCase:
    """The two records are the same face: flag the newly enrolled pensioner for the fraud review."""
    case = _enrollment_case(session, case_id, who, Decision.DUPLICATE_CONFIRMED)
    p = _pensioner_of(session, case)
    payload = load_payload(case.payload)
    other = payload.duplicate_of_pensioner_id if isinstance(payload, DuplicateFace) else None
    p.fraud_flag = True
    p.status = PensionerStatus.SUSPENDED
    p.status_reason = f"duplicate face of pensioner #{other} (review case {case.id})"
    _close(case, who, Decision.DUPLICATE_CONFIRMED, note)
    _audit_decision(session, case, who, "enrollment.confirm_duplicate", client_addr, other_pensioner_id=other)
    return case


def not_duplicate(ctx: AppContext, session: Session, case_id: int, who: Principal, *, note: str = "",
                  client_addr: str = "") -> FaceTemplate:
    """Different people who look alike (e.g. twins): enroll the item's photo after all."""
    case = _enrollment_case(session, case_id, who, Decision.NOT_DUPLICATE)
    p = _pensioner_of(session, case)
    item = session.get(EnrollmentItem, case.enrollment_item_id) if case.enrollment_item_id else None
    payload = load_payload(case.payload)
    sha = (payload.photo_sha256 if isinstance(payload, DuplicateFace) else None) or (
        item.photo_sha256 if item else None)
    if not sha:
        raise Conflict("this case has no stored photo to enroll; use fix photo")
    tpl = _enroll_bytes(ctx, session, p, ctx.photos.get(sha), None, accept_duplicate=True)
    _close(case, who, Decision.NOT_DUPLICATE, note)
    other = payload.duplicate_of_pensioner_id if isinstance(payload, DuplicateFace) else None
    _audit_decision(session, case, who, "enrollment.not_duplicate", client_addr, template_id=tpl.id,
                    other_pensioner_id=other)
    return tpl


# --- home visits ------------------------------------------------------------------------------


def list_visits(session: Session, who: Principal, *, region: str | None = None, status: str = HomeVisitStatus.OPEN,
                client_addr: str = "") -> list[tuple[HomeVisitTask, Pensioner]]:
    q = select(HomeVisitTask, Pensioner).join(Pensioner, Pensioner.id == HomeVisitTask.pensioner_id)
    if status != "all":
        q = q.where(HomeVisitTask.status == status)
    if region:
        q = q.where(HomeVisitTask.region_code.startswith(region))
    rows = [(t, p) for t, p in session.execute(q.order_by(HomeVisitTask.created_at).limit(500))]
    audit.record(session, actor=who.username, role=who.role, action="visits.view", object_type="home_visit_task",
                 object_id="*", client_addr=client_addr, detail={"region": region or "", "shown": len(rows)})
    return rows
