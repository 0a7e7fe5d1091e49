"""Flat-photo verdicts and genuine rejects recomputed from pad_eval's per-session cache (no re-scoring).

    python benchmarks/flat_cache.py /tmp/lifecert-pad-eval/v4-ca84e9ad-s12      # seconds; the cache is only read

For every cached full-frame session (``tight/`` crops are skipped) the script runs pad_eval's
``production_decision`` (production's active decision: settle, each challenge from its prompt, then
``steps.passive_liveness`` over the frames up to the end of capture) and then, on exactly the frames
that decision judged, the two flat-picture tests of ``steps.PassiveLiveness.flat_photo``:

* ``homography`` — lifecert.engine.liveness.flat_check (residual of one planar homography of the rigid
  landmarks across the pairs with the largest pose change, cut 0.012 face widths);
* ``parallax`` — lifecert.engine.planarity.nose_parallax as shipped (the nose's parallax against the
  outline's homography over the motion; abstains when all moving pairs share one frame), and
  ``parallax_before`` — the same without that abstain rule (the rule until 2026-11-30).

Rates are "sessions the verdict calls flat / sessions of that kind" (undecided sessions never fire),
per kind of session. What is real and what is synthetic (see pad_eval's docstring): the genuine
``crops`` (NUAA live subjects, apfol live) and ``print_nuaa`` are REAL captures placed as tight crops in
synthetic full frames (attacks.place_crop); ``tiny`` is a real 96×128 clip; ``video_acted``/``slow``/
``late`` are the two real clips with synthetic head turns (warps); ``print``/``still``/``replay``/
``cued_replay`` are synthetic attacks built from ../shared/faces; ``replay_apfol`` real screen-replay crops.

Also lists every genuine session the active decision rejects, with the numbers behind it, and for a
missed turn: the peak yaw change against the threshold, the frames of its window without a face or
with its landmarks past the frame's edge, and whether capture ended before the window did.
Writes benchmarks/results/flat_cache.json and the ``flat_cache`` section of benchmarks/README.md.

Session 13: nose_parallax now fits the outline by RANSAC (cut 0.83); the section and JSON on main are of the
least-squares rule before. pad_eval's cache they were computed from is gone, so they were not re-run; the script
runs unchanged on any pad_eval cache (``parallax_before`` is then the one-odd-frame comparison with today's fit).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import pad_eval as pe  # noqa: E402
from benchmarks._common import machine, now, publish  # noqa: E402
from lifecert.config import Settings  # noqa: E402
from lifecert.engine.image import read_image_file  # noqa: E402
from lifecert.engine.liveness import FrameObs, LivenessParams  # noqa: E402
from lifecert.engine.loader import load_engine  # noqa: E402
from lifecert.engine.planarity import nose_parallax  # noqa: E402
from lifecert.services.verification import steps  # noqa: E402

GENUINE_SOURCES = ("video_acted", "slow", "late", "crops", "tiny")
# median motion of the parallax test's moving pairs, face widths
MOTION_BINS = ((0.01, 0.015), (0.015, 0.02), (0.02, 0.03), (0.03, 1.0))
ATTACK_KINDS = ("print", "print_nuaa", "still", "replay", "replay_apfol", "cued_replay")


def group_of(row: dict[str, Any]) -> str:
    return f"genuine/{row['source']}" if row["kind"] == "bona_fide" else str(row["kind"])


def judged_frames(row: dict[str, Any], decision: dict[str, Any]) -> list[FrameObs]:
    """The frames production_decision handed to steps.passive_liveness: all of them, or up to the end of
    the window of the first challenge not seen (capture stops there)."""
    fobs = [o.frame_obs(0) for o in pe.obs_of(row)]
    end = fobs[-1].t_ms if fobs else 0
    if decision["missed"]:
        prompts = pe.prompts_of(row)
        k = len(decision["challenge_results"]) - 1
        stop = prompts[k] + steps.CHALLENGE_WINDOW_MS
        if k + 1 < len(prompts):
            stop = min(stop, prompts[k + 1])
        end = min(end, stop)
    return [f for f in fobs if f.t_ms <= end]


def verdicts(frames: Sequence[FrameObs], params: LivenessParams) -> dict[str, Any]:
    live = steps.passive_liveness(frames, params)
    usable = [f for f in frames if f.landmarks is not None and f.num_faces == 1]
    before = nose_parallax(usable, one_frame_abstains=False)
    return {
        "homography": {"decided": live.flat.decided, "flat": live.flat.decided and live.flat.flat,
                       "residual": live.flat.residual},
        "parallax": {"decided": live.planar.decided, "flat": live.planar.decided and live.planar.flat,
                     "value": live.planar.parallax, "pairs": live.planar.pairs, "motion": live.planar.motion},
        "parallax_before": {"decided": before.decided, "flat": before.decided and before.flat,
                            "value": before.parallax, "pairs": before.pairs},
        "flat_photo": live.flat_photo,
    }


RULES: dict[str, Callable[[dict[str, Any]], bool]] = {
    "shipped before (homography OR parallax_before)": lambda v: v["homography"]["flat"] or v["parallax_before"]["flat"],
    "shipped now (homography OR parallax)": lambda v: v["flat_photo"],
    "parallax alone (no homography test)": lambda v: v["parallax"]["flat"],
    "homography alone": lambda v: v["homography"]["flat"],
}


def turn_facts(row: dict[str, Any], decision: dict[str, Any]) -> dict[str, Any] | None:
    """For a session that missed a turn: what its window held."""
    if not decision["missed"] or not decision["missed"][0].startswith("turn"):
        return None
    k = len(decision["challenge_results"]) - 1
    prompts = pe.prompts_of(row)
    start = prompts[k]
    # the window production_decision judged (8 s, or 11 s after an action hint: pad_eval.first_action_hint)
    window = int(decision["challenge_results"][k].get("window_ms", steps.CHALLENGE_WINDOW_MS))
    stop = start + window if k + 1 >= len(prompts) else min(start + window, prompts[k + 1])
    width, height = row.get("size") or pe.atk.CAMERA
    win = [f for f in row["frames"] if start <= f["t"] < stop]
    no_face = sum(1 for f in win if f["lm"] is None)
    past_edge = sum(1 for f in win if f["lm"] is not None and any(
        x < 0 or x >= width or y < 0 or y >= height for x, y in f["lm"]))
    widths = [(f["box"][2] - f["box"][0]) / width for f in win if f["box"] is not None]
    res = decision["challenge_results"][-1]
    return {"challenge": decision["missed"][0], "peak_yaw_change": res["peak_value"], "threshold": res["threshold"],
            "early_action_ignored": res["early_action_ignored"], "window_frames": len(win),
            "no_face_frames": no_face, "landmarks_past_edge_frames": past_edge,
            "box_width_of_frame": [round(min(widths), 2), round(max(widths), 2)] if widths else None,
            "capture_ended_ms_after_prompt": (win[-1]["t"] - start) if win else None,
            "window_ms": stop - start, "synth": (row.get("synth") or {}).get(decision["missed"][0])}


VERSIONED = re.compile(r"^(?P<stem>.+)-(?P<version>[a-z]\d+)$")


def session_files(cache: Path) -> tuple[list[Path], dict[str, int]]:
    """One file per session: pad_eval keeps re-synthesised kinds (pad_eval.KIND_VERSION, e.g. genuine g3)
    under ``<key>-<version>.json`` beside older versions and the unversioned ``<key>.json``; the file of the
    CURRENT version wins, else the newest older version, else the unversioned one (a cache scored before any
    version). Also how many files came from each."""
    current = set(pe.KIND_VERSION.values())
    found: dict[str, dict[str, Path]] = defaultdict(dict)
    for p in sorted(cache.glob("*.json")):
        if p.name.startswith("_"):
            continue
        m = VERSIONED.match(p.stem)
        found[m["stem"] if m else p.stem][m["version"] if m else "unversioned"] = p

    def rank(version: str) -> tuple[int, int]:
        if version in current:
            return (2, 0)
        return (0, 0) if version == "unversioned" else (1, int(version[1:]))

    chosen = {stem: max(files.items(), key=lambda kv: rank(kv[0])) for stem, files in found.items()}
    used: dict[str, int] = defaultdict(int)
    for version, _p in chosen.values():
        used[version] += 1
    return sorted(p for _v, p in chosen.values()), dict(used)


def run(cache: Path) -> dict[str, Any]:
    params = LivenessParams()
    st = Settings()
    files, versions = session_files(cache)
    per_group: dict[str, list[dict[str, Any]]] = defaultdict(list)
    rejects: list[dict[str, Any]] = []
    mismatched = 0
    for p in files:
        for row in json.loads(p.read_text()):
            if row["name"].startswith("tight/"):
                continue
            d = pe.production_decision(row, params, st.quality, st.verification.min_frames)
            v = verdicts(judged_frames(row, d), params)
            # the frames re-cut here must be the ones the decision judged: same verdict as it computed
            same = (v["parallax"]["decided"] == d["planar"]["decided"]
                    and v["parallax"]["value"] == d["planar"]["parallax"]
                    and v["homography"]["residual"] == d["flat_residual"])
            mismatched += not same
            g = group_of(row)
            per_group[g].append({"name": row["name"], **v})
            if row["kind"] == "bona_fide" and d["active_reject"]:
                rejects.append({"name": row["name"], "reason": pe.reject_reason(d),
                                "homography_residual": v["homography"]["residual"],
                                "parallax": v["parallax"]["value"], "parallax_pairs": v["parallax"]["pairs"],
                                "parallax_before": v["parallax_before"]["value"],
                                "flat_photo_now": v["flat_photo"], "turn": turn_facts(row, d)})
    groups = [f"genuine/{s}" for s in GENUINE_SOURCES] + list(ATTACK_KINDS)
    table: dict[str, dict[str, Any]] = {}
    for rule, fires in RULES.items():
        table[rule] = {}
        for g in groups:
            rows = per_group.get(g, [])
            k = sum(1 for r in rows if fires(r))
            table[rule][g] = {"fired": k, "n": len(rows),
                              "ci95": [round(x, 4) for x in pe.clopper_pearson(k, len(rows))]}
        # pad_eval's BPCER floor set leaves the 96x128 clip out (reported, not in the floor)
        gen = [r for g in groups if g.startswith("genuine/") and g != "genuine/tiny" for r in per_group.get(g, [])]
        k = sum(1 for r in gen if fires(r))
        table[rule]["genuine floor set"] = {"fired": k, "n": len(gen),
                                            "ci95": [round(x, 4) for x in pe.clopper_pearson(k, len(gen))]}
    by_motion: dict[str, dict[str, dict[str, int]]] = {}
    floor_set = tuple(g for g in groups if g.startswith("genuine/") and g != "genuine/tiny")
    for label, kinds in (("print_nuaa", ("print_nuaa",)), ("print (synthetic)", ("print",)),
                         ("genuine floor set", floor_set)):
        rows = [r for g in kinds for r in per_group.get(g, [])]
        bins = {}
        for lo, hi in MOTION_BINS:
            inside = [r for r in rows if r["parallax"]["decided"] and lo <= r["parallax"]["motion"] < hi]
            bins[f"{lo}-{hi}"] = {"fired": sum(1 for r in inside if r["parallax"]["flat"]), "n": len(inside)}
        bins["undecided"] = {"fired": 0, "n": sum(1 for r in rows if not r["parallax"]["decided"])}
        by_motion[label] = bins
    lost = [r["name"] for r in per_group.get("print_nuaa", [])
            if r["parallax_before"]["flat"] and not r["parallax"]["flat"]]
    spared = [r["name"] for g in groups if g.startswith("genuine/") for r in per_group.get(g, [])
              if r["parallax_before"]["flat"] and not r["parallax"]["flat"]]
    return {"when": now(), "machine": machine(), "cache": str(cache), "files_by_version": versions,
            "sessions": sum(len(v) for v in per_group.values()),
            "recut_mismatches": mismatched, "rates": table, "genuine_rejects": rejects,
            "parallax_by_motion": by_motion, "abstain_rule": {"genuine_spared": spared, "nuaa_prints_lost": lost}}


def _cell(e: dict[str, Any]) -> str:
    return f"{e['fired']}/{e['n']}"


def text_of(rep: dict[str, Any]) -> str:
    cols = ["genuine floor set"] + [f"genuine/{s}" for s in GENUINE_SOURCES] + list(ATTACK_KINDS)
    lines = [
        "## Flat-photo verdicts on pad_eval's cached sessions (`benchmarks/flat_cache.py`)",
        "",
        f"{rep['when']}; recomputed (about a minute and a half on one core) from pad_eval's per-session cache "
        f"`{rep['cache']}` "
        f"({rep['sessions']} full-frame sessions; files by synthesis version {rep['files_by_version']}; "
        "no frame re-scored). Each cell: sessions the verdict calls "
        "flat / sessions of that kind, on exactly the frames production's active decision judged "
        "(`pad_eval.production_decision`); undecided sessions never fire. REAL captures: genuine *crops* "
        "(NUAA live, apfol live; tight crops placed in synthetic full frames), *tiny* (a real 96×128 clip), "
        "*print_nuaa*, *replay_apfol*; *video_acted/slow/late* are the two real clips with synthetic head "
        "turns; *print/still/replay/cued_replay* are synthetic attacks. The decision rejects a genuine user "
        "when EITHER test fires (`PassiveLiveness.flat_photo`).",
        "",
        "| rule | " + " | ".join(c.replace("genuine/", "gen. ") for c in cols) + " |",
        "|---" * (len(cols) + 1) + "|",
    ]
    for rule, row in rep["rates"].items():
        lines.append(f"| {rule} | " + " | ".join(_cell(row[c]) for c in cols) + " |")
    ab = rep["abstain_rule"]
    lines += [
        "",
        "The parallax test now abstains when every moving frame pair shares one frame (the only motion is "
        f"one odd frame): genuine sessions it no longer calls flat: {', '.join(ab['genuine_spared']) or 'none'}; "
        f"REAL NUAA prints it no longer catches: {', '.join(ab['nuaa_prints_lost']) or 'none'}.",
    ]
    bm = rep["parallax_by_motion"]
    heads = list(next(iter(bm.values())).keys())
    lines += ["", "The parallax test's verdict by how much the session moved (median motion of its moving pairs, face "
              "widths). Cells: called flat / decided sessions in that band; the catch rate on REAL prints rises "
              "only a little with motion, so more motion alone (a turn challenge) would not make it fire on all "
              "of them:", "", "| sessions | " + " | ".join(heads) + " |", "|---" * (len(heads) + 1) + "|"]
    lines += [f"| {k} | " + " | ".join(f"{v[h]['fired']}/{v[h]['n']}" if h != "undecided" else str(v[h]["n"])
                                     for h in heads) + " |" for k, v in bm.items()]
    lines += cross_check_lines(rep)
    lines += [
        "",
        f"Genuine sessions the active decision rejects with this change ("
        f"{sum(1 for r in rep['genuine_rejects'] if not r['name'].startswith('tiny/'))}/"
        f"{rep['rates']['shipped now (homography OR parallax)']['genuine floor set']['n']} of pad_eval's floor set, "
        "plus the tiny clip when listed):",
        "",
        "| session | reason | homography residual (cut 0.012) | parallax (cut 0.71) · pairs | missed turn: peak yaw "
        "change / 0.22, frames without face · with landmarks past the edge / window, capture ended (ms after prompt) |",
        "|---|---|---|---|---|",
    ]
    for r in rep["genuine_rejects"]:
        t = r["turn"]
        tt = "" if t is None else (f"{t['peak_yaw_change']} / {t['threshold']}, {t['no_face_frames']} · "
                                   f"{t['landmarks_past_edge_frames']} / {t['window_frames']}, "
                                   f"box {t['box_width_of_frame']} "
                                   f"of the width, ended {t['capture_ended_ms_after_prompt']} of {t['window_ms']}"
                                   + (", early motion ignored" if t["early_action_ignored"] else ""))
        hr = "—" if r["homography_residual"] is None else f"{r['homography_residual']:.4f}"
        px = "—" if r["parallax"] is None else f"{r['parallax']:.3f} · {r['parallax_pairs']}"
        lines.append(f"| {r['name']} | {r['reason']} | {hr} | {px} | {tt} |")
    if rep["recut_mismatches"]:
        lines += ["", f"WARNING: {rep['recut_mismatches']} sessions' re-cut frames differ from the decision's."]
    lines += ["", f"Rerun: `python benchmarks/flat_cache.py {rep['cache']}`."]
    return "\n".join(lines)


def flat_eval_check(cache: Path) -> dict[str, Any] | None:
    """The abstain rule on benchmarks/flat_eval.py's landmark cache: REAL 25-frame sessions (NUAA prints vs
    NUAA/apfol live and the two real clips), not placed in synthetic frames. None without that cache."""
    files = sorted(cache.glob("*.json")) if cache.is_dir() else []
    if not files:
        return None
    count: dict[str, int] = defaultdict(int)
    changed = []
    for f in files:
        for sess in json.loads(f.read_text()):
            obs = [FrameObs(t, None if lm is None else np.asarray(lm, np.float32))
                   for t, lm in zip(sess["t"], sess["lm"], strict=True)]
            now_, before = nose_parallax(obs), nose_parallax(obs, one_frame_abstains=False)
            lab = "print" if "attack_print" in sess["name"] else "genuine"
            count[f"{lab}_n"] += 1
            count[f"{lab}_fired_before"] += before.decided and before.flat
            count[f"{lab}_fired_now"] += now_.decided and now_.flat
            if now_.decided != before.decided:
                changed.append({"name": sess["name"], "before": before.parallax, "fired_before": before.flat})
    return {"cache": str(cache), **count, "now_undecided": changed}


def raw_frames_check(faces: Path, names: Sequence[str]) -> list[dict[str, Any]]:
    """The spared NUAA live crops on their RAW frames (the same frames pad_eval took, without
    attacks.place_crop's placement), through the production engine's landmarks."""
    todo = [n for n in names if n.startswith("nuaa/real/")]
    if not todo:
        return []
    engine = load_engine(Settings())
    out = []
    for name in todo:
        group = name.rsplit("/", 1)[1]
        hits = [fs for g, _s, fs in pe.nuaa_sessions(faces / "spoof" / "nuaa", "real", 8) if g == group]
        if not hits:
            continue
        obs = []
        for i, f in enumerate(hits[0]):
            found = engine.detect(read_image_file(f))
            obs.append(FrameObs(i * 250, found[0].landmarks68 if found else None))
        c = nose_parallax(obs)
        out.append({"name": name, "decided": c.decided, "flat": c.flat, "parallax": c.parallax, "pairs": c.pairs,
                    "motion": c.motion})
    return out


def cross_check_lines(rep: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    fe = rep.get("flat_eval_check")
    if fe:
        undecided = ", ".join(
            f"{c['name']} ({c['before']:.2f}, {'had fired' if c['fired_before'] else 'had not fired'})"
            for c in fe["now_undecided"]) or "none"
        lines += ["", f"Cross-check on benchmarks/flat_eval.py's REAL 25-frame sessions (`{fe['cache']}`, not placed "
                  f"in synthetic frames): prints fired {fe.get('print_fired_before', 0)}/{fe.get('print_n', 0)} "
                  "before, "
                  f"{fe.get('print_fired_now', 0)}/{fe.get('print_n', 0)} now; genuine "
                  f"{fe.get('genuine_fired_before', 0)}/{fe.get('genuine_n', 0)} before, "
                  f"{fe.get('genuine_fired_now', 0)}/{fe.get('genuine_n', 0)} now; sessions the rule makes undecided: "
                  f"{undecided}."]
    for r in rep.get("raw_frames_check") or []:
        if r["decided"] and r["flat"]:
            lines += ["", f"Caveat: {r['name']} on its RAW frames (the same 8 frames, not placed in a synthetic frame) "
                      f"is still called flat by the parallax test: {r['parallax']:.3f} over {r['pairs']} moving pairs, "
                      f"median motion {r['motion']:.4f} face widths (MIN_MOTION 0.01). The subject sits almost still, "
                      "its motion is near landmark noise; the rule spares it only where one odd frame is all the "
                      "motion."]
        else:
            lines += ["", f"Raw-frame check: {r['name']} on its RAW frames: "
                      f"{'decided' if r['decided'] else 'undecided'}, {'flat' if r['flat'] else 'not flat'}."]
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("cache", type=Path, help="pad_eval's per-session cache directory (read only)")
    ap.add_argument("--no-readme", action="store_true", help="write the JSON and stdout only")
    ap.add_argument("--flat-eval-cache", type=Path, default=Path(tempfile.gettempdir()) / "lifecert-flat-eval",
                    help="benchmarks/flat_eval.py's landmark cache (read only; skipped when absent)")
    ap.add_argument("--faces", type=Path, default=ROOT.parent / "shared" / "faces",
                    help="../shared/faces, for the raw-frame check of the spared NUAA crops (skipped when absent)")
    a = ap.parse_args(argv)
    if not a.cache.is_dir():
        ap.error(f"no cache directory {a.cache}")
    rep = run(a.cache)
    rep["flat_eval_check"] = flat_eval_check(a.flat_eval_cache)
    spared = rep["abstain_rule"]["genuine_spared"]
    rep["raw_frames_check"] = raw_frames_check(a.faces, spared) if a.faces.is_dir() else []
    publish("flat_cache", "flat_cache", rep, text_of(rep), readme=not a.no_readme)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
