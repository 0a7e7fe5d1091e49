"""``lifecert eval`` end to end on real faces: report, JSON, thresholds written to a manifest copy."""

from __future__ import annotations

import json
import shutil
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lifecert.cli import app
from lifecert.config import get_settings
from lifecert.engine.manifest import REPO_MANIFEST
from tests.unit.test_eval_pipeline import _balanced_slice


@pytest.fixture
def manifest_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    m = tmp_path / "manifest.toml"
    shutil.copy(REPO_MANIFEST, m)
    monkeypatch.setenv("LIFECERT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LIFECERT_ENV", "test")
    monkeypatch.setenv("LIFECERT_MANIFEST_PATH", str(m))
    get_settings.cache_clear()
    yield m
    get_settings.cache_clear()


def test_given_pairs_when_eval_cli_runs_then_reports_profiles_and_writes_thresholds(
    faces_dir: Path, tmp_path: Path, manifest_copy: Path
) -> None:
    pairs = _balanced_slice(faces_dir, tmp_path / "pairs.csv")
    out = tmp_path / "report.json"
    before = tomllib.loads(manifest_copy.read_text())["engines"]["dlib"]["thresholds"]["verify"]

    r = CliRunner().invoke(app, ["eval", "--pairs", str(pairs), "--root", str(faces_dir), "--workers", "1",
                                 "--folds", "5", "--target-far", "0.05", "--duplicate-far", "0.05",
                                 "--probe-profile", "single", "--out", str(out), "--write-manifest"])

    assert r.exit_code == 0, r.output
    assert "enrolled side jitter, probe side single" in r.output
    assert "detected       accuracy" in r.output
    report = json.loads(out.read_text())
    assert report["headline_profiles"] == {"enroll": "jitter", "probe": "single"}
    assert set(report["profile_modes"]) >= {"single/single", "jitter/single", "single/jitter", "jitter/jitter"}
    verify = tomllib.loads(manifest_copy.read_text())["engines"]["dlib"]["thresholds"]["verify"]
    assert verify["similarity"] == report["thresholds"]["verify"]["similarity"] != before["similarity"]
    assert (verify["enroll_profile"], verify["probe_profile"]) == ("jitter", "single")
    assert verify["far"] == 0.05
    dup = tomllib.loads(manifest_copy.read_text())["engines"]["dlib"]["thresholds"]["duplicate"]
    assert (dup["enroll_profile"], dup["probe_profile"]) == ("jitter", "jitter")


def test_given_unknown_profile_when_eval_cli_runs_then_clear_error_and_manifest_untouched(
    faces_dir: Path, tmp_path: Path, manifest_copy: Path
) -> None:
    pairs = _balanced_slice(faces_dir, tmp_path / "pairs.csv")
    before = manifest_copy.read_bytes()
    r = CliRunner().invoke(app, ["eval", "--pairs", str(pairs), "--root", str(faces_dir), "--workers", "1",
                                 "--probe-profile", "jitter-99", "--write-manifest"])
    assert r.exit_code != 0
    assert "unknown embedding profile 'jitter-99'" in r.output
    assert manifest_copy.read_bytes() == before


def test_given_edgeface_installed_when_fused_eval_runs_then_prints_both_engines_and_writes_the_fusion(
    faces_dir: Path, tmp_path: Path, manifest_copy: Path, shared_models_dir: Path
) -> None:
    from lifecert import cli_models

    for pack in ("edgeface", "yunet"):
        cli_models.install_models(get_settings(), shared_models_dir / pack, pack)
    pairs = _balanced_slice(faces_dir, tmp_path / "pairs.csv")
    out = tmp_path / "fused.json"

    r = CliRunner().invoke(app, ["eval", "--pairs", str(pairs), "--root", str(faces_dir), "--workers", "1",
                                 "--folds", "5", "--target-far", "0.05", "--duplicate-far", "0.05",
                                 "--engine", "dlib+edgeface", "--out", str(out), "--write-manifest"])

    assert r.exit_code == 0, r.output
    assert "edgeface@dlib" in r.output and "fused" in r.output and "TAR@FAR" in r.output
    report = json.loads(out.read_text())
    assert [e["engine"] for e in report["engines"]] == ["dlib", "edgeface@dlib"], "EdgeFace on dlib's faces"
    assert [e["enroll_profile"] for e in report["engines"]] == ["jitter", "flip"]
    fusion = tomllib.loads(manifest_copy.read_text())["fusion"]["dlib_edgeface"]
    assert fusion["models"] == ["dlib", "edgeface"] and fusion["profiles"] == ["jitter/flip", "flip/flip"]
    assert fusion["thresholds"]["verify"]["similarity"] == report["thresholds"]["verify"]["similarity"]
    assert fusion["thresholds"]["verify"]["far"] == 0.05
