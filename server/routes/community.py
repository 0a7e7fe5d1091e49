"""Community workers (issue 15 item 3), staff JSON API: assisted certification and home visits.

- ``POST /api/staff/assisted/sessions``: a community worker starts the paced capture for the pensioner
  in front of their phone; the answer is the public API's ``PacedSessionCreated`` and the chunks go to
  ``/api/v1/sessions/{id}/steps/{k}/frames`` like any session.
- ``GET /api/staff/assisted/report.csv``: assisted sessions per worker (counts only).
- ``GET /api/staff/visits/mine``, ``POST /api/staff/visits/{id}/assign``, ``POST /api/staff/visits/{id}/close``.

Thin: face work and database work run in the bounded pools, never on the event loop.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from lifecert.domain.errors import ErrorCode, LifecertError
from lifecert.services import assisted
from lifecert.services.context import AppContext
from lifecert.services.review import visits
from lifecert.services.staff import Principal, Role
from server.deps import ClientAddr, Ctx, DbId, DbSession, Pool, Verification
from server.schemas import PacedSessionCreated
from server.security import require_roles

router = APIRouter(prefix="/api/staff", tags=["community"])

CommunityWorker = Annotated[Principal, require_roles(Role.COMMUNITY_WORKER)]
VisitAssigner = Annotated[Principal, require_roles(Role.CASEWORKER, Role.ADMIN)]
ReportReader = Annotated[Principal, require_roles(Role.CASEWORKER, Role.ADMIN, Role.AUDITOR)]
MAX_REPORT_DAYS = 366
EARLIEST, LATEST = date(2000, 1, 1), date(2100, 12, 31)  # report bounds (no date arithmetic overflow)


class AssistedStart(BaseModel):
    id_number: str = Field(min_length=15, max_length=32)
    name: str = Field(min_length=1, max_length=64)
    device: str = Field(default="", max_length=128, description="the worker's phone (the page sends its user agent)")
    location: str = Field(min_length=1, max_length=128, description="where the worker is, as text (address, village)")


@router.get("/assisted/context", summary="Community worker: who is signed in, and the CSRF token the capture "
            "page sends with the assisted start (cookie sessions)")
def assisted_context(who: CommunityWorker) -> dict[str, str | None]:
    return {"username": who.username, "display_name": who.display_name, "csrf_token": who.csrf_token}


@router.post("/assisted/sessions", status_code=201, response_model=PacedSessionCreated,
             summary="Community worker: start an assisted (帮助他人认证) paced capture for a pensioner")
async def start_assisted(body: AssistedStart, request: Request, who: CommunityWorker, svc: Verification,
                         pool: Pool, client: ClientAddr) -> PacedSessionCreated:
    device = body.device.strip() or request.headers.get("user-agent", "")[:128] or "unknown"
    start = await pool.run(assisted.start_assisted, svc, who, body.id_number, body.name, device=device,
                           location=body.location, client_addr=client)
    return PacedSessionCreated.of(start)


@router.get("/assisted/report.csv", summary="Assisted certifications per worker (CSV, counts only)")
def assisted_report(who: ReportReader, session: DbSession, client: ClientAddr,
                    start: Annotated[date | None, Query(alias="from", ge=EARLIEST, le=LATEST)] = None,
                    end: Annotated[date | None, Query(alias="to", ge=EARLIEST, le=LATEST)] = None) -> StreamingResponse:
    end = end or datetime.now(UTC).date()
    start = start or end - timedelta(days=30)
    if start > end or (end - start).days > MAX_REPORT_DAYS:
        raise LifecertError(f"give from <= to, at most {MAX_REPORT_DAYS} days apart", code=ErrorCode.BAD_REQUEST)
    rows = assisted.audited_report(session, who, start, end, client_addr=client)
    return StreamingResponse(assisted.report_csv(rows), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="assisted_{start}_{end}.csv"'})


class VisitRow(BaseModel):
    id: int
    pensioner_name: str
    region_code: str
    address: str
    phone: str
    note: str
    result: str
    attempts: int


@router.get("/visits/mine", response_model=list[VisitRow], summary="Community worker: my open home visits")
def my_visits(who: CommunityWorker, session: DbSession, client: ClientAddr) -> list[VisitRow]:
    return [VisitRow(id=t.id, pensioner_name=p.name, region_code=t.region_code, address=t.address, phone=t.phone,
                     note=t.note, result=t.result, attempts=t.attempts)
            for t, p in visits.my_visits(session, who, client_addr=client)]


class AssignBody(BaseModel):
    worker: str = Field(min_length=1, max_length=64)


@router.post("/visits/{task_id}/assign", summary="Caseworker: assign a home visit to a community worker")
def assign_visit(task_id: DbId, body: AssignBody, who: VisitAssigner, session: DbSession,
                 client: ClientAddr) -> dict[str, Any]:
    t = visits.assign_visit(session, who, task_id, body.worker, client_addr=client)
    return {"id": t.id, "assignee_id": t.assignee_id, "status": t.status}


def close_in_worker(ctx: AppContext, who: Principal, task_id: int, photo: bytes, note: str,
                    client: str) -> dict[str, Any]:
    with ctx.db.session() as s:
        return visits.close_visit(ctx, s, who, task_id, photo, note, client_addr=client).as_dict()


@router.post("/visits/{task_id}/close",
             summary="Community worker: close my home visit with an on-site photo and a note")
async def close_visit(task_id: DbId, who: CommunityWorker, ctx: Ctx, pool: Pool, client: ClientAddr,
                      photo: Annotated[UploadFile, File(description="on-site JPEG/PNG photo of the pensioner")],
                      note: Annotated[str, Form(min_length=1, max_length=visits.MAX_NOTE)]) -> dict[str, Any]:
    data = await photo.read(ctx.settings.images.max_bytes + 1)
    if len(data) > ctx.settings.images.max_bytes:
        raise LifecertError("the photo is too large", code=ErrorCode.IMAGE_TOO_LARGE)
    return await pool.run(close_in_worker, ctx, who, task_id, data, note, client)
