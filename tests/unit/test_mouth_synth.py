"""benchmarks/attacks.open_mouth / MouthAct: the synthetic mouth opening of pad_eval's session-11 genuine sessions
(real frame through the engine; the acting schedule on plain data), and pad_eval's s11 plan and cache keys."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from benchmarks import attacks as atk
from benchmarks import pad_eval as pe
from lifecert.engine import geometry
from lifecert.engine.base import FaceEngine
from lifecert.engine.liveness import LivenessParams


def _mar(engine: FaceEngine, img: NDArray[np.uint8]) -> float:
    faces = engine.detect(img)
    assert faces and faces[0].landmarks68 is not None
    return geometry.mouth_aspect_ratio(np.asarray(faces[0].landmarks68, np.float32))


def test_given_no_gap_when_rendered_then_the_frame_itself_comes_back(frontal68: NDArray[np.float32]) -> None:
    img = np.zeros((512, 512, 3), np.uint8)
    assert atk.open_mouth(img, frontal68, 0.0) is img


def test_given_a_closed_mouth_when_opened_then_the_engine_reads_it_over_the_open_mouth_threshold(
        frontal_frame: NDArray[np.uint8], face_engine: FaceEngine, frontal68: NDArray[np.float32]) -> None:
    """The real frame's mouth is closed (MAR under the step's threshold); opened by the middle of MOUTH_GAP the
    engine's inner-lip MAR is over max(mouth_open_abs, baseline + mouth_open_delta) with the frame as baseline."""
    p = LivenessParams()
    before = _mar(face_engine, frontal_frame)
    thr = max(p.mouth_open_abs, before + p.mouth_open_delta)
    assert before < thr
    after = _mar(face_engine, atk.open_mouth(frontal_frame, frontal68, sum(atk.MOUTH_GAP) / 2))
    assert after > thr


def test_given_an_opening_when_rendered_then_nothing_above_the_lips_moves_and_the_gap_is_dark(
        frontal68: NDArray[np.float32]) -> None:
    """On a plain light grey picture with the real face's landmarks: above the inner lips every pixel is as it
    was; the middle of the opened gap is the dark inner mouth; the gap closes at the mouth corners."""
    img = np.full((512, 512, 3), 180, np.uint8)
    img[::8] = 120  # horizontal lines, to see rows move
    out = atk.open_mouth(img, frontal68, 0.7)
    top = int(frontal68[60:68, 1].min()) - 3
    assert np.array_equal(out[:top], img[:top])
    inner_w = float(np.linalg.norm(frontal68[64] - frontal68[60]))
    cx = round(float(frontal68[62, 0] + frontal68[66, 0]) / 2)
    line = float(frontal68[62, 1] + frontal68[66, 1]) / 2
    assert out[round(line + 0.35 * inner_w), cx].max() < 80  # the middle of a 0.7 x width gap
    corner = np.round(frontal68[60]).astype(int)
    assert out[corner[1] + 2, corner[0] - 3].min() >= 120  # beyond the corner: no inner mouth
    chin = round(float(frontal68[8, 1]))
    assert not np.array_equal(out[chin - 10 : chin + 10, cx], img[chin - 10 : chin + 10, cx])  # the jaw moved


def _index(mar: float, n: int = 200) -> atk.FootageIndex:
    box = np.array([100, 100, 300, 340], np.float32)
    m = np.full(n, mar)
    return atk.FootageIndex([box] * n, np.full(n, 0.3), m, 25.0)


MOUTH = atk.MouthAct(gap=0.6, wider=0.78, ramp_ms=250.0, hold_ms=800.0)


def test_given_footage_without_an_open_mouth_when_prompted_then_the_synthetic_opening_ramps_holds_and_closes() -> None:
    actor = atk.Actor(_index(0.05), ["open_mouth"], np.random.default_rng(1), delay_ms=1000, mouth=MOUTH)
    actor.prompt(2000, 8.0)
    assert actor.shot(2900).mouth_gap == 0.0  # before the reaction
    assert actor.shot(3100).mouth_gap < MOUTH.gap  # opening
    assert actor.shot(3600).mouth_gap == MOUTH.gap  # held
    assert actor.shot(3000 + 2 * 250 + 800 + 10).mouth_gap == 0.0  # closed again


def test_given_footage_with_mouth_frames_when_prompted_then_the_clip_is_cued_and_nothing_is_synthesised() -> None:
    ix = _index(0.05)
    ix.mar[[40, 90]] = 0.5  # two speech openings
    actor = atk.Actor(ix, ["open_mouth"], np.random.default_rng(1), delay_ms=1000, mouth=MOUTH)
    actor.prompt(2000, 8.0)
    assert all(actor.shot(t).mouth_gap == 0.0 for t in range(2000, 6000, 125))


def test_given_open_wider_when_heard_then_the_mouth_opens_again_wider() -> None:
    actor = atk.Actor(_index(0.05), ["open_mouth"], np.random.default_rng(1), delay_ms=1000, mouth=MOUTH)
    actor.prompt(2000, 8.0)
    start = actor.hint(0, 8000, "OPEN_WIDER")
    assert start == 9000
    assert actor.shot(9600).mouth_gap == MOUTH.wider


def test_given_the_s11_draw_when_planned_then_acted_sessions_draw_it_under_their_own_cache_version(
        tmp_path: Path) -> None:
    faces = tmp_path / "faces"
    for d in ("nuaa/real", "nuaa/attack_print", "apfol/real", "apfol/attack_replay"):
        (faces / "spoof" / d).mkdir(parents=True)
    (faces / "photos" / "a").mkdir(parents=True)
    (faces / "photos" / "a" / "1.jpg").write_bytes(b"")  # the print / still pool: planned, never read here
    old = {sp.key: sp for sp in pe.plan(faces, 4, 4, 12, 8)}
    new = {sp.key: sp for sp in pe.plan(faces, 4, 4, 12, 8, draw="s11", edited=2)}
    edited = sorted(k for k in new if k.startswith("cued_edited/"))
    assert edited == ["cued_edited/blink_7_times_1080p/2", "cued_edited/blink_7_times_1080p/3"]
    assert new[edited[0]].edited and new[edited[0]].kind == "cued_replay"
    for key in ("video_acted/talking_head_a/0", "cued_replay/blink_7_times_1080p/2"):
        assert pe.cache_path(tmp_path, old[key], 12) != pe.cache_path(tmp_path, new[key], 12)
    assert pe.cache_path(tmp_path, new["video_acted/talking_head_a/0"], 12).name.endswith("-g7.json")
    assert pe.cache_path(tmp_path, new["print/0"], 12) == pe.cache_path(tmp_path, old["print/0"], 12)


def _row(name: str, split: str, pad: float, active_reject: bool = False, source: str = "") -> dict[str, object]:
    kind = "cued_replay" if name.startswith("cued") else "bona_fide"
    return {"name": name, "kind": kind, "source": source or name.split("/")[0], "split": split,
            "challenges": ["open_mouth", "turn_left"], "pad": {"p25": pad, "median": pad},
            "active_reject": active_reject, "reject_reason": "missed open_mouth" if active_reject else None,
            "decision": "RETRY" if active_reject else "CONFIRMED"}


def test_given_s11_sessions_when_summarised_then_each_half_is_judged_by_the_other_halfs_threshold() -> None:
    """threshold_A (chosen on half A) judges half B and threshold_B judges half A; the floor set adds the main
    run's real crops; a cued replay counts as an APCER error only when neither PAD nor the active checks stop it."""
    rows = [_row("video_acted/talking_head_a/0", "A", 0.65), _row("video_acted/talking_head_a/1", "B", 0.75),
            _row("cued_replay/blink_7_times_1080p/2", "A", 0.9, active_reject=True),
            _row("cued_replay/talking_head_a/0", "A", 0.9)]
    old = [_row("nuaa/real/1", "A", 0.1, source="crops")]
    res = pe.s11_summary(rows, old, {"fusion": "p25", "threshold_A": 0.7, "threshold_B": 0.6}, (0.5, "median"))
    g = res["groups"]
    assert g["video_acted"]["pad"]["errors"] == 0  # A's 0.65 over B's 0.6, B's 0.75 over A's 0.7 (not swapped)
    assert g["video_acted"]["pad"]["by_clip"]["talking_head_a"]["n"] == 2
    assert g["video_acted"]["pad_shipped"]["errors"] == 0
    assert g["cued_replay"]["both"]["errors"] == 1 and g["cued_replay"]["active"]["errors"] == 1
    assert g["floor_set"]["n"] == 3 and g["floor_set"]["pad"]["errors"] == 1  # the crop (0.1)
    assert g["genuine"]["n"] == 2
