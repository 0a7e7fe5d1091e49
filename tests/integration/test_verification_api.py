"""The verification API on real faces through the real engine (FastAPI TestClient on create_app).

Every session is server-paced (the only protocol): a simulated phone (tests/paced_client.py) sends
real frames of the talking-head video in chunks and acts each prompt after it was revealed, on a
virtual server clock, so the 8 s windows cost no wall time.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from numpy.typing import NDArray
from sqlalchemy import func, select

from lifecert.domain.cases import VerificationReview, load_payload
from lifecert.engine.base import FaceEngine
from lifecert.engine.image import encode_jpeg, read_image_file
from lifecert.services.confirmations import status_of
from lifecert.services.context import AppContext
from lifecert.storage.models import Pensioner, ReviewCase, SurvivalConfirmation
from lifecert.storage.models_verification import VerificationChunk, VerificationSession
from tests.integration.verification_support import TEMPLATE_FRAME, enroll, read_video, serve, verification_ctx
from tests.paced_client import Clip, Phone, SimClock, VirtualTime, chunk_form, http_sender, http_start


@pytest.fixture
def vctx(tmp_path: Path, face_engine: FaceEngine) -> Iterator[AppContext]:
    yield from verification_ctx(tmp_path, face_engine, inference_threads=1)


@pytest.fixture
def clock() -> VirtualTime:
    return VirtualTime()


@pytest.fixture
def client(vctx: AppContext, frame_engine: FaceEngine, clock: VirtualTime) -> Iterator[TestClient]:
    yield from serve(vctx, frame_engine, clock)


def run(client: TestClient, clock: VirtualTime, p: Pensioner, clip: Clip) -> tuple[str, Phone]:
    """One paced session over HTTP on the virtual clock, acting every prompt 800 ms after it."""
    sid, first = http_start(client, {"id_number": p.id_number, "name": p.name})
    sim = SimClock(clock)
    phone = Phone(http_sender(client, sid), first, clip, sim)
    phone.run()
    return sid, phone


def test_given_genuine_talking_head_when_a_paced_session_runs_then_confirmed_and_status_shows_it(
    client: TestClient, clock: VirtualTime, vctx: AppContext, video: list[NDArray[np.uint8]], clip: Clip
) -> None:
    p = enroll(vctx, video[TEMPLATE_FRAME], seq=11)
    sid, phone = run(client, clock, p, clip)
    res = phone.last.result if phone.last else None
    assert res is not None and res["decision"] == "CONFIRMED", res
    assert [(c["name"], c["passed"]) for c in res["challenges"]] == [("blink", True), ("open_mouth", True)]
    assert res["confirmation"]["valid_until"] > date.today().isoformat()
    assert client.get(f"/api/v1/sessions/{sid}").json() == res
    with vctx.db.session() as s:
        pen = s.get(Pensioner, p.id)
        assert pen is not None
        st = status_of(s, pen)
        assert st.state == "valid" and st.last_method == "face_self_service"
        conf = s.scalars(select(SurvivalConfirmation).where(SurvivalConfirmation.pensioner_id == p.id)).one()
        assert conf.evidence["session_id"] == sid
        assert conf.evidence["match"] >= conf.evidence["threshold"]


def test_given_another_persons_template_when_genuine_video_captured_then_not_confirmed(
    client: TestClient, clock: VirtualTime, vctx: AppContext, faces_dir: Path, clip: Clip
) -> None:
    other = read_image_file(faces_dir / "lfw/images/Colin_Powell/Colin_Powell_0001.jpg")
    p = enroll(vctx, other, seq=13)
    _sid, phone = run(client, clock, p, clip)
    res = phone.last.result if phone.last else None
    assert res is not None and res["decision"] != "CONFIRMED" and res["confirmation"] is None, res
    with vctx.db.session() as s:
        assert s.scalars(select(SurvivalConfirmation)).first() is None


def test_given_still_photo_repeated_when_captured_then_liveness_fails_not_confirmed(
    client: TestClient, clock: VirtualTime, vctx: AppContext, video: list[NDArray[np.uint8]], clip: Clip
) -> None:
    p = enroll(vctx, video[TEMPLATE_FRAME], seq=15)
    still = Clip(neutral=[clip.neutral[0]], actions={})  # one photo held up: settles, then never acts
    _sid, phone = run(client, clock, p, still)
    res = phone.last.result if phone.last else None
    assert res is not None and (res["decision"], res["reason_code"]) == ("REVIEW", "LIVENESS_FAILED"), res
    with vctx.db.session() as s:
        assert s.scalars(select(SurvivalConfirmation)).first() is None


def test_given_a_decided_session_when_its_last_chunk_is_replayed_then_refused_and_nothing_changes(
    client: TestClient, clock: VirtualTime, vctx: AppContext, video: list[NDArray[np.uint8]], clip: Clip
) -> None:
    p = enroll(vctx, video[TEMPLATE_FRAME], seq=17)
    sid, first = http_start(client, {"id_number": p.id_number, "name": p.name})
    sent: list[tuple[int, str, list[int], list[bytes], int]] = []
    send = http_sender(client, sid)

    def recording(step: int, nonce: str, ts: list[int], frames: list[bytes], sent_ms: int):  # type: ignore[no-untyped-def]
        sent.append((step, nonce, ts, frames, sent_ms))
        return send(step, nonce, ts, frames, sent_ms)

    phone = Phone(recording, first, clip, SimClock(clock))
    assert phone.run().decision == "CONFIRMED"
    with vctx.db.session() as s:
        chunks = s.scalar(select(func.count()).select_from(VerificationChunk))
    for step, nonce, ts, frames, sent_ms in (sent[-1], sent[0]):
        data, files = chunk_form(nonce, ts, frames, sent_ms)
        r = client.post(f"/api/v1/sessions/{sid}/steps/{step}/frames", data=data, files=files)
        assert r.status_code == 403 and r.json()["error"]["code"] == "BAD_NONCE", r.text
    with vctx.db.session() as s:
        assert s.scalar(select(func.count()).select_from(VerificationChunk)) == chunks
        assert len(s.scalars(select(SurvivalConfirmation)).all()) == 1
        vs = s.get(VerificationSession, sid)
        assert vs is not None and vs.decision == "CONFIRMED"


def test_given_frames_of_two_people_when_a_session_runs_then_review_case_opened(
    client: TestClient, clock: VirtualTime, vctx: AppContext, faces_dir: Path, video: list[NDArray[np.uint8]],
    clip: Clip,
) -> None:
    p = enroll(vctx, video[TEMPLATE_FRAME], seq=19)
    other = read_video(faces_dir / "video/blink_7_times_1080p.mp4")
    stranger = [encode_jpeg(other[i], 85) for i in range(0, min(len(other), 150), 3)]
    sid, first = http_start(client, {"id_number": p.id_number, "name": p.name})
    phone = Phone(http_sender(client, sid), first, clip, SimClock(clock))
    while phone.step.index < 2 and not phone.decided:  # the pensioner settles and blinks ...
        phone.tick()
    phone.stream = stranger  # ... then someone else takes the phone
    res = phone.run().result
    assert res is not None and (res["decision"], res["reason_code"]) == ("REVIEW", "DIFFERENT_PERSONS"), res
    with vctx.db.session() as s:
        case = s.scalars(select(ReviewCase).where(ReviewCase.verification_session_id == sid)).one()
        assert case.kind == "verification" and case.pensioner_id == p.id
        payload = load_payload(case.payload)
        assert isinstance(payload, VerificationReview) and payload.reason == "DIFFERENT_PERSONS"
        assert payload.best_frames and payload.threshold == vctx.model.threshold("verify")
        assert payload.match is not None and payload.challenges
        assert all(vctx.photos.exists(f.sha256) for f in payload.best_frames)
        vs = s.get(VerificationSession, sid)
        assert vs is not None and vs.review_case_id == case.id
