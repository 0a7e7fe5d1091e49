"""Two ``lifecert serve`` processes on one PostgreSQL with Redis rate limits: a limit counts
across both, a pensioner enrolled after both started verifies on either (templates and the
1:N index reload from the shared database), ``/metrics`` is scraped, and nothing listens
beyond 127.0.0.1."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import httpx
import numpy as np
import pytest
from numpy.typing import NDArray

from lifecert.config import Settings
from lifecert.domain.idnumber import make_id_number
from lifecert.engine.base import FaceEngine
from lifecert.services.context import AppContext
from tests.cluster.conftest import listening_addresses, start_node, stop
from tests.conftest import empty_postgres
from tests.integration.verification_support import TEMPLATE_FRAME, VIDEO, enroll, read_video
from tests.paced_client import Answer, Clip, Phone, WallClock, http_sender, http_start

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]
PER_ID = 3


def metric(text: str, name: str) -> float | None:
    m = re.search(rf"^{re.escape(name)} ([0-9.e+-]+)$", text, re.M)
    return float(m.group(1)) if m else None


def wait_ready(url: str, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise TimeoutError(f"{url} not ready within {timeout_s:.0f} s")


@pytest.fixture
def nodes(tmp_path: Path, postgres_url: str, redis_url: str) -> Iterator[list[str]]:
    empty_postgres(postgres_url)
    AppContext(Settings(env="test", data_dir=tmp_path / "migrate", database_url=postgres_url)).close()  # schema once
    extra = {
        "LIFECERT_REDIS_URL": redis_url,
        "LIFECERT_VERIFICATION__RATE_LIMIT_PER_ID_PER_HOUR": str(PER_ID),
        "LIFECERT_FIXED_CHALLENGES": "blink,open_mouth",
        "LIFECERT_LOG_FORMAT": "json",
    }
    procs, urls = [], []
    try:
        for name in ("a", "b"):
            p, u = start_node(tmp_path / name, postgres_url, tmp_path / f"{name}.log", **extra)
            procs.append(p)
            urls.append(u)
        for u in urls:
            wait_ready(u)
        addrs = listening_addresses({p.pid for p in procs})
        assert len(addrs) == 2 and all(a.startswith("127.0.0.1:") for _pid, a in addrs), addrs
        yield urls
    finally:
        for p in procs:
            stop(p)


def test_given_two_nodes_when_a_pensioner_is_limited_and_another_enrolled_then_both_nodes_agree(
    nodes: list[str], tmp_path: Path, postgres_url: str, face_engine: FaceEngine, faces_dir: Path, clip: Clip
) -> None:
    a, b = nodes
    # 1) the per-ID limit is counted across both nodes (Redis)
    idn = make_id_number("110101", date(1950, 3, 1), 901)
    codes = [
        httpx.post(f"{u}/api/v1/sessions", json={"id_number": idn, "name": "某人"}, timeout=30).status_code
        for u in (a, b, a, b)
    ]
    assert 429 not in codes[:PER_ID] and codes[PER_ID] == 429, codes

    # 2) a pensioner enrolled after both nodes started is searchable and verifiable on both
    video: list[NDArray[np.uint8]] = read_video(faces_dir / VIDEO)
    ctx = AppContext(Settings(env="test", data_dir=tmp_path / "enroller", database_url=postgres_url))
    ctx.set_engine(face_engine)
    t0 = time.monotonic()
    p = enroll(ctx, video[TEMPLATE_FRAME], seq=902)
    ctx.close()
    seen = {}
    deadline = time.monotonic() + 60
    while len(seen) < 2 and time.monotonic() < deadline:
        for u in (a, b):
            if u not in seen and metric(httpx.get(f"{u}/metrics", timeout=10).text, "lifecert_index_size") == 1.0:
                seen[u] = time.monotonic() - t0
        time.sleep(0.1)
    assert len(seen) == 2, f"index not reloaded on every node within 60 s: {seen}"
    print(f"new enrollment in every node's 1:N index after {max(seen.values()):.2f} s")

    # a paced session in real time, created on b, its chunks alternating between the nodes (the step
    # state lives in the shared database, so any node takes the next chunk)
    with httpx.Client(timeout=120) as c:
        sid, first = http_start(c, {"id_number": p.id_number, "name": p.name}, base=b)
        senders = [http_sender(c, sid, base=u) for u in (a, b)]
        sent: list[int] = []

        def alternate(step: int, nonce: str, ts: list[int], frames: list[bytes], sent_ms: int) -> Answer:
            sent.append(step)
            return senders[len(sent) % 2](step, nonce, ts, frames, sent_ms)

        answer = Phone(alternate, first, clip, WallClock(), session_id=sid).run()
    assert answer.decision == "CONFIRMED", answer
    assert len(sent) >= 3
    # the other node reads the same decision from the shared database
    assert httpx.get(f"{a}/api/v1/sessions/{sid}", timeout=10).json()["decision"] == "CONFIRMED"

    # 3) metrics: the node that took the last chunk counted the decision; both read the same shared state
    mb = httpx.get(f"{b}/metrics", timeout=10).text
    decider = httpx.get(f"{(a, b)[len(sent) % 2]}/metrics", timeout=10).text
    assert re.search(r'^lifecert_verification_sessions_total\{decision="CONFIRMED",reason=""\} 1\.0$', decider, re.M)
    # >= 1: a confirmed session may add a refreshed template (issue 13) besides the enrolled one
    assert (metric(mb, "lifecert_templates_active") or 0) >= 1.0
    assert metric(mb, "lifecert_index_stale_seconds") == 0.0
    assert 'lifecert_http_request_seconds_count{method="POST",route="/api/v1/sessions",status="4xx"}' in mb
    ma = httpx.get(f"{a}/metrics", timeout=10).text
    assert metric(ma, "lifecert_audit_chain_head_id") == metric(mb, "lifecert_audit_chain_head_id") > 0
    assert p.id_number not in mb and p.id_number not in ma
