"""Two API nodes on one PostgreSQL with Redis rate limits, under mixed traffic (issue 14).

Starts, all on 127.0.0.1 and free ports, all stopped at the end: a private PostgreSQL, a
private Redis and two ``lifecert serve`` processes (``LIFECERT_TRUSTED_PROXIES=127.0.0.1``, so
the load generator plays the reverse proxy and gives every simulated phone its own address in
``X-Forwarded-For``). Then, bounded by counts (and a wall-clock cap):

- server-paced pensioner sessions in real time with real frames (talking-head video acting blink +
  mouth, tests/paced_client.py), created round-robin and their chunks alternating between both nodes,
  ``--concurrency`` at a time;
- tip-offs from distinct addresses, staff reads (case queue, case page) and decisions
  (close the tip-off cases as unfounded) with a caseworker's API token;
- a limit check: one address sends 3× the tip-off limit and one ID number 3× the per-ID
  session limit, alternating nodes — exactly the limit must pass;
- afterwards: every CONFIRMED answer has exactly one survival confirmation row and vice versa.

Writes benchmarks/results/cluster_load.json and the ``cluster_load`` section of the README.
Run: ``.venv/bin/python benchmarks/cluster_load.py [--sessions 24 --concurrency 4]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._common import machine, now, update_readme_section, write_json  # noqa: E402
from tests.cluster.conftest import free_port, start_node, stop, wait_port  # noqa: E402

FACES = Path(os.environ.get("LIFECERT_SHARED_FACES", ROOT.parent / "shared" / "faces"))
PER_ID = 10  # LIFECERT_VERIFICATION__RATE_LIMIT_PER_ID_PER_HOUR on the nodes
TIPOFF_LIMIT = 5  # server/routes/tipoffs.TIPOFFS_PER_CLIENT_PER_HOUR


def pct(xs: list[float], q: float) -> float:
    return round(float(np.percentile(np.array(xs), q)) * 1000, 1) if xs else float("nan")


def start_postgres(d: Path) -> tuple[str, Any]:
    pgbin = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parts[-2]))[-1]
    as_pg: list[str] = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    d.mkdir(parents=True)
    if os.geteuid() == 0:
        shutil.chown(d, "postgres")
    subprocess.run([*as_pg, str(pgbin / "initdb"), "-D", str(d / "data"), "-U", "lifecert", "--auth=trust",
                    "-E", "UTF8", "--locale=C.UTF-8"], check=True, capture_output=True, timeout=120)
    port = free_port()
    r = subprocess.run([*as_pg, str(pgbin / "pg_ctl"), "-D", str(d / "data"), "-l", str(d / "log"), "-w", "-o",
                        f"-p {port} -k {d} -c listen_addresses=127.0.0.1", "start"],
                       capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        log = (d / "log").read_text(errors="replace") if (d / "log").exists() else ""
        raise RuntimeError(f"PostgreSQL did not start: {r.stderr} {log[-1500:]}")
    subprocess.run([*as_pg, str(pgbin / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "lifecert",
                    "lifecert"], check=True, timeout=60)

    def stop_pg() -> None:
        subprocess.run([*as_pg, str(pgbin / "pg_ctl"), "-D", str(d / "data"), "-m", "fast", "stop"],
                       capture_output=True, timeout=120)

    return f"postgresql+psycopg2://lifecert@127.0.0.1:{port}/lifecert", stop_pg


def start_redis(d: Path) -> tuple[str, subprocess.Popen[bytes]]:
    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(d)], stdout=subprocess.DEVNULL)
    wait_port(port, proc, 20, "redis-server")
    return f"redis://127.0.0.1:{port}/0", proc


def prepare(url: str, data_dir: Path) -> tuple[dict[str, str], Any, str]:
    """Schema, one enrolled pensioner (the talking-head face), a caseworker API token, the frames."""
    from lifecert.config import Settings
    from lifecert.engine.loader import load_engine
    from lifecert.services import staff
    from lifecert.services.context import AppContext
    from tests.integration.verification_support import TEMPLATE_FRAME, enroll, read_video
    from tests.paced_client import talking_head_clip

    ctx = AppContext(Settings(env="test", data_dir=data_dir, database_url=url))
    engine = load_engine(ctx.settings)
    ctx.set_engine(engine)
    video = read_video(FACES / "video" / "talking_head_a.mp4")
    seq = talking_head_clip(engine, video)
    p = enroll(ctx, video[TEMPLATE_FRAME], seq=7)
    with ctx.db.session() as s:
        staff.create_user(s, "cw1", "a-long-benchmark-password", "caseworker", actor="bench", actor_role="admin")
    with ctx.db.session() as s:
        token, _ = staff.create_api_token(s, "cw1", name="bench", actor="bench", actor_role="admin")
    ctx.close()
    return {"id_number": p.id_number, "name": p.name}, seq, token


class Recorder:
    def __init__(self) -> None:
        self.lat: dict[str, list[float]] = defaultdict(list)
        self.status: dict[str, Counter[int]] = defaultdict(Counter)

    def record(self, route: str, seconds: float, status: int) -> None:
        self.lat[route].append(seconds)
        self.status[route][status] += 1

    async def call(self, client: httpx.AsyncClient, route: str, method: str, url: str, **kw: Any) -> httpx.Response:
        t0 = time.perf_counter()
        try:
            r = await client.request(method, url, **kw)
        except httpx.TransportError:
            self.status[route][0] += 1  # connection-level failure: reported as status 0
            raise
        self.lat[route].append(time.perf_counter() - t0)
        self.status[route][r.status_code] += 1
        return r


async def run_load(nodes: list[str], pensioner: dict[str, str], seq: Any, token: str, args: argparse.Namespace,
                   ) -> dict[str, Any]:
    from tests.paced_client import Answer, Phone, Refused, WallClock, http_sender, http_start

    rec = Recorder()
    decisions: Counter[str] = Counter()
    confirmed_sessions: list[str] = []
    sem = asyncio.Semaphore(args.concurrency)
    staff_h = {"Authorization": f"Bearer {token}"}
    # No keep-alive: a pooled connection the server closes (uvicorn's 5 s idle timeout) while a
    # request is being sent would be a client-side race, not the service's error.
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=0)

    def paced_session(i: int) -> None:
        """One phone in real time (tests/paced_client.py): created on node i % 2, its chunks alternating
        between the nodes (the step state lives in the shared database)."""
        h = {"X-Forwarded-For": f"10.1.{i // 250}.{i % 250 + 1}"}
        with httpx.Client(timeout=300, limits=limits) as sc:
            t0 = time.perf_counter()
            try:
                sid, first = http_start(sc, pensioner, nodes[i % 2], h)
            except Refused as exc:
                rec.record("POST /api/v1/sessions", time.perf_counter() - t0, exc.status)
                return
            rec.record("POST /api/v1/sessions", time.perf_counter() - t0, 201)
            senders = [http_sender(sc, sid, u, h) for u in nodes]
            n = [0]

            def send(step: int, nonce: str, ts: list[int], frames: list[bytes], sent_ms: int) -> Answer:
                n[0] += 1
                c0 = time.perf_counter()
                try:
                    a = senders[(i + n[0]) % 2](step, nonce, ts, frames, sent_ms)
                except Refused as exc:
                    rec.record("POST /api/v1/sessions/{id}/steps/{n}/frames", time.perf_counter() - c0, exc.status)
                    raise
                rec.record("POST /api/v1/sessions/{id}/steps/{n}/frames", time.perf_counter() - c0, 200)
                return a

            try:
                answer = Phone(send, first, seq, WallClock(), session_id=sid).run()
            except (Refused, AssertionError, httpx.TransportError):
                return
            d = str(answer.decision)
            decisions[d] += 1
            if d == "CONFIRMED":
                confirmed_sessions.append(sid)

    async with httpx.AsyncClient(timeout=300, limits=limits) as c:

        async def pensioner_session(i: int) -> None:
            async with sem:
                await asyncio.to_thread(paced_session, i)

        async def tipoff(i: int) -> None:
            body = {"description": f"邻居说这位老人去年已经去世，但养老金仍在领取 (benchmark {i})", "name": "王秀英",
                    "id_number": pensioner["id_number"] if i % 2 else None}
            await rec.call(c, "POST /api/v1/tipoffs", "POST", f"{nodes[i % 2]}/api/v1/tipoffs", json=body,
                           headers={"X-Forwarded-For": f"10.2.{i // 250}.{i % 250 + 1}"})

        async def staff_work(i: int) -> None:
            node = nodes[i % 2]
            r = await rec.call(c, "GET /api/staff/cases", "GET", f"{node}/api/staff/cases",
                               params={"kind": "tip_off", "limit": 20}, headers=staff_h)
            if r.status_code != 200:
                return
            items = r.json().get("rows", [])
            if not items:
                return
            case_id = items[i % len(items)]["id"]
            await rec.call(c, "GET /api/staff/cases/{id}", "GET", f"{node}/api/staff/cases/{case_id}", headers=staff_h)
            if i % 3 == 0:
                await rec.call(c, "POST /api/staff/cases/{id}/decision", "POST",
                               f"{nodes[(i + 1) % 2]}/api/staff/cases/{case_id}/decision",
                               json={"decision": "unfounded", "note": "benchmark: no evidence"}, headers=staff_h)

        t0 = time.perf_counter()
        await asyncio.gather(*(tipoff(i) for i in range(args.tipoffs)), return_exceptions=True)
        await asyncio.gather(
            *(pensioner_session(i) for i in range(args.sessions)),
            *(staff_work(i) for i in range(args.staff)),
            return_exceptions=True,
        )
        wall = time.perf_counter() - t0

        # limits across both nodes: one address, one ID number, alternating nodes
        hammer_tip = [
            (await c.post(f"{nodes[i % 2]}/api/v1/tipoffs",
                          json={"description": f"重复举报测试 {i} hammer", "name": "张三"},
                          headers={"X-Forwarded-For": "198.51.100.77"})).status_code
            for i in range(3 * TIPOFF_LIMIT)
        ]
        from lifecert.domain.idnumber import make_id_number

        unknown = {"id_number": make_id_number("110101", date(1951, 1, 1), 99), "name": "某人"}
        hammer_id = [
            (await c.post(f"{nodes[i % 2]}/api/v1/sessions", json=unknown,
                          headers={"X-Forwarded-For": "198.51.100.78"})).status_code
            for i in range(3 * PER_ID)
        ]
    return {
        "wall_s": round(wall, 1),
        "routes": {
            k: {"n": len(v), "p50_ms": pct(v, 50), "p95_ms": pct(v, 95),
                "status": {str(s): n for s, n in sorted(rec.status[k].items())}}
            for k, v in sorted(rec.lat.items())
        },
        "decisions": dict(decisions),
        "confirmed_sessions": confirmed_sessions,
        "limit_tipoffs": {"sent": len(hammer_tip), "accepted": hammer_tip.count(201),
                          "limited": hammer_tip.count(429), "limit": TIPOFF_LIMIT},
        "limit_sessions_per_id": {"sent": len(hammer_id), "limited": hammer_id.count(429),
                                  "passed": len(hammer_id) - hammer_id.count(429), "limit": PER_ID},
        "http_5xx": sum(n for v in rec.status.values() for s, n in v.items() if s >= 500),
        "transport_errors": sum(v.get(0, 0) for v in rec.status.values()),
    }


def check_confirmations(url: str, data_dir: Path, confirmed: list[str]) -> dict[str, Any]:
    from sqlalchemy import select

    from lifecert.config import Settings
    from lifecert.services.context import AppContext
    from lifecert.storage.models import SurvivalConfirmation

    ctx = AppContext(Settings(env="test", data_dir=data_dir, database_url=url))
    with ctx.db.session() as s:
        rows = list(s.scalars(select(SurvivalConfirmation.evidence)))
    ctx.close()
    ids = [str((e or {}).get("session_id")) for e in rows]
    return {"confirmed_answers": len(confirmed), "confirmation_rows": len(rows),
            "lost": len(set(confirmed) - set(ids)), "duplicated": len(ids) - len(set(ids)),
            "without_answer": len(set(ids) - set(confirmed))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=24)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--tipoffs", type=int, default=40)
    ap.add_argument("--staff", type=int, default=60)
    args = ap.parse_args()
    load_before = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="lifecert-load-"))
    os.chmod(tmp, 0o711)  # the postgres user must reach its data folder inside
    procs: list[subprocess.Popen[bytes]] = []
    stop_pg = None
    try:
        url, stop_pg = start_postgres(tmp / "pg")
        redis_url, redis_proc = start_redis(tmp)
        procs.append(redis_proc)
        pensioner, seq, token = prepare(url, tmp / "prep")
        extra = {"LIFECERT_REDIS_URL": redis_url, "LIFECERT_TRUSTED_PROXIES": "127.0.0.1",
                 "LIFECERT_VERIFICATION__RATE_LIMIT_PER_ID_PER_HOUR": str(PER_ID),
                 "LIFECERT_FIXED_CHALLENGES": "blink,open_mouth"}
        nodes = []
        for name in ("a", "b"):
            p, u = start_node(tmp / name, url, tmp / f"{name}.log", **extra)
            procs.append(p)
            nodes.append(u)
        for u in nodes:
            deadline = time.monotonic() + 300
            while httpx.get(f"{u}/readyz", timeout=10).status_code != 200:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{u} not ready")
                time.sleep(0.5)
        res = asyncio.run(asyncio.wait_for(run_load(nodes, pensioner, seq, token, args), timeout=1500))
        res["confirmations"] = check_confirmations(url, tmp / "check", res.pop("confirmed_sessions"))
    finally:
        for p in procs:
            stop(p)
        if stop_pg:
            stop_pg()
        shutil.rmtree(tmp, ignore_errors=True)
    out = {"benchmark": "cluster_load", "date": now(), "machine": machine(), "load_before": load_before,
           "load_after": os.getloadavg(), "args": vars(args),
           "setup": "2 x lifecert serve (1 process, 1 inference thread each) + PostgreSQL + Redis, 127.0.0.1", **res}
    write_json("cluster_load", out)
    def status(v: dict[str, Any]) -> str:
        return ", ".join(f"{s}: {n}" for s, n in v["status"].items())

    rows = "\n".join(
        f"| {k} | {v['n']} | {v['p50_ms']} | {v['p95_ms']} | {status(v)} |" for k, v in res["routes"].items()
    )
    lt, ls, cf = res["limit_tipoffs"], res["limit_sessions_per_id"], res["confirmations"]
    title = "## Two API nodes on one PostgreSQL, Redis limits, mixed traffic (`benchmarks/cluster_load.py`)"
    update_readme_section("cluster_load", f"""{title}

{out['date']}, {out['machine'].get('cpu', '')} ({out['machine'].get('nproc', '')} cores), **shared with up to
seven other engineers' jobs** (load average {load_before[0]:.1f} before, {out['load_after'][0]:.1f} after):
latencies are upper bounds of what the code needs. {args.sessions} pensioner sessions with real frames
(talking-head video, server-paced in real time by tests/paced_client.py: session created on one node, its
chunks alternating between both nodes),
{args.concurrency} at a time; {args.tipoffs} tip-offs from distinct addresses; {args.staff} caseworker reads
(queue + case page) and a decision on every third; {res['wall_s']} s.

| route | n | p50 ms | p95 ms | status |
|---|---|---|---|---|
{rows}

- HTTP 5xx: **{res['http_5xx']}**; connection errors: {res['transport_errors']}. Decisions: {res['decisions']}.
- Limits across both nodes (one address / one ID number, alternating nodes): tip-offs {lt['accepted']} accepted of
  {lt['sent']} (limit {lt['limit']}/h), sessions for one ID number {ls['passed']} passed of {ls['sent']}
  (limit {ls['limit']}/h).
- Confirmations: {cf['confirmed_answers']} CONFIRMED answers, {cf['confirmation_rows']} confirmation rows,
  lost {cf['lost']}, duplicated {cf['duplicated']}, rows without an answer {cf['without_answer']}.
""")
    print({k: v for k, v in out.items() if k != "machine"})


if __name__ == "__main__":
    main()
