"""The slow mover's hold (steps.under_way / steps.held_window, paced._window / _hint_note): a turn or nod step whose
newest frame, past its window's end, shows the head still out the asked way is held open until it comes back,
bounded by steps.HINT_MAX_WINDOW_MS. Judged on the landmarks of a REAL face (talking-head frame 100) turned or
nodded by benchmarks.attacks.turn_head and found again by the engine."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from lifecert.engine.base import FaceEngine
from lifecert.engine.liveness import FrameObs, LivenessParams
from lifecert.services.verification import paced, steps
from tests.conftest import posed_landmarks
from tests.paced_client import Clip

REVEAL = 10_000  # server ms
P = LivenessParams()
Pose = tuple[float, float]  # (yaw_deg, pitch_deg) of turn_head; > 0: the pensioner's left / looking down
REST, OUT, HALF, DOWN, LEFT_BIG = (0.0, 0.0), (35.0, 0.0), (22.0, 0.0), (0.0, 25.0), (-35.0, 0.0)


@pytest.fixture(scope="module")
def poses(frontal_frame: NDArray[np.uint8], face_engine: FaceEngine) -> dict[Pose, NDArray[np.float32]]:
    return posed_landmarks(frontal_frame, face_engine, (REST, OUT, HALF, DOWN, LEFT_BIG))


def _seq(poses: dict[Pose, NDArray[np.float32]], *runs: tuple[Pose, int]) -> list[FrameObs]:
    """Frames at 8 fps from the reveal: ``runs`` of (pose, frames)."""
    shapes = [poses[p] for p, n in runs for _ in range(n)]
    return [FrameObs(REVEAL + k * 125, lm, None, 1) for k, lm in enumerate(shapes)]


def _base(poses: dict[Pose, NDArray[np.float32]]) -> Any:
    return steps.baseline_of([FrameObs(k * 125, poses[REST], None, 1) for k in range(8)])


def test_given_the_head_still_out_the_asked_way_when_the_newest_frame_is_judged_then_under_way(
    poses: dict[Pose, NDArray[np.float32]],
) -> None:
    base = _base(poses)
    frames = _seq(poses, (REST, 40), (OUT, 20))
    # what this test is about: a turn past the threshold, not yet back, so judge_challenge has not seen it
    assert not steps.judge_challenge("turn_left", frames, base, REVEAL, P).seen
    assert steps.under_way("turn_left", frames, base, REVEAL, P)
    # half way out (past turn_back x turn_yaw, under turn_yaw) is under way too
    assert steps.under_way("turn_left", _seq(poses, (REST, 40), (HALF, 4)), base, REVEAL, P)
    assert steps.under_way("nod", _seq(poses, (REST, 40), (DOWN, 6)), base, REVEAL, P)


def test_given_the_head_at_rest_or_out_the_other_way_or_never_at_rest_then_not_under_way(
    poses: dict[Pose, NDArray[np.float32]],
) -> None:
    base = _base(poses)
    back = _seq(poses, (REST, 40), (OUT, 10), (REST, 1))
    assert not steps.under_way("turn_left", back, base, REVEAL, P)
    assert not steps.under_way("turn_right", _seq(poses, (REST, 40), (OUT, 10)), base, REVEAL, P)
    assert steps.under_way("turn_right", _seq(poses, (REST, 40), (LEFT_BIG, 10)), base, REVEAL, P)
    # turned since before the prompt: judge_challenge never counts it, nothing to wait for
    assert not steps.under_way("turn_left", _seq(poses, (OUT, 60)), base, REVEAL, P)


def test_given_eyes_closed_or_the_mouth_past_its_threshold_in_the_newest_frame_then_not_held(
    poses: dict[Pose, NDArray[np.float32]], clip: Clip, face_engine: FaceEngine,
) -> None:
    import cv2

    base = _base(poses)
    for name in ("blink", "open_mouth"):
        img = cv2.imdecode(np.frombuffer(clip.actions[name][2], np.uint8), cv2.IMREAD_COLOR)  # the closure / widest
        lm = np.asarray(face_engine.detect(img)[0].landmarks68, np.float32)
        frames = _seq(poses, (REST, 40))
        frames.append(FrameObs(frames[-1].t_ms + 125, lm, None, 1))
        # what this test is about: that last frame is the action itself (not at rest by judge_challenge's rule): a
        # blink is never held; a mouth past its threshold is seen, not held
        assert not steps._at_rest(name, steps.signals(frames), len(frames) - 1, base, P), name
        assert not steps.under_way(name, frames, base, REVEAL, P), name


def _mouth(lm: NDArray[np.float32], mar: float) -> NDArray[np.float32]:
    """``lm`` with its inner lips opened to MAR ``mar`` (geometry.mouth_aspect_ratio: points 65-67 below 63-61)."""
    out = lm.copy()
    width = float(np.linalg.norm(out[64] - out[60]))
    for up, low in ((61, 67), (62, 66), (63, 65)):
        out[low] = out[up] + np.array([0.0, mar * width], np.float32)
    return out


def _mouth_seq(poses: dict[Pose, NDArray[np.float32]], mars: list[float]) -> list[FrameObs]:
    """Frames at 8 fps from the reveal with these inner-lip MARs, the face at rest."""
    return [FrameObs(REVEAL + k * 125, _mouth(poses[REST], m), None, 1) for k, m in enumerate(mars)]


def _mouth_base(poses: dict[Pose, NDArray[np.float32]], mar: float = 0.05) -> Any:
    return steps.baseline_of([FrameObs(k * 125, _mouth(poses[REST], mar), None, 1) for k in range(8)])


def test_given_a_slow_mouth_opening_still_under_the_threshold_when_the_newest_frame_is_judged_then_under_way(
    poses: dict[Pose, NDArray[np.float32]],
) -> None:
    base = _mouth_base(poses)
    thr = max(P.mouth_open_abs, base.mar + P.mouth_open_delta)
    assert base.mar == pytest.approx(0.05, abs=1e-3)
    # at rest, then an opening rising ~0.015 a frame (a 4-5 s opening at 8 fps), now 0.28: under the threshold
    # (the window's end at 11 s passed: 80 frames at rest first)
    rising = [0.05] * 80 + [0.05 + 0.015 * k for k in range(1, 16)]
    frames = _mouth_seq(poses, rising)
    assert rising[-1] < thr and not steps.judge_challenge("open_mouth", frames, base, REVEAL, P).seen
    assert steps.under_way("open_mouth", frames, base, REVEAL, P)
    # one frame read lower than the one before (landmark jitter) does not stop it
    jitter = _mouth_seq(poses, [*rising[:-2], rising[-1], rising[-2] - 0.01])
    assert steps.under_way("open_mouth", jitter, base, REVEAL, P)
    assert frames[-1].t_ms - REVEAL > 11_000
    assert steps.held_window(11_000, frames[-1].t_ms - REVEAL) == frames[-1].t_ms - REVEAL + steps.UNDER_WAY_HOLD_MS


@pytest.mark.parametrize("tail", [
    [0.05, 0.20, 0.08, 0.22, 0.10, 0.19],  # speech: open and shut, on the whole under what it was 0.5 s before
    [0.25, 0.25, 0.25, 0.25, 0.25, 0.25],  # held half open, no longer rising
    [0.05, 0.06, 0.07, 0.08, 0.09, 0.10],  # rising but not yet well above her baseline (0.05 + 0.06)
    [0.20, 0.24, 0.28, 0.26, 0.22, 0.18],  # closing again
])
def test_given_speech_a_held_or_small_or_closing_mouth_when_the_newest_frame_is_judged_then_not_under_way(
    poses: dict[Pose, NDArray[np.float32]], tail: list[float],
) -> None:
    base = _mouth_base(poses)
    assert not steps.under_way("open_mouth", _mouth_seq(poses, [0.05] * 40 + tail), base, REVEAL, P)


def test_given_a_mouth_opening_since_before_the_prompt_when_judged_then_not_under_way(
    poses: dict[Pose, NDArray[np.float32]],
) -> None:
    # already open past the opening bound at the reveal and rising: judge_challenge would not count it either
    base = _mouth_base(poses)
    frames = _mouth_seq(poses, [0.12 + 0.002 * k for k in range(60)])
    assert not steps.under_way("open_mouth", frames, base, REVEAL, P)


def _step_frames(poses: dict[Pose, NDArray[np.float32]], name: str) -> list[FrameObs]:
    """A fixed step for ``name`` at 8 fps from the reveal: rest, a too-small try and back, (for open_mouth: speech),
    a slow full action past the threshold and back."""
    if name == "open_mouth":
        small = [0.05 + 0.015 * k for k in range(1, 9)]
        full = [0.05 + 0.015 * k for k in range(1, 21)]  # a slow opening, past the 0.30 threshold at its 17th frame
        speech = [0.05, 0.20, 0.08, 0.22, 0.10, 0.19] * 2
        return _mouth_seq(poses, [0.05] * 24 + small + small[::-1] + [0.05] * 24 + speech + [0.05] * 10 + full
                          + [0.35] * 8 + full[::-1])
    far = DOWN if name == "nod" else OUT
    return _seq(poses, (REST, 24), (HALF if name == "turn_left" else REST, 6), (REST, 16), (far, 10), (REST, 6))


@pytest.mark.parametrize("name", ["open_mouth", "turn_left", "nod"])
def test_given_a_fixed_step_when_each_chunk_is_judged_on_signals_computed_once_then_verdicts_holds_and_hints_unchanged(
    poses: dict[Pose, NDArray[np.float32]], name: str,
) -> None:
    # paced.py computes the step's signals once per chunk and passes them to judge_challenge, tried_before and
    # under_way (-> mouth_opening); each used to compute them from the frames. Every prefix of a fixed step (each
    # newest frame a chunk could end on) must give the same verdict, hold and hints both ways.
    base = _mouth_base(poses) if name == "open_mouth" else _base(poses)
    frames = _step_frames(poses, name)
    seen, held, tried, codes = set(), set(), set(), set()
    for n in range(1, len(frames) + 1):
        upto = frames[:n]
        sig = steps.signals(upto)
        j = steps.judge_challenge(name, upto, base, REVEAL, P)
        assert steps.judge_challenge(name, sig, base, REVEAL, P) == j, n
        way = steps.under_way(name, upto, base, REVEAL, P)
        assert steps.under_way(name, sig, base, REVEAL, P) == way, n
        if name == "open_mouth":
            assert steps.mouth_opening(sig, base, REVEAL, P) == steps.mouth_opening(upto, base, REVEAL, P) == way, n
        for until in (upto[n // 2].t_ms, upto[-1].t_ms + 1):  # the prompt heard half way, or after the newest
            t = steps.tried_before(name, upto, base, REVEAL, until, P)
            assert steps.tried_before(name, sig, base, REVEAL, until, P) == t, n
            tried.add(t)
        elapsed = upto[-1].t_ms - REVEAL
        for since in (0, 2_000):
            hints = steps.step_hints([], name, steps.judge_challenge(name, sig, base, REVEAL, P), elapsed, P, since)
            assert hints == steps.step_hints([], name, j, elapsed, P, since), n
            codes.update(hints)
        seen.add(j.seen)
        held.add(way)
    # what this test is about: the sequence reaches every branch (not seen and seen, held and not, tried before the
    # hearing and not, an action hint given)
    assert seen == held == tried == {True, False}, (seen, held, tried)
    assert codes & steps.ACTION_HINT_CODES, codes


def test_given_a_step_under_way_when_held_then_2_s_past_its_newest_frame_never_shorter_never_past_the_cap() -> None:
    assert steps.held_window(11_000, 11_400) == 11_400 + steps.UNDER_WAY_HOLD_MS
    assert steps.held_window(20_000, 11_400) == 20_000
    assert steps.held_window(11_000, steps.HINT_MAX_WINDOW_MS - 1_000) == steps.HINT_MAX_WINDOW_MS
    assert steps.held_window(steps.HINT_MAX_WINDOW_MS, 30_000) == steps.HINT_MAX_WINDOW_MS


def test_given_a_held_step_when_its_window_is_recomputed_then_the_hold_stays_and_the_case_page_says_so() -> None:
    st: dict[str, Any] = {"kind": "challenge", "challenge": "turn_left", "window_ms": steps.CHALLENGE_WINDOW_MS,
                          "hint": {"code": "TURN_MORE", "ms_after_prompt": 4_000, "answered_ms_after_prompt": 4_100}}
    assert paced._window(st) == steps.CHALLENGE_WINDOW_MS + steps.HINT_EXTRA_WINDOW_MS
    st["held_ms"] = 13_400
    st["window_ms"] = paced._window(st)
    assert st["window_ms"] == 13_400
    note = paced._hint_note(st)
    assert note["held_under_way_ms"] == 13_400 and "held open to 13400 ms" in note["note"]
    # without an action hint too (a step whose answers carried a framing hint instead)
    plain: dict[str, Any] = {"kind": "challenge", "challenge": "nod", "window_ms": 8_000, "held_ms": 9_900}
    assert paced._window(plain) == 9_900 and paced._hint_note(plain)["held_under_way_ms"] == 9_900
    assert paced.extended_steps(_Vs([plain | {"window_ms": 9_900}])) == [("nod", 1_900)]


class _Vs:
    """Just what paced.extended_steps reads of a session."""

    def __init__(self, steps_: list[dict[str, Any]]) -> None:
        self.steps = steps_
