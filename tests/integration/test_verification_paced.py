"""Server-paced capture on real frames through the real engine, on a virtual server clock.

The "pensioner" is ``video/talking_head_a.mp4`` sampled at 8 fps: neutral frames, a real blink
and a real mouth opening are located by measuring EAR/MAR, and the simulated phone sends them in
1-second chunks, acting each prompt only after it was revealed (with a given reaction delay).
The server's clock is virtual (client time + a fixed upload latency), so a 2.5 s reaction or an
8 s window costs no wall time.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from sqlalchemy import select

from lifecert.domain.errors import ErrorCode, LifecertError
from lifecert.engine.base import FaceEngine
from lifecert.engine.image import encode_jpeg
from lifecert.services.context import AppContext
from lifecert.services.verification import VerificationService, steps
from lifecert.services.verification.paced import PacedStart
from lifecert.storage.models import Pensioner, ReviewCase, SurvivalConfirmation
from lifecert.storage.models_verification import VerificationChunk, VerificationSession
from tests.integration.verification_support import TEMPLATE_FRAME, VIDEO, enroll, read_video, verification_ctx
from tests.paced_client import FRAME_MS, Clip, Phone, SimClock, VirtualTime, service_sender, step_of

BLINK, MOUTH = "blink", "open_mouth"


def _phone(svc: VerificationService, clock: VirtualTime, start: PacedStart, clip: Clip, lag_ms: int = 0) -> Phone:
    """A simulated page on the virtual clock that acts only what a test scripts (act=False)."""
    sim = SimClock(clock, server_lag_ms=lag_ms)
    send = service_sender(svc, start.session_id, sim)
    return Phone(send, step_of(start.step), clip, sim, act=False, session_id=start.session_id)


@pytest.fixture
def vctx(tmp_path: Path, face_engine: FaceEngine) -> Iterator[AppContext]:
    yield from verification_ctx(tmp_path, face_engine)


@pytest.fixture
def clock() -> VirtualTime:
    return VirtualTime()


@pytest.fixture
def svc(vctx: AppContext, frame_engine: FaceEngine, clock: VirtualTime) -> VerificationService:
    return VerificationService(vctx, engine_factory=lambda: frame_engine, clock=clock)


@pytest.fixture
def pensioner(vctx: AppContext, faces_dir: Path) -> Pensioner:
    video = read_video(faces_dir / VIDEO)
    return enroll(vctx, video[TEMPLATE_FRAME], seq=61)


def _start(svc: VerificationService, p: Pensioner) -> PacedStart:
    return svc.create_session(p.id_number, p.name, "10.1.1.1")


def test_given_a_new_paced_session_when_started_then_only_the_settle_step_is_revealed(
    svc: VerificationService, pensioner: Pensioner
) -> None:
    start = _start(svc, pensioner)
    assert (start.step.index, start.step.kind, start.step.challenge) == (0, "settle", None)
    assert start.steps_total == 3
    assert svc.get_result(start.session_id).challenges == []  # nothing about the challenges leaks


def test_given_a_slow_genuine_user_when_acting_each_prompt_late_then_confirmed(
    svc: VerificationService, clock: VirtualTime, pensioner: Pensioner, clip: Clip, vctx: AppContext
) -> None:
    phone = _phone(svc, clock, _start(svc, pensioner), clip)
    r = phone.neutral(1500)
    assert r is not None and r.step is not None and r.step.index == 1, [a.step_state for a in phone.answers]
    assert r.step.challenge == "blink" and r.step.window_ms >= 6000
    assert (r.step.fps, r.step.chunk_max_frames) == (steps.capture_fps("blink"), steps.chunk_max_frames("blink"))
    r = phone.run_step(clip.actions[BLINK], reaction_ms=2500)
    assert r.step is not None and r.step.challenge == "open_mouth"
    r = phone.run_step(clip.actions[MOUTH], reaction_ms=2500)
    assert r.status == "decided" and r.result is not None
    assert (r.result["decision"], r.result["reason_code"]) == ("CONFIRMED", None), r.result
    with vctx.db.session() as s:
        vs = s.get(VerificationSession, phone.session_id)
        assert vs is not None and vs.confirmation_id is not None
        reactions = [c["reaction_ms"] for c in vs.challenge_results]
        assert all(x is not None and x >= 2000 for x in reactions), vs.challenge_results
        jaw = vs.scores["liveness"]["jaw"]  # the REAL clip's speech opening: the chin drops with the lips
        assert jaw["decided"] and jaw["step_seen"] and jaw["signal"] == "pixels" and not jaw["still_chin"], jaw
        assert jaw["pixel_ratio"] > 0.45 and jaw["ratio"] > 0.6, jaw
        assert s.scalars(select(SurvivalConfirmation)).first() is not None


def test_given_an_action_already_under_way_at_the_prompt_when_judged_then_not_counted_and_timed_out(
    svc: VerificationService, clock: VirtualTime, pensioner: Pensioner, clip: Clip, vctx: AppContext
) -> None:
    phone = _phone(svc, clock, _start(svc, pensioner), clip)
    # Stop at the answer that reveals the blink (not after a fixed 1.5 s: the prompt appears a random
    # 300-1500 ms after that answer, and a fixed wait can run past it, so the "pre-cued" blink would
    # land after the prompt as a real reaction; CI once drew such a delay and the blink counted).
    for _ in range(64):
        if phone.step.index == 1:
            break
        phone.tick()
    assert phone.step.challenge == "blink"
    frame = round(1000 / phone.step.fps) if phone.step.fps else FRAME_MS
    assert phone.t <= phone.prompt_at - frame, (phone.t, phone.prompt_at)
    # A pre-cued clip: the blink lands right at the reveal, then nothing more happens.
    # The closed-eye frame is captured less than one frame interval before the prompt appears.
    phone.neutral(phone.prompt_at - frame - phone.t)
    assert phone.prompt_at - frame <= phone.t < phone.prompt_at
    phone.show(clip.actions[BLINK][2:])
    r = phone.answers[-1]
    for _ in range(12):
        if r.status == "decided":
            break
        r = phone.neutral(1000) or r
    assert r.status == "decided" and r.result is not None
    assert (r.result["decision"], r.result["reason_code"]) == ("RETRY", ErrorCode.CHALLENGE_NOT_SEEN)
    assert r.result["missed_challenge"] == "blink"
    # The next challenge was never revealed, not even in the result.
    assert [c["name"] for c in r.result["challenges"]] == ["blink"]


def test_given_a_slow_server_when_a_slow_user_acts_then_confirmed_and_pre_prompt_actions_still_ignored(
    svc: VerificationService, clock: VirtualTime, pensioner: Pensioner, clip: Clip
) -> None:
    # Each chunk waits 1.2 s in the server before its answer. The client-clock mapping must use the
    # ARRIVAL time: with the time after processing, every frame maps 1.2 s late, and frames captured
    # before a prompt count as a reaction to it.
    phone = _phone(svc, clock, _start(svc, pensioner), clip, lag_ms=1200)
    phone.neutral(3000)
    assert phone.step.challenge == "blink"
    phone.run_step(clip.actions[BLINK], reaction_ms=2500)
    r = phone.run_step(clip.actions[MOUTH], reaction_ms=2500)
    assert r.result is not None and r.result["decision"] == "CONFIRMED", r.result

    class ShortestDelay(random.Random):
        def randint(self, a: int, b: int) -> int:
            return a

    svc.rng = ShortestDelay()  # the prompt appears 300 ms after the answer: the closest case
    phone = _phone(svc, clock, _start(svc, pensioner), clip, lag_ms=1200)
    # The first chunk (sent at 1 s) ends the settle step; its answer is read at 1000 + 80 + 1200 ms and
    # the blink prompt appears >= 300 ms later. A blink whose closed frame is at 2155 ms is before it.
    phone.script, phone.script_at = list(clip.actions[BLINK]), 2155 - 2 * FRAME_MS
    phone.neutral(2400)
    assert phone.step.index == 1 and phone.prompt_at >= 2280 + 300
    r = phone.neutral(16_000)
    assert r is not None and r.result is not None and r.result["missed_challenge"] == "blink", r.result


def test_given_a_used_nonce_or_wrong_step_when_uploading_then_typed_errors_and_no_chunk_stored(
    svc: VerificationService, clock: VirtualTime, pensioner: Pensioner, clip: Clip, vctx: AppContext
) -> None:
    start = _start(svc, pensioner)
    phone = _phone(svc, clock, start, clip)
    phone.neutral(250)
    phone.flush()  # one chunk of two frames
    frames = [clip.neutral[0]]
    with pytest.raises(LifecertError) as used:
        svc.submit_chunk(start.session_id, 0, start.step.nonce, "[5000]", frames)
    assert used.value.code == ErrorCode.BAD_NONCE  # the first nonce was swapped for a new one
    with pytest.raises(LifecertError) as wrong:
        svc.submit_chunk(start.session_id, 1, phone.step.nonce, "[5000]", frames)
    assert wrong.value.code == ErrorCode.BAD_REQUEST
    with vctx.db.session() as s:
        assert len(s.scalars(select(VerificationChunk)).all()) == 1


def test_given_a_chunk_that_fails_to_decode_when_uploaded_then_the_nonce_is_burnt(
    svc: VerificationService, clock: VirtualTime, pensioner: Pensioner, clip: Clip, vctx: AppContext
) -> None:
    start = _start(svc, pensioner)
    good = clip.neutral[0]
    with pytest.raises(LifecertError) as bad:
        svc.submit_chunk(start.session_id, 0, start.step.nonce, "[0, 125]", [good, good[: len(good) // 3]])
    assert bad.value.code == ErrorCode.UNREADABLE_IMAGE
    with pytest.raises(LifecertError) as again:
        svc.submit_chunk(start.session_id, 0, start.step.nonce, "[0]", [good])
    assert again.value.code == ErrorCode.BAD_NONCE
    with vctx.db.session() as s:
        assert s.scalars(select(VerificationChunk)).first() is None
        assert s.scalars(select(ReviewCase)).first() is None


def test_given_no_face_for_the_whole_settle_window_when_capturing_then_retry_with_the_reason(
    svc: VerificationService, clock: VirtualTime, pensioner: Pensioner, clip: Clip
) -> None:
    start = _start(svc, pensioner)
    phone = _phone(svc, clock, start, clip)
    wall = encode_jpeg(np.full((480, 640, 3), 140, np.uint8), 85)
    r = None
    for _ in range(25):
        phone.pending = [(phone.t + k * FRAME_MS, wall) for k in range(8)]
        phone.t += 8 * FRAME_MS
        r = phone.flush()
        if r.status == "decided":
            break
        assert r.hints == ["NO_FACE"]
    assert r is not None and r.status == "decided" and r.result is not None
    assert (r.result["decision"], r.result["reason_code"]) == ("RETRY", ErrorCode.NO_FACE)


def test_given_the_http_api_when_a_paced_session_runs_then_steps_hints_and_single_use_nonces(
    vctx: AppContext, frame_engine: FaceEngine, pensioner: Pensioner, clip: Clip
) -> None:
    from tests.integration.verification_support import serve

    for client in serve(vctx, frame_engine):
        r = client.post(
            "/api/v1/sessions", json={"id_number": pensioner.id_number, "name": pensioner.name, "protocol": "paced"}
        )
        assert r.status_code == 201, r.text
        body = r.json()
        assert "challenges" not in body and body["step"]["kind"] == "settle" and body["steps_total"] == 3
        assert (body["step"]["fps"], body["step"]["chunk_max_frames"]) == (
            steps.capture_fps(None), steps.chunk_max_frames(None))
        wall = encode_jpeg(np.full((480, 640, 3), 140, np.uint8), 85)
        files = [("frames", (f"{i}.jpg", wall, "image/jpeg")) for i in range(4)]
        url = f"/api/v1/sessions/{body['session_id']}/steps/0/frames"
        data = {"nonce": body["step"]["nonce"], "timestamps": "[0, 125, 250, 375]"}
        first = client.post(url, data=data, files=files)
        assert first.status_code == 200, first.text
        out = first.json()
        assert out["status"] == "capturing" and out["step_state"] == "waiting" and out["hints"] == ["NO_FACE"]
        assert out["step"]["nonce"] != body["step"]["nonce"]
        replay = client.post(url, data=data, files=files)
        assert replay.status_code == 403 and replay.json()["error"]["code"] == "BAD_NONCE"
        status = client.get(f"/api/v1/sessions/{body['session_id']}").json()
        assert status["decision"] is None and status["challenges"] == []


def test_given_someone_else_enrolled_when_a_paced_session_ends_then_review_case_with_frames_and_scores(
    svc: VerificationService, clock: VirtualTime, vctx: AppContext, clip: Clip, faces_dir: Path
) -> None:
    from lifecert.domain.cases import VerificationReview, load_payload, photo_shas
    from lifecert.engine.image import read_image_file

    other = read_image_file(sorted((faces_dir / "photos").glob("*/*"))[0])
    p = enroll(vctx, other, seq=63, name="周淑珍")
    phone = _phone(svc, clock, _start(svc, p), clip)
    phone.neutral(1500)
    phone.run_step(clip.actions[BLINK], reaction_ms=1200)
    r = phone.run_step(clip.actions[MOUTH], reaction_ms=1200)
    assert r.result is not None and (r.result["decision"], r.result["reason_code"]) == ("REVIEW", ErrorCode.LOW_MATCH)
    with vctx.db.session() as s:
        case = s.scalars(select(ReviewCase)).one()
        payload = load_payload(case.payload)
        assert isinstance(payload, VerificationReview)
        assert payload.match is not None and payload.threshold is not None and payload.match < payload.threshold
        assert len(payload.best_frames) >= 1 and [c.name for c in payload.challenges] == ["blink", "open_mouth"]
        for sha in photo_shas(payload):
            assert vctx.photos.exists(sha)


@pytest.mark.postgres
def test_given_postgres_when_a_slow_user_runs_a_paced_session_then_confirmed_and_chunks_sealed(
    postgres_url: str, tmp_path: Path, face_engine: FaceEngine, frame_engine: FaceEngine, clip: Clip, faces_dir: Path
) -> None:
    from tests.conftest import empty_postgres

    empty_postgres(postgres_url)
    from lifecert.config import Settings

    ctx = AppContext(
        Settings(
            env="test", data_dir=tmp_path / "data", database_url=postgres_url, fixed_challenges="blink,open_mouth"
        )
    )
    ctx.set_engine(face_engine)
    try:
        assert ctx.db.engine.dialect.name == "postgresql"
        clock = VirtualTime()
        svc = VerificationService(ctx, engine_factory=lambda: frame_engine, clock=clock)
        p = enroll(ctx, read_video(faces_dir / VIDEO)[TEMPLATE_FRAME], seq=65)
        phone = _phone(svc, clock, _start(svc, p), clip)
        phone.neutral(1500)
        phone.run_step(clip.actions[BLINK], reaction_ms=2500)
        r = phone.run_step(clip.actions[MOUTH], reaction_ms=2500)
        assert r.result is not None and r.result["decision"] == "CONFIRMED", r.result
        with ctx.db.session() as s:
            chunks = s.scalars(select(VerificationChunk)).all()
            raw = clip.neutral[0][:256]
            assert chunks and all(c.frames_sealed and raw not in c.frames_sealed for c in chunks)
    finally:
        ctx.close()


def test_given_a_photo_tilted_in_front_of_the_camera_when_a_paced_session_ends_then_review_as_a_flat_picture(
    svc: VerificationService, clock: VirtualTime, pensioner: Pensioner, video: list[NDArray[np.uint8]],
    vctx: AppContext,
) -> None:
    import cv2

    # One real frame of the pensioner as a print turned slowly about its vertical axis: every view is a
    # homography of the same picture, so the nose never leaves the plane of the face's outline.
    img = video[30]
    h, w = img.shape[:2]
    corners = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    views = []
    for k in [*range(0, 9), *range(8, -9, -1), *range(-8, 1)]:
        d = 6.0 * k  # pixels: the near edge grows, the far edge shrinks
        tilted = np.float32([[0 - d, 0 - d], [w + d, 0 + d], [w + d, h - d], [0 - d, h + d]])
        m = cv2.getPerspectiveTransform(corners, tilted)
        views.append(encode_jpeg(cv2.warpPerspective(img, m, (w, h), borderMode=cv2.BORDER_REPLICATE), 85))
    phone = _phone(svc, clock, _start(svc, pensioner), Clip(neutral=views, actions={}))
    r = phone.neutral(40_000)
    assert r is not None and r.result is not None, [a.step_state for a in phone.answers]
    assert (r.result["decision"], r.result["reason_code"]) == ("REVIEW", "LIVENESS_FAILED"), r.result
    with vctx.db.session() as s:
        vs = s.get(VerificationSession, phone.session_id)
        assert vs is not None
        planarity = vs.scores["liveness"]["planarity"]
        assert planarity["decided"] and planarity["flat"], vs.scores["liveness"]
