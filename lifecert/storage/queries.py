"""Small query parts several services build their filters from."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement


def within_days(column: Any, date_from: date | None, date_to: date | None) -> list[ColumnElement[bool]]:
    """Conditions keeping timestamps in ``column`` (timezone-aware, UTC) from the start of
    ``date_from`` up to the end of ``date_to`` (both whole UTC days, both inclusive; None: open)."""
    out: list[ColumnElement[bool]] = []
    if date_from:
        out.append(column >= datetime.combine(date_from, time.min, tzinfo=UTC))
    if date_to:
        out.append(column < datetime.combine(date_to + timedelta(days=1), time.min, tzinfo=UTC))
    return out
