"""The READER and the LISTENER over the HTTP API, on real frames through the real engine (issue 12; steps.py "The
READER"): the page reports when the turn prompt was heard SAID (6.1 s, espeak-ng). The action-hint clock counts
from that hearing only for one who had not tried before it:

- the reader tried while the prompt was being said (too small): her TURN_MORE comes back in the answer to the very
  chunk that carries the prompt's report (the page drops the one before: app.js ``staleAction``), i.e. on the
  reveal's clock (due at reveal + 3.5 s), not at the hearing + 3.5 s; its hearing then counts for her window;
- the listener, who had not moved before hearing it, still gets no action hint before the hearing + 3.5 s.

Harness as test_verification_slow_listener (talking_head_a at 8 fps, turned by benchmarks.attacks.turn_head, a
virtual server clock)."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from benchmarks.hint_recovery import FULL, SMALL, turned
from lifecert.engine.base import FaceEngine
from lifecert.services.context import AppContext
from lifecert.services.verification import steps
from tests.integration.test_verification_slow_listener import (
    ACTION_CODES,
    Page,
    Report,
    _listener,
    _stored_step,
    _turn_step_answers,
)

# the fixtures
from tests.integration.test_verification_slow_listener import client as client
from tests.integration.test_verification_slow_listener import clock as clock
from tests.integration.test_verification_slow_listener import vctx as vctx
from tests.integration.verification_support import TEMPLATE_FRAME, VIDEO, enroll, read_video
from tests.paced_client import Answer, Clip, VirtualTime

PROMPT_SAID = 6_100  # espeak-ng's cmn says the turn prompt in 6.1 s at the page's rate (README hint_speech)
TURN_MORE_SAID = 6_300


def test_given_a_reader_who_tried_too_small_while_the_prompt_was_said_then_turn_more_at_once_and_its_hearing_counts(
    client: TestClient, clock: VirtualTime, vctx: AppContext, faces_dir: Path, clip: Clip, frame_engine: FaceEngine,
) -> None:
    p = enroll(vctx, read_video(faces_dir / VIDEO)[TEMPLATE_FRAME], seq=94)
    heard: list[int] = []  # client ms TURN_MORE was heard (said to its end)

    def hint(sent: int) -> Report | None:
        return (heard[0], "speech", "TURN_MORE") if heard and heard[0] <= sent else None

    page = Page(prompt_said=PROMPT_SAID, hint=hint)
    sid, phone = _listener(client, clock, p, clip, page)
    shown = page.prompt_heard_at - PROMPT_SAID  # client ms the prompt appeared
    # she reads the prompt and turns too little 2.7 s after it APPEARED, while the voice is still saying it
    phone.script, phone.script_at = turned(clip, frame_engine, SMALL), shown + 2_700
    assert shown + 2_700 + 125 * len(SMALL) < page.prompt_heard_at
    full = turned(clip, frame_engine, FULL)

    def on_answer(a: Answer) -> None:
        told = page.sends[-1][1]
        # the page says only hints from answers to chunks that carried the prompt's report (app.js staleAction)
        if told and "TURN_MORE" in a.hints and not heard:
            heard.append(phone.t + TURN_MORE_SAID)
            phone.script, phone.script_at = full, heard[0] + 2_700

    rows = _turn_step_answers(phone, len(phone.answers), page, on_answer)
    told = [(s, a.hints) for s, t, a in rows if t]
    assert told, rows
    # the first answer the page keeps carries TURN_MORE: the server re-issued it at once, well before the
    # hearing + ACTION_HINT_AFTER_MS (the listener's clock)
    first_sent, first_hints = told[0]
    assert "TURN_MORE" in first_hints, told
    assert first_sent < page.prompt_heard_at + steps.ACTION_HINT_AFTER_MS - 1_500, (first_sent, page.prompt_heard_at)
    st = _stored_step(vctx, sid)
    ph = st["prompt_heard"]
    assert ph["tried_before"] is True and abs(int(ph["heard_ms_after_prompt"]) - PROMPT_SAID) <= 250, ph
    h = st["hint"]
    # issued again after the report (the earlier issue was forgotten with it), before the listener's due time
    assert int(ph["heard_ms_after_prompt"]) <= int(h["issued"]["TURN_MORE"]) < (
        int(ph["heard_ms_after_prompt"]) + steps.ACTION_HINT_AFTER_MS), h
    # its hearing counts: kept with its code, the window counted from it
    assert heard and h["heard_code"] == "TURN_MORE", h
    assert abs(int(h["heard_ms_after_prompt"]) - (heard[0] - shown)) <= 250, h
    assert st["window_ms"] >= int(h["heard_ms_after_prompt"]) + steps.HINT_HEARD_WINDOW_MS, st
    assert st["state"] == "seen" and phone.step.index == 2, st


def test_given_a_listener_who_had_not_moved_when_the_prompt_was_heard_then_no_action_hint_before_heard_plus_3_5_s(
    client: TestClient, clock: VirtualTime, vctx: AppContext, faces_dir: Path, clip: Clip, frame_engine: FaceEngine,
) -> None:
    p = enroll(vctx, read_video(faces_dir / VIDEO)[TEMPLATE_FRAME], seq=95)
    page = Page(prompt_said=PROMPT_SAID)
    sid, phone = _listener(client, clock, p, clip, page)
    # the same too-small turn, 2.7 s after the prompt was HEARD
    phone.script, phone.script_at = turned(clip, frame_engine, SMALL), page.prompt_heard_at + 2_700
    rows = _turn_step_answers(phone, len(phone.answers), page, limit_ms=20_000)
    due = page.prompt_heard_at + steps.ACTION_HINT_AFTER_MS
    told = [(s, a.hints) for s, t, a in rows if t]
    early = [(s, h) for s, h in told if s < due and set(h) & ACTION_CODES]
    assert told and not early, (early, due)
    later = [h for s, h in told if s >= due]
    assert later and "TURN_MORE" in later[0], (later, due)
    st = _stored_step(vctx, sid)
    assert st["prompt_heard"]["tried_before"] is False, st["prompt_heard"]
    assert int(st["hint"]["issued"]["TURN_MORE"]) >= (
        int(st["prompt_heard"]["heard_ms_after_prompt"]) + steps.ACTION_HINT_AFTER_MS), st["hint"]
