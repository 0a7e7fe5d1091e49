"""Engine and session factory. Nothing connects at import time."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker


class Base(DeclarativeBase):
    pass


def make_engine(url: str, **kw: Any) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1].split("?", 1)[0]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            _create_private(Path(path))
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kw)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, **kw)


def _create_private(path: Path) -> None:
    """Create the SQLite file owner-only (0600) before SQLite does (it would use the umask, usually 0644);
    SQLite gives its -wal/-shm files the main file's permissions. An existing file is tightened too."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)


def import_all_models() -> None:
    """Register every table on Base.metadata (models live in a few modules)."""
    import importlib
    import pkgutil

    import lifecert.storage as pkg

    for mod in pkgutil.iter_modules(pkg.__path__):
        if mod.name.startswith("models"):
            importlib.import_module(f"lifecert.storage.{mod.name}")


def drop_schema(url: str) -> None:
    """Drop every lifecert table and Alembic's version table at ``url`` (a restore into an empty
    deployment, a test or benchmark starting from nothing). Destroys data: callers decide when."""
    from sqlalchemy import text

    eng = make_engine(url)
    import_all_models()
    try:
        with eng.begin() as c:
            Base.metadata.drop_all(c)
            c.execute(text("DROP TABLE IF EXISTS alembic_version"))
    finally:
        eng.dispose()


def init_db(engine: Engine) -> None:
    """Bring the schema to the newest revision (Alembic), creating it on an empty database."""
    from lifecert.storage.migrate import upgrade_to_head

    upgrade_to_head(engine)


class Database:
    """Owns one Engine and its session factory; services get sessions from here."""

    def __init__(self, url: str, *, create: bool = True, audit_key: bytes | None = None) -> None:
        """``audit_key``: the HMAC key of the audit chain, handed to every session as
        ``session.info["audit_key"]`` (lifecert.services.audit refuses to write without it)."""
        self.url = url
        self.engine = make_engine(url)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False,
                                         info={"audit_key": audit_key} if audit_key else {})
        if create:
            init_db(self.engine)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: commits on success, rolls back on error."""
        s = self.sessionmaker()
        try:
            yield s
            s.commit()
        except BaseException:
            s.rollback()
            raise
        finally:
            s.close()

    def dispose(self) -> None:
        self.engine.dispose()
