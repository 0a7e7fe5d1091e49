"""A withdrawn survival confirmation (a spot check found fraud) stays on record and counts for nothing:
not for standing, due / overdue, the certification policy, the campaign register, the dashboard or
the data comparison's conflict check. Migration 0011 adds the columns and takes them away again."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from alembic import command
from sqlalchemy import Engine, inspect, select, text

from lifecert.domain.errors import Conflict, ErrorCode, LifecertError, NotFound
from lifecert.domain.idnumber import make_id_number
from lifecert.services import policy
from lifecert.services.confirmations import (
    confirmations_of,
    due_within,
    overdue,
    record_confirmation,
    status_of,
    withdraw_confirmation,
)
from lifecert.services.context import AppContext
from lifecert.services.dashboard import region_cycle
from lifecert.services.datamatch.outcomes import latest_confirmations
from lifecert.services.staff import Principal, Role
from lifecert.storage.db import make_engine
from lifecert.storage.migrate import alembic_config
from lifecert.storage.models import AuditEvent, ConfirmationMethod, Pensioner, SurvivalConfirmation
from tests.conftest import empty_postgres

TODAY = date(2026, 12, 1)
REGISTERED = datetime(2024, 1, 10, tzinfo=UTC)


def _pensioner_with(ctx: AppContext, seq: int, *evidence: date) -> tuple[int, list[int]]:
    """A pensioner (region 220202, registered 2024) with a face confirmation on each ``evidence`` date."""
    with ctx.db.session() as s:
        p = Pensioner(id_number=make_id_number("220202", date(1950, 3, 7), seq), name="张桂兰", sex="F",
                      birth_date=date(1950, 3, 7), region_code="220202", created_at=REGISTERED)
        s.add(p)
        s.flush()
        ids = [record_confirmation(s, p, ConfirmationMethod.FACE_SELF_SERVICE, d, f"verification_session:{d}", {},
                                   cycle_months=12).id for d in evidence]
        return p.id, ids


def _withdraw(ctx: AppContext, conf_id: int, reason: str = "spot check 7: suspected fraud") -> None:
    with ctx.db.session() as s:
        withdraw_confirmation(s, conf_id, by=None, actor="cw_a", role="caseworker", reason=reason, case_id=7)


def test_given_the_newest_confirmation_withdrawn_when_asking_standing_then_the_older_one_decides(
    data_ctx: AppContext,
) -> None:
    pid, (old, new) = _pensioner_with(data_ctx, 11, date(2025, 10, 1), date(2026, 11, 20))
    with data_ctx.db.session() as s:
        p = s.get(Pensioner, pid)
        assert p is not None
        assert status_of(s, p, today=TODAY).state == "valid"
        assert latest_confirmations(s, [pid])[pid]["id"] == new
        assert policy.last_evidence(s, pid) == (date(2026, 11, 20), False)
    board = region_cycle_now(data_ctx)
    assert board.total.certified == 1 and board.total.overdue == 0

    _withdraw(data_ctx, new)
    with data_ctx.db.session() as s:
        p = s.get(Pensioner, pid)
        assert p is not None
        st = status_of(s, p, today=TODAY)
        assert (st.state, st.last_evidence_date) == ("overdue", date(2025, 10, 1))  # the older one: expired
        assert [x.pensioner_id for x in overdue(s, today=TODAY)] == [pid]
        assert due_within(s, 400, today=TODAY) == []
        assert latest_confirmations(s, [pid])[pid]["id"] == old  # a death record now conflicts with nothing new
        assert policy.last_evidence(s, pid) == (date(2025, 10, 1), False)
        reg = [r for r in policy.iter_register(s) if r.pensioner_id == pid]
        assert [r.last_confirmation for r in reg] == [date(2025, 10, 1)]
        assert policy.due_of(s, p, TODAY).last_confirmation == date(2025, 10, 1)
        kept = {c.id: c for c in confirmations_of(s, pid)}
        assert set(kept) == {old, new}, "withdrawn is kept on record"
        assert kept[new].withdrawn_at is not None and kept[new].withdrawn_reason == "spot check 7: suspected fraud"
        ev = s.scalars(select(AuditEvent).where(AuditEvent.action == "confirmation.withdraw")).one()
        assert ev.object_id == str(new) and ev.actor == "cw_a" and ev.detail["case_id"] == 7
        assert ev.detail["pensioner_id"] == pid
    board = region_cycle_now(data_ctx)
    assert board.total.certified == 0 and board.total.overdue == 1


def region_cycle_now(ctx: AppContext):  # type: ignore[no-untyped-def]
    central = Principal(user_id=1, username="viewer", role=Role.CASEWORKER, display_name="", region_code=None,
                        via="cli")
    with ctx.db.session() as s:
        return region_cycle(s, central, 2026, today=TODAY)


def test_given_a_pensioner_with_only_a_withdrawn_confirmation_then_never_confirmed(data_ctx: AppContext) -> None:
    pid, (only,) = _pensioner_with(data_ctx, 13, date(2026, 11, 30))
    _withdraw(data_ctx, only)
    with data_ctx.db.session() as s:
        p = s.get(Pensioner, pid)
        assert p is not None
        assert status_of(s, p, today=TODAY).state == "never_confirmed"
        assert [(x.pensioner_id, x.state) for x in overdue(s, today=TODAY)] == [(pid, "never_confirmed")]
        assert latest_confirmations(s, [pid]) == {}


def test_given_bad_withdrawals_when_asked_then_typed_errors_and_nothing_changes(data_ctx: AppContext) -> None:
    _pid, (conf,) = _pensioner_with(data_ctx, 15, date(2026, 11, 30))
    with pytest.raises(LifecertError) as e, data_ctx.db.session() as s:
        withdraw_confirmation(s, conf, by=None, actor="cw_a", role="caseworker", reason="  ")
    assert e.value.code == ErrorCode.BAD_REQUEST
    with pytest.raises(NotFound), data_ctx.db.session() as s:
        withdraw_confirmation(s, conf + 1000, by=None, actor="cw_a", role="caseworker", reason="x")
    with data_ctx.db.session() as s:
        row = s.get(SurvivalConfirmation, conf)
        assert row is not None and row.withdrawn_at is None
        assert s.scalars(select(AuditEvent).where(AuditEvent.action == "confirmation.withdraw")).all() == []
    _withdraw(data_ctx, conf)
    with pytest.raises(Conflict), data_ctx.db.session() as s:
        withdraw_confirmation(s, conf, by=None, actor="cw_b", role="caseworker", reason="again")


# --- migration 0011 ------------------------------------------------------------------------------

COLUMNS = {"withdrawn_at", "withdrawn_by", "withdrawn_reason"}


def _to(engine: Engine, revision: str, *, down: bool = False) -> None:
    with engine.begin() as conn:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(cfg, revision)


def _columns(engine: Engine) -> set[str]:
    return {c["name"] for c in inspect(engine).get_columns("survival_confirmation")}


def _up_and_down(url: str) -> None:
    """A database at 0010 holding a confirmation: 0011 adds the three columns (empty, the row kept);
    the downgrade takes them away and keeps the row; upgrading again works."""
    engine = make_engine(url)
    _to(engine, "0010_reminders")
    assert not COLUMNS & _columns(engine)
    with engine.begin() as conn:
        conn.execute(text("insert into pensioner (id_number, name, sex, birth_date, region_code, status, "
                          "fraud_flag, created_at, updated_at) values ('220202195003070011', '张桂兰', 'F', "
                          "'1950-03-07', '220202', 'active', false, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
        conn.execute(text("insert into survival_confirmation (pensioner_id, method, confirmed_at, evidence_date, "
                          "valid_until, source, evidence) select id, 'face_self_service', CURRENT_TIMESTAMP, "
                          "'2026-11-20', '2027-11-20', 's', '{}' from pensioner"))
    _to(engine, "0011_confirmation_withdrawal")
    assert _columns(engine) >= COLUMNS
    fks = inspect(engine).get_foreign_keys("survival_confirmation")
    assert any(fk["constrained_columns"] == ["withdrawn_by"] and fk["referred_table"] == "staff_user" for fk in fks)
    with engine.connect() as conn:
        rows = conn.execute(text("select withdrawn_at, withdrawn_by, withdrawn_reason from survival_confirmation"))
        assert [tuple(r) for r in rows] == [(None, None, None)]
    _to(engine, "0010_reminders", down=True)
    assert not COLUMNS & _columns(engine)
    with engine.connect() as conn:
        assert conn.execute(text("select count(*) from survival_confirmation")).scalar() == 1
    _to(engine, "head")
    assert _columns(engine) >= COLUMNS
    engine.dispose()


def test_given_sqlite_at_0010_when_migrating_0011_up_and_down_then_columns_come_and_go(tmp_path) -> None:  # type: ignore[no-untyped-def]
    _up_and_down(f"sqlite:///{tmp_path / 'w.sqlite'}")


@pytest.mark.postgres
def test_given_postgres_at_0010_when_migrating_0011_up_and_down_then_columns_come_and_go(postgres_url: str) -> None:
    empty_postgres(postgres_url)
    _up_and_down(postgres_url)
