"""benchmarks/slow_move.py's pure parts: the movement's curve and when liveness counts a movement."""

from __future__ import annotations

import itertools

import pytest

from benchmarks.slow_move import counted_at, pose_curve, rule_of, then_show, why
from tests.paced_client import FRAME_MS, Clip, Phone, SimClock, Step, VirtualTime


def test_given_a_slow_profile_when_curved_then_it_eases_out_holds_and_comes_back_to_rest() -> None:
    c = pose_curve(2500, 1500, 2500)  # at 8 fps: 20 frames out, 12 held, 20 back
    assert len(c) == 52
    out, held, back = c[:20], c[20:32], c[32:]
    assert all(a < b for a, b in itertools.pairwise(out))
    assert out[-1] == pytest.approx(1.0)
    assert held == [1.0] * 12
    assert all(a > b for a, b in itertools.pairwise(back))
    assert back[-1] == pytest.approx(0.0, abs=1e-12)
    assert out[0] < 0.01  # eased: the first frame has hardly moved


def test_given_todays_profile_when_curved_then_it_is_fake_cameras_0_6_s_out_held_back() -> None:
    c = pose_curve(600, 600, 600)
    assert len(c) == 5 + 5 + 5
    assert c[4] == pytest.approx(1.0) and c[5:10] == [1.0] * 5


def test_given_a_turn_past_the_threshold_when_it_returns_then_it_counts_at_the_first_frame_back() -> None:
    thr, back = rule_of("turn_left")
    ts = [0, 125, 250, 375, 500, 625]
    # as liveness.detect_turn: strictly past the threshold, strictly under the back bound
    vals = [0.0, thr, thr + 0.01, thr + 0.05, back, back - 0.001]
    assert counted_at(ts, vals, thr, back) == (250, 625)
    # before the crossing a low value is not "back"; never back: None
    assert counted_at(ts, [0.0, 0.0, thr + 0.1, thr + 0.1, 0.2, 0.2], thr, back) == (250, None)
    assert counted_at(ts, [0.0] * 6, thr, back) == (None, None)


def test_given_a_nod_the_rule_is_liveness_nod_pitch_and_half_of_it_back() -> None:
    assert rule_of("nod") == (0.04, 0.02)


def test_given_a_miss_when_explained_then_the_cut_rule_and_the_ms_are_named() -> None:
    assert "never passed the threshold 0.22" in why("turn_left", 11000, "fixed", 9000, None, None, 0.19, 0.22, 0.11)
    late = why("turn_left", 11000, "fixed", 11900, 9000, 12300, 0.3, 0.22, 0.11)
    assert "steps.step_over" in late and "rule fixed" in late and "1300 ms after the window's end" in late
    assert "never came back" in why("nod", 11000, "fixed", 11900, 9000, None, 0.09, 0.04, 0.02)


def test_given_an_open_mouth_the_rule_is_its_bound_over_the_baseline_and_no_way_back() -> None:
    assert rule_of("open_mouth") == (0.30, None)  # mouth_open_abs
    thr, back = rule_of("open_mouth", base_mar=0.25)
    assert thr == pytest.approx(0.37) and back is None  # baseline + mouth_open_delta
    assert rule_of("turn_right") == rule_of("turn_left")
    # counted at the first frame past the bound (liveness.detect_open_mouth asks no way back)
    assert counted_at([0, 125, 250, 375], [0.1, 0.3, 0.31, 0.1], 0.30, None) == (250, 250)
    assert counted_at([0, 125], [0.1, 0.3], 0.30, None) == (None, None)


def test_given_a_mouth_missed_when_explained_then_the_window_and_the_late_crossing_are_named() -> None:
    late = why("open_mouth", 19000, "heard", 19100, 19600, 19600, 0.45, 0.30, None)
    assert "steps.step_over" in late and "rule heard" in late and "600 ms after the window's end" in late
    assert "liveness.detect_open_mouth" in why("open_mouth", 19000, "heard", 19100, None, None, 0.2, 0.30, None)


def _phone(t: int, script: list[bytes], at: int) -> Phone:
    clip = Clip(neutral=[b"calm0", b"calm1"], actions={})
    phone = Phone(lambda *a: None, Step(1, "challenge", "turn_left", "n"), clip, SimClock(VirtualTime()),  # type: ignore[arg-type, return-value]
                  act=False)
    phone.t, phone.script, phone.script_at = t, list(script), at
    return phone


def test_given_a_try_under_way_when_the_next_is_scripted_then_it_finishes_first_and_calm_frames_fill_the_gap() -> None:
    # the first try began at 1000 ms (4 frames, 2 shown); the next tick is 1250: s3 at 1250, s4 at 1375, free from 1500
    phone = _phone(1250, [b"s3", b"s4"], 1000)
    then_show(phone, [b"f1", b"f2"], 1930)  # the full try from the first tick at or after 1930 ms: 2000
    assert phone.script == [b"s3", b"s4", b"calm0", b"calm1", b"calm0", b"calm1", b"f1", b"f2"]
    assert phone.script_at == 1000
    # the script is shown one frame a tick from now on: f1 lands on the 2000 ms tick
    assert 1250 + phone.script.index(b"f1") * FRAME_MS == 2000


def test_given_a_try_not_begun_or_none_when_the_next_is_scripted_then_it_comes_after_or_alone() -> None:
    phone = _phone(500, [b"s1", b"s2"], 1000)  # the first try is still ahead: 1000, 1125; free from 1250
    then_show(phone, [b"f1"], 1250)
    assert phone.script == [b"s1", b"s2", b"f1"] and phone.script_at == 1000
    phone = _phone(500, [], 0)
    then_show(phone, [b"f1"], 1300)
    assert phone.script == [b"f1"] and phone.script_at == 1375
    # asked for earlier than the try under way ends: no gap, straight after it (a try is never cut off)
    phone = _phone(1250, [b"s3", b"s4"], 1000)
    then_show(phone, [b"f1"], 1260)
    assert phone.script == [b"s3", b"s4", b"f1"]
