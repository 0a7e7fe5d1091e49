"""Tamper-evident audit trail.

Each row's hash covers its content and the previous row's hash, so editing or
deleting any row breaks the chain from that row on. ``verify_chain`` names the
first broken row. Writers serialise on the chain head (row lock on PostgreSQL,
the database write lock on SQLite), so concurrent writers cannot fork the chain.
"""

from __future__ import annotations

import getpass
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from lifecert.storage.models import AuditEvent

GENESIS = "0" * 64


def _canonical(ev: AuditEvent) -> bytes:
    at = ev.at if ev.at.tzinfo else ev.at.replace(tzinfo=UTC)
    body = {
        "at": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "actor": ev.actor,
        "role": ev.role,
        "action": ev.action,
        "object_type": ev.object_type,
        "object_id": ev.object_id,
        "client_addr": ev.client_addr,
        "detail": ev.detail,
        "prev_hash": ev.prev_hash,
    }
    return json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def row_hash(ev: AuditEvent) -> str:
    return hashlib.sha256(_canonical(ev)).hexdigest()


def cli_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no login name in some containers
        return "cli:unknown"


def record(
    session: Session,
    *,
    actor: str,
    role: str,
    action: str,
    object_type: str,
    object_id: str | int,
    client_addr: str = "",
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event in the caller's transaction (it commits with the caller's work)."""
    q = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1)
    if session.get_bind().dialect.name == "postgresql":
        q = q.with_for_update()
    last = session.scalars(q).first()
    ev = AuditEvent(
        at=datetime.now(UTC).replace(microsecond=(datetime.now(UTC).microsecond // 1000) * 1000),
        actor=actor,
        role=role,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        client_addr=client_addr,
        detail=detail or {},
        prev_hash=last.row_hash if last else GENESIS,
    )
    ev.row_hash = row_hash(ev)
    session.add(ev)
    session.flush()
    return ev


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    rows: int
    first_bad_id: int | None = None
    problem: str = ""


def verify_chain(session: Session, batch: int = 5000) -> ChainReport:
    prev = GENESIS
    n = 0
    last_id = 0
    while True:
        rows = session.scalars(
            select(AuditEvent).where(AuditEvent.id > last_id).order_by(AuditEvent.id).limit(batch)
        ).all()
        if not rows:
            return ChainReport(ok=True, rows=n)
        for ev in rows:
            if ev.prev_hash != prev:
                return ChainReport(False, n, ev.id, "previous-hash link broken (a row before it was deleted or edited)")
            if row_hash(ev) != ev.row_hash:
                return ChainReport(False, n, ev.id, "row content does not match its hash (row edited)")
            prev = ev.row_hash
            n += 1
            last_id = ev.id
