"""Holiday tables: a country's holidays as a contract version records them (docs/decisions.md,
"Holiday tables recorded with each contract version")."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from types import ModuleType

import holidays
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slatrail.domain import calendars
from slatrail.domain.calendars import (
    BusinessCalendar,
    CalendarError,
    HolidayTable,
    known_holidays_country,
    package_holiday_table,
)
from slatrail.domain.contract_version import (
    canonical_content,
    contracts_from_content,
    holiday_tables_of,
    holiday_tables_text,
)
from slatrail.domain.contracts import ContractsError
from tests.builders import CONTRACTS_TOML
from tests.hypothesis_profiles import examples

# Countries with substituted working days, observed-day rules crossing New Year, lunar and
# Islamic calendars, and long ranges of known years.
COUNTRIES = ("CN", "DE", "US", "GB", "JP", "KR", "FR", "IN", "SG", "AU", "BR", "SA")

CN_CALENDAR = {
    "timezone": "Asia/Shanghai",
    "weekdays": ["mon", "tue", "wed", "thu", "fri"],
    "hours": ["09:00-12:00", "13:00-17:30"],
    "holidays_country": "CN",
}


class _Unavailable(ModuleType):
    """A `holidays` package that must not be asked."""

    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"the holidays package was asked for {name!r}")


@pytest.mark.parametrize("country", COUNTRIES)
def test_the_recorded_table_is_the_packages_year_by_year_answer(country: str) -> None:
    table = package_holiday_table(country)
    assert (table.first_year, table.last_year) == calendars._country_years(country)
    for year in range(table.first_year - 1, table.last_year + 2):
        expected = (
            calendars._country_year(country, year)
            if table.first_year <= year <= table.last_year
            else (frozenset(), frozenset())
        )
        assert table.of_year(year) == expected, (country, year)
    assert table.source == f"holidays {holidays.version.__version__}"


@pytest.mark.parametrize("country", ("CN", "US"))
def test_a_table_survives_its_json_unchanged(country: str) -> None:
    table = package_holiday_table(country)
    again = HolidayTable.from_json(country, json.loads(json.dumps(table.as_json())))
    assert again == table


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda t: t.pop("first_year"), "first_year"),
        (lambda t: t["days_off"].update({"2026": ["2027-01-01"]}), "not in year 2026"),
        (lambda t: t["days_off"].update({"2101": ["2101-01-01"]}), "not in year 2101"),
        (lambda t: t["workdays"].update({"2026": ["2026-13-01"]}), "month must be"),
        (lambda t: t.update({"days_off": ["2026-01-01"]}), "malformed"),
    ],
)
def test_a_malformed_table_is_refused(change: object, problem: str) -> None:
    data = package_holiday_table("CN").as_json()
    change(data)  # type: ignore[operator]
    with pytest.raises(CalendarError, match="holiday table of 'CN' is malformed") as raised:
        HolidayTable.from_json("CN", data)
    assert problem in str(raised.value)


def test_a_calendar_with_a_recorded_table_never_asks_the_package(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    table = package_holiday_table("CN")
    monkeypatch.setattr(calendars, "_holidays", lambda: _Unavailable("holidays"))
    calendar = BusinessCalendar("cn", **CN_CALENDAR, holiday_table=table)  # type: ignore[arg-type]
    assert not calendar.is_working_day(date(2026, 10, 1))  # National Day
    assert calendar.is_working_day(date(2026, 10, 10))  # a substituted working Saturday
    start = datetime(2026, 9, 28, tzinfo=UTC)
    assert calendar.counted_us(start, start + timedelta(days=40)) > 0


def test_the_calendar_counts_by_the_table_not_by_the_package() -> None:
    """A table that says 2026-06-01 (a Monday) is off: the calendar follows it."""
    real = package_holiday_table("CN")
    off, work = real.of_year(2026)
    moved = HolidayTable(
        "CN", real.first_year, real.last_year,
        {**real.years, 2026: (off | {date(2026, 6, 1)}, work)}, "edited",
    )  # fmt: skip
    recorded = BusinessCalendar("cn", **CN_CALENDAR, holiday_table=moved)  # type: ignore[arg-type]
    live = BusinessCalendar("cn", **CN_CALENDAR)  # type: ignore[arg-type]
    day = datetime(2026, 6, 1, tzinfo=UTC)
    assert live.counted_us(day, day + timedelta(days=1)) == int(7.5 * 3600) * 1_000_000
    assert recorded.counted_us(day, day + timedelta(days=1)) == 0


def test_a_table_of_another_country_is_refused() -> None:
    with pytest.raises(CalendarError, match="holiday table of 'DE' given for holidays = 'CN'"):
        BusinessCalendar("cn", **CN_CALENDAR, holiday_table=package_holiday_table("DE"))  # type: ignore[arg-type]


@settings(max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    start=st.datetimes(min_value=datetime(1949, 6, 1), max_value=datetime(2101, 6, 1)),
    span=st.integers(min_value=0, max_value=400 * 24 * 3600 * 1_000_000),
    need=st.integers(min_value=0, max_value=2_000 * 3600 * 1_000_000),
)
def test_a_recorded_table_measures_exactly_as_the_package(
    start: datetime, span: int, need: int
) -> None:
    recorded = _cn(holiday_table=package_holiday_table("CN"))
    live = _cn()
    begin = start.replace(tzinfo=UTC)
    end = begin + timedelta(microseconds=span)
    assert recorded.counted_us(begin, end) == live.counted_us(begin, end)
    assert recorded.instant_after_us(begin, need) == live.instant_after_us(begin, need)
    assert tuple(recorded.working_intervals(begin, end)) == tuple(
        live.working_intervals(begin, end)
    )


_CALENDARS: dict[bool, BusinessCalendar] = {}


def _cn(holiday_table: HolidayTable | None = None) -> BusinessCalendar:
    """One calendar of each kind for all examples (their caches fill as they go)."""
    key = holiday_table is not None
    if key not in _CALENDARS:
        _CALENDARS[key] = BusinessCalendar("cn", **CN_CALENDAR, holiday_table=holiday_table)  # type: ignore[arg-type]
    return _CALENDARS[key]


@pytest.mark.parametrize("code", ["CN", "CHN", "China", "DE", "US", "USA", "GB", "UK"])
def test_a_country_the_package_knows_is_known_without_importing_every_country(
    code: str,
) -> None:
    assert known_holidays_country(code)
    holidays.country_holidays(code)  # and the package agrees


@pytest.mark.parametrize("code", ["XX", "cn", "", "HolidayBase", "country_holidays", "C N"])
def test_a_code_the_package_does_not_know_is_unknown(code: str) -> None:
    assert not known_holidays_country(code)
    with pytest.raises(CalendarError, match="unknown holidays country code"):
        BusinessCalendar("x", **{**CN_CALENDAR, "holidays_country": code})  # type: ignore[arg-type]


# -- recorded with a contract version -------------------------------------------------------

WITH_DE = CONTRACTS_TOML.replace(
    'extra_holidays = ["2026-03-04"]', 'extra_holidays = ["2026-03-04"]\nholidays = "DE"'
)


def test_a_version_records_the_table_of_every_country_its_calendars_name() -> None:
    contracts, _, _ = canonical_content(WITH_DE, "c.toml")
    text = holiday_tables_text(contracts)
    assert set(json.loads(text)) == {"DE"}
    assert json.loads(text)["DE"] == package_holiday_table("DE").as_json()
    assert holiday_tables_text(canonical_content(CONTRACTS_TOML, "c.toml")[0]) == ""


def test_a_recorded_version_is_measured_by_its_tables_whatever_the_package_says(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    contracts, content, _ = canonical_content(WITH_DE, "c.toml")
    tables = json.loads(holiday_tables_text(contracts))
    tables["DE"]["days_off"]["2026"].append("2026-06-01")  # what the record says
    recorded = json.dumps(tables)
    monkeypatch.setattr(calendars, "_holidays", lambda: _Unavailable("holidays"))
    built = contracts_from_content(content, "<contract version 1>", recorded)
    calendar = built.calendars["office"]
    assert isinstance(calendar, BusinessCalendar)
    assert not calendar.is_working_day(date(2026, 6, 1))  # a Monday, off by the record
    assert not calendar.is_working_day(date(2026, 12, 25))  # Christmas
    assert calendar.is_working_day(date(2026, 6, 2))


def test_a_recorded_version_missing_a_countrys_table_is_not_a_valid_contract() -> None:
    _, content, _ = canonical_content(WITH_DE, "c.toml")
    with pytest.raises(ContractsError, match="no recorded holiday table for holidays = 'DE'"):
        other = json.dumps({"CN": package_holiday_table("CN").as_json()})
        contracts_from_content(content, "<contract version 1>", other)
    with pytest.raises(ContractsError, match="the recorded holiday tables"):
        holiday_tables_of("[1, 2]", "<contract version 1>")


def test_the_same_file_is_a_new_version_once_the_package_gives_other_tables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`contracts apply` of an unchanged file records nothing, unless the installed `holidays`
    package now gives other tables: then the file is recorded again, with them."""
    from slatrail.application.service import SlatrailApplication
    from slatrail.domain import contract_version
    from slatrail.infra.commands.contracts import _same_as_latest
    from tests.builders import contracts_from

    app = SlatrailApplication(contracts_from())
    since = datetime(1970, 1, 1, tzinfo=UTC)
    app.record_contracts(
        WITH_DE, source="c.toml", effective_from=since, actor="am", reason="DE holidays",
        now=datetime(2026, 1, 1, tzinfo=UTC),
    )  # fmt: skip
    book = app.contract_book()
    assert book is not None and _same_as_latest(book, WITH_DE, "c.toml", since)
    real = package_holiday_table("DE")
    newer = HolidayTable("DE", real.first_year, real.last_year + 1, real.years, "holidays 9.9")
    monkeypatch.setattr(contract_version, "package_holiday_table", lambda country: newer)
    assert not _same_as_latest(book, WITH_DE, "c.toml", since)
    second = app.record_contracts(
        WITH_DE, source="c.toml", effective_from=since, actor="am", reason="holidays 9.9",
        now=datetime(2026, 2, 1, tzinfo=UTC),
    )  # fmt: skip
    assert second.summary()["holiday_tables"]["DE"]["source"] == "holidays 9.9"
    assert second.sha256 == book.latest.sha256 and second.holidays != book.latest.holidays


def test_contracts_diff_lists_each_recorded_holiday_that_changed() -> None:
    from slatrail.domain.contract_diff import diff_versions, render_diff

    _, content, _ = canonical_content(WITH_DE, "c.toml")
    old = json.loads(holiday_tables_text(canonical_content(WITH_DE, "c.toml")[0]))
    new = json.loads(json.dumps(old))
    new["DE"]["days_off"]["2027"].append("2027-06-01")
    new["DE"]["days_off"]["2027"].remove("2027-12-25")
    new["DE"]["source"] = "holidays 9.9"
    changes = diff_versions(content, content, json.dumps(old), json.dumps(new))
    assert render_diff(1, 2, changes) == (
        "contract version 1 → 2: 2 change(s)\n"
        "recorded holiday tables:\n"
        "  holiday_tables.DE.days_off.2027: + 2027-06-01, - 2027-12-25\n"
        f"  holiday_tables.DE.source: {old['DE']['source']} → holidays 9.9"
    )
    first, last = old["DE"]["first_year"], old["DE"]["last_year"]
    (added,) = diff_versions(content, content, "", json.dumps(old))
    assert added.text() == f"holiday_tables.DE: added {old['DE']['source']}, years {first}–{last}"
    assert diff_versions(content, content, json.dumps(old), json.dumps(old)) == []
