"""Bad input on the verification API: each gets a clear typed error and nothing is confirmed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from numpy.typing import NDArray
from sqlalchemy import select

from lifecert.config import VerificationSettings
from lifecert.domain.idnumber import make_id_number
from lifecert.engine.base import FaceEngine
from lifecert.engine.image import encode_jpeg
from lifecert.services.context import AppContext
from lifecert.services.templates import upsert_pensioner
from lifecert.services.verification import steps
from lifecert.services.verification.sessions import sha256_hex
from lifecert.storage.models import Pensioner, PensionerStatus, SurvivalConfirmation
from lifecert.storage.models_verification import VerificationChunk, VerificationSession
from tests.conftest import make_settings
from tests.integration.verification_support import TEMPLATE_FRAME, VIDEO, enroll, read_video, serve


@pytest.fixture(scope="module")
def video(faces_dir: Path) -> list[NDArray[np.uint8]]:
    return read_video(faces_dir / VIDEO)


@pytest.fixture(scope="module")
def jpegs(video: list[NDArray[np.uint8]]) -> list[bytes]:
    return [encode_jpeg(video[i], 85) for i in range(0, 60, 6)]  # 10 real frames


def _ctx(tmp_path: Path, engine: FaceEngine, **kw: object) -> AppContext:
    c = AppContext(make_settings(tmp_path, fixed_challenges="blink,open_mouth", inference_threads=1, **kw))
    c.set_engine(engine)
    return c


@pytest.fixture
def vctx(tmp_path: Path, face_engine: FaceEngine) -> Iterator[AppContext]:
    c = _ctx(
        tmp_path, face_engine, verification=VerificationSettings(max_upload_bytes=400_000, rate_limit_per_id_per_hour=3)
    )
    yield c
    c.close()


@pytest.fixture
def client(vctx: AppContext, frame_engine: FaceEngine) -> Iterator[TestClient]:
    yield from serve(vctx, frame_engine)


@pytest.fixture
def pensioner(vctx: AppContext, video: list[NDArray[np.uint8]]) -> Pensioner:
    return enroll(vctx, video[TEMPLATE_FRAME], seq=21)


def _session(client: TestClient, p: Pensioner) -> dict[str, object]:
    r = client.post("/api/v1/sessions", json={"id_number": p.id_number, "name": p.name})
    assert r.status_code == 201, r.text
    body = r.json()
    return {"session_id": body["session_id"], "nonce": body["step"]["nonce"], "step": body["step"]["index"]}


def _post(client: TestClient, sess: dict[str, object], frames: list[bytes], ts: list[int] | str | None = None):  # type: ignore[no-untyped-def]
    """One chunk of the current (settle) step."""
    stamps = ts if ts is not None else [i * 125 for i in range(len(frames))]
    data = {"nonce": str(sess["nonce"]), "timestamps": stamps if isinstance(stamps, str) else json.dumps(stamps)}
    files = [("frames", (f"{i}.jpg", b, "image/jpeg")) for i, b in enumerate(frames)]
    return client.post(f"/api/v1/sessions/{sess['session_id']}/steps/{sess['step']}/frames", data=data, files=files)


def _nothing_recorded(ctx: AppContext, sess: dict[str, object]) -> None:
    """No decision, no chunk stored, the nonce still the one the client holds (not spent)."""
    with ctx.db.session() as s:
        assert s.scalars(select(SurvivalConfirmation)).first() is None
        assert s.scalars(select(VerificationChunk)).first() is None
        vs = s.get(VerificationSession, str(sess["session_id"]))
        assert vs is not None and vs.decision is None and vs.used_at is None and vs.chunk_count == 0
        assert vs.nonce_hash == sha256_hex(str(sess["nonce"])) and vs.current_step == 0


def test_given_unknown_id_wrong_name_no_template_or_suspended_when_starting_then_same_not_found(
    client: TestClient, vctx: AppContext, pensioner: Pensioner, video: list[NDArray[np.uint8]]
) -> None:
    with vctx.db.session() as s:
        bare = upsert_pensioner(s, make_id_number("110101", datetime(1948, 5, 6).date(), 23), "李建国")
        bare_id = bare.id_number
    suspended = enroll(vctx, video[TEMPLATE_FRAME], seq=27, name="刘桂兰")
    with vctx.db.session() as s:
        row = s.get(Pensioner, suspended.id)
        assert row is not None
        row.status = PensionerStatus.SUSPENDED
    attempts = [
        {"id_number": make_id_number("110101", datetime(1949, 1, 1).date(), 25), "name": "赵六"},  # unknown
        {"id_number": pensioner.id_number, "name": "张冒名"},  # wrong name
        {"id_number": bare_id, "name": "李建国"},  # no template
        {"id_number": suspended.id_number, "name": "刘桂兰"},  # suspended: not told apart (issue 11, Low)
    ]
    bodies = []
    for body in attempts:
        r = client.post("/api/v1/sessions", json=body)
        assert r.status_code == 404
        bodies.append(r.json())
    assert bodies[0] == bodies[1] == bodies[2] == bodies[3]
    assert bodies[0]["error"]["code"] == "NOT_FOUND"


def test_given_bad_check_digit_when_starting_then_bad_id_number(client: TestClient) -> None:
    r = client.post("/api/v1/sessions", json={"id_number": "110101195001011230", "name": "王"})
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "BAD_ID_NUMBER"


def test_given_too_many_sessions_for_one_id_when_starting_then_rate_limited(
    client: TestClient, pensioner: Pensioner
) -> None:
    codes = [
        client.post("/api/v1/sessions", json={"id_number": pensioner.id_number, "name": pensioner.name}).status_code
        for _ in range(4)
    ]
    assert codes == [201, 201, 201, 429]


def test_given_text_file_as_frame_when_uploading_then_typed_image_error_and_nothing_recorded(
    client: TestClient, vctx: AppContext, pensioner: Pensioner, jpegs: list[bytes]
) -> None:
    sess = _session(client, pensioner)
    r = _post(client, sess, [*jpegs[:5], b"this is not an image at all, just some text" * 10, *jpegs[5:]])
    assert r.status_code == 415
    assert r.json()["error"]["code"] == "UNSUPPORTED_FORMAT"  # refused by its signature, before any decoding
    assert r.json()["error"]["details"]["frame"] == 5
    _nothing_recorded(vctx, sess)


def test_given_truncated_jpeg_when_uploading_then_unreadable_and_the_nonce_is_burnt(
    client: TestClient, vctx: AppContext, pensioner: Pensioner, jpegs: list[bytes]
) -> None:
    # Issue 11 H3: the nonce is claimed before decoding, so a replay of a costly bad upload
    # is refused at once instead of being decoded again for the whole session lifetime.
    sess = _session(client, pensioner)
    broken = jpegs[3][: len(jpegs[3]) // 3]
    r = _post(client, sess, [*jpegs[:3], broken, *jpegs[4:]])
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "UNREADABLE_IMAGE"
    with vctx.db.session() as s:
        assert s.scalars(select(SurvivalConfirmation)).first() is None
        assert s.scalars(select(VerificationChunk)).first() is None  # nothing of the bad chunk kept
        vs = s.get(VerificationSession, str(sess["session_id"]))
        assert vs is not None and vs.decision is None and vs.used_at is not None
        assert vs.nonce_hash != sha256_hex(str(sess["nonce"]))
    again = _post(client, sess, jpegs)
    assert again.status_code == 403
    assert again.json()["error"]["code"] == "BAD_NONCE"


def test_given_oversize_body_with_content_length_when_uploading_then_413_before_reading(
    client: TestClient, vctx: AppContext, pensioner: Pensioner
) -> None:
    sess = _session(client, pensioner)
    big = b"\xff\xd8" + bytes(500_000)
    r = _post(client, sess, [big])
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
    _nothing_recorded(vctx, sess)


def test_given_oversize_chunked_body_when_streaming_then_413(
    client: TestClient, vctx: AppContext, pensioner: Pensioner
) -> None:
    sess = _session(client, pensioner)
    sent = []

    def body() -> Iterator[bytes]:
        for _ in range(100):  # 100 x 64 KiB = 6.4 MB offered, limit 400 kB
            sent.append(1)
            yield bytes(65536)

    r = client.post(
        f"/api/v1/sessions/{sess['session_id']}/steps/0/frames",
        content=body(),
        headers={"content-type": "multipart/form-data; boundary=xyz"},
    )
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
    _nothing_recorded(vctx, sess)


@pytest.mark.parametrize(
    ("n", "code"),
    [(0, "BAD_REQUEST"), (13, "TOO_MANY_FRAMES"), (23, "TOO_MANY_FRAMES"), (24, "TOO_MANY_FRAMES")],
)  # 13 and 23: over the settle step's 12 (23 is the fast blink step's own limit); 24: over any step's
def test_given_wrong_frame_count_when_uploading_then_typed_error(
    client: TestClient, vctx: AppContext, pensioner: Pensioner, n: int, code: str
) -> None:
    sess = _session(client, pensioner)
    tiny = encode_jpeg(np.full((32, 32, 3), 100, np.uint8), 50)
    r = _post(client, sess, [tiny] * n)
    assert r.status_code == 422
    assert r.json()["error"]["code"] == code
    _nothing_recorded(vctx, sess)


def test_given_a_session_near_its_frame_budget_when_uploading_past_it_then_refused_with_the_budget(
    client: TestClient, vctx: AppContext, pensioner: Pensioner
) -> None:
    sess = _session(client, pensioner)
    budget = steps.session_max_frames(["blink", "open_mouth"])  # the fixed challenges: blink at 15 fps
    assert budget == steps.SESSION_MAX_FRAMES + 70
    with vctx.db.session() as s:
        vs = s.get(VerificationSession, str(sess["session_id"]))
        assert vs is not None
        vs.frame_count = budget - 3
    tiny = encode_jpeg(np.full((32, 32, 3), 100, np.uint8), 50)
    r = _post(client, sess, [tiny] * 4)
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "TOO_MANY_FRAMES" and err["details"]["max_frames"] == budget


@pytest.mark.parametrize(
    "ts",
    [
        [0, 125, 250, 200, 500, 625, 750, 875, 1000, 1125],  # out of order
        [0, 125, 250],  # fewer timestamps than frames
        [-125, 0, 125, 250, 375, 500, 625, 750, 875, 1000],  # before the capture started
        [0, 125, 250, 375, 500, 625, 750, 875, 1000, 10**9],  # past the session's lifetime
        "not json",
    ],
)
def test_given_bad_timestamps_when_uploading_then_bad_timestamps(
    client: TestClient, vctx: AppContext, pensioner: Pensioner, jpegs: list[bytes], ts: list[int] | str
) -> None:
    sess = _session(client, pensioner)
    r = _post(client, sess, jpegs, ts)
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "BAD_TIMESTAMPS"
    _nothing_recorded(vctx, sess)


@pytest.mark.parametrize(("forged", "status", "code"), [(False, 410, "SESSION_EXPIRED"), (True, 403, "BAD_NONCE")])
def test_given_expired_session_when_uploading_then_expired_or_with_a_wrong_nonce_bad_nonce_revealing_nothing(
    client: TestClient, vctx: AppContext, pensioner: Pensioner, jpegs: list[bytes], forged: bool, status: int,
    code: str,
) -> None:
    sess = _session(client, pensioner)
    with vctx.db.session() as s:
        vs = s.get(VerificationSession, str(sess["session_id"]))
        assert vs is not None
        vs.expires_at = datetime.now(UTC) - timedelta(seconds=1)
    r = _post(client, {**sess, "nonce": "forged"} if forged else sess, jpegs)
    assert r.status_code == status
    assert r.json()["error"]["code"] == code
    _nothing_recorded(vctx, sess)


def test_given_wrong_nonce_when_uploading_then_refused(
    client: TestClient, vctx: AppContext, pensioner: Pensioner, jpegs: list[bytes]
) -> None:
    sess = _session(client, pensioner)
    r = _post(client, {**sess, "nonce": "forged"}, jpegs)
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "BAD_NONCE"
    _nothing_recorded(vctx, sess)


@pytest.mark.parametrize("sent_ms", ["1000", "70000", "-5", "soon"])
def test_given_a_send_time_before_the_newest_frame_or_far_after_it_when_uploading_then_refused_and_nothing_changes(
    client: TestClient, vctx: AppContext, pensioner: Pensioner, jpegs: list[bytes], sent_ms: str
) -> None:
    # frames at 0..1125 ms: a chunk cannot leave before its newest frame, nor wait more than a minute
    sess = _session(client, pensioner)
    data = {"nonce": str(sess["nonce"]), "timestamps": json.dumps([i * 125 for i in range(len(jpegs))]),
            "sent_ms": sent_ms}
    files = [("frames", (f"{i}.jpg", b, "image/jpeg")) for i, b in enumerate(jpegs)]
    r = client.post(f"/api/v1/sessions/{sess['session_id']}/steps/0/frames", data=data, files=files)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] in ("BAD_TIMESTAMPS", "BAD_REQUEST")  # BAD_REQUEST: not an integer >= 0
    _nothing_recorded(vctx, sess)


@pytest.mark.parametrize(("fields", "status", "code"), [
    ({"hint_heard_ms": "soon"}, 422, "BAD_REQUEST"),  # 422 BAD_REQUEST: the form's types (not an integer >= 0 ...)
    ({"hint_heard_ms": "-5"}, 422, "BAD_REQUEST"),
    ({"hint_heard_ms": "1e999"}, 422, "BAD_REQUEST"),
    ({"hint_heard_ms": "900", "sent_ms": "1200", "hint_heard_via": "loud"}, 422, "BAD_REQUEST"),
    ({"hint_heard_ms": "5000"}, 422, "BAD_TIMESTAMPS"),  # heard after the chunk left (its newest frame: 1125 ms)
    ({"hint_heard_via": "speech"}, 400, "BAD_REQUEST"),  # how, but not when
    ({"prompt_heard_ms": "soon"}, 422, "BAD_REQUEST"),  # the prompt's hearing: the same checks
    ({"prompt_heard_ms": "900", "sent_ms": "1200", "prompt_heard_via": "loud"}, 422, "BAD_REQUEST"),
    ({"prompt_heard_ms": "5000"}, 422, "BAD_TIMESTAMPS"),
    ({"prompt_heard_via": "text"}, 400, "BAD_REQUEST"),
    ({"hint_heard_code": "TURN_MORE"}, 400, "BAD_REQUEST"),  # which hint, but not when
    ({"hint_heard_ms": "900", "sent_ms": "1200", "hint_heard_code": "SMILE"}, 400, "BAD_REQUEST"),  # not an action hint
    ({"hint_heard_ms": "900", "sent_ms": "1200", "hint_heard_code": "MOVE_BACK"}, 400, "BAD_REQUEST"),  # framing hint
    ({"hint_heard_ms": "900", "sent_ms": "1200", "hint_heard_code": "X" * 40}, 422, "BAD_REQUEST"),  # too long
])
def test_given_a_garbage_hint_hearing_when_uploading_then_refused_and_nothing_changes(
    client: TestClient, vctx: AppContext, pensioner: Pensioner, jpegs: list[bytes], fields: dict[str, str], status: int,
    code: str,
) -> None:
    sess = _session(client, pensioner)
    data = {"nonce": str(sess["nonce"]), "timestamps": json.dumps([i * 125 for i in range(len(jpegs))]), **fields}
    files = [("frames", (f"{i}.jpg", b, "image/jpeg")) for i, b in enumerate(jpegs)]
    r = client.post(f"/api/v1/sessions/{sess['session_id']}/steps/0/frames", data=data, files=files)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code, r.text
    _nothing_recorded(vctx, sess)


def test_given_a_hint_hearing_on_a_step_without_a_hint_when_uploading_then_accepted_and_ignored(
    client: TestClient, vctx: AppContext, pensioner: Pensioner, jpegs: list[bytes]
) -> None:
    sess = _session(client, pensioner)
    data = {"nonce": str(sess["nonce"]), "timestamps": json.dumps([i * 125 for i in range(len(jpegs))]),
            "hint_heard_ms": "1000", "hint_heard_via": "text", "prompt_heard_ms": "1000", "prompt_heard_via": "speech"}
    files = [("frames", (f"{i}.jpg", b, "image/jpeg")) for i, b in enumerate(jpegs)]
    r = client.post(f"/api/v1/sessions/{sess['session_id']}/steps/0/frames", data=data, files=files)
    assert r.status_code == 200, r.text
    with vctx.db.session() as s:
        vs = s.get(VerificationSession, str(sess["session_id"]))
        assert vs is not None and not any(st.get("hint") or st.get("prompt_heard") for st in vs.steps)
        assert vs.steps[0]["window_ms"] == steps.SETTLE_WINDOW_MS


def test_given_unknown_session_when_reading_then_404(client: TestClient) -> None:
    r = client.get("/api/v1/sessions/does-not-exist")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "NOT_FOUND"


def test_given_new_session_when_reading_then_decision_is_null_and_no_challenge_revealed(
    client: TestClient, pensioner: Pensioner
) -> None:
    sess = _session(client, pensioner)
    r = client.get(f"/api/v1/sessions/{sess['session_id']}").json()
    assert r["decision"] is None and r["confirmation"] is None
    assert r["challenges"] == []  # paced: a challenge is shown only when its step begins


def test_given_the_retired_one_shot_protocol_when_asked_then_refused_and_no_session(
    client: TestClient, vctx: AppContext, pensioner: Pensioner
) -> None:
    r = client.post(
        "/api/v1/sessions", json={"id_number": pensioner.id_number, "name": pensioner.name, "protocol": "oneshot"}
    )
    assert r.status_code == 422 and r.json()["error"]["code"] == "BAD_REQUEST", r.text
    assert client.post("/api/v1/sessions/x/frames", data={"nonce": "n", "timestamps": "[0]"}).status_code in (404, 405)
    with vctx.db.session() as s:
        assert s.scalars(select(VerificationSession)).first() is None


def test_given_server_when_probed_then_health_and_ready(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200
