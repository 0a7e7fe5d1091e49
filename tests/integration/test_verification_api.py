"""The verification API on real faces through the real engine (FastAPI TestClient on create_app)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from numpy.typing import NDArray
from sqlalchemy import select

from lifecert.domain.cases import VerificationReview, load_payload
from lifecert.engine.base import FaceEngine
from lifecert.engine.image import read_image_file
from lifecert.services.confirmations import status_of
from lifecert.services.context import AppContext
from lifecert.storage.models import Pensioner, ReviewCase, SurvivalConfirmation
from lifecert.storage.models_verification import VerificationSession
from tests.conftest import make_settings
from tests.integration.verification_support import (
    TEMPLATE_FRAME,
    Sequence,
    enroll,
    multipart,
    read_video,
    serve,
)


@pytest.fixture
def vctx(tmp_path: Path, face_engine: FaceEngine) -> Iterator[AppContext]:
    c = AppContext(make_settings(tmp_path, fixed_challenges="blink,open_mouth", inference_threads=1))
    c.set_engine(face_engine)
    yield c
    c.close()


@pytest.fixture
def client(vctx: AppContext, frame_engine: FaceEngine) -> Iterator[TestClient]:
    yield from serve(vctx, frame_engine)


def start(client: TestClient, p: Pensioner) -> dict[str, object]:
    r = client.post("/api/v1/sessions", json={"id_number": p.id_number, "name": p.name})
    assert r.status_code == 201, r.text
    return r.json()


def upload(client: TestClient, sess: dict[str, object], seq: Sequence) -> dict[str, object]:
    data, files = multipart(seq, str(sess["nonce"]))
    r = client.post(f"/api/v1/sessions/{sess['session_id']}/frames", data=data, files=files)
    assert r.status_code == 200, r.text
    return r.json()


def test_given_genuine_talking_head_when_uploaded_then_confirmed_and_status_shows_it(
    client: TestClient, vctx: AppContext, video: list[NDArray[np.uint8]], genuine: Sequence
) -> None:
    p = enroll(vctx, video[TEMPLATE_FRAME], seq=11)
    sess = start(client, p)
    assert sess["challenges"] == ["blink", "open_mouth"]
    res = upload(client, sess, genuine)
    assert res["decision"] == "CONFIRMED", res
    assert [c["passed"] for c in res["challenges"]] == [True, True]
    assert res["confirmation"]["valid_until"] > date.today().isoformat()
    again = client.get(f"/api/v1/sessions/{sess['session_id']}").json()
    assert again == res
    with vctx.db.session() as s:
        pen = s.get(Pensioner, p.id)
        assert pen is not None
        st = status_of(s, pen)
        assert st.state == "valid" and st.last_method == "face_self_service"
        conf = s.scalars(select(SurvivalConfirmation).where(SurvivalConfirmation.pensioner_id == p.id)).one()
        assert conf.evidence["session_id"] == sess["session_id"]
        assert conf.evidence["match"] >= conf.evidence["threshold"]


def test_given_another_persons_template_when_genuine_video_uploaded_then_not_confirmed(
    client: TestClient, vctx: AppContext, faces_dir: Path, genuine: Sequence
) -> None:
    other = read_image_file(faces_dir / "lfw/images/Colin_Powell/Colin_Powell_0001.jpg")
    p = enroll(vctx, other, seq=13)
    res = upload(client, start(client, p), genuine)
    assert res["decision"] != "CONFIRMED"
    assert res["confirmation"] is None
    with vctx.db.session() as s:
        assert s.scalars(select(SurvivalConfirmation)).first() is None


def test_given_still_photo_repeated_when_uploaded_then_liveness_fails(
    client: TestClient, vctx: AppContext, video: list[NDArray[np.uint8]], genuine: Sequence
) -> None:
    p = enroll(vctx, video[TEMPLATE_FRAME], seq=15)
    still = Sequence([genuine.frames[0]] * len(genuine.frames), genuine.timestamps, genuine.video_index)
    res = upload(client, start(client, p), still)
    assert res["decision"] != "CONFIRMED"
    assert res["reason_code"] == "LIVENESS_FAILED"
    with vctx.db.session() as s:
        assert s.scalars(select(SurvivalConfirmation)).first() is None


def test_given_used_nonce_when_uploaded_again_then_nonce_used(
    client: TestClient, vctx: AppContext, video: list[NDArray[np.uint8]], genuine: Sequence
) -> None:
    p = enroll(vctx, video[TEMPLATE_FRAME], seq=17)
    sess = start(client, p)
    upload(client, sess, genuine)
    data, files = multipart(genuine, str(sess["nonce"]))
    r = client.post(f"/api/v1/sessions/{sess['session_id']}/frames", data=data, files=files)
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "NONCE_USED"


def test_given_frames_of_two_people_when_uploaded_then_review_case_opened(
    client: TestClient, vctx: AppContext, faces_dir: Path, video: list[NDArray[np.uint8]], genuine: Sequence
) -> None:
    p = enroll(vctx, video[TEMPLATE_FRAME], seq=19)
    other = read_video(faces_dir / "video/blink_7_times_1080p.mp4")
    from lifecert.engine.image import encode_jpeg

    half = len(genuine.frames) // 2
    swapped = [encode_jpeg(other[min(len(other) - 1, 3 * i)], 90) for i in range(len(genuine.frames) - half)]
    mixed = Sequence(genuine.frames[:half] + swapped, genuine.timestamps, genuine.video_index)
    sess = start(client, p)
    res = upload(client, sess, mixed)
    assert res["decision"] == "REVIEW", res
    assert res["reason_code"] == "DIFFERENT_PERSONS"
    with vctx.db.session() as s:
        case = s.scalars(select(ReviewCase).where(ReviewCase.verification_session_id == sess["session_id"])).one()
        assert case.kind == "verification" and case.pensioner_id == p.id
        payload = load_payload(case.payload)
        assert isinstance(payload, VerificationReview) and payload.reason == "DIFFERENT_PERSONS"
        assert payload.best_frames and payload.threshold == vctx.model.threshold("verify")
        assert payload.match is not None and payload.challenges
        assert all(vctx.photos.exists(f.sha256) for f in payload.best_frames)
        vs = s.get(VerificationSession, sess["session_id"])
        assert vs is not None and vs.review_case_id == case.id
