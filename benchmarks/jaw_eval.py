"""Does the jaw test (lifecert/engine/jaw.py, JAW_CUT) refuse GENUINE users? The evidence behind its cut.

    LIFECERT_SHARED_FACES=/work/shared/faces nice -n 10 .venv/bin/python benchmarks/jaw_eval.py [--no-readme]

The statistic is production's own (jaw.jaw_follows; on stored sessions paced.open_mouth_jaw, the call _finalize
makes), measured on genuine mouth openings only — the cut-out prints it is meant to catch are
benchmarks/cutout.py's. Sources:

a. ``yale``: REAL deliberate openings: each Yale person's "surprised" photo (MAR >= the step's 0.30) against their
   own neutral photos (normal / noglasses / centerlight / glasses with MAR < 0.15) as the rest frames; production's
   frame engine (verification.load_frame_engine). One opened frame per person.
b. ``speech``: REAL speech: talking_head_a.mp4 (one person, 200 frames at 25 fps). Every run of frames whose MAR
   reaches 0.30 is one step: the STEP_LEAD_MS of frames before the run plus the run, baseline (steps.baseline_of)
   from the SETTLE_MS before that (else the whole clip), the session frames = the whole clip. Framings: the clip
   frame itself (512x512) and placed in a 480x640 portrait frame (camera_sweep.Framing, the face at 0.55 / 0.45 /
   0.30 of the width) through attacks.Camera (fixed middle setting, a dim and a JPEG-45 variant) — SYNTHETIC
   camera, REAL face. Also every opened frame ALONE (its run's rest frames): a session that caught one opened frame.
c. ``synthetic``: the openings the genuine benchmarks draw on blink_7_times_1080p (a silent clip): attacks.open_mouth
   at gaps 0.45-1.2 on closed-mouth frames, face at 0.55 of a 480x640 frame (camera as b), rest = the same frame
   and two neighbours unwarped. SYNTHETIC opening of a REAL face: checks our own render moves the chin.
d. ``stored``: every kept paced-session database under /tmp (verify_latency, chunk_profile, draw_hook,
   camera_sweep, cutout.py's GENUINE controls picked by their results rows, pytest's). Each session with a
   revealed open_mouth step is re-judged from its stored per-frame observations (VerificationChunk.observations)
   with paced.open_mouth_jaw; sessions with a jaw record of their own are checked against it. Read-only.

The cut was chosen before this benchmark existed and after seeing (a), cutout.py's genuine controls (part of d)
and its attacks: nothing here is a held-out half for it. What this cannot say: how elderly people open their
mouths on request (no such footage here; b and d are mostly ONE person, talking_head_a, and blink_7's synthetic
mouth), nor a phone's real camera.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import attacks as atk  # noqa: E402
from benchmarks._common import machine, now, publish  # noqa: E402
from benchmarks.camera_sweep import Framing  # noqa: E402
from benchmarks.pad_eval import read_clip  # noqa: E402
from lifecert.config import Settings  # noqa: E402
from lifecert.engine import geometry, jaw  # noqa: E402
from lifecert.engine.base import FaceEngine  # noqa: E402
from lifecert.engine.liveness import Baseline, FrameObs, LivenessParams  # noqa: E402
from lifecert.services.verification import load_frame_engine, steps  # noqa: E402
from lifecert.services.verification.paced import _baseline, open_mouth_jaw  # noqa: E402

FACES = Path(os.environ.get("LIFECERT_SHARED_FACES", ROOT.parent / "shared" / "faces"))
PARAMS = LivenessParams()
OPEN_MAR = PARAMS.mouth_open_abs  # the open_mouth step's absolute threshold (0.30)
NEUTRAL = ("normal", "noglasses", "centerlight", "glasses")
NEUTRAL_MAX_MAR = 0.15
Opening = tuple[str, list[NDArray[np.float32]], NDArray[np.float32]]  # (subject, rest landmarks, opened)
LM = NDArray[np.float32]

STEP_LEAD_MS = 1500  # the step's frames before the opening (prompt delay + reaction: steps.PROMPT_DELAY_MS, 0.6-1.2 s)
SETTLE_MS = 1000  # the baseline's frames before the step (steps.SETTLE_STEADY_MS-like)
CAMERA_SIZE = (480, 640)
# (name, face share of the frame width, camera gain, noise sigma, JPEG quality); None = the clip frame itself
SPEECH_FRAMINGS: tuple[tuple[str, float | None, float, float, int], ...] = (
    ("clip_512", None, 1.0, 0.0, 0),
    ("face_0.55", 0.55, 1.0, 2.5, 85),
    ("face_0.45", 0.45, 1.0, 2.5, 85),
    ("face_0.30", 0.30, 1.0, 2.5, 85),
    ("dim_0.45", 0.45, 0.5, 5.0, 85),
    ("jpeg45_0.45", 0.45, 1.0, 2.5, 45),
)
SYNTH_GAPS = (0.45, 0.675, 0.9, 1.2)  # attacks.MOUTH_GAP's ends and middle, and its OPEN_WIDER cap
SYNTH_FRAMES = 24
SYNTH_FACE = 0.55
SEED = 14


# -- small shared pieces ---------------------------------------------------------------------------------


def spread(values: Iterable[float | None]) -> dict[str, Any]:
    """n, min, p5, median, max and how many fall under JAW_CUT of the decided ratios (None = abstained)."""
    v = np.asarray([x for x in values if x is not None], np.float64)
    if not len(v):
        return {"n": 0, "min": None, "p5": None, "median": None, "max": None, "under_cut": 0}
    q = {k: round(float(np.percentile(v, p)), 3) for k, p in (("min", 0), ("p5", 5), ("median", 50), ("max", 100))}
    return {"n": len(v)} | q | {"under_cut": int((v < jaw.JAW_CUT).sum())}


def main_face(engine: FaceEngine, img: NDArray[np.uint8]) -> tuple[LM | None, int]:
    """(68 landmarks of the first face or None, number of faces) as the frame engine sees ``img`` (BGR)."""
    faces = engine.detect(img)
    if not faces or faces[0].landmarks68 is None:
        return None, len(faces)
    return np.asarray(faces[0].landmarks68, np.float32), len(faces)


# -- a. Yale: deliberate openings ------------------------------------------------------------------------


def yale_landmarks(engine: FaceEngine, path: Path) -> LM | None:
    ok, frames = cv2.imreadmulti(str(path))  # Yale's files are GIFs without an extension
    img = frames[0] if ok and frames else None
    if img is None:
        return None
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    return main_face(engine, np.asarray(img, np.uint8))[0]


def yale_openings(faces_dir: Path, engine: FaceEngine) -> list[Opening]:
    """(subject, neutral landmarks, surprised landmarks) for each Yale person whose surprised mouth reads open
    (MAR >= OPEN_MAR) and who has two neutral photos with a closed mouth (12 of 15 with the frame engine)."""
    out = []
    for k in range(1, 16):
        s = f"subject{k:02d}"
        rest = [lm for c in NEUTRAL if (lm := yale_landmarks(engine, faces_dir / "yale" / f"{s}.{c}")) is not None]
        rest = [lm for lm in rest if geometry.mouth_aspect_ratio(lm) < NEUTRAL_MAX_MAR]
        opened = yale_landmarks(engine, faces_dir / "yale" / f"{s}.surprised")
        if len(rest) >= 2 and opened is not None and geometry.mouth_aspect_ratio(opened) >= OPEN_MAR:
            out.append((s, rest, opened))
    return out


def still_check(rest: Sequence[LM], opened: Sequence[LM]) -> jaw.JawCheck:
    """The jaw test on a step of ``rest`` frames then ``opened`` frames, the baseline MAR the rest frames' median
    (a frontal face: yaw and pitch baseline 0; the session frames = the step's)."""
    base_mar = float(np.median([geometry.mouth_aspect_ratio(lm) for lm in rest]))
    frames = [FrameObs(100 * i, lm, num_faces=1) for i, lm in enumerate([*rest, *opened])]
    return jaw.jaw_follows(frames, frames, base_mar, 0.0, 0.0, max(OPEN_MAR, base_mar + PARAMS.mouth_open_delta))


def measure_yale(engine: FaceEngine) -> dict[str, Any]:
    ops = yale_openings(FACES, engine)
    rows: list[dict[str, Any]] = []
    for s, rest, opened in ops:
        c = still_check(rest, [opened])
        rows.append({"subject": s, "mar": round(float(geometry.mouth_aspect_ratio(opened)), 3), "rest": len(rest)}
                    | c.as_dict())
    return {"people": 15, "usable": len(rows), "spread": spread(r["ratio"] for r in rows if r["decided"]),
            "flagged": [r for r in rows if r["still_chin"]], "rows": rows}


# -- b. REAL speech; c. the SYNTHETIC opening ---------------------------------------------------------------


def camera_frame(src: NDArray[np.uint8], framing: Framing | None, cam: atk.Camera | None) -> NDArray[np.uint8]:
    img = src if framing is None else framing.frame(src)
    return img if cam is None else cam.shoot(img)


def median_box(engine: FaceEngine, frames: Sequence[NDArray[np.uint8]]) -> NDArray[np.float64]:
    boxes = [f[0].box for f in (engine.detect(fr) for fr in frames[:: max(1, len(frames) // 20)]) if f]
    return np.median(np.asarray([b[:4] for b in boxes], np.float64), axis=0)


def runs(flags: Sequence[bool]) -> list[tuple[int, int]]:
    """[start, end) of each maximal run of True."""
    out, start = [], None
    for i, f in enumerate([*flags, False]):
        if f and start is None:
            start = i
        elif not f and start is not None:
            out.append((start, i))
            start = None
    return out


def speech_steps(fobs: Sequence[FrameObs], fps: float, baseline: str) -> list[dict[str, Any]]:
    """One step per run of opened frames (MAR >= OPEN_MAR): jaw_follows on the run and the STEP_LEAD_MS before
    it (not reaching back past the previous run), plus each opened frame of the run alone with the step's lead-in.
    ``baseline``: "clip" = steps.baseline_of over the whole clip (she talks throughout: any second of it is what a
    settle step would see), "before" = over the SETTLE_MS before the step (a settle step just before)."""
    mar = [None if f.landmarks is None else geometry.mouth_aspect_ratio(f.landmarks) for f in fobs]
    lead, settle = round(STEP_LEAD_MS * fps / 1000), round(SETTLE_MS * fps / 1000)
    whole = steps.baseline_of([f for f in fobs if f.landmarks is not None])
    out, prev_end = [], 0
    for a, b in runs([m is not None and m >= OPEN_MAR for m in mar]):
        s0 = max(prev_end, a - lead)  # the step starts after the previous opening: each opening judged on its own
        prev_end = b
        pre = [f for f in fobs[max(0, s0 - settle) : s0] if f.landmarks is not None]
        base = steps.baseline_of(pre) if baseline == "before" and len(pre) >= 5 else whole
        thr = max(OPEN_MAR, base.mar + PARAMS.mouth_open_delta)
        step = list(fobs[s0:b])
        c = jaw.jaw_follows(step, fobs, base.mar, base.yaw, base.pitch, thr)
        lead_in = [f for f in step[: a - s0] if f.landmarks is not None]
        single = [jaw.jaw_follows([*lead_in, f], fobs, base.mar, base.yaw, base.pitch, thr).ratio
                  for f in step[a - s0 :] if f.landmarks is not None]
        out.append({"frames": [a, b], "step_from": s0, "base_mar": round(base.mar, 3), "threshold": round(thr, 3),
                    "mar": [round(float(m), 3) for m in mar[a:b] if m is not None]} | c.as_dict()
                   | {"single_frame_ratios": [None if r is None else round(r, 3) for r in single]})
    return out


def measure_speech(engine: FaceEngine) -> dict[str, Any]:
    frames, fps = read_clip(FACES / "video" / "talking_head_a.mp4")
    box = median_box(engine, frames)
    out: dict[str, Any] = {"clip": "talking_head_a", "frames": len(frames), "fps": fps, "framings": {}}
    for name, face, gain, noise, q in SPEECH_FRAMINGS:
        framing = None if face is None else Framing.place(CAMERA_SIZE, box, face, (0.0, 0.0))
        fobs = []
        for i, fr in enumerate(frames):
            cam = None if face is None else atk.Camera(np.random.default_rng([SEED, i]), 0.7, noise, q, gain)
            lm, n = main_face(engine, camera_frame(fr, framing, cam))
            fobs.append(FrameObs(round(1000 * i / fps), lm, num_faces=n))
        got: dict[str, Any] = {
            "face_of_width": face, "gain": gain, "noise": noise, "jpeg": q,
            "with_face": sum(f.landmarks is not None for f in fobs),
            "opened_frames": sum(f.landmarks is not None and geometry.mouth_aspect_ratio(f.landmarks) >= OPEN_MAR
                                 for f in fobs)}
        for baseline in ("clip", "before"):
            st = speech_steps(fobs, fps, baseline)
            got[baseline] = {"steps": spread(s["ratio"] for s in st),
                             "single_frames": spread(r for s in st for r in s["single_frame_ratios"]),
                             "flagged_steps": [s for s in st if s["still_chin"]], "rows": st}
        out["framings"][name] = got
    return out


def measure_synthetic(engine: FaceEngine) -> dict[str, Any]:
    frames, _fps = read_clip(FACES / "video" / "blink_7_times_1080p.mp4", 640)
    box = median_box(engine, frames)
    framing = Framing.place(CAMERA_SIZE, box, SYNTH_FACE, (0.0, 0.0))
    clip_lm: list[LM | None] = [main_face(engine, fr)[0] for fr in frames]
    closed = [i for i in range(3, len(frames) - 3)
              if all(clip_lm[j] is not None for j in (i - 3, i, i + 3))
              and geometry.mouth_aspect_ratio(clip_lm[i]) < NEUTRAL_MAX_MAR]  # type: ignore[arg-type]
    pick = [closed[j] for j in np.linspace(0, len(closed) - 1, min(SYNTH_FRAMES, len(closed))).round().astype(int)]

    def shot(i: int, gap: float) -> LM | None:
        cam = atk.Camera(np.random.default_rng([SEED, i]), 0.7, 2.5, 85)  # the same camera draw for every gap
        lm = clip_lm[i]
        assert lm is not None
        return main_face(engine, camera_frame(atk.open_mouth(frames[i], lm, gap), framing, cam))[0]

    rows = []
    for i in pick:
        rest = [lm for j in (i - 3, i, i + 3) if (lm := shot(j, 0.0)) is not None]
        row: dict[str, Any] = {"frame": i}
        for gap in SYNTH_GAPS:
            lm = shot(i, gap)
            if lm is None or len(rest) < 2:
                row[f"{gap}"] = {"face": lm is not None, "decided": False}
                continue
            c = still_check(rest, [lm])
            row[f"{gap}"] = {"mar": round(float(geometry.mouth_aspect_ratio(lm)), 3)} | c.as_dict()
        rows.append(row)
    gaps = {}
    for gap in SYNTH_GAPS:
        cs = [r[f"{gap}"] for r in rows]
        gaps[f"{gap}"] = {"frames": len(cs), "not_open": sum(not c.get("decided") for c in cs),
                          "spread": spread(c.get("ratio") for c in cs if c.get("decided")),
                          "flagged": [r["frame"] for r in rows if r[f"{gap}"].get("still_chin")]}
    return {"clip": "blink_7_times_1080p", "face_of_width": SYNTH_FACE, "gaps": gaps, "rows": rows}


# -- d. stored paced sessions ----------------------------------------------------------------------------


def session_jaw(con: sqlite3.Connection, session_id: str, params: LivenessParams = PARAMS
                ) -> tuple[jaw.JawCheck | None, dict[str, Any]]:
    """paced.open_mouth_jaw on a stored session (read from ``con``, the service's SQLite database) and the
    session's own record (decision, reasons, the jaw record of its scores when it has one)."""
    steps_json, baseline, offset, decision, reason, detail, scores = con.execute(
        "select steps, baseline, clock_offset_ms, decision, reason_code, detail_reason, scores "
        "from verification_session where id = ?", (session_id,)).fetchone()
    rows = con.execute("select step, observations from verification_chunk where session_id = ? order by seq",
                       (session_id,)).fetchall()
    frame_steps, fobs = [], []
    for step, obs in rows:
        for d in json.loads(obs or "[]"):
            frame_steps.append(int(step))
            fobs.append(steps.Obs.from_json(d).frame_obs(offset or 0))
    sc = json.loads(scores or "{}") or {}
    rec = {"decision": decision, "reason": reason, "detail": detail,
           "stored_jaw": (sc.get("liveness") or {}).get("jaw"), "frames": len(fobs)}
    base: Baseline = _baseline(json.loads(baseline or "{}"))
    if not fobs or np.isnan(base.mar):
        return None, rec
    return open_mouth_jaw(json.loads(steps_json or "[]"), frame_steps, fobs, base, params), rec


STORED_GROUPS = (  # (source, glob under /tmp, footage)
    ("verify_latency", "lifecert-bench-latency-*/data/lifecert.sqlite",
     "talking_head_a, its first wide opening (tests/paced_client.talking_head_clip)"),
    ("chunk_profile", "lifecert-bench-chunkprof-*/data/lifecert.sqlite", "as verify_latency"),
    ("draw_hook", "latdraw-ff-*/data/lifecert.sqlite", "as verify_latency"),
    ("camera_sweep", "camera-sweep-*/lifecert.sqlite",
     "talking_head_a REAL speech peaks re-cued (attacks.Actor) / blink_7 + SYNTHETIC mouth; with e.'s rerun"),
    ("pytest", "pytest-of-*/pytest-*/**/lifecert.sqlite", "the tests' clips, mostly as verify_latency"),
)
# cutout.py's databases: only the rows its results file calls genuine (the attacks are not genuine users)
CUTOUT_GENUINE = (
    ("cutout13/data/lifecert.sqlite", "cutout.json"),
    ("cutout13/more/data/lifecert.sqlite", "cutout_more.json"),
    ("cutout13/g3d/data/lifecert.sqlite", "cutout_genuine3d.json"),
)
CUTOUT_FOOTAGE = "talking_head_a, its first wide opening (genuine_3d: + SYNTHETIC 3-D turns)"


def paced_sessions(con: sqlite3.Connection) -> list[str]:
    try:
        return [r[0] for r in con.execute("select id from verification_session where protocol = 'paced'")]
    except sqlite3.Error:
        return []


def judge_db(path: Path, ids: Sequence[str] | None) -> list[dict[str, Any]]:
    try:  # pytest's temporary databases come and go while this runs
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.OperationalError:
        return []
    try:
        out = []
        for sid in paced_sessions(con) if ids is None else ids:
            try:
                c, rec = session_jaw(con, sid)
            except (TypeError, sqlite3.Error):  # a session id the database does not hold / no such table / gone
                continue
            if c is None:
                continue
            out.append({"db": str(path), "session_id": sid} | rec | c.as_dict())
        return out
    finally:
        con.close()


def measure_stored(tmp: Path) -> dict[str, Any]:
    groups: dict[str, dict[str, Any]] = {}

    def add(source: str, footage: str, rows: list[dict[str, Any]], dbs: int) -> None:
        g = groups.setdefault(source, {"footage": footage, "databases": 0, "rows": []})
        g["databases"] += dbs
        g["rows"] += rows

    for source, pattern, footage in STORED_GROUPS:
        paths = sorted(tmp.glob(pattern))
        add(source, footage, [r for p in paths for r in judge_db(p, None)], len(paths))
    results = ROOT / "benchmarks" / "results"
    for db, res in CUTOUT_GENUINE:
        if not (tmp / db).exists() or not (results / res).exists():
            continue
        by_variant: dict[str, list[str]] = {}
        for r in json.loads((results / res).read_text())["rows"]:
            if str(r["variant"]).startswith("genuine"):
                by_variant.setdefault(str(r["variant"]), []).append(str(r["session_id"]))
        for v, ids in by_variant.items():
            add(f"cutout_{v}", CUTOUT_FOOTAGE, judge_db(tmp / db, ids), 1)
    out = {}
    for source, g in groups.items():
        rows = g["rows"]
        dec = [r for r in rows if r["decided"]]
        out[source] = {
            "footage": g["footage"], "databases": g["databases"], "sessions": len(rows), "decided": len(dec),
            "spread": spread(r["ratio"] for r in dec),
            "flagged": [r for r in dec if r["still_chin"]],
            "confirmed_to_review": [r["session_id"] for r in dec if r["still_chin"] and r["decision"] == "CONFIRMED"],
            "decisions": {str(k): sum(r["decision"] == k for r in rows) for k in {r["decision"] for r in rows}},
            "stored_jaw_mismatch": [r["session_id"] for r in rows if r["stored_jaw"] is not None
                                    and (r["stored_jaw"].get("ratio") != r["ratio"]
                                         or r["stored_jaw"].get("still_chin") != r["still_chin"])],
            "with_stored_jaw": sum(r["stored_jaw"] is not None for r in rows),
            "opened_median": float(np.median([r["opened"] for r in dec])) if dec else None,
            "rest_from_session": sum(r["rest_from"] == "session" for r in dec),
            "rows": [{k: r[k] for k in ("db", "session_id", "decision", "ratio", "opened", "rest", "rest_from",
                                       "still_chin")} for r in rows],
        }
    return out


# -- e. camera_sweep rerun under the jaw test ---------------------------------------------------------------


def compare_sweep(new: dict[str, Any], old: dict[str, Any]) -> dict[str, Any]:
    """camera_sweep's rerun (``new``, rows with their jaw record) against its last run (``old``, before the jaw
    test): the same session k of a clip under a condition meets the same draws in both (camera_sweep's seeds)."""
    before = {(r["cond"], r["clip"], r["n"]): r for r in old["sessions"]}
    cells: dict[str, dict[str, Any]] = {}
    for r in new["sessions"]:
        c = cells.setdefault(f"{r['cond']} / {r['clip']}", {"n": 0, "confirmed": 0, "still_chin": 0, "decided": 0,
                                                            "confirmed_before": 0, "ratios": [], "flagged": []})
        was = before.get((r["cond"], r["clip"], r["n"]))
        j = r.get("jaw") or {}
        c["n"] += 1
        c["confirmed"] += r["decision"] == "CONFIRMED"
        c["confirmed_before"] += was is not None and was["decision"] == "CONFIRMED"
        c["decided"] += bool(j.get("decided"))
        if j.get("decided"):
            c["ratios"].append(j["ratio"])
        if r.get("liveness_issue") == "still_chin":
            c["still_chin"] += 1
            c["flagged"].append({"n": r["n"], "ratio": j.get("ratio"), "opened": j.get("opened"),
                                 "rest": j.get("rest"), "was": None if was is None else was["decision"],
                                 "session_id": r["session_id"]})
    for c in cells.values():
        c["spread"] = spread(c.pop("ratios"))
    rows = new["sessions"]
    return {"commit": new.get("commit"), "date": new.get("date"), "old_commit": old.get("commit"),
            "old_date": old.get("date"), "sessions": len(rows),
            "confirmed": sum(r["decision"] == "CONFIRMED" for r in rows),
            "still_chin": sum(r.get("liveness_issue") == "still_chin" for r in rows),
            "confirmed_before": sum(1 for r in rows if before.get((r["cond"], r["clip"], r["n"]), {}).get(
                "decision") == "CONFIRMED"),
            "cells": cells}


# -- report ----------------------------------------------------------------------------------------------


READ = [
    "How to read it. The 900+ stored talking_head_a sessions of verify_latency, chunk_profile, draw_hook, the "
    "tests and cutout's controls are NOT 900 openings: each acts the clip's first wide opening (MAR > 0.4) as ONE "
    "opened frame against the clip's calm run, so they all sit at 0.83-1.11. Where the same REAL person opens her "
    "mouth in other ways — camera_sweep's actor re-cues any MAR peak > 0.34 of her speech while her settle "
    "baseline is taken as she talks (MAR 0.15-0.20, so the step's \"rest\" frames are half open) — a third of her "
    "sessions are refused `still_chin` in every camera condition, `base` included (ratios 0.15-0.45, 1-5 opened "
    "frames): her marginal speech openings part the lips by ~0.1-0.15 inter-ocular distances with the chin "
    "moving by about dlib's own jitter (±0.05). (b) shows the same on the clip itself: the marginal openings "
    "(MAR 0.30-0.35) read 0.25-0.5 at a normal framing, the wide ones 0.6-1.0. Our SYNTHETIC opening (c) moves "
    "the chin at gaps 0.45-0.9, but at 1.2 (the OPEN_WIDER cap) dlib's fit stops following the render (MAR "
    "lower than at 0.9) and 3 of 24 frames read under the cut; in the sweep 4 blink_7 sessions were refused, "
    "3 of them on a single opened frame.",
    "",
    "Not measured: anyone opening on request who is old (no such footage here: the REAL openings are 12 young "
    "Yale faces, one photo each, and ONE talking person); dentures, beards, a hand or mask near the chin; real "
    "phone cameras (the camera conditions are SYNTHETIC degradations). The cut-out prints the test is meant for "
    "are measured by `cutout`, not here.",
]


def _s(x: dict[str, Any]) -> str:
    if not x["n"]:
        return "– | – | – | –"
    return f"{x['min']} | {x['p5']} | {x['median']} | {x['max']}"


def text(res: dict[str, Any]) -> str:
    m = res["machine"]
    y, sp, sy, st, sw = res["yale"], res["speech"], res["synthetic"], res["stored"], res.get("sweep")
    lines = [
        "## Jaw test on GENUINE openings (`benchmarks/jaw_eval.py`)",
        "",
        f"{res['date']}, {m.get('cpu', '')} ({m.get('nproc', '')} cores, shared, niced), main {res['commit']}, "
        f"{res['wall_s']} s. The statistic of lifecert/engine/jaw.py (jaw.jaw_follows; stored sessions through "
        "paced.open_mouth_jaw, what _finalize calls): per session the median over the open_mouth step's opened "
        f"frames of chin drop / inner-lip gap growth; under JAW_CUT {jaw.JAW_CUT} the session goes to REVIEW "
        "LIVENESS_FAILED `still_chin`. GENUINE openings only (the attacks: `cutout`). The cut was chosen BEFORE "
        "this benchmark, after seeing Yale (a) and cutout's genuine controls (part of d): nothing here is a "
        "held-out half. Ratio columns: min | p5 | median | max; \"under the cut\" = sessions production refuses.",
        "",
        "| source | REAL / SYNTHETIC | footage | n | decided | min | p5 | median | max | under the cut |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    if y is not None:
        lines.append(f"| a. Yale surprised vs own neutral | REAL deliberate opening | {y['usable']} of {y['people']} "
                     f"people, one photo each | {y['usable']} | {y['spread']['n']} | {_s(y['spread'])} | "
                     f"{y['spread']['under_cut']} |")
    for name, f in (sp or {"framings": {}})["framings"].items():
        for baseline in ("clip", "before"):
            x = f[baseline]
            what = "REAL speech" + ("" if f["face_of_width"] is None else ", SYNTHETIC camera")
            lines.append(f"| b. talking_head_a {name}, baseline {baseline}: steps / single opened frames | {what} | "
                         f"one person, {f['opened_frames']} opened frames of {sp['frames']} | {len(x['rows'])} / "
                         f"{sum(len(r['single_frame_ratios']) for r in x['rows'])} | {x['steps']['n']} / "
                         f"{x['single_frames']['n']} | {_s(x['steps'])} | {x['steps']['under_cut']} / "
                         f"{x['single_frames']['under_cut']} |")
    for gap, g in (sy or {"gaps": {}})["gaps"].items():
        lines.append(f"| c. blink_7 + attacks.open_mouth gap {gap} | SYNTHETIC opening, REAL face | one person, "
                     f"{g['frames']} frames | {g['frames']} | {g['spread']['n']} ({g['not_open']} under MAR 0.30) | "
                     f"{_s(g['spread'])} | {g['spread']['under_cut']} |")
    for source, g in (st or {}).items():
        lines.append(f"| d. stored: {source} ({g['databases']} db) | paced sessions, production's pipeline | "
                     f"{g['footage']}; opened frames per session: median {g['opened_median']} | {g['sessions']} | "
                     f"{g['decided']} | {_s(g['spread'])} | {g['spread']['under_cut']} (of them CONFIRMED "
                     f"without the test: {len(g['confirmed_to_review'])}) |")
    if sw is not None:
        lines += [
            "",
            f"e. `camera_sweep` rerun under the jaw test ({sw['date']}, main {sw['commit']}; 6 of its 13 conditions, "
            f"where landmarks are noisiest, 16 sessions per condition and clip) against its last run "
            f"({sw['old_date']}, {sw['old_commit']}, no jaw test), the same drawn sessions: CONFIRMED "
            f"{sw['confirmed']}/{sw['sessions']} (the same sessions before: {sw['confirmed_before']}); "
            f"`still_chin` {sw['still_chin']}/{sw['sessions']}.",
            "",
            "| condition / clip | n | CONFIRMED now | CONFIRMED before | still_chin | jaw decided | min | p5 | median "
            "| max |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for cell, c in sw["cells"].items():
            lines.append(f"| {cell} | {c['n']} | {c['confirmed']} | {c['confirmed_before']} | {c['still_chin']} | "
                         f"{c['decided']} | {_s(c['spread'])} |")
    if st is not None:
        kept = sum(g["with_stored_jaw"] for g in st.values())
        off = sum(len(g["stored_jaw_mismatch"]) for g in st.values())
        lines += ["", f"Check of the recomputation (d): {kept} stored sessions were decided with the jaw test and "
                  f"carry production's own record; the recomputed ratio and verdict differ in {off} of them."]
    lines += ["", *READ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import subprocess
    import time

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tmp", type=Path, default=Path("/tmp"), help="where the kept session databases are")
    ap.add_argument("--only", default="yale,speech,synthetic,stored,sweep")
    ap.add_argument("--sweep", type=Path, default=ROOT / "benchmarks" / "results" / "camera_sweep_jaw.json",
                    help="camera_sweep's rerun under the jaw test (its --out), compared with results/camera_sweep.json")
    ap.add_argument("--no-readme", action="store_true")
    args = ap.parse_args(argv)
    t0 = time.time()
    engine = load_frame_engine(Settings(), name="dlib")
    only = set(args.only.split(","))
    res: dict[str, Any] = {
        "date": now(), "machine": machine(), "cut": jaw.JAW_CUT,
        "commit": subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                                 text=True).stdout.strip(),
        "yale": measure_yale(engine) if "yale" in only else None,
        "speech": measure_speech(engine) if "speech" in only else None,
        "synthetic": measure_synthetic(engine) if "synthetic" in only else None,
        "stored": measure_stored(args.tmp) if "stored" in only else None,
        "sweep": compare_sweep(json.loads(args.sweep.read_text()),
                               json.loads((ROOT / "benchmarks" / "results" / "camera_sweep.json").read_text()))
        if "sweep" in only and args.sweep.exists() else None,
    }
    res["wall_s"] = round(time.time() - t0)
    publish("jaw", "jaw", res, text(res), readme=not args.no_readme)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
