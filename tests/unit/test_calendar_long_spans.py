"""Business calendars over long spans (docs/decisions.md, Calendars: bounded work for any input).

Spans longer than a few weeks are no longer walked date by date: whole local dates are summed
per year (regular dates arithmetically, holidays, substituted working days and dates near a UTC
offset change exactly) and, from the year the tz rules and holiday data settle, by 400-year
periods (docs/decisions.md). These tests hold that to

* the minute-by-minute reference of `test_calendar_properties`, over windows of months crossing a
  year boundary with public holidays, substituted working days and both DST changes;
* a date-by-date reference built on `day_intervals` (itself checked against the minute
  reference), over spans of years, in zones with unusual rules, across the years where the
  holiday data ends, where single tz changes end and where the 400-year period starts, and up
  to the end of year 9999; compared in integer microseconds;
* time budgets: a clock as of 9999-12-31 and a target of 99999999 days are answered in well under
  a second or two (they took minutes).
"""

from __future__ import annotations

import itertools
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slatrail.domain.calendars import (
    ZONE_RULES_FROM_YEAR,
    BusinessCalendar,
    _zone_changes,
)
from slatrail.domain.clocks import EXPLAIN_INTERVALS, due_instant_us
from slatrail.domain.contracts import ContractsError
from slatrail.projections.escalation import escalation_state
from slatrail.projections.sla import incident_sla
from tests.builders import CONTRACTS_TOML, contracts_from, record_history, reported_data, utc
from tests.hypothesis_profiles import examples
from tests.unit.test_calendar_properties import WEEKDAYS, Case, Region, _hhmm, hour_ranges

MINUTE = timedelta(minutes=1)
US = timedelta(microseconds=1)
END_OF_TIME = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)

# -- months-long windows against the minute-by-minute reference ------------------------------

LONG_REGIONS = (
    # DST ends 25 Oct 2026, Christmas and New Year, DST starts 28 Mar 2027.
    Region(
        "Europe/Berlin",
        (None, "DE"),
        utc(2026, 10, 1),
        utc(2027, 4, 5),
        (utc(2026, 10, 25, 1), utc(2026, 12, 24), utc(2027, 3, 28, 1)),
    ),
    # New Year and the 2027 Spring Festival with its substituted working days.
    Region(
        "Asia/Shanghai",
        ("CN",),
        utc(2026, 12, 5),
        utc(2027, 3, 10),
        (utc(2026, 12, 31, 16), utc(2027, 2, 5, 16)),
    ),
    # DST ends 1 Nov 2026, Thanksgiving, Christmas, New Year, MLK day, DST starts 14 Mar 2027.
    Region(
        "America/New_York",
        (None, "US"),
        utc(2026, 10, 20),
        utc(2027, 3, 25),
        (utc(2026, 11, 1, 6), utc(2027, 3, 14, 7)),
    ),
)

LONG_SETTINGS = settings(
    max_examples=examples(30),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@st.composite
def long_cases(draw: st.DrawFn) -> tuple[Case, int, int]:
    region = draw(st.sampled_from(LONG_REGIONS))
    days = (region.last - region.first).days
    day = st.integers(0, days - 1).map(lambda n: region.first.date() + timedelta(days=n))
    case = Case(
        region=region,
        country=draw(st.sampled_from(region.countries)),
        weekdays=draw(
            st.one_of(
                st.just(WEEKDAYS[:5]),
                st.lists(st.sampled_from(WEEKDAYS), unique=True, min_size=1).map(
                    lambda names: tuple(sorted(names, key=WEEKDAYS.index))
                ),
            )
        ),
        ranges=draw(hour_ranges()),
        extra_holidays=tuple(draw(st.lists(day, max_size=3))),
        extra_workdays=tuple(draw(st.lists(day, max_size=3))),
    )
    total = region.minutes
    length = draw(st.integers(70 * 24 * 60, total - 1))  # beyond the date-by-date walk
    first = draw(st.integers(0, total - length))
    return case, first, first + length


@LONG_SETTINGS
@given(long_cases())
def test_months_long_counts_equal_the_minute_by_minute_reference(example: Any) -> None:
    case, first, last = example
    calendar = case.calendar()
    minutes = sum(case.reference_minutes(first, last))
    start, end = case.instant(first), case.instant(last)
    assert calendar.counted_us(start, end) == minutes * 60_000_000
    assert calendar.counted_seconds(start, end) == 60 * minutes


@LONG_SETTINGS
@given(long_cases(), st.data())
def test_months_long_targets_are_reached_at_the_reference_minute(
    example: Any, data: st.DataObject
) -> None:
    case, first, last = example
    calendar = case.calendar()
    flags = case.reference_minutes(first, last)
    worked = sum(flags)
    if worked == 0:
        return
    target = data.draw(st.integers(max(1, worked // 2), worked))
    start = case.instant(first)
    due = calendar.instant_after_us(start, target * 60_000_000)
    running = 0
    for offset, flag in enumerate(flags):
        running += flag
        if running == target:
            assert due == case.instant(first + offset + 1)
            break
    assert due is not None
    assert calendar.instant_after_us(start, target * 60_000_000 - 1) == due - US


# -- years-long spans against a date-by-date reference ---------------------------------------

ZONES = (
    ("Europe/Berlin", "DE"),
    ("Asia/Shanghai", "CN"),
    ("America/New_York", "US"),
    ("Asia/Gaza", None),  # single changes listed to 2087 (Ramadan)
    ("Africa/Casablanca", None),  # likewise, and a negative DST
    ("Australia/Lord_Howe", None),  # 30-minute DST
    ("Pacific/Apia", None),  # skipped 30 Dec 2011 crossing the date line
    ("America/St_Johns", None),  # offset not a whole hour
)
START_YEARS = (1, 1960, 2011, 2026, 2085, 2099, ZONE_RULES_FROM_YEAR - 2, 2598, 2601, 7777, 9993)


def reference_intervals(calendar: BusinessCalendar, s: datetime, e: datetime) -> list[Any]:
    """The working intervals of every local date that may touch [s, e), clipped, in order."""
    first = max(s.date().toordinal() - 2, date.min.toordinal() + 2)
    last = min(e.date().toordinal() + 1, date.max.toordinal() - 2)
    found = []
    for ordinal in range(first, last + 1):
        for a, b in calendar.day_intervals(date.fromordinal(ordinal)):
            a, b = max(a, s), min(b, e)
            if b > a:
                found.append((a, b))
    return sorted(found)


@st.composite
def long_spans(draw: st.DrawFn) -> tuple[BusinessCalendar, datetime, datetime]:
    zone, country = draw(st.sampled_from(ZONES))
    year = draw(st.sampled_from(START_YEARS))
    weekdays = draw(
        st.one_of(
            st.just(list(WEEKDAYS[:5])),
            st.lists(st.sampled_from(WEEKDAYS), unique=True, min_size=1),
        )
    )
    ranges = draw(hour_ranges())
    extra = st.dates(date(year, 1, 1), date(min(year + 5, 9999), 12, 31))
    calendar = BusinessCalendar(
        "long",
        timezone=zone,
        weekdays=weekdays,
        hours=[f"{_hhmm(a)}-{_hhmm(b)}" for a, b in ranges],
        holidays_country=draw(st.sampled_from([country, None])),
        extra_holidays=draw(st.lists(extra, max_size=3)),
        extra_workdays=draw(st.lists(extra, max_size=3)),
    )
    start = datetime(year, 1, 1, tzinfo=UTC) + timedelta(
        minutes=draw(st.integers(0, 400 * 24 * 60))
    )
    length = timedelta(minutes=draw(st.integers(65 * 24 * 60, 4 * 366 * 24 * 60)))
    end = min(start + length, END_OF_TIME)
    return calendar, start, end


@settings(
    max_examples=examples(40),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(long_spans(), st.data())
def test_years_long_spans_equal_the_date_by_date_reference(span: Any, data: st.DataObject) -> None:
    calendar, start, end = span
    intervals = reference_intervals(calendar, start, end)
    total = sum((b - a) // US for a, b in intervals)
    assert calendar.counted_us(start, end) == total
    if total == 0:
        return
    need = data.draw(st.integers(1, total))
    expected = None
    left = need
    for a, b in intervals:
        if left <= (b - a) // US:
            expected = a + left * US
            break
        left -= (b - a) // US
    assert calendar.instant_after_us(start, need) == expected


def test_the_periodic_era_repeats_every_400_years_to_the_microsecond() -> None:
    calendar = BusinessCalendar(
        "office", timezone="Europe/Berlin", weekdays=list(WEEKDAYS[:5]), hours=["09:00-17:30"],
        holidays_country="DE",
    )  # fmt: skip
    period = timedelta(days=146_097)
    start = datetime(3001, 5, 17, 8, 13, tzinfo=UTC)
    year = calendar.counted_us(start, start + timedelta(days=365))
    assert calendar.counted_us(start + 10 * period, start + 10 * period + timedelta(days=365)) == (
        year
    )
    whole = calendar.counted_us(start, start + period)
    assert calendar.counted_us(start, start + 7 * period) == 7 * whole
    # 400 years hold 20 871 weeks of 5 working days (no holidays known that far ahead).
    assert whole == 20_871 * 5 * 8 * 3600 * 1_000_000 + 20_871 * 5 * 1800 * 1_000_000


# -- time budgets -------------------------------------------------------------------------------


def test_a_business_clock_as_of_the_end_of_year_9999_is_computed_quickly() -> None:
    contracts = contracts_from()
    events = record_history([("reported", utc(2026, 3, 2, 9), reported_data())], contracts)
    started = time.perf_counter()
    view = incident_sla(events, contracts, END_OF_TIME)
    state = escalation_state(events, contracts, END_OF_TIME)
    took = time.perf_counter() - started
    assert view is not None and state is not None
    resolution = view.as_json()["metrics"]["resolution"]
    assert resolution["status"] == "breached"
    assert resolution["due_at"] == "2026-03-06T10:30:00Z"  # 24 h of office hours
    assert state.level == 4
    assert took < 5, f"{took:.1f} s"  # it took minutes


def test_counting_from_year_1_to_year_9999_is_bounded() -> None:
    calendar = BusinessCalendar(
        "cn", timezone="Asia/Shanghai", weekdays=list(WEEKDAYS[:5]), hours=["09:00-17:30"],
        holidays_country="CN",
    )  # fmt: skip
    started = time.perf_counter()
    total = calendar.counted_us(datetime(1, 1, 1, tzinfo=UTC), END_OF_TIME)
    again = calendar.instant_after_us(datetime(1, 1, 1, tzinfo=UTC), total)
    assert time.perf_counter() - started < 10
    assert again is not None and again.year == 9999
    assert calendar.instant_after_us(datetime(1, 1, 1, tzinfo=UTC), total + 1) is None


def test_a_target_of_99999999_days_is_unreachable_quickly_and_refused_in_a_contract() -> None:
    calendar = BusinessCalendar(
        "office", timezone="Europe/Berlin", weekdays=list(WEEKDAYS[:5]), hours=["09:00-17:30"]
    )
    target_us = 99_999_999 * 86400 * 1_000_000
    started = time.perf_counter()
    assert calendar.instant_after_us(utc(2026, 3, 2), target_us) is None
    segments = [(utc(2026, 3, 2), utc(2027, 3, 2))]
    assert due_instant_us(calendar, segments, utc(2027, 3, 2), target_us) is None
    assert time.perf_counter() - started < 5
    with pytest.raises(ContractsError, match=r"tiers\.gold\.P3\.response: .*99999999d.*3660 days"):
        contracts_from(CONTRACTS_TOML.replace('response = "4h"', 'response = "99999999d"', 1))


# -- the tz data assumptions the long spans rely on ---------------------------------------------


def _installed_tzif(key: str) -> Any:
    """(transition instants, offsets) of the TZif file ZoneInfo(key) reads (private stdlib
    helpers: test-only)."""
    common = pytest.importorskip("zoneinfo._common")
    tzpath = pytest.importorskip("zoneinfo._tzpath")
    path = tzpath.find_tzfile(key)
    with Path(path).open("rb") if path else common.load_tzdata(key) as handle:
        trans_idx, trans_utc, utcoff, _isdst, _abbr, _tz_str = common.load_data(handle)
    return trans_utc, [utcoff[i] for i in trans_idx], utcoff[0] if utcoff else 0


def test_no_zone_changes_offset_twice_within_the_sampling_step_nor_lists_changes_late() -> None:
    import zoneinfo

    from slatrail.domain.calendars import _CHANGE_STEP_US

    latest = datetime(ZONE_RULES_FROM_YEAR - 1, 1, 1, tzinfo=UTC).timestamp()
    for key in sorted(zoneinfo.available_timezones()):
        try:
            instants, offsets, current = _installed_tzif(key)
        except (OSError, ValueError, KeyError):  # not a zone file (e.g. "localtime")
            continue
        changes = []
        for at, offset in zip(instants, offsets, strict=True):
            if offset != current:
                changes.append(at)
                current = offset
        for before, after in itertools.pairwise(changes):
            assert (after - before) * 1_000_000 > _CHANGE_STEP_US, key
        assert not instants or instants[-1] < latest, key


@pytest.mark.parametrize("zone", [z for z, _ in ZONES] + ["America/Sao_Paulo", "Europe/Dublin"])
def test_offset_changes_repeat_every_400_years_from_the_rules_year(zone: str) -> None:
    shift = 146_097 * 86_400 * 1_000_000
    for year in (ZONE_RULES_FROM_YEAR, ZONE_RULES_FROM_YEAR + 123, 5000):
        later = _zone_changes(zone, year + 400)
        assert later == tuple(change + shift for change in _zone_changes(zone, year)), year


def test_explain_lists_the_first_thousand_counted_intervals_of_a_clock_running_for_years() -> None:
    contracts = contracts_from()
    events = record_history([("reported", utc(2026, 3, 2, 9), reported_data())], contracts)
    far = incident_sla(events, contracts, END_OF_TIME)
    near = incident_sla(events, contracts, utc(2026, 3, 3, 9))
    assert far is not None and near is not None
    started = time.perf_counter()
    explained = far.explain()["metrics"]["resolution"]
    assert time.perf_counter() - started < 5
    assert len(explained["counted_intervals"]) == EXPLAIN_INTERVALS
    assert explained["counted_intervals_truncated"] is True
    assert explained["counted_intervals"][0] == ["2026-03-02T09:00:00Z", "2026-03-02T11:00:00Z"]
    short = near.explain()["metrics"]["resolution"]
    assert short["counted_intervals_truncated"] is False
    assert len(short["counted_intervals"]) == 3  # 10-12, 13-17:30, next day 9-10 local
