"""The liveness challenges and the policy every drawn set must satisfy (pure, no I/O).

A replayed video of the pensioner can act head motion (the footage turns and nods) and a
print can be bent to fake a nod, but neither acts a requested non-rigid change on cue as
easily, and vice versa. So every session holds at least one HEAD motion (turn or nod) AND
one NON-RIGID action (blink or open mouth), in random order (:func:`policy_violation`, also
the rule for ``LIFECERT_FIXED_CHALLENGES``).

The DRAW goes further: every drawn set holds ``open_mouth`` (:func:`draw`). A blink proves
nothing against found footage: people blink every few seconds without being asked, so any
video of the pensioner shows one inside a step's window (>= 8 s, up to 29 s) with nothing
acted; a wide mouth opening is rare in such footage (video calls, chat clips: speech opens
the mouth briefly). benchmarks/mouth_windows.py (the two real clips replayed as they are,
nothing acted, production's engine and step judge at the steps' capture rates, 8 s windows at
every phase): the blink step passed in 200/200 and 308/308 windows, open_mouth in 196/200 for
the talking clip (by speech) and 0/308 for the silent one. So open_mouth stops a replay of
footage without a wide opening, not of talking footage cued by hand (nor a deepfake). Blink
stays possible only as an optional third challenge.

The hint codes the server sends during capture are listed here too (one list; texts live in
``mobile-web/i18n.js``).
"""

from __future__ import annotations

import random
from collections.abc import Sequence

HEAD_MOTION = ("turn_left", "turn_right", "nod")
NON_RIGID = ("blink", "open_mouth")
DRAWN_NON_RIGID = "open_mouth"  # in every drawn set (draw); blink only as an optional third
CHALLENGES = ("blink", "turn_left", "turn_right", "open_mouth", "nod")
MIN_CHALLENGES = 2
MAX_CHALLENGES = 3

# Live hints during capture (the server's per-step analysis of the newest frames).
HINT_CODES = (
    "NO_FACE",
    "MOVE_CLOSER",
    "MOVE_BACK",
    "MORE_LIGHT",
    "LESS_LIGHT",
    "FACE_NOT_CENTRED",
    "ONE_PERSON_ONLY",
    "HOLD_STILL",
    # Action hints: a challenge step not yet passed, some seconds after its prompt (steps.action_hint).
    "TURN_MORE",
    "DO_ACTION",
    "BLINK_FIRMLY",
    "OPEN_WIDER",
    "NOD_MORE",
    "LOOK_BACK",
    "LOOK_UP",
)


def policy_violation(challenges: Sequence[str]) -> str | None:
    """Why a challenge list breaks the policy (None when it is fine)."""
    unknown = [c for c in challenges if c not in CHALLENGES]
    if unknown:
        return f"unknown challenge(s) {unknown}; known: {', '.join(CHALLENGES)}"
    if not MIN_CHALLENGES <= len(challenges) <= MAX_CHALLENGES:
        return f"{len(challenges)} challenges; {MIN_CHALLENGES} to {MAX_CHALLENGES} allowed"
    if len(set(challenges)) != len(challenges):
        return "a challenge appears twice"
    if not any(c in HEAD_MOTION for c in challenges):
        return f"no head-motion challenge ({', '.join(HEAD_MOTION)})"
    if not any(c in NON_RIGID for c in challenges):
        return f"no non-rigid challenge ({', '.join(NON_RIGID)})"
    return None


def drawable(challenges: Sequence[str]) -> bool:
    """Could :func:`draw` have produced this set? A stored set from before a policy change (e.g. a
    head motion + blink, drawn before open_mouth was in every draw) is not reused for a new session."""
    return (
        policy_violation(challenges) is None
        and DRAWN_NON_RIGID in challenges
        and any(c in HEAD_MOTION for c in challenges)
    )


def draw(rng: random.Random) -> list[str]:
    """2 or 3 distinct challenges: one head motion and ``open_mouth`` (never a blink in its place: a
    replayed video blinks by itself, see the module docstring), maybe one more (blink or another head
    motion), shuffled. ``rng``: use :class:`random.SystemRandom` in the service (unpredictable draws)."""
    picked = [rng.choice(HEAD_MOTION), DRAWN_NON_RIGID]
    if rng.random() < 0.5:
        picked.append(rng.choice([c for c in CHALLENGES if c not in picked]))
    rng.shuffle(picked)
    return picked
