"""Monthly availability and service credits (reference/clocks.md, docs/reports.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from slatrail.domain.contracts import Contracts, load_contracts
from slatrail.projections.availability import (
    Month,
    monthly_availability,
    quarter_months,
    reporting_zone,
    union_us,
)
from tests.builders import REPORT_CONTRACTS, IncidentFactory, instant

OCTOBER = Month(2026, 10)
NOVEMBER = Month(2026, 11)
BERLIN_OCTOBER_S = 745 * 3600  # 31 days + the hour given back when summer time ends (Oct 25)


@pytest.fixture
def contracts() -> Contracts:
    return load_contracts(REPORT_CONTRACTS, "<test contracts>")


@pytest.fixture
def incidents(contracts: Contracts) -> IncidentFactory:
    return IncidentFactory(contracts)


def outage(
    incidents: IncidentFactory,
    incident_id: str,
    reported: str,
    *,
    customer: str = "berlin",
    impact: str | None = None,
    priority: str = "P1",
) -> IncidentFactory:
    return incidents.report(
        incident_id, reported, customer=customer, priority=priority, outage=True,
        impact_started_at=impact,
    )  # fmt: skip


def utc(text: str) -> datetime:
    return instant(text)


# -- months and zones ---------------------------------------------------------------------------


def test_a_berlin_october_is_one_hour_longer_because_summer_time_ends() -> None:
    start, end = OCTOBER.bounds(ZoneInfo("Europe/Berlin"))
    assert start == utc("2026-09-30T22:00:00Z")
    assert end == utc("2026-10-31T23:00:00Z")
    assert (end - start).total_seconds() == BERLIN_OCTOBER_S


def test_a_berlin_march_is_one_hour_shorter_and_a_shanghai_month_is_not() -> None:
    start, end = Month(2026, 3).bounds(ZoneInfo("Europe/Berlin"))
    assert (end - start).total_seconds() == 743 * 3600
    start, end = OCTOBER.bounds(ZoneInfo("Asia/Shanghai"))
    assert (start, end) == (utc("2026-09-30T16:00:00Z"), utc("2026-10-31T16:00:00Z"))


def test_months_parse_shift_across_years_and_quarters_expand_to_three_months() -> None:
    assert Month.parse("2026-01").shifted(-1) == Month(2025, 12)
    assert Month.parse("2026-12").shifted(1) == Month(2027, 1)
    assert str(Month(2026, 3)) == "2026-03"
    assert quarter_months("2026-Q4") == [Month(2026, 10), Month(2026, 11), Month(2026, 12)]
    for bad in ("2026-13", "2026-1", "26-10", "October"):
        with pytest.raises(ValueError):
            Month.parse(bad)
    with pytest.raises(ValueError):
        quarter_months("2026-Q5")


def test_the_reporting_zone_is_the_customers_then_its_tiers_business_calendars_then_utc(
    contracts: Contracts,
) -> None:
    assert reporting_zone(contracts, "shanghai") == "Asia/Shanghai"
    assert reporting_zone(contracts, "bizcal") == "Europe/Berlin"
    assert reporting_zone(contracts, "utc-co") == "UTC"


# -- downtime -----------------------------------------------------------------------------------


def test_overlapping_outages_count_once_and_are_clipped_to_the_month_in_the_customers_zone(
    incidents: IncidentFactory, contracts: Contracts
) -> None:
    # A: down since 23:00 Berlin on Sep 30 (21:00Z), restored 23:00Z: 1 h of it is October.
    outage(incidents, "A", "2026-09-30T21:10:00Z", impact="2026-09-30T21:00:00Z")
    incidents.then("A", "workaround_provided", "2026-09-30T23:00:00Z", restores_service=True)
    # B overlaps A: 22:30Z–23:30Z (service_restored_at before the resolution). Union: 1 h 30 m.
    outage(incidents, "B", "2026-09-30T22:30:00Z")
    incidents.then("B", "resolved", "2026-10-01T00:00:00Z",
                   service_restored_at="2026-09-30T23:30:00Z")  # fmt: skip
    # C spans the fall-back night: 02:30 summer time to 02:30 winter time is one real hour.
    outage(incidents, "C", "2026-10-25T00:30:00Z")
    incidents.then("C", "resolved", "2026-10-25T01:30:00Z")
    # D runs over the month end (Nov 1 00:00 Berlin = Oct 31 23:00Z): 30 min in October.
    outage(incidents, "D", "2026-10-31T22:30:00Z")
    incidents.then("D", "resolved", "2026-11-01T00:30:00Z")

    result = monthly_availability(
        incidents.histories(), contracts, "berlin", OCTOBER, utc("2026-11-05T00:00:00Z")
    )

    assert result.month_s == BERLIN_OCTOBER_S
    assert result.downtime_s == 5400 + 3600 + 1800
    assert result.percent == 99.5973  # 100 × (1 − 10 800 / 2 682 000) = 99.59731…, truncated
    assert result.allowance_s == 2682.0
    assert result.credit_percent == 10
    assert [o.incident_id for o in result.outages] == ["A", "B", "C", "D"]


def test_the_same_outages_fall_into_other_months_for_a_customer_in_utc(
    incidents: IncidentFactory, contracts: Contracts
) -> None:
    outage(incidents, "A", "2026-09-30T22:30:00Z", customer="utc-co")
    incidents.then("A", "resolved", "2026-10-01T00:30:00Z")
    as_of = utc("2026-11-05T00:00:00Z")

    october = monthly_availability(incidents.histories(), contracts, "utc-co", OCTOBER, as_of)
    september = monthly_availability(
        incidents.histories(), contracts, "utc-co", Month(2026, 9), as_of
    )

    assert (october.timezone, october.month_s, october.downtime_s) == ("UTC", 744 * 3600, 1800)
    assert (september.month_s, september.downtime_s) == (720 * 3600, 5400)


def test_an_excluded_outage_costs_no_downtime_but_is_still_listed(
    incidents: IncidentFactory, contracts: Contracts
) -> None:
    outage(incidents, "M", "2026-10-10T10:00:00Z")
    incidents.then("M", "resolved", "2026-10-10T12:00:00Z", cause="maintenance")
    outage(incidents, "V", "2026-10-10T11:00:00Z")
    incidents.then("V", "resolved", "2026-10-10T13:00:00Z", cause="vendor")

    result = monthly_availability(
        incidents.histories(), contracts, "berlin", OCTOBER, utc("2026-11-05T00:00:00Z")
    )

    assert result.downtime_s == 7200  # only V, 11:00–13:00, even where M overlaps it
    assert [(o.incident_id, o.excluded, o.cause) for o in result.outages] == [
        ("M", True, "maintenance"),
        ("V", False, "vendor"),
    ]


def test_an_outage_still_open_at_month_end_counts_up_to_the_month_end(
    incidents: IncidentFactory, contracts: Contracts
) -> None:
    outage(incidents, "O", "2026-10-31T21:00:00Z")
    histories = incidents.histories()

    after = monthly_availability(
        histories, contracts, "berlin", OCTOBER, utc("2026-11-03T00:00:00Z")
    )
    during = monthly_availability(
        histories, contracts, "berlin", OCTOBER, utc("2026-10-31T22:00:00Z")
    )
    november = monthly_availability(
        histories, contracts, "berlin", NOVEMBER, utc("2026-11-01T01:00:00Z")
    )

    assert after.downtime_s == 7200 and after.outages[0].ongoing
    assert after.complete
    assert during.downtime_s == 3600 and not during.complete
    assert november.downtime_s == 7200  # Oct 31 23:00Z to as_of Nov 1 01:00Z


def test_downtime_ends_at_the_first_restoring_workaround_even_if_the_incident_reopens(
    incidents: IncidentFactory, contracts: Contracts
) -> None:
    outage(incidents, "R", "2026-10-10T10:00:00Z")
    incidents.then("R", "workaround_provided", "2026-10-10T10:20:00Z", restores_service=False)
    incidents.then("R", "workaround_provided", "2026-10-10T11:00:00Z", restores_service=True)
    incidents.then(
        "R", "resolved", "2026-10-10T15:00:00Z", service_restored_at="2026-10-10T14:00:00Z"
    )
    incidents.then("R", "reopened", "2026-10-11T09:00:00Z")
    incidents.then("R", "resolved", "2026-10-11T12:00:00Z")

    result = monthly_availability(
        incidents.histories(), contracts, "berlin", OCTOBER, utc("2026-11-05T00:00:00Z")
    )

    assert result.downtime_s == 3600


def test_an_incident_that_is_not_an_outage_costs_no_availability(
    incidents: IncidentFactory, contracts: Contracts
) -> None:
    incidents.report("P", "2026-10-10T10:00:00Z", customer="berlin", priority="P1")
    result = monthly_availability(
        incidents.histories(), contracts, "berlin", OCTOBER, utc("2026-11-05T00:00:00Z")
    )
    assert (result.downtime_s, result.percent, result.credit_percent) == (0.0, 100.0, 0.0)
    assert result.outages == ()


def test_only_what_was_recorded_by_as_known_at_is_used(
    incidents: IncidentFactory, contracts: Contracts
) -> None:
    outage(incidents, "K", "2026-10-10T10:00:00Z")
    incidents.then("K", "resolved", "2026-10-10T11:00:00Z", cause="third_party",
                   recorded_at="2026-11-02T09:00:00Z")  # fmt: skip
    as_of = utc("2026-11-05T00:00:00Z")

    now = monthly_availability(incidents.histories(), contracts, "berlin", OCTOBER, as_of)
    before = monthly_availability(
        incidents.histories(), contracts, "berlin", OCTOBER, as_of,
        as_known_at=utc("2026-11-01T00:00:00Z"),
    )  # fmt: skip

    assert now.downtime_s == 0  # excluded once the third-party cause was recorded
    assert before.downtime_s == (utc("2026-10-31T23:00:00Z") - utc("2026-10-10T10:00:00Z")) / (
        timedelta(seconds=1)
    )


def test_the_union_of_intervals_counts_shared_and_touching_time_once() -> None:
    t = datetime(2026, 10, 1, tzinfo=UTC)
    h = timedelta(hours=1)
    assert union_us([(t, t + 2 * h), (t + h, t + 3 * h), (t + 3 * h, t + 4 * h)]) == 4 * 3600e6
    assert union_us([(t + 5 * h, t + 6 * h), (t, t + h), (t + h, t)]) == 2 * 3600e6
    assert union_us([]) == 0


# -- credits ------------------------------------------------------------------------------------

NOVEMBER_S = 30 * 86400  # UTC customer: 2 592 000 s; 99.9 % allows exactly 2 592 s


@pytest.mark.parametrize(
    ("downtime", "percent", "credit"),
    [
        (timedelta(seconds=2592), 99.9, 0.0),  # exactly at the target: no credit
        (timedelta(seconds=2592, microseconds=1), 99.8999, 10.0),  # a microsecond below it
        (timedelta(seconds=25920), 99.0, 10.0),  # exactly 99 %: not below 99
        (timedelta(seconds=25921), 98.9999, 25.0),
        (timedelta(seconds=129600), 95.0, 25.0),  # exactly 95 %: not below 95
        (timedelta(seconds=129601), 94.9999, 50.0),
        (timedelta(days=30), 0.0, 50.0),
    ],
)
def test_the_credit_is_the_largest_whose_threshold_the_availability_falls_below(
    incidents: IncidentFactory,
    contracts: Contracts,
    downtime: timedelta,
    percent: float,
    credit: float,
) -> None:
    start = utc("2026-11-01T00:00:00Z")
    outage(incidents, "X", start.isoformat(), customer="utc-co")
    incidents.then("X", "workaround_provided", start + downtime, restores_service=True)

    result = monthly_availability(
        incidents.histories(), contracts, "utc-co", NOVEMBER, utc("2026-12-02T00:00:00Z")
    )

    assert result.month_s == NOVEMBER_S
    assert result.downtime_s == downtime.total_seconds()
    assert result.percent == percent
    assert result.credit_percent == credit
