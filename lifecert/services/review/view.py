"""One case for the case page: what opened it (typed payload), photos, scores, history. Every look
is audited; photos are served only when they belong to the case."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
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
    SessionEvidence,
    SpotCheck,
    UnreadablePayload,
    VerificationReview,
    decisions_for,
    dump_payload,
    load_payload,
    other_pensioner_ids,
    photo_shas,
)
from lifecert.domain.errors import NotFound
from lifecert.domain.idnumber import mask_id_number
from lifecert.services import audit
from lifecert.services.context import AppContext
from lifecert.services.review.access import CaseStatus, get_case, kinds_for
from lifecert.services.review.refresh_templates import RefreshTemplateView, last_refusal, refresh_templates_of
from lifecert.services.staff import Principal
from lifecert.storage.models import (
    EnrollmentItem,
    FaceTemplate,
    Pensioner,
    PensionerStatus,
    ReviewCase,
    ReviewKind,
    StaffUser,
    SurvivalConfirmation,
    TemplateKind,
)
from lifecert.storage.models_agency import Suspension, SuspensionReason, SuspensionStatus
from lifecert.storage.models_data import DataImport
from lifecert.storage.models_staff import CaseNote, HomeVisitTask


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
    withdrawn_at: datetime | None = None
    withdrawn_reason: str | None = None
    id: int | None = None


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
    # template refresh (lifecert/services/review/refresh_templates.py): the pensioner's refresh
    # templates, whether this case may offer "use as template", why its last attempt was refused
    refresh_templates: list[RefreshTemplateView] = field(default_factory=list)
    can_use_as_template: bool = False
    refresh_refused: str | None = None
    # a spot check: the confirmations of the sessions under check (by id), and the fraud suspension
    # proposed from this case, whose approval withdraws them
    under_check: dict[int, ConfirmationView] = field(default_factory=dict)
    fraud_suspension: Suspension | None = None
    # the pensioner's fraud case pending or in force (from any case): a fraud decision joins or is refused
    fraud_under_way: Suspension | None = None
    # the page renders these from the rows, never from the stored (English) reason texts: the suspension
    # behind the pensioner's status (suspended, or resumed after one), the case whose approval withdrew
    # each withdrawn confirmation (by confirmation id), and every staff member's username (by id)
    status_suspension: Suspension | None = None
    withdrawals: dict[int, Suspension] = field(default_factory=dict)
    # the pensioner's other cases not yet closed, in queues this staff member works (newest first, up to 10): a
    # session held for review
    # (HELD_FOR_REVIEW) and the attack case it waits for are decided together
    other_open: list[ReviewCase] = field(default_factory=list)
    staff: dict[int, str] = field(default_factory=dict)

    @property
    def fraud_pending(self) -> bool:
        """Suspected fraud was decided here and its suspension waits for the second signature (proposed).
        An ``open`` one (a duplicate face confirmed by enrollment staff) still needs both signatures: the
        page's suspension line says so, not this."""
        fs = self.fraud_suspension
        return fs is not None and fs.status == SuspensionStatus.PROPOSED

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
    case = get_case(session, case_id, who, client_addr=client_addr)
    p = session.get(Pensioner, case.pensioner_id) if case.pensioner_id else None
    payload = load_payload(case.payload)
    score: float | None = None
    threshold: float | None = None
    liveness: list[ChallengeOutcome] = []
    hits: list[Hit] = []
    duplicate_of: Hit | None = None
    quality: dict[str, Any] = {}
    if isinstance(payload, SessionEvidence):
        score, threshold = payload.match, payload.threshold
        if threshold is None:
            threshold = ctx.model.threshold("verify")
        liveness = list(payload.challenges)
    if isinstance(payload, VerificationReview):
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
    other_open: list[ReviewCase] = []
    if p is not None:
        for c in session.scalars(select(SurvivalConfirmation).where(SurvivalConfirmation.pensioner_id == p.id)
                                 .order_by(SurvivalConfirmation.id.desc()).limit(5)):
            confs.append(ConfirmationView(c.method, c.evidence_date, c.valid_until, c.confirmed_at, c.source,
                                          users.get(c.created_by or 0), c.withdrawn_at, c.withdrawn_reason, c.id))
        visits = list(session.scalars(select(HomeVisitTask).where(HomeVisitTask.pensioner_id == p.id)
                                      .order_by(HomeVisitTask.id.desc()).limit(5)))
        other_open = list(session.scalars(select(ReviewCase).where(  # the queues this staff member works
            ReviewCase.pensioner_id == p.id, ReviewCase.id != case.id, ReviewCase.status != CaseStatus.CLOSED,
            ReviewCase.kind.in_(kinds_for(who.role))).order_by(ReviewCase.id.desc()).limit(10)))
    under_check: dict[int, ConfirmationView] = {}
    if isinstance(payload, SpotCheck):
        for c in session.scalars(select(SurvivalConfirmation).where(
                SurvivalConfirmation.id.in_(payload.confirmation_ids))):
            under_check[c.id] = ConfirmationView(c.method, c.evidence_date, c.valid_until, c.confirmed_at, c.source,
                                                 users.get(c.created_by or 0), c.withdrawn_at, c.withdrawn_reason,
                                                 c.id)
    fraud_suspension = session.scalars(select(Suspension).where(
        Suspension.review_case_id == case.id, Suspension.reason == SuspensionReason.FRAUD)
        .order_by(Suspension.id.desc()).limit(1)).first()
    status_suspension: Suspension | None = None
    fraud_under_way: Suspension | None = None
    withdrawals: dict[int, Suspension] = {}
    if p is not None:
        from lifecert.services.suspensions import JOINED, STATUS_PREFIX, withdrawn_by  # it imports review.access

        theirs = list(session.scalars(select(Suspension).where(Suspension.pensioner_id == p.id)
                                      .order_by(Suspension.id.desc())))
        withdrawals = withdrawn_by(theirs)
        fraud = [s for s in theirs if s.reason == SuspensionReason.FRAUD]
        # this case's fraud decision joined a case already pending (suspensions.propose_fraud)
        fraud_suspension = fraud_suspension or next(
            (s for s in fraud if case.id in ((s.detail or {}).get(JOINED) or [])), None)
        fraud_under_way = next((s for s in fraud if s.status in SuspensionStatus.ACTIVE), None)
        if STATUS_PREFIX in (p.status_reason or ""):  # the status was set by a suspension: name it from its row
            suspended = p.status == PensionerStatus.SUSPENDED
            behind = SuspensionStatus.SUSPENDED if suspended else (SuspensionStatus.RESUMED,)
            status_suspension = next((s for s in theirs if s.status in behind), None)
    view = CaseView(
        case=case, pensioner=p, id_number=(p.id_number if p else case.id_number) or "",
        payload=payload, decisions=decisions_for(payload, case.reason),
        enrolled_photos=_photos_of(session, p.id) if p else [],
        best_frames=photo_shas(payload) if isinstance(payload, SessionEvidence) else [],
        item_photo=item_photo, score=score, threshold=threshold, liveness=liveness, quality=quality,
        hits=hits, duplicate_of=duplicate_of, extracts=_extracts(session, payload),
        assignee=users.get(case.assignee_id or 0), decided_by=users.get(case.decided_by or 0),
        notes=notes, confirmations=confs, visits=visits,
        refresh_templates=refresh_templates_of(session, p.id) if p else [],
        can_use_as_template=bool(p and case.kind == ReviewKind.VERIFICATION and case.verification_session_id
                                 and (case.status != CaseStatus.CLOSED or case.decision == Decision.APPROVED)),
        refresh_refused=last_refusal(session, case.id),
        under_check=under_check, fraud_suspension=fraud_suspension, fraud_under_way=fraud_under_way,
        status_suspension=status_suspension, withdrawals=withdrawals, staff=users, other_open=other_open,
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
    case = get_case(session, case_id, who, client_addr=client_addr)
    if sha not in case_photo_shas(session, case):
        raise NotFound("no such photo on this case")
    data = ctx.photos.get(sha)
    audit.record(session, actor=who.username, role=who.role, action="photo.view", object_type="photo",
                 object_id=sha[:16], client_addr=client_addr, detail={"case_id": case.id, "sha256": sha})
    return data


