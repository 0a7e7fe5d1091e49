"""Does a user who needs to HEAR the action hint pass, when saying it takes long? Simulated, through the real service.

    python benchmarks/hint_heard.py [--seeds 2]        # ~12 min on one core; writes results + README section

As benchmarks/hint_recovery.py (its frames, turns and virtual clock): the paced service in-process (SQLite, the
real dlib engine, tests/paced_client's SimClock), ``video/talking_head_a.mp4`` at 8 fps, challenges fixed to
``turn_left,blink``. Per session the person turns too little ``first`` ms after the turn_left prompt; the answer
that brings the action hint reaches the phone; the page says it for ``speech`` ms; the person turns fully
``react`` ms after the speech ENDED. Three pages are compared on the same draws (:data:`PAGES`):

- *both*: as mobile-web/app.js now: ``prompt_heard_ms`` (the end of the prompt's speech, ``speech``) and
  ``hint_heard_ms`` / ``hint_heard_code`` (the NEWEST action hint heard, below) with every chunk sent after them:
  production's ``steps.prompt_window``, ``steps.newer_hearing`` and ``steps.hint_window`` then set the window; the
  server's hint clock then counts from the prompt's hearing, and the page drops the action hints of answers to
  chunks that did not carry that report while the prompt is said or heard (app.js ``staleAction``);
- *hint*: the FIRST action hint's report alone (``hint_heard_ms`` = the end of its speech, no code), the page
  before the prompt's report;
- *none*: an older page: the fixed +steps.HINT_EXTRA_WINDOW_MS after the hint.

``speech``: 3000 (about benchmarks/attacks.hint_speech_ms's assumption), 4700 and 6300 (espeak-ng's cmn voice
saying BLINK_FIRMLY / TURN_MORE at the page's rate: README section ``hint_speech``; not a phone's voice).
``prompt``: how long the voice is busy saying the turn prompt itself, from when it appeared: 0 (free when the hint
arrives), 3600 and 6100 (espeak-ng's nod and turn_left prompts, ``hint_speech``). As the page does (app.js
``setHints``): the hint is SHOWN with the first answer that brings it; it is SAID at the first answer bringing it
that finds the voice free and comes more than PROMPT_QUIET_MS after the prompt; the report is the end of that
speech, unless it has not ended HINT_HEARD_WAIT_MS after the hint was shown, or after it was said if that came
later: then the page reports the time it was shown (``text``), while the person still hears it at the end of the
speech and turns then (:class:`PageVoice`, the same voice for both modes). The person turns fully after the FIRST
action hint said. The first, too small
turn still comes ``first`` ms after the prompt APPEARED (the person reads it; one who waits to hear the prompt is
not modelled by default; ``--first-from heard`` models her: see below).
``react``: 1000 and 2700 (issue 12's slowest). ``lag``: extra ms per chunk answer (server +
network). Synthetic: the turn (a warp), the person's timing, the speech times, the network; the face frames and
the engine are real.

``--first-from heard`` (:func:`one_heard`): the person waits until the phone has finished SAYING the turn prompt
(``prompt`` ms after it appeared) and moves ``first`` ms after that. Two kinds (``--kinds``): *full*, her first try
is the full turn; *small*, her first try is too small and she turns fully ``react`` ms after she has HEARD the
TURN_MORE hint it brings. Where nothing moved by ACTION_HINT_AFTER_MS after the hint clock's start (the reveal;
with the *both* page the prompt's hearing), the server's first action hint is DO_ACTION (the page says the prompt
again, as long to say as the prompt), and TURN_MORE comes only after her small turn; the page's one voice is
modelled as app.js ``setHints``/``speak`` do (:class:`PageVoice`: polite, a hint said at the first answer that finds
the voice free, PROMPT_QUIET_MS after the prompt, a changed code at once, the same one again HINT_REPEAT_MS after
its speech ENDED).
The hint report: *both*, the newest hearing known with its code; *hint*, the end of the FIRST action hint's speech.
The default (``--first-from appeared``) is the model above.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._common import int_list, machine, now, publish  # noqa: E402
from benchmarks.hint_recovery import FULL, HINTS, LIMIT_MS, SMALL, TurnBench, turn_bench, turn_phone  # noqa: E402
from lifecert.services.verification import steps  # noqa: E402
from lifecert.storage.models_verification import VerificationSession  # noqa: E402
from tests.paced_client import Phone, VirtualTime  # noqa: E402


def page_ms(name: str) -> int:
    """A ms constant of the pensioner page (``const NAME = 1234;`` in mobile-web/app.js), so that this simulation
    follows the page."""
    m = re.search(rf"const {name} = (\d+);", (ROOT / "mobile-web" / "app.js").read_text(encoding="utf-8"))
    if m is None:
        raise ValueError(f"{name} not found in mobile-web/app.js")
    return int(m.group(1))


PROMPT_QUIET_MS = page_ms("PROMPT_QUIET_MS")
HINT_HEARD_WAIT_MS = page_ms("HINT_HEARD_WAIT_MS")
HINT_REPEAT_MS = page_ms("HINT_REPEAT_MS")
# app.js HINT_PRIORITY among the action hints a turn step can bring (HINTS)
TURN_HINT_ORDER = ("LOOK_BACK", "TURN_MORE", "DO_ACTION")


@dataclass
class Hearing:
    """One action hint the page keeps a hearing record for (app.js ``record``): shown at ``shown`` (client ms), taken
    by the voice at ``said`` (None: not yet) and said until ``end``."""

    code: str
    shown: int
    said: int | None = None
    end: int | None = None

    def done_by(self) -> int:
        """When the page knows the hearing (its report may go from then on): the speech's end, or HINT_HEARD_WAIT_MS
        after it was shown / said without an end by then (then it counts as heard when shown)."""
        if self.said is not None and self.end is not None and self.end - self.said <= HINT_HEARD_WAIT_MS:
            return self.end
        return (self.shown if self.said is None else self.said) + HINT_HEARD_WAIT_MS

    def heard(self) -> tuple[int, str]:
        """(client ms, via) the page reports once :meth:`done_by` has passed."""
        if self.said is not None and self.end is not None and self.end - self.said <= HINT_HEARD_WAIT_MS:
            return self.end, "speech"
        return self.shown, "text"


@dataclass
class PageVoice:
    """The page's one voice as mobile-web/app.js uses it for a challenge step (``setHints`` + ``speak(text,
    polite=true)``): the prompt is said from ``prompt_ms`` for ``prompt_speech`` ms; an action hint code in an
    answer at ``t`` (client ms) is said then if it is due (a code other than the last one said, or the same one
    more than HINT_REPEAT_MS after the END of its last utterance: each thing said once, then again only after a
    pause as long), more than PROMPT_QUIET_MS after the prompt, and the voice is free
    (a polite utterance is dropped, not queued: the next answer tries again). ``lengths``: ms to say each code.

    And what the page reports of hearing them (app.js ``hearing``): ``newest`` (the page now): a record per action
    hint that appears on screen or is said again, the report is the newest hearing known, with its code; else (the
    page before session 10) the step's first action hint only, completed by the first utterance after it, no code.
    ``drops_stale`` (the page now, which reports the prompt's hearing): an answer to a chunk that did not carry the
    prompt's report, once the prompt was heard, shows no action hint, and the records of hints shown but never said
    are forgotten (app.js ``staleAction``).
    No framing hints: only an answer's action hint is modelled (:func:`action_code`). In the page a framing hint
    being said never delays a due action hint (app.js ``preempt`` cancels it), so leaving them out changes no
    action hint's timing here.
    Pure: no clock, no I/O."""

    prompt_ms: int
    prompt_speech: int
    lengths: dict[str, int]
    newest: bool = True
    drops_stale: bool = True
    free_at: int = 0
    spoken: str = ""
    # when the last utterance of ``spoken`` ENDED (app.js ``hintRepeatFrom``: its end / error event; a speech that
    # has not ended HINT_HEARD_WAIT_MS after it was handed over counts from then, but the modelled voice is busy
    # until the end anyway, so a repeat can only come after it: the end is the rule here)
    last_ended_at: int = -(10**9)
    on_screen: str = ""
    said: list[tuple[str, int, int]] = field(default_factory=list)  # (code, began, ended), client ms
    records: list[Hearing] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.free_at = self.prompt_ms + self.prompt_speech

    def _prompt_heard(self, t: int) -> bool:
        """The page knows at ``t`` that the prompt was heard said to its end (within HINT_HEARD_WAIT_MS)."""
        return 0 < self.prompt_speech <= HINT_HEARD_WAIT_MS and t >= self.prompt_ms + self.prompt_speech

    def _pending(self, code: str, t: int) -> Hearing | None:
        """The record of ``code`` whose hearing is not known at ``t`` (app.js ``pendingFor``)."""
        return next((h for h in self.records if h.code == code and h.done_by() > t), None)

    def answer(self, t: int, code: str, told: bool = True) -> tuple[int, int] | None:
        """An answer showing ``code`` ("" = no action hint) arrived at ``t``: (began, ended) if it is said now.
        ``told``: its chunk carried the prompt's report (see ``drops_stale``)."""
        if self.drops_stale and not told and self._prompt_heard(t):
            code = ""
            self.records = [h for h in self.records if h.said is not None or h.done_by() <= t]
        fresh, self.on_screen = code != self.on_screen, code
        if not code:
            self.spoken = ""
            return None
        if fresh and (self.newest or not self.records) and self._pending(code, t) is None:
            self.records.append(Hearing(code, t))
        due = code != self.spoken or t - self.last_ended_at > HINT_REPEAT_MS
        if not (due and t - self.prompt_ms > PROMPT_QUIET_MS and t >= self.free_at):
            return None
        end = t + self.lengths[code]
        self.free_at, self.spoken, self.last_ended_at = end, code, end
        self.said.append((code, t, end))
        if self.newest:
            h = self._pending(code, t)
            if h is None:
                h = Hearing(code, t)
                self.records.append(h)
            h.said, h.end = t, end
        elif self.records and self.records[0].said is None and self.records[0].done_by() > t:
            self.records[0].said, self.records[0].end = t, end  # the first record takes the first utterance
        return t, end

    def report(self, t: int) -> tuple[int, str] | tuple[int, str, str] | None:
        """What a chunk leaving at ``t`` says of hearing a hint: the newest hearing known by then (ms, via, code),
        or (the older page) the first hint's (ms, via); None: nothing known yet."""
        if not self.newest:
            return self.records[0].heard() if self.records and self.records[0].done_by() <= t else None
        known = [h for h in self.records if h.done_by() <= t]
        if not known:
            return None
        h = max(known, key=lambda x: x.heard()[0])
        return (*h.heard(), h.code)


def action_code(hints: list[str]) -> str:
    """The action hint the page shows among a turn step's hints (TURN_HINT_ORDER), or ""."""
    return next((c for c in TURN_HINT_ORDER if c in hints), "")


# what the page reports: nothing (an old page: the fixed +3 s), the first hint's hearing (the page before the
# prompt's report), both the newest hint's and the prompt's (mobile-web/app.js now: PageVoice.newest, drops_stale)
PAGES = ("none", "hint", "both")


@dataclass
class PageReports:
    """The simulated page's reports with each chunk of the turn step (step 1), by ``page`` (:data:`PAGES`): the
    ``heard`` / ``prompt_heard`` callbacks of tests.paced_client.service_sender. ``voice`` and the prompt's
    report are set once the prompt has appeared; ``told`` notes for every chunk sent whether it carried the
    prompt's report (the page drops stale action hints from the answers to those that did not)."""

    page: str
    voice: PageVoice | None = None
    prompt_said: tuple[int, str] | None = None  # the prompt's speech end, "speech"
    told: list[bool] = field(default_factory=list)

    def heard(self, step: int, sent_ms: int) -> tuple[int, str] | tuple[int, str, str] | None:
        if self.page == "none" or step != 1 or self.voice is None:
            return None
        return self.voice.report(sent_ms)

    def prompt_heard(self, step: int, sent_ms: int) -> tuple[int, str] | None:
        ok = self.page == "both" and step == 1 and self.prompt_said is not None and sent_ms >= self.prompt_said[0]
        self.told.append(bool(ok))
        return self.prompt_said if ok else None

    def start(self, prompt: int, prompt_speech: int, lengths: dict[str, int]) -> PageVoice:
        """The turn prompt appeared at ``prompt`` and is said for ``prompt_speech`` ms: its report is that
        speech's end, sent only when it was heard said to its end within HINT_HEARD_WAIT_MS (when it was shown the
        server knows already: prompt_shown_ms)."""
        if self.page == "both" and 0 < prompt_speech <= HINT_HEARD_WAIT_MS:
            self.prompt_said = (prompt + prompt_speech, "speech")
        new = self.page == "both"
        self.voice = PageVoice(prompt, prompt_speech, lengths, newest=new, drops_stale=new)
        return self.voice


def step_answers(phone: Phone, rep: PageReports, voice: PageVoice, code_of: Callable[[list[str]], str]
                 ) -> Iterator[tuple[str, tuple[int, int] | None]]:
    """Walk ``phone`` through its challenge step (step 1) until the step is over, the session decided, or LIMIT_MS +
    HINT_MAX_WINDOW_MS have passed. At each new answer the page's ``voice`` takes the action hint ``code_of`` finds in
    its hints (``rep.told``: did that chunk carry the prompt's report); yields (that code, (began, ended) client ms
    when the voice says it now, else None). The caller may script the phone between yields (hint_heard, slow_move)."""
    n = len(phone.answers)
    end = phone.t + LIMIT_MS + steps.HINT_MAX_WINDOW_MS
    while phone.t < end and not phone.decided and phone.step.index == 1:
        phone.tick()
        if len(phone.answers) == n:
            continue
        n = len(phone.answers)
        code = code_of(list(phone.answers[-1].hints))
        yield code, voice.answer(phone.t, code, rep.told[n - 1])


def one(b: TurnBench, clock: VirtualTime, seed: int, first: int, speech: int, react: int, lag: int,
        page: str, prompt_speech: int = 0) -> dict[str, Any]:
    """One session; the outcome of the turn step, when the hint reached the phone, was said and heard, what the
    page reported, the window. The person turns fully ``react`` ms after the first action hint said ended."""
    svc, clip, small, full = b.service(clock, seed), b.clip, b.small, b.full
    rep = PageReports(page)
    phone = turn_phone(svc, clock, b.who, clip, lag, "10.9.9.8", heard=rep.heard, prompt_heard=rep.prompt_heard)
    if phone is None:
        return {"outcome": "no_turn_step"}
    prompt = phone.prompt_at
    voice = rep.start(prompt, prompt_speech, dict.fromkeys(HINTS, speech))
    phone.script, phone.script_at = list(small), prompt + first
    small_end = prompt + first + len(small) * 125
    hint_at: int | None = None  # shown
    say_at: int | None = None  # its speech began
    heard_at = 0
    for _code, spoke in step_answers(phone, rep, voice, action_code):
        if hint_at is None and voice.on_screen:
            hint_at = phone.t
        if spoke is not None and say_at is None:
            say_at, heard_at = spoke
            phone.script, phone.script_at = list(full), max(heard_at + react, small_end + 125)
    with b.ctx.db.session() as s:
        vs = s.get(VerificationSession, phone.session_id)
        st = {} if vs is None else dict(vs.steps[1])
    hint = st.get("hint") or {}
    out: dict[str, Any] = {"outcome": "seen" if phone.step.index == 2 else "missed",
                           "window_ms": st.get("window_ms"), "rule": hint.get("rule"),
                           "prompt_window_ms": (st.get("prompt_heard") or {}).get("window_ms")}
    if hint_at is not None:
        out["hint_ms"] = hint_at - prompt
    last = voice.report(phone.t)
    if last is not None:
        out |= {"reported_ms": last[0] - prompt, "via": last[1]}
    if say_at is not None:
        out |= {"said_ms": say_at - prompt, "heard_ms": heard_at - prompt,
                "full_turn_ms": max(heard_at + react, small_end + 125) - prompt}
    return out


def one_heard(b: TurnBench, clock: VirtualTime, seed: int, first: int, speech: int, react: int, lag: int,
              page: str, prompt_speech: int, kind: str) -> dict[str, Any]:
    """One session of a person who moves only ``first`` ms after the prompt was HEARD said (``prompt_speech`` ms
    after it appeared): ``kind`` "full" turns fully then; "small" turns too little then and fully ``react`` ms
    after hearing the TURN_MORE that brings. DO_ACTION is said as long as the prompt, other hints ``speech``."""
    svc, clip, small, full = b.service(clock, seed), b.clip, b.small, b.full
    rep = PageReports(page)
    phone = turn_phone(svc, clock, b.who, clip, lag, "10.9.9.8", heard=rep.heard, prompt_heard=rep.prompt_heard)
    if phone is None:
        return {"outcome": "no_turn_step"}
    prompt = phone.prompt_at
    voice = rep.start(prompt, prompt_speech, {"DO_ACTION": prompt_speech, "TURN_MORE": speech, "LOOK_BACK": speech})
    first_at = prompt + prompt_speech + first
    phone.script, phone.script_at = list(full if kind == "full" else small), first_at
    small_end = first_at + len(small) * 125
    hint_at: int | None = None  # the first action hint shown
    full_at: int | None = first_at if kind == "full" else None
    codes: list[str] = []
    for _code, spoke in step_answers(phone, rep, voice, action_code):
        code = voice.on_screen
        if code and (not codes or codes[-1] != code):
            codes.append(code)
        if code and hint_at is None:
            hint_at = phone.t
        if spoke is not None and kind == "small" and full_at is None and code == "TURN_MORE":
            full_at = max(spoke[1] + react, small_end + 125)
            phone.script, phone.script_at = list(full), full_at
    with b.ctx.db.session() as s:
        vs = s.get(VerificationSession, phone.session_id)
        st = {} if vs is None else dict(vs.steps[1])
    hint = st.get("hint") or {}
    out: dict[str, Any] = {"outcome": "seen" if phone.step.index == 2 else "missed", "kind": kind,
                           "window_ms": st.get("window_ms"), "rule": hint.get("rule"),
                           "prompt_window_ms": (st.get("prompt_heard") or {}).get("window_ms"),
                           "first_try_ms": first_at - prompt, "hints": codes,
                           "said": [(c, a - prompt, e - prompt) for c, a, e in voice.said]}
    if hint_at is not None:
        out["hint_ms"] = hint_at - prompt
    last = voice.report(phone.t)
    if last is not None:
        out |= {"reported_ms": last[0] - prompt, "via": last[1]}
        if len(last) > 2:
            out["reported_code"] = last[2]  # type: ignore[misc]
    if hint.get("heard_code"):
        out["kept_code"] = hint["heard_code"]
    if full_at is not None:
        out["full_turn_ms"] = full_at - prompt
    turn_more = [(a, e) for c, a, e in voice.said if c == "TURN_MORE"]
    if turn_more:
        out |= {"turn_more_said_ms": turn_more[0][0] - prompt, "turn_more_heard_ms": turn_more[0][1] - prompt}
    return out


HEAD = ("| prompt said (ms) | speech (ms) | react (ms) | server lag (ms) | seen, both reports | seen, hint report "
        "| seen, no report | hint reached phone | said | heard | hint reported (via) | full turn began "
        "| base window | window (rule) |")


def _of(rs: list[dict[str, Any]], key: str) -> list[Any]:
    return [r[key] for r in rs if r.get(key) is not None]


def cells_of(cells: dict[str, list[dict[str, Any]]], prompt: int, page: str) -> list[dict[str, Any]]:
    """Every session run with the voice busy ``prompt`` ms saying the prompt, by ``page`` (:data:`PAGES`)."""
    return [r for k, v in cells.items() if k.startswith(f"{prompt}/") and k.endswith(f"/{page}") for r in v]


def _seen(rs: list[dict[str, Any]]) -> int:
    return sum(1 for r in rs if r["outcome"] == "seen")


def _span(xs: list[int]) -> str:
    return f"{min(xs)}-{max(xs)}" if xs else "-"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--first", type=int, default=2700, help="ms from the prompt to the too-small turn")
    ap.add_argument("--speech", default="3000,4700,6300", help="ms the page takes to say the hint")
    ap.add_argument("--react", default="1000,2700", help="ms from the end of the speech to the full turn")
    ap.add_argument("--lag", default="0,1000", help="extra ms per chunk answer (server + network)")
    ap.add_argument("--prompt", default="0,3600,6100", help="ms the voice is busy saying the prompt")
    ap.add_argument("--first-from", choices=("appeared", "heard"), default="appeared",
                    help="the first try comes `first` ms after the prompt appeared (default) or was heard said")
    ap.add_argument("--kinds", default="full,small", help="with --first-from heard: full and/or small first try")
    ap.add_argument("--faces", help="the shared faces folder (sets LIFECERT_SHARED_FACES)")
    ap.add_argument("--no-readme", action="store_true")
    a = ap.parse_args()
    if a.faces:
        os.environ["LIFECERT_SHARED_FACES"] = a.faces
    if a.first_from == "heard":
        main_heard(a)
        return
    speeches = int_list(a.speech)
    reacts = int_list(a.react)
    lags = int_list(a.lag)
    prompts = int_list(a.prompt)
    grid = [(p, sp, r, lag) for p in prompts for sp in speeches for r in reacts for lag in lags]
    cells: dict[str, list[dict[str, Any]]] = defaultdict(list)
    with turn_bench(seq=82) as b:
        for p, speech, react, lag in grid:
            for page in PAGES:
                for seed in range(a.seeds):
                    r = one(b, VirtualTime(), seed, a.first, speech, react, lag, page, prompt_speech=p)
                    cells[f"{p}/{speech}/{react}/{lag}/{page}"].append(r | {"seed": seed})
                    print(p, speech, react, lag, page, seed, r, flush=True)
    rows = []
    for p, speech, react, lag in grid:
        by = {page: cells[f"{p}/{speech}/{react}/{lag}/{page}"] for page in PAGES}
        rep = by["both"]
        seen = " | ".join(f"{_seen(by[page])}/{len(by[page])}" for page in PAGES[::-1])
        vias = ", ".join(sorted(set(_of(rep, "via"))))
        rows.append(f"| {p} | {speech} | {react} | {lag} | {seen} | {_span(_of(rep, 'hint_ms'))} | "
                    f"{_span(_of(rep, 'said_ms'))} | {_span(_of(rep, 'heard_ms'))} | "
                    f"{_span(_of(rep, 'reported_ms'))} ({vias}) | {_span(_of(rep, 'full_turn_ms'))} | "
                    f"{_span(_of(rep, 'prompt_window_ms'))} | "
                    f"{_span(_of(rep, 'window_ms'))} ({', '.join(sorted(set(_of(rep, 'rule'))))}) |")
    totals = []
    for p in prompts:
        seen = ", ".join(f"{page} {_seen(rs)}/{len(rs)}" for page in PAGES[::-1] for rs in [cells_of(cells, p, page)])
        texts = sum(1 for r in cells_of(cells, p, "both") if r.get("via") == "text")
        totals.append(f"prompt said {p} ms: seen with {seen} (hint reports that fell back to `text`: {texts})")
    text = f"""## Hinted users who must hear the hint first (`benchmarks/hint_heard.py`)

{now()}; SIMULATED person, real frames and engine, the real paced service on a virtual clock (as `hint_recovery`;
see the script's docstring): a turn too small {a.first} ms after the prompt appeared; the voice is busy saying the
prompt for `prompt said` ms (0: free at once); the action hint is shown with the first answer that brings it (`hint
reached phone`) and said, as the page does, at the first answer bringing it that finds the voice free and comes over
{PROMPT_QUIET_MS} ms after the prompt (`said`), for `speech` ms (`heard`); the full turn begins `react` ms after that
speech ended (the first action hint said). Three pages on the same draws: *both reports* (mobile-web/app.js now):
the page reports when the prompt was heard (its speech's end; the step's base window is then 8 s from it, `base
window`: steps.prompt_window, and the server's action hints wait {steps.ACTION_HINT_AFTER_MS} ms from it; the
page drops the action hints of answers to chunks sent before that report) and when the NEWEST action hint was heard,
with its code (the speech's end, or the time it was shown, `text`, if the speech has not ended {HINT_HEARD_WAIT_MS}
ms after it was shown or said; `hint reported` is the last report; window = max(base +
{steps.HINT_EXTRA_WINDOW_MS} ms, the newest hint's first issue + {steps.HINT_REPORT_MS} ms (`awaiting`), reported
+ {steps.HINT_HEARD_WINDOW_MS} ms), at most {steps.HINT_MAX_WINDOW_MS} ms from the prompt); *hint report*: the
FIRST hint's report alone (the page before the prompt's report); *no report*: the fixed
+{steps.HINT_EXTRA_WINDOW_MS} ms after the hint. Cells: turn step seen /
sessions ({a.seeds} prompt-delay seeds, the same for every page); ms after the prompt appeared (the both-reports
sessions); their windows and the rule that set them. Speech 4700 and 6300 ms are espeak-ng's (NOT a phone's) times
for BLINK_FIRMLY and TURN_MORE, prompt 3600 and 6100 ms its nod and turn_left prompts (`hint_speech`).

{HEAD}
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
{chr(10).join(rows)}

Totals: {"; ".join(totals)}.

Not modelled: a person who waits to HEAR the prompt before the first try (the first try here follows the text on
screen; she is in the next section, `--first-from heard`); one who reacts to the hint's text before it is said; a
phone's voice (none was measured).

Rerun: `python benchmarks/hint_heard.py --seeds {a.seeds} --first {a.first} --speech {a.speech} --react {a.react} \
--lag {a.lag} --prompt {a.prompt}`."""
    data = {"when": now(), "first_ms": a.first, "hint_extra_window_ms": steps.HINT_EXTRA_WINDOW_MS,
            "hint_heard_window_ms": steps.HINT_HEARD_WINDOW_MS, "hint_max_window_ms": steps.HINT_MAX_WINDOW_MS,
            "small_deg": SMALL, "full_deg": FULL, "cells": cells, "machine": machine()}
    publish("hint_heard", "hint_heard", data, text, readme=not a.no_readme)


HEARD_HEAD = ("| prompt said (ms) | first try | speech (ms) | react (ms) | server lag (ms) | seen, both reports "
              "| seen, hint report | seen, no report | first try at | hints (in order) | first hint said-heard "
              "| hint reported (via) | TURN_MORE said-heard | full turn began | base window | window (rule) |")


def main_heard(a: argparse.Namespace) -> None:
    """``--first-from heard``: :func:`one_heard` over the grid; its own README section and results file."""
    speeches, reacts, lags, prompts = int_list(a.speech), int_list(a.react), int_list(a.lag), int_list(a.prompt)
    kinds = [k for k in a.kinds.split(",") if k]
    if not set(kinds) <= {"full", "small"}:
        raise ValueError(f"--kinds: full and/or small, not {a.kinds!r}")
    grid = [(p, k, sp, r, lag) for p in prompts for k in kinds for sp in speeches for r in reacts for lag in lags
            if k == "small" or r == reacts[0]]  # a full first try reacts to no hint: one react value is enough
    cells: dict[str, list[dict[str, Any]]] = defaultdict(list)
    with turn_bench(seq=82) as b:
        for p, kind, speech, react, lag in grid:
            for page in PAGES:
                for seed in range(a.seeds):
                    r = one_heard(b, VirtualTime(), seed, a.first, speech, react, lag, page, p, kind)
                    cells[f"{p}/{kind}/{speech}/{react}/{lag}/{page}"].append(r | {"seed": seed})
                    print(p, kind, speech, react, lag, page, seed, r, flush=True)
    rows = []
    for p, kind, speech, react, lag in grid:
        by = {page: cells[f"{p}/{kind}/{speech}/{react}/{lag}/{page}"] for page in PAGES}
        rep = by["both"]
        seen = " | ".join(f"{_seen(by[page])}/{len(by[page])}" for page in PAGES[::-1])
        orders = sorted({" > ".join(r["hints"]) for r in rep if r.get("hints")}) or ["-"]
        firsts = [x["said"][0] for x in rep if x.get("said")]
        first_said = f"{_span([f[1] for f in firsts])} - {_span([f[2] for f in firsts])}" if firsts else "-"
        tm = f"{_span(_of(rep, 'turn_more_said_ms'))} - {_span(_of(rep, 'turn_more_heard_ms'))}"
        rows.append(f"| {p} | {kind} | {speech} | {react if kind == 'small' else '-'} | {lag} | {seen} | "
                    f"{_span(_of(rep, 'first_try_ms'))} | {'; '.join(orders)} | {first_said} | "
                    f"{_span(_of(rep, 'reported_ms'))} ({', '.join(sorted(set(_of(rep, 'via'))))}) | {tm} | "
                    f"{_span(_of(rep, 'full_turn_ms'))} | {_span(_of(rep, 'prompt_window_ms'))} | "
                    f"{_span(_of(rep, 'window_ms'))} ({', '.join(sorted(set(_of(rep, 'rule'))))}) |")
    totals = []
    for p in prompts:
        for kind in kinds:
            parts = []
            for page in PAGES[::-1]:
                rs = [r for k, v in cells.items() if k.startswith(f"{p}/{kind}/") and k.endswith(f"/{page}")
                      for r in v]
                parts.append(f"{page} {_seen(rs)}/{len(rs)}")
            totals.append(f"prompt said {p} ms, {kind} first try: seen with {', '.join(parts)}")
    m = machine()
    title = "Slow users who wait to HEAR the prompt before trying (`benchmarks/hint_heard.py --first-from heard`)"
    text = f"""## {title}

{now()}; machine: {m["nproc"]} x {m["cpu"]} (shared), Python {m["python"]}.
SIMULATED person, real frames and engine, the real paced service on a virtual clock (as the section above, same
clip, turns and pages on the same draws). The person does nothing until the phone has
finished saying the turn prompt (`prompt said` ms after it appeared: 3600 / 6100 are espeak-ng's nod / turn_left
prompts, NOT a phone's voice), then moves {a.first} ms later (`first try at`, ms after the prompt appeared). *full*:
that first try is the full turn; *small*: it is too small and she turns fully `react` ms after she has HEARD the
TURN_MORE it brings. The server's action hints wait ACTION_HINT_AFTER_MS ({steps.ACTION_HINT_AFTER_MS} ms) from
the reveal, or (*both reports*) from the prompt's reported hearing; where nothing moved by then the first is
DO_ACTION, which the page says as the prompt again (as long as the prompt); *both reports* drops the action hints
of answers to chunks sent before its prompt report (app.js `staleAction`). The page's one voice as app.js
(`PageVoice`: polite, said at the first answer finding it free, over {PROMPT_QUIET_MS} ms after the prompt, a
changed hint at once, the same again {HINT_REPEAT_MS} ms after its speech ENDED); `TURN_MORE said-heard` takes
`speech` ms. The hint
report: *both reports*, the NEWEST action hint heard with its code (`hint reported` is the last one sent);
*hint report*, the step's FIRST action hint's; each the speech's end, or the time it was shown (`text`) past
{HINT_HEARD_WAIT_MS} ms. Windows: `base window` = steps.prompt_window (8 s from the prompt's reported hearing),
`window (rule)` = steps.hint_window (`awaiting`: the newest hint's first issue + {steps.HINT_REPORT_MS} ms, until
its hearing is reported), at most {steps.HINT_MAX_WINDOW_MS} ms. Cells: turn
step seen / sessions, {a.seeds} prompt-delay seed(s) per cell (the same for every page); ms after the prompt
appeared (the both-reports sessions). Reduced grid (CPU budget): only the values listed.

{HEARD_HEAD}
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
{chr(10).join(rows)}

Totals: {"; ".join(totals)}.

Not modelled: real people (every delay here is a fixed number; the person waits for the prompt's speech, not for
DO_ACTION's repeat of it, and ignores the hints on screen until they are said); a phone's voice (espeak-ng's
times; a phone's Mandarin voice may be faster); framing hints competing for the voice; the page's own timers
beyond PageVoice (each answer is one chance to speak).

Rerun: `python benchmarks/hint_heard.py --first-from heard --seeds {a.seeds} --first {a.first} --speech {a.speech} \
--react {a.react} --lag {a.lag} --prompt {a.prompt} --kinds {a.kinds}`."""
    data = {"when": now(), "first_from": "heard", "first_ms": a.first, "kinds": kinds,
            "hint_extra_window_ms": steps.HINT_EXTRA_WINDOW_MS, "hint_heard_window_ms": steps.HINT_HEARD_WINDOW_MS,
            "hint_max_window_ms": steps.HINT_MAX_WINDOW_MS, "small_deg": SMALL, "full_deg": FULL, "cells": cells,
            "machine": machine()}
    publish("hint_heard_prompt", "hint_heard_prompt", data, text, readme=not a.no_readme)


if __name__ == "__main__":
    main()
