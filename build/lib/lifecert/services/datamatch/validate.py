"""Per-row validation of extract rows: GB 11643 ID check digit, dates, a name.

A row either becomes a :class:`ValidRow` or a :class:`RowReject` with a stable reason
code; rejects are reported per row and never acted on.
"""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from operator import mul
from typing import NamedTuple

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


class ValidRow(NamedTuple):
    """An accepted row (a NamedTuple: a million of these are created per large extract)."""

    row_no: int
    id_number: str
    name: str
    event_date: date | None  # death date, sentence start or evidence date
    end_date: date | None  # sentence end or release date
    release: bool  # an imprisonment row that only reports a release
    detail: str
    row_key: str  # 24-hex blake2b of department + fact (who, what, when): equal keys are the same record


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
    # Exports keep long numbers as text with a leading apostrophe or tab (an Excel habit): not part of the ID.
    return "" if value is None else str(value).strip().lstrip("'")


_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"
_ASCII_ZERO_SUM = 48 * sum(_WEIGHTS)  # the weighted sum of the ASCII codes minus this = the weighted digit sum
_DATE_FIELDS = ("death_date", "term_start", "term_end", "release_date", "evidence_date")


def _fast_id(s: str, today: date) -> tuple[str, date] | None:
    """The common case (18 ASCII characters, valid) without exceptions; None means "ask parse_id_number"."""
    if len(s) != 18 or not s.isascii() or not s[:17].isdigit():
        return None
    total = sum(map(mul, _WEIGHTS, s[:17].encode())) - _ASCII_ZERO_SUM
    if _CHECK[total % 11] != s[17]:
        return None
    try:
        born = date(int(s[6:10]), int(s[10:12]), int(s[12:14]))
    except ValueError:
        return None
    if born.year < 1880 or born > today:
        return None
    return s, born


_DOTS = frozenset("·•‧∙・．.")


def fast_normalize_name(name: str) -> str:
    """Same result as :func:`lifecert.services.templates.normalize_name`, skipping the work most names
    do not need (already NFKC, no dot variants)."""
    if not unicodedata.is_normalized("NFKC", name) or not _DOTS.isdisjoint(name):
        return normalize_name(name)
    return "".join(name.split())


class RowValidator:
    """Validates rows of one mapping; built once per import (field positions resolved up front)."""

    def __init__(self, mapping: Mapping, today: date) -> None:
        self.mapping = mapping
        self.today = today
        pos = {f: i for i, f in enumerate(mapping.fields)}
        self.i_id = pos["id_number"]
        self.i_name = pos["name"]
        self.i_detail = pos.get("detail", -1)
        self.dates = tuple((f, pos[f]) for f in _DATE_FIELDS if f in pos)
        self.formats = mapping.date_formats
        self.kind = mapping.kind
        self.department = mapping.department
        self.default_detail = mapping.evidence_type or ""
        self._dates: dict[object, date | None] = {}

    def __call__(self, values: list[object], row_no: int) -> ValidRow | RowReject:
        today = self.today
        raw_id = values[self.i_id]
        fast = _fast_id(raw_id.strip(), today) if isinstance(raw_id, str) else None
        if fast is not None:
            id_number, born = fast
        else:
            try:
                idn = parse_id_number(_id_text(raw_id), today=today)
            except BadIdNumber as exc:
                return RowReject(row_no, RejectReason.BAD_ID_NUMBER, exc.message,
                                 mask_id_number(str(raw_id or "").strip()))
            id_number, born = idn.value, idn.birth_date
        raw_name = values[self.i_name]
        name = str(raw_name).strip() if raw_name is not None else ""
        if not name:
            return RowReject(row_no, RejectReason.MISSING_NAME, "name is empty", mask_id_number(id_number))
        if len(name) > 64:
            return RowReject(row_no, RejectReason.NAME_TOO_LONG, f"name has {len(name)} characters (max 64)",
                             mask_id_number(id_number))
        dates: dict[str, date | None] = {}
        cache = self._dates
        for fld, i in self.dates:
            raw = values[i]
            try:
                d = cache[raw]  # an extract holds few distinct dates: parse each once
            except (KeyError, TypeError):
                try:
                    d = parse_date(raw, self.formats)
                except _BadDate as exc:
                    return RowReject(row_no, RejectReason.BAD_DATE,
                                     f"{fld} {exc.args[0]!r} matches none of {', '.join(self.formats)}",
                                     mask_id_number(id_number))
                if len(cache) > 50_000:
                    cache.clear()
                if isinstance(raw, str):
                    cache[raw] = d
            if d is not None:
                if d > today and fld != "term_end":  # sentences end in the future
                    return RowReject(row_no, RejectReason.FUTURE_DATE, f"{fld} {d} is after {today}",
                                     mask_id_number(id_number))
                if d < born:
                    return RowReject(row_no, RejectReason.DATE_ORDER, f"{fld} {d} is before the birth date",
                                     mask_id_number(id_number))
            dates[fld] = d
        release = False
        end: date | None = None
        if self.kind == DataKind.DEATH:
            event = dates.get("death_date")
            field_name = "death_date"
        elif self.kind == DataKind.ALIVE_EVIDENCE:
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
                return RowReject(row_no, RejectReason.DATE_ORDER, f"term_end {end} is before term_start {event}",
                                 mask_id_number(id_number))
        if event is None and not release:
            return RowReject(row_no, RejectReason.MISSING_DATE, f"{field_name} is empty", mask_id_number(id_number))
        raw_detail = values[self.i_detail] if self.i_detail >= 0 else None
        detail = (str(raw_detail).strip() if raw_detail is not None else "")[:64] or self.default_detail
        key = hashlib.blake2b(f"{self.department}|{id_number}|{event}|{end}|{'R' if release else ''}".encode(),
                              digest_size=12).hexdigest()
        return ValidRow(row_no, id_number, name, event, end, release, detail, key)


def validate_row(values: list[object], row_no: int, mapping: Mapping, today: date) -> ValidRow | RowReject:
    """One row (``values`` follow ``mapping.fields``); ``today`` bounds dates (nothing is dated after receipt)."""
    return RowValidator(mapping, today)(values, row_no)
