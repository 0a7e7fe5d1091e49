"""Import mechanics: encodings, XLSX, duplicates, idempotent re-import, rejects, mapping errors, audit."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from lifecert.domain.errors import ErrorCode
from lifecert.services.audit import verify_chain
from lifecert.services.context import AppContext
from lifecert.services.datamatch import MappingError
from lifecert.storage.models import AuditEvent, SurvivalConfirmation
from lifecert.storage.models_data import DataImport, DataRecord, DataReject, Outcome
from tests.integration.test_data_support import (
    DEATH_HEADER,
    MEDICAL_HEADER,
    add_pensioners,
    do_import,
    idn,
    write_csv,
    write_xlsx,
)


def _count(ctx: AppContext, model: type) -> int:
    with ctx.db.session() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk"])
def test_given_chinese_extract_in_each_encoding_when_imported_then_names_match(
        data_ctx: AppContext, tmp_path: Path, encoding: str) -> None:
    people = [(idn(100 + i), n) for i, n in enumerate(["欧阳娜", "诸葛亮", "买买提·艾力"])]
    add_pensioners(data_ctx, people)
    f = write_csv(tmp_path / "m.csv", MEDICAL_HEADER, [[i, n, "2026-03-09", "卫生院"] for i, n in people],
                  encoding=encoding)

    s = do_import(data_ctx, "medical_settlement", f)

    expected_enc = {"utf-8": "utf-8", "utf-8-sig": "utf-8-sig", "gbk": "gb18030"}[encoding]
    assert (s.encoding, s.matches, s.rows_rejected) == (expected_enc, 3, 0)


def test_given_gbk_file_whose_first_megabyte_is_ascii_when_imported_then_read_as_gbk(
        data_ctx: AppContext, tmp_path: Path) -> None:
    from lifecert.services.datamatch import seed_mappings

    (seed_mappings(data_ctx.settings) / "ascii_dept.yaml").write_text(
        "kind: alive_evidence\ncolumns: {id_number: ID, name: NAME, evidence_date: DATE, detail: NOTE}\n")
    people = [(idn(200 + i), f"Li Lei {i}") for i in range(2)] + [(idn(299), "韩梅梅")]
    add_pensioners(data_ctx, people)
    rows = [[people[i % 2][0], people[i % 2][1], f"2026-03-{1 + i % 28:02d}", "x" * 40] for i in range(40_000)]
    rows.append([people[2][0], "韩梅梅", "2026-03-30", "医院"])  # the only non-ASCII bytes, at the very end
    f = write_csv(tmp_path / "late_gbk.csv", ["ID", "NAME", "DATE", "NOTE"], rows, encoding="gbk")
    assert f.stat().st_size > 1 << 20

    s = do_import(data_ctx, "ascii_dept", f)

    distinct = {(r[0], r[2]) for r in rows}
    assert s.encoding == "gb18030"
    assert s.matches == len(distinct)
    assert s.rows_duplicate == len(rows) - len(distinct)
    assert s.rows_rejected == 0


def test_given_xlsx_extract_with_date_cells_when_imported_then_rows_imported(
        data_ctx: AppContext, tmp_path: Path) -> None:
    a, b = idn(301), idn(303)
    add_pensioners(data_ctx, [(a, "吴倩"), (b, "郑爽")])
    f = write_xlsx(tmp_path / "d.xlsx", DEATH_HEADER, [
        [a, "吴倩", datetime(2026, 3, 3), "病故"],
        [b, "郑爽", "20260304", ""],
        [float(b), "郑爽", "2026-03-04", ""],  # the ID typed as a number: digits lost
    ])

    s = do_import(data_ctx, "police_deregistration", f)

    assert (s.file_format, s.rows_total, s.rows_valid) == ("xlsx", 3, 2)
    assert s.outcomes == {Outcome.DECEASED: 2}
    assert [(r.row_no, r.reason) for r in s.rejects] == [(4, "BAD_ID_NUMBER")]
    assert "as a number" in s.rejects[0].detail


def test_given_duplicate_rows_within_and_across_chunks_when_imported_then_reported_and_counted_once(
        data_ctx: AppContext, tmp_path: Path) -> None:
    people = [(idn(400 + i), f"员工{i}") for i in range(10)]
    add_pensioners(data_ctx, people)
    rows = [[i, n, "2026-03-01", ""] for i, n in people]
    rows += [rows[0], rows[9], rows[0]]  # rows 12, 13, 14 repeat rows 2, 11, 2
    f = write_csv(tmp_path / "m.csv", MEDICAL_HEADER, rows)

    s = do_import(data_ctx, "medical_settlement", f, chunk_size=4)

    assert (s.rows_total, s.rows_duplicate, s.confirmations) == (13, 3, 10)
    with data_ctx.db.session() as sess:
        dups = sess.execute(select(DataReject.row_no, DataReject.detail).where(DataReject.reason == "DUPLICATE_ROW")
                            .order_by(DataReject.row_no)).all()
    assert [(r, d) for r, d in dups] == [(12, "same record as row 2"), (13, "same record as row 11"),
                                         (14, "same record as row 2")]


def test_given_same_file_imported_twice_when_reimported_then_nothing_changes(
        data_ctx: AppContext, tmp_path: Path) -> None:
    a = idn(501)
    add_pensioners(data_ctx, [(a, "冯刚")])
    f = write_csv(tmp_path / "m.csv", MEDICAL_HEADER, [[a, "冯刚", "2026-03-01", ""], ["bad", "x", "2026-03-01", ""]])
    first = do_import(data_ctx, "medical_settlement", f)
    before = {m.__name__: _count(data_ctx, m) for m in (DataImport, DataRecord, DataReject, SurvivalConfirmation)}

    again = do_import(data_ctx, "medical_settlement", f)

    assert again.already_imported and not first.already_imported
    assert again.import_id == first.import_id
    assert (again.rows_total, again.rows_rejected, again.confirmations) == (2, 1, 1)
    after = {m.__name__: _count(data_ctx, m) for m in (DataImport, DataRecord, DataReject, SurvivalConfirmation)}
    assert after == before


def test_given_next_month_file_repeats_old_rows_when_imported_then_only_new_rows_act(
        data_ctx: AppContext, tmp_path: Path) -> None:
    a, b = idn(503), idn(505)
    add_pensioners(data_ctx, [(a, "褚红"), (b, "卫东")])
    do_import(data_ctx, "medical_settlement",
              write_csv(tmp_path / "m1.csv", MEDICAL_HEADER, [[a, "褚红", "2026-02-01", ""]]), period="2026-02")

    s = do_import(data_ctx, "medical_settlement", write_csv(tmp_path / "m2.csv", MEDICAL_HEADER, [
        [a, "褚红", "2026-02-01", ""], [b, "卫东", "2026-03-01", ""]]))

    assert (s.rows_seen_before, s.confirmations) == (1, 1)
    assert _count(data_ctx, SurvivalConfirmation) == 2


def test_given_invalid_rows_when_imported_then_each_reject_has_row_and_reason(
        data_ctx: AppContext, tmp_path: Path) -> None:
    a = idn(601)
    add_pensioners(data_ctx, [(a, "蒋琴")])
    bad_check = a[:-1] + ("0" if a[-1] != "0" else "1")
    f = write_csv(tmp_path / "d.csv", DEATH_HEADER, [
        [bad_check, "蒋琴", "2026-03-01", ""],
        [a, "", "2026-03-01", ""],
        [a, "蒋琴", "2026-13-45", ""],
        [a, "蒋琴", "2026-05-01", ""],  # after the file was received
        [a, "蒋琴", "", ""],
    ])

    s = do_import(data_ctx, "police_deregistration", f)

    assert [(r.row_no, r.reason) for r in s.rejects] == [
        (2, "BAD_ID_NUMBER"), (3, "MISSING_NAME"), (4, "BAD_DATE"), (5, "FUTURE_DATE"), (6, "MISSING_DATE")]
    assert "check digit" in s.rejects[0].detail
    assert s.rejects[0].id_masked.startswith(a[:6]) and a[6:14] not in s.rejects[0].id_masked
    assert s.outcomes == {}


def test_given_file_missing_a_mapped_column_when_imported_then_clear_error_and_nothing_written(
        data_ctx: AppContext, tmp_path: Path) -> None:
    f = write_csv(tmp_path / "d.csv", ["身份证号", "名字", "死亡日期"], [[idn(701), "某", "2026-03-01"]])

    with pytest.raises(MappingError) as err:
        do_import(data_ctx, "police_deregistration", f)

    assert err.value.code == ErrorCode.BAD_MAPPING
    assert "name (expected header 姓名)" in err.value.message
    assert "Headers found: 身份证号, 名字, 死亡日期" in err.value.message
    assert _count(data_ctx, DataImport) == 0


def test_given_unknown_department_when_imported_then_error_names_the_file_to_create(
        data_ctx: AppContext, tmp_path: Path) -> None:
    f = write_csv(tmp_path / "d.csv", DEATH_HEADER, [])

    with pytest.raises(MappingError) as err:
        do_import(data_ctx, "street_office_7", f)

    assert "street_office_7.yaml" in err.value.message
    assert "police_deregistration" in err.value.message  # the known departments are listed


def test_given_new_department_mapping_file_when_imported_then_no_code_change_needed(
        data_ctx: AppContext, tmp_path: Path) -> None:
    from lifecert.services.datamatch import seed_mappings

    d = seed_mappings(data_ctx.settings)
    (d / "telecom_realname.yaml").write_text(
        "department: telecom_realname\nkind: alive_evidence\ncadence_months: 2\nevidence_type: telecom\n"
        "header_row: 2\ncolumns:\n  id_number: ID\n  name: NAME\n  evidence_date: LAST_ACTIVE\n"
        "date_formats: ['%d.%m.%Y']\n", encoding="utf-8")
    a = idn(801)
    add_pensioners(data_ctx, [(a, "杨帆")])
    f = tmp_path / "t.csv"
    f.write_text(f"exported by telecom\nID\tNAME\tLAST_ACTIVE\n{a}\t杨帆\t28.03.2026\n", encoding="utf-8")

    s = do_import(data_ctx, "telecom_realname", f)

    assert (s.kind, s.confirmations) == ("alive_evidence", 1)
    with data_ctx.db.session() as sess:
        assert sess.scalars(select(SurvivalConfirmation.evidence)).one()["type"] == "telecom"


def test_given_kind_option_disagrees_with_mapping_when_imported_then_refused(
        data_ctx: AppContext, tmp_path: Path) -> None:
    f = write_csv(tmp_path / "d.csv", DEATH_HEADER, [])
    with pytest.raises(MappingError, match="delivers death extracts, not alive_evidence"):
        do_import(data_ctx, "police_deregistration", f, kind="alive_evidence")


def test_given_extract_after_due_day_when_imported_then_marked_late(data_ctx: AppContext, tmp_path: Path) -> None:
    f = write_csv(tmp_path / "d.csv", DEATH_HEADER, [[idn(901), "某", "2026-03-01", ""]])

    s = do_import(data_ctx, "police_deregistration", f, received_at=datetime(2026, 4, 11, tzinfo=UTC))

    assert (s.period, str(s.due_date), s.on_time) == ("2026-03", "2026-04-10", False)


def test_given_imports_when_done_then_each_is_audited_and_chain_verifies(data_ctx: AppContext, tmp_path: Path) -> None:
    f = write_csv(tmp_path / "d.csv", DEATH_HEADER, [[idn(903), "某", "2026-03-01", ""]])
    s = do_import(data_ctx, "police_deregistration", f)
    do_import(data_ctx, "police_deregistration", f)

    with data_ctx.db.session() as sess:
        evs = sess.execute(select(AuditEvent.action, AuditEvent.actor, AuditEvent.object_id)
                           .order_by(AuditEvent.id)).all()
        assert [tuple(e) for e in evs] == [("data.import", "cli:test", str(s.import_id)),
                                           ("data.import.repeat", "cli:test", str(s.import_id))]
        assert verify_chain(sess).ok


def test_given_file_broken_after_many_good_rows_when_imported_then_nothing_is_kept(
        data_ctx: AppContext, tmp_path: Path) -> None:
    from lifecert.services.datamatch import ExtractError

    people = [(idn(900 + i), f"甲{i}") for i in range(30)]
    add_pensioners(data_ctx, people)
    f = write_csv(tmp_path / "m.csv", MEDICAL_HEADER, [[i, n, "2026-03-01", ""] for i, n in people], encoding="gbk")
    f.write_bytes(f.read_bytes() + b"\x81\x20\xff,,,\n")  # undecodable bytes after the good rows

    with pytest.raises(ExtractError, match="neither UTF-8 nor GBK"):
        do_import(data_ctx, "medical_settlement", f, chunk_size=8)  # several chunks were already written

    assert [_count(data_ctx, m) for m in (DataImport, DataRecord, SurvivalConfirmation)] == [0, 0, 0]
