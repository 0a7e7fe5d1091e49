"""Tamper-evident audit trail.

Each row's hash covers its content and the previous row's hash, so editing or
deleting any row breaks the chain from that row on. ``verify_chain`` names the
first broken row. The hash is an HMAC-SHA256 under its own key (``LIFECERT_AUDIT_KEY``,
given to sessions by :class:`lifecert.storage.db.Database`): someone who can write the
database but does not hold the key cannot recompute the chain after an edit. Rows from
before migration 0005 keep their plain sha256 (``chain_v`` 1) and are anchored by the first
keyed row. Truncating the newest rows is found with signed checkpoints
(:mod:`lifecert.services.audit_anchor`). Writers serialise on the chain head (row lock on PostgreSQL,
the database write lock on SQLite), so concurrent writers cannot fork the chain.
"""

from __future__ import annotations

import csv
import getpass
import hashlib
import hmac
import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, func, select, text
from sqlalchemy.orm import Session

from lifecert.domain.cells import spreadsheet_safe
from lifecert.domain.errors import ErrorCode, LifecertError
from lifecert.storage.models import AuditEvent
from lifecert.storage.queries import within_days

if TYPE_CHECKING:
    from lifecert.storage.db import Database

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


KEYED = 2
_MAC_DOMAIN = b"lifecert-audit-v2|"


def row_hash(ev: AuditEvent, key: bytes | None = None) -> str:
    """The row's chain hash: HMAC-SHA256 under ``key`` for keyed rows, plain sha256 for rows of chain_v 1."""
    if (ev.chain_v or 1) >= KEYED:
        if not key:
            raise LifecertError("the audit key is not configured (LIFECERT_AUDIT_KEY)", code=ErrorCode.CONFIG_ERROR)
        return hmac.new(key, _MAC_DOMAIN + _canonical(ev), hashlib.sha256).hexdigest()
    return hashlib.sha256(_canonical(ev)).hexdigest()


def audit_key_of(session: Session) -> bytes:
    key = session.info.get("audit_key")
    if not key:
        raise LifecertError("this database session has no audit key; open it through AppContext/Database(audit_key=)",
                            code=ErrorCode.CONFIG_ERROR)
    return bytes(key)


def cli_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no login name in some containers
        return "cli:unknown"


def _lock_chain_head(session: Session) -> None:
    """Serialise writers so that no two events link to the same predecessor.

    PostgreSQL: a transaction-scoped advisory lock. SQLite: take the database write lock now
    (a no-op UPDATE opens the write transaction), so the head we read below cannot change before
    our commit; without it two writers could both read the same head and fork the chain.
    """
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
    elif dialect == "sqlite":
        session.execute(text("UPDATE audit_event SET id = id WHERE id = (SELECT max(id) FROM audit_event)"))


_PG_LOCK_KEY = 0x11FEC3A7


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
    _lock_chain_head(session)
    q = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1)
    last = session.scalars(q).first()
    now = datetime.now(UTC)
    ev = AuditEvent(
        at=now.replace(microsecond=(now.microsecond // 1000) * 1000),
        actor=actor[:64],
        role=role[:32],
        action=action[:64],
        object_type=object_type[:32],
        object_id=str(object_id)[:64],
        client_addr=client_addr[:64],
        detail=detail or {},
        prev_hash=last.row_hash if last else GENESIS,
        chain_v=KEYED,
    )
    ev.row_hash = row_hash(ev, audit_key_of(session))
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
    key = audit_key_of(session)
    prev = GENESIS
    n = 0
    last_id = 0
    keyed_seen = False
    while True:
        rows = session.scalars(
            select(AuditEvent).where(AuditEvent.id > last_id).order_by(AuditEvent.id).limit(batch)
        ).all()
        if not rows:
            return ChainReport(ok=True, rows=n)
        for ev in rows:
            if ev.prev_hash != prev:
                return ChainReport(False, n, ev.id, "previous-hash link broken (a row before it was deleted or edited)")
            if (ev.chain_v or 1) < KEYED and keyed_seen:
                return ChainReport(False, n, ev.id,
                                   "unkeyed row after keyed rows (the tail was re-hashed without the key)")
            keyed_seen = keyed_seen or (ev.chain_v or 1) >= KEYED
            if not hmac.compare_digest(row_hash(ev, key), ev.row_hash):
                return ChainReport(False, n, ev.id, "row content does not match its hash (row edited)")
            prev = ev.row_hash
            n += 1
            last_id = ev.id


# --- auditor queries and export -----------------------------------------------------------------


@dataclass(frozen=True)
class AuditFilter:
    """Auditor query. Dates are inclusive calendar days in UTC; text fields match exactly except
    ``action`` which also accepts a prefix ending in '.' (e.g. ``case.``)."""

    actor: str | None = None
    role: str | None = None
    action: str | None = None
    object_type: str | None = None
    object_id: str | None = None
    client_addr: str | None = None
    date_from: date | None = None
    date_to: date | None = None


def _filtered(q: Select[Any], f: AuditFilter) -> Select[Any]:
    if f.actor:
        q = q.where(AuditEvent.actor == f.actor)
    if f.role:
        q = q.where(AuditEvent.role == f.role)
    if f.action:
        q = q.where(AuditEvent.action.startswith(f.action) if f.action.endswith(".") else AuditEvent.action == f.action)
    if f.object_type:
        q = q.where(AuditEvent.object_type == f.object_type)
    if f.object_id:
        q = q.where(AuditEvent.object_id == f.object_id)
    if f.client_addr:
        q = q.where(AuditEvent.client_addr == f.client_addr)
    return q.where(*within_days(AuditEvent.at, f.date_from, f.date_to))


def query_events(
    session: Session, f: AuditFilter | None = None, *, limit: int = 200, offset: int = 0
) -> list[AuditEvent]:
    """Newest first."""
    q = _filtered(select(AuditEvent), f or AuditFilter()).order_by(AuditEvent.id.desc())
    return list(session.scalars(q.limit(limit).offset(offset)))


def count_events(session: Session, f: AuditFilter | None = None) -> int:
    return int(session.scalar(_filtered(select(func.count(AuditEvent.id)), f or AuditFilter())) or 0)


def distinct_actions(session: Session) -> list[str]:
    return list(session.scalars(select(AuditEvent.action).distinct().order_by(AuditEvent.action)))


CSV_COLUMNS = ("id", "at", "actor", "role", "action", "object_type", "object_id", "client_addr", "detail",
               "prev_hash", "row_hash")


def _csv_safe(value: str) -> str:
    return str(spreadsheet_safe(value))  # the one shared cell sanitiser (formula injection)


def iter_csv(session: Session, f: AuditFilter | None = None, batch: int = 2000) -> Iterator[str]:
    """CSV lines (header first) in chain order, each ending in CRLF; hashes included so an export
    can be re-verified offline."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(CSV_COLUMNS)
    yield buf.getvalue()
    last_id = 0
    base = _filtered(select(AuditEvent), f or AuditFilter())
    while True:
        rows = session.scalars(base.where(AuditEvent.id > last_id).order_by(AuditEvent.id).limit(batch)).all()
        if not rows:
            return
        for ev in rows:
            buf.seek(0)
            buf.truncate()
            at = ev.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            detail = json.dumps(ev.detail, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
            w.writerow([ev.id, at, *(_csv_safe(x) for x in (ev.actor, ev.role, ev.action, ev.object_type,
                                                            ev.object_id, ev.client_addr, detail)),
                        ev.prev_hash, ev.row_hash])
            yield buf.getvalue()
            last_id = ev.id


def export_csv(session: Session, out: Path, f: AuditFilter | None = None) -> int:
    """Write the (filtered) trail to ``out`` as UTF-8 CSV with a BOM (opens cleanly in Excel/WPS).
    Returns the number of events written."""
    n = -1
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # owner-only: names and addresses
    with os.fdopen(fd, "w", encoding="utf-8-sig", newline="") as fh:
        for line in iter_csv(session, f):
            fh.write(line)
            n += 1
    return n


def audited_export(db: Database, f: AuditFilter, *, actor: str, role: str, client_addr: str = "") -> Iterator[str]:
    """CSV lines of the filtered trail (UTF-8 BOM first) for a download. The export is itself
    audited in its own committed transaction before any row is produced, so a download that is
    cut off half-way is still on record."""
    with db.session() as s:
        record(s, actor=actor, role=role, action="audit.export", object_type="audit_event", object_id="*",
               client_addr=client_addr,
               detail={"filter": {k: str(v) for k, v in f.__dict__.items() if v}, "rows": count_events(s, f)})

    def lines() -> Iterator[str]:
        yield "\ufeff"
        with db.session() as s:
            yield from iter_csv(s, f)

    return lines()
