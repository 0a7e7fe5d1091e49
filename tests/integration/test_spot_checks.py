"""Caseworker spot checks (抽查) of CONFIRMED sessions, end to end: real talking-head frames through the
API, the real dlib engine and the real MiniFASNet PAD pack; the confirmation stands and the pensioner's
answer is the same field for field; the case, its queue place, its page and its decisions (FRAUD
proposes the suspension; a second caseworker's approval also withdraws the confirmation); bad settings
stop the server."""

from __future__ import annotations

import contextlib
import random
import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from lifecert.domain.cases import SpotCheck, load_payload
from lifecert.domain.errors import ErrorCode, LifecertError
from lifecert.engine.base import FaceEngine
from lifecert.engine.pad import pad_spec
from lifecert.services.confirmations import status_of
from lifecert.services.context import AppContext
from lifecert.services.metrics import new_registry
from lifecert.services.verification import VerificationService
from lifecert.storage.models import (
    AuditEvent,
    Pensioner,
    ReviewCase,
    ReviewKind,
    SurvivalConfirmation,
)
from lifecert.storage.models_agency import Suspension, SuspensionStatus
from lifecert.storage.models_verification import VerificationSession
from tests.conftest import make_settings
from tests.db_support import detached_get
from tests.integration.console_support import login, make_case, make_user
from tests.integration.verification_support import enroll, refresh_rows, serve
from tests.paced_client import Clip, SimClock, VirtualTime, run_http_session

THRESHOLD = pad_spec().threshold.value
API = "/api/v1"


def _ctx(tmp_path: Path, engine: FaceEngine, pad_src: Path | None, **verification: Any) -> AppContext:
    """A test context (fixed challenges blink,open_mouth: the clip acts both) with the PAD pack installed
    from ``pad_src`` (None: PAD off) and these spot-check settings."""
    from lifecert.cli_models import install_models

    s = make_settings(tmp_path, fixed_challenges="blink,open_mouth", inference_threads=1,
                      verification=verification)
    if pad_src is not None:
        install_models(s, pad_src, "minifasnet")
    c = AppContext(s)
    c.set_engine(engine)
    return c


@pytest.fixture
def pad_src(shared_models_dir: Path) -> Path:
    src = shared_models_dir / "minifasnet"
    if not src.is_dir():
        pytest.skip("../shared/models/minifasnet not found")
    return src


@contextlib.contextmanager
def _served(ctx: AppContext, engine: FaceEngine) -> Iterator[TestClient]:
    yield from serve(ctx, engine, VirtualTime())


def _session(client: TestClient, p: Pensioner, clip: Clip) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """A paced session through the API on the app's virtual clock: (session id, the deciding chunk's answer,
    the session's result as the page reads it again)."""
    clock: VirtualTime = client.app.state.clock  # type: ignore[attr-defined]
    sid, phone = run_http_session(client, {"id_number": p.id_number, "name": p.name}, clip, SimClock(clock))
    last = phone.last
    assert last is not None and last.result is not None
    answer = {"status": last.status, "step_state": last.step_state, "hints": last.hints, "step": last.step,
              "result": last.result}
    page = client.get(f"{API}/sessions/{sid}")
    assert page.status_code == 200, page.text
    return sid, answer, page.json()


def _without_ids(d: Any, sid: str) -> Any:
    """``d`` with the session's own id blanked (the only field that must differ between two sessions)."""
    if isinstance(d, dict):
        return {k: _without_ids(v, sid) for k, v in d.items()}
    if isinstance(d, list):
        return [_without_ids(v, sid) for v in d]
    return "<sid>" if d == sid else d


def _spot_cases(ctx: AppContext) -> list[ReviewCase]:
    with ctx.db.session() as s:
        rows = list(s.scalars(select(ReviewCase).where(ReviewCase.kind == ReviewKind.SPOT_CHECK)))
        s.expunge_all()
    return rows


def test_given_real_pad_when_a_confirmed_session_scores_in_the_grey_band_then_a_spot_check_opens_unseen(
    tmp_path: Path, face_engine: FaceEngine, frame_engine: FaceEngine, clip: Clip, pad_src: Path
) -> None:
    """The real path: the genuine clip with the real PAD pack (it scores ~0.98 here). With the band's upper
    end at 1.0 every passing score lies in [threshold, 1.0), so the session is spot-checked; the same clip
    on a service whose band ends at 0.75 (and no random sample) scores above the band and is not. Both
    pensioners read the same answer, field for field."""
    banded = _ctx(tmp_path / "a", face_engine, pad_src, audit_pad_below=1.0, audit_sample_rate=0.0)
    plain = _ctx(tmp_path / "b", face_engine, pad_src, audit_pad_below=0.75, audit_sample_rate=0.0)
    try:
        p = enroll(banded, clip.template, seq=71)
        q = enroll(plain, clip.template, seq=71)
        with _served(banded, frame_engine) as client:
            ready = client.get("/readyz").json()
            assert (ready["pad"], ready["audit_band"]) == ("on", "on")
            sid, answer, page = _session(client, p, clip)
            metrics = client.get("/metrics").text
            assert 'lifecert_spot_checks_total{reason="PAD_GREY_BAND"} 1.0' in metrics
        with _served(plain, frame_engine) as client:
            assert client.get("/readyz").json()["audit_band"] == "on"
            sid2, answer2, page2 = _session(client, q, clip)

        assert page["decision"] == "CONFIRMED", page
        assert _without_ids(page, sid) == _without_ids(page2, sid2)
        assert _without_ids(answer, sid) == _without_ids(answer2, sid2)

        assert _spot_cases(plain) == []
        assert detached_get(plain, VerificationSession, sid2).scores["pad"]["score"] >= 0.75
        (case,) = _spot_cases(banded)
        vs = detached_get(banded, VerificationSession, sid)
        score = vs.scores["pad"]["score"]
        assert THRESHOLD <= score < 1.0
        # the PAD histogram observed this session's fused score (it once read the PAD record, a dict, and saw none)
        # (no _sum: the score buckets start below 0, so the client exports none); the bucket pins the value
        samples = [x for f in text_string_to_metric_families(metrics) if f.name == "lifecert_verification_pad_score"
                   for x in f.samples]
        assert [x.value for x in samples if x.name.endswith("_count")] == [1.0]
        cumulative = {float(x.labels["le"]): x.value for x in samples if x.name.endswith("_bucket")}
        above = min(b for b in cumulative if b >= score)
        below = max(b for b in cumulative if b < score)
        assert (cumulative[below], cumulative[above]) == (0.0, 1.0), (score, cumulative)
        payload = load_payload(case.payload)
        assert isinstance(payload, SpotCheck)
        assert (case.reason, payload.reasons) == ("PAD_GREY_BAND", ("PAD_GREY_BAND",))
        assert (payload.pad_score, payload.pad_threshold, payload.pad_band) == (score, THRESHOLD, (THRESHOLD, 1.0))
        assert payload.confirmation_id == vs.confirmation_id and payload.method == "face_self_service"
        assert [f.sha256 for f in payload.best_frames] == list(vs.best_frame_shas) and payload.best_frames
        assert {c.name for c in payload.challenges} == {"blink", "open_mouth"}
        assert payload.match == vs.scores["match"] and payload.threshold == vs.scores["threshold"]
        assert case.pensioner_id == p.id and case.verification_session_id == sid and vs.review_case_id == case.id

        with banded.db.session() as s:  # the confirmation stands
            pen = s.get(Pensioner, p.id)
            assert pen is not None and status_of(s, pen).state == "valid"
            ev = s.scalars(select(AuditEvent).where(AuditEvent.action == "case.spot_check_opened")).one()
            assert ev.detail["confirmation_id"] == vs.confirmation_id and ev.detail["pad_score"] == score
        assert refresh_rows(banded, p.id) == [], "a spot-checked session makes no template before a person looked"
        assert len(refresh_rows(plain, q.id)) == 1
    finally:
        banded.close()
        plain.close()


class _Recorded(random.Random):
    """A pinned stream of draws that remembers each ``random()`` it handed out (the spot-check draw is the
    service's last one: nothing draws after the decision is written)."""

    def __init__(self, seed: int) -> None:
        super().__init__(seed)
        self.draws: list[float] = []

    def random(self) -> float:
        x = super().random()
        self.draws.append(x)
        return x


def _confirmed_in_process(ctx: AppContext, frame_engine: FaceEngine, clip: Clip, seq: int,
                          rng: random.Random) -> tuple[Pensioner, str]:
    """One genuine paced session in-process on a virtual clock with ``rng`` as the service's rng."""
    clock = VirtualTime()
    svc = VerificationService(ctx, engine_factory=lambda: frame_engine, clock=clock)
    svc.rng = rng
    p = enroll(ctx, clip.template, seq=seq)
    return p, _confirmed_again(svc, clock, p, clip)


def _confirmed_again(svc: VerificationService, clock: VirtualTime, p: Pensioner, clip: Clip) -> str:
    """One more genuine paced session of ``p`` on ``svc``; its id."""
    from tests.paced_client import Phone, service_sender, step_of

    st = svc.create_session(p.id_number, p.name, "10.0.0.9")
    sim = SimClock(clock)
    res = Phone(service_sender(svc, st.session_id, sim, "10.0.0.9"), step_of(st.step), clip, sim,
                session_id=st.session_id).run()
    assert res.decision == "CONFIRMED", res
    return st.session_id


def _decision_ids(html: str) -> list[str]:
    block = html.split('id="decisions"', 1)[1].split("</div>", 1)[0]
    return re.findall(r'<button type="submit" class="[^"]*" id="([a-z-]+)"', block)


def test_given_a_random_sample_when_two_caseworkers_sign_fraud_then_the_confirmation_is_withdrawn_and_payment_suspended(
    tmp_path: Path, face_engine: FaceEngine, frame_engine: FaceEngine, clip: Clip
) -> None:
    """PAD off (no band): the random sample alone, at rate 0.5 with pinned rngs: seed 7's spot-check draw
    (its 3rd) is 0.65, not sampled; seed 3's is 0.37, sampled. Then the console: the case page, FRAUD by one
    caseworker — a proposal that says what approving will do, the confirmation still standing; the same
    caseworker cannot approve; a second one approves on the suspensions page — payment suspended and the
    pensioner never_confirmed again, all audited with both signers."""
    from server.app import create_app

    first = _ctx(tmp_path / "first", face_engine, None, audit_sample_rate=0.5)  # one face per database (1:N)
    try:
        unsampled = _Recorded(7)
        _confirmed_in_process(first, frame_engine, clip, 74, unsampled)
        assert unsampled.draws[-1] >= 0.5 and _spot_cases(first) == []
    finally:
        first.close()
    ctx = _ctx(tmp_path / "second", face_engine, None, audit_sample_rate=0.5)
    try:
        rng = _Recorded(3)
        p, sid = _confirmed_in_process(ctx, frame_engine, clip, 75, rng)
        assert rng.draws[-1] < 0.5
        (case,) = _spot_cases(ctx)
        payload = load_payload(case.payload)
        assert isinstance(payload, SpotCheck)
        assert (case.reason, payload.reasons, payload.pad_score, payload.pad_band, payload.sample_rate) == (
            "RANDOM_SAMPLE", ("RANDOM_SAMPLE",), None, None, 0.5)
        vs = detached_get(ctx, VerificationSession, sid)
        assert payload.confirmation_id == vs.confirmation_id is not None

        later = make_case(ctx, p.id, kind=ReviewKind.VERIFICATION, reason="LOW_MATCH")  # opened after the audit
        cw = make_user(ctx, "cw_a", "caseworker")
        client = TestClient(create_app(ctx=ctx))  # no lifespan: the console needs no face engine
        csrf = login(client, "cw_a")
        queue = client.get("/console/queue").text
        assert queue.index(f'data-case="{later}"') < queue.index(f'data-case="{case.id}"'), "audits come last"
        only = client.get("/console/queue?kind=spot_check").text
        assert f'data-case="{case.id}"' in only and f'data-case="{later}"' not in only
        page = client.get(f"/console/cases/{case.id}")
        assert page.status_code == 200
        assert 'id="spot-reasons">随机抽样<' in page.text and f"#{vs.confirmation_id}" in page.text
        assert all(f"/photos/{sha}" in page.text for sha in vs.best_frame_shas)
        assert _decision_ids(page.text) == ["genuine", "visit", "fraud"]
        evidence = detached_get(ctx, SurvivalConfirmation, vs.confirmation_id).evidence_date
        hint = f"标记疑似欺诈只提议暂停发放；另一位经办人批准后，同时撤销 {evidence} 的认证"
        assert f'id="fraud-withdraws">{hint}<' in page.text

        r = client.post(f"/console/cases/{case.id}/approve", data={"csrf_token": csrf, "note": "x"},
                        follow_redirects=False)
        assert "error=CONFLICT" in r.headers["location"], "a spot check records no second confirmation"
        r = client.post(f"/console/cases/{case.id}/fraud", data={"csrf_token": csrf, "note": "画面是手机屏幕翻拍"},
                        follow_redirects=False)
        assert r.status_code == 303 and "error" not in r.headers["location"], r.headers["location"]

        # one signature: proposed, the confirmation stands and the page says what approving will do
        conf = detached_get(ctx, SurvivalConfirmation, vs.confirmation_id)
        assert conf.withdrawn_at is None
        with ctx.db.session() as s:
            pen = s.get(Pensioner, p.id)
            assert pen is not None and status_of(s, pen).state == "valid"
            susp = s.scalars(select(Suspension).where(Suspension.pensioner_id == p.id)).one()
            assert (susp.status, susp.review_case_id, susp.proposed_by) == (SuspensionStatus.PROPOSED, case.id, cw)
            closed = s.get(ReviewCase, case.id)
            assert closed is not None and (closed.status, closed.decision) == ("closed", "suspected_fraud")
            events = {e.action: e for e in s.scalars(select(AuditEvent).where(AuditEvent.actor == "cw_a"))}
            assert events["case.fraud"].detail["withdraws_on_approval"] == [vs.confirmation_id]
            assert events["suspension.propose"].detail["withdraws_on_approval"] == [vs.confirmation_id]
            assert "confirmation.withdraw" not in events
        pending = f"批准时同时撤销 {evidence} 的认证"
        assert f"待批准 — {pending}</p>" in client.get(f"/console/cases/{case.id}").text
        listing = client.get("/console/suspensions").text
        assert f'id="susp-withdraws-{susp.id}" class="bad">{pending}<' in listing
        assert f"/console/suspensions/{susp.id}/approve" not in listing, "no approve button for the proposer"
        r = client.post(f"/console/suspensions/{susp.id}/approve", data={"csrf_token": csrf}, follow_redirects=False)
        assert "error=err_TWO_PERSON_RULE" in r.headers["location"]
        assert detached_get(ctx, SurvivalConfirmation, vs.confirmation_id).withdrawn_at is None

        # the second signature, by another caseworker
        cw2 = make_user(ctx, "cw_c", "caseworker")
        second = TestClient(create_app(ctx=ctx))
        csrf2 = login(second, "cw_c")
        assert f"/console/suspensions/{susp.id}/approve" in second.get("/console/suspensions").text
        r = second.post(f"/console/suspensions/{susp.id}/approve", data={"csrf_token": csrf2, "note": "同意"},
                        follow_redirects=False)
        assert r.status_code == 303 and "error" not in r.headers["location"], r.headers["location"]
        conf = detached_get(ctx, SurvivalConfirmation, vs.confirmation_id)
        assert conf.withdrawn_at is not None and conf.withdrawn_by == cw2
        assert f"#{susp.id}" in (conf.withdrawn_reason or "")
        with ctx.db.session() as s:
            pen = s.get(Pensioner, p.id)
            assert pen is not None and status_of(s, pen).state == "never_confirmed" and pen.status == "suspended"
            w = s.scalars(select(AuditEvent).where(AuditEvent.action == "confirmation.withdraw")).one()
            assert (w.actor, w.detail["proposed_by"], w.detail["approved_by"], w.detail["case_id"]) == (
                "cw_c", cw, cw2, case.id)
        after = second.get(f"/console/cases/{case.id}").text
        assert f'id="conf-withdrawn-{vs.confirmation_id}"' in after
        assert f"已暂停发放 — 已撤销 {evidence} 的认证</p>" in after
    finally:
        ctx.close()


def test_given_an_open_spot_check_when_another_session_of_the_pensioner_is_drawn_then_it_joins_that_case(
    tmp_path: Path, face_engine: FaceEngine, frame_engine: FaceEngine, clip: Clip
) -> None:
    """Every confirmed session drawn (rate 1.0, so the draw cannot miss): the pensioner's second session
    joins her open spot check instead of opening another; the case page lists both sessions with their
    frames and confirmations; one decision (genuine) closes both. A session drawn after that opens a new
    case."""
    from server.app import create_app

    ctx = _ctx(tmp_path, face_engine, None, audit_sample_rate=1.0)
    try:
        clock = VirtualTime()
        svc = VerificationService(ctx, engine_factory=lambda: frame_engine, clock=clock)
        svc.rng = random.Random(2026)
        registry, svc.metrics = new_registry(None)
        opened = {"reason": "RANDOM_SAMPLE"}
        p = enroll(ctx, clip.template, seq=79)
        sids = [_confirmed_again(svc, clock, p, clip) for _ in range(2)]
        assert registry.get_sample_value("lifecert_spot_checks_total", opened) == 1.0, "cases opened, not sessions"
        (case,) = _spot_cases(ctx)
        payload = load_payload(case.payload)
        assert isinstance(payload, SpotCheck)
        rows = [detached_get(ctx, VerificationSession, sid) for sid in sids]
        assert [d.session_id for d in payload.sessions] == sids
        assert payload.confirmation_ids == tuple(vs.confirmation_id for vs in rows)
        assert None not in payload.confirmation_ids and len(set(payload.confirmation_ids)) == 2
        assert [vs.review_case_id for vs in rows] == [case.id, case.id]
        assert [f.sha256 for f in payload.later[0].best_frames] == list(rows[1].best_frame_shas)
        assert payload.later[0].reasons == ("RANDOM_SAMPLE",) and payload.later[0].sample_rate == 1.0
        with ctx.db.session() as s:
            actions = [e.action for e in s.scalars(select(AuditEvent).where(AuditEvent.object_type == "review_case"))]
            added = s.scalars(select(AuditEvent).where(AuditEvent.action == "case.spot_check_added")).one()
        assert actions.count("case.spot_check_opened") == 1 and actions.count("case.spot_check_added") == 1
        assert (added.detail["verification_session_id"], added.detail["sessions"]) == (sids[1], 2)
        assert refresh_rows(ctx, p.id) == [], "neither drawn session makes a template before a person looked"

        make_user(ctx, "cw_d", "caseworker")
        client = TestClient(create_app(ctx=ctx))
        csrf = login(client, "cw_d")
        page = client.get(f"/console/cases/{case.id}").text
        assert 'id="spot-sessions">本案共抽查 2 次认证，请逐一查看<' in page
        assert all(sid in page for sid in sids)
        assert f'id="spot-confirmation">#{rows[0].confirmation_id} ' in page
        assert f'id="spot-confirmation-1">#{rows[1].confirmation_id} ' in page
        # (the replayed clip may give both sessions the same frames: test_case_payloads pins that a later
        # session's frames belong to the case)
        for vs in rows:
            for sha in vs.best_frame_shas:
                assert f"/photos/{sha}" in page
                assert client.get(f"/console/cases/{case.id}/photos/{sha}").status_code == 200
        r = client.post(f"/console/cases/{case.id}/genuine", data={"csrf_token": csrf}, follow_redirects=False)
        assert r.status_code == 303 and "error" not in r.headers["location"], r.headers["location"]
        with ctx.db.session() as s:
            ev = s.scalars(select(AuditEvent).where(AuditEvent.action == "case.genuine")).one()
        assert ev.detail["confirmation_ids"] == list(payload.confirmation_ids)

        third = _confirmed_again(svc, clock, p, clip)  # the case is closed: a new one opens
        first, newer = sorted(_spot_cases(ctx), key=lambda c: c.id)
        assert registry.get_sample_value("lifecert_spot_checks_total", opened) == 2.0
        assert first.id == case.id and newer.verification_session_id == third
        fresh = load_payload(newer.payload)
        assert isinstance(fresh, SpotCheck) and fresh.later == ()
    finally:
        ctx.close()


def test_given_a_spot_check_when_the_caseworker_sees_the_living_pensioner_then_closed_and_nothing_recorded(
    data_ctx: AppContext,
) -> None:
    """No session needed: a spot-check case over a recorded confirmation, closed as genuine through the
    staff API. The confirmation is untouched and no other is written."""
    from lifecert.services import cases
    from lifecert.services.confirmations import record_confirmation
    from lifecert.storage.models import ConfirmationMethod
    from server.app import create_app
    from tests.integration.console_support import make_pensioner

    pid = make_pensioner(data_ctx, 77)
    with data_ctx.db.session() as s:
        pen = s.get(Pensioner, pid)
        assert pen is not None
        conf = record_confirmation(s, pen, ConfirmationMethod.ASSISTED, date(2026, 11, 30), "verification_session:x",
                                   {}, cycle_months=12)
        cid = cases.open_case(s, SpotCheck(session_id="x", reasons=("PAD_GREY_BAND",), confirmation_id=conf.id,
                                           method="assisted", pad_score=0.75, pad_threshold=THRESHOLD,
                                           pad_band=(THRESHOLD, 0.94), sample_rate=0.02),
                              reason="PAD_GREY_BAND", pensioner=pen).id
        conf_id = conf.id
    make_user(data_ctx, "cw_b", "caseworker")
    client = TestClient(create_app(ctx=data_ctx))
    login(client, "cw_b")
    page = client.get(f"/console/cases/{cid}").text
    # inside the band is not a failed check: amber with its words, red is kept for scores under the threshold
    assert ('id="pad-score" class="warn">0.750 / 0.733 · <span id="pad-verdict">复核区间内</span><' in page
            and 'id="pad-band">[0.733, 0.940)<' in page)
    from lifecert.services import staff

    with data_ctx.db.session() as s:
        raw, _ = staff.create_api_token(s, "cw_b", actor="test", actor_role="cli")
    r = client.post(f"/api/staff/cases/{cid}/decision", json={"decision": "genuine"},
                    headers={"Authorization": f"Bearer {raw}"})
    assert r.status_code == 200 and r.json()["decision"] == "genuine", r.text
    with data_ctx.db.session() as s:
        case = s.get(ReviewCase, cid)
        assert case is not None and (case.status, case.decision) == ("closed", "genuine")
        confs = list(s.scalars(select(SurvivalConfirmation)))
        assert [(c.id, c.withdrawn_at) for c in confs] == [(conf_id, None)]
        ev = s.scalars(select(AuditEvent).where(AuditEvent.action == "case.genuine")).one()
        assert ev.detail["confirmation_id"] == conf_id and ev.actor == "cw_b"


def test_given_a_band_not_above_the_pad_threshold_when_the_server_starts_then_it_refuses(
    tmp_path: Path, face_engine: FaceEngine, frame_engine: FaceEngine, pad_src: Path
) -> None:
    from server.app import create_app

    bad = _ctx(tmp_path / "bad", face_engine, pad_src, audit_pad_below=THRESHOLD - 0.1)
    try:
        with pytest.raises(LifecertError) as e, TestClient(create_app(bad.settings, bad)):
            pass
        assert e.value.code == ErrorCode.CONFIG_ERROR and "AUDIT_PAD_BELOW" in str(e.value)
    finally:
        bad.close()
    off = _ctx(tmp_path / "off", face_engine, None, audit_pad_below=0.9)  # PAD off: no band, the server runs
    try:
        with _served(off, frame_engine) as client:
            body = client.get("/readyz").json()
            assert (body["status"], body["pad"], body["audit_band"]) == ("ready", "off", "off")
    finally:
        off.close()
