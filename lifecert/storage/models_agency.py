"""Tables of the agency's yearly cycle: certification policies per region, and payment
suspensions of overdue pensioners with their two-person sign-off (lifecert.services.policy,
lifecert.services.suspensions)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from lifecert.storage.db import Base
from lifecert.storage.models import TZDateTime, utcnow


class PolicyRow(Base):
    """One region's certification policy from ``effective_from`` on (rows are never updated:
    a change is a new row, so the policy in force on any past day can be recomputed)."""

    __tablename__ = "certification_policy"
    __table_args__ = (UniqueConstraint("region_prefix", "effective_from", name="uq_policy_region_from"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    region_prefix: Mapped[str] = mapped_column(String(6))  # "" = everywhere
    kind: Mapped[str] = mapped_column(String(32))  # lifecert.domain.policy.PolicyKind
    effective_from: Mapped[date] = mapped_column(Date)
    cycle_months: Mapped[int] = mapped_column(Integer, default=12)
    open_days: Mapped[int] = mapped_column(Integer, default=30)
    grace_days: Mapped[int] = mapped_column(Integer, default=30)
    early_credit_days: Mapped[int] = mapped_column(Integer, default=90)
    created_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)


class SuspensionStatus:
    """``open`` (the system found the pensioner overdue) → ``proposed`` (caseworker 1 signed) →
    ``approved`` (caseworker 2, a different person: payment suspended) → ``resumed`` (a later
    confirmation; months owed computed), or → ``lift_proposed`` → ``resumed`` when two caseworkers
    lift it (a fraud suspension found unfounded). ``cancelled``: a confirmation arrived before
    approval, or a caseworker declined with a note."""

    OPEN = "open"
    PROPOSED = "proposed"
    APPROVED = "approved"
    LIFT_PROPOSED = "lift_proposed"  # still suspended: one caseworker proposes to lift it, another must agree
    RESUMED = "resumed"
    CANCELLED = "cancelled"

    PENDING = (OPEN, PROPOSED)
    SUSPENDED = (APPROVED, LIFT_PROPOSED)
    ACTIVE = (OPEN, PROPOSED, APPROVED, LIFT_PROPOSED)


class SuspensionReason:
    OVERDUE = "overdue"  # no confirmation by the end of the grace period
    FRAUD = "fraud"  # a caseworker's "suspected fraud" decision on a review case


class Suspension(Base):
    __tablename__ = "payment_suspension"
    __table_args__ = (Index("ix_suspension_status_region", "status", "region_code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pensioner_id: Mapped[int] = mapped_column(ForeignKey("pensioner.id", ondelete="CASCADE"), index=True)
    region_code: Mapped[str] = mapped_column(String(6))
    reason: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=SuspensionStatus.OPEN)
    # overdue: the window missed; fraud: the review case decided
    window_closes: Mapped[date | None] = mapped_column(Date, default=None)
    grace_until: Mapped[date | None] = mapped_column(Date, default=None)
    review_case_id: Mapped[int | None] = mapped_column(ForeignKey("review_case.id"), default=None)
    opened_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)
    proposed_by: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"), default=None)
    proposed_at: Mapped[datetime | None] = mapped_column(TZDateTime(), default=None)
    proposal_note: Mapped[str | None] = mapped_column(Text, default=None)
    approved_by: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"), default=None)
    approved_at: Mapped[datetime | None] = mapped_column(TZDateTime(), default=None)
    effective_from: Mapped[date | None] = mapped_column(Date, default=None)  # first day without payment
    closed_at: Mapped[datetime | None] = mapped_column(TZDateTime(), default=None)
    close_note: Mapped[str | None] = mapped_column(Text, default=None)
    resumed_on: Mapped[date | None] = mapped_column(Date, default=None)
    resumed_by_confirmation_id: Mapped[int | None] = mapped_column(
        ForeignKey("survival_confirmation.id"), default=None)
    months_owed: Mapped[int | None] = mapped_column(Integer, default=None)
    exported_at: Mapped[datetime | None] = mapped_column(TZDateTime(), default=None)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ReminderStatus:
    PENDING = "pending"  # recorded before the send: a crash between the two leaves it to be retried
    SENT = "sent"  # the notifier accepted it
    EXPORTED = "exported"  # written to an SMS-gateway CSV
    FAILED = "failed"  # retries used up or refused for good; a rerun tries again

    DONE = (SENT, EXPORTED)


class Reminder(Base):
    """One reminder to one pensioner for one window and stage: the durable record of what was sent
    to whom (the unique key makes a rerun skip what went out). No phone number or text is stored:
    the text's sha256 and a masked number say what went where."""

    __tablename__ = "reminder"
    __table_args__ = (UniqueConstraint("pensioner_id", "window_closes", "stage", name="uq_reminder_window_stage"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pensioner_id: Mapped[int] = mapped_column(ForeignKey("pensioner.id", ondelete="CASCADE"), index=True)
    campaign: Mapped[str] = mapped_column(String(7))  # YYYY-MM
    window_closes: Mapped[date] = mapped_column(Date)
    stage: Mapped[str] = mapped_column(String(8))  # open | grace
    via: Mapped[str] = mapped_column(String(16))  # smtp | webhook | csv
    status: Mapped[str] = mapped_column(String(16), default=ReminderStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(255), default=None)
    to_masked: Mapped[str] = mapped_column(String(32), default="")
    text_sha256: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(TZDateTime(), default=None)
