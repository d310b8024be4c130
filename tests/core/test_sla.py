"""SLA clock arithmetic on the shipped Chicago calendar: weekends, holidays, DST."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geo311.business_calendar import (
    BusinessCalendar,
    add_clock,
    clock_seconds,
    load_calendar,
    read_calendar,
)
from geo311.errors import InvalidRequest, NotFound
from geo311.model import Service
from geo311.sla import Target, classify, due_at, target_for
from tests.conftest import examples

CHI = ZoneInfo("America/Chicago")
CAL = load_calendar("chicago")
DAY = 86_400


def local(*args):
    return datetime(*args, tzinfo=CHI)


def test_chicago_holidays_2026_fall_on_their_rule_dates():
    h = CAL.holidays(2026)
    assert len(h) == 11
    assert h[date(2026, 1, 19)] == "Martin Luther King Jr. Day"
    assert h[date(2026, 5, 25)] == "Memorial Day"  # last Monday of May
    assert h[date(2026, 11, 26)] == "Thanksgiving Day"
    assert h[date(2026, 7, 3)] == "Independence Day"  # 4 July 2026 is a Saturday
    assert date(2026, 7, 4) not in h


def test_new_year_on_a_saturday_is_kept_the_friday_before_in_the_old_year():
    assert date(2028, 1, 1).weekday() == 5
    assert not CAL.is_business_day(date(2027, 12, 31))
    assert CAL.is_business_day(date(2027, 12, 30))


def test_juneteenth_only_from_2022():
    assert date(2021, 6, 18) not in CAL.holidays(2021) and date(2021, 6, 19) not in CAL.holidays(2021)
    assert CAL.holidays(2023)[date(2023, 6, 19)] == "Juneteenth"


def test_one_business_day_skips_the_weekend():
    due = add_clock(local(2026, 11, 20, 14, 0), DAY, "business_days", CAL)  # a Friday
    assert due.astimezone(CHI) == local(2026, 11, 23, 14, 0)


def test_business_days_skip_thanksgiving():
    start = local(2026, 11, 25, 9, 0)  # Wednesday before Thanksgiving
    assert add_clock(start, DAY, "business_days", CAL).astimezone(CHI) == local(2026, 11, 27, 9)
    assert add_clock(start, 3 * DAY, "business_days", CAL).astimezone(CHI) == local(2026, 12, 1, 9)


def test_observed_independence_day_is_skipped():
    due = add_clock(local(2026, 7, 2, 10, 0), DAY, "business_days", CAL)
    assert due.astimezone(CHI) == local(2026, 7, 6, 10, 0)


def test_spring_forward_keeps_the_local_time_and_is_an_hour_shorter():
    start = local(2026, 3, 6, 10, 0)  # Friday, CST; clocks go forward Sunday 8 March
    due = add_clock(start, DAY, "business_days", CAL)
    assert due.astimezone(CHI) == local(2026, 3, 9, 10, 0)
    assert due.astimezone(CHI).utcoffset() == timedelta(hours=-5)
    assert due - start == timedelta(hours=71)


def test_fall_back_keeps_the_local_time_and_is_an_hour_longer():
    start = local(2026, 10, 30, 10, 0)  # Friday, CDT; clocks go back Sunday 1 November
    due = add_clock(start, DAY, "business_days", CAL)
    assert due.astimezone(CHI) == local(2026, 11, 2, 10, 0)
    assert due.astimezone(CHI).utcoffset() == timedelta(hours=-6)
    assert due - start == timedelta(hours=73)


def test_clock_hours_are_real_hours_across_dst_but_days_are_wall_clock_days():
    start = local(2026, 3, 7, 12, 0)  # Saturday before spring forward
    assert add_clock(start, 24 * 3600, "hours", CAL) - start == timedelta(hours=24)
    assert add_clock(start, 24 * 3600, "hours", CAL).astimezone(CHI).hour == 13
    by_days = add_clock(start, DAY, "days", CAL)
    assert by_days.astimezone(CHI) == local(2026, 3, 8, 12, 0)
    assert by_days - start == timedelta(hours=23)


def test_request_on_a_weekend_starts_the_clock_on_monday_morning():
    due = add_clock(local(2026, 11, 21, 15, 0), DAY, "business_days", CAL)  # Saturday
    assert due.astimezone(CHI) == local(2026, 11, 24, 0, 0)


def test_business_hours_run_only_in_office_hours():
    start = local(2026, 11, 20, 16, 0)  # Friday, 30 minutes before closing
    due = add_clock(start, 2 * 3600, "business_hours", CAL)
    assert due.astimezone(CHI) == local(2026, 11, 23, 10, 0)
    assert clock_seconds(start, due, "business_hours", CAL) == pytest.approx(7200)
    evening = add_clock(local(2026, 11, 23, 20, 0), 3600, "business_hours", CAL)
    assert evening.astimezone(CHI) == local(2026, 11, 24, 9, 30)


def test_clock_seconds_over_a_holiday_week():
    a, b = local(2026, 11, 23, 0, 0), local(2026, 11, 30, 0, 0)
    assert clock_seconds(a, b, "business_days", CAL) == 4 * DAY  # Mon–Fri minus Thanksgiving
    assert clock_seconds(a, b, "business_hours", CAL) == 4 * 8 * 3600
    assert clock_seconds(b, a, "business_days", CAL) == 0


@settings(max_examples=examples(150), deadline=None)
@given(start=st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2028, 12, 1),
                          timezones=st.just(UTC)),
       amount=st.floats(min_value=60, max_value=30 * DAY),
       unit=st.sampled_from(["business_days", "business_hours", "hours"]))
def test_adding_then_measuring_gives_the_amount_back(start, amount, unit):
    due = add_clock(start, amount, unit, CAL)
    assert due >= start
    assert clock_seconds(start, due, unit, CAL) == pytest.approx(amount, abs=1e-3)


def test_pauses_push_the_due_time_by_the_business_time_they_cover():
    requested = local(2026, 11, 16, 9, 0)  # Monday
    target = Target(2, "business_days")
    assert due_at(requested, target, CAL).astimezone(CHI) == local(2026, 11, 18, 9, 0)
    over_weekend = [(local(2026, 11, 20, 12, 0), local(2026, 11, 23, 12, 0))]  # Fri–Mon
    assert due_at(requested, target, CAL, over_weekend).astimezone(CHI) == local(2026, 11, 19, 9)
    # A pause beginning before the request only counts from the request on.
    early = [(local(2026, 11, 13, 9, 0), local(2026, 11, 16, 21, 0))]
    assert due_at(requested, target, CAL, early).astimezone(CHI) == local(2026, 11, 18, 21, 0)
    assert due_at(requested, target, CAL, [(local(2026, 11, 17, 9, 0), None)]) is None


def test_classify_breached_at_risk_on_track():
    target = Target(4, "business_days")
    requested = local(2026, 11, 16, 9, 0)
    due = due_at(requested, target, CAL)
    now_ok, now_risk, now_late = (local(2026, 11, 17, 9), local(2026, 11, 19, 12),
                                  local(2026, 11, 23, 9))
    assert classify(1, "X", due, False, target, CAL, now_ok).state == "on_track"
    risky = classify(1, "X", due, False, target, CAL, now_risk)
    assert risky.state == "at_risk" and 0 < risky.share_left < 0.25
    late = classify(1, "X", due, False, target, CAL, now_late)
    assert late.state == "breached" and late.remaining_s < 0
    assert classify(1, "X", None, True, target, CAL, now_late).state == "paused"
    assert classify(1, "X", None, False, target, CAL, now_late).state == "none"


def test_targets_from_services_and_bad_values():
    assert target_for(Service("A", "a", sla_days=3)) == Target(3, "business_days")
    assert target_for(Service("A", "a", sla_hours=4, sla_clock="24x7")) == Target(4, "hours")
    assert target_for(Service("A", "a")) is None
    with pytest.raises(InvalidRequest, match="expected to be > 0"):
        Target(0, "business_days")
    with pytest.raises(InvalidRequest, match="unit"):
        Target(1, "fortnights")


def test_calendar_files_are_checked(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\ntimezone = "Mars/Olympus"\n')
    with pytest.raises(InvalidRequest, match="Mars/Olympus"):
        read_calendar(bad)
    with pytest.raises(NotFound, match="nowhere"):
        load_calendar("nowhere")
    seven = tmp_path / "seven.toml"
    seven.write_text('timezone = "America/Chicago"\nworkdays = ["mon","tue","wed","thu","fri",'
                     '"sat","sun"]\ndates = ["2026-12-26"]\n')
    cal = read_calendar(seven)
    assert isinstance(cal, BusinessCalendar)
    assert cal.is_business_day(date(2026, 11, 22)) and not cal.is_business_day(date(2026, 12, 26))
