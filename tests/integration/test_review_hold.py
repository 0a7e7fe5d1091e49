"""A pass held for review (rules.hold): while a case opened for a sign of an attack, a death record dated before a
standing confirmation or a tip-off is undecided, a later self-service session of the same pensioner that passes every
check goes to review too (HELD_FOR_REVIEW) instead of confirming; parallel sessions are decided one at a time. Real
talking-head frames through the paced service and the real dlib engine; the earlier cases are opened the way the
services open them."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from numpy.typing import NDArray
from sqlalchemy import select
from sqlalchemy.orm import Session

from lifecert.config import Settings
from lifecert.domain.cases import load_payload
from lifecert.domain.errors import ErrorCode
from lifecert.domain.idnumber import make_id_number
from lifecert.engine.base import FaceEngine
from lifecert.services import assisted, staff
from lifecert.services.context import AppContext
from lifecert.services.templates import upsert_pensioner
from lifecert.services.verification import VerificationService
from lifecert.services.verification.messages import message_for
from lifecert.services.verification.rules import Analysis
from lifecert.storage.models import Pensioner, ReviewCase, ReviewKind, SurvivalConfirmation
from lifecert.storage.models_data import Outcome
from lifecert.storage.models_verification import VerificationSession
from server.app import create_app
from tests.conftest import empty_postgres, make_settings
from tests.db_support import SecondTransaction
from tests.integration.console_support import login, make_case, make_user
from tests.integration.test_data_support import DEATH_HEADER, do_import, write_csv
from tests.integration.verification_support import act_blink_open_mouth, enroll
from tests.paced_client import Clip, VirtualTime


def _template(clip: Clip) -> NDArray[np.uint8]:
    assert clip.template is not None
    return clip.template


@contextlib.contextmanager
def _service(tmp_path: Path, engine: FaceEngine, frame_engine: FaceEngine,
             **verification: object) -> Iterator[tuple[AppContext, VerificationService, VirtualTime]]:
    """A test context (fixed challenges blink,open_mouth: the clip acts both) with these verification settings, and
    the paced service on a virtual clock."""
    ctx = AppContext(make_settings(tmp_path, fixed_challenges="blink,open_mouth", verification=verification))
    ctx.set_engine(engine)
    clock = VirtualTime()
    try:
        yield ctx, VerificationService(ctx, engine_factory=lambda: frame_engine, clock=clock), clock
    finally:
        ctx.close()


def _self_service(svc: VerificationService, clock: VirtualTime, clip: Clip, p: Pensioner) -> VerificationSession:
    return act_blink_open_mouth(svc, clock, clip, svc.create_session(p.id_number, p.name, client_addr="10.0.0.7"))


def _confirmations(ctx: AppContext, pensioner_id: int) -> list[SurvivalConfirmation]:
    with ctx.db.session() as s:
        rows = list(s.scalars(select(SurvivalConfirmation).where(SurvivalConfirmation.pensioner_id == pensioner_id)))
        s.expunge_all()
    return rows


def _close(ctx: AppContext, case_id: int) -> None:
    with ctx.db.session() as s:
        case = s.get(ReviewCase, case_id)
        assert case is not None
        case.status, case.decision = "closed", "rejected"


def test_given_an_undecided_attack_case_when_the_pensioner_passes_later_then_held_until_it_is_decided(
        tmp_path: Path, face_engine: FaceEngine, frame_engine: FaceEngine, clip: Clip) -> None:
    with _service(tmp_path, face_engine, frame_engine) as (ctx, svc, clock):
        p = enroll(ctx, _template(clip), seq=81)
        attack = make_case(ctx, p.id, reason="PRESENTATION_ATTACK")  # an earlier session refused by PAD, unlooked at

        held = _self_service(svc, clock, clip, p)
        assert (held.decision, held.reason_code) == ("REVIEW", ErrorCode.HELD_FOR_REVIEW)
        assert held.confirmation_id is None and not _confirmations(ctx, p.id)
        assert held.scores["held_by_case"] == attack
        assert all(c["passed"] for c in held.challenge_results)  # it passed every check: only the hold stopped it
        with ctx.db.session() as s:
            case = s.get(ReviewCase, held.review_case_id)
            assert case is not None and case.reason == "HELD_FOR_REVIEW" and case.pensioner_id == p.id
            assert load_payload(case.payload).analysis["held_by_case"] == attack  # type: ignore[union-attr]
        assert svc.get_result(held.id).message_zh == message_for(ErrorCode.HELD_FOR_REVIEW)[0]
        assert "attack" not in svc.get_result(held.id).message_en.lower()
        # the caseworker's page of the held session names the case it waits for, with a link
        make_user(ctx, "cw_hold", "caseworker")
        client = TestClient(create_app(ctx=ctx))  # not entered: no engine warm-up for a console page
        login(client, "cw_hold")
        page = client.get(f"/console/cases/{held.review_case_id}")
        assert page.status_code == 200, page.text
        assert 'id="held-by"' in page.text and f'href="/console/cases/{attack}"' in page.text
        # and the attack case's page lists the held one among the pensioner's other open cases
        page = client.get(f"/console/cases/{attack}")
        assert page.status_code == 200, page.text
        assert 'id="other-open"' in page.text and f'href="/console/cases/{held.review_case_id}"' in page.text
        # enrollment staff, on an enrollment case of the same pensioner, are not shown the queues they do not work
        fix = make_case(ctx, p.id, kind=ReviewKind.ENROLLMENT, reason="BLURRY")
        make_user(ctx, "es_hold", "enrollment_staff")
        staff_client = TestClient(create_app(ctx=ctx))
        login(staff_client, "es_hold")
        page = staff_client.get(f"/console/cases/{fix}")
        assert page.status_code == 200, page.text
        assert f'href="/console/cases/{attack}"' not in page.text and 'id="other-open"' not in page.text

        # once the caseworker has decided the attack case, the pensioner's next pass confirms
        _close(ctx, attack)
        after = _self_service(svc, clock, clip, p)
        assert after.decision == "CONFIRMED" and after.reason_code is None and "held_by_case" not in after.scores
        assert [c.method for c in _confirmations(ctx, p.id)] == ["face_self_service"]


def test_given_an_undecided_attack_case_when_a_community_worker_runs_the_capture_then_it_confirms(
        tmp_path: Path, face_engine: FaceEngine, frame_engine: FaceEngine, clip: Clip) -> None:
    """The assisted session is the channel the agency controls (a worker in the room): the hold does not apply."""
    with _service(tmp_path, face_engine, frame_engine) as (ctx, svc, clock):
        p = enroll(ctx, _template(clip), seq=85)
        make_case(ctx, p.id, reason="LIVENESS_FAILED")
        with ctx.db.session() as s:
            u = staff.create_user(s, "worker1", "correct-horse-battery", "community_worker", region_code="110000",
                                  actor="test", actor_role="cli")
            worker = staff.principal_for(u, "token")
        start = assisted.start_assisted(svc, worker, p.id_number, p.name, device="phone", location="北京")
        vs = act_blink_open_mouth(svc, clock, clip, start)
        assert vs.decision == "CONFIRMED"
        assert [c.method for c in _confirmations(ctx, p.id)] == ["assisted"]


@pytest.mark.parametrize(("reason", "hold"), [
    ("LOW_MATCH", True),  # an ageing face, not a sign of an attack
    ("PRESENTATION_ATTACK", False),  # the hold switched off (LIFECERT_VERIFICATION__HOLD_WHILE_IN_REVIEW=0)
])
def test_given_an_open_case_that_does_not_hold_when_the_pensioner_passes_then_confirmed(
        tmp_path: Path, face_engine: FaceEngine, frame_engine: FaceEngine, clip: Clip, reason: str,
        hold: bool) -> None:
    with _service(tmp_path, face_engine, frame_engine, hold_while_in_review=hold) as (ctx, svc, clock):
        p = enroll(ctx, _template(clip), seq=87)
        make_case(ctx, p.id, reason=reason)
        vs = _self_service(svc, clock, clip, p)
        assert vs.decision == "CONFIRMED" and len(_confirmations(ctx, p.id)) == 1


def test_given_a_face_pass_after_a_death_when_the_death_record_arrives_then_the_next_pass_is_held(
        tmp_path: Path, face_engine: FaceEngine, frame_engine: FaceEngine, clip: Clip) -> None:
    """冒领: the pensioner died a month ago and a face session (a replay, say) confirmed her today; the police's
    monthly deregistration extract then records the death, dated before that confirmation, which opens a
    DEATH_AFTER_CONFIRMATION conflict (datamatch) instead of a suspension. Until a caseworker has weighed the two
    records, the next face pass is held, not confirmed; a tip-off holds the same way."""
    with _service(tmp_path, face_engine, frame_engine) as (ctx, svc, clock):
        p = enroll(ctx, _template(clip), seq=89, name="何平")
        first = _self_service(svc, clock, clip, p)
        assert first.decision == "CONFIRMED"
        now = datetime.now(UTC)
        died = (now - timedelta(days=30)).date().isoformat()
        s = do_import(ctx, "police_deregistration", write_csv(tmp_path / "d.csv", DEATH_HEADER,
                                                               [[p.id_number, p.name, died, ""]]), received_at=now)
        assert s.outcomes == {Outcome.CONFLICT: 1}, s.outcomes
        with ctx.db.session() as db:
            conflict = db.scalars(select(ReviewCase.id).where(ReviewCase.reason == "DEATH_AFTER_CONFIRMATION")).one()
        held = _self_service(svc, clock, clip, p)
        assert (held.decision, held.reason_code) == ("REVIEW", ErrorCode.HELD_FOR_REVIEW)
        assert held.scores["held_by_case"] == conflict and len(_confirmations(ctx, p.id)) == 1

        _close(ctx, conflict)  # the caseworker found her alive (the record was wrong)
        tip = make_case(ctx, p.id, kind=ReviewKind.TIP_OFF, reason="TIP_OFF")  # then a neighbour reports her
        again = _self_service(svc, clock, clip, p)
        assert (again.decision, again.scores.get("held_by_case")) == ("REVIEW", tip)


@pytest.fixture
def pg_hold_ctx(postgres_url: str, tmp_path: Path, face_engine: FaceEngine) -> Iterator[AppContext]:
    empty_postgres(postgres_url)
    c = AppContext(Settings(env="test", data_dir=tmp_path / "data", database_url=postgres_url,
                            verification={"audit_sample_rate": 0.0}))  # type: ignore[arg-type]
    c.set_engine(face_engine)
    yield c
    c.close()


@pytest.mark.postgres
def test_given_two_sessions_finished_together_on_postgres_when_the_first_is_refused_then_the_second_is_held(
        pg_hold_ctx: AppContext) -> None:
    """An attacker runs several sessions at once and sends their last chunks together, hoping every pass is
    decided before any refusal is on record. The interleaving is forced: A's decision (a PAD refusal, written
    the way the service writes it) is made but not committed; B's decision (a pass), in its own thread and
    connection, must wait for A (the per-pensioner decision lock), then sees A's case and is held. Without the
    lock B does not wait and the test fails (B would be CONFIRMED: A's case was not committed yet)."""
    ctx = pg_hold_ctx
    svc = VerificationService(ctx)
    now = datetime.now(UTC)
    with ctx.db.session() as s:
        p = upsert_pensioner(s, make_id_number("110101", date(1950, 3, 7), 91), "王秀英")
        s.add_all(VerificationSession(id=sid, pensioner_id=p.id, nonce_hash="0" * 64, lead_in_ms=0,
                                      challenge_window_ms=0, expires_at=now + timedelta(minutes=5))
                  for sid in ("race-a", "race-b"))
        pid = p.id

    def decide(db: Session, sid: str, decision: str, reason: str | None) -> None:
        p, vs = db.get(Pensioner, pid), db.get(VerificationSession, sid)
        assert p is not None and vs is not None
        svc._record(db, vs, p, Analysis(decision, reason, None, {}), [], [], "10.0.0.9")

    a = ctx.db.sessionmaker()
    try:
        decide(a, "race-a", "REVIEW", str(ErrorCode.PRESENTATION_ATTACK))
        b = SecondTransaction(ctx, lambda db: decide(db, "race-b", "CONFIRMED", None))
        b.wait_until_blocked()  # fails when B does not wait for A
        a.commit()
    finally:
        a.close()
    b.join()
    with ctx.db.session() as s:
        first, second_vs = s.get(VerificationSession, "race-a"), s.get(VerificationSession, "race-b")
        assert first is not None and second_vs is not None
        assert (second_vs.decision, second_vs.reason_code) == ("REVIEW", ErrorCode.HELD_FOR_REVIEW)
        assert first.review_case_id is not None and second_vs.scores["held_by_case"] == first.review_case_id
        assert s.scalars(select(SurvivalConfirmation).where(SurvivalConfirmation.pensioner_id == pid)).all() == []
