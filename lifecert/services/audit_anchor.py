"""Signed checkpoints of the audit chain (issue 11 M7).

The keyed chain (:mod:`lifecert.services.audit`) catches edits, but not deleting the newest rows,
and not a tail re-hashed by someone who holds the audit key. A checkpoint records the chain head
(id and hash), the number of rows up to it and the time, signed with Ed25519. Kept outside the
database (an append-only file on another host, a WORM bucket, syslog: ``-`` writes to stdout for
piping), it lets ``lifecert audit verify --checkpoint F`` prove that every checkpointed row is still
there, unchanged.

Checkpoint line (JSON): ``{"v": 1, "head_id", "head_hash", "count", "at", "key_id", "sig"}``;
``sig`` is base64 Ed25519 over the canonical JSON of the other fields; ``key_id`` is the first 16
hex digits of sha256 of the raw public key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lifecert.config import Settings
from lifecert.domain.errors import ErrorCode, LifecertError
from lifecert.services.audit import ChainReport, verify_chain
from lifecert.storage.models import AuditEvent

VERSION = 1


def _config_error(msg: str) -> LifecertError:
    return LifecertError(msg, code=ErrorCode.CONFIG_ERROR)


def _b64(value: str, what: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise _config_error(f"{what} is not base64") from None


def signing_key(settings: Settings) -> Ed25519PrivateKey:
    if settings.audit_signing_key is None:
        raise _config_error("set LIFECERT_AUDIT_SIGNING_KEY (create one with: lifecert audit keygen)")
    seed = _b64(settings.audit_signing_key.get_secret_value(), "LIFECERT_AUDIT_SIGNING_KEY")
    if len(seed) != 32:
        raise _config_error("LIFECERT_AUDIT_SIGNING_KEY must be base64 of a 32-byte Ed25519 seed")
    return Ed25519PrivateKey.from_private_bytes(seed)


def verify_key(settings: Settings) -> Ed25519PublicKey:
    if settings.audit_verify_key:
        raw = _b64(settings.audit_verify_key, "LIFECERT_AUDIT_VERIFY_KEY")
        if len(raw) != 32:
            raise _config_error("LIFECERT_AUDIT_VERIFY_KEY must be base64 of a 32-byte Ed25519 public key")
        return Ed25519PublicKey.from_public_bytes(raw)
    if settings.audit_signing_key is not None:
        return signing_key(settings).public_key()
    raise _config_error("set LIFECERT_AUDIT_VERIFY_KEY (the public key printed by lifecert audit keygen)")


def _raw_public(pub: Ed25519PublicKey) -> bytes:
    return pub.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id(pub: Ed25519PublicKey) -> str:
    return hashlib.sha256(_raw_public(pub)).hexdigest()[:16]


def new_keypair() -> tuple[str, str]:
    """(base64 seed for LIFECERT_AUDIT_SIGNING_KEY, base64 public key for LIFECERT_AUDIT_VERIFY_KEY)."""
    seed = os.urandom(32)
    pub = Ed25519PrivateKey.from_private_bytes(seed).public_key()
    return base64.b64encode(seed).decode(), base64.b64encode(_raw_public(pub)).decode()


def _signed_part(cp: dict[str, Any]) -> bytes:
    body = {k: cp[k] for k in ("v", "head_id", "head_hash", "count", "at", "key_id")}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def make_checkpoint(session: Session, key: Ed25519PrivateKey, *, now: datetime | None = None) -> dict[str, Any]:
    """Sign the current chain head. Refuses when the chain itself does not verify (never anchor a forgery)."""
    rep = verify_chain(session)
    if not rep.ok:
        raise LifecertError(f"the audit chain is broken at row {rep.first_bad_id} ({rep.problem}); not signing it",
                            code=ErrorCode.CONFLICT)
    head = session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1)).first()
    cp: dict[str, Any] = {
        "v": VERSION,
        "head_id": head.id if head else 0,
        "head_hash": head.row_hash if head else "0" * 64,
        "count": rep.rows,
        "at": (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "key_id": key_id(key.public_key()),
    }
    cp["sig"] = base64.b64encode(key.sign(_signed_part(cp))).decode()
    return cp


def write_checkpoint(cp: dict[str, Any], sink: str) -> None:
    """Append one JSON line to ``sink`` (a file, created 0600) or write it to stdout (``-``)."""
    line = json.dumps(cp, sort_keys=True) + "\n"
    if sink == "-":
        sys.stdout.write(line)
        sys.stdout.flush()
        return
    fd = os.open(sink, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as fh:
        fh.write(line)
        fh.flush()
        os.fsync(fh.fileno())


def read_checkpoints(path: Path) -> list[dict[str, Any]]:
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            cp = json.loads(line)
            if not isinstance(cp, dict) or cp.get("v") != VERSION:
                raise ValueError("not a checkpoint")
            out.append(cp)
        except ValueError:
            raise LifecertError(f"{path.name} line {n} is not a lifecert checkpoint",
                                code=ErrorCode.BAD_REQUEST) from None
    if not out:
        raise LifecertError(f"{path.name} holds no checkpoint", code=ErrorCode.BAD_REQUEST)
    return out


@dataclass(frozen=True)
class AnchorReport:
    chain: ChainReport
    checkpoints: int
    ok: bool
    problem: str = ""
    bad_checkpoint_at: str | None = None


def verify_against(session: Session, checkpoints: list[dict[str, Any]], pub: Ed25519PublicKey) -> AnchorReport:
    """Verify the chain, then every checkpoint: its signature, that its head row still exists with the
    same hash, and that exactly ``count`` rows lead up to it (rows deleted or re-hashed → refused)."""
    chain = verify_chain(session)
    if not chain.ok:
        return AnchorReport(chain, 0, False, f"chain broken at row {chain.first_bad_id}: {chain.problem}")
    for i, cp in enumerate(checkpoints):
        at = str(cp.get("at"))
        try:
            sig = base64.b64decode(str(cp["sig"]), validate=True)
            pub.verify(sig, _signed_part(cp))
        except (KeyError, binascii.Error, ValueError, InvalidSignature):
            return AnchorReport(chain, i, False, "checkpoint signature invalid (forged or signed with another key)", at)
        head_id, head_hash, count = int(cp["head_id"]), str(cp["head_hash"]), int(cp["count"])
        if head_id == 0:
            continue
        row = session.get(AuditEvent, head_id)
        if row is None:
            return AnchorReport(chain, i, False,
                                f"row {head_id} signed at {at} is gone: the trail was truncated or rows deleted", at)
        if row.row_hash != head_hash:
            return AnchorReport(chain, i, False,
                                f"row {head_id} has another hash than signed at {at}: the chain was re-hashed", at)
        n = int(session.scalar(select(func.count(AuditEvent.id)).where(AuditEvent.id <= head_id)) or 0)
        if n != count:
            return AnchorReport(chain, i, False, f"{n} rows up to row {head_id}, {count} signed at {at}", at)
    return AnchorReport(chain, len(checkpoints), True)
