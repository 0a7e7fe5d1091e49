"""benchmarks/attacks.py: acting schedule and calibrated turn amplitude (plain data); genuine framing (real frames)."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks import attacks as atk
from lifecert.engine.base import FaceEngine

TABLE = [[15.0, 0.10], [25.0, 0.20], [35.0, 0.30], [45.0, 0.28], [55.0, 0.25]]


def test_given_a_reachable_target_when_the_warp_is_chosen_then_interpolated_on_the_clip_table() -> None:
    assert atk.turn_warp_for(TABLE, 0.15) == pytest.approx(20.0)
    assert atk.turn_warp_for(TABLE, 0.05) == pytest.approx(7.5)  # from (0, 0) to the first row


def test_given_a_target_beyond_the_clip_when_the_warp_is_chosen_then_capped_where_it_stops_growing() -> None:
    assert atk.turn_warp_for(TABLE, 0.6) == 35.0


def _index(n: int = 200) -> atk.FootageIndex:
    box = np.array([100, 100, 300, 340], np.float32)
    ear = np.full(n, 0.3)
    ear[50] = 0.1
    return atk.FootageIndex([box] * n, ear, np.full(n, 0.2), 25.0)


def test_given_prompt_times_when_acting_then_each_turn_starts_its_delay_after_its_own_prompt() -> None:
    shots, times = atk.act(_index(), ["turn_left", "turn_right"], np.random.default_rng(1), fps=5.0,
                           delay_ms=1000, prompts_ms=[3000, 9000], turn_deg=[30.0, 50.0])
    turned = [(t, s.yaw_deg) for s, t in zip(shots, times, strict=True) if s.yaw_deg != 0.0]
    assert min(t for t, y in turned if y > 0) >= 4000 and max(t for t, y in turned if y > 0) <= 5200
    assert min(t for t, y in turned if y < 0) >= 10_000
    assert max(y for _, y in turned) <= 30.0 and min(y for _, y in turned) >= -50.0
    assert min(y for _, y in turned) < -40.0  # the second turn used its own angle
    assert times[-1] >= 9000 + 1000 + 1200


def test_given_a_clip_when_mirrored_then_frames_and_boxes_flip_and_the_eye_data_stays() -> None:
    frame = np.zeros((40, 100, 3), np.uint8)
    frame[:, :10] = 255
    ix = atk.FootageIndex([np.array([5, 2, 30, 20], np.float32), None], np.array([0.3, np.nan]),
                          np.array([0.2, np.nan]), 25.0)
    frames, mx = atk.mirror_footage([frame, frame], ix)
    assert frames[0][:, -10:].min() == 255 and frames[0][:, :10].max() == 0
    assert mx.boxes[0] is not None and mx.boxes[0].tolist() == [70.0, 2.0, 95.0, 20.0] and mx.boxes[1] is None
    assert mx.ear is ix.ear and mx.fps == 25.0


def test_given_a_real_frame_when_held_further_away_then_the_face_shrinks_by_the_zoom_in_a_full_frame(
    video: list[np.ndarray], face_engine: FaceEngine
) -> None:
    """genuine_frame with zoom < 1 (the phone held further than the clip was filmed): the face the engine finds
    is that much narrower, still whole, and the frame is filled to its edges (no black border, no pasted edge)."""
    src = video[100]

    def width(img: np.ndarray) -> float:
        faces = face_engine.detect(img)
        assert faces and faces[0].landmarks68 is not None
        return float(faces[0].box[2] - faces[0].box[0])

    full = atk.genuine_frame(src)
    far = atk.genuine_frame(src, zoom=0.7, shift=(0.03, -0.02))
    assert far.shape == full.shape == (atk.CAMERA[1], atk.CAMERA[0], 3)
    assert width(far) / width(full) == pytest.approx(0.7, abs=0.06)
    # The surroundings are the clip's own border stretched: every edge row/column is a picture, not a fill.
    for edge in (far[0], far[-1], far[:, 0], far[:, -1]):
        assert float(edge.astype(np.float32).mean()) > 10.0
    assert np.array_equal(atk.genuine_frame(src, zoom=1.0), full)  # zoom 1 is the clip as filmed


def test_given_an_image_that_does_not_fit_when_extending_then_a_clear_error() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        atk.extend_frame(np.zeros((100, 100, 3), np.uint8), (80, 120), 0, 0)


# -- hearing an action hint (attacks.Actor.hint; pad_eval g6/c6) ---------------------------------------------


def _grid(at: int, until: int, fps: float = 8.0) -> list[int]:
    return atk.step_times(at, until, fps)


def test_given_a_turn_hint_when_heard_then_the_turn_is_acted_again_only_after_hearing_plus_the_delay() -> None:
    actor = atk.Actor(_index(), ["turn_left", "blink"], np.random.default_rng(3), delay_ms=900, turn_deg=15.0,
                      more_deg=40.0)
    unhinted = atk.Actor(_index(), ["turn_left", "blink"], np.random.default_rng(3), delay_ms=900, turn_deg=15.0,
                         more_deg=40.0)
    actor.prompt(1000, 8.0)
    unhinted.prompt(1000, 8.0)
    heard = 6000
    again = actor.hint(0, heard, "TURN_MORE")
    assert again == heard + 900
    early = [t for t in _grid(0, 12_000) if t < again - 62.5]  # half a frame: the warp ramps from there
    assert [actor.shot(t) for t in early] == [unhinted.shot(t) for t in early]  # nothing changes before
    turned = [(t, actor.shot(t).yaw_deg) for t in _grid(1000, 12_000)]
    first = [t for t, y in turned if y != 0.0 and t < again - 62.5]
    assert first and min(first) >= 1000 + 900 and max(first) <= 1000 + 900 + 1200  # the prompted turn only
    assert not [t for t, y in turned if y != 0.0 and 1000 + 900 + 1200 < t < again - 62.5]  # nothing before
    later = [y for t, y in turned if t >= again - 62.5]
    assert max(later) > 38.0 and max(y for t, y in turned if t < again - 62.5) <= 15.0  # farther: 40 vs 15
    assert actor.heard[0] == ("TURN_MORE", heard, again)
    assert actor.hint(0, heard + 2000, "TURN_MORE") is None  # one reaction per step


def test_given_a_step_seen_before_the_reaction_starts_when_the_page_moves_on_then_nothing_is_acted_again() -> None:
    def actor() -> atk.Actor:
        a = atk.Actor(_index(), ["turn_left", "blink"], np.random.default_rng(3), delay_ms=900, turn_deg=15.0,
                      more_deg=40.0)
        a.prompt(1000, 8.0)
        return a

    late, early, unhinted = actor(), actor(), actor()
    again = late.hint(0, 6000, "TURN_MORE")
    assert again is not None and early.hint(0, 6000, "TURN_MORE") == again
    assert late.passed(0, again - 100)  # seen 0.1 s before the person would have turned again: dropped
    assert late.heard[0] == ("TURN_MORE", 6000, None)
    grid = _grid(0, 14_000)
    assert [late.shot(t) for t in grid] == [unhinted.shot(t) for t in grid]
    assert not early.passed(0, again + 100)  # the reaction had begun: it goes on
    assert max(early.shot(t).yaw_deg for t in grid) > 38.0


def test_given_do_action_or_look_back_when_heard_then_the_same_turn_again_or_nothing() -> None:
    def after(code: str) -> list[float]:
        actor = atk.Actor(_index(), ["turn_right", "blink"], np.random.default_rng(3), delay_ms=900, turn_deg=15.0,
                          more_deg=40.0)
        actor.prompt(1000, 8.0)
        again = actor.hint(0, 6000, code)
        assert (again is None) == (code == "LOOK_BACK")
        return [actor.shot(t).yaw_deg for t in _grid(1000, 12_000) if t > 1000 + 900 + 1200]

    assert min(after("DO_ACTION")) < -14.0 and min(after("DO_ACTION")) >= -15.0  # the drawn turn, to the right
    assert set(after("LOOK_BACK")) == {0.0}


def test_given_a_blink_hint_when_heard_then_another_blink_frame_of_the_clip_is_cued_mid_action() -> None:
    ear = np.full(400, 0.3)
    ear[[50, 150, 250]] = [0.10, 0.11, 0.12]  # three blink bottoms (the deeper half of them is kept: 50, 150)
    ix = atk.FootageIndex([np.array([100, 100, 300, 340], np.float32)] * 400, ear, np.full(400, 0.2), 25.0)
    pool = ix.blink_frames()
    actor = atk.Actor(ix, ["blink", "turn_left"], np.random.default_rng(5), delay_ms=1000)
    unhinted = atk.Actor(ix, ["blink", "turn_left"], np.random.default_rng(5), delay_ms=1000)
    actor.prompt(1000, 8.0)
    unhinted.prompt(1000, 8.0)
    target = actor.targets[0]
    assert target in pool and len(pool) >= 2
    shown = {actor.shot(t).src for t in _grid(1000, 4000)}
    assert target in shown  # the prompted blink
    again = actor.hint(0, 7000, "BLINK_FIRMLY")
    assert again == 8000
    other = pool[(pool.index(target) + 1) % len(pool)]
    assert other != target
    assert [actor.shot(t) for t in _grid(0, again)] == [unhinted.shot(t) for t in _grid(0, again)]  # not before
    assert other in {actor.shot(t).src for t in _grid(again, again + 1200)}  # another blink, mid-action


def test_given_the_page_texts_when_a_hint_is_said_then_its_length_follows_the_characters() -> None:
    more = atk.hint_speech_ms("TURN_MORE", "turn_left")  # 请把头再多转一点，再转回来: 12 characters, 1 comma
    assert more == round(12_000 / (atk.SPEECH_CHARS_PER_S * atk.SPEECH_RATE)) + atk.SPEECH_PAUSE_MS
    assert atk.hint_speech_ms("DO_ACTION", "blink") < atk.hint_speech_ms("DO_ACTION", "turn_left")  # its prompt
    assert atk.hint_heard_ms("TURN_MORE", "turn_left", 4000) == 4000 + more
