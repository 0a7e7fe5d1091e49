"""benchmarks/attacks.CutoutPrint (session 13): a printed photo with the mouth (and eyes) cut out, the attacker's
real face behind the holes, the paper turned as a plane. What benchmarks/cutout.py measures rests on three things:
the paper follows a plane's homography, the holes are where the printed mouth / eyes are, and the attacker's mouth
opening shows through (read by the engine as an opening)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray

from benchmarks import attacks as atk
from lifecert.engine import geometry, jaw
from lifecert.engine.base import FaceEngine
from tests.paced_client import clip_picks


def test_given_no_turn_when_projected_then_the_plane_is_a_plain_scaling_about_the_pivot() -> None:
    h = atk.plane_homography((100.0, 50.0), 2.0, (240.0, 300.0), 0.0, 0.0, pivot_depth=150.0)
    assert np.allclose(h, [[2.0, 0.0, 40.0], [0.0, 2.0, 200.0], [0.0, 0.0, 1.0]], atol=1e-9)


def _edges(h: NDArray[np.float64]) -> tuple[float, float, float, float]:
    """(left, right, top, bottom) edge lengths of a 200 x 200 square around the pivot (100, 100) mapped by ``h``."""
    sq = np.array([[0, 0], [200, 0], [200, 200], [0, 200]], np.float64).reshape(-1, 1, 2)
    p = cv2.perspectiveTransform(sq, h).reshape(-1, 2)
    d = lambda a, b: float(np.linalg.norm(p[a] - p[b]))  # noqa: E731
    return d(0, 3), d(1, 2), d(0, 1), d(3, 2)


def test_given_a_yaw_or_a_pitch_when_projected_then_the_far_side_shrinks_as_a_turned_plane_does() -> None:
    """Yaw > 0 sends the image-right side away (shorter than the left), pitch > 0 the bottom (shorter than the
    top); the amount matches the pinhole model: edge ratio (Z - a sin) / (Z + a sin) at the edges' depth."""
    left, right, top, bottom = _edges(atk.plane_homography((100, 100), 1.0, (240, 320), 30.0, 0.0))
    a, z = 100.0, atk.CUT_FOCAL
    assert right < left
    assert abs(right / left - (z - a * 0.5) / (z + a * 0.5)) < 1e-6
    left, right, top, bottom = _edges(atk.plane_homography((100, 100), 1.0, (240, 320), 0.0, 30.0))
    assert bottom < top and abs(left - right) < 1e-6


def test_given_the_mouth_and_eyes_variants_when_cut_then_the_holes_are_over_the_printed_mouth_and_eyes(
        frontal68: NDArray[np.float32]) -> None:
    mouth = np.round(frontal68[[62, 66]].mean(axis=0)).astype(int)
    eye = np.round(frontal68[36:42].mean(axis=0)).astype(int)
    nose = np.round(frontal68[29]).astype(int)
    only = atk.hole_mask(frontal68, (512, 512))
    both = atk.hole_mask(frontal68, (512, 512), eyes=True)
    assert only[mouth[1], mouth[0]] == 1.0 and only[eye[1], eye[0]] == 0.0
    assert both[eye[1], eye[0]] == 1.0 and both[nose[1], nose[0]] == 0.0 and only[nose[1], nose[0]] == 0.0


def test_given_a_turned_paper_when_rendered_then_every_paper_pixel_lands_where_the_homography_says(
        frontal_frame: NDArray[np.uint8], frontal68: NDArray[np.float32]) -> None:
    """The scene behind is black; points of the paper (inside its outline, outside the holes) are found in the
    rendered frame at ``last_homography`` of their paper position with the sheet's colour."""
    rng = np.random.default_rng(3)
    scene = np.zeros((640, 480, 3), np.uint8)
    cut = atk.CutoutPrint(rng, np.ascontiguousarray(frontal_frame), frontal68, frontal68, close=False, scene=scene)
    out = cut.render(np.ascontiguousarray(frontal_frame), frontal68, yaw_deg=25.0)
    h = cut.last_homography
    assert h is not None
    sheet = cut.sheet(np.ascontiguousarray(frontal_frame), frontal68)
    ph, pw = sheet.shape[:2]
    ys, xs = np.mgrid[20 : ph - 20 : 15, 20 : pw - 20 : 15]
    pts = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float64)
    pts = pts[cut.holes[pts[:, 1].astype(int), pts[:, 0].astype(int)] == 0]
    where = cv2.perspectiveTransform(pts.reshape(-1, 1, 2), h).reshape(-1, 2)
    inside = (where[:, 0] >= 2) & (where[:, 0] < 478) & (where[:, 1] >= 2) & (where[:, 1] < 638)
    assert inside.sum() > 100
    got = out[np.round(where[inside, 1]).astype(int), np.round(where[inside, 0]).astype(int)].astype(float)
    want = sheet[pts[inside, 1].astype(int), pts[inside, 0].astype(int)].astype(float)
    assert np.median(np.abs(got - want)) < 12  # bilinear resampling of a textured print
    # and not where a paper without the turn would be
    flat = atk.plane_homography(cut._pivot, cut._scale, cut._at, 0.0, 0.0, size=cut.size)
    moved = cv2.perspectiveTransform(pts.reshape(-1, 1, 2), flat).reshape(-1, 2)
    assert np.median(np.linalg.norm(moved - where, axis=1)) > 5


def test_given_the_attacker_opening_his_mouth_when_seen_through_the_hole_then_the_engine_reads_it_open(
        faces_dir: Path, frame_engine: FaceEngine, video: list[NDArray[np.uint8]]) -> None:
    """A REAL LFW photo printed with its mouth cut out, the REAL talking-head clip behind it: the paper outside the
    hole is the same whatever the attacker does; the engine's inner-lip MAR of the printed face is low with his
    calm frame and over the open_mouth step's absolute threshold (0.30) with his widest opening."""
    photo = np.asarray(cv2.imread(str(faces_dir / "lfw/images/Heidi_Klum/Heidi_Klum_0002.jpg")), np.uint8)
    faces = frame_engine.detect(photo)
    assert faces and faces[0].landmarks68 is not None
    picks = clip_picks(frame_engine, video)
    calm, wide = picks.calm[0], picks.mouth
    cut = atk.CutoutPrint(np.random.default_rng(5), photo, np.asarray(faces[0].landmarks68, np.float64),
                          picks.landmarks[calm], close=True)
    closed = cut.sheet(picks.frames[calm], picks.landmarks[calm])
    opened = cut.sheet(picks.frames[wide], picks.landmarks[wide])
    paper = cut.holes == 0
    assert np.array_equal(closed[paper], opened[paper])
    assert np.abs(closed.astype(int) - opened.astype(int))[cut.holes == 1].mean() > 10

    def mar(img: NDArray[np.uint8]) -> float:
        f = frame_engine.detect(img)
        assert f and f[0].landmarks68 is not None
        return geometry.mouth_aspect_ratio(np.asarray(f[0].landmarks68, np.float32))

    cam = np.zeros((640, 480, 3), np.uint8)
    cut.scene = cam
    at_rest = mar(cut.render(picks.frames[calm], picks.landmarks[calm]))
    open_ = mar(cut.render(picks.frames[wide], picks.landmarks[wide]))
    assert at_rest < 0.25 and open_ > 0.30


# -- the adaptive attacker's cuts (session 14): his own chin behind the paper ------------------------------------


def test_given_the_adaptive_cuts_when_cut_then_the_printed_chin_is_open_and_the_nose_and_eyes_are_paper(
        frontal68: NDArray[np.float32]) -> None:
    lm = np.asarray(frontal68, np.float64)

    def at(mask: NDArray[np.float32], p: NDArray[np.float64]) -> float:
        return float(mask[round(p[1]), round(p[0])])

    mouth = lm[[62, 66]].mean(axis=0)
    below_chin = lm[8] + 0.15 * (lm[8] - lm[33])  # past the printed chin
    eye = lm[36:42].mean(axis=0)
    lower = atk.hole_mask(lm, (512, 512), cut="lower_face")
    slot = atk.hole_mask(lm, (512, 512), cut="mouth_chin")
    plain = atk.hole_mask(lm, (512, 512))
    for p in (mouth, lm[8], below_chin, lm[5], lm[11]):  # the jaw line's lower half too
        assert at(lower, p) == 1.0
    for p in (lm[30], lm[33], eye, lm[27]):
        assert at(lower, p) == 0.0 and at(slot, p) == 0.0
    assert at(slot, mouth) == 1.0 and at(slot, lm[8]) == 1.0 and at(slot, below_chin) == 1.0
    # a paper bridge between the mouth hole and the chin slot; the plain mouth hole leaves the chin on paper
    bridge = lm[57] + 0.56 * (lm[8] - lm[57])
    assert at(slot, bridge) == 0.0 and at(plain, lm[8]) == 0.0
    with pytest.raises(ValueError):
        atk.hole_mask(lm, (512, 512), cut="nose")


def test_given_the_lower_face_cut_when_the_attacker_opens_then_his_chin_drops_where_the_printed_one_was(
        faces_dir: Path, frame_engine: FaceEngine, video: list[NDArray[np.uint8]]) -> None:
    """A REAL LFW photo (Heidi_Klum_0001) printed, the REAL talking-head clip behind it. With the plain mouth hole the
    engine reads the lips parting over a still printed chin (the jaw test's still_chin); with everything below the
    nose cut out, the attacker lines his lower face up with the print (his chin within 0.025 face widths of the
    printed one: the jaw is among the alignment anchors) and his own chin drops: the jaw test passes it."""
    photo = np.asarray(cv2.imread(str(faces_dir / "lfw/images/Heidi_Klum/Heidi_Klum_0001.jpg")), np.uint8)
    faces = frame_engine.detect(photo)
    assert faces and faces[0].landmarks68 is not None
    plm = np.asarray(faces[0].landmarks68, np.float64)
    picks = clip_picks(frame_engine, video)
    calm, wide = picks.calm[0], picks.mouth

    def ratio(cut: str) -> tuple[float, atk.CutoutPrint]:
        c = atk.CutoutPrint(np.random.default_rng(5), photo, plm, picks.landmarks[calm], close=True, cut=cut,
                            scene=np.zeros((640, 480, 3), np.uint8))
        lms = []
        for i in (calm, wide):
            f = frame_engine.detect(c.render(picks.frames[i], picks.landmarks[i]))
            assert f and f[0].landmarks68 is not None
            lms.append(np.asarray(f[0].landmarks68, np.float64))
        (c0, g0), (c1, g1) = jaw.chin_and_gap(lms[0]), jaw.chin_and_gap(lms[1])
        assert g1 - g0 > jaw.MIN_GAP_GROWTH  # the lips part in both
        return (c1 - c0) / (g1 - g0), c

    still, _ = ratio("mouth")
    follows, cut = ratio("lower_face")
    assert still < jaw.JAW_CUT <= follows, (still, follows)  # 0.01 and 0.53 with dlib's frame engine
    m = cut._to_mouth
    chin = m[:, :2] @ np.asarray(picks.landmarks[calm][8], np.float64) + m[:, 2]
    face_w = float(np.linalg.norm(cut.paper_lm[16] - cut.paper_lm[0]))
    assert np.linalg.norm(chin - cut.paper_lm[8]) < 0.025 * face_w  # 0.016; 0.032 on the mouth's anchors alone
    closed = cut.sheet(picks.frames[calm], picks.landmarks[calm])
    opened = cut.sheet(picks.frames[wide], picks.landmarks[wide])
    y, x = np.round(cut.paper_lm[8]).astype(int)[::-1]
    assert np.abs(closed[y - 6 : y + 7, x - 6 : x + 7].astype(int) - opened[y - 6 : y + 7, x - 6 : x + 7]).mean() > 5
