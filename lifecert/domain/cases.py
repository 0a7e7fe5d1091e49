"""Review cases: what opened a case, as one typed, versioned payload per case type, and the
decisions each type allows.

Every service that opens a case builds one of the payload classes below and hands it to
:func:`lifecert.services.cases.open_case`; the case page reads the same class back. The stored JSON
is ``{"type": ..., "v": ..., **fields}`` (:func:`dump_payload` / :func:`load_payload`); nothing guesses
among key names. A field added later gets a default so older rows still load; a change that cannot
be read that way bumps ``PAYLOAD_VERSION`` and comes with a migration of the stored rows
(``lifecert/storage/migrations/versions``: ``0003`` converted the untyped payloads to version 1).

Plain data, no I/O: dates are ``datetime.date``, scores cosine similarities in [-1, 1].
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, TypeAdapter, ValidationError

PAYLOAD_VERSION = 1

Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


class CaseKind(StrEnum):
    """The queue a case sits in (``review_case.kind``)."""

    VERIFICATION = "verification"
    ENROLLMENT = "enrollment"
    DATA_CONFLICT = "data_conflict"
    NAME_MISMATCH = "name_mismatch"
    TIP_OFF = "tip_off"
    SPOT_CHECK = "spot_check"  # a CONFIRMED session drawn for a caseworker's look (lifecert.domain.spotcheck)


class Decision(StrEnum):
    """How a case was closed (``review_case.decision``)."""

    APPROVED = "approved"  # alive: records a caseworker_review survival confirmation
    REJECTED = "rejected"  # closed without confirming survival (reason kept)
    HOME_VISIT = "home_visit"
    FRAUD = "suspected_fraud"  # flag + suspend payment
    PHOTO_FIXED = "photo_fixed"
    DUPLICATE_CONFIRMED = "duplicate_confirmed"
    NOT_DUPLICATE = "not_duplicate"
    UNFOUNDED = "unfounded"  # a tip-off checked and found baseless: closed, nothing recorded
    GENUINE = "genuine"  # a spot check: the living pensioner; closed, the confirmation already stands


# --- parts shared by several payloads ----------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class FrameRef:
    """One stored camera frame of a verification session (``sha256`` of the stored photo)."""

    sha256: Sha256
    index: int | None = None
    t_ms: int | None = None
    quality: float | None = None
    track_break: bool = False


@dataclass(frozen=True, kw_only=True)
class ChallengeOutcome:
    """One liveness challenge as the liveness analysis judged it."""

    name: str
    passed: bool | None  # None: not evaluated (e.g. the session stopped at framing)
    note: str = ""
    peak_value: float | None = None
    baseline: float | None = None
    threshold: float | None = None
    peak_t_ms: int | None = None
    frames: int | None = None


@dataclass(frozen=True, kw_only=True)
class FaceHit:
    """Another pensioner's template that the probe face resembles (1:N search)."""

    pensioner_id: int
    score: float
    template_id: int | None = None


@dataclass(frozen=True, kw_only=True)
class DepartmentRecord:
    """One row of a department extract, as the department wrote it (``name`` is their spelling)."""

    department: str
    import_id: int | None = None
    row_no: int | None = None
    id_number: str | None = None
    name: str | None = None
    record_kind: str | None = None  # death | imprisonment | alive_evidence (the extract kind)
    event_date: date | None = None  # death date, sentence start or evidence date
    end_date: date | None = None  # sentence end or release date
    detail: str = ""


@dataclass(frozen=True, kw_only=True)
class ConfirmationRef:
    """A survival confirmation already on record (the side a death record conflicts with)."""

    confirmation_id: int | None = None
    method: str
    evidence_date: date
    source: str = ""


@dataclass(frozen=True, kw_only=True)
class RecordedDeath:
    """The death on record for a pensioner (from a payment suspension, or only the status)."""

    death_date: date | None = None
    department: str | None = None
    import_id: int | None = None
    row_no: int | None = None
    note: str = ""


@dataclass(frozen=True, kw_only=True)
class Versioned:
    """The payload format version every stored payload carries (``v``), read by :func:`load_payload`."""

    v: int = PAYLOAD_VERSION


@dataclass(frozen=True, kw_only=True)
class EnrollmentRow(Versioned):
    """The manifest row and photo an enrollment case is about: the fields the three enrollment
    payloads share (not a payload itself; the JSON stays flat)."""

    run_id: int | None = None
    row_no: int | None = None
    photo_name: str | None = None
    photo_sha256: Sha256 | None = None
    detail: str = ""


@dataclass(frozen=True, kw_only=True)
class SessionEvidence(Versioned):
    """What one verification session measured: the fields the payloads about a session share (not a
    payload itself; the JSON stays flat). ``match`` is the fused best-frame similarity to the
    pensioner's own templates, ``threshold`` the verify threshold in force; both None when the session
    stopped before matching. ``pad_score``: presentation-attack detection P(real) fused over the
    session, None when PAD was off."""

    session_id: str
    match: float | None = None
    threshold: float | None = None
    model_key: str | None = None
    best_frames: tuple[FrameRef, ...] = ()
    challenges: tuple[ChallengeOutcome, ...] = ()
    pad_score: float | None = None
    pad_threshold: float | None = None


# --- the payloads ------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class VerificationReview(SessionEvidence):
    """A verification session the rules sent to a person (LOW_MATCH, LIVENESS_FAILED,
    DIFFERENT_PERSONS, MATCHES_OTHER_PENSIONER, TOO_MANY_RETRIES, ...)."""

    type: Literal["verification"] = "verification"
    reason: str
    underlying_reason: str | None = None  # TOO_MANY_RETRIES: the reason of the last retry
    retry_count: int = 0
    one_to_n: tuple[FaceHit, ...] = ()
    one_person_min_similarity: float | None = None
    liveness_issue: str | None = None  # still_image | flat_photo | ...
    analysis: dict[str, Any] = field(default_factory=dict)  # the full analysis record, for the specialist


@dataclass(frozen=True, kw_only=True)
class DrawnSession(SessionEvidence):
    """One CONFIRMED session drawn for a caseworker's look (lifecert.domain.spotcheck): its confirmation
    ``confirmation_id`` stands unless two caseworkers sign a fraud suspension. ``reasons``: SpotCheckReason
    values, most telling first; ``pad_band``: the grey band [low, high) in force when the session was
    decided (None: no band); ``sample_rate``: the random sample's rate then."""

    reasons: tuple[str, ...]
    confirmation_id: int
    method: str  # face_self_service | assisted
    pad_band: tuple[float, float] | None = None
    sample_rate: float | None = None


@dataclass(frozen=True, kw_only=True)
class SpotCheck(DrawnSession):
    """A spot-check case: the session that opened it (its own fields) and ``later``, sessions of the same
    pensioner drawn while the case was still open (one case per pensioner: the caseworker sees them
    together and decides once for all)."""

    type: Literal["spot_check"] = "spot_check"
    later: tuple[DrawnSession, ...] = ()

    @property
    def sessions(self) -> tuple[DrawnSession, ...]:
        """Every session under check, oldest first."""
        return (self, *self.later)

    @property
    def confirmation_ids(self) -> tuple[int, ...]:
        return tuple(d.confirmation_id for d in self.sessions)


@dataclass(frozen=True, kw_only=True)
class EnrollmentReject(EnrollmentRow):
    """A manifest row whose photo failed (NO_FACE, MULTIPLE_FACES, a quality gate, ...)."""

    type: Literal["enrollment_reject"] = "enrollment_reject"
    quality: dict[str, float | int | bool | str | None] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class DuplicateFace(EnrollmentRow):
    """A new enrollment photo whose face is already another pensioner's (≥ duplicate threshold)."""

    type: Literal["duplicate_face"] = "duplicate_face"
    duplicate_of_pensioner_id: int
    similarity: float
    threshold: float | None = None
    quality: dict[str, float | int | bool | str | None] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class IdCollision(EnrollmentRow):
    """A manifest row whose ID number already belongs to an enrolled person with a different name
    (and/or face): nothing was replaced; a person decides which record is right."""

    type: Literal["id_collision"] = "id_collision"
    id_number: str
    manifest_name: str
    enrolled_name: str
    similarity: float | None = None  # new photo vs the enrolled person's templates, when measured


@dataclass(frozen=True, kw_only=True)
class NameMismatch(Versioned):
    """A department record whose ID number matches a pensioner whose name differs: nothing acted on."""

    type: Literal["name_mismatch"] = "name_mismatch"
    record: DepartmentRecord
    pensioner_name: str
    note: str = ""


@dataclass(frozen=True, kw_only=True)
class AliveAfterDeath(Versioned):
    """Alive evidence from a department dated after the pensioner's recorded death."""

    type: Literal["alive_after_death"] = "alive_after_death"
    death: RecordedDeath
    alive_evidence: DepartmentRecord


@dataclass(frozen=True, kw_only=True)
class DeathAfterConfirmation(Versioned):
    """A death record for a pensioner confirmed alive after the date of death: not suspended."""

    type: Literal["death_after_confirmation"] = "death_after_confirmation"
    death: DepartmentRecord
    confirmation: ConfirmationRef


@dataclass(frozen=True, kw_only=True)
class TipOffReport(Versioned):
    """A tip-off (举报) from the public form or staff: what the reporter wrote, as written."""

    type: Literal["tip_off"] = "tip_off"
    description: str
    name: str | None = None
    id_number: str | None = None
    contact: str | None = None
    client_addr: str = ""


CasePayload = (
    VerificationReview | EnrollmentReject | DuplicateFace | IdCollision | NameMismatch | AliveAfterDeath
    | DeathAfterConfirmation | TipOffReport | SpotCheck
)

# The queue each payload type sits in.
KIND_OF: dict[str, CaseKind] = {
    "verification": CaseKind.VERIFICATION,
    "enrollment_reject": CaseKind.ENROLLMENT,
    "duplicate_face": CaseKind.ENROLLMENT,
    "id_collision": CaseKind.ENROLLMENT,
    "name_mismatch": CaseKind.NAME_MISMATCH,
    "alive_after_death": CaseKind.DATA_CONFLICT,
    "death_after_confirmation": CaseKind.DATA_CONFLICT,
    "tip_off": CaseKind.TIP_OFF,
    "spot_check": CaseKind.SPOT_CHECK,
}

_ADAPTER: TypeAdapter[CasePayload] = TypeAdapter(Annotated[CasePayload, Field(discriminator="type")])


@dataclass(frozen=True, kw_only=True)
class UnreadablePayload:
    """A stored payload that does not parse (hand-edited row, unknown future type): the case page
    says so instead of guessing; ``error`` is the validation message."""

    type: Literal["unreadable"] = "unreadable"
    error: str
    keys: tuple[str, ...] = ()


def kind_of(payload: CasePayload) -> CaseKind:
    return KIND_OF[payload.type]


def dump_payload(payload: CasePayload) -> dict[str, Any]:
    """The JSON-ready dict stored in ``review_case.payload`` (dates as ISO strings)."""
    out: dict[str, Any] = _ADAPTER.dump_python(payload, mode="json")
    return out


def load_payload(raw: object) -> CasePayload | UnreadablePayload:
    """Parse a stored payload; anything that is not a known type/version becomes :class:`UnreadablePayload`."""
    if not isinstance(raw, dict):
        return UnreadablePayload(error=f"payload is {type(raw).__name__}, not an object")
    version = raw.get("v")
    if not isinstance(version, int) or version > PAYLOAD_VERSION:
        return UnreadablePayload(error=f"unknown payload version {version!r}", keys=tuple(sorted(map(str, raw))))
    try:
        return _ADAPTER.validate_python(raw)
    except ValidationError as exc:
        return UnreadablePayload(error=str(exc.errors(include_url=False)[:3]), keys=tuple(sorted(map(str, raw))))


def photo_shas(payload: CasePayload | UnreadablePayload) -> list[str]:
    """Photos the payload itself refers to (camera frames, the enrollment photo), in display order."""
    if isinstance(payload, SpotCheck):
        return [f.sha256 for d in payload.sessions for f in d.best_frames]
    if isinstance(payload, SessionEvidence):
        return [f.sha256 for f in payload.best_frames]
    if isinstance(payload, EnrollmentRow) and payload.photo_sha256:
        return [payload.photo_sha256]
    return []


def other_pensioner_ids(payload: CasePayload | UnreadablePayload) -> list[int]:
    """Other pensioners the case compares against (1:N hits, the duplicate's owner)."""
    if isinstance(payload, VerificationReview):
        return [h.pensioner_id for h in payload.one_to_n]
    if isinstance(payload, DuplicateFace):
        return [payload.duplicate_of_pensioner_id]
    return []


# --- decisions each case type allows -----------------------------------------------------------

# Cases whose trigger says the pensioner may be dead: confirming survival is possible only after
# evidence (a home visit), so it is never offered first and never as the primary action.
_DEATH_SIGNALS = frozenset({"alive_after_death", "death_after_confirmation"})


def decisions_for(payload: CasePayload | UnreadablePayload, reason: str) -> tuple[Decision, ...]:
    """The caseworker decisions for a case, in the order the page offers them (the first is the
    primary action). Enrollment cases are closed with the enrollment actions only."""
    t = payload.type
    if t == "spot_check":
        # The session is already CONFIRMED: the caseworker either vouches for it (nothing new recorded),
        # asks for a visit, or finds fraud (the proposed suspension's approval also withdraws the confirmations).
        return (Decision.GENUINE, Decision.HOME_VISIT, Decision.FRAUD)
    if t == "tip_off":
        # A tip-off is an allegation: it can be investigated, upheld or found baseless, never turned
        # into a survival confirmation.
        return (Decision.HOME_VISIT, Decision.FRAUD, Decision.UNFOUNDED)
    if t in _DEATH_SIGNALS:
        return (Decision.HOME_VISIT, Decision.FRAUD, Decision.REJECTED, Decision.APPROVED)
    if t == "name_mismatch":
        return (Decision.HOME_VISIT, Decision.REJECTED, Decision.FRAUD)
    if t == "duplicate_face":
        return (Decision.PHOTO_FIXED, Decision.NOT_DUPLICATE, Decision.DUPLICATE_CONFIRMED)
    if t in ("enrollment_reject", "id_collision"):
        return (Decision.PHOTO_FIXED, Decision.REJECTED)
    if t == "verification":
        if reason in ("DIFFERENT_PERSONS", "MATCHES_OTHER_PENSIONER"):
            return (Decision.HOME_VISIT, Decision.FRAUD, Decision.APPROVED, Decision.REJECTED)
        return (Decision.APPROVED, Decision.HOME_VISIT, Decision.REJECTED, Decision.FRAUD)
    return (Decision.HOME_VISIT, Decision.REJECTED)  # unreadable: nothing that records a fact about the person
