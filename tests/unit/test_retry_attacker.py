"""benchmarks/retry_attacker.py: production's outcome class of a session on file (rules.decide's order), the retrying
attacker against rules.escalate / rules.hold, the closed forms and their K -> inf limit (hand-made sessions)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmarks import retry_attacker as ra
from lifecert.domain.spotcheck import SpotCheckPolicy

TH = 0.7325
C = ("CONFIRMED", None)
PAD = ("REVIEW", "PRESENTATION_ATTACK")
R = ("RETRY", "CHALLENGE_NOT_SEEN")
LOW = ("REVIEW", "LOW_MATCH")


@pytest.mark.parametrize(("decision", "label", "score", "expected", "cls"), [
    ("CONFIRMED", None, 0.90, ("CONFIRMED", None), ra.CONFIRMED),
    ("CONFIRMED", None, 0.50, ("REVIEW", "PRESENTATION_ATTACK"), ra.HOLD),
    ("CONFIRMED", None, None, ("CONFIRMED", None), ra.CONFIRMED),  # no PAD score is no evidence, not a spoof
    ("RETRY", "missed turn_left", 0.50, ("REVIEW", "PRESENTATION_ATTACK"), ra.HOLD),  # PAD outranks a missed step
    ("RETRY", "missed turn_left", 0.90, ("RETRY", "CHALLENGE_NOT_SEEN"), ra.RETRY),
    ("RETRY", "CHALLENGE_NOT_SEEN", 0.10, ("REVIEW", "PRESENTATION_ATTACK"), ra.HOLD),
    ("RETRY", "TOO_DARK", 0.10, ("RETRY", "TOO_DARK"), ra.RETRY),  # ends before rules.decide: PAD not consulted
    ("RETRY", "NO_FACE", None, ("RETRY", "NO_FACE"), ra.RETRY),
    ("REVIEW", "still_image", 0.10, ("REVIEW", "LIVENESS_FAILED"), ra.HOLD),  # a still image outranks PAD
    ("REVIEW", "flat_photo", 0.10, ("REVIEW", "PRESENTATION_ATTACK"), ra.HOLD),  # PAD outranks a flat photo
    ("REVIEW", "flat_photo", 0.90, ("REVIEW", "LIVENESS_FAILED"), ra.HOLD),
])
def test_given_an_active_decision_and_a_pad_score_when_pad_is_added_then_rules_decide_order(
        decision: str, label: str | None, score: float | None, expected: tuple[str, str | None], cls: str) -> None:
    got = ra.with_pad(decision, label, score, TH)
    assert got == expected
    assert ra.outcome_class(*got) == cls


def test_given_a_code_that_could_be_still_or_flat_when_classed_then_a_hold_either_way_and_unknown_labels_refused(
        ) -> None:
    assert ra.outcome_class(*ra.with_pad("REVIEW", "LIVENESS_FAILED", 0.1, TH)) == ra.HOLD
    assert ra.outcome_class(*ra.with_pad("REVIEW", "LIVENESS_FAILED", 0.9, TH)) == ra.HOLD
    with pytest.raises(ValueError):
        ra.with_pad("REVIEW", "LOW_MATCH", 0.9, TH)  # the active-only files never say this: not guessed
    with pytest.raises(ValueError):
        ra.with_pad("MAYBE", None, 0.9, TH)


@pytest.mark.parametrize(("outcome", "decision", "cls"), [
    ("CONFIRMED", C, ra.CONFIRMED),
    ("REVIEW presentation_attack", PAD, ra.HOLD),
    ("REVIEW flat_photo", ("REVIEW", "LIVENESS_FAILED"), ra.HOLD),
    ("REVIEW DIFFERENT_PERSONS", ("REVIEW", "DIFFERENT_PERSONS"), ra.HOLD),
    ("REVIEW LOW_MATCH", LOW, ra.OTHER),
    ("RETRY blink", R, ra.RETRY),
    ("RETRY MULTIPLE_FACES", ("RETRY", "MULTIPLE_FACES"), ra.RETRY),
])
def test_given_cutout_outcome_labels_when_read_then_production_codes_and_classes(
        outcome: str, decision: tuple[str, str | None], cls: str) -> None:
    assert ra.from_outcome_label(outcome) == decision
    assert ra.outcome_class(*decision) == cls


def test_given_an_unknown_review_label_when_read_then_value_error() -> None:
    with pytest.raises(ValueError):
        ra.from_outcome_label("REVIEW something_else")


def test_given_hand_made_sessions_when_counted_then_classes_and_unlooked_confirmations() -> None:
    pol = SpotCheckPolicy(sample_rate=0.0, pad_threshold=TH, pad_below=0.9389)
    ss = [ra.Session("CONFIRMED", None, 0.99), ra.Session("CONFIRMED", None, 0.80),  # above / in the band
          ra.Session("CONFIRMED", None, 0.99, jaw_flag=True), ra.Session(*PAD, 0.2), ra.Session(*LOW, 0.95),
          ra.Session(*R, 0.9), ra.Session(*R, 0.9)]
    c = ra.counts(ss, pol)
    assert c == {ra.CONFIRMED: 3, ra.HOLD: 1, ra.OTHER: 1, ra.RETRY: 2, "confirmed_unlooked": 1}
    assert ra.spot_checked(ss[1], pol) and ra.spot_checked(ss[2], pol) and not ra.spot_checked(ss[0], pol)


def test_given_retries_in_a_row_when_played_then_the_fourth_escalates_and_the_count_starts_again() -> None:
    seq = [R, R, R, R, R, R, R, R, C]
    for hold_rule in (False, True):  # TOO_MANY_RETRIES is no hold reason: the same with the hold
        got = ra.play(seq, hold_rule)
        assert [d for d, _ in got] == ["RETRY"] * 3 + ["REVIEW"] + ["RETRY"] * 3 + ["REVIEW", "CONFIRMED"]
        assert got[3][1] == "TOO_MANY_RETRIES" and got[7][1] == "TOO_MANY_RETRIES"


def test_given_a_pad_refusal_first_when_played_then_later_passes_are_held_only_with_the_rule() -> None:
    seq = [R, PAD, R, C, C]
    assert ra.play(seq, hold_rule=False)[-1] == C  # before: the first pass confirms
    after = ra.play(seq, hold_rule=True)
    assert len(after) == 5 and all(d != "CONFIRMED" for d, _ in after)
    assert after[3] == ("REVIEW", "HELD_FOR_REVIEW") and after[4] == ("REVIEW", "HELD_FOR_REVIEW")
    # a LOW_MATCH review holds nothing
    assert ra.play([LOW, C], hold_rule=True)[-1] == C


def test_given_p_and_h_when_k_grows_then_the_closed_forms_reach_their_limits() -> None:
    p, h = 0.05, 0.6
    assert ra.success_before(p, 1) == pytest.approx(p) == ra.success_after(p, h, 1)
    assert ra.success_before(p, 240) == pytest.approx(1 - 0.95 ** 240)
    assert ra.success_after(p, h, 10_000) == pytest.approx(p / (p + h))
    assert ra.success_after(p, h, math.inf) == pytest.approx(p / (p + h))
    assert ra.success_before(p, math.inf) == 1.0 and ra.success_before(0.0, math.inf) == 0.0
    # no human look: the unlooked share of confirmations, times the random sample's miss
    assert ra.no_look(0.01, p, h, math.inf, True, 0.02) == pytest.approx(p / (p + h) * 0.2 * 0.98)


def test_given_a_session_pool_when_simulated_with_escalation_then_it_converges_to_p_over_p_plus_h() -> None:
    # p = 0.2, h = 0.3, retry 0.5 (escalated now and then: moves nothing), fixed seed
    ss = [ra.Session(*C, 0.99)] * 2 + [ra.Session(*PAD, 0.1)] * 3 + [ra.Session(*R, 0.9)] * 5
    n = 4000
    sim = ra.simulate(ss, 100_000, n, np.random.default_rng(1), hold_rule=True)
    share = sum(1 for w in sim["won"] if w is not None) / n
    assert sim["open"] == 0
    assert abs(share - 0.4) < 4 * math.sqrt(0.4 * 0.6 / n)
    before = ra.simulate(ss, 3, n, np.random.default_rng(2), hold_rule=False)
    share3 = sum(1 for w in before["won"] if w is not None) / n
    assert abs(share3 - ra.success_before(0.2, 3)) < 4 * math.sqrt(0.488 * 0.512 / n)
