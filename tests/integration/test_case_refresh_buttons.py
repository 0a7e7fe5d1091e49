"""The case page's template-refresh buttons through the real console (login, CSRF, roles):
"use as template" on a verification review case turns the session's real frame into a refresh
template; a spoofed session is refused with the reason shown and audited; "revoke" takes a refresh
template back. Sessions are stored rows with real video frames (the paced flow is tested elsewhere)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from numpy.typing import NDArray
from sqlalchemy import select

from lifecert.domain.cases import VerificationReview
from lifecert.engine.base import FaceEngine
from lifecert.services import cases
from lifecert.services.context import AppContext
from lifecert.storage.models import AuditEvent, Pensioner
from lifecert.storage.models_verification import Decision
from server.app import create_app
from tests.conftest import make_settings
from tests.db_support import detached
from tests.integration.console_support import login, make_user
from tests.integration.test_template_refresh import _stored_session
from tests.integration.verification_support import TEMPLATE_FRAME, enroll, refresh_rows


@pytest.fixture
def vctx(tmp_path: Path, face_engine: FaceEngine) -> Iterator[AppContext]:
    c = AppContext(make_settings(tmp_path, inference_threads=1))
    c.set_engine(face_engine)
    yield c
    c.close()


@pytest.fixture
def client(vctx: AppContext) -> Iterator[TestClient]:
    with TestClient(create_app(vctx.settings, vctx)) as c:
        yield c


def _review_case(ctx: AppContext, p: Pensioner, sid: str, match: float) -> int:
    with ctx.db.session() as s:
        person = s.get(Pensioner, p.id)
        payload = VerificationReview(session_id=sid, reason="LOW_MATCH", match=match,
                                     threshold=ctx.model.threshold("verify"))
        return cases.open_case(s, payload, reason="LOW_MATCH", pensioner=person, verification_session_id=sid).id


def _reviewed_session(ctx: AppContext, client: TestClient, video: list[NDArray[np.uint8]], caseworker: str, *,
                      seq: int, frame: int, spoof: bool = False) -> tuple[Pensioner, str, int, str]:
    """A pensioner enrolled from the video, one of its frames as a decided session that went to review
    (PAD spoof flag as given), its verification case, and ``caseworker`` logged in: (pensioner,
    session id, case id, CSRF token)."""
    make_user(ctx, caseworker, "caseworker")
    p = enroll(ctx, video[TEMPLATE_FRAME], seq=seq)
    thr = ctx.model.threshold("verify")
    sid = _stored_session(ctx, p, video[frame], decision=Decision.REVIEW, match=thr + 0.05, spoof=spoof)
    return p, sid, _review_case(ctx, p, sid, thr + 0.05), login(client, caseworker)


def _actions(ctx: AppContext, prefix: str) -> list[AuditEvent]:
    return detached(ctx, select(AuditEvent).where(AuditEvent.action.startswith(prefix)).order_by(AuditEvent.id))


def test_given_a_review_case_when_caseworker_uses_it_as_template_then_refresh_template_and_revocable(
    vctx: AppContext, client: TestClient, video: list[NDArray[np.uint8]]
) -> None:
    p, sid, cid, csrf = _reviewed_session(vctx, client, video, "li", seq=31, frame=40)

    page = client.get(f"/console/cases/{cid}")
    assert 'id="use-as-template"' in page.text and 'id="refresh-template-list"' not in page.text

    no_csrf = client.post(f"/console/cases/{cid}/use-as-template", follow_redirects=False)
    assert no_csrf.status_code == 403 and refresh_rows(vctx, p.id) == [], "the console's CSRF rule applies"

    r = client.post(f"/console/cases/{cid}/use-as-template", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303 and "error" not in r.headers["location"], r.headers["location"]
    (t,) = refresh_rows(vctx, p.id)
    assert t.active and t.source_session_id == sid and t.provenance["approved_by"] == "li"
    assert t.model_key == vctx.model.key and t.embedding_profile == vctx.settings.embedding.enroll_profile
    case_events = [e for e in _actions(vctx, "case.use_as_template") if e.object_id == str(cid)]
    assert [(e.actor, e.detail.get("template_id")) for e in case_events] == [("li", t.id)]
    assert [e.object_id for e in _actions(vctx, "template.refresh_added")] == [str(t.id)]

    page = client.get(f"/console/cases/{cid}")
    assert f'id="rt-{t.id}"' in page.text and f'id="revoke-{t.id}"' in page.text

    r = client.post(f"/console/cases/{cid}/templates/{t.id}/revoke", data={"csrf_token": csrf, "reason": ""},
                    follow_redirects=False)
    assert r.status_code == 303 and "error=BAD_REQUEST" in r.headers["location"], "a reason is required"
    assert refresh_rows(vctx, p.id)[0].active

    r = client.post(f"/console/cases/{cid}/templates/{t.id}/revoke",
                    data={"csrf_token": csrf, "reason": "家属称照片为他人"}, follow_redirects=False)
    assert r.status_code == 303 and "error" not in r.headers["location"]
    (t2,) = refresh_rows(vctx, p.id)
    assert not t2.active and t2.revoked_at is not None
    revoked = _actions(vctx, "case.revoke_template")
    assert [(e.actor, e.detail["template_ids"], e.detail["note"]) for e in revoked] == [
        ("li", [t.id], "家属称照片为他人")]
    assert [e.object_id for e in _actions(vctx, "template.refresh_revoked")] == [str(t.id)]
    page = client.get(f"/console/cases/{cid}")
    assert f'id="revoke-{t.id}"' not in page.text, "nothing left to revoke"


def test_given_a_spoofed_session_when_used_as_template_then_refused_with_reason_shown_and_audited(
    vctx: AppContext, client: TestClient, video: list[NDArray[np.uint8]]
) -> None:
    p, _sid, cid, csrf = _reviewed_session(vctx, client, video, "zhao", seq=32, frame=46, spoof=True)

    r = client.post(f"/console/cases/{cid}/use-as-template", data={"csrf_token": csrf}, follow_redirects=False)

    assert r.status_code == 303 and "error=BAD_REQUEST" in r.headers["location"]
    assert refresh_rows(vctx, p.id) == []
    (e,) = _actions(vctx, "case.use_as_template")
    assert e.detail["refused"] == "presentation_attack" and e.actor == "zhao"
    page = client.get(r.headers["location"])
    assert 'id="refresh-refused"' in page.text and "presentation_attack" in page.text


def test_given_other_roles_or_foreign_templates_when_refresh_buttons_used_then_refused(
    vctx: AppContext, client: TestClient, video: list[NDArray[np.uint8]]
) -> None:
    make_user(vctx, "ops", "enrollment_staff")
    make_user(vctx, "sun", "caseworker")
    p = enroll(vctx, video[TEMPLATE_FRAME], seq=33)
    other = enroll(vctx, video[TEMPLATE_FRAME + 3], seq=34)
    thr = vctx.model.threshold("verify")
    sid = _stored_session(vctx, p, video[40], decision=Decision.REVIEW, match=thr + 0.05)
    cid = _review_case(vctx, p, sid, thr + 0.05)
    osid = _stored_session(vctx, other, video[43], decision=Decision.REVIEW, match=thr + 0.05)
    ocid = _review_case(vctx, other, osid, thr + 0.05)

    csrf = login(client, "ops")
    r = client.post(f"/console/cases/{cid}/use-as-template", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 403 and refresh_rows(vctx, p.id) == []
    client.post("/console/logout", data={"csrf_token": csrf})

    csrf = login(client, "sun")
    r = client.post(f"/console/cases/{ocid}/use-as-template", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303
    (foreign,) = refresh_rows(vctx, other.id)
    # revoking another pensioner's template through this case is NOT_FOUND and changes nothing
    r = client.post(f"/console/cases/{cid}/templates/{foreign.id}/revoke",
                    data={"csrf_token": csrf, "reason": "wrong case"}, follow_redirects=False)
    assert r.status_code == 404
    assert refresh_rows(vctx, other.id)[0].active


def test_given_fusion_installed_when_a_frame_becomes_a_template_then_both_models_get_it_and_revoke_takes_both(
    tmp_path: Path, face_engine: FaceEngine, shared_models_dir: Path, video: list[NDArray[np.uint8]]
) -> None:
    from lifecert import cli_models
    from lifecert.engine.fusion import fusion_spec
    from lifecert.services import refresh

    settings = make_settings(tmp_path, inference_threads=1)
    for pack in ("edgeface", "yunet"):
        cli_models.install_models(settings, shared_models_dir / pack, pack)
    ctx = AppContext(settings)
    ctx.set_engine(face_engine)
    spec = fusion_spec(settings)
    assert spec is not None
    p = enroll(ctx, video[TEMPLATE_FRAME], seq=35)
    thr = ctx.model.threshold("verify")
    sid = _stored_session(ctx, p, video[40], decision=Decision.REVIEW, match=thr + 0.05)

    t = refresh.approve_from_session(ctx, sid, actor="cw-qian")

    rows = {r.model_key: r for r in refresh_rows(ctx, p.id)}
    assert set(rows) == {ctx.model.key, spec.second_key}
    twin = rows[spec.second_key]
    assert (twin.photo_sha256, twin.source_session_id, twin.expires_at) == (t.photo_sha256, sid, t.expires_at)
    assert twin.embedding_profile == "flip" and twin.provenance["primary_template_id"] == t.id
    assert ctx.cipher.open_embedding(twin.embedding_enc, twin.aad()).shape == (512,)

    refresh.revoke(ctx, t.id, actor="cw-qian", reason="test")
    assert all(not r.active and r.revoked_at is not None for r in refresh_rows(ctx, p.id))
    ctx.close()
