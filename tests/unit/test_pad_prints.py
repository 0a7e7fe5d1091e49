"""benchmarks/pad_prints.py: the larger-n print/still summary judges pad_eval's per-session records as the main
table does (2-fold: each half by the OTHER half's threshold; shipped: the records' own verdict), keeps only each
kind's contiguous sessions from 0, marks the floor as met only on the interval's upper bound; and pad_eval's plan
gives print/n and still/n the same photo, half and key whatever --per-type asked for (made-up records; the plan
on the real photo pool of ../shared/faces)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from benchmarks import pad_eval
from benchmarks import pad_prints as pp

TWO_FOLD = {"fusion": "p25", "threshold_A": 0.7575, "threshold_B": 0.625}
SHIPPED = 0.7325


def _rec(kind: str, n: int, *, decision: str = "RETRY", reason: str | None = "missed blink",
         median: float | None = 0.1, p25: float | None = 0.1, photo: str = "") -> dict[str, Any]:
    return {"key": f"{kind}/{n}", "kind": kind, "split": "A" if n % 2 == 0 else "B",
            "source": photo or f"/faces/lfw/images/P{kind}{n}/P{kind}{n}_0001.jpg",
            "pad_score": median, "pad_pass": median is not None and median >= SHIPPED,
            "pad_fusions": {"median": median, "p25": p25, "mean": median},
            "active_decision": decision, "active_reason": reason if decision != "CONFIRMED" else None}


def test_given_a_gap_in_the_scored_numbers_when_kept_then_only_the_run_from_0_before_it() -> None:
    recs = [_rec("print", n) for n in (0, 1, 2, 4, 5)] + [_rec("still", n) for n in (1, 2)]
    assert [pp.number(r) for r in pp.contiguous_prefix(recs, "print")] == [0, 1, 2]
    assert pp.contiguous_prefix(recs, "still") == []  # no still/0: nothing is contiguous from 0


def test_given_a_p25_between_the_two_thresholds_when_judged_2fold_then_the_other_halfs_threshold_decides() -> None:
    j = pp.judges(TWO_FOLD, SHIPPED)["pad_2fold"]
    # 0.70: above half B's 0.625 (which judges half A), below half A's 0.7575 (which judges half B)
    assert j(_rec("print", 0, p25=0.70)) is False  # half A: passes PAD
    assert j(_rec("print", 1, p25=0.70)) is True  # half B: rejected
    assert j(_rec("print", 0, p25=None)) is True  # no scored frame: an attack


def test_given_records_when_judged_then_production_confirms_only_active_pass_and_pad_pass() -> None:
    js = pp.judges(TWO_FOLD, SHIPPED)
    confirmed = _rec("still", 0, decision="CONFIRMED", median=0.80, p25=0.80)
    pad_stops = _rec("still", 1, decision="CONFIRMED", median=0.50, p25=0.50)
    flat = _rec("still", 2, decision="REVIEW", reason="flat_photo", median=0.90, p25=0.90)
    assert [js["both_shipped"](r) for r in (confirmed, pad_stops, flat)] == [False, True, True]
    assert [js["active"](r) for r in (confirmed, pad_stops, flat)] == [False, False, True]
    b = pp.breakdown([confirmed, pad_stops, flat], js["pad_shipped"])
    assert (b["active_and_pad"], b["active_only"], b["pad_only"], b["neither"]) == (0, 1, 1, 1)
    assert b["active_group"] == {"passed": 2, "flat photo": 1}


def test_given_a_record_whose_verdict_disagrees_with_its_score_when_judged_then_value_error() -> None:
    r = _rec("print", 0, median=0.80) | {"pad_pass": False}
    with pytest.raises(ValueError):
        pp.judges(TWO_FOLD, SHIPPED)["pad_shipped"](r)


@pytest.mark.parametrize(("k", "n", "want"), [(0, 368, " ✓"), (0, 367, " ~"), (0, 100, " ~"), (2, 100, " ✗")])
def test_given_counts_when_marked_then_met_only_when_the_upper_bound_is_under_1_percent(k: int, n: int,
                                                                                        want: str) -> None:
    # 0/367: upper bound 1.00011 % (rate() rounds it to 0.0100); 0/368: 0.99741 %
    x = pad_eval.rate([{"r": i < k} for i in range(n)], lambda r: not r["r"], True)
    assert pp.mark(x, 0.01) == want


def test_given_sessions_when_summarised_then_rates_and_photo_use_are_counted() -> None:
    recs = [_rec("print", n) for n in range(4)] + [_rec("still", n) for n in range(3)]
    recs.append(_rec("still", 3, photo=recs[0]["source"]))  # the same photo as print/0
    recs.append(_rec("print", 4, decision="CONFIRMED", median=0.9, p25=0.9))
    res = pp.summarize(recs, TWO_FOLD, SHIPPED)
    assert res["kinds"]["print"]["rates"]["both_shipped"]["errors"] == 1
    assert res["kinds"]["print"]["rates"]["both_shipped"]["n"] == 5
    assert res["kinds"]["still"]["pool"]["distinct_photos"] == 4
    assert res["photos_shared_by_print_and_still"] == 1
    assert pp.person_of("/f/lfw/images/Ann_Lee/Ann_Lee_0001.jpg") == "lfw/Ann_Lee"
    assert pp.person_of("/f/spoof/nuaa/real/0003/0003_00_00_01_0.jpg") == "nuaa/0003"
    assert pp.person_of("/f/photos/fr_biden/biden.jpg") == "photos/fr_biden"


def test_given_more_sessions_per_type_when_planned_then_the_first_ones_are_the_same_sessions(faces_dir: Path) -> None:
    def prints(per_type: int) -> dict[str, pad_eval.Spec]:
        specs = pad_eval.select_kinds(pad_eval.plan(faces_dir, per_type, 0, 12, 8), ["print", "still"])
        return {sp.key: sp for sp in specs}

    small, large = prints(20), prints(60)
    assert len(small) == 40 and len(large) == 120
    assert all(large[k] == sp for k, sp in small.items())  # key, half, number, photo: the same
    photos = [sp.files[0] for sp in large.values()]
    assert len(set(photos)) == len(photos)  # no photo twice, prints and stills together
