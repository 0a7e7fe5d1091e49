"""Certification policy (lifecert.domain.policy): known answers on plain dates."""

from __future__ import annotations

from datetime import date

import pytest

from lifecert.domain.errors import ErrorCode
from lifecert.domain.policy import (
    BadPolicy,
    CertificationPolicy,
    DueState,
    DueWindow,
    PolicyKind,
    add_months,
    due_on,
    months_owed,
    next_due,
    parse_month,
    policy_for,
)

FIXED = CertificationPolicy("", PolicyKind.FIXED_CYCLE, date(2020, 1, 1), cycle_months=12, open_days=30, grace_days=30)
BDAY = CertificationPolicy("22", PolicyKind.BIRTHDAY_WINDOW, date(2020, 1, 1), open_days=30, grace_days=60,
                           early_credit_days=90)
REG = date(2020, 6, 1)


def bday_closes(birth_month: int, last: date | None, registered: date = REG) -> date:
    return next_due(BDAY, birth_month=birth_month, last_confirmation=last, registered=registered).closes


def test_given_month_ends_when_adding_months_then_clamped_to_last_day() -> None:
    assert add_months(date(2027, 1, 31), 1) == date(2027, 2, 28)
    assert add_months(date(2028, 1, 31), 1) == date(2028, 2, 29)
    assert add_months(date(2027, 8, 31), 1) == date(2027, 9, 30)
    assert add_months(date(2026, 12, 15), 1) == date(2027, 1, 15)
    assert add_months(date(2028, 2, 29), 12) == date(2029, 2, 28)


def test_given_fixed_cycle_when_confirmed_then_due_a_cycle_later_with_window_and_grace() -> None:
    w = next_due(FIXED, birth_month=7, last_confirmation=date(2026, 3, 31), registered=REG)
    assert w == DueWindow(date(2027, 3, 1), date(2027, 3, 31), date(2027, 4, 30))


def test_given_fixed_cycle_and_leap_day_confirmation_when_due_then_28_feb_next_year() -> None:
    w = next_due(FIXED, birth_month=7, last_confirmation=date(2028, 2, 29), registered=REG)
    assert w.closes == date(2029, 2, 28)


def test_given_fixed_cycle_never_confirmed_when_due_then_from_registration() -> None:
    w = next_due(FIXED, birth_month=7, last_confirmation=None, registered=date(2026, 5, 10))
    assert (w.closes, w.grace_until) == (date(2026, 5, 10), date(2026, 6, 9))
    assert w.state_on(date(2026, 6, 10)) is DueState.OVERDUE


def test_given_birthday_window_when_confirmed_in_window_then_next_year_window() -> None:
    # born in March; confirmed 2026-03-05 inside the 2026 window → the 2027 window
    w = next_due(BDAY, birth_month=3, last_confirmation=date(2026, 3, 5), registered=REG)
    assert w == DueWindow(date(2027, 1, 30), date(2027, 3, 31), date(2027, 5, 30))


def test_given_birthday_window_when_confirmed_shortly_before_window_then_it_counts_for_that_window() -> None:
    # 2027 window opens 2027-01-30; credit starts 90 days earlier, 2026-11-01
    early = next_due(BDAY, birth_month=3, last_confirmation=date(2026, 11, 1), registered=REG)
    assert early.closes == date(2028, 3, 31)
    before_credit = next_due(BDAY, birth_month=3, last_confirmation=date(2026, 10, 31), registered=REG)
    assert before_credit.closes == date(2027, 3, 31)


def test_given_january_birthday_when_window_opens_in_december_then_year_boundary_handled() -> None:
    w = next_due(BDAY, birth_month=1, last_confirmation=date(2026, 1, 20), registered=REG)
    assert w == DueWindow(date(2026, 12, 2), date(2027, 1, 31), date(2027, 4, 1))
    # confirmed in the December opening of the 2027 window: counts for 2027, next is 2028
    w2 = next_due(BDAY, birth_month=1, last_confirmation=date(2026, 12, 10), registered=REG)
    assert w2.closes == date(2028, 1, 31)


def test_given_february_birthday_when_window_in_leap_and_common_years_then_month_end_right() -> None:
    # born 29 Feb (the birth month is what counts): the window closes on the month's last day
    assert bday_closes(2, date(2027, 2, 10)) == date(2028, 2, 29)
    assert bday_closes(2, date(2028, 2, 10)) == date(2029, 2, 28)


def test_given_birthday_window_never_confirmed_when_registered_after_window_then_next_year() -> None:
    assert bday_closes(3, None, date(2026, 3, 31)) == date(2026, 3, 31)
    assert bday_closes(3, None, date(2026, 4, 1)) == date(2027, 3, 31)


def test_given_a_window_when_asking_state_then_each_phase_at_its_boundaries() -> None:
    w = DueWindow(date(2027, 1, 30), date(2027, 3, 31), date(2027, 5, 30))
    assert w.state_on(date(2027, 1, 29)) is DueState.NOT_YET
    assert w.state_on(date(2027, 1, 30)) is DueState.OPEN
    assert w.state_on(date(2027, 3, 31)) is DueState.OPEN
    assert w.state_on(date(2027, 4, 1)) is DueState.GRACE
    assert w.state_on(date(2027, 5, 30)) is DueState.GRACE
    assert w.state_on(date(2027, 5, 31)) is DueState.OVERDUE
    assert w.overlaps(date(2027, 5, 1), date(2027, 5, 31))
    assert not w.overlaps(date(2027, 6, 1), date(2027, 6, 30))


def test_given_policy_change_mid_cycle_when_computing_then_policy_in_force_on_the_day_applies() -> None:
    old = CertificationPolicy("2202", PolicyKind.FIXED_CYCLE, date(2020, 1, 1), cycle_months=12)
    new = CertificationPolicy("2202", PolicyKind.BIRTHDAY_WINDOW, date(2026, 9, 1))
    policies = [FIXED, old, new]
    last = date(2026, 2, 10)
    before = policy_for(policies, "220202", date(2026, 8, 31))
    after = policy_for(policies, "220202", date(2026, 9, 1))
    assert before is old and after is new
    assert next_due(before, birth_month=7, last_confirmation=last, registered=REG).closes == date(2027, 2, 10)
    # born in July: the July 2026 window closed before the new policy took effect, so it is not
    # owed (nobody turns overdue by a policy change); the first owed is July 2027
    w, state = due_on(after, date(2026, 9, 1), birth_month=7, last_confirmation=last, registered=REG)
    assert w.closes == date(2027, 7, 31) and state is DueState.NOT_YET
    # born in September: the 2026 window is open on the change day, and owed
    w, state = due_on(after, date(2026, 9, 1), birth_month=9, last_confirmation=last, registered=REG)
    assert w.closes == date(2026, 9, 30) and state is DueState.OPEN


def test_given_tighter_fixed_cycle_from_a_date_when_already_past_it_then_due_on_that_day() -> None:
    tight = CertificationPolicy("", PolicyKind.FIXED_CYCLE, date(2027, 1, 1), cycle_months=6, grace_days=30)
    w = next_due(tight, birth_month=1, last_confirmation=date(2026, 3, 1), registered=REG)
    assert w.closes == date(2027, 1, 1) and w.state_on(date(2027, 1, 1)) is DueState.OPEN


def test_given_nested_prefixes_when_choosing_policy_then_longest_prefix_wins_and_future_ignored() -> None:
    prov = CertificationPolicy("22", PolicyKind.BIRTHDAY_WINDOW, date(2020, 1, 1))
    county = CertificationPolicy("220202", PolicyKind.FIXED_CYCLE, date(2020, 1, 1), cycle_months=6)
    future = CertificationPolicy("220202", PolicyKind.FIXED_CYCLE, date(2030, 1, 1), cycle_months=3)
    ps = [FIXED, prov, county, future]
    assert policy_for(ps, "220202", date(2027, 1, 1)) is county
    assert policy_for(ps, "220203", date(2027, 1, 1)) is prov
    assert policy_for(ps, "110101", date(2027, 1, 1)) is FIXED
    assert policy_for([prov], "110101", date(2027, 1, 1)) is None


@pytest.mark.parametrize(
    "kw",
    [
        {"region_prefix": "2"},
        {"region_prefix": "22a2"},
        {"cycle_months": 0},
        {"cycle_months": 61},
        {"grace_days": -1},
        {"open_days": 400},
        {"kind": "weekly"},
    ],
)
def test_given_impossible_numbers_when_building_policy_then_typed_error(kw: dict[str, object]) -> None:
    base: dict[str, object] = {"region_prefix": "", "kind": PolicyKind.FIXED_CYCLE, "effective_from": date(2026, 1, 1)}
    with pytest.raises(BadPolicy) as e:
        CertificationPolicy(**(base | kw))  # type: ignore[arg-type]
    assert e.value.code is ErrorCode.BAD_REQUEST


def test_given_overlapping_yearly_windows_when_building_policy_then_refused() -> None:
    with pytest.raises(BadPolicy):
        CertificationPolicy("", PolicyKind.BIRTHDAY_WINDOW, date(2026, 1, 1), open_days=200, early_credit_days=200)


def test_given_bad_birth_month_when_computing_then_typed_error() -> None:
    with pytest.raises(BadPolicy):
        next_due(FIXED, birth_month=13, last_confirmation=None, registered=REG)


def test_given_month_texts_when_parsing_then_only_yyyy_mm_accepted() -> None:
    assert parse_month("2027-03") == (2027, 3)
    for bad in ("2027-3", "2027-13", "27-03", "2027/03", "", "２０２７-03"):
        with pytest.raises(BadPolicy):
            parse_month(bad)


def test_given_suspension_and_resumption_months_when_computing_owed_then_months_between() -> None:
    assert months_owed(date(2027, 5, 15), date(2027, 8, 3)) == 3  # May, June, July
    assert months_owed(date(2027, 11, 30), date(2028, 2, 1)) == 3  # across the year end
    assert months_owed(date(2027, 5, 1), date(2027, 5, 31)) == 0
    assert months_owed(date(2027, 5, 1), date(2027, 4, 1)) == 0


def test_given_leap_day_birth_when_computing_age_then_birthday_is_1_march_in_common_years() -> None:
    from lifecert.domain.policy import age_on

    assert age_on(date(1944, 2, 29), date(2027, 2, 28)) == 82
    assert age_on(date(1944, 2, 29), date(2027, 3, 1)) == 83
    assert age_on(date(1944, 2, 29), date(2028, 2, 29)) == 84


def test_given_each_situation_when_choosing_channel_then_first_matching_rule() -> None:
    from lifecert.domain.policy import Channel, channel_for

    def ch(template: bool = True, phone: bool = True, passive: bool = False, age: int = 65) -> Channel:
        return channel_for(has_template=template, has_phone=phone, passive=passive, age=age)

    assert ch() is Channel.SELF_SERVICE
    assert ch(template=False) is Channel.HOME_VISIT
    assert ch(age=90, passive=True) is Channel.HOME_VISIT
    assert ch(passive=True, phone=False) is Channel.DATA_COMPARISON
    assert ch(phone=False) is Channel.ASSISTED
    assert ch(age=80) is Channel.ASSISTED
    assert ch(age=79) is Channel.SELF_SERVICE
