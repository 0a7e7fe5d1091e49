"""benchmarks/slow_move.py's pure parts: the movement's curve and when liveness counts a movement."""

from __future__ import annotations

import itertools

import pytest

from benchmarks.slow_move import counted_at, pose_curve, rule_of, why


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
