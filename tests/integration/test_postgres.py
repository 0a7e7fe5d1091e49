"""The storage layer and the batch job on a real PostgreSQL server (started by scripts/test.sh)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from lifecert.config import Settings
from lifecert.engine.base import FaceEngine
from lifecert.services import audit
from lifecert.services.context import AppContext
from lifecert.storage.models import AuditEvent, FaceTemplate, Pensioner
from tests.conftest import empty_postgres
from tests.integration.test_enrollment_job import ids, lfw_people, run, write_manifest

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_ctx(postgres_url: str, tmp_path: Path, face_engine: FaceEngine) -> Iterator[AppContext]:
    empty_postgres(postgres_url)
    ctx = AppContext(Settings(env="test", data_dir=tmp_path / "data", database_url=postgres_url))
    ctx.set_engine(face_engine)
    yield ctx
    ctx.close()


def test_given_postgres_when_photos_enrolled_then_templates_index_and_audit_chain_hold(
    pg_ctx: AppContext, faces_dir: Path, tmp_path: Path
) -> None:
    assert pg_ctx.db.engine.dialect.name == "postgresql"
    photos = tmp_path / "photos"
    photos.mkdir()
    rows = []
    for i, (p, idn) in enumerate(zip(lfw_people(faces_dir, 4), ids(4), strict=True)):
        (photos / f"{i}.jpg").write_bytes(p[0].read_bytes())
        rows.append((idn, f"测试{i}", f"{i}.jpg"))
    res = run(pg_ctx, photos, write_manifest(photos, rows))
    rerun = run(pg_ctx, photos, write_manifest(photos, rows))
    enrolled = res.counts["ENROLLED"]
    assert enrolled >= 3 and rerun.counts["ALREADY_ENROLLED"] == enrolled
    with pg_ctx.db.session() as s:
        assert s.scalar(select(func.count(FaceTemplate.id))) == enrolled
        p = s.scalars(select(Pensioner).order_by(Pensioner.id)).first()
        assert p is not None and p.name == "测试0" and p.created_at.tzinfo is not None
        assert pg_ctx.index.get(s, pg_ctx.model.key).size == enrolled
        report = audit.verify_chain(s)
        assert report.ok and report.rows >= 4  # start/finish of two runs


def test_given_postgres_when_an_audit_row_is_edited_then_verify_names_that_row(pg_ctx: AppContext) -> None:
    with pg_ctx.db.session() as s:
        for i in range(5):
            audit.record(s, actor="tester", role="auditor", action="read", object_type="pensioner", object_id=i)
    with pg_ctx.db.session() as s:
        target = s.scalars(select(AuditEvent).order_by(AuditEvent.id).offset(2)).first()
        assert target is not None
        s.execute(text("UPDATE audit_event SET object_id = '999' WHERE id = :i"), {"i": target.id})
    with pg_ctx.db.session() as s:
        report = audit.verify_chain(s)
        assert not report.ok and report.first_bad_id == target.id
