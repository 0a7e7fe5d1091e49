"""Server-paced capture: chunks of frames per step, the step state machine, the final decision.

Why chunks over plain HTTPS and not a WebSocket: every chunk is one short, stateless request
that passes any reverse proxy or WAF, takes the same body limit and error path as the rest of
the API, and can land on any API node — the session's state lives in its database row
(``VerificationSession.steps`` / ``current_step``) and the chunks in ``verification_chunk``.

Per chunk (:meth:`PacedCapture.submit_chunk`): cheap checks (count, timestamps, image
signatures, nonce, step index) → the nonce is swapped for a new one by one conditional UPDATE
(single use; a concurrent or replayed chunk gets NONCE_USED and costs no decoding) → decode
(a failure has burnt the nonce: the session is over) → detection + landmarks (+ PAD) per frame
→ the chunk is sealed and stored → the current step is judged on all its frames
(:mod:`.steps`) → the answer carries live hints, the step's state and — only once the step was
seen or its window ran out — the next step with a new random prompt delay. After the last step
(or a missed one) the whole session is judged once (:meth:`PacedCapture._finalize`).
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from lifecert.domain.challenges import CHALLENGES
from lifecert.domain.errors import ErrorCode, LifecertError, NotFound
from lifecert.engine import jaw, pixel_planarity
from lifecert.engine.base import l2_normalize
from lifecert.engine.liveness import Baseline, FrameObs, LivenessParams
from lifecert.engine.planarity import PARALLAX_CUT
from lifecert.engine.types import ImageBGR
from lifecert.services import refresh
from lifecert.services.templates import match_pensioner, search
from lifecert.services.verification import frames as fa
from lifecert.services.verification import rules, steps
from lifecert.services.verification.sessions import as_utc, parse_timestamps, sha256_hex
from lifecert.services.verification.store import open_chunk, seal_chunk
from lifecert.storage.models import Pensioner
from lifecert.storage.models_verification import Decision, VerificationChunk, VerificationSession

if TYPE_CHECKING:
    from lifecert.services.context import AppContext
    from lifecert.services.verification.service import SessionResult, VerificationService

PROTOCOL = "paced"
PENDING, WAITING, SEEN, TIMED_OUT = "pending", "waiting", "seen", "timed_out"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StepView:
    """What the client learns about the current step (never the later ones)."""

    index: int
    kind: str  # "settle" | "challenge"
    challenge: str | None
    nonce: str
    prompt_delay_ms: int
    window_ms: int
    fps: int = steps.SESSION_FPS  # capture rate for this step (steps.capture_fps)
    chunk_max_frames: int = steps.CHUNK_MAX_FRAMES  # at most this many frames per chunk of this step


@dataclass(frozen=True)
class PacedStart:
    session_id: str
    expires_at: Any
    steps_total: int
    step: StepView
    fps: int = steps.SESSION_FPS
    chunk_max_frames: int = steps.CHUNK_MAX_FRAMES
    chunk_ms: int = steps.CHUNK_MS


@dataclass(frozen=True)
class ChunkResult:
    session_id: str
    status: str  # "capturing" | "decided"
    step_state: str  # of the step this chunk belonged to
    hints: list[str]
    step: StepView | None
    result: SessionResult | None


def new_steps(challenges: Sequence[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {"kind": "settle", "challenge": None, "state": WAITING, "reveal_ms": 0, "prompt_delay_ms": 0}
        | {"window_ms": steps.SETTLE_WINDOW_MS, "result": None}
    ]
    for c in challenges:
        out.append(
            {"kind": "challenge", "challenge": c, "state": PENDING, "reveal_ms": None, "prompt_delay_ms": 0}
            | {"window_ms": steps.CHALLENGE_WINDOW_MS, "result": None}
        )
    return out


def revealed_challenges(vs: VerificationSession) -> list[str]:
    """The challenges the client was shown (a paced session never reveals the rest, not even later:
    the same set is reused for this pensioner within the session lifetime)."""
    if vs.protocol != PROTOCOL:
        return list(vs.challenges)
    return [s["challenge"] for s in vs.steps or [] if s["kind"] == "challenge" and s["state"] != PENDING]


class PacedCapture:
    """The paced protocol on top of :class:`VerificationService` (its engine, limiter, records)."""

    def __init__(self, svc: VerificationService, params: LivenessParams) -> None:
        self.svc = svc
        self.ctx = svc.ctx
        self.params = params
        self.clock = svc.clock

    def _ms_since(self, vs: VerificationSession, at: datetime | None = None) -> int:
        """Server ms since the session was created (the paced timeline), now or at ``at``."""
        return int(((at or self.clock()) - as_utc(vs.created_at)).total_seconds() * 1000)

    # -- start ----------------------------------------------------------------------------
    def start(self, db: Session, vs: VerificationSession, nonce: str) -> PacedStart:
        vs.protocol = PROTOCOL
        vs.steps = new_steps(vs.challenges)
        vs.current_step = 0
        return PacedStart(vs.id, vs.expires_at, len(vs.steps), self._view(vs, nonce))

    def _view(self, vs: VerificationSession, nonce: str) -> StepView:
        st = vs.steps[vs.current_step]
        c = st["challenge"]
        return StepView(vs.current_step, st["kind"], c, nonce, st["prompt_delay_ms"], st["window_ms"],
                        steps.capture_fps(c), steps.chunk_max_frames(c))

    # -- one chunk ------------------------------------------------------------------------
    def submit_chunk(
        self,
        session_id: str,
        step_index: int,
        nonce: str,
        timestamps: str | list[int],
        frames: list[bytes],
        client_addr: str = "",
        received_at: datetime | None = None,
        sent_ms: int | None = None,
        hint_heard_ms: int | None = None,
        hint_heard_via: str | None = None,
        prompt_heard_ms: int | None = None,
        prompt_heard_via: str | None = None,
        hint_heard_code: str | None = None,
    ) -> ChunkResult:
        """``received_at``: when the request arrived (the route takes it before any queueing); the
        clock mapping must not include decoding, detection or a wait in the inference pool.
        ``sent_ms``: the client ms when the request left the phone (the page sends it; optional):
        the clock mapping uses it instead of the newest frame (:func:`.steps.update_offset`).
        ``hint_heard_ms``: the client ms (the frames' clock) when the current step's action hint was heard,
        ``hint_heard_via`` how (:data:`HEARD_VIA`), ``hint_heard_code`` which hint (one of
        steps.ACTION_HINT_CODES): the newest action hint heard; the step's window is recomputed from the newest
        report of a code issued in this step, not before it was issued (:func:`.steps.newer_hearing`,
        :func:`.steps.hint_window`). Without a code (an older page) the report is of the step's first action
        hint and the first one after the hint is kept; one before the step has a hint is ignored. ``prompt_heard_ms`` /
        ``prompt_heard_via``: the same for the current challenge step's prompt; the first report sets the step's
        base window (:func:`.steps.prompt_window`); ignored on the settle step."""
        arrived = received_at or self.clock()
        lim = self.ctx.settings.images
        if not frames:
            raise LifecertError("a chunk needs at least one frame", code=ErrorCode.TOO_FEW_FRAMES, min_frames=1)
        most = max(steps.chunk_max_frames(c) for c in (None, *CHALLENGES))  # any step's; the step's below
        if len(frames) > most:
            raise LifecertError(
                f"{len(frames)} frames; at most {most} per chunk",
                code=ErrorCode.TOO_MANY_FRAMES,
                max_frames=most,
            )
        ttl_ms = self.ctx.settings.verification.session_ttl_seconds * 1000
        ts = parse_timestamps(timestamps, len(frames), ttl_ms)
        if sent_ms is not None and not steps.send_time_ok(ts[-1], sent_ms):
            raise LifecertError(
                f"sent_ms {sent_ms} must lie between the newest frame ({ts[-1]} ms) and "
                f"{steps.MAX_SEND_LAG_MS} ms after it",
                code=ErrorCode.BAD_TIMESTAMPS,
            )
        check_heard(hint_heard_ms, hint_heard_via, ts[-1] if sent_ms is None else sent_ms)
        check_heard(prompt_heard_ms, prompt_heard_via, ts[-1] if sent_ms is None else sent_ms, what="prompt")
        check_heard_code(hint_heard_code, hint_heard_ms)
        fa.check_frame_bytes(frames, max_bytes=lim.max_bytes)
        fresh = secrets.token_urlsafe(24)
        with self.ctx.db.session() as db:
            vs = db.get(VerificationSession, session_id)
            if vs is None:
                raise NotFound("no such verification session")
            if not secrets.compare_digest(sha256_hex(nonce), vs.nonce_hash):
                raise LifecertError("the nonce does not belong to this session", code=ErrorCode.BAD_NONCE)
            if self.clock() > as_utc(vs.expires_at):
                raise LifecertError("the session has expired; please start again", code=ErrorCode.SESSION_EXPIRED)
            if vs.decision is not None or vs.protocol != PROTOCOL:
                raise LifecertError("this nonce was already used", code=ErrorCode.NONCE_USED)
            if step_index != vs.current_step:
                raise LifecertError(
                    f"step {step_index} is not the current step",
                    code=ErrorCode.BAD_REQUEST,
                    current_step=vs.current_step,
                )
            step_max = steps.chunk_max_frames(vs.steps[vs.current_step].get("challenge"))
            if len(frames) > step_max:
                raise LifecertError(
                    f"{len(frames)} frames; at most {step_max} per chunk of this step",
                    code=ErrorCode.TOO_MANY_FRAMES,
                    max_frames=step_max,
                )
            session_max = steps.session_max_frames(vs.challenges, extended_steps(vs))
            if vs.frame_count + len(frames) > session_max:
                raise LifecertError(
                    f"at most {session_max} frames per session",
                    code=ErrorCode.TOO_MANY_FRAMES,
                    max_frames=session_max,
                )
            seq = vs.chunk_count
            # Eye patches only where they are read: the blink step's own frames (judge_challenge).
            blink_step = vs.steps[vs.current_step].get("challenge") == "blink"
            claimed = db.execute(  # type: ignore[attr-defined]
                update(VerificationSession)
                .where(
                    VerificationSession.id == session_id,
                    VerificationSession.nonce_hash == vs.nonce_hash,
                    VerificationSession.decision.is_(None),
                )
                .values(
                    nonce_hash=sha256_hex(fresh),
                    chunk_count=VerificationSession.chunk_count + 1,
                    frame_count=VerificationSession.frame_count + len(frames),
                    used_at=self.clock(),
                )
            ).rowcount
            if claimed != 1:
                raise LifecertError("this nonce was already used", code=ErrorCode.NONCE_USED)
        # The nonce is spent from here on: a frame that fails to decode ends the session.
        decoded = fa.decode_frames(frames, max_bytes=lim.max_bytes, max_pixels=lim.max_pixels)
        obs = self._observe(decoded, ts, eyes=blink_step)
        with self.ctx.db.session() as db:
            row = db.get(VerificationSession, session_id)
            if row is None:  # pragma: no cover - deleted concurrently
                raise NotFound("no such verification session")
            sent = ts[-1] if sent_ms is None else sent_ms
            heard = None if hint_heard_ms is None else (hint_heard_ms, hint_heard_via or "unknown", hint_heard_code)
            prompt = None if prompt_heard_ms is None else (prompt_heard_ms, prompt_heard_via or "unknown")
            return self._advance(db, row, seq, ts, sent, frames, obs, fresh, client_addr, arrived, heard, prompt)

    def _observe(
        self, decoded: list[tuple[ImageBGR, tuple[int, int]]], ts: list[int], *, eyes: bool
    ) -> list[steps.Obs]:
        """Detection + landmarks per frame (with ``eyes`` the eye patches too), and the PAD model's P(real)
        on up to ``PAD_FRAMES_PER_CHUNK`` full frames with a face (one batch per chunk)."""
        infos = [
            fa.FrameInfo(i, t, img, (img.shape[1], img.shape[0]), FrameObs(t, None))
            for i, ((img, _size), t) in enumerate(zip(decoded, ts, strict=True))
        ]
        fa.observe(self.svc.frame_engine, infos, eyes=eyes)
        pad_scores: dict[int, float] = {}
        with_face = [f for f in infos if f.face is not None]
        # Evenly spaced over the chunk (see PAD_FRAMES_PER_CHUNK for the cost and the count).
        with_face = [with_face[i] for i in steps.pad_pick(len(with_face))]
        pad = self.svc.pad_model
        if pad is not None and with_face:
            # the crop's box: the pack's rule (pad.PadModel.box_for: five landmarks, or the detector's box)
            boxes = [pad.box_for(f.face.box, f.face.landmarks5) for f in with_face if f.face is not None]
            probs = pad.score_many([f.image for f in with_face], boxes)
            pad_scores = {f.index: float(pr) for f, pr in zip(with_face, probs, strict=True)}
        out = []
        for info in infos:
            w, h = info.size
            box = None if info.face is None else tuple(float(v) for v in info.face.box)
            p_real = pad_scores.get(info.index)
            out.append(
                steps.Obs(
                    t_ms=info.t_ms,
                    size=(w, h),
                    landmarks=info.obs.landmarks,
                    box=box,  # type: ignore[arg-type]
                    num_faces=info.obs.num_faces,
                    sharpness=info.sharpness,
                    brightness=info.brightness if info.obs.has_face else info.frame_brightness,
                    pad=p_real,
                    eyes=info.obs.eyes,
                )
            )
        return out

    def _advance(
        self,
        db: Session,
        vs: VerificationSession,
        seq: int,
        ts: list[int],
        sent_ms: int,
        frames: list[bytes],
        obs: list[steps.Obs],
        fresh: str,
        client_addr: str,
        arrived: datetime,
        heard: tuple[int, str, str | None] | None = None,
        prompt_heard: tuple[int, str] | None = None,
    ) -> ChunkResult:
        """``heard``: (client ms, how, which code or None) the page heard this step's action hint; ``prompt_heard``:
        (client ms, how) its prompt (see :meth:`submit_chunk`)."""
        g = self.ctx.settings.quality
        # Arrival time, not "now": processing time must not shift the client clock mapping.
        now_ms = self._ms_since(vs, arrived)
        offset = steps.update_offset(vs.clock_offset_ms, now_ms, sent_ms)
        vs.clock_offset_ms = offset
        sealed = seal_chunk(self.ctx, vs.id, seq, ts, frames)
        k = vs.current_step
        db.add(
            VerificationChunk(
                session_id=vs.id,
                seq=seq,
                step=k,
                received_ms=now_ms,
                frames_sealed=sealed,
                observations=[o.to_json() for o in obs],
            )
        )
        db.flush()
        step_obs = self._obs(db, vs.id, step=k)
        all_steps = [dict(s) for s in vs.steps]
        st = all_steps[k]
        latest_ms = obs[-1].t_ms + offset
        missed: str | None = None
        finished = False
        fail_reason: str | None = None
        hints: list[str]
        if st["kind"] == "settle":
            res = steps.settle(step_obs, offset, g)
            hints = steps.hints(obs, g, hold_still=res.motion is not None, too_close=res.too_close)
            if res.steady and res.baseline is not None:
                st["state"] = SEEN
                st["result"] = {"motion": round(res.motion or 0.0, 4), "seen_ms": latest_ms}
                b = res.baseline
                vs.baseline = {"ear": b.ear, "mar": b.mar, "yaw": b.yaw, "pitch": b.pitch, "frames": b.frames}
            elif steps.step_over(latest_ms, now_ms, st["reveal_ms"], st["window_ms"]):
                st["state"] = TIMED_OUT
                finished = True
                fail_reason = str(steps.most_common_issue(step_obs, g))
        else:
            base = _baseline(vs.baseline)
            # the step's frames so far, read once for the step rule (judge_challenge, tried_before, under_way)
            sig = steps.signals([o.frame_obs(offset) for o in step_obs])
            j = steps.judge_challenge(st["challenge"], sig, base, int(st["reveal_ms"]), self.params)
            elapsed = latest_ms - int(st["reveal_ms"])
            if prompt_heard is not None and "prompt_heard" not in st:
                # The page heard the prompt (a slow voice): the step's window counts from then (bounded), and so
                # does the action-hint clock (a slow listener has not tried before she heard it).
                heard_at = prompt_heard[0] + offset
                # ... unless she already tried before hearing it (the READER): her hint clock stays at the reveal.
                tried = steps.tried_before(st["challenge"], sig, base, int(st["reveal_ms"]), heard_at, self.params)
                _prompt_heard(st, heard_at - int(st["reveal_ms"]), prompt_heard[1], tried)
            since = _hint_since(st)
            hints = steps.step_hints(steps.hints(obs, g), st["challenge"], j, elapsed, self.params, since)
            action = steps.action_in(hints)
            if st.get("hint") and heard is not None:
                # The page heard a hint given by an earlier answer: the step runs on from then (bounded).
                _hint_heard(st, heard[0] + offset - int(st["reveal_ms"]), heard[1], heard[2])
            if action is not None:
                # An action hint: the user needs time to hear it and try again (the first one sets the fixed
                # extension; its rule and extra ms are set by _window below). Each code's first issue is kept:
                # a report of hearing it counts from then on.
                answered = now_ms - int(st["reveal_ms"])
                if not st.get("hint"):
                    st["hint"] = {"code": action, "ms_after_prompt": elapsed, "answered_ms_after_prompt": answered}
                issued = dict(st["hint"].get("issued") or {})
                if action not in issued:
                    st["hint"] = dict(st["hint"]) | {"issued": issued | {action: answered}}
            st["window_ms"] = _window(st)
            reveal = int(st["reveal_ms"])
            if not j.seen and latest_ms > reveal + int(st["window_ms"]) and steps.under_way(
                    st["challenge"], sig, base, reveal, self.params):
                # The slow mover: her head is still out (her mouth still opening) at the window's end; held open
                # until it comes back (bounded).
                held = steps.held_window(int(st["window_ms"]), latest_ms - reveal)
                if held > int(st["window_ms"]):
                    st["held_ms"] = held
                    st["window_ms"] = _window(st)  # it keeps the hold
            st["result"] = j.as_dict(st["challenge"], reveal) | _hint_note(st)
            if j.seen:
                st["state"] = SEEN
            elif steps.step_over(latest_ms, now_ms, reveal, int(st["window_ms"])):
                st["state"] = TIMED_OUT
                finished = True
                missed = st["challenge"]
        step_state = st["state"]
        if step_state == SEEN:
            if k + 1 < len(all_steps):
                nxt = all_steps[k + 1]
                delay = self.svc.rng.randint(*steps.PROMPT_DELAY_MS)
                nxt["state"] = WAITING
                nxt["prompt_delay_ms"] = delay
                nxt["reveal_ms"] = self._ms_since(vs) + delay
                vs.current_step = k + 1
            else:
                finished = True
        vs.steps = all_steps
        if not finished:
            db.flush()
            return ChunkResult(vs.id, "capturing", step_state, hints, self._view(vs, fresh), None)
        self._finalize(db, vs, fail_reason, missed, client_addr)
        return ChunkResult(vs.id, "decided", step_state, [], None, self.svc._result(db, vs))

    @staticmethod
    def _obs(db: Session, session_id: str, step: int | None = None) -> list[steps.Obs]:
        q = select(VerificationChunk.observations).where(VerificationChunk.session_id == session_id)
        if step is not None:
            q = q.where(VerificationChunk.step == step)
        return [steps.Obs.from_json(d) for rows in db.scalars(q.order_by(VerificationChunk.seq)) for d in rows]

    # -- the decision ---------------------------------------------------------------------
    def _finalize(
        self, db: Session, vs: VerificationSession, fail_reason: str | None, missed: str | None, client_addr: str
    ) -> None:
        t0 = time.perf_counter()
        v = self.ctx.settings.verification
        p = db.get(Pensioner, vs.pensioner_id)
        if p is None:  # pragma: no cover - cascade
            raise NotFound("no such verification session")
        offset = vs.clock_offset_ms or 0
        rows = db.execute(
            select(VerificationChunk.id, VerificationChunk.step, VerificationChunk.observations)
            .where(VerificationChunk.session_id == vs.id)
            .order_by(VerificationChunk.seq)
        ).all()
        # (chunk id, index in chunk, step, obs) in capture order
        items = [(cid, i, step, steps.Obs.from_json(d)) for cid, step, ds in rows for i, d in enumerate(ds)]
        results = [s["result"] | {"state": s["state"]} for s in vs.steps if s["kind"] == "challenge" and s["result"]]
        results = [r for r in results if r.get("name") in revealed_challenges(vs)]
        summary = {
            "total": len(items),
            "with_face": sum(1 for *_, o in items if o.landmarks is not None),
            "usable": sum(1 for *_, o in items if o.landmarks is not None and o.num_faces == 1),
            "steps": [{"kind": s["kind"], "challenge": s["challenge"], "state": s["state"]} for s in vs.steps],
        }
        scores: dict[str, Any] = {"protocol": PROTOCOL, "frames": summary, "missed_challenge": missed}
        base = _baseline(vs.baseline)
        usable = [(cid, i, o) for cid, i, _s, o in items if o.landmarks is not None and o.num_faces == 1]
        if fail_reason is not None or len(usable) < v.min_frames:
            reason = fail_reason or str(ErrorCode.TOO_FEW_FRAMES)
            keep = sorted(usable, key=lambda x: -x[2].sharpness)[: v.embed_best_k]
            kept = list(load_frames(self.ctx, db, vs.id, [(c, i) for c, i, _ in keep]).values())
            a = rules.Analysis(Decision.RETRY, reason, None, scores, list(range(len(kept))))
            best = [(data, size, f"step frame {n}") for n, (data, _img, size) in enumerate(kept)]
            self.svc._record(db, vs, p, a, best, results, client_addr)
            return
        fobs = [o.frame_obs(offset) for *_, o in items]
        # still / flat (homography residual OR pad's nose parallax, measured on REAL prints: AUC 0.98) /
        # track breaks: steps.passive_liveness, also what benchmarks/pad_eval.py judges
        live = steps.passive_liveness(fobs, self.params)
        motion, flat, planar, breaks = live.motion, live.flat, live.planar, live.breaks
        opened: dict[int, list[bytes]] = {}  # each chunk decrypted once: jaw test, pixel test, best frames
        loader = frame_loader(self.ctx, db, vs.id, [(c, i) for c, i, _s, _o in items], opened)
        jaw_check = open_mouth_jaw(vs.steps or [], [step for _c, _i, step, _o in items], fobs, base, self.params,
                                   loader)
        pixels = upper_face_pixels(fobs, loader, live.flat_photo)
        pad = self.svc.pad_verdict([o.pad for *_, o in items if o.pad is not None])
        scores["liveness"] = {
            "motion": round(motion, 5),
            "still": live.still,
            "flat": {"decided": flat.decided, "flat": flat.flat, "residual": flat.residual, "pairs": flat.pairs},
            "planarity": {"decided": planar.decided, "flat": planar.flat, "parallax": planar.parallax,
                          "pairs": planar.pairs, "cut": PARALLAX_CUT},
            "baseline": {k: (round(x, 4) if isinstance(x, float) else x) for k, x in (vs.baseline or {}).items()},
            "track_breaks": breaks,
        }
        if jaw_check is not None:
            scores["liveness"]["jaw"] = jaw_check.as_dict()
        if pixels is not None:
            scores["liveness"]["pixel_planarity"] = {
                "decided": pixels.decided, "flat": pixels.flat, "pairs": pixels.pairs, "cut": pixel_planarity.PIXEL_CUT,
                "value": None if pixels.value is None else round(pixels.value, 4)}
        if pad is not None:
            scores["pad"] = pad
        # Best frames: one per time segment over the usable frames, plus both sides of a tracking break.
        q = [steps.face_quality(o, base.ear, base.pitch) for _, _, o in usable]
        flat_index = {(cid, i): n for n, (cid, i, _s, _o) in enumerate(items)}
        use_pos = {flat_index[(c, i)]: j for j, (c, i, _) in enumerate(usable)}
        pick, extra = fa.pick_best(q, v.embed_best_k, [use_pos[b] for b in breaks[:2] if b in use_pos])
        chosen = pick + extra
        loaded = load_frames(self.ctx, db, vs.id, [(usable[j][0], usable[j][1]) for j in chosen], opened)
        ok = []  # (index into usable, (image, face), (jpeg, original size))
        for j in chosen:
            got = loaded.get((usable[j][0], usable[j][1]))
            face = usable[j][2].face()  # the landmarks seen at upload: no second detection
            if got is not None and face is not None:
                data, img, size = got
                ok.append((j, (img, face), (data, size)))
        if not ok:
            a = rules.Analysis(Decision.RETRY, str(ErrorCode.NO_FACE), None, scores)
            self.svc._record(db, vs, p, a, [], results, client_addr)
            return
        embs = self.svc.frame_engine.embed_faces([f for _, f, _ in ok], self.ctx.settings.embedding.probe_profile)
        thr = self.ctx.model.threshold("verify")
        one_person_min = float((embs @ embs.T).min()) if len(embs) > 1 else 1.0
        nb = sum(1 for j, _, _ in ok if j in pick)
        w = np.array([max(q[j], 1e-3) for j, _, _ in ok[:nb]], dtype=np.float32)
        fused = l2_normalize((embs[:nb] * w[:, None]).sum(axis=0)) if nb else l2_normalize(embs.mean(axis=0))
        matches = match_pensioner(self.ctx, db, p.id, fused)
        own = matches[0].score
        thr = refresh.verify_threshold(self.ctx.model, [m.kind for m in matches])
        hits = [
            {"pensioner_id": h.pensioner_id, "template_id": h.template_id, "score": round(h.score, 4)}
            for h in search(self.ctx, db, fused, k=5)
            if h.pensioner_id != p.id
        ]
        scores |= {
            "best_frames": [
                {"index": n, "step": items[flat_index[(usable[j][0], usable[j][1])]][2]}
                | {"t_ms": usable[j][2].t_ms + offset, "quality": round(q[j], 4), "track_break": j in extra}
                | {"pad": usable[j][2].pad}
                for n, (j, _, _) in enumerate(ok)
            ],
            "one_person_min_similarity": round(one_person_min, 4),
            "match": round(own, 4),
            "match_template_id": matches[0].template_id,
            "templates_compared": len(matches),
            "threshold": thr,
            "model_key": self.ctx.model.key,
            "one_to_n": hits,
        }
        with_refresh = thr != self.ctx.model.threshold("verify")
        best_faces = [f for _, f, _ in ok[:nb]]
        fz = self.svc.fused_evidence(db, p.id, own, best_faces, w, with_refresh=with_refresh,
                                     probe=fused) if nb else None
        if fz is not None:
            scores["fusion"] = fz
        verdict = rules.decide(
            rules.Evidence(
                **rules.match_evidence(fz, hits),
                threshold=thr,
                own_match=own,
                one_person_min=one_person_min,
                still=live.still,
                flat=live.flat_photo or (pixels is not None and pixels.flat),
                challenges_passed=missed is None and all(s["state"] == SEEN for s in vs.steps),
                pad_spoof=bool(pad and pad.get("spoof")),
            )
        )
        if verdict.issue:
            scores["liveness_issue"] = verdict.issue
        scores["analysis_ms"] = round((time.perf_counter() - t0) * 1000, 1)
        final_reason = str(verdict.reason) if verdict.reason else None
        a = rules.Analysis(verdict.decision, final_reason, None, scores, list(range(len(ok))), hits, own)
        best = [
            (data, size, f"step {scores['best_frames'][n]['step']} frame") for n, (_, _, (data, size)) in enumerate(ok)
        ]
        self.svc._record(db, vs, p, a, best, results, client_addr)


def load_frames(
    ctx: AppContext, db: Session, session_id: str, keys: Sequence[tuple[int, int]],
    opened: dict[int, list[bytes]] | None = None,
) -> dict[tuple[int, int], tuple[bytes, ImageBGR, tuple[int, int]]]:
    """(JPEG bytes, decoded (H, W, 3) BGR image, original (w, h)) of a session's sealed frames given as
    (chunk id, index in chunk), in the order given; frames no longer kept are left out. ``opened``: decrypted
    chunks by id, filled and reused across calls (one decryption per chunk in a final decision)."""
    lim = ctx.settings.images
    cache: dict[int, list[bytes]] = {} if opened is None else opened
    out = {}
    for cid, i in keys:
        if cid not in cache:
            row = db.get(VerificationChunk, cid)
            blob = None if row is None or row.frames_sealed is None else row.frames_sealed
            cache[cid] = [] if blob is None or row is None else open_chunk(ctx, session_id, row.seq, blob)[1]
        if i >= len(cache[cid]):
            continue
        data = cache[cid][i]
        img, size = fa.decode_frames([data], max_bytes=lim.max_bytes, max_pixels=lim.max_pixels)[0]
        out[(cid, i)] = (data, img, size)
    return out


def frame_loader(ctx: AppContext, db: Session, session_id: str, keys: Sequence[tuple[int, int]],
                 opened: dict[int, list[bytes]] | None = None) -> jaw.ImageLoader:
    """Loads a session's frames by their position in ``keys`` ((chunk id, index in chunk) per frame): the jaw and
    pixel tests' pixels, in _finalize and in the benchmarks that re-decide stored sessions. Decrypted chunks are
    kept in ``opened`` (a new dict when None) across calls."""
    cache: dict[int, list[bytes]] = {} if opened is None else opened

    def images(idx: Sequence[int]) -> list[ImageBGR | None]:
        want = [keys[j] for j in idx]
        got = load_frames(ctx, db, session_id, want, cache)
        return [got[key][1] if key in got else None for key in want]

    return images


# how the page knew the hint was heard: the end of its utterance, or its text shown (nothing was spoken); a report
# without it is kept as "unknown"
HEARD_VIA = frozenset({"speech", "text"})


def check_heard(heard_ms: int | None, via: str | None, sent_ms: int, what: str = "hint") -> None:
    """A hint-heard (``what="prompt"``: prompt-heard) report is a client ms no later than the request left
    (``sent_ms``), with a known ``via``."""
    if heard_ms is None:
        if via is not None:
            raise LifecertError(f"{what}_heard_via without {what}_heard_ms", code=ErrorCode.BAD_REQUEST)
        return
    if not 0 <= heard_ms <= sent_ms:
        raise LifecertError(f"{what}_heard_ms {heard_ms} must lie between 0 and the send time ({sent_ms} ms)",
                            code=ErrorCode.BAD_TIMESTAMPS)
    if via is not None and via not in HEARD_VIA:
        raise LifecertError(f"{what}_heard_via must be one of {sorted(HEARD_VIA)}", code=ErrorCode.BAD_REQUEST)


def _prompt_heard(st: dict[str, Any], heard_after_prompt_ms: int, via: str, tried: bool = False) -> None:
    """Record when the step's prompt was heard, the base window it gives (:func:`.steps.prompt_window`) and whether
    the person had tried the action before (``tried``, :func:`.steps.tried_before`: the reader, whose hint clock
    stays at the reveal, :func:`_hint_since`). The action hints issued before are forgotten as issued: the page
    neither showed nor said them (app.js ``staleAction``), so a hearing counts only for a code issued from now on
    (the reader's is issued again at once, in the answer to the chunk that carried this report, which the page
    does not drop)."""
    window, rule = steps.prompt_window(heard_after_prompt_ms)
    st["prompt_heard"] = {"heard_ms_after_prompt": max(0, heard_after_prompt_ms), "heard_via": via,
                          "window_ms": window, "rule": rule, "tried_before": bool(tried)}
    if st.get("hint"):
        st["hint"] = dict(st["hint"]) | {"issued": {}}


def _hint_since(st: dict[str, Any]) -> int:
    """The step's action-hint clock, ms after the reveal (:func:`.steps.hint_since`): from the prompt's reported
    hearing unless she tried before it (a record without ``tried_before``, written before session 10's reader
    rule, counts from the hearing as it did)."""
    p = st.get("prompt_heard")
    if not p:
        return 0
    return steps.hint_since(int(p["heard_ms_after_prompt"]), bool(p.get("tried_before", False)))


def check_heard_code(code: str | None, heard_ms: int | None) -> None:
    """A hint-heard report's code is one of the server's action hints, and comes with its time."""
    if code is None:
        return
    if heard_ms is None:
        raise LifecertError("hint_heard_code without hint_heard_ms", code=ErrorCode.BAD_REQUEST)
    if code not in steps.ACTION_HINT_CODES:
        raise LifecertError(f"hint_heard_code must be one of {sorted(steps.ACTION_HINT_CODES)}",
                            code=ErrorCode.BAD_REQUEST)


def _hint_heard(st: dict[str, Any], heard_after_prompt_ms: int, via: str, code: str | None = None) -> None:
    """Record when the step's action hint was heard (the window follows: :func:`_window`). ``code``: which hint
    (the newest heard, kept when :func:`.steps.newer_hearing` says so); None: an older page's report of the step's
    first action hint, kept once, counted from the answer that carried it."""
    h: dict[str, Any] = dict(st["hint"])
    if code is None:
        if "heard_ms_after_prompt" in h:
            return
        h |= {"heard_ms_after_prompt": max(heard_after_prompt_ms, _answered(h)), "heard_via": via}
    else:
        issued = h["issued"] if "issued" in h else {h["code"]: _answered(h)}
        kept = h.get("heard_ms_after_prompt")
        newer = steps.newer_hearing(issued, code, heard_after_prompt_ms, None if kept is None else int(kept))
        if newer is None:
            return
        h |= {"heard_ms_after_prompt": newer, "heard_via": via, "heard_code": code}
    st["hint"] = h


def _answered(h: dict[str, Any]) -> int:
    return int(h["answered_ms_after_prompt"] if "answered_ms_after_prompt" in h else h["ms_after_prompt"])


def _window(st: dict[str, Any]) -> int:
    """A challenge step's window from what it recorded: CHALLENGE_WINDOW_MS, or from when its prompt was heard
    (:func:`.steps.prompt_window`); after an action hint :func:`.steps.hint_window` on that base (its rule and
    extra ms are written into the hint)."""
    p = st.get("prompt_heard")
    base = int(p["window_ms"]) if p else steps.CHALLENGE_WINDOW_MS
    held = int(st.get("held_ms", 0))  # held open while the action was under way (steps.held_window), never undone
    if not st.get("hint"):
        return max(base, held)
    h: dict[str, Any] = dict(st["hint"])
    heard = h.get("heard_ms_after_prompt")
    # a page that reported the prompt heard reports hint hearings: the step waits for that of its newest hint
    issued = h.get("issued") or {}
    awaiting = max(int(v) for v in issued.values()) if p and issued else None
    window, rule = steps.hint_window(None if heard is None else int(heard), _answered(h), base=base,
                                     awaiting_from_ms=awaiting)
    h |= {"rule": rule, "extra_window_ms": window - steps.CHALLENGE_WINDOW_MS}
    st["hint"] = h
    return max(window, held)


def extended_steps(vs: VerificationSession) -> list[tuple[str, int]]:
    """(challenge, extra ms) of the challenge steps whose window grew past CHALLENGE_WINDOW_MS (after an action
    hint, or from when the prompt was heard: :func:`_window`)."""
    out = []
    for s in vs.steps or []:
        extra = int(s.get("window_ms", 0)) - steps.CHALLENGE_WINDOW_MS
        if s.get("kind") == "challenge" and extra > 0:
            out.append((str(s["challenge"]), extra))
    return out


def _hint_note(st: dict[str, Any]) -> dict[str, Any]:
    """What the case page shows of a step's longer window (none: nothing): its first action hint and which rule
    set the window: +HINT_EXTRA_WINDOW_MS (``fixed``: no hearing reported, or one that gave less), HINT_REPORT_MS
    after the newest hint's first issue (``awaiting``: a page that reports hearings, until it does),
    HINT_HEARD_WINDOW_MS after the reported hearing (``heard``), or HINT_MAX_WINDOW_MS (``capped``); and when the
    prompt was reported heard, the base window counted from then (``prompt_window_rule``); and when the step was held
    open because its movement was under way at the window's end, until when (``held_under_way_ms``)."""
    h, p, held = st.get("hint"), st.get("prompt_heard"), st.get("held_ms")
    if not h and not p and not held:
        return {}
    out: dict[str, Any] = {"window_ms": st["window_ms"]}
    notes = []
    if p:
        out |= {"prompt_heard_ms_after_prompt": p["heard_ms_after_prompt"], "prompt_heard_via": p["heard_via"],
                "prompt_window_ms": p["window_ms"], "prompt_window_rule": p["rule"]}
        notes.append(f"prompt heard at {p['heard_ms_after_prompt']} ms ({p['heard_via']}): base window "
                     f"{p['window_ms']} ms ({p['rule']})")
    if h:
        rule = h.get("rule", "fixed")
        heard = h.get("heard_ms_after_prompt")
        which = f"{h['heard_code']} " if h.get("heard_code") else ""
        said = "" if heard is None else f"; {which}heard at {heard} ms ({h.get('heard_via', 'unknown')})"
        why = {"fixed": f"+{steps.HINT_EXTRA_WINDOW_MS} ms after the hint",
               "heard": f"{steps.HINT_HEARD_WINDOW_MS} ms after hearing it",
               "awaiting": f"{steps.HINT_REPORT_MS} ms after the newest hint, for the page's report of hearing it",
               "capped": f"capped at {steps.HINT_MAX_WINDOW_MS} ms"}.get(rule, rule)
        out |= {"action_hint": h["code"], "hint_ms_after_prompt": h["ms_after_prompt"], "window_rule": rule}
        notes.append(f"hint {h['code']} at {h['ms_after_prompt']} ms{said}; window {st['window_ms']} ms ({why})")
        if heard is not None:
            out |= {"hint_heard_ms_after_prompt": heard, "hint_heard_via": h.get("heard_via", "unknown")}
            if h.get("heard_code"):
                out["hint_heard_code"] = h["heard_code"]
    if held:
        out["held_under_way_ms"] = held
        notes.append(f"held open to {held} ms: the movement was still under way at the window's end")
    out["note"] = "; ".join(notes)
    return out


def open_mouth_jaw(
    vs_steps: Sequence[dict[str, Any]], frame_steps: Sequence[int], fobs: Sequence[FrameObs], base: Baseline,
    params: LivenessParams, images: jaw.ImageLoader | None = None,
) -> jaw.JawCheck | None:
    """Did the chin drop with the lips in the open_mouth step (engine/jaw.py)? ``frame_steps[i]`` is the step index
    of frame ``fobs[i]`` (its chunk's step); the threshold is the step's own (judge_challenge's "open");
    ``images`` loads frames by their index in ``fobs`` (None: the landmark measure only). None when the session has
    no revealed open_mouth step. Shared by _finalize and the benchmarks that re-decide stored sessions."""
    k = next((n for n, s in enumerate(vs_steps)
              if s["kind"] == "challenge" and s["challenge"] == "open_mouth" and s["state"] != PENDING), None)
    if k is None:
        return None
    at = [n for n, step in enumerate(frame_steps) if step == k]
    step_images = None if images is None else (lambda idx: images([at[j] for j in idx]))
    check = jaw.jaw_follows([fobs[n] for n in at], fobs, base.mar, base.yaw, base.pitch,
                            max(params.mouth_open_abs, base.mar + params.mouth_open_delta), step_images)
    return replace(check, step_seen=vs_steps[k]["state"] == SEEN)


def upper_face_pixels(
    fobs: Sequence[FrameObs], images: jaw.ImageLoader, landmark_flat: bool
) -> pixel_planarity.PixelPlanarity | None:
    """The second flat-picture test, on the upper face's PIXELS (engine/pixel_planarity.py), run only where the
    landmark tests (steps.passive_liveness) did not already call the face flat (None: not run). Its flat verdict
    counts like theirs (REVIEW flat_photo). ``images`` loads frames by their index in ``fobs``. Why it is a second
    opinion and not a replacement: on the SYNTHETIC rigid cut-out prints of benchmarks/cutout.py it calls 93 % of the
    informed attacker's sessions flat (the landmark test 39 %), on REAL NUAA prints as captured 0/40 (the landmark
    test 20/40); genuine 0 of 1,486 sessions (benchmarks/README.md `pixflat`). Shared by _finalize and the benchmarks
    that re-decide stored sessions."""
    if landmark_flat:
        return None
    lms = [f.landmarks if f.landmarks is not None and f.num_faces == 1 else None for f in fobs]
    try:
        return pixel_planarity.pixel_planarity(lms, images)
    except (cv2.error, np.linalg.LinAlgError, ValueError) as exc:  # a numerical corner case abstains, never loses
        log.warning("pixel planarity abstained on a numerical error: %s", type(exc).__name__)  # the session
        return pixel_planarity.PixelPlanarity(False, False)


def _baseline(d: dict[str, Any] | None) -> Baseline:
    d = d or {}
    nan = float("nan")
    return Baseline(
        float(d.get("ear", nan)),
        float(d.get("mar", nan)),
        float(d.get("yaw", nan)),
        float(d.get("pitch", nan)),
        int(d.get("frames", 0)),
    )
