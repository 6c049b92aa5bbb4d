"""Working-time calendars: 24x7, business hours, holidays, substituted working days, DST."""

from __future__ import annotations

import itertools
import time
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import holidays
import pytest

from slatrail.domain.calendars import AlwaysCalendar, BusinessCalendar, Calendar, CalendarError

SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
WEEK = ["mon", "tue", "wed", "thu", "fri"]
EVERY_DAY = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
HOUR = 3600.0


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=UTC)


def cn_business(**overrides: object) -> BusinessCalendar:
    options: dict[str, object] = {
        "timezone": "Asia/Shanghai",
        "weekdays": WEEK,
        "hours": ["09:00-17:30"],
        "holidays_country": "CN",
    }
    options.update(overrides)
    return BusinessCalendar("cn-business", **options)  # type: ignore[arg-type]


def every_day(zone: str, hours: list[str]) -> BusinessCalendar:
    return BusinessCalendar("every-day", timezone=zone, weekdays=EVERY_DAY, hours=hours)


def hours_of(calendar: BusinessCalendar, day: date) -> float:
    return sum((b - a).total_seconds() for a, b in calendar.day_intervals(day)) / HOUR


# -- 24x7 ---------------------------------------------------------------------------------------


def test_always_calendar_counts_every_second_between_two_instants() -> None:
    always = AlwaysCalendar("24x7")
    assert always.kind == "24x7"
    assert always.counted_seconds(utc(2026, 1, 1), utc(2026, 1, 2, 1)) == 25 * HOUR


def test_always_calendar_counts_nothing_when_end_is_not_after_start() -> None:
    always = AlwaysCalendar("24x7")
    assert always.counted_seconds(utc(2026, 1, 2), utc(2026, 1, 1)) == 0.0
    assert always.counted_seconds(utc(2026, 1, 2), utc(2026, 1, 2)) == 0.0
    assert list(always.working_intervals(utc(2026, 1, 2), utc(2026, 1, 1))) == []


def test_always_calendar_yields_one_utc_interval_clipped_to_the_window() -> None:
    always = AlwaysCalendar("24x7")
    start = datetime(2026, 3, 1, 9, tzinfo=SHANGHAI)
    intervals = list(always.working_intervals(start, start + timedelta(days=40)))
    assert intervals == [(utc(2026, 3, 1, 1), utc(2026, 4, 10, 1))]
    assert all(a.tzinfo is UTC and b.tzinfo is UTC for a, b in intervals)


def test_always_calendar_unbounded_iteration_yields_one_interval_up_to_datetime_max() -> None:
    always = AlwaysCalendar("24x7")
    intervals = list(always.working_intervals(utc(2026, 1, 1), None))
    assert intervals == [(utc(2026, 1, 1), datetime.max.replace(tzinfo=UTC))]


def test_always_calendar_instant_after_adds_the_seconds_and_zero_returns_start() -> None:
    always = AlwaysCalendar("24x7")
    start = datetime(2026, 5, 1, 12, tzinfo=BERLIN)
    assert always.instant_after(start, 15 * 60) == utc(2026, 5, 1, 10, 15)
    assert always.instant_after(start, 0) == start
    assert always.instant_after(start, 0.5) == utc(2026, 5, 1, 10, 0, 0, 500_000)
    assert always.instant_after(start, float("inf")) is None


def test_both_calendar_kinds_are_calendars_with_a_name_and_kind() -> None:
    always = AlwaysCalendar("always")
    business = cn_business()
    assert isinstance(always, Calendar) and isinstance(business, Calendar)
    assert (always.name, always.kind) == ("always", "24x7")
    assert (business.name, business.kind) == ("cn-business", "business")


# -- business hours -------------------------------------------------------------------------------


def test_business_day_with_a_lunch_break_counts_both_ranges_and_yields_two_intervals() -> None:
    calendar = BusinessCalendar(
        "lunch", timezone="Asia/Shanghai", weekdays=WEEK, hours=["09:00-12:00", "13:00-17:30"]
    )
    monday = date(2026, 3, 2)
    assert calendar.day_intervals(monday) == (
        (utc(2026, 3, 2, 1), utc(2026, 3, 2, 4)),
        (utc(2026, 3, 2, 5), utc(2026, 3, 2, 9, 30)),
    )
    day_start = datetime(2026, 3, 2, tzinfo=SHANGHAI)
    assert calendar.counted_seconds(day_start, day_start + timedelta(days=1)) == 7.5 * HOUR
    assert len(list(calendar.working_intervals(day_start, day_start + timedelta(days=1)))) == 2


def test_business_day_with_adjacent_ranges_yields_a_single_merged_interval() -> None:
    calendar = BusinessCalendar(
        "adjacent", timezone="Asia/Shanghai", weekdays=WEEK, hours=["09:00-12:00", "12:00-17:30"]
    )
    assert calendar.day_intervals(date(2026, 3, 2)) == (
        (utc(2026, 3, 2, 1), utc(2026, 3, 2, 9, 30)),
    )
    start = datetime(2026, 3, 2, tzinfo=SHANGHAI)
    assert list(calendar.working_intervals(start, start + timedelta(days=1))) == [
        (utc(2026, 3, 2, 1), utc(2026, 3, 2, 9, 30))
    ]


def test_working_intervals_merge_across_local_midnight() -> None:
    calendar = every_day("Europe/Berlin", ["00:00-02:00", "22:00-24:00"])
    start = datetime(2026, 6, 1, 12, tzinfo=BERLIN)
    intervals = list(calendar.working_intervals(start, start + timedelta(days=2)))
    assert intervals == [
        (utc(2026, 6, 1, 20), utc(2026, 6, 2, 0)),
        (utc(2026, 6, 2, 20), utc(2026, 6, 3, 0)),
    ]


def test_working_intervals_are_clipped_to_the_requested_window() -> None:
    calendar = cn_business()
    start = datetime(2026, 3, 2, 10, tzinfo=SHANGHAI)
    end = datetime(2026, 3, 3, 11, tzinfo=SHANGHAI)
    assert list(calendar.working_intervals(start, end)) == [
        (utc(2026, 3, 2, 2), utc(2026, 3, 2, 9, 30)),
        (utc(2026, 3, 3, 1), utc(2026, 3, 3, 3)),
    ]
    assert calendar.counted_seconds(start, end) == 9.5 * HOUR


def test_weekend_days_are_not_working_days_of_a_monday_to_friday_calendar() -> None:
    calendar = BusinessCalendar(
        "berlin", timezone="Europe/Berlin", weekdays=WEEK, hours=["09:00-17:30"]
    )
    assert not calendar.is_working_day(date(2026, 6, 6))  # Saturday
    assert not calendar.is_working_day(date(2026, 6, 7))  # Sunday
    assert calendar.day_intervals(date(2026, 6, 6)) == ()
    friday_evening = datetime(2026, 6, 5, 17, 30, tzinfo=BERLIN)
    monday_morning = datetime(2026, 6, 8, 9, tzinfo=BERLIN)
    assert calendar.counted_seconds(friday_evening, monday_morning) == 0.0


def test_counted_seconds_over_a_plain_week_is_five_business_days() -> None:
    calendar = BusinessCalendar(
        "berlin", timezone="Europe/Berlin", weekdays=WEEK, hours=["09:00-17:30"]
    )
    monday = datetime(2026, 6, 8, tzinfo=BERLIN)
    assert calendar.counted_seconds(monday, monday + timedelta(days=7)) == 5 * 8.5 * HOUR


def test_counted_seconds_does_not_depend_on_the_time_zone_of_the_arguments() -> None:
    calendar = cn_business()
    start = datetime(2026, 3, 2, 10, tzinfo=SHANGHAI)
    end = datetime(2026, 3, 20, 15, tzinfo=SHANGHAI)
    expected = calendar.counted_seconds(start, end)
    assert calendar.counted_seconds(start.astimezone(NEW_YORK), end.astimezone(BERLIN)) == expected
    assert calendar.counted_seconds(start.astimezone(UTC), end.astimezone(UTC)) == expected


# -- holidays -------------------------------------------------------------------------------------


def test_cn_national_day_is_not_a_working_day() -> None:
    calendar = cn_business()
    assert not calendar.is_working_day(date(2026, 10, 1))  # Thursday, National Day
    assert calendar.day_intervals(date(2026, 10, 1)) == ()
    golden_week = datetime(2026, 10, 1, tzinfo=SHANGHAI)
    assert calendar.counted_seconds(golden_week, golden_week + timedelta(days=7)) == 0.0


def test_cn_substituted_weekend_working_days_are_working_days() -> None:
    calendar = cn_business()
    # 2026 调休 as reported by the installed `holidays` package (HolidayBase.weekend_workdays).
    for saturday_or_sunday in (
        date(2026, 1, 4),
        date(2026, 2, 14),
        date(2026, 2, 28),
        date(2026, 9, 20),
        date(2026, 10, 10),
    ):
        assert saturday_or_sunday.weekday() >= 5
        assert calendar.is_working_day(saturday_or_sunday), saturday_or_sunday
        assert hours_of(calendar, saturday_or_sunday) == 8.5
    # The Sunday starting the 2026 Spring Festival break stays off.
    assert not calendar.is_working_day(date(2026, 2, 15))


def test_cn_working_days_agree_with_the_holidays_library_for_2025_and_2026() -> None:
    calendar = cn_business()
    library = holidays.country_holidays("CN", years=[2025, 2026])
    day = date(2025, 1, 1)
    while day.year < 2027:
        assert calendar.is_working_day(day) == library.is_working_day(day), day
        day += timedelta(days=1)


def test_substituted_working_days_count_only_when_a_holidays_country_is_set() -> None:
    calendar = cn_business(holidays_country=None)
    assert not calendar.is_working_day(date(2026, 2, 14))
    assert calendar.is_working_day(date(2026, 10, 1))


def test_extra_holidays_are_days_off() -> None:
    calendar = cn_business(extra_holidays=[date(2026, 12, 31)])
    assert not calendar.is_working_day(date(2026, 12, 31))
    assert calendar.day_intervals(date(2026, 12, 31)) == ()
    assert calendar.is_working_day(date(2026, 12, 30))


def test_extra_workdays_win_over_weekends_public_holidays_and_extra_holidays() -> None:
    calendar = cn_business(
        extra_workdays=[date(2026, 3, 7), date(2026, 10, 1), date(2026, 12, 31)],
        extra_holidays=[date(2026, 12, 31)],
    )
    assert calendar.is_working_day(date(2026, 3, 7))  # Saturday
    assert calendar.is_working_day(date(2026, 10, 1))  # National Day
    assert calendar.is_working_day(date(2026, 12, 31))  # in both lists
    assert hours_of(calendar, date(2026, 10, 1)) == 8.5


def test_extra_holidays_win_over_substituted_working_days() -> None:
    calendar = cn_business(extra_holidays=[date(2026, 2, 14)])
    assert not calendar.is_working_day(date(2026, 2, 14))


# -- DST ------------------------------------------------------------------------------------------


def test_business_day_in_berlin_spring_forward_counts_five_hours_for_midnight_to_six() -> None:
    calendar = every_day("Europe/Berlin", ["00:00-06:00"])
    assert calendar.day_intervals(date(2026, 3, 29)) == (
        (utc(2026, 3, 28, 23), utc(2026, 3, 29, 4)),
    )
    start = datetime(2026, 3, 29, tzinfo=BERLIN)
    assert calendar.counted_seconds(start, start + timedelta(hours=12)) == 5 * HOUR


def test_business_day_in_berlin_fall_back_counts_seven_hours_for_midnight_to_six() -> None:
    calendar = every_day("Europe/Berlin", ["00:00-06:00"])
    assert calendar.day_intervals(date(2026, 10, 25)) == (
        (utc(2026, 10, 24, 22), utc(2026, 10, 25, 5)),
    )
    assert hours_of(calendar, date(2026, 10, 24)) == 6
    assert hours_of(calendar, date(2026, 10, 26)) == 6


def test_business_day_in_new_york_spring_forward_counts_five_hours_for_midnight_to_six() -> None:
    calendar = every_day("America/New_York", ["00:00-06:00"])
    assert calendar.day_intervals(date(2026, 3, 8)) == ((utc(2026, 3, 8, 5), utc(2026, 3, 8, 10)),)


def test_business_day_in_new_york_fall_back_counts_seven_hours_for_midnight_to_six() -> None:
    calendar = every_day("America/New_York", ["00:00-06:00"])
    assert calendar.day_intervals(date(2026, 11, 1)) == (
        (utc(2026, 11, 1, 4), utc(2026, 11, 1, 11)),
    )


def test_new_york_office_hours_follow_the_local_clock_across_the_dst_change() -> None:
    calendar = BusinessCalendar(
        "ny", timezone="America/New_York", weekdays=WEEK, hours=["09:00-17:00"]
    )
    assert calendar.day_intervals(date(2026, 3, 6)) == ((utc(2026, 3, 6, 14), utc(2026, 3, 6, 22)),)
    assert calendar.day_intervals(date(2026, 3, 9)) == ((utc(2026, 3, 9, 13), utc(2026, 3, 9, 21)),)
    assert calendar.day_intervals(date(2026, 11, 2)) == (
        (utc(2026, 11, 2, 14), utc(2026, 11, 2, 22)),
    )


def test_range_ending_at_24_00_ends_at_the_next_local_midnight_on_dst_days() -> None:
    calendar = every_day("Europe/Berlin", ["18:00-24:00"])
    assert calendar.day_intervals(date(2026, 3, 28)) == (
        (utc(2026, 3, 28, 17), utc(2026, 3, 28, 23)),
    )
    assert calendar.day_intervals(date(2026, 10, 24)) == (
        (utc(2026, 10, 24, 16), utc(2026, 10, 24, 22)),
    )


def test_range_starting_inside_the_spring_forward_gap_starts_at_the_transition() -> None:
    calendar = every_day("America/New_York", ["02:30-03:30"])
    # 02:00 EST jumps to 03:00 EDT (07:00 UTC): only 03:00-03:30 EDT exists on the wall clock.
    assert calendar.day_intervals(date(2026, 3, 8)) == (
        (utc(2026, 3, 8, 7), utc(2026, 3, 8, 7, 30)),
    )


def test_range_entirely_inside_the_spring_forward_gap_is_empty() -> None:
    calendar = every_day("Europe/Berlin", ["02:15-02:45"])
    assert calendar.day_intervals(date(2026, 3, 29)) == ()


def test_range_inside_the_repeated_fall_back_hour_counts_both_occurrences() -> None:
    calendar = every_day("America/New_York", ["01:15-01:45"])
    assert calendar.day_intervals(date(2026, 11, 1)) == (
        (utc(2026, 11, 1, 5, 15), utc(2026, 11, 1, 5, 45)),
        (utc(2026, 11, 1, 6, 15), utc(2026, 11, 1, 6, 45)),
    )


# -- instant_after --------------------------------------------------------------------------------


def test_instant_after_reaching_the_target_exactly_at_closing_time_returns_closing_time() -> None:
    calendar = cn_business()
    start = datetime(2026, 3, 2, 13, tzinfo=SHANGHAI)
    assert calendar.instant_after(start, 4.5 * HOUR) == datetime(
        2026, 3, 2, 17, 30, tzinfo=SHANGHAI
    )


def test_instant_after_one_second_past_closing_time_continues_next_morning() -> None:
    calendar = cn_business()
    start = datetime(2026, 3, 2, 13, tzinfo=SHANGHAI)
    assert calendar.instant_after(start, 4.5 * HOUR + 1) == datetime(
        2026, 3, 3, 9, 0, 1, tzinfo=SHANGHAI
    )


def test_instant_after_starting_outside_hours_begins_at_the_next_opening() -> None:
    calendar = cn_business()
    evening = datetime(2026, 3, 2, 20, tzinfo=SHANGHAI)
    assert calendar.instant_after(evening, 60) == datetime(2026, 3, 3, 9, 1, tzinfo=SHANGHAI)


def test_instant_after_zero_seconds_returns_start_even_outside_working_time() -> None:
    calendar = cn_business()
    saturday = datetime(2026, 3, 7, 20, tzinfo=SHANGHAI)
    assert calendar.instant_after(saturday, 0) == saturday


def test_instant_after_a_full_day_lands_on_closing_time_not_on_the_next_opening() -> None:
    calendar = cn_business()
    opening = datetime(2026, 3, 2, 9, tzinfo=SHANGHAI)
    assert calendar.instant_after(opening, 8.5 * HOUR) == datetime(
        2026, 3, 2, 17, 30, tzinfo=SHANGHAI
    )


def test_instant_after_rolls_over_a_weekend() -> None:
    calendar = BusinessCalendar(
        "berlin", timezone="Europe/Berlin", weekdays=WEEK, hours=["09:00-17:30"]
    )
    friday = datetime(2026, 3, 27, 16, 30, tzinfo=BERLIN)  # the weekend includes the DST change
    assert calendar.instant_after(friday, 2 * HOUR) == datetime(2026, 3, 30, 10, tzinfo=BERLIN)


def test_instant_after_rolls_over_the_cn_national_day_holidays() -> None:
    calendar = cn_business()
    wednesday = datetime(2026, 9, 30, 17, tzinfo=SHANGHAI)
    assert calendar.instant_after(wednesday, HOUR) == datetime(2026, 10, 8, 9, 30, tzinfo=SHANGHAI)


def test_instant_after_uses_a_cn_substituted_saturday() -> None:
    calendar = cn_business()
    friday = datetime(2026, 2, 13, 17, tzinfo=SHANGHAI)
    assert calendar.instant_after(friday, HOUR) == datetime(2026, 2, 14, 9, 30, tzinfo=SHANGHAI)


def test_instant_after_is_consistent_with_counted_seconds() -> None:
    calendar = cn_business()
    start = datetime(2026, 1, 28, 11, 17, tzinfo=SHANGHAI)
    for seconds in (0.0, 1.0, 0.25, 3600.0, 42.5 * HOUR, 100 * HOUR):
        due = calendar.instant_after(start, seconds)
        assert due is not None
        assert calendar.counted_seconds(start, due) == seconds
        assert calendar.counted_seconds(start, due - timedelta(microseconds=1)) < seconds or (
            seconds == 0
        )


def test_instant_after_rejects_negative_seconds() -> None:
    with pytest.raises(ValueError, match="seconds must be >= 0"):
        cn_business().instant_after(utc(2026, 3, 2), -1)
    with pytest.raises(ValueError, match="seconds must be >= 0"):
        AlwaysCalendar("24x7").instant_after(utc(2026, 3, 2), -1)


def test_naive_datetimes_are_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        cn_business().counted_seconds(datetime(2026, 3, 2), utc(2026, 3, 3))
    with pytest.raises(ValueError, match="timezone-aware"):
        AlwaysCalendar("24x7").working_intervals(datetime(2026, 3, 2), None)


# -- unbounded iteration --------------------------------------------------------------------------


def test_unbounded_iteration_is_lazy_and_endless_for_a_business_calendar() -> None:
    calendar = cn_business()
    start = datetime(2026, 9, 30, 12, tzinfo=SHANGHAI)
    first = list(itertools.islice(calendar.working_intervals(start, None), 3))
    assert first == [
        (utc(2026, 9, 30, 4), utc(2026, 9, 30, 9, 30)),
        (utc(2026, 10, 8, 1), utc(2026, 10, 8, 9, 30)),
        (utc(2026, 10, 9, 1), utc(2026, 10, 9, 9, 30)),
    ]
    far = list(itertools.islice(calendar.working_intervals(start, None), 2500))
    assert len(far) == 2500


def test_unbounded_iteration_stops_by_itself_for_a_calendar_with_no_working_days() -> None:
    calendar = BusinessCalendar(
        "never", timezone="Europe/Berlin", weekdays=[], hours=["09:00-17:00"]
    )
    started = time.perf_counter()
    assert list(calendar.working_intervals(utc(2026, 1, 1), None)) == []
    assert calendar.instant_after(utc(2026, 1, 1), 60) is None
    assert calendar.counted_seconds(utc(2026, 1, 1), utc(2036, 1, 1)) == 0.0
    assert time.perf_counter() - started < 5


def test_unbounded_iteration_stops_for_a_calendar_with_no_hours() -> None:
    calendar = BusinessCalendar("no-hours", timezone="UTC", weekdays=WEEK, hours=[])
    assert list(calendar.working_intervals(utc(2026, 1, 1), None)) == []
    assert calendar.instant_after(utc(2026, 1, 1), 1) is None


def test_unbounded_iteration_of_a_weekend_only_calendar_finds_only_substituted_days() -> None:
    calendar = cn_business(weekdays=[], hours=["09:00-10:00"])
    days = [
        a.astimezone(SHANGHAI).date() for a, _ in calendar.working_intervals(utc(2026, 1, 1), None)
    ]
    assert days == [
        date(2026, 1, 4),
        date(2026, 2, 14),
        date(2026, 2, 28),
        date(2026, 5, 9),
        date(2026, 9, 20),
        date(2026, 10, 10),
    ]


def test_instant_after_with_infinite_seconds_is_unreachable() -> None:
    assert cn_business().instant_after(utc(2026, 1, 1), float("inf")) is None


# -- configuration errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"timezone": "Mars/Olympus_Mons"}, "unknown time zone 'Mars/Olympus_Mons'"),
        ({"timezone": ""}, "unknown time zone ''"),
        ({"weekdays": ["mon", "Tuesday"]}, "unknown weekday 'Tuesday'"),
        ({"weekdays": "mon"}, "weekdays must be a list"),
        ({"hours": ["9:00-17:30"]}, "bad hours range '9:00-17:30'"),
        ({"hours": ["09:00-17:30-18:00"]}, "bad hours range"),
        ({"hours": ["09:00-25:00"]}, "bad time in hours range '09:00-25:00'"),
        ({"hours": ["09:60-17:00"]}, "bad time in hours range"),
        ({"hours": ["24:00-24:00"]}, "bad time in hours range"),
        ({"hours": ["09:00-24:30"]}, "bad time in hours range"),
        ({"hours": ["17:30-09:00"]}, "must start before it ends"),
        ({"hours": ["09:00-09:00"]}, "must start before it ends"),
        ({"hours": ["09:00-12:00", "11:00-17:00"]}, "overlaps or precedes"),
        ({"hours": ["13:00-17:00", "09:00-12:00"]}, "overlaps or precedes"),
        ({"hours": "09:00-17:30"}, "hours must be a list"),
        ({"holidays_country": "XX"}, "unknown holidays country code 'XX'"),
    ],
)
def test_invalid_business_calendar_raises_calendar_error_naming_the_problem(
    overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(CalendarError, match=message) as raised:
        cn_business(**overrides)
    assert "cn-business" in str(raised.value)
    assert isinstance(raised.value, ValueError)


def test_hours_may_end_at_24_00_and_cover_the_whole_day() -> None:
    calendar = every_day("Asia/Shanghai", ["00:00-24:00"])
    start = datetime(2026, 3, 2, 5, tzinfo=SHANGHAI)
    assert calendar.counted_seconds(start, start + timedelta(days=3)) == 72 * HOUR
    assert list(calendar.working_intervals(start, start + timedelta(days=3))) == [
        (start.astimezone(UTC), (start + timedelta(days=3)).astimezone(UTC))
    ]


# -- performance ----------------------------------------------------------------------------------


def test_counted_seconds_over_thirty_days_is_fast_with_a_warm_cache() -> None:
    calendar = cn_business()
    start = datetime(2026, 9, 1, 10, tzinfo=SHANGHAI)
    end = start + timedelta(days=30)
    calendar.counted_seconds(start, end)
    rounds = 2000
    began = time.perf_counter()
    for _ in range(rounds):
        calendar.counted_seconds(start, end)
    per_call = (time.perf_counter() - began) / rounds
    assert per_call < 30 * 20e-6  # generous: well under 20 µs per day
