"""Tip-offs (举报): a public form and API to report a suspected fraudulent pension claim.

Each accepted tip-off opens a TIP_OFF review case; the reporter is shown a non-sequential public
reference (:func:`public_reference`), never the case id. Submissions are rate-limited per client
address, shared by every API node (lifecert.services.ratelimit). The form carries a
double-submit CSRF token (cookie + hidden field), so another site cannot file tip-offs in a
visitor's name. Database work runs in worker threads, never on the event loop.
"""

from __future__ import annotations

import secrets
from html import escape

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from lifecert.domain.errors import ErrorCode, LifecertError
from lifecert.services import staff
from lifecert.services.context import AppContext
from lifecert.services.datamatch.tipoffs import (
    MAX_DESCRIPTION,
    TipOff,
    TipOffReceipt,
    public_reference,
    submit_tipoff,
)
from lifecert.services.ratelimit import Limiter, make_limiter
from server.deps import ClientAddr, Ctx, DbSession

router = APIRouter(tags=["tip-offs"])

TIPOFFS_PER_CLIENT_PER_HOUR = 5
CSRF_COOKIE = "lc_tipoff_csrf"


class TipOffIn(BaseModel):
    id_number: str | None = Field(default=None, max_length=32, description="the pensioner's ID number")
    name: str | None = Field(default=None, max_length=64, description="the pensioner's name")
    description: str = Field(min_length=1, max_length=MAX_DESCRIPTION)
    contact: str | None = Field(default=None, max_length=128, description="optional; how to reach the reporter")


class TipOffOut(BaseModel):
    reference: str = Field(description="public reference of the tip-off (not the internal case id)")
    message: str = "thank you; a caseworker will look into it"


def setup(app: FastAPI) -> None:
    app.state.tipoff_limiter = None  # made on first use: the context exists only after start-up


def _limit(request: Request, client: str) -> None:
    """Shared across API nodes (lifecert.services.ratelimit); a race on first use makes two
    equivalent limiter objects over the same shared state, which is harmless."""
    limiter: Limiter | None = request.app.state.tipoff_limiter
    if limiter is None:
        ctx: AppContext = request.app.state.ctx
        limiter = make_limiter(ctx.settings, ctx.db, "tipoff.client", TIPOFFS_PER_CLIENT_PER_HOUR)
        request.app.state.tipoff_limiter = limiter
    wait = limiter.take(client or "unknown")
    if wait > 0:
        raise LifecertError("too many tip-offs from this address; try again later",
                            code=ErrorCode.RATE_LIMITED, retry_after=int(wait) + 1)


def reference_for(ctx: AppContext, case_id: int) -> str:
    return public_reference(ctx.settings.session_secret.get_secret_value().encode(), case_id)


@router.post("/api/v1/tipoffs", response_model=TipOffOut, status_code=201,
             responses={422: {"description": "BAD_REQUEST / BAD_ID_NUMBER"}, 429: {"description": "RATE_LIMITED"}})
def create_tipoff(body: TipOffIn, request: Request, ctx: Ctx, session: DbSession, client: ClientAddr) -> TipOffOut:
    _limit(request, client)
    r = submit_tipoff(session, TipOff(body.description, body.id_number, body.name, body.contact),
                      client_addr=client)
    return TipOffOut(reference=reference_for(ctx, r.case_id))


_FORM = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>举报 Report a suspected false claim</title>
<style>body{{font-family:sans-serif;max-width:36rem;margin:1rem auto;padding:0 1rem}}
label{{display:block;margin-top:.8rem}}input,textarea{{width:100%;font-size:1rem}}
button{{margin-top:1rem;font-size:1.1rem}}</style></head>
<body><h1>举报冒领养老金 / Report a suspected false pension claim</h1>
{message}
<form method="post" action="/tipoffs">
<input type="hidden" name="csrf_token" value="{csrf}">
<label>被举报人身份证号 ID number <input name="id_number" maxlength="18" autocomplete="off"></label>
<label>被举报人姓名 Name <input name="name" maxlength="64"></label>
<label>情况说明 What happened (required) <textarea name="description" rows="6" maxlength="{maxlen}" required>
</textarea></label>
<label>联系方式（可选） Your contact (optional) <input name="contact" maxlength="128"></label>
<button type="submit">提交 Submit</button></form></body></html>"""


def _page(request: Request, message: str, status_code: int) -> HTMLResponse:
    token = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
    page = HTMLResponse(_FORM.format(message=message, maxlen=MAX_DESCRIPTION, csrf=escape(token)),
                        status_code=status_code)
    secure = request.app.state.ctx is not None and request.app.state.ctx.settings.env not in ("development", "test")
    page.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="strict", secure=secure, path="/tipoffs",
                    max_age=3600)
    return page


@router.get("/tipoffs", response_class=HTMLResponse, include_in_schema=False)
def tipoff_form(request: Request) -> HTMLResponse:
    return _page(request, "", 200)


def _alert(text: str) -> str:
    return f'<p role="alert" style="color:#b00">{escape(text)}</p>'


@router.post("/tipoffs", response_class=HTMLResponse, include_in_schema=False)
async def tipoff_form_submit(request: Request, ctx: Ctx, client: ClientAddr) -> HTMLResponse:
    form = await request.form()
    given = form.get("csrf_token")
    if not staff.csrf_matches(request.cookies.get(CSRF_COOKIE), given if isinstance(given, str) else None):
        return _page(request, _alert("页面已过期，请刷新后重新提交。The form expired; please reload and submit again."),
                     403)

    def val(k: str) -> str | None:
        v = form.get(k)
        return v[:MAX_DESCRIPTION] if isinstance(v, str) else None

    tip = TipOff(val("description") or "", val("id_number"), val("name"), val("contact"))

    def submit() -> TipOffReceipt:
        with ctx.db.session() as s:
            return submit_tipoff(s, tip, client_addr=client)

    try:
        await run_in_threadpool(_limit, request, client)  # the shared limiter may query Redis/the database
        r = await run_in_threadpool(submit)
    except LifecertError as exc:
        status = 429 if exc.code == ErrorCode.RATE_LIMITED else 422
        return _page(request, _alert(exc.message), status)
    ref = reference_for(ctx, r.case_id)
    msg = f'<p role="status">已受理，编号 {ref}。Received, reference {ref}. Thank you.</p>'
    return _page(request, msg, 201)
