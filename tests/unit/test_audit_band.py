"""benchmarks/audit_band.py and the per-session records it reads: the quantile rule, the audit load, the share of
attacks confirmed with no human look, the random-sample factor and the manifest key (small made-up scores)."""

from __future__ import annotations

import math
import tomllib
from pathlib import Path
from typing import Any

import pytest

from benchmarks import audit_band as ab

ROOT = Path(__file__).resolve().parents[2]


def test_given_genuine_scores_when_the_rule_is_applied_then_audit_below_is_the_interpolated_quantile() -> None:
    scores = [1.00, 0.80, 0.95, 0.85, 0.90]  # order does not matter
    # sorted 0.80 .. 1.00, positions 0..4: q = 0.10 -> position 0.4 -> 0.80 + 0.4 x 0.05
    assert ab.quantile_rule(scores, 0.10) == pytest.approx(0.82)
    assert ab.quantile_rule(scores, 0.50) == pytest.approx(0.90)
    assert ab.quantile_rule(scores, 0.20) == pytest.approx(0.84)
    # rounded to 4 decimals: 0.9 + 0.1 x 0.01234567 = 0.901234567
    assert ab.quantile_rule([0.9, 0.91234567], 0.10) == 0.9012


@pytest.mark.parametrize(("scores", "q"), [([], 0.1), ([0.9], 0.0), ([0.9], 1.0)])
def test_given_no_scores_or_a_q_outside_0_1_when_the_rule_is_applied_then_value_error(scores: list[float],
                                                                                     q: float) -> None:
    with pytest.raises(ValueError):
        ab.quantile_rule(scores, q)


@pytest.mark.parametrize(("k", "n", "lo", "hi"), [(2, 5, 0.1176, 0.7693), (0, 10, 0.0, 0.2775),
                                                   (10, 10, 0.7225, 1.0), (13, 60, 0.1312, 0.3362)])
def test_given_counts_when_the_wilson_interval_is_taken_then_known_answers(k: int, n: int, lo: float,
                                                                           hi: float) -> None:
    """Worked by hand from the Wilson formula (z = 1.96): e.g. 13/60 -> centre 0.2337, half-width 0.1025."""
    got = ab.wilson(k, n)
    assert got == pytest.approx((lo, hi), abs=1e-4)


def test_given_genuine_confirmations_when_the_load_is_measured_then_the_band_plus_the_sample_of_the_rest() -> None:
    scores = [0.75, 0.80, 0.90, 0.95, 0.99]
    g = ab.genuine_load(scores, 0.90, 0.02)
    # strictly below 0.90: 0.75 and 0.80 (a score AT audit_below is above the band)
    assert (g["in_band"]["k"], g["in_band"]["n"]) == (2, 5)
    assert g["load"] == pytest.approx(0.4 + 0.6 * 0.02)
    lo, hi = ab.wilson(2, 5)
    assert g["load_wilson95"] == pytest.approx([lo + (1 - lo) * 0.02, hi + (1 - hi) * 0.02], abs=1e-4)
    assert ab.genuine_load(scores, 0.90, 0.0)["load"] == pytest.approx(0.4)


def _att(score: float | None, confirmed: bool) -> dict[str, Any]:
    return {"session_score": score, "confirmed": confirmed}


def test_given_attack_sessions_when_judged_then_no_look_counts_only_confirmed_ones_at_or_above_the_band() -> None:
    rows = [_att(0.74, True),  # confirmed, in the band: a caseworker looks
            _att(0.95, True), _att(0.90, True),  # confirmed at / above audit_below: nobody looks
            _att(0.96, False),  # above the band but refused by the active checks: not confirmed
            _att(None, False)]  # no face: no score, refused
    a = ab.attack_outcome(rows, 0.90, 0.02)
    assert (a["apcer"]["k"], a["apcer"]["n"]) == (3, 5)
    assert a["in_band"] == 1
    assert (a["no_look_band"]["k"], a["no_look_band"]["n"]) == (2, 5)
    # the random sample still looks at 2 % of them: 0.4 x 0.98
    assert a["no_look_with_sample"] == pytest.approx(0.392)
    lo, hi = ab.wilson(2, 5)
    assert a["no_look_with_sample_wilson95"] == pytest.approx([lo * 0.98, hi * 0.98], abs=1e-4)
    no_band = ab.attack_outcome(rows, -math.inf, 0.02)
    assert no_band["no_look_band"]["k"] == 3 and no_band["in_band"] == 0


def test_given_per_session_results_when_evaluated_then_half_a_chooses_and_half_b_and_acted_are_reported() -> None:
    pad = {"meta": {"threshold": 0.7325, "fusion": "median"}, "sessions": [
        *({"kind": "bona_fide", "source": "slow", "split": "A", "pad_score": s, "confirmed": True}
          for s in (0.80, 0.85, 0.90, 0.95, 1.00)),
        {"kind": "bona_fide", "source": "late", "split": "A", "pad_score": 0.10, "confirmed": False},  # refused
        {"kind": "bona_fide", "source": "tiny", "split": "A", "pad_score": 0.75, "confirmed": True},  # not floor set
        *({"kind": "bona_fide", "source": "video_acted", "split": "B", "pad_score": s, "confirmed": True}
          for s in (0.81, 0.99)),
    ]}
    sweep = {"sessions": [
        {"variant": "cued_closer_default", "session_score": 0.81, "confirmed": True},
        {"variant": "cued_closer_default", "session_score": 0.83, "confirmed": True},
        {"variant": "cued_closer_default", "session_score": 0.20, "confirmed": False},
        {"variant": "acted_genuine", "session_score": 0.97, "confirmed": True},
    ]}
    res = ab.evaluate(pad, sweep, (0.10,), 0.0)
    assert res["genuine_sessions"]["half_A"] == 6 and res["genuine_sessions"]["half_A_confirmed"] == 5
    row = res["per_q"][0]
    assert row["audit_below"] == pytest.approx(0.82)  # from half A's five confirmations only
    assert row["genuine"]["half_B"]["in_band"]["k"] == 1  # 0.81 < 0.82
    assert row["genuine"]["acted_genuine"]["in_band"]["k"] == 0
    cc = row["attacks"]["cued_closer_default"]
    assert cc["apcer"]["k"] == 2 and cc["in_band"] == 1 and cc["no_look_band"]["k"] == 1


def test_given_a_manifest_copy_when_audit_below_is_written_then_only_its_block_is_added_and_rewriting_replaces_it(
    tmp_path: Path,
) -> None:
    from lifecert.engine.pad import pad_spec

    src = ROOT / "models" / "manifest.toml"
    copy = tmp_path / "manifest.toml"
    before = src.read_text()
    copy.write_text(before)
    ab.write_manifest_audit(copy, 0.9412, ["what it is", "how it was chosen"])
    first = copy.read_text()
    assert tomllib.loads(first)["packs"]["minifasnet"]["audit_below"] == 0.9412
    added = [ln for ln in first.splitlines() if ln not in before.splitlines()]
    if "audit_below" not in before:
        assert added == ["# PAD audit band: what it is", "# how it was chosen", "audit_below = 0.9412"]
    ab.write_manifest_audit(copy, 0.95, ["other"])
    assert tomllib.loads(copy.read_text())["packs"]["minifasnet"]["audit_below"] == 0.95
    assert copy.read_text().count("audit_below =") == 1
    ab.write_manifest_audit(copy, 0.9412, ["what it is", "how it was chosen"])
    assert copy.read_text() == first  # the block is replaced, not stacked
    got, was = pad_spec(copy).threshold, pad_spec(src).threshold
    assert got.audit_below == 0.9412  # what the spot checks read (lifecert.engine.pad)
    # the PAD threshold table is untouched
    assert (got.value, got.fusion, got.apcer, got.bpcer, got.dataset, got.date) == (
        was.value, was.fusion, was.apcer, was.bpcer, was.dataset, was.date)
    with pytest.raises(ValueError):
        ab.write_manifest_audit(copy, 1.5, ["bad"])
    assert copy.read_text() == first  # bad input: nothing changed


def test_given_pad_eval_rows_when_recorded_then_confirmed_needs_the_active_checks_and_pad_at_the_threshold() -> None:
    from benchmarks import pad_eval as pe

    def row(score: float, active_reject: bool) -> dict[str, Any]:
        return {"name": "slow/x/0", "kind": "bona_fide", "source": "slow", "split": "A", "challenges": ["blink"],
                "pad": {"mean": score, "median": score, "p25": score}, "pad_frames": 14,
                "decision": "REJECTED" if active_reject else "CONFIRMED", "reject_reason": None,
                "active_reject": active_reject}

    ok = pe.session_record(row(0.80, False), 0.7325, "median")
    assert ok["confirmed"] and ok["pad_pass"] and ok["pad_score"] == 0.8
    assert not pe.session_record(row(0.80, True), 0.7325, "median")["confirmed"]  # active checks refuse
    low = pe.session_record(row(0.70, False), 0.7325, "median")
    assert not low["pad_pass"] and not low["confirmed"]
    none = pe.session_record(row(float("nan"), False), 0.7325, "median")
    assert none["pad_score"] is None and not none["confirmed"]


def test_given_kinds_when_the_plan_is_restricted_then_kind_or_source_matches_and_order_is_kept() -> None:
    from benchmarks import pad_eval as pe

    specs = [pe.Spec("slow/a/0", "bona_fide", "slow", "A"), pe.Spec("cued_replay/a/0", "cued_replay", "a", "A"),
             pe.Spec("nuaa/real/1", "bona_fide", "crops", "A"), pe.Spec("tiny/t", "bona_fide", "tiny", "B")]
    assert [s.key for s in pe.select_kinds(specs, ["slow", "crops"])] == ["slow/a/0", "nuaa/real/1"]
    assert [s.key for s in pe.select_kinds(specs, ["cued_replay"])] == ["cued_replay/a/0"]
    assert len(pe.select_kinds(specs, [])) == 4


def test_given_sweep_sessions_when_recorded_then_only_cued_and_acted_rows_have_a_confirmation() -> None:
    from benchmarks import replay_sweep as rs

    cued = rs.session_record({"variant": "cued_closer_default", "clip": "c", "number": 3, "session_score": 0.9,
                              "pad_attack": False, "active_pass": True, "decision": "CONFIRMED", "reason": None})
    assert cued["confirmed"] is True and cued["split"] == "B"
    refused = rs.session_record({"variant": "cued_closer_default", "clip": "c", "number": 2, "session_score": 0.9,
                                 "pad_attack": False, "active_pass": False, "decision": "REJECTED", "reason": "x"})
    assert refused["confirmed"] is False and refused["split"] == "A"
    plain = rs.session_record({"variant": "closer_default", "clip": "c", "number": 0, "session_score": 0.9,
                               "pad_attack": False})
    assert plain["confirmed"] is None and plain["active_pass"] is None and plain["pad_pass"] is True


def test_given_the_repository_manifest_when_read_then_audit_below_lies_above_the_pad_threshold_and_at_most_1() -> None:
    from lifecert.engine.pad import pad_spec

    pack = tomllib.loads((ROOT / "models" / "manifest.toml").read_text())["packs"]["minifasnet"]
    assert "audit_below" in pack  # helper code reads this key by this name; its absence means no grey band
    assert pad_spec().threshold.value < float(pack["audit_below"]) <= 1.0
    assert pad_spec().threshold.audit_below == pack["audit_below"]  # the spot checks' reader finds it
