"""Phone-browser proof of life: sessions, frame analysis and the decision.

Flow: :meth:`VerificationService.create_session` checks the person (same NOT_FOUND for an
unknown ID number, a wrong name or no template, so the endpoint does not reveal who is
enrolled), draws 2–3 challenges and issues a single-use nonce. :meth:`submit_frames`
validates the upload (frame count, timestamps, every frame decodes — any failure is a
typed error and nothing is recorded, the nonce stays usable), claims the nonce atomically,
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

Rate limits are in-memory token buckets per ID number and per client address (per process:
with several server processes each has its own buckets; put a shared limiter in front for that).
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from lifecert.config import CHALLENGES
from lifecert.domain.errors import ErrorCode, ImageError, LifecertError, NotFound
from lifecert.domain.idnumber import parse_id_number
from lifecert.engine import geometry
from lifecert.engine.base import FaceEngine, count_significant, l2_normalize, load_engine
from lifecert.engine.image import decode_image
from lifecert.engine.liveness import FrameObs, LivenessParams, LivenessReport, analyze_liveness
from lifecert.engine.types import Face, ImageBGR
from lifecert.services import audit
from lifecert.services.confirmations import record_confirmation
from lifecert.services.context import AppContext
from lifecert.services.review import open_case
from lifecert.services.templates import (
    active_templates,
    get_pensioner,
    match_pensioner,
    normalize_name,
    search,
    store_photo,
)
from lifecert.storage.models import ConfirmationMethod, Pensioner, PensionerStatus, ReviewCase, ReviewKind
from lifecert.storage.models_verification import Decision, VerificationSession

log = logging.getLogger(__name__)

LEAD_IN_MS = 1500
CHALLENGE_WINDOW_MS = 3000
TARGET_FPS = 8
FRAME_DETECT_MAX_SIDE = 320  # selfie faces are large: detect on a small copy, landmarks on the full frame
FRAME_MAX_SIDE = 960  # decoded frames are shrunk to this side at once (bounded memory per session)
FRAME_MAX_PIXELS = 4_000_000  # decompression guard per frame (header check before decoding)
TAIL_MS = 10_000  # timestamps beyond the last window + this are refused
NOT_FOUND_MESSAGE = "no enrolled pensioner matches this ID number and name"

# reason code -> (Mandarin, English): what the pensioner reads on the result screen.
MESSAGES: dict[str, tuple[str, str]] = {
    "CONFIRMED": ("认证成功，谢谢您！本次生存认证已记录。", "Done, thank you! Your proof of life has been recorded."),
    ErrorCode.NO_FACE: (
        "没有看清您的脸。请正对手机，让脸在框内，再试一次。",
        "We could not see your face. Face the phone, keep your face in the frame, and try again.",
    ),
    ErrorCode.MULTIPLE_FACES: (
        "画面里有多个人。请只让本人出现在镜头前，再试一次。",
        "Several faces were seen. Only you should be in front of the camera. Please try again.",
    ),
    ErrorCode.TOO_DARK: (
        "光线太暗。请到亮一点的地方，再试一次。",
        "It is too dark. Please move somewhere brighter and try again.",
    ),
    ErrorCode.TOO_BRIGHT: (
        "光线太强或逆光。请避开强光，再试一次。",
        "Too much light or backlight. Please avoid strong light and try again.",
    ),
    ErrorCode.FACE_NOT_CENTRED: (
        "脸没有在框的中间。请把脸放在框内，再试一次。",
        "Your face was not in the middle. Keep it inside the frame and try again.",
    ),
    ErrorCode.FACE_TOO_SMALL: (
        "离手机太远了。请靠近一点，再试一次。",
        "You are too far away. Please come closer and try again.",
    ),
    ErrorCode.BLURRY: (
        "画面不清楚。请拿稳手机，再试一次。",
        "The picture is blurry. Hold the phone still and try again.",
    ),
    ErrorCode.TOO_FEW_FRAMES: (
        "拍到的画面太少。请保持脸在框内，直到完成，再试一次。",
        "Too few usable pictures. Keep your face in the frame until the end and try again.",
    ),
    ErrorCode.CHALLENGE_NOT_SEEN: (
        "没有看到您按提示做动作。请听提示，按顺序做动作，再试一次。",
        "We did not see the requested actions. Follow the prompts in order and try again.",
    ),
    ErrorCode.LIVENESS_FAILED: (
        "无法确认是本人现场认证，已转给工作人员核实，工作人员会联系您。",
        "We could not confirm a live person. A caseworker will check and contact you.",
    ),
    ErrorCode.DIFFERENT_PERSONS: (
        "认证过程中出现了不同的人，已转给工作人员核实，工作人员会联系您。",
        "More than one person appeared. A caseworker will check and contact you.",
    ),
    ErrorCode.LOW_MATCH: (
        "无法确认是本人，已转给工作人员核实，工作人员会联系您。",
        "We could not confirm it is you. A caseworker will check and contact you.",
    ),
    ErrorCode.MATCHES_OTHER_PENSIONER: (
        "需要人工核实，工作人员会联系您。",
        "This needs a manual check. A caseworker will contact you.",
    ),
    ErrorCode.TOO_MANY_RETRIES: (
        "多次未能完成认证，已转给工作人员，工作人员会联系您；也可以到社保服务中心办理。",
        "Several tries did not succeed. A caseworker will contact you, or visit the service centre.",
    ),
}


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


@dataclass
class _FrameInfo:
    index: int
    t_ms: int
    image: ImageBGR  # (H, W, 3) uint8 BGR, at most FRAME_MAX_SIDE
    size: tuple[int, int]  # original (width, height)
    obs: FrameObs
    face: Face | None = None  # the main face (aligned crops are made only for the best frames)
    sharpness: float = 0.0
    brightness: float = 0.0
    quality: float = 0.0
    frame_brightness: float = 0.0


@dataclass
class _Analysis:
    decision: str
    reason: str | None
    liveness: LivenessReport | None
    scores: dict[str, Any] = field(default_factory=dict)
    best: list[int] = field(default_factory=list)  # frame indices of the best frames
    hits: list[dict[str, Any]] = field(default_factory=list)
    match: float | None = None


# -- rate limiting ----------------------------------------------------------------------------


class RateLimiter:
    """Token buckets keyed by a string: ``capacity`` tokens, refilled evenly over ``period_s``.
    In memory and per process; thread-safe."""

    def __init__(self, capacity: int, period_s: float = 3600.0, max_keys: int = 100_000) -> None:
        self.capacity = float(max(1, capacity))
        self.rate = self.capacity / period_s
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str, now: float | None = None) -> float:
        """Take one token; returns 0 when allowed, else seconds until a token is available."""
        t = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.get(key, (self.capacity, t))
            tokens = min(self.capacity, tokens + (t - last) * self.rate)
            if tokens < 1.0:
                self._buckets[key] = (tokens, t)
                return (1.0 - tokens) / self.rate
            if len(self._buckets) >= self.max_keys and key not in self._buckets:
                # Drop full (idle) buckets first so memory stays bounded under a flood of keys.
                for k in [k for k, (tk, _) in self._buckets.items() if tk >= self.capacity - 1][: self.max_keys // 10]:
                    del self._buckets[k]
            self._buckets[key] = (tokens - 1.0, t)
            return 0.0


def _sha256(s: str) -> str:
    return hashlib.sha256(s.encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


def _as_utc(d: datetime) -> datetime:
    return d if d.tzinfo else d.replace(tzinfo=UTC)


# -- the service ------------------------------------------------------------------------------


class VerificationService:
    """One per process; shared by request threads (no per-request state on the object)."""

    def __init__(
        self,
        ctx: AppContext,
        params: LivenessParams | None = None,
        engine_factory: Callable[[], FaceEngine] | None = None,
    ) -> None:
        self.ctx = ctx
        self.params = params or LivenessParams()
        v = ctx.settings.verification
        self.by_id = RateLimiter(v.rate_limit_per_id_per_hour)
        self.by_client = RateLimiter(v.rate_limit_per_client_per_hour)
        self._rng = secrets.SystemRandom()
        self._local = threading.local()
        self._engine_factory = engine_factory or (lambda: load_engine(ctx.settings))

    # -- engine ---------------------------------------------------------------------------
    @property
    def frame_engine(self) -> FaceEngine:
        """This thread's engine, tuned for selfie frames (smaller detection size, no CNN fallback).

        dlib's HOG detector and recognition network keep per-call state, so one engine must
        not serve two threads at once: every inference thread loads its own (once; threads
        of the pool live as long as the server). dlib also holds the GIL while it computes,
        so CPU parallelism comes from server processes (``lifecert serve --workers``).
        """
        fe: FaceEngine | None = getattr(self._local, "engine", None)
        if fe is None:
            fe = copy.copy(self._engine_factory())
            fe.detect_max_side = FRAME_DETECT_MAX_SIDE
            if hasattr(fe, "cnn_fallback"):
                fe.cnn_fallback = False
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

    # -- sessions -------------------------------------------------------------------------
    def _draw_challenges(self) -> list[str]:
        fixed = self.ctx.settings.fixed_challenge_list
        if fixed:
            return list(fixed)
        k = self._rng.choice((2, 3))
        picked = self._rng.sample(list(CHALLENGES), k)
        if "turn_left" in picked and "turn_right" in picked and k == 2:
            picked[1] = self._rng.choice(["blink", "open_mouth", "nod"])
        return picked

    def _rate_limit(self, id_number: str, client_addr: str) -> None:
        for limiter, key, what in ((self.by_client, client_addr, "client"), (self.by_id, id_number, "ID number")):
            wait = limiter.take(key)
            if wait > 0:
                raise LifecertError(
                    f"too many sessions for this {what}; try again later",
                    code=ErrorCode.RATE_LIMITED,
                    retry_after=int(wait) + 1,
                )

    def create_session(self, id_number: str, name: str, client_addr: str = "") -> SessionStart:
        raw = "".join(id_number.split()).upper()
        self._rate_limit(raw, client_addr)
        idn = parse_id_number(id_number)
        s = self.ctx.settings
        with self.ctx.db.session() as db:
            p = get_pensioner(db, idn.value)
            why = None
            if p is None:
                why = "unknown ID number"
            elif normalize_name(p.name) != normalize_name(name):
                why = "name does not match"
            elif p.status != PensionerStatus.ACTIVE:
                log.info("session refused for pensioner %s: status %s", p.id, p.status)
                raise LifecertError(
                    "this pension is suspended; please contact the service centre",
                    code=ErrorCode.PENSIONER_SUSPENDED,
                )
            elif not active_templates(db, p.id, self.ctx.model.key):
                why = "no face template"
            if why or p is None:
                log.info("session refused (%s) for %s from %s", why, idn.masked(), client_addr)
                raise NotFound(NOT_FOUND_MESSAGE)
            challenges = self._draw_challenges()
            total_ms = LEAD_IN_MS + len(challenges) * CHALLENGE_WINDOW_MS
            fps = max(1, min(TARGET_FPS, s.verification.max_frames * 1000 // total_ms))
            nonce = secrets.token_urlsafe(24)
            vs = VerificationSession(
                id=secrets.token_urlsafe(18),
                pensioner_id=p.id,
                nonce_hash=_sha256(nonce),
                challenges=challenges,
                lead_in_ms=LEAD_IN_MS,
                challenge_window_ms=CHALLENGE_WINDOW_MS,
                created_at=_now(),
                expires_at=_now() + timedelta(seconds=s.verification.session_ttl_seconds),
                model_key=self.ctx.model.key,
                client_addr=client_addr[:64],
            )
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
                detail={"pensioner_id": p.id, "challenges": challenges},
            )
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
            (c, bool(passed[c]) if c in passed else (None if vs.decision is None else False)) for c in vs.challenges
        ]
        if vs.decision is None:
            zh, en = "等待上传", "waiting for the upload"
        else:
            zh, en = MESSAGES.get(vs.reason_code or "CONFIRMED", MESSAGES["CONFIRMED"])
        valid_until = None
        if vs.confirmation_id is not None:
            from lifecert.storage.models import SurvivalConfirmation

            conf = db.get(SurvivalConfirmation, vs.confirmation_id)
            valid_until = conf.valid_until if conf else None
        return SessionResult(vs.id, vs.decision, vs.reason_code, zh, en, ch, valid_until)

    # -- upload ---------------------------------------------------------------------------
    def _check_session(self, db: Session, session_id: str, nonce: str) -> VerificationSession:
        vs = db.get(VerificationSession, session_id)
        if vs is None:
            raise NotFound("no such verification session")
        if vs.used_at is not None:
            raise LifecertError("this session's nonce was already used", code=ErrorCode.NONCE_USED)
        if _now() > _as_utc(vs.expires_at):
            raise LifecertError("the session has expired; please start again", code=ErrorCode.SESSION_EXPIRED)
        if not hmac.compare_digest(_sha256(nonce), vs.nonce_hash):
            raise LifecertError("the nonce does not belong to this session", code=ErrorCode.BAD_NONCE)
        return vs

    def _parse_timestamps(self, raw: str | list[int], n: int, vs: VerificationSession) -> list[int]:
        try:
            ts = json.loads(raw) if isinstance(raw, str) else raw
        except json.JSONDecodeError as exc:
            raise LifecertError("timestamps must be a JSON array of integers", code=ErrorCode.BAD_TIMESTAMPS) from exc
        if not isinstance(ts, list) or not all(isinstance(t, int) and not isinstance(t, bool) for t in ts):
            raise LifecertError("timestamps must be a JSON array of integers", code=ErrorCode.BAD_TIMESTAMPS)
        if len(ts) != n:
            raise LifecertError(
                f"{len(ts)} timestamps for {n} frames", code=ErrorCode.BAD_TIMESTAMPS, frames=n, timestamps=len(ts)
            )
        end = vs.lead_in_ms + len(vs.challenges) * vs.challenge_window_ms + TAIL_MS
        for i, t in enumerate(ts):
            if t < 0 or t > end:
                raise LifecertError(f"timestamp {t} ms is outside 0..{end}", code=ErrorCode.BAD_TIMESTAMPS, index=i)
            if i and t < ts[i - 1]:
                raise LifecertError(
                    "timestamps must be non-decreasing (frames in capture order)",
                    code=ErrorCode.BAD_TIMESTAMPS,
                    index=i,
                )
        return ts

    def _decode(self, frames: list[bytes]) -> list[tuple[ImageBGR, tuple[int, int]]]:
        lim = self.ctx.settings.images
        out = []
        for i, data in enumerate(frames):
            try:
                img = decode_image(data, max_bytes=lim.max_bytes, max_pixels=min(lim.max_pixels, FRAME_MAX_PIXELS))
            except ImageError as exc:
                raise ImageError(f"frame {i}: {exc.message}", code=exc.code, frame=i) from exc
            h, w = img.shape[:2]
            k = FRAME_MAX_SIDE / max(h, w)
            if k < 1:
                img = np.ascontiguousarray(
                    cv2.resize(img, (round(w * k), round(h * k)), interpolation=cv2.INTER_AREA), dtype=np.uint8
                )
            out.append((img, (int(w), int(h))))
        return out

    def submit_frames(
        self, session_id: str, nonce: str, timestamps: str | list[int], frames: list[bytes], client_addr: str = ""
    ) -> SessionResult:
        """Validate, analyse and decide one upload. Input errors raise before anything is recorded."""
        v = self.ctx.settings.verification
        with self.ctx.db.session() as db:
            vs = self._check_session(db, session_id, nonce)
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
            ts = self._parse_timestamps(timestamps, len(frames), vs)
            challenges = list(vs.challenges)
            lead_in, window = vs.lead_in_ms, vs.challenge_window_ms
        decoded = self._decode(frames)
        # Claim the nonce atomically before the expensive part: a concurrent replay loses here.
        with self.ctx.db.session() as db:
            claimed = db.execute(  # type: ignore[attr-defined]
                update(VerificationSession)
                .where(VerificationSession.id == session_id, VerificationSession.used_at.is_(None))
                .values(used_at=_now(), frame_count=len(frames))
            ).rowcount
            if claimed != 1:
                raise LifecertError("this session's nonce was already used", code=ErrorCode.NONCE_USED)
        t0 = time.perf_counter()
        infos = [
            _FrameInfo(i, t, img, size, FrameObs(t, None))
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
    def _observe(self, infos: list[_FrameInfo]) -> None:
        fe = self.frame_engine
        for f in infos:
            grey_mean = float(cv2.cvtColor(f.image, cv2.COLOR_BGR2GRAY).mean())
            f.frame_brightness = grey_mean
            faces = fe.detect(f.image)
            if not faces:
                continue
            main = faces[0]
            f.obs = FrameObs(f.t_ms, main.landmarks68, main.box, count_significant(faces))
            f.face = main
            f.sharpness, f.brightness = _face_region_stats(f.image, main.box)

    def _framing_reason(self, infos: list[_FrameInfo], usable: list[_FrameInfo]) -> str | None:
        g = self.ctx.settings.quality
        n = len(infos)
        with_face = [f for f in infos if f.obs.has_face]
        multi = [f for f in with_face if f.obs.num_faces > 1]
        if len(multi) >= max(2, 0.2 * n):
            return ErrorCode.MULTIPLE_FACES
        if len(with_face) < max(self.ctx.settings.verification.min_frames, 0.5 * n):
            dark = float(np.median([f.frame_brightness for f in infos])) < g.min_brightness
            return ErrorCode.TOO_DARK if dark else ErrorCode.NO_FACE
        bright = float(np.median([f.brightness for f in with_face]))
        if bright < g.min_brightness:
            return ErrorCode.TOO_DARK
        if bright > g.max_brightness:
            return ErrorCode.TOO_BRIGHT
        off = small = 0
        for f in with_face:
            h, w = f.image.shape[:2]
            lm = f.obs.landmarks
            if lm is None:  # pragma: no cover - filtered
                continue
            cx, cy = lm.mean(axis=0)
            if abs(cx - w / 2) > 0.3 * w or abs(cy - h / 2) > 0.3 * h:
                off += 1
            if f.obs.face_width < 0.15 * min(h, w):
                small += 1
        if off > 0.5 * len(with_face):
            return ErrorCode.FACE_NOT_CENTRED
        if small > 0.5 * len(with_face):
            return ErrorCode.FACE_TOO_SMALL
        if len(usable) < self.ctx.settings.verification.min_frames:
            return ErrorCode.TOO_FEW_FRAMES
        if float(np.median([f.sharpness for f in usable])) < g.min_sharpness / 2:
            return ErrorCode.BLURRY
        return None

    @staticmethod
    def _quality_score(f: _FrameInfo, base_ear: float) -> float:
        """0..1: frontal, eyes open, mouth closed, sharp, well lit."""
        lm = f.obs.landmarks
        if lm is None:
            return 0.0
        frontal = max(0.0, 1.0 - abs(geometry.yaw_ratio(lm)) / 0.5)
        ear = geometry.eye_aspect_ratio(lm)
        eyes = min(1.0, ear / base_ear) if base_ear > 0 and not np.isnan(base_ear) else 1.0
        mouth = max(0.2, 1.0 - max(0.0, geometry.mouth_aspect_ratio(lm) - 0.15))
        sharp = min(1.0, f.sharpness / 150.0)
        light = 1.0 - min(1.0, abs(f.brightness - 125.0) / 125.0)
        return float(frontal * eyes**2 * mouth * (0.3 + 0.7 * sharp) * (0.5 + 0.5 * light))

    def _pick_best(
        self, usable: list[_FrameInfo], k: int, breaks: list[int]
    ) -> tuple[list[_FrameInfo], list[_FrameInfo]]:
        """Best frame of each of ``k`` consecutive time segments (so a swap mid-session is seen),
        plus the frames on both sides of the first tracking breaks (identity evidence)."""
        k = max(1, min(k, len(usable)))
        segs = np.array_split(np.arange(len(usable)), k)
        best = [max((usable[i] for i in seg), key=lambda f: f.quality) for seg in segs if len(seg)]
        extra: list[_FrameInfo] = []
        pos = {f.index: j for j, f in enumerate(usable)}
        chosen = {f.index for f in best}
        for b in breaks[:2]:
            if b not in pos:
                continue
            j = pos[b]
            for f in (usable[j - 1] if j > 0 else None, usable[j]):
                if f is not None and f.index not in chosen:
                    extra.append(f)
                    chosen.add(f.index)
        return best, extra

    def _analyze(
        self, db: Session, p: Pensioner, infos: list[_FrameInfo], challenges: list[str], lead_in: int, window: int
    ) -> _Analysis:
        v = self.ctx.settings.verification
        self._observe(infos)
        usable = [f for f in infos if f.obs.has_face and f.obs.num_faces == 1]
        frames_summary = {
            "total": len(infos),
            "with_face": sum(1 for f in infos if f.obs.has_face),
            "usable": len(usable),
            "multi_face": sum(1 for f in infos if f.obs.num_faces > 1),
            "median_brightness": round(float(np.median([f.brightness for f in usable])), 1) if usable else None,
        }
        reason = self._framing_reason(infos, usable)
        if reason:
            # Keep the sharpest face frames anyway: a caseworker may see them after repeated RETRYs.
            seen = sorted((f for f in infos if f.obs.has_face), key=lambda f: -f.sharpness)[: v.embed_best_k]
            return _Analysis(Decision.RETRY, str(reason), None, {"frames": frames_summary}, [f.index for f in seen])
        live = analyze_liveness([f.obs for f in infos], challenges, lead_in, window, self.params)
        scores: dict[str, Any] = {"frames": frames_summary, "liveness": live.as_dict()}
        for f in usable:
            f.quality = self._quality_score(f, live.baseline.ear)
        best, extra = self._pick_best(usable, v.embed_best_k, live.track_breaks)
        if live.still:
            scores["liveness_issue"] = "still_image"
            return _Analysis(Decision.REVIEW, ErrorCode.LIVENESS_FAILED, live, scores, [f.index for f in best])
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
        a = _Analysis(Decision.CONFIRMED, None, live, scores, [f.index for f in best], hits, own)
        if one_person_min < thr:
            a.decision, a.reason = Decision.REVIEW, ErrorCode.DIFFERENT_PERSONS
        elif live.flat.decided and live.flat.flat:
            a.decision, a.reason = Decision.REVIEW, ErrorCode.LIVENESS_FAILED
            scores["liveness_issue"] = "flat_photo"
        elif not live.all_challenges_passed:
            a.decision, a.reason = Decision.RETRY, ErrorCode.CHALLENGE_NOT_SEEN
        elif any(h["score"] >= thr and h["score"] > own for h in hits):
            a.decision, a.reason = Decision.REVIEW, ErrorCode.MATCHES_OTHER_PENSIONER
        elif own < thr:
            a.decision, a.reason = Decision.REVIEW, ErrorCode.LOW_MATCH
        return a

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
        n = 0
        for d in rows:
            if d != Decision.RETRY:
                break
            n += 1
        return n

    def _seal_frames(self, session_id: str, frames: list[bytes], ts: list[int]) -> str:
        """All uploaded frames in one AES-GCM blob (aad: the session id) for the review period."""
        header = json.dumps({"timestamps": ts, "sizes": [len(b) for b in frames]}).encode()
        blob = len(header).to_bytes(4, "big") + header + b"".join(frames)
        d = sessions_dir(self.ctx)
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        name = f"{session_id}.bin"
        (d / name).write_bytes(self.ctx.cipher.seal(blob, f"vsession|{session_id}".encode()))
        return name

    def _decide(
        self,
        db: Session,
        vs: VerificationSession,
        p: Pensioner,
        a: _Analysis,
        infos: list[_FrameInfo],
        frames: list[bytes],
        ts: list[int],
        client_addr: str,
    ) -> None:
        v = self.ctx.settings.verification
        retries = self._consecutive_retries(db, p.id, vs.id)
        vs.retry_count = retries
        decision, reason = a.decision, a.reason
        if decision == Decision.RETRY and retries >= v.max_retries_before_review:
            vs.detail_reason = reason
            decision, reason = Decision.REVIEW, ErrorCode.TOO_MANY_RETRIES
        shas = []
        for i in a.best:
            sha = hashlib.sha256(frames[i]).hexdigest()
            w, h = infos[i].size
            store_photo(self.ctx, db, frames[i], sha, w, h, original_name=f"session {vs.id} frame {i}")
            shas.append(sha)
        vs.best_frame_shas = shas
        vs.frames_blob = self._seal_frames(vs.id, frames, ts)
        vs.decision = decision
        vs.reason_code = str(reason) if reason else None
        vs.scores = a.scores
        vs.challenge_results = (
            [c.as_dict() for c in a.liveness.challenges]
            if a.liveness
            else [{"name": c, "passed": False, "note": "not evaluated"} for c in vs.challenges]
        )
        vs.decided_at = _now()
        if decision == Decision.CONFIRMED:
            conf = record_confirmation(
                db,
                p,
                ConfirmationMethod.FACE_SELF_SERVICE,
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
                },
                cycle_months=self.ctx.settings.confirmation_cycle_months,
            )
            vs.confirmation_id = conf.id
        elif decision == Decision.REVIEW:
            case = open_case(
                db,
                kind=ReviewKind.VERIFICATION,
                reason=str(reason),
                pensioner=p,
                verification_session_id=vs.id,
                payload={
                    "session_id": vs.id,
                    "reason": str(reason),
                    "underlying_reason": vs.detail_reason,
                    "retry_count": retries,
                    "scores": a.scores,
                    "challenges": vs.challenge_results,
                    "best_frame_shas": shas,
                    "one_to_n": a.hits,
                    "model_key": self.ctx.model.key,
                },
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
        db.flush()


def _face_region_stats(image: ImageBGR, box: NDArray[np.float32]) -> tuple[float, float]:
    """(sharpness, brightness) of the central face region, resized to 150 px wide so that sharpness
    (variance of the Laplacian) compares across resolutions like the aligned-crop statistic.
    ``image``: (H, W, 3) uint8 BGR; ``box``: (x1, y1, x2, y2) pixels."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box)
    bw, bh = x2 - x1, y2 - y1
    # Inner part of the box: skip hair, background and jaw edges.
    xa, xb = int(max(0, x1 + 0.15 * bw)), int(min(w, x2 - 0.15 * bw))
    ya, yb = int(max(0, y1 + 0.2 * bh)), int(min(h, y2 - 0.1 * bh))
    if xb - xa < 8 or yb - ya < 8:
        return 0.0, 0.0
    grey = cv2.cvtColor(image[ya:yb, xa:xb], cv2.COLOR_BGR2GRAY)
    k = 150.0 / grey.shape[1]
    grey = cv2.resize(grey, (150, max(8, round(grey.shape[0] * k))), interpolation=cv2.INTER_AREA)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var()), float(grey.mean())


def sessions_dir(ctx: AppContext) -> Path:
    return ctx.settings.data_dir / "sessions"


def open_frames_blob(ctx: AppContext, session_id: str) -> tuple[list[int], list[bytes]]:
    """(timestamps, JPEG bytes per frame) of a session kept for review."""
    p = sessions_dir(ctx) / f"{session_id}.bin"
    if not p.is_file():
        raise LifecertError(
            "frames of this session are not kept (purged or never uploaded)", code=ErrorCode.FILE_MISSING
        )
    blob = ctx.cipher.open(p.read_bytes(), f"vsession|{session_id}".encode())
    n = int.from_bytes(blob[:4], "big")
    header = json.loads(blob[4 : 4 + n])
    out, pos = [], 4 + n
    for size in header["sizes"]:
        out.append(blob[pos : pos + size])
        pos += size
    return list(header["timestamps"]), out


@dataclass(frozen=True)
class PurgeReport:
    sessions: int
    blobs_deleted: int
    photos_deleted: int
    held_open_review: int


def purge_expired(ctx: AppContext, *, now: datetime | None = None, retention_days: int | None = None) -> PurgeReport:
    """Delete frames and scores of sessions older than the review period.

    The session row, its decision and reason stay (the audit trail refers to them). Sessions
    whose review case is still open are held until the case is closed.
    """
    from lifecert.storage.models import FaceTemplate, Photo

    days = ctx.settings.review_retention_days if retention_days is None else retention_days
    cutoff = (now or _now()) - timedelta(days=days)
    n = blobs = photos = held = 0
    with ctx.db.session() as db:
        rows = db.scalars(
            select(VerificationSession).where(
                VerificationSession.created_at < cutoff, VerificationSession.purged_at.is_(None)
            )
        ).all()
        for vs in rows:
            if vs.review_case_id is not None:
                case = db.get(ReviewCase, vs.review_case_id)
                if case is not None and case.status != "closed":
                    held += 1
                    continue
            if vs.frames_blob:
                f = sessions_dir(ctx) / vs.frames_blob
                if f.is_file():
                    f.unlink()
                    blobs += 1
            for sha in vs.best_frame_shas or []:
                used = db.scalars(select(FaceTemplate.id).where(FaceTemplate.photo_sha256 == sha).limit(1)).first()
                if used is not None:
                    continue
                path = ctx.photos.path_for(sha)
                if path.is_file():
                    path.unlink()
                    photos += 1
                photo = db.get(Photo, sha)
                if photo is not None:
                    db.delete(photo)
            vs.frames_blob = None
            vs.best_frame_shas = []
            vs.scores = {}
            vs.challenge_results = [{"name": c, "passed": None, "note": "purged"} for c in vs.challenges]
            vs.purged_at = _now()
            n += 1
        if n:
            audit.record(
                db,
                actor=audit.cli_actor(),
                role="system",
                action="verification.purged",
                object_type="verification_session",
                object_id="*",
                detail={"sessions": n, "cutoff": cutoff.isoformat()},
            )
    return PurgeReport(n, blobs, photos, held)
