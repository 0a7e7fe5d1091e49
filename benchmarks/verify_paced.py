"""Server-paced capture under load: latency of every step decision, CPU per session, with PAD.

Starts the real service (`lifecert serve`, uvicorn on 127.0.0.1) on a throw-away data dir with the
talking-head person enrolled (plus LFW people for the 1:N search) and, when available, the
MiniFASNet PAD pack installed from ../shared/models/minifasnet. Then N simulated phones run paced
sessions concurrently in real time for a bounded time: each captures at 8 fps, sends a chunk of
frames about every second (never two at once: each chunk needs the nonce from the previous
answer), shows each prompt after the server's prompt delay, reacts after ``--reaction-ms`` and
acts it with real frames of the video (a blink, a mouth opening; fixed challenges blink,open_mouth
because the video holds no head turn). Every chunk request is one "step decision": its latency is
what a pensioner waits for the next prompt or hint.

CPU ms per session: one full paced session run in-process on a virtual clock, thread CPU time
(not inflated by other processes on a shared machine).

Usage: .venv/bin/python benchmarks/verify_paced.py [--workers 2 --threads 1 --phones 5 --seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._common import machine, now, update_readme_section, write_json  # noqa: E402
from benchmarks.verify_latency import VIDEO, enroll, free_port, pct  # noqa: E402

FRAME_MS = 125
PAD_DIR = ROOT.parent / "shared" / "models" / "minifasnet"
FUSION_DIRS = {p: ROOT.parent / "shared" / "models" / p for p in ("edgeface", "yunet")}


def build_clip() -> dict[str, Any]:
    """JPEG frames of the video at 8 fps: a calm run (played back and forth), a blink, a mouth opening."""
    from lifecert.config import Settings
    from lifecert.engine import geometry
    from lifecert.engine.image import encode_jpeg
    from lifecert.services.verification import load_frame_engine

    cap = cv2.VideoCapture(str(VIDEO))
    video = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        video.append(f)
    frames = [video[i] for i in range(0, len(video), 3)]
    eng = load_frame_engine(Settings(), name="dlib")
    ear = np.full(len(frames), np.nan)
    mar = np.full(len(frames), np.nan)
    for i, f in enumerate(frames):
        faces = eng.detect(f)
        if faces and faces[0].landmarks68 is not None:
            ear[i] = geometry.eye_aspect_ratio(faces[0].landmarks68)
            mar[i] = geometry.mouth_aspect_ratio(faces[0].landmarks68)
    base = float(np.nanpercentile(ear, 75))
    runs: list[list[int]] = [[]]
    for i in range(len(frames)):
        if ear[i] >= 0.85 * base and mar[i] < 0.25:
            runs[-1].append(i)
        elif runs[-1]:
            runs.append([])
    calm = max(runs, key=len)
    b = next(i for i in range(2, len(frames) - 2) if ear[i] < 0.6 * base)
    m = next(i for i in range(2, len(frames) - 2) if mar[i] > 0.4)
    jpeg = [encode_jpeg(f, 85) for f in frames]
    return {
        "neutral": [jpeg[i] for i in calm + calm[-2:0:-1]],
        "blink": [jpeg[i] for i in range(b - 2, b + 3)],
        "open_mouth": [jpeg[i] for i in range(m - 2, m + 3)],
        "template": video[100],
    }


class Phone:
    """One simulated pensioner phone (real time): capture at 8 fps, one chunk in flight at a time."""

    def __init__(self, client: httpx.AsyncClient, who: dict[str, str], clip: dict[str, Any], reaction_ms: int) -> None:
        self.c, self.who, self.clip, self.reaction_ms = client, who, clip, reaction_ms
        self.step_ms: list[float] = []
        self.final_ms: float | None = None

    async def run(self, deadline: float) -> str | None:
        r = await self.c.post("/api/v1/sessions", json=self.who | {"protocol": "paced"})
        if r.status_code != 201:
            raise RuntimeError(f"create failed: {r.status_code} {r.text[:200]}")
        s = r.json()
        sid, step = s["session_id"], s["step"]
        t0 = time.perf_counter()
        buf: list[tuple[int, bytes]] = []
        script: list[bytes] = []  # frames still to show for the current prompt
        prompt_at = 0.0
        n = 0
        next_send = t0 + 1.0
        while time.perf_counter() < deadline:
            now_ = time.perf_counter()
            t_ms = int((now_ - t0) * 1000)
            if step["kind"] == "challenge" and not script and now_ >= prompt_at and prompt_at > 0:
                script = list(self.clip[step["challenge"]])
                prompt_at = 0.0
            frame = script.pop(0) if script else self.clip["neutral"][n % len(self.clip["neutral"])]
            n += 1
            buf.append((t_ms, frame))
            buf = buf[-12:]
            if time.perf_counter() >= next_send:
                ts = [t for t, _ in buf]
                files = [("frames", (f"{i}.jpg", b, "image/jpeg")) for i, (_, b) in enumerate(buf)]
                a0 = time.perf_counter()
                r = await self.c.post(
                    f"/api/v1/sessions/{sid}/steps/{step['index']}/frames",
                    data={"nonce": step["nonce"], "timestamps": json.dumps(ts)},
                    files=files,
                )
                dt = (time.perf_counter() - a0) * 1000
                buf = []
                next_send = time.perf_counter() + 1.0
                if r.status_code != 200:
                    raise RuntimeError(f"chunk failed: {r.status_code} {r.text[:200]}")
                out = r.json()
                if out["status"] == "decided":
                    self.final_ms = dt
                    return str(out["result"]["decision"])
                self.step_ms.append(dt)
                if out["step"]["index"] != step["index"]:
                    step = out["step"]
                    prompt_at = time.perf_counter() + (step["prompt_delay_ms"] + self.reaction_ms) / 1000
                else:
                    step = out["step"]
            await asyncio.sleep(max(0.0, FRAME_MS / 1000 - (time.perf_counter() - now_)))
        return None


async def load_run(
    base: str, who: dict[str, str], clip: dict[str, Any], phones: int, seconds: float, reaction_ms: int
) -> dict[str, Any]:
    step_ms: list[float] = []
    final_ms: list[float] = []
    decisions: dict[str, int] = {}
    durations: list[float] = []
    stop = time.perf_counter() + seconds

    async def user(c: httpx.AsyncClient) -> None:
        while time.perf_counter() < stop:
            ph = Phone(c, who, clip, reaction_ms)
            t0 = time.perf_counter()
            d = await ph.run(stop + 30)
            step_ms.extend(ph.step_ms)
            if ph.final_ms is not None:
                final_ms.append(ph.final_ms)
            decisions[str(d)] = decisions.get(str(d), 0) + 1
            durations.append(time.perf_counter() - t0)

    async with httpx.AsyncClient(base_url=base, timeout=60, limits=httpx.Limits(max_connections=50)) as c:
        await asyncio.gather(*(user(c) for _ in range(phones)))
    every = step_ms + final_ms

    def s(xs: list[float]) -> dict[str, float]:
        return {"n": len(xs), "p50_ms": round(pct(xs, 50), 1), "p95_ms": round(pct(xs, 95), 1),
                "max_ms": round(max(xs), 1) if xs else 0.0}

    return {
        "phones": phones,
        "sessions": len(durations),
        "session_s_p50": round(pct(durations, 50), 2),
        "chunk": s(step_ms),
        "final_chunk": s(final_ms),
        "every_step_decision": s(every),
        "decisions": decisions,
    }


def cpu_per_session(data_dir: Path, who: dict[str, str], clip: dict[str, Any], n: int) -> dict[str, Any]:
    """Thread CPU time of whole paced sessions, in-process on a virtual clock (PAD as configured)."""
    from lifecert.config import Settings, VerificationSettings
    from lifecert.engine.pad import load_pad
    from lifecert.services.context import AppContext
    from lifecert.services.verification import VerificationService

    settings = Settings(
        data_dir=data_dir,
        fixed_challenges="blink,open_mouth",
        verification=VerificationSettings(rate_limit_per_id_per_hour=10**7),
    )
    ctx = AppContext(settings)
    clock_ms = [0]
    t_base = datetime.now(UTC)

    def clock() -> datetime:
        return t_base + timedelta(milliseconds=clock_ms[0])

    pad = load_pad(settings)
    svc = VerificationService(ctx, pad=pad, clock=clock)
    svc.warm_up()
    cpu, chunks, decisions = [], [], {}
    rng = random.Random(5)
    for k in range(n + 1):
        t_base = datetime.now(UTC)
        clock_ms[0] = 0
        st = svc.create_session(who["id_number"], who["name"], "bench", protocol="paced")
        step = st.step  # type: ignore[union-attr]
        sid = st.session_id
        t, q, c0, nchunks = 0, 0, time.thread_time(), 0
        script: list[bytes] = []
        prompt_t: int | None = None
        result = None
        while result is None and t < 60_000:
            buf = []
            for _ in range(8):
                if prompt_t is not None and t >= prompt_t and step.challenge:
                    script, prompt_t = list(clip[step.challenge]), None
                frame = script.pop(0) if script else clip["neutral"][q % len(clip["neutral"])]
                q += 1
                buf.append((t, frame))
                t += FRAME_MS
            clock_ms[0] = t + 60
            r = svc.submit_chunk(sid, step.index, step.nonce, [x for x, _ in buf], [b for _, b in buf], "bench")
            nchunks += 1
            if r.status == "decided":
                result = r.result
            elif r.step is not None:
                if r.step.index != step.index:
                    prompt_t = t + r.step.prompt_delay_ms + rng.randint(400, 900)
                step = r.step
        if k > 0:  # the first session pays one-off allocations
            cpu.append(time.thread_time() - c0)
            chunks.append(nchunks)
            d = result.decision if result else "none"
            decisions[str(d)] = decisions.get(str(d), 0) + 1
    ctx.close()
    return {
        "n": n,
        "pad": pad is not None,
        "cpu_ms_per_session_p50": round(float(np.median(cpu)) * 1000, 1),
        "chunks_per_session_p50": float(np.median(chunks)),
        "cpu_ms_per_chunk": round(float(np.sum(cpu)) / float(np.sum(chunks)) * 1000, 1),
        "capacity_sessions_per_s": round((os.cpu_count() or 1) / float(np.median(cpu)), 2),
        "decisions": decisions,
    }


def install_pad(data_dir: Path) -> bool:
    if not PAD_DIR.is_dir():
        return False
    env = {**os.environ, "LIFECERT_DATA_DIR": str(data_dir)}
    r = subprocess.run(
        [str(ROOT / ".venv/bin/lifecert"), "models", "install", "minifasnet", "--from", str(PAD_DIR)],
        env=env, capture_output=True, text=True, timeout=300,
    )
    return r.returncode == 0


def install_fusion(data_dir: Path) -> bool:
    """EdgeFace + YuNet packs, then the enrolled people's EdgeFace templates (``templates rebuild
    --engine edgeface``, as enrollment makes them): the service then fuses dlib and EdgeFace for 1:1 and 1:N."""
    if not all(d.is_dir() for d in FUSION_DIRS.values()):
        return False
    env = {**os.environ, "LIFECERT_DATA_DIR": str(data_dir)}
    cli = str(ROOT / ".venv/bin/lifecert")
    for pack, d in FUSION_DIRS.items():
        r = subprocess.run([cli, "models", "install", pack, "--from", str(d)], env=env, capture_output=True,
                           text=True, timeout=300)
        if r.returncode != 0:
            return False
    r = subprocess.run([cli, "templates", "rebuild", "--engine", "edgeface"], env=env, capture_output=True,
                       text=True, timeout=900)
    return r.returncode == 0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=2, help="server processes")
    ap.add_argument("--threads", type=int, default=1, help="inference threads per process")
    ap.add_argument("--lfw", type=int, default=100, help="extra enrolled LFW people (1:N gallery)")
    ap.add_argument("--phones", type=int, default=5, help="concurrent paced sessions")
    ap.add_argument("--seconds", type=float, default=60.0, help="new sessions start only within this time")
    ap.add_argument("--reaction-ms", type=int, default=800)
    ap.add_argument("--cpu-sessions", type=int, default=5)
    ap.add_argument("--no-pad", action="store_true")
    ap.add_argument("--fusion", action="store_true", help="install EdgeFace + YuNet: fused dlib+EdgeFace 1:1 and 1:N")
    ap.add_argument("--no-readme", action="store_true")
    args = ap.parse_args()

    load_before = os.getloadavg()
    clip = build_clip()
    tmp = Path(tempfile.mkdtemp(prefix="lifecert-bench-paced-"))
    who = enroll(tmp / "data", clip["template"], args.lfw)
    pad_on = False if args.no_pad else install_pad(tmp / "data")
    fusion_on = install_fusion(tmp / "data") if args.fusion else False
    if args.fusion and not fusion_on:
        raise SystemExit("--fusion: the EdgeFace/YuNet packs could not be installed from ../shared/models")
    cpu = cpu_per_session(tmp / "data", who, clip, args.cpu_sessions)
    port = free_port()
    env = {
        **os.environ,
        "LIFECERT_ENV": "test",
        "LIFECERT_DATA_DIR": str(tmp / "data"),
        "LIFECERT_FIXED_CHALLENGES": "blink,open_mouth",
        "LIFECERT_INFERENCE_THREADS": str(args.threads),
        "LIFECERT_VERIFICATION__RATE_LIMIT_PER_ID_PER_HOUR": "10000000",
        "LIFECERT_VERIFICATION__RATE_LIMIT_PER_CLIENT_PER_HOUR": "10000000",
        "LIFECERT_LIVENESS__ALLOW_NO_PAD": "1",
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
        run = asyncio.run(load_run(base, who, clip, args.phones, args.seconds, args.reaction_ms))
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    result = {
        "machine": machine(),
        "date": now(),
        "dataset": f"talking_head_a.mp4 at 8 fps (512x512 JPEG q85), blink+open_mouth acted after "
        f"{args.reaction_ms} ms, gallery 1 + {args.lfw} LFW",
        "config": vars(args) | {"pad_installed": pad_on, "fusion_installed": fusion_on},
        "cpu_per_session": cpu,
        "load": run,
        "floor_met": run["every_step_decision"]["p95_ms"] < 1000,
        "load_average_1m": {"before": round(load_before[0], 2), "after": round(os.getloadavg()[0], 2)},
    }
    name = (f"verify_paced_w{args.workers}t{args.threads}p{args.phones}{'' if pad_on else '_nopad'}"
            f"{'_fusion' if fusion_on else ''}")
    write_json(name, result)
    print(json.dumps(result, indent=1))
    if not args.no_readme:
        _readme(result)


def _readme(r: dict[str, Any]) -> None:
    rows = []
    for p in sorted((Path(__file__).resolve().parent / "results").glob("verify_paced_w*.json")):
        d = json.loads(p.read_text())
        c, ld, cp = d["config"], d["load"], d["cpu_per_session"]
        e = ld["every_step_decision"]
        rows.append(
            f"| {c['workers']} × {c['threads']} | {'on' if c['pad_installed'] else 'off'} | "
            f"{'dlib+EdgeFace' if c.get('fusion_installed') else 'dlib'} | {ld['phones']} | "
            f"{ld['sessions']} | {e['n']} | {e['p50_ms']} | {e['p95_ms']} | {e['max_ms']} | "
            f"{ld['final_chunk']['p95_ms']} | {cp['cpu_ms_per_session_p50']} | {cp['cpu_ms_per_chunk']} | "
            f"{cp['capacity_sessions_per_s']} | {'met' if d['floor_met'] else 'NOT met'} | {ld['decisions']} | "
            f"{d['load_average_1m']['before']} / {d['load_average_1m']['after']} | {d['date']} |"
        )
    m = r["machine"]
    cols = ["workers × threads", "PAD", "face models", "phones", "sessions", "step decisions", "p50 ms", "p95 ms",
            "max ms", "final step p95 ms", "CPU ms/session", "CPU ms/chunk", "capacity sessions/s", "floor",
            "decisions", "load avg before / after", "date"]
    header = "| " + " | ".join(cols) + " |\n|" + "---|" * len(cols)
    body = f"""## Paced capture latency (`benchmarks/verify_paced.py`)

Machine: {m["nproc"]} × {m["cpu"]}. Dataset: {r["dataset"]}. Real `lifecert serve` on 127.0.0.1; N simulated
phones run server-paced sessions at the same time in real time (8 fps, ~1 chunk/s, one chunk in flight per
phone), client on the same cores. A "step decision" is one chunk request: decode, detection + 68 landmarks
(+ MiniFASNet PAD on the full frames when installed) on its frames, the step rule, and for the last chunk the
whole-session decision (embedding of the best frames, 1:1, 1:N, flat/still checks, PAD fusion, records).
Floor (issue 12): p95 < 1 s per step decision at 5 concurrent sessions on 2 cores. CPU ms/session: thread CPU
time of whole sessions in-process (virtual clock), capacity = cores ÷ that. The machine was SHARED with up to
seven other engineers' jobs during these runs (see the load average: ~18 on 2 cores means this benchmark got
roughly a ninth of the CPU): the wall-clock columns measure the crowd, not the service. What the CPU column
implies (arithmetic, not a measurement): N phones each sending one chunk a second need N × CPU ms/chunk of CPU
per second; at 5 phones and ~225 ms that is ~1.1 of the 2 cores. Per frame (measured in-process on the same
machine): JPEG decode ~3 ms, HOG detection + 68 landmarks at 320 px ~18 ms, MiniFASNet (both nets) ~11 ms —
PAD runs on at most 3 frames per chunk. `--fusion` (face models dlib+EdgeFace): the EdgeFace/YuNet packs are
installed and every enrolled person gets an EdgeFace template; the last chunk then also embeds the best frames
with EdgeFace on dlib's faces and scores 1:1 and 1:N with the fused model (lifecert/services/fusion.py).

{header}
""" + "\n".join(rows)
    update_readme_section("verify_paced", body)


if __name__ == "__main__":
    main()
