"""Server-paced capture on real frames through the real engine, on a virtual server clock.

The "pensioner" is ``video/talking_head_a.mp4`` sampled at 8 fps: neutral frames, a real blink
and a real mouth opening are located by measuring EAR/MAR, and the simulated phone sends them in
1-second chunks, acting each prompt only after it was revealed (with a given reaction delay).
The server's clock is virtual (client time + a fixed upload latency), so a 2.5 s reaction or an
8 s window costs no wall time.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from sqlalchemy import select

from lifecert.domain.errors import ErrorCode, LifecertError
from lifecert.engine.base import FaceEngine
from lifecert.engine.image import encode_jpeg
from lifecert.services.context import AppContext
from lifecert.services.verification import VerificationService
from lifecert.services.verification.paced import ChunkResult, PacedStart
from lifecert.storage.models import Pensioner, ReviewCase, SurvivalConfirmation
from lifecert.storage.models_verification import VerificationChunk, VerificationSession
from tests.conftest import make_settings
from tests.integration.verification_support import STEP, TEMPLATE_FRAME, VIDEO, enroll, measure, read_video

FRAME_MS = 125
LATENCY_MS = 80


@dataclass
class Clip:
    """Sampled video frames (BGR) with their EAR/MAR, and where the actions are."""

    frames: list[NDArray[np.uint8]]
    neutral: list[int]
    blink: list[int]  # a short run: open, closed, open
    mouth: list[int]  # a short run reaching MAR > 0.4


@pytest.fixture(scope="module")
def clip(faces_dir: Path, frame_engine: FaceEngine) -> Clip:
    video = read_video(faces_dir / VIDEO)
    frames = [video[i] for i in range(0, len(video), STEP)]
    ear, mar = measure(frame_engine, frames)
    base = float(np.nanpercentile(ear, 75))
    calm = [bool(ear[i] >= 0.85 * base and mar[i] < 0.25) for i in range(len(frames))]
    runs: list[list[int]] = [[]]
    for i, ok in enumerate(calm):
        if ok:
            runs[-1].append(i)
        elif runs[-1]:
            runs.append([])
    longest = max(runs, key=len)
    closed = [i for i in range(2, len(frames) - 2) if ear[i] < 0.6 * base]
    mouth = [i for i in range(2, len(frames) - 2) if mar[i] > 0.4]
    assert len(longest) >= 6 and closed and mouth, "the talking-head video no longer has the expected content"
    b, m = closed[0], mouth[0]
    # A continuous face at rest: the longest calm run played forwards and backwards.
    return Clip(frames, longest + longest[-2:0:-1], list(range(b - 2, b + 3)), list(range(m - 2, m + 3)))


class Phone:
    """A simulated capture page on a client clock: the camera captures at 8 fps all the time; a chunk
    (the oldest <= 12 waiting frames) goes out about every second when no request is in flight; the
    answer arrives ``server_lag_ms`` after the chunk (queue + processing in the server), and a new
    prompt is shown ``prompt_delay_ms`` after that. Actions are scheduled on the client clock."""

    server_lag_ms = 0

    def __init__(self, svc: VerificationService, clock: VirtualClock, start: PacedStart, clip: Clip) -> None:
        self.svc, self.clock, self.clip = svc, clock, clip
        self.session_id = start.session_id
        self.step = start.step
        self.t = 0  # client ms since capture start
        self.pending: list[tuple[int, bytes]] = []
        self.answers: list[ChunkResult] = []
        self.jpeg = {i: encode_jpeg(f, 85) for i, f in enumerate(clip.frames)}
        self._n = 0
        self.script: list[int] = []
        self.script_at = 0
        self.inflight: tuple[int, ChunkResult] | None = None  # (client ms the answer arrives, answer)
        self.next_send = 1000
        self.prompt_at = 0  # client ms the current prompt appeared

    def _neutral(self) -> int:
        self._n += 1
        return self.clip.neutral[self._n % len(self.clip.neutral)]

    @property
    def decided(self) -> bool:
        return bool(self.answers) and self.answers[-1].status == "decided"

    def tick(self) -> None:
        """One camera frame, then deliver a due answer and send a chunk when it is time."""
        idx = self.script.pop(0) if self.script and self.t >= self.script_at else self._neutral()
        self.pending.append((self.t, self.jpeg[idx]))
        self.t += FRAME_MS
        if self.inflight is not None and self.t >= self.inflight[0]:
            self._deliver()
        if self.inflight is None and self.t >= self.next_send and not self.decided:
            self.flush()

    def _deliver(self) -> None:
        assert self.inflight is not None
        at, r = self.inflight
        self.inflight = None
        self.answers.append(r)
        if r.step is not None:
            if r.step.index != self.step.index:
                self.prompt_at = at + r.step.prompt_delay_ms
            self.step = r.step

    def flush(self) -> ChunkResult:
        """Send the oldest <= 12 waiting frames now; with no server lag the answer is read at once."""
        chunk, self.pending = self.pending[:12], self.pending[12:]
        ts = [t for t, _ in chunk]
        self.clock.set(ts[-1] + LATENCY_MS)
        received = self.clock()
        self.clock.ms += self.server_lag_ms  # the service's own clock reads are this much later
        r = self.svc.submit_chunk(
            self.session_id,
            self.step.index,
            self.step.nonce,
            json.dumps(ts),
            [b for _, b in chunk],
            received_at=received,
        )
        self.inflight = (self.t + LATENCY_MS + self.server_lag_ms, r)
        self.next_send = self.t + 1000
        if self.server_lag_ms == 0:
            self._deliver()
        return r

    def neutral(self, ms: int) -> ChunkResult | None:
        """Let ``ms`` of capture pass; returns the newest answer."""
        end = self.t + ms
        while self.t < end and not self.decided:
            self.tick()
        return self.answers[-1] if self.answers else None

    def show(self, indices: list[int]) -> ChunkResult | None:
        """Act these frames from now on."""
        self.script, self.script_at = list(indices), self.t
        return self.neutral(len(indices) * FRAME_MS)

    def run_step(self, act: list[int], reaction_ms: int) -> ChunkResult:
        """React ``reaction_ms`` after the current prompt appeared, act, and wait (bounded) until the
        server moves on or decides."""
        index = self.step.index
        self.script, self.script_at = list(act), self.prompt_at + reaction_ms
        for _ in range(40 * 8):
            if self.decided or self.step.index != index:
                return self.answers[-1]
            self.tick()
        raise AssertionError("the server never ended the step")


@dataclass
class VirtualClock:
    t0: datetime = field(default_factory=lambda: datetime.now(UTC))
    ms: int = 0

    def set(self, client_ms: int) -> None:
        self.ms = max(self.ms, client_ms)

    def __call__(self) -> datetime:
        return self.t0 + timedelta(milliseconds=self.ms)


@pytest.fixture
def vctx(tmp_path: Path, face_engine: FaceEngine) -> Iterator[AppContext]:
    c = AppContext(make_settings(tmp_path, fixed_challenges="blink,open_mouth"))
    c.set_engine(face_engine)
    yield c
    c.close()


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def svc(vctx: AppContext, frame_engine: FaceEngine, clock: VirtualClock) -> VerificationService:
    return VerificationService(vctx, engine_factory=lambda: frame_engine, clock=clock)


@pytest.fixture
def pensioner(vctx: AppContext, faces_dir: Path) -> Pensioner:
    video = read_video(faces_dir / VIDEO)
    return enroll(vctx, video[TEMPLATE_FRAME], seq=61)


def _start(svc: VerificationService, p: Pensioner) -> PacedStart:
    start = svc.create_session(p.id_number, p.name, "10.1.1.1", protocol="paced")
    assert isinstance(start, PacedStart)
    return start


def test_given_a_new_paced_session_when_started_then_only_the_settle_step_is_revealed(
    svc: VerificationService, pensioner: Pensioner
) -> None:
    start = _start(svc, pensioner)
    assert (start.step.index, start.step.kind, start.step.challenge) == (0, "settle", None)
    assert start.steps_total == 3
    assert svc.get_result(start.session_id).challenges == []  # nothing about the challenges leaks


def test_given_a_slow_genuine_user_when_acting_each_prompt_late_then_confirmed(
    svc: VerificationService, clock: VirtualClock, pensioner: Pensioner, clip: Clip, vctx: AppContext
) -> None:
    phone = Phone(svc, clock, _start(svc, pensioner), clip)
    r = phone.neutral(1500)
    assert r is not None and r.step is not None and r.step.index == 1, [a.step_state for a in phone.answers]
    assert r.step.challenge == "blink" and r.step.window_ms >= 6000
    r = phone.run_step(clip.blink, reaction_ms=2500)
    assert r.step is not None and r.step.challenge == "open_mouth"
    r = phone.run_step(clip.mouth, reaction_ms=2500)
    assert r.status == "decided" and r.result is not None
    assert (r.result.decision, r.result.reason_code) == ("CONFIRMED", None), r.result
    with vctx.db.session() as s:
        vs = s.get(VerificationSession, phone.session_id)
        assert vs is not None and vs.confirmation_id is not None
        reactions = [c["reaction_ms"] for c in vs.challenge_results]
        assert all(x is not None and x >= 2000 for x in reactions), vs.challenge_results
        assert s.scalars(select(SurvivalConfirmation)).first() is not None


def test_given_an_action_already_under_way_at_the_prompt_when_judged_then_not_counted_and_timed_out(
    svc: VerificationService, clock: VirtualClock, pensioner: Pensioner, clip: Clip, vctx: AppContext
) -> None:
    phone = Phone(svc, clock, _start(svc, pensioner), clip)
    phone.neutral(1500)
    assert phone.step.challenge == "blink"
    # A pre-cued clip: the blink lands right at the reveal, then nothing more happens.
    # The closed-eye frame is captured 125 ms before the prompt appears.
    phone.neutral(max(0, phone.prompt_at - FRAME_MS - phone.t))
    phone.show(clip.blink[2:])
    r = phone.answers[-1]
    for _ in range(12):
        if r.status == "decided":
            break
        r = phone.neutral(1000) or r
    assert r.status == "decided" and r.result is not None
    assert (r.result.decision, r.result.reason_code) == ("RETRY", ErrorCode.CHALLENGE_NOT_SEEN)
    assert r.result.missed_challenge == "blink"
    # The next challenge was never revealed, not even in the result.
    assert [c for c, _ in r.result.challenges] == ["blink"]


def test_given_a_slow_server_when_a_slow_user_acts_then_confirmed_and_pre_prompt_actions_still_ignored(
    svc: VerificationService, clock: VirtualClock, pensioner: Pensioner, clip: Clip
) -> None:
    # Each chunk waits 1.2 s in the server before its answer. The client-clock mapping must use the
    # ARRIVAL time: with the time after processing, every frame maps 1.2 s late, and frames captured
    # before a prompt count as a reaction to it.
    phone = Phone(svc, clock, _start(svc, pensioner), clip)
    phone.server_lag_ms = 1200
    phone.neutral(3000)
    assert phone.step.challenge == "blink"
    phone.run_step(clip.blink, reaction_ms=2500)
    r = phone.run_step(clip.mouth, reaction_ms=2500)
    assert r.result is not None and r.result.decision == "CONFIRMED", r.result

    class ShortestDelay(random.Random):
        def randint(self, a: int, b: int) -> int:
            return a

    svc.rng = ShortestDelay()  # the prompt appears 300 ms after the answer: the closest case
    phone = Phone(svc, clock, _start(svc, pensioner), clip)
    phone.server_lag_ms = 1200
    # The first chunk (sent at 1 s) ends the settle step; its answer is read at 1000 + 80 + 1200 ms and
    # the blink prompt appears >= 300 ms later. A blink whose closed frame is at 2155 ms is before it.
    phone.script, phone.script_at = list(clip.blink), 2155 - 2 * FRAME_MS
    phone.neutral(2400)
    assert phone.step.index == 1 and phone.prompt_at >= 2280 + 300
    r = phone.neutral(16_000)
    assert r is not None and r.result is not None and r.result.missed_challenge == "blink", r.result


def test_given_a_used_nonce_or_wrong_step_when_uploading_then_typed_errors_and_no_chunk_stored(
    svc: VerificationService, clock: VirtualClock, pensioner: Pensioner, clip: Clip, vctx: AppContext
) -> None:
    start = _start(svc, pensioner)
    phone = Phone(svc, clock, start, clip)
    phone.neutral(250)
    phone.flush()  # one chunk of two frames
    frames = [phone.jpeg[clip.neutral[0]]]
    with pytest.raises(LifecertError) as used:
        svc.submit_chunk(start.session_id, 0, start.step.nonce, "[5000]", frames)
    assert used.value.code == ErrorCode.BAD_NONCE  # the first nonce was swapped for a new one
    with pytest.raises(LifecertError) as wrong:
        svc.submit_chunk(start.session_id, 1, phone.step.nonce, "[5000]", frames)
    assert wrong.value.code == ErrorCode.BAD_REQUEST
    with vctx.db.session() as s:
        assert len(s.scalars(select(VerificationChunk)).all()) == 1


def test_given_a_chunk_that_fails_to_decode_when_uploaded_then_the_nonce_is_burnt(
    svc: VerificationService, clock: VirtualClock, pensioner: Pensioner, clip: Clip, vctx: AppContext
) -> None:
    start = _start(svc, pensioner)
    good = encode_jpeg(clip.frames[clip.neutral[0]], 85)
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
    svc: VerificationService, clock: VirtualClock, pensioner: Pensioner, clip: Clip
) -> None:
    start = _start(svc, pensioner)
    phone = Phone(svc, clock, start, clip)
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
    assert (r.result.decision, r.result.reason_code) == ("RETRY", ErrorCode.NO_FACE)


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
    svc: VerificationService, clock: VirtualClock, vctx: AppContext, clip: Clip, faces_dir: Path
) -> None:
    from lifecert.domain.cases import VerificationReview, load_payload, photo_shas
    from lifecert.engine.image import read_image_file

    other = read_image_file(sorted((faces_dir / "photos").glob("*/*"))[0])
    p = enroll(vctx, other, seq=63, name="周淑珍")
    phone = Phone(svc, clock, _start(svc, p), clip)
    phone.neutral(1500)
    phone.run_step(clip.blink, reaction_ms=1200)
    r = phone.run_step(clip.mouth, reaction_ms=1200)
    assert r.result is not None and (r.result.decision, r.result.reason_code) == ("REVIEW", ErrorCode.LOW_MATCH)
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
        clock = VirtualClock()
        svc = VerificationService(ctx, engine_factory=lambda: frame_engine, clock=clock)
        p = enroll(ctx, read_video(faces_dir / VIDEO)[TEMPLATE_FRAME], seq=65)
        phone = Phone(svc, clock, _start(svc, p), clip)
        phone.neutral(1500)
        phone.run_step(clip.blink, reaction_ms=2500)
        r = phone.run_step(clip.mouth, reaction_ms=2500)
        assert r.result is not None and r.result.decision == "CONFIRMED", r.result
        with ctx.db.session() as s:
            chunks = s.scalars(select(VerificationChunk)).all()
            raw = phone.jpeg[clip.neutral[0]][:256]
            assert chunks and all(c.frames_sealed and raw not in c.frames_sealed for c in chunks)
    finally:
        ctx.close()
