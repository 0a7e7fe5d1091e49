"""Template refresh rules (pure): when the best frame of a verification session may become an
extra template of kind ``refresh``, and which refresh templates to drop.

ID photos are often 10–20 years older than the face at the camera; a verified recent selfie
narrows the age gap for later sessions. The risk is learning an impostor's face, so a refresh
is taken only from a session that was CONFIRMED with a clear margin over the verify threshold
and passed every liveness and presentation-attack check — or, for a session that went to
review, only when a caseworker explicitly ticked "use as template".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class RefreshEvidence:
    """What a session showed. ``match``/``threshold``: cosine of the probe to the pensioner's
    templates and the verify threshold; ``pad_attack``: None when PAD did not run."""

    decision: str  # lifecert.storage.models.Decision value
    went_to_review: bool
    caseworker_approved: bool
    match: float | None
    threshold: float
    challenges_passed: bool
    liveness_issue: str | None = None
    pad_attack: bool | None = None


NOT_CONFIRMED = "not_confirmed"
REVIEW_NOT_APPROVED = "review_not_approved"
LOW_MARGIN = "low_margin"
LIVENESS = "liveness_not_passed"
PAD = "presentation_attack"
NO_MATCH = "no_match_score"


def refresh_refusal(ev: RefreshEvidence, min_margin: float) -> str | None:
    """None when the session may add a refresh template, else why not (a stable code)."""
    if ev.pad_attack:
        return PAD
    if ev.went_to_review:
        # A caseworker looked at the frames and vouched for them: their tick replaces the margin rule.
        return None if ev.caseworker_approved else REVIEW_NOT_APPROVED
    if ev.decision != "CONFIRMED":
        return NOT_CONFIRMED
    if not ev.challenges_passed or ev.liveness_issue:
        return LIVENESS
    if ev.match is None:
        return NO_MATCH
    if ev.match - ev.threshold < min_margin:
        return LOW_MARGIN
    return None


def refresh_to_retire(existing: Sequence[tuple[int, datetime]], max_per_person: int) -> list[int]:
    """Ids of active refresh templates to drop so that, after adding one more, at most
    ``max_per_person`` remain: the oldest first (``existing``: (id, created_at))."""
    keep = max(0, max_per_person - 1)
    ordered = sorted(existing, key=lambda t: (t[1], t[0]))
    return [tid for tid, _ in ordered[: max(0, len(ordered) - keep)]]
