"""Encrypted, consistent backups and restore into an empty deployment.

``lifecert backup --out FILE`` while the service runs:

1. **Database snapshot.** SQLite: the online backup API (``sqlite3.Connection.backup``) copies
   a consistent image while writers go on. PostgreSQL: a REPEATABLE READ, READ ONLY
   transaction exports its snapshot (``pg_export_snapshot()``), the row counts and the audit
   head are read in it, and ``pg_dump --snapshot`` dumps exactly that state.
2. **Blobs** (photos, verification frames) are copied from the blob store *after* the
   snapshot. Blobs are written before the rows that refer to them commit, so every blob the
   snapshot refers to exists; blobs written later are harmless extras. (A ``lifecert purge``
   racing the backup could delete a frame the snapshot still lists: run them apart.) With the
   database blob store the blobs are inside the dump.
3. **Manifest** (last member): format, time, lifecert version, Alembic revision, row counts per
   table, audit-chain head (id and hash), and the size and sha256 of every file.

The archive (tar+gzip) is streamed through :class:`EncryptingWriter`: AES-256-GCM in 1 MiB
chunks, each chunk's associated data binding the stream id, its index and a "last" flag, so
a reordered, truncated, extended or edited file fails to open. The key is
``LIFECERT_BACKUP_KEY`` when set, else derived from the template key (HKDF) — the template key
is needed for a restore anyway (templates and photos are sealed with it): keep it apart
from the backups.

``lifecert restore FILE`` refuses a deployment that has data, checks every hash against the
manifest before anything is installed, loads the database (the SQLite file, or
``pg_restore --single-transaction``), puts the blobs, checks the row counts and the audit
chain, and records ``system.restored`` in the audit trail.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import Connection, inspect, text
from sqlalchemy.engine import make_url

from lifecert.domain.errors import ErrorCode, LifecertError
from lifecert.engine.manifest import sha256_file

if TYPE_CHECKING:
    from lifecert.config import Settings
    from lifecert.services.context import AppContext

MAGIC = b"LIFECERT-BACKUP-1\n"
CHUNK = 1 << 20
FORMAT = 1


class BackupError(LifecertError):
    code = ErrorCode.BAD_REQUEST


def backup_key(settings: Settings) -> bytes:
    raw = os.environ.get("LIFECERT_BACKUP_KEY")
    if raw:
        key = base64.b64decode(raw, validate=True)
        if len(key) != 32:
            raise LifecertError("LIFECERT_BACKUP_KEY must be base64 of 32 bytes", code=ErrorCode.CONFIG_ERROR)
        return key
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"lifecert backup v1").derive(
        settings.template_key_bytes()
    )


# -- the encrypted stream --------------------------------------------------------------------------


def _aad(stream_id: bytes, index: int, last: bool) -> bytes:
    return stream_id + index.to_bytes(8, "big") + (b"\x01" if last else b"\x00")


class EncryptingWriter(io.RawIOBase):
    """Write-only file object: buffers to CHUNK bytes and writes sealed chunks to ``out``."""

    def __init__(self, out: IO[bytes], key: bytes) -> None:
        self._out = out
        self._aes = AESGCM(key)
        self._sid = os.urandom(16)
        self._buf = bytearray()
        self._n = 0
        self._done = False
        out.write(MAGIC + self._sid)

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        data = bytes(b)
        self._buf += data
        while len(self._buf) > CHUNK:
            self._emit(bytes(self._buf[:CHUNK]), last=False)
            del self._buf[:CHUNK]
        return len(data)

    def _emit(self, data: bytes, last: bool) -> None:
        nonce = os.urandom(12)
        ct = self._aes.encrypt(nonce, data, _aad(self._sid, self._n, last))
        self._out.write(len(ct).to_bytes(4, "big") + nonce + ct)
        self._n += 1

    def close(self) -> None:
        if not self._done:
            self._done = True
            self._emit(bytes(self._buf), last=True)
            self._buf.clear()
            self._out.flush()
        super().close()


class DecryptingReader(io.RawIOBase):
    """Read-only file object over an encrypted backup; raises BackupError on any tampering."""

    def __init__(self, src: IO[bytes], key: bytes) -> None:
        self._src = src
        self._aes = AESGCM(key)
        head = src.read(len(MAGIC) + 16)
        if len(head) != len(MAGIC) + 16 or not head.startswith(MAGIC):
            raise BackupError("not a lifecert backup file")
        self._sid = head[len(MAGIC):]
        self._buf = b""
        self._n = 0
        self._last = False

    def readable(self) -> bool:
        return True

    def _next(self) -> None:
        hdr = self._src.read(4)
        if len(hdr) != 4:
            raise BackupError("backup file is truncated")
        n = int.from_bytes(hdr, "big")
        if n > CHUNK + 64:
            raise BackupError("backup file is corrupt (chunk too large)")
        body = self._src.read(12 + n)
        if len(body) != 12 + n:
            raise BackupError("backup file is truncated")
        for last in (False, True):
            try:
                self._buf = self._aes.decrypt(body[:12], body[12:], _aad(self._sid, self._n, last))
            except InvalidTag:
                continue
            self._last = last
            self._n += 1
            if last and self._src.read(1):
                raise BackupError("backup file has data after its last chunk")
            return
        raise BackupError("backup file does not decrypt: wrong key, or the file was altered")

    def readinto(self, b: Any) -> int:
        while not self._buf:
            if self._last:
                return 0
            self._next()
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


# -- snapshot ----------------------------------------------------------------------------------------


@dataclass
class Manifest:
    format: int = FORMAT
    created_at: str = ""
    lifecert_version: str = ""
    database: dict[str, Any] = field(default_factory=dict)
    audit_head: dict[str, Any] = field(default_factory=dict)
    blob_store: str = ""
    files: dict[str, dict[str, Any]] = field(default_factory=dict)  # archive name -> {size, sha256}

    def to_json(self) -> bytes:
        return json.dumps(self.__dict__, indent=1, sort_keys=True).encode()


@dataclass(frozen=True)
class BackupReport:
    path: Path
    bytes: int
    seconds: float
    rows: dict[str, int]
    blobs: int
    blob_bytes: int


def _tables() -> list[str]:
    from lifecert.storage.db import Base, import_all_models

    import_all_models()
    return sorted(Base.metadata.tables)


def _counts_and_head(conn: Connection) -> tuple[dict[str, int], dict[str, Any], str | None]:
    present = set(inspect(conn).get_table_names())
    counts = {
        t: int(conn.execute(text(f'SELECT count(*) FROM "{t}"')).scalar_one()) for t in _tables() if t in present
    }
    row = conn.execute(text("SELECT id, row_hash FROM audit_event ORDER BY id DESC LIMIT 1")).first()
    head = {"id": int(row[0]), "row_hash": str(row[1])} if row else {"id": 0, "row_hash": ""}
    rev = None
    if "alembic_version" in present:
        rev = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return counts, head, rev


def _pg_tool(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    cands = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), key=lambda p: int(p.parts[-3]))
    if cands:
        return str(cands[-1])
    raise LifecertError(f"{name} not found (install the PostgreSQL client tools)", code=ErrorCode.CONFIG_ERROR)


def _libpq_args(url: str) -> tuple[list[str], dict[str, str]]:
    u = make_url(url)
    args = []
    if u.host:
        args += ["-h", u.host]
    if u.port:
        args += ["-p", str(u.port)]
    if u.username:
        args += ["-U", u.username]
    env = dict(os.environ)
    if u.password:
        env["PGPASSWORD"] = str(u.password)
    return [*args, "-d", str(u.database)], env


def _snapshot_sqlite(ctx: AppContext, out: Path) -> tuple[dict[str, int], dict[str, Any], str | None]:
    path = make_url(ctx.settings.resolved_database_url).database
    if not path:
        raise LifecertError("in-memory SQLite cannot be backed up", code=ErrorCode.CONFIG_ERROR)
    src = sqlite3.connect(path, timeout=60)
    dst = sqlite3.connect(out)
    try:
        src.backup(dst)  # online backup API: consistent while the service keeps writing
    finally:
        dst.close()
        src.close()
    from lifecert.storage.db import make_engine

    eng = make_engine(f"sqlite:///{out}")
    try:
        with eng.connect() as conn:
            return _counts_and_head(conn)
    finally:
        eng.dispose()


def _snapshot_postgres(ctx: AppContext, out: Path) -> tuple[dict[str, int], dict[str, Any], str | None]:
    url = ctx.settings.resolved_database_url
    args, env = _libpq_args(url)
    with ctx.db.engine.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            conn.execute(text("SET TRANSACTION READ ONLY"))
            snap = conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
            counts, head, rev = _counts_and_head(conn)
            # The snapshot stays valid while this transaction is open: pg_dump sees exactly it.
            r = subprocess.run(
                [_pg_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges", f"--snapshot={snap}",
                 "-f", str(out), *args],
                env=env, capture_output=True, text=True, timeout=6 * 3600,
            )
            if r.returncode != 0:
                raise LifecertError(f"pg_dump failed: {r.stderr.strip()[:500]}", code=ErrorCode.CONFIG_ERROR)
    return counts, head, rev


def create_backup(ctx: AppContext, out: Path, *, actor: str = "cli") -> BackupReport:
    """Write an encrypted backup of the deployment behind ``ctx`` to ``out`` (mode 0600)."""
    from importlib.metadata import version

    from lifecert.services import audit

    t0 = time.monotonic()
    url = ctx.settings.resolved_database_url
    kind = "sqlite" if url.startswith("sqlite") else "postgresql" if url.startswith("postgresql") else ""
    if not kind:
        raise LifecertError("backup supports SQLite and PostgreSQL databases", code=ErrorCode.CONFIG_ERROR)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = out.with_name(out.name + ".partial")
    with tempfile.TemporaryDirectory(prefix="lifecert-backup-", dir=out.parent) as td:
        db_file = Path(td) / ("lifecert.sqlite" if kind == "sqlite" else "lifecert.pgdump")
        snap = _snapshot_sqlite if kind == "sqlite" else _snapshot_postgres
        counts, head, rev = snap(ctx, db_file)
        m = Manifest(
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            lifecert_version=version("lifecert"),
            database={"kind": kind, "alembic_revision": rev, "rows": counts},
            audit_head=head,
            blob_store=ctx.blobs.kind,
        )
        fd = os.open(tmp_out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        n_blobs = blob_bytes = 0
        with os.fdopen(fd, "wb") as raw:
            enc = EncryptingWriter(raw, backup_key(ctx.settings))
            with tarfile.open(fileobj=enc, mode="w|gz", format=tarfile.PAX_FORMAT) as tar:
                name = f"db/{db_file.name}"
                m.files[name] = {"size": db_file.stat().st_size, "sha256": sha256_file(db_file)}
                tar.add(db_file, arcname=name, recursive=False)
                db_file.unlink()
                if ctx.blobs.kind != "database":
                    for bname in ctx.blobs.names():
                        try:
                            data = ctx.blobs.get(bname)
                        except LifecertError:
                            continue  # purged between listing and reading
                        _add_bytes(tar, f"blobs/{bname}", data)
                        m.files[f"blobs/{bname}"] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
                        n_blobs += 1
                        blob_bytes += len(data)
                _add_bytes(tar, "manifest.json", m.to_json())
            enc.close()
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp_out, out)
    with ctx.db.session() as s:
        audit.record(s, actor=actor, role="system", action="system.backup", object_type="backup",
                     object_id=out.name[:64],
                     detail={"rows": sum(counts.values()), "blobs": n_blobs, "audit_head": head["id"]})
    return BackupReport(out, out.stat().st_size, time.monotonic() - t0, counts, n_blobs, blob_bytes)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o600
    info.mtime = int(time.time())
    tar.addfile(info, io.BytesIO(data))


# -- restore -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RestoreReport:
    rows: dict[str, int]
    blobs: int
    audit_rows: int
    seconds: float


def _safe_member(name: str) -> bool:
    from lifecert.storage.blobs import check_name

    if name in ("manifest.json", "db/lifecert.sqlite", "db/lifecert.pgdump"):
        return True
    if name.startswith("blobs/"):
        try:
            check_name(name[len("blobs/"):])
        except LifecertError:
            return False
        return True
    return False


def _read_archive(src: Path, key: bytes, stage: Path) -> Manifest:
    """Decrypt and unpack into ``stage`` (regular files with expected names only), then check
    every file against the manifest."""
    seen: dict[str, tuple[int, str]] = {}
    with src.open("rb") as fh:
        reader = io.BufferedReader(DecryptingReader(fh, key), buffer_size=CHUNK)
        try:
            with tarfile.open(fileobj=reader, mode="r|gz") as tar:
                for member in tar:
                    if not member.isfile() or not _safe_member(member.name):
                        raise BackupError(f"unexpected member in backup: {member.name[:80]!r}")
                    if member.name in seen:
                        raise BackupError(f"member twice in backup: {member.name[:80]!r}")
                    f = tar.extractfile(member)
                    if f is None:  # pragma: no cover - isfile() above
                        raise BackupError("unreadable member")
                    dest = stage / member.name
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    h = hashlib.sha256()
                    size = 0
                    with dest.open("wb") as out:
                        for block in iter(lambda f=f: f.read(1 << 20), b""):  # type: ignore[misc]
                            h.update(block)
                            size += len(block)
                            out.write(block)
                    seen[member.name] = (size, h.hexdigest())
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise BackupError(f"backup archive is damaged: {exc}") from None
    if "manifest.json" not in seen:
        raise BackupError("backup has no manifest (incomplete file)")
    raw = json.loads((stage / "manifest.json").read_bytes())
    m = Manifest(**raw)
    if m.format != FORMAT:
        raise BackupError(f"backup format {m.format} is not supported (this version reads {FORMAT})")
    listed = set(m.files)
    got = set(seen) - {"manifest.json"}
    if listed != got:
        raise BackupError(f"backup members differ from its manifest ({len(listed ^ got)} names)")
    for name, meta in m.files.items():
        if seen[name] != (meta["size"], meta["sha256"]):
            raise BackupError(f"{name[:80]} does not match its hash in the manifest")
    return m


def _ensure_empty(settings: Settings) -> None:
    from lifecert.storage.blobs import open_blob_store
    from lifecert.storage.db import Database, make_engine

    url = settings.resolved_database_url
    eng = make_engine(url)
    try:
        with eng.connect() as conn:
            present = set(inspect(conn).get_table_names())
            busy = [t for t in ("pensioner", "audit_event", "face_template") if t in present
                    and conn.execute(text(f'SELECT count(*) FROM "{t}"')).scalar_one()]
    finally:
        eng.dispose()
    if busy:
        raise LifecertError(
            f"the target deployment is not empty (rows in {', '.join(busy)}); restore only into an empty one",
            code=ErrorCode.CONFLICT,
        )
    if settings.blobs.backend != "database":
        db = Database(url, create=False)
        try:
            if next(iter(open_blob_store(settings, db).names()), None) is not None:
                raise LifecertError("the target blob store is not empty; restore only into an empty one",
                                    code=ErrorCode.CONFLICT)
        finally:
            db.dispose()


def _drop_empty_schema(url: str) -> None:
    """An empty deployment may already have its (empty) schema from a start-up: drop it so the
    dump can be loaded as is."""
    from lifecert.storage.db import drop_schema

    drop_schema(url)


def restore_backup(settings: Settings, src: Path, *, actor: str = "cli") -> RestoreReport:
    """Restore ``src`` into the (empty) deployment that ``settings`` describe."""
    from lifecert.services import audit
    from lifecert.services.context import AppContext
    t0 = time.monotonic()
    if not src.is_file():
        raise LifecertError("backup file not found", code=ErrorCode.FILE_MISSING)
    url = settings.resolved_database_url
    kind = "sqlite" if url.startswith("sqlite") else "postgresql"
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    _ensure_empty(settings)
    with tempfile.TemporaryDirectory(prefix=".restore-", dir=settings.data_dir) as td:
        stage = Path(td)
        m = _read_archive(src, backup_key(settings), stage)
        if m.database.get("kind") != kind:
            raise BackupError(f"backup holds a {m.database.get('kind')} database; the target is {kind}")
        if kind == "sqlite":
            target = Path(make_url(url).database or "")
            for suffix in ("", "-wal", "-shm"):
                Path(str(target) + suffix).unlink(missing_ok=True)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(stage / "db" / "lifecert.sqlite", target)
            os.chmod(target, 0o600)
        else:
            _drop_empty_schema(url)
            args, env = _libpq_args(url)
            r = subprocess.run(
                [_pg_tool("pg_restore"), "--no-owner", "--no-privileges", "--single-transaction", "--exit-on-error",
                 *args, str(stage / "db" / "lifecert.pgdump")],
                env=env, capture_output=True, text=True, timeout=6 * 3600,
            )
            if r.returncode != 0:
                raise LifecertError(f"pg_restore failed: {r.stderr.strip()[:500]}", code=ErrorCode.CONFIG_ERROR)
        ctx = AppContext(settings)  # migrates a backup of an older revision forward
        try:
            n = 0
            if ctx.blobs.kind != "database":
                for name in m.files:
                    if name.startswith("blobs/"):
                        ctx.blobs.put(name[len("blobs/"):], (stage / name).read_bytes(), durable=False)
                        n += 1
                ctx.blobs.sync()
            rows = _check_restored(ctx, m)
            with ctx.db.session() as s:
                chain = audit.verify_chain(s)
                if not chain.ok:
                    raise BackupError(f"audit chain broken after restore at row {chain.first_bad_id}: {chain.problem}")
                audit.record(s, actor=actor, role="system", action="system.restored", object_type="backup",
                             object_id=src.name[:64],
                             detail={"created_at": m.created_at, "rows": sum(rows.values()), "blobs": n,
                                     "audit_head": m.audit_head.get("id")})
        finally:
            ctx.close()
    return RestoreReport(rows, n, chain.rows, time.monotonic() - t0)


def _check_restored(ctx: AppContext, m: Manifest) -> dict[str, int]:
    with ctx.db.engine.connect() as conn:
        counts, head, _rev = _counts_and_head(conn)
    want = m.database.get("rows", {})
    bad = {t: (n, counts.get(t)) for t, n in want.items() if counts.get(t) != n}
    if bad:
        raise BackupError(f"row counts after restore differ from the manifest: {dict(list(bad.items())[:5])}")
    if head != m.audit_head:
        raise BackupError("audit-chain head after restore differs from the manifest")
    return counts
