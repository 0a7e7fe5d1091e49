"""The enrolling rules (services.enrollment_writer.decide) on plain data: no database, no photos."""

from __future__ import annotations

import pytest

from lifecert.domain.enrollment import ROW_ERRORS, ItemOutcome, item_reason
from lifecert.domain.errors import ErrorCode
from lifecert.services.enrollment_writer import OnFile, Thresholds, decide

T = Thresholds(same_face=0.93, duplicate=0.96)
NOBODY = (None, -1.0)


def test_given_a_new_id_number_when_decided_then_enrolled() -> None:
    assert decide(ItemOutcome.ENROLLED, "张三", None, NOBODY, T) == (ItemOutcome.ENROLLED, "")


def test_given_a_face_of_another_pensioner_when_decided_then_duplicate_face_unless_staff_accept() -> None:
    reason, detail = decide(ItemOutcome.ENROLLED, "张三", None, (7, 0.97), T)
    assert reason == ErrorCode.DUPLICATE_FACE and "pensioner #7" in detail
    assert decide(ItemOutcome.ENROLLED, "张三", None, (-4, 0.99), T)[1].startswith("matches row 4 of this run")
    assert decide(ItemOutcome.ENROLLED, "张三", None, (7, 0.959), T)[0] == ItemOutcome.ENROLLED
    assert decide(ItemOutcome.ENROLLED, "张三", None, (7, 0.97), T, accept_duplicate=True)[0] == ItemOutcome.ENROLLED


def test_given_the_same_face_on_file_when_decided_then_replaced_and_a_corrected_name_is_named() -> None:
    reason, detail = decide(ItemOutcome.ENROLLED, "张 三", OnFile("张三", 0.95), NOBODY, T)
    assert reason == ItemOutcome.REPLACED and "→" not in detail  # spacing is not a name change
    reason, detail = decide(ItemOutcome.ENROLLED, "张山", OnFile("张三", 0.95), NOBODY, T)
    assert reason == ItemOutcome.REPLACED and "'张三' → '张山'" in detail


@pytest.mark.parametrize("name", ["李四", "张三", ""])
def test_given_another_face_on_file_when_decided_then_id_collision_whatever_the_name(name: str) -> None:
    reason, detail = decide(ItemOutcome.ENROLLED, name, OnFile("张三", 0.41), NOBODY, T)
    assert reason == ErrorCode.ID_COLLISION and "'张三'" in detail and "0.410 < 0.930" in detail
    assert ("'李四'" in detail) == (name == "李四")
    assert decide(ItemOutcome.ENROLLED, name, OnFile("张三", 0.41), NOBODY, T, accept_new_face=True)[0] == (
        ItemOutcome.REPLACED)


def test_given_a_registered_person_without_a_face_when_decided_then_name_decides() -> None:
    assert decide(ItemOutcome.ENROLLED, "张三", OnFile("张三", None), NOBODY, T)[0] == ItemOutcome.ENROLLED
    assert decide(ItemOutcome.ENROLLED, "", OnFile("张三", None), NOBODY, T)[0] == ItemOutcome.ENROLLED
    assert decide(ItemOutcome.ENROLLED, "李四", OnFile("张三", None), NOBODY, T)[0] == ErrorCode.ID_COLLISION


def test_given_a_rejected_photo_when_decided_then_its_reason_stands() -> None:
    assert decide(ErrorCode.BLURRY, "李四", OnFile("张三", None), (7, 0.99), T) == (ErrorCode.BLURRY, "")


def test_given_every_row_reason_when_parsed_then_it_is_the_catalogue_code_and_nothing_else_parses() -> None:
    for code in ROW_ERRORS:
        assert item_reason(str(code)) is code
    assert item_reason("REPLACED") is ItemOutcome.REPLACED
    for bad in ("LOW_MATCH", "nonsense"):
        with pytest.raises(ValueError):
            item_reason(bad)


def test_given_the_readme_when_read_then_it_lists_every_row_reason() -> None:
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    missing = [str(r) for r in (*ItemOutcome, *ROW_ERRORS) if f"`{r}`" not in readme]
    assert missing == []
