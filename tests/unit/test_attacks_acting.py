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
