"""Business calendars against a slow, obviously correct minute-by-minute reference.

The reference walks UTC minute by minute, converts each minute to local time and counts it when
the local date is a working day and the local time of day lies inside one of the ranges. Every
boundary involved (instants, local ranges, UTC offsets, DST transitions) is minute-aligned in the
zones used, so counted seconds must equal exactly 60 x the number of reference minutes.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import holidays
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slatrail.domain.calendars import BusinessCalendar
from tests.hypothesis_profiles import examples

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MINUTE = timedelta(minutes=1)
MAX_WINDOW_MINUTES = 10 * 24 * 60

PROPERTY_SETTINGS = settings(
    max_examples=examples(200),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@dataclass(frozen=True)
class Region:
    """A stretch of time (UTC) around interesting instants of one zone."""

    zone: str
    countries: tuple[str | None, ...]
    first: datetime
    last: datetime
    anchors: tuple[datetime, ...]  # DST transitions, holidays, substituted working days

    @property
    def minutes(self) -> int:
        return int((self.last - self.first) / MINUTE)


def _utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=UTC)


REGIONS = (
    # CN holidays and 调休 around the 2026 Spring Festival (Feb 14 and Feb 28 are working days).
    Region(
        "Asia/Shanghai",
        ("CN",),
        _utc(2026, 1, 25),
        _utc(2026, 3, 5),
        (_utc(2026, 2, 13, 16), _utc(2026, 2, 16, 16), _utc(2026, 2, 27, 16)),
    ),
    # CN Mid-Autumn / National Day 2026 (Sep 20 and Oct 10 are working days).
    Region(
        "Asia/Shanghai",
        ("CN",),
        _utc(2026, 9, 14),
        _utc(2026, 10, 16),
        (_utc(2026, 9, 19, 16), _utc(2026, 9, 30, 16), _utc(2026, 10, 9, 16)),
    ),
    Region(
        "Europe/Berlin", (None, "DE"), _utc(2026, 3, 22), _utc(2026, 4, 6), (_utc(2026, 3, 29, 1),)
    ),
    Region(
        "Europe/Berlin",
        (None, "DE"),
        _utc(2026, 10, 18),
        _utc(2026, 11, 2),
        (_utc(2026, 10, 25, 1),),
    ),
    Region(
        "America/New_York",
        (None, "US"),
        _utc(2026, 3, 1),
        _utc(2026, 3, 16),
        (_utc(2026, 3, 8, 7),),
    ),
    Region(
        "America/New_York",
        (None, "US"),
        _utc(2026, 10, 25),
        _utc(2026, 11, 9),
        (_utc(2026, 11, 1, 6),),
    ),
)


@functools.cache
def local_minutes(region: Region) -> tuple[tuple[date, int], ...]:
    """For each UTC minute of the region: (local date, local minute of day)."""
    zone = ZoneInfo(region.zone)
    table = []
    for i in range(region.minutes):
        local = (region.first + i * MINUTE).astimezone(zone)
        table.append((local.date(), local.hour * 60 + local.minute))
    return tuple(table)


@functools.cache
def country_year(country: str, year: int) -> tuple[frozenset[date], frozenset[date]]:
    table = holidays.country_holidays(country, years=year)
    return frozenset(table), frozenset(table.weekend_workdays)


@dataclass(frozen=True)
class Case:
    region: Region
    country: str | None
    weekdays: tuple[str, ...]
    ranges: tuple[tuple[int, int], ...]  # local minutes of day, end up to 1440
    extra_holidays: tuple[date, ...]
    extra_workdays: tuple[date, ...]

    def calendar(self) -> BusinessCalendar:
        return BusinessCalendar(
            "prop",
            timezone=self.region.zone,
            weekdays=list(self.weekdays),
            hours=[f"{_hhmm(a)}-{_hhmm(b)}" for a, b in self.ranges],
            holidays_country=self.country,
            extra_holidays=self.extra_holidays,
            extra_workdays=self.extra_workdays,
        )

    def is_working_day(self, day: date) -> bool:
        if day in self.extra_workdays:
            return True
        if day in self.extra_holidays:
            return False
        if self.country is not None:
            days_off, weekend_workdays = country_year(self.country, day.year)
            if day in days_off:
                return False
            if day in weekend_workdays:
                return True
        return WEEKDAYS[day.weekday()] in self.weekdays

    def reference_minutes(self, first: int, last: int) -> list[bool]:
        """Whether each UTC minute first..last-1 (indices into the region) is working time."""
        table = local_minutes(self.region)
        working_days: dict[date, bool] = {}
        flags = []
        for i in range(first, last):
            day, minute = table[i]
            working = working_days.get(day)
            if working is None:
                working = working_days[day] = self.is_working_day(day)
            flags.append(working and any(a <= minute < b for a, b in self.ranges))
        return flags

    def instant(self, index: int) -> datetime:
        return self.region.first + index * MINUTE


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@st.composite
def hour_ranges(draw: st.DrawFn) -> tuple[tuple[int, int], ...]:
    """Sorted, non-overlapping ranges on a 15-minute grid; consecutive ones may touch, and
    often the day starts at 00:00 and ends at 24:00 so that working time runs across midnight."""
    points = set(draw(st.lists(st.integers(0, 96), min_size=2, max_size=7, unique=True)))
    if draw(st.booleans()):
        points |= {0, 96}
    ordered = sorted(points)
    used = draw(st.lists(st.booleans(), min_size=len(ordered) - 1, max_size=len(ordered) - 1))
    if draw(st.booleans()):
        used[0] = used[-1] = True
    ranges = tuple((ordered[i] * 15, ordered[i + 1] * 15) for i, on in enumerate(used) if on)
    return ranges or ((9 * 60, 17 * 60 + 30),)


@st.composite
def cases(draw: st.DrawFn) -> Case:
    region = draw(st.sampled_from(REGIONS))
    first_day = region.first.date()
    region_days = st.integers(0, (region.last - region.first).days - 1).map(
        lambda n: first_day + timedelta(days=n)
    )
    return Case(
        region=region,
        country=draw(st.sampled_from(region.countries)),
        weekdays=tuple(
            draw(
                st.one_of(
                    st.just(WEEKDAYS[:5]),
                    st.lists(st.sampled_from(WEEKDAYS), unique=True).map(
                        lambda names: tuple(sorted(names, key=WEEKDAYS.index))
                    ),
                )
            )
        ),
        ranges=draw(hour_ranges()),
        extra_holidays=tuple(draw(st.lists(region_days, max_size=2))),
        extra_workdays=tuple(draw(st.lists(region_days, max_size=2))),
    )


@st.composite
def windows(draw: st.DrawFn, case: Case) -> tuple[int, int]:
    """Minute indices first <= last inside the region, at most MAX_WINDOW_MINUTES apart,
    often starting shortly before one of the region's interesting instants."""
    region = case.region
    total = region.minutes
    anywhere = st.integers(0, total - 1)
    anchored = st.sampled_from(region.anchors).flatmap(
        lambda anchor: st.integers(0, 3 * 24 * 60).map(
            lambda before: max(0, int((anchor - region.first) / MINUTE) - before)
        )
    )
    first = draw(st.one_of(anywhere, anchored))
    longest = min(MAX_WINDOW_MINUTES, total - first)
    length = draw(
        st.one_of(st.integers(0, min(longest, 24 * 60)), st.integers(longest // 2, longest))
    )
    return first, first + length


ZONES_FOR_ARGUMENTS = st.sampled_from(
    [UTC, ZoneInfo("Asia/Shanghai"), ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York")]
)


@PROPERTY_SETTINGS
@given(data=st.data())
def test_counted_seconds_equals_the_minute_by_minute_reference(data: st.DataObject) -> None:
    case = data.draw(cases())
    first, last = data.draw(windows(case))
    shown_in = data.draw(ZONES_FOR_ARGUMENTS)
    calendar = case.calendar()
    start, end = case.instant(first).astimezone(shown_in), case.instant(last)
    assert calendar.counted_seconds(start, end) == 60 * sum(case.reference_minutes(first, last))
    assert calendar.counted_seconds(end, start) == 0.0


@PROPERTY_SETTINGS
@given(data=st.data())
def test_instant_after_counted_seconds_never_goes_past_the_end(data: st.DataObject) -> None:
    case = data.draw(cases())
    first, last = data.draw(windows(case))
    calendar = case.calendar()
    start, end = case.instant(first), case.instant(last)
    counted = calendar.counted_seconds(start, end)
    due = calendar.instant_after(start, counted)
    assert due is not None
    assert start <= due <= end
    assert calendar.counted_seconds(start, due) == counted


@PROPERTY_SETTINGS
@given(data=st.data())
def test_instant_after_reaches_exactly_the_target_at_the_reference_minute(
    data: st.DataObject,
) -> None:
    case = data.draw(cases())
    first, last = data.draw(windows(case))
    calendar = case.calendar()
    flags = case.reference_minutes(first, last)
    worked = sum(flags)
    target_minutes = data.draw(st.integers(0, worked))
    seconds = 60.0 * target_minutes
    start = case.instant(first)
    due = calendar.instant_after(start, seconds)
    assert due is not None
    assert calendar.counted_seconds(start, due) == seconds
    if target_minutes == 0:
        assert due == start
    else:
        # The reference instant: the end of the minute in which the count reaches the target.
        running = 0
        for offset, flag in enumerate(flags):
            running += flag
            if running == target_minutes:
                assert due == case.instant(first + offset + 1)
                break


@PROPERTY_SETTINGS
@given(data=st.data())
def test_working_intervals_are_sorted_disjoint_merged_and_match_the_reference(
    data: st.DataObject,
) -> None:
    case = data.draw(cases())
    first, last = data.draw(windows(case))
    calendar = case.calendar()
    start, end = case.instant(first), case.instant(last)
    intervals = list(
        calendar.working_intervals(start.astimezone(data.draw(ZONES_FOR_ARGUMENTS)), end)
    )
    for a, b in intervals:
        assert a.tzinfo is UTC and b.tzinfo is UTC
        assert start <= a < b <= end
    for (_, previous_end), (next_start, _) in itertools.pairwise(intervals):
        assert previous_end < next_start  # sorted, disjoint and adjacent ones merged
    covered = [False] * (last - first)
    for a, b in intervals:
        for index in range(int((a - start) / MINUTE), int((b - start) / MINUTE)):
            covered[index] = True
    assert covered == case.reference_minutes(first, last)
    total = sum((b - a).total_seconds() for a, b in intervals)
    assert total == calendar.counted_seconds(start, end)


@PROPERTY_SETTINGS
@given(data=st.data())
def test_unbounded_working_intervals_start_like_the_bounded_ones(data: st.DataObject) -> None:
    case = data.draw(cases())
    first, last = data.draw(windows(case))
    calendar = case.calendar()
    start, end = case.instant(first), case.instant(last)
    bounded = list(calendar.working_intervals(start, end))
    unbounded = []
    for a, b in calendar.working_intervals(start, None):
        if a >= end:
            break
        unbounded.append((a, min(b, end)))
    assert unbounded == bounded
