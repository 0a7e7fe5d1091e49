"""Decision rules of a verification session, on plain data (no database, no video).

:func:`decide` turns the measured evidence of one session into CONFIRMED / RETRY / REVIEW
and a reason code; :func:`escalate` applies the "too many retries" rule. The order of the
checks is the policy: evidence that someone else or something other than a live face is in
front of the camera (REVIEW) outranks a missed challenge (RETRY), which outranks the 1:1 score.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from lifecert.domain.errors import ErrorCode
from lifecert.engine.liveness import LivenessReport
from lifecert.engine.pad import PadModel
from lifecert.storage.models_verification import Decision


@dataclass(frozen=True)
class Evidence:
    """What the frame analysis measured. Similarities are cosine on L2-normalised embeddings."""

    threshold: float  # the model's calibrated 1:1 threshold
    own_match: float  # fused probe vs the pensioner's best template
    one_person_min: float  # lowest similarity between the session's best frames (1.0 with one)
    other_matches: Sequence[float] = ()  # 1:N scores of OTHER pensioners
    still: bool = False  # no landmark motion at all: a still image
    flat: bool = False  # the flat-photo test decided "planar"
    challenges_passed: bool = True
    pad_spoof: bool = False  # presentation-attack detection (model and/or cues) says spoof
    # fused 1:1 score and its calibrated threshold (lifecert/services/fusion.py); when present they
    # decide LOW_MATCH instead of own_match/threshold
    fused_match: float | None = None
    fused_threshold: float | None = None
    # fused 1:N scores of other pensioners (judged against fused_match/fused_threshold); with fusion
    # on, ``other_matches`` holds only the others without a template of the second model
    fused_other_matches: Sequence[float] = ()


@dataclass(frozen=True)
class Verdict:
    decision: str
    reason: ErrorCode | None
    issue: str | None = None  # finer note for the case page (e.g. "flat_photo")
    notes: list[str] = field(default_factory=list)


@dataclass
class Analysis:
    """What the frame analysis of a session produced and the decision it leads to (before escalation)."""

    decision: str
    reason: str | None
    liveness: LivenessReport | None
    scores: dict[str, Any] = field(default_factory=dict)
    best: list[int] = field(default_factory=list)  # frame indices of the best frames
    hits: list[dict[str, Any]] = field(default_factory=list)
    match: float | None = None


def decide(e: Evidence) -> Verdict:
    """The decision for one session's evidence (see the module docstring for the order)."""
    if e.still:
        return Verdict(Decision.REVIEW, ErrorCode.LIVENESS_FAILED, "still_image")
    if e.pad_spoof:
        return Verdict(Decision.REVIEW, ErrorCode.PRESENTATION_ATTACK, "presentation_attack")
    if e.one_person_min < e.threshold:
        return Verdict(Decision.REVIEW, ErrorCode.DIFFERENT_PERSONS)
    if e.flat:
        return Verdict(Decision.REVIEW, ErrorCode.LIVENESS_FAILED, "flat_photo")
    if not e.challenges_passed:
        return Verdict(Decision.RETRY, ErrorCode.CHALLENGE_NOT_SEEN)
    if any(s >= e.threshold and s > e.own_match for s in e.other_matches):
        return Verdict(Decision.REVIEW, ErrorCode.MATCHES_OTHER_PENSIONER)
    if e.fused_match is not None and e.fused_threshold is not None and any(
        s >= e.fused_threshold and s > e.fused_match for s in e.fused_other_matches
    ):
        return Verdict(Decision.REVIEW, ErrorCode.MATCHES_OTHER_PENSIONER)
    if e.fused_match is not None and e.fused_threshold is not None:
        if e.fused_match < e.fused_threshold:
            return Verdict(Decision.REVIEW, ErrorCode.LOW_MATCH)
    elif e.own_match < e.threshold:
        return Verdict(Decision.REVIEW, ErrorCode.LOW_MATCH)
    return Verdict(Decision.CONFIRMED, None)


def match_evidence(fusion: dict[str, Any] | None, hits: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The 1:1 and 1:N fields of :class:`Evidence` from the primary engine's 1:N ``hits`` and the
    fused result (``FusedMatch.as_dict()``, None when fusion is off or the pensioner has no
    second-model template): with fusion, others are judged by their fused scores, and by their
    primary score only when they lack a second-model template."""
    if fusion is None:
        return {"other_matches": [h["score"] for h in hits]}
    return {"fused_match": fusion["score"], "fused_threshold": fusion["threshold"],
            "other_matches": list(fusion.get("other_primary", [])),
            "fused_other_matches": list(fusion.get("other_fused", []))}


# REVIEW reasons that are signs of an attack, not of a hard time in front of the camera: a picture or screen
# (PAD, still, flat), someone else's face mixed in, another pensioner's face. While a case opened for one of them is
# undecided, a later self-service session of the same pensioner is not confirmed by the machine (:func:`hold`):
# otherwise an attacker whose replay was caught simply starts new sessions (10 an hour per ID number) until one
# gets through, and the per-session attack rates of benchmarks/README.md compound (`retry_attacker` section).
# LOW_MATCH and TOO_MANY_RETRIES are left out: they are what ageing faces and slow users get.
HOLD_REASONS: frozenset[str] = frozenset({
    ErrorCode.PRESENTATION_ATTACK, ErrorCode.LIVENESS_FAILED, ErrorCode.DIFFERENT_PERSONS,
    ErrorCode.MATCHES_OTHER_PENSIONER,
})


# Other cases that hold a pass the same way: a department's death record dated BEFORE a standing confirmation
# (datamatch: the face that confirmed may have been a replay of someone already dead; while the caseworker weighs
# the two records, another face pass settles nothing) and a tip-off naming the pensioner (冒领 reported). A tip-off
# anyone may file can thus delay a genuine pensioner's confirmation until a caseworker closes it: the same
# caseworker who must read the tip-off anyway.
EVIDENCE_HOLD_REASONS: frozenset[str] = frozenset({"DEATH_AFTER_CONFIRMATION", "TIP_OFF"})


def hold(decision: str, reason: str | None, held_by: int | None) -> tuple[str, str | None]:
    """A CONFIRMED session becomes REVIEW (HELD_FOR_REVIEW) when ``held_by`` names an undecided case of the same
    pensioner opened for one of :data:`HOLD_REASONS` or :data:`EVIDENCE_HOLD_REASONS`; any other decision
    stands (a RETRY or REVIEW gives an attacker nothing, and a held session is itself a case for the same
    caseworker)."""
    if decision == Decision.CONFIRMED and held_by is not None:
        return Decision.REVIEW, ErrorCode.HELD_FOR_REVIEW
    return decision, reason


def escalate(decision: str, reason: str | None, retries_before: int, max_retries: int) -> tuple[str, str | None]:
    """After ``max_retries`` RETRYs in a row the next RETRY becomes REVIEW (TOO_MANY_RETRIES)."""
    if decision == Decision.RETRY and retries_before >= max_retries:
        return Decision.REVIEW, ErrorCode.TOO_MANY_RETRIES
    return decision, reason


def consecutive_retries(decisions_newest_first: Sequence[str | None]) -> int:
    """How many RETRYs in a row end the pensioner's history (newest first)."""
    n = 0
    for d in decisions_newest_first:
        if d != Decision.RETRY:
            break
        n += 1
    return n


def pad_evidence(pad: PadModel | None, scores: Sequence[float]) -> dict[str, Any] | None:
    """The session's PAD result from per-frame P(real) (None when PAD is off): fused with the
    model's calibrated fusion, spoof when below its threshold. No scored frame is no evidence
    (framing rules deal with a session without a face), not a spoof."""
    if pad is None:
        return None
    fused = pad.fuse(scores) if scores else float("nan")
    return {
        "frames": len(scores),
        "score": None if fused != fused else round(float(fused), 4),  # fused P(real)
        "min": round(float(min(scores)), 4) if scores else None,
        "threshold": pad.threshold.value,
        "fusion": pad.threshold.fusion,
        "spoof": bool(scores) and pad.is_attack(fused),
    }
