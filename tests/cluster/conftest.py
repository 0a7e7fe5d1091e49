"""Real servers for the several-node tests: Redis and ``lifecert serve`` processes.

Every server listens on 127.0.0.1 on a port the kernel hands out, waits are bounded, and
each is stopped when its fixture ends. In CI (LIFECERT_REQUIRE_SERVICES=1) a missing
``redis-server`` fails the ``redis``-marked tests instead of skipping them.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before listening on 127.0.0.1:{port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"{what} did not listen on 127.0.0.1:{port} within {timeout_s:.0f} s")


def stop(proc: subprocess.Popen[bytes], timeout_s: float = 15.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout_s)


def listening_addresses(pids: set[int]) -> list[tuple[int, str]]:
    """(pid, local address:port) of every TCP socket in LISTEN state owned by ``pids`` (``ss -tlnpH``)."""
    out = subprocess.run(["ss", "-tlnpH"], capture_output=True, text=True, timeout=10, check=True).stdout
    found = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 6:
            continue
        local = parts[3]
        for pid in pids:
            if f"pid={pid}," in line:
                found.append((pid, local))
    return found


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private redis-server on 127.0.0.1 (no persistence), stopped at the end of the session."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip("redis-server not installed (.ci/run installs it from Debian)")
    port = free_port()
    d = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(d),
         "--protected-mode", "yes"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(port, proc, 20, "redis-server")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop(proc)


def serve_env(data_dir: Path, database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIFECERT_")}
    env.update(
        LIFECERT_ENV="test", LIFECERT_DATA_DIR=str(data_dir), LIFECERT_DATABASE_URL=database_url,
        LIFECERT_INFERENCE_THREADS="1", PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def start_node(data_dir: Path, database_url: str, log: Path, **extra: str) -> tuple[subprocess.Popen[bytes], str]:
    """One ``lifecert serve`` process on 127.0.0.1; returns it and its base URL once /healthz answers."""
    port = free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    fh = log.open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "lifecert.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=serve_env(data_dir, database_url, **extra), stdout=fh, stderr=subprocess.STDOUT,
    )
    try:
        wait_port(port, proc, 120, f"lifecert serve ({log})")
    except Exception:
        stop(proc)
        raise RuntimeError(log.read_text(errors="replace")[-3000:]) from None
    return proc, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An S3-compatible HTTP server on 127.0.0.1: moto's server mode (no MinIO package exists in
    PyPI or Debian here). It speaks the S3 REST protocol that boto3 uses against real S3/MinIO."""
    exe = Path(sys.executable).with_name("moto_server")
    if not exe.exists():
        pytest.skip("moto[server] not installed (dev extra)")
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with log.open("wb") as fh:
        proc = subprocess.Popen([str(exe), "-H", "127.0.0.1", "-p", str(port)], stdout=fh, stderr=subprocess.STDOUT)
    try:
        wait_port(port, proc, 60, "moto_server")
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)


def netns_pids(netns: str) -> list[int]:
    """Every process whose network namespace is ``netns`` (``readlink /proc/PID/ns/net``)."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            if os.readlink(d / "ns" / "net") == netns:
                out.append(int(d.name))
        except OSError:
            continue
    return out
