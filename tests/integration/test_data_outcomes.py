"""Each outcome of the data comparison on synthetic extracts."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from sqlalchemy import select

from lifecert.domain.cases import NameMismatch, load_payload
from lifecert.services.context import AppContext
from lifecert.storage.models import ConfirmationMethod, Pensioner, PensionerStatus, ReviewCase, SurvivalConfirmation
from lifecert.storage.models_data import ActionKind, DataRecord, Outcome, PaymentAction
from tests.conftest import make_settings
from tests.integration.test_data_support import (
    CREMATION_HEADER,
    DEATH_HEADER,
    MEDICAL_HEADER,
    RELEASE_HEADER,
    SENTENCE_HEADER,
    add_pensioners,
    do_import,
    idn,
    write_csv,
)


def _pensioner(ctx: AppContext, id_number: str) -> Pensioner:
    with ctx.db.session() as s:
        p = s.scalars(select(Pensioner).where(Pensioner.id_number == id_number)).one()
        s.expunge(p)
        return p


def _actions(ctx: AppContext, pid: int) -> list[PaymentAction]:
    with ctx.db.session() as s:
        q = select(PaymentAction).where(PaymentAction.pensioner_id == pid).order_by(PaymentAction.id)
        rows = list(s.scalars(q))
        s.expunge_all()
        return rows


def test_given_death_record_when_imported_then_suspension_from_death_date_and_status_deceased(
        data_ctx: AppContext, tmp_path: Path) -> None:
    a, b = idn(11), idn(13)
    ids = add_pensioners(data_ctx, [(a, "王秀英"), (b, "李建国")])
    f = write_csv(tmp_path / "death.csv", DEATH_HEADER, [[a, "王秀英", "2026-03-05", "死亡"]])

    s = do_import(data_ctx, "police_deregistration", f)

    assert s.outcomes == {Outcome.DECEASED: 1}
    assert s.suspensions == 1
    acts = _actions(data_ctx, ids[a])
    assert [(x.kind, x.reason, x.effective_date) for x in acts] == [
        (ActionKind.SUSPENSION, "deceased", date(2026, 3, 5))]
    assert _pensioner(data_ctx, a).status == PensionerStatus.DECEASED
    assert _pensioner(data_ctx, b).status == PensionerStatus.ACTIVE
    assert _actions(data_ctx, ids[b]) == []


def test_given_second_department_reports_known_death_when_imported_then_no_second_suspension(
        data_ctx: AppContext, tmp_path: Path) -> None:
    a = idn(15)
    ids = add_pensioners(data_ctx, [(a, "赵桂兰")])
    do_import(data_ctx, "police_deregistration",
              write_csv(tmp_path / "p.csv", DEATH_HEADER, [[a, "赵桂兰", "2026-02-10", ""]]))

    s = do_import(data_ctx, "civil_affairs_cremation",
                  write_csv(tmp_path / "c.csv", CREMATION_HEADER, [[a, "赵桂兰", "2026-02-10"]]))

    assert s.outcomes == {Outcome.ALREADY_DECEASED: 1}
    assert len(_actions(data_ctx, ids[a])) == 1


def test_given_sentence_being_served_when_imported_then_suspended_for_term_and_resumption_due_at_release(
        data_ctx: AppContext, tmp_path: Path) -> None:
    a, b = idn(17), idn(19)
    ids = add_pensioners(data_ctx, [(a, "张伟"), (b, "刘洋")])
    f = write_csv(tmp_path / "court.csv", SENTENCE_HEADER, [
        [a, "张伟", "2026-01-15", "2028-01-14", "诈骗"],  # serving on the received date
        [b, "刘洋", "2024-05-01", "2025-10-31", "盗窃"],  # term already over
    ])

    s = do_import(data_ctx, "court_sentence", f)

    assert s.outcomes == {Outcome.IMPRISONED: 2}
    acts = _actions(data_ctx, ids[a])
    assert [(x.kind, x.effective_date, x.end_date) for x in acts] == [
        (ActionKind.SUSPENSION, date(2026, 1, 15), date(2028, 1, 14)),
        (ActionKind.RESUMPTION, date(2028, 1, 14), None),
    ]
    assert _pensioner(data_ctx, a).status == PensionerStatus.SUSPENDED
    assert _pensioner(data_ctx, a).status_reason.startswith("imprisoned")
    assert _pensioner(data_ctx, b).status == PensionerStatus.ACTIVE  # term over: suspend the past term only
    assert [x.kind for x in _actions(data_ctx, ids[b])] == [ActionKind.SUSPENSION, ActionKind.RESUMPTION]


def test_given_prisoner_released_early_when_release_imported_then_active_and_resumption_moved_to_release(
        data_ctx: AppContext, tmp_path: Path) -> None:
    a = idn(21)
    ids = add_pensioners(data_ctx, [(a, "陈静")])
    do_import(data_ctx, "court_sentence", write_csv(tmp_path / "court.csv", SENTENCE_HEADER,
                                                    [[a, "陈静", "2025-06-01", "2027-05-31", ""]]))

    s = do_import(data_ctx, "prison_release", write_csv(tmp_path / "rel.csv", RELEASE_HEADER,
                                                         [[a, "陈静", "2026-03-20"]]))

    assert s.outcomes == {Outcome.RELEASED: 1}
    assert _pensioner(data_ctx, a).status == PensionerStatus.ACTIVE
    res = [x for x in _actions(data_ctx, ids[a]) if x.kind == ActionKind.RESUMPTION]
    assert [(x.effective_date, x.department) for x in res] == [(date(2026, 3, 20), "prison_release")]


def test_given_alive_evidence_when_imported_then_data_comparison_confirmation_with_cycle_validity(
        tmp_path: Path) -> None:
    ctx = AppContext(make_settings(tmp_path, confirmation_cycle_months=6))
    try:
        a = idn(23)
        ids = add_pensioners(ctx, [(a, "孙丽")])
        f = write_csv(tmp_path / "med.csv", MEDICAL_HEADER, [[a, "孙丽", "2026-03-31", "市第一医院"]])

        s = do_import(ctx, "medical_settlement", f)

        assert s.confirmations == 1
        with ctx.db.session() as sess:
            c = sess.scalars(select(SurvivalConfirmation).where(SurvivalConfirmation.pensioner_id == ids[a])).one()
            assert c.method == ConfirmationMethod.DATA_COMPARISON
            assert c.source == "medical_settlement"
            assert c.evidence_date == date(2026, 3, 31)
            assert c.valid_until == date(2026, 9, 30)  # six months on, clamped to September's 30 days
            assert c.evidence["type"] == "市第一医院"
    finally:
        ctx.close()


def test_given_id_match_with_other_name_when_imported_then_review_case_and_nothing_acted_on(
        data_ctx: AppContext, tmp_path: Path) -> None:
    a = idn(25)
    ids = add_pensioners(data_ctx, [(a, "周敏")])
    f = write_csv(tmp_path / "death.csv", DEATH_HEADER, [[a, "周明", "2026-03-01", ""]])

    s = do_import(data_ctx, "police_deregistration", f)

    assert s.outcomes == {Outcome.NAME_MISMATCH: 1}
    assert s.matches == 0
    assert _actions(data_ctx, ids[a]) == []
    assert _pensioner(data_ctx, a).status == PensionerStatus.ACTIVE
    with data_ctx.db.session() as sess:
        case = sess.scalars(select(ReviewCase)).one()
        assert (case.kind, case.reason, case.pensioner_id) == ("name_mismatch", "NAME_MISMATCH", ids[a])
        pl = load_payload(case.payload)
        assert isinstance(pl, NameMismatch)
        assert (pl.record.name, pl.record.department, pl.pensioner_name) == ("周明", "police_deregistration", "周敏")


def test_given_name_written_with_full_width_spaces_and_dot_variant_when_imported_then_it_matches(
        data_ctx: AppContext, tmp_path: Path) -> None:
    a, b = idn(27), idn(29)
    add_pensioners(data_ctx, [(a, "阿依古丽·买买提"), (b, "王 芳")])
    f = write_csv(tmp_path / "med.csv", MEDICAL_HEADER, [
        [a, "阿依古丽•买买提", "2026-03-02", ""],  # bullet instead of middle dot
        [b, "王芳", "2026-03-03", ""],  # no space
    ])

    s = do_import(data_ctx, "medical_settlement", f)

    assert s.matches == 2
    assert s.outcomes == {Outcome.ALIVE_EVIDENCE: 2}


def test_given_record_for_unknown_person_when_imported_then_kept_as_unmatched(
        data_ctx: AppContext, tmp_path: Path) -> None:
    stranger = idn(31, region="320102")
    f = write_csv(tmp_path / "death.csv", DEATH_HEADER, [[stranger, "某人", "2026-03-01", ""]])

    s = do_import(data_ctx, "police_deregistration", f)

    assert s.outcomes == {Outcome.UNMATCHED: 1}
    with data_ctx.db.session() as sess:
        rec = sess.scalars(select(DataRecord)).one()
        assert (rec.match, rec.pensioner_id, rec.id_number) == ("unmatched", None, stranger)


def test_given_pensioner_suspended_for_fraud_review_when_sentence_then_imprisonment_does_not_replace_it(
        data_ctx: AppContext, tmp_path: Path) -> None:
    a = idn(33)
    ids = add_pensioners(data_ctx, [(a, "钟馗")])
    with data_ctx.db.session() as sess:
        p = sess.get(Pensioner, ids[a])
        assert p is not None
        p.status, p.status_reason = PensionerStatus.SUSPENDED, "fraud review case 7"
    do_import(data_ctx, "court_sentence", write_csv(tmp_path / "court.csv", SENTENCE_HEADER,
                                                    [[a, "钟馗", "2026-01-15", "2027-01-14", ""]]))

    s = do_import(data_ctx, "prison_release", write_csv(tmp_path / "rel.csv", RELEASE_HEADER,
                                                         [[a, "钟馗", "2026-03-20"]]))

    assert s.outcomes == {Outcome.RELEASED: 1}
    p2 = _pensioner(data_ctx, a)
    assert (p2.status, p2.status_reason) == (PensionerStatus.SUSPENDED, "fraud review case 7")
    assert [x.kind for x in _actions(data_ctx, ids[a])] == [ActionKind.SUSPENSION, ActionKind.RESUMPTION]
