"""Tables of the department exchange API (issue 15 item 4): who may deliver extracts over HTTPS.

A department authenticates either with an API key (HMAC-signed requests; the shared secret is
kept sealed with the template key, AES-GCM, because the server must recompute signatures) or with
a client certificate (mutual TLS) whose subject or SHA-256 fingerprint is registered here. Keys
and certificates are rotated by adding a new credential and revoking the old one.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from lifecert.storage.db import Base
from lifecert.storage.models import TZDateTime, utcnow


class CredentialKind:
    API_KEY = "api_key"
    CERT_SUBJECT = "cert_subject"
    CERT_FINGERPRINT = "cert_fingerprint"


class DepartmentCredential(Base):
    """One way a department proves who it is. ``key_id`` is public (sent in a header); for an API
    key ``secret_sealed`` holds the HMAC secret sealed under aad ``xkey|<key_id>``; for a certificate
    ``match`` is the RFC 4514 subject or the lower-case hex SHA-256 of the DER certificate."""

    __tablename__ = "department_credential"
    __table_args__ = (
        UniqueConstraint("key_id", name="uq_department_credential_key_id"),
        Index("ix_department_credential_match", "kind", "match"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    department: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    key_id: Mapped[str] = mapped_column(String(48))
    match: Mapped[str] = mapped_column(String(512), default="")
    secret_sealed: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64), default="")
    last_used_at: Mapped[datetime | None] = mapped_column(TZDateTime(), default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(TZDateTime(), default=None)


class ExchangeReplay(Base):
    """Signatures already accepted within the replay window (a repeated signed request is refused)."""

    __tablename__ = "exchange_replay"

    signature: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 hex of the signature
    key_id: Mapped[str] = mapped_column(String(48))
    seen_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow, index=True)


class AssistedCertification(Base):
    """One assisted session started by a community worker for a pensioner in front of the camera:
    who helped, on which device, where (free text), and the session it started (audited separately)."""

    __tablename__ = "assisted_certification"
    __table_args__ = (Index("ix_assisted_worker_created", "worker_id", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("verification_session.id", ondelete="CASCADE"), unique=True)
    worker_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id"))
    pensioner_id: Mapped[int] = mapped_column(ForeignKey("pensioner.id", ondelete="CASCADE"), index=True)
    region_code: Mapped[str] = mapped_column(String(6), default="")
    device: Mapped[str] = mapped_column(String(128), default="")
    location: Mapped[str] = mapped_column(String(128), default="")
    client_addr: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)
