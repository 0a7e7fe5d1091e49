"""Core tables: pensioners, photos, face templates, enrollment runs, survival
confirmations, review cases, staff users and the audit trail.

Feature areas add their own tables in ``models_<area>.py`` modules on the same
``Base`` (picked up by :func:`lifecert.storage.db.import_all_models`).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.sql.elements import ColumnElement

from lifecert.storage.db import Base


def utcnow() -> datetime:
    return datetime.now(UTC)


class TZDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on every backend.

    PostgreSQL stores ``timestamptz``; SQLite has no time zones and returns naive values,
    which are marked UTC on the way out (and aware values are converted to UTC on the way in).
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is not None and dialect.name == "sqlite":
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class PensionerStatus:
    ACTIVE = "active"
    SUSPENDED = "suspended"  # payment suspension (review, fraud suspicion, imprisonment)
    DECEASED = "deceased"


class Pensioner(Base):
    __tablename__ = "pensioner"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    id_number: Mapped[str] = mapped_column(String(18), unique=True, index=True)
    name: Mapped[str] = mapped_column(String(64))
    sex: Mapped[str] = mapped_column(String(1))
    birth_date: Mapped[date] = mapped_column(Date)
    region_code: Mapped[str] = mapped_column(String(6), index=True)
    address: Mapped[str | None] = mapped_column(String(255), default=None)
    phone: Mapped[str | None] = mapped_column(String(32), default=None)
    status: Mapped[str] = mapped_column(String(16), default=PensionerStatus.ACTIVE, index=True)
    status_reason: Mapped[str | None] = mapped_column(String(255), default=None)
    fraud_flag: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow, onupdate=utcnow)

    templates: Mapped[list[FaceTemplate]] = relationship(back_populates="pensioner")


class Photo(Base):
    """A content-addressed photo (encrypted on disk under data_dir/photos)."""

    __tablename__ = "photo"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    original_name: Mapped[str | None] = mapped_column(String(255), default=None)
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)


class TemplateKind:
    ID_PHOTO = "id_photo"
    VERIFIED_SELFIE = "verified_selfie"
    # from the best frame of a CONFIRMED verification session (lifecert/services/refresh.py):
    # provenance records the session and its scores; expires; at most N per person; revocable
    REFRESH = "refresh"


class FaceTemplate(Base):
    __tablename__ = "face_template"
    __table_args__ = (
        UniqueConstraint("pensioner_id", "photo_sha256", "model_key", name="uq_template_photo_model"),
        Index("ix_template_model_active", "model_key", "active"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pensioner_id: Mapped[int] = mapped_column(ForeignKey("pensioner.id", ondelete="CASCADE"), index=True)
    engine: Mapped[str] = mapped_column(String(32))
    model_key: Mapped[str] = mapped_column(String(128))  # engine:model:version
    kind: Mapped[str] = mapped_column(String(32), default=TemplateKind.ID_PHOTO)
    embedding_enc: Mapped[bytes] = mapped_column(LargeBinary)  # AES-GCM sealed float32 vector
    # the views averaged into the embedding (lifecert.engine.views); same model key = same space,
    # but thresholds are calibrated per profile, so `lifecert templates rebuild` upgrades old ones
    embedding_profile: Mapped[str] = mapped_column(String(16), default="single", server_default="single")
    photo_sha256: Mapped[str] = mapped_column(ForeignKey("photo.sha256"), index=True)
    quality: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)
    replaced_at: Mapped[datetime | None] = mapped_column(TZDateTime(), default=None)
    enrollment_run_id: Mapped[int | None] = mapped_column(ForeignKey("enrollment_run.id"), default=None)
    # refresh templates: the session that made it, when it stops counting, who revoked it
    source_session_id: Mapped[str | None] = mapped_column(String(64), default=None, index=True)
    expires_at: Mapped[datetime | None] = mapped_column(TZDateTime(), default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(TZDateTime(), default=None)
    provenance: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    pensioner: Mapped[Pensioner] = relationship(back_populates="templates")

    def aad(self) -> bytes:
        """Associated data binding the sealed embedding to this row's owner and model."""
        return template_aad(self.pensioner_id, self.model_key, self.photo_sha256)


def template_aad(pensioner_id: int, model_key: str, photo_sha256: str) -> bytes:
    return f"tpl|{pensioner_id}|{model_key}|{photo_sha256}".encode()


class EnrollmentRun(Base):
    __tablename__ = "enrollment_run"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(1024))
    source_fingerprint: Mapped[str] = mapped_column(String(64), index=True)  # sha256 of the manifest rows
    model_key: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), default="running")  # running|finished|failed
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    total_items: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(TZDateTime(), default=None)


class EnrollmentItem(Base):
    __tablename__ = "enrollment_item"
    __table_args__ = (UniqueConstraint("run_id", "row_no", name="uq_item_run_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("enrollment_run.id", ondelete="CASCADE"), index=True)
    row_no: Mapped[int] = mapped_column(Integer)
    id_number: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(64), default="")
    photo_name: Mapped[str] = mapped_column(String(512), default="")
    photo_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    reason: Mapped[str] = mapped_column(String(32), index=True)
    detail: Mapped[str] = mapped_column(Text, default="")
    template_id: Mapped[int | None] = mapped_column(ForeignKey("face_template.id"), default=None)
    pensioner_id: Mapped[int | None] = mapped_column(ForeignKey("pensioner.id"), default=None)
    duplicate_of_pensioner_id: Mapped[int | None] = mapped_column(ForeignKey("pensioner.id"), default=None)
    similarity: Mapped[float | None] = mapped_column(Float, default=None)
    quality: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)


class ConfirmationMethod:
    FACE_SELF_SERVICE = "face_self_service"
    CASEWORKER_REVIEW = "caseworker_review"
    DATA_COMPARISON = "data_comparison"
    ASSISTED = "assisted"  # a community worker ran the liveness capture with the pensioner (issue 15)
    HOME_VISIT = "home_visit"  # a community worker saw the pensioner at home, on-site photo matched


class SurvivalConfirmation(Base):
    __tablename__ = "survival_confirmation"
    __table_args__ = (Index("ix_confirmation_pensioner_valid", "pensioner_id", "valid_until"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pensioner_id: Mapped[int] = mapped_column(ForeignKey("pensioner.id", ondelete="CASCADE"))
    method: Mapped[str] = mapped_column(String(32))
    confirmed_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)
    evidence_date: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date] = mapped_column(Date)
    source: Mapped[str] = mapped_column(String(128), default="")  # session id, department, reviewer
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"), default=None)
    # Withdrawn (e.g. a spot check found the session was fraud): kept for the record, but it no
    # longer counts for anyone's standing, due date, dashboard or report (see :meth:`stands`).
    withdrawn_at: Mapped[datetime | None] = mapped_column(TZDateTime(), default=None)
    withdrawn_by: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"), default=None)
    withdrawn_reason: Mapped[str | None] = mapped_column(String(500), default=None)

    @staticmethod
    def stands() -> ColumnElement[bool]:
        """The WHERE clause of confirmations that count (not withdrawn): every query of standing uses it."""
        return SurvivalConfirmation.withdrawn_at.is_(None)


class ReviewKind:
    VERIFICATION = "verification"
    ENROLLMENT = "enrollment"
    DATA_CONFLICT = "data_conflict"
    NAME_MISMATCH = "name_mismatch"
    TIP_OFF = "tip_off"
    SPOT_CHECK = "spot_check"


OPEN_SPOT_CHECK = "kind = 'spot_check' AND status <> 'closed'"  # a spot-check case still open or assigned


class ReviewCase(Base):
    """One item in a caseworker queue. ``payload`` carries what the case page shows."""

    __tablename__ = "review_case"
    __table_args__ = (
        Index("ix_review_status_kind", "status", "kind"),
        # at most one spot check not yet closed per pensioner (migration 0012): the database, not a read
        # before the insert, decides which of two sessions drawn at the same instant opens the case
        Index("uq_review_case_open_spot_check", "pensioner_id", unique=True,
              sqlite_where=text(OPEN_SPOT_CHECK), postgresql_where=text(OPEN_SPOT_CHECK)),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="open")  # open|assigned|closed
    pensioner_id: Mapped[int | None] = mapped_column(ForeignKey("pensioner.id"), default=None, index=True)
    id_number: Mapped[str | None] = mapped_column(String(32), default=None)
    region_code: Mapped[str | None] = mapped_column(String(6), default=None, index=True)
    verification_session_id: Mapped[str | None] = mapped_column(String(64), default=None)
    enrollment_item_id: Mapped[int | None] = mapped_column(ForeignKey("enrollment_item.id"), default=None)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"), default=None)
    decision: Mapped[str | None] = mapped_column(String(32), default=None)
    decision_note: Mapped[str | None] = mapped_column(Text, default=None)
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"), default=None)
    decided_at: Mapped[datetime | None] = mapped_column(TZDateTime(), default=None)
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow, index=True)


class StaffUser(Base):
    __tablename__ = "staff_user"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(64), default="")
    role: Mapped[str] = mapped_column(String(32))  # admin|enrollment_staff|caseworker|auditor
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    region_code: Mapped[str | None] = mapped_column(String(6), default=None)
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)


class AuditEvent(Base):
    """Append-only, hash-chained audit trail (see lifecert.services.audit)."""

    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(64))  # username, "cli:<os user>", "system", "pensioner"
    role: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(64), index=True)
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str] = mapped_column(String(64))
    client_addr: Mapped[str] = mapped_column(String(64), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    row_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # 1: plain sha256 (rows written before 0005); 2: HMAC-SHA256 with LIFECERT_AUDIT_KEY
    chain_v: Mapped[int] = mapped_column(Integer, default=2, server_default="1")
