"""Decisions create the right records; privacy rules on the queue, case page and photo endpoint."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from lifecert.domain.cases import ChallengeOutcome, DuplicateFace, FrameRef, VerificationReview
from lifecert.domain.errors import Conflict, ErrorCode, LifecertError
from lifecert.domain.idnumber import mask_id_number
from lifecert.engine.image import read_image_file
from lifecert.services import review, staff, templates
from lifecert.services.context import AppContext
from lifecert.storage.models import (
    AuditEvent,
    ConfirmationMethod,
    FaceTemplate,
    Pensioner,
    PensionerStatus,
    ReviewKind,
    StaffUser,
    SurvivalConfirmation,
)
from lifecert.storage.models_staff import HomeVisitTask
from lifecert.storage.photos import sha256_bytes
from server.app import create_app
from tests.integration.console_support import case_row, login, make_case, make_pensioner, make_user


def _principal(ctx: AppContext, username: str) -> staff.Principal:
    with ctx.db.session() as s:
        u = s.scalars(select(StaffUser).where(StaffUser.username == username)).one()
        return staff.principal_for(u, "cli")


@pytest.fixture
def client(ctx: AppContext) -> Iterator[TestClient]:
    with TestClient(create_app(ctx.settings, ctx)) as c:
        yield c


def test_given_open_case_when_caseworker_approves_then_confirmation_by_reviewer_and_case_closed(
    ctx: AppContext, client: TestClient
) -> None:
    uid = make_user(ctx, "wang", "caseworker")
    pid = make_pensioner(ctx)
    cid = make_case(ctx, pid)
    csrf = login(client, "wang")
    r = client.post(f"/console/cases/{cid}/approve", data={"csrf_token": csrf, "note": "video call"},
                    follow_redirects=False)
    assert r.status_code == 303
    with ctx.db.session() as s:
        confs = s.scalars(select(SurvivalConfirmation).where(SurvivalConfirmation.pensioner_id == pid)).all()
        assert [(c.method, c.created_by, c.evidence_date) for c in confs] == [
            (ConfirmationMethod.CASEWORKER_REVIEW, uid, date.today())]
        assert confs[0].valid_until > date.today()
        ev = s.scalars(select(AuditEvent).where(AuditEvent.action == "case.approve")).one()
        assert (ev.actor, ev.role, ev.object_id, ev.client_addr) == ("wang", "caseworker", str(cid), "testclient")
        assert ev.detail["confirmation_id"] == confs[0].id
    c = case_row(ctx, cid)
    assert (c.status, c.decision, c.decided_by, c.decision_note) == ("closed", "approved", uid, "video call")
    page = client.get(f"/console/cases/{cid}")
    assert 'id="confirmations"' in page.text and "人工审核" in page.text
    # A closed case cannot be decided again.
    again = client.post(f"/console/cases/{cid}/approve", data={"csrf_token": csrf}, follow_redirects=False)
    assert again.headers["location"].endswith("error=CONFLICT")
    with ctx.db.session() as s:
        assert len(s.scalars(select(SurvivalConfirmation)).all()) == 1


def test_given_case_when_rejecting_without_reason_then_refused_and_with_reason_then_closed(ctx: AppContext) -> None:
    make_user(ctx, "li", "caseworker")
    who = _principal(ctx, "li")
    cid = make_case(ctx, make_pensioner(ctx))
    with pytest.raises(LifecertError) as e, ctx.db.session() as s:
        review.reject(s, cid, who, "   ")
    assert e.value.code == ErrorCode.BAD_REQUEST
    with ctx.db.session() as s:
        review.reject(s, cid, who, "selfie shows a different person")
    c = case_row(ctx, cid)
    assert (c.status, c.decision, c.decision_note) == ("closed", "rejected", "selfie shows a different person")
    with ctx.db.session() as s:
        assert s.scalars(select(SurvivalConfirmation)).all() == []


def test_given_case_when_requesting_home_visit_then_task_carries_address_and_region(ctx: AppContext) -> None:
    make_user(ctx, "zhao", "caseworker")
    who = _principal(ctx, "zhao")
    pid = make_pensioner(ctx, region="220204", address="吉林市船营区北京路 8 号")
    cid = make_case(ctx, pid)
    with ctx.db.session() as s:
        task = review.request_home_visit(s, cid, who, note="bedridden")
        tid = task.id
    with ctx.db.session() as s:
        t = s.get(HomeVisitTask, tid)
        assert t is not None
        assert (t.case_id, t.pensioner_id, t.region_code, t.address, t.note, t.status) == (
            cid, pid, "220204", "吉林市船营区北京路 8 号", "bedridden", "open")
        rows = review.list_visits(s, who, region="2202")
        assert [task.id for task, _ in rows] == [tid]


def test_given_case_when_marking_fraud_then_suspension_proposed_and_payment_stops_only_on_second_signature(
        ctx: AppContext) -> None:
    from lifecert.services import suspensions
    from lifecert.storage.models_agency import SuspensionStatus

    make_user(ctx, "sun", "caseworker")
    make_user(ctx, "zhou", "caseworker")
    who, second = _principal(ctx, "sun"), _principal(ctx, "zhou")
    pid = make_pensioner(ctx)
    cid = make_case(ctx, pid, kind=ReviewKind.TIP_OFF, reason="TIP_OFF")
    with ctx.db.session() as s:
        sid = review.mark_suspected_fraud(s, cid, who, note="neighbours report death in 2023").id
    with ctx.db.session() as s:
        p = s.get(Pensioner, pid)
        assert p is not None
        assert (p.fraud_flag, p.status) == (False, PensionerStatus.ACTIVE)  # one signature is not enough
    with pytest.raises(LifecertError) as e, ctx.db.session() as s:
        suspensions.approve(s, sid, who, today=date(2026, 12, 1))
    assert e.value.code == ErrorCode.TWO_PERSON_RULE
    with ctx.db.session() as s:
        case = suspensions.approve(s, sid, second, today=date(2026, 12, 1))
        assert (case.status, case.review_case_id, case.reason) == (SuspensionStatus.APPROVED, cid, "fraud")
    with ctx.db.session() as s:
        p = s.get(Pensioner, pid)
        assert p is not None
        assert (p.fraud_flag, p.status) == (True, PensionerStatus.SUSPENDED)
        assert str(sid) in (p.status_reason or "")


def test_given_case_assigned_to_colleague_when_deciding_then_conflict_until_reassigned(ctx: AppContext) -> None:
    make_user(ctx, "a1", "caseworker")
    make_user(ctx, "a2", "caseworker")
    a1, a2 = _principal(ctx, "a1"), _principal(ctx, "a2")
    cid = make_case(ctx, make_pensioner(ctx))
    with ctx.db.session() as s:
        review.assign_to_me(s, cid, a1)
    with pytest.raises(Conflict), ctx.db.session() as s:
        review.reject(s, cid, a2, "no")
    with ctx.db.session() as s:
        review.assign_to_me(s, cid, a2)
        review.reject(s, cid, a2, "no")
    assert case_row(ctx, cid).decided_by == a2.user_id


def test_given_queue_when_filtering_then_counts_and_masked_ids(ctx: AppContext) -> None:
    make_user(ctx, "q", "caseworker")
    make_user(ctx, "enr", "enrollment_staff")
    who = _principal(ctx, "q")
    p1 = make_pensioner(ctx, 1, region="220202")
    p2 = make_pensioner(ctx, 3, region="110101")
    make_case(ctx, p1, reason="LOW_MATCH")
    make_case(ctx, p1, reason="LIVENESS_FAILED")
    make_case(ctx, p2, reason="LOW_MATCH")
    make_case(ctx, p2, kind=ReviewKind.ENROLLMENT, reason="NO_FACE")
    with ctx.db.session() as s:
        page = review.list_queue(s, review.QueueFilter(region="2202"), who)
        assert page.total == 2 and page.by_reason == {"LIVENESS_FAILED": 1, "LOW_MATCH": 1}
        page = review.list_queue(s, review.QueueFilter(reason="LOW_MATCH"), who)
        assert {r.region_code for r in page.rows} == {"220202", "110101"}
        pid_numbers = {s.get(Pensioner, p).id_number for p in (p1, p2)}  # type: ignore[union-attr]
        assert {r.id_number_masked for r in page.rows} == {mask_id_number(n) for n in pid_numbers}
        assert all("*" * 8 in r.id_number_masked for r in page.rows)
        assert review.list_queue(s, review.QueueFilter(), who).by_kind == {"enrollment": 1, "verification": 3}
        # Enrollment staff only see the enrollment queue.
        enr = review.list_queue(s, review.QueueFilter(), _principal(ctx, "enr"))
        assert [r.reason for r in enr.rows] == ["NO_FACE"]


def test_given_case_page_then_full_id_only_there_and_photo_endpoint_private_and_audited(
    ctx: AppContext, client: TestClient, faces_dir: Path
) -> None:
    make_user(ctx, "zhou", "caseworker")
    pid = make_pensioner(ctx)
    enrolled = (faces_dir / "lfw/images/Tony_Blair/Tony_Blair_0001.jpg").read_bytes()
    frame = (faces_dir / "lfw/images/Tony_Blair/Tony_Blair_0002.jpg").read_bytes()
    with ctx.db.session() as s:
        p = s.get(Pensioner, pid)
        assert p is not None
        a = ctx.engine.analyze(read_image_file(faces_dir / "lfw/images/Tony_Blair/Tony_Blair_0001.jpg"))[0]
        assert a.embedding is not None
        sha_e = templates.store_photo(ctx, s, enrolled, sha256_bytes(enrolled), 250, 250).sha256
        templates.add_template(ctx, s, p, a.embedding, photo_sha256=sha_e, quality=a.quality)
        id_number = p.id_number
    sha_f = ctx.photos.put(frame)
    stranger = ctx.photos.put((faces_dir / "lfw/images/Colin_Powell/Colin_Powell_0001.jpg").read_bytes())
    cid = make_case(ctx, pid, payload=VerificationReview(
        session_id="s1", reason="LOW_MATCH", match=0.52, threshold=0.6, best_frames=(FrameRef(sha256=sha_f),),
        challenges=(ChallengeOutcome(name="blink", passed=True, peak_value=0.11),)))
    login(client, "zhou")
    queue = client.get("/console/queue")
    assert mask_id_number(id_number) in queue.text and id_number not in queue.text
    page = client.get(f"/console/cases/{cid}")
    assert id_number in page.text and f"/photos/{sha_e}" in page.text and f"/photos/{sha_f}" in page.text
    r = client.get(f"/console/cases/{cid}/photos/{sha_f}")
    assert r.status_code == 200 and r.content == frame
    assert "no-store" in r.headers["cache-control"] and "private" in r.headers["cache-control"]
    # A photo that is in the store but not on this case is not served.
    assert client.get(f"/console/cases/{cid}/photos/{stranger}").status_code == 404
    with ctx.db.session() as s:
        actions = [(e.action, e.object_id) for e in s.scalars(select(AuditEvent).where(AuditEvent.actor == "zhou"))]
    assert ("case.view", str(cid)) in actions and ("photo.view", sha_f[:16]) in actions
    assert ("queue.view", "*") in actions


def test_given_duplicate_enrollment_case_when_not_duplicate_then_item_photo_enrolled(
    ctx: AppContext, faces_dir: Path
) -> None:
    make_user(ctx, "enr", "enrollment_staff")
    who = _principal(ctx, "enr")
    pid = make_pensioner(ctx)
    other = make_pensioner(ctx, 3, name="李淑珍")
    data = (faces_dir / "lfw/images/Colin_Powell/Colin_Powell_0002.jpg").read_bytes()
    sha = ctx.photos.put(data)
    cid = make_case(ctx, pid, reason="DUPLICATE_FACE",
                    payload=DuplicateFace(photo_sha256=sha, duplicate_of_pensioner_id=other, similarity=0.97))
    with ctx.db.session() as s:
        tpl = review.not_duplicate(ctx, s, cid, who, note="twins, checked the hukou")
        tid = tpl.id
    with ctx.db.session() as s:
        t = s.get(FaceTemplate, tid)
        assert t is not None and (t.pensioner_id, t.photo_sha256, t.active) == (pid, sha, True)
    assert case_row(ctx, cid).decision == "not_duplicate"


def test_given_no_face_enrollment_case_when_fixing_with_a_photo_without_face_then_refused_and_case_open(
    ctx: AppContext, faces_dir: Path
) -> None:
    make_user(ctx, "enr", "enrollment_staff")
    who = _principal(ctx, "enr")
    pid = make_pensioner(ctx)
    cid = make_case(ctx, pid, kind=ReviewKind.ENROLLMENT, reason="NO_FACE")
    import cv2
    import numpy as np

    blank = cv2.imencode(".jpg", np.full((200, 200, 3), 128, np.uint8))[1].tobytes()
    with pytest.raises(LifecertError) as e, ctx.db.session() as s:
        review.fix_photo(ctx, s, cid, who, blank)
    assert e.value.code == ErrorCode.NO_FACE
    assert case_row(ctx, cid).status == "open"
    good = (faces_dir / "lfw/images/Tony_Blair/Tony_Blair_0003.jpg").read_bytes()
    with ctx.db.session() as s:
        review.fix_photo(ctx, s, cid, who, good, filename="new.jpg")
    assert case_row(ctx, cid).decision == "photo_fixed"
    with ctx.db.session() as s:
        assert len(templates.active_templates(s, pid, ctx.model.key)) == 1
