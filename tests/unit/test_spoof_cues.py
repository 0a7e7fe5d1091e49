"""Screen/print cues (lifecert.engine.spoof_cues) on drawn frames with known answers, and the
attack synthesis of benchmarks/attacks.py on a real frame."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from lifecert.engine import geometry
from lifecert.engine.base import FaceEngine
from lifecert.engine.image import read_image_file
from lifecert.engine.spoof_cues import (
    analyze,
    edge_enclosure,
    enclosure_fires,
    enclosure_session,
    moire_score,
    side_offsets,
    specular_share,
    through_face,
)

BOX = np.array([200.0, 220.0, 280.0, 320.0], np.float32)  # x1, y1, x2, y2: an 80x100 "face"


def _frame(rect: bool = True, seed: int = 0, box: np.ndarray = BOX) -> np.ndarray:
    """A grey frame with smooth noise, a textured "face" in ``box`` and (optionally) a bright
    rectangle edge 40 px outside the box."""
    rng = np.random.default_rng(seed)
    f = np.full((640, 480, 3), 90, np.uint8)
    f = cv2.add(f, cv2.GaussianBlur(rng.integers(0, 20, f.shape, dtype=np.uint8), (0, 0), 4))
    x1, y1, x2, y2 = box.astype(int)
    f[y1:y2, x1:x2] = rng.integers(100, 200, (y2 - y1, x2 - x1, 3), dtype=np.uint8)
    if rect:
        cv2.rectangle(f, (x1 - 40, y1 - 40), (x2 + 40, y2 + 40), (250, 250, 250), 6)
    return f


def test_given_bright_rectangle_around_face_when_measured_then_four_sides_flanked_at_known_offsets() -> None:
    sides, offs = edge_enclosure(_frame(), BOX)
    assert sides == 4
    # the drawn edge is 40 px (6 px thick) outside an 80 px wide box: ~0.45-0.55 face widths
    assert all(0.3 < o < 0.6 for o in offs), offs


def test_given_no_rectangle_when_measured_then_no_side_flanked() -> None:
    sides, _ = edge_enclosure(_frame(rect=False), BOX)
    assert sides == 0


def test_given_rectangle_moving_with_the_face_when_analyzed_then_rigid_and_static_one_not() -> None:
    frames_rigid, frames_static, boxes = [], [], []
    for k in range(6):
        shift = (12 * k, 4 * k)
        b = BOX + np.array([shift[0], shift[1], shift[0], shift[1]], np.float32)
        boxes.append(b)
        rigid = _frame(rect=True, seed=k, box=b)  # a phone/paper edge held with the face
        static = _frame(rect=False, seed=k, box=b)
        cv2.rectangle(static, (150, 170), (330, 370), (250, 250, 250), 6)  # a door frame: does not move
        frames_rigid.append(rigid)
        frames_static.append(static)
    r = analyze(frames_rigid, boxes)
    s = analyze(frames_static, boxes)
    assert r.rigid is True and r.enclosure >= 3
    assert s.rigid is not True


def test_given_periodic_grating_when_moire_measured_then_far_above_smooth_texture() -> None:
    rng = np.random.default_rng(1)
    smooth = cv2.GaussianBlur(rng.integers(60, 200, (640, 480, 3), dtype=np.uint8), (0, 0), 1.5)
    grating = smooth.copy()
    xs = np.arange(480)
    stripes = (40 * np.cos(2 * np.pi * xs / 3.2)).astype(np.int16)
    grating = np.clip(grating.astype(np.int16) + stripes[None, :, None], 0, 255).astype(np.uint8)
    assert moire_score(grating, BOX) > 2 * moire_score(smooth, BOX)


def test_given_known_share_of_white_pixels_when_specular_measured_then_that_share() -> None:
    f = np.full((640, 480, 3), 120, np.uint8)
    x1, y1, x2, _ = BOX.astype(int)
    f[y1 : y1 + 25, x1:x2] = 255  # 25 of 100 rows of the face: 25 %
    assert specular_share(f, BOX) == pytest.approx(0.25)


def test_given_frames_without_faces_when_analyzed_then_empty_report_and_length_mismatch_refused() -> None:
    rep = analyze([_frame()], [None])
    assert rep.frames == 0 and rep.flags == ()
    with pytest.raises(ValueError):
        analyze([_frame(), _frame()], [BOX])


def test_given_lines_short_long_and_to_the_border_when_span_required_then_only_long_or_border_ones_flank() -> None:
    box = (100.0, 100.0, 200.0, 200.0)  # a 100 px face
    short = np.array([[60.0, 90.0, 60.0, 210.0]])  # left of the face, just covers it
    long_ = np.array([[60.0, 30.0, 60.0, 270.0]])  # 0.7 face heights past both ends
    to_border = np.array([[260.0, 0.0, 260.0, 230.0]])  # right: leaves the frame at the top, 0.3 below
    assert not np.isnan(side_offsets(short, box)[0])  # without span: any overlapping line flanks
    assert np.isnan(side_offsets(short, box, span=0.5)[0])
    assert side_offsets(long_, box, span=0.5)[0] == pytest.approx(0.4)
    assert np.isnan(side_offsets(to_border, box, span=0.5)[2])
    assert np.isnan(side_offsets(to_border, box, span=0.5, frame_size=(300, 400))[2])  # 0.3 < 0.5 below
    reaching = np.array([[260.0, 0.0, 260.0, 396.0]])  # both ends at the frame's borders
    assert side_offsets(reaching, box, span=0.5, frame_size=(300, 400))[2] == pytest.approx(0.6)


def test_given_lines_through_and_beside_the_face_when_counted_then_only_the_crossing_ones() -> None:
    box = (100.0, 100.0, 200.0, 200.0)
    through = [150.0, 80.0, 152.0, 230.0]  # vertical, inside the box, over its whole height
    beside = [230.0, 80.0, 230.0, 230.0]  # vertical, 0.3 face widths right of the box
    half = [150.0, 100.0, 150.0, 150.0]  # inside, but only half the face's height
    across = [90.0, 160.0, 210.0, 161.0]  # horizontal, across the whole width
    lines = np.array([through, beside, half, across])
    assert through_face(lines, box) == 2
    assert through_face(lines, box, margin=-0.5, cover=1.0) == 3  # "beside" counts within 0.5 widths


def test_given_votes_when_session_decided_then_share_of_fired_frames_counts() -> None:
    assert enclosure_session([]) is None
    assert enclosure_session([True] * 9 + [False]) is True
    assert enclosure_session([False] * 9 + [True]) is False


@pytest.mark.parametrize("name", ["Jason_Alexander/Jason_Alexander_0001.jpg",
                                  "Frederick_Madden/Frederick_Madden_0001.jpg"])
def test_given_real_lfw_frame_with_door_or_panel_lines_when_enclosure_checked_then_does_not_fire(
    faces_dir: Path, face_engine: FaceEngine, name: str
) -> None:
    img = read_image_file(faces_dir / "lfw" / "images" / name)
    box = face_engine.detect(img)[0].box
    old_sides, _ = edge_enclosure(img, box)  # the untrusted old rule sees straight edges on >= 2 sides
    assert old_sides >= 2
    sides, fired = enclosure_fires(img, box)
    assert not fired, sides


# -- attack synthesis (benchmarks/attacks.py) on a real frame ----------------------------------------------


def test_given_real_frame_when_head_turn_warped_then_yaw_ratio_moves_the_documented_way(
    faces_dir: Path, face_engine: FaceEngine
) -> None:
    from benchmarks.attacks import turn_head

    cap = cv2.VideoCapture(str(faces_dir / "video" / "talking_head_a.mp4"))
    ok, frame = cap.read()
    cap.release()
    assert ok
    face = face_engine.detect(frame)[0]
    assert face.landmarks68 is not None
    base = geometry.yaw_ratio(face.landmarks68)
    left = face_engine.detect(turn_head(frame, face.box, yaw_deg=30))[0].landmarks68
    right = face_engine.detect(turn_head(frame, face.box, yaw_deg=-30))[0].landmarks68
    assert left is not None and right is not None
    # yaw_deg > 0 = the pensioner's own left = nose toward the image's right = yaw_ratio grows
    assert geometry.yaw_ratio(left) > base + 0.22 > base - 0.22 > geometry.yaw_ratio(right)


def test_given_same_seed_when_phone_replay_rendered_then_identical_frames_and_phone_in_view() -> None:
    from benchmarks.attacks import Camera, PhoneScreen

    src = np.full((512, 512, 3), 200, np.uint8)
    a = [Camera(np.random.default_rng(5)).shoot(PhoneScreen(np.random.default_rng(5)).render(src))]
    b = [Camera(np.random.default_rng(5)).shoot(PhoneScreen(np.random.default_rng(5)).render(src))]
    np.testing.assert_array_equal(a[0], b[0])
    assert a[0].shape == (640, 480, 3)
    # the near-black bezel is in the frame
    assert (a[0].max(axis=2) < 40).mean() > 0.005
