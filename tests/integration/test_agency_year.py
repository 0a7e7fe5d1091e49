"""Issue 15, done-when: a year of the agency's cycle for a small synthetic region, on real parts.

Region 110101 runs a fixed 12-month cycle (window opens 30 days before the due date, 30 days of
grace). Real faces from ../shared/faces go through the real engine; the department extract goes
over real mutual TLS; reminders go to a real SMTP server on 127.0.0.1. Time travels by injected
days (``today=`` / ``now=``), never by sleeping. The face-verified confirmations (self, assisted)
carry the real date: the story's year ends today (``D``).

- 王秀英 (the talking-head video, a phone): due 45 days before D; the campaign lists her, an SMS
  reminder goes out; she misses the window and the grace period: a suspension case opens, one
  caseworker proposes, the same caseworker's approval is refused, a second approves; the payment
  export lists her. On D she certifies herself on her phone (paced capture) — allowed because her
  suspension is only for being overdue — and the payment resumes with the months owed computed.
  A community worker then runs an assisted capture with her (the only video in ../shared/faces with
  both actions is hers, so the assisted confirmation is hers too).
- 托尼 (LFW stills, 91, no phone): a home-visit pensioner; the visit is assigned and closed on site
  with another photo of him through the same engine.
- 韩二 (no face template): last confirmed by data comparison; the medical-insurance department
  uploads its monthly extract over mutual TLS and he is confirmed passively again.
At the end nobody in the region is due or overdue, and the audit chain verifies.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from lifecert.domain.errors import ErrorCode, LifecertError
from lifecert.domain.idnumber import make_id_number
from lifecert.domain.policy import CertificationPolicy, Channel, DueState, PolicyKind, add_months, months_owed
from lifecert.engine.base import FaceEngine
from lifecert.engine.image import read_image_file
from lifecert.services import assisted, exchange, staff, suspensions
from lifecert.services.audit import verify_chain
from lifecert.services.campaign import plan_month
from lifecert.services.context import AppContext
from lifecert.services.notify import SmtpNotifier
from lifecert.services.policy import due_of, set_policy
from lifecert.services.reminders import remind
from lifecert.services.review import visits
from lifecert.services.staff import Principal
from lifecert.services.verification import VerificationService
from lifecert.storage.models import ConfirmationMethod, Pensioner, PensionerStatus, SurvivalConfirmation
from lifecert.storage.models_agency import Reminder, Suspension, SuspensionStatus
from lifecert.storage.models_staff import HomeVisitStatus, HomeVisitTask
from tests.conftest import make_settings
from tests.integration.agency_support import smtp_sink
from tests.integration.exchange_support import TestCA, tls_server
from tests.integration.test_data_support import MEDICAL_HEADER
from tests.integration.verification_support import TEMPLATE_FRAME, VIDEO, enroll, read_video
from tests.paced_client import Clip, Phone, SimClock, VirtualTime, service_sender, step_of

REGION = "110101"
URL = "https://rz.example.gov.cn/"
BLAIR = "lfw/images/Tony_Blair/Tony_Blair_{:04d}.jpg"


@pytest.fixture
def yctx(tmp_path: Path, face_engine: FaceEngine) -> Iterator[AppContext]:
    c = AppContext(make_settings(tmp_path, fixed_challenges="blink,open_mouth"))
    c.set_engine(face_engine)
    yield c
    c.close()


def _staff(ctx: AppContext, username: str, role: str) -> Principal:
    with ctx.db.session() as s:
        u = staff.create_user(s, username, "correct-horse-battery", role, actor="test", actor_role="cli")
        return staff.principal_for(u, "token")


def _at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 10, 0, tzinfo=UTC)


def _backdate(ctx: AppContext, pensioner_id: int, method: str, day: date, registered: date) -> None:
    """Their history before this year: registered, last confirmed on ``day``."""
    from lifecert.services.confirmations import record_confirmation

    with ctx.db.session() as s:
        p = s.get(Pensioner, pensioner_id)
        assert p is not None
        p.created_at = _at(registered)
        record_confirmation(s, p, method, day, "before this year", {}, cycle_months=12)


def _capture(ctx: AppContext, frame_engine: FaceEngine, clip: Clip, start: Callable[[VerificationService], Any]) -> Any:
    """One paced capture on its own phone timeline: settle, blink, open the mouth (1.5 s reactions)."""
    clock = VirtualTime()
    svc = VerificationService(ctx, engine_factory=lambda: frame_engine, clock=clock)
    started = start(svc)
    sim = SimClock(clock)
    phone = Phone(service_sender(svc, started.session_id, sim), step_of(started.step), clip, sim, act=False)
    phone.neutral(1500)
    phone.run_step(clip.actions["blink"], reaction_ms=1500)
    r = phone.run_step(clip.actions["open_mouth"], reaction_ms=1500)
    assert r.status == "decided", r
    return r


def test_given_a_small_region_when_a_year_runs_then_plan_reminders_confirmations_suspension_and_exchange(
        yctx: AppContext, faces_dir: Path, frame_engine: FaceEngine, clip: Clip, tmp_path: Path) -> None:
    ctx = yctx
    D = date.today()  # the story's last day
    start = add_months(D, -12)
    with ctx.db.session() as s:
        set_policy(s, CertificationPolicy("1101", PolicyKind.FIXED_CYCLE, add_months(D, -36), cycle_months=12,
                                          open_days=30, grace_days=30), actor="admin", role="admin")

    # -- the register -------------------------------------------------------------------------
    video = read_video(faces_dir / VIDEO)
    wang = enroll(ctx, video[TEMPLATE_FRAME], seq=11, name="王秀英")
    tony = enroll(ctx, read_image_file(faces_dir / BLAIR.format(1)), seq=13, name="托尼")
    with ctx.db.session() as s:
        s.get(Pensioner, wang.id).phone = "13800138000"  # type: ignore[union-attr]
        tp = s.get(Pensioner, tony.id)
        assert tp is not None
        tp.birth_date = date(D.year - 91, 1, 5)  # 91: a home-visit pensioner
        han = Pensioner(id_number=make_id_number(REGION, date(1948, 8, 8), 15), name="韩二", sex="M",
                        birth_date=date(1948, 8, 8), region_code=REGION, phone="13900001111")
        s.add(han)
        s.flush()
        han_id = han.id
    wang_last = add_months(D, -12) - timedelta(days=45)  # due D-45, grace to D-15
    tony_last = add_months(D, -12) + timedelta(days=20)  # due D+20: window open now
    han_last = add_months(D, -12) - timedelta(days=10)  # due D-10: in grace now
    _backdate(ctx, wang.id, ConfirmationMethod.FACE_SELF_SERVICE, wang_last, add_months(start, -24))
    _backdate(ctx, tony.id, ConfirmationMethod.CASEWORKER_REVIEW, tony_last, add_months(start, -24))
    _backdate(ctx, han_id, ConfirmationMethod.DATA_COMPARISON, han_last, add_months(start, -24))
    wang_due = add_months(wang_last, 12)
    grace_end = wang_due + timedelta(days=30)

    # -- campaign plan of the month her window closes ---------------------------------------------
    with ctx.db.session() as s:
        plan = {r.pensioner_id: r for r in plan_month(s, wang_due.year, wang_due.month)}
    assert plan[wang.id].channel is Channel.SELF_SERVICE and plan[wang.id].closes == wang_due
    with ctx.db.session() as s:
        later = {r.pensioner_id: r for r in plan_month(s, D.year, D.month)}
    assert later[tony.id].channel is Channel.HOME_VISIT and later[tony.id].state is DueState.OPEN
    assert later[han_id].state in (DueState.OPEN, DueState.GRACE)

    # -- reminders, recorded (real SMTP server on 127.0.0.1) -----------------------------------------
    with smtp_sink() as sink:
        n = SmtpNotifier("127.0.0.1", sink.port, "noreply@rz.example.gov.cn", to_template="{phone}@sms.example.cn")
        r1 = remind(ctx.db, wang_due.year, wang_due.month, page_url=URL, notifier=n, rate_per_s=0)
        r1_again = remind(ctx.db, wang_due.year, wang_due.month, page_url=URL, notifier=n, rate_per_s=0)
        assert (r1.sent, r1_again.sent, r1_again.already) == (1, 0, 1)  # 托尼 and 韩二: visit channel, no text
        assert [m["To"] for m in sink.messages].count("13800138000@sms.example.cn") == 1
        assert URL in sink.messages[0].get_payload(decode=True).decode("utf-8")  # type: ignore[union-attr]
    with ctx.db.session() as s:
        rec = s.scalars(select(Reminder).where(Reminder.pensioner_id == wang.id)).one()
        assert (rec.status, rec.via, rec.to_masked) == ("sent", "smtp", "138****8000")

    # -- she misses the window: overdue after grace → two sign-offs → suspended ------------------------
    cw_a, cw_b = _staff(ctx, "cw_li", "caseworker"), _staff(ctx, "cw_zhao", "caseworker")
    with ctx.db.session() as s:
        assert suspensions.sweep(s, grace_end).opened == 0  # last day of grace: not yet
        assert suspensions.sweep(s, grace_end + timedelta(days=1)).opened == 1
        sid = s.scalars(select(Suspension.id).where(Suspension.pensioner_id == wang.id)).one()
        suspensions.propose(s, sid, cw_a, note="短信提醒两次，电话未接通")
    with pytest.raises(LifecertError) as e, ctx.db.session() as s:
        suspensions.approve(s, sid, cw_a, today=grace_end + timedelta(days=2))
    assert e.value.code is ErrorCode.TWO_PERSON_RULE
    suspended_on = grace_end + timedelta(days=2)
    with ctx.db.session() as s:
        suspensions.approve(s, sid, cw_b, today=suspended_on)
        assert s.get(Pensioner, wang.id).status == PensionerStatus.SUSPENDED  # type: ignore[union-attr]
        out = tmp_path / "payment.csv"
        assert suspensions.export_for_payment(s, out, actor="cli:ops", role="operator") == 1
    exported = list(csv.DictReader(out.open(encoding="utf-8-sig")))
    assert (exported[0]["id_number"], exported[0]["status"]) == (wang.id_number, "approved")

    # -- today: she certifies herself on her phone (paced capture, real face) ------------------------
    res = _capture(ctx, frame_engine, clip, lambda svc: svc.create_session(wang.id_number, wang.name, "10.1.1.1"))
    assert res.decision == "CONFIRMED", res.result
    with ctx.db.session() as s:
        case = s.get(Suspension, sid)
        assert case is not None and case.status == SuspensionStatus.RESUMED
        assert case.months_owed == months_owed(suspended_on, D) and case.resumed_on == D
        assert s.get(Pensioner, wang.id).status == PensionerStatus.ACTIVE  # type: ignore[union-attr]
    # ... and a community worker runs an assisted capture with her (method `assisted`)
    worker = _staff(ctx, "worker_sun", "community_worker")
    ares = _capture(ctx, frame_engine, clip, lambda svc: assisted.start_assisted(
        svc, worker, wang.id_number, wang.name, device="Redmi 9A", location="和平里社区服务站"))
    assert ares.decision == "CONFIRMED", ares.result

    # -- a home visit for the 91-year-old, closed on site with a photo through the same engine ---------
    with ctx.db.session() as s:
        task = HomeVisitTask(pensioner_id=tony.id, region_code=REGION, address="通江路 12 号", note="卧床")
        s.add(task)
        s.flush()
        task_id = task.id
        visits.assign_visit(s, cw_a, task_id, "worker_sun")
    visit_day = D - timedelta(days=3)
    with ctx.db.session() as s:
        done = visits.close_visit(ctx, s, worker, task_id, (faces_dir / BLAIR.format(2)).read_bytes(),
                                  "见到本人，卧床", now=_at(visit_day))
    assert done.status == HomeVisitStatus.DONE and done.result == "CONFIRMED", done

    # -- the department's monthly extract over mutual TLS: 韩二 confirmed passively ---------------------
    seen = D.replace(day=1) - timedelta(days=3)  # a settlement in last month's extract
    body = (",".join(MEDICAL_HEADER) + "\n" + f"{make_id_number(REGION, date(1948, 8, 8), 15)},韩二,"
            f"{seen.isoformat()},市第一医院\n").encode()
    ca = TestCA(tmp_path / "pki", "agency-ca")
    dept_cert = ca.issue("medical", "medical-insurance-exchange")
    with ctx.db.session() as s:
        exchange.add_certificate(s, "medical_settlement", subject=dept_cert.subject, actor="cli:test")
    url = f"/api/v1/exchange/extracts?department=medical_settlement&period={seen:%Y-%m}&file_name=med.csv"
    with tls_server(ctx, ca) as srv, srv.client(dept_cert) as c:
        receipt = c.post(url, content=body)
    assert receipt.status_code == 201, receipt.text
    assert receipt.json()["confirmations"] == 1 and "韩二" not in receipt.text

    # -- the year's end: every method counted, nobody due, the trail intact ---------------------------
    with ctx.db.session() as s:
        methods = {m for (m,) in s.execute(select(SurvivalConfirmation.method).where(
            SurvivalConfirmation.source != "before this year"))}
        assert methods == {"face_self_service", "assisted", "home_visit", "data_comparison"}
        for pid in (wang.id, tony.id, han_id):
            p = s.get(Pensioner, pid)
            assert p is not None
            standing = due_of(s, p, D)
            assert standing.state is DueState.NOT_YET, (p.name, standing)
        assert due_of(s, s.get(Pensioner, han_id), D).passive  # type: ignore[arg-type]
        assert suspensions.sweep(s, D).opened == 0
        assert suspensions.counts_by_region(s) == {REGION: {"resumed": 1}}
        assert verify_chain(s).ok
    with ctx.db.session() as s:
        next_month = add_months(D.replace(day=1), 1)
        assert not [r for r in plan_month(s, next_month.year, next_month.month)]
