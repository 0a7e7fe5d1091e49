"""Action hints through the real paced service: a user who turns too little hears "turn a little further"
once the hint time has come (steps.ACTION_HINT_AFTER_MS after the prompt), not before, and then passes the
step with a full turn.

The "pensioner" is ``video/talking_head_a.mp4`` at 8 fps (tests.paced_client); the video holds no head
turn, so its calm frames are turned by benchmarks.attacks.turn_head (a 2D warp the real engine finds as a
turn: about 22 degrees stays under the turn threshold, 45 passes it). The server's clock is virtual.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from lifecert.engine.base import FaceEngine
from lifecert.engine.image import encode_jpeg
from lifecert.services.context import AppContext
from lifecert.services.verification import VerificationService, steps
from lifecert.storage.models import Pensioner
from lifecert.storage.models_verification import VerificationSession
from tests.conftest import make_settings
from tests.integration.verification_support import TEMPLATE_FRAME, VIDEO, enroll, read_video
from tests.paced_client import Answer, Clip, Phone, SimClock, VirtualTime, service_sender, step_of

ACTION_CODES = {"TURN_MORE", "LOOK_BACK", "DO_ACTION", "BLINK_FIRMLY", "OPEN_WIDER", "NOD_MORE", "LOOK_UP"}


@pytest.fixture
def vctx(tmp_path: Path, face_engine: FaceEngine) -> Iterator[AppContext]:
    c = AppContext(make_settings(tmp_path, fixed_challenges="turn_left,blink"))
    c.set_engine(face_engine)
    try:
        yield c
    finally:
        c.close()


def _turn(clip: Clip, engine: FaceEngine, degrees: list[float]) -> list[bytes]:
    """Calm frames of the clip turned to the pensioner's left by ``degrees`` (one frame each)."""
    from benchmarks.attacks import turn_head

    out = []
    for k, deg in enumerate(degrees):
        img = cv2.imdecode(np.frombuffer(clip.neutral[k % len(clip.neutral)], np.uint8), cv2.IMREAD_COLOR)
        box = engine.detect(img)[0].box
        out.append(encode_jpeg(turn_head(img, box, yaw_deg=deg), 85))
    return out


def test_given_a_user_who_turns_too_little_when_the_hint_time_comes_then_turn_more_not_before_and_a_full_turn_passes(
    vctx: AppContext, frame_engine: FaceEngine, faces_dir: Path, clip: Clip
) -> None:
    clock = VirtualTime()
    svc = VerificationService(vctx, engine_factory=lambda: frame_engine, clock=clock)
    p: Pensioner = enroll(vctx, read_video(faces_dir / VIDEO)[TEMPLATE_FRAME], seq=71)
    start = svc.create_session(p.id_number, p.name, "10.1.1.1")
    sim = SimClock(clock)
    sent: list[tuple[int, int, Answer]] = []  # (step, newest frame's client ms, answer)
    send = service_sender(svc, start.session_id, sim)

    def recording(step: int, nonce: str, ts: list[int], frames: list[bytes], sent_ms: int) -> Answer:
        a = send(step, nonce, ts, frames, sent_ms)
        sent.append((step, ts[-1], a))
        return a

    phone = Phone(recording, step_of(start.step), clip, sim, act=False, session_id=start.session_id)
    phone.neutral(1500)
    assert phone.step.index == 1 and phone.step.challenge == "turn_left", [a.step_state for a in phone.answers]
    # 1 s after the prompt: a slow turn to ~22 degrees and back (under the threshold), then calm frames
    # until the hint time has passed with two more chunks.
    small = _turn(clip, frame_engine, [8, 15, 22, 22, 22, 22, 15, 8])
    phone.script, phone.script_at = small, phone.prompt_at + 1000
    phone.neutral(phone.prompt_at + steps.ACTION_HINT_AFTER_MS + 2200 - phone.t)
    assert phone.step.index == 1 and not phone.decided, "the small turn must not pass the step"
    # Then the full turn: the step passes and the blink is revealed.
    full_at = phone.t
    r = phone.show(_turn(clip, frame_engine, [15, 30, 45, 45, 45, 30, 15, 0, 0]))
    for _ in range(4):
        if phone.step.index != 1:
            break
        r = phone.neutral(1000)
    assert r is not None and phone.step.challenge == "blink", [a.step_state for a in phone.answers]

    with vctx.db.session() as s:
        vs = s.get(VerificationSession, start.session_id)
        assert vs is not None and vs.clock_offset_ms is not None
        reveal, offset = int(vs.steps[1]["reveal_ms"]), vs.clock_offset_ms
        assert vs.steps[1]["state"] == "seen"
    turn_answers = [(t + offset - reveal, a) for step, t, a in sent if step == 1]
    small_only = [(t + offset - reveal, a) for step, t, a in sent if step == 1 and t < full_at]
    early = [(e, a.hints) for e, a in turn_answers if e < steps.ACTION_HINT_AFTER_MS]
    late = [(e, a.hints) for e, a in small_only if e >= steps.ACTION_HINT_AFTER_MS]
    assert early and all(not set(h) & ACTION_CODES for _, h in early), early
    assert len(late) >= 2 and all(h == ["TURN_MORE"] for _, h in late), late
    # the answer that saw the full turn carries no hint; no answer ever named the next challenge's hint
    assert [a.hints for _, a in turn_answers if a.step_state == "seen"] == [[]]
    assert not any("BLINK_FIRMLY" in a.hints for _, a in turn_answers)


def _weak_then_full(svc: VerificationService, clock: VirtualTime, p: Pensioner, clip: Clip, engine: FaceEngine,
                    after_hint_ms: int, lag_ms: int) -> tuple[Phone, int]:
    """A too-small turn 1 s after the prompt; the full turn ``after_hint_ms`` after the answer bringing the first
    action hint reached the phone (answers ``lag_ms`` late). Runs until the step ends; returns the phone and
    when the hint arrived (client ms after the prompt)."""
    start = svc.create_session(p.id_number, p.name, "10.1.1.2")
    sim = SimClock(clock, server_lag_ms=lag_ms)
    phone = Phone(service_sender(svc, start.session_id, sim), step_of(start.step), clip, sim, act=False,
                  session_id=start.session_id)
    while phone.step.index == 0 and not phone.decided:
        phone.tick()
    assert phone.step.challenge == "turn_left"
    small = _turn(clip, engine, [8, 15, 22, 22, 22, 22, 15, 8])
    full = _turn(clip, engine, [15, 30, 45, 45, 45, 30, 15, 0])
    prompt = phone.prompt_at
    phone.script, phone.script_at = small, prompt + 1000
    hint_at, n = None, len(phone.answers)
    end = phone.t + 20_000
    while phone.t < end and not phone.decided and phone.step.index == 1:
        phone.tick()
        if hint_at is None and len(phone.answers) > n:
            n = len(phone.answers)
            if set(phone.answers[-1].hints) & ACTION_CODES:
                hint_at = phone.t
                phone.script, phone.script_at = full, hint_at + after_hint_ms
    assert hint_at is not None and not phone.script, "the hint never came or the full turn was never shown"
    return phone, hint_at - prompt


def _paced(vctx: AppContext, engine: FaceEngine, faces_dir: Path, seq: int
           ) -> tuple[VerificationService, VirtualTime, Pensioner]:
    """The paced service on a virtual clock (its prompt delays drawn from seed 0) and the talking-head person
    enrolled with ID sequence ``seq``."""
    clock = VirtualTime()
    svc = VerificationService(vctx, engine_factory=lambda: engine, clock=clock)
    svc.rng = random.Random(0)
    return svc, clock, enroll(vctx, read_video(faces_dir / VIDEO)[TEMPLATE_FRAME], seq=seq)


@pytest.mark.parametrize("extra_ms", [steps.HINT_EXTRA_WINDOW_MS, 0])
def test_given_a_slow_answer_to_the_hint_when_the_window_grows_after_it_then_seen_and_missed_without_the_growth(
    vctx: AppContext, frame_engine: FaceEngine, faces_dir: Path, clip: Clip, monkeypatch: pytest.MonkeyPatch,
    extra_ms: int,
) -> None:
    # The full turn 3.5 s after the hint reached the phone, answers 1 s late (a slow network): it begins past
    # the 8 s window (benchmarks/hint_recovery.py: 0 of 2 seen at this timing without the growth).
    monkeypatch.setattr(steps, "HINT_EXTRA_WINDOW_MS", extra_ms)
    svc, clock, p = _paced(vctx, frame_engine, faces_dir, seq=72)
    phone, hint_ms = _weak_then_full(svc, clock, p, clip, frame_engine, after_hint_ms=3500, lag_ms=1000)
    assert hint_ms + 3500 > steps.CHALLENGE_WINDOW_MS, hint_ms  # the full turn begins after the plain window
    with vctx.db.session() as s:
        vs = s.get(VerificationSession, phone.session_id)
        assert vs is not None
        st = vs.steps[1]
    assert st["hint"]["code"] == "TURN_MORE" and st["hint"]["extra_window_ms"] == extra_ms, st
    assert st["window_ms"] == steps.CHALLENGE_WINDOW_MS + extra_ms
    if extra_ms:
        assert st["state"] == "seen" and phone.step.index == 2, [a.step_state for a in phone.answers]
        assert st["result"]["action_hint"] == "TURN_MORE" and "TURN_MORE" in st["result"]["note"]
    else:
        assert st["state"] == "timed_out" and phone.decided, [a.step_state for a in phone.answers]
        assert phone.last is not None and phone.last.result is not None
        assert phone.last.result["missed_challenge"] == "turn_left"


def _weak_then_heard(svc: VerificationService, clock: VirtualTime, p: Pensioner, clip: Clip, engine: FaceEngine,
                     speech_ms: int, react_ms: int, report: str, prompt_ms: int = 0,
                     prompt_report: bool = False) -> tuple[Phone, int]:
    """A too-small turn 1 s after the prompt; the first action hint's speech ends ``speech_ms`` after the answer
    bringing it reached the phone (or after the voice is done saying the prompt, ``prompt_ms`` after it appeared,
    if that is later), and the full turn begins ``react_ms`` after that. ``report``: what the phone says of hearing
    it: "heard" (with every chunk sent after the speech ended, as the page does), "none", or "before" (a hostile
    client: a hearing reported with every chunk BEFORE the hint, none after). ``prompt_report``: the phone also
    reports hearing the prompt (``prompt_ms`` after it appeared) with every chunk sent after that. Returns the
    phone and when the hint's speech ended (client ms after the prompt)."""
    start = svc.create_session(p.id_number, p.name, "10.1.1.3")
    sim = SimClock(clock)
    heard_at: list[int] = []
    hinted: list[int] = []
    prompt_at: list[int] = []

    def prompt_heard(step: int, sent_ms: int) -> tuple[int, str] | None:
        ok = prompt_report and step == 1 and prompt_at and sent_ms >= prompt_at[0] + prompt_ms
        return (prompt_at[0] + prompt_ms, "speech") if ok else None

    def heard(step: int, sent_ms: int) -> tuple[int, str] | None:
        if step != 1:
            return None
        if report == "before":
            return None if hinted else (sent_ms, "speech")
        return (heard_at[0], "speech") if report == "heard" and heard_at and sent_ms >= heard_at[0] else None

    phone = Phone(service_sender(svc, start.session_id, sim, heard=heard, prompt_heard=prompt_heard),
                  step_of(start.step), clip, sim, act=False, session_id=start.session_id)
    while phone.step.index == 0 and not phone.decided:
        phone.tick()
    assert phone.step.challenge == "turn_left"
    prompt = phone.prompt_at
    prompt_at.append(prompt)
    phone.script, phone.script_at = _turn(clip, engine, [8, 15, 22, 22, 22, 22, 15, 8]), prompt + 1000
    full = _turn(clip, engine, [15, 30, 45, 45, 45, 30, 15, 0])
    n, end = len(phone.answers), phone.t + 25_000
    while phone.t < end and not phone.decided and phone.step.index == 1:
        phone.tick()
        if not hinted and len(phone.answers) > n:
            n = len(phone.answers)
            if set(phone.answers[-1].hints) & ACTION_CODES:
                hinted.append(phone.t)
                heard_at.append(max(phone.t, prompt + prompt_ms) + speech_ms)
                phone.script, phone.script_at = full, heard_at[0] + react_ms
    assert heard_at, "the hint never came"
    return phone, heard_at[0] - prompt


def _step(vctx: AppContext, session_id: str, k: int = 1) -> dict[str, object]:
    with vctx.db.session() as s:
        vs = s.get(VerificationSession, session_id)
        assert vs is not None
        return dict(vs.steps[k])


@pytest.mark.parametrize("report", ["heard", "none"])
def test_given_a_hint_said_slowly_when_the_page_reports_hearing_it_then_the_step_runs_on_and_without_it_missed(
    vctx: AppContext, frame_engine: FaceEngine, faces_dir: Path, clip: Clip, report: str,
) -> None:
    # The hint's speech takes 6.3 s (a slow Mandarin voice: espeak-ng's cmn says TURN_MORE in 6.3 s at the page's
    # rate), the user turns 2.7 s after it ended (issue 12's slowest): past the fixed +3 s window, and past the
    # chunk that crosses its end (with a 4.5 s speech her turn began within that chunk, and since session 10 a turn
    # still out at the window's end holds the step open: steps.under_way).
    svc, clock, p = _paced(vctx, frame_engine, faces_dir, seq=73)
    phone, heard_ms = _weak_then_heard(svc, clock, p, clip, frame_engine, speech_ms=6300, react_ms=2700,
                                       report=report)
    assert heard_ms + 2700 > steps.CHALLENGE_WINDOW_MS + steps.HINT_EXTRA_WINDOW_MS + 1500, heard_ms
    st = _step(vctx, phone.session_id)
    hint, result = st["hint"], st["result"]
    assert isinstance(hint, dict) and isinstance(result, dict)
    if report == "heard":
        assert st["state"] == "seen" and phone.step.index == 2, [a.step_state for a in phone.answers]
        assert hint["rule"] == result["window_rule"] == "heard" and hint["heard_via"] == "speech"
        # the server's clock: the hearing mapped like the frames, the window 5 s past it
        assert abs(int(hint["heard_ms_after_prompt"]) - heard_ms) <= 250, (hint, heard_ms)
        assert st["window_ms"] == int(hint["heard_ms_after_prompt"]) + steps.HINT_HEARD_WINDOW_MS
        assert "heard at" in str(result["note"]) and "after hearing it" in str(result["note"])
    else:  # the old rule: +3 s after the hint, and the slow user misses
        assert st["state"] == "timed_out" and phone.decided, [a.step_state for a in phone.answers]
        assert hint["rule"] == "fixed" and "heard_ms_after_prompt" not in hint
        assert st["window_ms"] == steps.CHALLENGE_WINDOW_MS + steps.HINT_EXTRA_WINDOW_MS
        assert phone.last is not None and phone.last.result is not None
        assert phone.last.result["missed_challenge"] == "turn_left"


def test_given_a_hearing_reported_late_when_the_cap_is_lower_then_the_window_stops_at_the_cap(
    vctx: AppContext, frame_engine: FaceEngine, faces_dir: Path, clip: Clip, monkeypatch: pytest.MonkeyPatch,
) -> None:
    cap = steps.CHALLENGE_WINDOW_MS + steps.HINT_EXTRA_WINDOW_MS + 200
    monkeypatch.setattr(steps, "HINT_MAX_WINDOW_MS", cap)
    svc, clock, p = _paced(vctx, frame_engine, faces_dir, seq=74)
    phone, _ = _weak_then_heard(svc, clock, p, clip, frame_engine, speech_ms=4500, react_ms=2700,
                                report="heard")
    st = _step(vctx, phone.session_id)
    hint = st["hint"]
    assert isinstance(hint, dict) and hint["rule"] == "capped", hint
    assert st["window_ms"] == cap < int(hint["heard_ms_after_prompt"]) + steps.HINT_HEARD_WINDOW_MS
    # the full turn began 2.7 s after hearing, past the capped window: missed
    assert st["state"] == "timed_out", st


def test_given_hearings_reported_before_any_hint_when_the_hint_comes_then_they_are_ignored(
    vctx: AppContext, frame_engine: FaceEngine, faces_dir: Path, clip: Clip,
) -> None:
    svc, clock, p = _paced(vctx, frame_engine, faces_dir, seq=75)
    phone, _ = _weak_then_heard(svc, clock, p, clip, frame_engine, speech_ms=0, react_ms=1000, report="before")
    st = _step(vctx, phone.session_id)
    hint = st["hint"]
    assert isinstance(hint, dict) and hint["rule"] == "fixed" and "heard_ms_after_prompt" not in hint, hint
    assert st["window_ms"] == steps.CHALLENGE_WINDOW_MS + steps.HINT_EXTRA_WINDOW_MS
    assert st["state"] == "seen"


@pytest.mark.parametrize("prompt_report", [True, False])
def test_given_a_slow_prompt_the_hint_waits_for_when_the_page_reports_hearing_both_then_seen_and_without_it_missed(
    vctx: AppContext, frame_engine: FaceEngine, faces_dir: Path, clip: Clip, prompt_report: bool,
) -> None:
    # espeak-ng's cmn at the page's rate: the turn prompt takes 6.1 s to say, TURN_MORE 6.3 s, and the hint waits
    # for the prompt; the user turns 2.7 s after hearing the hint, ~15 s after the prompt. The hint's hearing
    # (~12.4 s) comes after the fixed 11 s window closed: only a window counted from the prompt's hearing is
    # still open to take the report.
    svc, clock, p = _paced(vctx, frame_engine, faces_dir, seq=76)
    phone, heard_ms = _weak_then_heard(svc, clock, p, clip, frame_engine, speech_ms=6300, react_ms=2700,
                                       report="heard", prompt_ms=6100, prompt_report=prompt_report)
    fixed = steps.CHALLENGE_WINDOW_MS + steps.HINT_EXTRA_WINDOW_MS
    assert heard_ms > fixed, heard_ms
    st = _step(vctx, phone.session_id)
    hint, result = st["hint"], st["result"]
    assert isinstance(hint, dict) and isinstance(result, dict)
    if prompt_report:
        ph = st["prompt_heard"]
        assert isinstance(ph, dict) and ph["heard_via"] == "speech" and ph["rule"] == "heard", ph
        # the server's clock: the prompt's hearing mapped like the frames, the base window 8 s past it
        assert abs(int(ph["heard_ms_after_prompt"]) - 6100) <= 250, ph
        assert ph["window_ms"] == int(ph["heard_ms_after_prompt"]) + steps.CHALLENGE_WINDOW_MS
        assert st["state"] == "seen" and phone.step.index == 2, [a.step_state for a in phone.answers]
        assert hint["heard_via"] == "speech" and "heard_code" not in hint, hint  # this page sends no code
        # 5 s past the hearing, or longer while the step waits for the report of a hint issued after the prompt's
        # report (here the full turn's LOOK_BACK, caught on its way out: `awaiting`, capped)
        assert hint["rule"] == result["window_rule"] in ("heard", "awaiting"), hint
        assert st["window_ms"] >= int(hint["heard_ms_after_prompt"]) + steps.HINT_HEARD_WINDOW_MS
        assert result["prompt_window_rule"] == "heard" and "prompt heard at" in str(result["note"]), result
    else:  # the hint's report came after the step had closed
        assert "prompt_heard" not in st and "heard_ms_after_prompt" not in hint, st
        assert st["state"] == "timed_out" and st["window_ms"] == fixed, st
        assert phone.last is not None and phone.last.result is not None
        assert phone.last.result["missed_challenge"] == "turn_left"
