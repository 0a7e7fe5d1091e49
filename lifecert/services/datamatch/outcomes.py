"""What a matched record does: suspensions, resumptions, passive confirmations, conflicts.

Everything happens in the caller's transaction. Bulk rows (records, confirmations) are
collected by the caller and inserted with Core; the rarer writes here (payment actions,
status changes, review cases) are single statements.
"""

from __future__ import annotations

import calendar
import json
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from lifecert.domain.cases import (
    AliveAfterDeath,
    CasePayload,
    ConfirmationRef,
    DeathAfterConfirmation,
    DepartmentRecord,
    NameMismatch,
    RecordedDeath,
)
from lifecert.services.cases import open_case
from lifecert.services.datamatch.matching import PensionerRef
from lifecert.services.datamatch.validate import ValidRow
from lifecert.storage.models import (
    ConfirmationMethod,
    Pensioner,
    PensionerStatus,
    SurvivalConfirmation,
    utcnow,
)
from lifecert.storage.models_data import ActionKind, ActionStatus, DataKind, Outcome, PaymentAction

IMPRISONED_PREFIX = "imprisoned"
CONFIRMATION_COLUMNS = ("pensioner_id", "method", "confirmed_at", "evidence_date", "valid_until", "source",
                        "evidence")


@lru_cache(maxsize=4096)
def add_months(d: date, months: int) -> date:
    """``d`` moved by whole months, the day clamped to the target month's length (Jan 31 + 1 → Feb 28/29)."""
    y, m = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m + 1
    return date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True)
class Origin:
    """Where a record came from, for payment actions and review payloads."""

    department: str
    import_id: int

    def record(self, row: ValidRow, record_kind: str) -> DepartmentRecord:
        """The row as the department wrote it (their spelling of the name), for a review case."""
        return DepartmentRecord(
            department=self.department, import_id=self.import_id, row_no=row.row_no, id_number=row.id_number,
            name=row.name, record_kind=record_kind, event_date=row.event_date, end_date=row.end_date,
            detail=row.detail,
        )


def set_status(session: Session, ref: PensionerRef, status: str, reason: str) -> None:
    session.execute(
        update(Pensioner).where(Pensioner.id == ref.id).values(status=status, status_reason=reason[:255],
                                                               updated_at=utcnow())
    )
    ref.status = status
    ref.status_reason = reason


def _case(session: Session, reason: str, ref: PensionerRef, payload: CasePayload) -> None:
    open_case(session, payload, reason=reason, pensioner=session.get(Pensioner, ref.id))


def name_mismatch(session: Session, origin: Origin, kind: str, row: ValidRow, ref: PensionerRef) -> None:
    _case(session, "NAME_MISMATCH", ref, NameMismatch(
        record=origin.record(row, kind), pensioner_name=ref.name,
        note="ID number matches a pensioner but the name differs after normalisation; nothing was acted on",
    ))


def recorded_deaths(session: Session, pensioner_ids: list[int]) -> dict[int, dict[str, Any]]:
    """The recorded death (earliest death suspension) of each deceased pensioner in ``pensioner_ids``."""
    if not pensioner_ids:
        return {}
    rows = session.execute(
        select(PaymentAction.pensioner_id, PaymentAction.effective_date, PaymentAction.department,
               PaymentAction.import_id, PaymentAction.row_no)
        .where(PaymentAction.pensioner_id.in_(pensioner_ids), PaymentAction.kind == ActionKind.SUSPENSION,
               PaymentAction.reason == Outcome.DECEASED)
        .order_by(PaymentAction.effective_date)
    ).all()
    out: dict[int, dict[str, Any]] = {}
    for pid, d, dept, imp, row_no in rows:
        out.setdefault(pid, {"death_date": d.isoformat(), "department": dept, "import_id": imp, "row_no": row_no})
    return out


def alive_evidence(
    session: Session, origin: Origin, row: ValidRow, ref: PensionerRef, death: dict[str, Any] | None,
) -> str:
    """Alive evidence for a pensioner recorded as deceased: evidence dated after the death is a conflict
    for review (both records in the payload); evidence up to the death date is true and needs nothing.
    (Living pensioners get :func:`confirmation_row`.)"""
    evidence = row.event_date
    death_date = date.fromisoformat(death["death_date"]) if death else None
    if evidence is None or (death_date is not None and evidence <= death_date):
        return Outcome.NONE
    recorded = (
        RecordedDeath(death_date=death_date, department=death["department"], import_id=death["import_id"],
                      row_no=death["row_no"])
        if death else RecordedDeath(note=f"status deceased ({ref.status_reason or 'no record'})")
    )
    _case(session, "ALIVE_AFTER_DEATH", ref,
          AliveAfterDeath(death=recorded, alive_evidence=origin.record(row, DataKind.ALIVE_EVIDENCE)))
    return Outcome.CONFLICT


def confirmation_row(origin: Origin, row: ValidRow, pensioner_id: int, cycle_months: int,
                     now: datetime) -> tuple[Any, ...]:
    """A passive survival confirmation (``CONFIRMATION_COLUMNS``; evidence as JSON text) for bulk insert:
    method data_comparison, the department as source, valid for one confirmation cycle from the evidence."""
    evidence = row.event_date
    if evidence is None:  # validation guarantees an evidence date for alive-evidence rows
        raise ValueError("alive evidence without a date")
    return (
        pensioner_id, ConfirmationMethod.DATA_COMPARISON, now, evidence, add_months(evidence, cycle_months),
        origin.department,
        f'{{"import_id": {origin.import_id}, "row_no": {row.row_no}, "type": {_json_str(row.detail)}}}',
    )


@lru_cache(maxsize=1024)
def _json_str(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)


def latest_confirmations(session: Session, pensioner_ids: list[int]) -> dict[int, dict[str, Any]]:
    """The most recent survival confirmation (by evidence date) of each pensioner."""
    if not pensioner_ids:
        return {}
    sub = (
        select(SurvivalConfirmation.pensioner_id, func.max(SurvivalConfirmation.evidence_date).label("d"))
        .where(SurvivalConfirmation.pensioner_id.in_(pensioner_ids), SurvivalConfirmation.stands())
        .group_by(SurvivalConfirmation.pensioner_id)
        .subquery()
    )
    rows = session.execute(
        select(SurvivalConfirmation.id, SurvivalConfirmation.pensioner_id, SurvivalConfirmation.method,
               SurvivalConfirmation.evidence_date, SurvivalConfirmation.source)
        .join(sub, (sub.c.pensioner_id == SurvivalConfirmation.pensioner_id)
              & (sub.c.d == SurvivalConfirmation.evidence_date))
        .where(SurvivalConfirmation.stands())
    ).all()
    return {
        pid: {"id": cid, "method": method, "evidence_date": d.isoformat(), "source": src}
        for cid, pid, method, d, src in rows
    }


def death(
    session: Session, origin: Origin, row: ValidRow, ref: PensionerRef, latest: dict[str, Any] | None,
) -> str:
    """Suspend from the date of death, unless the pensioner is already recorded dead, or was confirmed
    alive (face, caseworker or other data) on a later date: that conflict goes to review instead."""
    death_date = row.event_date
    if death_date is None:
        return Outcome.NONE
    if ref.status == PensionerStatus.DECEASED:
        return Outcome.ALREADY_DECEASED
    if latest is not None and date.fromisoformat(latest["evidence_date"]) > death_date:
        _case(session, "DEATH_AFTER_CONFIRMATION", ref, DeathAfterConfirmation(
            death=origin.record(row, DataKind.DEATH),
            confirmation=ConfirmationRef(confirmation_id=latest["id"], method=latest["method"],
                                         evidence_date=date.fromisoformat(latest["evidence_date"]),
                                         source=latest["source"] or ""),
        ))
        return Outcome.CONFLICT
    session.add(PaymentAction(
        pensioner_id=ref.id, kind=ActionKind.SUSPENSION, reason=Outcome.DECEASED, effective_date=death_date,
        department=origin.department, import_id=origin.import_id, row_no=row.row_no,
    ))
    set_status(session, ref, PensionerStatus.DECEASED, f"death {death_date} reported by {origin.department}")
    return Outcome.DECEASED


def _pending_resumption(session: Session, pensioner_id: int) -> PaymentAction | None:
    return session.scalars(
        select(PaymentAction).where(
            PaymentAction.pensioner_id == pensioner_id, PaymentAction.kind == ActionKind.RESUMPTION,
            PaymentAction.status != ActionStatus.APPLIED,
        ).order_by(PaymentAction.id.desc())
    ).first()


def imprisonment(session: Session, origin: Origin, row: ValidRow, ref: PensionerRef, today: date) -> str:
    if ref.status == PensionerStatus.DECEASED:
        return Outcome.ALREADY_DECEASED
    if row.release:
        release = row.end_date
        if release is None:
            return Outcome.NONE
        pending = _pending_resumption(session, ref.id)
        if pending is not None:  # the sentence's scheduled resumption becomes the actual release date
            pending.effective_date = release
            pending.department = origin.department
            pending.import_id = origin.import_id
            pending.row_no = row.row_no
        else:
            session.add(PaymentAction(
                pensioner_id=ref.id, kind=ActionKind.RESUMPTION, reason=Outcome.RELEASED, effective_date=release,
                department=origin.department, import_id=origin.import_id, row_no=row.row_no,
            ))
        if ref.status == PensionerStatus.SUSPENDED and (ref.status_reason or "").startswith(IMPRISONED_PREFIX):
            set_status(session, ref, PensionerStatus.ACTIVE, f"released {release} ({origin.department})")
        return Outcome.RELEASED
    start, end = row.event_date, row.end_date
    if start is None:
        return Outcome.NONE
    session.add(PaymentAction(
        pensioner_id=ref.id, kind=ActionKind.SUSPENSION, reason=Outcome.IMPRISONED, effective_date=start,
        end_date=end, department=origin.department, import_id=origin.import_id, row_no=row.row_no,
    ))
    if end is not None:
        session.add(PaymentAction(
            pensioner_id=ref.id, kind=ActionKind.RESUMPTION, reason=Outcome.RELEASED, effective_date=end,
            department=origin.department, import_id=origin.import_id, row_no=row.row_no,
        ))
    serving = start <= today and (end is None or end > today)
    # Never overwrite another suspension (e.g. a fraud review): its payment action is still recommended.
    free = ref.status == PensionerStatus.ACTIVE or (ref.status_reason or "").startswith(IMPRISONED_PREFIX)
    if serving and free:
        until = f" until {end}" if end else ""
        set_status(session, ref, PensionerStatus.SUSPENDED,
                   f"{IMPRISONED_PREFIX} from {start}{until} ({origin.department})")
    return Outcome.IMPRISONED
