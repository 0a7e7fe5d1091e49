"""Spot checks of CONFIRMED sessions in the verification service: the policy in force (from settings
and the PAD pack's manifest entry) and the case a drawn session opens. The rule itself is
:mod:`lifecert.domain.spotcheck`.

The pensioner is told nothing: the session's answer is built from the session row alone, which
holds the same fields whether or not a case was opened (``review_case_id`` is never sent).

One open spot check per pensioner: a session drawn while the pensioner's spot-check case is still open
joins that case (:attr:`lifecert.domain.cases.SpotCheck.later`), so the caseworker sees every session
under check on one page and decides once. The database enforces it (a partial unique index, migration
0012): of two sessions drawn at the same instant, the one whose case INSERT loses joins the winner's case.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lifecert.config import Settings
from lifecert.domain.cases import DrawnSession, SpotCheck, dump_payload, load_payload
from lifecert.domain.spotcheck import SpotCheckPolicy, SpotCheckReason, jaw_unread_of, pad_score_of, still_chin_of
from lifecert.engine.pad import PadModel
from lifecert.services import audit
from lifecert.services.cases import open_case, spot_check
from lifecert.storage.models import Pensioner, ReviewCase, ReviewKind
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


@dataclass(frozen=True)
class Drawn:
    """A session put in front of a caseworker: its case, and whether that case was opened for it
    (``added``: it joined the pensioner's spot check already open)."""

    case: ReviewCase
    reasons: tuple[SpotCheckReason, ...]
    added: bool


def open_spot_check_of(db: Session, pensioner_id: int) -> tuple[ReviewCase, SpotCheck] | None:
    """The pensioner's oldest spot-check case not yet closed, locked for update (None: there is none,
    or its payload does not read as a spot check, which then is left alone)."""
    case = db.scalars(
        select(ReviewCase).where(ReviewCase.pensioner_id == pensioner_id, ReviewCase.kind == ReviewKind.SPOT_CHECK,
                                 ReviewCase.status != "closed")  # open or assigned
        .order_by(ReviewCase.id).limit(1).with_for_update()).first()
    if case is None:
        return None
    payload = load_payload(case.payload)
    return (case, payload) if isinstance(payload, SpotCheck) else None


def consider(
    db: Session,
    policy: SpotCheckPolicy,
    rng: random.Random,
    vs: VerificationSession,
    pensioner: Pensioner,
    confirmation_id: int,
    method: str,
    best_frame_indices: Sequence[int],
) -> Drawn | None:
    """After a CONFIRMED decision (``vs`` holds its scores, frames and challenge results): draw once from
    ``rng`` (for every confirmed session, whatever the outcome) and, when the policy says so, open a
    spot-check case, or add the session to the pensioner's spot check still open. Sets
    ``vs.review_case_id`` (so the frames are kept while the case is open and the session makes no
    refresh template until a person has looked). Runs in the caller's transaction."""
    score = pad_score_of(vs.scores or {})
    reasons = policy.reasons(score, rng.random(), still_chin_of(vs.scores or {}), jaw_unread_of(vs.scores or {}))
    if not reasons:
        return None
    payload = spot_check(vs.id, [str(r) for r in reasons], confirmation_id, method, policy.band, policy.sample_rate,
                         vs.scores or {}, vs.challenge_results or [], vs.best_frame_shas or [], best_frame_indices,
                         vs.model_key)
    detail = {"pensioner_id": pensioner.id, "verification_session_id": vs.id, "confirmation_id": confirmation_id,
              "reasons": [str(r) for r in reasons], "pad_score": score,
              "pad_band": list(policy.band) if policy.band else None, "sample_rate": policy.sample_rate}
    found = open_spot_check_of(db, pensioner.id)
    if found is None:
        try:
            with db.begin_nested():  # only the case's INSERT is undone if it loses the race below
                case = open_case(db, payload, reason=str(reasons[0]), pensioner=pensioner,
                                 verification_session_id=vs.id)
        except IntegrityError:
            # Another session of this pensioner, decided at the same instant, opened her spot check after our
            # read and committed first (the unique index uq_review_case_open_spot_check): join that case. The
            # confirmation and the pensioner's answer do not depend on which session won.
            found = open_spot_check_of(db, pensioner.id)
            if found is None:
                _not_joined(db, vs, detail)
                return None
        else:
            vs.review_case_id = case.id
            audit.record(db, actor="system", role="system", action="case.spot_check_opened",
                         object_type="review_case", object_id=case.id, detail=detail)
            return Drawn(case, reasons, added=False)
    case, open_payload = found
    entry = DrawnSession(**{f.name: getattr(payload, f.name) for f in fields(DrawnSession)})
    case.payload = dump_payload(replace(open_payload, later=(*open_payload.later, entry)))
    vs.review_case_id = case.id
    audit.record(db, actor="system", role="system", action="case.spot_check_added", object_type="review_case",
                 object_id=case.id, detail=detail | {"sessions": len(open_payload.later) + 2})
    return Drawn(case, reasons, added=True)


def _not_joined(db: Session, vs: VerificationSession, detail: dict[str, object]) -> None:
    """The pensioner has a spot check open whose payload does not read as one (a producer bug or a payload
    of a future version): the session cannot join it and the index forbids a second. The confirmation
    stands as always; the drawn session is logged and audited for a person to pick up, not dropped."""
    log.error("spot check: session %s was drawn but the pensioner's open spot-check case does not read as "
              "one; no case joined (audited as case.spot_check_not_joined)", vs.id)
    audit.record(db, actor="system", role="system", action="case.spot_check_not_joined",
                 object_type="verification_session", object_id=vs.id, detail=detail)


__all__ = ["Drawn", "SpotCheckPolicy", "SpotCheckReason", "consider", "open_spot_check_of", "pad_score_of",
           "policy_from"]
