"""Template refresh from verified selfies: a real CONFIRMED session (talking-head video through
the API and the real engine) adds a `refresh` template that the next session matches against;
the rules for review sessions, the cap per person, revocation and expiry on stored sessions."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from numpy.typing import NDArray
from sqlalchemy import select

from lifecert.domain.errors import LifecertError
from lifecert.engine.base import FaceEngine
from lifecert.engine.image import encode_jpeg
from lifecert.services import refresh
from lifecert.services.context import AppContext
from lifecert.services.templates import match_pensioner, store_photo
from lifecert.storage.models import AuditEvent, FaceTemplate, Pensioner, TemplateKind, utcnow
from lifecert.storage.models_verification import Decision, VerificationSession
from tests.conftest import make_settings
from tests.db_support import detached_get
from tests.integration.verification_support import TEMPLATE_FRAME, enroll, refresh_rows, serve, verification_ctx
from tests.paced_client import Clip, SimClock, VirtualTime, run_http_session


@pytest.fixture
def vctx(tmp_path: Path, face_engine: FaceEngine) -> Iterator[AppContext]:
    yield from verification_ctx(tmp_path, face_engine, inference_threads=1)


def _session(client: TestClient, p: Pensioner, clip: Clip) -> dict[str, object]:
    """A paced session through the API on the app's virtual clock; its result JSON."""
    clock: VirtualTime = client.app.state.clock  # type: ignore[attr-defined]
    sid, phone = run_http_session(client, {"id_number": p.id_number, "name": p.name}, clip, SimClock(clock))
    assert phone.last is not None and phone.last.result is not None
    return {**phone.last.result, "session_id": sid}


def test_given_confirmed_session_when_decided_then_refresh_template_is_added_and_next_session_matches_it(
    vctx: AppContext, frame_engine: FaceEngine, video: list[NDArray[np.uint8]], clip: Clip
) -> None:
    p = enroll(vctx, video[TEMPLATE_FRAME], seq=21)
    with serve_client(vctx, frame_engine) as client:
        first = _session(client, p, clip)
        assert first["decision"] == "CONFIRMED", first
        rows = refresh_rows(vctx, p.id)
        assert len(rows) == 1
        t = rows[0]
        assert t.active and t.source_session_id == first["session_id"]
        assert t.provenance["session_id"] == first["session_id"] and t.provenance["margin"] >= 0.02
        assert t.expires_at is not None and t.expires_at > utcnow() + timedelta(days=700)
        with vctx.db.session() as s:
            vs = s.get(VerificationSession, first["session_id"])
            assert vs is not None and t.photo_sha256 in vs.best_frame_shas
            actions = set(s.scalars(select(AuditEvent.action)))
        assert "template.refresh_added" in actions

        second = _session(client, p, clip)
    assert second["decision"] == "CONFIRMED"
    with vctx.db.session() as s:
        vs2 = s.get(VerificationSession, second["session_id"])
        assert vs2 is not None and vs2.scores["templates_compared"] == 2, "ID photo and refresh template"
        assert vs2.scores["threshold"] == vctx.model.threshold("verify_refresh")
    # The second session's frame is the same footage: its frames are already a template or become one.
    assert 1 <= len([r for r in refresh_rows(vctx, p.id) if r.active]) <= 2


def serve_client(ctx: AppContext, engine: FaceEngine) -> Iterator[TestClient]:
    import contextlib

    return contextlib.contextmanager(lambda: serve(ctx, engine, VirtualTime()))()  # type: ignore[return-value]


def _stored_session(ctx: AppContext, p: Pensioner, frame: NDArray[np.uint8], *, decision: str, match: float,
                    review: bool = False, spoof: bool = False) -> str:
    """A decided session row as the verification service leaves it (frame in the photo store)."""
    import secrets

    data = encode_jpeg(frame, 92)
    sha = hashlib.sha256(data).hexdigest()
    sid = secrets.token_urlsafe(16)
    with ctx.db.session() as s:
        store_photo(ctx, s, data, sha, frame.shape[1], frame.shape[0])
        s.add(VerificationSession(
            id=sid, pensioner_id=p.id, nonce_hash="0" * 64, challenges=["blink"], lead_in_ms=0,
            challenge_window_ms=1000, expires_at=utcnow(), decided_at=utcnow(), decision=decision,
            scores={"match": match, "threshold": ctx.model.threshold("verify"),
                    "pad": {"spoof": spoof, "fused": 0.1 if spoof else 0.9}},
            challenge_results=[{"name": "blink", "passed": True}], model_key=ctx.model.key,
            best_frame_shas=[sha], review_case_id=None,
        ))
        if review:
            s.flush()
    return sid


def _consider(ctx: AppContext, sid: str) -> FaceTemplate | None:
    with ctx.db.session() as s:
        vs = s.get(VerificationSession, sid)
        assert vs is not None
        p = s.get(Pensioner, vs.pensioner_id)
        assert p is not None
        t = refresh.consider_session(ctx, s, vs, p)
        tid = None if t is None else t.id
    return None if tid is None else detached_get(ctx, FaceTemplate, tid)


def test_given_review_low_margin_or_spoof_sessions_when_considered_then_no_template_until_caseworker_approves(
    vctx: AppContext, video: list[NDArray[np.uint8]]
) -> None:
    p = enroll(vctx, video[TEMPLATE_FRAME], seq=22)
    thr = vctx.model.threshold("verify")
    reviewed = _stored_session(vctx, p, video[40], decision=Decision.REVIEW, match=thr + 0.05)
    low = _stored_session(vctx, p, video[43], decision=Decision.CONFIRMED, match=thr + 0.001)
    spoof = _stored_session(vctx, p, video[46], decision=Decision.CONFIRMED, match=thr + 0.05, spoof=True)

    assert _consider(vctx, reviewed) is None
    assert _consider(vctx, low) is None
    assert _consider(vctx, spoof) is None
    assert refresh_rows(vctx, p.id) == []

    t = refresh.approve_from_session(vctx, reviewed, actor="cw-li")
    assert t.kind == TemplateKind.REFRESH and t.provenance["approved_by"] == "cw-li"
    with pytest.raises(LifecertError):
        refresh.approve_from_session(vctx, spoof, actor="cw-li")
    with vctx.db.session() as s:
        skipped = s.scalars(select(AuditEvent).where(AuditEvent.action == "template.refresh_skipped")).all()
        reasons = {e.detail["reason"] for e in skipped}
    assert {"low_margin", "presentation_attack"} <= reasons


def test_given_more_refreshes_than_allowed_when_added_then_oldest_retired_revocation_and_expiry_stop_matching(
    tmp_path: Path, face_engine: FaceEngine, video: list[NDArray[np.uint8]]
) -> None:
    ctx = AppContext(make_settings(tmp_path, refresh={"max_per_person": 2}))
    ctx.set_engine(face_engine)
    p = enroll(ctx, video[TEMPLATE_FRAME], seq=23)
    thr = ctx.model.threshold("verify")
    added = [_consider(ctx, _stored_session(ctx, p, video[i], decision=Decision.CONFIRMED, match=thr + 0.05))
             for i in (10, 60, 130)]
    assert all(t is not None for t in added)
    ids = [t.id for t in added if t is not None]

    active = {r.id for r in refresh_rows(ctx, p.id) if r.active}
    assert active == set(ids[1:]), "at most two: the oldest was retired"

    refresh.revoke(ctx, ids[1], actor="cw-wang", reason="wrong person on the frame")
    revoked = detached_get(ctx, FaceTemplate, ids[1])
    assert revoked.revoked_at is not None and not revoked.active
    probe = face_engine.analyze(video[130])[0].embedding
    assert probe is not None
    with ctx.db.session() as s:
        kinds = [m.kind for m in match_pensioner(ctx, s, p.id, probe)]
    assert sorted(kinds) == ["id_photo", "refresh"]

    with ctx.db.session() as s:
        t = s.get(FaceTemplate, ids[2])
        assert t is not None
        t.expires_at = utcnow() - timedelta(seconds=1)
    with ctx.db.session() as s:
        assert [m.kind for m in match_pensioner(ctx, s, p.id, probe)] == ["id_photo"], "expired: no longer compared"
    assert refresh.expire_due(ctx) == 1
    assert not detached_get(ctx, FaceTemplate, ids[2]).active
    ctx.close()
