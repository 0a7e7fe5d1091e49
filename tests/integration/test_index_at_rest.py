"""Issue 11 H2 and the file-mode Low item: decrypted templates never reach the disk, and what the
service does write under its data directory is readable by its owner only."""

from __future__ import annotations

import stat
from pathlib import Path

import numpy as np

from lifecert.config import Settings
from lifecert.services import templates
from lifecert.services.context import AppContext
from lifecert.storage.models import Pensioner, Photo
from tests.integration.console_support import make_pensioner

MODEL = "test:vectors:1"


def _add_templates(ctx: AppContext, n: int, start: int = 0) -> np.ndarray:
    rng = np.random.default_rng(7 + start)
    vecs = rng.normal(size=(n, 128)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    for i, v in enumerate(vecs, start):
        pid = make_pensioner(ctx, i + 1)
        with ctx.db.session() as s:
            p = s.get(Pensioner, pid)
            sha = f"{i:064x}"
            s.add(Photo(sha256=sha, size=1, width=1, height=1))
            s.flush()
            templates.add_template(ctx, s, p, v, photo_sha256=sha, quality={}, model_key=MODEL, engine="test")
    return vecs


def _all_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def test_given_templates_when_index_built_and_searched_then_no_file_holds_a_plaintext_template(
        data_ctx: AppContext, settings: Settings) -> None:
    vecs = _add_templates(data_ctx, 12)
    with data_ctx.db.session() as s:
        idx = data_ctx.index.get(s, MODEL)
        hits = idx.search(vecs[3], k=1)
    assert hits and hits[0].score > 0.99

    needles = [v.astype("<f4").tobytes()[:32] for v in vecs]
    for f in _all_files(settings.data_dir):
        blob = f.read_bytes()
        assert not any(n in blob for n in needles), f"plaintext template bytes in {f}"
    index_dir = settings.data_dir / "index"
    assert not index_dir.exists() or list(index_dir.iterdir()) == []


def test_given_plaintext_index_files_from_an_old_version_when_index_built_then_they_are_deleted(
        data_ctx: AppContext, settings: Settings) -> None:
    _add_templates(data_ctx, 2)
    old = settings.data_dir / "index"
    old.mkdir(parents=True, exist_ok=True)
    for name in (f"{MODEL}.faiss", f"{MODEL}.ids.npz", f"{MODEL}.stamp.json"):
        (old / name.replace(":", "_")).write_bytes(b"old plaintext index")

    with data_ctx.db.session() as s:
        data_ctx.index.get(s, MODEL)

    assert list(old.iterdir()) == []


def test_given_templates_changed_when_index_asked_again_then_it_is_rebuilt_in_memory(data_ctx: AppContext) -> None:
    _add_templates(data_ctx, 3)
    with data_ctx.db.session() as s:
        first = data_ctx.index.get(s, MODEL)
    _add_templates(data_ctx, 5, start=3)
    with data_ctx.db.session() as s:
        assert data_ctx.index.is_stale(s, MODEL)
        second = data_ctx.index.get(s, MODEL)
    assert second.size == first.size + 5


def test_given_a_new_data_directory_when_the_sqlite_database_is_created_then_only_the_owner_can_read_it(
        data_ctx: AppContext, settings: Settings) -> None:
    db_file = settings.data_dir / "lifecert.sqlite"
    with data_ctx.db.session() as s:
        s.add(Photo(sha256="f" * 64, size=1, width=1, height=1))

    for f in [db_file, *db_file.parent.glob("lifecert.sqlite-*")]:
        assert stat.S_IMODE(f.stat().st_mode) & 0o077 == 0, f"{f} is {oct(f.stat().st_mode)}"
