"""A face far from the camera (a pensioner holding the phone at arm's length) through the real frame engine:
the verification service's detector runs on a 320 px copy and misses small faces; ``frames.observe`` then
looks at the middle of the frame at full resolution, so the page says "请靠近一点" (MOVE_CLOSER) instead of
"没有看到您的脸" (NO_FACE), and a face that is small but large enough (MIN_FACE_FRACTION) passes."""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

from lifecert.config import QualitySettings
from lifecert.engine.base import FaceEngine
from lifecert.engine.liveness import FrameObs
from lifecert.services.verification import frames as fa
from lifecert.services.verification import steps

PORTRAIT = (480, 640)  # (w, h): the page's frame on a phone held upright


def _far(video_frame: NDArray[np.uint8], engine: FaceEngine, box_frac: float,
         at: tuple[int, int] | None = None) -> tuple[NDArray[np.uint8], NDArray[np.float32]]:
    """``video_frame`` shrunk so its face box is ``box_frac`` of a portrait frame's width, its top-left at
    ``at`` (default: centred), the rest its border stretched; and where its 68 landmarks should land."""
    face = engine.detect(video_frame)[0]
    assert face.landmarks68 is not None
    w, h = PORTRAIT
    k = box_frac * w / face.width
    small = cv2.resize(video_frame, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
    sh, sw = small.shape[:2]
    x0, y0 = at if at is not None else ((w - sw) // 2, (h - sh) // 2)
    frame = cv2.copyMakeBorder(small, y0, h - sh - y0, x0, w - sw - x0, cv2.BORDER_REPLICATE)
    return np.ascontiguousarray(frame), (face.landmarks68 * k + np.array([x0, y0], np.float32)).astype(np.float32)


def _chunk(frames: list[NDArray[np.uint8]], engine: FaceEngine) -> tuple[list[fa.FrameInfo], int]:
    infos = [fa.FrameInfo(i, 125 * i, f, (f.shape[1], f.shape[0]), FrameObs(125 * i, None))
             for i, f in enumerate(frames)]
    return infos, fa.observe(engine, infos, eyes=False)


def _obs(infos: list[fa.FrameInfo]) -> list[steps.Obs]:
    return [steps.Obs(t_ms=f.t_ms, size=f.size, landmarks=f.obs.landmarks,
                      box=None if f.face is None else tuple(float(v) for v in f.face.box),  # type: ignore[arg-type]
                      num_faces=f.obs.num_faces, sharpness=f.sharpness,
                      brightness=f.brightness if f.obs.has_face else f.frame_brightness) for f in infos]


def test_given_a_face_at_arms_length_when_observed_then_found_where_it_is_and_asked_to_come_closer(
    frame_engine: FaceEngine, video: list[NDArray[np.uint8]]
) -> None:
    src = [video[i] for i in range(0, 24, 3)]
    placed = [_far(f, frame_engine, 0.13) for f in src]
    assert not any(frame_engine.detect(f) for f, _ in placed), "the scenario: the 320 px copy shows no face"
    infos, runs = _chunk([f for f, _ in placed], frame_engine)
    assert all(i.face is not None for i in infos)
    for info, (_, expected) in zip(infos, placed, strict=True):
        lm = info.obs.landmarks
        assert lm is not None
        err = float(np.linalg.norm(lm - expected, axis=1).mean())
        assert err < 0.08 * info.face.width, err  # in frame pixels, where the face was put (not the crop's)
    g = QualitySettings()
    assert {o.issue(g) for o in _obs(infos)} == {fa.ErrorCode.FACE_TOO_SMALL}
    assert steps.hints(_obs(infos), g) == ["MOVE_CLOSER"]
    # detected on frames 0 and 4 (tracked between), each time the plain detector and the far look
    assert runs == 2 * len(range(0, len(infos), fa.REDETECT_EVERY)), runs


def test_given_a_small_face_above_the_minimum_when_observed_then_it_passes_without_a_hint(
    frame_engine: FaceEngine, video: list[NDArray[np.uint8]]
) -> None:
    frame, _ = _far(video[0], frame_engine, 0.19)
    assert not frame_engine.detect(frame)
    infos, _ = _chunk([frame] * 4, frame_engine)
    g = QualitySettings()
    assert all(o.issue(g) is None for o in _obs(infos))
    assert steps.hints(_obs(infos), g) == []


def test_given_no_face_when_observed_then_no_face_and_one_far_look_per_chunk(frame_engine: FaceEngine) -> None:
    w, h = PORTRAIT
    infos, runs = _chunk([np.full((h, w, 3), 128, np.uint8)] * 8, frame_engine)
    assert all(i.face is None for i in infos)
    assert steps.hints(_obs(infos), QualitySettings()) == ["NO_FACE"]
    assert runs == 8 + 1


def test_given_a_far_face_off_the_middle_when_observed_then_not_looked_for_there(
    frame_engine: FaceEngine, video: list[NDArray[np.uint8]]
) -> None:
    """Only the middle square is searched at full resolution: a small face in a corner stays unseen
    (the page's oval is in the middle; NO_FACE asks the user to face the camera)."""
    frame, _ = _far(video[0], frame_engine, 0.13, at=(0, 0))
    infos, _ = _chunk([frame], frame_engine)
    assert infos[0].face is None


def test_given_a_frame_the_detector_sees_whole_when_far_is_asked_then_nothing_more_is_run(
    frame_engine: FaceEngine,
) -> None:
    small = np.full((240, 320, 3), 128, np.uint8)  # not shrunk for detection: the plain run saw it all
    assert not fa.far_applies(frame_engine, small)
    assert fa.detect_far(frame_engine, small) == []
    _, runs = _chunk([small] * 3, frame_engine)
    assert runs == 3
