"""Spot checks of CONFIRMED sessions in the verification service: the policy in force (from settings
and the PAD pack's manifest entry) and the case a drawn session opens. The rule itself is
:mod:`lifecert.domain.spotcheck`.

The pensioner is told nothing: the session's answer is built from the session row alone, which
holds the same fields whether or not a case was opened (``review_case_id`` is never sent).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence

from sqlalchemy.orm import Session

from lifecert.config import Settings
from lifecert.domain.spotcheck import SpotCheckPolicy, SpotCheckReason, pad_score_of
from lifecert.engine.pad import PadModel
from lifecert.services import audit
from lifecert.services.cases import open_case, spot_check
from lifecert.storage.models import Pensioner, ReviewCase
from lifecert.storage.models_verification import VerificationSession

log = logging.getLogger(__name__)


def policy_from(settings: Settings, pad: PadModel | None) -> SpotCheckPolicy:
    """The spot-check policy in force: the random sample's rate from settings; the PAD grey band's upper
    end from ``LIFECERT_VERIFICATION__AUDIT_PAD_BELOW`` when set, else the PAD pack's ``audit_below`` in
    the manifest; no band when PAD is off or neither gives one. A band that does not lie above the PAD
    threshold is a CONFIG_ERROR naming where it came from (the service does not start)."""
    v = settings.verification
    if pad is None:
        if v.audit_pad_below is not None:
            log.warning("LIFECERT_VERIFICATION__AUDIT_PAD_BELOW is set but PAD is off: no PAD grey band")
        return SpotCheckPolicy(sample_rate=v.audit_sample_rate)
    below: float | None
    if v.audit_pad_below is not None:
        below, source = v.audit_pad_below, "LIFECERT_VERIFICATION__AUDIT_PAD_BELOW"
    else:
        below, source = pad.threshold.audit_below, "models/manifest.toml [packs.minifasnet] audit_below"
    return SpotCheckPolicy(sample_rate=v.audit_sample_rate, pad_threshold=pad.threshold.value, pad_below=below,
                           band_source=source if below is not None else "")


def consider(
    db: Session,
    policy: SpotCheckPolicy,
    rng: random.Random,
    vs: VerificationSession,
    pensioner: Pensioner,
    confirmation_id: int,
    method: str,
    best_frame_indices: Sequence[int],
) -> ReviewCase | None:
    """After a CONFIRMED decision (``vs`` holds its scores, frames and challenge results): draw once from
    ``rng`` (for every confirmed session, whatever the outcome) and open a spot-check case when the policy
    says so. Sets ``vs.review_case_id`` (so the frames are kept while the case is open and the session
    makes no refresh template until a person has looked). Runs in the caller's transaction."""
    score = pad_score_of(vs.scores or {})
    reasons = policy.reasons(score, rng.random())
    if not reasons:
        return None
    payload = spot_check(vs.id, [str(r) for r in reasons], confirmation_id, method, policy.band, policy.sample_rate,
                         vs.scores or {}, vs.challenge_results or [], vs.best_frame_shas or [], best_frame_indices,
                         vs.model_key)
    case = open_case(db, payload, reason=str(reasons[0]), pensioner=pensioner, verification_session_id=vs.id)
    vs.review_case_id = case.id
    audit.record(db, actor="system", role="system", action="case.spot_check_opened", object_type="review_case",
                 object_id=case.id, detail={
                     "pensioner_id": pensioner.id, "verification_session_id": vs.id,
                     "confirmation_id": confirmation_id, "reasons": [str(r) for r in reasons], "pad_score": score,
                     "pad_band": list(policy.band) if policy.band else None,
                     "sample_rate": policy.sample_rate})
    return case


__all__ = ["SpotCheckPolicy", "SpotCheckReason", "consider", "pad_score_of", "policy_from"]
