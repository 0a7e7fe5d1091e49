"""Server-paced capture: the rules of one step, on plain data (no database, no images).

A paced session is a settle step (index 0) followed by the challenge steps. The client sends
small chunks of frames; after each chunk the server judges the current step from ALL frames
of that step received so far:

- settle: a face must be steady in the frame (no framing issue, little motion) for
  ``SETTLE_STEADY_MS``; those frames give the pensioner's own baseline (open-eye EAR, mouth,
  yaw, pitch) that every challenge is measured against;
- a challenge: counted only from frames captured at least ``MIN_REACTION_MS`` after the
  server's reveal time, and only if the face was at rest there first — an action already under
  way when the prompt appeared (a pre-cued clip, a spontaneous blink) does not count; the user
  simply does it again within the generous window.

Time: every frame carries the client's ms since its capture start; the server maps it onto its
own clock (ms since the session was created) with ``offset = min(received_ms - sent_ms)`` over
the chunks so far (``sent_ms``: the client ms when the request left; without it, the chunk's
newest frame). That bound is never earlier than the truth for an honest client, so frames cannot
be made to look later than they arrived, and time a chunk spent queued on the phone is not
mistaken for a later capture (:func:`update_offset`).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lifecert.config import QualitySettings
from lifecert.domain.errors import ErrorCode
from lifecert.engine.eyes import decode as decode_eyes
from lifecert.engine.eyes import encode as encode_eyes
from lifecert.engine.geometry import five_from_68
from lifecert.engine.liveness import (
    RIGID_IDX,
    Baseline,
    FlatCheck,
    FrameObs,
    LivenessParams,
    Signals,
    baseline_over,
    detect_blink_any,
    detect_nod,
    detect_open_mouth,
    detect_turn,
    flat_check,
    landmark_motion,
    signals,
    track_breaks,
)
from lifecert.engine.planarity import PlanarityCheck, nose_parallax
from lifecert.engine.types import Face
from lifecert.services.verification.frames import framing_issue, quality_score

MIN_REACTION_MS = 250  # a response beginning sooner after the prompt than this is not human
SETTLE_WINDOW_MS = 20_000  # time to get the face steady in the oval before the session gives up
SETTLE_STEADY_MS = 800  # steady this long (with at least SETTLE_MIN_FRAMES frames)
SETTLE_MIN_FRAMES = 5
# Mean rigid-landmark displacement from the run's mean shape / face width. The talking-head video
# (8 fps, 0.8 s runs) gives p50 0.058, p90 0.100, max 0.143; a face entering the frame moves > 0.3.
SETTLE_MAX_MOTION = 0.15
CHALLENGE_WINDOW_MS = 8_000  # from the reveal; elderly users react 1.8-2.7 s late (issue 12)
MAX_SEND_LAG_MS = 60_000  # a chunk may wait on the phone this long behind a slow request (page: 30 s + retry)
UPLOAD_GRACE_MS = 4_000  # a step also ends when no frame past its window arrived this long after it
PROMPT_DELAY_MS = (300, 1500)  # random jitter between the answer that reveals a prompt and the prompt
SESSION_FPS = 8  # the page's capture rate for the whole session (sent as PacedStart.fps)
FAST_FPS = 15  # the page's upper clamp (mobile-web/app.js); see capture_fps
CHUNK_MAX_FRAMES = 12  # at SESSION_FPS (1.5 chunk intervals: a chunk may wait behind a slow answer)
CHUNK_MS = 1000  # the client is asked to send a chunk about this often
SESSION_MAX_FRAMES = 400  # at SESSION_FPS: 20 s of settle + 3 challenge steps of 10 s (STEP_FRAMES_MS)
STEP_FRAMES_MS = PROMPT_DELAY_MS[1] + CHALLENGE_WINDOW_MS + 500  # a challenge step's longest capture
# Frames per chunk scored by the PAD model (~13 ms a frame, both nets): 2 of ~8 gives ~2 scored frames a
# second, 12-20 per session for the median fusion (pad calibrated the threshold on session medians).
PAD_FRAMES_PER_CHUNK = 2
# A face box wider than this fraction of the frame is too close for the PAD model's context crops
# (2.7x and 4.0x the box no longer fit, the crop shrinks onto the face): benchmarks/pad_exposure.py
# --crop-study, real talking-head frames at a box of 0.75-0.92 of the width had 3-6 of 12 frames under
# the PAD threshold, 0.54-0.64 none; pad_eval's last full run, per frame: genuine faces at 0.5-0.72 of
# the width median P(real) 0.95-1.0, at 0.8 and over 0.66-0.75. The page then says "hold the phone a
# little further away" (MOVE_BACK).
TOO_CLOSE_FRACTION = 0.72
# The settle step waits this long (counted from the first frame with a face) for a face that is not too
# close before it starts the challenges, so the PAD frames are taken at a distance where the model sees
# the face's surroundings (and an attacker must show what is around the screen). After it the face is
# accepted as it is: a user who cannot comply is never stuck, only judged on closer frames.
SETTLE_FRAMING_WAIT_MS = 8_000

# An action hint ("turn a little further", "blink firmly") is added to a challenge step's answer once the
# step's newest frame is this long after the reveal (after the prompt's reported hearing where the page reports
# it: see "The slow LISTENER" below) and the action has not been seen. Elderly users begin
# acting up to ~2.7 s after a prompt (issue 12) and a slow turn or nod takes ~0.6-0.8 s to reach its
# furthest point (tests/e2e/fake_camera.POSE_RAMP_MS): by 3.5 s their first try is in the frames. The
# hint reaches the phone with the answer to that chunk (about 4-4.5 s after the prompt, chunks go every
# CHUNK_MS), which leaves >= 3.5 s of the CHALLENGE_WINDOW_MS to do it again, further.
ACTION_HINT_AFTER_MS = 3_500
# challenge -> the hint asking for it more firmly (turns: TURN_MORE only after some turn the right way,
# else DO_ACTION, the page repeating the prompt; a turn or nod held past the threshold: LOOK_BACK / LOOK_UP;
# see action_hint)
ACTION_HINT: dict[str, str] = {"blink": "BLINK_FIRMLY", "open_mouth": "OPEN_WIDER", "nod": "NOD_MORE"}
# framing hints an action hint goes before (see step_hints)
ACTION_FIRST = frozenset({"MOVE_BACK"})
# every code action_hint can return (tests/unit/test_action_hints.py checks it against what it returns)
ACTION_HINT_CODES = frozenset({"TURN_MORE", "LOOK_BACK", "DO_ACTION", *ACTION_HINT.values(), "LOOK_UP"})
# A step's window grows by this much, once, when its first action hint is given (paced.py), unless the page
# reports when the hint was heard (below). Measured by benchmarks/hint_recovery.py (simulated person, real engine
# and service): the hint reaches the phone 3.8-5.1 s after the prompt (server + network lag 0-1 s) and a full turn
# counts only if it begins by ~7.3-7.5 s of an 8 s window, i.e. within ~2.5 s of the hint. 3 s more lets a turn
# begin up to ~10.3 s after the prompt: enough only if saying the hint is short.
HINT_EXTRA_WINDOW_MS = 3_000
# How long saying a hint takes was never measured on a phone. Measured on this machine instead (NOT a phone's
# voice): Debian's espeak-ng 1.51, voice cmn, 149 words/min (its default 175 x the page's rate 0.85), the zh texts
# of mobile-web/i18n.js, voiced length of the synthesised audio (deterministic, one synthesis per text;
# benchmarks/hint_speech.py, README section hint_speech):
# TURN_MORE 6.3 s, NOD_MORE 5.9, LOOK_BACK 5.2, LOOK_UP 5.0, BLINK_FIRMLY 4.7, OPEN_WIDER 4.7; the prompts
# turn_left/right 6.1 and 6.0, nod 3.6, open_mouth 3.4, blink 1.9 (at rate 1.0: hints 3.9-5.3 s). A phone's
# Mandarin voice may be faster (benchmarks/attacks.hint_speech_ms assumes 2.9-3.6 s), but with a voice like this
# one a hint heard ~9-13 s after the prompt leaves the +3 s window already closed (benchmarks/hint_heard.py,
# simulated: turns begun 1-2.7 s after hearing a hint said in 3-6.3 s are seen 12/24 with +3 s, 24/24 with the
# report below).
# So the page reports when the hint was HEARD (paced.py ``hint_heard_ms``: the end of its utterance, or when its
# text was shown where nothing is spoken), on the frames' clock, and the step then runs at least
# HINT_HEARD_WINDOW_MS past that moment: an elderly user reacts up to ~2.7 s after hearing (issue 12), a slow
# turn takes 0.6 s out, is held 0.6 s and comes back in 0.6 s (tests/e2e/fake_camera.POSE_RAMP_MS, POSE_HOLD_MS),
# and counts once it is back under half the threshold (liveness.detect_turn), ~1.5 s after it began: 4.2 s, plus
# 0.8 s for the camera's frame interval, the speech engine's end event and a slower arm.
HINT_HEARD_WINDOW_MS = 5_000
# ... but a report can never make a step's window longer than this from the prompt (a hostile client may report any
# time). The latest honest hearing is that of the slow listener (issue 12, benchmarks/hint_heard.py --first-from
# heard): the voice says the turn prompt for 6.1 s (espeak-ng, README hint_speech) and she waits for its end; she
# turns too little 2.7 s later, so the first action hint is due ACTION_HINT_AFTER_MS after the prompt's reported
# hearing (below: 6.1 + 3.5 = 9.6 s) and is TURN_MORE; the chunk holding that frame leaves up to CHUNK_MS later
# (10.6 s) and its answer comes back up to 1 s later (server + network lag: 11.6 s); TURN_MORE is said at once (the
# page said no DO_ACTION over the prompt, see below, and a framing hint it is saying, e.g. MOVE_BACK begun as the
# prompt's speech ended, is cancelled for it: mobile-web/app.js setHints ``preempt``) and heard 6.3 s later
# (17.9 s); she then has HINT_HEARD_WINDOW_MS: 22.9 s. (Without the preemption a framing hint begun by prompt end
# + 1 s and said for M s delays TURN_MORE to that end + the next answer, i.e. by up to M - 3.5 s: espeak-ng says
# MOVE_BACK in 3.2 s voiced / 3.6 s audio, FACE_NOT_CENTRED 4.6 / 5.0, NO_FACE 6.2 / 6.6, so a transient NO_FACE
# after the prompt cost up to +2.7 s, heard + 5 s past the 24 s cap (arithmetic); e2e, one run: a MOVE_BACK stubbed
# at 10 s timed the nod step out, its NOD_MORE said 7.2 s after it was shown.) But HINT_HEARD_WINDOW_MS holds a
# 0.6 s movement (4.2 s + 0.8 s); if she also MOVES slowly (benchmarks/slow_move.py's slowest profile, a stiff neck:
# 2.5 s out, held 1.5 s, eased back over 2.5 s, of which 1.48 s to half the threshold from a 35-degree warp's yaw
# change of 0.306) her full turn counts 2.7 + 2.5 + 1.5 + 1.48 s = 8.2 s after hearing TURN_MORE, + the same 0.8 s:
# 9.0 s, i.e. 17.9 + 9.0 = 26.9 s, plus ~0.1 s for the client clock mapping (its offset is never earlier than the
# truth): 27 s. But her slow small try reaches the at-rest bound that makes the hint TURN_MORE (not DO_ACTION) only
# when it is nearly at its furthest point: at the stiff neck's pace 0.7-0.9 s after the 3.5 s counted above, and the
# answer then waits for the next chunk, so TURN_MORE is due up to ~1 s later: 27.9 s; + ~1 s of margin for what this
# arithmetic does not model (a slower phone voice, a frame dropped at the bound): 29 s (session 11, below).
# (Before session 10 the cap was 20 s: the hint counted from the reveal, DO_ACTION was said first, and her TURN_MORE
# was heard up to 20.1 s after the prompt, past the cap; then 24 s from the 22.9 s alone, which left
# the slow mover cut off: slow_move retry_heard 2.0/2.5 s 3/4 and 1/4, her full turn back at 24.9-26.4 s. The
# reader is served by the hint clock below; the 27 s are for the slow listener who moves slowly. Measured in session
# 11, benchmarks/slow_move.py --modes listener, simulated, README section slow_combo: once DO_ACTION_AFTER_MS below
# let her TURN_MORE be said at once, 192/192; but her slow small turn reaches the at-rest bound that makes the hint
# TURN_MORE ~0.7-0.9 s after the 3.5 s this arithmetic assumes, so with a 6.1 s prompt, 1 s of lag and the 2.5 s
# pace her turns counted 26.2-27.2 s after the prompt, 2 of 8 up to 162 ms past the then 27 s cap, seen only because
# the chunk crossing the window's end carried them: no margin left; so 29 s since (README slow_combo: that cell rerun
# with 29 s).)
# (A report cannot map later than its own request's arrival anyway: hint_heard_ms <= sent_ms and the clock offset
# <= arrival - sent_ms; a step with the fixed window ends by 11 s + UPLOAD_GRACE_MS = 15 s.) What a longer window
# gives an attacker is time, which a cued replay does not lack (it re-cues in 0.8-1.5 s); what it costs the
# server is frames, counted by session_max_frames: a step held to the cap adds 21 s of frames (168 at 8 fps, 315 at
# the blink step's 15 fps; with the 27 s cap 152 and 285, with 24 s 128 and 240, with 20 s 96 and 180), only for a
# step whose page reported it or whose head (mouth) was moving at the window's end; a user who never acts waits at
# most the cap (+ a chunk) per step, 29 s (was 27 s).
HINT_MAX_WINDOW_MS = 29_000
# A page that reports hearings (it reported the step's prompt heard) gets a step held open after the first issue of
# its newest action hint code until the report of hearing it can arrive: the answer's way back (server + network
# lag, <= 1 s), saying it (TURN_MORE 6.3 s, espeak; at once: the page cancels a framing hint for it, see above), the
# next chunk (CHUNK_MS): 8.3 s, + 0.7 s for the clock mapping and a frame interval. Without it the slow listener's
# TURN_MORE, due 3.5 s after her prompt's hearing, is heard ~17.9 s after the prompt, after the fixed window (8 s
# from hearing the prompt + 3 s = 17.1 s) closed
# (hint_heard --first-from heard, simulated: the first version of session 10 missed 1 of 2 such sessions). The
# window then runs to the heard + HINT_HEARD_WINDOW_MS the report gives (:func:`hint_window` rule ``awaiting``).
HINT_REPORT_MS = 9_000
# The same report for the step's PROMPT (paced.py ``prompt_heard_ms``/``prompt_heard_via``, when its speech ended).
# With a voice like espeak's a turn prompt takes ~6.1 s to say; the action hint, due ACTION_HINT_AFTER_MS after the
# reveal, waits for it (the page never speaks over the prompt), is said from ~7 s and heard ~13 s after the prompt:
# by then the hinted step's CHALLENGE_WINDOW_MS + HINT_EXTRA_WINDOW_MS had closed, and the report of hearing the
# hint came too late to extend it (benchmarks/hint_heard.py, simulated, prompt said in 6.1 s: turns 1-2.7 s after
# hearing a hint said in 3-6.3 s seen 14/24 with the hint's report alone, 24/24 with the prompt's too). So a
# step whose prompt is reported heard runs CHALLENGE_WINDOW_MS from then (:func:`prompt_window`), an action hint
# adds to that (:func:`hint_window`'s ``base``), within the same HINT_MAX_WINDOW_MS.
# What it opens: a client can hold ANY challenge step open up to HINT_MAX_WINDOW_MS (before, only a hinted one);
# the frame budget counts it (paced.extended_steps), and pad_eval still models only the fixed windows.
#
# The slow LISTENER (session 10; issue 12: "a slow elderly user must pass"): she waits until the phone has SAID the
# prompt, then tries. With the hint clock counted from the reveal she had not moved by ACTION_HINT_AFTER_MS (she
# was still listening), so the first action hint was DO_ACTION, which the page said right after the prompt (the
# whole prompt again, 3.6-6.1 s), the TURN_MORE her too-small try then needed waited behind it, and the step's
# window counted from hearing DO_ACTION, not TURN_MORE (hint_heard --first-from heard, production page: seen 10/24
# with a 3.6 s prompt, 2/24 with 6.1 s; a full first try 24/24). Three rules since:
# 1. once the prompt is reported heard, the action-hint clock starts then (:func:`action_hint`'s ``since_ms``): no
#    action hint before the prompt's hearing + ACTION_HINT_AFTER_MS, the same 3.5 s a reader gets from the reveal.
#    Without a report it counts from the reveal, as before. The report is bounded like every other (mapped no later
#    than its request's arrival, never before the reveal); a client that claims a late hearing only delays its own
#    hints, and its window is capped as any. The report can only reach the server with the first chunk sent after
#    the prompt's speech ended: hints the server gave before it knew (answers to chunks that did not carry it) the
#    page does not show or say (mobile-web/app.js ``staleAction``), or DO_ACTION would still be said first.
#    The READER (session 10, second helper): one who read the prompt and TRIED before its speech ended (too small)
#    keeps the clock from the reveal (:func:`tried_before`, :func:`hint_since`; paced.py records ``tried_before``
#    with the prompt's report): a frame between the reveal and the hearing that is not at rest for the challenge by
#    judge_challenge's own bound (a turn past turn_back x turn_yaw the asked way: what makes her first action hint
#    TURN_MORE), after a frame there at rest. Her hint, dropped by the page while the prompt was said, is issued
#    again at once, in the answer to the chunk that carries the prompt's report, which the page keeps and says; its
#    hearing counts as any. Counting from the hearing for her cost 3.5-5 s (hint_heard default mode: TURN_MORE heard
#    10.3-15.4 / 12.8-18.1 s, was 6.8-11.4 / 9.2-13.1 s) and, for a slow mover, the step (slow_move retry_heard 2.0 /
#    2.5 s: 3/4, 1/4). The listener who turns a little the asked way while listening (~7 degrees) is taken for a
#    reader: she hears TURN_MORE right after the prompt, the behaviour before session 10 minus the DO_ACTION. Hints
#    issued before the prompt's report are forgotten when it comes (paced.py: a hearing counts only for a code issued
#    after it), and a page that reports hearings has its step held open HINT_REPORT_MS after its newest hint's
#    first issue (above), or that late hint's hearing could come after the window closed.
# 2. the hint report is about the LATEST action hint heard in the step, with its code (paced.py
#    ``hint_heard_code``; :func:`newer_hearing`): a report counts only for a code the server issued in this step, at
#    a time not before it first issued that code, and later than the hearing already kept; the window is then
#    recomputed from it (:func:`hint_window`): it can only grow, never past HINT_MAX_WINDOW_MS. A report without a
#    code (an older page) is the step's first action hint, kept once, as before.
# 3. HINT_MAX_WINDOW_MS from the arithmetic above (24 s; 27 s since the slow mover is counted in it; 29 s since
#    session 11 measured her slow small try).
# Measured (benchmarks/hint_heard.py, simulated person, real frames/engine/service, espeak-ng times, n = 24 per prompt
# length): the slow listener with a too-small first try is seen 24/24 with a 3.6 s and 24/24 with a 6.1 s prompt
# (was 10/24, 2/24), a full first try 24/24 as before; the reader (first try 2.7 s after the prompt appeared) still
# 24/24, hearing her TURN_MORE ~3.5-5 s later than before (README hint_heard sections, "Reading").

#
# The slow MOVER (session 10; issue 12): a stiff neck turns or nods slowly (1-2.5 s out, as long back). One slow
# movement passes (benchmarks/slow_move.py, simulated: 192/192, >= 2.6 s to spare on the strictest page, thanks to
# HINT_EXTRA_WINDOW_MS), but one who first turns too little and then, told TURN_MORE, turns fully at the same pace
# was cut off mid-turn: the fixed 11 s window ended while her head was still out, 0.9-1.05 s before it came back
# with 2 s ramps and 3.8 s with 2.5 s ramps (slow_move --modes retry: 1/4 and 0/4 seen; 4/4 and 4/4 with this
# rule). So a turn or nod step (since session 11 an open_mouth step too: MOUTH_OPENING_DELTA below) whose newest
# frame, past its window's end, shows the head still out the asked way
# (past half the threshold: not at rest by judge_challenge's own rule, the action begun after the prompt) is held
# open UNDER_WAY_HOLD_MS past that frame, chunk by chunk, never past HINT_MAX_WINDOW_MS (:func:`under_way`,
# :func:`held_window`; paced.py ``held_ms``, the case page's ``held_under_way_ms``). UNDER_WAY_HOLD_MS: a chunk holds
# up to 1.5 chunk intervals of frames (CHUNK_MAX_FRAMES), + 0.5 s for the answer's way back, so the next chunk's
# frames fall inside the hold. What it gives a client: time, up to the cap a prompt report already gives any step; a
# cued replay does not need it (it re-cues in ~1 s); the frames are counted by session_max_frames
# (paced.extended_steps). A step seen within its window, or whose head is at rest when the window ends, is judged
# as before. Not served by it: a reader on a page that reports hearings, whose TURN_MORE waited for a 6.1 s prompt
# and was heard ~16-18 s after it; a 2-2.5 s full turn then came back past the 24 s cap (slow_move retry_heard: 3/4
# and 1/4 before and after). The reader's hint clock (rule 1 above) serves her: TURN_MORE heard ~3.5 s sooner, her
# full turn counted by 22.5 s, 4/4 and 4/4 (results/slow_move_reader.json).
UNDER_WAY_HOLD_MS = 2_000
#
# The slow LISTENER who is also a slow MOVER (session 11; issue 12): her too-small turn begins 2.7 s after she heard the
# prompt and takes up to 2.5 s to reach its furthest point, so ACTION_HINT_AFTER_MS after the hearing it is under way
# but still under the at-rest bound that makes her hint TURN_MORE: the server said DO_ACTION ("no turn seen"), and
# TURN_MORE one chunk later. The page says DO_ACTION as the whole prompt again (up to 6.1 s, espeak) and never says an
# action hint over another, so the TURN_MORE she needs waited behind it; the step's window (from DO_ACTION's hearing, or
# HINT_REPORT_MS after TURN_MORE's first issue, which assumes it is said at once) closed while TURN_MORE was being said
# or before she could turn (benchmarks/slow_move.py --modes listener, simulated, 4 seeds x 2 lags x 3 paces per cell,
# README section slow_combo: turns seen 67/96 with 3.6 / 6.1 s prompts, all 29 misses DO_ACTION then TURN_MORE; 96/96
# with this rule; nods and mouth openings 96/96 either way). So for a listener (the hint clock counts from her hearing:
# :func:`hint_since` > 0) DO_ACTION is due only DO_ACTION_AFTER_MS after it: a try begun 2.7 s after the hearing (issue
# 12's slowest reaction) has by then reached its furthest point even at the stiff neck's 2.5 s, plus 0.3 s for the frame
# interval and the chunk boundary. TURN_MORE / LOOK_BACK and the other challenges' hints keep ACTION_HINT_AFTER_MS;
# without a prompt report (the hint clock at the reveal: an older page, pad_eval's sessions, the READER) nothing
# changes. What it costs: a listener who does not move at all hears the prompt again 2 s later, inside a window counted
# from her hearing (CHALLENGE_WINDOW_MS + HINT_EXTRA_WINDOW_MS at least).
DO_ACTION_AFTER_MS = 5_500
#
# A slow MOUTH opening (session 11; issue 12): since every drawn set holds open_mouth, the slow listener's opening
# counts at its first frame past the threshold, which (benchmarks/slow_move.py --modes listener, README slow_combo)
# came 1.2-1.7 s before the window (OPEN_WIDER heard + HINT_HEARD_WINDOW_MS) closed: an opening ~1.2 s slower missed
# (README slow_mouth). So open_mouth is held open like a turn (:func:`under_way`, :func:`held_window`, the same
# UNDER_WAY_HOLD_MS and cap) when the newest frame shows the mouth clearly OPENING (:func:`mouth_opening`): its
# inner-lip MAR at least MOUTH_OPENING_DELTA above her own settle baseline, still under the judge's threshold, and the
# mean of the newest MOUTH_RECENT_FRAMES frames above every frame from MOUTH_RISE_MS to MOUTH_RISE_GAP_MS before it.
# Speech opens and shuts the mouth several times a second, so a talker's newest frames are seldom well open AND all
# higher than 0.5-1 s before. Chosen on the real talk of talking_head_a at 8 fps (its MAR through production's
# engine, every phase, the baseline from the 0.8 s before) and on slow openings 3-6 s long made of that talk's own
# frames as slow_move's Warper picks them, with and without 0.012 of added landmark jitter (an ad hoc exploration
# in the session's notes, then measured: benchmarks/mouth_windows.py section (c), README mouth_windows; slow_move
# README slow_mouth): these bounds fire at 8.4 % of the speech frames and, with jitter, at 100 % of the 3, 4.2 and
# 5 s openings' frames between the opening bound and the threshold, 89 % of the 6 s one's (all without jitter). The
# first version compared the newest frame alone with the frames 0.375-0.75 s before (+0.01): 9.3 % of speech, but
# with jitter 94-95 % of the 4.2-5 s openings' frames and 76 % of the 6 s one's; a slow_move miss it left (5 s
# opening, 1 s lag) was its newest frame 0.026 under the one before. A talker's step is held 2 s (UNDER_WAY_HOLD_MS)
# at ~1 window end in 10, and on to the cap only if every following chunk's newest frames fire too.
MOUTH_OPENING_DELTA = 0.06
MOUTH_RECENT_FRAMES = 3
MOUTH_RISE_MS = 1_000
MOUTH_RISE_GAP_MS = 500

# framing issue -> live hint code (lifecert.domain.challenges.HINT_CODES)
HINT_FOR: dict[str, str] = {
    ErrorCode.NO_FACE: "NO_FACE",
    ErrorCode.TOO_DARK: "MORE_LIGHT",
    ErrorCode.TOO_BRIGHT: "LESS_LIGHT",
    ErrorCode.FACE_NOT_CENTRED: "FACE_NOT_CENTRED",
    ErrorCode.FACE_TOO_SMALL: "MOVE_CLOSER",
    ErrorCode.MULTIPLE_FACES: "ONE_PERSON_ONLY",
}


def capture_fps(challenge: str | None) -> int:
    """Frames a second the page is asked to capture during the step that asks ``challenge`` (None: the
    settle step). This is the one place the per-step rate is decided; pad_eval reads it to synthesise
    users at production's rate.

    A blink closes the eye for ~100-300 ms, so at 8 fps (125 ms) the sampled frame often shows a
    half-closed eye (issue 12): the blink step is captured at :data:`FAST_FPS`. benchmarks/blink_sampling.py
    (REAL clips, 8 phases per blink; README blink_sampling): production's blink test (EAR or eye pixels)
    caught the shallow blinker's blinks 48/72 at 8 fps, 45/72 at 12, 59/72 at 15 (all clips 123, 123,
    136 of 184), with no false fire at any rate on real open-eye runs or warped turns/nods and the same
    fires on synthetic prints/stills at every rate. Every other step keeps :data:`SESSION_FPS`: the settle
    step and turn/nod are slow movements 8 fps follows, and an open mouth is held (the mouth test takes
    the highest mouth opening in the window, so more frames would add chances for talking footage to
    pass, with no measured miss to gain back); fewer frames also cost less server time."""
    return FAST_FPS if challenge == "blink" else SESSION_FPS


def chunk_max_frames(challenge: str | None) -> int:
    """Frames one chunk of the step asking ``challenge`` may hold: 1.5 chunk intervals at its capture
    rate (:data:`CHUNK_MAX_FRAMES` = 12 at 8 fps). The page sends at most this many per request."""
    return max(CHUNK_MAX_FRAMES, math.ceil(1.5 * capture_fps(challenge) * CHUNK_MS / 1000))


def session_max_frames(challenges: Sequence[str], extended: Sequence[tuple[str, int]] = ()) -> int:
    """Frames one session asking ``challenges`` may upload in all: :data:`SESSION_MAX_FRAMES` (every step at
    the session rate) plus, for each step captured faster, its extra frames over :data:`STEP_FRAMES_MS`, plus,
    for each (challenge, extra ms) in ``extended`` (a step whose window grew after an action hint, by
    :data:`HINT_EXTRA_WINDOW_MS` or up to :data:`HINT_MAX_WINDOW_MS` after it was heard: :func:`hint_window`),
    those ms at its rate. A client that sends faster than asked is bounded by this and by
    :func:`chunk_max_frames` per request."""
    extra = sum(math.ceil(STEP_FRAMES_MS * max(0, capture_fps(c) - SESSION_FPS) / 1000) for c in challenges)
    extra += sum(math.ceil(max(0, ms) * capture_fps(c) / 1000) for c, ms in extended)
    return SESSION_MAX_FRAMES + extra


def prompt_window(heard_after_prompt_ms: int) -> tuple[int, str]:
    """(window ms from the prompt, the rule that set it) of a challenge step whose page reported when its prompt
    was heard (server clock minus the reveal): ``"heard"``: CHALLENGE_WINDOW_MS from then; ``"fixed"``: not later
    than the prompt appeared, CHALLENGE_WINDOW_MS (a report never shortens the window); ``"capped"``: that would
    pass HINT_MAX_WINDOW_MS, which is the window then."""
    want = heard_after_prompt_ms + CHALLENGE_WINDOW_MS
    if want <= CHALLENGE_WINDOW_MS:
        return CHALLENGE_WINDOW_MS, "fixed"
    if want > HINT_MAX_WINDOW_MS:
        return HINT_MAX_WINDOW_MS, "capped"
    return want, "heard"


def hint_window(
    heard_after_prompt_ms: int | None, answered_after_prompt_ms: int, base: int = CHALLENGE_WINDOW_MS,
    awaiting_from_ms: int | None = None,
) -> tuple[int, str]:
    """(window ms from the prompt, the rule that set it) of a challenge step that got an action hint.

    ``heard_after_prompt_ms``: when the page says the hint was heard (server clock minus the reveal; None: no
    report); ``answered_after_prompt_ms``: when the answer that carried the hint arrived (nothing is heard
    before it, an earlier claim is taken as that time); ``base``: the step's window before the hint
    (CHALLENGE_WINDOW_MS, or :func:`prompt_window`'s); ``awaiting_from_ms``: for a page that reports hearings,
    the first issue of the step's newest action hint code (ms after the reveal; None: not such a page). Rules:

    - ``"fixed"``: no report, or one that gives less: ``base`` + HINT_EXTRA_WINDOW_MS (a report never shortens the
      window; with a longer ``base`` at most HINT_MAX_WINDOW_MS);
    - ``"awaiting"``: more than that: ``awaiting_from_ms`` + HINT_REPORT_MS (the report of hearing it can arrive),
      at most HINT_MAX_WINDOW_MS;
    - ``"heard"``: the hint heard + HINT_HEARD_WINDOW_MS;
    - ``"capped"``: that would pass HINT_MAX_WINDOW_MS, which is the window then."""
    plain = CHALLENGE_WINDOW_MS + HINT_EXTRA_WINDOW_MS
    fixed = min(max(base, CHALLENGE_WINDOW_MS) + HINT_EXTRA_WINDOW_MS, max(plain, HINT_MAX_WINDOW_MS))
    floor, floor_rule = fixed, "fixed"
    if awaiting_from_ms is not None:
        awaited = min(awaiting_from_ms + HINT_REPORT_MS, max(plain, HINT_MAX_WINDOW_MS))
        if awaited > fixed:
            floor, floor_rule = awaited, "awaiting"
    if heard_after_prompt_ms is None:
        return floor, floor_rule
    want = max(heard_after_prompt_ms, answered_after_prompt_ms) + HINT_HEARD_WINDOW_MS
    if want <= floor:
        return floor, floor_rule
    if want > HINT_MAX_WINDOW_MS:
        return max(floor, HINT_MAX_WINDOW_MS), "capped"
    return want, "heard"


Frames = Sequence[FrameObs] | Signals  # a step's frames, or their signals (:func:`signals`) computed once per chunk


def _signals(frames: Frames) -> Signals:
    """The per-frame signals of ``frames``, computed here only when the caller did not: paced.py computes them once
    per chunk and passes them to judge_challenge, tried_before and under_way, which read the same frames (each used to
    compute them again: ~0.03 ms per frame per call, benchmarks README step_rule_cost)."""
    return frames if isinstance(frames, Signals) else signals(frames)


def _rest_trace(
    name: str, frames: Frames, base: Baseline, reveal_ms: int, until_ms: int | None, p: LivenessParams
) -> list[bool]:
    """For each frame with a face from the reveal + MIN_REACTION_MS (and before ``until_ms``), in order: is it at rest
    for challenge ``name`` (:func:`_at_rest`, :func:`judge_challenge`'s own bound)? Empty without an open-eye
    baseline. What :func:`under_way` and :func:`tried_before` read."""
    if np.isnan(base.ear):
        return []
    sig = _signals(frames)
    keep = (sig.t_ms >= reveal_ms + MIN_REACTION_MS) & ~np.isnan(sig.ear)
    if until_ms is not None:
        keep &= sig.t_ms < until_ms
    return [_at_rest(name, sig, int(i), base, p) for i in np.nonzero(keep)[0]]


def under_way(
    name: str, frames: Frames, base: Baseline, reveal_ms: int, p: LivenessParams | None = None
) -> bool:
    """Is a turn, nod or mouth opening under way in the step's newest frame (see UNDER_WAY_HOLD_MS and
    MOUTH_OPENING_DELTA)? ``frames`` on the server clock, in order, as :func:`judge_challenge` takes them (or their
    signals). A turn or
    nod: the newest frame with a face after the reveal (+ MIN_REACTION_MS) is not at rest for ``name`` (a turn past
    turn_back x turn_yaw the asked way, a nod past half nod_pitch down) and an earlier such frame was at rest (the
    action began after the prompt, as judge_challenge requires). open_mouth: :func:`mouth_opening`. Blink: never (a
    blink is over in ~0.3 s)."""
    if name == "open_mouth":
        return mouth_opening(frames, base, reveal_ms, p or LivenessParams())
    if name not in ("turn_left", "turn_right", "nod"):
        return False
    rest = _rest_trace(name, frames, base, reveal_ms, None, p or LivenessParams())
    return len(rest) >= 2 and any(rest[:-1]) and not rest[-1]


def mouth_opening(frames: Frames, base: Baseline, reveal_ms: int, p: LivenessParams) -> bool:
    """Is the mouth clearly OPENING in the newest frame with a face (see MOUTH_OPENING_DELTA)? True when that frame,
    from the reveal + MIN_REACTION_MS, has its inner-lip MAR risen at least MOUTH_OPENING_DELTA above the baseline's,
    still under the open_mouth threshold (max(mouth_open_abs, baseline + mouth_open_delta): past it the step is
    seen), the mean MAR of the newest MOUTH_RECENT_FRAMES face frames is above every face frame from MOUTH_RISE_MS to
    MOUTH_RISE_GAP_MS before the newest (rising; at least MOUTH_RECENT_FRAMES of them: a slow opening's
    frame-to-frame rise is within the landmarks' jitter, so neither one frame nor the frames just before decide),
    and an earlier frame there was under the opening bound (it began after the prompt)."""
    if np.isnan(base.ear) or np.isnan(base.mar):
        return False
    sig = _signals(frames)
    idx = np.nonzero((sig.t_ms >= reveal_ms + MIN_REACTION_MS) & ~np.isnan(sig.ear) & ~np.isnan(sig.mar))[0]
    if len(idx) < 2 * MOUTH_RECENT_FRAMES:
        return False
    last = int(idx[-1])
    m, t = float(sig.mar[last]), int(sig.t_ms[last])
    bound = base.mar + MOUTH_OPENING_DELTA
    if not bound <= m < max(p.mouth_open_abs, base.mar + p.mouth_open_delta):
        return False
    before = [float(sig.mar[i]) for i in idx[:-1] if t - MOUTH_RISE_MS <= int(sig.t_ms[i]) <= t - MOUTH_RISE_GAP_MS]
    recent = float(np.mean(sig.mar[idx[-MOUTH_RECENT_FRAMES:]]))
    if len(before) < MOUTH_RECENT_FRAMES or not recent > max(before):
        return False
    return any(float(sig.mar[i]) < bound for i in idx[:-1])


def tried_before(
    name: str, frames: Frames, base: Baseline, reveal_ms: int, until_ms: int,
    p: LivenessParams | None = None,
) -> bool:
    """Did the person try challenge ``name`` before ``until_ms`` (server ms: when the prompt was reported heard)? True
    when a frame with a face, from the reveal + MIN_REACTION_MS and before ``until_ms``, is not at rest for ``name``
    (:func:`judge_challenge`'s own bound: a turn past turn_back x turn_yaw the asked way, a nod past half nod_pitch
    down, an eye closing under blink_recover x the open EAR, a mouth open past its bound), after an earlier frame
    there that was at rest (an action under way at the reveal is not a try, as judge_challenge does not count it).
    The reader's distinction (see "The READER" above HINT_FOR): her action-hint clock counts from the reveal."""
    rest = _rest_trace(name, frames, base, reveal_ms, until_ms, p or LivenessParams())
    return True in rest and False in rest[rest.index(True):]


def hint_since(prompt_heard_after_prompt_ms: int | None, tried: bool) -> int:
    """When a challenge step's action-hint clock starts, ms after the reveal (:func:`action_hint`'s ``since_ms``): the
    prompt's reported hearing for one who had not tried before it (the slow LISTENER), else the reveal (0: no report,
    or the READER, who tried while the prompt was being said: :func:`tried_before`)."""
    if prompt_heard_after_prompt_ms is None or tried:
        return 0
    return max(0, prompt_heard_after_prompt_ms)


def held_window(window_ms: int, latest_after_prompt_ms: int) -> int:
    """The window (ms from the prompt) of a step held open because its action is under way (:func:`under_way`) in
    its newest frame, ``latest_after_prompt_ms`` after the prompt: UNDER_WAY_HOLD_MS past that frame, never shorter
    than ``window_ms``, never longer than HINT_MAX_WINDOW_MS."""
    return max(window_ms, min(latest_after_prompt_ms + UNDER_WAY_HOLD_MS, HINT_MAX_WINDOW_MS))


def newer_hearing(
    issued: Mapping[str, int], code: str, heard_after_prompt_ms: int, kept_ms: int | None
) -> int | None:
    """The hearing to keep for a step after the page reported action hint ``code`` heard at
    ``heard_after_prompt_ms`` (server clock minus the reveal), or None: the report changes nothing.

    ``issued``: code -> when the server first issued it in this step (the arrival of the chunk its answer went
    to, ms after the reveal); ``kept_ms``: the hearing kept so far (None: none). A report counts only for a code
    issued in this step, at a time not before it was issued (nothing is heard before the answer that carries it
    left), and only when later than the one kept: the newest action hint heard sets the window
    (:func:`hint_window`), which therefore never shrinks."""
    first = issued.get(code)
    if first is None or heard_after_prompt_ms < first:
        return None
    if kept_ms is not None and heard_after_prompt_ms <= kept_ms:
        return None
    return heard_after_prompt_ms


@dataclass(frozen=True)
class Obs:
    """What the server saw in one frame (kept per chunk as JSON). ``t_ms``: the client's ms;
    ``landmarks``: (68, 2) pixels of the analysed (shrunk) frame; ``size``: its (w, h)."""

    t_ms: int
    size: tuple[int, int]
    landmarks: NDArray[np.float32] | None = None
    box: tuple[float, float, float, float] | None = None
    num_faces: int = 0
    sharpness: float = 0.0
    brightness: float = 0.0  # face region (or whole frame without a face), grey 0..255
    pad: float | None = None  # P(real) of the PAD model on this full frame, when installed
    eyes: NDArray[np.int8] | None = None  # (2, H, W) eye patches (lifecert.engine.eyes), with a face

    def to_json(self) -> dict[str, Any]:
        return {
            "t": self.t_ms,
            "size": list(self.size),
            "lm": None if self.landmarks is None else np.round(self.landmarks, 1).tolist(),
            "box": None if self.box is None else [round(float(v), 1) for v in self.box],
            "n": self.num_faces,
            "sh": round(self.sharpness, 2),
            "br": round(self.brightness, 2),
            "pad": None if self.pad is None else round(self.pad, 4),
            "eye": None if self.eyes is None else encode_eyes(self.eyes),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Obs:
        lm = d.get("lm")
        box = d.get("box")
        return cls(
            t_ms=int(d["t"]),
            size=(int(d["size"][0]), int(d["size"][1])),
            landmarks=None if lm is None else np.asarray(lm, dtype=np.float32).reshape(68, 2),
            box=None if box is None else (float(box[0]), float(box[1]), float(box[2]), float(box[3])),
            num_faces=int(d.get("n", 0)),
            sharpness=float(d.get("sh", 0.0)),
            brightness=float(d.get("br", 0.0)),
            pad=None if d.get("pad") is None else float(d["pad"]),
            eyes=eyes_of(d.get("eye")),
        )

    def face(self) -> Face | None:
        """The face as seen at upload (box, 68 landmarks) for aligning and embedding this frame."""
        if self.landmarks is None or self.box is None:
            return None
        lm = self.landmarks.astype(np.float32)
        return Face(np.asarray(self.box, dtype=np.float32), 0.0, five_from_68(lm), lm)

    def frame_obs(self, offset_ms: int) -> FrameObs:
        """The liveness view of this frame on the SERVER clock."""
        box = None if self.box is None else np.asarray(self.box, dtype=np.float32)
        return FrameObs(self.t_ms + offset_ms, self.landmarks, box, self.num_faces, self.eyes)

    def issue(self, g: QualitySettings) -> ErrorCode | None:
        o = FrameObs(self.t_ms, self.landmarks, None, self.num_faces)
        return framing_issue(o, self.size, self.brightness, g)


def eyes_of(text: object) -> NDArray[np.int8] | None:
    """The eye patches of a stored frame's ``"eye"`` (absent in frames stored before they were kept,
    or without a face: None, and the blink is then judged on the eye aspect ratio alone)."""
    if not isinstance(text, str):
        return None
    try:
        return decode_eyes(text)
    except ValueError:
        return None


def update_offset(previous: int | None, received_ms: int, sent_client_ms: int) -> int:
    """Server ms minus client ms, the smallest seen over the chunks: an upper bound of the true offset
    plus the shortest upload time. ``sent_client_ms``: when the request left the phone (the page's
    ``sent_ms``), else the chunk's newest frame. The send time keeps the time a chunk waited on the
    phone (behind a request in flight) out of the bound: with the newest frame instead, a queued
    chunk maps every frame that much later, and an action captured before a prompt can look like
    a reaction to it. A client that claims a later send time only maps its frames earlier (before
    its prompts, where they do not count); an earlier one than its newest frame is refused
    (:func:`send_time_ok`)."""
    cand = received_ms - sent_client_ms
    return cand if previous is None else min(previous, cand)


def send_time_ok(last_frame_ms: int, sent_ms: int) -> bool:
    """A chunk is sent after its newest frame and within MAX_SEND_LAG_MS of it (client ms)."""
    return last_frame_ms <= sent_ms <= last_frame_ms + MAX_SEND_LAG_MS


def face_fraction(o: Obs) -> float | None:
    """Width of the face box over the frame's width (None without a face: every frame with landmarks
    has its detector or tracked box, frames.observe)."""
    if o.box is None or o.size[0] <= 0:
        return None
    return (o.box[2] - o.box[0]) / o.size[0]


def hints(latest: Sequence[Obs], g: QualitySettings, *, hold_still: bool = False, too_close: bool = False) -> list[str]:
    """Live hints from the newest chunk: the most common framing issue when at least half of its
    frames have one, MOVE_BACK when the face fills more than TOO_CLOSE_FRACTION of the frame's width
    or when the settle step is waiting for it to move back (``too_close``, SettleResult.too_close),
    and HOLD_STILL when asked (settle step with too much motion)."""
    issues = [i for i in (o.issue(g) for o in latest) if i is not None]
    out: list[str] = []
    if latest and len(issues) * 2 >= len(latest):
        out.append(HINT_FOR.get(Counter(issues).most_common(1)[0][0], "NO_FACE"))
    fracs = [f for f in (face_fraction(o) for o in latest) if f is not None]
    if not out and (too_close or (fracs and float(np.median(fracs)) > TOO_CLOSE_FRACTION)):
        out.append("MOVE_BACK")
    if hold_still and not out:
        out.append("HOLD_STILL")
    return out


def most_common_issue(obs: Sequence[Obs], g: QualitySettings) -> ErrorCode:
    issues = [i for i in (o.issue(g) for o in obs) if i is not None]
    return Counter(issues).most_common(1)[0][0] if issues else ErrorCode.NO_FACE


def baseline_of(frames: Sequence[FrameObs]) -> Baseline:
    """The pensioner's own neutral values from steady frames (open-eye EAR as a high percentile so
    a blink among them does not lower it)."""
    sig = signals(frames)
    return baseline_over(sig, ~np.isnan(sig.ear))


@dataclass(frozen=True)
class SettleResult:
    steady: bool
    baseline: Baseline | None = None
    motion: float | None = None  # of the newest candidate run, face widths
    too_close: bool = False  # steady, but the face fills too much of the frame (still within the wait)


def settle(
    obs: Sequence[Obs], offset_ms: int, g: QualitySettings, framing_wait_ms: int = SETTLE_FRAMING_WAIT_MS
) -> SettleResult:
    """Is there a run of consecutive good frames (no framing issue) spanning SETTLE_STEADY_MS with
    little landmark motion? Looks at the newest run only (the face must be steady NOW). For the first
    ``framing_wait_ms`` after a face first appeared, the run must also not be too close (median face
    width <= TOO_CLOSE_FRACTION of the frame; the MOVE_BACK hint asks for it)."""
    run: list[Obs] = []
    for o in reversed(obs):
        if o.issue(g) is not None:
            break
        run.append(o)
    run.reverse()
    if len(run) < SETTLE_MIN_FRAMES:
        return SettleResult(False)
    # The newest frames spanning the steady time.
    end = run[-1].t_ms
    tail = [o for o in run if o.t_ms >= end - SETTLE_STEADY_MS]
    if run[0].t_ms > end - SETTLE_STEADY_MS or len(tail) < SETTLE_MIN_FRAMES:
        return SettleResult(False)
    lms = [o.landmarks[RIGID_IDX] for o in tail if o.landmarks is not None]
    widths = [max(float(np.linalg.norm(lm[16] - lm[0])), 1e-6) for lm in lms]
    mean_lm = np.mean(lms, axis=0)
    motion = max(float(np.linalg.norm(lm - mean_lm, axis=1).mean()) / w for lm, w in zip(lms, widths, strict=True))
    if motion > SETTLE_MAX_MOTION:
        return SettleResult(False, motion=motion)
    first_face = next(o.t_ms for o in obs if o.landmarks is not None)
    fracs = [f for f in (face_fraction(o) for o in tail) if f is not None]
    if end - first_face < framing_wait_ms and fracs and float(np.median(fracs)) > TOO_CLOSE_FRACTION:
        return SettleResult(False, too_close=True)
    return SettleResult(True, baseline_of([o.frame_obs(offset_ms) for o in tail]), motion)


@dataclass(frozen=True)
class StepJudgement:
    seen: bool
    frames: int  # frames with a face counted for this step
    reaction_ms: int | None = None  # first counted frame at rest -> action peak start, from the reveal
    peak_t_ms: int | None = None  # server ms
    peak_value: float | None = None
    threshold: float | None = None
    early: bool = False  # the action was already under way before MIN_REACTION_MS (not counted)
    signal: str = ""  # which signal saw a blink: "ear" or "eye_pixels" (peak_value/threshold are its units)

    def as_dict(self, name: str, reveal_ms: int) -> dict[str, Any]:
        return {
            "name": name,
            "passed": self.seen,
            "frames": self.frames,
            "reaction_ms": self.reaction_ms,
            "peak_ms_after_prompt": None if self.peak_t_ms is None else self.peak_t_ms - reveal_ms,
            "peak_value": None if self.peak_value is None else round(self.peak_value, 4),
            "threshold": None if self.threshold is None else round(self.threshold, 4),
            "early_action_ignored": self.early,
            **({"signal": self.signal} if self.signal else {}),
        }


def _at_rest(name: str, sig: Signals, i: int, base: Baseline, p: LivenessParams) -> bool:
    """Frame ``i`` shows a neutral face for challenge ``name`` (the action has not begun)."""
    if name == "blink":
        return bool(sig.ear[i] >= p.blink_recover * base.ear)
    if name in ("turn_left", "turn_right"):
        sign = 1.0 if name == "turn_left" else -1.0
        return bool(sign * (sig.yaw[i] - base.yaw) < p.turn_back * p.turn_yaw)
    if name == "nod":
        return bool(sig.pitch[i] - base.pitch < p.nod_pitch / 2)
    if name == "open_mouth":
        return bool(sig.mar[i] < max(p.mouth_open_abs, base.mar + p.mouth_open_delta))
    return False


def _detect(
    name: str, sig: Signals, idx: NDArray[np.int64], base: Baseline, p: LivenessParams
) -> tuple[bool, int | None, float | None, float, str]:
    if name == "blink":  # the EAR dip, else the eye pixels' dip (its open-eye frame at rest, from idx)
        return detect_blink_any(sig, idx, base, p)
    if name in ("turn_left", "turn_right"):
        return (*detect_turn(sig, idx, base, p, name.removeprefix("turn_")), "")
    if name == "open_mouth":
        return (*detect_open_mouth(sig, idx, base, p), "")
    if name == "nod":
        return (*detect_nod(sig, idx, base, p), "")
    return False, None, None, 0.0, ""


def judge_challenge(
    name: str, frames: Frames, base: Baseline, reveal_ms: int, p: LivenessParams | None = None
) -> StepJudgement:
    """Was challenge ``name`` acted after its prompt? ``frames`` on the server clock, in order (or their signals);
    ``reveal_ms``: when the server showed the prompt (server ms)."""
    p = p or LivenessParams()
    sig = _signals(frames)
    face = ~np.isnan(sig.ear)
    cut = reveal_ms + MIN_REACTION_MS
    after = np.nonzero((sig.t_ms >= cut) & face)[0]
    if len(after) == 0 or np.isnan(base.ear):
        return StepJudgement(False, 0)
    rest = [int(i) for i in after if _at_rest(name, sig, int(i), base, p)]
    early = bool(len(after) and not _at_rest(name, sig, int(after[0]), base, p))
    if not rest:
        ok, i, v, thr, _s = _detect(name, sig, after, base, p)
        return StepJudgement(False, len(after), None, None, v, thr, early)
    start = rest[0]
    idx = after[after >= start]
    ok, i, v, thr, signal = _detect(name, sig, idx, base, p)
    peak_t = int(sig.t_ms[i]) if i is not None else None
    if not ok:
        return StepJudgement(False, len(after), None, peak_t, v, thr, early)
    # Reaction: the last frame at rest before the peak marks where the action began (for the eye pixels'
    # dip its open-eye reference frame is one of them).
    began = max((j for j in rest if j < (i if i is not None else start)), default=start)
    return StepJudgement(True, len(after), int(sig.t_ms[began]) - reveal_ms, peak_t, v, thr, early,
                         signal if name == "blink" else "")


def action_hint(
    challenge: str, j: StepJudgement, elapsed_ms: int, p: LivenessParams | None = None, since_ms: int = 0
) -> str | None:
    """The one action hint for a challenge step not yet passed, ``elapsed_ms`` after its reveal (the step's
    newest frame on the server clock minus ``reveal_ms``), or None: before ``since_ms`` + ACTION_HINT_AFTER_MS,
    once the action was seen, or with no face counted yet (the framing hints speak then, :func:`step_hints`).
    ``since_ms``: when the hint clock starts, ms after the reveal: 0, or when the page reported the prompt heard
    (the slow listener: see the comment above HINT_FOR); then DO_ACTION comes only DO_ACTION_AFTER_MS after it.

    - turn_left / turn_right: LOOK_BACK when the head turned past ``turn_yaw`` the asked way but has not come
      back (a turn counts only once it returns toward rest; a user holding the turn must not be told to
      turn further); TURN_MORE when it left its rest pose that way (its furthest yaw change,
      ``j.peak_value``, reached the at-rest bound ``turn_back`` x ``turn_yaw`` that judge_challenge uses)
      but stayed under the threshold; otherwise DO_ACTION: no turn that way was seen (none, or the other
      way), the page repeats the prompt (a listener's from ``since_ms`` + DO_ACTION_AFTER_MS: her slow try may
      still be coming);
    - nod: LOOK_UP when the head went down past ``nod_pitch`` but has not come back up, else NOD_MORE;
    - blink, open_mouth: BLINK_FIRMLY, OPEN_WIDER.

    What an attacker learns from it: no number and no "almost" (one TURN_MORE for any turn that way under
    the threshold, whatever its size; blink and mouth hints depend on the time alone) and nothing about the
    later steps, only about the step whose prompt they already see. LOOK_BACK / LOOK_UP do say that the
    head went far enough: what passing the step says a moment later when it comes back, for thresholds
    that are published with the code (lifecert.engine.liveness.LivenessParams)."""
    if j.seen or j.frames == 0 or elapsed_ms < max(0, since_ms) + ACTION_HINT_AFTER_MS:
        return None
    p = p or LivenessParams()
    peak = j.peak_value
    if challenge in ("turn_left", "turn_right"):
        if peak is not None and peak > p.turn_yaw:
            return "LOOK_BACK"
        if peak is not None and peak >= p.turn_back * p.turn_yaw:
            return "TURN_MORE"
        # a listener's slow try may still be on its way to the at-rest bound (see DO_ACTION_AFTER_MS)
        return None if since_ms > 0 and elapsed_ms < since_ms + DO_ACTION_AFTER_MS else "DO_ACTION"
    if challenge == "nod" and peak is not None and peak > p.nod_pitch:
        return "LOOK_UP"
    return ACTION_HINT.get(challenge)


def step_hints(
    framing: list[str], challenge: str, j: StepJudgement, elapsed_ms: int, p: LivenessParams | None = None,
    since_ms: int = 0,
) -> list[str]:
    """A challenge step's live hints: the framing hints of the newest chunk (:func:`hints`) alone when one of
    them says the face is not seen well (a face that is not seen cannot act), else the action hint, if one is
    due (:func:`action_hint`), first and the framing hints after it. MOVE_BACK gives way: the face is seen
    and can act (too close only matters for the PAD crops, which the settle step already waited for), and a
    user who hears "further away" again and again is never told that the turn was too small. ``since_ms``: as
    :func:`action_hint`'s."""
    if j.seen:
        return []
    a = action_hint(challenge, j, elapsed_ms, p, since_ms)
    if a is None or any(h not in ACTION_FIRST for h in framing):
        return framing
    return [a, *framing]


def action_in(hints: Sequence[str]) -> str | None:
    """The action hint among a step's hints (:func:`step_hints` puts it first), or None."""
    return next((h for h in hints if h in ACTION_HINT_CODES), None)


def step_over(latest_frame_ms: int | None, now_ms: int, reveal_ms: int, window_ms: int) -> bool:
    """The window ran out: a frame captured after it arrived, or the client went quiet past the grace."""
    end = reveal_ms + window_ms
    return (latest_frame_ms is not None and latest_frame_ms > end) or now_ms > end + UPLOAD_GRACE_MS


def pad_pick(n_with_face: int) -> list[int]:
    """Which of a chunk's ``n_with_face`` frames with a face the PAD model scores: up to
    PAD_FRAMES_PER_CHUNK, evenly spaced over the chunk (indices into those frames, ascending)."""
    if n_with_face <= PAD_FRAMES_PER_CHUNK:
        return list(range(n_with_face))
    pick = np.linspace(0, n_with_face - 1, PAD_FRAMES_PER_CHUNK).round().astype(int)
    return sorted(set(pick.tolist()))


@dataclass(frozen=True)
class PassiveLiveness:
    """The session-wide liveness facts of the final decision (no challenge in them)."""

    motion: float  # largest landmark displacement from the first face frame, face widths
    still: bool
    flat: FlatCheck  # homography residual test
    planar: PlanarityCheck  # nose parallax against the face outline (engine/planarity.py)
    breaks: list[int]  # indices into the session's frames where the face jumped

    @property
    def flat_photo(self) -> bool:
        """Either flat-picture test decided "planar" (REVIEW LIVENESS_FAILED flat_photo)."""
        return (self.flat.decided and self.flat.flat) or (self.planar.decided and self.planar.flat)


def passive_liveness(frames: Sequence[FrameObs], p: LivenessParams | None = None) -> PassiveLiveness:
    """Still / flat picture / track breaks over ALL frames of a session on the server clock (the
    planarity test over those with exactly one face), as the final decision judges them."""
    p = p or LivenessParams()
    sig = signals(frames)
    motion = landmark_motion(frames)
    usable = [f for f in frames if f.landmarks is not None and f.num_faces == 1]
    return PassiveLiveness(motion, motion < p.still_motion, flat_check(frames, sig, p), nose_parallax(usable),
                           track_breaks(frames, p))


def face_quality(o: Obs, base_ear: float, base_pitch: float = float("nan")) -> float:
    """0..1 for choosing the frames to embed (see :func:`frames.quality_score`; ``base_pitch``: the settle step's
    rest pitch_ratio, so that a nod's frames rank below frontal ones); 0 without exactly one face."""
    if o.landmarks is None or o.num_faces != 1:
        return 0.0
    return quality_score(o.landmarks, o.sharpness, o.brightness, base_ear, base_pitch)
