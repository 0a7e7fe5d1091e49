"""Console pages for payment suspensions (lifecert.services.suspensions): the list of cases in the
caseworker's region, the two signatures (propose, approve by another caseworker), decline, and the
export for the payment system. CSRF and roles come from the ``Caseworker`` principal like every
console form; the routes parse the form, call one service function and redirect."""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from lifecert.domain.errors import ErrorCode, LifecertError
from lifecert.services import suspensions
from lifecert.storage.models_agency import SuspensionStatus
from server.deps import ClientAddr, DbId, DbSession
from server.routes.console import render
from server.security import Caseworker

router = APIRouter(prefix="/console/suspensions", include_in_schema=False)

_SHOWN = {ErrorCode.CONFLICT, ErrorCode.BAD_REQUEST, ErrorCode.TWO_PERSON_RULE}
_STATUSES = {"pending": SuspensionStatus.PENDING, "approved": SuspensionStatus.SUSPENDED,
             "closed": (SuspensionStatus.RESUMED, SuspensionStatus.CANCELLED)}


def _back(error: str | None = None, status: str = "pending") -> RedirectResponse:
    q = {"status": status} | ({"error": error} if error else {})
    return RedirectResponse(f"/console/suspensions?{urlencode(q)}", status_code=303)


def _sign(session: DbSession, fn: Any) -> Response:
    try:
        fn()
    except LifecertError as exc:
        if exc.code not in _SHOWN:
            raise
        session.rollback()
        return _back(f"err_{exc.code}")
    return _back()


@router.get("", response_class=HTMLResponse)
def suspension_list(request: Request, session: DbSession, who: Caseworker, client: ClientAddr,
                    status: str = "pending", error: str | None = None) -> Response:
    wanted = _STATUSES.get(status, SuspensionStatus.PENDING)
    rows = suspensions.list_cases(session, who, statuses=wanted, client_addr=client)
    people = suspensions.pensioners_of(session, rows)
    staff = suspensions.signers_of(session, rows)
    return render(request, "console/suspensions.html", who, rows=rows, people=people, staff=staff, status=status,
                  error=error if error and error.startswith("err_") else None)


@router.post("/{suspension_id}/propose")
def propose(session: DbSession, who: Caseworker, client: ClientAddr, suspension_id: DbId,
            note: Annotated[str, Form(max_length=2000)] = "") -> Response:
    return _sign(session, lambda: suspensions.propose(session, suspension_id, who, note=note, client_addr=client))


@router.post("/{suspension_id}/approve")
def approve(session: DbSession, who: Caseworker, client: ClientAddr, suspension_id: DbId,
            note: Annotated[str, Form(max_length=2000)] = "") -> Response:
    return _sign(session, lambda: suspensions.approve(session, suspension_id, who, today=date.today(), note=note,
                                                      client_addr=client))


@router.post("/{suspension_id}/decline")
def decline(session: DbSession, who: Caseworker, client: ClientAddr, suspension_id: DbId,
            note: Annotated[str, Form(max_length=2000)] = "") -> Response:
    return _sign(session, lambda: suspensions.decline(session, suspension_id, who, note=note, client_addr=client))


@router.post("/{suspension_id}/propose-lift")
def propose_lift(session: DbSession, who: Caseworker, client: ClientAddr, suspension_id: DbId,
                 note: Annotated[str, Form(max_length=2000)] = "") -> Response:
    return _sign(session, lambda: suspensions.propose_lift(session, suspension_id, who, note=note,
                                                           client_addr=client))


@router.post("/{suspension_id}/approve-lift")
def approve_lift(session: DbSession, who: Caseworker, client: ClientAddr, suspension_id: DbId,
                 note: Annotated[str, Form(max_length=2000)] = "") -> Response:
    return _sign(session, lambda: suspensions.approve_lift(session, suspension_id, who, today=date.today(),
                                                           note=note, client_addr=client))


@router.post("/export")
def export(session: DbSession, who: Caseworker, client: ClientAddr) -> Response:
    """The payment system's list (approved and resumed, not handed over yet) as a CSV download."""
    with tempfile.TemporaryDirectory(prefix="lc-susp-") as tmp:
        out = Path(tmp) / "suspensions.csv"
        suspensions.export_for_payment(session, out, actor=who.username, role=str(who.role), client_addr=client)
        body = out.read_bytes()
    return Response(body, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="suspensions-{date.today()}.csv"'})
