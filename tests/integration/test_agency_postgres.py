"""The agency cycle on a real PostgreSQL server: the streamed register (server-side cursor), the
campaign plan, reminders' durable record and the two-person suspension behave as on SQLite."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select

from lifecert.domain.errors import ErrorCode, LifecertError
from lifecert.domain.policy import CertificationPolicy, Channel, DueState, PolicyKind
from lifecert.services import staff, suspensions
from lifecert.services.audit import verify_chain
from lifecert.services.campaign import plan_month
from lifecert.services.context import AppContext
from lifecert.services.policy import set_policy
from lifecert.services.reminders import remind
from lifecert.storage.models import ConfirmationMethod, Pensioner, PensionerStatus
from lifecert.storage.models_agency import Reminder, SuspensionStatus
from tests.integration.agency_support import confirm, person, template_row

pytestmark = pytest.mark.postgres


def test_given_postgres_when_planning_reminding_and_suspending_then_as_on_sqlite(
        pg_ctx: AppContext, tmp_path: Path) -> None:
    with pg_ctx.db.session() as s:
        set_policy(s, CertificationPolicy("22", PolicyKind.BIRTHDAY_WINDOW, date(2025, 1, 1)), actor="t", role="admin")
        ids = {}
        for seq in range(1, 41):  # 40 pensioners born in March, confirmed in March 2026
            p = person(s, "220202", date(1950, 3, 9), seq)
            template_row(s, p)
            confirm(s, p, ConfirmationMethod.FACE_SELF_SERVICE, date(2026, 3, 20))
            ids[seq] = p.id
        late = person(s, "220203", date(1950, 3, 9), 99)  # never confirmed: overdue
        a = staff.create_user(s, "cw_a", "correct-horse-battery", "caseworker", actor="t", actor_role="cli")
        b = staff.create_user(s, "cw_b", "correct-horse-battery", "caseworker", actor="t", actor_role="cli")
        pa, pb = staff.principal_for(a, "cli"), staff.principal_for(b, "cli")
        late_id = late.id
    with pg_ctx.db.session() as s:
        rows = list(plan_month(s, 2027, 3))
    assert len(rows) == 41 and rows[0].region_code == "220202"  # ordered by region, streamed
    assert {r.channel for r in rows if r.pensioner_id != late_id} == {Channel.SELF_SERVICE}
    assert {r.state for r in rows if r.pensioner_id != late_id} == {DueState.OPEN}
    r1 = remind(pg_ctx.db, 2027, 3, page_url="https://rz.example.gov.cn/", csv_out=tmp_path / "sms.csv")
    r2 = remind(pg_ctx.db, 2027, 3, page_url="https://rz.example.gov.cn/", csv_out=tmp_path / "sms2.csv")
    assert (r1.exported, r2.exported, r2.already) == (40, 0, 40)
    with pg_ctx.db.session() as s:
        assert len(s.scalars(select(Reminder)).all()) == 40
        assert suspensions.sweep(s, date(2027, 3, 1)).opened == 1
        sid = suspensions.list_cases(s, pa)[0].id
        suspensions.propose(s, sid, pa)
    with pytest.raises(LifecertError) as e, pg_ctx.db.session() as s:
        suspensions.approve(s, sid, pa, today=date(2027, 3, 2))
    assert e.value.code is ErrorCode.TWO_PERSON_RULE
    with pg_ctx.db.session() as s:
        assert suspensions.approve(s, sid, pb, today=date(2027, 3, 2)).status == SuspensionStatus.APPROVED
        assert s.get(Pensioner, late_id).status == PensionerStatus.SUSPENDED  # type: ignore[union-attr]
        assert verify_chain(s).ok
