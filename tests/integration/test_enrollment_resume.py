"""A batch killed with SIGKILL mid-run resumes where it stopped: nothing lost, nothing duplicated."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.test_enrollment_job import ids, lfw_people, write_manifest

pytestmark = pytest.mark.slow

TOTAL = 192


def _items(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=5) as c:
            return int(c.execute("select count(*) from enrollment_item").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def test_given_a_batch_killed_mid_run_when_rerun_then_it_resumes_without_duplicates(
    tmp_path: Path, faces_dir: Path
) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    # Enough rows for the worker-pool path (small batches run in-process) and several committed
    # batches of 32, so the job is still running when the first batch is visible, even on an idle machine.
    people = lfw_people(faces_dir, TOTAL)
    rows = []
    for i, (p, idn) in enumerate(zip(people, ids(TOTAL), strict=True)):
        (photos / f"{i}.jpg").write_bytes(p[0].read_bytes())
        rows.append((idn, f"人{i}", f"{i}.jpg"))
    manifest = write_manifest(photos, rows)
    data = tmp_path / "data"
    env = os.environ | {"LIFECERT_DATA_DIR": str(data), "LIFECERT_ENV": "test"}
    cmd = [sys.executable, "-m", "lifecert.cli", "enroll", str(photos), "--manifest", str(manifest),
           "--workers", "1", "--no-progress", "--report-dir", str(tmp_path / "reports")]
    db = data / "lifecert.sqlite"

    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 240
    while _items(db) < 8 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "the job finished before it could be killed; make the batch larger"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = _items(db)
    assert 8 <= done_before < TOTAL

    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    with sqlite3.connect(db) as c:
        runs = c.execute("select id, status from enrollment_run").fetchall()
        assert runs == [(1, "finished")]  # the killed run was resumed, not restarted
        rows_done = c.execute("select row_no, count(*) from enrollment_item group by row_no").fetchall()
        assert len(rows_done) == TOTAL and all(n == 1 for _, n in rows_done)
        enrolled = c.execute("select count(*) from enrollment_item where reason='ENROLLED'").fetchone()[0]
        tpl = c.execute("select count(*), count(distinct pensioner_id) from face_template").fetchone()
        assert tpl == (enrolled, enrolled)
        assert c.execute("select count(*) from pensioner").fetchone()[0] == TOTAL
    report = json.loads(next((tmp_path / "reports").glob("run-1-*.json")).read_text(encoding="utf-8"))
    assert report["resumed"] is True
    assert report["rows_this_invocation"] == TOTAL - done_before
