"""Verification latency: every step decision of server-paced sessions under load, CPU per session.

Starts the real service (`lifecert serve`, uvicorn on 127.0.0.1) on a throw-away data dir with the
talking-head person enrolled (plus LFW people for the 1:N search) and, when available, the
MiniFASNet PAD pack installed from ../shared/models/minifasnet. Then N simulated phones
(tests/paced_client.py, one thread each) run paced sessions concurrently in real time for a bounded
time: each captures at the rate each step asks (8 fps; the blink step 15), sends a chunk about every
second (never two at once: each chunk needs
the nonce from the previous answer), shows each prompt after the server's prompt delay, reacts after
``--reaction-ms`` and acts it: a blink and a mouth opening with real frames of the video, a head turn or nod
(the video holds none) with its calm frames turned or tilted by benchmarks.attacks.turn_head along the e2e fake
camera's 600/600/600 ms ramp (benchmarks.slow_move's Warper and pose_curve: SYNTHETIC, a 2D warp).
``--draw production`` (default): the server draws each session's challenges as production does
(``lifecert.domain.challenges.draw``: open_mouth + one head motion, a third half the time, random order), fresh for
every session (benchmarks/draw_hook.py: every session here is the same enrolled person, whom production would give
her recent set again); ``--draw fixed``: ``--fixed`` (blink,open_mouth, the rows before session 12's draw rows).
Every chunk request is one "step decision": its latency is what a pensioner waits for the next prompt or hint.

CPU per session: whole paced sessions run in-process on a virtual clock, thread CPU time (not
inflated by other processes on a shared machine), split by stage (decode, detection + landmarks,
PAD, the final decision) by timing each stage's calls with the same thread clock.

Usage: nice -n 10 .venv/bin/python benchmarks/verify_latency.py [--workers 2 --threads 1 --phones 5
--seconds 60] [--cpu-only]; in a worktree without ../shared set LIFECERT_SHARED_FACES and LIFECERT_SHARED_MODELS.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._common import machine, now, update_readme_section, write_json  # noqa: E402
from tests.paced_client import (  # noqa: E402
    Answer,
    Clip,
    Phone,
    Send,
    SimClock,
    VirtualTime,
    WallClock,
    http_sender,
    http_start,
    service_sender,
    step_of,
    talking_head_clip,
)

FACES = Path(os.environ.get("LIFECERT_SHARED_FACES", ROOT.parent / "shared" / "faces"))
VIDEO = FACES / "video" / "talking_head_a.mp4"
# ../shared/models, or LIFECERT_SHARED_MODELS (as tests/conftest): a worktree under /work/wt has no ../shared,
# and without the override the PAD pack was silently not installed there (a "PAD on" run measured PAD off).
MODELS = Path(os.environ.get("LIFECERT_SHARED_MODELS", ROOT.parent / "shared" / "models"))
PAD_DIR = MODELS / "minifasnet"
FUSION_DIRS = {p: MODELS / p for p in ("edgeface", "yunet")}
RESULT_PREFIX = "verify_latency_paced"
SERVE_HOOK = ROOT / "benchmarks" / "serve_hook"  # sitecustomize: a fresh draw per session (benchmarks/draw_hook.py)
HEAD_PEAK_DEG = {"turn_left": 45.0, "turn_right": 45.0, "nod": 30.0}  # turn_head's warp angle at the movement's peak
MOVE_MS = (600, 600, 600)  # out / hold / back: tests/e2e/fake_camera's POSE_RAMP_MS / POSE_HOLD_MS


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.array(xs), q)) if xs else float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def load_clip() -> Clip:
    """The talking-head clip (its real blink and mouth opening) and head motions (:func:`with_head_moves`)."""
    from lifecert.config import Settings
    from lifecert.services.verification import load_frame_engine
    from tests.integration.verification_support import read_video

    engine = load_frame_engine(Settings(), name="dlib")
    return with_head_moves(talking_head_clip(engine, read_video(VIDEO)), engine)


def with_head_moves(clip: Clip, engine: Any) -> Clip:
    """``clip`` with actions for turn_left, turn_right and nod: its calm frames turned / tilted down by
    benchmarks.attacks.turn_head (via benchmarks.slow_move.Warper) along pose_curve(*MOVE_MS) to HEAD_PEAK_DEG."""
    from benchmarks.slow_move import Warper, pose_curve

    warp, curve = Warper(clip, engine), pose_curve(*MOVE_MS)
    moves = {c: [jpeg for jpeg, _ in warp.movement(c, curve, peak)] for c, peak in HEAD_PEAK_DEG.items()}
    return dataclasses.replace(clip, actions=clip.actions | moves)


def drawn_of(phone: Phone) -> str:
    """The challenges the session revealed to the phone, in order (comma-separated)."""
    seen: list[str] = []
    for a in phone.answers:
        c = a.step.challenge if a.step is not None else None
        if c and c not in seen:
            seen.append(c)
    return ",".join(seen)


def enroll(data_dir: Path, template: np.ndarray, n_lfw: int) -> dict[str, str]:
    """Enroll the talking-head person and ``n_lfw`` LFW people; returns the test pensioner."""
    from lifecert.engine.image import read_image_file

    people = sorted((FACES / "lfw" / "images").iterdir())[:n_lfw]
    items: list[tuple[str, np.ndarray]] = [("王秀英", template)]
    items += [(p.name[:60], read_image_file(sorted(p.iterdir())[0])) for p in people]
    return enroll_people(data_dir, items)[0] or {}


def enroll_people(data_dir: Path, items: list[tuple[str, np.ndarray]]) -> list[dict[str, str] | None]:
    """Enroll one pensioner per (name, BGR photo) with that photo as her template (the default engine), ID numbers
    made from the item's position; returns each one's ``{"id_number", "name"}`` (None where no face was found)."""
    from lifecert.config import Settings
    from lifecert.domain.idnumber import make_id_number
    from lifecert.engine.image import encode_jpeg
    from lifecert.engine.loader import load_engine
    from lifecert.services.context import AppContext
    from lifecert.services.templates import add_template, store_photo, upsert_pensioner

    ctx = AppContext(Settings(data_dir=data_dir))
    ctx.set_engine(load_engine(ctx.settings))
    out: list[dict[str, str] | None] = []
    with ctx.db.session() as s:
        for k, (name, img) in enumerate(items):
            faces = ctx.engine.analyze(img)
            if not faces or faces[0].embedding is None:
                out.append(None)
                continue
            data = encode_jpeg(img, 95)
            sha = hashlib.sha256(data).hexdigest()
            idn = make_id_number("110101", date(1950, 1, 1 + k % 28), 1 + 2 * (k // 28) % 998)
            p = upsert_pensioner(s, idn, name)
            store_photo(ctx, s, data, sha, img.shape[1], img.shape[0])
            add_template(ctx, s, p, faces[0].embedding, photo_sha256=sha, quality=faces[0].quality)
            out.append({"id_number": p.id_number, "name": p.name})
    ctx.close()
    return out


def kind_recorder(phone: Phone, kinds: list[tuple[str, float]]) -> Send:
    """``phone``'s transport, appending to ``kinds`` the step each chunk is sent for (its challenge, else its kind)
    and when it left (time.perf_counter)."""
    send = phone.send

    def kinded(step: int, nonce: str, ts: list[int], frames: list[bytes], sent_ms: int) -> Answer:
        kinds.append((phone.step.challenge or phone.step.kind, time.perf_counter()))
        return send(step, nonce, ts, frames, sent_ms)

    return kinded


# -- load: N phones in real time against the real server -------------------------------------------


def load_run(base: str, who: dict[str, str], clip: Clip, phones: int, seconds: float, reaction_ms: int
             ) -> dict[str, Any]:
    step_ms: list[float] = []
    final_ms: list[float] = []
    by_kind: dict[str, list[float]] = defaultdict(list)  # the step decisions but the last, by the step they judged
    drawn: dict[str, int] = defaultdict(int)
    timeline: list[tuple[float, str, float, bool]] = []  # (s into the run, step, ms, the session's last chunk)
    decisions: dict[str, int] = defaultdict(int)
    durations: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    start = time.perf_counter()
    stop = start + seconds

    def user() -> None:
        with httpx.Client(timeout=60) as c:
            while time.perf_counter() < stop:
                t0 = time.perf_counter()
                try:
                    sid, first = http_start(c, who, base)
                    kinds: list[tuple[str, float]] = []
                    phone = Phone(http_sender(c, sid, base), first, clip, WallClock(), reaction_ms=reaction_ms,
                                  session_id=sid)
                    phone.send = kind_recorder(phone, kinds)
                    answer = phone.run(limit_ms=int((stop - t0 + 60) * 1000))
                except (RuntimeError, AssertionError, httpx.HTTPError) as exc:
                    with lock:
                        errors.append(str(exc)[:200])
                    continue
                with lock:
                    taken = phone.chunk_ms_taken
                    step_ms.extend(taken[:-1])
                    final_ms.append(taken[-1])
                    for (k, _), ms in zip(kinds[:-1], taken[:-1], strict=True):  # the final chunk apart
                        by_kind[k].append(ms)
                    timeline.extend((at - start, k, ms, n == len(taken) - 1)
                                    for n, ((k, at), ms) in enumerate(zip(kinds, taken, strict=True)))
                    drawn[drawn_of(phone)] += 1
                    reason = (answer.result or {}).get("reason_code")
                    decisions[str(answer.decision) + (f" {reason}" if reason else "")] += 1
                    durations.append(time.perf_counter() - t0)

    threads = [threading.Thread(target=user, daemon=True) for _ in range(phones)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=seconds + 180)
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
        "by_step": {k: s(v) for k, v in sorted(by_kind.items())},
        "drawn": dict(sorted(drawn.items(), key=lambda kv: -kv[1])),
        "slowest": [{"s_into_run": round(t, 1), "step": k, "ms": round(ms, 1), "final": f}
                    for t, k, ms, f in sorted(timeline, key=lambda r: -r[2])[:10]],
        "decisions": dict(decisions),
        "errors": errors[:5],
        "error_count": len(errors),
    }


# -- CPU per session, in-process, by stage -----------------------------------------------------------


class StageTimer:
    """Thread CPU time spent inside wrapped calls, per stage (the outermost wrapped call counts)."""

    def __init__(self) -> None:
        self.cpu: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._depth = 0

    def wrap(self, stage: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*a: Any, **kw: Any) -> Any:
            if self._depth:
                return fn(*a, **kw)
            self._depth += 1
            c0 = time.thread_time()
            try:
                return fn(*a, **kw)
            finally:
                self.cpu[stage] += time.thread_time() - c0
                self.calls[stage] += 1
                self._depth -= 1

        return timed


@contextmanager
def staged(svc: Any, timer: StageTimer) -> Iterator[None]:
    """Time the stages of the paced path by wrapping what it calls (restored afterwards)."""
    from lifecert.services.verification import frames as fa
    from lifecert.services.verification import paced, steps

    patches: list[tuple[Any, str, Any]] = [
        (fa, "decode_frames", "decode"),
        (svc.frame_engine, "detect", "detect+landmarks"),
        (svc.frame_engine, "embed_faces", "embed"),
        (paced.PacedCapture, "_finalize", "final decision (all)"),
    ]
    # The step rule on every chunk (paced._advance calls them through the steps module): each re-reads the
    # step's frames so far; session 10 added under_way and tried_before beside judge_challenge; since session 12
    # paced.py computes the step's signals once per chunk (steps.signals) and passes them to those. Loading the
    # step's observations from the database is not in it.
    for name in ("settle", "judge_challenge", "under_way", "tried_before", "signals"):
        if hasattr(steps, name):
            patches.append((steps, name, "step rule"))
    for name in ("track", "landmarks_at"):  # present once landmark tracking exists
        if hasattr(svc.frame_engine, name):
            patches.append((svc.frame_engine, name, "detect+landmarks"))
    if svc.pad_model is not None:
        patches.append((svc.pad_model, "score_many", "pad"))
    saved = []
    for obj, attr, stage in patches:
        orig = getattr(obj, attr)
        saved.append((obj, attr, orig, attr in vars(obj)))
        _set(obj, attr, timer.wrap(stage, orig))
    try:
        yield
    finally:
        for obj, attr, orig, own in saved:
            if isinstance(obj, type) or own:
                _set(obj, attr, orig)
            else:
                object.__delattr__(obj, attr)


def _set(obj: Any, attr: str, value: Any) -> None:
    if isinstance(obj, type):
        setattr(obj, attr, value)
    else:
        object.__setattr__(obj, attr, value)  # on instances: the PAD model is a frozen dataclass


@dataclasses.dataclass(frozen=True)
class SessionRun:
    """One in-process session: its CPU seconds (this thread), chunks sent, frames captured, decision, drawn set,
    and its id (to read its record)."""

    cpu: float
    chunks: int
    frames: int
    decision: str
    drawn: str
    session_id: str = ""


def run_sessions(svc: Any, clock: Any, who: dict[str, str], clip: Any, n: int, reaction_ms: int,
                 timer: Any, warm: bool = True) -> list[SessionRun]:
    """``n`` whole sessions of ``who`` acted by the simulated phone in this thread (``clock``: the service's
    VirtualTime), after one more that pays the one-off allocations: ``timer``'s ``cpu``/``calls`` are cleared after
    it and it is not returned (``warm`` False: no such session, e.g. one session per person and clip,
    ``timer`` None). Used by :func:`cpu_per_session`, benchmarks/chunk_profile.py and benchmarks/cutout.py."""
    out: list[SessionRun] = []
    first = 0 if warm else 1
    for k in range(first, n + 1):
        if k == 1 and timer is not None:  # the first session pays one-off allocations
            timer.cpu.clear()
            timer.calls.clear()
        c0 = time.thread_time()
        st = svc.create_session(who["id_number"], who["name"], "bench")
        sim = SimClock(clock)
        phone = Phone(service_sender(svc, st.session_id, sim, "bench"), step_of(st.step), clip, sim,
                      reaction_ms=reaction_ms, session_id=st.session_id)
        answer = phone.run()
        if k > 0:
            out.append(SessionRun(time.thread_time() - c0, len(phone.answers), phone.captured,
                                  str(answer.decision), drawn_of(phone), st.session_id))
    return out


def cpu_per_session(data_dir: Path, who: dict[str, str], clip: Clip, n: int, reaction_ms: int,
                    fixed: str | None = "blink,open_mouth", seed: int = 12) -> dict[str, Any]:
    """Thread CPU time of whole paced sessions, in-process on a virtual clock (PAD as installed). ``fixed`` None:
    each session's challenges drawn afresh by production's draw (benchmarks/draw_hook.py) from random.Random(seed)."""
    from lifecert.config import Settings, VerificationSettings
    from lifecert.engine.pad import load_pad
    from lifecert.services.context import AppContext
    from lifecert.services.verification import VerificationService

    settings = Settings(
        data_dir=data_dir,
        fixed_challenges=fixed,
        verification=VerificationSettings(rate_limit_per_id_per_hour=10**7, rate_limit_per_client_per_hour=10**7),
    )
    ctx = AppContext(settings)
    clock = VirtualTime()
    pad = load_pad(settings)
    if fixed is None:
        from benchmarks.draw_hook import install

        install()
    svc = VerificationService(ctx, pad=pad, clock=clock)
    svc.rng = random.Random(seed)  # the draws and prompt delays, reproducible
    svc.warm_up()
    timer = StageTimer()
    with staged(svc, timer):
        runs = run_sessions(svc, clock, who, clip, n, reaction_ms, timer)
    cpu = [r.cpu for r in runs]
    chunks = [r.chunks for r in runs]
    frames = [r.frames for r in runs]
    drawn = [r.drawn for r in runs]
    decisions: dict[str, int] = defaultdict(int)
    for r in runs:
        decisions[r.decision] += 1
    ctx.close()
    total = float(np.sum(cpu))
    stages = {s: {"ms_per_session": round(v / n * 1000, 1), "share": round(v / total, 3),
                  "calls_per_session": round(timer.calls[s] / n, 1)} for s, v in sorted(timer.cpu.items())}
    return {
        "n": n,
        "pad": pad is not None,
        "cpu_ms_per_session_p50": round(float(np.median(cpu)) * 1000, 1),
        "cpu_ms_per_session_mean": round(total / n * 1000, 1),
        "chunks_per_session_p50": float(np.median(chunks)),
        "frames_per_session_p50": float(np.median(frames)),
        "cpu_ms_per_chunk": round(total / float(np.sum(chunks)) * 1000, 1),
        "cpu_ms_per_frame": round(total / float(np.sum(frames)) * 1000, 2),
        "capacity_sessions_per_s": round((os.cpu_count() or 1) / float(np.median(cpu)), 2),
        "stages": stages,
        "decisions": dict(decisions),
        "sessions": [{"challenges": d, "cpu_ms": round(c * 1000, 1), "chunks": k, "frames": f}
                     for d, c, k, f in zip(drawn, cpu, chunks, frames, strict=True)],
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


def set_autogroup_nice(pid: int | str, nice: int | None) -> None:
    """The CPU share of process ``pid``'s session (Linux autogroup). With sched_autogroup_enabled (as on the shared
    test machine) the scheduler first splits the cores EQUALLY between sessions, and `nice` only orders processes
    within one: a server started in its own session (start_new_session) competes with every other job's session
    whatever their nice values. None: leave it."""
    if nice is not None:
        Path(f"/proc/{pid}/autogroup").write_text(str(nice))


def autogroup_enabled() -> bool | None:
    f = Path("/proc/sys/kernel/sched_autogroup_enabled")
    return f.read_text().strip() == "1" if f.exists() else None


def group_cpu_s(pgid: int) -> float:
    """User + system CPU seconds of the live processes in process group ``pgid`` (the server and its workers)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            f = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(f[2]) == pgid:  # fields after the name: state, ppid, pgrp, ...; utime, stime are 14th/15th overall
            total += (int(f[11]) + int(f[12])) / tick
    return total


def serve_and_load(args: argparse.Namespace, data_dir: Path, who: dict[str, str], clip: Clip) -> dict[str, Any]:
    port = free_port()
    env = {
        **os.environ,
        "LIFECERT_ENV": "test",
        "LIFECERT_DATA_DIR": str(data_dir),
        "LIFECERT_INFERENCE_THREADS": str(args.threads),
        "LIFECERT_VERIFICATION__RATE_LIMIT_PER_ID_PER_HOUR": "10000000",
        "LIFECERT_VERIFICATION__RATE_LIMIT_PER_CLIENT_PER_HOUR": "10000000",
        "LIFECERT_LIVENESS__ALLOW_NO_PAD": "1",
    }
    if args.draw == "fixed":
        env["LIFECERT_FIXED_CHALLENGES"] = args.fixed
    else:  # every process of the server draws each session's challenges afresh (benchmarks/draw_hook.py)
        env["PYTHONPATH"] = os.pathsep.join([str(SERVE_HOOK), str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    cmd = [str(ROOT / ".venv/bin/lifecert"), "serve", "--host", "127.0.0.1", "--port", str(port),
           "--workers", str(args.workers)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        set_autogroup_nice(proc.pid, args.autogroup_nice)  # its workers are forked into the same session
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
        # where the cores went during the load: the server's processes, this process (the phones), the wall clock
        server0, own0, wall0 = group_cpu_s(proc.pid), time.process_time(), time.perf_counter()
        run = load_run(base, who, clip, args.phones, args.seconds, args.reaction_ms)
        wall = time.perf_counter() - wall0
        server, own = group_cpu_s(proc.pid) - server0, time.process_time() - own0
        n = run["every_step_decision"]["n"]
        run["cpu_during_load"] = {
            "wall_s": round(wall, 1), "server_cpu_s": round(server, 1), "phones_cpu_s": round(own, 1),
            "server_cpu_ms_per_step_decision": round(server / n * 1000, 1) if n else None,
            "cores_busy_server": round(server / wall, 2), "cores_busy_phones": round(own / wall, 2),
            "load_average_1m_end": round(os.getloadavg()[0], 2)}
        return run
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=2, help="server processes")
    ap.add_argument("--threads", type=int, default=1, help="inference threads per process")
    ap.add_argument("--lfw", type=int, default=100, help="extra enrolled LFW people (1:N gallery)")
    ap.add_argument("--phones", type=int, default=5, help="concurrent paced sessions")
    ap.add_argument("--seconds", type=float, default=60.0, help="new sessions start only within this time")
    ap.add_argument("--reaction-ms", type=int, default=800)
    ap.add_argument("--cpu-sessions", type=int, default=5)
    ap.add_argument("--draw", choices=("production", "fixed"), default="production",
                    help="production: each session's challenges drawn as production draws them (benchmarks/"
                         "draw_hook.py); fixed: --fixed for every session (the rows before session 12's draw rows)")
    ap.add_argument("--fixed", default="blink,open_mouth", help="the challenges of --draw fixed")
    ap.add_argument("--seed", type=int, default=12, help="the in-process CPU sessions' draw (--draw production)")
    ap.add_argument("--cpu-only", action="store_true", help="only the in-process CPU per session (no server)")
    ap.add_argument("--no-pad", action="store_true")
    ap.add_argument("--fusion", action="store_true", help="install EdgeFace + YuNet: fused dlib+EdgeFace 1:1 and 1:N")
    ap.add_argument("--label", default="", help="suffix of the result file (e.g. 'before')")
    ap.add_argument("--no-readme", action="store_true")
    ap.add_argument("--autogroup-nice", type=int, default=None,
                    help="the autogroup nice of this process's session and the server's (Linux; set_autogroup_nice): "
                         "-9 against other sessions at 0 gives the weight ratio of nice 10 against nice 19")
    args = ap.parse_args()
    set_autogroup_nice("self", args.autogroup_nice)

    load_before = os.getloadavg()
    clip = load_clip()
    assert clip.template is not None
    tmp = Path(tempfile.mkdtemp(prefix="lifecert-bench-latency-"))
    who = enroll(tmp / "data", clip.template, args.lfw)
    pad_on = False if args.no_pad else install_pad(tmp / "data")
    if not args.no_pad and not pad_on:
        raise SystemExit(f"the MiniFASNet pack could not be installed from {PAD_DIR} (set LIFECERT_SHARED_MODELS, "
                         "or pass --no-pad to measure without PAD)")
    fusion_on = install_fusion(tmp / "data") if args.fusion else False
    if args.fusion and not fusion_on:
        raise SystemExit("--fusion: the EdgeFace/YuNet packs could not be installed from ../shared/models")
    cpu = cpu_per_session(tmp / "data", who, clip, args.cpu_sessions, args.reaction_ms,
                          args.fixed if args.draw == "fixed" else None, args.seed)
    run = None if args.cpu_only else serve_and_load(args, tmp / "data", who, clip)
    result = {
        "machine": machine(),
        "date": now(),
        "dataset": "talking_head_a.mp4 at ~8 fps, played at each step's rate (512x512 JPEG q85), "
        + (f"{args.fixed} fixed" if args.draw == "fixed" else "challenges drawn per session as production draws "
           "them (turns / nod: calm frames warped by turn_head, 600/600/600 ms, 45 / 30 degrees)")
        + f", acted after {args.reaction_ms} ms, gallery 1 + {args.lfw} LFW",
        "config": vars(args) | {"pad_installed": pad_on, "fusion_installed": fusion_on,
                                "sched_autogroup_enabled": autogroup_enabled()},
        "cpu_per_session": cpu,
        "load": run,
        "floor_met": None if run is None else run["every_step_decision"]["p95_ms"] < 1000,
        "load_average_1m": {"before": round(load_before[0], 2), "after": round(os.getloadavg()[0], 2)},
    }
    kind = "cpu" if run is None else f"p{args.phones}"
    name = (f"{RESULT_PREFIX}_w{args.workers}t{args.threads}{kind}{'' if pad_on else '_nopad'}"
            f"{'_fusion' if fusion_on else ''}")
    write_json(name + (f"_{args.label}" if args.label else ""), result)
    print(json.dumps(result, indent=1))
    if not args.no_readme:
        _readme(result)


def _readme(r: dict[str, Any]) -> None:
    rows = []
    for p in sorted((Path(__file__).resolve().parent / "results").glob(f"{RESULT_PREFIX}_*.json")):
        d = json.loads(p.read_text())
        c, ld, cp = d["config"], d.get("load"), d["cpu_per_session"]
        e = ld["every_step_decision"] if ld else None
        st = cp.get("stages", {})
        split = ", ".join(f"{k} {v['ms_per_session']:.0f}" for k, v in st.items()) or "—"
        busy = ld.get("cpu_during_load") if ld else None
        lat = (f"{ld['phones']} | {ld['sessions']} | {e['n']} | {e['p50_ms']} | {e['p95_ms']} | {e['max_ms']} | "
               f"{ld['final_chunk']['p95_ms']} | {'met' if d['floor_met'] else 'NOT met'} | {ld['decisions']} | "
               + (f"{busy['cores_busy_server']} ({busy['server_cpu_ms_per_step_decision']})" if busy else "—")
               if ld and e else "— | — | — | — | — | — | — | CPU only | — | —")
        rows.append(
            f"| {p.stem.removeprefix(RESULT_PREFIX + '_')} | {c['workers']} × {c['threads']} | "
            f"{'on' if c['pad_installed'] else 'off'} | {'dlib+EdgeFace' if c.get('fusion_installed') else 'dlib'} | "
            f"{'drawn' if c.get('draw') == 'production' else c.get('fixed', 'blink,open_mouth')} | {lat} | "
            f"{cp['cpu_ms_per_session_p50']} | "
            f"{cp['cpu_ms_per_chunk']} | {cp.get('cpu_ms_per_frame', '—')} | {split} | "
            f"{cp['capacity_sessions_per_s']} | {d['load_average_1m']['before']} / {d['load_average_1m']['after']} | "
            f"{d['date']} |"
        )
    m = r["machine"]
    cols = ["run", "workers × threads", "PAD", "face models", "challenges", "phones", "sessions", "step decisions",
            "p50 ms", "p95 ms", "max ms", "final step p95 ms", "floor", "decisions",
            "server cores busy (CPU ms/decision)", "CPU ms/session", "CPU ms/chunk",
            "CPU ms/frame", "CPU ms/session by stage", "capacity sessions/s", "load avg before / after", "date"]
    header = "| " + " | ".join(cols) + " |\n|" + "---|" * len(cols)
    body = f"""## Verification latency: paced capture (`benchmarks/verify_latency.py`)

Machine: {m["nproc"]} × {m["cpu"]}. Dataset: {r["dataset"]}. Real `lifecert serve` on 127.0.0.1; N simulated
phones (tests/paced_client.py, one thread each) run server-paced sessions at the same time in real time (8 fps,
from session 5 the blink step at 15 fps as the server asks, ~1 chunk/s, one chunk in flight per phone), client on
the same cores. A "step decision" is one chunk request:
decode, detection + 68 landmarks (+ MiniFASNet PAD on some full frames when installed) on its frames, the step
rule, and for the last chunk the whole-session decision (embedding of the best frames, 1:1, 1:N, flat/still
checks, PAD fusion, records). Floor (issue 12): p95 < 1 s per step decision at 5 concurrent sessions on 2 cores.
CPU ms/session: thread CPU time of whole sessions in-process on a virtual clock, split by stage (the same thread
clock around each stage's calls; "final decision (all)" includes its own embedding and detection); capacity =
cores ÷ that. The machine was SHARED with up to five other engineers' jobs during these runs (see the load
average): the wall-clock columns measure the crowd as much as the service; thread CPU time is robust to that.
"server cores busy (CPU ms/decision)" (from session 12): the CPU time of the server's processes during the load run
÷ its wall time (how many of the cores the service used) and ÷ the step decisions (server CPU per request, HTTP
included). Rows ending `_ag`: run with `--autogroup-nice -9` (see Session 12 below). Column "challenges": the
fixed list every session acted (all rows before the `_draw` rows: blink,open_mouth, `--draw fixed`), or `drawn`
(`--draw production`, the default since the `_draw` rows): each session's challenges drawn as production draws them
(`lifecert.domain.challenges.draw`: open_mouth + one head motion, a third challenge half the time, random order),
afresh for every session (benchmarks/draw_hook.py in the server: all sessions are the one enrolled person, whom
production would give her recent set again within 300 s); the blink and the mouth opening are the clip's REAL
frames, the turns and nods are SYNTHETIC (its calm frames warped by benchmarks.attacks.turn_head through
slow_move's Warper, out / hold / back 600 / 600 / 600 ms as the e2e fake camera, peak 45° turns, 30° nods).
`--fusion` (face models dlib+EdgeFace): the EdgeFace/YuNet packs are installed and every enrolled person gets an
EdgeFace template; the last chunk then also embeds the best frames with EdgeFace on dlib's faces and scores 1:1
and 1:N with the fused model (lifecert/services/fusion.py). Rows named `cpu` are CPU-only runs (`--cpu-only`,
no server). The one-shot upload this file used to time is gone (it handed the client the whole challenge list);
its rows went with it (git history: 2026-11-25, ~190 ms CPU per 10-frame upload).

CPU work of 2026-11-30 (rows `cpu_before` → `cpu_tracking` → `cpu_tracking_pad2`, same in-process measurement,
5 sessions each, similar load): the 68 landmarks are tracked between detections (HOG on the first frame of a
chunk and every 4th; a fit that jumps is detected instead — services/verification/frames.py), the final
decision embeds the best frames on the landmarks seen at upload instead of detecting them again, and PAD scores
2 frames per chunk instead of 3 (12–20 per session for the median). Thread CPU time itself rises with the
machine's load (the old path gave 1912 ms at load 1.7 at 12:58 and 2310 ms at load 11 at 14:25): compare rows of
similar load; the idle-machine rerun is the lead's. The `w2t1p5` run of 14:56 shared the 2 cores with load 11-13
AND the author's own test runs: chunks waited 2.8 s (p50) in the server, frames queued for seconds on the
phones and 6 of 13 sessions ran out of step time (RETRY) — an overloaded machine, not a measurement of the
service (the 12:58 run of the old code at load 1.7 confirmed 35/35). Decisions now carry their reason code.
The `w2t1p5_1508` run, after the CPU work, with others' jobs at load 6.3 → 4.5: every step decision p50 401 ms,
p95 872 ms (final step p95 969 ms), 41/41 CONFIRMED — the < 1 s floor met on a machine that was still shared.
Session 5 (`w2t1p5_s5_rate`, idle machine): the blink step captured at 15 fps (steps.capture_fps; every session
here holds a blink) — 77 frames per session (s4: 56), CPU 975 ms per session p50 (s4: 766, +27 %), every step
decision p50 236 ms / p95 446 ms (final step p95 472 ms), 47/47 CONFIRMED: the floor still met.
Session 7 (`w2t1p5_s7_hints`, idle machine at the start, load 0.0 → 1.1): the code with session 6's action hints
and the window that grows after one. Every step decision p50 366 ms / p95 777 ms (final step p95 838 ms), 45/45
CONFIRMED: the floor met. CPU 1314 ms per session p50 (69 frames). Every stage is slower than in session 5's row,
the JPEG decode too (4.2 against 2.4 ms per frame), and the decode code did not change; two CPU-only reruns of the
same code a few minutes later gave 1302 ms (77 frames, 18.4 ms per frame) and 1490 ms (69 frames). The machine
ran ~35 % slower per frame that morning than at 00:12: compare rows within one run, not across runs. This
harness's user acts each step 800 ms after its prompt, long before a hint is due (3.5 s), so no hint was given
and no window grew: a hint costs frames only for a user who misses a step.
Session 11 (`w2t1p5_s11`, `w2t1p5_s11_busy`, `w2t1p5_s11_2019`): session 10's code (the under_way hold, the reader's
hint clock, hint_heard_code, the 27 s cap), the MiniFASNet pack installed (PAD on). `s11`, 19:36 UTC, load 1.9 → 2.2
(no other heavy job in ps at 19:35): every step decision p50 156 ms / p95 385 ms / max 555 ms (final step p95 406
ms), 48/48 CONFIRMED: the floor met. `s11_busy`, 19:49, load 9.4 → 10.0 (the same 2 cores ran two slow_move
benchmark processes, a Chromium e2e run with its uvicorn and a two-process job): p50 562 / p95 1625 / max 2278 ms,
37/37 CONFIRMED: NOT met; the service's CPU per session was the same (760 against 731 ms), its share of the cores
was not. `s11_2019`, 20:19, load 1.8 at the start and 2.8 at the end (another helper's PAD evaluation at nice 0 and
a test run began during it): p50 362 / p95 955 / max 1380 ms (final step p95 1131 ms), 42/42 CONFIRMED: met, by 45
ms (the last chunk, which also decides the session, had p95 1131 ms). CPU per session 731 / 760 / 752 ms p50 (77 /
69 / 69 frames), under session 7's 1314 and session 5's 975: the machine ran faster per frame tonight (decode
1.9-2.2 ms per frame, 4.2 in session 7), so the code was compared within one run:
results/verify_latency_ab_s11.json, the CPU-only measurement of the code before session 10 (48b8045, session 7's
row) and of this code, interleaved, 8 sessions each, twice, load 6-7.7: 785 / 775 ms (77 frames) against 717 / 722
ms (65.5 / 73 frames), per frame 10.7 / 10.3 against 11.2 / 10.2 ms: no growth past the run-to-run spread. The new
stage `step rule` (settle, judge_challenge, under_way, tried_before; not in `s11`, which ran before it existed) is 9
ms per session (1 %). This harness never runs session 10's additions (its page reports no hearing, its user acts 800
ms after each prompt): `step_rule_cost` (next section) measures them on slow people.
Session 12 (`w2t1p5_s12*`, `w1t1p2_s12*`; 2026-12-01 22:49-23:26 UTC, PAD on): main at faee387 plus the step rule
reading each chunk's signals once (the `_idle` rows: main a6bd59a, the same plus a server change to when a request's
database work commits), so with session 11's challenge policy, the open_mouth hold, the 29 s cap and the far-face
look; these rows still fix blink,open_mouth (the `_draw` rows below run the draw) and act 800 ms after each prompt,
so no head turn or hold runs in them. **The machine's scheduler decides these rows**: this kernel
has `sched_autogroup_enabled=1`, so the cores are first split EQUALLY between sessions (each job's shell, and the
server, started in its own session), and `nice` only orders processes within one session: other jobs at nice 19 did
not yield to the measurement (the quiet lock asked them to; they did, to no effect). With the same 5 phones:
`s12_busy` (22:49, load 7.7 → 11.5: a test suite, a Chromium e2e run, a two-worker PAD evaluation, a stress loop)
p50 1554 / p95 3499 / max 6750 ms, 17 CONFIRMED + 2 RETRY (challenge not seen: frames queued on the phones), the
server got 0.42 cores: **NOT met**; `s12` (22:58, load 5.0 → 4.8, the suite and the PAD evaluation, both at nice 19)
p50 871 / p95 1650 / max 2160 ms, 33/33, 0.57 cores: **NOT met**; `s12_2` (23:02, load 3.6 → 3.5, the same near
their end) p50 300 / p95 649 / max 950 ms (final step p95 519), 44/44: met; `s12_3` (23:09, load 2.7 → 4.1: the PAD
evaluation's two workers, a test run began during it) p50 363 / p95 732 / max 1260 ms (final 700), 45/45: met.
`s12_ag` / `s12_ag2` (23:04 / 23:08, load 3.5 → 3.9 / 3.0 → 2.7, the same PAD evaluation running): the harness's and
the server's sessions given the weight the quiet lock meant (`--autogroup-nice -9` against the others' 0 is the
ratio of nice 10 against nice 19): p50 182 / 178, **p95 394 / 359**, max 625 / 515 ms (final step p95 346 / 392),
47/47 and 48/48: met, as in session 11's quiet `s11` (385 ms). `w1t1p2_s12` (1 worker, 2 phones, 23:00, load 4.8 →
4.1): p50 273 / p95 438 ms, 19/19. **On the idle machine** (23:22-23:27, nothing else in ps; the load average's 1.4
at the first start is these runs' own tail): `s12_idle` / `s12_idle2` p50 156 / 174, **p95 342 / 438**, max 617 /
624 ms (final step p95 330 / 465), 49/49 and 49/49: **met**, by 0.56-0.66 s; `w1t1p2_s12_idle` (1 worker, 2 phones)
p50 174 / p95 298 ms, 19/19. Reading: at 5 concurrent sessions the service needs ~0.65 of the 2 cores (server CPU
135-164 ms per step decision, HTTP included, at 4.4-4.7 decisions a second; 188 ms in `s12_busy`); given them (idle,
or priority), p95 is 0.34-0.44 s, and its wall time grows with the number of OTHER busy sessions on the cores, not
with its own work. The floor holds on 2 cores that carry the service alone (or give it priority); it does not hold
on 2 cores shared equally with 2-4 other heavy sessions. CPU per session (in-process, 5 sessions per row): p50
719-941 ms (62-77 frames; 10.6-13.7 ms per frame; idle: 719 / 770 ms, 11.2 / 11.7) against session 11's 731-760 ms
(9.7-11.1 per frame); the higher rows are the machine, not the code: an interleaved CPU-only A/B of session 11's
measured code (13b1774) and this code with `chunk_profile.py` (next section; 8 sessions per run, old/new/old/new,
twice, load 2-3): 11.03-11.45 (mean 11.23) against 11.13-11.71 (mean 11.40) ms per frame, the ranges overlap: no
growth past the run-to-run spread (results/chunk_profile_ab_s12.json). Where a chunk's time goes: next section.
Session 12, production's draw (`w2t1p5_s12_draw_ag*` against `w2t1p5_s12_fixed_ag*`, interleaved draw / fixed / draw
/ fixed / draw, 2026-12-01 23:52 - 12-02 00:02 UTC, then draw / fixed 00:05-00:09, main 83512cd (the `_idle` rows'
code + this harness), PAD on, 2 workers x 1 thread, 5 phones, 60 s, `--autogroup-nice -9`, quiet lock held, nothing
else running in the machine: load 0.65 → 1.22 is these runs; 1.79 at the last run's end). **The machine was not
steady**: the same 10 seeded in-process sessions took 1174 ms (p50, 14.3 ms per frame) at 23:52 and 1659 / 1720 ms
(21.5 / 21.3) at 23:56 / 00:00, the fixed rows 1090 (15.2) → 1940 ms (28.6), against 719 / 770 (11.2 / 11.7) at
23:22; no other process ran in this 2-core VM, so the host's share changed; compare draw and fixed within adjacent
runs (00:05-00:09: 25.1 drawn, 21.3 fixed). Every step decision, drawn: `s12_draw_ag` p50 137 / **p95 333** / max
1619 ms, `s12_draw_ag2` 241 / **546** / 2224, `s12_draw_ag3` 189 / **521** / 1900, `s12_draw_ag4` 280 / **634** /
2554: **floor met in 4 of 4** (126 sessions, 126 CONFIRMED; 66 of them three challenges; open_mouth 126, turn_right
59, nod 58, turn_left 55, blink 20; 33 distinct ordered sets); fixed, interleaved: `s12_fixed_ag` 235 / **528** /
882 (45/45 CONFIRMED), `s12_fixed_ag2` (the host slowest, 28.6 ms per frame) 451 / **1347 NOT met** / 1739 (40/40),
`s12_fixed_ag3` 666 / **1347 NOT met** / 1966 (37/37). Per step kind (the last chunk apart), p95 over the four draw
runs: turn_left 357-513, turn_right 264-683, nod 251-511, open_mouth 267-473, blink 309-559, settle 316-622 ms. A
drawn step decision is lighter than a fixed one (server CPU 146 / 209 / 186 / 228 ms per decision against 192 / 279
/ 298; in-process 120 against 167 ms per chunk in the first adjacent pair), so on the slowed host the fixed rows
missed the floor and the drawn rows did not: the fixed set's blink step is captured at 15 fps (~15 frames a chunk),
the draw has a blink in 20 of 126 sessions; a drawn session has more of them (9.5 chunks, 80 frames p50 against 6.5
and 73). **CPU per session** (in-process, 10 seeded sessions per row): drawn p50 1174 / 1659 / 1720 / 2112 ms (mean
1120 / 1689 / 1675 / 1973) against fixed 1090 / 1940 / 1534 (mean 1052 / 1982 / 1475); in the adjacent pair (23:52 /
23:54) drawn +8 % (p50; mean +6 %) at a similar CPU per frame (14.3 / 15.2): two-challenge sets 725-1074 ms (56-64
frames), three-challenge sets 1153-1384 ms (72-101 frames; the ones with a blink the most). **The tail (max 1.6-2.6
s; final step p95 1287-1363 ms in three draw runs)** is ONE stall per server process, 10-21 s in (`slowest` in the
JSON: s12_draw_ag3 had 5 requests of 1.2-1.9 s at 9.7-10.7 s, one of them the first final decision): the first
CONFIRMED session in each server process loads the ENROLLMENT engine (template refresh: refresh.consider_session →
_add_from_frames → AppContext.engine → DlibEngine init, 1.49 s of the first final decision's 1.87 s in a cProfile;
in-process the first `_finalize` takes 1.55-1.73 s of CPU, later ones 110-270 ms, in draw and fixed mode alike),
which `VerificationService.warm_up` does not load; the worker holds the other requests meanwhile. Fewer sessions per
run (30-33 drawn against 37-45 fixed) make those two stalled finals the final step's p95 (`s12_draw_ag4`: 4 requests
of 2.0-2.6 s at 21 s, the other worker's first finals at 12.6-12.8 s). Not fixed here (production code: warm_up
could load `ctx.engine` too). Not measured: slow or reporting users over HTTP (every user here acts 800 ms after
each prompt: no hint, no hold), real head turns (the warp has no parallax), a real network, more than 5 phones, a
steady host.
Session 13 (`w2t1p5_s13_warm`, 2026-12-02 01:41 UTC, main 0af7d7a: 0bf440b's `warm_up` now loads the enrollment
engine; same setup as the `_draw_ag` rows, `--autogroup-nice -9`; load 0.14 before, two other engineers creating
Python environments during the run: 2.59 at its end; the host slower than at 23:22 again, 18.1 ms per frame
in-process): p50 192 / **p95 541** / **max 836 ms**, final step p95 566 ms, floor met. The first-confirmation stall is
gone: no request over 836 ms (the `_draw_ag` rows: max 1619-2554 ms, each the first final decision of a server
process), the slowest requests are spread over the run (`slowest`: 1.5-30 s in, the first two the settle steps at
1.5 s). 34 of 35 CONFIRMED; ONE genuine session was sent to REVIEW `flat_photo` by the nose-parallax test (0.685
against the cut 0.71, motion 0.37 face widths, 103 pairs; open_mouth + nod): this benchmark's nods and turns are
`turn_head`'s CYLINDER warp, which has no nose depth. Over the 816 decided sessions kept from this benchmark's runs,
those with a warped turn or nod (229) have parallax min 0.685, p5 0.77, median 0.88, those without (587) min 1.02,
median 1.64: the warp pulls the statistic toward the cut (a synthetic turn, not a person; a real head's nose stands
out of the outline's plane). Under the flat-photo rule production ships since bf14b0e (RANSAC outline fit, cut 0.72;
benchmarks/README.md `flat`) none of those 815 kept sessions is called flat (lowest 0.724).

{header}
""" + "\n".join(rows)
    update_readme_section("verify_latency", body)


if __name__ == "__main__":
    main()
