"""Matching extract rows to pensioners: by ID number, then the name after normalisation.

Lookups are batched (one ``IN`` query per chunk of rows), so memory follows the chunk
size, not the size of the file or of the pensioner register.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from lifecert.services.datamatch.bulk import select_in
from lifecert.services.datamatch.validate import fast_normalize_name
from lifecert.storage.models_data import MatchStatus


@dataclass(slots=True)
class PensionerRef:
    """The few columns matching needs; ``status`` is kept current while a chunk is processed."""

    id: int
    id_number: str
    name: str
    status: str
    status_reason: str | None
    region_code: str


def lookup_pensioners(session: Session, id_numbers: Iterable[str]) -> dict[str, PensionerRef]:
    ids = list(set(id_numbers))
    if not ids:
        return {}
    rows = select_in(session, "SELECT id, id_number, name, status, status_reason, region_code FROM pensioner "
                              "WHERE id_number IN ({in})", ids)
    return {r[1]: PensionerRef(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows}


def match_status(ref: PensionerRef | None, name: str) -> str:
    """UNMATCHED without a pensioner; NAME_MISMATCH when the ID matches but the normalised names differ.
    Identical spellings (the common case) skip normalisation."""
    if ref is None:
        return MatchStatus.UNMATCHED
    if ref.name != name and fast_normalize_name(ref.name) != fast_normalize_name(name):
        return MatchStatus.NAME_MISMATCH
    return MatchStatus.MATCHED
