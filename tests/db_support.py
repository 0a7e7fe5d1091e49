"""Reading rows back in a test: each helper opens a session of its own and returns the rows
detached from it, so a test can read their attributes after the session has closed."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Select

from lifecert.services.context import AppContext

T = TypeVar("T")


def detached(ctx: AppContext, stmt: Select[tuple[T]]) -> list[T]:
    """The ORM rows ``stmt`` selects (``select(Model).where(...)``)."""
    with ctx.db.session() as s:
        rows = list(s.scalars(stmt))
        for r in rows:
            s.expunge(r)
        return rows


def detached_get(ctx: AppContext, model: type[T], key: Any) -> T:
    """The row of ``model`` with primary key ``key``; fails the test when there is none."""
    with ctx.db.session() as s:
        row = s.get(model, key)
        assert row is not None, f"no {model.__name__} {key!r}"
        s.expunge(row)
        return row
