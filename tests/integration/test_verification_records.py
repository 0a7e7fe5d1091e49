"""Confirmations (record, status, due, overdue, CLI) and purge of session frames after the review period."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from sqlalchemy import select
from typer.testing import CliRunner

from lifecert.config import get_settings
from lifecert.domain.errors import ErrorCode, LifecertError
from lifecert.domain.idnumber import make_id_number
from lifecert.engine.base import FaceEngine
from lifecert.engine.image import encode_jpeg
from lifecert.services.confirmations import add_months, due_within, overdue, record_confirmation, status_of
from lifecert.services.context import AppContext
from lifecert.services.templates import upsert_pensioner
from lifecert.services.verification import VerificationService, open_session_frames, purge_expired
from lifecert.storage.models import AuditEvent, ConfirmationMethod, Pensioner, PensionerStatus, ReviewCase
from lifecert.storage.models_verification import VerificationChunk, VerificationSession
from tests.conftest import make_settings
from tests.integration.verification_support import TEMPLATE_FRAME, VIDEO, enroll, read_video
from tests.paced_client import Answer, Clip, Phone, SimClock, VirtualTime, service_sender, step_of

TODAY = date(2026, 11, 25)


def _pensioner(ctx: AppContext, seq: int, name: str) -> Pensioner:
    with ctx.db.session() as s:
        p = upsert_pensioner(s, make_id_number("310101", date(1951, 2, 3), seq), name)
        s.expunge(p)
    return p


def _confirm(ctx: AppContext, p: Pensioner, evidence: date) -> None:
    with ctx.db.session() as s:
        pen = s.get(Pensioner, p.id)
        assert pen is not None
        record_confirmation(s, pen, ConfirmationMethod.DATA_COMPARISON, evidence, "test", {"k": 1}, cycle_months=12)


def test_given_month_end_when_adding_months_then_clamped_to_last_day() -> None:
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert add_months(date(2027, 11, 30), 3) == date(2028, 2, 29)
    assert add_months(date(2026, 5, 15), 12) == date(2027, 5, 15)


def test_given_confirmations_when_listing_then_due_overdue_and_never_are_separated(ctx: AppContext) -> None:
    fresh = _pensioner(ctx, 31, "甲")
    soon = _pensioner(ctx, 33, "乙")
    late = _pensioner(ctx, 35, "丙")
    never = _pensioner(ctx, 37, "丁")
    gone = _pensioner(ctx, 39, "戊")
    _confirm(ctx, fresh, TODAY - timedelta(days=10))
    _confirm(ctx, soon, add_months(TODAY, -12) + timedelta(days=20))
    _confirm(ctx, late, add_months(TODAY, -12) - timedelta(days=3))
    _confirm(ctx, late, add_months(TODAY, -24))  # an older one does not hide the newest
    with ctx.db.session() as s:
        g = s.get(Pensioner, gone.id)
        assert g is not None
        g.status = PensionerStatus.DECEASED
    with ctx.db.session() as s:
        assert [x.id_number for x in due_within(s, 30, today=TODAY)] == [soon.id_number]
        od = overdue(s, today=TODAY)
        assert [(x.id_number, x.state) for x in od] == [
            (late.id_number, "overdue"),
            (never.id_number, "never_confirmed"),
        ]
        pen = s.get(Pensioner, fresh.id)
        assert pen is not None
        st = status_of(s, pen, today=TODAY)
        assert st.state == "valid" and st.days_left is not None and st.days_left > 300


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AppContext]:
    monkeypatch.setenv("LIFECERT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LIFECERT_ENV", "test")
    get_settings.cache_clear()
    ctx = AppContext()
    yield ctx
    ctx.close()
    get_settings.cache_clear()


def test_given_confirmed_pensioner_when_cli_status_due_overdue_then_reported(
    cli_env: AppContext, tmp_path: Path
) -> None:
    from lifecert.cli import app

    ok = _pensioner(cli_env, 41, "陈平安")
    old = _pensioner(cli_env, 43, "林静")
    _confirm(cli_env, ok, date.today())
    _confirm(cli_env, old, add_months(date.today(), -13))
    runner = CliRunner()
    r = runner.invoke(app, ["status", ok.id_number])
    assert r.exit_code == 0, r.output
    assert "陈平安" in r.output and "valid until" in r.output and "data_comparison" in r.output
    r = runner.invoke(app, ["overdue"])
    assert r.exit_code == 0, r.output
    lines = r.output.strip().splitlines()
    assert lines[0].startswith("id_number,name,state")
    assert [ln.split(",")[0] for ln in lines[1:]] == [old.id_number]
    out = tmp_path / "due.csv"
    r = runner.invoke(app, ["due", "--within", "400d", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert ok.id_number in out.read_text(encoding="utf-8-sig")
    r = runner.invoke(app, ["status", make_id_number("310101", date(1951, 2, 3), 45)])
    assert r.exit_code == 2 and "NOT_FOUND" in r.output


@pytest.fixture(scope="module")
def still_frames(faces_dir: Path) -> tuple[list[bytes], NDArray[np.uint8]]:
    video = read_video(faces_dir / VIDEO)
    return [encode_jpeg(video[30], 85)], video[TEMPLATE_FRAME]


def _paced(svc: VerificationService, clock: VirtualTime, p: Pensioner, shown: list[bytes], addr: str,
           frame_ms: int = 125) -> tuple[str, Answer]:
    """One paced session in-process on the virtual clock; the camera shows ``shown`` (looped, never
    acting a prompt)."""
    st = svc.create_session(p.id_number, p.name, addr)
    sim = SimClock(clock)
    phone = Phone(service_sender(svc, st.session_id, sim, addr), step_of(st.step), Clip(shown, {}), sim,
                  frame_ms=frame_ms, session_id=st.session_id)
    return st.session_id, phone.run()


def test_given_old_sessions_when_purged_then_frames_and_scores_go_unless_review_open(
    tmp_path: Path,
    face_engine: FaceEngine,
    frame_engine: FaceEngine,
    still_frames: tuple[list[bytes], NDArray[np.uint8]],
) -> None:
    ctx = AppContext(make_settings(tmp_path, fixed_challenges="blink,nod"))
    ctx.set_engine(face_engine)
    clock = VirtualTime()
    svc = VerificationService(ctx, engine_factory=lambda: frame_engine, clock=clock)
    frames, template_img = still_frames
    p = enroll(ctx, template_img, seq=47)
    ids = []
    for _ in range(2):
        sid, res = _paced(svc, clock, p, frames, "10.0.0.1")
        assert (res.decision, res.result and res.result["reason_code"]) == ("REVIEW", "LIVENESS_FAILED"), res
        ids.append(sid)
    ts, kept = open_session_frames(ctx, ids[0])
    with ctx.db.session() as s:
        first = s.get(VerificationSession, ids[0])
        assert first is not None and len(kept) == first.frame_count > 10 and set(kept) == set(frames)
        assert ts == sorted(ts)
        actions = s.scalars(select(AuditEvent.action).where(AuditEvent.object_id == ids[0])).all()
        assert actions == ["verification.session_created", "verification.decided"]
        assert first.review_case_id is not None
        case = s.get(ReviewCase, first.review_case_id)
        assert case is not None
        case.status = "closed"
        shas = list(first.best_frame_shas)
    assert shas and all(ctx.photos.exists(x) for x in shas)
    report = purge_expired(ctx, now=datetime.now(UTC) + timedelta(days=91))
    assert (report.sessions, report.held_open_review) == (1, 1)
    with pytest.raises(LifecertError) as gone:
        open_session_frames(ctx, ids[0])
    assert gone.value.code == ErrorCode.FILE_MISSING
    assert open_session_frames(ctx, ids[1])[1]  # held: its review case is still open
    with ctx.db.session() as s:
        first = s.get(VerificationSession, ids[0])
        assert first is not None and first.scores == {} and first.best_frame_shas == [] and first.purged_at is not None
        assert first.decision == "REVIEW"  # the decision itself stays
        chunks = s.scalars(select(VerificationChunk).where(VerificationChunk.session_id == ids[0])).all()
        assert chunks and all(c.frames_sealed is None and c.observations == [] for c in chunks)
    assert purge_expired(ctx, now=datetime.now(UTC) + timedelta(days=10)).sessions == 0
    ctx.close()


def test_given_repeated_failures_when_capturing_then_retry_until_the_limit_then_review(
    tmp_path: Path,
    face_engine: FaceEngine,
    frame_engine: FaceEngine,
    faces_dir: Path,
    still_frames: tuple[list[bytes], NDArray[np.uint8]],
) -> None:
    from lifecert.engine.image import read_image_file

    ctx = AppContext(make_settings(tmp_path, fixed_challenges="blink,nod"))
    ctx.set_engine(face_engine)
    clock = VirtualTime()
    svc = VerificationService(ctx, engine_factory=lambda: frame_engine, clock=clock)
    p = enroll(ctx, still_frames[1], seq=49)
    dark = [encode_jpeg(np.full((480, 360, 3), 12, np.uint8), 80)]
    group = [encode_jpeg(read_image_file(faces_dir / "multi/couple.jpg"), 85)]
    got = []
    for shown in (dark, group, dark, dark):
        _sid, res = _paced(svc, clock, p, shown, "10.0.0.2", frame_ms=500)  # never settles: 2 fps will do
        got.append((res.decision, res.result and res.result["reason_code"]))
    limit = ctx.settings.verification.max_retries_before_review
    assert limit == 3
    assert got == [
        ("RETRY", "TOO_DARK"),
        ("RETRY", "MULTIPLE_FACES"),
        ("RETRY", "TOO_DARK"),
        ("REVIEW", "TOO_MANY_RETRIES"),
    ]
    with ctx.db.session() as s:
        case = s.scalars(select(ReviewCase).where(ReviewCase.pensioner_id == p.id)).one()
        assert case.reason == "TOO_MANY_RETRIES" and case.payload["underlying_reason"] == "TOO_DARK"
    ctx.close()
