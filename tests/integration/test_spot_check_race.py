"""At most one open spot check per pensioner, enforced by the database (migration 0012's partial unique
index): two sessions of one pensioner decided at the same instant on PostgreSQL end in ONE case holding
both sessions, both confirmations stand; an open case that does not read as a spot check loses no
confirmation; 0012 refuses duplicates already present (naming them, changing nothing) and goes up, down and
up again on SQLite and PostgreSQL. Real services on real databases; no face session needed (the decision
is written the way verification writes it, then ``spotcheck.consider`` runs in the same transaction)."""

from __future__ import annotations

import random
import threading
from datetime import UTC, date, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import Engine, inspect, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lifecert.domain.cases import SpotCheck, load_payload
from lifecert.domain.errors import Conflict
from lifecert.domain.idnumber import make_id_number
from lifecert.domain.spotcheck import SpotCheckPolicy
from lifecert.services.audit import verify_chain
from lifecert.services.confirmations import record_confirmation
from lifecert.services.context import AppContext
from lifecert.services.verification.spotcheck import Drawn, consider
from lifecert.storage.db import make_engine
from lifecert.storage.migrate import alembic_config
from lifecert.storage.models import (
    AuditEvent,
    ConfirmationMethod,
    Pensioner,
    ReviewCase,
    ReviewKind,
    SurvivalConfirmation,
)
from lifecert.storage.models_verification import VerificationSession
from tests.conftest import empty_postgres
from tests.db_support import LOCK_WAIT_S, SecondTransaction

TODAY = date(2026, 12, 1)
ALWAYS = SpotCheckPolicy(sample_rate=1.0)  # every confirmed session is drawn: the draw cannot miss
WAIT_S = LOCK_WAIT_S  # bound on waiting for the second transaction to finish (never reached when it works)


def _pensioner_with_sessions(ctx: AppContext, seq: int, n: int) -> tuple[int, list[str]]:
    """A pensioner and ``n`` verification sessions of hers not yet decided (committed)."""
    now = datetime.now(UTC)
    with ctx.db.session() as s:
        p = Pensioner(id_number=make_id_number("220202", date(1950, 3, 7), seq), name="张桂兰", sex="F",
                      birth_date=date(1950, 3, 7), region_code="220202")
        s.add(p)
        s.flush()
        sids = [f"race-{seq}-{i}" for i in range(n)]
        s.add_all(VerificationSession(id=sid, pensioner_id=p.id, nonce_hash="0" * 64, lead_in_ms=0,
                                      challenge_window_ms=0, expires_at=now + timedelta(minutes=5)) for sid in sids)
        return p.id, sids


def _decide(db: Session, pid: int, sid: str) -> Drawn | None:
    """What the verification service does with a CONFIRMED decision, in ``db``'s transaction: the
    confirmation, the session row, then the spot check."""
    p, vs = db.get(Pensioner, pid), db.get(VerificationSession, sid)
    assert p is not None and vs is not None
    conf = record_confirmation(db, p, ConfirmationMethod.FACE_SELF_SERVICE, TODAY, f"verification_session:{sid}",
                               {"session_id": sid}, cycle_months=12)
    vs.decision, vs.confirmation_id, vs.decided_at = "CONFIRMED", conf.id, datetime.now(UTC)
    return consider(db, ALWAYS, random.Random(7), vs, p, conf.id, conf.method, [])


def _spot_cases(ctx: AppContext, pid: int) -> list[ReviewCase]:
    with ctx.db.session() as s:
        rows = list(s.scalars(select(ReviewCase).where(ReviewCase.pensioner_id == pid,
                                                       ReviewCase.kind == ReviewKind.SPOT_CHECK)
                              .order_by(ReviewCase.id)))
        s.expunge_all()
    return rows


@pytest.mark.postgres
def test_given_two_sessions_of_one_pensioner_decided_at_once_on_postgres_then_one_case_holds_both(
    pg_ctx: AppContext,
) -> None:
    """The interleaving is forced, not hoped for: A decides and opens the case but has not committed; B
    (its own thread and connection) has read "no open spot check" and is blocked by A; A commits. Without
    the index B opened a second case; with the index and no SAVEPOINT, B's whole transaction (her
    confirmation too) was lost. Now B joins A's case and both confirmations stand."""
    ctx = pg_ctx
    pid, (sid_a, sid_b) = _pensioner_with_sessions(ctx, 41, 2)
    a = ctx.db.sessionmaker()
    try:
        drawn_a = _decide(a, pid, sid_a)
        assert drawn_a is not None and not drawn_a.added
        case_a = drawn_a.case.id
        b = SecondTransaction(ctx, lambda db: _decide(db, pid, sid_b))
        b.wait_until_blocked()
        a.commit()
    finally:
        a.close()
    drawn_b = b.join()
    assert drawn_b is not None and drawn_b.added and drawn_b.case.id == case_a

    (case,) = _spot_cases(ctx, pid)
    payload = load_payload(case.payload)
    assert isinstance(payload, SpotCheck)
    assert [d.session_id for d in payload.sessions] == [sid_a, sid_b]
    with ctx.db.session() as s:
        rows = [s.get(VerificationSession, sid) for sid in (sid_a, sid_b)]
        assert [(vs.decision, vs.review_case_id) for vs in rows if vs] == [("CONFIRMED", case.id)] * 2
        confs = list(s.scalars(select(SurvivalConfirmation).where(SurvivalConfirmation.pensioner_id == pid,
                                                                   SurvivalConfirmation.stands())))
        assert sorted(c.id for c in confs) == sorted(payload.confirmation_ids)
        assert len(confs) == 2 and None not in (vs.confirmation_id for vs in rows if vs)
        actions = [e.action for e in s.scalars(select(AuditEvent).where(AuditEvent.object_type == "review_case"))]
        assert sorted(actions) == ["case.spot_check_added", "case.spot_check_opened"]
        assert verify_chain(s).ok


@pytest.mark.postgres
def test_given_two_sessions_racing_freely_on_postgres_then_always_one_case(pg_ctx: AppContext) -> None:
    """No forced order: 8 pensioners, two threads deciding one session each of every pensioner at a
    barrier. Whatever order the database picks, each pensioner ends with one case holding both sessions
    and both confirmations (holds for every interleaving, so it is not flaky; the forced test above is the
    one that fails without the index)."""
    ctx = pg_ctx
    people = [_pensioner_with_sessions(ctx, 50 + i, 2) for i in range(8)]
    errors: list[BaseException] = []
    for pid, sids in people:
        gate = threading.Barrier(2, timeout=WAIT_S)

        def run(sid: str, pid: int = pid, gate: threading.Barrier = gate) -> None:
            try:
                with ctx.db.session() as db:
                    gate.wait()
                    _decide(db, pid, sid)
            except BaseException as e:
                errors.append(e)

        threads = [threading.Thread(target=run, args=(sid,), daemon=True) for sid in sids]
        for t in threads:
            t.start()
        for t in threads:
            t.join(WAIT_S)
        assert not any(t.is_alive() for t in threads)
    assert errors == []
    for pid, sids in people:
        (case,) = _spot_cases(ctx, pid)
        payload = load_payload(case.payload)
        assert isinstance(payload, SpotCheck) and sorted(d.session_id for d in payload.sessions) == sorted(sids)


def test_given_an_open_spot_check_that_does_not_read_when_a_session_is_drawn_then_the_confirmation_stands(
    data_ctx: AppContext,
) -> None:
    """The index forbids a second open case and the unreadable one cannot be joined: the deciding
    transaction still commits (the SAVEPOINT undid only the case's INSERT), the drawn session is audited
    for a person to pick up."""
    pid, (sid,) = _pensioner_with_sessions(data_ctx, 43, 1)
    with data_ctx.db.session() as s:
        s.add(ReviewCase(kind=ReviewKind.SPOT_CHECK, reason="RANDOM_SAMPLE", pensioner_id=pid,
                         payload={"type": "spot_check", "v": 999}))
    with data_ctx.db.session() as s:
        assert _decide(s, pid, sid) is None
    with data_ctx.db.session() as s:
        vs = s.get(VerificationSession, sid)
        assert vs is not None and vs.decision == "CONFIRMED" and vs.review_case_id is None
        conf = s.get(SurvivalConfirmation, vs.confirmation_id)
        assert conf is not None and conf.withdrawn_at is None
        ev = s.scalars(select(AuditEvent).where(AuditEvent.action == "case.spot_check_not_joined")).one()
        assert ev.object_id == sid and ev.detail["confirmation_id"] == conf.id
    assert len(_spot_cases(data_ctx, pid)) == 1


# --- migration 0012 ------------------------------------------------------------------------------

INDEX = "uq_review_case_open_spot_check"


def _to(engine: Engine, revision: str, *, down: bool = False) -> None:
    with engine.begin() as conn:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(cfg, revision)


def _indexed(engine: Engine) -> bool:
    return any(ix["name"] == INDEX and ix["unique"] for ix in inspect(engine).get_indexes("review_case"))


def _case(engine: Engine, pid: int, *, kind: str = "spot_check", status: str = "open") -> int:
    with engine.begin() as conn:
        return int(conn.execute(text(
            "insert into review_case (kind, reason, status, pensioner_id, payload, created_at) values "
            "(:k, 'RANDOM_SAMPLE', :s, :p, '{}', CURRENT_TIMESTAMP) returning id"),
            {"k": kind, "s": status, "p": pid}).scalar_one())


def _version(engine: Engine) -> str:
    with engine.connect() as conn:
        return str(conn.execute(text("select version_num from alembic_version")).scalar_one())


def _up_and_down(url: str) -> None:
    """A database at 0011 where pensioner 1 has two open spot checks (and a closed one, and a case of
    another kind): 0012 refuses, names both cases, changes nothing. One decided, 0012 adds the index:
    a second open spot check is refused, a closed one or another pensioner's is not. Down takes the
    index away (rows kept), up again works."""
    engine = make_engine(url)
    _to(engine, "0011_confirmation_withdrawal")
    with engine.begin() as conn:
        for n in (1, 2):
            conn.execute(text(
                "insert into pensioner (id_number, name, sex, birth_date, region_code, status, fraud_flag, "
                f"created_at, updated_at) values ('22020219500307001{n}', '张桂兰', 'F', '1950-03-07', "
                "'220202', 'active', false, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
        one, two = (r[0] for r in conn.execute(text("select id from pensioner order by id")))
    first, second = _case(engine, one), _case(engine, one, status="assigned")
    _case(engine, one, status="closed")
    _case(engine, one, kind="verification")
    _case(engine, two)
    with pytest.raises(Conflict) as e:
        _to(engine, "0012_one_open_spot_check")
    assert f"pensioner {one}: cases {first}, {second})" in str(e.value) and "1 pensioner(s)" in str(e.value)
    assert _version(engine) == "0011_confirmation_withdrawal" and not _indexed(engine)

    with engine.begin() as conn:  # what deciding the second case does to the row
        conn.execute(text("update review_case set status = 'closed' where id = :i"), {"i": second})
    _to(engine, "0012_one_open_spot_check")
    assert _indexed(engine)
    with pytest.raises(IntegrityError):
        _case(engine, one)
    _case(engine, one, status="closed")
    _case(engine, one, kind="verification")
    with engine.connect() as conn:
        assert conn.execute(text("select count(*) from review_case")).scalar() == 7

    _to(engine, "0011_confirmation_withdrawal", down=True)
    assert not _indexed(engine)
    _case(engine, two)  # the database no longer refuses it
    with engine.begin() as conn:
        conn.execute(text("delete from review_case where pensioner_id = :p and kind = 'spot_check'"), {"p": two})
    _to(engine, "head")
    assert _indexed(engine)
    engine.dispose()


def test_given_sqlite_at_0011_when_migrating_0012_then_duplicates_refused_and_the_index_comes_and_goes(
    tmp_path,  # type: ignore[no-untyped-def]
) -> None:
    _up_and_down(f"sqlite:///{tmp_path / 'w.sqlite'}")


@pytest.mark.postgres
def test_given_postgres_at_0011_when_migrating_0012_then_duplicates_refused_and_the_index_comes_and_goes(
    postgres_url: str,
) -> None:
    empty_postgres(postgres_url)
    _up_and_down(postgres_url)
