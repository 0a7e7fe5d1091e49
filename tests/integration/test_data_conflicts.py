"""Conflicts between records go to review with both records, and nothing is acted on."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from sqlalchemy import select

from lifecert.domain.cases import AliveAfterDeath, DeathAfterConfirmation, load_payload
from lifecert.services.context import AppContext
from lifecert.storage.models import (
    ConfirmationMethod,
    Pensioner,
    PensionerStatus,
    ReviewCase,
    ReviewKind,
    SurvivalConfirmation,
)
from lifecert.storage.models_data import Outcome, PaymentAction
from tests.integration.test_data_support import (
    DEATH_HEADER,
    MEDICAL_HEADER,
    add_pensioners,
    do_import,
    idn,
    write_csv,
)


def _cases(ctx: AppContext) -> list[ReviewCase]:
    with ctx.db.session() as s:
        rows = list(s.scalars(select(ReviewCase).order_by(ReviewCase.id)))
        s.expunge_all()
        return rows


def test_given_recorded_death_when_alive_evidence_dated_after_it_then_conflict_case_with_both_records(
        data_ctx: AppContext, tmp_path: Path) -> None:
    a = idn(41)
    ids = add_pensioners(data_ctx, [(a, "马兰")])
    do_import(data_ctx, "police_deregistration",
              write_csv(tmp_path / "d.csv", DEATH_HEADER, [[a, "马兰", "2026-01-10", ""]]), period="2026-01")

    s = do_import(data_ctx, "medical_settlement", write_csv(tmp_path / "m.csv", MEDICAL_HEADER, [
        [a, "马兰", "2026-01-05", "社区医院"],  # before the death: true, nothing to do
        [a, "马兰", "2026-03-02", "社区医院"],  # after the death: someone used her card
    ]))

    assert s.outcomes == {Outcome.NONE: 1, Outcome.CONFLICT: 1}
    assert s.confirmations == 0
    [case] = _cases(data_ctx)
    assert (case.kind, case.reason, case.pensioner_id) == (ReviewKind.DATA_CONFLICT, "ALIVE_AFTER_DEATH", ids[a])
    pl = load_payload(case.payload)
    assert isinstance(pl, AliveAfterDeath)
    assert (pl.death.death_date, pl.death.department) == (date(2026, 1, 10), "police_deregistration")
    assert (pl.alive_evidence.event_date, pl.alive_evidence.department) == (date(2026, 3, 2), "medical_settlement")
    assert pl.alive_evidence.name == "马兰" and pl.alive_evidence.detail == "社区医院"
    with data_ctx.db.session() as sess:
        assert sess.scalars(select(SurvivalConfirmation)).all() == []


def test_given_face_confirmation_after_death_date_when_death_record_arrives_then_conflict_and_no_suspension(
        data_ctx: AppContext, tmp_path: Path) -> None:
    a = idn(43)
    ids = add_pensioners(data_ctx, [(a, "何平")])
    with data_ctx.db.session() as sess:
        sess.add(SurvivalConfirmation(pensioner_id=ids[a], method=ConfirmationMethod.FACE_SELF_SERVICE,
                                      evidence_date=date(2026, 3, 1), valid_until=date(2027, 3, 1),
                                      source="session-abc"))

    s = do_import(data_ctx, "police_deregistration",
                  write_csv(tmp_path / "d.csv", DEATH_HEADER, [[a, "何平", "2026-02-14", ""]]))

    assert s.outcomes == {Outcome.CONFLICT: 1}
    assert s.suspensions == 0
    [case] = _cases(data_ctx)
    assert (case.kind, case.reason) == (ReviewKind.DATA_CONFLICT, "DEATH_AFTER_CONFIRMATION")
    pl = load_payload(case.payload)
    assert isinstance(pl, DeathAfterConfirmation)
    assert (pl.death.event_date, pl.death.name, pl.death.department) == (date(2026, 2, 14), "何平",
                                                                         "police_deregistration")
    assert pl.confirmation.method == ConfirmationMethod.FACE_SELF_SERVICE
    assert pl.confirmation.evidence_date == date(2026, 3, 1)
    with data_ctx.db.session() as sess:
        assert sess.get(Pensioner, ids[a]).status == PensionerStatus.ACTIVE  # type: ignore[union-attr]
        assert sess.scalars(select(PaymentAction)).all() == []


def test_given_face_confirmation_before_death_date_when_death_record_arrives_then_suspended_without_review(
        data_ctx: AppContext, tmp_path: Path) -> None:
    a = idn(45)
    ids = add_pensioners(data_ctx, [(a, "高明")])
    with data_ctx.db.session() as sess:
        sess.add(SurvivalConfirmation(pensioner_id=ids[a], method=ConfirmationMethod.FACE_SELF_SERVICE,
                                      evidence_date=date(2025, 11, 1), valid_until=date(2026, 11, 1)))

    s = do_import(data_ctx, "police_deregistration",
                  write_csv(tmp_path / "d.csv", DEATH_HEADER, [[a, "高明", "2026-02-14", ""]]))

    assert s.outcomes == {Outcome.DECEASED: 1}
    assert _cases(data_ctx) == []
