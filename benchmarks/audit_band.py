"""PAD audit band: what a caseworker spot-check of low-margin confirmations costs and what it catches.

    python benchmarks/audit_band.py                     # tables from the per-session results, no scoring
    python benchmarks/audit_band.py --write-manifest    # also audit_below (q = --ship-q) into models/manifest.toml

A CONFIRMED session whose fused PAD score lies in the grey band [PAD threshold, ``audit_below``) opens an audit
case (the confirmation stands; a caseworker looks at the frames), and every other confirmed session is audited
with probability ``--sample-rate`` (the random sample, default 2 %). This script evaluates that band on sessions
that were already scored, without rescoring:

* GENUINE: benchmarks/pad_eval.py's genuine BPCER set (video_acted, slow, late, crops: the floor set), per-session
  results in benchmarks/results/pad_sessions.json (rebuilt with ``nice -n 10 python benchmarks/pad_eval.py
  --per-type 100 --genuine-per-variant 34 --kinds video_acted,slow,late,crops``);
* ATTACKS and a second genuine set: benchmarks/replay_sweep.py's rows ``cued_closer_default`` (a cued replay held
  so close that the phone's edges leave the picture), ``cued_default`` (attacks.py's framing) and
  ``acted_genuine`` (genuine acting, the held-closer rows' framing and production's frame engine), per-session
  records in benchmarks/results/replay_sweep_band.json (rebuilt with ``nice -n 10 python benchmarks/replay_sweep.py
  --variants cued_closer_default,acted_genuine,cued_default --per-variant 30 --no-readme
  --out benchmarks/results/replay_sweep_band.json``).

RULE (fixed before any attack score was looked at): ``audit_below`` = the q-quantile (linear interpolation between
order statistics, numpy's default) of the fused PAD scores of the genuine sessions production CONFIRMS (active
checks confirm AND PAD passes at the manifest's threshold) in HALF A of pad_eval's genuine set (its split by session
key), rounded to 4 decimals, for q in 0.05 / 0.10 / 0.15 / 0.20. Reported for each q:

* genuine audit load = share of genuine confirmations audited = in band + (1 - in band) x sample rate, on half A
  (where the value was chosen), half B (held out: the number to quote) and ``acted_genuine`` (another pipeline);
* per attack row: APCER (confirmed / sessions, as replay_sweep reports it) and "confirmed with no human look"
  (confirmed AND score >= audit_below) / sessions; with the random sample such a session still escapes a look only
  with probability 1 - sample rate, so the expected no-look share is that x (1 - sample rate) (analytic).

Intervals: Wilson 95 % on the counts; the analytic sample factor maps the bounds (it is monotone). The sessions of a
row share two source clips: the intervals are those of the presentations, not of a population of people.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._common import RESULTS, machine, now, update_readme_section  # noqa: E402

QS = (0.05, 0.10, 0.15, 0.20)
SHIP_Q = 0.10
SAMPLE_RATE = 0.02
GENUINE_SOURCES = ("video_acted", "slow", "late", "crops")  # pad_eval's floor set (tiny is outside it)
ATTACK_ROWS = ("cued_closer_default", "cued_default")
GENUINE_ROWS = ("acted_genuine",)
Z95 = 1.959963984540054
DECIMALS = 4


# -- arithmetic (pure) -----------------------------------------------------------------------------------------


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of k successes in n trials (95 % by default); (0, 1) when n is 0."""
    if not 0 <= k <= n:
        raise ValueError(f"impossible count {k}/{n}")
    if n == 0:
        return 0.0, 1.0
    p = k / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, mid - half), min(1.0, mid + half)


def quantile_rule(scores: Sequence[float], q: float) -> float:
    """``audit_below`` of the rule: the q-quantile of the genuine confirmations' fused PAD scores (linear
    interpolation between order statistics), rounded to DECIMALS."""
    if not scores:
        raise ValueError("no genuine confirmation to calibrate on")
    if not 0.0 < q < 1.0:
        raise ValueError(f"q must be in (0, 1), not {q}")
    return round(float(np.quantile(np.asarray(scores, np.float64), q)), DECIMALS)


def audited_share(band_share: float, sample_rate: float) -> float:
    """Share of confirmations audited: the ones in the band, plus the random sample of the rest."""
    return band_share + (1.0 - band_share) * sample_rate


def no_look_share(above_share: float, sample_rate: float) -> float:
    """Share of sessions confirmed with no human look: above the band (``above_share``) and not drawn by the
    random sample."""
    return above_share * (1.0 - sample_rate)


def _rate(k: int, n: int) -> dict[str, Any]:
    lo, hi = wilson(k, n)
    return {"k": k, "n": n, "rate": k / n if n else None, "wilson95": [round(lo, 4), round(hi, 4)]}


def genuine_load(scores: Sequence[float], audit_below: float, sample_rate: float) -> dict[str, Any]:
    """Genuine confirmations' fused PAD scores -> how many fall in the band (score < audit_below: they are
    confirmed, so at or above the PAD threshold) and the audit load with the random sample."""
    n = len(scores)
    k = sum(1 for s in scores if s < audit_below)
    r = _rate(k, n)
    lo, hi = r["wilson95"]
    return {"in_band": r, "load": None if not n else audited_share(k / n, sample_rate),
            "load_wilson95": [round(audited_share(lo, sample_rate), 4), round(audited_share(hi, sample_rate), 4)]}


def attack_outcome(records: Sequence[dict[str, Any]], audit_below: float, sample_rate: float) -> dict[str, Any]:
    """Attack sessions (``confirmed``: production confirms it; ``session_score``) -> APCER (confirmed / n), the
    confirmed ones in the band (a caseworker looks), and confirmed with no human look: above the band (count,
    Wilson) and the expected share once the random sample is added."""
    n = len(records)
    conf = [r for r in records if r["confirmed"]]
    above = sum(1 for r in conf if r["session_score"] >= audit_below)
    lo, hi = wilson(above, n)
    return {"apcer": _rate(len(conf), n), "in_band": len(conf) - above, "no_look_band": _rate(above, n),
            "no_look_with_sample": None if not n else no_look_share(above / n, sample_rate),
            "no_look_with_sample_wilson95": [round(no_look_share(lo, sample_rate), 4),
                                             round(no_look_share(hi, sample_rate), 4)]}


# -- data --------------------------------------------------------------------------------------------------------


def genuine_scores(pad_sessions: dict[str, Any], half: str | None) -> tuple[list[float], int]:
    """Fused PAD scores of pad_eval's genuine floor-set sessions that production CONFIRMS (of ``half``, or all),
    and how many genuine sessions there were in all (confirmed or not)."""
    rows = [r for r in pad_sessions["sessions"] if r["kind"] == "bona_fide" and r["source"] in GENUINE_SOURCES
            and (half is None or r["split"] == half)]
    return [float(r["pad_score"]) for r in rows if r["confirmed"]], len(rows)


def pad_eval_attacks(pad_results: dict[str, Any], kind: str = "cued_replay") -> list[dict[str, Any]]:
    """``kind``'s sessions in a full pad_eval run's results (pad.json ``sessions``: derived rows) as attack records
    (``session_score``, ``confirmed``) at the manifest's threshold and fusion (pad_eval.session_record)."""
    from benchmarks import pad_eval as pe
    from lifecert.engine.pad import pad_spec

    th = pad_spec().threshold
    recs = [pe.session_record(r, th.value, th.fusion) for r in pad_results.get("sessions", []) if r["kind"] == kind]
    return [{"session_score": r["pad_score"], "confirmed": r["confirmed"]} for r in recs]


def evaluate(pad_sessions: dict[str, Any], sweep: dict[str, Any], qs: Sequence[float], sample_rate: float,
             extra_attacks: dict[str, list[dict[str, Any]]] | None = None) -> dict[str, Any]:
    """Every q's audit_below (half A) with the genuine loads and the attack rows' outcomes; ``extra_attacks``:
    more attack rows (name -> records with ``session_score`` and ``confirmed``)."""
    cal, n_a = genuine_scores(pad_sessions, "A")
    rep, n_b = genuine_scores(pad_sessions, "B")
    rows = {v: [r for r in sweep.get("sessions", []) if r["variant"] == v] for v in (*ATTACK_ROWS, *GENUINE_ROWS)}
    attack_names = [*ATTACK_ROWS, *(extra_attacks or {})]
    rows |= extra_attacks or {}
    acted = [float(r["session_score"]) for r in rows["acted_genuine"] if r["confirmed"]]
    out: dict[str, Any] = {
        "threshold": pad_sessions["meta"]["threshold"], "fusion": pad_sessions["meta"]["fusion"],
        "sample_rate": sample_rate,
        "genuine_sessions": {"half_A": n_a, "half_A_confirmed": len(cal), "half_B": n_b, "half_B_confirmed": len(rep),
                             "acted_genuine": len(rows["acted_genuine"]), "acted_genuine_confirmed": len(acted)},
        "attack_sessions": {v: len(rows[v]) for v in attack_names},
        "genuine_score_quantiles_half_A": {f"{p:.2f}": round(float(np.quantile(cal, p)), 4)
                                           for p in (0.0, *qs, 0.5)} if cal else {},
        "per_q": [],
    }
    for q in qs:
        ab = quantile_rule(cal, q)
        out["per_q"].append({
            "q": q, "audit_below": ab,
            "genuine": {"half_A": genuine_load(cal, ab, sample_rate), "half_B": genuine_load(rep, ab, sample_rate),
                        "acted_genuine": genuine_load(acted, ab, sample_rate)},
            "attacks": {v: attack_outcome(rows[v], ab, sample_rate) for v in attack_names if rows[v]},
        })
    out["no_band"] = {v: attack_outcome(rows[v], -math.inf, sample_rate) for v in attack_names if rows[v]}
    return out


# -- manifest ------------------------------------------------------------------------------------------------------

BLOCK_START = "# PAD audit band"
PACK_HEADER = "[packs.minifasnet]\n"


def write_manifest_audit(path: Path, value: float, comments: Sequence[str]) -> None:
    """Write ``audit_below = value`` with its comment lines into ``[packs.minifasnet]`` of the manifest at ``path``
    (after the pack's own keys, before its sub-tables), replacing an earlier block of this function; nothing else
    changes. pad_eval --write-manifest rewrites only ``[packs.minifasnet.threshold]``, so the key survives it."""
    if not 0.0 < value <= 1.0:
        raise ValueError(f"audit_below must be in (0, 1], not {value}")
    text = path.read_text()
    text = re.sub(rf"(?:{re.escape(BLOCK_START)}.*\n)(?:#.*\n)*audit_below = .*\n", "", text)
    if PACK_HEADER not in text:
        raise SystemExit(f"{path} has no {PACK_HEADER.strip()} table")
    start = text.index(PACK_HEADER) + len(PACK_HEADER)
    # the pack's own keys end at its first blank line or the next table header (whose comments stay with it)
    ends = [i for i in (text.find("\n\n", start), text.find("\n[", start)) if i >= 0]
    end = min(ends) if ends else len(text)
    lines = [f"{BLOCK_START}: {comments[0]}" if comments else BLOCK_START, *(f"# {c}" for c in comments[1:])]
    block = "\n".join(lines) + f"\naudit_below = {value}"
    path.write_text(text[:end].rstrip("\n") + "\n" + block + (text[end:] or "\n"))


# -- report ----------------------------------------------------------------------------------------------------------


def _pct(r: dict[str, Any]) -> str:
    lo, hi = r["wilson95"]
    return f"{r['k']}/{r['n']} = {100 * r['rate']:.0f} % [{100 * lo:.0f}–{100 * hi:.0f}]" if r["n"] else "—"


def _load(g: dict[str, Any]) -> str:
    if g["load"] is None:
        return "—"
    lo, hi = g["load_wilson95"]
    return f"{_pct(g['in_band'])} → {100 * g['load']:.1f} % [{100 * lo:.0f}–{100 * hi:.0f}]"


def _escape(a: dict[str, Any]) -> str:
    lo, hi = a["no_look_with_sample_wilson95"]
    return f"{_pct(a['no_look_band'])} → {100 * a['no_look_with_sample']:.1f} % [{100 * lo:.0f}–{100 * hi:.0f}]"


def readme(res: dict[str, Any]) -> str:
    g = res["genuine_sessions"]
    thr = res["threshold"]
    lines = [
        "## PAD audit band (`benchmarks/audit_band.py`)",
        "",
        " ".join([
            f"{res['date']}, {res['machine']['cpu']} ({res['machine']['nproc']} cores, shared with two other",
            "sessions, scoring niced). A CONFIRMED session whose fused PAD score",
            f"({res['fusion']} of production's PAD frames) lies in [{thr}, audit_below) opens a caseworker audit",
            "case (the confirmation stands); every other confirmed session is audited with probability",
            f"{100 * res['sample_rate']:.0f} % (the random sample). **Rule, fixed before any attack score was",
            "looked at:** audit_below = the q-quantile (linear interpolation) of the fused PAD scores of the",
            "genuine sessions production confirms, on HALF A of pad_eval's genuine BPCER set (video_acted, slow,",
            f"late, crops; split by session key as pad_eval does; {g['half_A_confirmed']} of {g['half_A']}",
            "confirmed), rounded to 4 decimals. The load is reported on half B",
            f"({g['half_B_confirmed']} of {g['half_B']} confirmed), which did not choose the value, and on",
            f"replay_sweep's `acted_genuine` ({g['acted_genuine_confirmed']} of {g['acted_genuine']} confirmed:",
            "genuine acting through PRODUCTION's frame engine, 320 px HOG, at the held-closer rows' framing;",
            "pad_eval's engine is 640 px with a CNN fallback). Attacks: replay_sweep's cued replays (the clip",
            "acts the drawn challenges on a phone, paced as production, production's active checks + PAD):",
            "`cued_closer_default` held so close that the phone's edges leave the picture",
            f"(n = {res['attack_sessions'].get('cued_closer_default', 0)}), `cued_default` with attacks.py's",
            f"framing (n = {res['attack_sessions'].get('cued_default', 0)}); `pad_eval_cued_replay`: pad_eval's",
            f"cued replays (n = {res['attack_sessions'].get('pad_eval_cued_replay', 0)}) from its results file.",
            "Cells: count / n = share [Wilson 95 %]; after the arrow, with the",
            f"{100 * res['sample_rate']:.0f} % random sample added analytically (genuine: band + (1 − band) ×",
            "rate audited; attacks: above the band × (1 − rate) confirmed with no human look).",
        ]),
        "",
        "| q | audit_below | genuine in band → audited, half A (chose it) | **half B (held out)** | acted_genuine "
        "(production engine) | " + " | ".join(f"`{v}` confirmed (APCER) | `{v}` confirmed, **no human look**"
                                               for v in res["no_band"]) + " |",
        "|---|---|---|---|---|" + "---|---|" * len(res["no_band"]),
    ]
    for row in res["per_q"]:
        ship = " (shipped)" if row["q"] == res["ship_q"] else ""
        lines.append(
            f"| {row['q']:.2f}{ship} | {row['audit_below']} | {_load(row['genuine']['half_A'])} | "
            f"{_load(row['genuine']['half_B'])} | {_load(row['genuine']['acted_genuine'])} | "
            + " | ".join(f"{_pct(a['apcer'])} | {_escape(a)}" for a in row["attacks"].values()) + " |")
    lines += ["", "Without a band (random sample only): " + "; ".join(
        f"`{v}` confirmed {_pct(a['apcer'])}, no human look → {100 * a['no_look_with_sample']:.1f} %"
        for v, a in res["no_band"].items()) + ".", ""]
    lines += [res.get("reading", ""), "", "Rerun: " + res["rerun"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pad-sessions", type=Path, default=RESULTS / "pad_sessions.json")
    ap.add_argument("--sweep", type=Path, default=RESULTS / "replay_sweep_band.json")
    ap.add_argument("--pad-results", type=Path, default=RESULTS / "pad.json",
                    help="a full pad_eval run's results: its cued_replay sessions are one more attack row (not "
                         "rescored here; '' to leave it out)")
    ap.add_argument("--sample-rate", type=float, default=SAMPLE_RATE)
    ap.add_argument("--ship-q", type=float, default=SHIP_Q, help="the q whose audit_below --write-manifest writes")
    ap.add_argument("--write-manifest", action="store_true", help="write audit_below into models/manifest.toml")
    ap.add_argument("--manifest", type=Path, default=ROOT / "models" / "manifest.toml")
    ap.add_argument("--no-readme", action="store_true")
    a = ap.parse_args(argv)
    if not 0.0 <= a.sample_rate < 1.0:
        ap.error("--sample-rate must be in [0, 1)")
    if a.ship_q not in QS:
        ap.error(f"--ship-q must be one of {QS}")
    pad = json.loads(a.pad_sessions.read_text())
    sweep = json.loads(a.sweep.read_text())
    extra = {}
    if str(a.pad_results) and a.pad_results.is_file():
        extra["pad_eval_cued_replay"] = pad_eval_attacks(json.loads(a.pad_results.read_text()))
    res = evaluate(pad, sweep, QS, a.sample_rate, extra)
    res |= {"date": now(), "machine": machine(), "ship_q": a.ship_q,
            "inputs": {"pad_sessions": str(a.pad_sessions.relative_to(ROOT)) if a.pad_sessions.is_relative_to(ROOT)
                       else str(a.pad_sessions), "pad_sessions_date": pad["meta"].get("date"),
                       "sweep": str(a.sweep.relative_to(ROOT)) if a.sweep.is_relative_to(ROOT) else str(a.sweep),
                       "sweep_date": sweep.get("date"), "sweep_scoring_key": sweep.get("scoring_key")},
            "rerun": ("`nice -n 10 python benchmarks/pad_eval.py --per-type 100 --genuine-per-variant 34 --kinds "
                      "video_acted,slow,late,crops --workers 2` (the genuine per-session results, "
                      "results/pad_sessions.json), `nice -n 10 python benchmarks/replay_sweep.py --variants "
                      "cued_closer_default,acted_genuine,cued_default --per-variant 30 --workers 2 --no-readme --out "
                      "benchmarks/results/replay_sweep_band.json` (same --cache-dir), then `python "
                      "benchmarks/audit_band.py [--write-manifest]` (no scoring).")}
    prev = RESULTS / "audit_band.json"
    if prev.is_file():  # the reading is written by hand after a run; keep it
        res["reading"] = json.loads(prev.read_text()).get("reading", "")
    prev.write_text(json.dumps(res, indent=1) + "\n")
    if not a.no_readme:
        update_readme_section("audit_band", readme(res))
    ship = next(r for r in res["per_q"] if r["q"] == a.ship_q)
    for r in res["per_q"]:
        hb = r["genuine"]["half_B"]
        print(f"q={r['q']:.2f} audit_below={r['audit_below']} half-B load={_load(hb)} " + " ".join(
            f"{v}: confirmed {_pct(x['apcer'])} no-look {_escape(x)}" for v, x in r["attacks"].items()))
    if a.write_manifest:
        g = ship["genuine"]
        hb = g["half_B"]
        text = (f"a CONFIRMED session whose fused PAD score ({res['fusion']}, the threshold's fusion) is in "
                "[threshold, audit_below) opens a caseworker audit case; the confirmation stands; no key = no grey "
                "band. Rule "
                "(benchmarks/audit_band.py, benchmarks/README.md \"PAD audit band\"): the "
                f"{100 * ship['q']:.0f} % quantile of the genuine confirmations' scores, half A of pad_eval's genuine "
                f"sessions ({res['genuine_sessions']['half_A_confirmed']} confirmed). Genuine load with the "
                f"{100 * res['sample_rate']:.0f} % random sample: half B (held out) {hb['in_band']['k']}/"
                f"{hb['in_band']['n']} in the band = {100 * hb['load']:.1f} % audited; half A "
                f"{100 * g['half_A']['load']:.1f} %; replay_sweep acted_genuine "
                f"{100 * g['acted_genuine']['load']:.1f} %.")
        cc = ship["attacks"].get("cued_closer_default")
        if cc:
            text += (f" Held-closer cued replays (replay_sweep cued_closer_default, synthetic): confirmed "
                     f"{cc['apcer']['k']}/{cc['apcer']['n']}, confirmed with no human look {cc['no_look_band']['k']}/"
                     f"{cc['no_look_band']['n']} ({100 * cc['no_look_with_sample']:.1f} % with the sample; "
                     f"{100 * res['no_band']['cued_closer_default']['no_look_with_sample']:.1f} % with no band).")
        text += (" Dataset: pad_eval's genuine sessions and replay_sweep's cued rows (../shared/faces clips); "
                 f"date {res['date'][:10]}.")
        # a number and its " %" stay on one line
        lines = [ln.replace("\0", " ") for ln in textwrap.wrap(text.replace(" %", "\0%"), 96)]
        write_manifest_audit(a.manifest, ship["audit_below"], lines)
        print(f"wrote audit_below = {ship['audit_below']} to {a.manifest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
