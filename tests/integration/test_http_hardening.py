"""Issue 11 M3, M12 and Low items at the HTTP edge: body limits before authentication, no input echo,
typed 4xx for non-finite and oversized numbers, interactive docs off, security headers everywhere."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from lifecert.services import staff
from lifecert.services.context import AppContext
from server.app import create_app
from server.hardening import DEFAULT_BODY_LIMIT
from tests.integration.console_support import make_user


@pytest.fixture
def client(data_ctx: AppContext) -> TestClient:
    # Not entered as a context manager: nothing here needs the face engine's warm-up.
    return TestClient(create_app(ctx=data_ctx))


@pytest.fixture
def token(data_ctx: AppContext) -> str:
    make_user(data_ctx, "cw1", "caseworker")
    with data_ctx.db.session() as s:
        raw, _ = staff.create_api_token(s, "cw1", actor="test", actor_role="cli")
    return raw


@pytest.mark.parametrize("path", ["/api/v1/tipoffs", "/api/staff/cases/1/decision", "/console/login",
                                  "/tipoffs", "/console/users"])
def test_given_body_over_the_limit_when_posted_anonymously_then_413_before_authentication(
        client: TestClient, path: str) -> None:
    big = b"{" + b" " * (DEFAULT_BODY_LIMIT + 10) + b"}"

    r = client.post(path, content=big, headers={"content-type": "application/json"})

    assert r.status_code == 413
    assert r.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"


def test_given_chunked_multipart_over_the_limit_when_posted_to_login_then_413(client: TestClient) -> None:
    def chunks():  # no Content-Length: the limit is counted while the body streams
        for _ in range(DEFAULT_BODY_LIMIT // 4096 + 10):
            yield b"x" * 4096

    r = client.post("/console/login", content=chunks(),
                    headers={"content-type": "multipart/form-data; boundary=zz"})

    assert r.status_code == 413


def test_given_invalid_field_holding_a_large_value_when_posted_then_error_names_the_field_without_echoing_it(
        client: TestClient) -> None:
    marker = "寄" * 20_000
    r = client.post("/api/v1/tipoffs", json={"description": ["not", "a", "string", marker]})

    assert r.status_code == 422
    assert marker[:50] not in r.text
    assert len(r.content) < 4000
    assert r.json()["error"]["details"]["errors"][0]["loc"][-1] == "description"


@pytest.mark.parametrize("raw", ['{"id_number": 1e999, "description": "已经去世多年的老人"}',
                                 '{"id_number": NaN, "description": "已经去世多年的老人"}',
                                 '{"id_number": -Infinity, "description": "已经去世多年的老人"}',
                                 '{"id_number": 123456789012345678901234567890, "description": "x"}'])
def test_given_non_finite_or_huge_numbers_in_json_when_posted_then_typed_4xx_not_500(
        client: TestClient, raw: str) -> None:
    r = client.post("/api/v1/tipoffs", content=raw, headers={"content-type": "application/json"})

    assert 400 <= r.status_code < 500
    assert r.json()["error"]["code"] == "BAD_REQUEST"


@pytest.mark.parametrize("path", ["/api/staff/cases/18446744073709551616", "/api/staff/cases/0",
                                  "/api/staff/cases?offset=99999999999999999999999",
                                  "/api/staff/cases?limit=-5"])
def test_given_ids_or_paging_beyond_64_bits_when_staff_api_called_then_422_not_500(
        client: TestClient, token: str, path: str) -> None:
    r = client.get(path, headers={"Authorization": f"Bearer {token}"})

    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "BAD_REQUEST"


def test_given_large_decision_case_id_when_posted_then_422(client: TestClient, token: str) -> None:
    r = client.post(f"/api/staff/cases/{2**63}/decision", headers={"Authorization": f"Bearer {token}"},
                    content=json.dumps({"decision": "reject"}))

    assert r.status_code == 422


def test_given_default_settings_when_docs_requested_then_not_served(client: TestClient) -> None:
    assert client.get("/docs").status_code == 404
    assert client.get("/redoc").status_code == 404
    assert client.get("/openapi.json").status_code == 200  # the schema itself carries no scripts


@pytest.mark.parametrize("path", ["/", "/tipoffs", "/healthz", "/api/v1/tipoffs"])
def test_given_public_pages_and_api_when_fetched_then_framing_and_script_sources_are_restricted(
        client: TestClient, path: str) -> None:
    r = client.get(path)

    csp = r.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp
    assert "script-src 'self'" in csp or "default-src 'none'" in csp
    assert "unsafe-eval" not in csp
    assert r.headers["x-content-type-options"] == "nosniff"


def test_given_non_ascii_session_cookie_and_csrf_when_posted_then_4xx_not_500(client: TestClient) -> None:
    # Found by the form fuzzer: hmac.compare_digest raises TypeError on non-ASCII str.
    cookie = "lc_session=tok\u00e9n.sig\u00e9".encode("latin-1")
    r = client.post("/console/logout", data={"csrf_token": "\u00a5\u00da"}, headers={"cookie": cookie})
    assert r.status_code in (401, 403)
    page = client.get("/console/login")
    r = client.post("/console/login", data={"username": "x", "password": "y", "csrf_token": "\u00a5\u00da"})
    assert page.status_code == 200 and r.status_code == 403
