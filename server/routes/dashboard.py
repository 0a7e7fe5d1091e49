"""The agency dashboards in the console: the certification cycle per region and the yearly
department evaluation, as pages and CSV exports (queries: :mod:`lifecert.services.dashboard`)."""

from __future__ import annotations

from datetime import date
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from lifecert.services import dashboard
from server.deps import ClientAddr, Ctx, DbSession
from server.routes.console import render
from server.security import AgencyStaff

router = APIRouter(prefix="/console/dashboard", tags=["console"])


def _year(year: int | None) -> int:
    return year if year is not None else date.today().year


def _csv(body: str, name: str) -> Response:
    return Response(body.encode("utf-8"), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"',
                             "Cache-Control": "no-store, private"})


@router.get("", response_class=HTMLResponse)
def dashboard_page(request: Request, ctx: Ctx, session: DbSession, who: AgencyStaff, client: ClientAddr,
                   year: int | None = None, region: str | None = None) -> Response:
    y = _year(year)
    board = dashboard.region_cycle(session, who, y, region=region,
                                   cycle_months=ctx.settings.confirmation_cycle_months)
    evaluation = dashboard.department_evaluation(ctx.settings, session, who, y)
    dashboard.audit_view(session, who, "dashboard.view", year=y, scope=board.scope, client_addr=client)
    q = urlencode({k: v for k, v in {"year": y, "region": region or ""}.items() if v})
    return render(request, "console/dashboard.html", who, board=board, evaluation=evaluation,
                  region=region or "", export_q=q)


@router.get("/regions.csv")
def regions_export(ctx: Ctx, session: DbSession, who: AgencyStaff, client: ClientAddr, year: int | None = None,
                   region: str | None = None) -> Response:
    y = _year(year)
    board = dashboard.region_cycle(session, who, y, region=region,
                                   cycle_months=ctx.settings.confirmation_cycle_months)
    dashboard.audit_view(session, who, "dashboard.export.regions", year=y, scope=board.scope, client_addr=client)
    return _csv(dashboard.cycle_csv(board), f"certification-{y}-{board.scope or 'all'}.csv")


@router.get("/departments.csv")
def departments_export(ctx: Ctx, session: DbSession, who: AgencyStaff, client: ClientAddr,
                       year: int | None = None) -> Response:
    y = _year(year)
    board = dashboard.department_evaluation(ctx.settings, session, who, y)
    dashboard.audit_view(session, who, "dashboard.export.departments", year=y, scope=board.scope,
                         client_addr=client)
    return _csv(dashboard.evaluation_csv(board), f"departments-{y}-{board.scope or 'all'}.csv")
