"""Withdrawing a survival confirmation: it stays on record (who, when, why) and counts for nothing in
any query of standing (``SurvivalConfirmation.stands()``). The one caller in the service is the second
signature on a fraud suspension proposed from a spot check (:func:`lifecert.services.suspensions.approve`);
a module of its own so that suspensions need not import confirmations, which import suspensions."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from lifecert.domain.errors import Conflict, ErrorCode, LifecertError, NotFound
from lifecert.services import audit
from lifecert.storage.models import SurvivalConfirmation, utcnow


def withdraw_confirmation(
    session: Session, confirmation_id: int, *, by: int | None, actor: str, role: str, reason: str,
    case_id: int | None = None, client_addr: str = "", extra: dict[str, Any] | None = None,
) -> SurvivalConfirmation:
    """Withdraw a confirmation in the caller's transaction: it stays on record (who, when, why) and no
    longer counts for the pensioner's standing. Audited as ``confirmation.withdraw`` (``extra`` joins the
    event's detail, e.g. both signers of a suspension). A confirmation already withdrawn is a Conflict;
    an unknown one NotFound; an empty reason BAD_REQUEST."""
    if not reason.strip():
        raise LifecertError("withdrawing a confirmation needs a reason", code=ErrorCode.BAD_REQUEST, field="reason")
    conf = session.get(SurvivalConfirmation, confirmation_id)
    if conf is None:
        raise NotFound(f"no survival confirmation {confirmation_id}")
    if conf.withdrawn_at is not None:
        raise Conflict(f"survival confirmation {confirmation_id} is already withdrawn")
    conf.withdrawn_at = utcnow()
    conf.withdrawn_by = by
    conf.withdrawn_reason = reason.strip()[:500]
    session.flush()
    audit.record(session, actor=actor, role=role, action="confirmation.withdraw", object_type="survival_confirmation",
                 object_id=conf.id, client_addr=client_addr,
                 detail={"pensioner_id": conf.pensioner_id, "case_id": case_id, "method": conf.method,
                         "source": conf.source, "evidence_date": conf.evidence_date.isoformat(),
                         "reason": conf.withdrawn_reason, **(extra or {})})
    return conf
