"""The paced step's record of what the page heard (paced._prompt_heard, _hint_heard, _window, check_heard_code), on
plain step dicts as paced.PacedCapture._advance keeps them: the newest hint heard, of a code issued in this step and
not before it was issued, sets the window, which only grows; an older page's uncoded report keeps its old rule."""

from __future__ import annotations

from typing import Any

import pytest

from lifecert.domain.errors import ErrorCode, LifecertError
from lifecert.services.verification import paced, steps


def _step(prompt_heard: int | None = None) -> dict[str, Any]:
    st: dict[str, Any] = {"kind": "challenge", "challenge": "turn_left", "window_ms": steps.CHALLENGE_WINDOW_MS}
    if prompt_heard is not None:
        paced._prompt_heard(st, prompt_heard, "speech")
    return st


def _issue(st: dict[str, Any], code: str, answered: int) -> None:
    """As _advance does when an answer carries action hint ``code`` (chunk arrived ``answered`` ms after the reveal)."""
    if not st.get("hint"):
        st["hint"] = {"code": code, "ms_after_prompt": answered, "answered_ms_after_prompt": answered}
    issued = dict(st["hint"].get("issued") or {})
    if code not in issued:
        st["hint"] = dict(st["hint"]) | {"issued": issued | {code: answered}}
    st["window_ms"] = paced._window(st)


def _report(st: dict[str, Any], heard: int, code: str | None) -> int:
    paced._hint_heard(st, heard, "speech", code)
    st["window_ms"] = paced._window(st)
    return int(st["window_ms"])


def test_given_the_newest_hint_heard_later_when_reported_then_the_window_grows_from_it() -> None:
    st = _step(prompt_heard=6_200)
    _issue(st, "TURN_MORE", 10_800)
    first = _report(st, 14_000, "TURN_MORE")
    assert first == max(10_800 + steps.HINT_REPORT_MS, 14_000 + steps.HINT_HEARD_WINDOW_MS)
    _issue(st, "LOOK_BACK", 13_000)
    later = _report(st, 18_500, "LOOK_BACK")
    assert later == 18_500 + steps.HINT_HEARD_WINDOW_MS > first
    assert st["hint"]["heard_code"] == "LOOK_BACK" and st["hint"]["rule"] == "heard"
    assert "LOOK_BACK heard at 18500" in paced._hint_note(st)["note"]


def test_given_an_older_report_after_a_newer_one_when_reported_then_the_window_never_shrinks() -> None:
    st = _step(prompt_heard=6_200)
    _issue(st, "TURN_MORE", 10_800)
    kept = _report(st, 17_900, "TURN_MORE")
    assert _report(st, 15_000, "TURN_MORE") == kept and st["hint"]["heard_ms_after_prompt"] == 17_900


@pytest.mark.parametrize(("code", "heard"), [("LOOK_BACK", 17_900), ("DO_ACTION", 17_900), ("TURN_MORE", 10_700)])
def test_given_a_report_of_a_code_never_issued_or_before_it_was_when_reported_then_nothing_changes(
    code: str, heard: int
) -> None:
    st = _step(prompt_heard=6_200)
    _issue(st, "TURN_MORE", 10_800)
    before = dict(st["hint"]), st["window_ms"]
    _report(st, heard, code)
    assert (st["hint"], st["window_ms"]) == before


def test_given_hints_issued_before_the_prompt_was_reported_heard_when_their_hearing_comes_then_ignored() -> None:
    # DO_ACTION answered at 4 s while the prompt was still being said: the page dropped it (app.js staleAction)
    st = _step()
    _issue(st, "DO_ACTION", 4_000)
    paced._prompt_heard(st, 6_200, "speech")
    assert st["hint"]["issued"] == {}
    before = dict(st["hint"])
    _report(st, 12_000, "DO_ACTION")
    assert st["hint"] == before | {"rule": st["hint"]["rule"], "extra_window_ms": st["hint"]["extra_window_ms"]}
    assert "heard_ms_after_prompt" not in st["hint"]
    # DO_ACTION issued again after the report: its hearing counts from then
    _issue(st, "DO_ACTION", 10_500)
    assert _report(st, 16_700, "DO_ACTION") == 16_700 + steps.HINT_HEARD_WINDOW_MS


def test_given_a_page_that_reported_the_prompt_when_a_late_hint_is_issued_then_the_step_waits_for_its_report() -> None:
    st = _step(prompt_heard=6_200)
    _issue(st, "TURN_MORE", 10_800)
    assert st["window_ms"] == 10_800 + steps.HINT_REPORT_MS and st["hint"]["rule"] == "awaiting"
    # a page that reported no prompt: the fixed +3 s, as before
    old = _step()
    _issue(old, "TURN_MORE", 10_800)
    assert old["window_ms"] == steps.CHALLENGE_WINDOW_MS + steps.HINT_EXTRA_WINDOW_MS


def test_given_an_older_page_without_a_code_when_it_reports_then_the_first_hint_kept_once() -> None:
    st = _step()
    _issue(st, "DO_ACTION", 4_500)
    _issue(st, "TURN_MORE", 6_000)
    assert _report(st, 9_800, None) == 9_800 + steps.HINT_HEARD_WINDOW_MS
    assert _report(st, 12_000, None) == 9_800 + steps.HINT_HEARD_WINDOW_MS  # the first report only
    assert "heard_code" not in st["hint"]
    # a claim before the hint was sent counts from the answer that carried it (as before)
    early = _step()
    _issue(early, "DO_ACTION", 7_000)
    assert _report(early, 1_000, None) == 7_000 + steps.HINT_HEARD_WINDOW_MS


@pytest.mark.parametrize(("code", "heard_ms"), [("TURN_MORE", None), ("turn_more", 900), ("MOVE_BACK", 900),
                                                ("", 900)])
def test_given_a_bad_hint_code_when_checked_then_a_typed_bad_request(code: str, heard_ms: int | None) -> None:
    with pytest.raises(LifecertError) as e:
        paced.check_heard_code(code, heard_ms)
    assert e.value.code == ErrorCode.BAD_REQUEST


def test_given_every_action_hint_code_when_checked_then_accepted() -> None:
    for code in steps.ACTION_HINT_CODES:
        paced.check_heard_code(code, 900)
    paced.check_heard_code(None, None)
    paced.check_heard_code(None, 900)
