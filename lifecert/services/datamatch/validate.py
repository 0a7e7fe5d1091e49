"""Per-row validation of extract rows: GB 11643 ID check digit, dates, a name.

A row either becomes a :class:`ValidRow` or a :class:`RowReject` with a stable reason
code; rejects are reported per row and never acted on.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime

from lifecert.domain.errors import BadIdNumber
from lifecert.domain.idnumber import mask_id_number, parse_id_number
from lifecert.services.datamatch.mapping import Mapping
from lifecert.services.templates import normalize_name
from lifecert.storage.models_data import DataKind


class RejectReason:
    BAD_ID_NUMBER = "BAD_ID_NUMBER"
    MISSING_NAME = "MISSING_NAME"
    NAME_TOO_LONG = "NAME_TOO_LONG"
    MISSING_DATE = "MISSING_DATE"
    BAD_DATE = "BAD_DATE"
    FUTURE_DATE = "FUTURE_DATE"
    DATE_ORDER = "DATE_ORDER"


@dataclass(frozen=True, slots=True)
class ValidRow:
    row_no: int
    id_number: str
    name: str
    name_norm: str
    event_date: date | None  # death date, sentence start or evidence date
    end_date: date | None  # sentence end or release date
    release: bool  # an imprisonment row that only reports a release
    detail: str
    row_key: str  # sha1 of the fact (who, what, when): equal keys are the same record


@dataclass(frozen=True, slots=True)
class RowReject:
    row_no: int
    reason: str
    detail: str
    id_masked: str = ""


class _BadDate(ValueError):
    pass


def parse_date(value: object, formats: tuple[str, ...]) -> date | None:
    """A date from a cell: date/datetime (XLSX), yyyymmdd number, or text in one of ``formats``.
    Empty → None; anything else raises ``_BadDate``."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, int | float):
        if isinstance(value, float) and not value.is_integer():
            raise _BadDate(str(value))
        value = str(int(value))
    s = str(value).strip()
    if not s:
        return None
    if len(s) >= 10 and s[4] == "-" and s[7] == "-":
        try:
            return date.fromisoformat(s[:10])
        except ValueError:
            pass
    for fmt in formats:
        try:
            return datetime.strptime(s, fmt).date()
        except ValueError:
            continue
    raise _BadDate(s)


def _id_text(value: object) -> str:
    if isinstance(value, float):
        # Excel keeps numbers as doubles: an 18-digit ID stored as a number has lost digits.
        raise BadIdNumber("ID number stored as a number in the spreadsheet (digits lost); format the column as text")
    return "" if value is None else str(value)


def validate_row(values: list[object], row_no: int, mapping: Mapping, today: date) -> ValidRow | RowReject:
    """``values`` follow ``mapping.fields``; ``today`` bounds dates (nothing can be dated after receipt)."""
    v = dict(zip(mapping.fields, values, strict=True))
    raw_id = v.get("id_number")
    try:
        idn = parse_id_number(_id_text(raw_id), today=today)
    except BadIdNumber as exc:
        return RowReject(row_no, RejectReason.BAD_ID_NUMBER, exc.message, mask_id_number(str(raw_id or "").strip()))
    masked = mask_id_number(idn.value)
    name = str(v.get("name") or "").strip()
    if not name:
        return RowReject(row_no, RejectReason.MISSING_NAME, "name is empty", masked)
    if len(name) > 64:
        return RowReject(row_no, RejectReason.NAME_TOO_LONG, f"name has {len(name)} characters (max 64)", masked)
    dates: dict[str, date | None] = {}
    for fld in ("death_date", "term_start", "term_end", "release_date", "evidence_date"):
        if fld in v:
            try:
                d = parse_date(v[fld], mapping.date_formats)
            except _BadDate as exc:
                return RowReject(row_no, RejectReason.BAD_DATE,
                                 f"{fld} {exc.args[0]!r} matches none of {', '.join(mapping.date_formats)}", masked)
            if d is not None and d > today and fld != "term_end":  # sentences end in the future
                return RowReject(row_no, RejectReason.FUTURE_DATE, f"{fld} {d} is after {today}", masked)
            if d is not None and d < idn.birth_date:
                return RowReject(row_no, RejectReason.DATE_ORDER, f"{fld} {d} is before the birth date", masked)
            dates[fld] = d
    release = False
    end: date | None = None
    if mapping.kind == DataKind.DEATH:
        event = dates.get("death_date")
        field_name = "death_date"
    elif mapping.kind == DataKind.ALIVE_EVIDENCE:
        event = dates.get("evidence_date")
        field_name = "evidence_date"
    else:
        event = dates.get("term_start")
        field_name = "term_start or release_date"
        end = dates.get("term_end")
        if event is None:
            end = dates.get("release_date")
            release = end is not None
        elif end is not None and end < event:
            return RowReject(row_no, RejectReason.DATE_ORDER, f"term_end {end} is before term_start {event}", masked)
    if event is None and not release:
        return RowReject(row_no, RejectReason.MISSING_DATE, f"{field_name} is empty", masked)
    detail = str(v.get("detail") or mapping.evidence_type or "").strip()[:64]
    key_src = f"{idn.value}|{event}|{end}|{'R' if release else ''}"
    key = hashlib.sha1(key_src.encode(), usedforsecurity=False).hexdigest()
    return ValidRow(row_no, idn.value, name, normalize_name(name), event, end, release, detail, key)
