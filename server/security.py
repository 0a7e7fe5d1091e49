"""Staff authentication and authorisation for the console and the staff API.

- Console: a signed session cookie (HttpOnly, SameSite=Strict, Secure outside development/test)
  naming a server-side session row; every state-changing request must carry the session's
  synchronizer CSRF token (form field ``csrf_token`` or header ``X-CSRF-Token``).
- API: ``Authorization: Bearer <token>`` (only the token's sha256 is stored). No cookies, so no CSRF.
- Every staff endpoint declares its roles with :func:`require_roles`; :func:`staff_endpoints`
  enumerates them (the role × endpoint matrix test walks this list).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.routing import APIRoute

from lifecert.config import Settings
from lifecert.domain.errors import AccessDenied, ErrorCode, LifecertError
from lifecert.services import staff
from lifecert.services.staff import Principal, Role
from server.deps import DbSession, InferencePool, get_ctx
from server.errors import error_body

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
LOGIN_CSRF_COOKIE = "lc_login_csrf"
LANG_COOKIE = "lc_lang"


class LoginRequired(LifecertError):
    """No valid session on a console page: the browser is sent to the login page."""

    code = ErrorCode.UNAUTHENTICATED


def _secure(settings: Settings) -> bool:
    return settings.env not in ("development", "test")


def session_cookie_name(settings: Settings) -> str:
    # The __Host- prefix makes browsers refuse the cookie unless Secure, Path=/ and no Domain.
    return "__Host-lc_session" if _secure(settings) else "lc_session"


def _sign(settings: Settings, value: str) -> str:
    mac = hmac.new(settings.session_secret.get_secret_value().encode(), value.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def sign_cookie(settings: Settings, token: str) -> str:
    return f"{token}.{_sign(settings, token)}"


def unsign_cookie(settings: Settings, value: str) -> str | None:
    token, _, sig = value.rpartition(".")
    # Bytes: a cookie may carry non-ASCII text, which compare_digest refuses for str (TypeError -> 500).
    if not token or not hmac.compare_digest(sig.encode("utf-8", "surrogatepass"), _sign(settings, token).encode()):
        return None
    return token


def set_session_cookie(response: Response, settings: Settings, token: str) -> None:
    response.set_cookie(
        session_cookie_name(settings), sign_cookie(settings, token), httponly=True, samesite="strict",
        secure=_secure(settings), path="/",
    )


def clear_session_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(session_cookie_name(settings), path="/", secure=_secure(settings), httponly=True,
                           samesite="strict")


def session_token(request: Request) -> str | None:
    settings = get_ctx(request).settings
    raw = request.cookies.get(session_cookie_name(settings))
    return unsign_cookie(settings, raw) if raw else None


def set_login_csrf(response: Response, settings: Settings, token: str) -> None:
    """Double-submit token for the login form (there is no session yet): cookie and hidden field must match."""
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=_secure(settings),
                        path="/console", max_age=3600)


async def submitted_csrf(request: Request) -> str | None:
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    ctype = request.headers.get("content-type", "")
    if ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


async def guard_csrf(request: Request) -> str | None:
    """The CSRF token an unsafe cookie request submitted (None for safe methods and bearer requests).

    Reading a form is awaited here, in an async dependency, so that :class:`RoleGuard` itself can be a
    plain function that FastAPI runs in a worker thread (its database work never blocks the event loop).
    """
    if request.method in SAFE_METHODS or _is_bearer(request):
        return None
    return await submitted_csrf(request)


def _is_bearer(request: Request) -> bool:
    return request.headers.get("authorization", "")[:7].lower() == "bearer "


async def check_login_csrf(request: Request) -> None:
    given = await submitted_csrf(request)
    if not staff.csrf_matches(request.cookies.get(LOGIN_CSRF_COOKIE), given):
        raise LifecertError("the form's security token is missing or wrong; reload the page",
                            code=ErrorCode.CSRF_FAILED)


def _wants_html(request: Request) -> bool:
    return request.method == "GET" and request.url.path.startswith("/console")


class RoleGuard:
    """Dependency: authenticate (bearer token or session cookie), check CSRF on unsafe cookie requests,
    then check the role. Order of failures: 401 UNAUTHENTICATED, 403 CSRF_FAILED, 403 FORBIDDEN."""

    def __init__(self, roles: Iterable[Role]) -> None:
        self.roles = frozenset(roles)

    def __repr__(self) -> str:
        return f"require_roles({', '.join(sorted(self.roles))})"

    def __call__(self, request: Request, session: DbSession,
                 csrf: Annotated[str | None, Depends(guard_csrf)]) -> Principal:
        # Sync on purpose: FastAPI runs it in a worker thread, so the token/session lookups (and the
        # connection-pool checkout they trigger) never block the event loop (issue 11 H1).
        bearer = _is_bearer(request)
        if bearer:
            who = staff.resolve_api_token(session, request.headers["authorization"][7:].strip())
        else:
            token = session_token(request)
            if token is None:
                raise (LoginRequired if _wants_html(request) else LifecertError)(
                    "please log in", code=ErrorCode.UNAUTHENTICATED)
            try:
                who = staff.resolve_session(session, token)
            except LifecertError:
                if _wants_html(request):
                    raise LoginRequired("please log in") from None
                raise
        # The token's or session's last-use stamp (written every few minutes) is bookkeeping, not part of the
        # request: commit it now. Else a refusal audited in a transaction of its own (another region's case,
        # review.access) waits on this one's write lock; SQLite has one writer: it waited 30 s, then failed
        # with the refusal unaudited.
        if session.new or session.dirty:
            session.commit()
        if not bearer and request.method not in SAFE_METHODS and not staff.csrf_matches(who.csrf_token, csrf):
            raise LifecertError("the form's security token is missing or wrong; reload the page",
                                code=ErrorCode.CSRF_FAILED)
        if who.role not in self.roles:
            raise AccessDenied(f"this page is for {', '.join(sorted(self.roles))}; you are {who.role}")
        request.state.principal = who
        return who


def require_roles(*roles: Role) -> Any:
    """``Annotated[Principal, require_roles(Role.CASEWORKER)]`` — the one way staff endpoints declare roles."""
    return Depends(RoleGuard(roles))


ALL_STAFF = tuple(Role)
CurrentStaff = Annotated[Principal, require_roles(*ALL_STAFF)]
Caseworker = Annotated[Principal, require_roles(Role.CASEWORKER)]
CaseStaff = Annotated[Principal, require_roles(Role.CASEWORKER, Role.ENROLLMENT_STAFF)]
Auditor = Annotated[Principal, require_roles(Role.AUDITOR)]
Admin = Annotated[Principal, require_roles(Role.ADMIN)]
AgencyStaff = Annotated[Principal, require_roles(Role.CASEWORKER, Role.AUDITOR, Role.ADMIN)]  # dashboards


@dataclass(frozen=True)
class StaffEndpoint:
    method: str
    path: str
    name: str
    roles: frozenset[Role]


def _guards(dep: Dependant) -> list[RoleGuard]:
    found = [dep.call] if isinstance(dep.call, RoleGuard) else []
    for sub in dep.dependencies:
        found.extend(_guards(sub))
    return found


def iter_api_routes(routes: Iterable[Any], prefix: str = "") -> Iterable[tuple[str, APIRoute]]:
    """(full path, route) for every APIRoute, including routers kept as included-router nodes
    (newer FastAPI versions do not flatten ``include_router`` into ``app.routes``)."""
    for r in routes:
        if isinstance(r, APIRoute):
            yield prefix + r.path, r
        elif hasattr(r, "original_router"):
            ctx = getattr(r, "include_context", None)
            yield from iter_api_routes(r.original_router.routes, prefix + getattr(ctx, "prefix", ""))


def staff_endpoints(app: FastAPI) -> list[StaffEndpoint]:
    """Every route guarded by :func:`require_roles`, one row per method."""
    out = []
    for path, r in iter_api_routes(app.routes):
        guards = _guards(r.dependant)
        if guards:
            roles = frozenset.intersection(*(g.roles for g in guards))
            for m in sorted(r.methods or ()):
                out.append(StaffEndpoint(m, path, r.name, roles))
    return out


def install(app: FastAPI) -> None:
    """Login redirect for console pages, no-store / framing headers on staff responses, the password pool."""
    async def _stop_password_pool(app: FastAPI) -> None:
        pool: InferencePool | None = getattr(app.state, "password_pool", None)
        app.state.password_pool = None
        if pool is not None:
            pool.shutdown()

    app.state.shutdown_hooks.append(_stop_password_pool)

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired) -> Response:
        if _wants_html(request):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/console/login?next={quote(target, safe='')}", status_code=303)
        return JSONResponse(status_code=401, content=error_body(str(exc.code), exc.message))

    @app.middleware("http")
    async def _staff_headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        path = request.url.path
        if path.startswith(("/console", "/api/staff")) and not path.startswith("/console/static"):
            response.headers["Cache-Control"] = "no-store, private"
            response.headers["Pragma"] = "no-cache"
            response.headers["X-Frame-Options"] = "DENY"
            response.headers["X-Content-Type-Options"] = "nosniff"
            response.headers["Referrer-Policy"] = "no-referrer"
            response.headers["Content-Security-Policy"] = (
                "default-src 'self'; img-src 'self'; style-src 'self'; script-src 'self'; "
                "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
            )
        return response
