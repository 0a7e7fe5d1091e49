"""The reader and the listener (steps.tried_before / steps.hint_since, paced._prompt_heard / _hint_since): once the
page reports the prompt heard, the action-hint clock counts from that hearing only for one who had NOT tried the
asked action before it (the slow listener); one who tried while the prompt was being said (the reader) keeps the
clock from the reveal. Judged on the landmarks of a REAL face (talking-head frame 100) turned or nodded by
benchmarks.attacks.turn_head and found again by the engine (the fixture of test_slow_mover_hold)."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from lifecert.services.verification import paced, steps
from tests.unit.test_slow_mover_hold import DOWN, HALF, LEFT_BIG, OUT, REST, REVEAL, P, Pose, _base, _seq
from tests.unit.test_slow_mover_hold import poses as poses  # the fixture

Poses = dict[Pose, NDArray[np.float32]]
HEARD = REVEAL + 6_100  # the turn prompt said in 6.1 s (espeak-ng, README hint_speech)


def test_given_a_too_small_turn_before_the_prompt_was_heard_when_asked_then_she_tried(poses: Poses) -> None:
    base = _base(poses)
    # 2.7 s of rest, a turn half way (past turn_back x turn_yaw, under turn_yaw) for 1 s, back: the reader
    reader = _seq(poses, (REST, 22), (HALF, 8), (REST, 40))
    assert reader[29].t_ms < HEARD
    assert steps.tried_before("turn_left", reader, base, REVEAL, HEARD, P)
    # what that try was: not seen (too small), TURN_MORE's peak
    j = steps.judge_challenge("turn_left", reader, base, REVEAL, P)
    assert not j.seen and steps.action_hint("turn_left", j, 7_000, P) == "TURN_MORE"
    # a nod that began before the hearing
    assert steps.tried_before("nod", _seq(poses, (REST, 22), (DOWN, 4), (REST, 40)), base, REVEAL, HEARD, P)


def test_given_no_try_before_the_prompt_was_heard_when_asked_then_she_has_not_tried(poses: Poses) -> None:
    base = _base(poses)
    # the listener: at rest while the prompt is said, her too-small turn 2.7 s after hearing it
    listener = _seq(poses, (REST, 71), (HALF, 8), (REST, 20))
    assert listener[71].t_ms >= HEARD
    assert not steps.tried_before("turn_left", listener, base, REVEAL, HEARD, P)
    # a turn the other way is no try of turn_left (judge_challenge's bound is one-sided), nor a turn for a nod
    other = _seq(poses, (REST, 22), (LEFT_BIG, 8), (REST, 40))
    assert not steps.tried_before("turn_left", other, base, REVEAL, HEARD, P)
    assert steps.tried_before("turn_right", other, base, REVEAL, HEARD, P)
    # turned since before the prompt and never at rest before the hearing: not a try (judge_challenge ignores it)
    assert not steps.tried_before("turn_left", _seq(poses, (OUT, 49), (REST, 40)), base, REVEAL, HEARD, P)
    # the frames before the reveal + MIN_REACTION_MS are not looked at (a turn there is not a reaction)
    early = [f for f in _seq(poses, (REST, 1), (HALF, 1), (REST, 60))]
    assert early[1].t_ms < REVEAL + steps.MIN_REACTION_MS
    assert not steps.tried_before("turn_left", early, base, REVEAL, HEARD, P)


def test_given_the_hearing_and_the_try_when_starting_the_hint_clock_then_the_hearing_only_for_one_who_had_not_tried(
) -> None:
    assert steps.hint_since(6_100, tried=False) == 6_100
    assert steps.hint_since(6_100, tried=True) == 0
    assert steps.hint_since(None, tried=False) == 0
    assert steps.hint_since(-300, tried=False) == 0


def _turn_step() -> dict[str, Any]:
    return {"kind": "challenge", "challenge": "turn_left", "window_ms": steps.CHALLENGE_WINDOW_MS, "reveal_ms": REVEAL,
            "hint": {"code": "TURN_MORE", "ms_after_prompt": 3_600, "answered_ms_after_prompt": 3_900,
                     "issued": {"TURN_MORE": 3_900}}}


def test_given_the_prompt_report_when_recorded_then_the_try_is_kept_and_sets_the_step_hint_clock(poses: Poses) -> None:
    base = _base(poses)
    reader = _seq(poses, (REST, 22), (HALF, 8), (REST, 40))
    j = steps.judge_challenge("turn_left", reader, base, REVEAL, P)
    elapsed = HEARD - REVEAL + 1_000  # the chunk that carried the report, 1 s after the hearing
    for tried, since, want in ((True, 0, ["TURN_MORE"]), (False, HEARD - REVEAL, [])):
        st = _turn_step()
        paced._prompt_heard(st, HEARD - REVEAL, "speech", tried)
        assert st["prompt_heard"]["tried_before"] is tried
        # the hints issued before the report are forgotten either way (the page dropped them: app.js staleAction)
        assert st["hint"]["issued"] == {}
        assert paced._hint_since(st) == since
        # the reader's TURN_MORE comes back in the answer to that very chunk; the listener's waits 3.5 s
        assert steps.step_hints([], "turn_left", j, elapsed, P, paced._hint_since(st)) == want
    # a record written before the reader rule (no tried_before) counts from the hearing, as it did
    st = _turn_step()
    st["prompt_heard"] = {"heard_ms_after_prompt": 6_100, "heard_via": "speech", "window_ms": 14_100, "rule": "heard"}
    assert paced._hint_since(st) == 6_100
    assert paced._hint_since(_turn_step()) == 0
