"""Role × endpoint matrix: every staff endpoint, every role and anonymous → allowed or denied."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from lifecert.domain.cases import CasePayload, DuplicateFace, FrameRef, VerificationReview
from lifecert.engine.base import FaceEngine
from lifecert.services import staff
from lifecert.services.context import AppContext
from lifecert.services.staff import Role
from lifecert.storage.models import ReviewKind
from server.app import create_app
from server.security import iter_api_routes, staff_endpoints
from tests.conftest import make_settings
from tests.integration.console_support import PASSWORD, login, make_case, make_pensioner, make_user

CW, ES, AU, AD, CO = Role.CASEWORKER, Role.ENROLLMENT_STAFF, Role.AUDITOR, Role.ADMIN, Role.COMMUNITY_WORKER
ANY = frozenset(Role)

# The expected matrix. A new staff endpoint fails the test until it is added here with its roles.
EXPECTED: dict[tuple[str, str], frozenset[Role]] = {
    ("GET", "/console/"): ANY,
    ("POST", "/console/logout"): ANY,
    ("GET", "/console/queue"): frozenset({CW, ES}),
    ("GET", "/console/cases/{case_id}"): frozenset({CW, ES}),
    ("GET", "/console/cases/{case_id}/photos/{sha}"): frozenset({CW, ES}),
    ("POST", "/console/cases/{case_id}/assign"): frozenset({CW, ES}),
    ("POST", "/console/cases/{case_id}/note"): frozenset({CW, ES}),
    ("POST", "/console/cases/{case_id}/approve"): frozenset({CW}),
    ("POST", "/console/cases/{case_id}/reject"): frozenset({CW}),
    ("POST", "/console/cases/{case_id}/visit"): frozenset({CW}),
    ("POST", "/console/cases/{case_id}/fraud"): frozenset({CW}),
    ("POST", "/console/cases/{case_id}/unfounded"): frozenset({CW}),
    ("POST", "/console/cases/{case_id}/genuine"): frozenset({CW}),
    ("POST", "/console/cases/{case_id}/use-as-template"): frozenset({CW}),
    ("POST", "/console/cases/{case_id}/templates/{template_id}/revoke"): frozenset({CW}),
    ("POST", "/console/cases/{case_id}/enrollment/fix-photo"): frozenset({CW, ES}),
    ("POST", "/console/cases/{case_id}/enrollment/confirm-duplicate"): frozenset({CW, ES}),
    ("POST", "/console/cases/{case_id}/enrollment/not-duplicate"): frozenset({CW, ES}),
    ("GET", "/console/visits"): frozenset({CW}),
    ("GET", "/console/suspensions"): frozenset({CW}),
    ("POST", "/console/suspensions/{suspension_id}/propose"): frozenset({CW}),
    ("POST", "/console/suspensions/{suspension_id}/approve"): frozenset({CW}),
    ("POST", "/console/suspensions/{suspension_id}/decline"): frozenset({CW}),
    ("POST", "/console/suspensions/{suspension_id}/propose-lift"): frozenset({CW}),
    ("POST", "/console/suspensions/{suspension_id}/approve-lift"): frozenset({CW}),
    ("POST", "/console/suspensions/export"): frozenset({CW}),
    ("GET", "/console/audit"): frozenset({AU}),
    ("GET", "/console/audit/export.csv"): frozenset({AU}),
    ("GET", "/console/dashboard"): frozenset({CW, AU, AD}),
    ("GET", "/console/dashboard/regions.csv"): frozenset({CW, AU, AD}),
    ("GET", "/console/dashboard/departments.csv"): frozenset({CW, AU, AD}),
    ("GET", "/console/users"): frozenset({AD}),
    ("POST", "/console/users"): frozenset({AD}),
    ("POST", "/console/users/{user_id}/disable"): frozenset({AD}),
    ("POST", "/console/users/{user_id}/reset-password"): frozenset({AD}),
    ("GET", "/api/staff/me"): ANY,
    ("GET", "/api/staff/cases"): frozenset({CW, ES}),
    ("GET", "/api/staff/cases/{case_id}"): frozenset({CW, ES}),
    ("POST", "/api/staff/cases/{case_id}/decision"): frozenset({CW}),
    ("GET", "/api/staff/audit/verify"): frozenset({AU}),
    ("GET", "/console/my-visits"): frozenset({CO}),
    ("POST", "/console/visits/{task_id}/close"): frozenset({CO}),
    ("POST", "/console/visits/{task_id}/assign"): frozenset({CW, AD}),
    ("GET", "/console/imports"): frozenset({CW, AD}),
    ("POST", "/console/imports/upload"): frozenset({CW, AD}),
    ("GET", "/console/imports/{import_id}"): frozenset({CW, AD}),
    ("POST", "/api/staff/assisted/sessions"): frozenset({CO}),
    ("GET", "/api/staff/assisted/context"): frozenset({CO}),
    ("GET", "/api/staff/assisted/report.csv"): frozenset({CW, AD, AU}),
    ("GET", "/api/staff/visits/mine"): frozenset({CO}),
    ("POST", "/api/staff/visits/{task_id}/assign"): frozenset({CW, AD}),
    ("POST", "/api/staff/visits/{task_id}/close"): frozenset({CO}),
}
# Allowed callers whose generic matrix request is well-formed for the guard but not for the endpoint
# (no such task, no photo, no location): the role check passed, the input check answered.
ALLOWED_ALSO: dict[tuple[str, str], set[int]] = {
    ("POST", "/api/staff/assisted/sessions"): {422},
    ("POST", "/api/staff/visits/{task_id}/assign"): {404, 422},
    ("POST", "/api/staff/visits/{task_id}/close"): {404, 422},
    ("POST", "/console/visits/{task_id}/close"): {422},
    ("POST", "/console/imports/upload"): {422},
    ("GET", "/console/imports/{import_id}"): {404},
}
PUBLIC = {("GET", "/console/login"), ("POST", "/console/login"), ("GET", "/console/lang")}


@dataclass
class Actor:
    role: Role | None
    client: TestClient
    csrf: str = ""
    token: str = ""


@pytest.fixture(scope="module")
def mctx(tmp_path_factory: pytest.TempPathFactory, face_engine: FaceEngine) -> Iterator[AppContext]:
    """One data directory for the module: the matrix builds fresh cases per call, so sharing is safe."""
    c = AppContext(make_settings(tmp_path_factory.mktemp("roles")))
    c.set_engine(face_engine)
    yield c
    c.close()


@pytest.fixture(scope="module")
def world(mctx: AppContext) -> Iterator[tuple[TestClient, dict[str, Actor]]]:
    ctx = mctx
    app = create_app(ctx.settings, ctx)
    actors: dict[str, Actor] = {}
    clients = []
    for role in Role:
        make_user(ctx, f"u_{role}", role)
        c = TestClient(app)
        c.__enter__()
        clients.append(c)
        csrf = login(c, f"u_{role}")
        with ctx.db.session() as s:
            raw, _ = staff.create_api_token(s, f"u_{role}", actor="test", actor_role="cli")
        actors[str(role)] = Actor(role, c, csrf, raw)
    anon = TestClient(app)
    anon.__enter__()
    clients.append(anon)
    actors["anonymous"] = Actor(None, anon)
    yield anon, actors
    for c in clients:
        c.__exit__(None, None, None)


def _fresh_path(ctx: AppContext, path: str) -> tuple[str, dict[str, object]]:
    """A concrete URL with fresh objects (each call may close its case) and a form body that passes validation."""
    pid = make_pensioner(ctx, seq=_fresh_path.seq)  # type: ignore[attr-defined]
    _fresh_path.seq += 2  # type: ignore[attr-defined]
    photo = ctx.photos.put(b"not really a jpeg, only bytes to stream")
    enrollment = "/enrollment/" in path or path.endswith(("{case_id}", "/photos/{sha}", "/assign", "/note"))
    kind = ReviewKind.ENROLLMENT if enrollment else ReviewKind.VERIFICATION
    payload: CasePayload = (
        DuplicateFace(photo_sha256=photo, duplicate_of_pensioner_id=pid, similarity=0.9)
        if kind == ReviewKind.ENROLLMENT
        else VerificationReview(session_id="s", reason="LOW_MATCH", match=0.4, best_frames=(FrameRef(sha256=photo),))
    )
    cid = make_case(ctx, pid, reason="DUPLICATE_FACE" if kind == ReviewKind.ENROLLMENT else "LOW_MATCH",
                    payload=payload)
    uid = make_user(ctx, f"target{_fresh_path.seq}", Role.CASEWORKER) if "{user_id}" in path else 0  # type: ignore[attr-defined]
    sid = _open_suspension(ctx, pid) if "{suspension_id}" in path else 0
    url = path.replace("{task_id}", "999999").replace("{template_id}", "999999").replace("{import_id}", "999999")
    url = (url.replace("{case_id}", str(cid)).replace("{sha}", photo).replace("{user_id}", str(uid))
           .replace("{suspension_id}", str(sid)))
    body: dict[str, object] = {"note": "checked by phone", "text": "a note", "password": "another-password-1",
                               "username": f"new{_fresh_path.seq}", "role": "auditor"}  # type: ignore[attr-defined]
    return url, body


def _open_suspension(ctx: AppContext, pensioner_id: int) -> int:
    from lifecert.storage.models_agency import Suspension

    with ctx.db.session() as s:
        row = Suspension(pensioner_id=pensioner_id, region_code="220202", reason="overdue", status="open", detail={})
        s.add(row)
        s.flush()
        return row.id


_fresh_path.seq = 101  # type: ignore[attr-defined]


def _call(ctx: AppContext, actor: Actor, method: str, path: str) -> int:
    url, body = _fresh_path(ctx, path)
    c = actor.client
    if path.startswith("/api/"):
        headers = {"Authorization": f"Bearer {actor.token}"} if actor.token else {}
        if method == "GET":
            return c.get(url, headers=headers, follow_redirects=False).status_code
        return c.post(url, headers=headers, json={"decision": "reject", "note": "no"}).status_code
    if method == "GET":
        return c.get(url, follow_redirects=False).status_code
    data = {**body, "csrf_token": actor.csrf}
    files = {"photo": ("x.jpg", b"not an image", "image/jpeg")} if path.endswith("fix-photo") else None
    r = c.post(url, data=data, files=files, follow_redirects=False)
    if path == "/console/logout" and actor.role is not None and r.status_code < 400:
        actor.csrf = login(c, f"u_{actor.role}")  # log back in for the next endpoints
    return r.status_code


def test_given_app_when_listing_routes_then_every_console_and_staff_api_route_declares_roles(ctx: AppContext) -> None:
    app = create_app(ctx.settings, ctx)
    declared = {(e.method, e.path): e.roles for e in staff_endpoints(app)}
    routed = {(m, path) for path, r in iter_api_routes(app.routes)
              if path.startswith(("/console", "/api/staff")) for m in r.methods}
    assert routed - set(declared) == PUBLIC, "a staff route without require_roles(...)"
    assert declared == EXPECTED


def test_given_each_role_when_calling_each_staff_endpoint_then_allowed_or_denied_as_declared(
    mctx: AppContext, world: tuple[TestClient, dict[str, Actor]]
) -> None:
    ctx = mctx
    _, actors = world
    problems: list[str] = []
    for (method, path), allowed in sorted(EXPECTED.items()):
        for name, actor in actors.items():
            status = _call(ctx, actor, method, path)
            if actor.role is None:
                html_get = method == "GET" and path.startswith("/console")
                want = {303} if html_get else {401}
            elif actor.role in allowed:
                want = {200, 303} | ALLOWED_ALSO.get((method, path), set())
            else:
                want = {403}
            if status not in want:
                problems.append(f"{method} {path} as {name}: {status}, expected {sorted(want)}")
    assert not problems, "\n".join(problems)


def test_given_anonymous_when_opening_a_console_page_then_redirected_to_login(
    world: tuple[TestClient, dict[str, Actor]]
) -> None:
    anon, _ = world
    r = anon.get("/console/queue?kind=verification", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/console/login?next=%2Fconsole%2Fqueue%3Fkind%3Dverification"


def test_given_disabled_user_when_using_old_session_and_token_then_refused(
    mctx: AppContext, world: tuple[TestClient, dict[str, Actor]]
) -> None:
    anon, _ = world
    make_user(mctx, "leaver", CW)
    with TestClient(anon.app) as c:
        login(c, "leaver")
        with mctx.db.session() as s:
            raw, _ = staff.create_api_token(s, "leaver", actor="test", actor_role="cli")
        assert c.get("/api/staff/me", headers={"Authorization": f"Bearer {raw}"}).status_code == 200
        assert c.get("/console/queue", follow_redirects=False).status_code == 200
        with mctx.db.session() as s:
            staff.disable_user(s, "leaver", actor="test", actor_role="cli")
        assert c.get("/console/queue", follow_redirects=False).status_code == 303
        assert c.get("/api/staff/me", headers={"Authorization": f"Bearer {raw}"}).status_code == 401
    with TestClient(anon.app) as fresh:
        page = fresh.get("/console/login")
        token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
        r = fresh.post("/console/login", data={"username": "leaver", "password": PASSWORD, "csrf_token": token},
                       follow_redirects=False)
        assert r.status_code == 401  # the right password opens no session for a disabled account
