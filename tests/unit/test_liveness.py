"""Landmark liveness detectors on real frames (talking-head video, pose photos) and synthetic landmarks."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray

from lifecert.engine import geometry
from lifecert.engine.base import FaceEngine
from lifecert.engine.image import read_image_file
from lifecert.engine.liveness import (
    RIGID_IDX,
    Baseline,
    FrameObs,
    LivenessParams,
    Signals,
    analyze_liveness,
    baseline,
    check_challenges,
    detect_blink,
    flat_check,
    homography_residual,
    signals,
    track_breaks,
)
from lifecert.services.ratelimit import RateLimiter

LEAD, WIN = 1500, 3000


def _landmarks(engine: FaceEngine, image: NDArray[np.uint8]) -> NDArray[np.float32]:
    faces = engine.detect(image)
    assert faces and faces[0].landmarks68 is not None
    return faces[0].landmarks68


@pytest.fixture(scope="module")
def talking(video: list[NDArray[np.uint8]]) -> list[NDArray[np.uint8]]:
    """The shared talking-head clip (tests/conftest.py ``video``: read once per test session)."""
    return video


@pytest.fixture(scope="module")
def talking_obs(talking: list[NDArray[np.uint8]], face_engine: FaceEngine) -> list[FrameObs]:
    """Every 3rd frame (~8 fps) of the first 4.5 s, 125 ms apart, with real landmarks."""
    return [FrameObs(j * 125, _landmarks(face_engine, talking[i]), None, 1) for j, i in enumerate(range(0, 108, 3))]


def test_given_talking_head_with_natural_blinks_when_checked_then_blink_seen(talking_obs: list[FrameObs]) -> None:
    sig = signals(talking_obs)
    res = check_challenges(sig, ["blink"], LEAD, WIN, baseline(sig, LEAD))
    assert res[0].passed
    assert res[0].peak_value is not None and res[0].baseline is not None
    assert res[0].peak_value < 0.75 * res[0].baseline
    assert LEAD - 500 <= (res[0].peak_t_ms or -1) <= LEAD + WIN + 500


def test_given_still_image_repeated_when_checked_then_no_blink_and_still(
    talking: list[NDArray[np.uint8]], face_engine: FaceEngine
) -> None:
    lm = _landmarks(face_engine, talking[100])
    obs = [FrameObs(j * 125, lm, None, 1) for j in range(40)]
    rep = analyze_liveness(obs, ["blink", "open_mouth"], LEAD, WIN)
    assert rep.still and rep.motion == 0.0
    assert not rep.challenges[0].passed and not rep.challenges[1].passed
    assert not rep.flat.decided  # no pose change: the flat test abstains, the still test decides


def test_given_real_video_when_checked_then_not_still_and_no_track_breaks(talking_obs: list[FrameObs]) -> None:
    rep = analyze_liveness(talking_obs, ["blink"], LEAD, WIN)
    assert not rep.still and rep.motion > LivenessParams().still_motion
    assert rep.track_breaks == []


def test_given_blink_outside_its_window_when_checked_then_not_passed(talking_obs: list[FrameObs]) -> None:
    sig = signals(talking_obs)
    base = baseline(sig, LEAD)
    first = check_challenges(sig, ["blink"], LEAD, WIN, base)[0]
    assert first.passed and first.peak_t_ms is not None
    # Move the only window to start 1 s after the video's frames end: nothing can be seen there.
    late = check_challenges(sig, ["blink"], int(sig.t_ms.max()) + 1000, WIN, base)[0]
    assert not late.passed and late.frames == 0


def _turn_sequence(frontal: NDArray[np.float32], turned: NDArray[np.float32]) -> list[FrameObs]:
    seq = [frontal] * 12 + [frontal] * 4 + [turned] * 3 + [frontal] * 5
    return [FrameObs(j * 125, lm, None, 1) for j, lm in enumerate(seq)]


def _shift_nose(lm: NDArray[np.float32], frac: float) -> NDArray[np.float32]:
    """Synthetic turn: nose bridge and tip move sideways by ``frac`` half face widths (image x)."""
    out = lm.copy()
    half = float(np.linalg.norm(lm[16] - lm[0])) / 2
    out[27:36, 0] += frac * half
    return out


@pytest.mark.parametrize(
    ("frac", "passes", "fails"), [(0.4, "turn_left", "turn_right"), (-0.4, "turn_right", "turn_left")]
)
def test_given_synthetic_nose_shift_when_checked_then_only_matching_direction_passes(
    talking: list[NDArray[np.uint8]], face_engine: FaceEngine, frac: float, passes: str, fails: str
) -> None:
    frontal = _landmarks(face_engine, talking[100])
    obs = _turn_sequence(frontal, _shift_nose(frontal, frac))
    sig = signals(obs)
    base = baseline(sig, LEAD)
    assert check_challenges(sig, [passes], LEAD, WIN, base)[0].passed
    assert not check_challenges(sig, [fails], LEAD, WIN, base)[0].passed


def test_given_turn_without_coming_back_when_checked_then_not_passed(
    talking: list[NDArray[np.uint8]], face_engine: FaceEngine
) -> None:
    frontal = _landmarks(face_engine, talking[100])
    seq = [frontal] * 12 + [_shift_nose(frontal, 0.4)] * 12
    sig = signals([FrameObs(j * 125, lm, None, 1) for j, lm in enumerate(seq)])
    assert not check_challenges(sig, ["turn_left"], LEAD, WIN, baseline(sig, LEAD))[0].passed


def test_given_pose_photos_when_checked_then_turn_directions_follow_the_unmirrored_image(
    faces_dir: Path, talking: list[NDArray[np.uint8]], face_engine: FaceEngine
) -> None:
    """pose/right_face.png has the nose toward the image's right: in an unmirrored camera frame
    that is the person's own LEFT; pose/left_face.jpeg is the person's own right."""
    # The most frontal frame of the video (|yaw_ratio| smallest) as the neutral lead-in.
    candidates = [_landmarks(face_engine, talking[i]) for i in range(0, 200, 5)]
    frontal = min(candidates, key=lambda lm: abs(geometry.yaw_ratio(lm)))
    nose_image_right = _landmarks(face_engine, read_image_file(faces_dir / "pose/right_face.png"))
    nose_image_left = _landmarks(face_engine, read_image_file(faces_dir / "pose/left_face.jpeg"))
    assert geometry.yaw_ratio(nose_image_right) > 0 > geometry.yaw_ratio(nose_image_left)
    for turned, own_side in ((nose_image_right, "turn_left"), (nose_image_left, "turn_right")):
        sig = signals(_turn_sequence(frontal, turned))
        base = baseline(sig, LEAD)
        other = "turn_right" if own_side == "turn_left" else "turn_left"
        assert check_challenges(sig, [own_side], LEAD, WIN, base)[0].passed
        assert not check_challenges(sig, [other], LEAD, WIN, base)[0].passed


def test_given_planar_motion_of_landmarks_when_fitting_homography_then_residual_tiny_and_flat(
    talking: list[NDArray[np.uint8]], face_engine: FaceEngine
) -> None:
    """A photo moved in front of the camera: every landmark follows one plane projection."""
    lm = _landmarks(face_engine, talking[100])
    obs = []
    for j, k in enumerate(np.linspace(-0.5, 0.5, 12)):
        h = np.array([[1.0, k, -k * 250], [0.0, 1.0, 0.0], [0.0005 * k, 0.0, 1.0]])
        moved = cv2.perspectiveTransform(lm.reshape(-1, 1, 2).astype(np.float64), h).reshape(-1, 2).astype(np.float32)
        obs.append(FrameObs(j * 125, moved, None, 1))
    sig = signals(obs)
    assert float(np.nanmax(sig.yaw) - np.nanmin(sig.yaw)) > LivenessParams().flat_min_yaw_change
    fc = flat_check(obs, sig)
    assert fc.decided and fc.flat
    assert fc.residual is not None and fc.residual < 1e-3


def test_given_real_head_motion_when_fitting_homography_then_not_flat(
    talking: list[NDArray[np.uint8]], face_engine: FaceEngine
) -> None:
    obs = [FrameObs(j * 40, _landmarks(face_engine, talking[i]), None, 1) for j, i in enumerate(range(0, 200, 4))]
    fc = flat_check(obs, signals(obs))
    assert fc.decided and not fc.flat
    a, b = obs[0].landmarks, obs[-1].landmarks
    assert a is not None and b is not None
    assert homography_residual(a[RIGID_IDX], b[RIGID_IDX], obs[0].face_width) > 0


def test_given_face_replaced_mid_sequence_when_tracking_then_break_found(
    faces_dir: Path, talking: list[NDArray[np.uint8]], face_engine: FaceEngine
) -> None:
    a = _landmarks(face_engine, talking[100])
    b = _landmarks(face_engine, read_image_file(faces_dir / "pose/rise_face.jpeg"))
    obs = [FrameObs(j * 125, lm, None, 1) for j, lm in enumerate([a] * 5 + [b] * 5)]
    assert track_breaks(obs) == [5]


def test_given_rate_limiter_when_capacity_used_then_waits_until_refill() -> None:
    rl = RateLimiter(capacity=2, period_s=100.0)
    assert rl.take("k", now=0.0) == 0.0
    assert rl.take("k", now=0.0) == 0.0
    wait = rl.take("k", now=0.0)
    assert wait == pytest.approx(50.0)
    assert rl.take("other", now=0.0) == 0.0
    assert rl.take("k", now=51.0) == 0.0


def _ear_signals(ratios: list[float], base: float = 0.28) -> tuple[Signals, Baseline]:
    n = len(ratios)
    z = np.zeros(n)
    sig = Signals(np.arange(n, dtype=np.int64) * 125, np.array(ratios) * base, z, z, z)
    return sig, Baseline(base, 0.0, 0.0, 0.0, 8)


@pytest.mark.parametrize(
    ("dip", "seen"),
    # benchmarks/blink_sampling.py: the cut stays at 0.75 of the open-eye EAR; a talking face's EAR dips to
    # ~0.8 without a blink, so a shallower dip is not a blink (a shallow blinker is asked again, see README).
    [(0.70, True), (0.74, True), (0.80, False), (0.95, False)],
)
def test_given_an_ear_dip_sampled_at_8_fps_when_blink_judged_then_only_a_dip_under_the_cut_counts(
    dip: float, seen: bool
) -> None:
    sig, base = _ear_signals([1.0, 0.98, 1.01, dip, 0.99, 1.0, 1.02])
    ok, *_ = detect_blink(sig, np.arange(7, dtype=np.int64), base, LivenessParams())
    assert ok is seen
