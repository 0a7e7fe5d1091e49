"""Server-side latency of a 10-frame verification session and sustained sessions/s.

Runs the real service (`lifecert serve`, uvicorn on 127.0.0.1) on a throw-away data dir with
the talking-head person enrolled (plus LFW people for the 1:N search), then:

1. sequential: one session at a time — latency of POST /sessions and of the 10-frame upload
   (decode, detect + landmarks on all 10 frames, liveness, embed best-k, 1:1 + 1:N, records);
2. open-loop load at a fixed arrival rate (default 5 sessions/s, bounded count and time):
   per-session latency (create + upload) p50/p95 and the achieved rate;
3. closed-loop with C concurrent clients: the sustained maximum sessions/s.

The client runs on the same machine (it competes for the same cores; its JPEGs are prepared
in advance). Usage: .venv/bin/python benchmarks/verify_latency.py [--workers 2 --threads 1]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._common import machine, now, update_readme_section, write_json  # noqa: E402

FACES = Path(os.environ.get("LIFECERT_SHARED_FACES", ROOT.parent / "shared" / "faces"))
VIDEO = FACES / "video" / "talking_head_a.mp4"


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.array(xs), q)) if xs else float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def build_frames() -> tuple[list[bytes], list[int], np.ndarray]:
    """10 JPEG frames (512x512) with a blink in window 1 and a mouth opening in window 2."""
    from lifecert.config import Settings
    from lifecert.engine import geometry
    from lifecert.engine.image import encode_jpeg
    from lifecert.engine.loader import load_engine

    cap = cv2.VideoCapture(str(VIDEO))
    video = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        video.append(f)
    eng = load_engine(Settings(), name="dlib")
    ear = np.full(len(video), np.nan)
    mar = np.full(len(video), np.nan)
    for i in range(0, len(video), 2):
        faces = eng.detect(video[i])
        if faces and faces[0].landmarks68 is not None:
            ear[i] = geometry.eye_aspect_ratio(faces[0].landmarks68)
            mar[i] = geometry.mouth_aspect_ratio(faces[0].landmarks68)
    base = float(np.nanpercentile(ear, 75))
    blink = 30 + int(np.nanargmin(ear[30:120]))  # leave neutral frames before it
    mouth = int(np.nanargmax(np.where(np.arange(len(video)) > blink, mar, np.nan)))
    neutral = [i for i in range(0, len(video), 2) if ear[i] > 0.85 * base and mar[i] < 0.2 and abs(i - mouth) > 4]
    after = [i for i in neutral if i > blink + 2]
    rest = [i for i in neutral if i not in after[:1]]
    pick = [*rest[:3], blink, after[0], rest[3], rest[4], mouth, rest[5], rest[6]]
    ts = [0, 600, 1200, 2400, 3000, 3800, 4800, 5800, 6600, 7200]
    template = video[100]
    if len(pick) != len(ts):
        raise SystemExit("could not pick 10 frames from the video")
    return [encode_jpeg(video[i], 85) for i in pick], ts, template


def enroll(data_dir: Path, template: np.ndarray, n_lfw: int) -> dict[str, str]:
    """Enroll the talking-head person and ``n_lfw`` LFW people; returns the test pensioner."""
    from lifecert.config import Settings
    from lifecert.domain.idnumber import make_id_number
    from lifecert.engine.image import encode_jpeg, read_image_file
    from lifecert.engine.loader import load_engine
    from lifecert.services.context import AppContext
    from lifecert.services.templates import add_template, store_photo, upsert_pensioner

    ctx = AppContext(Settings(data_dir=data_dir))
    ctx.set_engine(load_engine(ctx.settings))
    people = sorted((FACES / "lfw" / "images").iterdir())[:n_lfw]
    items: list[tuple[str, np.ndarray]] = [("王秀英", template)]
    items += [(p.name[:60], read_image_file(sorted(p.iterdir())[0])) for p in people]
    target: dict[str, str] = {}
    with ctx.db.session() as s:
        for k, (name, img) in enumerate(items):
            faces = ctx.engine.analyze(img)
            if not faces or faces[0].embedding is None:
                continue
            data = encode_jpeg(img, 95)
            sha = hashlib.sha256(data).hexdigest()
            idn = make_id_number("110101", date(1950, 1, 1 + k % 28), 1 + 2 * (k // 28) % 998)
            p = upsert_pensioner(s, idn, name)
            store_photo(ctx, s, data, sha, img.shape[1], img.shape[0])
            add_template(ctx, s, p, faces[0].embedding, photo_sha256=sha, quality=faces[0].quality)
            if k == 0:
                target = {"id_number": p.id_number, "name": p.name}
    ctx.close()
    return target


async def one_session(
    client: httpx.AsyncClient, who: dict[str, str], frames: list[bytes], ts: list[int]
) -> dict[str, Any]:
    t0 = time.perf_counter()
    r = await client.post("/api/v1/sessions", json=who)
    r.raise_for_status()
    sess = r.json()
    t1 = time.perf_counter()
    files = [("frames", (f"{i}.jpg", b, "image/jpeg")) for i, b in enumerate(frames)]
    r = await client.post(
        f"/api/v1/sessions/{sess['session_id']}/frames",
        data={"nonce": sess["nonce"], "timestamps": json.dumps(ts)},
        files=files,
    )
    if r.status_code != 200:
        raise RuntimeError(f"upload failed: {r.status_code} {r.text[:300]}")
    t2 = time.perf_counter()
    return {"create_s": t1 - t0, "upload_s": t2 - t1, "total_s": t2 - t0, "decision": r.json()["decision"]}


async def sequential(
    base: str, who: dict[str, str], frames: list[bytes], ts: list[int], n: int
) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=base, timeout=60) as c:
        return [await one_session(c, who, frames, ts) for _ in range(n)]


async def open_loop(
    base: str, who: dict[str, str], frames: list[bytes], ts: list[int], rate: float, n: int, max_s: float
) -> tuple[list[dict[str, Any]], float]:
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=httpx.Limits(max_connections=200)) as c:
        tasks = []
        t0 = time.perf_counter()
        for i in range(n):
            due = t0 + i / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            if time.perf_counter() - t0 > max_s:
                break
            tasks.append(asyncio.create_task(one_session(c, who, frames, ts)))
        res = await asyncio.gather(*tasks)
        return list(res), time.perf_counter() - t0


async def closed_loop(
    base: str, who: dict[str, str], frames: list[bytes], ts: list[int], clients: int, seconds: float
) -> tuple[list[dict[str, Any]], float]:
    out: list[dict[str, Any]] = []
    stop = time.perf_counter() + seconds

    async def worker(c: httpx.AsyncClient) -> None:
        while time.perf_counter() < stop:
            out.append(await one_session(c, who, frames, ts))

    async with httpx.AsyncClient(base_url=base, timeout=60) as c:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(c) for _ in range(clients)))
        return out, time.perf_counter() - t0


def cpu_per_session(
    data_dir: Path, who: dict[str, str], frames: list[bytes], ts: list[int], n: int, k: int
) -> dict[str, float]:
    """CPU seconds of one upload, measured in-process with thread CPU time (unlike wall time, not
    inflated by other processes on a busy machine): the capacity estimate is cores / CPU per session."""
    from lifecert.config import Settings, VerificationSettings
    from lifecert.services.context import AppContext
    from lifecert.services.verification import VerificationService

    ctx = AppContext(
        Settings(
            data_dir=data_dir,
            fixed_challenges="blink,open_mouth",
            verification=VerificationSettings(embed_best_k=k, rate_limit_per_id_per_hour=10**7),
        )
    )
    svc = VerificationService(ctx)
    svc.warm_up()
    cpu, wall = [], []
    for _ in range(n + 2):
        st = svc.create_session(who["id_number"], who["name"], "bench")
        c0, w0 = time.thread_time(), time.perf_counter()
        svc.submit_frames(st.session_id, st.nonce, ts, frames, "bench")
        cpu.append(time.thread_time() - c0)
        wall.append(time.perf_counter() - w0)
    ctx.close()
    cpu, wall = cpu[2:], wall[2:]
    per = float(np.median(cpu))
    return {
        "n": n,
        "cpu_ms_p50": round(per * 1000, 1),
        "wall_ms_p50": round(float(np.median(wall)) * 1000, 1),
        "capacity_sessions_per_s": round((os.cpu_count() or 1) / per, 2),
    }


def summary(rows: list[dict[str, Any]], key: str) -> dict[str, float]:
    xs = [r[key] * 1000 for r in rows]
    return {"p50_ms": round(pct(xs, 50), 1), "p95_ms": round(pct(xs, 95), 1), "max_ms": round(max(xs), 1) if xs else 0}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=2, help="server processes")
    ap.add_argument("--threads", type=int, default=1, help="inference threads per process")
    ap.add_argument("--lfw", type=int, default=100, help="extra enrolled LFW people (1:N gallery)")
    ap.add_argument("--sequential", type=int, default=30)
    ap.add_argument("--rate", type=float, default=5.0)
    ap.add_argument("--rate-sessions", type=int, default=100)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--embed-k", type=int, default=2)
    ap.add_argument("--no-readme", action="store_true")
    args = ap.parse_args()

    load_before = os.getloadavg()
    frames, ts, template = build_frames()
    tmp = Path(tempfile.mkdtemp(prefix="lifecert-bench-"))
    who = enroll(tmp / "data", template, args.lfw)
    cpu = cpu_per_session(tmp / "data", who, frames, ts, 15, args.embed_k)
    port = free_port()
    env = {
        **os.environ,
        "LIFECERT_ENV": "test",  # serve refuses to start without an explicit environment
        "LIFECERT_DATA_DIR": str(tmp / "data"),
        "LIFECERT_FIXED_CHALLENGES": "blink,open_mouth",
        "LIFECERT_INFERENCE_THREADS": str(args.threads),
        "LIFECERT_VERIFICATION__EMBED_BEST_K": str(args.embed_k),
        "LIFECERT_VERIFICATION__RATE_LIMIT_PER_ID_PER_HOUR": "10000000",
        "LIFECERT_VERIFICATION__RATE_LIMIT_PER_CLIENT_PER_HOUR": "10000000",
    }
    cmd = [str(ROOT / ".venv/bin/lifecert"), "serve", "--port", str(port), "--workers", str(args.workers)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        t0 = time.perf_counter()
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.perf_counter() - t0 > 180:
                raise SystemExit(f"server did not start: {proc.stderr.read().decode() if proc.stderr else ''}")
            time.sleep(0.2)
        if args.workers > 1:  # readiness is per process: let every worker finish its warm-up
            time.sleep(8)
        startup_s = time.perf_counter() - t0
        asyncio.run(sequential(base, who, frames, ts, 3))  # warm connections and caches
        seq = asyncio.run(sequential(base, who, frames, ts, args.sequential))
        ol, ol_s = asyncio.run(open_loop(base, who, frames, ts, args.rate, args.rate_sessions, args.seconds * 2))
        cl, cl_s = asyncio.run(closed_loop(base, who, frames, ts, args.clients, args.seconds))
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)

    decisions: dict[str, int] = {}
    for r in seq + ol + cl:
        decisions[r["decision"]] = decisions.get(r["decision"], 0) + 1
    from lifecert.config import Settings

    defaults = Settings()
    result = {
        "machine": machine(),
        "date": now(),
        "dataset": f"talking_head_a.mp4 (10 frames 512x512 JPEG q85, blink+open_mouth), gallery 1 + {args.lfw} LFW",
        "config": vars(args) | {"startup_to_ready_s": round(startup_s, 1),
                                "probe_profile": defaults.embedding.probe_profile,
                                "recognizer": defaults.dlib_recognizer},
        "cpu_per_session": cpu,
        "sequential": {"n": len(seq), "create": summary(seq, "create_s"), "upload": summary(seq, "upload_s")},
        "open_loop": {
            "target_rate": args.rate,
            "n": len(ol),
            "achieved_rate": round(len(ol) / ol_s, 2),
            "total": summary(ol, "total_s"),
            "upload": summary(ol, "upload_s"),
        },
        "closed_loop": {
            "clients": args.clients,
            "n": len(cl),
            "sessions_per_s": round(len(cl) / cl_s, 2),
            "total": summary(cl, "total_s"),
        },
        "decisions": decisions,
        "load_average_1m": {"before": round(load_before[0], 2), "after": round(os.getloadavg()[0], 2)},
    }
    name = f"verify_latency_w{args.workers}t{args.threads}k{args.embed_k}"
    write_json(name, result)
    print(json.dumps(result, indent=1))
    if not args.no_readme:
        _readme(result, name)


def _readme(r: dict[str, Any], name: str) -> None:
    rows_path = Path(__file__).resolve().parent / "results"
    rows = []
    for p in sorted(rows_path.glob("verify_latency_w*.json")):
        d = json.loads(p.read_text())
        c = d["config"]
        floor = d["open_loop"]["total"]["p95_ms"] < 1000 and d["open_loop"]["achieved_rate"] >= 0.95 * c["rate"]
        rows.append(
            f"| {c['workers']} × {c['threads']} | {c['embed_k']} | {c.get('probe_profile', 'single')} | "
            f"{c.get('recognizer', 'dlib')} | {d['cpu_per_session']['cpu_ms_p50']} | "
            f"{d['cpu_per_session']['capacity_sessions_per_s']} | {d['sequential']['upload']['p50_ms']} | "
            f"{d['sequential']['upload']['p95_ms']} | {c['rate']}/s → {d['open_loop']['achieved_rate']}/s | "
            f"{d['open_loop']['total']['p50_ms']} | {d['open_loop']['total']['p95_ms']} | "
            f"{d['closed_loop']['sessions_per_s']} ({d['closed_loop']['clients']} clients, p95 "
            f"{d['closed_loop']['total']['p95_ms']} ms) | {'met' if floor else 'NOT met'} | {d['decisions']} | "
            f"{d.get('load_average_1m', {}).get('before', '?')} / {d.get('load_average_1m', {}).get('after', '?')} |"
        )
    m = r["machine"]
    cols = [
        "workers × threads",
        "best-k",
        "probe profile",
        "recogniser",
        "CPU ms/session",
        "capacity/s (cores ÷ CPU)",
        "upload p50 ms",
        "upload p95 ms",
        "open-loop rate",
        "p50 ms",
        "p95 ms",
        "closed-loop sessions/s",
        "floor",
        "decisions",
        "load avg before / after",
    ]
    header = "| " + " | ".join(cols) + " |\n|" + "---|" * len(cols)
    body = f"""## Verification latency (`benchmarks/verify_latency.py`)

Machine: {m["nproc"]} × {m["cpu"]}, {r["date"]}. Dataset: {r["dataset"]}. Real `lifecert serve` (uvicorn) on
127.0.0.1, client on the same cores. Sequential = one session at a time (upload request: decode, detect + 68
landmarks on all 10 frames, liveness, embed best-k, 1:1 + 1:N, records). Open loop = sessions started at a fixed
rate (create + upload latency). Closed loop = N clients back to back. Floor: p95 < 1 s at 5 sessions/s.
dlib holds the GIL, so CPU parallelism comes from server processes (workers × inference threads per process).
CPU ms/session = thread CPU time of one upload measured in-process (not inflated by queueing); capacity = cores ÷ that.
The load average columns show how busy the machine already was (other jobs sharing the 2 cores): with a load of
~5–7 on 2 cores, wall-clock latencies and achieved rates here are far below what an idle machine gives; the CPU
column is the better guide. Per session CPU: HOG detection and 68 landmarks on 10 frames at 320 px, and the
ResNet on best-k crops × the probe profile's views (~8 ms per crop on onnxruntime, ~75 ms with dlib's own
inference — rows with recogniser `dlib` predate the switch).

{header}
""" + "\n".join(rows)
    update_readme_section("verify_latency", body)


if __name__ == "__main__":
    main()
