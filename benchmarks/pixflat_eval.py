"""Pixel planarity (lifecert/engine/pixel_planarity.py) against prints and genuine users; README section ``pixflat``.

    LIFECERT_SHARED_FACES=/work/shared/faces nice -n 10 .venv/bin/python benchmarks/pixflat_eval.py --measure flat
    ... --measure stored      # cutout.py's kept runs (results/cutout*.json name the sessions and their variant)
    ... --measure sweep       # camera_sweep's kept databases ($TMP/camera-sweep-*: every paced session is genuine)
    ... --measure latency     # verify_latency's kept databases ($TMP/lifecert-bench-latency-*/data: genuine)
    ... --measure oneframe    # DIAGNOSTIC: one REAL print frame moved rigidly (dlib landmarks of the warped frames)
    ... --measure noisy       # DIAGNOSTIC: the same, each frame degraded on its own (noise, JPEG, blur)
    .venv/bin/python benchmarks/pixflat_eval.py --relandmark  # the landmark test's verdicts again (its rule changed)
    .venv/bin/python benchmarks/pixflat_eval.py --report  # choose the rule, results/pixflat.json, README section

Each --measure writes one row per session (the pixel test's pair readings, its CPU time, the landmark test's
verdict on the same landmarks) to --raw-dir/<group>.jsonl and resumes where it stopped; --report reads them only.

Sessions. flat_eval's (imported, not copied: flat_eval.sessions / frames_of / motion_plan via its cache /
derived_frames / ping_pong): REAL NUAA print and live sessions, apfol live, 25-frame windows of the two REAL clips at 4
and 8 fps (no warp), the REAL print frames turned / nodded as a rigid sheet (``tilt``) or bowed and turned (``curl``),
the REAL genuine frames turned by attacks.turn_head_3d (``turn3d``); landmarks from flat_eval's cache (dlib of the
same frames), derived frames made again from each cached plan (deterministic). Stored production sessions: COPIES of
the kept databases (the originals are never opened) read like cutout.py --refinalize / jaw_eval: each chunk's
observations (landmarks of the analysed frame) and its sealed frames through paced.frame_loader, decoded and shrunk
to the analysed size. The landmark test = planarity.nose_parallax at PARALLAX_CUT on the same landmarks (production
also runs liveness.flat_check; not included here).

Rule: 30 variants (statistic p2_p80 / p2_med / nose_res over motion, minimum motion 0.5-3 crop px, 2 or 3 moving
pairs), each cut at the CALIBRATION half's lowest genuine value rounded down to 0.01, the one catching most
calibration prints wins; numbers are given for the other (REPORT) half, exact 95 % Clopper-Pearson. Halves:
flat_eval's (NUAA subjects 1-4 and every other session of the other sources calibrate; a derived session goes with
its source); stored sessions by the parity of their session number k (paired variants share k); camera_sweep by the
CRC32 parity of the session id. The DIAGNOSTIC sets are not used to choose.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import sqlite3
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import flat_eval as fe  # noqa: E402
from benchmarks.pad_eval import clopper_pearson, read_clip  # noqa: E402
from lifecert.engine import pixel_planarity as pp  # noqa: E402
from lifecert.engine.liveness import FrameObs  # noqa: E402
from lifecert.engine.planarity import nose_parallax  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
Images = Callable[[Sequence[int]], Sequence[Any]]


# -- flat_eval's sessions: REAL NUAA / apfol / clips, and the derived (SYNTHETIC movement) sets ------------------

_CLIPS: dict[str, tuple[list[np.ndarray], float]] = {}


def _frames_of(s: dict[str, Any], faces: Path) -> list[tuple[list[np.ndarray], list[int], str]]:
    """flat_eval.frames_of with each clip read once (the 4 fps and 8 fps sets share it)."""
    if not s.get("clip"):
        return fe.frames_of(s, faces)
    if s["clip"] not in _CLIPS:
        _CLIPS[s["clip"]] = read_clip(faces / "video" / f"{s['clip']}.mp4", 640)
    frames, fps = _CLIPS[s["clip"]]
    step = int(s.get("step", 6))
    out = []
    for phase in range(step):
        kept = frames[phase::step]
        for w in range(0, len(kept) - 10 + 1, fe.SESSION_LEN):
            chunk = kept[w : w + fe.SESSION_LEN]
            out.append((chunk, [round(i * step * 1000 / fps) for i in range(len(chunk))], f"{s['name']}/{phase}/{w}"))
    return out


def flat_sessions(faces: Path, cache_dir: Path, derived: bool = True,
                  only: Callable[[str], bool] | None = None) -> Iterator[dict[str, Any]]:
    """flat_eval's sessions with their frames: landmarks from its cache (dlib of the same frames), the derived
    sessions' frames made again by flat_eval.derived_frames from each cached plan (deterministic)."""
    turn: dict[str, int] = {}
    for s in fe.sessions(faces):
        base = fe.base_cached(s, cache_dir, None, faces)
        if base is None:
            continue
        windows = None
        splits = {}
        for c in base:
            split = s.get("split") or ("cal" if turn.get(s["source"], 0) % 2 == 0 else "report")
            turn[s["source"]] = turn.get(s["source"], 0) + 1
            splits[c["name"]] = split
        for c in base:
            if only is not None and not only(c["name"]):
                continue
            windows = windows or {w[2]: w for w in _frames_of(s, faces)}
            imgs = windows[c["name"]][0]
            yield {"name": c["name"], "label": s["label"], "source": s["source"], "split": splits[c["name"]],
                   "set": "real", "lm": c["lm"], "t": c["t"], "frames": imgs}
        if not derived:
            continue
        for kind in fe.DERIVED_KINDS[s["label"]]:
            for axis in ("yaw", "pitch"):
                for c in fe.derived_cached(s, kind, axis, base, cache_dir, None, faces) or []:
                    if only is not None and not only(c["name"]):
                        continue
                    windows = windows or {w[2]: w for w in _frames_of(s, faces)}
                    imgs = windows[c["base"]][0]
                    b = next(x for x in base if x["name"] == c["base"])
                    idx = fe.ping_pong(len(imgs), fe.DERIVED_LEN) if len(imgs) < fe.DERIVED_LEN else list(
                        range(len(imgs)))
                    plan = fe.motion_plan(c["name"], c["t"], axis, kind)
                    if json.loads(json.dumps(plan)) != c["plan"]:
                        raise RuntimeError(f"{c['name']}: flat_eval's cache holds another plan (stale cache?)")
                    frames, _ = fe.derived_frames(kind, plan, [imgs[i] for i in idx], [b["lm"][i] for i in idx], c["t"])
                    yield {"name": c["name"], "label": s["label"], "source": s["source"], "split": splits[c["base"]],
                           "set": f"{kind}/{axis}", "lm": c["lm"], "t": c["t"], "frames": frames}


def from_list(frames: Sequence[Any]) -> Images:
    def images(idx: Sequence[int]) -> list[Any]:
        return [frames[i] for i in idx]

    return images


def landmark_verdict(lm: Sequence[Any], t: Sequence[int]) -> dict[str, Any]:
    obs = [FrameObs(int(tt), None if x is None else np.asarray(x, np.float32)) for x, tt in zip(lm, t, strict=True)]
    pc = nose_parallax(obs)
    return {"lm_decided": pc.decided, "lm_flat": pc.decided and pc.flat, "lm_value": pc.parallax}


def measure(lm: Sequence[Any], images: Images, **kw: Any) -> dict[str, Any]:
    t0 = time.thread_time()
    r = pp.pixel_planarity([None if x is None else np.asarray(x, np.float64) for x in lm], images, **kw)
    ms = (time.thread_time() - t0) * 1000
    return {"px_decided": r.decided, "px_flat": r.flat, "px_value": r.value, "px_pairs": r.pairs,
            "px_motion": r.motion, "px_ms": round(ms, 1),
            "px_readings": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in vars(x).items()}
                            for x in r.readings]}


def one_frame_sessions(faces: Path, cache_dir: Path, engine: Any) -> Iterator[dict[str, Any]]:
    """DIAGNOSTIC: each REAL NUAA print session's FIRST frame alone, turned (``tilt1``) or bowed and turned
    (``curl1``) along the derived session's cached plan: a print held perfectly rigid (no bend, blur or light change
    between frames) — what is left of the real sets' frame-to-frame change is then only the drawn movement.
    Landmarks by ``engine`` (dlib) on the warped frames."""
    for s in fe.sessions(faces):
        if s["label"] != 1:
            continue
        base = fe.base_cached(s, cache_dir, None, faces)
        if base is None:
            continue
        windows = {w[2]: w for w in _frames_of(s, faces)}
        for n, c in enumerate(base):
            axis = "yaw" if n % 2 == 0 else "pitch"
            for kind in ("tilt", "curl"):
                d = next((x for x in fe.derived_cached(s, kind, axis, base, cache_dir, None, faces) or []
                          if x["base"] == c["name"]), None)
                first = next((i for i, x in enumerate(c["lm"]) if x is not None), None)
                if d is None or first is None:
                    continue
                img = windows[c["name"]][0][first]
                plan = fe.motion_plan(d["name"], d["t"], axis, kind)
                if json.loads(json.dumps(plan)) != d["plan"]:
                    raise RuntimeError(f"{d['name']}: flat_eval's cache holds another plan (stale cache?)")
                frames, _ = fe.derived_frames(kind, plan, [img] * len(d["t"]), [c["lm"][first]] * len(d["t"]), d["t"])
                lm = fe.landmarks(engine, frames) if engine is not None else []
                yield {"name": f"{kind}1/{axis}/{c['name']}", "label": 1, "source": "nuaa", "split": s["split"],
                       "set": f"{kind}1/{axis}", "lm": lm, "t": d["t"], "frames": frames}


def landmark_sessions(faces: Path, cache_dir: Path) -> Iterator[tuple[str, list[Any], list[int]]]:
    """(name, landmarks, times) of flat_eval's sessions, base and derived, from its cache alone (no frames)."""
    for s in fe.sessions(faces):
        base = fe.base_cached(s, cache_dir, None, faces)
        if base is None:
            continue
        for c in base:
            yield c["name"], c["lm"], c["t"]
        for kind in fe.DERIVED_KINDS[s["label"]]:
            for axis in ("yaw", "pitch"):
                for c in fe.derived_cached(s, kind, axis, base, cache_dir, None, faces) or []:
                    yield c["name"], c["lm"], c["t"]


def relandmark(raw_dir: Path, faces: Path, cache_dir: Path) -> None:
    """The landmark test's verdicts in the raw rows recomputed with planarity.nose_parallax as checked out now (its
    rule changes; the pixel readings do not depend on it). The DIAGNOSTIC one-frame rows need dlib again (their
    warped frames' landmarks are not kept): they are re-made (pixel readings kept as measured)."""
    lms = {n: (lm, t) for n, lm, t in landmark_sessions(faces, cache_dir)}
    for g in ("flat", "stored", "sweep", "latency", "oneframe"):  # "noisy" is measured with today's rule
        p = raw_dir / f"{g}.jsonl"
        if not p.exists():
            continue
        rows = [json.loads(x) for x in p.read_text().splitlines()]
        if g == "flat":
            for r in rows:
                r.update(landmark_verdict(*lms[r["name"]]))
        elif g == "oneframe":
            from lifecert.config import Settings
            from lifecert.engine.loader import load_engine

            again = {s["name"]: s for s in one_frame_sessions(faces, cache_dir, load_engine(Settings(), name="dlib"))}
            for r in rows:
                r.update(landmark_verdict(again[r["name"]]["lm"], again[r["name"]]["t"]))
        else:
            where = {n: COPIES / copy_name(d) for n, d, _ in
                     cutout_runs() + sweep_runs() + sweep_runs("lifecert-bench-latency-*/data", "verify_latency")}
            by_run: dict[str, list[dict[str, Any]]] = {}
            for r in rows:
                by_run.setdefault(r["run"], []).append(r)
            for run, rs in by_run.items():
                con = sqlite3.connect(str(where[run] / "lifecert.sqlite"))
                try:
                    for r in rs:
                        lm, t = stored_landmarks(con, r["name"].split("/", 1)[1])
                        r.update(landmark_verdict(lm, t))
                finally:
                    con.close()
        p.write_text("".join(json.dumps(r) + "\n" for r in rows))
        print(g, len(rows), "re-decided", flush=True)


def stored_landmarks(con: sqlite3.Connection, session_id: str) -> tuple[list[Any], list[int]]:
    from lifecert.services.verification import steps

    row = con.execute("select clock_offset_ms from verification_session where id = ?", (session_id,)).fetchone()
    offset = (row[0] if row else 0) or 0
    lms, ts = [], []
    for (obs,) in con.execute("select observations from verification_chunk where session_id = ? order by seq",
                              (session_id,)).fetchall():
        for d in json.loads(obs or "[]"):
            o = steps.Obs.from_json(d)
            lms.append(None if o.landmarks is None else o.landmarks.astype(np.float64))
            ts.append(o.t_ms + offset)
    return lms, ts


NOISE_LEVELS = {"noise1": (3.0, 75, 0.6), "noise2": (6.0, 60, 1.2)}  # grey-level SD, JPEG quality, max blur sigma


def degrade(frames: Sequence[Any], level: str, name: str) -> list[Any]:
    """Each frame degraded on its own (a camera's per-frame noise): Gaussian blur of a drawn sigma up to the level's,
    sensor noise, JPEG; drawn from a generator seeded by the session's name."""
    import cv2

    sd, quality, blur = NOISE_LEVELS[level]
    rng = np.random.default_rng([zlib.crc32(name.encode()), 15])
    out = []
    for f in frames:
        g = cv2.GaussianBlur(f.astype(np.float32), (0, 0), float(rng.uniform(0, blur)) + 1e-3)
        g = np.clip(g + rng.normal(0, sd, g.shape), 0, 255).astype(np.uint8)
        _ok, enc = cv2.imencode(".jpg", g, [cv2.IMWRITE_JPEG_QUALITY, quality])
        out.append(cv2.imdecode(enc, cv2.IMREAD_COLOR))
    return out


def noisy_sessions(faces: Path, cache_dir: Path, engine: Any) -> Iterator[dict[str, Any]]:
    """DIAGNOSTIC: the ``tilt1`` sessions (one REAL print frame turned rigidly) with each frame degraded on its own
    at NOISE_LEVELS: does per-frame image noise alone make a rigid print's pixels "not one homography"?"""
    for s in one_frame_sessions(faces, cache_dir, None):
        if not s["set"].startswith("tilt1/"):
            continue
        for level in NOISE_LEVELS:
            name = f"{level}/{s['name']}"
            frames = degrade(s["frames"], level, name)
            yield s | {"name": name, "set": f"{level}/{s['set']}", "frames": frames, "lm": fe.landmarks(engine, frames)}


# -- stored production sessions (cutout.py's runs, camera_sweep's databases): read from COPIES -----------------

CUTOUT_RUNS = ("cutout.json", "cutout_more.json", "cutout_genuine3d.json", "cutout_adaptive.json",
               "cutout_adaptive_wide.json", "cutout_jaw_more_a.json", "cutout_jaw_more_b.json", "cutout_jaw_twin.json")
INFORMED = ("lower_face", "mouth_chin", "lower_face_photo", "mouth_chin_photo", "lower_face_wide_photo",
            "mouth_chin_wide_photo")
COPIES = Path(tempfile.gettempdir()) / "pixflat" / "db"


def copy_name(src: Path) -> str:
    return str(src).removeprefix(tempfile.gettempdir() + "/").replace("/", "_")


def copy_db(src_dir: Path) -> Path:
    """A copy of a kept run's database (the original is never opened)."""
    dst = COPIES / copy_name(src_dir)
    if not (dst / "lifecert.sqlite").exists():
        dst.mkdir(parents=True, exist_ok=True)
        for f in ("lifecert.sqlite", "lifecert.sqlite-wal"):
            if (src_dir / f).exists():
                shutil.copy2(src_dir / f, dst / f)
    return dst


@contextlib.contextmanager
def opened(copy_dir: Path) -> Iterator[tuple[Any, Any, sqlite3.Connection]]:
    from lifecert.config import Settings
    from lifecert.services.context import AppContext

    db_path = copy_dir / "lifecert.sqlite"
    ctx = AppContext(Settings(data_dir=copy_dir, database_url=f"sqlite:///{db_path}"), create_schema=False)
    con = sqlite3.connect(str(db_path))
    try:
        with ctx.db.session() as db:
            yield ctx, db, con
    finally:
        con.close()
        ctx.close()


def stored_session(ctx: Any, db: Any, con: sqlite3.Connection, session_id: str) -> dict[str, Any] | None:
    """A stored paced session's landmarks (scaled to the analysed frame), times and a frame loader (sealed frames
    decoded and shrunk to the analysed size, as the landmarks were taken)."""
    import cv2

    from lifecert.services.verification import steps
    from lifecert.services.verification.paced import frame_loader

    row = con.execute("select clock_offset_ms from verification_session where id = ?", (session_id,)).fetchone()
    if row is None:
        return None
    offset = row[0] or 0
    lms, ts, sizes, keys = [], [], [], []
    for cid, obs in con.execute("select id, observations from verification_chunk where session_id = ? order by seq",
                                (session_id,)).fetchall():
        for i, d in enumerate(json.loads(obs or "[]")):
            o = steps.Obs.from_json(d)
            lms.append(None if o.landmarks is None else o.landmarks.astype(np.float64))
            ts.append(o.t_ms + offset)
            sizes.append(o.size)
            keys.append((int(cid), i))
    if not lms:
        return None
    load = frame_loader(ctx, db, session_id, keys)

    def images(idx: Sequence[int]) -> list[Any]:
        out = []
        for k, img in zip(idx, load(idx), strict=True):
            w, h = sizes[k]
            out.append(None if img is None else img if img.shape[1] == w else cv2.resize(img, (w, h),
                                                                                         interpolation=cv2.INTER_AREA))
        return out

    return {"lm": lms, "t": ts, "images": images}


def stored_rows(runs: Sequence[tuple[str, Path, list[tuple[str, str]]]], limit: int = 0) -> Iterator[dict[str, Any]]:
    """(run name, kept data dir, [(session id, variant)]) -> one measured row per session."""
    for run, src, sessions in runs:
        copy = copy_db(src)
        with opened(copy) as (ctx, db, con):
            for n, (sid, variant) in enumerate(sessions):
                if limit and n >= limit:
                    break
                t0 = time.thread_time()
                s = stored_session(ctx, db, con, sid)
                if s is None:
                    continue
                r = measure(s["lm"], s["images"])
                r["px_ms_with_decode"] = round((time.thread_time() - t0) * 1000, 1)
                yield {"name": f"{run}/{sid}", "run": run, "variant": variant} | r | landmark_verdict(s["lm"], s["t"])


def cutout_runs() -> list[tuple[str, Path, list[tuple[str, str]]]]:
    out = []
    for f in CUTOUT_RUNS:
        res = json.loads((RESULTS / f).read_text())
        out.append((f.removesuffix(".json"), Path(res["data_dir"]),
                    [(str(r["session_id"]), str(r["variant"])) for r in res["rows"]]))
    return out


def sweep_runs(pattern: str = "camera-sweep-*", variant: str = "camera_sweep"
               ) -> list[tuple[str, Path, list[tuple[str, str]]]]:
    """Every paced session of the kept databases matching ``pattern`` under $TMP (all GENUINE users), from copies;
    a database written in the last 30 minutes (a benchmark may be running) is left out."""
    out = []
    for d in sorted(Path(tempfile.gettempdir()).glob(pattern)):
        db = d / "lifecert.sqlite"
        if not db.exists() or time.time() - db.stat().st_mtime < 1800:
            continue
        copy = copy_db(d)
        try:
            con = sqlite3.connect(str(copy / "lifecert.sqlite"))
            ids = [r[0] for r in con.execute("select id from verification_session where protocol = 'paced'")]
            con.close()
        except sqlite3.Error:
            continue
        out.append((copy_name(d), d, [(i, variant) for i in ids]))
    return out


# -- the report ------------------------------------------------------------------------------------------------

SETS: list[tuple[str, int, str, Callable[[dict[str, Any]], bool]]] = [  # key, label (1 = attack), what, row filter
    ("nuaa_print", 1, "REAL NUAA print sessions as captured", lambda r: r.get("set") == "real" and r.get("label") == 1),
    ("print_turned", 1, "the same REAL print frames turned / nodded as a rigid sheet (SYNTHETIC movement)",
     lambda r: str(r.get("set", "")).startswith("tilt/")),
    ("print_bowed", 1, "the same, sheet bowed 0.03-0.10 face widths and turned (SYNTHETIC movement and bow)",
     lambda r: str(r.get("set", "")).startswith("curl/")),
    ("cutout_holes", 1, "cut-out prints, mouth / eyes holes (sessions 13-14; SYNTHETIC print and movement, "
     "REAL attacker face, production's service)",
     lambda r: r.get("variant") is not None and r["variant"] not in INFORMED and not r["variant"].startswith("genuine")
     and r["variant"] not in ("camera_sweep", "verify_latency")),
    ("cutout_informed", 1, "cut-out prints of the informed attacker (lower face / chin cut out, session 14)",
     lambda r: r.get("variant") in INFORMED),
    ("print_rigid_turned", 1, "DIAGNOSTIC: one REAL print frame per session turned as a rigid sheet (no change between "
     "frames but the drawn movement)", lambda r: str(r.get("set", "")).startswith("tilt1/")),
    ("print_rigid_bowed", 1, "DIAGNOSTIC: the same frame bowed and turned",
     lambda r: str(r.get("set", "")).startswith("curl1/")),
    ("print_rigid_noise1", 1, "DIAGNOSTIC: print_rigid_turned, each frame degraded on its own (noise SD 3, JPEG 75, "
     "blur up to 0.6 px)", lambda r: str(r.get("set", "")).startswith("noise1/")),
    ("print_rigid_noise2", 1, "DIAGNOSTIC: the same, noise SD 6, JPEG 60, blur up to 1.2 px",
     lambda r: str(r.get("set", "")).startswith("noise2/")),
    ("nuaa_live", 0, "REAL NUAA live sessions", lambda r: r.get("set") == "real" and r.get("source") == "nuaa"
     and r.get("label") == 0),
    ("apfol_live", 0, "REAL apfol live", lambda r: r.get("set") == "real" and r.get("source") == "apfol"),
    ("clips_still", 0, "REAL clip windows (talking_head_a, blink_7) at 4 and 8 fps, no warp",
     lambda r: r.get("set") == "real" and r.get("source") in ("video", "video8")),
    ("turn3d", 0, "the REAL genuine frames above turned / nodded by turn_head_3d (SYNTHETIC 3D render)",
     lambda r: str(r.get("set", "")).startswith("turn3d/")),
    ("cutout_genuine", 0, "cutout.py's genuine control (talking_head_a, turns by the 2D cylinder warp), production",
     lambda r: r.get("variant") == "genuine"),
    ("cutout_genuine_3d", 0, "cutout.py's genuine_3d control (turn_head_3d turns), production",
     lambda r: r.get("variant") == "genuine_3d"),
    ("camera_sweep", 0, "camera_sweep's kept GENUINE sessions (turns by turn_head_3d), production",
     lambda r: r.get("variant") == "camera_sweep"),
    ("verify_latency", 0, "verify_latency's kept GENUINE sessions (talking_head_a; turns by the 2D cylinder warp), "
     "production", lambda r: r.get("variant") == "verify_latency"),
]
# not used to choose the rule
DIAGNOSTIC = ("print_rigid_turned", "print_rigid_bowed", "print_rigid_noise1", "print_rigid_noise2")
STATS = ("p2_p80", "p2_med", "nose_res")
MOTIONS = (0.5, 1.0, 1.5, 2.0, 3.0)
MIN_PAIRS_CHOICES = (2, 3)
OTHER_CUTS = (0.1, 0.2, 0.25, 0.3, 0.44, 0.6)  # post-hoc sensitivity (all sessions, chosen after seeing them)


def _split(r: dict[str, Any], k_of: dict[str, int]) -> str:
    if "split" in r:
        return str(r["split"])
    sid = r["name"].split("/", 1)[1]
    k = k_of.get(sid)
    if k is None:  # camera_sweep: by the session id's hash
        k = zlib.crc32(sid.encode())
    return "cal" if k % 2 == 0 else "report"


def _value(r: dict[str, Any], stat: str, motion: float, min_pairs: int) -> float | None:
    readings = [pp.PairReading(**x) for x in r["px_readings"]]
    return pp.session_value(readings, stat=stat, min_motion=motion, min_pairs=min_pairs)[0]


def _cell(k: int, n: int) -> dict[str, Any]:
    lo, hi = clopper_pearson(k, n) if n else (0.0, 1.0)
    return {"k": k, "n": n, "rate": round(k / n, 4) if n else None, "ci95": [round(lo, 4), round(hi, 4)]}


def _txt(c: dict[str, Any]) -> str:
    if not c["n"]:
        return "0/0"
    return f"{c['k']}/{c['n']} = {100 * c['rate']:.1f} % [{100 * c['ci95'][0]:.1f}-{100 * c['ci95'][1]:.1f}]"


def choose(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every variant (statistic, min motion, min pairs) with its cut = the calibration half's lowest GENUINE value
    rounded down to 0.01 (no genuine calibration session fires), ranked by the calibration half's prints caught."""
    out = []
    cal = [r for r in rows if r["_split"] == "cal" and r["_set"] not in DIAGNOSTIC]
    for stat in STATS:
        for m in MOTIONS:
            for mp in MIN_PAIRS_CHOICES:
                gen = [v for r in cal if r["_label"] == 0 and (v := _value(r, stat, m, mp)) is not None]
                att = [_value(r, stat, m, mp) for r in cal if r["_label"] == 1]
                if not gen:
                    continue
                cut = math.floor(min(gen) * 100) / 100
                caught = sum(v is not None and v < cut for v in att)
                out.append({"stat": stat, "min_motion": m, "min_pairs": mp, "cut": cut, "cal_caught": caught,
                            "cal_prints": len(att), "cal_genuine_decided": len(gen)})
    return sorted(out, key=lambda v: -v["cal_caught"])


def report(rows: list[dict[str, Any]], rule: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, label, what, f in SETS:
        mine = [r for r in rows if f(r)]
        for r in mine:
            r["_v"] = _value(r, rule["stat"], rule["min_motion"], rule["min_pairs"])
            r["_px"] = r["_v"] is not None and r["_v"] < rule["cut"]
        rep = [r for r in mine if r["_split"] == "report"]
        vals = [r["_v"] for r in mine if r["_v"] is not None]
        e: dict[str, Any] = {"label": label, "what": what, "n": len(mine), "n_report": len(rep)}
        for name, sub in (("report", rep), ("all", mine)):
            e[name] = {
                "decided": _cell(sum(r["_v"] is not None for r in sub), len(sub)),
                "pixel_flat": _cell(sum(r["_px"] for r in sub), len(sub)),
                "landmark_flat": _cell(sum(bool(r["lm_flat"]) for r in sub), len(sub)),
                "either": _cell(sum(r["_px"] or bool(r["lm_flat"]) for r in sub), len(sub)),
                "both": _cell(sum(r["_px"] and bool(r["lm_flat"]) for r in sub), len(sub)),
                "pixel_only": sum(r["_px"] and not r["lm_flat"] for r in sub),
                "landmark_only": sum(bool(r["lm_flat"]) and not r["_px"] for r in sub),
            }
        e["at_cuts_all"] = {str(c): sum(r["_v"] is not None and r["_v"] < c for r in mine) for c in OTHER_CUTS}
        e["values"] = [round(float(x), 3) for x in np.percentile(vals, [0, 10, 50, 90, 100])] if vals else None
        e["px_ms"] = [round(float(x), 1) for x in np.percentile([r["px_ms"] for r in mine], [50, 95, 100])] if mine \
            else None
        if any("px_ms_with_decode" in r for r in mine):
            e["px_ms_with_decode"] = [round(float(x), 1) for x in np.percentile(
                [r["px_ms_with_decode"] for r in mine], [50, 95, 100])]
        if key == "cutout_informed" or key == "cutout_holes":
            e["by_variant"] = {v: {"n": sum(r["variant"] == v for r in mine),
                                   "pixel_flat": sum(r["_px"] for r in mine if r["variant"] == v),
                                   "landmark_flat": sum(bool(r["lm_flat"]) for r in mine if r["variant"] == v),
                                   "either": sum(r["_px"] or bool(r["lm_flat"]) for r in mine if r["variant"] == v),
                                   "decided": sum(r["_v"] is not None for r in mine if r["variant"] == v)}
                               for v in sorted({r["variant"] for r in mine})}
        if key in ("cutout_informed", "cutout_holes"):
            conf = [r for r in mine if r.get("_confirmed")]
            e["production_confirmed"] = {  # what production let through (cutout_jaw_pool.json's decisions)
                "n": len(conf), "pixel_flat": sum(r["_px"] for r in conf),
                "unflagged": sum(bool(r.get("_unflagged")) for r in conf),
                "unflagged_pixel_flat": sum(r["_px"] for r in conf if r.get("_unflagged")),
                "production_flat_pass": sum(bool(r.get("_prod_flat_pass")) for r in mine),
                "production_flat_pass_pixel_flat": sum(r["_px"] for r in mine if r.get("_prod_flat_pass"))}
        if key == "clips_still":
            e["lowest"] = sorted(({"name": r["name"], "value": round(r["_v"], 3)} for r in mine
                                  if r["_v"] is not None), key=lambda x: x["value"])[:5]
        out[key] = e
    return out


def readme_text(out: dict[str, Any]) -> str:
    rule, rep = out["rule"], out["sets"]
    lines = [
        f"{out['date']}, {out['machine'].get('cpu', 'shared machine')} ({out['machine'].get('nproc', '?')} cores, "
        f"shared, niced); code {out['code']}. Rule chosen on the CALIBRATION half (NUAA subjects 1-4 and every other "
        "session of the other flat_eval sources, as flat_eval splits; stored sessions with an even session number k; "
        "camera_sweep and verify_latency by the session id's CRC32 parity): of "
        f"{len(out['variants'])} variants (statistic x minimum motion x minimum pairs), each at the calibration half's "
        "lowest GENUINE value rounded down to 0.01, the one catching most calibration prints: "
        f"**`{rule['stat']}` / motion over {rule['min_motion']} crop px, >= {rule['min_pairs']} moving pairs, cut "
        f"{rule['cut']}** ({rule['cal_caught']}/{rule['cal_prints']} calibration prints). Cells: sessions called "
        "flat / sessions (undecided never fire), exact 95 % Clopper-Pearson; attack rows = caught, genuine rows = "
        "false alarms. *landmark* = planarity.nose_parallax as shipped (PARALLAX_CUT) recomputed on the same "
        "landmarks; *either* = flat if either says flat; *both* = flat only if both do.",
        "",
        "| set | REAL / SYNTHETIC | n (report) | decided | pixel flat | landmark flat | either | both | pixel only / "
        "landmark only | all sessions: pixel · landmark · either (n) | value min·10%·50%·90%·max |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, e in rep.items():
        r, a = e["report"], e["all"]
        lines.append(
            f"| `{key}` ({'attack' if e['label'] else 'genuine'}) | {e['what']} | {e['n_report']} | "
            f"{_txt(r['decided'])} | {_txt(r['pixel_flat'])} | {_txt(r['landmark_flat'])} | {_txt(r['either'])} | "
            f"{_txt(r['both'])} | {r['pixel_only']} / {r['landmark_only']} | {a['pixel_flat']['k']} · "
            f"{a['landmark_flat']['k']} · {a['either']['k']} ({e['n']}) | {e['values']} |")
    lines += ["", "Post hoc (ALL sessions, both halves; not held out): pixel flat at other cuts "
              + ", ".join(str(c) for c in OTHER_CUTS) + ": " + "; ".join(
                  f"`{k}` " + " / ".join(str(e["at_cuts_all"][str(c)]) for c in OTHER_CUTS) + f" of {e['n']}"
                  for k, e in rep.items()) + "."]
    if out.get("sets_at_engine_cut") and out["engine_cut"] != rule["cut"]:
        lines += ["", f"At the ENGINE's default cut {out['engine_cut']} (pixel_planarity.PIXEL_CUT, chosen after "
                  "seeing all sets: post hoc), ALL sessions, pixel / landmark / either / both flat: " + "; ".join(
                      f"`{k}` {c['pixel_flat']['k']} / {c['landmark_flat']['k']} / {c['either']['k']} / "
                      f"{c['both']['k']} of {c['pixel_flat']['n']}" for k, c in out["sets_at_engine_cut"].items())
                  + "."]
    inf = rep.get("cutout_informed", {}).get("by_variant", {})
    if inf:
        lines += ["", "Informed attacker per variant (all sessions; pixel / landmark / either flat, decided, n): "
                  + "; ".join(f"`{v}` {c['pixel_flat']} / {c['landmark_flat']} / {c['either']}, {c['decided']}, "
                              f"{c['n']}" for v, c in inf.items()) + "."]
    for key in ("cutout_holes", "cutout_informed"):
        pc = rep.get(key, {}).get("production_confirmed")
        if pc:
            lines += ["", f"`{key}`: of the {pc['n']} sessions production CONFIRMED (results/cutout_jaw_pool.json, "
                      f"the pooled final decisions) the pixel test calls {pc['pixel_flat']} flat; of the "
                      f"{pc['unflagged']} confirmed with no jaw spot check, {pc['unflagged_pixel_flat']}; of the "
                      f"{pc['production_flat_pass']} that production's flat test (landmarks) let through, "
                      f"{pc['production_flat_pass_pixel_flat']}."]
    still = rep.get("clips_still", {})
    if still:
        lines += ["", f"REAL clip windows with no warp (a person barely moving; 4 and 8 fps): decided "
                  f"{still['all']['decided']['k']}/{still['n']}, called flat {still['all']['pixel_flat']['k']}; lowest "
                  f"decided values: {still.get('lowest')}."]
    cost = {k: e["px_ms"] for k, e in rep.items() if e.get("px_ms")}
    dec = {k: e["px_ms_with_decode"] for k, e in rep.items() if e.get("px_ms_with_decode")}
    lines += ["", "Cost, thread CPU ms per session p50 / p95 / max (pair choice, up to "
              f"{pp.MAX_PAIRS} pairs tracked twice; the machine was loaded: load average ~10 on 2 cores): "
              + "; ".join(f"`{k}` {v}" for k, v in cost.items()) + ". Stored sessions with the sealed frames' "
              "decrypt + JPEG decode + resize: " + "; ".join(f"`{k}` {v}" for k, v in dec.items()) + "."]
    lines += ["", "Variants ranked on the calibration half (top 8): " + "; ".join(
        f"{v['stat']}/m{v['min_motion']}/p{v['min_pairs']} cut {v['cut']}: {v['cal_caught']}"
        for v in out["variants"][:8]) + "."]
    return "\n".join(lines)


def load_raw(raw_dir: Path) -> list[dict[str, Any]]:
    k_of: dict[str, int] = {}
    for f in CUTOUT_RUNS:
        for r in json.loads((RESULTS / f).read_text())["rows"]:
            k_of[str(r["session_id"])] = int(r["k"])
    pool = {str(r["session_id"]): r for r in json.loads((RESULTS / "cutout_jaw_pool.json").read_text())["rows"]}
    rows = []
    for g in ("flat", "stored", "sweep", "latency", "oneframe", "noisy"):
        p = raw_dir / f"{g}.jsonl"
        if not p.exists():
            continue
        for line in p.read_text().splitlines():
            r = json.loads(line)
            r["_split"] = _split(r, k_of)
            r["_label"] = next((lab for _k, lab, _w, f in SETS if f(r)), None)
            r["_set"] = next((k for k, _lab, _w, f in SETS if f(r)), None)
            if g == "stored" and (pr := pool.get(r["name"].split("/", 1)[1])) is not None:
                r["_confirmed"], r["_unflagged"] = bool(pr["confirmed"]), bool(pr.get("confirmed_unflagged"))
                r["_prod_flat_pass"] = bool(pr["flat_pass"])
            if r["_label"] is not None:
                rows.append(r)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--faces", type=Path, default=Path(os.environ.get("LIFECERT_SHARED_FACES",
                                                                      ROOT.parent / "shared" / "faces")))
    ap.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "lifecert-flat-eval")
    ap.add_argument("--choose", action="store_true")
    ap.add_argument("--report", action="store_true", help="choose the rule, write results/pixflat.json + README")
    ap.add_argument("--no-readme", action="store_true")
    ap.add_argument("--relandmark", action="store_true", help="the landmark test's verdicts in the raw rows again")
    ap.add_argument("--raw-dir", type=Path, default=Path(tempfile.gettempdir()) / "pixflat" / "raw")
    ap.add_argument("--measure", choices=("flat", "stored", "sweep", "latency", "oneframe", "noisy"), default=None,
                    help="measure one group of sessions into --raw-dir/<group>.jsonl (resumes)")
    a = ap.parse_args(argv)
    if a.measure:
        a.raw_dir.mkdir(parents=True, exist_ok=True)
        out = a.raw_dir / f"{a.measure}.jsonl"
        done = {json.loads(x)["name"] for x in out.read_text().splitlines()} if out.exists() else set()
        with open(out, "a", encoding="utf-8") as fh:
            if a.measure in ("flat", "oneframe", "noisy"):
                if a.measure == "flat":
                    todo = flat_sessions(a.faces, a.cache_dir, only=lambda n: n not in done)
                else:
                    from lifecert.config import Settings
                    from lifecert.engine.loader import load_engine

                    make = one_frame_sessions if a.measure == "oneframe" else noisy_sessions
                    todo = make(a.faces, a.cache_dir, load_engine(Settings(), name="dlib"))
                for s in todo:
                    if s["name"] in done:
                        continue
                    r = {k: s[k] for k in ("name", "label", "source", "set", "split")} | measure(
                        s["lm"], from_list(s["frames"])) | landmark_verdict(s["lm"], s["t"])
                    fh.write(json.dumps(r) + "\n")
                    fh.flush()
            else:
                runs = (cutout_runs() if a.measure == "stored" else sweep_runs() if a.measure == "sweep"
                        else sweep_runs("lifecert-bench-latency-*/data", "verify_latency"))
                runs = [(n, d, [x for x in ss if f"{n}/{x[0]}" not in done]) for n, d, ss in runs]
                for r in stored_rows(runs):
                    fh.write(json.dumps(r) + "\n")
                    fh.flush()
        return 0
    if a.relandmark:
        relandmark(a.raw_dir, a.faces, a.cache_dir)
        return 0
    if a.report:
        from benchmarks._common import machine, now, publish

        rows = load_raw(a.raw_dir)
        ranked = choose(rows)
        best = ranked[0]
        eng = report(rows, best | {"cut": pp.PIXEL_CUT})  # the engine's default cut (post hoc, see its docstring)
        eng_cells = {k: {n: e["all"][n] for n in ("pixel_flat", "landmark_flat", "either", "both")} | {
            "report": {n: e["report"][n] for n in ("pixel_flat", "either")}} for k, e in eng.items()}
        rep = report(rows, best)
        import subprocess

        code = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True).stdout.strip()
        out = {"date": now(), "machine": machine(), "code": code, "rule": best, "variants": ranked, "sets": rep,
               "engine_cut": pp.PIXEL_CUT, "sets_at_engine_cut": eng_cells,
               "engine": {"STAT": pp.STAT, "MIN_MOTION_PX": pp.MIN_MOTION_PX, "MIN_PAIRS": pp.MIN_PAIRS,
                          "PIXEL_CUT": pp.PIXEL_CUT},
               "rows": [{k: r.get(k) for k in ("name", "variant", "px_pairs", "px_ms", "lm_flat", "lm_value")}
                        | {"value": None if r.get("_v") is None else round(r["_v"], 4), "pixel_flat": r.get("_px"),
                           "split": r["_split"], "set_key": r["_set"]} for r in rows]}
        publish("pixflat", "pixflat", out, readme_text(out), readme=not a.no_readme)
        return 0
    if a.choose:
        rows = load_raw(a.raw_dir)
        ranked = choose(rows)
        for v in ranked[:15]:
            print(v)
        best = ranked[0]
        rep = report(rows, best)
        for k, e in rep.items():
            print(k, e["n"], "report:", {n: (_txt(c) if isinstance(c, dict) else c) for n, c in e["report"].items()})
            print("   all:", {n: (_txt(c) if isinstance(c, dict) else c) for n, c in e["all"].items()}, e["values"])
        return 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
