"""Landmark tracking between detections on real frames through the real engine: the talking-head video
at ~8 fps in 8-frame chunks (as the page sends them), tracked (HOG on the first frame of a chunk and every
REDETECT_EVERY-th) against detected on every frame."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from lifecert.engine import geometry
from lifecert.engine.base import FaceEngine
from lifecert.engine.liveness import FrameObs
from lifecert.services.verification import frames as fa
from tests.paced_client import STEP


def _observe(engine: FaceEngine, frames: list[NDArray[np.uint8]], every: int) -> tuple[list[fa.FrameInfo], int]:
    out: list[fa.FrameInfo] = []
    detections = 0
    for c in range(0, len(frames), 8):
        infos = [
            fa.FrameInfo(i, i * 125, frames[i], (frames[i].shape[1], frames[i].shape[0]), FrameObs(i * 125, None))
            for i in range(c, min(c + 8, len(frames)))
        ]
        detections += fa.observe(engine, infos, every)
        out += infos
    return out, detections


def test_given_real_frames_when_tracked_between_detections_then_landmarks_and_eye_mouth_signals_agree(
    frame_engine: FaceEngine, video: list[NDArray[np.uint8]]
) -> None:
    frames = [video[i] for i in range(0, len(video), STEP)]
    detected, n_all = _observe(frame_engine, frames, every=1)
    tracked, n_tracked = _observe(frame_engine, frames, every=fa.REDETECT_EVERY)
    assert n_all == len(frames)
    assert n_tracked <= 0.4 * len(frames), n_tracked  # the detector ran on few frames
    err, d_ear, d_mar = [], [], []
    for a, b in zip(detected, tracked, strict=True):
        assert (a.obs.landmarks is None) == (b.obs.landmarks is None), a.index
        if a.obs.landmarks is None or b.obs.landmarks is None:
            continue
        w = float(np.linalg.norm(a.obs.landmarks[16] - a.obs.landmarks[0]))
        err.append(float(np.linalg.norm(a.obs.landmarks - b.obs.landmarks, axis=1).mean()) / w)
        d_ear.append(abs(geometry.eye_aspect_ratio(a.obs.landmarks) - geometry.eye_aspect_ratio(b.obs.landmarks)))
        d_mar.append(abs(geometry.mouth_aspect_ratio(a.obs.landmarks) - geometry.mouth_aspect_ratio(b.obs.landmarks)))
    # measured 2026-11-30: landmark error p95 0.6 % of the face width; EAR max 0.026, MAR max 0.043
    # (blinks here reach EAR 0.16 against an open-eye 0.40; mouth openings MAR > 0.4)
    assert len(err) >= 0.9 * len(frames)
    assert float(np.percentile(err, 95)) < 0.02 and max(d_ear) < 0.06 and max(d_mar) < 0.08
    ears = [geometry.eye_aspect_ratio(f.obs.landmarks) for f in tracked if f.obs.landmarks is not None]
    assert min(ears) < 0.6 * float(np.median(ears))  # the blink is still seen in the tracked frames


def test_given_bgr_or_rgb_pixels_when_the_68_point_predictor_runs_then_the_same_points(
    frame_engine: FaceEngine, video: list[NDArray[np.uint8]]
) -> None:
    # The dlib engine fits the 68 points on the BGR frame without converting it (the predictor reads the
    # channels' mean intensity); this pins that the order of the channels does not change a single point.
    import dlib

    sp68 = frame_engine._sp68  # type: ignore[attr-defined]
    for f in video[0:120:20]:
        faces = frame_engine.detect(f)
        assert faces and faces[0].landmarks68 is not None
        x1, y1, x2, y2 = (int(v) for v in faces[0].box)
        rgb = sp68(np.ascontiguousarray(f[:, :, ::-1]), dlib.rectangle(x1, y1, x2, y2))
        points = np.array([[p.x, p.y] for p in rgb.parts()], dtype=np.float32)
        assert np.array_equal(points, faces[0].landmarks68)
