"""Phone-browser proof of life: sessions, frame analysis and the decision.

Flow: :meth:`VerificationService.create_session` checks the person (same NOT_FOUND for an
unknown ID number, a wrong name, a suspended pension or no template, so the endpoint does not
reveal who is enrolled), draws 2–3 challenges under :mod:`lifecert.domain.challenges` and
issues a single-use nonce. :meth:`submit_frames` runs the cheap checks (nonce, frame count,
timestamps, sizes and image signatures — a failure here is a typed error and changes nothing),
claims the nonce atomically, decodes (a frame that fails to decode now has burnt the nonce),
then analyses the frames:

1. detection + 68-point landmarks on every frame (cheap; detection runs on a copy scaled to
   ``FRAME_DETECT_MAX_SIDE``) and crop quality; framing gates (no face, several faces, too
   dark, not centred, too few usable frames) give RETRY;
2. landmark liveness (:mod:`lifecert.engine.liveness`): a still image → REVIEW (LIVENESS_FAILED);
3. embeddings of only the ``embed_best_k`` best frames, one per time segment (plus frames
   around a tracking break): they must agree (one person) → else REVIEW (DIFFERENT_PERSONS);
4. flat-photo test when there was enough head motion → REVIEW (LIVENESS_FAILED);
5. each challenge seen in its window → else RETRY (CHALLENGE_NOT_SEEN);
6. 1:1: quality-weighted fusion of the best embeddings vs all active templates;
   1:N: no other pensioner may match better → REVIEW (LOW_MATCH / MATCHES_OTHER_PENSIONER);
7. CONFIRMED records a survival confirmation. After ``max_retries_before_review`` RETRYs in a
   row the next failure goes to REVIEW (TOO_MANY_RETRIES).

Rate limits (in-memory token buckets, per process): per client address; per (normalised ID
number, client address), so a stranger who knows an ID number exhausts only their own bucket;
and a looser per-ID cap over all clients (``ID_ALL_CLIENTS_FACTOR`` x) counted only for
requests that also named the person correctly.
"""

from __future__ import annotations

import hashlib
import logging
import random
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray
from sqlalchemy import select
from sqlalchemy.orm import Session

from lifecert.config import Settings
from lifecert.domain import challenges as challenge_policy
from lifecert.domain.errors import ErrorCode, LifecertError, NotFound
from lifecert.domain.idnumber import normalize_id_number, parse_id_number
from lifecert.engine.base import FaceEngine, l2_normalize
from lifecert.engine.liveness import FrameObs, LivenessParams, analyze_liveness
from lifecert.engine.loader import load_engine
from lifecert.engine.pad import PadModel, box_xyxy_to_xywh
from lifecert.services import audit, refresh
from lifecert.services.assisted import assisted_by
from lifecert.services.cases import open_case, verification_review
from lifecert.services.confirmations import record_confirmation
from lifecert.services.context import AppContext
from lifecert.services.fusion import FusedScorer
from lifecert.services.metrics import Metrics
from lifecert.services.ratelimit import Limiter, make_limiter
from lifecert.services.templates import (
    active_templates,
    get_pensioner,
    match_pensioner,
    normalize_name,
    search,
    store_photo,
)
from lifecert.services.verification import frames as fa
from lifecert.services.verification import paced, rules
from lifecert.services.verification.messages import NOT_FOUND_MESSAGE, WAITING, message_for
from lifecert.services.verification.rules import Analysis
from lifecert.services.verification.sessions import (
    TAIL_MS,
    check_session,
    claim_nonce,
    parse_timestamps,
    sha256_hex,
    utcnow,
)
from lifecert.services.verification.store import seal_frames
from lifecert.storage.models import ConfirmationMethod, Pensioner, PensionerStatus
from lifecert.storage.models_verification import Decision, VerificationSession

log = logging.getLogger(__name__)

LEAD_IN_MS = 1500
CHALLENGE_WINDOW_MS = 3000
TARGET_FPS = 8
ID_ALL_CLIENTS_FACTOR = 3  # per-ID cap over all clients = this x the per-(ID, client) limit


# -- value objects ------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionStart:
    session_id: str
    nonce: str
    expires_at: datetime
    challenges: list[str]
    lead_in_ms: int
    challenge_window_ms: int
    fps: int
    min_frames: int
    max_frames: int


@dataclass(frozen=True)
class SessionResult:
    session_id: str
    decision: str | None
    reason_code: str | None
    message_zh: str
    message_en: str
    challenges: list[tuple[str, bool | None]]
    valid_until: date | None = None
    missed_challenge: str | None = None  # paced: the step whose window ran out




# -- the service ------------------------------------------------------------------------------


def load_frame_engine(settings: Settings, name: str | None = None) -> FaceEngine:
    """A new engine tuned for selfie frames: detection on a copy scaled to FRAME_DETECT_MAX_SIDE
    (selfie faces are large) and no slow CNN fallback when HOG finds nothing (a frame without a
    face is an answer, not a reason to spend a second)."""
    images = settings.images.model_copy(update={"detect_max_side": fa.FRAME_DETECT_MAX_SIDE})
    return load_engine(settings.model_copy(update={"images": images}), name, cnn_fallback=False)


class VerificationService:
    """One per process; shared by request threads (no per-request state on the object).

    ``engine_factory`` builds one NEW engine per inference thread (default:
    :func:`load_frame_engine`); it must not hand the same engine to two threads.
    """

    def __init__(
        self,
        ctx: AppContext,
        params: LivenessParams | None = None,
        engine_factory: Callable[[], FaceEngine] | None = None,
        pad: PadModel | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.ctx = ctx
        self.params = params or LivenessParams()
        self.pad_model = pad  # None: PAD off (pack not installed); read-only, shared by threads
        self.clock = clock  # UTC now; tests of the paced timeline pass a virtual clock
        v = ctx.settings.verification
        # Shared by every API node (Redis or the database) outside development: services/ratelimit.py.
        s, db = ctx.settings, ctx.db
        self.by_id = make_limiter(s, db, "session.id_client", v.rate_limit_per_id_per_hour)  # key: (ID, client)
        self.by_id_all = make_limiter(  # key: ID number
            s, db, "session.id", v.rate_limit_per_id_per_hour * ID_ALL_CLIENTS_FACTOR
        )
        self.by_client = make_limiter(s, db, "session.client", v.rate_limit_per_client_per_hour)
        self.metrics: Metrics | None = None  # set by the server (server/routes/metrics.py)
        self.rng: random.Random = secrets.SystemRandom()  # challenge draws and prompt jitter
        self._local = threading.local()
        self._engine_factory = engine_factory or (lambda: load_frame_engine(ctx.settings))
        self.paced = paced.PacedCapture(self, self.params)
        # models: fused 1:1 with a second engine when installed and calibrated (None: primary alone)
        self.fusion = FusedScorer.from_settings(ctx)

    def fused_evidence(
        self, db: Session, pensioner_id: int, own: float, faces: list[tuple[Any, Any]], weights: NDArray[np.float32],
        *, with_refresh: bool = False, probe: NDArray[np.float32] | None = None,
    ) -> dict[str, Any] | None:
        """The fused 1:1 score of the best faces (None: fusion off or no template of the second model);
        with ``probe`` (the primary engine's fused probe) also the fused 1:N scores of others."""
        if self.fusion is None or not faces:
            return None
        m = self.fusion.one_to_one(db, pensioner_id, own, faces, weights, with_refresh=with_refresh,
                                   primary_probe=probe)
        return None if m is None else m.as_dict()

    def pad_verdict(self, scores: list[float]) -> dict[str, Any] | None:
        """Fused PAD over a session's per-frame P(real) (None when PAD is off)."""
        return rules.pad_evidence(self.pad_model, scores)

    # -- engine ---------------------------------------------------------------------------
    @property
    def frame_engine(self) -> FaceEngine:
        """This thread's engine, built once by the factory.

        dlib's HOG detector and recognition network keep per-call state, so one engine must
        not serve two threads at once: every inference thread loads its own (once; threads
        of the pool live as long as the server). dlib also holds the GIL while it computes,
        so CPU parallelism comes from server processes (``lifecert serve --workers``).
        """
        fe: FaceEngine | None = getattr(self._local, "engine", None)
        if fe is None:
            fe = self._engine_factory()
            self._local.engine = fe
        return fe

    def warm_up(self) -> None:
        """Load models and run each stage once (first calls allocate), build the 1:N index."""
        fe = self.frame_engine
        img = np.full((480, 360, 3), 128, dtype=np.uint8)
        cv2.circle(img, (180, 220), 90, (150, 170, 200), -1)
        fe.detect(img)
        fe.embed_aligned([np.full((*self.ctx.model.input_size, 3), 128, dtype=np.uint8)])
        with self.ctx.db.session() as s:
            self.ctx.index.get(s, self.ctx.model.key)
            if self.fusion is not None:  # the fused 1:N searches the second model's index too
                self.ctx.index.get(s, self.fusion.spec.second_key)

    # -- sessions -------------------------------------------------------------------------
    def _challenges_for(self, db: Session, pensioner_id: int) -> list[str]:
        """The fixed list (demos/tests), else the set of this pensioner's session created within
        the session lifetime in a new random order (a redraw costs a session and gives no easier
        set), else a fresh draw."""
        fixed = self.ctx.settings.fixed_challenge_list
        if fixed:
            return list(fixed)
        since = utcnow() - timedelta(seconds=self.ctx.settings.verification.session_ttl_seconds)
        recent = db.scalars(
            select(VerificationSession.challenges)
            .where(VerificationSession.pensioner_id == pensioner_id, VerificationSession.created_at >= since)
            .order_by(VerificationSession.created_at.desc())
            .limit(1)
        ).first()
        if recent and challenge_policy.policy_violation(recent) is None:
            again = list(recent)
            self.rng.shuffle(again)
            return again
        return challenge_policy.draw(self.rng)

    def _rate_limit(self, key_id: str, client_addr: str) -> None:
        """Per client address, then per (ID number, client): a stranger who knows an ID number
        exhausts only their own bucket for it, not the pensioner's."""
        for limiter, key, what in (
            (self.by_client, client_addr, "client"),
            (self.by_id, f"{key_id}|{client_addr}", "ID number"),
        ):
            self._take(limiter, key, what)

    @staticmethod
    def _take(limiter: Limiter, key: str, what: str) -> None:
        wait = limiter.take(key)
        if wait > 0:
            raise LifecertError(
                f"too many sessions for this {what}; try again later",
                code=ErrorCode.RATE_LIMITED,
                retry_after=int(wait) + 1,
            )

    def create_session(
        self, id_number: str, name: str, client_addr: str = "", protocol: str = "oneshot"
    ) -> SessionStart | paced.PacedStart:
        """Refuses with the same NOT_FOUND (and the same database work) for an unknown ID number,
        a wrong name, a suspended pension or no template: the endpoint reveals nothing about who
        is enrolled or suspended.

        ``protocol``: "paced" (the pensioner page). The one-shot upload hands the client the whole
        challenge list in advance, which is what a replay needs, so it is refused outside
        development and test; it stays there only for the older tests and benchmark until they move.
        """
        if protocol != paced.PROTOCOL and self.ctx.settings.env not in ("development", "test"):
            raise LifecertError(
                'the one-shot upload is retired; start the session with protocol "paced"',
                code=ErrorCode.BAD_REQUEST,
            )
        self._rate_limit(normalize_id_number(id_number), client_addr)
        idn = parse_id_number(id_number)
        s = self.ctx.settings
        with self.ctx.db.session() as db:
            p = get_pensioner(db, idn.value)
            has_template = bool(active_templates(db, p.id if p is not None else -1, self.ctx.model.key))
            why = None
            if p is None:
                why = "unknown ID number"
            elif normalize_name(p.name) != normalize_name(name):
                why = "name does not match"
            elif p.status != PensionerStatus.ACTIVE:
                why = f"status {p.status}"
            elif not has_template:
                why = "no face template"
            if why or p is None:
                log.info("session refused (%s) for %s from %s", why, idn.masked(), client_addr)
                raise NotFound(NOT_FOUND_MESSAGE)
            # The looser cap over all clients counts only sessions that named the person correctly.
            self._take(self.by_id_all, idn.value, "ID number")
            challenges = self._challenges_for(db, p.id)
            total_ms = LEAD_IN_MS + len(challenges) * CHALLENGE_WINDOW_MS
            fps = max(1, min(TARGET_FPS, s.verification.max_frames * 1000 // total_ms))
            nonce = secrets.token_urlsafe(24)
            vs = VerificationSession(
                id=secrets.token_urlsafe(18),
                pensioner_id=p.id,
                nonce_hash=sha256_hex(nonce),
                challenges=challenges,
                lead_in_ms=LEAD_IN_MS,
                challenge_window_ms=CHALLENGE_WINDOW_MS,
                created_at=self.clock(),
                expires_at=self.clock() + timedelta(seconds=s.verification.session_ttl_seconds),
                model_key=self.ctx.model.key,
                client_addr=client_addr[:64],
            )
            start = self.paced.start(db, vs, nonce) if protocol == paced.PROTOCOL else None
            db.add(vs)
            db.flush()
            audit.record(
                db,
                actor="pensioner",
                role="pensioner",
                action="verification.session_created",
                object_type="verification_session",
                object_id=vs.id,
                client_addr=client_addr,
                detail={"pensioner_id": p.id, "challenges": challenges, "protocol": vs.protocol},
            )
            if start is not None:
                return start
            return SessionStart(
                session_id=vs.id,
                nonce=nonce,
                expires_at=vs.expires_at,
                challenges=challenges,
                lead_in_ms=LEAD_IN_MS,
                challenge_window_ms=CHALLENGE_WINDOW_MS,
                fps=fps,
                min_frames=s.verification.min_frames,
                max_frames=s.verification.max_frames,
            )

    def get_result(self, session_id: str) -> SessionResult:
        with self.ctx.db.session() as db:
            vs = db.get(VerificationSession, session_id)
            if vs is None:
                raise NotFound("no such verification session")
            return self._result(db, vs)

    def _result(self, db: Session, vs: VerificationSession) -> SessionResult:
        passed = {r.get("name"): r.get("passed") for r in vs.challenge_results or []}
        ch: list[tuple[str, bool | None]] = [
            (c, bool(passed[c]) if c in passed else (None if vs.decision is None else False))
            for c in paced.revealed_challenges(vs)
        ]
        missed = vs.scores.get("missed_challenge") if vs.decision is not None and vs.scores else None
        if vs.decision is None:
            zh, en = WAITING
        else:
            zh, en = message_for(vs.reason_code)
        valid_until = None
        if vs.confirmation_id is not None:
            from lifecert.storage.models import SurvivalConfirmation

            conf = db.get(SurvivalConfirmation, vs.confirmation_id)
            valid_until = conf.valid_until if conf else None
        return SessionResult(vs.id, vs.decision, vs.reason_code, zh, en, ch, valid_until, missed)

    # -- paced chunks ---------------------------------------------------------------------
    def submit_chunk(
        self,
        session_id: str,
        step: int,
        nonce: str,
        timestamps: str | list[int],
        frames: list[bytes],
        client_addr: str = "",
        received_at: datetime | None = None,
    ) -> paced.ChunkResult:
        """One chunk of a paced session (see :mod:`.paced`); ``received_at``: when it arrived."""
        return self.paced.submit_chunk(session_id, step, nonce, timestamps, frames, client_addr, received_at)

    # -- upload ---------------------------------------------------------------------------
    def submit_frames(
        self, session_id: str, nonce: str, timestamps: str | list[int], frames: list[bytes], client_addr: str = ""
    ) -> SessionResult:
        """Validate, analyse and decide one upload. Input errors raise before anything is recorded."""
        v = self.ctx.settings.verification
        with self.ctx.db.session() as db:
            vs = check_session(db, session_id, nonce)
            if len(frames) < v.min_frames:
                raise LifecertError(
                    f"{len(frames)} frames; at least {v.min_frames} needed",
                    code=ErrorCode.TOO_FEW_FRAMES,
                    min_frames=v.min_frames,
                )
            if len(frames) > v.max_frames:
                raise LifecertError(
                    f"{len(frames)} frames; at most {v.max_frames} allowed",
                    code=ErrorCode.TOO_MANY_FRAMES,
                    max_frames=v.max_frames,
                )
            end = vs.lead_in_ms + len(vs.challenges) * vs.challenge_window_ms + TAIL_MS
            ts = parse_timestamps(timestamps, len(frames), end)
            challenges = list(vs.challenges)
            lead_in, window = vs.lead_in_ms, vs.challenge_window_ms
        lim = self.ctx.settings.images
        fa.check_frame_bytes(frames, max_bytes=lim.max_bytes)
        # Claim the nonce before any decoding: a replayed or concurrent upload costs no CPU, and a
        # frame that fails to decode below has burnt the nonce (the page starts a new session).
        with self.ctx.db.session() as db:
            claim_nonce(db, session_id, len(frames))
        decoded = fa.decode_frames(frames, max_bytes=lim.max_bytes, max_pixels=lim.max_pixels)
        t0 = time.perf_counter()
        infos = [
            fa.FrameInfo(i, t, img, size, FrameObs(t, None))
            for i, ((img, size), t) in enumerate(zip(decoded, ts, strict=True))
        ]
        with self.ctx.db.session() as db:
            row = db.get(VerificationSession, session_id)
            if row is None:  # pragma: no cover - deleted concurrently
                raise NotFound("no such verification session")
            vs = row
            pensioner = db.get(Pensioner, vs.pensioner_id)
            if pensioner is None:  # pragma: no cover - cascade
                raise NotFound("no such verification session")
            analysis = self._analyze(db, pensioner, infos, challenges, lead_in, window)
            analysis.scores["analysis_ms"] = round((time.perf_counter() - t0) * 1000, 1)
            self._decide(db, vs, pensioner, analysis, infos, frames, ts, client_addr)
            return self._result(db, vs)

    # -- analysis -------------------------------------------------------------------------
    def _analyze(
        self, db: Session, p: Pensioner, infos: list[fa.FrameInfo], challenges: list[str], lead_in: int, window: int
    ) -> Analysis:
        v = self.ctx.settings.verification
        fa.observe(self.frame_engine, infos)
        usable = [f for f in infos if f.obs.has_face and f.obs.num_faces == 1]
        frames_summary = {
            "total": len(infos),
            "with_face": sum(1 for f in infos if f.obs.has_face),
            "usable": len(usable),
            "multi_face": sum(1 for f in infos if f.obs.num_faces > 1),
            "median_brightness": round(float(np.median([f.brightness for f in usable])), 1) if usable else None,
        }
        reason = fa.framing_reason(infos, usable, self.ctx.settings.quality, v.min_frames)
        if reason:
            # Keep the sharpest face frames anyway: a caseworker may see them after repeated RETRYs.
            seen = sorted((f for f in infos if f.obs.has_face), key=lambda f: -f.sharpness)[: v.embed_best_k]
            return Analysis(Decision.RETRY, str(reason), None, {"frames": frames_summary}, [f.index for f in seen])
        live = analyze_liveness([f.obs for f in infos], challenges, lead_in, window, self.params)
        scores: dict[str, Any] = {"frames": frames_summary, "liveness": live.as_dict()}
        for f in usable:
            f.quality = fa.quality_score(f.obs.landmarks, f.sharpness, f.brightness, live.baseline.ear)
        best, extra = fa.pick_best(usable, v.embed_best_k, live.track_breaks)
        if live.still:
            scores["liveness_issue"] = "still_image"
            return Analysis(Decision.REVIEW, ErrorCode.LIVENESS_FAILED, live, scores, [f.index for f in best])
        pad = None
        if self.pad_model is not None:
            scored = [f for f in usable if f.face is not None]
            boxes = [box_xyxy_to_xywh(f.face.box) for f in scored if f.face is not None]
            probs = self.pad_model.score_many([f.image for f in scored], boxes)
            pad = self.pad_verdict([float(x) for x in probs])
            scores["pad"] = pad
        faces = [(f.image, f.face) for f in best + extra if f.face is not None]
        embs = self.frame_engine.embed_faces(faces, self.ctx.settings.embedding.probe_profile)
        thr = self.ctx.model.threshold("verify")
        sims = embs @ embs.T
        one_person_min = float(sims.min()) if len(embs) > 1 else 1.0
        scores["best_frames"] = [{"index": f.index, "t_ms": f.t_ms, "quality": round(f.quality, 4)} for f in best] + [
            {"index": f.index, "t_ms": f.t_ms, "quality": round(f.quality, 4), "track_break": True} for f in extra
        ]
        scores["one_person_min_similarity"] = round(one_person_min, 4)
        nb = len(best)
        w = np.array([max(f.quality, 1e-3) for f in best], dtype=np.float32)
        fused: NDArray[np.float32] = l2_normalize((embs[:nb] * w[:, None]).sum(axis=0))
        matches = match_pensioner(self.ctx, db, p.id, fused)
        own = matches[0].score
        thr = refresh.verify_threshold(self.ctx.model, [m.kind for m in matches])
        hits = [
            {"pensioner_id": h.pensioner_id, "template_id": h.template_id, "score": round(h.score, 4)}
            for h in search(self.ctx, db, fused, k=5)
            if h.pensioner_id != p.id
        ]
        scores |= {
            "match": round(own, 4),
            "match_template_id": matches[0].template_id,
            "templates_compared": len(matches),
            "threshold": thr,
            "model_key": self.ctx.model.key,
            "one_to_n": hits,
        }
        fz = self.fused_evidence(db, p.id, own, faces[:nb], w, with_refresh=thr != self.ctx.model.threshold("verify"),
                                 probe=fused)
        if fz is not None:
            scores["fusion"] = fz
        verdict = rules.decide(
            rules.Evidence(
                threshold=thr,
                own_match=own,
                one_person_min=one_person_min,
                **rules.match_evidence(fz, hits),
                flat=live.flat.decided and live.flat.flat,
                challenges_passed=live.all_challenges_passed,
                pad_spoof=bool(pad and pad["spoof"]),
            )
        )
        if verdict.issue:
            scores["liveness_issue"] = verdict.issue
        reason_s = str(verdict.reason) if verdict.reason else None
        return Analysis(verdict.decision, reason_s, live, scores, [f.index for f in best], hits, own)

    # -- decision and records -------------------------------------------------------------
    def _consecutive_retries(self, db: Session, pensioner_id: int, exclude: str) -> int:
        rows = db.scalars(
            select(VerificationSession.decision)
            .where(
                VerificationSession.pensioner_id == pensioner_id,
                VerificationSession.decision.is_not(None),
                VerificationSession.id != exclude,
            )
            .order_by(VerificationSession.decided_at.desc())
            .limit(50)
        ).all()
        return rules.consecutive_retries(rows)

    def _decide(
        self,
        db: Session,
        vs: VerificationSession,
        p: Pensioner,
        a: Analysis,
        infos: list[fa.FrameInfo],
        frames: list[bytes],
        ts: list[int],
        client_addr: str,
    ) -> None:
        """One-shot upload: seal all frames, then record."""
        vs.frames_blob = seal_frames(self.ctx, vs.id, frames, ts)
        best = [(frames[i], infos[i].size, f"frame {i}") for i in a.best]
        results = (
            [c.as_dict() for c in a.liveness.challenges]
            if a.liveness
            else [{"name": c, "passed": False, "note": "not evaluated"} for c in vs.challenges]
        )
        self._record(db, vs, p, a, best, results, client_addr)

    def _record(
        self,
        db: Session,
        vs: VerificationSession,
        p: Pensioner,
        a: Analysis,
        best: list[tuple[bytes, tuple[int, int], str]],
        challenge_results: list[dict[str, Any]],
        client_addr: str,
    ) -> None:
        """Write the decision: best frames to the photo store, the confirmation or the review case,
        the audit event. ``best``: (JPEG bytes, original (w, h), label) per kept frame."""
        v = self.ctx.settings.verification
        retries = self._consecutive_retries(db, p.id, vs.id)
        vs.retry_count = retries
        decision, reason = rules.escalate(a.decision, a.reason, retries, v.max_retries_before_review)
        if reason != a.reason:
            vs.detail_reason = a.reason
        shas = []
        for data, (w, h), label in best:
            sha = hashlib.sha256(data).hexdigest()
            store_photo(self.ctx, db, data, sha, w, h, original_name=f"session {vs.id} {label}")
            shas.append(sha)
        vs.best_frame_shas = shas
        vs.decision = decision
        vs.reason_code = str(reason) if reason else None
        vs.scores = a.scores
        vs.challenge_results = challenge_results
        vs.decided_at = utcnow()
        if decision == Decision.CONFIRMED:
            helper = assisted_by(db, vs.id)  # a community worker ran this capture (issue 15): method `assisted`
            conf = record_confirmation(
                db,
                p,
                ConfirmationMethod.ASSISTED if helper else ConfirmationMethod.FACE_SELF_SERVICE,
                date.today(),
                f"verification_session:{vs.id}",
                {
                    "session_id": vs.id,
                    "model_key": self.ctx.model.key,
                    "match": a.scores.get("match"),
                    "threshold": a.scores.get("threshold"),
                    "challenges": [c["name"] for c in vs.challenge_results if c.get("passed")],
                    "one_person_min_similarity": a.scores.get("one_person_min_similarity"),
                    "best_frame_shas": shas,
                }
                | (helper.evidence() if helper else {}),
                created_by=helper.worker_id if helper else None,
                cycle_months=self.ctx.settings.confirmation_cycle_months,
            )
            vs.confirmation_id = conf.id
            # Template refresh (models): the best frame may become a `refresh` template. Not from an
            # assisted session: the path fraud rings use must not move anyone's templates.
            if helper is None:
                refresh.consider_session(self.ctx, db, vs, p)
        elif decision == Decision.REVIEW:
            case = open_case(
                db,
                verification_review(vs.id, str(reason), vs.detail_reason, retries, a.scores, challenge_results,
                                    shas, a.best, self.ctx.model.key),
                reason=str(reason),
                pensioner=p,
                verification_session_id=vs.id,
            )
            vs.review_case_id = case.id
        audit.record(
            db,
            actor="pensioner",
            role="pensioner",
            action="verification.decided",
            object_type="verification_session",
            object_id=vs.id,
            client_addr=client_addr,
            detail={
                "pensioner_id": p.id,
                "decision": decision,
                "reason": vs.reason_code,
                "match": a.match,
                "review_case_id": vs.review_case_id,
                "confirmation_id": vs.confirmation_id,
            },
        )
        if self.metrics is not None:
            self.metrics.session_decided(str(decision), vs.reason_code, a.scores)
        db.flush()
