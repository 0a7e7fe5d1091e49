"""The jaw test (lifecert/engine/jaw.py) on REAL mouth openings: Yale's "surprised" photo of each person against
their own neutral ones, landmarks by the verification service's frame engine."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from benchmarks.jaw_eval import Opening, still_check, yale_openings
from lifecert.engine import geometry, jaw
from lifecert.engine.base import FaceEngine
from lifecert.engine.liveness import FrameObs

OPEN_MAR = 0.30  # the open_mouth step's absolute threshold (LivenessParams.mouth_open_abs)


def _frame(t: int, lm: NDArray[np.float32]) -> FrameObs:
    return FrameObs(t, lm, num_faces=1)


@pytest.fixture(scope="module")
def openings(faces_dir: Path, frame_engine: FaceEngine) -> list[Opening]:
    """(subject, neutral landmarks, surprised landmarks) where the surprised mouth reads open (MAR >= 0.30)."""
    out = yale_openings(faces_dir, frame_engine)
    assert len(out) >= 10, [s for s, _, _ in out]  # 12 of 15 with the frame engine
    return out


def _check(rest: list[NDArray[np.float32]], opened: NDArray[np.float32]) -> jaw.JawCheck:
    return still_check(rest, [opened])


def test_given_real_people_opening_their_mouths_when_checked_then_every_chin_follows(
    openings: list[Opening],
) -> None:
    got = {s: _check(rest, opened) for s, rest, opened in openings}
    assert all(c.decided and c.rest_from == "step" for c in got.values()), got
    ratios = {s: round(c.ratio or 0.0, 2) for s, c in got.items()}
    assert not any(c.still_chin for c in got.values()), ratios
    assert min(ratios.values()) > jaw.JAW_CUT + 0.2, ratios  # 0.77 lowest with dlib's frame engine


def test_given_the_same_openings_over_a_chin_that_stays_put_when_checked_then_still_chin(
    openings: list[Opening],
) -> None:
    # A cut-out print: the lips (the attacker's, through the hole) part exactly as the real person's did, but the
    # printed jaw line stays where it was at rest relative to the printed nose.
    for s, rest, opened in openings:
        cut = opened.copy()
        scale = np.linalg.norm(opened[45] - opened[36]) / np.linalg.norm(rest[0][45] - rest[0][36])
        cut[3:14] = opened[33] + (rest[0][3:14] - rest[0][33]) * scale
        c = _check(rest, cut)
        assert c.decided and c.still_chin, (s, c)


def test_given_no_opened_frame_or_no_rest_frame_when_checked_then_it_abstains(
    openings: list[Opening],
) -> None:
    _s, rest, opened = openings[0]
    closed = [_frame(100 * i, lm) for i, lm in enumerate(rest)]
    assert not jaw.jaw_follows(closed, closed, 0.05, 0.0, 0.0, OPEN_MAR).decided
    only_open = [_frame(0, opened)]
    c = jaw.jaw_follows(only_open, only_open, 0.05, 0.0, 0.0, OPEN_MAR)
    assert not c.decided and not c.still_chin and c.rest == 0
    # the step without a rest frame borrows the session's frontal closed-mouth frames
    c = jaw.jaw_follows(only_open, closed + only_open, float(geometry.mouth_aspect_ratio(rest[0])),
                        geometry.yaw_ratio(rest[0]), geometry.pitch_ratio(rest[0]), OPEN_MAR)
    assert c.decided and c.rest_from == "session" and not c.still_chin, c


def test_given_a_paced_session_when_jaw_checked_then_only_the_revealed_open_mouth_steps_frames_count(
    openings: list[Opening],
) -> None:
    """paced.open_mouth_jaw (production's _finalize and benchmarks/cutout.py's rescore): the open_mouth step's frames
    are judged, not another step's: here the turn step holds the same opening over a chin held at rest."""
    from lifecert.engine.liveness import Baseline, LivenessParams
    from lifecert.services.verification.paced import open_mouth_jaw

    _s, rest, opened = openings[0]
    still = opened.copy()
    scale = np.linalg.norm(opened[45] - opened[36]) / np.linalg.norm(rest[0][45] - rest[0][36])
    still[3:14] = opened[33] + (rest[0][3:14] - rest[0][33]) * scale
    steps_ = [{"kind": "settle", "challenge": None, "state": "seen"},
              {"kind": "challenge", "challenge": "turn_left", "state": "seen"},
              {"kind": "challenge", "challenge": "open_mouth", "state": "seen"}]
    frames = [(1, lm) for lm in rest] + [(1, still)] + [(2, lm) for lm in rest] + [(2, opened)]
    fobs = [_frame(100 * i, lm) for i, (_k, lm) in enumerate(frames)]
    base_mar = float(np.median([geometry.mouth_aspect_ratio(lm) for lm in rest]))
    base = Baseline(0.3, base_mar, 0.0, 0.0, 5)
    got = open_mouth_jaw(steps_, [k for k, _ in frames], fobs, base, LivenessParams())
    assert got is not None and got.decided and not got.still_chin and got.rest_from == "step", got
    swapped = [steps_[0], steps_[2] | {"challenge": "open_mouth"}, steps_[1] | {"challenge": "turn_left"}]
    got = open_mouth_jaw(swapped, [k for k, _ in frames], fobs, base, LivenessParams())
    assert got is not None and got.still_chin, got  # the step holding the still chin is now open_mouth
    pending = [*steps_[:2], steps_[2] | {"state": "pending"}]
    assert open_mouth_jaw(pending, [k for k, _ in frames], fobs, base, LivenessParams()) is None
