"""Metric code of the accuracy harness on synthetic score arrays with known answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lifecert.engine.manifest import model_info
from lifecert.engine.pipeline import pick_face
from lifecert.services import evaluation as ev


def test_given_overlapping_scores_when_eer_then_crossing_of_far_and_frr():
    genuine = np.array([0.5, 0.6, 0.7, 0.8, 0.9])
    impostor = np.array([0.1, 0.2, 0.3, 0.4, 0.55])
    rate, threshold = ev.eer(genuine, impostor)
    assert rate == pytest.approx(0.2)
    assert 0.5 < threshold < 0.55


def test_given_separable_scores_when_eer_then_zero():
    rate, threshold = ev.eer(np.array([0.7, 0.8, 0.9]), np.array([0.1, 0.2, 0.3]))
    assert rate == pytest.approx(0.0)
    assert 0.3 < threshold < 0.7


def test_given_1000_impostors_when_tar_at_far_1e2_then_ten_false_accepts_allowed():
    impostor = np.arange(1000) / 1000.0  # 0.000 .. 0.999
    genuine = np.array([0.5, 0.989, 0.9895, 2.0])
    r = ev.tar_at_far(genuine, impostor, 1e-2)
    assert r["false_accepts_allowed"] == 10
    assert r["achieved_far"] == pytest.approx(0.01)
    assert 0.989 < r["threshold"] < 0.9895
    assert r["tar"] == pytest.approx(0.5)


def test_given_1000_impostors_when_far_1e3_then_one_allowed_and_1e4_not_enough():
    impostor = np.arange(1000) / 1000.0
    genuine = np.array([0.998, 0.999, 1.5])
    r3 = ev.tar_at_far(genuine, impostor, 1e-3)
    assert r3["achieved_far"] == pytest.approx(0.001)
    assert r3["tar"] == pytest.approx(2 / 3)  # 0.998 (the 2nd-highest impostor) is rejected
    r4 = ev.tar_at_far(genuine, impostor, 1e-4)
    assert r4["tar"] is None
    assert ev.NOT_ENOUGH in r4["note"]


def test_given_no_false_accepts_when_upper_bound_then_rule_of_three():
    assert ev.rule_of_three_upper(1500, 0) == pytest.approx(0.002)
    assert ev.rule_of_three_upper(1000, 10) > 0.01


def test_given_two_clusters_when_best_threshold_then_midpoint_between_them():
    t = ev.best_threshold(np.array([0.2, 0.2, 0.8, 0.8]), np.array([False, False, True, True]))
    assert t == pytest.approx(0.5)


def test_given_one_hard_fold_when_kfold_then_threshold_chosen_without_the_test_fold():
    scores, labels, folds = [], [], []
    for k in range(5):
        scores += [0.1, 0.3, 0.7, 0.9]
        labels += [False, False, True, True]
        folds += [k] * 4
    scores.append(0.4)  # a low genuine score in fold 4 only
    labels.append(True)
    folds.append(4)
    kf = ev.kfold_accuracy(np.array(scores), np.array(labels), np.array(folds))
    assert kf.fold_threshold[4] == pytest.approx(0.5)  # chosen on folds 0-3, which never saw 0.4
    assert kf.fold_threshold[0] == pytest.approx(0.35)  # fold 4 in training pulls it below 0.4
    assert kf.fold_accuracy[:4] == [1.0, 1.0, 1.0, 1.0]
    assert kf.fold_accuracy[4] == pytest.approx(4 / 5)
    assert kf.mean == pytest.approx((4 + 0.8) / 5)


def test_given_forced_wrong_pairs_when_kfold_then_they_count_as_errors():
    scores = np.array([0.1, 0.9, 0.1, 0.9])
    labels = np.array([False, True, False, True])
    folds = np.array([0, 0, 1, 1])
    kf = ev.kfold_accuracy(scores, labels, folds, forced_wrong=np.array([False, True, False, False]))
    assert kf.fold_accuracy == [0.5, 1.0]


def test_given_lfw_pairs_file_when_read_then_folds_and_paths(tmp_path: Path):
    (tmp_path / "pairs.txt").write_text("2\t1\nAnn\t1\t2\nAnn\t1\tBob\t3\nCid\t2\t4\nBob\t1\tCid\t1\n")
    pairs = ev.read_pairs(tmp_path / "pairs.txt")
    assert [(p.same, p.fold) for p in pairs] == [(True, 0), (False, 0), (True, 1), (False, 1)]
    assert pairs[1].b == tmp_path / "images" / "Bob" / "Bob_0003.jpg"


def test_given_csv_pairs_when_read_then_round_robin_folds(tmp_path: Path):
    (tmp_path / "p.csv").write_text("file_a,file_b,same\na.jpg,b.jpg,1\nc.jpg,d.jpg,0\ne.jpg,f.jpg,true\n")
    pairs = ev.read_pairs(tmp_path / "p.csv", folds=2)
    assert [(p.same, p.fold) for p in pairs] == [(True, 0), (False, 1), (True, 0)]
    assert pairs[0].a == tmp_path / "a.jpg"


def test_given_manifest_when_thresholds_written_then_model_info_reads_them(tmp_path: Path):
    m = tmp_path / "manifest.toml"
    m.write_text(
        '[engines.x]\nmodel = "m"\nversion = "1"\nembedding_size = 4\ninput_size = [2, 2]\n\n'
        '[engines.x.thresholds.verify]\nsimilarity = 0.5\nfar = 0.1\n\n[engines.y]\nmodel = "n"\n'
    )
    ev.write_manifest_thresholds(
        m, "x", {"verify": {"similarity": 0.61234, "far": 1e-3}, "duplicate": {"similarity": 0.7, "far": 1e-6}},
        "lfw", "2026-01-01",
    )
    info = model_info("x", m)
    assert info.threshold("verify") == pytest.approx(0.6123)
    assert info.thresholds["verify"].far == pytest.approx(1e-3)
    assert info.thresholds["duplicate"].dataset == "lfw"
    assert '[engines.y]\nmodel = "n"' in m.read_text()


def test_given_manifest_lines_when_a_table_is_set_then_replaced_in_place_inserted_after_or_appended():
    lines = ["[a]", "x = 1", "", "[a.t]", "y = 2", "", "[b]", "z = 3"]

    ev.set_table(lines, "[a.t]", ["y = 9"])
    assert lines == ["[a]", "x = 1", "", "[a.t]", "y = 9", "", "[b]", "z = 3"], "replaced, blank line kept"

    ev.set_table(lines, "[a.u]", ["w = 1"], after="[a.t]")
    assert lines[3:8] == ["[a.t]", "y = 9", "", "[a.u]", "w = 1"] and lines[-2:] == ["[b]", "z = 3"]

    ev.set_table(lines, "[c]", ["v = 0"], after="[missing]")
    assert lines[-3:] == ["", "[c]", "v = 0"], "no anchor: appended at the end"


def _face(x1: float, y1: float, x2: float, y2: float):
    from lifecert.engine.types import Face

    return Face(box=np.array([x1, y1, x2, y2], np.float32), score=1.0, landmarks5=np.zeros((5, 2), np.float32))


def test_given_larger_bystander_when_pick_central_then_centred_face_else_largest():
    big_corner = _face(0, 0, 120, 120)
    centred = _face(70, 70, 160, 160)  # 90 px: significant (>= 0.35 of 120), centre (115, 115)
    speck = _face(120, 120, 130, 130)  # exactly at the centre but too small to count
    faces = [big_corner, centred, speck]
    assert pick_face(faces, (250, 250, 3), "central") is centred
    assert pick_face(faces, (250, 250, 3), "largest") is big_corner
    assert pick_face([big_corner, speck], (250, 250, 3), "central") is big_corner


def test_given_pairs_with_gate_failures_when_banded_then_each_band_counts_its_own_errors(tmp_path: Path) -> None:
    from lifecert.services.evaluation import ImageResult, Pair, quality_bands

    def res(name: str, vec: list[float], gate: str | None = None, found: bool = True) -> ImageResult:
        v = np.array([vec], dtype=np.float32)
        v /= np.linalg.norm(v)
        return ImageResult(name, None if found else "NO_FACE", gate=gate, views=v if found else None,
                           view_names=("id",) if found else ())

    cache = {
        "a1": res("a1", [1, 0]), "a2": res("a2", [1, 0.1]),
        "b1": res("b1", [0, 1], gate="POSE_TOO_LARGE"), "b2": res("b2", [1, 0.05]),
        "c1": res("c1", [0, 1], found=False),
    }
    pairs = [Pair(Path("a1"), Path("a2"), True, 1), Pair(Path("b1"), Path("b2"), True, 1),
             Pair(Path("a1"), Path("b2"), False, 1), Pair(Path("a1"), Path("c1"), False, 1)]

    bands = quality_bands(pairs, cache, threshold=0.9)

    assert bands["ok"] == {"genuine": 1, "false_rejects": 0, "impostor": 1, "false_accepts": 1, "frr": 0.0, "far": 1.0}
    assert bands["POSE_TOO_LARGE"]["genuine"] == 1 and bands["POSE_TOO_LARGE"]["frr"] == 1.0
    assert bands["undetected"]["impostor"] == 1 and bands["undetected"]["far"] == 0.0
