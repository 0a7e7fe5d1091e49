"""CSRF: a console POST without the session's token, or with a wrong one, is refused and changes nothing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from lifecert.services.context import AppContext
from lifecert.storage.models import AuditEvent, SurvivalConfirmation
from server.app import create_app
from tests.integration.console_support import PASSWORD, case_row, login, make_case, make_pensioner, make_user


@pytest.fixture
def client(ctx: AppContext) -> Iterator[TestClient]:
    with TestClient(create_app(ctx.settings, ctx)) as c:
        yield c


def _counts(ctx: AppContext) -> tuple[int, int]:
    with ctx.db.session() as s:
        return (int(s.scalar(select(func.count(SurvivalConfirmation.id))) or 0),
                int(s.scalar(select(func.count(AuditEvent.id)).where(AuditEvent.action.startswith("case."))) or 0))


@pytest.mark.parametrize("token", [None, "", "forged-token-from-another-site"])
def test_given_logged_in_caseworker_when_approving_without_the_right_csrf_token_then_403_and_nothing_changes(
    ctx: AppContext, client: TestClient, token: str | None
) -> None:
    make_user(ctx, "cw", "caseworker")
    cid = make_case(ctx, make_pensioner(ctx))
    good = login(client, "cw")
    before = _counts(ctx)
    data = {} if token is None else {"csrf_token": token}
    r = client.post(f"/console/cases/{cid}/approve", data=data, follow_redirects=False)
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "CSRF_FAILED"
    assert _counts(ctx) == before
    assert case_row(ctx, cid).status == "open"
    # The same request with the session's token goes through (the test can fail).
    ok = client.post(f"/console/cases/{cid}/approve", data={"csrf_token": good}, follow_redirects=False)
    assert ok.status_code == 303 and case_row(ctx, cid).decision == "approved"


def test_given_token_of_another_session_when_posting_then_refused(ctx: AppContext) -> None:
    make_user(ctx, "cw1", "caseworker")
    make_user(ctx, "cw2", "caseworker")
    cid = make_case(ctx, make_pensioner(ctx))
    app = create_app(ctx.settings, ctx)
    with TestClient(app) as c1, TestClient(app) as c2:
        login(c1, "cw1")
        other = login(c2, "cw2")
        r = c1.post(f"/console/cases/{cid}/assign", data={"csrf_token": other}, follow_redirects=False)
    assert r.status_code == 403 and r.json()["error"]["code"] == "CSRF_FAILED"
    assert case_row(ctx, cid).assignee_id is None


def test_given_login_form_when_posting_without_its_token_then_csrf_failed_and_no_session(
    ctx: AppContext, client: TestClient
) -> None:
    make_user(ctx, "cw", "caseworker")
    client.get("/console/login")
    r = client.post("/console/login", data={"username": "cw", "password": PASSWORD, "csrf_token": "nope"},
                    follow_redirects=False)
    assert r.status_code == 403 and r.json()["error"]["code"] == "CSRF_FAILED"
    assert client.get("/console/queue", follow_redirects=False).status_code == 303


def test_given_session_cookie_when_header_token_used_instead_of_form_field_then_accepted(
    ctx: AppContext, client: TestClient
) -> None:
    make_user(ctx, "cw", "caseworker")
    cid = make_case(ctx, make_pensioner(ctx))
    csrf = login(client, "cw")
    r = client.post(f"/console/cases/{cid}/note", data={"text": "called the daughter"},
                    headers={"X-CSRF-Token": csrf}, follow_redirects=False)
    assert r.status_code == 303
