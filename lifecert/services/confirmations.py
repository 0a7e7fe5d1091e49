"""Survival confirmations: record one, and ask who is confirmed, due soon or overdue.

A confirmation is valid from its evidence date for ``settings.confirmation_cycle_months``
months. A pensioner's standing is decided by the newest ``valid_until`` of all their
confirmations (any method) that stand: a WITHDRAWN confirmation (:func:`withdraw_confirmation`,
e.g. a spot check that found fraud) stays on record and counts for nothing
(``SurvivalConfirmation.stands()`` in every query of standing). Only ACTIVE pensioners are listed as due or overdue;
a pensioner who was never confirmed is listed as overdue with status ``never_confirmed``.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lifecert.services.withdrawal import withdraw_confirmation as withdraw_confirmation  # its home before
from lifecert.storage.models import Pensioner, PensionerStatus, SurvivalConfirmation


def add_months(d: date, months: int) -> date:
    """``d`` plus ``months`` calendar months, clamped to the month's last day (31 Jan + 1 = 28/29 Feb)."""
    y, m0 = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m0 + 1
    return date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


def _cycle_months() -> int:
    from lifecert.config import get_settings

    return get_settings().confirmation_cycle_months


def record_confirmation(
    session: Session,
    pensioner: Pensioner,
    method: str,
    evidence_date: date,
    source: str,
    evidence: dict[str, Any],
    created_by: int | None = None,
    *,
    cycle_months: int | None = None,
) -> SurvivalConfirmation:
    """Add a confirmation in the caller's transaction; valid until evidence_date + cycle.

    ``method`` is a :class:`lifecert.storage.models.ConfirmationMethod` value; ``source``
    names where it came from (verification session id, department, reviewer);
    ``evidence`` is JSON (scores, model key, file names …). ``cycle_months`` defaults
    to ``settings.confirmation_cycle_months``.
    """
    months = cycle_months if cycle_months is not None else _cycle_months()
    conf = SurvivalConfirmation(
        pensioner_id=pensioner.id,
        method=method,
        evidence_date=evidence_date,
        valid_until=add_months(evidence_date, months),
        source=source[:128],
        evidence=evidence,
        created_by=created_by,
    )
    session.add(conf)
    session.flush()
    # a pending suspension for being overdue is cancelled, an approved one resumed (months owed)
    from lifecert.services.suspensions import on_confirmation

    on_confirmation(session, pensioner.id, evidence_date, conf.id, today=max(evidence_date, date.today()))
    return conf


@dataclass(frozen=True)
class Standing:
    """Where one pensioner stands. ``state``: valid | due | overdue | never_confirmed."""

    pensioner_id: int
    id_number: str
    name: str
    pensioner_status: str
    state: str
    last_method: str | None
    last_evidence_date: date | None
    valid_until: date | None
    days_left: int | None


def latest_confirmation(session: Session, pensioner_id: int) -> SurvivalConfirmation | None:
    return session.scalars(
        select(SurvivalConfirmation)
        .where(SurvivalConfirmation.pensioner_id == pensioner_id, SurvivalConfirmation.stands())
        .order_by(SurvivalConfirmation.valid_until.desc(), SurvivalConfirmation.id.desc())
        .limit(1)
    ).first()


def confirmations_of(session: Session, pensioner_id: int) -> list[SurvivalConfirmation]:
    """Every confirmation on record, newest first, withdrawn ones included (``withdrawn_at`` set)."""
    return list(
        session.scalars(
            select(SurvivalConfirmation)
            .where(SurvivalConfirmation.pensioner_id == pensioner_id)
            .order_by(SurvivalConfirmation.confirmed_at.desc(), SurvivalConfirmation.id.desc())
        )
    )


def _standing(p: Pensioner, last: SurvivalConfirmation | None, today: date, due_days: int) -> Standing:
    if last is None:
        state, left = "never_confirmed", None
    else:
        left = (last.valid_until - today).days
        state = "overdue" if left < 0 else ("due" if left <= due_days else "valid")
    return Standing(
        pensioner_id=p.id,
        id_number=p.id_number,
        name=p.name,
        pensioner_status=p.status,
        state=state,
        last_method=last.method if last else None,
        last_evidence_date=last.evidence_date if last else None,
        valid_until=last.valid_until if last else None,
        days_left=left,
    )


def status_of(session: Session, pensioner: Pensioner, *, today: date | None = None, due_days: int = 30) -> Standing:
    return _standing(pensioner, latest_confirmation(session, pensioner.id), today or date.today(), due_days)


def _latest_valid_until_subquery() -> Any:
    return (
        select(SurvivalConfirmation.pensioner_id, func.max(SurvivalConfirmation.valid_until).label("vu"))
        .where(SurvivalConfirmation.stands())
        .group_by(SurvivalConfirmation.pensioner_id)
        .subquery()
    )


def due_within(session: Session, days: int, *, today: date | None = None) -> list[Standing]:
    """Active pensioners whose confirmation runs out within ``days`` days (not yet overdue)."""
    t = today or date.today()
    sub = _latest_valid_until_subquery()
    rows = session.execute(
        select(Pensioner)
        .join(sub, sub.c.pensioner_id == Pensioner.id)
        .where(
            Pensioner.status == PensionerStatus.ACTIVE,
            sub.c.vu >= t,
            sub.c.vu <= date.fromordinal(t.toordinal() + days),
        )
        .order_by(sub.c.vu, Pensioner.id)
    ).scalars()
    return [status_of(session, p, today=t, due_days=days) for p in rows]


def overdue(session: Session, *, today: date | None = None, include_never: bool = True) -> list[Standing]:
    """Active pensioners whose newest confirmation has expired (and, optionally, those never confirmed)."""
    t = today or date.today()
    sub = _latest_valid_until_subquery()
    cond = sub.c.vu < t
    if include_never:
        cond = cond | sub.c.vu.is_(None)
    rows = session.execute(
        select(Pensioner)
        .outerjoin(sub, sub.c.pensioner_id == Pensioner.id)
        .where(Pensioner.status == PensionerStatus.ACTIVE, cond)
        .order_by(sub.c.vu.is_(None), sub.c.vu, Pensioner.id)
    ).scalars()
    return [status_of(session, p, today=t) for p in rows]
