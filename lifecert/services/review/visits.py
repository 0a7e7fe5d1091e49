"""Home-visit tasks created by case decisions, listed for community staff."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from lifecert.services import audit
from lifecert.services.review.access import scope_clause
from lifecert.services.staff import Principal
from lifecert.storage.models import Pensioner
from lifecert.storage.models_staff import HomeVisitStatus, HomeVisitTask


def list_visits(session: Session, who: Principal, *, region: str | None = None, status: str = HomeVisitStatus.OPEN,
                client_addr: str = "") -> list[tuple[HomeVisitTask, Pensioner]]:
    q = select(HomeVisitTask, Pensioner).join(Pensioner, Pensioner.id == HomeVisitTask.pensioner_id)
    if status != "all":
        q = q.where(HomeVisitTask.status == status)
    if region:
        q = q.where(HomeVisitTask.region_code.startswith(region, autoescape=True))
    clause = scope_clause(who, HomeVisitTask.region_code)
    if clause is not None:
        q = q.where(clause)
    rows = [(t, p) for t, p in session.execute(q.order_by(HomeVisitTask.created_at).limit(500))]
    audit.record(session, actor=who.username, role=who.role, action="visits.view", object_type="home_visit_task",
                 object_id="*", client_addr=client_addr, detail={"region": region or "", "shown": len(rows)})
    return rows

