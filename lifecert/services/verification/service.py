"""Phone-browser proof of life: sessions, rate limits, records.

Flow: :meth:`VerificationService.create_session` checks the person (same NOT_FOUND for an
unknown ID number, a wrong name, a suspended pension or no template, so the endpoint does not
reveal who is enrolled), draws 2–3 challenges under :mod:`lifecert.domain.challenges` and starts
a server-paced session (:mod:`.paced`): the client learns only the settle step and its nonce.
Chunks of frames go to :meth:`submit_chunk`; the paced capture judges each step and, after the
last one, the whole session (:meth:`PacedCapture._finalize`), which :meth:`_record` writes:
best frames to the photo store, the survival confirmation or the review case, the audit event.
After ``max_retries_before_review`` RETRYs in a row the next failure goes to REVIEW
(TOO_MANY_RETRIES).

Rate limits (services/ratelimit.py, shared by every API node outside development): per client
address; per (normalised ID number, client address), so a stranger who knows an ID number
exhausts only their own bucket; and a looser per-ID cap over all clients
(``ID_ALL_CLIENTS_FACTOR`` x) counted only for requests that also named the person correctly.
"""

from __future__ import annotations

import hashlib
import logging
import random
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray
from sqlalchemy import and_, or_, select, text
from sqlalchemy.orm import Session

from lifecert.config import Settings
from lifecert.domain import challenges as challenge_policy
from lifecert.domain.errors import ErrorCode, LifecertError, NotFound
from lifecert.domain.idnumber import normalize_id_number, parse_id_number
from lifecert.engine.base import FaceEngine
from lifecert.engine.liveness import LivenessParams
from lifecert.engine.loader import load_engine
from lifecert.engine.pad import PadModel
from lifecert.services import audit, refresh
from lifecert.services.assisted import assisted_by
from lifecert.services.cases import open_case, verification_review
from lifecert.services.confirmations import record_confirmation
from lifecert.services.context import AppContext
from lifecert.services.fusion import FusedScorer
from lifecert.services.metrics import Metrics
from lifecert.services.ratelimit import Limiter, make_limiter
from lifecert.services.suspensions import may_certify
from lifecert.services.templates import (
    active_templates,
    get_pensioner,
    normalize_name,
    store_photo,
)
from lifecert.services.verification import frames as fa
from lifecert.services.verification import paced, rules, spotcheck
from lifecert.services.verification.messages import NOT_FOUND_MESSAGE, WAITING, message_for
from lifecert.services.verification.rules import Analysis
from lifecert.services.verification.sessions import (
    sha256_hex,
    utcnow,
)
from lifecert.storage.models import ConfirmationMethod, Pensioner, ReviewCase, ReviewKind
from lifecert.storage.models_verification import Decision, VerificationSession

log = logging.getLogger(__name__)

ID_ALL_CLIENTS_FACTOR = 3  # per-ID cap over all clients = this x the per-(ID, client) limit


# -- value objects ------------------------------------------------------------------------


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
        self.submit_chunk = self.paced.submit_chunk  # one chunk of a paced session (see .paced)
        # models: fused 1:1 with a second engine when installed and calibrated (None: primary alone)
        self.fusion = FusedScorer.from_settings(ctx)
        # caseworker spot checks of CONFIRMED sessions (CONFIG_ERROR here on a bad band: the server does not start)
        self.spot_checks = spotcheck.policy_from(ctx.settings, pad)
        log.info("%s", self.spot_checks.describe())

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
        """Load models and run each stage once (first calls allocate), build the 1:N index. With template refresh
        on, also the enrollment engine it embeds with (AppContext.engine, loaded lazily otherwise): loaded at the
        first CONFIRMED session instead, it took ~1.5 s inside that request and held up the worker's other
        requests (benchmarks/README.md, verify_latency session 12: one 1.6-2.6 s stall per server process)."""
        if self.ctx.settings.refresh.enabled:
            _ = self.ctx.engine
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
        set), else a fresh draw. A recent set the current draw could not give (drawn under an older
        policy) is not reused."""
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
        if recent and challenge_policy.drawable(recent):
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

    def create_session(self, id_number: str, name: str, client_addr: str = "") -> paced.PacedStart:
        """Start a server-paced session; the answer reveals only the settle step and its nonce.

        Refuses with the same NOT_FOUND (and the same database work) for an unknown ID number,
        a wrong name, a suspended pension or no template: the endpoint reveals nothing about who
        is enrolled or suspended."""
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
            elif not may_certify(p):  # active, or suspended only for being overdue (issue 15)
                why = f"status {p.status}"
            elif not has_template:
                why = "no face template"
            if why or p is None:
                log.info("session refused (%s) for %s from %s", why, idn.masked(), client_addr)
                raise NotFound(NOT_FOUND_MESSAGE)
            # The looser cap over all clients counts only sessions that named the person correctly.
            self._take(self.by_id_all, idn.value, "ID number")
            challenges = self._challenges_for(db, p.id)
            nonce = secrets.token_urlsafe(24)
            vs = VerificationSession(
                id=secrets.token_urlsafe(18),
                pensioner_id=p.id,
                nonce_hash=sha256_hex(nonce),
                challenges=challenges,
                lead_in_ms=0,  # paced: each step has its own reveal time and window (vs.steps)
                challenge_window_ms=paced.steps.CHALLENGE_WINDOW_MS,
                created_at=self.clock(),
                expires_at=self.clock() + timedelta(seconds=s.verification.session_ttl_seconds),
                model_key=self.ctx.model.key,
                client_addr=client_addr[:64],
            )
            start = self.paced.start(db, vs, nonce)
            db.add(vs)
            db.flush()
            _audit(db, "verification.session_created", vs.id, client_addr,
                   {"pensioner_id": p.id, "challenges": challenges, "protocol": vs.protocol})
            return start

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
        _lock_decisions(db, p.id)  # before anything below reads her earlier decisions and cases
        retries = self._consecutive_retries(db, p.id, vs.id)
        vs.retry_count = retries
        decision, reason = rules.escalate(a.decision, a.reason, retries, v.max_retries_before_review)
        # a community worker ran this capture (issue 15): method `assisted`; read only for a pass, where it counts
        helper = assisted_by(db, vs.id) if decision == Decision.CONFIRMED else None
        # A case that holds a pass still awaits a caseworker: this pass is held for review too (rules.hold). Not an
        # assisted session: a community worker in the room is the channel the agency wants.
        held_by = _open_hold_case(db, p.id) if (decision == Decision.CONFIRMED and helper is None
                                                and v.hold_while_in_review) else None
        decision, reason = rules.hold(decision, reason, held_by)
        if held_by is not None:
            a.scores["held_by_case"] = held_by
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
            # A caseworker spot check (抽查): the confirmation stands and the answer is the same; a drawn
            # session opens a case or joins the pensioner's open one (the metric counts cases opened) -- before
            # refresh: a spot-checked session makes no template unlooked-at.
            drawn = spotcheck.consider(db, self.spot_checks, self.rng, vs, p, conf.id, conf.method, a.best)
            if drawn is not None and not drawn.added and self.metrics is not None:
                self.metrics.spot_check_opened(drawn.case.reason)
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
        _audit(db, "verification.decided", vs.id, client_addr, {
            "pensioner_id": p.id,
            "decision": decision,
            "reason": vs.reason_code,
            "match": a.match,
            "review_case_id": vs.review_case_id,
            "confirmation_id": vs.confirmation_id,
        })
        if self.metrics is not None:
            self.metrics.session_decided(str(decision), vs.reason_code, a.scores)
        db.flush()


# PostgreSQL advisory-lock namespace of the per-pensioner decision lock (_lock_decisions): "LC"
DECISION_LOCK = 0x4C43


def _lock_decisions(db: Session, pensioner_id: int) -> None:
    """Write one pensioner's session decisions one at a time. PostgreSQL: a transaction-level advisory lock on
    (DECISION_LOCK, pensioner id), released when the decision commits, so the hold and the retry count read what
    her earlier decisions committed: sessions run in parallel and finished together cannot all pass before any
    refusal is on record. Only decisions take it (no lock-order cycle with the caseworkers' row locks). SQLite
    needs none: a chunk's transaction holds the database's one write lock from the chunk's insert on."""
    if db.get_bind().dialect.name == "postgresql":
        db.execute(text("SELECT pg_advisory_xact_lock(:ns, :pid)"), {"ns": DECISION_LOCK, "pid": pensioner_id})


_HOLDING = (  # (queue, the reasons whose undecided cases hold a pass): rules.HOLD_REASONS, EVIDENCE_HOLD_REASONS
    (ReviewKind.VERIFICATION, sorted(str(r) for r in rules.HOLD_REASONS)),
    (ReviewKind.DATA_CONFLICT, ["DEATH_AFTER_CONFIRMATION"]),
    (ReviewKind.TIP_OFF, ["TIP_OFF"]),
)
if {r for _k, rs in _HOLDING[1:] for r in rs} != rules.EVIDENCE_HOLD_REASONS:  # pragma: no cover - edited apart
    raise RuntimeError("_HOLDING and rules.EVIDENCE_HOLD_REASONS name different reasons")


def _open_hold_case(db: Session, pensioner_id: int) -> int | None:
    """The oldest undecided case of the pensioner that holds a pass (a session refused for a sign of an attack,
    a death record dated before a standing confirmation, a tip-off), or None."""
    return db.scalar(
        select(ReviewCase.id)
        .where(ReviewCase.pensioner_id == pensioner_id, ReviewCase.status != "closed",
               or_(*(and_(ReviewCase.kind == kind, ReviewCase.reason.in_(reasons)) for kind, reasons in _HOLDING)))
        .order_by(ReviewCase.id)
        .limit(1)
    )


def _audit(db: Session, action: str, session_id: str, client_addr: str, detail: dict[str, Any]) -> None:
    """An audit event of the pensioner's own session (actor and role "pensioner")."""
    audit.record(db, actor="pensioner", role="pensioner", action=action, object_type="verification_session",
                 object_id=session_id, client_addr=client_addr, detail=detail)
