"""Pixel planarity (lifecert.engine.pixel_planarity) on REAL frames: a REAL NUAA print frame turned as a plane (an
exact homography: flat), a REAL live frame turned by benchmarks.attacks.turn_head_3d (a head with depth: not flat),
a face that does not move (abstains) and a print whose lower face moves behind a hole (still flat)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray

from benchmarks import attacks as atk
from lifecert.engine import pixel_planarity as pp
from lifecert.engine.base import FaceEngine
from lifecert.engine.image import read_image_file

POSES = [(0.0, 0.0), (12.0, 0.0), (25.0, 3.0), (-15.0, 8.0), (-25.0, 0.0), (5.0, 15.0), (0.0, -12.0)]


def _plane(centre: NDArray[np.float64], fw: float, yaw: float, pitch: float, dist_fw: float = 5.0
           ) -> NDArray[np.float64]:
    """The homography of a plane through ``centre`` turned by yaw / pitch (degrees), pinhole camera ``dist_fw``
    face widths away (a print held at arm's length)."""
    f = dist_fw * fw
    src = centre + np.array([[-fw, -fw], [fw, -fw], [fw, fw], [-fw, fw]])
    a, b = math.radians(yaw), math.radians(pitch)
    ry = np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
    rx = np.array([[1, 0, 0], [0, math.cos(b), -math.sin(b)], [0, math.sin(b), math.cos(b)]])
    x = np.c_[src - centre, np.zeros(4)] @ (rx @ ry).T
    dst = np.c_[f * x[:, :2] / (f + x[:, 2:3])] + centre
    return np.asarray(cv2.getPerspectiveTransform(src.astype(np.float32), dst.astype(np.float32)), np.float64)


@pytest.fixture(scope="module")
def nuaa_print(faces_dir: Path, face_engine: FaceEngine) -> tuple[NDArray[np.uint8], NDArray[np.float64]]:
    """A REAL NUAA print capture on a larger sheet (its border reflected outward) and its dlib landmarks."""
    img = read_image_file(faces_dir / "spoof" / "nuaa" / "attack_print" / "0001" / "0001_00_00_01_0.jpg")
    img = cv2.copyMakeBorder(img, 80, 80, 80, 80, cv2.BORDER_REFLECT)
    faces = face_engine.detect(img)
    assert faces and faces[0].landmarks68 is not None
    return img, np.asarray(faces[0].landmarks68, np.float64)


def _turned_print(img: NDArray[np.uint8], lm: NDArray[np.float64]
                  ) -> tuple[list[NDArray[np.uint8]], list[NDArray[np.float64]]]:
    fw = pp.face_width(lm)
    frames, lms = [], []
    for yaw, pitch in POSES:
        h = _plane(lm.mean(axis=0), fw, yaw, pitch)
        frames.append(cv2.warpPerspective(img, h, (img.shape[1], img.shape[0]), flags=cv2.INTER_LINEAR))
        lms.append(cv2.perspectiveTransform(lm.reshape(-1, 1, 2), h).reshape(-1, 2))
    return frames, lms


def _loader(frames: list[NDArray[np.uint8]]) -> pp.ImageLoader:
    return lambda idx: [frames[i] for i in idx]


def test_given_a_real_print_turned_as_a_plane_when_measured_then_flat(
    nuaa_print: tuple[NDArray[np.uint8], NDArray[np.float64]],
) -> None:
    frames, lms = _turned_print(*nuaa_print)
    check = pp.pixel_planarity(lms, _loader(frames))
    assert check.decided and check.flat
    assert check.value is not None and check.value < pp.PIXEL_CUT / 2


def test_given_a_real_face_turned_in_3d_when_measured_then_not_flat(
    frontal_frame: NDArray[np.uint8], face_engine: FaceEngine,
) -> None:
    base = face_engine.detect(frontal_frame)[0].landmarks68
    assert base is not None
    frames, lms = [], []
    for yaw, pitch in POSES:
        img = atk.turn_head_3d(frontal_frame, np.asarray(base, np.float64), yaw, pitch)
        faces = face_engine.detect(img)
        assert faces and faces[0].landmarks68 is not None
        frames.append(img)
        lms.append(np.asarray(faces[0].landmarks68, np.float64))
    check = pp.pixel_planarity(lms, _loader(frames))
    assert check.decided and not check.flat
    assert check.value is not None and check.value > 2 * pp.PIXEL_CUT


def test_given_a_face_that_does_not_move_when_measured_then_it_abstains(
    frontal_frame: NDArray[np.uint8], frontal68: NDArray[np.float32],
) -> None:
    """The same REAL frame seven times, its landmarks jittered as dlib's are (~1 px): no pixel moved, so there is
    nothing to judge — never "flat"."""
    rng = np.random.default_rng(7)
    lms = [np.asarray(frontal68, np.float64) + rng.normal(0, 1.0, (68, 2)) for _ in POSES]
    check = pp.pixel_planarity(lms, _loader([frontal_frame.copy() for _ in POSES]))
    assert not check.decided and not check.flat


def test_given_a_print_whose_lower_face_moves_behind_a_hole_when_measured_then_still_flat(
    nuaa_print: tuple[NDArray[np.uint8], NDArray[np.float64]],
) -> None:
    """A cut-out print: below the printed nose each frame shows something else (here the picture shifted by a
    different amount per frame, as a mouth behind the hole moves on its own); the measure reads the upper face."""
    img, lm = nuaa_print
    frames, lms = _turned_print(img, lm)
    rng = np.random.default_rng(3)
    cut_frames = []
    for f, lw in zip(frames, lms, strict=True):
        y0 = int(lw[31:36, 1].max() + 0.08 * pp.face_width(lw))
        dx, dy = rng.uniform(-6, 6, 2)
        moved = cv2.warpAffine(f, np.array([[1, 0, dx], [0, 1, dy]]), (f.shape[1], f.shape[0]),
                               borderMode=cv2.BORDER_REFLECT)
        g = f.copy()
        g[y0:] = moved[y0:]
        cut_frames.append(g)
    check = pp.pixel_planarity(lms, _loader(cut_frames))
    assert check.decided and check.flat


def test_given_landmarks_whose_jaw_line_collapsed_when_read_then_no_reading_and_no_giant_crop(
    nuaa_print: tuple[NDArray[np.uint8], NDArray[np.float64]],
) -> None:
    """Broken landmarks: jaw ends 0 and 16 drawn together scale the crop up by face width^-1 (10^8 when they meet);
    a crop over MAX_CROP is skipped instead of allocated."""
    img, lm = nuaa_print
    bad = lm.copy()
    bad[16] = bad[0] + (bad[16] - bad[0]) / 6  # face width / 6: a crop ~6x too large (~10^8 x with a full collapse)
    assert pp.pair_reading(img, bad, img, lm) is None
    frames, lms = _turned_print(img, lm)
    lms[0] = bad
    check = pp.pixel_planarity(lms, _loader(frames))  # completes; the collapsed frame is never a crop's reference
    assert check.readings and all(r.i != 0 for r in check.readings)


def test_given_the_final_decision_when_the_pixel_test_meets_a_numerical_error_then_it_abstains_and_the_session_goes_on(
    nuaa_print: tuple[NDArray[np.uint8], NDArray[np.float64]],
) -> None:
    from lifecert.engine.liveness import FrameObs
    from lifecert.services.verification.paced import upper_face_pixels

    frames, lms = _turned_print(*nuaa_print)
    fobs = [FrameObs(i * 125, lm.astype(np.float32), None, 1) for i, lm in enumerate(lms)]

    def broken(idx: Sequence[int]) -> list[NDArray[np.uint8] | None]:
        raise cv2.error("a corner case inside OpenCV")

    got = upper_face_pixels(fobs, broken, landmark_flat=False)
    assert got is not None and not got.decided and not got.flat
    assert upper_face_pixels(fobs, _loader(frames), landmark_flat=True) is None  # the landmark test already said flat
    flat = upper_face_pixels(fobs, _loader(frames), landmark_flat=False)
    assert flat is not None and flat.decided and flat.flat
