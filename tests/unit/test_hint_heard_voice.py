"""benchmarks/hint_heard.PageVoice: when the simulated page says which action hint (mobile-web/app.js setHints and
a polite speak), the schedule the slow-listener benchmark rests on."""

from __future__ import annotations

from benchmarks.hint_heard import HINT_REPEAT_MS, PROMPT_QUIET_MS, PageVoice, action_code

LENGTHS = {"DO_ACTION": 6100, "TURN_MORE": 6300, "LOOK_BACK": 5200}


def test_given_the_prompt_still_being_said_when_a_hint_comes_then_it_waits_for_the_next_answer_after_it() -> None:
    v = PageVoice(prompt_ms=1000, prompt_speech=6100, lengths=LENGTHS)
    assert v.answer(1000 + 4200, "DO_ACTION") is None  # voice busy with the prompt until 7100
    assert v.answer(1000 + 5200, "DO_ACTION") is None
    assert v.answer(1000 + 6200, "DO_ACTION") == (7200, 7200 + 6100)
    assert v.said == [("DO_ACTION", 7200, 13300)]


def test_given_a_new_hint_while_another_is_said_when_answers_come_then_it_is_said_once_the_voice_is_free() -> None:
    v = PageVoice(prompt_ms=0, prompt_speech=6100, lengths=LENGTHS)
    assert v.answer(6500, "DO_ACTION") == (6500, 12600)
    assert v.answer(10_000, "TURN_MORE") is None  # polite: dropped, not queued
    assert v.answer(12_000, "TURN_MORE") is None
    assert v.answer(13_000, "TURN_MORE") == (13_000, 19_300)
    assert [c for c, _, _ in v.said] == ["DO_ACTION", "TURN_MORE"]


def test_given_the_same_hint_when_it_comes_again_then_it_is_repeated_only_after_the_repeat_interval() -> None:
    v = PageVoice(prompt_ms=0, prompt_speech=0, lengths={"TURN_MORE": 1000})
    assert v.answer(PROMPT_QUIET_MS, "TURN_MORE") is None  # not MORE than PROMPT_QUIET_MS after the prompt
    t = PROMPT_QUIET_MS + 1
    assert v.answer(t, "TURN_MORE") == (t, t + 1000)
    assert v.answer(t + HINT_REPEAT_MS, "TURN_MORE") is None
    assert v.answer(t + HINT_REPEAT_MS + 1, "TURN_MORE") is not None
    assert v.answer(t + HINT_REPEAT_MS + 2000, "") is None  # no hint: the next one is new again
    assert v.answer(t + HINT_REPEAT_MS + 2100, "TURN_MORE") is not None


def test_given_several_turn_hints_when_the_page_picks_then_it_follows_app_js_priority() -> None:
    assert action_code(["DO_ACTION", "TURN_MORE"]) == "TURN_MORE"
    assert action_code(["TURN_MORE", "LOOK_BACK", "MOVE_BACK"]) == "LOOK_BACK"
    assert action_code(["MOVE_BACK"]) == ""
