"""benchmarks/attacks.turn_head_3d: the depth-aware synthetic head turn of pad_eval's genuine sessions.

Marker images (bright dots on the landmarks of a real face) show where the renderer moves each point; a real
frame shows it renders a usable face."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray

from benchmarks import attacks as atk
from lifecert.engine import geometry
from lifecert.engine.base import FaceEngine

OUTLINE = [0, 2, 4, 6, 8, 10, 12, 14, 16, 17, 21, 22, 26, 36, 39, 42, 45]
SIZE = 512


def _dots(lm: NDArray[np.float32], idx: list[int]) -> NDArray[np.uint8]:
    img = np.zeros((SIZE, SIZE, 3), np.uint8)
    for i in idx:
        cv2.circle(img, (round(float(lm[i, 0])), round(float(lm[i, 1]))), 3, (255, 255, 255), -1)
    return img


def _moved(lm: NDArray[np.float32], i: int, yaw: float, depth: float) -> NDArray[np.float64]:
    """Where landmark ``i``'s dot lands after the turn: the centroid of the bright pixels (drawn alone)."""
    return _centroid(atk.turn_head_3d(_dots(lm, [i]), lm, yaw, depth=depth))


def _centroid(img: NDArray[np.uint8]) -> NDArray[np.float64]:
    out = img[..., 0].astype(np.float64)
    assert out.sum() > 0, "the dot vanished"
    yy, xx = np.mgrid[0 : out.shape[0], 0 : out.shape[1]]
    return np.array([(out * xx).sum() / out.sum(), (out * yy).sum() / out.sum()])


def test_given_no_turn_when_rendered_then_the_frame_is_unchanged(frontal68: NDArray[np.float32]) -> None:
    img = _dots(frontal68, [*OUTLINE, 30])
    assert atk.turn_head_3d(img, frontal68, 0.0, 0.0) is img
    # a tiny turn is a tiny change: the map is the identity plus the turn, no offset of its own
    for i in (0, 8, 16, 30):
        assert np.linalg.norm(_moved(frontal68, i, 0.05, 1.0) - _centroid(_dots(frontal68, [i]))) < 0.5


def test_given_a_yaw_when_rendered_then_the_nose_moves_toward_the_turn_and_beyond_the_cheeks(
        frontal68: NDArray[np.float32]) -> None:
    tip = frontal68[30].astype(np.float64)
    right = _moved(frontal68, 30, 20.0, 1.0)
    left = _moved(frontal68, 30, -20.0, 1.0)
    assert right[0] - tip[0] > 0.1 * float(np.linalg.norm(frontal68[16] - frontal68[0]))  # a real head: ~0.3 fw
    assert left[0] - tip[0] < -0.1 * float(np.linalg.norm(frontal68[16] - frontal68[0]))
    # the far jaw point moves less toward the turn than the nose: the nose stands in front of it
    jaw = _moved(frontal68, 14, 20.0, 1.0)
    assert right[0] - tip[0] > jaw[0] - float(frontal68[14, 0]) + 5.0


def test_given_zero_depth_when_turned_then_the_nose_stays_on_the_outline_plane_and_with_depth_it_leaves_it(
        frontal68: NDArray[np.float32]) -> None:
    def nose_off_plane(depth: float) -> float:
        src = frontal68[OUTLINE].astype(np.float64)
        dst = np.array([_moved(frontal68, i, 25.0, depth) for i in OUTLINE])
        h, _ = cv2.findHomography(src, dst, 0)
        pred = cv2.perspectiveTransform(frontal68[[30]].astype(np.float64).reshape(-1, 1, 2), h).reshape(2)
        return float(np.linalg.norm(pred - _moved(frontal68, 30, 25.0, depth)))

    flat, head = nose_off_plane(0.0), nose_off_plane(1.0)
    assert flat < 2.0  # pixels, on a 260-px face: a turned picture is a plane
    assert head > 10.0


def test_given_a_real_frame_when_turned_40_degrees_then_a_whole_turned_face_is_rendered(
        frontal_frame: NDArray[np.uint8], face_engine: FaceEngine, frontal68: NDArray[np.float32]) -> None:
    img = np.maximum(frontal_frame, 1)  # frontal68's frame; an empty (unmapped or NaN-mapped) pixel would show as 0
    base = geometry.yaw_ratio(frontal68)
    for yaw in (40.0, -40.0):
        out = atk.turn_head_3d(img, frontal68, yaw)
        assert out.shape == img.shape and out.dtype == np.uint8
        face = out[int(frontal68[19, 1]) : int(frontal68[8, 1]), int(frontal68[0, 0]) : int(frontal68[16, 0])]
        assert face.std() > 10 and (face.max(axis=2) > 0).all()  # textured, no empty pixels
        faces = face_engine.detect(out)
        assert faces and faces[0].landmarks68 is not None
        moved = geometry.yaw_ratio(faces[0].landmarks68) - base
        assert np.sign(moved) == np.sign(yaw) and abs(moved) > 0.4  # real: ~0.015 per degree


def test_given_landmarks_when_mirrored_twice_then_unchanged_and_once_the_eyes_swap() -> None:
    lm = np.random.default_rng(0).uniform(0, 100, (68, 2))
    once = atk.mirror_landmarks(lm, 100.0)
    assert np.allclose(atk.mirror_landmarks(once, 100.0), lm)
    assert np.allclose(once[36], [100.0 - lm[45, 0], lm[45, 1]]) and np.allclose(once[30], [100 - lm[30, 0], lm[30, 1]])


def test_given_a_depth_render_without_landmarks_when_a_turn_is_shown_then_it_is_refused() -> None:
    ix = atk.FootageIndex([np.array([10, 10, 50, 50], np.float32)], np.array([0.3]), np.array([0.2]), 25.0)
    frames = [np.zeros((64, 64, 3), np.uint8)]
    with pytest.raises(ValueError):
        atk.render_shot(frames, ix, atk.Shot(0, 20.0), depth=True)
    assert atk.render_shot(frames, ix, atk.Shot(0, 0.0), depth=True) is frames[0]
