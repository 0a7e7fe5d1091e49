"""benchmarks/pad_eval.pace: an acted session captured as production paces it (prompt after the previous step
was seen; a step not seen yet keeps being captured until its window runs out), on plain landmark data."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from benchmarks import attacks as atk
from benchmarks import pad_eval
from lifecert.services.verification import steps

SIZE = (480, 640)
BASE = {"name": "bona_fide/x/0", "kind": "bona_fide", "source": "video_acted", "size": list(SIZE)}
JITTERS = [400, 900]


@pytest.fixture(scope="module")
def frontal(frontal68: NDArray[np.float32]) -> NDArray[np.float32]:
    """Landmarks of a real near-frontal face, moved to the middle of a 480x640 frame."""
    lm = (frontal68 - frontal68.mean(axis=0)) * (200.0 / float(np.linalg.norm(frontal68[16] - frontal68[0])))
    return np.asarray(lm + np.array([240.0, 320.0], np.float32), np.float32)


def _actor(challenges: list[str]) -> atk.Actor:
    n = 300
    ix = atk.FootageIndex([np.array([100, 100, 300, 340], np.float32)] * n, np.full(n, 0.3), np.full(n, 0.2), 25.0)
    return atk.Actor(ix, challenges, np.random.default_rng(1))


def _person(frontal: NDArray[np.float32], actor: atk.Actor, turn_after_ms: dict[int, int]
            ) -> Callable[[int], dict[str, Any]]:
    """A face drifting a little; after prompt k it turns (k even: to its left, odd: right) for 600 ms from
    ``turn_after_ms[k]`` ms after that prompt (no entry: it never turns)."""
    width = float(np.linalg.norm(frontal[16] - frontal[0]))

    def observe(t: int) -> dict[str, Any]:
        lm = frontal + np.array([2.0 * np.sin(t / 700.0), 1.5 * np.cos(t / 900.0)], np.float32)
        for k, p in enumerate(actor.prompts):
            if k in turn_after_ms and p + turn_after_ms[k] <= t < p + turn_after_ms[k] + 600:
                lm = lm.copy()
                lm[27:36, 0] += (0.45 if k % 2 == 0 else -0.45) * width / 2
        box = [float(lm[:, 0].min()), float(lm[:, 1].min()), float(lm[:, 0].max()), float(lm[:, 1].max())]
        return {"t": t, "lm": lm.tolist(), "box": box, "nf": 1, "pad": 0.9, "br": 120.0}

    return observe


def test_given_a_turn_seven_seconds_after_its_prompt_when_paced_then_the_capture_waits_for_it(
        frontal: NDArray[np.float32]) -> None:
    actor = _actor(["turn_left", "turn_right"])
    person = _person(frontal, actor, {0: 7000, 1: 1500})
    frames, prompts, meta = pad_eval.pace(BASE | {"challenges": actor.challenges}, actor, person, JITTERS)
    s0, s1 = meta["steps"]
    assert prompts[0] == meta["settle_seen_ms"] + JITTERS[0]  # the first prompt follows the settle chunk
    assert s0["seen_ms"] is not None and prompts[0] + 7000 < s0["seen_ms"] <= prompts[0] + 7000 + 2 * steps.CHUNK_MS
    assert prompts[1] == s0["seen_ms"] + JITTERS[1]  # the next prompt only after the step was seen
    assert s1["seen_ms"] is not None and frames[-1]["t"] < s1["seen_ms"]  # the capture stops once all were seen
    assert frames[-1]["t"] < prompts[1] + 1500 + 600 + 2 * steps.CHUNK_MS
    assert s0["fps"] == steps.capture_fps("turn_left")
    row = BASE | {"challenges": actor.challenges, "prompts_ms": prompts, "frames": frames}
    assert pad_eval.production_decision(row, pad_eval.LivenessParams(), pad_eval.QualitySettings(), 5)["missed"] == []


def test_given_a_step_never_acted_when_paced_then_footage_runs_to_its_window_end_and_the_session_ends(
        frontal: NDArray[np.float32]) -> None:
    actor = _actor(["turn_left", "turn_right"])
    person = _person(frontal, actor, {})
    frames, prompts, meta = pad_eval.pace(BASE | {"challenges": actor.challenges}, actor, person, JITTERS)
    # production gives an action hint 3.5 s into the step (DO_ACTION: nothing turned), which lengthens its window once
    end = prompts[0] + steps.CHALLENGE_WINDOW_MS + steps.HINT_EXTRA_WINDOW_MS
    assert len(prompts) == 1 and meta["steps"][0]["seen_ms"] is None  # the second prompt is never shown
    assert meta["steps"][0]["window_ms"] == steps.CHALLENGE_WINDOW_MS + steps.HINT_EXTRA_WINDOW_MS
    dt = 1000 / steps.capture_fps("turn_left")
    assert frames[-1]["t"] > end and next(f["t"] for f in frames if f["t"] > end) < end + dt + 1
    assert frames[-1]["t"] <= end + steps.CHUNK_MS
    row = BASE | {"challenges": actor.challenges, "prompts_ms": prompts, "frames": frames}
    d = pad_eval.production_decision(row, pad_eval.LivenessParams(), pad_eval.QualitySettings(), 5)
    assert d["missed"] == ["turn_left"] and d["active_reject"]
    hint = d["challenge_results"][0]
    assert hint["action_hint"] == "DO_ACTION"
    assert steps.ACTION_HINT_AFTER_MS <= hint["hint_ms_after_prompt"] < steps.ACTION_HINT_AFTER_MS + steps.CHUNK_MS


def test_given_a_turn_after_the_base_window_when_the_hint_lengthened_it_then_it_is_seen(
        frontal: NDArray[np.float32]) -> None:
    actor = _actor(["turn_left", "turn_right"])
    person = _person(frontal, actor, {0: 9000, 1: 1500})  # 9 s: past the 8 s window, inside 8 + 3 s
    frames, prompts, meta = pad_eval.pace(BASE | {"challenges": actor.challenges}, actor, person, JITTERS)
    assert meta["steps"][0]["seen_ms"] is not None and len(prompts) == 2
    row = BASE | {"challenges": actor.challenges, "prompts_ms": prompts, "frames": frames}
    d = pad_eval.production_decision(row, pad_eval.LivenessParams(), pad_eval.QualitySettings(), 5)
    assert d["missed"] == [] and d["challenge_results"][0]["window_ms"] == (
        steps.CHALLENGE_WINDOW_MS + steps.HINT_EXTRA_WINDOW_MS)
    # the same frames judged with no hint (the base window only) miss it: the lengthening is what passed it
    cut = [f for f in frames if f["t"] <= prompts[0] + steps.CHALLENGE_WINDOW_MS]
    j = steps.judge_challenge("turn_left", pad_eval.frame_obs(row | {"frames": cut}), steps.baseline_of(
        pad_eval.frame_obs(row | {"frames": [f for f in frames if f["t"] < prompts[0]][-8:]})), prompts[0])
    assert not j.seen


def test_given_a_schedule_when_acted_then_the_frames_follow_each_steps_capture_rate() -> None:
    ix = atk.FootageIndex([None] * 100, np.full(100, 0.3), np.full(100, 0.2), 25.0)
    shots, times = atk.act(ix, ["blink", "turn_left"], np.random.default_rng(2), fps=[4.0, 10.0], lead_fps=2.0,
                           delay_ms=500, prompts_ms=[1000, 3000])
    assert times[:3] == [0, 500, 1000] and times[3] == 1250  # lead-in at 2 fps, the first step at 4 fps
    assert 3000 in times and times[times.index(3000) + 1] == 3100  # the second step at 10 fps
    assert len(shots) == len(times)


def test_given_no_face_ever_when_paced_then_no_prompt_is_shown_and_the_session_is_retried() -> None:
    actor = _actor(["turn_left", "blink"])

    def empty_room(t: int) -> dict[str, Any]:
        return {"t": t, "lm": None, "box": None, "nf": 0, "pad": None, "br": 90.0}

    frames, prompts, meta = pad_eval.pace(BASE | {"challenges": actor.challenges}, actor, empty_room, JITTERS)
    assert prompts == [] and meta["settle_seen_ms"] is None and meta["steps"] == []
    assert steps.SETTLE_WINDOW_MS - 1000 <= frames[-1]["t"] <= steps.SETTLE_WINDOW_MS + steps.CHUNK_MS
    row = BASE | {"challenges": actor.challenges, "prompts_ms": prompts, "frames": frames, "synth": {"paced": meta}}
    d = pad_eval.production_decision(row, pad_eval.LivenessParams(), pad_eval.QualitySettings(), 5)
    assert d["decision"] == "RETRY" and d["challenge_results"] == []


def test_given_a_faster_rate_for_one_step_when_paced_then_only_that_step_is_captured_at_it(
        frontal: NDArray[np.float32], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(steps, "capture_fps", lambda challenge: 16 if challenge == "turn_right" else 8)
    actor = _actor(["turn_left", "turn_right"])
    person = _person(frontal, actor, {0: 1500, 1: 1500})
    frames, prompts, meta = pad_eval.pace(BASE | {"challenges": actor.challenges}, actor, person, JITTERS)
    ts = [f["t"] for f in frames]
    assert {b - a for a, b in itertools.pairwise(ts) if prompts[0] <= a and b < prompts[1]} == {125}
    assert {b - a for a, b in itertools.pairwise(ts) if a >= prompts[1]} == {62, 63} and prompts[1] in ts
    assert [s["fps"] for s in meta["steps"]] == [8.0, 16.0]


# -- the person hears production's action hint (g6/c6) ------------------------------------------------------------


def _acted_person(frontal: NDArray[np.float32], actor: atk.Actor, seen: list[tuple[int, float]]
                  ) -> Callable[[int], dict[str, Any]]:
    """A face whose nose follows the actor's head warp: a 40 degree turn moves it 0.45 half face widths (a full
    turn), 15 degrees 0.17 (turned the asked way, under steps' 0.22: TURN_MORE). ``seen``: (t, yaw) per frame."""
    half = float(np.linalg.norm(frontal[16] - frontal[0])) / 2

    def observe(t: int) -> dict[str, Any]:
        yaw = actor.shot(t).yaw_deg
        seen.append((t, yaw))
        lm = frontal + np.array([2.0 * np.sin(t / 700.0), 1.5 * np.cos(t / 900.0)], np.float32)
        lm = lm.copy()
        lm[27:36, 0] += yaw / 40.0 * 0.45 * half
        box = [float(lm[:, 0].min()), float(lm[:, 1].min()), float(lm[:, 0].max()), float(lm[:, 1].max())]
        return {"t": t, "lm": lm.tolist(), "box": box, "nf": 1, "pad": 0.9, "br": 120.0}

    return observe


def test_given_a_turn_too_small_when_paced_then_the_hint_is_heard_and_the_turn_acted_again_farther_is_seen(
        frontal: NDArray[np.float32]) -> None:
    actor = atk.Actor(_actor(["turn_left", "turn_right"]).index, ["turn_left", "turn_right"],
                      np.random.default_rng(1), delay_ms=1000, turn_deg=15.0, more_deg=40.0)
    seen: list[tuple[int, float]] = []
    frames, prompts, meta = pad_eval.pace(BASE | {"challenges": actor.challenges}, actor,
                                          _acted_person(frontal, actor, seen), JITTERS)
    s0 = meta["steps"][0]
    assert s0["hint"] == "TURN_MORE"
    answered = s0["hint_answered_ms"]
    assert answered % steps.CHUNK_MS == 0 and answered >= prompts[0] + steps.ACTION_HINT_AFTER_MS
    assert s0["hint_heard_ms"] == answered + atk.hint_speech_ms("TURN_MORE", "turn_left")
    assert s0["acted_again_ms"] == s0["hint_heard_ms"] + 1000
    dt = 1000 / steps.capture_fps("turn_left")
    assert max(y for t, y in seen if t < s0["acted_again_ms"] - dt / 2) <= 15.0  # only the small turn before
    assert max(y for t, y in seen if prompts[0] <= t < s0["seen_ms"]) > 38.0  # the farther turn after it
    assert s0["seen_ms"] > s0["acted_again_ms"] and len(prompts) == 2
    row = BASE | {"challenges": actor.challenges, "prompts_ms": prompts, "frames": frames}
    d = pad_eval.production_decision(row, pad_eval.LivenessParams(), pad_eval.QualitySettings(), 5)
    assert d["missed"] == [] and d["challenge_results"][0]["action_hint"] == "TURN_MORE"


def _cached(frontal: NDArray[np.float32], turn_after_ms: dict[int, int]) -> list[dict[str, Any]]:
    """One paced session as pad_eval caches it (a person who ignores hints: ``_person``)."""
    actor = _actor(["turn_left", "turn_right"])
    frames, prompts, meta = pad_eval.pace(BASE | {"challenges": actor.challenges}, actor,
                                          _person(frontal, actor, turn_after_ms), JITTERS)
    return [BASE | {"challenges": actor.challenges, "prompts_ms": prompts, "frames": frames,
                    "synth": {"paced": meta}}]


def test_given_previous_sessions_with_and_without_a_hint_when_reused_then_only_the_one_without_is_copied(
        frontal: NDArray[np.float32], tmp_path: Any) -> None:
    import json

    versions = (pad_eval.KIND_VERSION["bona_fide"], pad_eval.PREVIOUS_VERSION[pad_eval.KIND_VERSION["bona_fide"]])
    quiet = pad_eval.Spec("video_acted/x/0", "bona_fide", "video_acted", "A", 0, "x")
    hinted = pad_eval.Spec("video_acted/x/1", "bona_fide", "video_acted", "B", 1, "x")
    # DO_ACTION at 3.5 s, the turn seen at ~4.5 s, before the hint was even said: the reaction is dropped
    moved_on = pad_eval.Spec("video_acted/x/2", "bona_fide", "video_acted", "A", 2, "x")
    for sp, session in ((quiet, _cached(frontal, {0: 1500, 1: 1500})), (hinted, _cached(frontal, {})),
                        (moved_on, _cached(frontal, {0: 3900, 1: 1500}))):
        new = pad_eval.cache_path(tmp_path, sp, 12)
        assert new.name.endswith(f"-{versions[0]}.json")
        new.parent.mkdir(parents=True, exist_ok=True)
        new.with_name(new.name.replace(f"-{versions[0]}.json", f"-{versions[1]}.json")).write_text(
            json.dumps(session))
    assert pad_eval.reuse_unchanged(tmp_path, quiet, 12)  # turned in time: no hint, the same capture
    assert json.loads(pad_eval.cache_path(tmp_path, quiet, 12).read_text())[0]["prompts_ms"]
    # never turned: DO_ACTION at 3.5 s, heard and acted again well inside the 11 s capture: filmed anew
    assert not pad_eval.reuse_unchanged(tmp_path, hinted, 12)
    assert not pad_eval.cache_path(tmp_path, hinted, 12).is_file()
    assert pad_eval.reuse_unchanged(tmp_path, moved_on, 12)
    step = json.loads(pad_eval.cache_path(tmp_path, moved_on, 12).read_text())[0]["synth"]["paced"]["steps"][0]
    assert step["hint"] == "DO_ACTION" and step.get("dropped")  # it was heard; the page had moved on
