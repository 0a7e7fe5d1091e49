"""Department exchange API (issue 15 item 4): who is calling, and the import of an uploaded extract.

Two ways a department proves who it is, either one enough:

- **API key with signed requests.** Headers ``X-Lifecert-Key-Id``, ``X-Lifecert-Timestamp`` (unix
  seconds), ``X-Lifecert-Content-SHA256`` (hex sha256 of the body) and ``X-Lifecert-Signature``
  (hex HMAC-SHA256 with the key's secret over :func:`canonical_request`). The signature is checked
  BEFORE the body is read (the declared hash is signed), then the streamed body must hash to the
  declared value. A timestamp outside ``exchange.signature_window_s`` is refused, and an accepted
  signature is remembered for twice that window, so a captured request cannot be replayed.
  The secret is sealed (AES-GCM, template key): the server must recompute signatures, so a hash
  would not do; only its holder and this process ever see it in clear.
- **Client certificate (mutual TLS).** Either uvicorn verified it (``lifecert serve --ssl-ca-certs``,
  the DER reaches the app through the ASGI ``tls`` extension, see ``server/tls.py``), or a reverse
  proxy in ``trusted_proxies`` verified it and forwards it in headers (never believed from anyone
  else). Its RFC 4514 subject or its SHA-256 fingerprint must be registered for a department and
  not revoked.

The import itself is :func:`lifecert.services.datamatch.run_import`, the same code path as
``lifecert data import``: same validation against the department's mapping, same idempotence by the
file's sha256. The receipt names rows and reasons only, never what a row contained.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lifecert.config import Settings
from lifecert.domain.errors import AccessDenied, Conflict, ErrorCode, LifecertError, NotFound
from lifecert.services import audit
from lifecert.services.datamatch import run_import
from lifecert.services.datamatch.importer import ImportSummary, summary_of
from lifecert.services.datamatch.mapping import DEPARTMENT_CODE
from lifecert.storage.crypto import Cipher
from lifecert.storage.db import Database
from lifecert.storage.models_data import DataImport, DataReject
from lifecert.storage.models_exchange import CredentialKind, DepartmentCredential, ExchangeReplay

HEADER_KEY_ID = "x-lifecert-key-id"
HEADER_TIMESTAMP = "x-lifecert-timestamp"
HEADER_CONTENT_SHA256 = "x-lifecert-content-sha256"
HEADER_SIGNATURE = "x-lifecert-signature"
RECEIPT_REJECTS = 1000  # rejected rows listed by number in a receipt; beyond that only counts by reason
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class ExchangeAuthError(LifecertError):
    """The caller is not a known, current department credential (HTTP 401)."""

    code = ErrorCode.UNAUTHENTICATED


@dataclass(frozen=True)
class Caller:
    department: str
    credential_id: int
    key_id: str
    via: str  # "api_key" | "mtls" | "proxy"

    @property
    def actor(self) -> str:
        return f"dept:{self.department}"[:64]


@dataclass(frozen=True)
class NewKey:
    key_id: str
    secret: str  # base64url; shown once


def canonical_request(method: str, path: str, timestamp: str, content_sha256: str) -> bytes:
    """What an API key signs: ``METHOD\\npath?query\\ntimestamp\\nsha256-hex`` (UTF-8). The path
    includes the query string exactly as sent, so department and period are signed too."""
    return f"{method.upper()}\n{path}\n{timestamp}\n{content_sha256.lower()}".encode()


def sign(secret: str, method: str, path: str, timestamp: str, content_sha256: str) -> str:
    """The hex HMAC-SHA256 a department sends in ``X-Lifecert-Signature`` (what its client computes)."""
    key = base64.urlsafe_b64decode(secret + "=" * (-len(secret) % 4))
    return hmac.new(key, canonical_request(method, path, timestamp, content_sha256), hashlib.sha256).hexdigest()


def signed_headers(key_id: str, secret: str, method: str, path: str, body_sha256: str,
                   now: datetime | None = None) -> dict[str, str]:
    """Headers for one signed request (used by tests, the benchmark and as the reference client)."""
    ts = str(int((now or datetime.now(UTC)).timestamp()))
    return {
        "X-Lifecert-Key-Id": key_id,
        "X-Lifecert-Timestamp": ts,
        "X-Lifecert-Content-SHA256": body_sha256,
        "X-Lifecert-Signature": sign(secret, method, path, ts, body_sha256),
    }


def sealed_secret_aad(key_id: str) -> bytes:
    return f"xkey|{key_id}".encode()


def _check_department(department: str) -> str:
    if not DEPARTMENT_CODE.match(department):
        raise LifecertError(f"department {department!r} must be 2-64 characters of a-z, 0-9, '_' or '-'",
                            code=ErrorCode.BAD_REQUEST)
    return department


# -- credentials ------------------------------------------------------------------------------

def create_api_key(session: Session, cipher: Cipher, department: str, *, actor: str, role: str = "cli") -> NewKey:
    """A new API key for ``department`` (older keys stay valid until revoked: rotate = create, switch, revoke)."""
    _check_department(department)
    key_id = "xk_" + secrets.token_hex(10)
    raw = secrets.token_bytes(32)
    cred = DepartmentCredential(department=department, kind=CredentialKind.API_KEY, key_id=key_id, match="",
                                secret_sealed=cipher.seal(raw, sealed_secret_aad(key_id)), created_by=actor[:64])
    session.add(cred)
    session.flush()
    audit.record(session, actor=actor, role=role, action="exchange.key_created", object_type="department_credential",
                 object_id=cred.id, detail={"department": department, "key_id": key_id})
    return NewKey(key_id, base64.urlsafe_b64encode(raw).rstrip(b"=").decode())


def add_certificate(session: Session, department: str, *, subject: str | None = None,
                    fingerprint: str | None = None, actor: str, role: str = "cli") -> DepartmentCredential:
    """Map a client certificate to ``department`` by its RFC 4514 subject or its sha256 fingerprint."""
    _check_department(department)
    if bool(subject) == bool(fingerprint):
        raise LifecertError("give exactly one of a subject or a sha256 fingerprint", code=ErrorCode.BAD_REQUEST)
    if fingerprint is not None:
        match = fingerprint.replace(":", "").strip().lower()
        if not _HEX64.match(match):
            raise LifecertError("a fingerprint is the 64 hex digits of the certificate's sha256",
                                code=ErrorCode.BAD_REQUEST)
        kind = CredentialKind.CERT_FINGERPRINT
    else:
        match = normalize_subject(subject or "")
        if not match or len(match) > 512:
            raise LifecertError("the certificate subject is empty or too long", code=ErrorCode.BAD_REQUEST)
        kind = CredentialKind.CERT_SUBJECT
    taken = session.scalars(select(DepartmentCredential).where(
        DepartmentCredential.kind == kind, DepartmentCredential.match == match,
        DepartmentCredential.revoked_at.is_(None))).first()
    if taken is not None:
        raise Conflict(f"this certificate is already mapped to department {taken.department!r}")
    cred = DepartmentCredential(department=department, kind=kind, key_id="xc_" + secrets.token_hex(10),
                                match=match, created_by=actor[:64])
    session.add(cred)
    session.flush()
    audit.record(session, actor=actor, role=role, action="exchange.cert_added", object_type="department_credential",
                 object_id=cred.id, detail={"department": department, "kind": kind, "match": match})
    return cred


def revoke(session: Session, key_id: str, *, actor: str, role: str = "cli") -> DepartmentCredential:
    cred = session.scalars(select(DepartmentCredential).where(DepartmentCredential.key_id == key_id)).first()
    if cred is None:
        raise NotFound(f"no department credential {key_id!r}")
    if cred.revoked_at is None:
        cred.revoked_at = datetime.now(UTC)
        audit.record(session, actor=actor, role=role, action="exchange.credential_revoked",
                     object_type="department_credential", object_id=cred.id,
                     detail={"department": cred.department, "key_id": key_id})
    return cred


def list_credentials(session: Session) -> list[DepartmentCredential]:
    return list(session.scalars(select(DepartmentCredential).order_by(DepartmentCredential.department,
                                                                        DepartmentCredential.id)))


def normalize_subject(subject: str) -> str:
    """One spelling of a distinguished name: RFC 4514 parts trimmed, ``,`` joined, attribute names upper case.
    (nginx's ``$ssl_client_s_dn`` and ``cryptography``'s ``rfc4514_string`` agree on the order.)"""
    parts = [p.strip() for p in re.split(r"(?<!\\),", subject) if p.strip()]
    out = []
    for p in parts:
        name, sep, value = p.partition("=")
        out.append(f"{name.strip().upper()}{sep}{value.strip()}")
    return ",".join(out)


# -- authentication ---------------------------------------------------------------------------

def _refuse(why: str, **details: Any) -> ExchangeAuthError:
    return ExchangeAuthError(why, **details)


def _used(session: Session, cred: DepartmentCredential, via: str) -> Caller:
    if cred.revoked_at is not None:
        raise _refuse("this department credential was revoked")
    cred.last_used_at = datetime.now(UTC)
    return Caller(cred.department, cred.id, cred.key_id, via)


def authenticate_signature(session: Session, cipher: Cipher, settings: Settings, method: str, path: str,
                           headers: Mapping[str, str], now: datetime | None = None) -> tuple[Caller, str]:
    """The caller of a signed request and the body sha256 it declared (the body is not read yet).
    Stale timestamps, bad signatures, unknown or revoked keys are UNAUTHENTICATED; a signature
    seen before is NONCE_USED. The accepted signature is committed by the caller's transaction."""
    now = now or datetime.now(UTC)
    key_id = headers.get(HEADER_KEY_ID, "")[:48]
    ts = headers.get(HEADER_TIMESTAMP, "")
    declared = headers.get(HEADER_CONTENT_SHA256, "").strip().lower()
    sig = headers.get(HEADER_SIGNATURE, "").strip().lower()
    if not (key_id and ts and declared and sig):
        raise _refuse("signed request headers missing (X-Lifecert-Key-Id, -Timestamp, -Content-SHA256, -Signature)")
    if not ts.isdigit() or len(ts) > 12:
        raise _refuse("X-Lifecert-Timestamp must be unix seconds", reason="bad_timestamp")
    window = settings.exchange.signature_window_s
    skew = abs(now.timestamp() - int(ts))
    if skew > window:
        raise _refuse(f"the request timestamp is {int(skew)} s away from the server's clock (at most {window} s)",
                      reason="stale_timestamp", window_s=window)
    if not _HEX64.match(declared) or not _HEX64.match(sig):
        raise _refuse("content hash and signature must be 64 hex digits", reason="bad_signature")
    cred = session.scalars(select(DepartmentCredential).where(
        DepartmentCredential.key_id == key_id, DepartmentCredential.kind == CredentialKind.API_KEY)).first()
    expected = None
    if cred is not None and cred.secret_sealed is not None:
        secret = cipher.open(cred.secret_sealed, sealed_secret_aad(key_id))
        expected = hmac.new(secret, canonical_request(method, path, ts, declared), hashlib.sha256).hexdigest()
    # the same answer for an unknown key and a wrong signature: key ids are not probed this way
    if cred is None or expected is None or not hmac.compare_digest(expected, sig):
        raise _refuse("the request signature does not verify", reason="bad_signature")
    caller = _used(session, cred, "api_key")
    session.execute(delete(ExchangeReplay).where(ExchangeReplay.seen_at < now - timedelta(seconds=2 * window)))
    digest = hashlib.sha256(sig.encode()).hexdigest()
    if session.get(ExchangeReplay, digest) is not None:
        raise LifecertError("this signed request was already received (replay)", code=ErrorCode.NONCE_USED)
    session.add(ExchangeReplay(signature=digest, key_id=key_id, seen_at=now))
    try:
        session.flush()
    except IntegrityError:  # the same request racing itself
        raise LifecertError("this signed request was already received (replay)", code=ErrorCode.NONCE_USED) from None
    return caller, declared


def cert_identity(der: bytes) -> tuple[str, str]:
    """(normalized RFC 4514 subject, sha256 hex) of a DER certificate."""
    from cryptography import x509

    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise _refuse("the client certificate cannot be parsed") from exc
    return normalize_subject(cert.subject.rfc4514_string()), hashlib.sha256(der).hexdigest()


def pem_to_der(pem: str) -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    try:
        return x509.load_pem_x509_certificate(pem.encode()).public_bytes(Encoding.DER)
    except ValueError as exc:
        raise _refuse("the forwarded client certificate cannot be parsed") from exc


def authenticate_certificate(session: Session, *, subject: str | None, fingerprint: str | None,
                             via: str) -> Caller:
    """The department a verified client certificate is mapped to (by fingerprint first, then subject)."""
    conds = []
    if fingerprint:
        conds.append((CredentialKind.CERT_FINGERPRINT, fingerprint.lower()))
    if subject:
        conds.append((CredentialKind.CERT_SUBJECT, normalize_subject(subject)))
    revoked = False
    for kind, match in conds:
        rows = list(session.scalars(select(DepartmentCredential).where(
            DepartmentCredential.kind == kind, DepartmentCredential.match == match)))
        live = [c for c in rows if c.revoked_at is None]
        revoked = revoked or bool(rows and not live)
        if live:
            return _used(session, live[0], via)
    if revoked:
        raise _refuse("this client certificate was revoked")
    raise _refuse("this client certificate is not mapped to a department")


def proxy_certificate(headers: Mapping[str, str], settings: Settings) -> tuple[str | None, str | None]:
    """(subject, fingerprint) a trusted proxy forwarded, or (None, None) when it verified none. The caller
    checks that the peer IS a trusted proxy before calling this."""
    x = settings.exchange
    if headers.get(x.proxy_verify_header, "").strip().upper() != "SUCCESS":
        return None, None
    pem = headers.get(x.proxy_cert_header, "")
    if pem:
        subject, fp = cert_identity(pem_to_der(unquote(pem)))
        return subject, fp
    subject = headers.get(x.proxy_subject_header, "").strip()
    return (subject or None), None


# -- receiving --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Receipt:
    """What a department gets back: counts and rejected row numbers with reasons, nothing a row contained."""

    summary: ImportSummary
    rejects_by_reason: dict[str, int]
    rejects: list[tuple[int, str]] = field(default_factory=list)
    via: str = ""

    def as_dict(self) -> dict[str, Any]:
        s = self.summary
        return {
            "import_id": s.import_id, "department": s.department, "kind": s.kind, "period": s.period,
            "file_sha256": s.file_sha256, "file_format": s.file_format, "already_imported": s.already_imported,
            "due_date": s.due_date.isoformat(), "on_time": s.on_time,
            "rows_total": s.rows_total, "rows_valid": s.rows_valid, "rows_rejected": s.rows_rejected,
            "rows_duplicate": s.rows_duplicate, "rows_seen_before": s.rows_seen_before, "matches": s.matches,
            "outcomes": dict(s.outcomes), "suspensions": s.suspensions, "resumptions": s.resumptions,
            "confirmations": s.confirmations, "review_cases": s.review_cases,
            "rejects_by_reason": dict(self.rejects_by_reason),
            "rejects": [{"row": r, "reason": why} for r, why in self.rejects],
            "rejects_truncated": sum(self.rejects_by_reason.values()) > len(self.rejects),
        }


def receipt_for(session: Session, summary: ImportSummary, via: str = "") -> Receipt:
    by_reason = dict(session.execute(
        select(DataReject.reason, func.count()).where(DataReject.import_id == summary.import_id)
        .group_by(DataReject.reason)).all())
    rows = session.execute(select(DataReject.row_no, DataReject.reason)
                           .where(DataReject.import_id == summary.import_id)
                           .order_by(DataReject.row_no).limit(RECEIPT_REJECTS)).all()
    return Receipt(summary, {str(k): int(v) for k, v in by_reason.items()}, [(int(r), str(w)) for r, w in rows], via)


def safe_file_name(name: str, file_format_hint: bytes = b"") -> str:
    """A plain base name for the record: no directories, no control characters, at most 120 characters."""
    base = re.sub(r"[^\w.\-]", "_", Path(name.replace("\\", "/")).name)[:120].strip("._") or "extract"
    if file_format_hint.startswith(b"PK\x03\x04") and not base.lower().endswith((".xlsx", ".xlsm")):
        base += ".xlsx"
    return base


def import_extract(settings: Settings, db: Database, caller: Caller, path: Path, *, period: str | None,
                   kind: str | None = None, client_addr: str = "", actor: str | None = None,
                   role: str = "department") -> Receipt:
    """Import one received file for ``caller.department`` through the CLI's code path and return the receipt.
    The same bytes from the same department are a no-op with the first import's receipt; the same bytes
    already delivered by another department are a CONFLICT (never that department's figures)."""
    sha = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            sha.update(block)
    with db.session() as s:
        existing = s.scalars(select(DataImport).where(DataImport.file_sha256 == sha.hexdigest())).first()
        if existing is not None and existing.department != caller.department:
            raise Conflict("this file was already delivered under another department's name")
    try:
        summary = run_import(settings, db, caller.department, path, kind=kind, period=period,
                             actor=actor or caller.actor, role=role)
    except IntegrityError:  # the same file imported concurrently: the other request won; report its import
        with db.session() as s:
            imp = s.scalars(select(DataImport).where(DataImport.file_sha256 == sha.hexdigest())).first()
            if imp is None:
                raise
            summary = summary_of(s, imp, already_imported=True)
    with db.session() as s:
        audit.record(s, actor=actor or caller.actor, role=role, action="exchange.extract_received",
                     object_type="data_import", object_id=summary.import_id, client_addr=client_addr,
                     detail={"department": caller.department, "via": caller.via, "key_id": caller.key_id,
                             "file_sha256": summary.file_sha256, "rows": summary.rows_total,
                             "already_imported": summary.already_imported})
        return receipt_for(s, summary, caller.via)


def get_receipt(db: Database, caller: Caller, import_id: int) -> Receipt:
    """A department's earlier receipt (another department's import is NOT_FOUND)."""
    with db.session() as s:
        imp = s.get(DataImport, import_id)
        if imp is None or imp.department != caller.department:
            raise NotFound(f"no import {import_id} for this department")
        return receipt_for(s, summary_of(s, imp, already_imported=True), caller.via)


def stored_receipt(session: Session, import_id: int) -> Receipt:
    """The receipt of any import (staff view; no department check)."""
    imp = session.get(DataImport, import_id)
    if imp is None:
        raise NotFound(f"no import {import_id}")
    return receipt_for(session, summary_of(session, imp, already_imported=True))


def department_history(db: Database, caller: Caller, limit: int = 100) -> list[dict[str, Any]]:
    """The caller's own imports (never another department's), newest first: counts only."""
    with db.session() as s:
        return [{"import_id": i.id, "period": i.period, "received_at": i.received_at.isoformat(),
                 "file_sha256": i.file_sha256, "rows_total": i.rows_total, "rows_valid": i.rows_valid,
                 "rows_rejected": i.rows_rejected, "matches": i.matches, "on_time": i.on_time}
                for i in import_history(s, department=caller.department, limit=limit)]


def import_history(session: Session, *, department: str | None = None, limit: int = 200) -> list[DataImport]:
    q = select(DataImport).order_by(DataImport.received_at.desc(), DataImport.id.desc()).limit(limit)
    if department:
        q = q.where(DataImport.department == department)
    return list(session.scalars(q))


def check_department_matches(caller: Caller, department: str | None) -> None:
    if department and department != caller.department:
        raise AccessDenied(f"this credential belongs to department {caller.department!r}, not {department!r}")
