"""Community workers (issue 15 item 3) on real faces through the real engine: home visits closed on
site with a photo, and assisted certification through the staff API and the same paced capture."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from lifecert.domain.errors import ErrorCode, LifecertError
from lifecert.engine.base import FaceEngine
from lifecert.engine.image import encode_jpeg, read_image_file
from lifecert.services import assisted, staff
from lifecert.services.context import AppContext
from lifecert.services.review import visits
from lifecert.services.staff import Principal
from lifecert.services.verification import VerificationService
from lifecert.services.withdrawal import withdraw_confirmation
from lifecert.storage.models import AuditEvent, ReviewCase, SurvivalConfirmation
from lifecert.storage.models_staff import HomeVisitStatus, HomeVisitTask
from tests.conftest import make_settings
from tests.integration.console_support import make_user
from tests.integration.verification_support import (
    TEMPLATE_FRAME,
    VIDEO,
    act_blink_open_mouth,
    enroll,
    read_video,
    serve,
)
from tests.paced_client import Clip, VirtualTime

BLAIR = "lfw/images/Tony_Blair/Tony_Blair_{:04d}.jpg"


@pytest.fixture
def wctx(tmp_path: Path, face_engine: FaceEngine) -> Iterator[AppContext]:
    c = AppContext(make_settings(tmp_path, fixed_challenges="blink,open_mouth",
                                 assisted={"max_per_worker_per_day": 2}))
    c.set_engine(face_engine)
    yield c
    c.close()


def principal(ctx: AppContext, username: str, role: str, region: str | None = None) -> Principal:
    with ctx.db.session() as s:
        u = staff.create_user(s, username, "correct-horse-battery", role, region_code=region, actor="test",
                              actor_role="cli")
        return staff.principal_for(u, "token")


def visit_task(ctx: AppContext, pensioner_id: int, region: str = "110101") -> int:
    with ctx.db.session() as s:
        t = HomeVisitTask(pensioner_id=pensioner_id, region_code=region, address="通江路 12 号", note="卧床")
        s.add(t)
        s.flush()
        return t.id


def test_given_assigned_worker_when_closing_visit_with_photos_then_no_face_stays_open_match_confirms(
        wctx: AppContext, faces_dir: Path) -> None:
    p = enroll(wctx, read_image_file(faces_dir / BLAIR.format(1)), seq=71)
    caseworker = principal(wctx, "cw1", "caseworker")
    worker = principal(wctx, "worker1", "community_worker", region="110100")
    other = principal(wctx, "worker2", "community_worker", region="110100")
    task_id = visit_task(wctx, p.id)
    blank = encode_jpeg(np.full((480, 640, 3), 128, np.uint8), 90)
    onsite = (faces_dir / BLAIR.format(2)).read_bytes()
    with wctx.db.session() as s:
        with pytest.raises(LifecertError) as e:  # not assigned yet: nobody closes it
            visits.close_visit(wctx, s, worker, task_id, onsite, "见到本人")
        assert e.value.code == ErrorCode.FORBIDDEN
        visits.assign_visit(s, caseworker, task_id, "worker1")
    with wctx.db.session() as s:
        with pytest.raises(LifecertError) as e:  # another worker
            visits.close_visit(wctx, s, other, task_id, onsite, "见到本人")
        assert e.value.code == ErrorCode.FORBIDDEN
        no_face = visits.close_visit(wctx, s, worker, task_id, blank, "光线太暗")
    assert (no_face.status, no_face.result, no_face.confirmation_id) == ("open", "NO_FACE", None)
    with wctx.db.session() as s:
        done = visits.close_visit(wctx, s, worker, task_id, onsite, "见到本人，卧床，精神尚可")
    assert done.status == HomeVisitStatus.DONE and done.result == "CONFIRMED", done
    assert done.match is not None and done.threshold is not None and done.match >= done.threshold
    with wctx.db.session() as s:
        conf = s.get(SurvivalConfirmation, done.confirmation_id)
        assert conf is not None and conf.method == "home_visit" and conf.created_by == worker.user_id
        assert conf.evidence["worker"] == "worker1" and conf.pensioner_id == p.id
        t = s.get(HomeVisitTask, task_id)
        assert t is not None and t.attempts == 2 and t.photo_sha256 and "精神尚可" in t.note
        actions = list(s.scalars(select(AuditEvent.action).where(AuditEvent.object_type == "home_visit_task")))
        assert actions == ["visit.assigned", "visit.photo_refused", "visit.closed"]
        with pytest.raises(LifecertError) as e:  # closed once
            visits.close_visit(wctx, s, worker, task_id, onsite, "again")
        assert e.value.code == ErrorCode.CONFLICT


def test_given_someone_else_on_the_onsite_photo_when_closing_then_review_case_and_no_confirmation(
        wctx: AppContext, faces_dir: Path) -> None:
    p = enroll(wctx, read_image_file(faces_dir / BLAIR.format(1)), seq=72)
    caseworker = principal(wctx, "cw1", "caseworker")
    worker = principal(wctx, "worker1", "community_worker")
    task_id = visit_task(wctx, p.id)
    with wctx.db.session() as s:
        visits.assign_visit(s, caseworker, task_id, "worker1")
        out = visits.close_visit(wctx, s, worker, task_id,
                                 (faces_dir / "lfw/images/Colin_Powell/Colin_Powell_0001.jpg").read_bytes(), "见到")
    assert (out.status, out.result, out.confirmation_id) == ("review", "LOW_MATCH", None)
    with wctx.db.session() as s:
        case = s.get(ReviewCase, out.review_case_id)
        assert case is not None and case.reason == "LOW_MATCH" and case.pensioner_id == p.id
        assert s.scalars(select(SurvivalConfirmation)).first() is None


def test_given_worker_when_assisted_capture_runs_then_confirmed_as_assisted_limited_and_reported(
        wctx: AppContext, faces_dir: Path, frame_engine: FaceEngine, clip: Clip) -> None:
    clock = VirtualTime()
    svc = VerificationService(wctx, engine_factory=lambda: frame_engine, clock=clock)
    video = read_video(faces_dir / VIDEO)
    p = enroll(wctx, video[TEMPLATE_FRAME], seq=73)
    worker = principal(wctx, "worker1", "community_worker", region="110000")
    far = principal(wctx, "worker9", "community_worker", region="220000")
    with pytest.raises(LifecertError) as e:  # not this worker's region: like an unknown person
        assisted.start_assisted(svc, far, p.id_number, p.name, device="phone", location="长春")
    assert e.value.code == ErrorCode.NOT_FOUND
    start = assisted.start_assisted(svc, worker, p.id_number, p.name, device="Redmi 9A Chrome 120",
                                    location="东城区和平里 3 号楼", client_addr="10.9.9.9")
    vs = act_blink_open_mouth(svc, clock, clip, start, reaction_ms=1500)
    assert vs.decision == "CONFIRMED", (vs.reason_code, vs.scores)
    with wctx.db.session() as s:
        conf = s.scalars(select(SurvivalConfirmation)).one()
        assert conf.method == "assisted" and conf.created_by == worker.user_id
        assert conf.evidence["device"] == "Redmi 9A Chrome 120" and conf.evidence["location"] == "东城区和平里 3 号楼"
        started = s.scalars(select(AuditEvent).where(AuditEvent.action == "assisted.session_started")).one()
        assert started.actor == "worker1" and started.detail["location"] == "东城区和平里 3 号楼"
    # the daily limit (2 in this test): the second start is allowed, the third refused with a typed error
    assisted.start_assisted(svc, worker, p.id_number, p.name, device="phone", location="同上")
    with pytest.raises(LifecertError) as e:
        assisted.start_assisted(svc, worker, p.id_number, p.name, device="phone", location="同上")
    assert e.value.code == ErrorCode.RATE_LIMITED and e.value.details["limit"] == 2
    # the next local day the worker may start again
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    with wctx.db.session() as s:
        assert assisted.used_today(s, worker.user_id, tomorrow, 8) == 0
        rows = assisted.worker_report(s, date.today() - timedelta(days=1), date.today() + timedelta(days=1))
    assert [(r["worker"], r["started"], r["confirmed"], r["undecided"], r["distinct_pensioners"]) for r in rows] == [
        ("worker1", 2, 1, 1, 1)]
    assert rows[0]["withdrawn"] == 0 and "withdrawn_confirmations" not in rows[0]["flags"].split()
    # caseworkers later withdraw the assisted confirmation (fraud, two signatures): the worker's line says so
    with wctx.db.session() as s:
        assisted_conf = s.scalars(select(SurvivalConfirmation)).one()
        withdraw_confirmation(s, assisted_conf.id, by=None, actor="cw_b", role="caseworker", reason="fraud approved")
    with wctx.db.session() as s:
        rows = assisted.worker_report(s, date.today() - timedelta(days=1), date.today() + timedelta(days=1))
    assert [(r["confirmed"], r["withdrawn"]) for r in rows] == [(1, 1)]
    assert rows[0]["flags"].split()[0] == "withdrawn_confirmations"  # (night_sessions may follow: wall-clock hour)


def test_given_staff_api_when_worker_starts_assisted_session_then_paced_start_and_roles_enforced(
        wctx: AppContext, face_engine: FaceEngine, faces_dir: Path) -> None:
    p = enroll(wctx, read_image_file(faces_dir / BLAIR.format(1)), seq=74)
    make_user(wctx, "worker1", "community_worker")
    make_user(wctx, "cw1", "caseworker")
    with wctx.db.session() as s:
        w_token, _ = staff.create_api_token(s, "worker1", actor="test", actor_role="cli")
        c_token, _ = staff.create_api_token(s, "cw1", actor="test", actor_role="cli")
    body = {"id_number": p.id_number, "name": p.name, "location": "和平里社区"}
    for c in serve(wctx, face_engine):
        r = c.post("/api/staff/assisted/sessions", json=body,
                   headers={"Authorization": f"Bearer {w_token}", "User-Agent": "TestPhone/1.0"})
        denied = c.post("/api/staff/assisted/sessions", json=body, headers={"Authorization": f"Bearer {c_token}"})
        anon = c.post("/api/staff/assisted/sessions", json=body)
        report = c.get("/api/staff/assisted/report.csv", headers={"Authorization": f"Bearer {c_token}"})
        worker_report = c.get("/api/staff/assisted/report.csv", headers={"Authorization": f"Bearer {w_token}"})
    assert r.status_code == 201, r.text
    assert r.json()["protocol"] == "paced" and r.json()["step"]["kind"] == "settle"
    assert denied.status_code == 403 and anon.status_code == 401
    assert worker_report.status_code == 403
    assert report.status_code == 200
    rows = list(csv.DictReader(io.StringIO(report.text)))
    assert [(x["worker"], x["started"], x["undecided"]) for x in rows] == [("worker1", "1", "1")]
    assert p.id_number not in report.text and p.name not in report.text
    with wctx.db.session() as s:
        ev = s.scalars(select(AuditEvent).where(AuditEvent.action == "assisted.session_started")).one()
        assert ev.detail["device"] == "TestPhone/1.0"
