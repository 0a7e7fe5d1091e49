"""The staff console: server-rendered pages (Jinja2) for the review queue, cases, visits, audit and users.

Routes stay thin: they read the form, call :mod:`lifecert.services.review` / ``staff`` / ``audit``
and render. Roles are declared per endpoint with the aliases from :mod:`server.security`.
"""

from __future__ import annotations

import secrets
from datetime import date
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from lifecert.domain.errors import ErrorCode, LifecertError
from lifecert.domain.idnumber import mask_id_number
from lifecert.services import audit, review, staff
from lifecert.services.staff import Principal, Role
from server import security
from server.deps import ClientAddr, Ctx, DbId, DbSession, PageNo, PasswordPool, Pool
from server.routes.staff_i18n import LANGS, department_label, known, reason_label, status_reason_label, translator
from server.security import Admin, Auditor, CaseStaff, Caseworker, CurrentStaff

SERVER_DIR = Path(__file__).resolve().parents[1]
router = APIRouter(prefix="/console", include_in_schema=False)
_templates = Jinja2Templates(directory=str(SERVER_DIR / "templates"))

# Errors a console form shows on the page; anything else (401/403/404) goes through the JSON handler.
_SHOWN = {ErrorCode.CONFLICT, ErrorCode.BAD_REQUEST, ErrorCode.NO_FACE, ErrorCode.MULTIPLE_FACES,
          ErrorCode.LOW_QUALITY, ErrorCode.FACE_TOO_SMALL, ErrorCode.BLURRY, ErrorCode.TOO_DARK,
          ErrorCode.TOO_BRIGHT, ErrorCode.LOW_CONTRAST, ErrorCode.POSE_TOO_LARGE, ErrorCode.EYES_CLOSED,
          ErrorCode.UNREADABLE_IMAGE, ErrorCode.UNSUPPORTED_FORMAT, ErrorCode.IMAGE_TOO_LARGE,
          ErrorCode.FILE_MISSING, ErrorCode.FRAUD_SUSPENSION_IN_FORCE}


_ERROR_CODES = frozenset(str(c) for c in ErrorCode)


def setup(app: FastAPI) -> None:
    app.mount("/console/static", StaticFiles(directory=str(SERVER_DIR / "static")), name="console-static")
    security.install(app)


def _lang(request: Request) -> str:
    lang = request.cookies.get(security.LANG_COOKIE, "zh")
    return lang if lang in LANGS else "zh"


def _local(next_url: str | None, default: str = "/console/") -> str:
    """Only same-site absolute paths (no open redirect)."""
    if next_url and next_url.startswith("/") and not next_url.startswith("//") and "\\" not in next_url:
        return next_url
    return default


def render(request: Request, name: str, who: Principal | None, status_code: int = 200, **ctx: Any) -> HTMLResponse:
    lang = _lang(request)
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    t = translator(lang)

    def banner(key: str, fallback: str | None = None) -> str:
        return t(key) if known(key) else (fallback or t("err_unknown"))

    return _templates.TemplateResponse(
        request, name,
        {"t": t, "banner": banner, "rc": lambda code: reason_label(t, code),
         "status_reason": lambda text: status_reason_label(lang, text),
         "dept": lambda code: department_label(lang, code), "lang": lang, "who": who,
         "csrf": who.csrf_token if who else None,
         "here": here, "mask": mask_id_number, "Role": Role, **ctx},
        status_code=status_code,
    )


def _shown_error(exc: LifecertError) -> bool:
    return exc.code in _SHOWN


def _back(case_id: int, error: str | None = None) -> RedirectResponse:
    q = f"?{urlencode({'error': error})}" if error else ""
    return RedirectResponse(f"/console/cases/{case_id}{q}", status_code=303)


# --- login / language ---------------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, ctx: Ctx, next: str | None = None, error: str | None = None) -> Response:
    token = request.cookies.get(security.LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(24)
    page = render(request, "console/login.html", None, next=_local(next), error=error, csrf_login=token)
    security.set_login_csrf(page, ctx.settings, token)
    return page


@router.post("/login")
async def login_submit(request: Request, ctx: Ctx, pool: PasswordPool) -> Response:
    await security.check_login_csrf(request)
    form = await request.form()
    username = str(form.get("username") or "")[:64]
    password = str(form.get("password") or "")[:256]
    next_url = _local(str(form.get("next") or ""))
    client = request.client.host if request.client else ""

    def attempt() -> tuple[str | None, LifecertError | None]:
        # argon2 and the throttle/audit writes run in the password pool, never on the event loop.
        with ctx.db.session() as s:
            outcome = staff.authenticate(s, username, password, client)
            token = staff.open_session(s, outcome.user, client)[0] if outcome.ok and outcome.user else None
        return token, outcome.error

    token, error = await pool.run(attempt)
    if token is None:
        code = error.code if error else ErrorCode.UNAUTHENTICATED
        err = "login_locked" if code == ErrorCode.RATE_LIMITED else "login_failed"
        page = render(request, "console/login.html", None, status_code=429 if err == "login_locked" else 401,
                      next=next_url, error=err, csrf_login=request.cookies.get(security.LOGIN_CSRF_COOKIE, ""))
        if code == ErrorCode.RATE_LIMITED and error is not None:
            page.headers["Retry-After"] = str(error.details.get("retry_after", 60))
        return page
    resp = RedirectResponse(next_url, status_code=303)
    security.set_session_cookie(resp, ctx.settings, token)
    resp.delete_cookie(security.LOGIN_CSRF_COOKIE, path="/console")
    return resp


@router.post("/logout")
def logout(request: Request, ctx: Ctx, session: DbSession, who: CurrentStaff, client: ClientAddr) -> Response:
    token = security.session_token(request)
    if token:
        staff.end_session(session, token)
    audit.record(session, actor=who.username, role=who.role, action="logout", object_type="staff_user",
                 object_id=who.user_id, client_addr=client)
    resp = RedirectResponse("/console/login", status_code=303)
    security.clear_session_cookie(resp, ctx.settings)
    return resp


@router.get("/lang")
def switch_language(to: str, next: str | None = None) -> Response:
    resp = RedirectResponse(_local(next), status_code=303)
    resp.set_cookie(security.LANG_COOKIE, to if to in LANGS else "zh", samesite="strict", path="/",
                    max_age=365 * 86400)
    return resp


@router.get("/", response_class=HTMLResponse)
def home(who: CurrentStaff) -> Response:
    target = {Role.AUDITOR: "/console/audit", Role.ADMIN: "/console/users",
              Role.COMMUNITY_WORKER: "/console/my-visits"}.get(who.role, "/console/queue")
    return RedirectResponse(target, status_code=303)


# --- queue and cases ------------------------------------------------------------------------------


def _date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


@router.get("/queue", response_class=HTMLResponse)
def queue(
    request: Request, session: DbSession, who: CaseStaff, client: ClientAddr,
    kind: str | None = None, reason: str | None = None, region: str | None = None, assignee: str | None = None,
    status: str = "active", date_from: str | None = None, date_to: str | None = None, page: PageNo = 1,
) -> Response:
    f = review.QueueFilter(kind=kind or None, reason=reason or None, region=(region or "").strip() or None,
                           assignee=assignee or None, status=status, date_from=_date(date_from),
                           date_to=_date(date_to))
    size = 50
    result = review.list_queue(session, f, who, client_addr=client, limit=size, offset=(max(page, 1) - 1) * size)
    filters = {"kind": kind or "", "reason": reason or "", "region": region or "", "assignee": assignee or "",
               "status": status, "date_from": date_from or "", "date_to": date_to or ""}
    assignees = review.assignable_staff(session)
    return render(request, "console/queue.html", who, page=result, f=f, kinds=review.kinds_for(who.role),
                  assignees=assignees, page_no=max(page, 1), page_size=size,
                  filters=filters, filter_q=urlencode({k: v for k, v in filters.items() if v}))


@router.get("/cases/{case_id}", response_class=HTMLResponse)
def case_page(request: Request, ctx: Ctx, session: DbSession, who: CaseStaff, client: ClientAddr, case_id: DbId,
              error: str | None = None) -> Response:
    view = review.case_view(ctx, session, case_id, who, client_addr=client)
    prev, nxt = review.neighbours(session, who, case_id)
    error = error if error in _ERROR_CODES else ("unknown" if error else None)  # only our own codes
    from server.routes.tipoffs import reference_for  # the reporter's public reference (JB-...)

    return render(request, "console/case.html", who, v=view, prev_id=prev, next_id=nxt, error=error,
                  tip_ref=reference_for(ctx, case_id))


@router.get("/cases/{case_id}/photos/{sha}")
def case_photo(ctx: Ctx, session: DbSession, who: CaseStaff, client: ClientAddr, case_id: DbId, sha: str) -> Response:
    data = review.read_case_photo(ctx, session, case_id, sha.lower(), who, client_addr=client)
    media = "image/png" if data[:8] == b"\x89PNG\r\n\x1a\n" else "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        media = "image/gif"
    return Response(data, media_type=media, headers={"Cache-Control": "no-store, private"})


def _decide(session: DbSession, case_id: int, fn: Any) -> Response:
    try:
        fn()
    except LifecertError as exc:
        if not _shown_error(exc):
            raise
        session.rollback()
        return _back(case_id, str(exc.code))
    return _back(case_id)


@router.post("/cases/{case_id}/assign")
def assign(session: DbSession, who: CaseStaff, client: ClientAddr, case_id: DbId) -> Response:
    return _decide(session, case_id, lambda: review.assign_to_me(session, case_id, who, client_addr=client))


@router.post("/cases/{case_id}/approve")
def approve(ctx: Ctx, session: DbSession, who: Caseworker, client: ClientAddr, case_id: DbId,
            note: Annotated[str, Form()] = "") -> Response:
    return _decide(session, case_id, lambda: review.approve(ctx, session, case_id, who, note=note, client_addr=client))


@router.post("/cases/{case_id}/reject")
def reject(session: DbSession, who: Caseworker, client: ClientAddr, case_id: DbId,
           note: Annotated[str, Form()] = "") -> Response:
    return _decide(session, case_id, lambda: review.reject(session, case_id, who, note, client_addr=client))


@router.post("/cases/{case_id}/visit")
def visit(session: DbSession, who: Caseworker, client: ClientAddr, case_id: DbId,
          note: Annotated[str, Form()] = "") -> Response:
    return _decide(session, case_id,
                   lambda: review.request_home_visit(session, case_id, who, note=note, client_addr=client))


@router.post("/cases/{case_id}/fraud")
def fraud(session: DbSession, who: Caseworker, client: ClientAddr, case_id: DbId,
          note: Annotated[str, Form()] = "") -> Response:
    return _decide(session, case_id,
                   lambda: review.mark_suspected_fraud(session, case_id, who, note=note, client_addr=client))


@router.post("/cases/{case_id}/genuine")
def genuine(session: DbSession, who: Caseworker, client: ClientAddr, case_id: DbId,
            note: Annotated[str, Form()] = "") -> Response:
    return _decide(session, case_id, lambda: review.confirm_genuine(session, case_id, who, note=note,
                                                                    client_addr=client))


@router.post("/cases/{case_id}/unfounded")
def unfounded(session: DbSession, who: Caseworker, client: ClientAddr, case_id: DbId,
              note: Annotated[str, Form()] = "") -> Response:
    return _decide(session, case_id, lambda: review.close_unfounded(session, case_id, who, note, client_addr=client))


@router.post("/cases/{case_id}/note")
def note(session: DbSession, who: CaseStaff, client: ClientAddr, case_id: DbId,
         text: Annotated[str, Form()] = "") -> Response:
    return _decide(session, case_id, lambda: review.add_note(session, case_id, who, text, client_addr=client))


@router.post("/cases/{case_id}/enrollment/fix-photo")
async def fix_photo(ctx: Ctx, session: DbSession, who: CaseStaff, client: ClientAddr, case_id: DbId,
                    photo: Annotated[UploadFile, File()], pool: Pool) -> Response:
    data = await photo.read(ctx.settings.images.max_bytes + 1)
    # Decode, detect and the multi-view embedding are seconds of CPU: the inference pool, not the loop.
    return await pool.run(_decide, session, case_id, lambda: review.fix_photo(
        ctx, session, case_id, who, data, filename=photo.filename, client_addr=client))


@router.post("/cases/{case_id}/enrollment/confirm-duplicate")
def confirm_duplicate(session: DbSession, who: CaseStaff, client: ClientAddr, case_id: DbId,
                      note: Annotated[str, Form()] = "") -> Response:
    return _decide(session, case_id,
                   lambda: review.confirm_duplicate(session, case_id, who, note=note, client_addr=client))


@router.post("/cases/{case_id}/enrollment/not-duplicate")
def not_duplicate(ctx: Ctx, session: DbSession, who: CaseStaff, client: ClientAddr, case_id: DbId,
                  note: Annotated[str, Form()] = "") -> Response:
    return _decide(session, case_id,
                   lambda: review.not_duplicate(ctx, session, case_id, who, note=note, client_addr=client))


@router.post("/cases/{case_id}/use-as-template")
async def use_as_template(ctx: Ctx, session: DbSession, who: Caseworker, client: ClientAddr, case_id: DbId,
                          pool: Pool) -> Response:
    # The best frame runs through the face pipeline (seconds of CPU): the inference pool, not the loop.
    return await pool.run(_use_as_template, ctx, session, who, client, case_id)


def _use_as_template(ctx: Ctx, session: DbSession, who: Principal, client: str, case_id: int) -> Response:
    refused: list[str] = []

    def work() -> None:
        tpl, why = review.use_as_template(ctx, session, case_id, who, client_addr=client)
        if tpl is None:
            refused.append(why)  # audited and committed; the case page says why

    back = _decide(session, case_id, work)
    return _back(case_id, "BAD_REQUEST") if refused else back


@router.post("/cases/{case_id}/templates/{template_id}/revoke")
def revoke_template(session: DbSession, who: Caseworker, client: ClientAddr, case_id: DbId, template_id: DbId,
                    reason: Annotated[str, Form()] = "") -> Response:
    return _decide(session, case_id, lambda: review.revoke_template(session, case_id, template_id, who, reason,
                                                                    client_addr=client))


@router.get("/visits", response_class=HTMLResponse)
def visits(request: Request, session: DbSession, who: Caseworker, client: ClientAddr, region: str | None = None,
           status: str = "open") -> Response:
    rows = review.list_visits(session, who, region=(region or "").strip() or None, status=status, client_addr=client)
    return render(request, "console/visits.html", who, rows=rows, region=region or "", status=status)


# --- audit (auditor only) -------------------------------------------------------------------------


def _audit_filter(actor: str | None, role: str | None, action: str | None, object_type: str | None,
                  object_id: str | None, date_from: str | None, date_to: str | None) -> audit.AuditFilter:
    return audit.AuditFilter(actor=actor or None, role=role or None, action=action or None,
                             object_type=object_type or None, object_id=object_id or None,
                             date_from=_date(date_from), date_to=_date(date_to))


@router.get("/audit", response_class=HTMLResponse)
def audit_page(
    request: Request, session: DbSession, who: Auditor, client: ClientAddr,
    actor: str | None = None, role: str | None = None, action: str | None = None, object_type: str | None = None,
    object_id: str | None = None, date_from: str | None = None, date_to: str | None = None,
    verify: bool = False, page: PageNo = 1,
) -> Response:
    f = _audit_filter(actor, role, action, object_type, object_id, date_from, date_to)
    size = 100
    events = audit.query_events(session, f, limit=size, offset=(max(page, 1) - 1) * size)
    total = audit.count_events(session, f)
    report = audit.verify_chain(session) if verify else None
    audit.record(session, actor=who.username, role=who.role, action="audit.view", object_type="audit_event",
                 object_id="*", client_addr=client,
                 detail={"filter": {k: str(v) for k, v in f.__dict__.items() if v}, "verify": verify})
    q = {k: v for k, v in {"actor": actor, "role": role, "action": action, "object_type": object_type,
                           "object_id": object_id, "date_from": date_from, "date_to": date_to}.items() if v}
    return render(request, "console/audit.html", who, events=events, total=total, report=report,
                  actions=audit.distinct_actions(session), filters=q, export_q=urlencode(q),
                  page_no=max(page, 1), page_size=size)


@router.get("/audit/export.csv")
def audit_export(
    ctx: Ctx, who: Auditor, client: ClientAddr,
    actor: str | None = None, role: str | None = None, action: str | None = None, object_type: str | None = None,
    object_id: str | None = None, date_from: str | None = None, date_to: str | None = None,
) -> Response:
    f = _audit_filter(actor, role, action, object_type, object_id, date_from, date_to)
    body = audit.audited_export(ctx.db, f, actor=who.username, role=who.role, client_addr=client)
    name = f"audit-{date.today():%Y%m%d}.csv"
    return StreamingResponse(body, media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{name}"',
                                      "Cache-Control": "no-store, private"})


# --- staff accounts (admin only) ------------------------------------------------------------------


@router.get("/users", response_class=HTMLResponse)
def users_page(request: Request, session: DbSession, who: Admin, error: str | None = None,
               done: str | None = None) -> Response:
    users = staff.list_users(session)
    done = done if done in {u.username for u in users} else None  # never echo arbitrary query text
    return render(request, "console/users.html", who, users=users, roles=list(Role),
                  error=f"users_err_{error}" if error else None, done=done)


def _users_back(error: str | None = None, done: str | None = None) -> RedirectResponse:
    q = urlencode({k: v for k, v in {"error": error, "done": done}.items() if v})
    return RedirectResponse("/console/users" + (f"?{q}" if q else ""), status_code=303)


@router.post("/users")
def users_create(session: DbSession, who: Admin, client: ClientAddr, username: Annotated[str, Form()],
                 password: Annotated[str, Form()], role: Annotated[str, Form()],
                 display_name: Annotated[str, Form()] = "", region_code: Annotated[str, Form()] = "") -> Response:
    try:
        staff.create_user(session, username, password, role, display_name=display_name,
                          region_code=region_code.strip() or None, actor=who.username, actor_role=who.role,
                          client_addr=client)
    except LifecertError as exc:
        session.rollback()
        return _users_back(error=str(exc.code))
    return _users_back(done=username)


@router.post("/users/{user_id}/disable")
def users_disable(session: DbSession, who: Admin, client: ClientAddr, user_id: DbId) -> Response:
    username = staff.username_of(session, user_id)
    if username is None:
        return _users_back(error=str(ErrorCode.NOT_FOUND))
    try:
        staff.disable_user(session, username, actor=who.username, actor_role=who.role, client_addr=client)
    except LifecertError as exc:
        session.rollback()
        return _users_back(error=str(exc.code))
    return _users_back(done=username)


@router.post("/users/{user_id}/reset-password")
def users_reset(session: DbSession, who: Admin, client: ClientAddr, user_id: DbId,
                password: Annotated[str, Form()]) -> Response:
    username = staff.username_of(session, user_id)
    if username is None:
        return _users_back(error=str(ErrorCode.NOT_FOUND))
    try:
        staff.reset_password(session, username, password, actor=who.username, actor_role=who.role,
                             client_addr=client)
    except LifecertError as exc:
        session.rollback()
        return _users_back(error=str(exc.code))
    return _users_back(done=username)
