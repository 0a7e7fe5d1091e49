"""Fast bulk inserts for million-row extracts.

SQLAlchemy's Core ``executemany`` builds a parameter dict per row (~10 µs each); at a
million records and a million confirmations that alone would take half a minute. Here
the caller hands over plain tuples in a fixed column order; each column's own bind
processor (the same conversion SQLAlchemy would apply: dates to ISO text on SQLite,
JSON to text) runs once per value, and the DB-API ``executemany`` does the rest.
It runs on the session's connection, so it is part of the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, cast

from sqlalchemy import Date, DateTime, FromClause, Table, TypeDecorator
from sqlalchemy.orm import Session


def _is_temporal(t: Any) -> bool:
    """Date/time columns, including TypeDecorators over them (their values repeat within an import)."""
    base = t.impl_instance if isinstance(t, TypeDecorator) else t
    return isinstance(base, Date | DateTime)


class _Memo(dict[Any, Any]):
    """Dates in an extract repeat (a month has 31 days): convert each distinct value once.
    ``map(memo.__getitem__, values)`` runs in C; only new values reach ``__missing__``."""

    def __init__(self, proc: Callable[[Any], Any]) -> None:
        super().__init__()
        self.proc = proc

    def __missing__(self, key: Any) -> Any:
        out = self[key] = self.proc(key)
        return out


class BulkInserter:
    """``INSERT INTO table (columns) VALUES (...)`` for many rows; one instance per table and session."""

    def __init__(self, session: Session, table: FromClause, columns: Sequence[str], *,
                 json_text: Sequence[str] = ()) -> None:
        """``json_text``: JSON columns for which the caller passes ready-serialised text."""
        self.conn = session.connection()
        dialect = self.conn.dialect
        ph = "?" if dialect.paramstyle == "qmark" else "%s"
        if dialect.paramstyle not in ("qmark", "format", "pyformat"):
            raise ValueError(f"unsupported DB-API paramstyle {dialect.paramstyle}")
        cols = ", ".join(dialect.identifier_preparer.quote(c) for c in columns)
        self.sql = f"INSERT INTO {dialect.identifier_preparer.format_table(cast(Table, table))} ({cols}) " \
                   f"VALUES ({', '.join([ph] * len(columns))})"
        procs: list[Callable[[Any], Any] | None] = [
            table.c[c].type.dialect_impl(dialect).bind_processor(dialect) for c in columns]
        self.procs = [(i, _Memo(p) if _is_temporal(table.c[c].type) else p)
                      for i, (c, p) in enumerate(zip(columns, procs, strict=True))
                      if p is not None and c not in json_text]

    def __call__(self, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        if self.procs:
            cols: list[Any] = list(zip(*rows, strict=True))
            for i, p in self.procs:
                if isinstance(p, _Memo):
                    if len(p) > 100_000:
                        p.clear()
                    cols[i] = map(p.__getitem__, cols[i])
                else:
                    cols[i] = map(p, cols[i])
            rows = list(zip(*cols, strict=True))
        self.conn.exec_driver_sql(self.sql, list(rows))


def select_in(session: Session, sql: str, values: Sequence[Any], before: Sequence[Any] = ()) -> list[Any]:
    """Run ``sql`` whose ``{in}`` marks an ``IN (...)`` list over ``values``, as one raw DB-API query
    (SQLAlchemy would build and coerce a bound parameter per value). ``values`` stay below SQLite's
    32,766-variable limit when callers use chunks of a few thousand. ``before`` are the values of
    placeholders (``?``/``%s`` per dialect, see :func:`placeholder`) that precede the list."""
    if not values:
        return []
    ph = placeholder(session)
    sql = sql.replace("{ph}", ph).replace("{in}", ", ".join([ph] * len(values)))
    # The session's own DB-API connection (same transaction), returning plain tuples without Row objects.
    cur = session.connection().connection.cursor()
    try:
        cur.execute(sql, (*before, *values))
        return list(cur.fetchall())
    finally:
        cur.close()


def placeholder(session: Session) -> str:
    return "?" if session.get_bind().dialect.paramstyle == "qmark" else "%s"
