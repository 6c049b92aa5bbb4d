"""Working-time calendars (SPEC §4, §5 rule 1): which instants count towards an SLA clock.

Two kinds exist: ``AlwaysCalendar`` (24x7, every instant counts) and ``BusinessCalendar``
(ranges of local wall-clock time on working days of an IANA time zone, with public holidays
and substituted weekend working days taken from the ``holidays`` package).

All arithmetic is done on integer microseconds since the Unix epoch, so sums of intervals are
exact and ``counted_seconds(start, instant_after(start, s)) == s`` holds for any ``s`` that is a
whole number of microseconds. Public results are timezone-aware ``datetime`` objects in UTC.

Wall-clock semantics of a business calendar are exact across DST transitions: the working time
of a local date is the set of instants whose local date is that date and whose local time of day
lies inside one of the ranges. Consequently, when a range boundary falls inside a spring-forward
gap it takes effect at the transition (the first instant whose wall clock reads at or after the
boundary; for a boundary exactly at the start of the gap this is what ``fold=0`` gives too), and
a range lying inside a repeated fall-back hour counts both times that wall-clock time occurs.
Intervals are therefore never inverted.
"""

from __future__ import annotations

import functools
import math
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

__all__ = [
    "HORIZON_DAYS",
    "AlwaysCalendar",
    "BusinessCalendar",
    "Calendar",
    "CalendarError",
]

HORIZON_DAYS = 3660
"""Unbounded iteration stops after this many consecutive local days without working time."""

WEEKDAY_NAMES: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

_US = 1_000_000
_HOUR_US = 3600 * _US
_DAY_US = 24 * _HOUR_US
_ONE_US = timedelta(microseconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORD = date(1970, 1, 1).toordinal()
_MAX_UTC = datetime.max.replace(tzinfo=UTC)
_MAX_US = (_MAX_UTC - _EPOCH) // _ONE_US
_LAST_ORD = date.max.toordinal() - 2  # keep a margin so local-midnight arithmetic never overflows
_FIRST_ORD = date.min.toordinal() + 2
# Every UTC offset in tzdata is strictly within ±16 h (the largest, Asia/Manila LMT, is -15:56).
# So all instants of local date ``o`` lie in (base(o) - 16 h, base(o) + 40 h), where base(o) is
# local midnight of ``o`` read as if it were UTC.
_MAX_OFFSET_US = 16 * _HOUR_US
_SAMPLE_STEP_US = 4 * _HOUR_US  # no zone has two offset changes within 4 hours

_HOURS_RE = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")

_Interval = tuple[int, int]


class CalendarError(ValueError):
    """A calendar definition is invalid (time zone, weekday, hour range or country code)."""


def _to_us(moment: datetime) -> int:
    """Microseconds since the Unix epoch of an aware datetime."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"datetime must be timezone-aware, got naive {moment.isoformat()}")
    return (moment - _EPOCH) // _ONE_US


def _from_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def needed_us(seconds: float) -> int | None:
    """Smallest whole number of microseconds ``n`` with ``n / 1e6 >= seconds``.

    None means unreachable (infinite seconds). Raises ValueError for negative or NaN input.
    """
    if math.isnan(seconds) or seconds < 0:
        raise ValueError(f"seconds must be >= 0, got {seconds!r}")
    if math.isinf(seconds):
        return None
    n = round(seconds * _US)
    if n / _US < seconds:
        n += 1
    elif n > 0 and (n - 1) / _US >= seconds:
        n -= 1
    return n


class Calendar(ABC):
    """Which instants count as working time."""

    kind: ClassVar[str]
    name: str

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    @abstractmethod
    def working_intervals(
        self, start: datetime, end: datetime | None
    ) -> Iterator[tuple[datetime, datetime]]:
        """Working intervals overlapping [start, end), clipped to it, sorted, non-overlapping,
        non-empty, adjacent intervals merged (24x7 yields one interval; a business day
        09:00-12:00 + 12:00-17:30 yields one). Inputs are aware datetimes in any zone; results
        are in UTC. ``end=None`` means unbounded: the iterator is lazy and endless for calendars
        that have working time, and stops by itself after ``HORIZON_DAYS`` local days without
        any working time. (A 24x7 calendar yields one interval ending at ``datetime.max`` UTC.)
        """

    @abstractmethod
    def counted_seconds(self, start: datetime, end: datetime) -> float:
        """Total working seconds inside [start, end); 0 if end <= start."""

    @abstractmethod
    def instant_after(self, start: datetime, seconds: float) -> datetime | None:
        """Earliest instant t >= start (in UTC) such that counted_seconds(start, t) >= seconds
        (seconds >= 0, else ValueError). For seconds == 0 returns start (as UTC). None if
        unreachable within the horizon."""


class AlwaysCalendar(Calendar):
    """24x7: every instant is working time."""

    kind: ClassVar[str] = "24x7"

    def working_intervals(
        self, start: datetime, end: datetime | None
    ) -> Iterator[tuple[datetime, datetime]]:
        s = _to_us(start)
        e = _MAX_US if end is None else _to_us(end)
        intervals = [(_from_us(s), _from_us(e))] if e > s else []
        return iter(intervals)

    def counted_seconds(self, start: datetime, end: datetime) -> float:
        s = _to_us(start)
        e = _to_us(end)
        return (e - s) / _US if e > s else 0.0

    def instant_after(self, start: datetime, seconds: float) -> datetime | None:
        s = _to_us(start)
        need = needed_us(seconds)
        if need is None or s + need > _MAX_US:
            return None
        return _from_us(s + need)


def _parse_weekdays(name: str, weekdays: Sequence[str]) -> frozenset[int]:
    if isinstance(weekdays, str):
        raise CalendarError(f"calendar {name!r}: weekdays must be a list of names, not a string")
    numbers: set[int] = set()
    for weekday in weekdays:
        if weekday not in WEEKDAY_NAMES:
            raise CalendarError(
                f"calendar {name!r}: unknown weekday {weekday!r} "
                f"(expected one of {', '.join(WEEKDAY_NAMES)})"
            )
        numbers.add(WEEKDAY_NAMES.index(weekday))
    return frozenset(numbers)


def _parse_hours(name: str, hours: Sequence[str]) -> tuple[_Interval, ...]:
    """Local ranges as microsecond offsets from local midnight, sorted, adjacent ones merged."""
    if isinstance(hours, str):
        raise CalendarError(f"calendar {name!r}: hours must be a list of ranges, not a string")
    ranges: list[_Interval] = []
    for text in hours:
        match = _HOURS_RE.match(text) if isinstance(text, str) else None
        if match is None:
            raise CalendarError(
                f"calendar {name!r}: bad hours range {text!r} (expected 'HH:MM-HH:MM')"
            )
        h1, m1, h2, m2 = (int(group) for group in match.groups())
        if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2 != 0):
            raise CalendarError(
                f"calendar {name!r}: bad time in hours range {text!r} "
                "(hours 00-23, minutes 00-59; 24:00 only as an end)"
            )
        a = (h1 * 60 + m1) * 60 * _US
        b = (h2 * 60 + m2) * 60 * _US
        if a >= b:
            raise CalendarError(
                f"calendar {name!r}: hours range {text!r} must start before it ends"
            )
        if ranges and a < ranges[-1][1]:
            raise CalendarError(
                f"calendar {name!r}: hours range {text!r} overlaps or precedes the previous "
                "range (ranges must be sorted and non-overlapping)"
            )
        if ranges and a == ranges[-1][1]:
            ranges[-1] = (ranges[-1][0], b)
        else:
            ranges.append((a, b))
    return tuple(ranges)


@functools.lru_cache(maxsize=4096)
def _country_year(country: str, year: int) -> tuple[frozenset[date], frozenset[date]]:
    """(public holidays, substituted weekend working days) of ``country`` in ``year``.

    Weekend working days come from ``HolidayBase.weekend_workdays``: the library fills it while
    populating a year (same-year substitutions) and at construction (cross-year ones), which is
    the data behind its own ``is_working_day``.
    """
    try:
        table = holidays.country_holidays(country, years=year)
    except NotImplementedError as error:  # pragma: no cover - validated at construction
        raise CalendarError(f"unknown holidays country code {country!r}") from error
    days_off = frozenset(day for day in table if day.year == year)
    workdays = frozenset(day for day in getattr(table, "weekend_workdays", ()) if day.year == year)
    return days_off, workdays


def _merge_into(buffer: list[_Interval], a: int, b: int) -> None:
    """Insert [a, b) into a sorted list of disjoint, non-adjacent intervals, merging."""
    if not buffer or a > buffer[-1][1]:
        buffer.append((a, b))
        return
    if a >= buffer[-1][0]:
        last_a, last_b = buffer[-1]
        buffer[-1] = (last_a, max(last_b, b))
        return
    buffer.append((a, b))  # out of order (only in zones whose local date ever goes backwards)
    buffer.sort()
    merged: list[_Interval] = []
    for x, y in buffer:
        if merged and x <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], y))
        else:
            merged.append((x, y))
    buffer[:] = merged


class BusinessCalendar(Calendar):
    """Ranges of local wall-clock time on the working days of an IANA time zone."""

    kind: ClassVar[str] = "business"

    def __init__(
        self,
        name: str,
        *,
        timezone: str,
        weekdays: Sequence[str],
        hours: Sequence[str],
        holidays_country: str | None = None,
        extra_holidays: Sequence[date] = (),
        extra_workdays: Sequence[date] = (),
    ) -> None:
        super().__init__(name)
        try:
            zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError, TypeError) as error:
            raise CalendarError(f"calendar {name!r}: unknown time zone {timezone!r}") from error
        if holidays_country is not None:
            try:
                holidays.country_holidays(holidays_country)
            except NotImplementedError as error:
                raise CalendarError(
                    f"calendar {name!r}: unknown holidays country code {holidays_country!r}"
                ) from error
        self.timezone = timezone
        self.weekdays: tuple[str, ...] = tuple(weekdays)
        self.hours: tuple[str, ...] = tuple(hours)
        self.holidays_country = holidays_country
        self.extra_holidays: frozenset[date] = frozenset(extra_holidays)
        self.extra_workdays: frozenset[date] = frozenset(extra_workdays)
        self._zone = zone
        self._weekday_numbers = _parse_weekdays(name, weekdays)
        self._ranges = _parse_hours(name, hours)
        self._day_us: dict[int, tuple[_Interval, ...]] = {}
        self._day_dt: dict[int, tuple[tuple[datetime, datetime], ...]] = {}

    def __repr__(self) -> str:
        return (
            f"BusinessCalendar({self.name!r}, timezone={self.timezone!r}, "
            f"weekdays={list(self.weekdays)!r}, hours={list(self.hours)!r}, "
            f"holidays_country={self.holidays_country!r})"
        )

    # -- days -------------------------------------------------------------------------------

    def is_working_day(self, day: date) -> bool:
        """Whether the local date ``day`` is a working day (before looking at hours)."""
        if day in self.extra_workdays:
            return True
        if day in self.extra_holidays:
            return False
        if self.holidays_country is not None:
            days_off, weekend_workdays = _country_year(self.holidays_country, day.year)
            if day in days_off:
                return False
            if day in weekend_workdays:
                return True
        return day.weekday() in self._weekday_numbers

    def day_intervals(self, day: date) -> tuple[tuple[datetime, datetime], ...]:
        """Working intervals (UTC, sorted, merged) of one local date."""
        ordinal = day.toordinal()
        cached = self._day_dt.get(ordinal)
        if cached is None:
            cached = tuple((_from_us(a), _from_us(b)) for a, b in self._intervals_of(ordinal))
            self._day_dt[ordinal] = cached
        return cached

    def _intervals_of(self, ordinal: int) -> tuple[_Interval, ...]:
        cached = self._day_us.get(ordinal)
        if cached is None:
            cached = self._compute_day(ordinal)
            self._day_us[ordinal] = cached
        return cached

    def _offset_us(self, us: int) -> int:
        offset = _from_us(us).astimezone(self._zone).utcoffset()
        assert offset is not None
        return offset // _ONE_US

    def _segments(self, base: int) -> list[tuple[int, int, int]]:
        """(utc_start, utc_end, offset) pieces of constant UTC offset covering every instant
        whose local date has local midnight ``base`` (read as UTC microseconds)."""
        lo = base - _MAX_OFFSET_US
        hi = base + _DAY_US + _MAX_OFFSET_US
        samples = [*range(lo, hi, _SAMPLE_STEP_US), hi]
        offsets = [self._offset_us(point) for point in samples]
        segments: list[tuple[int, int, int]] = []
        seg_start = lo
        for i in range(1, len(samples)):
            if offsets[i] == offsets[i - 1]:
                continue
            # Offset changes in (samples[i-1], samples[i]]: find the first second with the new
            # offset (tzdata transitions fall on whole seconds).
            left, right = samples[i - 1] // _US, samples[i] // _US
            while right - left > 1:
                mid = (left + right) // 2
                if self._offset_us(mid * _US) == offsets[i - 1]:
                    left = mid
                else:
                    right = mid
            transition = right * _US
            segments.append((seg_start, transition, offsets[i - 1]))
            seg_start = transition
        segments.append((seg_start, hi, offsets[-1]))
        return segments

    def _compute_day(self, ordinal: int) -> tuple[_Interval, ...]:
        if not self._ranges or not self.is_working_day(date.fromordinal(ordinal)):
            return ()
        base = (ordinal - _EPOCH_ORD) * _DAY_US
        found: list[_Interval] = []
        for seg_start, seg_end, offset in self._segments(base):
            for a, b in self._ranges:
                x = max(seg_start, base + a - offset)
                y = min(seg_end, base + b - offset)
                if y > x:
                    found.append((x, y))
        merged: list[_Interval] = []
        for x, y in sorted(found):
            _merge_into(merged, x, y)
        return tuple(merged)

    # -- intervals ----------------------------------------------------------------------------

    def _stream(self, s: int, e: int | None, *, merge: bool) -> Iterator[_Interval]:
        """Working intervals (µs) inside [s, e) in time order; merged if ``merge``.

        Unbounded (e is None) streams stop after HORIZON_DAYS consecutive local days without
        working time. A merged run of uninterrupted working time longer than HORIZON_DAYS (a
        calendar working around the clock) is yielded in pieces of that length.
        """
        ordinal = max((s - _DAY_US - _MAX_OFFSET_US) // _DAY_US + _EPOCH_ORD, _FIRST_ORD)
        if e is None:
            last = _LAST_ORD
            counting_from = _from_us(s).astimezone(self._zone).toordinal()
        else:
            last = min((e + _MAX_OFFSET_US) // _DAY_US + _EPOCH_ORD, _LAST_ORD)
            counting_from = last + 1
        idle = 0
        buffer: list[_Interval] = []
        day_cache = self._day_us
        while ordinal <= last:
            day = day_cache.get(ordinal)
            if day is None:
                day = self._intervals_of(ordinal)
            worked = False
            for a, b in day:
                if a < s:
                    a = s
                if e is not None and b > e:
                    b = e
                if b > a:
                    worked = True
                    if merge:
                        _merge_into(buffer, a, b)
                    else:
                        buffer.append((a, b))
            if worked:
                idle = 0
                if not merge:
                    buffer.sort()
            elif ordinal >= counting_from:
                idle += 1
                if idle >= HORIZON_DAYS:
                    break
            # Later local dates only hold instants after base(ordinal + 1) - 16 h.
            release = (ordinal + 1 - _EPOCH_ORD) * _DAY_US - _MAX_OFFSET_US
            while buffer and buffer[0][1] < release:
                yield buffer.pop(0)
            if e is None and buffer and buffer[0][1] - buffer[0][0] >= HORIZON_DAYS * _DAY_US:
                yield buffer.pop(0)
            ordinal += 1
        yield from buffer

    def working_intervals(
        self, start: datetime, end: datetime | None
    ) -> Iterator[tuple[datetime, datetime]]:
        s = _to_us(start)
        e = None if end is None else _to_us(end)
        if e is not None and e <= s:
            return iter(())
        return ((_from_us(a), _from_us(b)) for a, b in self._stream(s, e, merge=True))

    def counted_seconds(self, start: datetime, end: datetime) -> float:
        s = _to_us(start)
        e = _to_us(end)
        if e <= s:
            return 0.0
        first = max((s - _DAY_US - _MAX_OFFSET_US) // _DAY_US + _EPOCH_ORD, _FIRST_ORD)
        last = min((e + _MAX_OFFSET_US) // _DAY_US + _EPOCH_ORD, _LAST_ORD)
        day_cache = self._day_us
        total = 0
        for ordinal in range(first, last + 1):
            day = day_cache.get(ordinal)
            if day is None:
                day = self._intervals_of(ordinal)
            for a, b in day:
                if b <= s or a >= e:
                    continue
                total += (b if b < e else e) - (a if a > s else s)
        return total / _US

    def instant_after(self, start: datetime, seconds: float) -> datetime | None:
        s = _to_us(start)
        need = needed_us(seconds)
        if need is None:
            return None
        if need == 0:
            return _from_us(s)
        for a, b in self._stream(s, None, merge=False):
            if need <= b - a:
                return _from_us(a + need)
            need -= b - a
        return None
