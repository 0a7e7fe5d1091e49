"""benchmarks/replay_sweep.py: the held-close screen picture, the run order and the per-variant rates (plain data)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
import pytest

from benchmarks import attacks as atk
from benchmarks import replay_sweep as rs


def _clip() -> np.ndarray:
    """A 200x100 (w x h) 'clip': a bright square 'face' in the middle of a mid-grey frame with a dark left edge."""
    img = np.full((100, 200, 3), 120, np.uint8)
    img[:, :10] = 20
    img[30:70, 80:120] = 240
    return img


def test_given_a_zoom_under_one_when_the_screen_picture_is_made_then_the_clip_is_centred_at_that_scale() -> None:
    pic = rs.oval_picture(_clip(), (300, 600), 0.25)
    assert pic.shape == (600, 300, 3)
    # cover scale max(300/200, 600/100) = 6, x 0.25 = 1.5: the clip is 300 x 150, centred vertically (y 225-375)
    face = pic[:, :, 1] > 200
    ys, xs = np.nonzero(face)
    assert abs(xs.mean() - 150) < 2 and abs(ys.mean() - 300) < 2
    assert xs.max() - xs.min() == pytest.approx(60, abs=3)  # the 40 px square x 1.5
    assert np.all(pic[5, 150] != 240)  # outside the clip: the fill, not the face


def test_given_a_zoom_of_one_or_more_when_the_screen_picture_is_made_then_it_is_attacks_genuine_frame() -> None:
    assert np.array_equal(rs.oval_picture(_clip(), (300, 600), 1.3), atk.genuine_frame(_clip(), (300, 600), 1.3))


def test_given_a_budget_when_planned_then_every_variant_and_clip_gets_session_0_before_any_gets_session_1() -> None:
    jobs = rs.plan(3, ["default", "genuine"])
    assert len(jobs) == 3 * 2 * len(rs.pe.CLIPS)
    first = jobs[: 2 * len(rs.pe.CLIPS)]
    assert {n for _v, _c, n in first} == {0}
    assert {(v, c) for v, c, _n in first} == {(v, c) for v in ("default", "genuine") for c in rs.pe.CLIPS}


def _row(score: float | None, attack: bool) -> dict[str, Any]:
    return {"pad_attack": attack, "session_score": score, "face_width_median": 0.5, "cpu_s": 1.0,
            "cues": {"enclosure": 1.0, "moire": 2.0, "specular": None}}


def test_given_replays_when_a_cell_is_summarised_then_apcer_counts_the_ones_pad_lets_through() -> None:
    rows = [_row(0.9, False), _row(0.1, True), _row(None, True), _row(0.95, False)]
    c = rs.cell(rows, genuine=False)
    assert (c["errors"], c["n"], c["no_face"]) == (2, 4, 1)
    assert c["score_quantiles"]["median"] == pytest.approx(0.9)
    assert c["cue_medians"]["specular"] is None


def test_given_genuine_sessions_when_a_cell_is_summarised_then_bpcer_counts_the_ones_pad_refuses() -> None:
    c = rs.cell([_row(0.9, False), _row(0.1, True), _row(0.95, False)], genuine=True)
    assert (c["errors"], c["n"]) == (1, 3)
    lo, hi = c["ci95"]
    assert lo < 1 / 3 < hi


def test_every_variant_name_is_unique_and_genuine_rows_switch_nothing() -> None:
    assert len(rs.BY_NAME) == len(rs.VARIANTS)
    assert all(not v.switches and v.width is None for v in rs.VARIANTS if v.genuine)


def test_given_split_halves_when_statistics_are_checked_then_the_threshold_comes_from_even_genuine_sessions_only(
        ) -> None:
    clip = rs.pe.CLIPS[0]

    def r(number: int, scores: list[float]) -> dict[str, Any]:
        return {"number": number, "pad_scores": scores}

    rows: dict[tuple[str, str], list[dict[str, Any]]] = {
        ("genuine", clip): [r(0, [0.9, 0.9]), r(2, [0.8, 0.8]), r(1, [0.5, 0.5]), r(3, [0.95, 0.95])],
        ("clean", clip): [r(0, [0.1, 0.1]), r(1, [0.85, 0.85]), r(3, [0.7, 0.7])],
    }
    res = rs.statistic_check(defaultdict(list, rows))["median"]
    assert res["threshold_half_a"] == pytest.approx(0.8)  # not 0.5: session 1 is half B
    assert (res["half_b"]["genuine"]["errors"], res["half_b"]["genuine"]["n"]) == (1, 2)  # 0.5 refused
    assert (res["half_b"]["clean"]["errors"], res["half_b"]["clean"]["n"]) == (1, 2)  # 0.85 passes, 0.7 not


def test_given_cued_replays_when_rated_then_only_sessions_passing_both_pad_and_the_active_checks_pass() -> None:
    rows = [{"pad_attack": False, "active_pass": True}, {"pad_attack": True, "active_pass": True},
            {"pad_attack": False, "active_pass": False}, {"pad_attack": True, "active_pass": False}]
    c = rs.cued_rates(rows)
    assert (c["active_alone"]["errors"], c["active_alone"]["n"]) == (2, 4)
    assert (c["pad_and_active"]["errors"], c["pad_and_active"]["n"]) == (1, 4)


def test_cued_variants_act_and_are_attacks() -> None:
    cued = [v for v in rs.VARIANTS if v.cued]
    assert {v.name for v in cued} == {"cued_default", "cued_closer_default", "cued_closer_default_f25",
                                      "cued_closer_default_f35", "cued_closer_default_nets"}
    assert all(not v.genuine for v in cued)


def test_given_a_shift_when_the_screen_picture_is_made_then_the_sharp_clip_moves_with_the_fill() -> None:
    still = rs.oval_picture(_clip(), (300, 600), 0.25)
    moved = rs.oval_picture(_clip(), (300, 600), 0.25, shift=(0.1, -0.05))
    ys0, xs0 = np.nonzero(still[:, :, 1] > 200)
    ys1, xs1 = np.nonzero(moved[:, :, 1] > 200)
    assert xs1.mean() - xs0.mean() == pytest.approx(30, abs=1)  # 0.1 x 300
    assert ys1.mean() - ys0.mean() == pytest.approx(-30, abs=1)  # -0.05 x 600


def test_given_a_clip_wider_than_the_picture_when_shifted_then_the_picture_is_filled_edge_to_edge() -> None:
    pic = rs.oval_picture(_clip(), (300, 600), 0.9, shift=(0.2, 0.0))
    assert pic.shape == (600, 300, 3)
    assert np.any(pic[:, :, 1] > 200)  # the face is still in view


def test_smaller_face_rows_differ_from_their_oval_rows_only_by_the_face_band() -> None:
    pairs = {"closer_default_f25": "closer_default", "closer_clean_f35": "closer_clean",
             "cued_closer_default_f25": "cued_closer_default", "genuine_f25": "genuine_fill",
             "acted_genuine_f35": "acted_genuine"}
    for small, oval in pairs.items():
        a, b = rs.BY_NAME[small], rs.BY_NAME[oval]
        assert a.face in (rs.FACE_F25, rs.FACE_F35) and b.face is None
        assert (a.switches, a.width, a.camera, a.cued, a.genuine, a.acted, a.fill) == (
            b.switches, b.width, b.camera, b.cued, b.genuine, b.acted, b.fill)
    # the genuine controls of the smaller-face rows are made by the screens' picture function
    assert all(v.fill for v in rs.VARIANTS if v.genuine and v.face is not None)
    assert all(v.genuine for v in rs.VARIANTS if v.acted)


def test_given_a_face_band_when_drawn_then_the_same_uniform_draw_lands_at_the_same_place_in_the_band() -> None:
    sweep = object.__new__(rs.Sweep)  # draws() needs only the clip lengths of the worker
    sweep.worker = type("W", (), {"clips": {c: ([b""] * 50, None) for c in rs.pe.CLIPS}})()
    lo, hi = rs.pe.GENUINE_FACE_FRAC
    for k in range(5):
        oval = sweep.draws(rs.BY_NAME["closer_default"], rs.pe.CLIPS[0], k)
        small = sweep.draws(rs.BY_NAME["closer_default_f25"], rs.pe.CLIPS[0], k)
        u = (oval.face_target - lo) / (hi - lo)
        assert small.face_target == pytest.approx(rs.FACE_F25[0] + u * (rs.FACE_F25[1] - rs.FACE_F25[0]))
        assert (small.start, small.shift, small.width) == (oval.start, oval.shift, oval.width)


def test_given_genuine_acted_sessions_when_rated_then_a_session_is_refused_by_pad_or_by_the_active_checks() -> None:
    rows = [{"pad_attack": False, "active_pass": True, "reason": None, "steps": [["blink", True], ["nod", True]]},
            {"pad_attack": True, "active_pass": True, "reason": None, "steps": [["blink", True]]},
            {"pad_attack": False, "active_pass": False, "reason": None, "steps": [["turn_left", False]]},
            {"pad_attack": True, "active_pass": False, "reason": "NO_FACE", "steps": []}]
    a = rs.acted_rates(rows)
    assert (a["active_alone"]["errors"], a["active_alone"]["n"]) == (2, 4)
    assert (a["pad_and_active"]["errors"], a["pad_and_active"]["n"]) == (3, 4)
    assert a["retry_no_face"] == 1
    assert a["steps"] == {"blink": {"judged": 2, "missed": 0}, "nod": {"judged": 1, "missed": 0},
                          "turn_left": {"judged": 1, "missed": 1}}


class _Net:
    """A stand-in MiniFASNet: P(class) rows from a fixed real-class value per frame."""

    def __init__(self, name: str, real: list[float]) -> None:
        self.name, self.real = name, real

    def probabilities(self, frames: list[np.ndarray], boxes: list[Any]) -> np.ndarray:
        return np.array([[1 - r, r, 0.0] for r in self.real[: len(frames)]], np.float64)


def test_given_two_nets_when_recorded_then_the_score_is_the_models_and_each_nets_own_value_is_kept() -> None:
    spec = rs.pad_spec()
    model = rs.PadModel(nets=(_Net("pad_v2", [0.9, 0.2]), _Net("pad_v1se", [0.5, 0.6])),  # type: ignore[arg-type]
                        threshold=spec.threshold)
    frames = [np.zeros((8, 8, 3), np.uint8)] * 2
    boxes = [(0, 0, 4, 4)] * 2
    rec = rs.NetRecorder(model)
    assert np.allclose(rec.score_many(frames, boxes), model.score_many(frames, boxes))
    assert rec.per_net == {"pad_v2": [0.9, 0.2], "pad_v1se": [0.5, 0.6]}
    assert rec.threshold is model.threshold  # everything else is the model's


def test_production_pad_index_takes_the_frames_production_pad_scores_takes() -> None:
    frames = [{"t": t, "pad": None if t in (125, 1500) else round(t / 7000, 5)} for t in range(0, 3000, 125)]
    row = {"frames": frames}
    idx = rs.production_pad_index(row)
    assert [frames[i]["pad"] for i in idx] == rs.pe.production_pad_scores(row)
    assert len(idx) == 3 * rs.steps.PAD_FRAMES_PER_CHUNK


def test_given_per_net_scores_when_checked_then_each_fusion_has_its_half_a_threshold() -> None:
    clip = rs.pe.CLIPS[0]

    def r(number: int, v2: float, v1: float, active: bool = True) -> dict[str, Any]:
        return {"number": number, "net_scores": {"pad_v2": [v2] * 3, "pad_v1se": [v1] * 3}, "active_pass": active}

    rows: dict[tuple[str, str], list[dict[str, Any]]] = {
        ("genuine_nets", clip): [r(0, 0.9, 0.8), r(2, 0.95, 0.7), r(1, 0.9, 0.9)],
        ("closer_default_nets", clip): [r(1, 0.95, 0.5), r(3, 0.5, 0.95)],
        ("cued_closer_default_nets", clip): [r(1, 0.99, 0.99, active=False)],
    }
    nc = rs.net_check(defaultdict(list, rows), "median")
    assert nc["mean"]["threshold_half_a"] == pytest.approx(0.825)  # min(0.85, 0.825); session 1 is half B
    assert nc["min"]["threshold_half_a"] == pytest.approx(0.7)
    assert nc["pad_v2"]["threshold_half_a"] == pytest.approx(0.9)
    assert nc["pad_v1se"]["threshold_half_a"] == pytest.approx(0.7)
    # replays (0.95, 0.5) and (0.5, 0.95): each passes one net alone, neither passes min or mean
    hb = {h: nc[h]["half_b"]["closer_default_nets"]["errors"] for h in rs.NET_FUSIONS}
    assert hb == {"mean": 0, "min": 0, "pad_v2": 1, "pad_v1se": 1}
    assert nc["mean"]["half_b"]["cued_closer_default_nets"]["errors"] == 1  # PAD alone lets it through
    assert nc["mean"]["half_b"]["cued_closer_default_nets+active"]["errors"] == 0  # the active checks do not


@pytest.mark.parametrize("can_mouth", [True, False])
def test_given_the_session_11_draw_when_cued_rows_draw_then_open_mouth_always_and_the_other_draws_paired(
    can_mouth: bool,
) -> None:
    # The cued / acted rows draw as production does since session 11 (open_mouth in every set), consuming the
    # generator as before so that a session number keeps its head turn, order and later draws. Fails if
    # mouth_always is ignored (blink_7, a clip without mouth frames, then always draws blink).
    from benchmarks import pad_eval as pe

    for n in range(200):
        old_rng, new_rng = np.random.default_rng([7, 4, 1, n]), np.random.default_rng([7, 4, 1, n])
        old = pe.draw_challenges(old_rng, can_mouth)
        new = pe.draw_challenges(new_rng, can_mouth, mouth_always=True)
        assert sorted(new) == sorted([c if c in pe.HEAD else "open_mouth" for c in old])
        assert [c in pe.HEAD for c in new] == [c in pe.HEAD for c in old]  # same order
        assert old_rng.random() == new_rng.random()  # the generator is where it was
