"""The slow mover over the HTTP API, on real frames through the real engine (issue 12: "a slow elderly user must
pass"): a stiff neck turns slowly (2.5 s out, held 1.5 s, 2.5 s back) and, the first time, not far enough; told
TURN_MORE she turns fully at the same pace, and her head is still out when the step's window ends. The step is
held open until it comes back (steps.under_way / held_window), bounded; today's quick turn sees no change.

The "pensioner" is ``video/talking_head_a.mp4`` at 8 fps (tests.paced_client), turned by benchmarks.attacks.turn_head
(22 degrees stays under the turn threshold, 35 passes it; benchmarks/slow_move.py's eased curve); the page reports
nothing (no voice: production's strictest windows); the server's clock is virtual (SimClock). The prompt delay is
drawn unpinned: every draw (0.3-1.5 s) leaves the slow turn ~3.8 s past the 11 s window and ~9 s inside the cap.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from benchmarks.attacks import turn_head
from benchmarks.slow_move import pose_curve
from lifecert.engine.base import FaceEngine
from lifecert.engine.image import encode_jpeg
from lifecert.services.context import AppContext
from lifecert.services.verification import steps
from lifecert.storage.models_verification import VerificationSession
from tests.integration.verification_support import phone_at_first_challenge, serve, verification_ctx
from tests.paced_client import FRAME_MS, Clip, Phone, VirtualTime

REACT = 2_700  # ms: issue 12's slowest reaction, to the prompt and to the hint
FIXED = steps.CHALLENGE_WINDOW_MS + steps.HINT_EXTRA_WINDOW_MS


@pytest.fixture
def vctx(tmp_path: Path, face_engine: FaceEngine) -> Iterator[AppContext]:
    yield from verification_ctx(tmp_path, face_engine, fixed_challenges="turn_left,blink", inference_threads=1)


@pytest.fixture
def clock() -> VirtualTime:
    return VirtualTime()


@pytest.fixture
def client(vctx: AppContext, frame_engine: FaceEngine, clock: VirtualTime) -> Iterator[TestClient]:
    yield from serve(vctx, frame_engine, clock)


def _turn(clip: Clip, engine: FaceEngine, profile: tuple[int, int, int], peak: float) -> list[bytes]:
    out = []
    for k, f in enumerate(pose_curve(*profile)):
        img = cv2.imdecode(np.frombuffer(clip.neutral[k % len(clip.neutral)], np.uint8), cv2.IMREAD_COLOR)
        box = engine.detect(img)[0].box
        out.append(encode_jpeg(turn_head(img, box, yaw_deg=peak * f) if peak * f >= 0.5 else img, 85))
    return out



def _run_step(phone: Phone, full: list[bytes] | None = None, after_ms: int = 0) -> None:
    """Until the turn step is seen or over; ``full``: turned ``REACT`` after the first action hint reached the phone,
    not before ``after_ms`` (client ms)."""
    end = phone.t + 40_000
    n = len(phone.answers)
    cued = full is None
    while phone.t < end and not phone.decided and phone.step.index == 1:
        phone.tick()
        if len(phone.answers) > n:
            n = len(phone.answers)
            if not cued and steps.action_in(list(phone.answers[-1].hints)) is not None:
                cued = True
                phone.script, phone.script_at = list(full or []), max(phone.t + REACT, after_ms)


def _stored_step(vctx: AppContext, sid: str) -> dict[str, Any]:
    with vctx.db.session() as s:
        vs = s.get(VerificationSession, sid)
        assert vs is not None
        return dict(vs.steps[1])


def test_given_a_slow_turn_still_out_at_the_windows_end_when_judged_then_held_open_until_it_came_back(
    client: TestClient, clock: VirtualTime, vctx: AppContext, faces_dir: Path, clip: Clip, frame_engine: FaceEngine,
) -> None:
    slow = (2_500, 1_500, 2_500)
    phone = phone_at_first_challenge(client, clock, vctx, faces_dir, clip, 95, "turn_left")
    small = _turn(clip, frame_engine, slow, 22.0)
    start = phone.prompt_at + REACT
    phone.script, phone.script_at = small, start
    small_end = -(-start // FRAME_MS) * FRAME_MS + len(small) * FRAME_MS
    _run_step(phone, _turn(clip, frame_engine, slow, 35.0), small_end)
    st = _stored_step(vctx, phone.session_id)
    # what this test is about: the fixed window ended while her full turn was out (it began >= 9.4 s after the prompt
    # and comes back under half the threshold ~5.4 s later)
    assert st["hint"]["rule"] == "fixed", st["hint"]
    assert FIXED < int(st["held_ms"]) <= steps.HINT_MAX_WINDOW_MS, st
    assert int(st["window_ms"]) == int(st["held_ms"]), st
    assert st["state"] == "seen" and phone.step.index == 2, st
    assert st["result"]["held_under_way_ms"] == st["held_ms"] and "still under way" in st["result"]["note"]
    assert int(st["result"]["peak_ms_after_prompt"]) > FIXED - 2_000, st["result"]


def test_given_todays_quick_turn_when_judged_then_seen_and_never_held(
    client: TestClient, clock: VirtualTime, vctx: AppContext, faces_dir: Path, clip: Clip, frame_engine: FaceEngine,
) -> None:
    phone = phone_at_first_challenge(client, clock, vctx, faces_dir, clip, 96, "turn_left")
    phone.script, phone.script_at = _turn(clip, frame_engine, (600, 600, 600), 35.0), phone.prompt_at + REACT
    _run_step(phone)
    st = _stored_step(vctx, phone.session_id)
    assert st["state"] == "seen" and "held_ms" not in st, st
    assert int(st["window_ms"]) in (steps.CHALLENGE_WINDOW_MS, FIXED), st
