"""Console pages of issue 15 (exchange): a community worker's home visits (close with an on-site photo),
caseworkers assigning visits, and department extracts uploaded by staff with their import history.

The upload runs the same import as the exchange API and the CLI
(:func:`lifecert.services.exchange.import_extract` → ``datamatch.run_import``); the multipart body is
spooled to disk by the form parser and copied to a private file, never held whole in memory.
"""

from __future__ import annotations

import asyncio
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from lifecert.domain.errors import ErrorCode, LifecertError
from lifecert.services import assisted, exchange
from lifecert.services.datamatch.mapping import all_mappings
from lifecert.services.review import visits
from lifecert.services.staff import Principal, Role
from server.deps import ClientAddr, Ctx, DbId, DbSession, Pool
from server.routes.community import close_in_worker
from server.routes.console import render
from server.routes.exchange import exchange_pool, new_upload_folder
from server.security import require_roles

router = APIRouter(prefix="/console", tags=["console"], include_in_schema=False)

CommunityWorker = Annotated[Principal, require_roles(Role.COMMUNITY_WORKER)]
VisitAssigner = Annotated[Principal, require_roles(Role.CASEWORKER, Role.ADMIN)]
ImportStaff = Annotated[Principal, require_roles(Role.CASEWORKER, Role.ADMIN)]
_COPY_BLOCK = 1 << 20


def _to(path: str, **q: str) -> RedirectResponse:
    return RedirectResponse(f"{path}?{urlencode(q)}" if q else path, status_code=303)


@router.get("/my-visits", response_class=HTMLResponse)
def my_visits(request: Request, session: DbSession, who: CommunityWorker, client: ClientAddr, ctx: Ctx,
              msg: str = "", error: str = "") -> Response:
    rows = visits.my_visits(session, who, client_addr=client)
    a = ctx.settings.assisted
    used = assisted.used_today(session, who.user_id, datetime.now(UTC), a.utc_offset_hours)
    return render(request, "console/my_visits.html", who, rows=rows, msg=msg, error=error,
                  assisted_used=used, assisted_limit=a.max_per_worker_per_day)


@router.post("/visits/{task_id}/close")
async def close_visit(task_id: DbId, who: CommunityWorker, ctx: Ctx, pool: Pool, client: ClientAddr,
                      photo: Annotated[UploadFile, File()], note: Annotated[str, Form(max_length=visits.MAX_NOTE)] = ""
                      ) -> Response:
    data = await photo.read(ctx.settings.images.max_bytes + 1)
    try:
        if len(data) > ctx.settings.images.max_bytes:
            raise LifecertError("the photo is too large", code=ErrorCode.IMAGE_TOO_LARGE)
        out = await pool.run(close_in_worker, ctx, who, task_id, data, note, client)
    except LifecertError as exc:
        return _to("/console/my-visits", error=f"err_{exc.code}")
    key = f"visit_{out['result']}"
    return _to("/console/my-visits", msg=key if key in ("visit_CONFIRMED", "visit_LOW_MATCH") else "",
               error="" if out["status"] != "open" else "visit_NO_FACE")


@router.post("/visits/{task_id}/assign")
def assign_visit(task_id: DbId, session: DbSession, who: VisitAssigner, client: ClientAddr,
                 worker: Annotated[str, Form(max_length=64)] = "") -> Response:
    try:
        visits.assign_visit(session, who, task_id, worker.strip(), client_addr=client)
    except LifecertError as exc:
        session.rollback()
        return _to("/console/visits", error=f"err_{exc.code}")
    return _to("/console/visits")


@router.get("/imports", response_class=HTMLResponse)
def imports(request: Request, session: DbSession, who: ImportStaff, ctx: Ctx, msg: str = "", error: str = "",
            import_id: int | None = None) -> Response:
    rows = exchange.import_history(session, limit=200)
    departments = [m.department for m in all_mappings(ctx.settings)]
    return render(request, "console/imports.html", who, rows=rows, departments=departments, msg=msg, error=error,
                  import_id=import_id)


@router.get("/imports/{import_id}", response_class=HTMLResponse)
def import_detail(request: Request, session: DbSession, who: ImportStaff, import_id: DbId) -> Response:
    """One import's receipt: counts, outcomes, rejects by reason and the first rejected rows (no row content)."""
    receipt = exchange.stored_receipt(session, import_id)
    return render(request, "console/import_detail.html", who, r=receipt.as_dict(), imp=receipt.summary)


def _copy(src: UploadFile, dst: Path) -> None:
    src.file.seek(0)
    with dst.open("wb") as out:
        shutil.copyfileobj(src.file, out, _COPY_BLOCK)


@router.post("/imports/upload")
async def upload(request: Request, who: ImportStaff, ctx: Ctx, client: ClientAddr,
                 department: Annotated[str, Form(pattern=r"^[a-z0-9][a-z0-9_\-]{1,63}$")],
                 extract: Annotated[UploadFile, File()],
                 period: Annotated[str, Form(pattern=r"^(\d{4}-\d{2})?$")] = "") -> Response:
    folder = await asyncio.to_thread(new_upload_folder, ctx, "console-")
    try:
        dst = folder / exchange.safe_file_name(extract.filename or "extract.csv")
        await asyncio.to_thread(_copy, extract, dst)
        caller = exchange.Caller(department, 0, f"console:{who.username}", "console")
        receipt = await exchange_pool(request).run(
            exchange.import_extract, ctx.settings, ctx.db, caller, dst, period=period or None, client_addr=client,
            actor=who.username, role=str(who.role))
    except LifecertError as exc:
        return _to("/console/imports", error=f"err_{exc.code}")
    finally:
        await asyncio.to_thread(shutil.rmtree, folder, True)
    done = "import_repeat" if receipt.summary.already_imported else "import_done"
    return _to("/console/imports", msg=done, import_id=str(receipt.summary.import_id))
