"""Where a paced chunk's CPU goes: detector, landmarks, PAD, the step rule, the rest. Thread CPU, exclusive per part.

    nice -n 10 python benchmarks/chunk_profile.py [--sessions 8]    # ~2 min; results + README section chunk_profile

verify_latency.py's user and data (talking_head_a, blink + open_mouth acted 800 ms after each prompt, the person
enrolled with 100 LFW people, the MiniFASNet pack installed: PAD on), its in-process paced sessions on a virtual
clock (verify_latency.cpu_per_session's loop), but every part timed on its own: each wrapped call's thread CPU
minus that of the wrapped calls inside it (so the HOG detector inside the final decision counts as HOG). Parts:
JPEG decode (frames.decode_frames); HOG detector (the dlib engine's fhog detector ``run``); 68 landmarks (its
shape predictor, after HOG and when tracking); landmark readout (the rest of the engine's _face_from_rect: the
68 points into an array, the five points); detect/track glue (the rest of the engine's detect_verbose /
landmarks_at: resizing, the RGB copy for HOG); observe glue (the rest of frames.observe: the tracking checks,
sharpness, brightness, eye pixels); PAD nets (each MiniFASNet's onnxruntime ``run``) and PAD
prep (crops, exposure norm: the rest of PadModel.score_many); the step rule (steps.settle, judge_challenge,
under_way, tried_before, signals); embedding (the final decision's embed_faces); final decision other (1:1, 1:N,
flat/still checks, records); chunk other (the rest of VerificationService.submit_chunk: JSON, sealing the frames,
the database, hints); session start (VerificationService.create_session); harness (the simulated phone in the
same thread: the rest of the session's thread CPU).

What it is not: wall time. At N concurrent sessions on 2 cores a chunk also waits for a core and for the engine's
lock (one inference thread per server process); verify_latency.py measures that wall time, and from session 12 the
server's CPU during its load (``cpu_during_load``).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import verify_latency as vl  # noqa: E402
from benchmarks._common import machine, now, publish  # noqa: E402
from tests.paced_client import VirtualTime  # noqa: E402

PARTS = ("decode", "HOG detector", "68 landmarks", "landmark readout", "detect/track glue", "observe glue",
         "PAD nets", "PAD prep", "step rule",
         "embedding (final)", "final decision other", "chunk other", "session start", "harness")


class SelfTimer:
    """Thread CPU inside wrapped calls, per part, EXCLUSIVE of the wrapped calls inside them."""

    def __init__(self) -> None:
        self.cpu: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._stack: list[list[float]] = []  # [child cpu] per open call

    def wrap(self, part: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*a: Any, **kw: Any) -> Any:
            self._stack.append([0.0])
            c0 = time.thread_time()
            try:
                return fn(*a, **kw)
            finally:
                spent = time.thread_time() - c0
                child = self._stack.pop()[0]
                self.cpu[part] += spent - child
                self.calls[part] += 1
                if self._stack:
                    self._stack[-1][0] += spent

        return timed


class _Run:
    """An object whose ``run`` is timed (the HOG detector, an onnxruntime session): the rest passes through."""

    def __init__(self, obj: Any, run: Callable[..., Any]) -> None:
        self._obj, self.run = obj, run

    def __getattr__(self, name: str) -> Any:
        return getattr(self._obj, name)


@contextmanager
def parts(svc: Any, timer: SelfTimer) -> Iterator[None]:
    from lifecert.services.verification import frames as fa
    from lifecert.services.verification import paced, steps

    eng = svc.frame_engine
    saved: list[tuple[Any, str, Any]] = []

    def put(obj: Any, attr: str, value: Any) -> None:
        saved.append((obj, attr, getattr(obj, attr)))
        vl._set(obj, attr, value)

    put(svc, "submit_chunk", timer.wrap("chunk other", svc.submit_chunk))
    put(svc, "create_session", timer.wrap("session start", svc.create_session))
    put(fa, "decode_frames", timer.wrap("decode", fa.decode_frames))
    put(fa, "observe", timer.wrap("observe glue", fa.observe))
    put(eng, "detect_verbose", timer.wrap("detect/track glue", eng.detect_verbose))
    put(eng, "landmarks_at", timer.wrap("detect/track glue", eng.landmarks_at))
    put(eng, "_face_from_rect", timer.wrap("landmark readout", eng._face_from_rect))
    put(eng, "_hog", _Run(eng._hog, timer.wrap("HOG detector", eng._hog.run)))
    put(eng, "_sp68", timer.wrap("68 landmarks", eng._sp68))
    put(eng, "embed_faces", timer.wrap("embedding (final)", eng.embed_faces))
    put(paced.PacedCapture, "_finalize", timer.wrap("final decision other", paced.PacedCapture._finalize))
    for name in ("settle", "judge_challenge", "under_way", "tried_before", "signals"):
        put(steps, name, timer.wrap("step rule", getattr(steps, name)))
    if svc.pad_model is not None:
        put(svc.pad_model, "score_many", timer.wrap("PAD prep", svc.pad_model.score_many))
        for net in svc.pad_model.nets:
            put(net, "session", _Run(net.session, timer.wrap("PAD nets", net.session.run)))
    try:
        yield
    finally:
        for obj, attr, orig in reversed(saved):
            vl._set(obj, attr, orig)


def profile(data_dir: Path, who: dict[str, str], clip: Any, n: int, reaction_ms: int) -> dict[str, Any]:
    from lifecert.config import Settings, VerificationSettings
    from lifecert.engine.pad import load_pad
    from lifecert.services.context import AppContext
    from lifecert.services.verification import VerificationService

    settings = Settings(data_dir=data_dir, fixed_challenges="blink,open_mouth", verification=VerificationSettings(
        rate_limit_per_id_per_hour=10**7, rate_limit_per_client_per_hour=10**7))
    ctx = AppContext(settings)
    clock = VirtualTime()
    pad = load_pad(settings)
    svc = VerificationService(ctx, pad=pad, clock=clock)
    svc.warm_up()
    timer = SelfTimer()
    with parts(svc, timer):
        runs = vl.run_sessions(svc, clock, who, clip, n, reaction_ms, timer)
    per_session = [r.cpu for r in runs]
    total = float(sum(per_session))
    chunks = sum(r.chunks for r in runs)
    frames = sum(r.frames for r in runs)
    decisions: dict[str, int] = defaultdict(int)
    for r in runs:
        decisions[r.decision] += 1
    ctx.close()
    timer.cpu["harness"] = total - sum(timer.cpu.values())
    out = {p: {"ms_per_session": round(timer.cpu[p] / n * 1000, 1),
               "ms_per_chunk": round(timer.cpu[p] / chunks * 1000, 2), "share": round(timer.cpu[p] / total, 3),
               "calls_per_session": round(timer.calls[p] / n, 1)}
           for p in PARTS}
    return {"n": n, "pad": pad is not None, "chunks_per_session": round(chunks / n, 1),
            "frames_per_session": round(frames / n, 1),
            "cpu_ms_per_session_p50": round(float(np.median(per_session)) * 1000, 1),
            "cpu_ms_per_session_mean": round(total / n * 1000, 1), "parts": out, "decisions": dict(decisions)}


def report(d: dict[str, Any]) -> str:
    r, m = d["profile"], d["machine"]
    rows = "\n".join(f"| {p} | {v['ms_per_session']} | {v['ms_per_chunk']} | {100 * v['share']:.1f} | "
                     f"{v['calls_per_session']} |" for p, v in r["parts"].items())
    return f"""## Where a chunk's CPU goes (`benchmarks/chunk_profile.py`)

{d["when"]}, {m["nproc"]} × {m["cpu"]} (shared, niced; load average {d["load_average_1m"]["before"]} →
{d["load_average_1m"]["after"]}), code {d["code"]}. verify_latency's user and data (talking_head_a, blink +
open_mouth acted 800 ms after each prompt, 1 + {d["lfw"]} enrolled, PAD pack installed: {r["pad"]}), {r["n"]}
in-process sessions on a virtual clock after one warm-up session: {r["frames_per_session"]} frames and
{r["chunks_per_session"]} chunk requests per session, {r["cpu_ms_per_session_mean"]} ms thread CPU per session (mean;
p50 {r["cpu_ms_per_session_p50"]}), decisions {r["decisions"]}. Each part's EXCLUSIVE thread CPU (the wrapped calls
inside it not counted; the module docstring lists what each part wraps); "harness" = the simulated phone in the
same thread. Not wall time: at 5 concurrent sessions a chunk also waits for a core and the engine's lock
(verify_latency section: `cpu_during_load`).

| part | ms per session | ms per chunk | % | calls per session |
|---|---|---|---|---|
{rows}

Rerun: `{d["rerun"]}`."""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--sessions", type=int, default=8)
    ap.add_argument("--lfw", type=int, default=100)
    ap.add_argument("--reaction-ms", type=int, default=800)
    ap.add_argument("--no-readme", action="store_true")
    a = ap.parse_args()
    load_before = os.getloadavg()[0]
    clip = vl.load_clip()
    assert clip.template is not None
    tmp = Path(tempfile.mkdtemp(prefix="lifecert-bench-chunkprof-"))
    who = vl.enroll(tmp / "data", clip.template, a.lfw)
    if not vl.install_pad(tmp / "data"):
        raise SystemExit(f"the MiniFASNet pack could not be installed from {vl.PAD_DIR} (set LIFECERT_SHARED_MODELS)")
    prof = profile(tmp / "data", who, clip, a.sessions, a.reaction_ms)
    data = {"when": now(), "machine": machine(), "lfw": a.lfw, "reaction_ms": a.reaction_ms,
            "code": os.popen(f"git -C {ROOT} rev-parse --short HEAD").read().strip(),
            "load_average_1m": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
            "rerun": f"python benchmarks/chunk_profile.py --sessions {a.sessions} --lfw {a.lfw}", "profile": prof}
    publish("chunk_profile", "chunk_profile", data, report(data), readme=not a.no_readme)


if __name__ == "__main__":
    main()
