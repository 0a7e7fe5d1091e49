"""Landmark tracking between detections in a paced chunk (services/verification/frames.py), on plain data:
the consistency rule, and which frames run the detector."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from lifecert.engine.base import FaceEngine
from lifecert.engine.geometry import five_from_68
from lifecert.engine.liveness import FrameObs
from lifecert.engine.types import Face, ImageBGR
from lifecert.services.verification import frames as fa


def _lm(cx: float = 200.0, cy: float = 220.0, width: float = 160.0, seed: int = 0) -> NDArray[np.float32]:
    """A face-like 68-point layout: jaw ends 0 and 16 ``width`` apart, the rest scattered inside."""
    rng = np.random.default_rng(seed)
    lm = np.column_stack([cx + rng.uniform(-0.45, 0.45, 68) * width, cy + rng.uniform(-0.5, 0.5, 68) * width])
    lm[0], lm[16] = (cx - width / 2, cy), (cx + width / 2, cy)
    return lm.astype(np.float32)


def test_given_the_same_face_moved_a_little_when_checked_then_consistent() -> None:
    a = _lm()
    assert fa.track_consistent(a, a + np.float32(0.1 * 160))  # 10 % of the width, diagonal
    assert fa.track_consistent(a, a)


def test_given_a_mouth_opening_when_checked_then_consistent() -> None:
    a = _lm()
    b = a.copy()
    b[48:68, 1] += 0.15 * 160  # non-rigid points (mouth) move a lot; rigid ones stay
    assert fa.track_consistent(a, b)


@pytest.mark.parametrize(
    "change",
    [
        lambda a: a + np.float32(0.3 * 160),  # jumped 0.42 widths
        lambda a: (a - a.mean(axis=0)) * np.float32(1.3) + a.mean(axis=0),  # 30 % larger
        lambda a: _lm(seed=1),  # another shape in the same place (a fit on background)
    ],
)
def test_given_a_jump_a_scale_change_or_another_shape_when_checked_then_not_consistent(change) -> None:  # type: ignore[no-untyped-def]
    a = _lm()
    assert not fa.track_consistent(a, change(a))


class Scripted(FaceEngine):
    """Plays back a face per frame (by the frame's grey value) and records every call."""

    def __init__(self, faces: dict[int, NDArray[np.float32]], jump_at: int | None = None) -> None:
        super().__init__(320)
        self.faces, self.jump_at = faces, jump_at
        self.calls: list[tuple[str, int]] = []

    def _face(self, k: int, box: NDArray[np.float32] | None = None) -> Face:
        lm = self.faces[k]
        b = box if box is not None else np.array([*lm.min(axis=0), *lm.max(axis=0)], np.float32)
        return Face(b, 1.0, five_from_68(lm), lm)

    def detect(self, image: ImageBGR) -> list[Face]:
        k = int(image[0, 0, 0])
        self.calls.append(("detect", k))
        return [self._face(k)] if k in self.faces else []

    def landmarks_at(self, image: ImageBGR, box: NDArray[np.float32]) -> Face | None:
        k = int(image[0, 0, 0])
        self.calls.append(("track", k))
        if k == self.jump_at:  # the fit lands somewhere else (fast motion)
            moved = self.faces[k] + np.float32(100)
            return Face(box, 0.0, five_from_68(moved), moved)
        if k not in self.faces:  # no face: the shape predictor still fits a shape, another one
            other = _lm(seed=9)
            return Face(box, 0.0, five_from_68(other), other)
        return self._face(k, box)

    def align(self, image: ImageBGR, face: Face) -> ImageBGR:  # pragma: no cover - not used
        raise NotImplementedError

    def embed_aligned(self, crops: list[ImageBGR]) -> NDArray[np.float32]:  # pragma: no cover - not used
        raise NotImplementedError


def _chunk(n: int) -> list[fa.FrameInfo]:
    """``n`` tiny frames whose grey value is their index (the scripted engine's key)."""
    return [
        fa.FrameInfo(k, k * 125, np.full((8, 8, 3), k, np.uint8), (8, 8), FrameObs(k * 125, None)) for k in range(n)
    ]


def test_given_a_steady_face_when_a_chunk_is_observed_then_detected_every_fourth_frame_and_tracked_between() -> None:
    eng = Scripted({k: _lm(cx=200 + 2 * k) for k in range(8)})
    infos = _chunk(8)
    assert fa.observe(eng, infos) == 2
    assert [c for c, _ in eng.calls] == ["detect", "track", "track", "track", "detect", "track", "track", "track"]
    assert all(f.obs.landmarks is not None and f.obs.num_faces == 1 for f in infos)
    assert np.allclose(infos[5].obs.landmarks, eng.faces[5])


def test_given_a_fit_that_jumps_when_tracking_then_that_frame_is_detected_instead() -> None:
    eng = Scripted({k: _lm(cx=200 + 2 * k) for k in range(6)}, jump_at=2)
    infos = _chunk(6)
    assert fa.observe(eng, infos) == 2
    assert eng.calls[:4] == [("detect", 0), ("track", 1), ("track", 2), ("detect", 2)]
    assert np.allclose(infos[2].obs.landmarks, eng.faces[2])


def test_given_the_face_gone_when_tracking_then_the_shape_fitted_on_background_is_refused_and_no_face() -> None:
    eng = Scripted({0: _lm(), 1: _lm(cx=202)})  # frames 2.. have no face: the fit returns another shape
    infos = _chunk(4)
    fa.observe(eng, infos)
    assert [f.obs.landmarks is not None for f in infos] == [True, True, False, False]
    assert ("detect", 2) in eng.calls


def test_given_redetect_every_one_when_observed_then_every_frame_detected() -> None:
    eng = Scripted({k: _lm() for k in range(5)})
    assert fa.observe(eng, _chunk(5), redetect_every=1) == 5
    assert {c for c, _ in eng.calls} == {"detect"}
