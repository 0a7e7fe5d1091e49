"""Certification policies per region (stored in ``certification_policy``) and each pensioner's
next due window under them (rules: lifecert.domain.policy).

The last confirmation of ANY kind counts: every ``survival_confirmation`` row, whatever its
method (face_self_service, data_comparison, caseworker_review, assisted, home_visit, ...). The due
date is never stored; it is recomputed from the policy in force and that last evidence date.

Interface for other services (dashboards, reminders, suspensions):
``policies_in_force(session)``, ``due_of(session, pensioner, today)`` and
``iter_register(session, ...)``, which streams the whole register once with the two evidence
dates each row needs (a million pensioners in one pass, no ORM objects).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from lifecert.domain.errors import Conflict
from lifecert.domain.policy import (
    CertificationPolicy,
    DueState,
    DueWindow,
    PolicyKind,
    next_due,
    policy_for,
)
from lifecert.services import audit
from lifecert.storage.models import ConfirmationMethod, FaceTemplate, Pensioner, PensionerStatus, SurvivalConfirmation
from lifecert.storage.models_agency import PolicyRow

EPOCH = date(1900, 1, 1)


def default_policy(cycle_months: int | None = None) -> CertificationPolicy:
    """The policy where no region has one: a fixed cycle of ``settings.confirmation_cycle_months``."""
    if cycle_months is None:
        from lifecert.config import get_settings

        cycle_months = get_settings().confirmation_cycle_months
    return CertificationPolicy("", PolicyKind.FIXED_CYCLE, EPOCH, cycle_months=cycle_months)


def _to_domain(r: PolicyRow) -> CertificationPolicy:
    return CertificationPolicy(
        region_prefix=r.region_prefix, kind=PolicyKind(r.kind), effective_from=r.effective_from,
        cycle_months=r.cycle_months, open_days=r.open_days, grace_days=r.grace_days,
        early_credit_days=r.early_credit_days,
    )


def policies_in_force(session: Session, *, cycle_months: int | None = None) -> list[CertificationPolicy]:
    """Every stored policy (all dates; ``policy_for`` picks by day) plus the default under them."""
    rows = session.scalars(select(PolicyRow).order_by(PolicyRow.region_prefix, PolicyRow.effective_from))
    return [default_policy(cycle_months), *(_to_domain(r) for r in rows)]


def set_policy(session: Session, policy: CertificationPolicy, *, actor: str, role: str,
               client_addr: str = "") -> PolicyRow:
    """Store a policy from ``policy.effective_from`` on (a new row; earlier ones stay for history).
    A second policy for the same region prefix and date is a :class:`Conflict`."""
    dup = session.scalars(select(PolicyRow).where(PolicyRow.region_prefix == policy.region_prefix,
                                                  PolicyRow.effective_from == policy.effective_from)).first()
    if dup is not None:
        raise Conflict("a policy for this region already starts on that day", region_prefix=policy.region_prefix,
                       effective_from=policy.effective_from.isoformat())
    row = PolicyRow(region_prefix=policy.region_prefix, kind=str(policy.kind), effective_from=policy.effective_from,
                    cycle_months=policy.cycle_months, open_days=policy.open_days, grace_days=policy.grace_days,
                    early_credit_days=policy.early_credit_days, created_by=actor[:64])
    session.add(row)
    session.flush()
    audit.record(session, actor=actor, role=role, action="policy.set", object_type="certification_policy",
                 object_id=row.id, client_addr=client_addr,
                 detail={"region_prefix": row.region_prefix, "kind": row.kind,
                         "effective_from": row.effective_from.isoformat(), "cycle_months": row.cycle_months,
                         "open_days": row.open_days, "grace_days": row.grace_days,
                         "early_credit_days": row.early_credit_days})
    return row


@dataclass(frozen=True, slots=True)
class PensionerDue:
    """One pensioner's next certification. ``last_confirmation``: newest evidence date of any method;
    ``passive``: that newest evidence came from data comparison."""

    pensioner_id: int
    region_code: str
    policy: CertificationPolicy
    window: DueWindow
    state: DueState
    last_confirmation: date | None
    passive: bool


def last_evidence(session: Session, pensioner_id: int) -> tuple[date | None, bool]:
    """(newest evidence date of any confirmation, whether data comparison gave it)."""
    row = session.execute(
        select(func.max(SurvivalConfirmation.evidence_date),
               func.max(case((SurvivalConfirmation.method == ConfirmationMethod.DATA_COMPARISON,
                              SurvivalConfirmation.evidence_date))))
        .where(SurvivalConfirmation.pensioner_id == pensioner_id, SurvivalConfirmation.stands())
    ).one()
    last, last_dc = row
    return last, last is not None and last == last_dc


def _registered(created_at: datetime | None, fallback: date) -> date:
    return created_at.date() if created_at is not None else fallback


def due_of(session: Session, pensioner: Pensioner, today: date,
           policies: list[CertificationPolicy] | None = None) -> PensionerDue:
    """Where ``pensioner`` stands on ``today`` under their region's policy in force that day."""
    ps = policies if policies is not None else policies_in_force(session)
    pol = policy_for(ps, pensioner.region_code, today) or default_policy()
    last, passive = last_evidence(session, pensioner.id)
    w = next_due(pol, birth_month=pensioner.birth_date.month, last_confirmation=last,
                 registered=_registered(pensioner.created_at, today))
    return PensionerDue(pensioner.id, pensioner.region_code, pol, w, w.state_on(today), last, passive)


@dataclass(frozen=True, slots=True)
class RegisterRow:
    """What the campaign needs of one pensioner (no name, no address)."""

    pensioner_id: int
    id_number: str
    region_code: str
    birth_month: int
    birth_date: date
    registered: date
    has_phone: bool
    has_template: bool
    last_confirmation: date | None
    passive: bool


def iter_register(session: Session, *, region_prefix: str = "", batch: int = 20_000,
                  statuses: tuple[str, ...] = (PensionerStatus.ACTIVE,)) -> Iterator[RegisterRow]:
    """Stream pensioners (by region, then id) with their newest evidence date of any kind, whether it
    was data comparison, and whether they have an active template. One query, server-side cursor."""
    conf = (
        select(SurvivalConfirmation.pensioner_id.label("pid"),
               func.max(SurvivalConfirmation.evidence_date).label("last"),
               func.max(case((SurvivalConfirmation.method == ConfirmationMethod.DATA_COMPARISON,
                              SurvivalConfirmation.evidence_date))).label("last_dc"))
        .where(SurvivalConfirmation.stands())
        .group_by(SurvivalConfirmation.pensioner_id)
        .subquery()
    )
    tpl = (
        select(FaceTemplate.pensioner_id.label("pid"))
        .where(FaceTemplate.active.is_(True), FaceTemplate.revoked_at.is_(None))
        .group_by(FaceTemplate.pensioner_id)
        .subquery()
    )
    q = (
        select(Pensioner.id, Pensioner.id_number, Pensioner.region_code, Pensioner.birth_date, Pensioner.phone,
               Pensioner.created_at, conf.c.last, conf.c.last_dc, tpl.c.pid)
        .outerjoin(conf, conf.c.pid == Pensioner.id)
        .outerjoin(tpl, tpl.c.pid == Pensioner.id)
        .where(Pensioner.status.in_(statuses))
        .order_by(Pensioner.region_code, Pensioner.id)
    )
    if region_prefix:
        q = q.where(and_(Pensioner.region_code >= region_prefix, Pensioner.region_code < region_prefix + "\uffff"))
    result = session.execute(q, execution_options={"yield_per": batch, "stream_results": True})
    for pid, idn, region, born, phone, created, last, last_dc, tpid in result:
        yield RegisterRow(
            pensioner_id=pid, id_number=idn, region_code=region, birth_month=born.month, birth_date=born,
            registered=_registered(created, EPOCH), has_phone=bool(phone and phone.strip()),
            has_template=tpid is not None, last_confirmation=last,
            passive=last is not None and last == last_dc,
        )
