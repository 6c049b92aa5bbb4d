"""Working-time calendars (docs/reference/clocks.md): which instants count towards an SLA clock.

Two kinds exist: ``AlwaysCalendar`` (24x7, every instant counts) and ``BusinessCalendar``
(ranges of local wall-clock time on working days of an IANA time zone, with public holidays
and substituted weekend working days of a country). A country's holidays come from a
``HolidayTable``: the one recorded with a contract version (so a figure never changes with the
``holidays`` package installed), or, for a contracts file not recorded, the package itself,
asked lazily (its ``countries`` package imports every country at once).

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

import bisect
import functools
import math
import re
import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from types import ModuleType
from typing import Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "HORIZON_DAYS",
    "ZONE_RULES_FROM_YEAR",
    "AlwaysCalendar",
    "BusinessCalendar",
    "Calendar",
    "CalendarError",
    "HolidayTable",
    "from_instant_us",
    "instant_us",
    "known_holidays_country",
    "package_holiday_table",
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
_LOW_US = (_FIRST_ORD - _EPOCH_ORD) * _DAY_US
_HIGH_US = (_LAST_ORD + 1 - _EPOCH_ORD) * _DAY_US
# Every UTC offset in tzdata is strictly within ±16 h (the largest, Asia/Manila LMT, is -15:56).
# So all instants of local date ``o`` lie in (base(o) - 16 h, base(o) + 40 h), where base(o) is
# local midnight of ``o`` read as if it were UTC.
_MAX_OFFSET_US = 16 * _HOUR_US
_SAMPLE_STEP_US = 4 * _HOUR_US  # no zone has two offset changes within 4 hours

# Long spans (docs/decisions.md, "Bounded calendar arithmetic"). Outside the few local dates at
# the ends of a span, whole local dates are summed arithmetically: a date's working time is the
# sum of the hour ranges on a working weekday, except on the *special* dates of its year — public
# holidays, substituted working days, extra holidays/workdays, and dates near a change of UTC
# offset — whose working time is computed exactly. Offset changes are found by sampling the zone
# every _CHANGE_STEP_US (tzdata never changes a zone's offset twice within 3.9 days) and
# bisecting to the second. From year `_periodic_from` on (no more holidays or extra dates, and
# every zone follows the POSIX rule of its tzdata file, which no longer lists single changes
# after 2087) the pattern of working time repeats every 400 Gregorian years, a whole number of
# weeks, so far-away spans cost no more than the first 400 years after that year.
_WALK_DAYS = 64  # spans of up to this many local dates are walked date by date
_PERIOD_DAYS = 146_097  # 400 Gregorian years = 20 871 weeks
ZONE_RULES_FROM_YEAR = 2200
"""The first year from which every zone's UTC offsets follow its tzdata rule (repeat every 400
years)."""
_CHANGE_STEP_US = 2 * _DAY_US

# Cumulative working time (docs/reference/clocks.md, "Prefix sums"). UTC time is cut into blocks
# of _BLOCK_DAYS days; each block keeps its working intervals (clipped to it, sorted, merged) with
# the working time before and through each one, so counting up to an instant or finding the
# instant a working time is reached inside a block is one bisect. Spans of more than
# _NEAR_BLOCKS blocks go to the per-year sums above.
_BLOCK_DAYS = 16
_BLOCK_US = _BLOCK_DAYS * _DAY_US
_NEAR_BLOCKS = 8

_HOURS_RE = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")

_Interval = tuple[int, int]


class CalendarError(ValueError):
    """A calendar definition is invalid (time zone, weekday, hour range or country code)."""


def _to_us(moment: datetime) -> int:
    """Microseconds since the Unix epoch of an aware datetime."""
    if moment.tzinfo is not UTC and (moment.tzinfo is None or moment.utcoffset() is None):
        raise ValueError(f"datetime must be timezone-aware, got naive {moment.isoformat()}")
    return (moment - _EPOCH) // _ONE_US


def _from_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


instant_us = _to_us
"""Microseconds since the Unix epoch of an aware datetime (the calendars' integer instants)."""

from_instant_us = _from_us
"""The UTC datetime of an instant in microseconds since the Unix epoch."""


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


def _check_need(need_us: int) -> None:
    if need_us < 0:
        raise ValueError(f"seconds must be >= 0, got {need_us / _US!r}")


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
    def counted_us(self, start: datetime, end: datetime) -> int:
        """Total working time inside [start, end) in whole microseconds; 0 if end <= start."""

    @abstractmethod
    def count_us(self, start_us: int, end_us: int) -> int:
        """`counted_us` on integer instants (µs since the epoch): no datetime conversion."""

    @abstractmethod
    def reach_us(self, start_us: int, need_us: int) -> int | None:
        """`instant_after_us` on integer instants (µs since the epoch)."""

    def counted_seconds(self, start: datetime, end: datetime) -> float:
        """Total working seconds inside [start, end); 0 if end <= start."""
        return self.counted_us(start, end) / _US

    @abstractmethod
    def instant_after_us(self, start: datetime, need_us: int) -> datetime | None:
        """Earliest instant t >= start (in UTC) such that counted_us(start, t) >= need_us
        (need_us >= 0, else ValueError). For need_us == 0 returns start (as UTC). None if
        unreachable before the end of ``datetime`` (year 9999)."""

    def instant_after(self, start: datetime, seconds: float) -> datetime | None:
        """Earliest instant t >= start (in UTC) such that counted_seconds(start, t) >= seconds
        (seconds >= 0, else ValueError). For seconds == 0 returns start (as UTC). None if
        unreachable (infinite seconds, or not before the end of year 9999)."""
        need = needed_us(seconds)
        if need is None:
            return None
        return self.instant_after_us(start, need)


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

    def counted_us(self, start: datetime, end: datetime) -> int:
        s = _to_us(start)
        e = _to_us(end)
        return e - s if e > s else 0

    def instant_after_us(self, start: datetime, need_us: int) -> datetime | None:
        found = self.reach_us(_to_us(start), need_us)
        return None if found is None else _from_us(found)

    def count_us(self, start_us: int, end_us: int) -> int:
        return end_us - start_us if end_us > start_us else 0

    def reach_us(self, start_us: int, need_us: int) -> int | None:
        _check_need(need_us)
        if start_us + need_us > _MAX_US:
            return None
        return start_us + need_us


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


def _holidays() -> ModuleType:
    """The ``holidays`` package, imported when first needed: reading recorded versions never
    needs it."""
    import holidays

    return holidays


@functools.lru_cache(maxsize=4096)
def _country_year(country: str, year: int) -> tuple[frozenset[date], frozenset[date]]:
    """(public holidays, substituted weekend working days) of ``country`` in ``year``, from
    the ``holidays`` package.

    Weekend working days come from ``HolidayBase.weekend_workdays``: the library fills it while
    populating a year (same-year substitutions) and at construction (cross-year ones), which is
    the data behind its own ``is_working_day``.
    """
    try:
        with warnings.catch_warnings():  # "available only from …": its known years, as used
            warnings.simplefilter("ignore")
            table = _holidays().country_holidays(country, years=year)
    except NotImplementedError as error:  # pragma: no cover - validated at construction
        raise CalendarError(f"unknown holidays country code {country!r}") from error
    days_off = frozenset(day for day in table if day.year == year)
    workdays = frozenset(day for day in getattr(table, "weekend_workdays", ()) if day.year == year)
    return days_off, workdays


@functools.lru_cache(maxsize=256)
def _country_years(country: str) -> tuple[int, int]:
    """The years for which the ``holidays`` package knows ``country``'s holidays (it knows none
    outside them); the whole ``datetime`` range if the package does not say."""
    table = _holidays().country_holidays(country)
    first = getattr(table, "start_year", None)
    last = getattr(table, "end_year", None)
    if not isinstance(first, int) or not isinstance(last, int):  # pragma: no cover
        return date.min.year, date.max.year
    return first, last


@functools.lru_cache(maxsize=256)
def known_holidays_country(code: str) -> bool:
    """Whether the ``holidays`` package has a country of that code (or alias, or class name).

    Read off the package's registry of entities, which names every country without importing
    any; a package without that registry is asked the slow way."""
    holidays = _holidays()
    registry = getattr(getattr(holidays, "registry", None), "COUNTRIES", None)
    if isinstance(registry, Mapping):
        return any(code in entities for entities in registry.values())
    try:  # pragma: no cover - every supported release has the registry
        holidays.country_holidays(code)
    except NotImplementedError:  # pragma: no cover
        return False
    return True  # pragma: no cover


@dataclass(frozen=True)
class HolidayTable:
    """A country's public holidays and substituted weekend working days, year by year, for the
    years ``first_year``–``last_year`` (no holidays outside them); ``source`` says where they
    came from (``holidays 0.109``). Recorded with a contract version, it keeps the version's
    figures as they were whatever the installed package later says."""

    country: str
    first_year: int
    last_year: int
    years: Mapping[int, tuple[frozenset[date], frozenset[date]]]
    source: str

    _NONE: ClassVar[tuple[frozenset[date], frozenset[date]]] = (frozenset(), frozenset())

    def of_year(self, year: int) -> tuple[frozenset[date], frozenset[date]]:
        """(days off, substituted working days) of ``year``."""
        return self.years.get(year, self._NONE)

    def as_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "first_year": self.first_year,
            "last_year": self.last_year,
            "days_off": {
                str(y): sorted(d.isoformat() for d in off)
                for y, (off, _) in sorted(self.years.items())
                if off
            },
            "workdays": {
                str(y): sorted(d.isoformat() for d in work)
                for y, (_, work) in sorted(self.years.items())
                if work
            },
        }

    @classmethod
    def from_json(cls, country: str, data: Mapping[str, Any]) -> HolidayTable:
        """The inverse of ``as_json``; a malformed table raises ``CalendarError``."""
        try:
            first, last = int(data["first_year"]), int(data["last_year"])
            source = str(data["source"])
            days: dict[int, tuple[set[date], set[date]]] = {}
            for slot, key in ((0, "days_off"), (1, "workdays")):
                for year, texts in dict(data[key]).items():
                    for text in texts:
                        day = date.fromisoformat(text)
                        if day.year != int(year) or not first <= day.year <= last:
                            raise ValueError(f"{text} is not in year {year} of {first}–{last}")
                        days.setdefault(day.year, (set(), set()))[slot].add(day)
        except (KeyError, TypeError, ValueError) as error:
            raise CalendarError(f"holiday table of {country!r} is malformed: {error}") from error
        years = {y: (frozenset(off), frozenset(work)) for y, (off, work) in days.items()}
        return cls(country, first, last, years, source)


@functools.lru_cache(maxsize=64)
def package_holiday_table(country: str) -> HolidayTable:
    """``country``'s table as the installed ``holidays`` package gives it, every year it knows:
    what a contract version records (``CalendarError`` for an unknown country). The package
    populates all the years in one object (much faster than one per year); the result is the
    year-by-year one (tests/unit/test_holiday_tables.py)."""
    if not known_holidays_country(country):
        raise CalendarError(f"unknown holidays country code {country!r}")
    first, last = _country_years(country)
    holidays = _holidays()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = holidays.country_holidays(country, years=range(first, last + 1))
    years: dict[int, tuple[set[date], set[date]]] = {}
    for slot, days in ((0, table), (1, getattr(table, "weekend_workdays", ()))):
        for day in days:
            if first <= day.year <= last:
                years.setdefault(day.year, (set(), set()))[slot].add(day)
    version = getattr(holidays, "__version__", "unknown")
    return HolidayTable(
        country,
        first,
        last,
        {y: (frozenset(off), frozenset(work)) for y, (off, work) in years.items()},
        f"holidays {version}",
    )


def _zone_offset_us(zone: ZoneInfo, us: int) -> int:
    offset = _from_us(us).astimezone(zone).utcoffset()
    assert offset is not None
    return offset // _ONE_US


@functools.lru_cache(maxsize=65536)
def _zone_changes(zone_key: str, year: int) -> tuple[int, ...]:
    """Instants (µs, whole seconds) of every change of the zone's UTC offset in UTC year
    ``year``, in order."""
    zone = ZoneInfo(zone_key)
    lo = max((date(year, 1, 1).toordinal() - _EPOCH_ORD) * _DAY_US, _LOW_US)
    end_ord = date(year + 1, 1, 1).toordinal() if year < date.max.year else _LAST_ORD + 1
    hi = min((end_ord - _EPOCH_ORD) * _DAY_US, _HIGH_US)
    if hi <= lo:
        return ()
    samples = [*range(lo, hi, _CHANGE_STEP_US), hi]
    offsets = [_zone_offset_us(zone, point) for point in samples]
    changes: list[int] = []
    for i in range(1, len(samples)):
        if offsets[i] == offsets[i - 1]:
            continue
        left, right = samples[i - 1] // _US, samples[i] // _US
        while right - left > 1:
            mid = (left + right) // 2
            if _zone_offset_us(zone, mid * _US) == offsets[i - 1]:
                left = mid
            else:
                right = mid
        changes.append(right * _US)
    return tuple(changes)


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _ordinal_of(us: int) -> int:
    """The UTC date (ordinal) of an instant in µs."""
    return us // _DAY_US + _EPOCH_ORD


def _cut(ordinal: int) -> int:
    """Local midnight of ``ordinal`` read as UTC, minus 16 h: no working time of that date or
    later ones is before it."""
    return (ordinal - _EPOCH_ORD) * _DAY_US - _MAX_OFFSET_US


@dataclass(frozen=True, slots=True)
class _Year:
    """Working time of the local dates of one year: ordinals [first, end), the special dates
    (sorted) with their correction to the regular working time and its running sum."""

    year: int
    first: int
    end: int
    specials: tuple[int, ...]
    corrections_before: tuple[int, ...]  # sum of the corrections of specials[:i]
    total: int


@dataclass(frozen=True, slots=True)
class _Block:
    """Working time of one block of UTC time: merged intervals (starts[i], ends[i]) in order,
    ``before[i]`` / ``through[i]`` the block's working µs before / through interval i."""

    starts: tuple[int, ...]
    ends: tuple[int, ...]
    before: tuple[int, ...]
    through: tuple[int, ...]
    total: int

    def counted_before(self, t: int) -> int:
        """Working µs of the block before instant ``t``."""
        i = bisect.bisect_right(self.starts, t) - 1
        if i < 0:
            return 0
        end = self.ends[i]
        return self.before[i] + (end if end < t else t) - self.starts[i]

    def reached_at(self, counted: int) -> int:
        """The earliest instant at which the block's working µs reach ``counted``
        (0 < counted <= total)."""
        i = bisect.bisect_left(self.through, counted)
        return self.starts[i] + counted - self.before[i]


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
        holiday_table: HolidayTable | None = None,
    ) -> None:
        """``holiday_table``: the country's recorded holidays; without it the ``holidays``
        package is asked, year by year, when a year is first needed."""
        super().__init__(name)
        try:
            zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError, TypeError) as error:
            raise CalendarError(f"calendar {name!r}: unknown time zone {timezone!r}") from error
        if holiday_table is not None and holiday_table.country != holidays_country:
            raise CalendarError(
                f"calendar {name!r}: holiday table of {holiday_table.country!r} given for "
                f"holidays = {holidays_country!r}"
            )
        if (
            holidays_country is not None
            and holiday_table is None
            and not known_holidays_country(holidays_country)
        ):
            raise CalendarError(
                f"calendar {name!r}: unknown holidays country code {holidays_country!r}"
            )
        self.holiday_table = holiday_table
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
        self._regular_us = sum(b - a for a, b in self._ranges)  # a plain working day
        self._years: dict[int, _Year] = {}
        self._blocks: dict[int, _Block] = {}
        self._cumulative: dict[int, int] = {}  # year -> working time of [periodic_from, year)

    def __repr__(self) -> str:
        return (
            f"BusinessCalendar({self.name!r}, timezone={self.timezone!r}, "
            f"weekdays={list(self.weekdays)!r}, hours={list(self.hours)!r}, "
            f"holidays_country={self.holidays_country!r})"
        )

    @functools.cached_property
    def _holiday_years(self) -> tuple[int, int]:
        """The years the country's holidays are known for ((1, 0): no country)."""
        if self.holidays_country is None:
            return (1, 0)
        if self.holiday_table is not None:
            return (self.holiday_table.first_year, self.holiday_table.last_year)
        return _country_years(self.holidays_country)

    def _country_days(self, year: int) -> tuple[frozenset[date], frozenset[date]]:
        assert self.holidays_country is not None
        if self.holiday_table is not None:
            return self.holiday_table.of_year(year)
        return _country_year(self.holidays_country, year)

    @functools.cached_property
    def _periodic_from(self) -> int:
        extra_years = [d.year for d in (*self.extra_holidays, *self.extra_workdays)]
        after_data = [ZONE_RULES_FROM_YEAR, max(extra_years, default=0) + 1]
        if self.holidays_country is not None:
            after_data.append(self._holiday_years[1] + 1)
        return max(after_data)

    @functools.cached_property
    def _periodic_start(self) -> int | None:
        if self._periodic_from + 400 <= date.max.year:
            return date(self._periodic_from, 1, 1).toordinal()
        return None

    # -- days -------------------------------------------------------------------------------

    def is_working_day(self, day: date) -> bool:
        """Whether the local date ``day`` is a working day (before looking at hours)."""
        if day in self.extra_workdays:
            return True
        if day in self.extra_holidays:
            return False
        first_year, last_year = self._holiday_years
        if self.holidays_country is not None and first_year <= day.year <= last_year:
            days_off, weekend_workdays = self._country_days(day.year)
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

    def counted_us(self, start: datetime, end: datetime) -> int:
        return self._count(_to_us(start), _to_us(end))

    def instant_after_us(self, start: datetime, need_us: int) -> datetime | None:
        found = self.reach_us(_to_us(start), need_us)
        return None if found is None else _from_us(found)

    def count_us(self, start_us: int, end_us: int) -> int:
        return self._count(start_us, end_us)

    def reach_us(self, start_us: int, need_us: int) -> int | None:
        _check_need(need_us)
        if need_us == 0:
            return start_us
        return self._instant_after(start_us, need_us)

    def _instant_after(self, s: int, need: int) -> int | None:
        """The earliest instant (µs) at which ``need`` > 0 working µs are counted from s, or
        None: block by block from s's block (a bisect in the block that reaches it), then from
        the per-year sums."""
        k = s // _BLOCK_US
        block = self._block(k)
        counted = block.counted_before(s) + need
        for _ in range(_NEAR_BLOCKS + 1):
            if counted <= block.total:
                return block.reached_at(counted)
            counted -= block.total
            k += 1
            block = self._block(k)
        return self._instant_after_by_dates(k * _BLOCK_US, counted)

    def _instant_after_by_dates(self, s: int, need_us: int) -> int | None:
        """`_instant_after` by walking dates and bisecting the per-year sums (no blocks)."""
        # Near targets: walk the dates from the start.
        cut = _cut(max(_ordinal_of(s), _FIRST_ORD) + _WALK_DAYS)
        found, need = self._reach(s, cut, need_us)
        if found is not None:
            return found
        # Far ones: find the last date boundary before the target is reached, walk from there.
        top = _LAST_ORD + 3  # _cut(top) is after every working interval
        if self._count(cut, _cut(top)) < need:
            return None
        low, high = _ordinal_of(cut) + 1, top  # _count(cut, _cut(low)) < need <= at high
        while high - low > 1:
            middle = (low + high) // 2
            if self._count(cut, _cut(middle)) < need:
                low = middle
            else:
                high = middle
        found, _ = self._reach(_cut(low), _cut(high), need - self._count(cut, _cut(low)))
        assert found is not None
        return found

    def _reach(self, s: int, e: int, need: int) -> tuple[int | None, int]:
        """The instant in [s, e] at which ``need`` µs are counted from s, or (None, the need
        left at e)."""
        if e > s:
            for a, b in self._stream(s, e, merge=False):
                if need <= b - a:
                    return a + need, 0
                need -= b - a
        return None, need

    # -- counting -----------------------------------------------------------------------------

    def _count(self, s: int, e: int) -> int:
        """Working µs in [s, e): from the blocks of s and e (and those between), or the
        per-year sums for spans of more than _NEAR_BLOCKS blocks."""
        if e <= s:
            return 0
        first, last = s // _BLOCK_US, e // _BLOCK_US
        if last - first > _NEAR_BLOCKS:
            return self._count_by_dates(s, e)
        block = self._block(first)
        if first == last:
            return block.counted_before(e) - block.counted_before(s)
        total = block.total - block.counted_before(s)
        for k in range(first + 1, last):
            total += self._block(k).total
        return total + self._block(last).counted_before(e)

    def _block(self, k: int) -> _Block:
        cached = self._blocks.get(k)
        if cached is None:
            cached = self._blocks[k] = self._build_block(k)
        return cached

    def _build_block(self, k: int) -> _Block:
        lo = k * _BLOCK_US
        hi = lo + _BLOCK_US
        first = max((lo - _DAY_US - _MAX_OFFSET_US) // _DAY_US + _EPOCH_ORD, _FIRST_ORD)
        last = min((hi + _MAX_OFFSET_US) // _DAY_US + _EPOCH_ORD, _LAST_ORD)
        found: list[_Interval] = []
        for ordinal in range(first, last + 1):
            for a, b in self._intervals_of(ordinal):
                a, b = max(a, lo), min(b, hi)
                if b > a:
                    found.append((a, b))
        merged: list[_Interval] = []
        for a, b in sorted(found):
            _merge_into(merged, a, b)
        before: list[int] = []
        through: list[int] = []
        total = 0
        for a, b in merged:
            before.append(total)
            total += b - a
            through.append(total)
        return _Block(
            tuple(a for a, _ in merged), tuple(b for _, b in merged),
            tuple(before), tuple(through), total,
        )  # fmt: skip

    def _count_by_dates(self, s: int, e: int) -> int:
        """Working µs in [s, e) by walking dates and the per-year sums (no blocks)."""
        if e <= s:
            return 0
        first = max((s - _DAY_US - _MAX_OFFSET_US) // _DAY_US + _EPOCH_ORD, _FIRST_ORD)
        last = min((e + _MAX_OFFSET_US) // _DAY_US + _EPOCH_ORD, _LAST_ORD)
        if last - first <= _WALK_DAYS:
            return self._walk(s, e, first, last)
        # Dates whose working time lies wholly inside [s, e): base - 16 h >= s, base + 40 h <= e.
        inner_first = max(_ceil_div(s + _MAX_OFFSET_US, _DAY_US) + _EPOCH_ORD, first)
        inner_last = min((e - _DAY_US - _MAX_OFFSET_US) // _DAY_US + _EPOCH_ORD, last)
        inner_last = max(inner_last, inner_first - 1)  # never walk a date twice
        return (
            self._walk(s, e, first, inner_first - 1)
            + self._dates(inner_first, inner_last + 1)
            + self._walk(s, e, inner_last + 1, last)
        )

    def _walk(self, s: int, e: int, first: int, last: int) -> int:
        """Working µs in [s, e) of the local dates first..last, date by date."""
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
        return total

    def _dates(self, first: int, end: int) -> int:
        """Working µs of the local dates first..end-1 (whole dates)."""
        if end <= first:
            return 0
        return self._prefix(end) - self._prefix(first)

    def _prefix(self, ordinal: int) -> int:
        """Working µs of the local dates from Jan 1 of ``_periodic_from`` to ``ordinal``
        (negative before it), reduced by whole 400-year periods in the periodic era."""
        start = self._periodic_start
        if start is not None and ordinal >= start + _PERIOD_DAYS:
            periods, rest = divmod(ordinal - start, _PERIOD_DAYS)
            period = self._cumulative_at(self._periodic_from + 400)
            return periods * period + self._prefix(start + rest)
        year = self._year(date.fromordinal(min(ordinal, date.max.toordinal())).year)
        if ordinal >= year.end:  # only the ordinal just after 9999-12-31
            return self._cumulative_at(date.max.year) + year.total
        return self._cumulative_at(year.year) + self._within(year, ordinal)

    def _within(self, year: _Year, ordinal: int) -> int:
        """Working µs of the year's dates before ``ordinal``."""
        index = bisect.bisect_left(year.specials, ordinal)
        return self._regular(year.first, ordinal) + year.corrections_before[index]

    def _cumulative_at(self, y: int) -> int:
        """Working µs of the years [_periodic_from, y) (negative: of [y, _periodic_from))."""
        known = self._cumulative
        if not known:
            known[self._periodic_from] = 0
        if y in known:
            return known[y]
        if y > self._periodic_from:
            top = max(known)
            while top < y:
                known[top + 1] = known[top] + self._year(top).total
                top += 1
        else:
            bottom = min(known)
            while bottom > y:
                known[bottom - 1] = known[bottom] - self._year(bottom - 1).total
                bottom -= 1
        return known[y]

    def _regular(self, first: int, end: int) -> int:
        """Working µs of the dates first..end-1 as plain dates (weekday and hours only)."""
        if end <= first or not self._regular_us:
            return 0
        weeks, rest = divmod(end - first, 7)
        days = weeks * len(self._weekday_numbers)
        weekday = (first + 6) % 7
        for i in range(rest):
            if (weekday + i) % 7 in self._weekday_numbers:
                days += 1
        return days * self._regular_us

    def _year(self, y: int) -> _Year:
        cached = self._years.get(y)
        if cached is None:
            cached = self._years[y] = self._build_year(y)
        return cached

    def _build_year(self, y: int) -> _Year:
        first = date(y, 1, 1).toordinal()
        end = date(y + 1, 1, 1).toordinal() if y < date.max.year else date.max.toordinal() + 1
        special: set[int] = set()
        first_year, last_year = self._holiday_years
        if self.holidays_country is not None and first_year <= y <= last_year:
            days_off, weekend_workdays = self._country_days(y)
            special.update(d.toordinal() for d in (*days_off, *weekend_workdays))
        special.update(
            d.toordinal() for d in (*self.extra_holidays, *self.extra_workdays) if d.year == y
        )
        if self._ranges and self._weekday_numbers:
            # Dates whose window (base - 16 h, base + 40 h) holds a change of UTC offset.
            for utc_year in (y - 1, y, y + 1):
                if date.min.year <= utc_year <= date.max.year:
                    for change in _zone_changes(self.timezone, utc_year):
                        low = (change - _DAY_US - _MAX_OFFSET_US) // _DAY_US + _EPOCH_ORD
                        high = _ceil_div(change + _MAX_OFFSET_US, _DAY_US) + _EPOCH_ORD
                        special.update(range(max(low, first), min(high + 1, end)))
        # Dates the walk never looks at count nothing (the margins of the datetime range).
        special.update(range(first, min(end, _FIRST_ORD)))
        special.update(range(max(first, _LAST_ORD + 1), end))
        ordered = tuple(sorted(o for o in special if first <= o < end))
        before = [0]
        for ordinal in ordered:
            worked = 0
            if _FIRST_ORD <= ordinal <= _LAST_ORD:
                worked = sum(b - a for a, b in self._intervals_of(ordinal))
            regular = self._regular(ordinal, ordinal + 1)
            before.append(before[-1] + worked - regular)
        total = self._regular(first, end) + before[-1]
        return _Year(y, first, end, ordered, tuple(before), total)
