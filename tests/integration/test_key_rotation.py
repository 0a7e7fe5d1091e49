"""Issue 11 M8: every sealed blob names its key; `lifecert keys rotate` re-seals templates, photos and
frames under a new key, online and resumable, on SQLite and PostgreSQL; the old key can then go."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from lifecert.config import Settings, get_settings
from lifecert.domain.errors import LifecertError
from lifecert.services import keys, templates
from lifecert.services.context import AppContext
from lifecert.services.verification.store import session_blob_aad as session_aad
from lifecert.storage.crypto import Cipher, key_id
from lifecert.storage.models import Pensioner, Photo
from lifecert.storage.models_verification import VerificationSession
from tests.conftest import empty_postgres
from tests.integration.console_support import make_pensioner

MODEL = "test:vectors:1"
OLD = os.urandom(32)
NEW = os.urandom(32)


def _b64(k: bytes) -> str:
    return base64.b64encode(k).decode()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str | None:
    if request.param == "postgres":
        url: str = request.getfixturevalue("postgres_url")
        empty_postgres(url)
        return url
    return None


def _ctx(tmp_path: Path, url: str | None, key: bytes, retired: list[bytes] | None = None) -> AppContext:
    return AppContext(Settings(env="test", data_dir=tmp_path / "data", database_url=url, template_key=_b64(key),
                               retired_template_keys=",".join(_b64(k) for k in retired) if retired else None))  # type: ignore[arg-type]


def _fill(ctx: AppContext, n: int) -> list[np.ndarray]:
    """n templates with photos, plus one verification session with a sealed frame file."""
    rng = np.random.default_rng(1)
    vecs = []
    for i in range(n):
        pid = make_pensioner(ctx, i + 1)
        v = rng.normal(size=128).astype(np.float32)
        with ctx.db.session() as s:
            p = s.get(Pensioner, pid)
            assert p is not None
            sha = ctx.photos.put(f"photo {i}".encode())
            s.add(Photo(sha256=sha, size=7, width=1, height=1))
            s.flush()
            templates.add_template(ctx, s, p, v, photo_sha256=sha, quality={}, model_key=MODEL, engine="test")
        vecs.append(v)
    ctx.blobs.put("sessions/s1.bin", ctx.cipher.seal(b"frames", session_aad("s1")))
    with ctx.db.session() as s:
        from datetime import UTC, datetime
        now = datetime.now(UTC)
        s.add(VerificationSession(id="s1", pensioner_id=1, nonce_hash="0" * 64, challenges=[], lead_in_ms=0,
                                  challenge_window_ms=0, expires_at=now, frames_blob="s1.bin"))
    return vecs


def test_given_a_blob_when_sealed_then_it_names_its_key_and_other_keys_cannot_open_it() -> None:
    blob = Cipher(OLD).seal(b"x", b"aad")
    assert Cipher.key_id_of(blob) == key_id(OLD)
    assert Cipher(NEW, [OLD]).open(blob, b"aad") == b"x"
    with pytest.raises(LifecertError, match="not configured"):
        Cipher(NEW).open(blob, b"aad")
    forged = blob[:1] + bytes.fromhex(key_id(NEW)) + blob[9:]  # relabelled: the key id is authenticated
    with pytest.raises(LifecertError):
        Cipher(NEW, [OLD]).open(forged, b"aad")


def test_given_data_under_an_old_key_when_rotated_in_two_runs_then_all_under_the_new_key_and_old_retired(
        tmp_path: Path, db_url: str | None) -> None:
    with _ctx(tmp_path, db_url, OLD) as old:
        vecs = _fill(old, 5)
    with _ctx(tmp_path, db_url, NEW, [OLD]) as ctx:
        # An interrupted first run (batch of 2, stopped after the first progress report) ...
        class Stop(Exception):
            pass

        def stop_early(kind: str, done: int, seen: int) -> None:
            raise Stop

        with pytest.raises(Stop):
            keys.rotate(ctx, batch=2, progress=stop_early)
        mid = keys.status(ctx)
        assert mid["templates"][key_id(NEW)] == 2 and mid["templates"][key_id(OLD)] == 3
        # ... then a complete run continues where it stopped.
        seen: list[tuple[str, int, int]] = []
        rep = keys.rotate(ctx, batch=2, progress=lambda *a: seen.append(a))
        assert rep.resealed["templates"] == 3 and rep.resealed["photos"] == 5 and rep.resealed["session_frames"] == 1
        assert seen  # progress was reported
        after = keys.status(ctx)
        assert all(set(c) <= {key_id(NEW)} for c in after.values()), after
        assert keys.rotate(ctx).resealed.total() == 0  # nothing left: idempotent
    with _ctx(tmp_path, db_url, NEW) as retired:  # the old key is gone from the configuration
        with retired.db.session() as s:
            idx = retired.index.get(s, MODEL)
        assert idx.search(vecs[2] / np.linalg.norm(vecs[2]), 1)[0].pensioner_id == 3
        assert retired.photos.get(templates_photo_sha(retired, 1)) == b"photo 0"
        assert retired.cipher.open(retired.blobs.get("sessions/s1.bin"), session_aad("s1")) == b"frames"


def templates_photo_sha(ctx: AppContext, pensioner_id: int) -> str:
    from sqlalchemy import select

    from lifecert.storage.models import FaceTemplate

    with ctx.db.session() as s:
        sha = s.scalars(select(FaceTemplate.photo_sha256).where(FaceTemplate.pensioner_id == pensioner_id)).first()
    assert sha is not None
    return sha


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("LIFECERT_ENV", "test")
    monkeypatch.setenv("LIFECERT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LIFECERT_TEMPLATE_KEY", _b64(NEW))
    monkeypatch.setenv("LIFECERT_RETIRED_TEMPLATE_KEYS", _b64(OLD))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_given_cli_when_keys_rotate_then_status_shows_only_the_current_key(tmp_path: Path, cli_env: None) -> None:
    from lifecert.cli import app

    with _ctx(tmp_path, None, OLD) as old:
        _fill(old, 2)
    runner = CliRunner()
    before = runner.invoke(app, ["keys", "status"])
    assert before.exit_code == 0 and key_id(OLD) in before.output

    r = runner.invoke(app, ["keys", "rotate", "--batch", "1"])

    assert r.exit_code == 0, r.output
    assert "templates: 2 of 2 re-sealed" in r.output
    after = runner.invoke(app, ["keys", "status"])
    assert key_id(OLD) not in after.output.split("configured:")[1].split("\n", 1)[1]
