"""Certification policy: when a pensioner is next due, from the region's policy and the last
confirmation of any kind. Pure functions on plain data (dates in, dates out), no I/O.

Two kinds of policy (the Chinese practice since 2018 is the birthday window):

* ``fixed_cycle``: due ``cycle_months`` after the last confirmation (31 Jan + 1 month = 28/29 Feb);
  the window opens ``open_days`` before that date.
* ``birthday_window``: once a year, in a window that opens ``open_days`` before the first day of
  the birthday month and closes on its last day. The birth month comes from the GB 11643 ID
  number. A confirmation counts for the next window when it falls no earlier than
  ``early_credit_days`` before that window opens (a passive data-comparison hit a few weeks
  before the window spares the pensioner a second certification); so the next window due is the
  first one whose *credit start* (opening minus ``early_credit_days``) lies after the last
  confirmation.

Both add ``grace_days`` after the window closes: only after that is the pensioner *overdue*
(which opens a suspension proposal, lifecert.services.suspensions).

A pensioner never confirmed is due from their registration date (fixed cycle) or in the first
birthday window that has not closed by then (birthday window).

A policy change applies from its ``effective_from`` date to every later computation: the due
date is always recomputed from the policy in force and the last confirmation, never stored. A new
policy never makes anyone owe a window that closed before it took effect: the first window owed
under it closes on or after ``effective_from`` (a tighter fixed cycle makes those past it due on
that day, not overdue at once).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from functools import lru_cache

from lifecert.domain.errors import LifecertError


class PolicyKind(StrEnum):
    FIXED_CYCLE = "fixed_cycle"
    BIRTHDAY_WINDOW = "birthday_window"


class DueState(StrEnum):
    """Where a pensioner stands on a given day, under their region's policy."""

    NOT_YET = "not_yet"  # the next window has not opened
    OPEN = "open"  # inside the window: remind
    GRACE = "grace"  # window closed, grace running: last reminders
    OVERDUE = "overdue"  # grace over: a suspension proposal is due


class BadPolicy(LifecertError):
    """A policy with impossible numbers (never stored)."""


MAX_CYCLE_MONTHS = 60
MAX_DAYS = 366


@dataclass(frozen=True, slots=True)
class CertificationPolicy:
    """One region's rule. ``region_prefix``: "" (everywhere), or 2/4/6 leading digits of the
    region code (province / prefecture / county); the longest matching prefix wins."""

    region_prefix: str
    kind: PolicyKind
    effective_from: date
    cycle_months: int = 12  # fixed_cycle only
    open_days: int = 30  # window opens this many days before the due date / birthday month
    grace_days: int = 30  # after the window closes, before the pensioner is overdue
    early_credit_days: int = 90  # birthday_window only: see the module docstring

    def __post_init__(self) -> None:
        if self.region_prefix and (not self.region_prefix.isdigit() or len(self.region_prefix) not in (2, 4, 6)):
            raise BadPolicy("region prefix must be empty or 2, 4 or 6 digits", region_prefix=self.region_prefix)
        if not isinstance(self.kind, PolicyKind):
            raise BadPolicy("unknown policy kind", kind=str(self.kind))
        if not 1 <= self.cycle_months <= MAX_CYCLE_MONTHS:
            raise BadPolicy(f"cycle_months must be 1..{MAX_CYCLE_MONTHS}", cycle_months=self.cycle_months)
        for name in ("open_days", "grace_days", "early_credit_days"):
            v = getattr(self, name)
            if not 0 <= v <= MAX_DAYS:
                raise BadPolicy(f"{name} must be 0..{MAX_DAYS}", **{name: v})
        if self.kind is PolicyKind.BIRTHDAY_WINDOW and self.open_days + self.early_credit_days > 300:
            # windows (with their credit lead) must not overlap the previous year's
            raise BadPolicy("open_days + early_credit_days must be at most 300 for a yearly window")


@dataclass(frozen=True, slots=True)
class DueWindow:
    """The next certification a pensioner owes. ``opens`` ≤ ``closes`` < ``grace_until``...
    (``grace_until`` = ``closes`` when there is no grace). All dates inclusive."""

    opens: date
    closes: date
    grace_until: date

    def state_on(self, day: date) -> DueState:
        if day < self.opens:
            return DueState.NOT_YET
        if day <= self.closes:
            return DueState.OPEN
        if day <= self.grace_until:
            return DueState.GRACE
        return DueState.OVERDUE

    def overlaps(self, first: date, last: date) -> bool:
        """Does the window (opening to end of grace) touch the days first..last?"""
        return self.opens <= last and self.grace_until >= first


def add_months(d: date, months: int) -> date:
    """``d`` plus ``months`` calendar months, clamped to the month's last day (31 Jan + 1 = 28/29 Feb)."""
    y, m0 = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m0 + 1
    return date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


def month_bounds(year: int, month: int) -> tuple[date, date]:
    """First and last day of a calendar month."""
    return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])


def parse_month(text: str) -> tuple[int, int]:
    """``YYYY-MM`` → (year, month); raises :class:`BadPolicy` on anything else."""
    t = text.strip()
    if len(t) != 7 or not t.isascii() or t[4] != "-" or not (t[:4].isdigit() and t[5:].isdigit()):
        raise BadPolicy("month must be YYYY-MM", month=t[:16])
    y, m = int(t[:4]), int(t[5:])
    if not (1900 <= y <= 2200 and 1 <= m <= 12):
        raise BadPolicy("month out of range", month=t)
    return y, m


@lru_cache(maxsize=4096)
def birthday_window(policy: CertificationPolicy, birth_month: int, year: int) -> DueWindow:
    """The window of ``year`` for someone born in ``birth_month`` (1..12). Cached: a register of a
    million shares a few hundred (policy, month, year) windows."""
    first, last = month_bounds(year, birth_month)
    return DueWindow(first - timedelta(days=policy.open_days), last, last + timedelta(days=policy.grace_days))


def next_due(
    policy: CertificationPolicy,
    *,
    birth_month: int,
    last_confirmation: date | None,
    registered: date,
) -> DueWindow:
    """The next certification window owed under ``policy``.

    ``last_confirmation``: evidence date of the newest confirmation of any kind (face, data
    comparison, home visit, assisted, caseworker), or None; ``registered``: the day the pensioner
    entered the register (used only when never confirmed).
    """
    if not 1 <= birth_month <= 12:
        raise BadPolicy("birth month must be 1..12", birth_month=birth_month)
    if policy.kind is PolicyKind.FIXED_CYCLE:
        due = registered if last_confirmation is None else add_months(last_confirmation, policy.cycle_months)
        due = max(due, policy.effective_from)
        return DueWindow(due - timedelta(days=policy.open_days), due, due + timedelta(days=policy.grace_days))
    if last_confirmation is None:
        # the first window not yet closed on the registration day (or on the policy's first day)
        start = max(registered, policy.effective_from)
        w = birthday_window(policy, birth_month, start.year)
        return w if w.closes >= start else birthday_window(policy, birth_month, start.year + 1)
    # windows open at most open_days + early_credit_days (≤ 300) before their birthday month, so the
    # answer is this year's, next year's or the one after
    credit = timedelta(days=policy.early_credit_days)
    year = last_confirmation.year
    w = birthday_window(policy, birth_month, year)
    while w.opens - credit <= last_confirmation or w.closes < policy.effective_from:
        year += 1
        w = birthday_window(policy, birth_month, year)
    return w


def due_on(
    policy: CertificationPolicy,
    day: date,
    *,
    birth_month: int,
    last_confirmation: date | None,
    registered: date,
) -> tuple[DueWindow, DueState]:
    """``next_due`` and where the pensioner stands on ``day``."""
    w = next_due(policy, birth_month=birth_month, last_confirmation=last_confirmation, registered=registered)
    return w, w.state_on(day)


def policy_for(policies: list[CertificationPolicy], region_code: str, day: date) -> CertificationPolicy | None:
    """The policy in force on ``day`` for ``region_code``: the longest matching prefix, and among
    those the newest ``effective_from`` not after ``day``. None when nothing applies."""
    best: CertificationPolicy | None = None
    for p in policies:
        if p.effective_from > day or not region_code.startswith(p.region_prefix):
            continue
        if best is None or (len(p.region_prefix), p.effective_from) > (len(best.region_prefix), best.effective_from):
            best = p
    return best


def months_owed(suspended_from: date, resumed_on: date) -> int:
    """Monthly payments withheld that are owed back when a suspended pensioner is confirmed alive.

    The payment of the month the suspension took effect and of every later month up to (not
    including) the month of resumption, whose payment runs as usual. 0 when resumed in the same
    month (nothing was withheld yet) or when the dates are reversed.
    """
    n = (resumed_on.year - suspended_from.year) * 12 + resumed_on.month - suspended_from.month
    return max(n, 0)


class Channel(StrEnum):
    """How a due pensioner is expected to certify (and so how the campaign reaches them)."""

    SELF_SERVICE = "self_service"  # the phone page: an SMS reminder with the address
    DATA_COMPARISON = "data_comparison"  # passive: department data confirmed them last time
    ASSISTED = "assisted"  # a community worker's phone (帮助他人认证): no phone on file, or aged
    HOME_VISIT = "home_visit"  # no face template to match, or very old: a visit


ASSISTED_AGE = 80
HOME_VISIT_AGE = 90


def age_on(born: date, day: date) -> int:
    """Whole years; someone born on 29 Feb has their birthday on 1 Mar in common years."""
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def channel_for(*, has_template: bool, has_phone: bool, passive: bool, age: int,
                assisted_age: int = ASSISTED_AGE, home_visit_age: int = HOME_VISIT_AGE) -> Channel:
    """First rule that applies: no template or age ≥ ``home_visit_age`` → home visit (a selfie has
    nothing to match, or the pensioner is unlikely to manage a phone); last confirmed by data
    comparison → expected again passively; no phone or age ≥ ``assisted_age`` → assisted; else
    self-service."""
    if not has_template or age >= home_visit_age:
        return Channel.HOME_VISIT
    if passive:
        return Channel.DATA_COMPARISON
    if not has_phone or age >= assisted_age:
        return Channel.ASSISTED
    return Channel.SELF_SERVICE
