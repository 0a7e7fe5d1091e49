"""A real ``lifecert serve`` (uvicorn) in a child process on 127.0.0.1, for tests that need the
real event loop, real threads and a real database (the concurrency and fuzzing tests).

Everything is bounded: start-up waits at most ``ready_timeout`` seconds, the process is stopped
(SIGTERM, then SIGKILL) when the ``with`` block ends, and its log is kept for the failure message.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop_group(proc: subprocess.Popen[bytes], *, timeout: float) -> None:
    """Stop a child started with ``start_new_session=True`` and everything it started: SIGTERM to
    its process group, SIGKILL after ``timeout`` seconds."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=timeout)


@dataclass
class LiveServer:
    base_url: str
    log_path: Path
    proc: subprocess.Popen[bytes]

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-6000:]
        except OSError:
            return ""


@contextmanager
def live_server(env: dict[str, str], log_path: Path, *, ready: str = "/readyz",
                ready_timeout: float = 240.0) -> Iterator[LiveServer]:
    """Start ``lifecert serve`` with ``env`` added to the environment; yield once ``ready`` answers 200."""
    port = free_port()
    full_env = {**os.environ, **env}
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lifecert.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    srv = LiveServer(f"http://127.0.0.1:{port}", log_path, proc)
    try:
        deadline = time.monotonic() + ready_timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"lifecert serve exited with {proc.returncode}:\n{srv.log()}")
            try:
                if httpx.get(srv.base_url + ready, timeout=2.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"lifecert serve not ready after {ready_timeout:.0f} s:\n{srv.log()}")
            time.sleep(0.3)
        yield srv
    finally:
        stop_group(proc, timeout=15)
