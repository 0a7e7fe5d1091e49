"""Opening review cases: the one way a service puts a case in a queue.

A producer (verification, enrollment, data comparison, tip-offs, ...) builds a typed payload from
:mod:`lifecert.domain.cases` and calls :func:`open_case` in its own transaction; the queue
(``kind``) follows from the payload type. The case page reads the payload back with
:func:`lifecert.domain.cases.load_payload`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.orm import Session

from lifecert.domain.cases import (
    CasePayload,
    ChallengeOutcome,
    FaceHit,
    FrameRef,
    SpotCheck,
    UnreadablePayload,
    VerificationReview,
    dump_payload,
    kind_of,
    load_payload,
)
from lifecert.domain.errors import ErrorCode, LifecertError
from lifecert.storage.models import Pensioner, ReviewCase


def open_case(
    session: Session,
    payload: CasePayload,
    *,
    reason: str,
    pensioner: Pensioner | None = None,
    id_number: str | None = None,
    region_code: str | None = None,
    verification_session_id: str | None = None,
    enrollment_item_id: int | None = None,
) -> ReviewCase:
    """Queue a case in the caller's transaction. ``reason`` is an error/reason code such as
    LOW_MATCH or DUPLICATE_FACE. The payload is checked against its type before it is stored
    (a producer bug is a typed error here, never a row the case page cannot read)."""
    stored = dump_payload(payload)
    back = load_payload(stored)
    if isinstance(back, UnreadablePayload):
        raise LifecertError(f"invalid {payload.type} case payload: {back.error}", code=ErrorCode.BAD_REQUEST)
    case = ReviewCase(
        kind=str(kind_of(payload)),
        reason=reason,
        pensioner_id=pensioner.id if pensioner else None,
        id_number=id_number or (pensioner.id_number if pensioner else None),
        region_code=region_code or (pensioner.region_code if pensioner else None),
        verification_session_id=verification_session_id,
        enrollment_item_id=enrollment_item_id,
        payload=stored,
    )
    session.add(case)
    session.flush()
    return case


def _num(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _session_evidence(
    session_id: str,
    scores: Mapping[str, Any],
    challenge_results: Sequence[Mapping[str, Any]],
    best_frame_shas: Sequence[str],
    best_frame_indices: Sequence[int],
    model_key: str,
) -> dict[str, Any]:
    """The :class:`lifecert.domain.cases.SessionEvidence` fields of a session, from the analysis record the
    verification service keeps on it (``scores``: ``match``, ``threshold``, ``best_frames`` with index/t_ms/
    quality, ``pad``; ``challenge_results``: the liveness challenge dicts). ``best_frame_shas[i]`` is the
    stored photo of frame ``best_frame_indices[i]``."""
    meta = {int(f["index"]): f for f in scores.get("best_frames", ()) if isinstance(f, Mapping) and "index" in f}
    frames = []
    for sha, idx in zip(best_frame_shas, best_frame_indices, strict=False):
        m = meta.get(int(idx), {})
        frames.append(FrameRef(sha256=sha, index=int(idx), t_ms=m.get("t_ms"), quality=_num(m.get("quality")),
                               track_break=bool(m.get("track_break", False))))
    challenges = tuple(
        ChallengeOutcome(
            name=str(c.get("name", "?")), passed=c.get("passed") if isinstance(c.get("passed"), bool) else None,
            note=str(c.get("note") or ""), peak_value=_num(c.get("peak_value")), baseline=_num(c.get("baseline")),
            threshold=_num(c.get("threshold")), peak_t_ms=c.get("peak_t_ms"), frames=c.get("frames"),
        )
        for c in challenge_results
    )
    pad: Mapping[str, Any] = scores["pad"] if isinstance(scores.get("pad"), Mapping) else {}
    return {"session_id": session_id, "match": _num(scores.get("match")), "threshold": _num(scores.get("threshold")),
            "model_key": model_key, "best_frames": tuple(frames), "challenges": challenges,
            "pad_score": _num(pad.get("score")), "pad_threshold": _num(pad.get("threshold"))}


def verification_review(
    session_id: str,
    reason: str,
    underlying_reason: str | None,
    retry_count: int,
    scores: Mapping[str, Any],
    challenge_results: Sequence[Mapping[str, Any]],
    best_frame_shas: Sequence[str],
    best_frame_indices: Sequence[int],
    model_key: str,
) -> VerificationReview:
    """The review payload of a verification session (see :func:`_session_evidence` for the inputs; ``scores``
    also gives ``one_to_n`` and ``liveness_issue``)."""
    hits = tuple(FaceHit(pensioner_id=int(h["pensioner_id"]), score=float(h["score"]),
                         template_id=h.get("template_id"))
                 for h in scores.get("one_to_n", ()) if isinstance(h, Mapping))
    return VerificationReview(
        **_session_evidence(session_id, scores, challenge_results, best_frame_shas, best_frame_indices, model_key),
        reason=reason, underlying_reason=underlying_reason, retry_count=retry_count, one_to_n=hits,
        one_person_min_similarity=_num(scores.get("one_person_min_similarity")),
        liveness_issue=scores.get("liveness_issue"),
        analysis=dict(scores),
    )


def spot_check(
    session_id: str,
    reasons: Sequence[str],
    confirmation_id: int,
    method: str,
    pad_band: tuple[float, float] | None,
    sample_rate: float,
    scores: Mapping[str, Any],
    challenge_results: Sequence[Mapping[str, Any]],
    best_frame_shas: Sequence[str],
    best_frame_indices: Sequence[int],
    model_key: str,
) -> SpotCheck:
    """The spot-check payload of a CONFIRMED session (inputs as :func:`_session_evidence`)."""
    return SpotCheck(
        **_session_evidence(session_id, scores, challenge_results, best_frame_shas, best_frame_indices, model_key),
        reasons=tuple(reasons), confirmation_id=confirmation_id, method=method, pad_band=pad_band,
        sample_rate=sample_rate,
    )
