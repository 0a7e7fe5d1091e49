"""Issue 11 M7: the audit chain is keyed (HMAC) and anchored by signed checkpoints. Deleting the newest
rows, or editing a row and recomputing the later hashes, is found — on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, text
from typer.testing import CliRunner

from lifecert.config import Settings, get_settings
from lifecert.services import audit, audit_anchor
from lifecert.services.context import AppContext
from lifecert.storage.models import AuditEvent
from tests.conftest import empty_postgres

SEED, PUB = audit_anchor.new_keypair()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def actx(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AppContext]:
    url = None
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
        empty_postgres(url)
    settings = Settings(env="test", data_dir=tmp_path / "data", database_url=url,
                        audit_signing_key=SEED)  # type: ignore[arg-type]
    # The CLI reads the same settings from the environment.
    monkeypatch.setenv("LIFECERT_ENV", "test")
    monkeypatch.setenv("LIFECERT_DATA_DIR", str(settings.data_dir))
    if url:
        monkeypatch.setenv("LIFECERT_DATABASE_URL", url)
    monkeypatch.setenv("LIFECERT_AUDIT_VERIFY_KEY", PUB)
    monkeypatch.delenv("LIFECERT_AUDIT_SIGNING_KEY", raising=False)
    get_settings.cache_clear()
    with AppContext(settings) as ctx:
        yield ctx
    get_settings.cache_clear()


def _seed(ctx: AppContext, n: int = 6) -> list[int]:
    with ctx.db.session() as s:
        return [audit.record(s, actor="wang", role="caseworker", action="case.view", object_type="review_case",
                             object_id=i, detail={"i": i}).id for i in range(n)]


def _checkpoint(ctx: AppContext, path: Path) -> None:
    with ctx.db.session() as s:
        audit_anchor.write_checkpoint(audit_anchor.make_checkpoint(s, audit_anchor.signing_key(ctx.settings)),
                                      str(path))


def _verify_cli(path: Path) -> tuple[int, str]:
    from lifecert.cli import app

    r = CliRunner().invoke(app, ["audit", "verify", "--checkpoint", str(path)])
    return r.exit_code, r.output


def test_given_rows_when_written_then_hashes_are_keyed_and_not_plain_sha256(actx: AppContext) -> None:
    _seed(actx, 2)
    with actx.db.session() as s:
        ev = s.scalars(select(AuditEvent).order_by(AuditEvent.id)).first()
        assert ev is not None and ev.chain_v == audit.KEYED
        assert ev.row_hash != hashlib.sha256(audit._canonical(ev)).hexdigest()


def test_given_a_forger_without_the_key_when_tail_rehashed_as_plain_sha256_then_verify_fails(
        actx: AppContext) -> None:
    ids = _seed(actx)
    with actx.db.session() as s:  # edit row 3 and recompute 3..6 the way the old, unkeyed chain allowed
        prev = s.get(AuditEvent, ids[2]).row_hash  # type: ignore[union-attr]
        for i in ids[3:]:
            ev = s.get(AuditEvent, i)
            assert ev is not None
            if i == ids[3]:
                ev.detail = {"i": "forged"}
            ev.prev_hash, ev.chain_v = prev, 1
            ev.row_hash = hashlib.sha256(audit._canonical(ev)).hexdigest()
            prev = ev.row_hash
    with actx.db.session() as s:
        rep = audit.verify_chain(s)
    assert not rep.ok and rep.first_bad_id == ids[3]


def test_given_a_checkpoint_when_the_newest_rows_are_deleted_then_chain_alone_passes_but_checkpoint_fails(
        actx: AppContext, tmp_path: Path) -> None:
    ids = _seed(actx)
    cps = tmp_path / "checkpoints.jsonl"
    _checkpoint(actx, cps)
    code, output = _verify_cli(cps)
    assert code == 0, output
    with actx.db.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_event WHERE id >= :id"), {"id": ids[4]})

    with actx.db.session() as s:
        assert audit.verify_chain(s).ok  # truncation is invisible to the chain itself
    code, output = _verify_cli(cps)

    assert code == 1
    assert "truncated" in output


def test_given_an_insider_with_the_key_when_a_row_is_edited_and_the_tail_recomputed_then_checkpoint_fails(
        actx: AppContext, tmp_path: Path) -> None:
    ids = _seed(actx)
    cps = tmp_path / "cp.jsonl"
    _checkpoint(actx, cps)
    key = actx.settings.audit_key_bytes()
    with actx.db.session() as s:
        prev = s.get(AuditEvent, ids[1]).row_hash  # type: ignore[union-attr]
        for i in ids[2:]:
            ev = s.get(AuditEvent, i)
            assert ev is not None
            if i == ids[2]:
                ev.actor = "someone_else"
            ev.prev_hash = prev
            ev.row_hash = audit.row_hash(ev, key)
            prev = ev.row_hash
    with actx.db.session() as s:
        assert audit.verify_chain(s).ok

    with actx.db.session() as s:
        rep = audit_anchor.verify_against(s, audit_anchor.read_checkpoints(cps), audit_anchor.verify_key(actx.settings))

    assert not rep.ok and "re-hashed" in rep.problem


def test_given_a_checkpoint_signed_with_another_key_when_verified_then_refused(
        actx: AppContext, tmp_path: Path) -> None:
    _seed(actx)
    other_seed, _ = audit_anchor.new_keypair()
    other = Settings(env="test", audit_signing_key=other_seed)  # type: ignore[arg-type]
    with actx.db.session() as s:
        cp = audit_anchor.make_checkpoint(s, audit_anchor.signing_key(other))
    path = tmp_path / "cp.jsonl"
    path.write_text(json.dumps(cp) + "\n")

    code, output = _verify_cli(path)

    assert code == 1 and "signature" in output


def test_given_cli_checkpoint_command_when_run_then_file_is_owner_only_and_verifies(
        actx: AppContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lifecert.cli import app

    _seed(actx, 3)
    monkeypatch.setenv("LIFECERT_AUDIT_SIGNING_KEY", SEED)
    get_settings.cache_clear()
    path = tmp_path / "cp.jsonl"

    r = CliRunner().invoke(app, ["audit", "checkpoint", "--out", str(path)])

    assert r.exit_code == 0, r.output
    assert path.stat().st_mode & 0o077 == 0
    assert json.loads(path.read_text())["count"] == 3
    assert _verify_cli(path)[0] == 0


def test_given_a_chain_from_before_the_keyed_migration_when_new_rows_are_keyed_then_the_whole_chain_verifies(
        actx: AppContext) -> None:
    ids = _seed(actx, 4)
    with actx.db.session() as s:  # rows 1-4 as migration 0005 leaves them: chain_v 1, plain sha256
        prev = audit.GENESIS
        for i in ids:
            ev = s.get(AuditEvent, i)
            assert ev is not None
            ev.prev_hash, ev.chain_v = prev, 1
            ev.row_hash = hashlib.sha256(audit._canonical(ev)).hexdigest()
            prev = ev.row_hash
    later = _seed(actx, 2)

    with actx.db.session() as s:
        assert audit.verify_chain(s).ok
        first_keyed = s.get(AuditEvent, later[0])
        assert first_keyed is not None and first_keyed.chain_v == audit.KEYED and first_keyed.prev_hash == prev
