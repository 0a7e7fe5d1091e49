"""Rules of one paced-capture step (settle, challenge timing, clock mapping, hints) on landmark data."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from lifecert.config import QualitySettings
from lifecert.engine.liveness import FrameObs
from lifecert.services.verification import steps

G = QualitySettings()
REVEAL = 10_000  # server ms


@pytest.fixture(scope="module")
def frontal(frontal68: NDArray[np.float32]) -> NDArray[np.float32]:
    """Landmarks of a real, near-frontal face (talking-head frame 100)."""
    return frontal68


def _turned(lm: NDArray[np.float32], frac: float = 0.4) -> NDArray[np.float32]:
    """Synthetic turn to the person's left: the nose moves toward the image's right."""
    out = lm.copy()
    out[27:36, 0] += frac * float(np.linalg.norm(lm[16] - lm[0])) / 2
    return out


def _seq(start: int, shapes: list[NDArray[np.float32]]) -> list[FrameObs]:
    return [FrameObs(start + k * 125, lm, None, 1) for k, lm in enumerate(shapes)]


def _base(frontal: NDArray[np.float32]) -> steps.Baseline:
    return steps.baseline_of(_seq(0, [frontal] * 8))


def test_given_a_turn_two_seconds_after_the_prompt_when_judged_then_seen_with_its_reaction_time(
    frontal: NDArray[np.float32],
) -> None:
    frames = _seq(REVEAL, [frontal] * 16 + [_turned(frontal)] * 3 + [frontal] * 4)
    j = steps.judge_challenge("turn_left", frames, _base(frontal), REVEAL)
    assert j.seen and not j.early
    assert j.reaction_ms is not None and 1800 <= j.reaction_ms <= 2000
    assert not steps.judge_challenge("turn_right", frames, _base(frontal), REVEAL).seen


def test_given_a_turn_already_under_way_at_the_prompt_when_judged_then_not_counted(
    frontal: NDArray[np.float32],
) -> None:
    # Turned from the reveal to 375 ms after it (a pre-cued clip), then frontal for good.
    frames = _seq(REVEAL, [_turned(frontal)] * 4 + [frontal] * 30)
    j = steps.judge_challenge("turn_left", frames, _base(frontal), REVEAL)
    assert not j.seen and j.early


def test_given_a_turn_before_the_prompt_only_when_judged_then_not_seen(frontal: NDArray[np.float32]) -> None:
    frames = _seq(REVEAL - 2000, [frontal] * 4 + [_turned(frontal)] * 3 + [frontal] * 40)
    assert not steps.judge_challenge("turn_left", frames, _base(frontal), REVEAL).seen


def test_given_a_steady_face_when_settling_then_steady_with_its_own_baseline(frontal: NDArray[np.float32]) -> None:
    obs = [steps.Obs(k * 125, (512, 512), frontal, (0, 0, 1, 1), 1, 120.0, 120.0) for k in range(8)]
    res = steps.settle(obs, 0, G)
    assert res.steady and res.baseline is not None and res.baseline.frames == 7
    assert not steps.settle(obs[:3], 0, G).steady  # too short


def _steady(frontal: NDArray[np.float32], width_frac: float, n: int, start: int = 0) -> list[steps.Obs]:
    """A steady face whose box is ``width_frac`` of a 512-px frame's width."""
    box = (0.0, 0.0, width_frac * 512, width_frac * 512)
    return [steps.Obs(start + k * 125, (512, 512), frontal, box, 1, 120.0, 120.0) for k in range(n)]


def test_given_a_steady_face_too_close_when_settling_then_it_waits_for_it_to_move_back(
    frontal: NDArray[np.float32],
) -> None:
    close = _steady(frontal, 0.85, 8)
    res = steps.settle(close, 0, G)
    assert not res.steady and res.too_close and res.baseline is None
    assert steps.hints(close, G) == ["MOVE_BACK"]
    # The hint the page shows while the step waits, even when the newest chunk alone is at the edge.
    edge = _steady(frontal, 0.70, 4, start=1000)
    assert steps.hints(edge, G) == [] and steps.hints(edge, G, too_close=True) == ["MOVE_BACK"]
    # The user steps back: the same face at 0.6 of the width settles at once.
    moved = close + _steady(frontal, 0.6, 8, start=1000)
    assert steps.settle(moved, 0, G).steady


def test_given_a_face_that_stays_too_close_when_the_framing_wait_is_over_then_it_settles_anyway(
    frontal: NDArray[np.float32],
) -> None:
    wait = steps.SETTLE_FRAMING_WAIT_MS
    n = wait // 125 + 1  # frames from 0 to just past the wait
    close = _steady(frontal, 0.85, n)
    assert close[-1].t_ms >= wait and close[-2].t_ms < wait
    assert not steps.settle(close[:-1], 0, G).steady
    res = steps.settle(close, 0, G)
    assert res.steady and not res.too_close and res.baseline is not None
    # The wait counts from the first frame WITH a face (a late user gets the whole wait).
    late = [steps.Obs(k * 125, (512, 512), None, None, 0, 0.0, 40.0) for k in range(24)] + _steady(
        frontal, 0.85, n, start=3000
    )
    assert not steps.settle(late[:-1], 0, G).steady
    assert steps.settle(late, 0, G).steady


def test_given_a_face_moving_across_the_frame_when_settling_then_not_steady(frontal: NDArray[np.float32]) -> None:
    obs = [steps.Obs(k * 125, (512, 512), frontal + np.float32(k * 12), None, 1, 120.0, 120.0) for k in range(8)]
    res = steps.settle(obs, 0, G)
    assert not res.steady and res.motion is not None and res.motion > steps.SETTLE_MAX_MOTION
    assert steps.hints(obs, G, hold_still=True) == ["HOLD_STILL"]


@pytest.mark.parametrize(
    ("scale", "brightness", "want"),
    [(None, 120.0, ["NO_FACE"]), (0.2, 120.0, ["MOVE_CLOSER"]), (1.0, 20.0, ["MORE_LIGHT"]), (1.0, 120.0, []),
     (1.5, 120.0, ["MOVE_BACK"])],
)
def test_given_the_newest_frames_when_hinting_then_the_matching_code(
    frontal: NDArray[np.float32], scale: float | None, brightness: float, want: list[str]
) -> None:
    if scale is None:
        lm = None
    else:
        c = frontal.mean(axis=0)
        lm = (frontal - c) * scale + c
    # Every frame with landmarks has its box (frames.observe): the landmarks' extent stands in for it here.
    box = None if lm is None else (*(float(v) for v in lm.min(axis=0)), *(float(v) for v in lm.max(axis=0)))
    obs = [steps.Obs(k * 125, (512, 512), lm, box, 0 if lm is None else 1, 100.0, brightness) for k in range(6)]
    assert steps.hints(obs, G) == want


def test_given_obs_when_round_tripped_through_json_then_equal(frontal: NDArray[np.float32]) -> None:
    o = steps.Obs(5, (640, 480), frontal, (1.0, 2.0, 3.0, 4.0), 1, 88.5, 120.25, 0.9731)
    back = steps.Obs.from_json(o.to_json())
    assert back.landmarks is not None and np.abs(back.landmarks - frontal).max() <= 0.05
    want = (5, (640, 480), (1.0, 2.0, 3.0, 4.0), 1, 0.9731)
    assert (back.t_ms, back.size, back.box, back.num_faces, back.pad) == want


def test_given_chunks_when_offset_updated_then_the_smallest_bound_and_window_end_rules() -> None:
    off = steps.update_offset(None, 5_000, 4_800)
    off = steps.update_offset(off, 6_300, 5_800)  # a slower upload does not raise it
    assert off == 200
    assert not steps.step_over(REVEAL + 7_000, REVEAL + 7_100, REVEAL, 8_000)
    assert steps.step_over(REVEAL + 8_100, REVEAL + 8_200, REVEAL, 8_000)  # a frame past the window arrived
    assert steps.step_over(None, REVEAL + 8_000 + steps.UPLOAD_GRACE_MS + 1, REVEAL, 8_000)  # client went quiet


def test_given_a_chunk_queued_on_the_phone_when_mapped_by_its_send_time_then_a_pre_prompt_turn_stays_before_the_prompt(
    frontal: NDArray[np.float32],
) -> None:
    # True clocks: server ms = client ms + 5000; the prompt is revealed at server 6000 (client 1000).
    # The chunk holds frames 0..2375 ms; it waited on the phone behind a request in flight, left at client
    # 3600 and took 100 ms to upload: it arrived at server 8700.
    true_offset, reveal = 5_000, 6_000
    by_last_frame = steps.update_offset(None, 8_700, 2_375)
    by_send_time = steps.update_offset(None, 8_700, 3_600)
    assert (by_last_frame - true_offset, by_send_time - true_offset) == (1_325, 100)  # both upper bounds
    # A turn captured 250-125 ms BEFORE the prompt appeared (client 750 and 875), frontal afterwards.
    shapes = [frontal] * 6 + [_turned(frontal)] * 2 + [frontal] * 12
    late = steps.judge_challenge("turn_left", _seq(by_last_frame, shapes), _base(frontal), reveal)
    assert late.seen  # mapped 1.3 s late, the pre-prompt turn looks like a reaction to the prompt ...
    ok = steps.judge_challenge("turn_left", _seq(by_send_time, shapes), _base(frontal), reveal)
    assert not ok.seen  # ... mapped by the send time it stays before the prompt and does not count


def test_given_send_times_when_checked_then_only_from_the_newest_frame_to_the_longest_queue() -> None:
    assert steps.send_time_ok(3_500, 3_600) and steps.send_time_ok(3_500, 3_500)
    assert not steps.send_time_ok(3_500, 3_499)  # sent before its newest frame was captured: impossible
    assert not steps.send_time_ok(3_500, 3_500 + steps.MAX_SEND_LAG_MS + 1)  # held back longer than any queue


def test_given_a_face_box_filling_most_of_the_frame_when_hinting_then_move_back_and_not_at_a_normal_distance(
    frontal: NDArray[np.float32],
) -> None:
    def obs(box_w: float) -> list[steps.Obs]:
        return [steps.Obs(k * 125, (480, 640), frontal, (10.0, 10.0, 10.0 + box_w, 10.0 + box_w), 1, 100.0, 120.0)
                for k in range(6)]

    assert steps.hints(obs(0.8 * 480), G) == ["MOVE_BACK"]
    assert steps.hints(obs(0.6 * 480), G) == []
    # A framing issue (too dark) comes first: one hint at a time.
    dark = [steps.Obs(o.t_ms, o.size, o.landmarks, o.box, 1, 100.0, 20.0) for o in obs(0.8 * 480)]
    assert steps.hints(dark, G) == ["MORE_LIGHT"]


def test_given_any_step_when_asking_its_capture_rate_then_blink_fast_the_rest_the_session_rate() -> None:
    assert steps.capture_fps("blink") == steps.FAST_FPS == 15  # the page's upper clamp
    for challenge in (None, "open_mouth", "turn_left", "turn_right", "nod"):
        assert steps.capture_fps(challenge) == steps.SESSION_FPS == 8
    assert steps.chunk_max_frames("blink") == 23
    assert steps.session_max_frames(["blink", "nod"]) == steps.SESSION_MAX_FRAMES + 70  # 10 s x 7 more fps


def test_given_the_session_rate_when_bounding_frames_then_twelve_per_chunk_and_four_hundred_per_session() -> None:
    for challenge in (None, "turn_left", "nod", "open_mouth"):
        assert steps.capture_fps(challenge) == steps.SESSION_FPS
        assert steps.chunk_max_frames(challenge) == steps.CHUNK_MAX_FRAMES == 12
    assert steps.session_max_frames(["turn_left", "nod", "open_mouth"]) == steps.SESSION_MAX_FRAMES


def test_given_a_faster_blink_step_when_bounding_frames_then_its_chunks_and_session_allow_the_rate_and_no_more(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(steps, "capture_fps", lambda c: 15 if c in ("blink", "open_mouth") else steps.SESSION_FPS)
    assert steps.chunk_max_frames("blink") == 23  # 1.5 s at 15 fps
    assert steps.chunk_max_frames(None) == steps.chunk_max_frames("nod") == 12
    longest = steps.STEP_FRAMES_MS / 1000
    genuine = steps.SETTLE_WINDOW_MS / 1000 * 8 + longest * (15 + 15 + 8)  # every step as long as it can last
    assert steps.session_max_frames(["blink", "open_mouth", "nod"]) == 540 >= genuine
    assert steps.session_max_frames(["turn_left", "nod", "turn_right"]) == steps.SESSION_MAX_FRAMES
