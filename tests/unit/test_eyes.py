"""Eye closure from the pixels (lifecert.engine.eyes) and the blink judgement that uses it, on REAL frames:
the shallow blinker of ../shared/faces/video/blink_7_times_1080p.mp4 (the EAR dip the landmarks give is too
small at 8 fps) and the talking-head clip (talking, no blink)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray

from benchmarks import pad_eval
from lifecert.engine import eyes
from lifecert.engine.base import FaceEngine
from lifecert.engine.liveness import FrameObs, LivenessParams, detect_blink, detect_blink_pixels, signals
from lifecert.services.verification import steps

ON = replace(LivenessParams(), eye_cut=0.10)  # the pixel rule switched on (whatever the shipped default)
SHALLOW = range(40, 66, 4)  # blink_7 frames (30 fps) around its first blink (~frames 50-53), every 4th: 7.5 fps
TALK_CALM = range(63, 79, 3)  # talking_head_a frames (25 fps) between two blinks, every 3rd: 8.3 fps

Frame = tuple[NDArray[np.uint8], NDArray[np.float32]]


def _portrait(img: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """A 480x640 portrait camera frame: scaled to 640 high, centre-cropped to 480 wide."""
    h, w = img.shape[:2]
    k = 640 / h
    big = cv2.resize(img, (round(w * k), 640), interpolation=cv2.INTER_AREA)
    x0 = (big.shape[1] - 480) // 2
    return np.ascontiguousarray(big[:, x0 : x0 + 480])


def _landmarked(engine: FaceEngine, img: NDArray[np.uint8]) -> Frame:
    faces = engine.detect(img)
    assert faces and faces[0].landmarks68 is not None
    return img, np.asarray(faces[0].landmarks68, np.float32)


@pytest.fixture(scope="module")
def shallow(faces_dir: Path, face_engine: FaceEngine) -> list[Frame]:
    cap = cv2.VideoCapture(str(faces_dir / "video/blink_7_times_1080p.mp4"))
    frames: dict[int, NDArray[np.uint8]] = {}
    for i in range(max(SHALLOW) + 1):
        ok, img = cap.read()
        assert ok
        if i in SHALLOW:
            frames[i] = _portrait(np.asarray(img, np.uint8))
    cap.release()
    return [_landmarked(face_engine, frames[i]) for i in SHALLOW]


@pytest.fixture(scope="module")
def talking(video: list[NDArray[np.uint8]], face_engine: FaceEngine) -> list[Frame]:
    return [_landmarked(face_engine, np.asarray(video[i], np.uint8)) for i in TALK_CALM]


def _obs(frames: list[Frame], start: int = 10_000, step: int = 133) -> list[FrameObs]:
    return [FrameObs(start + k * step, lm, None, 1, eyes.eye_patches(img, lm)) for k, (img, lm) in enumerate(frames)]


def test_given_a_real_frame_when_patched_then_two_normalised_int8_patches_that_round_trip(
    talking: list[Frame],
) -> None:
    img, lm = talking[0]
    p = eyes.eye_patches(img, lm)
    assert p is not None and p.shape == (2, eyes.EYE_PATCH_H, eyes.EYE_PATCH_W) and p.dtype == np.int8
    z = p.reshape(2, -1).astype(np.float64) / eyes.EYE_PATCH_SCALE
    assert np.abs(z.mean(axis=1)).max() < 0.1 and np.abs(z.std(axis=1) - 1).max() < 0.1
    assert np.array_equal(eyes.decode(eyes.encode(p)), p)
    with pytest.raises(ValueError):
        eyes.decode(eyes.encode(p)[:-8])


def test_given_the_same_eyes_moved_rotated_scaled_and_dimmed_when_compared_then_unchanged_but_a_blink_is_not(
    talking: list[Frame], shallow: list[Frame]
) -> None:
    img, lm = talking[0]
    m = cv2.getRotationMatrix2D((256.0, 256.0), 4.0, 0.9)
    m[:, 2] += (15.0, -10.0)
    moved = cv2.warpAffine((img * 0.6).astype(np.uint8), m, (512, 512), borderMode=cv2.BORDER_REPLICATE)
    lm2 = (np.c_[lm, np.ones(68)] @ m.T).astype(np.float32)
    a, b = eyes.eye_patches(img, lm), eyes.eye_patches(np.asarray(moved, np.uint8), lm2)
    assert a is not None and b is not None
    assert eyes.change(a, b).max() < 0.05
    # The shallow blinker: open (first sampled frame) vs closed (frame 52) differs in both eyes.
    (oi, ol), (ci, cl) = shallow[0], shallow[3]
    po, pc = eyes.eye_patches(oi, ol), eyes.eye_patches(ci, cl)
    assert po is not None and pc is not None
    assert eyes.both_changed(po, pc) > 0.12


def test_given_the_shallow_blinker_at_8fps_when_judged_then_the_pixels_see_the_blink_the_ear_misses(
    shallow: list[Frame],
) -> None:
    obs = _obs(shallow)
    sig = signals(obs)
    base = steps.baseline_of(obs[:2] + obs[-2:])  # open-eye frames on both sides of the blink
    idx = np.arange(len(obs))
    assert not detect_blink(sig, idx, base, ON)[0]  # the landmarks' EAR barely moves
    seen, i, dip, cut = detect_blink_pixels(sig, idx, base, ON)
    assert seen and i is not None and 40 + 4 * i in range(48, 57) and dip is not None and dip > cut
    j = steps.judge_challenge("blink", obs, base, 10_000 - steps.MIN_REACTION_MS - 50, ON)
    assert j.seen and j.as_dict("blink", 0)["signal"] == "eye_pixels"
    assert not steps.judge_challenge("blink", obs, base, 10_000, LivenessParams(eye_cut=None)).seen


def test_given_the_blink_already_under_way_at_the_prompt_when_judged_then_not_counted(shallow: list[Frame]) -> None:
    obs = _obs(shallow)
    base = steps.baseline_of(obs[:2] + obs[-2:])
    # Prompt so late that the first counted frame is the closed one: no open-eye frame before it to dip from.
    closed_t = obs[3].t_ms
    assert not steps.judge_challenge("blink", obs, base, closed_t - steps.MIN_REACTION_MS, ON).seen


def test_given_a_talking_face_played_back_and_forth_when_judged_then_no_pixel_blink(talking: list[Frame]) -> None:
    # The paced tests' phone plays a calm run back and forth: a -> b -> a patterns on a talking face.
    frames = talking + talking[-2::-1] + talking[1:]
    obs = _obs(frames)
    base = steps.baseline_of(obs[:6])
    sig = signals(obs)
    assert not detect_blink_pixels(sig, np.arange(len(obs)), base, ON)[0]
    assert not steps.judge_challenge("blink", obs, base, 9_000, ON).seen


def test_given_a_photo_shaken_with_camera_noise_when_judged_then_no_pixel_blink(talking: list[Frame]) -> None:
    img, lm = talking[0]
    rng = np.random.default_rng(3)
    frames: list[Frame] = []
    for _ in range(16):  # a held print: small shifts and rotation every frame, sensor noise
        m = cv2.getRotationMatrix2D((256.0, 256.0), float(rng.uniform(-2, 2)), float(rng.uniform(0.98, 1.02)))
        m[:, 2] += rng.uniform(-4, 4, 2)
        shot = cv2.warpAffine(img, m, (512, 512), borderMode=cv2.BORDER_REPLICATE).astype(np.float64)
        shot = np.clip(shot + rng.normal(0, 4, shot.shape), 0, 255).astype(np.uint8)
        frames.append((shot, (np.c_[lm, np.ones(68)] @ m.T).astype(np.float32)))
    obs = _obs(frames)
    base = steps.baseline_of(obs[:6])
    assert not detect_blink_pixels(signals(obs), np.arange(len(obs)), base, ON)[0]


def test_given_obs_with_eye_patches_when_round_tripped_through_json_then_kept_and_old_json_has_none(
    talking: list[Frame],
) -> None:
    img, lm = talking[0]
    p = eyes.eye_patches(img, lm)
    o = steps.Obs(5, (512, 512), lm, (1.0, 2.0, 3.0, 4.0), 1, 88.5, 120.25, 0.97, p)
    d = o.to_json()
    back = steps.Obs.from_json(d)
    assert back.eyes is not None and p is not None and np.array_equal(back.eyes, p)
    assert back.frame_obs(100).eyes is back.eyes
    old = {k: v for k, v in d.items() if k != "eye"}
    assert steps.Obs.from_json(old).eyes is None


def _cached_row(frames: list[Frame], with_eyes: bool) -> dict[str, Any]:
    per = []
    for k, (img, lm) in enumerate(frames):
        f: dict[str, Any] = {"t": k * 125, "lm": lm.tolist(), "box": [0.0, 0.0, 10.0, 10.0], "nf": 1, "pad": 0.9,
                             "br": 120.0}
        if with_eyes:
            p = eyes.eye_patches(img, lm)
            f["eye"] = None if p is None else eyes.encode(p)
        per.append(f)
    return {"source": "video_acted", "size": [480, 640], "frames": per, "challenges": ["blink"]}


def test_given_cached_rows_with_and_without_eyes_when_read_by_pad_eval_then_only_new_rows_carry_them(
    shallow: list[Frame],
) -> None:
    old, new = _cached_row(shallow, False), _cached_row(shallow, True)
    assert all(o.eyes is None for o in pad_eval.frame_obs(old)) and all(o.eyes is None for o in pad_eval.obs_of(old))
    assert all(o.eyes is not None for o in pad_eval.frame_obs(new))
    assert all(o.eyes is not None for o in pad_eval.obs_of(new))


def test_given_the_shallow_blink_when_the_reference_or_the_pair_is_refused_then_no_dip(shallow: list[Frame]) -> None:
    pats = [eyes.eye_patches(img, lm) for img, lm in shallow]
    t = [k * 133 for k in range(len(pats))]
    assert eyes.closure_dip(pats, t, cut=0.10, back=0.15, span_ms=750) is not None
    assert eyes.closure_dip(pats, t, cut=0.10, back=0.15, span_ms=750, ref_ok=[False] * len(pats)) is None
    assert eyes.closure_dip(pats, t, cut=0.10, back=0.15, span_ms=750, pair_ok=lambda a, b: False) is None
    assert eyes.closure_dip(pats, t, cut=0.10, back=0.15, span_ms=200) is None  # a dip needs three frames


def test_given_a_head_that_turned_between_the_frames_when_judged_then_the_pixel_dip_is_refused(
    shallow: list[Frame],
) -> None:
    obs = _obs(shallow)
    base = steps.baseline_of(obs[:2] + obs[-2:])
    turned = [replace(o, landmarks=None if o.landmarks is None else o.landmarks.copy()) for o in obs]
    lm = turned[3].landmarks
    assert lm is not None
    lm[27:36, 0] += 0.1 * float(np.linalg.norm(lm[16] - lm[0]))  # the nose moved: yaw_ratio changed
    assert detect_blink_pixels(signals(obs), np.arange(len(obs)), base, ON)[0]
    assert not detect_blink_pixels(signals(turned), np.arange(len(obs)), base, ON)[0]
