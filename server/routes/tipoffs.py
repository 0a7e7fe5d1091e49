"""Tip-offs (举报): a public form and API to report a suspected fraudulent pension claim.

Each accepted tip-off opens a TIP_OFF review case. Submissions are rate-limited per
client address (the limiter lives on ``app.state``, one per application instance).
"""

from __future__ import annotations

from html import escape

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from lifecert.services.datamatch.tipoffs import MAX_DESCRIPTION, RateLimiter, TipOff, submit_tipoff
from server.deps import ClientAddr, DbSession

router = APIRouter(tags=["tip-offs"])

TIPOFFS_PER_CLIENT_PER_HOUR = 5


class TipOffIn(BaseModel):
    id_number: str | None = Field(default=None, max_length=32, description="the pensioner's ID number")
    name: str | None = Field(default=None, max_length=64, description="the pensioner's name")
    description: str = Field(min_length=1, max_length=MAX_DESCRIPTION)
    contact: str | None = Field(default=None, max_length=128, description="optional; how to reach the reporter")


class TipOffOut(BaseModel):
    case_id: int
    message: str = "thank you; a caseworker will look into it"


def setup(app: FastAPI) -> None:
    app.state.tipoff_limiter = RateLimiter(TIPOFFS_PER_CLIENT_PER_HOUR, 3600.0)


def _limit(request: Request, client: str) -> None:
    limiter: RateLimiter | None = getattr(request.app.state, "tipoff_limiter", None)
    if limiter is not None:
        limiter.hit(client or "unknown")


@router.post("/api/v1/tipoffs", response_model=TipOffOut, status_code=201,
             responses={422: {"description": "BAD_REQUEST / BAD_ID_NUMBER"}, 429: {"description": "RATE_LIMITED"}})
def create_tipoff(body: TipOffIn, request: Request, session: DbSession, client: ClientAddr) -> TipOffOut:
    _limit(request, client)
    r = submit_tipoff(session, TipOff(body.description, body.id_number, body.name, body.contact),
                      client_addr=client)
    return TipOffOut(case_id=r.case_id)


_FORM = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>举报 Report a suspected false claim</title>
<style>body{{font-family:sans-serif;max-width:36rem;margin:1rem auto;padding:0 1rem}}
label{{display:block;margin-top:.8rem}}input,textarea{{width:100%;font-size:1rem}}
button{{margin-top:1rem;font-size:1.1rem}}</style></head>
<body><h1>举报冒领养老金 / Report a suspected false pension claim</h1>
{message}
<form method="post" action="/tipoffs">
<label>被举报人身份证号 ID number <input name="id_number" maxlength="18" autocomplete="off"></label>
<label>被举报人姓名 Name <input name="name" maxlength="64"></label>
<label>情况说明 What happened (required) <textarea name="description" rows="6" maxlength="{maxlen}" required>
</textarea></label>
<label>联系方式（可选） Your contact (optional) <input name="contact" maxlength="128"></label>
<button type="submit">提交 Submit</button></form></body></html>"""


@router.get("/tipoffs", response_class=HTMLResponse, include_in_schema=False)
def tipoff_form() -> HTMLResponse:
    return HTMLResponse(_FORM.format(message="", maxlen=MAX_DESCRIPTION))


@router.post("/tipoffs", response_class=HTMLResponse, include_in_schema=False)
async def tipoff_form_submit(request: Request, session: DbSession, client: ClientAddr) -> HTMLResponse:
    from lifecert.domain.errors import LifecertError

    form = await request.form()

    def val(k: str) -> str | None:
        v = form.get(k)
        return str(v)[:MAX_DESCRIPTION] if v is not None else None

    try:
        _limit(request, client)
        r = submit_tipoff(session, TipOff(val("description") or "", val("id_number"), val("name"), val("contact")),
                          client_addr=client)
    except LifecertError as exc:
        status = 429 if str(exc.code) == "RATE_LIMITED" else 422
        msg = f'<p role="alert" style="color:#b00">{escape(exc.message)}</p>'
        return HTMLResponse(_FORM.format(message=msg, maxlen=MAX_DESCRIPTION), status_code=status)
    msg = f'<p role="status">已受理，编号 {r.case_id}。Received, reference {r.case_id}. Thank you.</p>'
    return HTMLResponse(_FORM.format(message=msg, maxlen=MAX_DESCRIPTION), status_code=201)
