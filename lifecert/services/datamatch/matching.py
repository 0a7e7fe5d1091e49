"""Matching extract rows to pensioners: by ID number, then the name after normalisation.

Lookups are batched (one ``IN`` query per chunk of rows), so memory follows the chunk
size, not the size of the file or of the pensioner register.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from lifecert.services.templates import normalize_name
from lifecert.storage.models import Pensioner
from lifecert.storage.models_data import MatchStatus


@dataclass(slots=True)
class PensionerRef:
    """The few columns matching needs; ``status`` is kept current while a chunk is processed."""

    id: int
    id_number: str
    name: str
    name_norm: str
    status: str
    status_reason: str | None
    region_code: str


def lookup_pensioners(session: Session, id_numbers: Iterable[str]) -> dict[str, PensionerRef]:
    ids = list(set(id_numbers))
    if not ids:
        return {}
    rows = session.execute(
        select(Pensioner.id, Pensioner.id_number, Pensioner.name, Pensioner.status, Pensioner.status_reason,
               Pensioner.region_code).where(Pensioner.id_number.in_(ids))
    ).all()
    return {r[1]: PensionerRef(r[0], r[1], r[2], normalize_name(r[2]), r[3], r[4], r[5]) for r in rows}


def match_status(ref: PensionerRef | None, name_norm: str) -> str:
    """UNMATCHED without a pensioner; NAME_MISMATCH when the ID matches but the normalised name differs."""
    if ref is None:
        return MatchStatus.UNMATCHED
    if ref.name_norm != name_norm:
        return MatchStatus.NAME_MISMATCH
    return MatchStatus.MATCHED
