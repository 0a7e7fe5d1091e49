"""Template refresh from verified selfies: the best frame of a verification session becomes an
extra template of kind ``refresh`` (rules: :mod:`lifecert.domain.refresh`).

* After a CONFIRMED session the verification service calls :func:`consider_session` (one call,
  in the caller's transaction). A session that went to review adds one only through
  :func:`approve_from_session` — a caseworker's explicit "use as template".
* The frame is taken from the photo store (the session's ``best_frame_shas``, best first), run
  through the production face pipeline with the enrollment quality gates and the configured
  enroll profile, sealed like every template, and recorded with its provenance (session, date,
  scores, who approved). At most ``settings.refresh.max_per_person`` per person and model: the
  oldest is retired. Each expires after ``valid_days`` (retired by :func:`expire_due` and never
  compared once past ``expires_at``, see ``templates.active_templates``). Every add, retire,
  expiry and revocation is audited; :func:`revoke` takes one back.
* 1:1 compares the probe with the ID templates and the refresh templates together (best score);
  1:N searches every active template.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from lifecert.domain.errors import ErrorCode, LifecertError, NotFound
from lifecert.domain.refresh import RefreshEvidence, refresh_refusal, refresh_to_retire
from lifecert.engine.fusion import fusion_spec
from lifecert.engine.manifest import ModelInfo
from lifecert.engine.pipeline import process_face
from lifecert.services import audit
from lifecert.services.context import AppContext
from lifecert.services.templates import add_template, retire_template
from lifecert.storage.models import FaceTemplate, Pensioner, TemplateKind, utcnow
from lifecert.storage.models_verification import Decision, VerificationSession


def verify_threshold(info: ModelInfo, kinds: Sequence[str]) -> float:
    """The 1:1 threshold for a comparison against templates of ``kinds``: with a refresh template
    among them the best of several impostor scores counts, so ``verify_refresh`` (calibrated for
    that by benchmarks/fusion.py) applies when the manifest has it."""
    if TemplateKind.REFRESH in kinds and "verify_refresh" in info.thresholds:
        return info.threshold("verify_refresh")
    return info.threshold("verify")


def evidence_of(vs: VerificationSession, *, approved: bool = False) -> RefreshEvidence:
    """What the session's stored decision and scores say (no recomputation)."""
    sc = vs.scores or {}
    live = sc.get("liveness") or {}
    challenges = live.get("challenges")
    passed = bool(vs.challenge_results) and all(bool(c.get("passed")) for c in vs.challenge_results)
    if isinstance(challenges, list) and challenges:
        passed = passed and all(bool(c.get("passed")) for c in challenges)
    pad = sc.get("pad")
    match, thr = sc.get("match"), sc.get("threshold")
    return RefreshEvidence(
        decision=str(vs.decision),
        went_to_review=vs.review_case_id is not None or vs.decision == Decision.REVIEW,
        caseworker_approved=approved,
        match=float(match) if isinstance(match, int | float) else None,
        threshold=float(thr) if isinstance(thr, int | float) else 1.0,
        challenges_passed=passed,
        liveness_issue=sc.get("liveness_issue"),
        pad_attack=None if not isinstance(pad, dict) else bool(pad.get("spoof")),
    )


def consider_session(
    ctx: AppContext, db: Session, vs: VerificationSession, pensioner: Pensioner, *, actor: str = "system",
    approved_by: str | None = None,
) -> FaceTemplate | None:
    """Add a refresh template from ``vs`` when the rules allow it; None (audited with the reason
    when the session was CONFIRMED) otherwise. Runs in the caller's transaction."""
    return consider_with_reason(ctx, db, vs, pensioner, actor=actor, approved_by=approved_by)[0]


def consider_with_reason(
    ctx: AppContext, db: Session, vs: VerificationSession, pensioner: Pensioner, *, actor: str = "system",
    approved_by: str | None = None,
) -> tuple[FaceTemplate | None, str]:
    """:func:`consider_session` that also says why not (``refresh_off``, a rule's refusal, ...)."""
    cfg = ctx.settings.refresh
    if not cfg.enabled:
        return None, "refresh_off"
    ev = evidence_of(vs, approved=approved_by is not None)
    refusal = refresh_refusal(ev, cfg.min_margin)
    if refusal is None and vs.model_key and vs.model_key != ctx.model.key:
        refusal = "other_model"
    if refusal is None:
        tpl, refusal = _add_from_frames(ctx, db, vs, pensioner, ev, approved_by)
        if tpl is not None:
            return tpl, ""
    if vs.decision == Decision.CONFIRMED or approved_by is not None:
        audit.record(db, actor=approved_by or actor, role="caseworker" if approved_by else "system",
                     action="template.refresh_skipped", object_type="verification_session", object_id=vs.id,
                     detail={"pensioner_id": pensioner.id, "reason": refusal})
    return None, str(refusal)


def _add_from_frames(
    ctx: AppContext, db: Session, vs: VerificationSession, p: Pensioner, ev: RefreshEvidence, approved_by: str | None,
) -> tuple[FaceTemplate | None, str]:
    st = ctx.settings
    last = "no_frames"
    for sha in vs.best_frame_shas or []:
        if db.scalars(select(FaceTemplate.id).where(FaceTemplate.pensioner_id == p.id,
                                                    FaceTemplate.photo_sha256 == sha,
                                                    FaceTemplate.model_key == ctx.model.key)).first() is not None:
            return None, "frame_already_a_template"
        try:
            data = ctx.photos.get(sha)
        except (LifecertError, OSError):
            last = "frame_missing"
            continue
        out = process_face(ctx.engine, data, st.quality, views=st.embedding.enroll_profile,
                           max_bytes=st.images.max_bytes, max_pixels=st.images.max_pixels)
        if out.embedding is None or out.reason is not None:
            last = f"frame_rejected:{out.reason}"
            continue
        now = utcnow()
        existing = [(t.id, t.created_at) for t in _active_refresh(db, p.id, ctx.model.key)]
        retire_ids = set(refresh_to_retire(existing, st.refresh.max_per_person))
        for t in _active_refresh(db, p.id, ctx.model.key):
            if t.id in retire_ids:
                retire_template(t)
                audit.record(db, actor="system", role="system", action="template.refresh_retired",
                             object_type="face_template", object_id=t.id,
                             detail={"pensioner_id": p.id, "reason": "oldest beyond max_per_person"})
        tpl = add_template(ctx, db, p, out.embedding, photo_sha256=sha, quality=out.quality or {},
                           kind=TemplateKind.REFRESH)
        tpl.source_session_id = vs.id
        tpl.expires_at = now + timedelta(days=st.refresh.valid_days)
        tpl.provenance = {
            "session_id": vs.id,
            "decided_at": vs.decided_at.isoformat() if vs.decided_at else None,
            "decision": vs.decision,
            "match": ev.match,
            "threshold": ev.threshold,
            "margin": None if ev.match is None else round(ev.match - ev.threshold, 4),
            "pad": (vs.scores or {}).get("pad"),
            "approved_by": approved_by,
            "frame_sha256": sha,
            "profile": st.embedding.enroll_profile,
        }
        second = _add_second(ctx, db, p, out, tpl)
        db.flush()
        audit.record(db, actor=approved_by or "system", role="caseworker" if approved_by else "system",
                     action="template.refresh_added", object_type="face_template", object_id=tpl.id,
                     detail={"pensioner_id": p.id, "session_id": vs.id, "retired": sorted(retire_ids),
                             "expires_at": tpl.expires_at.isoformat(),
                             "second_model_template": None if second is None else second.id})
        return tpl, ""
    return None, last


def _add_second(ctx: AppContext, db: Session, p: Pensioner, out: Any, tpl: FaceTemplate) -> FaceTemplate | None:
    """With fusion on, the same frame as a refresh template of the second model too (same face,
    provenance and expiry; the second model's refresh templates retire with the primary's)."""
    second = ctx.second_embedder()
    spec = fusion_spec(ctx.settings)
    if second is None or spec is None or out.image is None or out.face is None:
        return None
    emb = second.engine.embed_faces([(out.image, out.face)], second.profile)[0]
    keep = {t.photo_sha256 for t in _active_refresh(db, p.id, ctx.model.key)}  # after the primary's retirements
    for t in _active_refresh(db, p.id, spec.second_key):
        if t.photo_sha256 not in keep:
            retire_template(t)
    t2 = add_template(ctx, db, p, emb, photo_sha256=tpl.photo_sha256, quality=tpl.quality, kind=TemplateKind.REFRESH,
                      model_key=spec.second_key, engine=spec.second, profile=second.profile)
    t2.source_session_id, t2.expires_at = tpl.source_session_id, tpl.expires_at
    t2.provenance = dict(tpl.provenance or {}) | {"profile": second.profile, "primary_template_id": tpl.id}
    return t2


def _active_refresh(db: Session, pensioner_id: int, model_key: str) -> list[FaceTemplate]:
    return list(db.scalars(select(FaceTemplate).where(
        FaceTemplate.pensioner_id == pensioner_id, FaceTemplate.model_key == model_key,
        FaceTemplate.kind == TemplateKind.REFRESH, FaceTemplate.active.is_(True),
    ).order_by(FaceTemplate.id)))


def approve_from_session(ctx: AppContext, session_id: str, *, actor: str) -> FaceTemplate:
    """A caseworker's "use as template" on a session that went to review (or any decided session):
    adds the refresh template or raises BAD_REQUEST saying why not."""
    with ctx.db.session() as db:
        vs = db.get(VerificationSession, session_id)
        if vs is None or vs.decision is None:
            raise NotFound("no decided verification session with this id")
        p = db.get(Pensioner, vs.pensioner_id)
        if p is None:  # pragma: no cover - cascade
            raise NotFound("no such pensioner")
        tpl = consider_session(ctx, db, vs, p, approved_by=actor)
        if tpl is None:
            raise LifecertError("this session's frames cannot become a template (see the audit log for why)",
                                code=ErrorCode.BAD_REQUEST)
        return tpl


def revoke(ctx: AppContext, template_id: int, *, actor: str, reason: str = "") -> None:
    """Take a refresh template back (it stops counting at once; the row stays for the audit trail)."""
    with ctx.db.session() as db:
        t = db.get(FaceTemplate, template_id)
        if t is None or t.kind != TemplateKind.REFRESH:
            raise NotFound("no refresh template with this id")
        revoke_in(db, t, actor=actor, reason=reason)


def revoke_in(db: Session, t: FaceTemplate, *, actor: str, role: str = "caseworker", reason: str = "",
              client_addr: str = "") -> list[int]:
    """Revoke refresh template ``t`` and the same frame's template of any other model, in the
    caller's transaction (audited). Returns the ids revoked now (none when already revoked)."""
    if t.revoked_at is not None:
        return []
    now = utcnow()
    same = db.scalars(select(FaceTemplate).where(
        FaceTemplate.pensioner_id == t.pensioner_id, FaceTemplate.photo_sha256 == t.photo_sha256,
        FaceTemplate.kind == TemplateKind.REFRESH, FaceTemplate.revoked_at.is_(None)))
    ids = []
    for x in {t, *same}:
        retire_template(x)
        x.revoked_at = now
        ids.append(x.id)
    audit.record(db, actor=actor, role=role, action="template.refresh_revoked", object_type="face_template",
                 object_id=t.id, client_addr=client_addr,
                 detail={"pensioner_id": t.pensioner_id, "session_id": t.source_session_id, "reason": reason[:200],
                         "templates": sorted(ids)})
    return sorted(ids)


def expire_due(ctx: AppContext, *, now: Any = None) -> int:
    """Retire every active template past its ``expires_at``; returns how many (audited)."""
    at = now or utcnow()
    with ctx.db.session() as db:
        due = list(db.scalars(select(FaceTemplate).where(
            FaceTemplate.active.is_(True), FaceTemplate.expires_at.is_not(None), FaceTemplate.expires_at <= at)))
        for t in due:
            retire_template(t)
            audit.record(db, actor="system", role="system", action="template.refresh_expired",
                         object_type="face_template", object_id=t.id, detail={"pensioner_id": t.pensioner_id})
        return len(due)


def refresh_templates_of(ctx: AppContext, pensioner_id: int) -> list[dict[str, Any]]:
    """The refresh templates of a pensioner (active or not) with their provenance, for the case page."""
    with ctx.db.session() as db:
        return [
            {"template_id": t.id, "model_key": t.model_key, "active": t.active, "created_at": t.created_at.isoformat(),
             "expires_at": t.expires_at.isoformat() if t.expires_at else None,
             "revoked_at": t.revoked_at.isoformat() if t.revoked_at else None, "provenance": dict(t.provenance or {})}
            for t in db.scalars(select(FaceTemplate).where(FaceTemplate.pensioner_id == pensioner_id,
                                                           FaceTemplate.kind == TemplateKind.REFRESH)
                                .order_by(FaceTemplate.id))
        ]
