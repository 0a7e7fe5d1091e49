"""Reading rows back in a test: each helper opens a session of its own and returns the rows
detached from it, so a test can read their attributes after the session has closed."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Select, text
from sqlalchemy.orm import Session

from lifecert.services.context import AppContext

T = TypeVar("T")

LOCK_WAIT_S = 60.0  # bound on waiting for a second transaction to block (never reached when it works)


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


class SecondTransaction:
    """``work(db)`` in a thread of its own, on its own connection and transaction (committed when it returns):
    the second party of a race a PostgreSQL test forces while its first transaction holds a lock.
    :meth:`wait_until_blocked` returns once it waits on that lock; then commit the first and :meth:`join`."""

    def __init__(self, ctx: AppContext, work: Callable[[Session], Any]) -> None:
        self.ctx, self.work = ctx, work
        self.backend_pid: int | None = None
        self.result: Any = None
        self.error: BaseException | None = None
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            with self.ctx.db.session() as db:
                self.backend_pid = db.execute(text("SELECT pg_backend_pid()")).scalar()
                self.result = self.work(db)
        except BaseException as e:  # reported by join(), in the test's thread
            self.error = e
        finally:
            self.done.set()

    def wait_until_blocked(self) -> None:
        """Until this transaction waits on a lock (bounded by LOCK_WAIT_S). Fails the test when it ends, or the
        time runs out, without ever waiting: the race was not set up (or the lock under test is gone)."""
        deadline = time.monotonic() + LOCK_WAIT_S
        with self.ctx.db.engine.connect() as watch:
            while time.monotonic() < deadline and not self.done.is_set():
                pid = self.backend_pid
                if pid is not None and watch.execute(text(
                        "SELECT count(*) FROM pg_stat_activity WHERE pid = :p AND wait_event_type = 'Lock'"),
                        {"p": pid}).scalar():
                    return
                time.sleep(0.02)
        raise AssertionError("the second transaction never waited on the first: the race was not set up")

    def join(self) -> Any:
        """What ``work`` returned, once it has finished (bounded); fails the test on its error."""
        self.thread.join(LOCK_WAIT_S)
        assert not self.thread.is_alive(), "the second transaction did not finish"
        assert self.error is None, f"the second transaction failed: {self.error!r}"
        return self.result
