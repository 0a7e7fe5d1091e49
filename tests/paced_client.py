"""One simulated phone for server-paced capture, shared by the tests and the benchmarks.

The phone behaves like the pensioner page (mobile-web/app.js): the camera captures at the step's
``fps`` (8 fps when the step says none; the clip's frames are ~8 fps footage, so a faster step plays
them faster); the oldest <= the step's ``chunk_max_frames`` (12) waiting frames go out as one chunk
about every second, never two at
once (each chunk needs the nonce the previous answer brought); a new prompt appears
``prompt_delay_ms`` after the answer that revealed it, and the phone acts it ``reaction_ms``
later with real frames of a person doing it (a blink, a mouth opening).

Two clocks:

- :class:`SimClock` — client time is simulated and the SERVER's clock is a virtual clock the
  phone moves forward (``received = last frame + latency``): an 8 s window costs no wall time.
  For in-process tests (:func:`service_sender`) and TestClient apps built with that clock.
- :class:`WallClock` — real time against a real server (``lifecert serve`` in a benchmark or a
  cluster test); frames captured while a request is in flight queue up as on a phone.

Transports: :func:`service_sender` (``VerificationService.submit_chunk``) and
:func:`http_sender` (anything with ``.post(url, data=, files=)``: TestClient, httpx.Client).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from lifecert.engine.base import FaceEngine
    from lifecert.services.verification import VerificationService

FRAME_MS = 125  # 8 fps, as the page captures
CHUNK_MS = 1000
CHUNK_MAX_FRAMES = 12
LATENCY_MS = 80  # simulated upload time of one chunk
STEP = 3  # talking_head_a.mp4 is 25 fps: every third frame ~ 8 fps
TEMPLATE_FRAME = 100  # the enrolled frame; 100 % 3 == 1, so never one of the sampled frames


# -- what the phone shows ---------------------------------------------------------------------


@dataclass(frozen=True)
class Clip:
    """JPEG frames of one person: a calm run (played back and forth) and the actions."""

    neutral: list[bytes]
    actions: dict[str, list[bytes]]  # challenge name -> frames acting it (a short run around the peak)
    template: NDArray[np.uint8] | None = None  # (H, W, 3) BGR frame to enroll, not among the frames sent


@dataclass(frozen=True)
class ClipPicks:
    """The talking-head video at ~8 fps (``frames``, BGR) with each frame's 68 landmarks (``landmarks`` (n, 68, 2),
    NaN without a face), the longest calm run (``calm``: eyes open, mouth closed), the first blink's closed frame
    (``blink``) and the first wide mouth opening (``mouth``), indices into ``frames``."""

    frames: list[NDArray[np.uint8]]
    landmarks: NDArray[np.float64]
    calm: list[int]
    blink: int
    mouth: int


def clip_picks(engine: FaceEngine, video: Sequence[NDArray[np.uint8]]) -> ClipPicks:
    """The talking-head video (BGR frames, 25 fps) at ~8 fps, its calm run, blink and mouth opening found by
    measuring EAR/MAR (see :class:`ClipPicks`)."""
    from lifecert.engine import geometry

    frames = [video[i] for i in range(0, len(video), STEP)]
    ear = np.full(len(frames), np.nan)
    mar = np.full(len(frames), np.nan)
    lms = np.full((len(frames), 68, 2), np.nan)
    for i, f in enumerate(frames):
        faces = engine.detect(f)
        if faces and faces[0].landmarks68 is not None:
            lms[i] = faces[0].landmarks68
            ear[i] = geometry.eye_aspect_ratio(faces[0].landmarks68)
            mar[i] = geometry.mouth_aspect_ratio(faces[0].landmarks68)
    base = float(np.nanpercentile(ear, 75))
    runs: list[list[int]] = [[]]
    for i in range(len(frames)):
        if ear[i] >= 0.85 * base and mar[i] < 0.25:
            runs[-1].append(i)
        elif runs[-1]:
            runs.append([])
    calm = max(runs, key=len)
    closed = [i for i in range(2, len(frames) - 2) if ear[i] < 0.6 * base]
    mouth = [i for i in range(2, len(frames) - 2) if mar[i] > 0.4]
    if len(calm) < 6 or not closed or not mouth:
        raise RuntimeError("the talking-head video no longer has a calm run, a blink and an open mouth")
    return ClipPicks(frames, lms, calm, closed[0], mouth[0])


def talking_head_clip(engine: FaceEngine, video: Sequence[NDArray[np.uint8]], quality: int = 85) -> Clip:
    """The talking-head video (BGR frames, 25 fps) at ~8 fps: the longest calm run (eyes open,
    mouth closed), the first blink and the first wide mouth opening, found by measuring EAR/MAR."""
    from lifecert.engine.image import encode_jpeg

    picks = clip_picks(engine, video)
    frames, calm, b, m = picks.frames, picks.calm, picks.blink, picks.mouth
    jpeg = [encode_jpeg(f, quality) for f in frames]
    return Clip(
        neutral=[jpeg[i] for i in calm + calm[-2:0:-1]],
        actions={"blink": [jpeg[i] for i in range(b - 2, b + 3)], "open_mouth": [jpeg[i] for i in range(m - 2, m + 3)]},
        template=np.ascontiguousarray(video[TEMPLATE_FRAME]) if len(video) > TEMPLATE_FRAME else None,
    )


# -- answers ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    index: int
    kind: str
    challenge: str | None
    nonce: str
    prompt_delay_ms: int = 0
    window_ms: int = 0
    fps: int = 0  # the step's capture rate (0: not said, the phone's own frame_ms)
    chunk_max_frames: int = CHUNK_MAX_FRAMES


@dataclass(frozen=True)
class Answer:
    """One chunk's answer, whichever transport carried it. ``result``: the API's result JSON shape
    (decision, reason_code, challenges, ...) once decided."""

    status: str
    step_state: str
    hints: list[str]
    step: Step | None
    result: dict[str, Any] | None

    @property
    def decision(self) -> str | None:
        return None if self.result is None else self.result.get("decision")

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Answer:
        s = d.get("step")
        step = None if s is None else step_json(s)
        return cls(d["status"], d["step_state"], list(d.get("hints", [])), step, d.get("result"))


def step_json(s: dict[str, Any]) -> Step:
    return Step(s["index"], s["kind"], s["challenge"], s["nonce"], s["prompt_delay_ms"], s["window_ms"],
                int(s.get("fps") or 0), int(s.get("chunk_max_frames") or CHUNK_MAX_FRAMES))


def step_of(v: Any) -> Step:
    """A service StepView (or anything with its fields) as a :class:`Step`."""
    return Step(v.index, v.kind, v.challenge, v.nonce, v.prompt_delay_ms, v.window_ms,
                int(getattr(v, "fps", 0) or 0), int(getattr(v, "chunk_max_frames", CHUNK_MAX_FRAMES)))


# (step, nonce, client ms per frame, JPEGs, client ms when the request leaves) -> the answer
Send = Callable[[int, str, list[int], list[bytes], int], Answer]


class Clock(Protocol):
    def wait_until(self, client_ms: int) -> None: ...
    def before_send(self, last_client_ms: int) -> None: ...
    def sent_ms(self, last_client_ms: int) -> int: ...
    def answer_at(self, client_ms: int) -> int: ...
    @property
    def instant(self) -> bool: ...


@dataclass
class VirtualTime:
    """The server's clock in simulated runs: ``VerificationService(clock=...)``."""

    t0: datetime = field(default_factory=lambda: datetime.now(UTC))
    ms: int = 0

    def set(self, ms: int) -> None:
        self.ms = max(self.ms, ms)

    def __call__(self) -> datetime:
        return self.t0 + timedelta(milliseconds=self.ms)


@dataclass
class SimClock:
    """Simulated client time on top of a :class:`VirtualTime` server clock. A chunk arrives
    ``latency_ms`` after its last frame; ``server_lag_ms`` more pass in the server (queueing,
    processing) before its answer leaves, and the service's own clock reads are that much later."""

    server: VirtualTime
    latency_ms: int = LATENCY_MS
    server_lag_ms: int = 0
    received: datetime | None = None  # when the last chunk arrived (server clock)
    origin_ms: int = -1  # server ms at the phone's client ms 0 (default: the server's time when made)

    def __post_init__(self) -> None:
        if self.origin_ms < 0:
            self.origin_ms = self.server.ms

    def wait_until(self, client_ms: int) -> None:
        pass

    def before_send(self, last_client_ms: int) -> None:
        self.server.set(self.origin_ms + last_client_ms + self.latency_ms)
        self.received = self.server()
        self.server.ms += self.server_lag_ms

    def answer_at(self, client_ms: int) -> int:
        return client_ms + self.latency_ms + self.server_lag_ms

    def sent_ms(self, last_client_ms: int) -> int:
        return last_client_ms  # simulated: a chunk leaves as its newest frame is captured

    @property
    def instant(self) -> bool:
        """Without server lag an answer is read before the next camera frame."""
        return self.server_lag_ms == 0


class WallClock:
    """Real time: client ms since the phone was made."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()

    def now_ms(self) -> int:
        return int((time.perf_counter() - self.t0) * 1000)

    def wait_until(self, client_ms: int) -> None:
        dt = client_ms / 1000 - (time.perf_counter() - self.t0)
        if dt > 0:
            time.sleep(dt)

    def before_send(self, last_client_ms: int) -> None:
        pass

    def answer_at(self, client_ms: int) -> int:
        return self.now_ms()

    def sent_ms(self, last_client_ms: int) -> int:
        return max(last_client_ms, self.now_ms())

    instant = False  # frames queued while the request was out are sent before the answer counts


# -- transports -------------------------------------------------------------------------------


# (step, client ms the chunk leaves) -> (client ms the step's action hint was heard, "speech" | "text"[, its code])
# or None; with the code: the newest action hint heard (the page's hint_heard_code), without: the step's first
HeardReport = Callable[[int, int], tuple[int, str] | tuple[int, str, str] | None]


def heard_fields(report: tuple[int, str] | tuple[int, str, str] | None, prefix: str = "hint") -> dict[str, Any]:
    """A report as the chunk's form fields (``{prefix}_heard_ms`` / ``_via`` / ``_code``), as keyword values."""
    if report is None:
        return {}
    out: dict[str, Any] = {f"{prefix}_heard_ms": report[0], f"{prefix}_heard_via": report[1]}
    if len(report) > 2:
        out[f"{prefix}_heard_code"] = report[2]  # type: ignore[misc]
    return out


def service_sender(svc: VerificationService, session_id: str, clock: SimClock, client_addr: str = "",
                   heard: HeardReport | None = None, prompt_heard: HeardReport | None = None) -> Send:
    """Chunks straight into the service (in-process), arriving at the simulated time. ``heard``: what the page
    reports of hearing the step's action hint with each chunk (the page's ``hint_heard_ms``/``hint_heard_via``);
    ``prompt_heard``: the same for the step's prompt (``prompt_heard_ms``/``prompt_heard_via``)."""
    from dataclasses import asdict

    def send(step: int, nonce: str, ts: list[int], frames: list[bytes], sent_ms: int) -> Answer:
        report = heard(step, sent_ms) if heard is not None else None
        prompt = prompt_heard(step, sent_ms) if prompt_heard is not None else None
        r = svc.submit_chunk(session_id, step, nonce, json.dumps(ts), frames, client_addr, received_at=clock.received,
                             sent_ms=sent_ms, **heard_fields(report), **heard_fields(prompt, "prompt"))
        result = None
        if r.result is not None:
            res = asdict(r.result)
            res["challenges"] = [{"name": n, "passed": p} for n, p in r.result.challenges]
            result = res
        return Answer(r.status, r.step_state, list(r.hints), None if r.step is None else step_of(r.step), result)

    return send


class Refused(RuntimeError):
    """The server answered a session or chunk request with an error status."""

    def __init__(self, what: str, status: int, body: str) -> None:
        super().__init__(f"{what} refused: {status} {body[:300]}")
        self.status = status


Poster = Any  # anything with .post(url, data=, files=, json=, headers=): TestClient, httpx.Client


def chunk_form(nonce: str, ts: list[int], frames: list[bytes], sent_ms: int | None = None
               ) -> tuple[dict[str, str], list[Any]]:
    """The multipart form of one chunk as the page sends it."""
    data = {"nonce": nonce, "timestamps": json.dumps(ts)}
    if sent_ms is not None:
        data["sent_ms"] = str(sent_ms)
    files = [("frames", (f"{i}.jpg", b, "image/jpeg")) for i, b in enumerate(frames)]
    return data, files


def http_sender(client: Poster, session_id: str, base: str = "", headers: dict[str, str] | None = None,
                heard: HeardReport | None = None, prompt_heard: HeardReport | None = None) -> Send:
    """Chunks over HTTP (``POST {base}/api/v1/sessions/{id}/steps/{n}/frames``); a non-200 raises
    :class:`Refused`. ``heard`` / ``prompt_heard``: the page's reports, as :func:`service_sender`'s."""

    def send(step: int, nonce: str, ts: list[int], frames: list[bytes], sent_ms: int) -> Answer:
        data, files = chunk_form(nonce, ts, frames, sent_ms)
        report = heard(step, sent_ms) if heard is not None else None
        prompt = prompt_heard(step, sent_ms) if prompt_heard is not None else None
        data |= {k: str(v) for k, v in (heard_fields(report) | heard_fields(prompt, "prompt")).items()}
        url = f"{base}/api/v1/sessions/{session_id}/steps/{step}/frames"
        r = client.post(url, data=data, files=files, headers=headers or {})
        if r.status_code != 200:
            raise Refused("chunk", r.status_code, r.text)
        return Answer.from_json(r.json())

    return send


def http_start(client: Poster, who: dict[str, str], base: str = "", headers: dict[str, str] | None = None
               ) -> tuple[str, Step]:
    """Create a paced session over HTTP: (session id, the settle step)."""
    r = client.post(f"{base}/api/v1/sessions", json=who | {"protocol": "paced"}, headers=headers or {})
    if r.status_code != 201:
        raise Refused("session", r.status_code, r.text)
    body = r.json()
    return str(body["session_id"]), step_json(body["step"])


# -- the phone --------------------------------------------------------------------------------


class Phone:
    """A simulated capture page for one session (see the module docstring)."""

    def __init__(
        self,
        send: Send,
        first: Step,
        clip: Clip,
        clock: Clock,
        *,
        reaction_ms: int = 800,
        frame_ms: int = FRAME_MS,
        chunk_ms: int = CHUNK_MS,
        act: bool = True,
        session_id: str = "",
    ) -> None:
        self.send, self.step, self.clip, self.clock = send, first, clip, clock
        self.session_id = session_id
        self.reaction_ms, self.frame_ms, self.chunk_ms, self.act = reaction_ms, frame_ms, chunk_ms, act
        self.t = 0  # client ms since capture start
        self.pending: list[tuple[int, bytes]] = []
        self.answers: list[Answer] = []
        self.chunk_ms_taken: list[float] = []  # wall ms per chunk request (every step decision)
        self.script: list[bytes] = []
        self.script_at = 0
        self.inflight: tuple[int, Answer] | None = None  # (client ms the answer arrives, answer)
        self.next_send = chunk_ms
        self.prompt_at = 0  # client ms the current prompt appeared
        self.stream: list[bytes] = clip.neutral  # what the camera shows when no action is scripted
        self._n = 0
        self.captured = 0  # camera frames so far (the steps' rates differ: not t // frame_ms)

    @property
    def decided(self) -> bool:
        return bool(self.answers) and self.answers[-1].status == "decided"

    @property
    def last(self) -> Answer | None:
        return self.answers[-1] if self.answers else None

    def tick(self) -> None:
        """One camera frame, then deliver a due answer and send a chunk when it is time."""
        self.clock.wait_until(self.t)
        if self.script and self.t >= self.script_at:
            frame = self.script.pop(0)
        else:
            self._n += 1
            frame = self.stream[self._n % len(self.stream)]
        self.pending.append((self.t, frame))
        self.captured += 1
        # frame_ms is the phone's interval when asked for 8 fps; a step asking another rate scales it
        self.t += round(self.frame_ms * (1000 / FRAME_MS) / self.step.fps) if self.step.fps else self.frame_ms
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
                if self.act and r.step.challenge in self.clip.actions:
                    self.script = list(self.clip.actions[r.step.challenge])
                    self.script_at = self.prompt_at + self.reaction_ms
            self.step = r.step

    def flush(self) -> Answer:
        """Send the oldest <= the step's chunk_max_frames (12 at 8 fps) waiting frames now."""
        n = self.step.chunk_max_frames
        chunk, self.pending = self.pending[:n], self.pending[n:]
        ts = [t for t, _ in chunk]
        self.clock.before_send(ts[-1])
        sent = self.clock.sent_ms(ts[-1])
        a0 = time.perf_counter()
        r = self.send(self.step.index, self.step.nonce, ts, [b for _, b in chunk], sent)
        self.chunk_ms_taken.append((time.perf_counter() - a0) * 1000)
        self.inflight = (self.clock.answer_at(self.t), r)
        self.next_send = self.t + self.chunk_ms
        if self.clock.instant or self.inflight[0] <= self.t:
            self._deliver()
        return r

    def neutral(self, ms: int) -> Answer | None:
        """Let ``ms`` of capture pass (acting whatever is scripted); returns the newest answer."""
        end = self.t + ms
        while self.t < end and not self.decided:
            self.tick()
        return self.last

    def show(self, frames: list[bytes]) -> Answer | None:
        """Show these frames from now on."""
        self.script, self.script_at = list(frames), self.t
        return self.neutral(len(frames) * self.frame_ms)

    def run_step(self, act: list[bytes], reaction_ms: int, limit_ms: int = 40_000) -> Answer:
        """React ``reaction_ms`` after the current prompt appeared with ``act``, and wait (bounded) until
        the server moves on or decides."""
        index = self.step.index
        self.script, self.script_at = list(act), self.prompt_at + reaction_ms
        end = self.t + limit_ms
        while self.t < end:
            if self.decided or self.step.index != index:
                assert self.last is not None
                return self.last
            self.tick()
        raise AssertionError("the server never ended the step")

    def run(self, limit_ms: int = 90_000) -> Answer:
        """Capture until the server decides (acting every revealed challenge the clip can act);
        bounded by ``limit_ms`` of client time."""
        end = self.t + limit_ms
        while not self.decided:
            if self.t >= end:
                raise AssertionError(f"no decision within {limit_ms} ms: {[a.step_state for a in self.answers]}")
            self.tick()
        assert self.last is not None
        return self.last


def run_http_session(
    client: Poster,
    who: dict[str, str],
    clip: Clip,
    clock: Clock | None = None,
    *,
    base: str = "",
    headers: dict[str, str] | None = None,
    chunk_headers: dict[str, str] | None = None,
    **phone_kw: Any,
) -> tuple[str, Phone]:
    """Create a paced session over HTTP and run it to its decision: (session id, the phone)."""
    sid, first = http_start(client, who, base, headers)
    phone = Phone(http_sender(client, sid, base, chunk_headers or headers), first, clip, clock or WallClock(),
                  session_id=sid, **phone_kw)
    phone.run()
    return sid, phone
