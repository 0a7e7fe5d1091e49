"""Score fusion: the logistic fit (known answers), the fused model, and the cross-validated
protocol fusion on synthetic embeddings where one engine is informative and one is noise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lifecert.domain.errors import LifecertError
from lifecert.domain.fusion import FusionModel, fit_logistic, from_manifest
from lifecert.services.evaluation.embedding import ImageResult
from lifecert.services.evaluation.fusion import EngineScores, fuse_protocol, write_manifest_fusion
from lifecert.services.evaluation.protocol import Pair


def test_given_samples_of_a_known_logistic_model_when_fitted_then_parameters_are_recovered() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(20000, 2))
    true_b, true_w = -0.5, np.array([2.0, -1.0])
    p = 1 / (1 + np.exp(-(true_b + x @ true_w)))
    y = rng.random(20000) < p

    b, w = fit_logistic(x, y, ridge=0.0)

    assert b == pytest.approx(true_b, abs=0.08) and np.allclose(w, true_w, atol=0.08)


def test_given_impostor_statistics_when_znorm_fitted_then_fused_score_is_the_mean_z_score() -> None:
    from lifecert.domain.fusion import fit_znorm

    x = np.array([[0.0, 10.0], [2.0, 30.0], [5.0, 90.0]])  # impostors: col 0 mean 1 sd 1, col 1 mean 20 sd 10
    y = np.array([False, False, True])

    b, w = fit_znorm(x, y)

    assert np.allclose(b + x @ w, [(-1 + -1) / 2, (1 + 1) / 2, (4 + 7) / 2])


def test_given_one_class_only_when_fitted_then_bad_request() -> None:
    with pytest.raises(LifecertError):
        fit_logistic(np.ones((5, 2)), np.ones(5, dtype=bool))


def test_given_fusion_model_when_scored_then_bias_plus_weighted_similarities_and_missing_key_refused() -> None:
    m = FusionModel("dlib_edgeface", ("dlib:a:1", "edgeface:b:1"), -10.0, (8.0, 12.0), {"verify": 0.5})

    assert m.score({"dlib:a:1": 0.9, "edgeface:b:1": 0.3}) == pytest.approx(-10 + 7.2 + 3.6)
    assert m.accepts({"dlib:a:1": 0.9, "edgeface:b:1": 0.3}) and not m.accepts({"dlib:a:1": 0.5, "edgeface:b:1": 0.1})
    assert np.allclose(m.scores(np.array([[0.9, 0.3], [0.0, 0.0]])), [0.8, -10.0])
    with pytest.raises(LifecertError):
        m.score({"dlib:a:1": 0.9})


def _runs(tmp_path: Path) -> tuple[list[EngineScores], list[Pair]]:
    """10 identities × 4 images per fold, 2 folds. Engine "good": unit vectors near a per-identity
    centre; engine "noise": random unit vectors (carries no identity information)."""
    rng = np.random.default_rng(5)
    good: dict[str, ImageResult] = {}
    noise: dict[str, ImageResult] = {}
    pairs: list[Pair] = []
    for fold in (1, 2):
        for ident in range(10):
            centre = rng.normal(size=16)
            paths = []
            for i in range(4):
                p = tmp_path / f"f{fold}_id{ident}" / f"{i}.jpg"
                paths.append(p)
                g = centre + 0.7 * rng.normal(size=16)
                n = rng.normal(size=16)
                good[str(p)] = ImageResult(str(p), None, views=(g / np.linalg.norm(g))[None].astype(np.float32),
                                           view_names=("id",))
                noise[str(p)] = ImageResult(str(p), None, views=(n / np.linalg.norm(n))[None].astype(np.float32),
                                            view_names=("id",))
            pairs += [Pair(paths[0], paths[1], True, fold), Pair(paths[2], paths[3], True, fold)]
        for ident in range(10):
            other = (ident + 1) % 10
            pairs.append(Pair(tmp_path / f"f{fold}_id{ident}" / "0.jpg", tmp_path / f"f{fold}_id{other}" / "1.jpg",
                              False, fold))
            pairs.append(Pair(tmp_path / f"f{fold}_id{ident}" / "2.jpg", tmp_path / f"f{fold}_id{other}" / "3.jpg",
                              False, fold))
    runs = [EngineScores("good", "good:m:1", good, "single", "single"),
            EngineScores("noise", "noise:m:1", noise, "single", "single")]
    return runs, pairs


def test_given_an_informative_and_a_noise_engine_when_fused_then_noise_weight_is_small_and_accuracy_holds(
    tmp_path: Path,
) -> None:
    runs, pairs = _runs(tmp_path)

    r = fuse_protocol(runs, pairs, target_far=0.01, duplicate_far=0.01, method="logistic")

    w = r["model"]["weights"]
    assert w["good"] > 5 * abs(w["noise"]), w
    acc = r["accuracy_detected"]
    assert acc["good"]["accuracy_mean"] > 0.8
    assert acc["fused"]["accuracy_mean"] >= acc["noise"]["accuracy_mean"]
    assert len(r["per_fold_models"]) == 2 and r["per_fold_models"][0]["weights"] != r["per_fold_models"][1]["weights"]
    assert r["thresholds"]["verify"]["similarity"] is not None
    tar = r["tar_within_fold_pairs"]
    assert tar["fused"]["impostor_pairs"] == tar["good"]["impostor_pairs"] > 0


def test_given_fusion_report_when_written_to_manifest_then_it_reads_back_and_rewrites_in_place(
    tmp_path: Path,
) -> None:
    import tomllib

    runs, pairs = _runs(tmp_path)
    r = fuse_protocol(runs, pairs, target_far=0.01, duplicate_far=0.01)
    manifest = tmp_path / "manifest.toml"
    manifest.write_text('[engines.x]\nmodel = "m"\n', encoding="utf-8")

    write_manifest_fusion(manifest, "good_noise", r, "synthetic", "2026-11-30")
    write_manifest_fusion(manifest, "good_noise", r, "synthetic", "2026-11-30")
    raw = tomllib.loads(manifest.read_text(encoding="utf-8"))

    assert raw["engines"]["x"]["model"] == "m" and manifest.read_text().count("[fusion.good_noise]") == 1
    m = from_manifest("good_noise", raw["fusion"]["good_noise"], ["good:m:1", "noise:m:1"])
    assert m.bias == pytest.approx(r["model"]["bias"], abs=1e-5)
    assert m.threshold("verify") == pytest.approx(r["thresholds"]["verify"]["similarity"], abs=1e-4)
