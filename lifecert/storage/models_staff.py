"""Staff-side tables: console sessions, API tokens, login throttling, case notes and home-visit tasks.

Secrets are never stored: sessions and API tokens are kept as the sha256 of the
random value handed to the client.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from lifecert.storage.db import Base
from lifecert.storage.models import TZDateTime, utcnow


class StaffSession(Base):
    """One console login. ``token_hash`` = sha256 hex of the random session token in the cookie."""

    __tablename__ = "staff_session"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    client_addr: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(TZDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(TZDateTime(), default=None)


class ApiToken(Base):
    """A bearer token for the staff API. Only the sha256 of the token is stored."""

    __tablename__ = "staff_api_token"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(TZDateTime(), default=None)
    last_used_at: Mapped[datetime | None] = mapped_column(TZDateTime(), default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(TZDateTime(), default=None)


class LoginThrottle(Base):
    """Failed-login counter per (username, client address)."""

    __tablename__ = "staff_login_throttle"

    key: Mapped[str] = mapped_column(String(160), primary_key=True)  # "<username>|<client addr>"
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_start: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(TZDateTime(), default=None)


class CaseNote(Base):
    """Free-text note a staff member adds to a review case."""

    __tablename__ = "review_case_note"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("review_case.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"), default=None)
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)


class HomeVisitStatus:
    OPEN = "open"
    DONE = "done"
    REVIEW = "review"  # the on-site photo did not match: a caseworker decides
    CANCELLED = "cancelled"


class HomeVisitTask(Base):
    """A request for community staff to see the pensioner in person (address/region copied at creation)."""

    __tablename__ = "home_visit_task"
    __table_args__ = (Index("ix_visit_region_status", "region_code", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("review_case.id"), default=None, index=True)
    pensioner_id: Mapped[int] = mapped_column(ForeignKey("pensioner.id", ondelete="CASCADE"), index=True)
    region_code: Mapped[str] = mapped_column(String(6))
    address: Mapped[str] = mapped_column(String(255), default="")
    phone: Mapped[str] = mapped_column(String(32), default="")
    note: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default=HomeVisitStatus.OPEN)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"), default=None)
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(TZDateTime(), default=None)
    # closing on site (lifecert/services/review/visits.py): the community worker it is assigned to, the
    # on-site photo (photo store), its match against the templates, and the confirmation it made
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"), default=None, index=True)
    closed_by: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"), default=None)
    result: Mapped[str] = mapped_column(String(32), default="")  # "" | CONFIRMED | NO_FACE | LOW_MATCH ...
    photo_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    match_score: Mapped[float | None] = mapped_column(Float, default=None)
    confirmation_id: Mapped[int | None] = mapped_column(ForeignKey("survival_confirmation.id"), default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
