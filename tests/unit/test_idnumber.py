from datetime import date

import pytest

from lifecert.domain.errors import BadIdNumber, ErrorCode
from lifecert.domain.idnumber import check_char, make_id_number, mask_id_number, parse_id_number


def test_given_a_valid_number_when_parsed_then_sex_birth_and_region_are_derived() -> None:
    # 11010519491231002X is the standard GB 11643 example (female, born 1949-12-31).
    idn = parse_id_number("11010519491231002X")
    assert idn.region_code == "110105"
    assert idn.birth_date == date(1949, 12, 31)
    assert idn.sex == "F"


def test_given_lowercase_x_or_fullwidth_digits_when_parsed_then_normalised() -> None:
    assert parse_id_number("11010519491231002x").value == "11010519491231002X"
    assert parse_id_number("１１０１０５１９４９１２３１００２Ｘ").value == "11010519491231002X"


@pytest.mark.parametrize(
    "raw",
    ["110105194912310021", "11010519491231002", "1101051949123100299", "11010519491331002X", "ABCDEFGHIJKLMNOPQR", ""],
)
def test_given_a_bad_number_when_parsed_then_bad_id_number(raw: str) -> None:
    with pytest.raises(BadIdNumber) as ei:
        parse_id_number(raw)
    assert ei.value.code == ErrorCode.BAD_ID_NUMBER


def test_given_a_future_birth_date_when_parsed_then_rejected() -> None:
    with pytest.raises(BadIdNumber):
        parse_id_number(make_id_number("110105", date(2030, 1, 1), 11), today=date(2026, 1, 1))


def test_given_any_17_digits_when_check_char_computed_then_the_number_validates() -> None:
    for seq in range(0, 1000, 37):
        n = make_id_number("220202", date(1950, 3, 4), seq)
        assert parse_id_number(n).value == n
        assert n[17] == check_char(n[:17])
        assert parse_id_number(n).sex == ("M" if seq % 2 else "F")


def test_masking_keeps_region_and_last_four() -> None:
    assert mask_id_number("22020219500304123X") == "220202********123X"
