"""The block prefix sums of business calendars give exactly what walking dates gives.

Counting and due-time search go through per-block cumulative working time (a bisect); the
date-by-date walk with per-year sums they replaced stays as `_count_by_dates` /
`_instant_after_by_dates`, and is itself checked against minute-by-minute references in
test_calendar_properties.py and test_calendar_long_spans.py.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slatrail.domain.calendars import (
    _BLOCK_US,
    _NEAR_BLOCKS,
    BusinessCalendar,
    _from_us,
    _to_us,
)
from tests.hypothesis_profiles import examples

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# DST both ways, half-hour and 45-minute offsets, a zone falling back at midnight (Santiago: the
# local date goes backwards), a 30-minute DST shift (Lord Howe), none (Shanghai, Kolkata).
ZONES = (
    "Europe/Berlin",
    "America/New_York",
    "America/Santiago",
    "America/Havana",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "Asia/Shanghai",
    "Asia/Kolkata",
    "UTC",
)
COUNTRIES = (None, "DE", "CN", "US", "CL")
US = 1
DAY = 86_400_000_000
FIRST = _to_us(datetime(2025, 1, 1, tzinfo=UTC))
LAST = _to_us(datetime(2027, 12, 31, tzinfo=UTC))

COUNT_SETTINGS = settings(
    max_examples=examples(150),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SEARCH_SETTINGS = settings(
    max_examples=examples(100),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@st.composite
def hour_ranges(draw: st.DrawFn) -> list[str]:
    """Sorted, non-overlapping 'HH:MM-HH:MM' ranges on a 15-minute grid (00:00-24:00)."""
    marks = sorted(draw(st.sets(st.integers(0, 96), min_size=2, max_size=8)))
    if len(marks) % 2:
        marks = marks[:-1]
    return [
        f"{a // 4:02d}:{a % 4 * 15:02d}-{b // 4:02d}:{b % 4 * 15:02d}"
        for a, b in zip(marks[::2], marks[1::2], strict=True)
    ]


@st.composite
def calendars(draw: st.DrawFn) -> BusinessCalendar:
    days = st.dates(min_value=date(2025, 1, 1), max_value=date(2027, 12, 31))
    return BusinessCalendar(
        "random",
        timezone=draw(st.sampled_from(ZONES)),
        weekdays=sorted(draw(st.sets(st.sampled_from(WEEKDAYS), max_size=7))),
        hours=draw(hour_ranges()),
        holidays_country=draw(st.sampled_from(COUNTRIES)),
        extra_holidays=draw(st.lists(days, max_size=6)),
        extra_workdays=draw(st.lists(days, max_size=6)),
    )


# Spans inside one block, across a few, and longer than the blocks cover (per-year sums).
SPANS = st.one_of(
    st.integers(0, 3 * DAY),
    st.integers(0, 40 * DAY),
    st.integers((_NEAR_BLOCKS + 1) * _BLOCK_US // DAY * DAY, 400 * DAY),
)


def _instant(draw: st.DrawFn) -> int:
    return draw(st.integers(FIRST, LAST))


@COUNT_SETTINGS
@given(calendar=calendars(), data=st.data())
def test_block_counting_equals_walking_the_dates(
    calendar: BusinessCalendar, data: st.DataObject
) -> None:
    for _ in range(8):
        s = _instant(data.draw)
        e = s + data.draw(SPANS)
        if data.draw(st.booleans()):  # block boundaries themselves
            s = s // _BLOCK_US * _BLOCK_US
        expected = calendar._count_by_dates(s, e)
        assert calendar._count(s, e) == expected
        assert calendar.counted_us(_from_us(s), _from_us(e)) == expected
        assert calendar._count(e, s) == 0


@SEARCH_SETTINGS
@given(calendar=calendars(), data=st.data())
def test_block_due_time_search_equals_walking_the_dates(
    calendar: BusinessCalendar, data: st.DataObject
) -> None:
    for _ in range(8):
        s = _instant(data.draw)
        span = data.draw(SPANS)
        # A need that is reached exactly at the end of a span, and one drawn freely.
        for need in (calendar._count_by_dates(s, s + span), data.draw(st.integers(1, 200 * DAY))):
            if need == 0:
                continue
            expected = calendar._instant_after_by_dates(s, need)
            found = calendar.instant_after_us(_from_us(s), need)
            assert found == (None if expected is None else _from_us(expected))
            if found is not None:
                assert calendar.counted_us(_from_us(s), found) == need
                assert calendar.counted_us(_from_us(s), found - timedelta(microseconds=US)) < need


def test_a_calendar_without_working_time_never_reaches_a_target() -> None:
    calendar = BusinessCalendar(
        "never", timezone="Europe/Berlin", weekdays=[], hours=["09:00-17:00"]
    )
    start = datetime(2026, 3, 2, tzinfo=UTC)
    assert calendar.instant_after_us(start, 1) is None
    assert calendar.counted_us(start, start + timedelta(days=30)) == 0
