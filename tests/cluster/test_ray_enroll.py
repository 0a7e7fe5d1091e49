"""``lifecert enroll --ray-address`` on a real local Ray cluster (head + a second worker node),
same report as the local pool.

Ray 2.60's ``ray start`` rewrites ``--node-ip-address 127.0.0.1`` into the host's routable
address and its gRPC servers listen on every interface, so the cluster, the driver and the
check run inside a private network namespace (``unshare -n``) that has only loopback: nothing
can listen anywhere else, and ``ss`` inside it proves every listener is on 127.0.0.1. The
namespace's processes (all of them ours) are stopped by pid at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.cluster.conftest import netns_pids

pytestmark = [pytest.mark.ray, pytest.mark.slow]
BIN = Path(sys.executable).parent


def _reasons(report_dir: Path) -> dict[str, str]:
    (js,) = sorted(report_dir.glob("*.json"))
    rows = json.loads(js.read_text(encoding="utf-8"))["rows"]
    return {r["photo_name"]: r["reason"] for r in rows}


def test_given_a_local_ray_cluster_when_enrolling_the_shared_photos_then_the_report_equals_the_local_pools(
    tmp_path: Path, faces_dir: Path
) -> None:
    if not (BIN / "ray").exists():
        pytest.skip("ray not installed (dev extra)")
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.skip("unshare/ip (util-linux, iproute2) needed for the loopback-only namespace")
    photos = faces_dir / "photos"
    manifest = tmp_path / "m.csv"
    lc = str(BIN / "lifecert")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIFECERT_")}
    env.update(LIFECERT_ENV="test", PYTHONUNBUFFERED="1", RAY_USAGE_STATS_ENABLED="0")
    subprocess.run([lc, "manifest", "synth", str(photos), "--out", str(manifest)], env=env, check=True, timeout=120)

    # the local pool, for comparison
    local = {**env, "LIFECERT_DATA_DIR": str(tmp_path / "local")}
    subprocess.run([lc, "enroll", str(photos), "--manifest", str(manifest), "--no-progress",
                    "--report-dir", str(tmp_path / "local-report")], env=local, check=True, timeout=600)

    ray_tmp = Path(tempfile.mkdtemp(prefix="lcray-", dir="/tmp"))  # Ray's socket paths must stay < 108 bytes
    ray = str(BIN / "ray")
    common = "--node-ip-address 127.0.0.1 --num-cpus 1 --object-store-memory 78643200 --disable-usage-stats"
    script = f"""
set -eu
ip link set lo up
readlink /proc/self/ns/net > {ray_tmp}/netns
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
{ray} start --head --port $port --include-dashboard false --temp-dir {ray_tmp} {common} > {ray_tmp}/head.log 2>&1
{ray} start --address 127.0.0.1:$port {common} > {ray_tmp}/worker.log 2>&1
LIFECERT_DATA_DIR={tmp_path / "onray"} {lc} enroll {photos} --manifest {manifest} --no-progress \
    --workers 2 --ray-address 127.0.0.1:$port --report-dir {tmp_path / "ray-report"}
ss -tlnpH > {ray_tmp}/listen.txt
"""
    proc = subprocess.Popen(["unshare", "-n", "bash", "-c", script], env=env, start_new_session=True)
    netns = ""
    try:
        rc = proc.wait(timeout=900)
        netns = (ray_tmp / "netns").read_text().strip()
        assert rc == 0, (ray_tmp / "head.log").read_text(errors="replace")[-2000:]
        listen = (ray_tmp / "listen.txt").read_text()
        locals_ = [line.split()[3] for line in listen.splitlines() if line.strip()]
        assert len(locals_) >= 4, listen  # GCS, two raylets (+ object managers, agents): a real cluster
        assert all(a.startswith(("127.0.0.1:", "[::1]:", "[::ffff:127.0.0.1]:")) for a in locals_), listen
        assert "raylet" in listen and "gcs_server" in listen
    finally:
        if not netns and (ray_tmp / "netns").exists():
            netns = (ray_tmp / "netns").read_text().strip()
        if netns:
            for _ in range(3):  # every process in the private namespace is this test's
                pids = netns_pids(netns)
                if not pids:
                    break
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                time.sleep(1)
            assert not netns_pids(netns)
        shutil.rmtree(ray_tmp, ignore_errors=True)

    ray_rows = _reasons(tmp_path / "ray-report")
    local_rows = _reasons(tmp_path / "local-report")
    assert ray_rows == local_rows
    assert sum(1 for r in ray_rows.values() if r == "ENROLLED") >= 10
