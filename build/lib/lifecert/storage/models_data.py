"""Tables of the monthly data comparison: departments, delivered extracts, their rows,
rejects, recommended payment actions and overpayments to recover.

Rows are written in bulk with SQLAlchemy Core (a million-row extract must not build a
million ORM objects); the ORM classes below describe the schema and serve the reports.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from lifecert.storage.db import Base
from lifecert.storage.models import TZDateTime, utcnow


class DataKind:
    DEATH = "death"
    IMPRISONMENT = "imprisonment"
    ALIVE_EVIDENCE = "alive_evidence"

    ALL = (DEATH, IMPRISONMENT, ALIVE_EVIDENCE)


class MatchStatus:
    MATCHED = "matched"
    UNMATCHED = "unmatched"
    NAME_MISMATCH = "name_mismatch"


class Outcome:
    """What one matched record led to (``data_record.outcome``)."""

    DECEASED = "deceased"
    ALREADY_DECEASED = "already_deceased"  # a second department reporting a known death
    IMPRISONED = "imprisoned"
    RELEASED = "released"
    ALIVE_EVIDENCE = "alive_evidence"
    CONFLICT = "conflict"  # sent to review with both records, nothing acted on
    NAME_MISMATCH = "name_mismatch"  # sent to review, nothing acted on
    UNMATCHED = "unmatched"
    NONE = "none"


class ActionKind:
    SUSPENSION = "suspension"
    RESUMPTION = "resumption"


class ActionStatus:
    RECOMMENDED = "recommended"
    EXPORTED = "exported"  # handed to the payment system at least once
    APPLIED = "applied"  # resumption: pensioner status set back to active


class DataSource(Base):
    """A department delivering extracts; mirrors its mapping file (upserted on import)."""

    __tablename__ = "data_source"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(128), default="")
    kind: Mapped[str] = mapped_column(String(16))
    cadence_months: Mapped[int] = mapped_column(Integer, default=1)
    due_day: Mapped[int] = mapped_column(Integer, default=10)
    mapping_sha256: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow, onupdate=utcnow)


class DataImport(Base):
    """One delivered extract file. ``file_sha256`` makes re-importing the same file a no-op."""

    __tablename__ = "data_import"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("data_source.id"), index=True)
    department: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    period: Mapped[str] = mapped_column(String(7), index=True)  # YYYY-MM the extract covers
    file_name: Mapped[str] = mapped_column(String(512))
    file_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    file_format: Mapped[str] = mapped_column(String(8))  # csv | xlsx
    encoding: Mapped[str] = mapped_column(String(16), default="")
    received_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)
    due_date: Mapped[date] = mapped_column(Date)
    on_time: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(16), default="running")  # running | finished
    rows_total: Mapped[int] = mapped_column(Integer, default=0)
    rows_valid: Mapped[int] = mapped_column(Integer, default=0)
    rows_rejected: Mapped[int] = mapped_column(Integer, default=0)
    rows_duplicate: Mapped[int] = mapped_column(Integer, default=0)  # repeated within this file
    rows_seen_before: Mapped[int] = mapped_column(Integer, default=0)  # already imported from an earlier file
    matches: Mapped[int] = mapped_column(Integer, default=0)
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # outcome -> rows
    actor: Mapped[str] = mapped_column(String(64), default="")
    finished_at: Mapped[datetime | None] = mapped_column(TZDateTime(), default=None)


class DataRecord(Base):
    """One valid row of an extract. ``row_key`` hashes the department and the fact (who, what, when), so the
    same record delivered again by the same department is recognised; the key is short to keep its unique
    index small (a few bytes per row decide whether a million-row import stays in the page cache)."""

    __tablename__ = "data_record"
    __table_args__ = (
        UniqueConstraint("row_key", name="uq_data_record_key"),
        Index("ix_data_record_import_match", "import_id", "match"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    import_id: Mapped[int] = mapped_column(ForeignKey("data_import.id", ondelete="CASCADE"))
    department: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    row_no: Mapped[int] = mapped_column(Integer)
    row_key: Mapped[str] = mapped_column(String(24))
    id_number: Mapped[str] = mapped_column(String(18))
    name: Mapped[str] = mapped_column(String(64))
    event_date: Mapped[date | None] = mapped_column(Date, default=None)  # death / term start / evidence
    end_date: Mapped[date | None] = mapped_column(Date, default=None)  # term end / release
    detail: Mapped[str] = mapped_column(String(64), default="")  # evidence type, sentence note
    pensioner_id: Mapped[int | None] = mapped_column(Integer, default=None)
    match: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str] = mapped_column(String(24))


class DataReject(Base):
    """A row that failed validation; reported per row, never acted on."""

    __tablename__ = "data_reject"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    import_id: Mapped[int] = mapped_column(ForeignKey("data_import.id", ondelete="CASCADE"), index=True)
    row_no: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text, default="")
    id_number_masked: Mapped[str] = mapped_column(String(32), default="")


class PaymentAction(Base):
    """A recommended suspension or resumption for the payment system."""

    __tablename__ = "payment_action"
    __table_args__ = (Index("ix_payment_action_kind_status", "kind", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pensioner_id: Mapped[int] = mapped_column(ForeignKey("pensioner.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # ActionKind
    reason: Mapped[str] = mapped_column(String(16))  # deceased | imprisoned | released
    effective_date: Mapped[date] = mapped_column(Date)  # suspension from / resumption due
    end_date: Mapped[date | None] = mapped_column(Date, default=None)  # suspension until (sentence end)
    department: Mapped[str] = mapped_column(String(64))
    import_id: Mapped[int | None] = mapped_column(ForeignKey("data_import.id"), default=None)
    row_no: Mapped[int | None] = mapped_column(Integer, default=None)
    status: Mapped[str] = mapped_column(String(16), default=ActionStatus.RECOMMENDED)
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)
    exported_at: Mapped[datetime | None] = mapped_column(TZDateTime(), default=None)


class Overpayment(Base):
    """Pension months paid after a recorded death, computed from a payment ledger file."""

    __tablename__ = "overpayment"
    __table_args__ = (UniqueConstraint("action_id", "ledger_sha256", name="uq_overpayment_action_ledger"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pensioner_id: Mapped[int] = mapped_column(ForeignKey("pensioner.id"), index=True)
    action_id: Mapped[int] = mapped_column(ForeignKey("payment_action.id"))
    death_date: Mapped[date] = mapped_column(Date)
    months: Mapped[list[str]] = mapped_column(JSON, default=list)  # ["2026-03", ...]
    month_count: Mapped[int] = mapped_column(Integer, default=0)
    amount_cents: Mapped[int] = mapped_column(Integer, default=0)
    ledger_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)
