"""Assisted certification (帮助他人认证, issue 15 item 3): a community worker, signed in on their own
phone, runs the SAME paced, liveness-checked capture for a pensioner in front of the camera.

The worker starts the session (:func:`start_assisted`) with the pensioner's ID number and name; the
worker's identity, device and location text are bound to it in ``assisted_certification`` and
audited; from there the capture is the public paced API unchanged (chunks, steps, decision). A
CONFIRMED assisted session records the confirmation with method ``assisted`` and the worker as
``created_by`` (:func:`assisted_by`, read by the verification service), and never refreshes a
template. A worker may start at most ``assisted.max_per_worker_per_day`` sessions per local day
(RATE_LIMITED beyond), may only help pensioners of their own region, and
:func:`worker_report` lists every worker's assisted sessions and outcomes, because fraud rings
hide here (one worker "certifying" many people, many failures, odd hours, confirmations that
caseworkers later withdrew as fraud).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lifecert.domain.cells import spreadsheet_safe
from lifecert.domain.errors import AccessDenied, ErrorCode, LifecertError, NotFound
from lifecert.domain.idnumber import parse_id_number
from lifecert.services import audit
from lifecert.services.staff import Principal, Role
from lifecert.storage.models import Pensioner, StaffUser, SurvivalConfirmation
from lifecert.storage.models_exchange import AssistedCertification
from lifecert.storage.models_verification import Decision, VerificationSession

if TYPE_CHECKING:
    from lifecert.services.verification.paced import PacedStart
    from lifecert.services.verification.service import VerificationService

MAX_TEXT = 128


@dataclass(frozen=True)
class Helper:
    worker_id: int
    username: str
    device: str
    location: str

    def evidence(self) -> dict[str, Any]:
        return {"assisted_by": self.username, "assisted_by_id": self.worker_id, "device": self.device,
                "location": self.location}


def assisted_by(db: Session, session_id: str) -> Helper | None:
    """The worker who started ``session_id`` as an assisted session, or None (self-service)."""
    row = db.execute(select(AssistedCertification, StaffUser.username)
                     .join(StaffUser, StaffUser.id == AssistedCertification.worker_id)
                     .where(AssistedCertification.session_id == session_id)).first()
    if row is None:
        return None
    a, username = row
    return Helper(a.worker_id, username, a.device, a.location)


def _clean(text: str, what: str) -> str:
    t = " ".join((text or "").split())
    if not t:
        raise LifecertError(f"the {what} is required for an assisted certification", code=ErrorCode.BAD_REQUEST)
    if any(ord(c) < 32 for c in t):
        raise LifecertError(f"the {what} has control characters", code=ErrorCode.BAD_REQUEST)
    return t[:MAX_TEXT]


def day_start(now: datetime, utc_offset_hours: int) -> datetime:
    """Midnight of ``now``'s local day (the agency's time zone), as an aware UTC time."""
    tz = timezone(timedelta(hours=utc_offset_hours))
    local = now.astimezone(tz)
    return datetime.combine(local.date(), time(0), tzinfo=tz).astimezone(UTC)


def used_today(db: Session, worker_id: int, now: datetime, utc_offset_hours: int) -> int:
    return db.scalar(select(func.count()).select_from(AssistedCertification).where(
        AssistedCertification.worker_id == worker_id,
        AssistedCertification.created_at >= day_start(now, utc_offset_hours))) or 0


def start_assisted(svc: VerificationService, who: Principal, id_number: str, name: str, *, device: str,
                   location: str, client_addr: str = "", now: datetime | None = None) -> PacedStart:
    """Start a paced session for the pensioner in front of the worker's camera (blocking: run in a pool)."""
    from lifecert.services.review.access import in_scope
    from lifecert.services.verification.messages import NOT_FOUND_MESSAGE

    if who.role != Role.COMMUNITY_WORKER:
        raise AccessDenied("assisted certification is for community workers")
    device, location = _clean(device, "device"), _clean(location, "location")
    ctx = svc.ctx
    limit = ctx.settings.assisted.max_per_worker_per_day
    offset = ctx.settings.assisted.utc_offset_hours
    at = now or datetime.now(UTC)
    idn = parse_id_number(id_number)
    with ctx.db.session() as db:
        # PostgreSQL: the worker's row stays locked until this worker's new session is recorded, so two
        # starts at once cannot both pass the count (SQLite has one writer and ignores FOR UPDATE).
        db.execute(select(StaffUser.id).where(StaffUser.id == who.user_id).with_for_update())
        n = used_today(db, who.user_id, at, offset)
        if n >= limit:
            _audit_own(ctx, who, "assisted.limit_reached", "staff_user", who.user_id, client_addr,
                       {"limit": limit, "device": device, "location": location})
            raise LifecertError(f"you have started {n} assisted certifications today (limit {limit}); "
                                "ask your supervisor", code=ErrorCode.RATE_LIMITED, limit=limit,
                                retry_after=int((day_start(at, offset) + timedelta(days=1) - at).total_seconds()) + 1)
        p = db.scalars(select(Pensioner).where(Pensioner.id_number == idn.value)).first()
        if p is not None and not in_scope(who, p.region_code):  # the same answer as an unknown person
            _audit_own(ctx, who, "assisted.denied_region", "pensioner", p.id, client_addr,
                       {"worker_region": who.region_code or ""})
            raise NotFound(NOT_FOUND_MESSAGE)
        start = svc.create_session(id_number, name, client_addr)  # always server-paced
        vs = db.get(VerificationSession, start.session_id)
        if vs is None:  # pragma: no cover - just created
            raise NotFound("no such verification session")
        pensioner = db.get(Pensioner, vs.pensioner_id)
        db.add(AssistedCertification(session_id=vs.id, worker_id=who.user_id, pensioner_id=vs.pensioner_id,
                                     region_code=pensioner.region_code if pensioner else "", device=device,
                                     location=location, client_addr=client_addr[:64], created_at=at))
        audit.record(db, actor=who.username, role=who.role, action="assisted.session_started",
                     object_type="verification_session", object_id=vs.id, client_addr=client_addr,
                     detail={"pensioner_id": vs.pensioner_id, "device": device, "location": location})
    return start


def _audit_own(ctx: Any, who: Principal, action: str, object_type: str, object_id: str | int, client_addr: str,
               detail: dict[str, Any]) -> None:
    """An audit event in its own transaction (the caller's is rolled back with the error it raises)."""
    with ctx.db.session() as db:
        audit.record(db, actor=who.username, role=who.role, action=action, object_type=object_type,
                     object_id=object_id, client_addr=client_addr, detail=detail)


# -- report -------------------------------------------------------------------------------------

REPORT_COLUMNS = ("worker", "worker_region", "started", "confirmed", "withdrawn", "retry", "review", "undecided",
                  "distinct_pensioners", "regions_helped", "first", "last", "night_sessions", "flags")
# What makes a worker's line worth a second look (flags, for people to read; nothing is blocked by them)
FLAG_MIN_SESSIONS = 5  # rates are judged from this many sessions on
FLAG_FAILURE_RATE = 0.5  # retry + review over started
FLAG_REPEAT_RATIO = 2.0  # sessions per distinct pensioner: the same people "certified" again and again
FLAG_MANY_REGIONS = 3  # districts helped beyond the worker's own patch


def worker_flags(r: dict[str, Any]) -> list[str]:
    """Plain rules over one worker's counts (see the FLAG_* constants)."""
    out = []
    if int(r.get("withdrawn", 0)) > 0:  # each took two caseworkers' signatures: always worth a look
        out.append("withdrawn_confirmations")
    n = int(r["started"])
    if n >= FLAG_MIN_SESSIONS and (int(r["retry"]) + int(r["review"])) / n >= FLAG_FAILURE_RATE:
        out.append("high_failure_rate")
    if n >= FLAG_MIN_SESSIONS and n / max(1, int(r["distinct_pensioners"])) >= FLAG_REPEAT_RATIO:
        out.append("repeated_pensioners")
    if int(r["regions_helped"]) > FLAG_MANY_REGIONS:
        out.append("many_regions")
    if int(r["night_sessions"]) > 0:
        out.append("night_sessions")
    return out


def worker_report(db: Session, start: date, end: date, *, region_scope: str | None = None) -> list[dict[str, Any]]:
    """Per worker over [start, end] (UTC dates): sessions started and their outcomes. ``withdrawn``: of the
    ``confirmed`` ones, how many confirmations have been withdrawn since (to this day: a fraud suspension
    signed by two caseworkers). ``night_sessions`` are those started between 22:00 and 06:00 UTC+8. No
    pensioner identities: counts only."""
    lo = datetime.combine(start, time(0), tzinfo=UTC)
    hi = datetime.combine(end + timedelta(days=1), time(0), tzinfo=UTC)
    q = (select(StaffUser.username, StaffUser.region_code, AssistedCertification.pensioner_id,
                AssistedCertification.region_code, AssistedCertification.created_at, VerificationSession.decision,
                SurvivalConfirmation.withdrawn_at)
         .join(StaffUser, StaffUser.id == AssistedCertification.worker_id)
         .join(VerificationSession, VerificationSession.id == AssistedCertification.session_id)
         .outerjoin(SurvivalConfirmation, SurvivalConfirmation.id == VerificationSession.confirmation_id)
         .where(AssistedCertification.created_at >= lo, AssistedCertification.created_at < hi))
    if region_scope:
        q = q.where(AssistedCertification.region_code.startswith(region_scope, autoescape=True))
    per: dict[str, dict[str, Any]] = {}
    cst = timezone(timedelta(hours=8))
    for username, wregion, pid, region, created, decision, withdrawn_at in db.execute(
            q.order_by(AssistedCertification.id)):
        r = per.setdefault(username, {"worker": username, "worker_region": wregion or "", "started": 0,
                                      "confirmed": 0, "withdrawn": 0, "retry": 0, "review": 0, "undecided": 0,
                                      "_people": set(), "_regions": set(), "first": None, "last": None,
                                      "night_sessions": 0})
        r["started"] += 1
        key = {Decision.CONFIRMED: "confirmed", Decision.RETRY: "retry", Decision.REVIEW: "review"}.get(
            decision or "", "undecided")
        r[key] += 1
        if decision == Decision.CONFIRMED and withdrawn_at is not None:
            r["withdrawn"] += 1
        r["_people"].add(pid)
        r["_regions"].add(region)
        c = created if created.tzinfo else created.replace(tzinfo=UTC)
        r["first"] = min(r["first"] or c, c)
        r["last"] = max(r["last"] or c, c)
        if not 6 <= c.astimezone(cst).hour < 22:
            r["night_sessions"] += 1
    out = []
    for r in sorted(per.values(), key=lambda x: (-x["started"], x["worker"])):
        r["distinct_pensioners"] = len(r.pop("_people"))
        r["regions_helped"] = len(r.pop("_regions"))
        r["first"] = r["first"].isoformat(timespec="seconds") if r["first"] else ""
        r["last"] = r["last"].isoformat(timespec="seconds") if r["last"] else ""
        r["flags"] = " ".join(worker_flags(r))
        out.append(r)
    return out


def report_csv(rows: list[dict[str, Any]]) -> Iterator[str]:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(REPORT_COLUMNS)
    for r in rows:
        w.writerow([spreadsheet_safe(r[c]) for c in REPORT_COLUMNS])
    yield buf.getvalue()


def audited_report(db: Session, who: Principal, start: date, end: date, *,
                   client_addr: str = "") -> list[dict[str, Any]]:
    from lifecert.services.review.access import region_scope

    if who.role not in (Role.CASEWORKER, Role.ADMIN, Role.AUDITOR):
        raise AccessDenied("the assisted-certification report is for caseworkers, auditors and admins")
    rows = worker_report(db, start, end, region_scope=region_scope(who.region_code))
    audit.record(db, actor=who.username, role=who.role, action="assisted.report", object_type="report",
                 object_id="assisted_by_worker", client_addr=client_addr,
                 detail={"from": start.isoformat(), "to": end.isoformat(), "workers": len(rows)})
    return rows
