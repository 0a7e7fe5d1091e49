"""Whole proof-of-life sessions through the real pensioner page in headless Chromium, end to end.

The same harness as the browser tests (tests/e2e/harness.py, tests/e2e/fake_camera.py): the real server
on 127.0.0.1 with the MiniFASNet pack installed, challenges drawn by the server, the page driven like a
user, and a camera that acts each prompt as it appears, from real frames of
../shared/faces/video/talking_head_a.mp4 (turns and nods warped from its neutral frames):

* ``genuine_slow`` — the person reacts 2.5 s after every prompt and enters the picture 2.5 s late;
* ``replay`` — the same footage on a phone screen held close to the camera (pad's benchmarks/attacks.py
  PhoneScreen + Camera), the right clip cued 1 s after every prompt;
* ``replay_pad_off`` — the replay again on a second server WITHOUT the PAD pack: what the active checks
  (server pacing, reaction time, challenge detectors) stop on their own.

Per session: decision and reason, the challenges revealed, wall time from the tap on "我准备好了" to the
result, number of chunk uploads, bytes uploaded, and each chunk's round trip as the browser timed it.
A tiny sample (default 3 sessions per kind): it shows the page and the server working together on this
machine, it does not estimate APCER/BPCER (benchmarks/pad_eval.py does, on many more sequences).

Usage: .venv/bin/python benchmarks/page_sessions.py [--sessions 3] [--kinds genuine_slow,replay,replay_pad_off]
Writes benchmarks/results/page_sessions.json and the "page" section of benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._common import machine, now, update_readme_section, write_json  # noqa: E402

CHROMIUM = Path(os.environ.get("LIFECERT_CHROMIUM", "/usr/bin/chromium"))
SESSION_TIMEOUT_MS = 300_000  # a bound on one session, not a target


def _pct(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    s = sorted(xs)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def run_session(browser: Any, server: Any, camera: Any, plan: Any) -> dict[str, Any]:
    from tests.e2e.harness import new_phone_page

    page = new_phone_page(browser, server, camera, plan)
    chunks: list[dict[str, float]] = []

    def finished(req: Any) -> None:
        if "/steps/" in req.url and req.method == "POST":
            body = req.post_data_buffer or b""
            chunks.append({"bytes": len(body), "rtt_ms": float(req.timing.get("responseEnd", -1))})

    page.on("requestfinished", finished)
    try:
        who = server.pensioner
        page.goto(f"{server.base_url}/")
        page.fill("#id-number", who.id_number)
        page.fill("#name", who.name)
        page.click("#start")
        page.wait_for_selector('#app[data-screen="prepare"]')
        t0 = time.monotonic()
        page.click("#prepare-go")
        page.wait_for_selector('#app[data-screen="result"]', timeout=SESSION_TIMEOUT_MS)
        wall = time.monotonic() - t0
        r = page.locator("#result")
        prompts = [name for _, name in page.evaluate("window.__actor.prompts")]
        return {
            "decision": r.get_attribute("data-decision") or None,
            "error": r.get_attribute("data-error") or None,
            "reason": r.get_attribute("data-reason") or None,
            "missed": r.get_attribute("data-missed") or None,
            "challenges_revealed": prompts,
            "wall_s": round(wall, 2),
            "chunks": len(chunks),
            "bytes_uploaded": sum(int(c["bytes"]) for c in chunks),
            "chunk_rtt_ms": [round(c["rtt_ms"], 1) for c in chunks if c["rtt_ms"] >= 0],
        }
    finally:
        page.context.close()


def summarise(kind: str, sessions: list[dict[str, Any]]) -> dict[str, Any]:
    rtts = [x for s in sessions for x in s["chunk_rtt_ms"]]
    walls = [s["wall_s"] for s in sessions]
    decisions: dict[str, int] = {}
    for s in sessions:
        key = s["decision"] or f"error {s['error']}"
        if s["reason"] and s["decision"] != "CONFIRMED":
            key += f" ({s['reason']})"
        decisions[key] = decisions.get(key, 0) + 1
    return {
        "kind": kind,
        "n": len(sessions),
        "decisions": decisions,
        "confirmed": sum(1 for s in sessions if s["decision"] == "CONFIRMED"),
        "wall_s_median": statistics.median(walls) if walls else None,
        "wall_s_max": max(walls) if walls else None,
        "chunks_median": statistics.median([s["chunks"] for s in sessions]) if sessions else None,
        "kb_uploaded_median": round(statistics.median([s["bytes_uploaded"] for s in sessions]) / 1024, 1)
        if sessions else None,
        "chunk_rtt_ms_p50": _pct(rtts, 0.5),
        "chunk_rtt_ms_p95": _pct(rtts, 0.95),
    }


def render_readme(data: dict[str, Any]) -> None:
    """The "page" section of benchmarks/README.md from a page_sessions.json result."""
    summary = data["summary"]
    load_before, load_after = data["load_avg_1_5_15_before"], data["load_avg_1_5_15_after"]
    by_kind = {s["kind"]: s for s in summary}
    t = data.get("pad_threshold")
    pad_thr = f"{t['value']} on the {t['fusion']} over frames" if t else "0.5 provisional, mean over frames"
    rows = "\n".join(
        f"| {s['kind']} | {s['n']} | {s['confirmed']} | {', '.join(f'{k} ×{v}' for k, v in s['decisions'].items())} "
        f"| {s['wall_s_median']} / {s['wall_s_max']} | {s['chunks_median']} | {s['kb_uploaded_median']} "
        f"| {s['chunk_rtt_ms_p50']} / {s['chunk_rtt_ms_p95']} |"
        for s in summary
    )
    findings = []
    if "replay_pad_off" in by_kind:
        off = by_kind["replay_pad_off"]
        findings.append(
            f"- With PAD off the acted replay was confirmed in {off['confirmed']} of {off['n']} sessions: the paced "
            "steps, reaction-time rule and challenge detectors alone do not stop a replay that acts the prompts."
        )
    if "replay" in by_kind:
        on = by_kind["replay"]
        findings.append(f"- With the MiniFASNet pack installed it was confirmed in {on['confirmed']} of {on['n']}.")
    if "genuine_slow" in by_kind:
        g = by_kind["genuine_slow"]
        findings.append(
            f"- The slow genuine user was confirmed in {g['confirmed']} of {g['n']}; one session sends about "
            f"{g['kb_uploaded_median'] / 1024:.1f} MB (8 fps, JPEG 0.85, 480×640) — heavy on a slow mobile link."
        )
    update_readme_section("page", f"""## Whole sessions through the pensioner's page (`benchmarks/page_sessions.py`)

Machine: {data['machine'].get('cpu', '?')}, {data['date']}; **shared** with other jobs (load average
{load_before[0]:.1f} before, {load_after[0]:.1f} after). Real server (PAD pack installed unless "pad_off";
threshold {pad_thr}),
real page in headless Chromium at 360×740, a camera that acts each revealed prompt from real frames of
`talking_head_a.mp4` (turns and nods warped from its neutral frames); replay = pad's phone-screen synthesis
(`benchmarks/attacks.py`) held close. A tiny sample that shows the parts working together, not an error rate
(see `pad_eval.py` for APCER/BPCER). Wall time = tap on 我准备好了 → result, including the 3-2-1 countdown,
the 2.5 s late face and reactions; chunk round trip as Chromium timed it (upload + server analysis).

| kind | n | confirmed | decisions | wall s median / max | chunks median | KB sent median | chunk RTT ms p50 / p95 |
|---|---|---|---|---|---|---|---|
{rows}

{chr(10).join(findings)}
""")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=3, help="sessions per kind (default 3)")
    ap.add_argument("--kinds", default="genuine_slow,replay,replay_pad_off")
    ap.add_argument("--readme-only", action="store_true", help="re-render the README section from the saved JSON")
    args = ap.parse_args()
    if args.readme_only:
        from benchmarks._common import RESULTS

        render_readme(json.loads((RESULTS / "page_sessions.json").read_text()))
        return
    kinds = [k for k in args.kinds.split(",") if k]

    from playwright.sync_api import sync_playwright

    from lifecert.config import Settings
    from lifecert.engine.loader import load_engine
    from tests.conftest import _find_faces
    from tests.e2e.fake_camera import (
        ActorPlan,
        SourceVideo,
        build_clips,
        genuine_scene,
        render_camera,
        screen_replay_scene,
    )
    from tests.e2e.harness import launch_chromium, running_server

    faces = _find_faces()
    if faces is None:
        sys.exit("../shared/faces not found (set LIFECERT_SHARED_FACES)")
    engine = load_engine(Settings(), name="dlib")
    t = time.monotonic()
    source = SourceVideo.load(engine, faces / "video" / "talking_head_a.mp4")
    clips = build_clips(source)
    cameras = {"genuine": render_camera(clips, genuine_scene()), "replay": render_camera(clips, screen_replay_scene())}
    print(f"camera clips ready in {time.monotonic() - t:.0f} s", flush=True)
    plans = {
        "genuine_slow": ("genuine", ActorPlan(reaction_ms=2500, face_enters_ms=2500), True),
        "replay": ("replay", ActorPlan(reaction_ms=1000), True),
        "replay_pad_off": ("replay", ActorPlan(reaction_ms=1000), False),
    }
    load_before = os.getloadavg()
    results: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="lifecert-page-") as tmp, sync_playwright() as pw:
        browser = launch_chromium(pw, CHROMIUM)
        try:
            for pad in (True, False):
                todo = [k for k in kinds if plans[k][2] == pad]
                if not todo:
                    continue
                base = Path(tmp) / ("pad_on" if pad else "pad_off")
                base.mkdir()
                with running_server(base, engine, source, faces, pad=pad) as server:
                    for kind in todo:
                        cam, plan, _ = plans[kind]
                        results[kind] = []
                        for i in range(args.sessions):
                            res = run_session(browser, server, cameras[cam], plan)
                            results[kind].append(res)
                            print(f"{kind} #{i + 1}: {res['decision'] or res['error']} {res['reason'] or ''} "
                                  f"{res['challenges_revealed']} {res['wall_s']} s, {res['chunks']} chunks", flush=True)
        finally:
            browser.close()
    load_after = os.getloadavg()
    summary = [summarise(k, results[k]) for k in kinds if k in results]
    from lifecert.engine.pad import pad_spec

    thr = pad_spec(Settings().manifest_path).threshold
    data = {
        "date": now(), "machine": machine(), "load_avg_1_5_15_before": load_before,
        "pad_threshold": {"value": thr.value, "fusion": thr.fusion, "dataset": thr.dataset},
        "load_avg_1_5_15_after": load_after,
        "note": "shared machine: other engineers' jobs ran at the same time (load average recorded)",
        "dataset": "talking_head_a.mp4 (real; turns/nods warped from neutral frames); replay = benchmarks/attacks.py",
        "summary": summary, "sessions": results,
    }
    write_json("page_sessions", data)
    render_readme(data)
    print(summary)


if __name__ == "__main__":
    main()
