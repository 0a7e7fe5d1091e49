"""A newcomer's first commands print results, not warnings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_given_the_packages_when_imported_with_warnings_as_errors_then_nothing_is_raised() -> None:
    out = subprocess.run([sys.executable, "-W", "error", "-c", "import server.app, lifecert.cli, enrollment.job"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stderr == "", out.stderr[-2000:]


def test_given_the_readme_demo_when_run_then_stderr_is_empty_and_rows_enrol(faces_dir: Path, tmp_path: Path) -> None:
    env = {**os.environ, "LIFECERT_DATA_DIR": str(tmp_path / "var"), "PYTHONWARNINGS": "always"}
    cli = [sys.executable, "-m", "lifecert.cli"]
    photos = faces_dir / "photos"
    synth = subprocess.run([*cli, "manifest", "synth", str(photos), "--out", str(tmp_path / "m.csv")],
                           env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert synth.returncode == 0 and synth.stderr == "", synth.stderr
    enroll = subprocess.run([*cli, "enroll", str(photos), "--manifest", str(tmp_path / "m.csv"), "--no-progress"],
                            env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert enroll.returncode == 0, enroll.stdout + enroll.stderr
    assert enroll.stderr == ""
    assert "ENROLLED" in enroll.stdout
