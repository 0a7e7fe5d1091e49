"""Column mappings: shipped examples, checks with clear messages, header resolution."""

from __future__ import annotations

from pathlib import Path

import pytest

from lifecert.config import Settings
from lifecert.services.datamatch.mapping import (
    MappingError,
    load_mapping,
    mapping_for,
    parse_mapping,
    seed_mappings,
    shipped_mappings_dir,
)
from lifecert.services.datamatch.reader import resolve_layout
from lifecert.storage.models_data import DataKind


def test_given_shipped_examples_when_loaded_then_every_kind_is_covered() -> None:
    maps = [load_mapping(p) for p in sorted(shipped_mappings_dir().glob("*.yaml"))]

    assert {m.kind for m in maps} == set(DataKind.ALL)
    assert {"police_deregistration", "civil_affairs_cremation", "court_sentence", "prison_release",
            "medical_settlement", "bus_card_check"} <= {m.department for m in maps}


def test_given_empty_data_dir_when_seeded_then_examples_copied_privately_and_edits_kept(tmp_path: Path) -> None:
    settings = Settings(env="test", data_dir=tmp_path / "d")
    d = seed_mappings(settings)
    edited = d / "bus_card_check.yaml"
    edited.write_text(edited.read_text(encoding="utf-8").replace("due_day: 20", "due_day: 25"), encoding="utf-8")

    seed_mappings(settings)

    assert oct(d.stat().st_mode & 0o777) == "0o700"
    assert oct(edited.stat().st_mode & 0o777) == "0o600"
    assert mapping_for(settings, "bus_card_check").due_day == 25


@pytest.mark.parametrize(("doc", "fragment"), [
    ({"department": "x1", "kind": "births", "columns": {"id_number": "a"}}, "kind 'births' is not one of"),
    ({"department": "x1", "kind": "death", "columns": {"id_number": "a", "name": "b"}},
     "kind death needs column(s) for death_date"),
    ({"department": "x1", "kind": "death", "columns": {"id_number": "a", "name": "b", "death_date": "c",
                                                       "salary": "d"}}, "field 'salary' is not known for kind death"),
    ({"department": "x1", "kind": "imprisonment", "columns": {"id_number": "a", "name": "b", "term_end": "c"}},
     "needs a column for term_start (sentences) or release_date"),
    ({"department": "Bad Name", "kind": "death", "columns": {}}, "department 'Bad Name' must be"),
    ({"department": "x1", "kind": "death", "cadence_months": 12,
      "columns": {"id_number": "a", "name": "b", "death_date": "c"}}, "cadence_months must be 1..6"),
    ({"department": "x1", "kind": "death", "date_formats": ["YYYY-MM-DD"],
      "columns": {"id_number": "a", "name": "b", "death_date": "c"}}, "date_formats must be a list of strftime"),
])
def test_given_faulty_mapping_when_parsed_then_message_says_what_to_fix(doc: dict[str, object], fragment: str) -> None:
    with pytest.raises(MappingError) as err:
        parse_mapping(doc, where="x1.yaml")
    assert fragment in err.value.message
    assert err.value.message.startswith("x1.yaml: ")


def test_given_yaml_syntax_error_when_loaded_then_file_named(tmp_path: Path) -> None:
    p = tmp_path / "broken.yaml"
    p.write_text("department: broken\ncolumns: [unclosed\n", encoding="utf-8")

    with pytest.raises(MappingError, match=r"broken\.yaml is not valid UTF-8 YAML"):
        load_mapping(p)


def test_given_mapping_file_for_other_department_when_loaded_then_refused(tmp_path: Path) -> None:
    p = tmp_path / "a_dept.yaml"
    p.write_text("department: b_dept\nkind: death\ncolumns: {id_number: a, name: b, death_date: c}\n", encoding="utf-8")

    with pytest.raises(MappingError, match="does not match the file name"):
        load_mapping(p)


def test_given_full_width_and_spaced_headers_when_resolved_then_found_and_optional_detail_may_be_absent() -> None:
    m = parse_mapping({"department": "x1", "kind": "death",
                       "columns": {"id_number": ["身份证号", "公民身份号码"], "name": "姓名", "death_date": "死亡日期",
                                   "detail": "备注"}})

    layout = resolve_layout(m, ["\ufeff序号", "姓 名", "公民身份号码", "死亡日期（ ）", "死亡日期"], "f.csv")

    assert dict(zip(layout.fields, layout.index, strict=True)) == {
        "id_number": 2, "name": 1, "death_date": 4, "detail": -1}
