"""An attacker who retries: what the hold rule (rules.hold) changes, from per-session outcomes already on file.

    python benchmarks/retry_attacker.py            # results/retry_attacker.json + README section; seconds of CPU

Every liveness table in benchmarks/README.md reports a PER-SESSION rate: the share of attack sessions production
CONFIRMS. An attacker is not limited to one session (``rate_limit_per_id_per_hour`` sessions per ID number and
client address per hour), so a per-session rate p compounds to 1 - (1 - p)^K. Since ca7d9d5 (rules.HOLD_REASONS,
rules.hold; wired into the service's _record in d3762ad) a session that passes while a REVIEW case of the same
pensioner opened for a sign of an attack is undecided becomes REVIEW HELD_FOR_REVIEW. This script re-reads the
sessions of the published tables (no face engine runs, no new measurement), maps each to production's outcome class
in rules.decide's order and plays an attacker who retries against the rules with and without the hold.

MODEL (stated in the README section): the sessions of one attack row are independent draws from the row's empirical
outcome distribution; the attacker stops at his first CONFIRMED; rules.escalate turns the RETRY after
``max_retries_before_review`` RETRYs in a row into REVIEW TOO_MANY_RETRIES (not a hold reason). BEFORE (no hold):
success within K sessions = a CONFIRMED among them. AFTER (hold): success only if a CONFIRMED comes before the first
hold-review (REVIEW for a reason in HOLD_REASONS); after it every later pass is HELD_FOR_REVIEW (the case is assumed
undecided, or decided against him, for the K sessions). With p = P(CONFIRMED), h = P(hold-review) per session:
before(K) = 1 - (1 - p)^K, after(K) = p (1 - (1 - p - h)^K) / (p + h) -> p / (p + h). Escalation changes neither
(TOO_MANY_RETRIES is no hold reason); it changes only which cases are opened. A Monte Carlo through
the rules' own functions checks the closed forms.

"No human look": the confirmation that ends the attack opens no spot check (lifecert.domain.spotcheck: PAD grey band
[threshold, audit_below) of models/manifest.toml; the jaw test's STILL_CHIN / JAW_UNREAD where the file has it), and
the 2 % random sample passes it by, applied analytically (x (1 - sample rate)).

Intervals: exact Clopper-Pearson on the per-session counts; percentile bootstrap over the row's sessions (resampled
with replacement: a multinomial draw of the outcome classes, fixed seed) for everything derived from them.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import beta

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._common import RESULTS, machine, now, publish  # noqa: E402
from lifecert.domain.errors import ErrorCode  # noqa: E402
from lifecert.domain.spotcheck import SpotCheckPolicy  # noqa: E402
from lifecert.services.verification.rules import (  # noqa: E402
    HOLD_REASONS,
    Evidence,
    consecutive_retries,
    decide,
    escalate,
    hold,
)
from lifecert.storage.models_verification import Decision  # noqa: E402

CONFIRMED, HOLD, OTHER, RETRY = "confirmed", "hold_review", "other_review", "retry"
CLASSES = (CONFIRMED, HOLD, OTHER, RETRY)
KS = (1, 3, 10, 30, 240)
DAY = 240  # sessions in a day at 10 an hour per (ID number, client address)
SEED = 16
N_BOOT = 2000
N_SIM = 4000
SECTION = "retry_attacker"
AFTER_LINE = "<!-- audit_band:end -->"

# quality / framing codes: production's _finalize returns RETRY with them before rules.decide (PAD not consulted)
QUALITY_RETRY: frozenset[str] = frozenset(str(c) for c in (
    ErrorCode.NO_FACE, ErrorCode.MULTIPLE_FACES, ErrorCode.FACE_TOO_SMALL, ErrorCode.BLURRY, ErrorCode.TOO_DARK,
    ErrorCode.TOO_BRIGHT, ErrorCode.LOW_CONTRAST, ErrorCode.POSE_TOO_LARGE, ErrorCode.EYES_CLOSED,
    ErrorCode.LOW_QUALITY, ErrorCode.TOO_FEW_FRAMES, ErrorCode.FACE_NOT_CENTRED))


# -- outcome of one session (pure) ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Session:
    """One session as production decides it: ``decision`` / ``reason`` (ErrorCode value or None), its fused PAD
    score (None: none on file) and ``jaw_flag``: a jaw spot check (STILL_CHIN / JAW_UNREAD) is known to be opened
    if it is confirmed (False where the file does not record the jaw test)."""

    decision: str
    reason: str | None
    pad_score: float | None = None
    jaw_flag: bool = False
    label: str = ""  # what the file says when it says less than the code (e.g. "still or flat")

    @property
    def cls(self) -> str:
        return outcome_class(self.decision, self.reason)


def outcome_class(decision: str, reason: str | None) -> str:
    """CONFIRMED / hold-review (REVIEW for one of rules.HOLD_REASONS) / other review / retry."""
    if decision == Decision.CONFIRMED:
        return CONFIRMED
    if decision == Decision.REVIEW:
        return HOLD if reason in HOLD_REASONS else OTHER
    if decision == Decision.RETRY:
        return RETRY
    raise ValueError(f"unknown decision {decision!r}")


def with_pad(active_decision: str, active_reason: str | None, pad_score: float | None,
             threshold: float) -> tuple[str, str | None]:
    """Production's decision from an active-only decision on file (benchmarks/pad_eval.production_decision: PAD off,
    1:1 match not modelled) and the session's fused PAD score, through rules.decide itself.

    ``active_reason``: pad_eval's label ("missed <step>", "flat_photo", "still_image", a quality code) or an
    ErrorCode (replay_sweep's ``reason``). A quality / framing RETRY ends the session before rules.decide, so PAD does
    not change it; no PAD score is no evidence (lifecert.services.verification.rules.pad_evidence), not a spoof.
    Raises ValueError where the label does not say enough (e.g. LIVENESS_FAILED that could be a still image or a flat
    photo AND the two would decide differently)."""
    spoof = pad_score is not None and not math.isnan(pad_score) and pad_score < threshold
    if active_decision == Decision.RETRY and active_reason in QUALITY_RETRY:
        return Decision.RETRY, active_reason
    if active_decision == Decision.CONFIRMED and active_reason is None:
        options = [Evidence(**_neutral())]
    elif active_decision == Decision.RETRY and active_reason is not None and (
            active_reason.startswith("missed ") or active_reason == ErrorCode.CHALLENGE_NOT_SEEN):
        options = [Evidence(**_neutral(), challenges_passed=False)]
    elif active_decision == Decision.REVIEW and active_reason == "flat_photo":
        options = [Evidence(**_neutral(), flat=True)]
    elif active_decision == Decision.REVIEW and active_reason == "still_image":
        options = [Evidence(**_neutral(), still=True)]
    elif active_decision == Decision.REVIEW and active_reason == ErrorCode.LIVENESS_FAILED:
        options = [Evidence(**_neutral(), still=True), Evidence(**_neutral(), flat=True)]
    else:
        raise ValueError(f"cannot place {active_decision} {active_reason!r} in rules.decide's order")
    verdicts = [decide(replace(e, pad_spoof=spoof)) for e in options]
    if len({outcome_class(str(v.decision), v.reason) for v in verdicts}) != 1:
        raise ValueError(f"{active_decision} {active_reason!r} with PAD spoof={spoof}: the classes differ")
    v = verdicts[0]
    return str(v.decision), None if v.reason is None else str(v.reason)


def _neutral() -> dict[str, Any]:
    # the 1:1 match passes (pad_eval / replay_sweep do not model it: the replay shows the pensioner's own face)
    return {"threshold": 0.0, "own_match": 1.0, "one_person_min": 1.0}


def from_outcome_label(outcome: str) -> tuple[str, str | None]:
    """cutout.py's ``outcome`` ("CONFIRMED", "REVIEW <issue or reason>", "RETRY <missed step or reason>"), production's
    final decision, -> (decision, ErrorCode)."""
    decision, _, what = outcome.partition(" ")
    if decision == Decision.CONFIRMED:
        return Decision.CONFIRMED, None
    if decision == Decision.RETRY:
        return Decision.RETRY, what if what in QUALITY_RETRY else str(ErrorCode.CHALLENGE_NOT_SEEN)
    if decision == Decision.REVIEW:
        issue = {"presentation_attack": ErrorCode.PRESENTATION_ATTACK, "flat_photo": ErrorCode.LIVENESS_FAILED,
                 "still_image": ErrorCode.LIVENESS_FAILED, "still_chin": ErrorCode.LIVENESS_FAILED}
        if what in issue:
            return Decision.REVIEW, str(issue[what])
        return Decision.REVIEW, str(ErrorCode(what))  # ValueError: not a code
    raise ValueError(f"unknown outcome {outcome!r}")


# -- the retrying attacker (pure) -------------------------------------------------------------------------------


@dataclass
class Pensioner:
    """One ID number's history as the service records it: rules.escalate on the RETRYs in a row (rules.
    consecutive_retries), rules.hold while a hold-review case is undecided (``hold_rule``; never decided here)."""

    hold_rule: bool
    max_retries: int = 3
    history: list[str] = field(default_factory=list)  # recorded decisions, oldest first
    held_by: int | None = None  # index of the first hold-review session

    def record(self, decision: str, reason: str | None) -> tuple[str, str | None]:
        retries = consecutive_retries(self.history[::-1][: self.max_retries + 1])
        decision, reason = escalate(decision, reason, retries, self.max_retries)
        if self.hold_rule:
            decision, reason = hold(decision, reason, self.held_by)
        if self.held_by is None and decision == Decision.REVIEW and reason in HOLD_REASONS:
            self.held_by = len(self.history)
        self.history.append(decision)
        return decision, reason


def play(sessions: Iterable[tuple[str, str | None]], hold_rule: bool, max_retries: int = 3
         ) -> list[tuple[str, str | None]]:
    """The recorded decisions of an attacker's sessions, stopping after the first recorded CONFIRMED."""
    p = Pensioner(hold_rule, max_retries)
    out = []
    for d, r in sessions:
        out.append(p.record(d, r))
        if out[-1][0] == Decision.CONFIRMED:
            break
    return out


def success_before(p: float, k: float) -> float:
    """P(a CONFIRMED within k independent sessions), no hold; k = inf allowed."""
    if p <= 0.0:
        return 0.0
    return 1.0 if math.isinf(k) else 1.0 - (1.0 - p) ** k


def success_after(p: float, h: float, k: float) -> float:
    """P(a CONFIRMED within k sessions and before the first hold-review): p (1 - (1-p-h)^k) / (p + h); k = inf allowed
    (p / (p + h))."""
    if p <= 0.0:
        return 0.0
    if math.isinf(k):
        return p / (p + h)
    return p * (1.0 - (1.0 - p - h) ** k) / (p + h)


def no_look(q: float, p: float, h: float, k: float, hold_rule: bool, sample_rate: float) -> float:
    """P(the attack ends in a confirmation within k sessions that no person looks at): its first CONFIRMED opens no
    spot check (``q`` per session: confirmed and not in the PAD band or jaw-flagged) and the random sample passes it
    by (analytic factor 1 - sample_rate)."""
    if p <= 0.0:
        return 0.0
    base = success_after(p, h, k) if hold_rule else success_before(p, k)
    return base * (q / p) * (1.0 - sample_rate)


def simulate(sessions: Sequence[Session], k_max: int, n: int, rng: np.random.Generator, hold_rule: bool,
             max_retries: int = 3, policy: SpotCheckPolicy | None = None) -> dict[str, Any]:
    """Monte Carlo of ``n`` attackers each drawing sessions uniformly from ``sessions`` (with replacement) through
    :class:`Pensioner`, for at most ``k_max`` sessions, stopping at the first CONFIRMED, and with ``hold_rule`` also
    at the first hold-review (nothing can confirm after it). ``won``: the session number of each success (None:
    none); ``looked``: per success, whether its session opens a spot check (:func:`spot_checked`); ``open``:
    attackers neither successful nor held after ``k_max`` sessions."""
    won: list[int | None] = []
    looked: list[bool] = []
    still_open = 0
    block = 64
    for _ in range(n):
        pen = Pensioner(hold_rule, max_retries)
        got: int | None = None
        k = 0
        while k < k_max and got is None:
            for i in rng.integers(0, len(sessions), size=min(block, k_max - k)):
                s = sessions[int(i)]
                k += 1
                d, _r = pen.record(s.decision, s.reason)
                if d == Decision.CONFIRMED:
                    got = k
                    looked.append(policy is not None and spot_checked(s, policy))
                    break
                if hold_rule and pen.held_by is not None:
                    break
            if hold_rule and pen.held_by is not None:
                break
        still_open += int(got is None and not (hold_rule and pen.held_by is not None))
        won.append(got)
    return {"won": won, "looked": looked, "open": still_open}


def spot_checked(s: Session, policy: SpotCheckPolicy) -> bool:
    """Whether a CONFIRMED session opens a spot check for a reason other than the random sample (PAD grey band of
    ``policy``, STILL_CHIN / JAW_UNREAD where known): SpotCheckPolicy.reasons with the sample switched off."""
    no_sample = SpotCheckPolicy(0.0, policy.pad_threshold, policy.pad_below)
    return bool(no_sample.reasons(s.pad_score, 0.5, s.jaw_flag))


# -- statistics -------------------------------------------------------------------------------------------------


def clopper_pearson(k: int, n: int, conf: float = 0.95) -> tuple[float, float]:
    """Exact two-sided interval of k/n (beta quantiles)."""
    if n <= 0 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n and n > 0, got {k}/{n}")
    a = (1.0 - conf) / 2.0
    lo = 0.0 if k == 0 else float(beta.ppf(a, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(1.0 - a, k + 1, n - k))
    return lo, hi


def counts(sessions: Sequence[Session], policy: SpotCheckPolicy) -> dict[str, int]:
    """Per class, plus ``confirmed_unlooked`` (confirmed, no spot check but the random sample's)."""
    c = Counter(s.cls for s in sessions)
    out = {k: c.get(k, 0) for k in CLASSES}
    out["confirmed_unlooked"] = sum(1 for s in sessions if s.cls == CONFIRMED and not spot_checked(s, policy))
    return out


def metrics(p: float, h: float, q: float, sample_rate: float) -> dict[str, float]:
    """Everything reported from the per-session shares p (CONFIRMED), h (hold-review), q (confirmed unlooked)."""
    out: dict[str, float] = {}
    for k in (*KS, math.inf):
        key = "inf" if math.isinf(k) else str(k)
        out[f"before_{key}"] = success_before(p, k)
        out[f"after_{key}"] = success_after(p, h, k)
        out[f"nolook_before_{key}"] = no_look(q, p, h, k, False, sample_rate)
        out[f"nolook_after_{key}"] = no_look(q, p, h, k, True, sample_rate)
    out["held_if_retrying"] = h / (p + h) if p + h > 0 else 0.0  # genuine: hold-review before the first CONFIRMED
    return out


def bootstrap(c: dict[str, int], sample_rate: float, rng: np.random.Generator, n_boot: int = N_BOOT
              ) -> dict[str, list[float]]:
    """Percentile 95 % intervals of :func:`metrics` over sessions resampled with replacement (a multinomial draw of
    the classes confirmed-unlooked / confirmed-looked / hold / other / retry)."""
    n = sum(c[k] for k in CLASSES)
    cells = np.array([c["confirmed_unlooked"], c[CONFIRMED] - c["confirmed_unlooked"], c[HOLD], c[OTHER], c[RETRY]],
                     dtype=np.float64)
    draws = rng.multinomial(n, cells / n, size=n_boot)
    acc: dict[str, list[float]] = {}
    for row in draws:
        m = metrics((row[0] + row[1]) / n, row[2] / n, row[0] / n, sample_rate)
        for key, v in m.items():
            acc.setdefault(key, []).append(v)
    return {k: [round(float(np.percentile(v, 2.5)), 4), round(float(np.percentile(v, 97.5)), 4)]
            for k, v in acc.items()}


# -- the rows on file -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    name: str
    genuine: bool
    real: str  # REAL / SYNTHETIC, the README's own words per row
    source: str  # file name under benchmarks/results
    sessions: tuple[Session, ...]
    note: str = ""
    in_table: bool = True
    file_confirmed: int | None = None  # what the file itself counts as confirmed (a consistency check)


def _pad_eval_sessions(recs: Sequence[dict[str, Any]], threshold: float) -> tuple[tuple[Session, ...], int]:
    """pad_eval.session_record rows -> Sessions; also checks that ``pad_pass`` is the shipped threshold's verdict."""
    out = []
    for r in recs:
        score = r["pad_score"]
        if score is not None and (score >= threshold) != r["pad_pass"]:
            raise ValueError(f"{r['key']}: pad_pass is not the session median against {threshold}")
        d, reason = with_pad(r["active_decision"], r["active_reason"], score, threshold)
        out.append(Session(d, reason, score))
    return tuple(out), sum(1 for r in recs if r["confirmed"])


def _pad_json_sessions(recs: Sequence[dict[str, Any]], threshold: float, fusion: str
                       ) -> tuple[tuple[Session, ...], int]:
    """pad.json's derived rows (pad_eval.derive) -> Sessions at the shipped threshold and fusion."""
    out, conf = [], 0
    for r in recs:
        score = r["pad"][fusion]
        score = None if score is None or math.isnan(score) else float(score)
        d, reason = with_pad(r["decision"], r["reject_reason"], score, threshold)
        out.append(Session(d, reason, score))
        conf += int(not r["active_reject"] and score is not None and score >= threshold)
    return tuple(out), conf


def _sweep_sessions(recs: Sequence[dict[str, Any]], threshold: float) -> tuple[tuple[Session, ...], int]:
    out = []
    for r in recs:
        score = r["session_score"]
        d, reason = with_pad(r["decision"], r["reason"], score, threshold)
        # replay_sweep keeps the code, not the issue: a still image or a flat photo (a hold-review either way)
        vague = r["reason"] == ErrorCode.LIVENESS_FAILED
        out.append(Session(d, reason, score, label="(still or flat: the file keeps only the code)" if vague else ""))
    return tuple(out), sum(1 for r in recs if r["confirmed"])


def _cutout_sessions(recs: Sequence[dict[str, Any]]) -> tuple[tuple[Session, ...], int]:
    out = []
    for r in recs:
        d, reason = from_outcome_label(r["outcome"])
        # the jaw test's spot checks: STILL_CHIN (jaw_pass False) and, since 8a24fc7, JAW_UNREAD (an open_mouth step
        # seen but not read); every confirmed cut-out session saw its open_mouth step (drawn in every set)
        jaw = (not r["jaw_pass"]) or ("open_mouth" in r["drawn"] and not r["jaw_decided"])
        out.append(Session(d, reason, r["pad_score"], jaw))
    return tuple(out), sum(1 for r in recs if r["confirmed"])


def load_rows(results: Path, threshold: float, fusion: str) -> tuple[list[Row], dict[str, Any]]:
    """Every row this section reports, and the inputs (path, date, last commit)."""
    read: dict[str, Any] = {}

    def js(name: str) -> Any:
        if name not in read:
            read[name] = json.loads((results / name).read_text(encoding="utf-8"))
        return read[name]

    rows: list[Row] = []

    def add(name: str, genuine: bool, real: str, source: str, got: tuple[tuple[Session, ...], int], note: str = "",
            in_table: bool = True) -> None:
        rows.append(Row(name, genuine, real, source, got[0], note, in_table, got[1]))

    s11 = js("pad_sessions_s11.json")["sessions"]
    if js("pad_sessions_s11.json")["meta"]["threshold"] != threshold:
        raise ValueError("pad_sessions_s11.json was not written at the shipped threshold")

    def keyed(prefix: str, clip: str = "") -> list[dict[str, Any]]:
        return [r for r in s11 if r["key"].startswith(prefix + "/") and clip in r["key"]]

    syn_cued = "SYNTHETIC screen replay of 2 REAL clips, cued"
    add("cued_replay (s11 draw)", False, syn_cued, "pad_sessions_s11.json",
        _pad_eval_sessions(keyed("cued_replay"), threshold))
    for clip in ("talking_head_a", "blink_7_times_1080p"):
        add(f"cued_replay (s11) {clip}", False, syn_cued, "pad_sessions_s11.json",
            _pad_eval_sessions(keyed("cued_replay", clip), threshold), in_table=clip == "talking_head_a")
    add("cued_edited (s11 draw)", False, "SYNTHETIC, the mouth opening edited in",
        "pad_sessions_s11.json", _pad_eval_sessions(keyed("cued_edited"), threshold))
    sweep = js("replay_sweep_band.json")["sessions"]
    for variant in ("cued_closer_default", "cued_default"):
        add(variant, False, syn_cued + (", held so close the phone's edges leave the picture"
                                        if variant == "cued_closer_default" else ""),
            "replay_sweep_band.json", _sweep_sessions([r for r in sweep if r["variant"] == variant], threshold))
    add("cued_closer_default talking_head_a", False, syn_cued, "replay_sweep_band.json",
        _sweep_sessions([r for r in sweep if r["variant"] == "cued_closer_default" and r["clip"] == "talking_head_a"],
                        threshold))
    pad_old = js("pad.json")["sessions"]
    add("replay (plain, old draw)", False, "SYNTHETIC screen replay of 2 REAL clips, not acting", "pad.json",
        _pad_json_sessions([r for r in pad_old if r["kind"] == "replay"], threshold, fusion),
        note="pad.json, flat rule of 2026-12-01")
    prints = js("pad_prints_n.json")["sessions"]
    for kind in ("print", "still"):
        add(f"{kind} (n = 1798)", False, "SYNTHETIC print / screen of REAL photos", "pad_prints_n.json",
            _pad_eval_sessions([r for r in prints if r["kind"] == kind], threshold))
    add("print_nuaa", False, "REAL captures, frame synthesised, no challenge", "pad.json",
        _pad_json_sessions([r for r in pad_old if r["kind"] == "print_nuaa"], threshold, fusion),
        note="pad.json, flat rule of 2026-12-01")
    add("replay_apfol", False, "REAL captures, frame synthesised, no challenge", "pad.json",
        _pad_json_sessions([r for r in pad_old if r["kind"] == "replay_apfol"], threshold, fusion))
    cut = js("cutout_s15_pool.json")
    summ = cut["summary"]
    genuine_variants = {v for v, s in summ.items() if s.get("genuine")}
    adaptive = {"lower_face", "mouth_chin", "lower_face_photo", "mouth_chin_photo", "lower_face_wide_photo",
                "mouth_chin_wide_photo"}
    crow = cut["rows"]
    syn_cut = "SYNTHETIC cut-out print of REAL photos"
    add("cut-out: mouth / eyes holes", False, syn_cut, "cutout_s15_pool.json",
        _cutout_sessions([r for r in crow if r["variant"] not in genuine_variants | adaptive]))
    add("cut-out: adaptive cuts", False, syn_cut + ", attacker knows the jaw test", "cutout_s15_pool.json",
        _cutout_sessions([r for r in crow if r["variant"] in adaptive]))
    for v in sorted({r["variant"] for r in crow} - genuine_variants):
        sel = [r for r in crow if r["variant"] == v]
        add(f"cut-out `{v}`", False, syn_cut, "cutout_s15_pool.json", _cutout_sessions(sel),
            in_table=any(r["confirmed"] for r in sel))
    # genuine
    for src in ("video_acted", "slow", "late"):
        add(src, True, "REAL clips, synthetic turns (and blink_7's mouth)", "pad_sessions_s11.json",
            _pad_eval_sessions(keyed(src), threshold))
    crops = [r for r in js("pad_sessions.json")["sessions"] if r["source"] == "crops"]
    add("crops", True, "REAL crops, frame synthesised, no challenge", "pad_sessions.json",
        _pad_eval_sessions(crops, threshold))
    for clip in ("talking_head_a", "blink_7_times_1080p"):
        add(f"acted_genuine {clip}", True, "REAL clip, synthetic turns", "replay_sweep_band.json",
            _sweep_sessions([r for r in sweep if r["variant"] == "acted_genuine" and r["clip"] == clip], threshold),
            note="" if clip == "talking_head_a" else "NOT a user measure: the clip never opens its mouth")
    for v in sorted(genuine_variants):
        add(f"cut-out control `{v}`", True, "REAL clip (talking_head_a), synthetic turns", "cutout_s15_pool.json",
            _cutout_sessions([r for r in crow if r["variant"] == v]))
    dates = {"pad_sessions_s11.json": js("pad_sessions_s11.json")["meta"]["date"],
             "pad_sessions.json": js("pad_sessions.json")["meta"]["date"], "pad.json": js("pad.json")["date"],
             "replay_sweep_band.json": js("replay_sweep_band.json")["date"],
             "pad_prints_n.json": js("pad_prints_n.json")["date"], "cutout_s15_pool.json": cut["date"]}
    inputs = {name: {"path": f"benchmarks/results/{name}", "date": dates[name], "commit": _last_commit(results / name)}
              for name in dates}
    return rows, inputs


def _last_commit(path: Path) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "log", "-1", "--format=%h %cs", "--", str(path)],
                             capture_output=True, text=True, check=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return out or None


# -- per row ----------------------------------------------------------------------------------------------------


def evaluate(row: Row, policy: SpotCheckPolicy, max_retries: int, rng: np.random.Generator, n_sim: int = N_SIM,
             n_boot: int = N_BOOT) -> dict[str, Any]:
    """One row: counts, intervals, closed forms, bootstrap, the worst case at p's upper bound, the simulation."""
    sample_rate = policy.sample_rate
    c = counts(row.sessions, policy)
    n = len(row.sessions)
    p, h, q = c[CONFIRMED] / n, c[HOLD] / n, c["confirmed_unlooked"] / n
    cp = {k: [round(x, 4) for x in clopper_pearson(c[k], n)] for k in (*CLASSES, "confirmed_unlooked")}
    m = metrics(p, h, q, sample_rate)
    out: dict[str, Any] = {
        "name": row.name, "genuine": row.genuine, "real": row.real, "source": row.source, "note": row.note, "n": n,
        "counts": c, "clopper_pearson95": cp,
        "reasons": dict(Counter(f"{s.decision} {s.reason} {s.label}".strip() for s in row.sessions).most_common()),
        "file_confirmed": row.file_confirmed,
        "metrics": {k: round(v, 5) for k, v in m.items()},
        "bootstrap95": bootstrap(c, sample_rate, rng, n_boot),
    }
    # the worst case inside the interval when nothing was confirmed: p at its Clopper-Pearson upper bound, h at its
    # lower bound (the hold-review share least in the way)
    p_hi, h_lo = cp[CONFIRMED][1], cp[HOLD][0]
    out["at_p_upper"] = {"p": p_hi, "h": h_lo, "before_240": round(success_before(p_hi, DAY), 4),
                         "after_240": round(success_after(p_hi, h_lo, DAY), 4),
                         "after_inf": round(success_after(p_hi, h_lo, math.inf), 4)}
    # Monte Carlo with escalation, against the closed forms; after the hold: until every attacker is confirmed or
    # held (the K -> inf check), unless nothing in the row can end it (p + h = 0)
    sim: dict[str, Any] = {}
    for hold_rule, tag in ((False, "before"), (True, "after")):
        k_max = 100_000 if hold_rule and p + h > 0 else DAY
        s = simulate(row.sessions, k_max, n_sim, rng, hold_rule, max_retries, policy)
        won = [w for w in s["won"] if w is not None]
        sim[tag] = {"n_attackers": n_sim, "k_max": k_max, "open_at_k_max": s["open"]}
        for k in KS:
            sim[tag][f"success_{k}"] = round(sum(1 for w in won if w <= k) / n_sim, 4)
        if k_max > DAY:
            sim[tag]["success_inf"] = round(len(won) / n_sim, 4)
        sim[tag]["looked_share_of_successes"] = round(sum(s["looked"]) / len(s["looked"]), 4) if s["looked"] else None
    out["simulation"] = sim
    return out


def check_simulation(res: dict[str, Any]) -> list[str]:
    """Where the simulated success rate is more than 4 binomial standard errors (+ 1/n) from the closed form."""
    bad = []
    for tag in ("before", "after"):
        sim = res["simulation"][tag]
        for k in (*KS, *(("inf",) if "success_inf" in sim else ())):
            exact = res["metrics"][f"{tag}_{k}"]
            se = math.sqrt(max(exact * (1 - exact), 1e-12) / sim["n_attackers"])
            if abs(sim[f"success_{k}"] - exact) > 4 * se + 1.0 / sim["n_attackers"]:
                bad.append(f"{res['name']} {tag} K={k}: simulated {sim[f'success_{k}']} vs {exact:.4f}")
    return bad


# -- README ---------------------------------------------------------------------------------------------------------


def pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def ci(v: Sequence[float]) -> str:
    return f"[{100 * v[0]:.1f}–{100 * v[1]:.1f}]"


def readme(res: dict[str, Any]) -> str:
    a = res["assumptions"]
    rows = [r for r in res["rows"] if r["in_table"]]
    att = [r for r in rows if not r["genuine"]]
    gen = [r for r in rows if r["genuine"]]
    inp = "; ".join(f"`{v['path']}` ({v['date']}; last commit {v['commit']})" for v in res["inputs"].values())
    lines = [
        "## An attacker who retries (`benchmarks/retry_attacker.py`)",
        "",
        f"{res['date']}, {res['machine']['cpu']} ({res['machine']['nproc']} cores, shared); code {res['commit']}; "
        f"{res['cpu_s']:.0f} s CPU. **No new scoring, no new attack**: the SAME sessions as the published tables, "
        f"re-read. Inputs: {inp}.",
        "",
        f"**Model.** Each row's sessions are treated as independent draws from its empirical outcome "
        f"distribution. The attacker stops at his first CONFIRMED. After {a['max_retries']} RETRYs in a row the next "
        f"RETRY becomes REVIEW TOO_MANY_RETRIES (rules.escalate; not a hold reason). BEFORE (no hold): success "
        f"within K sessions = a CONFIRMED among them, 1 − (1 − p)^K. AFTER (rules.hold): success only if the "
        f"CONFIRMED comes before the first *hold-review*, a REVIEW for "
        f"{', '.join(sorted(a['hold_reasons']))}. After that review every later pass is HELD_FOR_REVIEW. The case is "
        f"taken as undecided (or decided against him) for all K sessions. That gives p (1 − (1 − p − h)^K) / (p + h) "
        f"→ p / (p + h), where p = CONFIRMED share and h = hold-review share per session. Escalation moves neither "
        f"number; it only changes which cases are opened. A simulation of {a['n_sim']} attackers per row through "
        f"rules.escalate / consecutive_retries / hold agrees with the closed forms ({res['simulation_check']}; "
        f"after the hold, run until every attacker is confirmed or held, the K → ∞ check). K = {DAY} is a day at "
        f"{a['rate_limit_per_id_per_hour']} sessions an hour per ID number and client address. An attacker with "
        f"{a['id_all_clients_factor']} or more addresses gets "
        f"{a['rate_limit_per_id_per_hour'] * a['id_all_clients_factor']} an hour (the per-ID cap over all clients).",
        "",
        f"**Outcome classes** follow rules.decide's order, from each file. The pad_eval and replay_sweep rows hold "
        f"an ACTIVE-only decision plus the session's PAD median. PAD is added at the shipped {a['pad_threshold']} "
        f"(median; the files' `pad_pass` is that verdict, checked against the score), through rules.decide itself. "
        f"A still image → LIVENESS_FAILED. A PAD spoof → PRESENTATION_ATTACK, which outranks a flat photo and a "
        f"missed challenge. A quality or framing RETRY (NO_FACE, TOO_DARK, MULTIPLE_FACES, TOO_FEW_FRAMES, …) ends "
        f"the session before rules.decide, so PAD does not turn it into a review. Those two files do not model the "
        f"1:1 match (the replay shows the pensioner's own face), so LOW_MATCH and DIFFERENT_PERSONS cannot occur in "
        f"their rows. cutout_s15_pool holds production's FINAL decision (`--refinalize` at 9a9853f). Check: "
        f"{res['confirmed_vs_file']}. *No human look* means the confirmation that ends the "
        f"attack opens no spot check: not in the PAD band [{a['pad_threshold']}, {a['audit_below']}) of "
        f"models/manifest.toml, and no STILL_CHIN / JAW_UNREAD where the file records the jaw test (cut-outs only; "
        f"elsewhere an upper bound). That share is then × (1 − {a['sample_rate']}) for the random sample "
        f"(analytic). Intervals: the per-session counts get exact Clopper–Pearson 95 %. Everything derived gets a "
        f"percentile bootstrap over the row's sessions ({a['n_boot']} resamples, seed {a['seed']}). For a row with "
        f"0 confirmed that bootstrap gives [0–0], which says nothing. The last column covers that case: it puts p "
        f"at its Clopper–Pearson upper bound and h at its lower one.",
        "",
        "### Attacks: success within K sessions, before → after the hold",
        "",
        "| row | REAL / SYNTHETIC | n | per session: confirmed / hold-review / other review / retry "
        "| K = 1 | K = 3 | K = 10 | K = 30 | K = 240 (a day) | K → ∞ | no human look, K = 240 | "
        "p at its upper bound: K = 240, K → ∞ |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in att:
        c, cp, m, b = r["counts"], r["clopper_pearson95"], r["metrics"], r["bootstrap95"]
        per = (f"{c[CONFIRMED]} [{pct(cp[CONFIRMED][0])}–{pct(cp[CONFIRMED][1])} %] / {c[HOLD]} / {c[OTHER]} / "
               f"{c[RETRY]}")
        ks = [f"{pct(m[f'before_{k}'])} → **{pct(m[f'after_{k}'])}**" for k in (1, 3, 10, 30)]
        k240 = (f"{pct(m['before_240'])} {ci(b['before_240'])} → **{pct(m['after_240'])}** {ci(b['after_240'])}")
        kinf = f"{pct(m['before_inf'])} → **{pct(m['after_inf'])}** {ci(b['after_inf'])}"
        nl = f"{pct(m['nolook_before_240'])} → **{pct(m['nolook_after_240'])}** {ci(b['nolook_after_240'])}"
        up = r["at_p_upper"]
        bound = f"{pct(up['before_240'])} → {pct(up['after_240'])}; → {pct(up['after_inf'])}"
        name = r["name"] + (f" ({r['note']})" if r["note"] else "")
        lines.append(f"| {name} | {r['real']} | {r['n']} | {per} | {' | '.join(ks)} | {k240} | {kinf} | {nl} | "
                     f"{bound} |")
    lines += [
        "",
        "Shares in %, before → **after**. *per session*: counts, the confirmed share's Clopper–Pearson interval in "
        "brackets. *no human look*: the attack ends in a confirmation that no spot check opens, then × (1 − sample "
        "rate).",
        "",
        "### Genuine users: what the hold costs",
        "",
        "| row | REAL / SYNTHETIC | n | per session: confirmed / hold-review / other review / retry "
        "| hold-review per session [Clopper–Pearson] | HELD if retrying until confirmed: h / (p + h) [bootstrap] |",
        "|---|---|---|---|---|---|",
    ]
    for r in gen:
        c, cp, m, b = r["counts"], r["clopper_pearson95"], r["metrics"], r["bootstrap95"]
        name = r["name"] + (f" ({r['note']})" if r["note"] else "")
        lines.append(f"| {name} | {r['real']} | {r['n']} | {c[CONFIRMED]} / {c[HOLD]} / {c[OTHER]} / {c[RETRY]} | "
                     f"{c[HOLD]}/{r['n']} = {pct(c[HOLD] / r['n'])} % {ci(cp[HOLD])} | "
                     f"{pct(m['held_if_retrying'])} % {ci(b['held_if_retrying'])} |")
    lines += ["", res["reading"]]
    return "\n".join(lines)


def reading(res: dict[str, Any]) -> str:
    by = {r["name"]: r for r in res["rows"]}

    def m(name: str, key: str) -> str:
        return pct(by[name]["metrics"][key])

    def b(name: str, key: str) -> str:
        return ci(by[name]["bootstrap95"][key])

    def k(name: str, cls: str) -> str:
        return f"{by[name]['counts'][cls]}/{by[name]['n']}"

    cr, crt, crb = "cued_replay (s11 draw)", "cued_replay (s11) talking_head_a", "cued_replay (s11) blink_7_times_1080p"
    cc, cct = "cued_closer_default", "cued_closer_default talking_head_a"
    pr, st = "print (n = 1798)", "still (n = 1798)"
    holes, adapt = "cut-out: mouth / eyes holes", "cut-out: adaptive cuts"
    ag = "acted_genuine talking_head_a"
    cc_conf = by[cc]["counts"][CONFIRMED]
    cc_unlooked = by[cc]["counts"]["confirmed_unlooked"]
    return "\n".join([
        "**Reading** (generated with the numbers above; the judgement calls are stated as such).",
        "",
        f"- **Without the hold, any per-session rate above zero is only a matter of time.** Cued replays (s11 "
        f"draw) are confirmed in {m(cr, 'before_1')} % of sessions. Within a day of retries that becomes "
        f"{m(cr, 'before_240')} % {b(cr, 'before_240')}. Held-closer cued replays go from {m(cc, 'before_1')} % to "
        f"{m(cc, 'before_240')} % {b(cc, 'before_240')}. Cut-out prints with holes go from {m(holes, 'before_1')} % "
        f"to {m(holes, 'before_240')} % {b(holes, 'before_240')}.",
        f"- **With the hold, the attacker gets little more than his first-session rate.** Once a session is refused "
        f"for PAD, a still or flat face, or another person, none of his later passes count. What he can still win is "
        f"p / (p + h): cued replays {m(cr, 'after_inf')} % {b(cr, 'after_inf')} (talking_head_a footage "
        f"{m(crt, 'after_inf')} %; blink_7 footage {k(crb, CONFIRMED)} confirmed, 0 at any K); held-closer "
        f"{m(cc, 'after_inf')} % {b(cc, 'after_inf')} (talking_head_a footage {m(cct, 'after_inf')} % "
        f"{b(cct, 'after_inf')}); cut-out holes {m(holes, 'after_inf')} %, adaptive cuts {m(adapt, 'after_inf')} %. "
        f"That is the K = 1 rate, or a little above it where some sessions end in a plain RETRY (a missed step with "
        f"PAD passing, or a framing code). A RETRY holds nothing, so it is a free extra try. Prints and stills: 0 "
        f"of 1,798 each confirmed. Even at p's Clopper–Pearson upper bound, a day of retries gives "
        f"{pct(by[pr]['at_p_upper']['before_240'])} % / {pct(by[st]['at_p_upper']['before_240'])} % without the "
        f"hold and {pct(by[pr]['at_p_upper']['after_inf'])} % / {pct(by[st]['at_p_upper']['after_inf'])} % with it. "
        f"Their refusals are mostly missed challenges that PAD also calls spoofs "
        f"({k(pr, HOLD)} / {k(st, HOLD)} hold-reviews): PRESENTATION_ATTACK outranks the missed challenge.",
        f"- **Rows the hold cannot help.** REAL apfol screen replays are already confirmed in "
        f"{m('replay_apfol', 'before_1')} % of sessions: PAD misses them, and they carry no challenge. REAL NUAA "
        f"prints: {m('print_nuaa', 'before_1')} % per session, {m('print_nuaa', 'before_240')} % within a day "
        f"without the hold, {m('print_nuaa', 'after_inf')} % at K → ∞ with it. The hold caps an attack near its "
        f"first-try odds. It does not lower them.",
        f"- **No human look.** The band and the jaw test look at a fixed share of confirmations, however many "
        f"sessions the attacker needed (held-closer replays: {cc_conf - cc_unlooked} of {cc_conf} confirmed sessions "
        f"fall in the PAD band). So the share of attackers confirmed with nobody looking is that rest times the "
        f"success. For held-closer replays that is {m(cc, 'nolook_before_240')} % within a day without the hold and "
        f"{m(cc, 'nolook_after_240')} % {b(cc, 'nolook_after_240')} with it. For cut-out prints with adaptive cuts: "
        f"{m(adapt, 'nolook_before_240')} % → {m(adapt, 'nolook_after_240')} %. For the pad_eval and replay_sweep "
        f"rows the jaw spot checks are not on file, so these figures are upper bounds.",
        f"- **Genuine cost.** The hold-reviews per session are the genuine PAD and flat refusals the tables already "
        f"count (late {k('late', HOLD)}, crops {k('crops', HOLD)}, acted_genuine talking_head_a {k(ag, HOLD)}). A "
        f"genuine user who kept retrying until confirmed would be HELD in h / (p + h) of cases. That is about the "
        f"per-session hold share, because her first outcome other than RETRY decides it. The page offers no retry "
        f"button after a REVIEW (mobile-web/app.js renderOutcome sets `retry.hidden = true` for REVIEW and shows one "
        f"title plus a 'what happens next' line), so she waits for the caseworker with or without the hold. The rule "
        f"changes things only if she starts a new session herself (reloads the page) and passes. Before the hold she "
        f"was confirmed at once, and the first case stayed in the queue. Now that session is HELD_FOR_REVIEW: a "
        f"second case for the same caseworker. She is confirmed once the first case is decided in her favour. "
        f"LOW_MATCH and TOO_MANY_RETRIES, which are what ageing faces and slow users get, hold nothing. acted_genuine "
        f"blink_7 is not a user measure: the clip cannot open its mouth, and its 5 'hold-reviews' are flat or still "
        f"readings of a face that never acted open_mouth.",
        "- **What is real and what is synthetic.** Each row says it, and the README's own sections give the detail: "
        "`pad`, `pad_s11`, `pad_prints`, `replay_sweep` / `audit_band`, `cutout`. The acted, cued and replay rows "
        "share TWO source clips (talking_head_a, blink_7_times_1080p). Prints and stills share one photo pool. Each "
        "cut-out session is a different victim with the same attacker clip. The intervals are about presentations, "
        "not people. replay, print_nuaa and replay_apfol come from pad.json (2026-12-01), whose active decisions "
        "predate the session-13 and session-15 flat-test changes. Their split between hold-review and retry may have "
        "moved: on print / still sessions 0-99, pad_prints found the reason changed in 37 of 200, though never the "
        "confirmation. pad_sessions.json holds only the genuine floor set (no attack rows), so prints and stills come "
        "from pad_prints_n.json.",
        "- **Independence cuts both ways.** It UNDERSTATES a real attacker, who learns. After a refusal he holds the "
        "phone closer, edits his footage, or picks the variant that worked. A fixed good setup has a higher p than "
        "the row's average. Production also repeats the same drawn set, reshuffled, within the session lifetime "
        "(`session_ttl_seconds`, 300 s), so a set his footage can act comes back. It OVERSTATES him where his setup "
        "is fixed and bad: the row mixes clips, phones, rooms and victims that a single attacker does not redraw "
        "(blink_7 cued replays: nothing at any K). With the hold, what he gets for his own setup is p_setup / "
        "(p_setup + h_setup); the tables do not measure that. The model also leaves out the caseworker. Without the "
        "hold, his earlier PAD refusals sit in the review queue while he retries, and a caseworker deciding one may "
        "catch the later confirmation, so 'before' is an upper bound in that respect. With the hold, a case decided "
        "in his favour (a caseworker misjudging the frames) lifts it. And an attacker with many ID numbers is not "
        "slowed by the hold at all: each new victim gives him the per-session rate again.",
        "- **The service** (d3762ad): `_record` applies rules.escalate, then rules.hold while an undecided "
        "verification case of the pensioner has a reason in HOLD_REASONS (`verification.hold_while_in_review`, on by "
        "default), as modelled here. An ASSISTED session (a community worker runs the capture) is not held; an "
        "attacker would need a worker in the room for that, which this section does not model.",
        "- **Not measured**: real attackers retrying; caseworker decision times and hit rates.",
    ])


# -- main ---------------------------------------------------------------------------------------------------------


def place_section(readme_path: Path) -> None:
    """Put this section's markers right after the audit_band section once (update_readme_section fills them)."""
    text = readme_path.read_text(encoding="utf-8")
    if f"<!-- {SECTION}:start -->" in text:
        return
    if AFTER_LINE not in text:
        raise ValueError(f"{AFTER_LINE} not in {readme_path}")
    text = text.replace(AFTER_LINE, f"{AFTER_LINE}\n\n<!-- {SECTION}:start -->\n<!-- {SECTION}:end -->", 1)
    readme_path.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    import time

    from lifecert.config import VerificationSettings
    from lifecert.engine.pad import pad_spec
    from lifecert.services.verification.service import ID_ALL_CLIENTS_FACTOR

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--results", type=Path, default=RESULTS)
    ap.add_argument("--n-sim", type=int, default=N_SIM)
    ap.add_argument("--n-boot", type=int, default=N_BOOT)
    ap.add_argument("--no-readme", action="store_true")
    args = ap.parse_args(argv)
    t0 = time.process_time()
    spec = pad_spec().threshold
    v = VerificationSettings()
    policy = SpotCheckPolicy(sample_rate=v.audit_sample_rate, pad_threshold=spec.value, pad_below=spec.audit_below)
    rng = np.random.default_rng(SEED)
    rows, inputs = load_rows(args.results, spec.value, spec.fusion)
    out_rows = []
    for row in rows:
        r = evaluate(row, policy, v.max_retries_before_review, rng, args.n_sim, args.n_boot)
        r["in_table"] = row.in_table
        out_rows.append(r)
    mism = [f"{r['name']}: {r['counts'][CONFIRMED]} vs file {r['file_confirmed']}" for r in out_rows
            if r["file_confirmed"] is not None and r["file_confirmed"] != r["counts"][CONFIRMED]]
    bad = [x for r in out_rows for x in check_simulation(r)]
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    res: dict[str, Any] = {
        "name": SECTION, "date": now(), "machine": machine(), "commit": commit, "inputs": inputs,
        "assumptions": {
            "hold_reasons": sorted(str(x) for x in HOLD_REASONS), "max_retries": v.max_retries_before_review,
            "rate_limit_per_id_per_hour": v.rate_limit_per_id_per_hour, "id_all_clients_factor": ID_ALL_CLIENTS_FACTOR,
            "pad_threshold": spec.value, "pad_fusion": spec.fusion, "audit_below": spec.audit_below,
            "sample_rate": v.audit_sample_rate, "hold_while_in_review": v.hold_while_in_review, "ks": list(KS),
            "day": DAY, "n_sim": args.n_sim, "n_boot": args.n_boot, "seed": SEED,
            "model": "independent sessions from the row's empirical outcome distribution; stop at the first "
                     "CONFIRMED; rules.escalate; before: any CONFIRMED; after: a CONFIRMED before the first "
                     "hold-review (hold case undecided for all K)",
            "pad_pass": "the session median of P(real) against the SHIPPED 0.7325 (pad_eval.session_record, the "
                        "files' meta), i.e. production's decision; the tables' 2-fold p25 thresholds are not used",
        },
        "confirmed_vs_file": mism or "every row's CONFIRMED count equals the file's own `confirmed` count",
        "simulation_check": ("every K within 4 binomial SE of the closed form" if not bad else "; ".join(bad)),
        "rows": out_rows,
    }
    res["cpu_s"] = time.process_time() - t0
    res["reading"] = reading(res)
    text = readme(res)
    if not args.no_readme:
        place_section(ROOT / "benchmarks" / "README.md")
    publish(SECTION, SECTION, res, text, readme=not args.no_readme)
    if mism or bad:
        print("CHECKS FAILED:", mism, bad, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
