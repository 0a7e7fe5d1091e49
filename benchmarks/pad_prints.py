"""Prints and stills at a larger n: issue 12's APCER <= 1 % floor is demonstrated by 0 confirmed in n >= 368
sessions of a type (exact two-sided 95 % Clopper-Pearson upper bound 0.997 %; the one-sided 95 % bound reaches
1.0 % at 0/299); pad_eval's main table has 100 of each (0/100: upper bound 3.6 %).

    nice -n 10 python benchmarks/pad_eval.py --per-type 1798 --kinds print,still --workers 2 --budget-min 80 \\
        --sessions-out /tmp/pad_prints_sessions.json       # scores print/n and still/n; cached sessions are reused
    python benchmarks/pad_prints.py --sessions /tmp/pad_prints_sessions.json   # this summary (no scoring)

The sessions are pad_eval's own (benchmarks/pad_eval.py, ``plan``): print/n and still/n keep their key, half
(n even: A), photo (pad_eval.photo_pool, the same permutation for any ``--per-type``: print n takes entry 2n,
still n entry 2n + 1, so no photo is shown twice while 2n + 1 < the pool's size) and every draw (a generator
seeded by the seed, the kind and n), so session k is the same session whatever ``--per-type`` asked for. A run
stopped by ``--budget-min`` has scored a prefix of the plan (print 0, still 0, print 1, ...): the sessions kept
here are each kind's CONTIGUOUS run from 0 (``contiguous_prefix``), never a choice among scored ones.

Judged as pad_eval judges them (its per-session records, ``pad_eval.session_record``): *active* = production's
decision without PAD (``active_decision`` not CONFIRMED: a missed challenge (RETRY), the flat-photo test
(REVIEW flat_photo: a caseworker looks, nothing is confirmed), still, too few frames); *pad* at the SHIPPED
threshold (models/manifest.toml, the records' ``pad_score`` at its fusion) and at the main run's 2-fold
thresholds (results/pad.json: the value chosen on half A judges half B and vice versa; NOT recalibrated here);
*both* = either rejects. APCER = attacks NOT rejected, exact 95 % Clopper-Pearson intervals (pad_eval's).

Writes results/pad_prints_n.json (summary + the per-session records) and the README section ``pad_prints``.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._common import RESULTS, update_readme_section  # noqa: E402
from benchmarks.pad_eval import FLOOR, cell, clopper_pearson, rate  # noqa: E402

KINDS = ("print", "still")
Record = dict[str, Any]
Judge = Callable[[Record], bool]


def number(rec: Record) -> int:
    """print/17 -> 17."""
    return int(str(rec["key"]).rsplit("/", 1)[1])


def contiguous_prefix(recs: Sequence[Record], kind: str) -> list[Record]:
    """The records of ``kind`` numbered 0, 1, 2, ... up to the first number missing, in number order."""
    by_n = {number(r): r for r in recs if r["kind"] == kind}
    out: list[Record] = []
    while len(out) in by_n:
        out.append(by_n[len(out)])
    return out


def active_reject(rec: Record) -> bool:
    return rec["active_decision"] != "CONFIRMED"


def judges(two_fold: dict[str, Any], shipped_value: float) -> dict[str, Judge]:
    """The six decisions of the README: active; PAD / both at the shipped threshold (the record's ``pad_score``,
    the manifest's fusion, and ``pad_pass``); PAD / both at the 2-fold thresholds (``two_fold``: pad.json's
    ``fusion``, ``threshold_A`` chosen on half A (judges half B), ``threshold_B`` chosen on half B (judges A)).
    A session with no scored frame has no PAD score: PAD calls it an attack (production does)."""
    fz, ta, tb = str(two_fold["fusion"]), float(two_fold["threshold_A"]), float(two_fold["threshold_B"])

    def pad_shipped(r: Record) -> bool:
        v = r["pad_score"]
        rejected = v is None or v < shipped_value
        if rejected == bool(r["pad_pass"]):  # the record's own verdict was taken at the same threshold
            raise ValueError(f"{r['key']}: pad_pass={r['pad_pass']} disagrees with score {v} at {shipped_value}")
        return rejected

    def pad_2fold(r: Record) -> bool:
        v = r["pad_fusions"].get(fz)
        return v is None or (isinstance(v, float) and math.isnan(v)) or v < (tb if r["split"] == "A" else ta)

    return {"active": active_reject,
            "pad_shipped": pad_shipped, "both_shipped": lambda r: active_reject(r) or pad_shipped(r),
            "pad_2fold": pad_2fold, "both_2fold": lambda r: active_reject(r) or pad_2fold(r)}


def reason_group(rec: Record) -> str:
    """The active checks' reason in three groups: a challenge missed, the flat-photo test, anything else."""
    if not active_reject(rec):
        return "passed"
    why = str(rec.get("active_reason"))
    if why.startswith("missed "):
        return "challenge missed"
    return "flat photo" if why == "flat_photo" else f"other: {why}"


def breakdown(recs: Sequence[Record], pad: Judge) -> dict[str, Any]:
    """Which defence stopped each session: by the active checks' reason, and active x PAD (``pad``)."""
    return {"active_reason": dict(Counter(str(r.get("active_reason")) for r in recs if active_reject(r))),
            "active_group": dict(Counter(reason_group(r) for r in recs)),
            "active_and_pad": sum(1 for r in recs if active_reject(r) and pad(r)),
            "active_only": sum(1 for r in recs if active_reject(r) and not pad(r)),
            "pad_only": sum(1 for r in recs if not active_reject(r) and pad(r)),
            "neither": sum(1 for r in recs if not active_reject(r) and not pad(r)),
            "pad_only_by_group": dict(Counter(reason_group(r) for r in recs if not active_reject(r) and pad(r)))}


def person_of(path: str) -> str:
    """The person a pool photo shows, as the pool's folders name it (LFW name, photos/ identity, NUAA subject)."""
    p = Path(path)
    return f"{p.parts[-4] if p.parts[-3] in ('real', 'images') else p.parts[-3]}/{p.parent.name}"


def pool_use(recs: Sequence[Record]) -> dict[str, Any]:
    """How many distinct photos and people the sessions showed (each session one photo, ``source``)."""
    photos = [str(r["source"]) for r in recs]
    people = Counter(person_of(p) for p in photos)
    return {"sessions": len(photos), "distinct_photos": len(set(photos)), "distinct_people": len(people),
            "people_shown_more_than_once": {k: v for k, v in sorted(people.items()) if v > 1},
            "by_source": dict(Counter(person_of(p).split("/")[0] for p in photos))}


def summarize(recs: Sequence[Record], two_fold: dict[str, Any], shipped_value: float,
              main_sessions: Sequence[Record] = ()) -> dict[str, Any]:
    """Per kind: the contiguous sessions from 0, each decision's APCER with its interval, the breakdowns, the
    photo pool's use; ``main_sessions`` (pad.json's derived rows): the same keys in the main table, compared."""
    js = judges(two_fold, shipped_value)
    out: dict[str, Any] = {"kinds": {}, "two_fold": two_fold, "shipped": shipped_value}
    main = {str(r["name"]): r for r in main_sessions}
    kept_all: list[Record] = []
    for kind in KINDS:
        kept = contiguous_prefix(recs, kind)
        kept_all += kept
        scored = sum(1 for r in recs if r["kind"] == kind)
        k: dict[str, Any] = {"n": len(kept), "scored": scored, "numbers": [0, len(kept) - 1] if kept else None,
                             "rates": {name: rate(kept, j, True) for name, j in js.items()},
                             "breakdown_shipped": breakdown(kept, js["pad_shipped"]),
                             "breakdown_2fold": breakdown(kept, js["pad_2fold"]),
                             "pool": pool_use(kept)}
        k["rates_by_half"] = {h: {name: rate([r for r in kept if r["split"] == h], j, True)
                                  for name, j in js.items()} for h in ("A", "B")}
        twins = [(r, main[r["key"]]) for r in kept if r["key"] in main]
        if twins:
            k["main_table_same_keys"] = {
                "n": len(twins),
                "same_photo": sum(1 for r, o in twins if Path(r["source"]).name == Path(str(o["source"])).name),
                "pad_median_identical": sum(1 for r, o in twins if r["pad_fusions"]["median"] is not None and abs(
                    float(r["pad_fusions"]["median"]) - float(o["pad"]["median"])) < 1e-5),
                "decision_identical": sum(1 for r, o in twins if r["active_decision"] == o.get("decision")),
                "reason_identical": sum(1 for r, o in twins if r["active_reason"] == o.get("reject_reason")),
                "differ": [{"key": r["key"], "now": [r["active_decision"], r["active_reason"]],
                            "main_table": [o.get("decision"), o.get("reject_reason")]}
                           for r, o in twins if r["active_reason"] != o.get("reject_reason")]}
        out["kinds"][kind] = k
    shown = {kind: {r["source"] for r in kept_all if r["kind"] == kind} for kind in KINDS}
    out["photos_shared_by_print_and_still"] = len(shown["print"] & shown["still"])
    return out


def mark(x: dict[str, Any], floor: float) -> str:
    """✓ only when the 95 % UPPER bound is under the floor (demonstrated); else the point estimate's ~ / ✗."""
    if x["rate"] is None:
        return ""
    if clopper_pearson(x["errors"], x["n"])[1] <= floor:  # unrounded (rate() rounds: 0/367 reads 0.0100)
        return " ✓"
    return " ~" if x["rate"] <= floor else " ✗"


def readme(res: dict[str, Any], meta: dict[str, Any]) -> str:
    ks = res["kinds"]
    rows = (("active", "active (no PAD)"), ("pad_shipped", "pad, shipped 0.7325"), ("both_shipped",
            "**both, shipped 0.7325 (production)**"), ("pad_2fold", "pad, 2-fold"), ("both_2fold", "both, 2-fold"))
    tf = res["two_fold"]
    lines = [
        f"### Prints and stills at n = {ks['print']['n']} / {ks['still']['n']} (`pad_eval.py --kinds print,still`, "
        "`pad_prints.py`)",
        "",
        f"Machine: {meta['machine']}, {meta['date']}; commit {meta['commit']}; {meta['wall']}. Seed "
        f"{meta['seed']}, pad_eval's plan, keys, halves and draws (the table above's sessions 0-99 are the first "
        f"100 here). Only prints and stills were scored. *both, shipped* is production's decision: the active checks "
        f"AND PAD at the manifest's {res['shipped']} ({meta['fusion']} of P(real)); 2-fold: the main run's "
        f"thresholds ({tf['fusion']}: {tf['threshold_A']} chosen on half A judges half B, {tf['threshold_B']} chosen "
        "on half B judges half A; not recalibrated). Brackets: exact 95 % Clopper-Pearson. ✓ here = the 95 % UPPER "
        "bound is at most the 1 % floor (demonstrated); ~ = point estimate under it, bound over; ✗ = over it.",
        "",
        "| decision | APCER print | APCER still |",
        "|---|---|---|",
    ]
    for key, label in rows:
        lines.append(f"| {label} | " + " | ".join(
            cell(ks[k]["rates"][key]) + mark(ks[k]["rates"][key], FLOOR[k]) for k in KINDS) + " |")
    lines.append("")

    def group(b: dict[str, Any]) -> str:
        return ", ".join(f"{k} {v}" for k, v in sorted(b["active_group"].items(), key=lambda kv: -kv[1]))

    def reasons(b: dict[str, Any]) -> str:
        return ", ".join(f"{k} {v}" for k, v in sorted(b["active_reason"].items(), key=lambda kv: -kv[1]))

    lines.append("What stopped them (sessions; *active* by production's reason; PAD at the shipped threshold, 2-fold "
                 "in brackets):")
    lines.append("")
    for k in KINDS:
        b, b2 = ks[k]["breakdown_shipped"], ks[k]["breakdown_2fold"]
        lines.append(
            f"- *{k}* (n = {ks[k]['n']}): active checks {group(b)} ({reasons(b)}); active AND PAD "
            f"{b['active_and_pad']} [{b2['active_and_pad']}], active alone (PAD passed it) {b['active_only']} "
            f"[{b2['active_only']}], PAD alone (the active checks passed it) {b['pad_only']} [{b2['pad_only']}], "
            f"neither {b['neither']} [{b2['neither']}].")
    lines.append("")
    pools = "; ".join(
        f"{k}: {ks[k]['pool']['distinct_photos']} distinct photos in {ks[k]['pool']['sessions']} sessions, "
        f"{ks[k]['pool']['distinct_people']} people ("
        + ", ".join(f"{s} {c}" for s, c in ks[k]['pool']['by_source'].items()) + ")" for k in KINDS)
    lines.append(f"Photos: {pools}; photos shown both as a print and as a still: "
                 f"{res['photos_shared_by_print_and_still']}.")
    same = [(k, ks[k].get("main_table_same_keys")) for k in KINDS]
    if all(s for _, s in same):
        lines.append("")
        lines.append("Sessions 0-99 against the table above (results/pad.json, the same keys): " + "; ".join(
            f"{k} {s['n']}: same photo {s['same_photo']}, PAD median identical {s['pad_median_identical']}, "
            f"production's active decision identical {s['decision_identical']}, reason identical "
            f"{s['reason_identical']}" for k, s in same if s) + ".")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=Path, required=True,
                    help="pad_eval's --sessions-out of a --kinds print,still run")
    ap.add_argument("--main", type=Path, default=RESULTS / "pad.json",
                    help="the main run (2-fold thresholds, its derived sessions for the comparison)")
    ap.add_argument("--out", type=Path, default=RESULTS / "pad_prints_n.json")
    ap.add_argument("--commit", default="", help="the commit the sessions were scored at (default: HEAD)")
    ap.add_argument("--no-readme", action="store_true")
    a = ap.parse_args(argv)
    src = json.loads(a.sessions.read_text())
    main_run = json.loads(a.main.read_text())
    recs = [r for r in src["sessions"] if r["kind"] in KINDS]
    if not recs:
        ap.error(f"{a.sessions}: no print or still session")
    two_fold = {"fusion": main_run["fusion"], "threshold_A": main_run["threshold_A"],
                "threshold_B": main_run["threshold_B"]}
    res = summarize(recs, two_fold, float(src["meta"]["threshold"]), main_run["sessions"])
    m = src["meta"]
    commit = a.commit or subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                                        capture_output=True, text=True, check=True).stdout.strip()
    meta = {"machine": f"{m['machine']['nproc']} × {m['machine']['cpu']} (shared; load "
                       f"{m['load_avg'][0]} at the end)", "date": m["date"], "commit": commit, "seed": m["seed"],
            "fusion": m["fusion"], "wall": f"{m['elapsed_s']:.0f} s wall, {m['cpu_s_sessions']:.0f} s CPU over "
                                          f"{m['scored_sessions']} sessions, {m['workers']} niced workers",
            "dataset": m["dataset"], "per_type_planned": m["per_type"], "run": m}
    kept = {r["key"] for k in KINDS for r in contiguous_prefix(recs, k)}
    a.out.write_text(json.dumps(meta | res | {"sessions": [r for r in recs if r["key"] in kept]}, indent=0,
                                ensure_ascii=False) + "\n")
    text = readme(res, meta)
    if not a.no_readme:
        update_readme_section("pad_prints", text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
