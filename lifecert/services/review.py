"""Review cases: the caseworker queues. Other services open cases through :func:`open_case`."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from lifecert.storage.models import Pensioner, ReviewCase


def open_case(
    session: Session,
    *,
    kind: str,
    reason: str,
    pensioner: Pensioner | None = None,
    id_number: str | None = None,
    region_code: str | None = None,
    verification_session_id: str | None = None,
    enrollment_item_id: int | None = None,
    payload: dict[str, Any] | None = None,
) -> ReviewCase:
    """Queue a case in the caller's transaction. ``kind`` is a :class:`ReviewKind` value,
    ``reason`` an error/reason code such as LOW_MATCH or DUPLICATE_FACE."""
    case = ReviewCase(
        kind=kind,
        reason=reason,
        pensioner_id=pensioner.id if pensioner else None,
        id_number=id_number or (pensioner.id_number if pensioner else None),
        region_code=region_code or (pensioner.region_code if pensioner else None),
        verification_session_id=verification_session_id,
        enrollment_item_id=enrollment_item_id,
        payload=payload or {},
    )
    session.add(case)
    session.flush()
    return case
