"""Backup and restore drill on real faces: enroll, verify, back up while the service runs,
destroy, restore into an empty deployment, and the same pensioner verifies again with the
audit chain intact — on SQLite (online backup API) and PostgreSQL (pg_dump/pg_restore).
Damaged, foreign-key or misplaced restores change nothing."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from numpy.typing import NDArray
from sqlalchemy import func, select

from lifecert.config import Settings
from lifecert.domain.errors import ErrorCode, LifecertError
from lifecert.engine.base import FaceEngine
from lifecert.services import audit
from lifecert.services.backup import BackupError, create_backup, restore_backup
from lifecert.services.context import AppContext
from lifecert.storage.models import AuditEvent, Pensioner, SurvivalConfirmation
from tests.conftest import empty_postgres
from tests.integration.verification_support import TEMPLATE_FRAME, enroll, serve
from tests.paced_client import Clip, SimClock, VirtualTime, run_http_session


def _settings(data_dir: Path, url: str | None) -> Settings:
    return Settings(env="test", data_dir=data_dir, database_url=url, fixed_challenges="blink,open_mouth",
                    inference_threads=1)


def _verify(client: TestClient, p: Pensioner, clip: Clip) -> str:
    """One paced session through the API on the app's virtual clock (see _app)."""
    clock: VirtualTime = client.app.state.clock  # type: ignore[attr-defined]
    _sid, phone = run_http_session(client, {"id_number": p.id_number, "name": p.name}, clip, SimClock(clock))
    return str(phone.last.decision if phone.last else None)


def _app(settings: Settings, face_engine: FaceEngine, frame_engine: FaceEngine) -> Iterator[TestClient]:
    ctx = AppContext(settings)
    ctx.set_engine(face_engine)
    try:
        yield from serve(ctx, frame_engine, VirtualTime())
    finally:
        ctx.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    if request.param == "sqlite":
        yield None
        return
    url = request.getfixturevalue("postgres_url")
    empty_postgres(url)
    yield url
    empty_postgres(url)


@pytest.mark.slow
def test_given_a_verified_pensioner_when_backed_up_destroyed_and_restored_then_they_verify_again(
    tmp_path: Path, db_url: str | None, face_engine: FaceEngine, frame_engine: FaceEngine,
    video: list[NDArray[np.uint8]], clip: Clip,
) -> None:
    live = _settings(tmp_path / "live", db_url)
    out = tmp_path / "backups" / "drill.lcbk"
    gen = _app(live, face_engine, frame_engine)
    client = next(gen)
    ctx: AppContext = client.app.state.ctx  # type: ignore[attr-defined]
    p = enroll(ctx, video[TEMPLATE_FRAME], seq=31)
    assert _verify(client, p, clip) == "CONFIRMED"
    with ctx.db.session() as s:
        head_before = s.scalar(select(func.max(AuditEvent.id)))
    report = create_backup(ctx, out)  # the service is running
    assert report.rows["pensioner"] == 1 and report.rows["survival_confirmation"] == 1
    assert report.blobs >= 2  # the enrolled photo, the session's best frames (its chunks are database rows)
    gen.close()
    assert out.stat().st_mode & 0o777 == 0o600
    assert b"photos/" not in out.read_bytes() and p.id_number.encode() not in out.read_bytes()

    # destroy everything
    shutil.rmtree(tmp_path / "live")
    if db_url:
        empty_postgres(db_url)

    restored = _settings(tmp_path / "restored", db_url)
    r = restore_backup(restored, out)
    assert r.rows["pensioner"] == 1 and r.blobs == report.blobs
    with pytest.raises(LifecertError) as e:  # a second restore finds data and refuses
        restore_backup(restored, out)
    assert e.value.code == ErrorCode.CONFLICT

    gen = _app(restored, face_engine, frame_engine)
    client = next(gen)
    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    with ctx.db.session() as s:
        chain = audit.verify_chain(s)
        assert chain.ok, chain
        actions = list(s.scalars(select(AuditEvent.action).where(AuditEvent.id > (head_before or 0))))
        # the snapshot ends before its own "system.backup" event (recorded in the source afterwards)
        assert actions == ["system.restored"]
    assert _verify(client, p, clip) == "CONFIRMED"
    with ctx.db.session() as s:
        assert s.scalar(select(func.count(SurvivalConfirmation.id))) == 2
        assert audit.verify_chain(s).ok
    gen.close()


def test_given_a_damaged_or_foreign_backup_when_restored_then_nothing_is_written(
    tmp_path: Path, face_engine: FaceEngine
) -> None:
    src = _settings(tmp_path / "src", None)
    ctx = AppContext(src)
    ctx.photos.put(b"some photo bytes")
    out = tmp_path / "b.lcbk"
    create_backup(ctx, out)
    ctx.close()
    data = out.read_bytes()

    cases = {
        "flipped": data[:200] + bytes([data[200] ^ 1]) + data[201:],
        "truncated": data[: len(data) - 40],
        "extended": data + b"\x00\x00\x00\x10" + b"x" * 28,
        "not a backup": b"PK\x03\x04 hello",
    }
    for name, blob in cases.items():
        bad = tmp_path / f"{name}.lcbk"
        bad.write_bytes(blob)
        target = _settings(tmp_path / f"t-{name.replace(' ', '-')}", None)
        with pytest.raises(BackupError):
            restore_backup(target, bad)
        assert not any((target.data_dir / "photos").rglob("*")), name
        assert not (target.data_dir / "lifecert.sqlite").exists() or _empty(target), name

    other_key = Settings(env="test", data_dir=tmp_path / "k",
                         template_key="b3RoZXIta2V5LW90aGVyLWtleS1vdGhlci1rZXktMzI=")  # type: ignore[arg-type]
    with pytest.raises(BackupError, match="wrong key"):
        restore_backup(other_key, out)


def _empty(settings: Settings) -> bool:
    c = AppContext(settings)
    try:
        with c.db.session() as s:
            return s.scalar(select(func.count(AuditEvent.id))) == 0
    finally:
        c.close()
