"""The agency's dashboards (issue 15 item 5): where the yearly certification cycle stands in each
region, and the yearly evaluation of each department's provision and use of data.

A *cycle* is a calendar year (the agency certifies each pensioner once a year; the region's
policy — lifecert.domain.policy — decides the window inside it). Counted per region code, for the
days of the cycle up to ``as_of`` (today, or the cycle's last day for a past year):

* ``register``: pensioners on the register (active or suspended) who were registered by the
  cycle's last day.
* ``due``: of those, the ones who owed a certification in the cycle: the window owed at the
  cycle's start (from their last confirmation before it, under the policy in force that day)
  closes within the cycle or already closed before it (carried over).
* ``certified`` and ``by_channel``: pensioners with a survival confirmation of any kind dated in
  the cycle (up to ``as_of``). ``by_channel`` counts them per confirmation method (self-service
  face, assisted, home visit, data comparison, caseworker review, or any later method); one
  person certified through two channels appears under both, ``certified`` counts people once.
* ``overdue``: active pensioners overdue on ``as_of`` (grace over) under the policy in force
  that day and their newest confirmation — the ones a suspension proposal is due for.
* ``suspended`` / ``resumed``: payment suspensions approved (the second sign-off) / resumed in
  the cycle (lifecert.services.suspensions, table ``payment_suspension``).

The department evaluation takes each department's provision from the data-comparison imports
(extracts expected and delivered, on time / late / missing, rows, rejects, duplicates:
lifecert.services.datamatch.reports) and its use — matches and outcomes (deaths acted on,
alive evidence recorded, conflicts sent to review) — from the stored records.

Region scope: staff bound to a region see only pensioners, suspensions and matched records in
it (the same prefix rule as the review queue); a requested region outside their scope shows
nothing. A department's provision figures are department-wide counts (no personal data). Every
view and export is audited by the caller's route through :func:`audit_view`.

Exports are CSV with every text cell through :func:`lifecert.domain.cells.spreadsheet_safe`.
"""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, case, func, or_, select, true
from sqlalchemy.orm import Session

from lifecert.config import Settings
from lifecert.domain.cells import spreadsheet_safe
from lifecert.domain.errors import ErrorCode, LifecertError
from lifecert.domain.policy import CertificationPolicy, DueState, DueWindow, next_due, policy_for
from lifecert.services import audit
from lifecert.services.datamatch.reports import REPORT_OUTCOMES, DepartmentYear, department_years
from lifecert.services.policy import EPOCH, policies_in_force
from lifecert.services.review.access import region_scope
from lifecert.services.staff import Principal
from lifecert.storage.models import ConfirmationMethod, Pensioner, PensionerStatus, SurvivalConfirmation
from lifecert.storage.models_agency import Suspension
from lifecert.storage.models_data import DataImport, DataRecord, MatchStatus
from lifecert.storage.queries import within_days

# Column order of the channels; a method not listed here (a later one) is shown after them.
CHANNELS: tuple[str, ...] = (
    ConfirmationMethod.FACE_SELF_SERVICE, "assisted", "home_visit", ConfirmationMethod.DATA_COMPARISON,
    ConfirmationMethod.CASEWORKER_REVIEW,
)
MIN_YEAR, MAX_YEAR = 2000, 2200


@dataclass(frozen=True)
class Cycle:
    """One yearly cycle: ``first``..``last`` (1 Jan..31 Dec), counted up to ``as_of``."""

    year: int
    first: date
    last: date
    as_of: date

    @classmethod
    def of(cls, year: int, today: date) -> Cycle:
        if not MIN_YEAR <= year <= MAX_YEAR:
            raise LifecertError(f"year must be {MIN_YEAR}..{MAX_YEAR}", code=ErrorCode.BAD_REQUEST, field="year")
        first, last = date(year, 1, 1), date(year, 12, 31)
        if first > today:
            raise LifecertError("that cycle has not begun", code=ErrorCode.BAD_REQUEST, field="year")
        return cls(year, first, last, min(today, last))


@dataclass
class RegionCycle:
    """One region's cycle (see the module docstring for each count)."""

    region_code: str
    register: int = 0
    due: int = 0
    certified: int = 0
    by_channel: Counter[str] = field(default_factory=Counter)
    overdue: int = 0
    suspended: int = 0
    resumed: int = 0

    def add(self, other: RegionCycle) -> None:
        self.register += other.register
        self.due += other.due
        self.certified += other.certified
        self.by_channel.update(other.by_channel)
        self.overdue += other.overdue
        self.suspended += other.suspended
        self.resumed += other.resumed


@dataclass(frozen=True)
class CycleBoard:
    cycle: Cycle
    scope: str  # the region prefix shown ("" = everywhere)
    regions: list[RegionCycle]
    total: RegionCycle
    channels: tuple[str, ...]  # CHANNELS plus any other method seen, in column order


def _prefix(who: Principal, region: str | None) -> str | None:
    """The region prefix to show: the request's, narrowed to the staff member's scope. None: the
    request lies outside the scope (nothing to show)."""
    scope = region_scope(who.region_code) or ""
    wanted = (region or "").strip()
    if wanted and (not wanted.isdigit() or len(wanted) > 6):
        raise LifecertError("region must be up to 6 digits", code=ErrorCode.BAD_REQUEST, field="region")
    if wanted.startswith(scope):
        return wanted
    return scope if scope.startswith(wanted) else None


def _in_prefix(column: Any, prefix: str) -> Any:
    """``column`` starts with ``prefix``. Region codes are digits, so that is the range
    [prefix, prefix + ":") (":" sorts right after "9"), which an index on the column serves
    (a LIKE with ESCAPE is a full scan on SQLite)."""
    if not prefix:
        return true()
    if prefix.isdigit():
        return and_(column >= prefix, column < prefix + ":")
    return column.startswith(prefix, autoescape=True)


def region_cycle(session: Session, who: Principal, year: int, *, region: str | None = None,
                 today: date | None = None, cycle_months: int | None = None) -> CycleBoard:
    """The cycle of ``year`` per region code within ``region`` (and the staff member's scope)."""
    cyc = Cycle.of(year, today or date.today())
    prefix = _prefix(who, region)
    rows: dict[str, RegionCycle] = {}
    if prefix is not None:
        policies = policies_in_force(session, cycle_months=cycle_months)
        _due_and_overdue(session, cyc, prefix, policies, rows)
        _certified(session, cyc, prefix, rows)
        _suspensions(session, cyc, prefix, rows)
    regions = [rows[k] for k in sorted(rows)]
    total = RegionCycle(region_code="")
    for r in regions:
        total.add(r)
    seen = [m for m in sorted(total.by_channel) if m not in CHANNELS]
    # outside the staff member's scope: the requested region, shown empty
    scope = prefix if prefix is not None else (region or "").strip()
    return CycleBoard(cyc, scope, regions, total, (*CHANNELS, *seen))


def _row(rows: dict[str, RegionCycle], region: str) -> RegionCycle:
    r = rows.get(region)
    if r is None:
        r = rows[region] = RegionCycle(region)
    return r


def _due_and_overdue(session: Session, cyc: Cycle, prefix: str, policies: list[CertificationPolicy],
                     rows: dict[str, RegionCycle]) -> None:
    """One streamed pass over the register with each pensioner's last evidence before the cycle and
    up to ``as_of``; the windows are computed by the policy rules (never stored)."""
    ev = SurvivalConfirmation.evidence_date
    per_person = (
        select(SurvivalConfirmation.pensioner_id.label("pid"),
               func.max(case((ev < cyc.first, ev))).label("before"),
               func.max(case((ev <= cyc.as_of, ev))).label("latest"))
        .where(SurvivalConfirmation.stands())
        .group_by(SurvivalConfirmation.pensioner_id)
    )
    if prefix:  # aggregate only the scope's confirmations, not the whole table
        per_person = per_person.join(Pensioner, Pensioner.id == SurvivalConfirmation.pensioner_id).where(
            _in_prefix(Pensioner.region_code, prefix))
    conf = per_person.subquery()
    # The registration day matters only to someone never confirmed (before or up to as_of).
    registered_if_needed = case((or_(conf.c.before.is_(None), conf.c.latest.is_(None)), Pensioner.created_at))
    q = (
        select(Pensioner.region_code, Pensioner.birth_date, registered_if_needed, Pensioner.status,
               conf.c.before, conf.c.latest)
        .outerjoin(conf, conf.c.pid == Pensioner.id)
        .where(Pensioner.status.in_((PensionerStatus.ACTIVE, PensionerStatus.SUSPENDED)),
               Pensioner.created_at < datetime.combine(cyc.last + timedelta(days=1), time.min, tzinfo=UTC),
               _in_prefix(Pensioner.region_code, prefix))
        .order_by(Pensioner.region_code, Pensioner.id)
    )
    at_start: dict[str, CertificationPolicy] = {}
    on_day: dict[str, CertificationPolicy] = {}
    fallback = policies[0]
    # The window depends only on (policy, birth month, last evidence, registration day when never
    # confirmed): a million pensioners share a few thousand such keys, so each is computed once.
    # (Keyed by the policy's id(): hashing the policy's fields for every row costs more than the rule.)
    windows: dict[tuple[int, int, date | None, date | None], DueWindow] = {}

    def window(pol: CertificationPolicy, month: int, last: date | None, registered: date) -> DueWindow:
        key = (id(pol), month, last, registered if last is None else None)
        w = windows.get(key)
        if w is None:
            w = windows[key] = next_due(pol, birth_month=month, last_confirmation=last, registered=registered)
        return w

    # Core rows, not ORM: the register can be a million rows.
    result = session.connection().execution_options(yield_per=20_000, stream_results=True).execute(q)
    for region, born, created, status, before, latest in result:
        registered = created.date() if created is not None else EPOCH
        r = _row(rows, region)
        r.register += 1
        p0 = at_start.get(region) or at_start.setdefault(region, policy_for(policies, region, cyc.first) or fallback)
        if window(p0, born.month, before, registered).closes <= cyc.last:
            r.due += 1
        if status == PensionerStatus.ACTIVE:
            p1 = on_day.get(region) or on_day.setdefault(region, policy_for(policies, region, cyc.as_of) or fallback)
            if window(p1, born.month, latest, registered).state_on(cyc.as_of) is DueState.OVERDUE:
                r.overdue += 1


def _certified(session: Session, cyc: Cycle, prefix: str, rows: dict[str, RegionCycle]) -> None:
    in_cycle = and_(SurvivalConfirmation.evidence_date >= cyc.first, SurvivalConfirmation.evidence_date <= cyc.as_of)
    base = (select(Pensioner.region_code).join(SurvivalConfirmation, SurvivalConfirmation.pensioner_id == Pensioner.id)
            .where(in_cycle, SurvivalConfirmation.stands(), _in_prefix(Pensioner.region_code, prefix)))
    people = func.count(func.distinct(Pensioner.id))
    for region, n in session.execute(base.add_columns(people).group_by(Pensioner.region_code)):
        _row(rows, region).certified = int(n)
    by_method = base.add_columns(SurvivalConfirmation.method, people).group_by(Pensioner.region_code,
                                                                               SurvivalConfirmation.method)
    for region, method, n in session.execute(by_method):
        _row(rows, region).by_channel[str(method)] = int(n)


def _suspensions(session: Session, cyc: Cycle, prefix: str, rows: dict[str, RegionCycle]) -> None:
    where = _in_prefix(Suspension.region_code, prefix)
    approved = (select(Suspension.region_code, func.count())
                .where(where, *within_days(Suspension.approved_at, cyc.first, cyc.as_of))
                .group_by(Suspension.region_code))
    for region, n in session.execute(approved):
        _row(rows, region).suspended = int(n)
    resumed = (select(Suspension.region_code, func.count())
               .where(where, Suspension.resumed_on >= cyc.first, Suspension.resumed_on <= cyc.as_of)
               .group_by(Suspension.region_code))
    for region, n in session.execute(resumed):
        _row(rows, region).resumed = int(n)


# --- department evaluation ----------------------------------------------------------------------


@dataclass(frozen=True)
class DepartmentEvaluation:
    """One department's year: provision (department-wide) and use (within the viewer's scope)."""

    provision: DepartmentYear
    matched: int  # records matched to a pensioner (in scope)
    outcomes: dict[str, int]  # outcome -> records (in scope)


@dataclass(frozen=True)
class EvaluationBoard:
    year: int
    scope: str
    departments: list[DepartmentEvaluation]
    outcomes: tuple[str, ...]


def department_evaluation(settings: Settings, session: Session, who: Principal, year: int, *,
                          today: date | None = None) -> EvaluationBoard:
    """Each department's provision and use of data in ``year`` (finished imports of that year's periods)."""
    Cycle.of(year, today or date.today())  # the same year check as the cycle board
    scope = region_scope(who.region_code) or ""
    provision = department_years(settings, session, year)
    q = (select(DataRecord.department, DataRecord.outcome, DataRecord.match, func.count())
         .join(DataImport, DataImport.id == DataRecord.import_id)
         .where(DataImport.period.like(f"{year:04d}-%"), DataImport.status == "finished")
         .group_by(DataRecord.department, DataRecord.outcome, DataRecord.match))
    if scope:
        q = q.join(Pensioner, Pensioner.id == DataRecord.pensioner_id).where(_in_prefix(Pensioner.region_code, scope))
    outcomes: dict[str, Counter[str]] = defaultdict(Counter)
    matched: Counter[str] = Counter()
    for dept, outcome, match, n in session.execute(q):
        outcomes[dept][str(outcome)] += int(n)
        if match == MatchStatus.MATCHED:
            matched[dept] += int(n)
    return EvaluationBoard(year, scope, [
        DepartmentEvaluation(p, matched[p.department], dict(outcomes[p.department])) for p in provision
    ], REPORT_OUTCOMES)


# --- exports and audit --------------------------------------------------------------------------


def _csv(header: list[str], rows: list[list[object]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header)
    for r in rows:
        w.writerow(["" if v is None else spreadsheet_safe(v) for v in r])
    return "\ufeff" + buf.getvalue()  # BOM: Excel/WPS open UTF-8 Chinese text correctly


def cycle_csv(board: CycleBoard) -> str:
    header = ["year", "as_of", "region_code", "register", "due", "certified",
              *(f"certified_{c}" for c in board.channels), "overdue", "suspended", "resumed"]
    rows = [[board.cycle.year, board.cycle.as_of.isoformat(), r.region_code, r.register, r.due, r.certified,
             *(r.by_channel.get(c, 0) for c in board.channels), r.overdue, r.suspended, r.resumed]
            for r in [*board.regions, board.total]]
    rows[-1][2] = f"{board.scope or '*'} (total)"
    return _csv(header, rows)


def evaluation_csv(board: EvaluationBoard) -> str:
    header = ["year", "department", "name", "kind", "extracts_expected", "extracts_delivered", "on_time", "late",
              "missing", "rows", "valid_rows", "rejected_rows", "duplicate_rows", "matched",
              *board.outcomes]
    rows: list[list[object]] = []
    for d in board.departments:
        p = d.provision
        rows.append([board.year, p.department, p.name, p.kind, p.expected, p.delivered, p.on_time, p.late,
                     p.missing, p.rows, p.valid_rows, p.rejected_rows, p.duplicate_rows, d.matched,
                     *(d.outcomes.get(o, 0) for o in board.outcomes)])
    return _csv(header, rows)


def audit_view(session: Session, who: Principal, action: str, *, year: int, scope: str, client_addr: str) -> None:
    """Record who looked at or exported which dashboard (``dashboard.view`` / ``dashboard.export``)."""
    audit.record(session, actor=who.username, role=who.role, action=action, object_type="dashboard",
                 object_id=f"{year}:{scope or '*'}", client_addr=client_addr,
                 detail={"year": year, "scope": scope, "staff_region": who.region_code or ""})
