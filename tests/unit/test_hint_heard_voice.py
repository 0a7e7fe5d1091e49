"""benchmarks/hint_heard.PageVoice: when the simulated page says which action hint (mobile-web/app.js setHints and
a polite speak), the schedule the slow-listener benchmark rests on."""

from __future__ import annotations

from benchmarks.hint_heard import HINT_HEARD_WAIT_MS, HINT_REPEAT_MS, PROMPT_QUIET_MS, PageVoice, action_code

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
    end = t + 1000
    assert v.answer(end + HINT_REPEAT_MS, "TURN_MORE") is None
    assert v.answer(end + HINT_REPEAT_MS + 1, "TURN_MORE") == (end + HINT_REPEAT_MS + 1, end + HINT_REPEAT_MS + 1001)
    assert v.answer(end + HINT_REPEAT_MS + 2000, "") is None  # no hint: the next one is new again
    assert v.answer(end + HINT_REPEAT_MS + 2100, "TURN_MORE") is not None


def test_given_a_hint_longer_to_say_than_the_repeat_interval_when_it_comes_again_then_not_before_that_after_its_end(
) -> None:
    # espeak-ng says TURN_MORE in 6.3 s at the page's rate, longer than HINT_REPEAT_MS (6 s): counted from when it
    # began, it was said again at the first answer after its end (0.3-0.9 s later in Chromium), twice back to back
    v = PageVoice(prompt_ms=0, prompt_speech=3000, lengths=LENGTHS)
    t = 9_000
    end = t + LENGTHS["TURN_MORE"]
    assert LENGTHS["TURN_MORE"] > HINT_REPEAT_MS
    assert v.answer(t, "TURN_MORE") == (t, end)
    for a in range(end, end + HINT_REPEAT_MS + 1, 100):  # an answer every 0.1 s, from its end for HINT_REPEAT_MS
        assert v.answer(a, "TURN_MORE") is None, a
    again = end + HINT_REPEAT_MS + 1
    assert v.answer(again, "TURN_MORE") == (again, again + LENGTHS["TURN_MORE"])
    assert [(c, b) for c, b, _ in v.said] == [("TURN_MORE", t), ("TURN_MORE", again)]


def test_given_several_turn_hints_when_the_page_picks_then_it_follows_app_js_priority() -> None:
    assert action_code(["DO_ACTION", "TURN_MORE"]) == "TURN_MORE"
    assert action_code(["TURN_MORE", "LOOK_BACK", "MOVE_BACK"]) == "LOOK_BACK"
    assert action_code(["MOVE_BACK"]) == ""


def test_given_hints_heard_one_after_another_when_the_page_reports_then_the_newest_with_its_code() -> None:
    v = PageVoice(prompt_ms=0, prompt_speech=3000, lengths=LENGTHS)
    assert v.answer(9_000, "TURN_MORE") == (9_000, 15_300)
    assert v.report(15_299) is None  # not heard yet
    assert v.report(15_300) == (15_300, "speech", "TURN_MORE")
    assert v.answer(16_000, "LOOK_BACK") == (16_000, 21_200)
    assert v.report(20_000) == (15_300, "speech", "TURN_MORE")
    assert v.report(21_200) == (21_200, "speech", "LOOK_BACK")


def test_given_the_page_before_session_10_when_it_reports_then_the_first_hint_only_and_no_code() -> None:
    v = PageVoice(prompt_ms=0, prompt_speech=3000, lengths=LENGTHS, newest=False, drops_stale=False)
    assert v.answer(9_000, "TURN_MORE") == (9_000, 15_300)
    assert v.answer(16_000, "LOOK_BACK") == (16_000, 21_200)
    assert v.report(30_000) == (15_300, "speech")


def test_given_a_hint_never_said_when_the_page_waits_then_it_counts_as_heard_when_shown() -> None:
    v = PageVoice(prompt_ms=0, prompt_speech=6100, lengths=LENGTHS)
    assert v.answer(4_000, "TURN_MORE") is None  # the voice is saying the prompt; the hint is on screen
    assert v.report(4_000 + HINT_HEARD_WAIT_MS - 1) is None
    assert v.report(4_000 + HINT_HEARD_WAIT_MS) == (4_000, "text", "TURN_MORE")


def test_given_the_prompt_heard_when_an_answer_to_a_chunk_sent_before_that_comes_then_its_action_hint_is_dropped(
) -> None:
    v = PageVoice(prompt_ms=1000, prompt_speech=6100, lengths=LENGTHS)
    assert v.answer(5_000, "TURN_MORE", told=False) is None and v.on_screen == "TURN_MORE"  # shown, not said
    # the prompt was heard at 7100; this chunk left before it: stale, not shown, not said, its record forgotten
    assert v.answer(7_300, "TURN_MORE", told=False) is None and v.on_screen == ""
    assert v.report(5_000 + HINT_HEARD_WAIT_MS) is None
    # the server, told, gives hints again 3.5 s after the hearing: said at once
    assert v.answer(10_700, "TURN_MORE", told=True) == (10_700, 17_000)
    assert v.report(17_000) == (17_000, "speech", "TURN_MORE")
    # a page that does not report the prompt keeps every hint
    old = PageVoice(prompt_ms=1000, prompt_speech=6100, lengths=LENGTHS, drops_stale=False)
    assert old.answer(7_300, "DO_ACTION", told=False) == (7_300, 13_400)
