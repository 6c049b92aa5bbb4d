"""Monthly availability and service credits per customer (reference/clocks.md, docs/reports.md).

A pure function of (incident timelines as of `as_of`, contracts, customer, month). Downtime is
kept in whole microseconds and the availability as an exact fraction, so a month that is
exactly at its target earns no credit, whatever binary floating point would say.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

from slatrail.domain.calendars import BusinessCalendar
from slatrail.domain.contract_version import ContractSource
from slatrail.domain.contracts import Contracts
from slatrail.domain.model import Cause, IncidentEvent, Priority, State, format_instant
from slatrail.domain.timeline import Timeline, build_timeline
from slatrail.projections.history import known_by

_MICROSECOND = timedelta(microseconds=1)
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_QUARTER = re.compile(r"^(\d{4})-[Qq]([1-4])$")
PERCENT_SCALE = 10_000  # percent is given to 4 decimals


@dataclass(frozen=True, order=True, slots=True)
class Month:
    """A calendar month; its boundaries depend on the time zone it is read in."""

    year: int
    month: int

    def __post_init__(self) -> None:
        if not 1 <= self.month <= 12 or not 1 <= self.year <= 9999:  # 9999-01: end of 9998-12
            raise ValueError(f"not a month: {self.year}-{self.month}")

    @classmethod
    def parse(cls, text: str) -> Month:
        """`YYYY-MM`."""
        match = _MONTH.match(text.strip())
        if match is None or not 1 <= int(match.group(2)) <= 12:
            raise ValueError(f"not a month like 2026-10: {text!r}")
        return cls(int(match.group(1)), int(match.group(2)))

    @classmethod
    def containing(cls, moment: datetime, zone: ZoneInfo) -> Month:
        local = moment.astimezone(zone)
        return cls(local.year, local.month)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    def shifted(self, months: int) -> Month:
        index = self.year * 12 + (self.month - 1) + months
        return Month(index // 12, index % 12 + 1)

    def bounds(self, zone: ZoneInfo) -> tuple[datetime, datetime]:
        """[start, end) in UTC: local midnight of the 1st to local midnight of the next 1st."""
        after = self.shifted(1)
        start = datetime(self.year, self.month, 1, tzinfo=zone).astimezone(UTC)
        end = datetime(after.year, after.month, 1, tzinfo=zone).astimezone(UTC)
        return start, end


def quarter_months(text: str) -> list[Month]:
    """The three months of `YYYY-Qn`."""
    match = _QUARTER.match(text.strip())
    if match is None:
        raise ValueError(f"not a quarter like 2026-Q4: {text!r}")
    year, quarter = int(match.group(1)), int(match.group(2))
    return [Month(year, 3 * (quarter - 1) + n) for n in (1, 2, 3)]


def reporting_zone(contracts: Contracts, customer: str) -> str:
    """The customer's `timezone`, else the zone of its tier's first business calendar
    (P1 to P4), else UTC."""
    found = contracts.customer(customer)
    if found is not None and found.timezone:
        return found.timezone
    tier = contracts.tier_of(customer)
    if tier is not None:
        for priority in Priority:
            targets = tier[1].for_priority(priority)
            calendar = (
                contracts.calendars.get(targets.calendar) if targets and targets.calendar else None
            )
            if isinstance(calendar, BusinessCalendar):
                return calendar.timezone
    return "UTC"


@dataclass(frozen=True, slots=True)
class Outage:
    """One outage incident's down interval, `[start, end)`; `end` is `as_of` while down."""

    incident_id: str
    title: str
    start: datetime
    end: datetime
    ongoing: bool
    excluded: bool
    cause: Cause | None

    def seconds_within(self, start: datetime, end: datetime) -> float:
        return _us(max(self.start, start), min(self.end, end)) / 1e6


def outage_of(timeline: Timeline) -> Outage | None:
    """The down interval of an outage incident (reference/clocks.md), None for other incidents.

    It ends at the first restoring workaround, else the first resolution's
    `service_restored_at`, else that resolution; a later reopening does not reopen it.
    """
    if not timeline.outage:
        return None
    start = timeline.impact_started_at or timeline.reported_at
    first = timeline.resolutions[0] if timeline.resolutions else None
    end: datetime | None = timeline.first_restoring_workaround_at
    if end is None and first is not None:
        end = first.service_restored_at or first.at
    ongoing = end is None
    finish = timeline.as_of if end is None else end
    latest = timeline.latest_resolution
    return Outage(
        incident_id=timeline.incident_id,
        title=timeline.title,
        start=start,
        end=max(start, finish),
        ongoing=ongoing,
        excluded=timeline.excluded,
        cause=latest.cause if latest is not None and timeline.state is State.RESOLVED else None,
    )


@dataclass(frozen=True)
class MonthlyAvailability:
    customer: str
    tier: str
    month: Month
    timezone: str
    start: datetime
    end: datetime
    as_of: datetime
    target: float
    downtime_us: int
    ratio: Fraction  # availability as an exact fraction of 1
    credit_percent: float
    outages: tuple[Outage, ...]  # every outage overlapping the month, excluded ones too

    @property
    def month_s(self) -> float:
        return _us(self.start, self.end) / 1e6

    @property
    def downtime_s(self) -> float:
        return self.downtime_us / 1e6

    @property
    def allowance_s(self) -> float:
        """Downtime the target allows in this month."""
        allowed = (1 - Fraction(str(self.target)) / 100) * _us(self.start, self.end)
        return round(float(allowed) / 1e6, 6)

    @property
    def percent(self) -> float:
        """Availability in percent, truncated (never rounded up) to 4 decimals."""
        return math.floor(self.ratio * 100 * PERCENT_SCALE) / PERCENT_SCALE

    @property
    def complete(self) -> bool:
        return self.as_of >= self.end

    def as_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "percent": self.percent,
            "downtime_s": self.downtime_s,
            "allowance_s": self.allowance_s,
            "credit_percent": self.credit_percent,
            "month_s": self.month_s,
            "timezone": self.timezone,
            "complete": self.complete,
            "outages": [
                {
                    "incident_id": o.incident_id,
                    "title": o.title,
                    "start": format_instant(o.start),
                    "end": None if o.ongoing else format_instant(o.end),
                    "ongoing": o.ongoing,
                    "excluded": o.excluded,
                    "cause": str(o.cause) if o.cause else None,
                    "seconds_in_month": o.seconds_within(self.start, self.end),
                }
                for o in self.outages
            ],
        }


def month_contracts(source: ContractSource, customer: str, month: Month) -> Contracts:
    """The version that decides a month's figures for a customer (its tier, reporting zone,
    availability target and credits): the one in force at the month's last instant."""
    first = source.for_period(month.bounds(ZoneInfo("UTC"))[1] - _MICROSECOND)
    _, end = month.bounds(ZoneInfo(reporting_zone(first, customer)))
    return source.for_period(end - _MICROSECOND)


def availability(
    timelines: Iterable[Timeline],
    source: ContractSource,
    customer: str,
    month: Month,
    as_of: datetime,
) -> MonthlyAvailability:
    """Availability and credit of `customer` in `month`, from timelines built as of `as_of`,
    under the month's contract version (`month_contracts`)."""
    contracts = month_contracts(source, customer, month)
    tier = contracts.tier_of(customer)
    if tier is None:
        raise ValueError(f"customer {customer!r} is not in the contracts")
    tier_name, tier_spec = tier
    zone_name = reporting_zone(contracts, customer)
    start, end = month.bounds(ZoneInfo(zone_name))
    outages = sorted(
        (
            outage
            for t in timelines
            if t.customer == customer
            and (outage := outage_of(t)) is not None
            and outage.start < end
            and outage.end > start
        ),
        key=lambda o: (o.start, o.incident_id),
    )
    counted = [(max(o.start, start), min(o.end, end)) for o in outages if not o.excluded]
    downtime_us = union_us(counted)
    ratio = 1 - Fraction(downtime_us, _us(start, end))
    return MonthlyAvailability(
        customer=customer,
        tier=tier_name,
        month=month,
        timezone=zone_name,
        start=start,
        end=end,
        as_of=as_of,
        target=tier_spec.availability_target,
        downtime_us=downtime_us,
        ratio=ratio,
        credit_percent=contracts.credit_percent(float(ratio * 100), tier_spec),
        outages=tuple(outages),
    )


def monthly_availability(
    histories: Iterable[Sequence[IncidentEvent]],
    contracts: ContractSource,
    customer: str,
    month: Month,
    as_of: datetime,
    *,
    as_known_at: datetime | None = None,
) -> MonthlyAvailability:
    """`availability` straight from incident histories (events by `as_of`, known by
    `as_known_at`)."""
    timelines = (build_timeline(known_by(events, as_known_at), as_of) for events in histories)
    return availability((t for t in timelines if t is not None), contracts, customer, month, as_of)


def union_us(intervals: Iterable[tuple[datetime, datetime]]) -> int:
    """Length of the union of `[start, end)` intervals, in microseconds."""
    total = 0
    current: tuple[datetime, datetime] | None = None
    for start, end in sorted(i for i in intervals if i[1] > i[0]):
        if current is not None and start <= current[1]:
            current = (current[0], max(current[1], end))
            continue
        if current is not None:
            total += _us(*current)
        current = (start, end)
    if current is not None:
        total += _us(*current)
    return total


def _us(start: datetime, end: datetime) -> int:
    # Converted first: two instants sharing a ZoneInfo subtract as wall-clock times.
    return max(0, (end.astimezone(UTC) - start.astimezone(UTC)) // _MICROSECOND)
