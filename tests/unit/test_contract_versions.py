"""Contract versions as recorded history: the chain, the rule choosing the version that
measures an incident, diffs, and reports as known before and after a new version."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from slatrail.application.service import SlatrailApplication
from slatrail.domain.contract_diff import diff_contents, render_diff
from slatrail.domain.contract_version import (
    SINCE_EVER,
    ContractBook,
    canonical_content,
    version_fields,
)
from slatrail.domain.contracts import ContractsError
from slatrail.domain.model import GENESIS_HASH, chain_hash
from slatrail.projections.availability import Month
from slatrail.projections.report import monthly_reports
from slatrail.projections.sla import sla_view
from tests.builders import CONTRACTS_TOML, IncidentFactory, contracts_from

UPGRADED = CONTRACTS_TOML.replace(
    '[customers.dayco]\ntier = "daily"', '[customers.dayco]\ntier = "gold"'
)
HOLIDAY = CONTRACTS_TOML.replace(
    'extra_holidays = ["2026-03-04"]', 'extra_holidays = ["2026-03-04", "2026-10-14"]'
)


def _app_with(*versions: tuple[str, str, str]) -> SlatrailApplication:
    """An in-memory store with the given (text, effective_from, recorded_at) versions."""
    app = SlatrailApplication(contracts_from())
    for text, effective, recorded in versions:
        app.record_contracts(
            text, source="c.toml", effective_from=_at(effective), actor="am", reason="test",
            now=_at(recorded),
        )  # fmt: skip
    return app


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _book(app: SlatrailApplication) -> ContractBook:
    book = app.contract_book()
    assert book is not None
    return book


def test_versions_are_hash_chained_over_their_canonical_content() -> None:
    app = _app_with(
        (CONTRACTS_TOML, "1970-01-01T00:00:00Z", "2026-10-01T00:00:00Z"),
        (UPGRADED, "2026-10-15T00:00:00Z", "2026-10-20T00:00:00Z"),
    )
    first, second = _book(app).versions
    assert (first.version, second.version) == (1, 2)
    assert first.prev_hash == GENESIS_HASH and second.prev_hash == first.hash
    fields = version_fields(
        version=2, sha256=second.sha256, effective_from=second.effective_from,
        recorded_at=second.recorded_at, actor="am", reason="test",
    )  # fmt: skip
    assert second.hash == chain_hash(first.hash, fields)
    assert second.sha256 == canonical_content(UPGRADED, "x")[2]


def test_comments_and_layout_do_not_change_the_canonical_content() -> None:
    _, content, sha = canonical_content(CONTRACTS_TOML, "a")
    _, content2, sha2 = canonical_content("# a comment\n" + CONTRACTS_TOML + "\n\n", "b")
    assert (content, sha) == (content2, sha2)


def test_an_invalid_file_is_never_recorded() -> None:
    app = _app_with((CONTRACTS_TOML, "1970-01-01T00:00:00Z", "2026-10-01T00:00:00Z"))
    with pytest.raises(ContractsError, match="unknown tier"):
        app.record_contracts(
            CONTRACTS_TOML.replace('tier = "daily"', 'tier = "platinum"'), source="bad.toml",
            effective_from=SINCE_EVER, actor="am", reason="x", now=_at("2026-10-02T00:00:00Z"),
        )  # fmt: skip
    assert len(_book(app).versions) == 1


def test_the_version_in_force_at_the_report_time_measures_the_incident() -> None:
    book = _book(
        _app_with(
            (CONTRACTS_TOML, "1970-01-01T00:00:00Z", "2026-10-01T00:00:00Z"),
            (UPGRADED, "2026-10-15T00:00:00Z", "2026-10-20T00:00:00Z"),
        )
    )
    assert book.measuring_version(_at("2026-10-14T23:59:59Z")).version == 1
    assert book.measuring_version(_at("2026-10-15T00:00:00Z")).version == 2
    # what was known before version 2 was recorded: version 1 measures everything
    assert (
        book.known_at(_at("2026-10-19T00:00:00Z"))
        .measuring_version(_at("2026-10-16T00:00:00Z"))
        .version
        == 1
    )


def test_of_two_versions_effective_at_the_same_instant_the_later_recorded_wins() -> None:
    book = _book(
        _app_with(
            (CONTRACTS_TOML, "1970-01-01T00:00:00Z", "2026-10-01T00:00:00Z"),
            (UPGRADED, "2026-10-15T00:00:00Z", "2026-10-20T00:00:00Z"),
            (HOLIDAY, "2026-10-15T00:00:00Z", "2026-10-21T00:00:00Z"),
        )
    )
    assert book.in_force(_at("2026-10-16T00:00:00Z")).version == 3


def _dayco_month() -> IncidentFactory:
    """dayco (tier daily: P1 response 30m); one P1 before the upgrade, one after, each
    acknowledged after 20 minutes (gold's P1 response is 15m)."""
    incidents = IncidentFactory(contracts_from())
    for incident_id, day in (("D-1", "10"), ("D-2", "20")):
        incidents.report(incident_id, f"2026-10-{day}T08:00:00Z", customer="dayco", priority="P1")
        incidents.then(incident_id, "triaged", f"2026-10-{day}T08:01:00Z", priority="P1")
        incidents.then(incident_id, "acknowledged", f"2026-10-{day}T08:20:00Z")
    return incidents


def test_a_tier_upgrade_mid_month_applies_to_incidents_reported_after_it() -> None:
    book = _book(
        _app_with(
            (CONTRACTS_TOML, "1970-01-01T00:00:00Z", "2026-10-01T00:00:00Z"),
            (UPGRADED, "2026-10-15T00:00:00Z", "2026-10-16T00:00:00Z"),
        )
    )
    view = sla_view(_dayco_month().histories(), book, _at("2026-11-01T00:00:00Z"))
    statuses = {s.incident_id: str(s.clocks.clocks["response"].status) for s in view}  # type: ignore[index]
    assert statuses == {"D-1": "met", "D-2": "breached"}
    (report,) = monthly_reports(
        _dayco_month().histories(), book, [Month(2026, 10)], _at("2026-11-01T00:00:00Z"),
        customer="dayco",
    )  # fmt: skip
    assert report["contract_versions"] == [1, 2]
    assert report["tier"] == "gold"  # the month's figures: the version in force at its end
    assert report["metrics"]["response"]["breached"] == 1


def test_a_report_as_known_before_a_retroactive_version_stays_as_it_was() -> None:
    app = _app_with((CONTRACTS_TOML, "1970-01-01T00:00:00Z", "2026-10-01T00:00:00Z"))
    as_of, sent = _at("2026-11-01T00:00:00Z"), _at("2026-11-02T00:00:00Z")
    histories = _dayco_month().histories()
    before = monthly_reports(histories, _book(app), [Month(2026, 10)], as_of, as_known_at=sent)
    app.record_contracts(
        UPGRADED, source="u.toml", effective_from=_at("2026-10-01T00:00:00Z"), actor="am",
        reason="upgrade backdated", now=_at("2026-11-05T00:00:00Z"),
    )  # fmt: skip
    book = _book(app)
    again = monthly_reports(
        histories, book.known_at(sent), [Month(2026, 10)], as_of, as_known_at=sent
    )
    assert again == before
    restated = monthly_reports(histories, book, [Month(2026, 10)], as_of, as_known_at=None)
    dayco = next(r for r in restated if r["customer"] == "dayco")
    assert dayco["metrics"]["response"]["breached"] == 2


def test_a_retroactive_holiday_correction_restates_the_incidents_reported_from_then_on() -> None:
    # office calendar (P3 response 4h): a report on Wednesday 2026-10-14 at 08:00 UTC
    # (10:00 Berlin), acknowledged on Thursday 10:00 Berlin: 4h30m counted on an ordinary
    # Wednesday + 1h Thursday (breached); if the 14th is a holiday only 1h is counted (met).
    incidents = IncidentFactory(contracts_from())
    incidents.report("A-1", "2026-10-14T08:00:00Z", customer="acme", priority="P3")
    incidents.then("A-1", "acknowledged", "2026-10-15T08:00:00Z")
    app = _app_with((CONTRACTS_TOML, "1970-01-01T00:00:00Z", "2026-10-01T00:00:00Z"))
    as_of = _at("2026-11-01T00:00:00Z")
    (before,) = sla_view(incidents.histories(), _book(app), as_of)
    app.record_contracts(
        HOLIDAY, source="h.toml", effective_from=_at("2026-01-01T00:00:00Z"), actor="am",
        reason="holiday announced", now=_at("2026-10-20T00:00:00Z"),
    )  # fmt: skip
    (after,) = sla_view(incidents.histories(), _book(app), as_of)
    (then,) = sla_view(
        incidents.histories(), _book(app).known_at(_at("2026-10-19T00:00:00Z")), as_of
    )
    response = "response"
    assert str(before.clocks.clocks[response].status) == "breached"  # type: ignore[index]
    assert str(after.clocks.clocks[response].status) == "met"  # type: ignore[index]
    assert str(then.clocks.clocks[response].status) == "breached"  # type: ignore[index]


def test_contracts_diff_names_every_change_by_section() -> None:
    changed = UPGRADED.replace('response = "15m"', 'response = "20m"').replace(
        'extra_holidays = ["2026-03-04"]', 'extra_holidays = ["2026-10-14"]'
    )
    _, old, _ = canonical_content(CONTRACTS_TOML, "a")
    _, new, _ = canonical_content(changed, "b")
    assert render_diff(1, 2, diff_contents(old, new)) == (
        "contract version 1 → 2: 3 change(s)\n"
        "tiers and targets:\n"
        "  tiers.gold.P1.response: 15m → 20m\n"
        "calendars and holidays:\n"
        "  calendars.office.extra_holidays: + 2026-10-14, - 2026-03-04\n"
        "customers:\n"
        "  customers.dayco.tier: daily → gold"
    )


def test_the_html_report_names_the_contract_versions() -> None:
    from slatrail.infra.report_html import render_html

    book = _book(
        _app_with(
            (CONTRACTS_TOML, "1970-01-01T00:00:00Z", "2026-10-01T00:00:00Z"),
            (UPGRADED, "2026-10-15T00:00:00Z", "2026-10-16T00:00:00Z"),
        )
    )
    reports = monthly_reports(
        _dayco_month().histories(), book, [Month(2026, 10)], _at("2026-11-01T00:00:00Z"),
        customer="dayco",
    )  # fmt: skip
    page = render_html(reports, generated_at=_at("2026-11-02T00:00:00Z"), source="c.toml")
    assert "under contract version(s) 1, 2" in page


def test_the_report_of_a_customer_contracted_mid_month_has_trend_months_without_figures() -> None:
    """A customer first contracted by a version in force from 2026-10-10: the October reports
    of every customer are made (they had failed: the trend months before the contract had no
    tier); the newcomer's trend months count its incidents and have no figure."""
    newcomer = CONTRACTS_TOML + '\n[customers.newco]\ntier = "gold"\n'
    app = _app_with(
        (CONTRACTS_TOML, "1970-01-01T00:00:00Z", "2026-09-01T00:00:00Z"),
        (newcomer, "2026-10-10T00:00:00Z", "2026-10-09T00:00:00Z"),
    )
    reports = monthly_reports(
        _dayco_month().histories(), _book(app), [Month(2026, 10)], _at("2026-11-01T00:00:00Z")
    )
    assert [r["customer"] for r in reports] == ["acme", "dayco", "newco"]
    (newco,) = (r for r in reports if r["customer"] == "newco")
    assert newco["availability"]["percent"] == 100.0
    assert [p["month"] for p in newco["trend"]] == ["2026-07", "2026-08", "2026-09"]
    for point in newco["trend"]:
        assert point["incidents"] == 0 and point["breached"] == 0
        assert set(point["attainment"].values()) == {None}
        assert (point["availability_percent"], point["downtime_s"], point["credit_percent"]) == (
            None, None, None,
        )  # fmt: skip
    (dayco,) = (r for r in reports if r["customer"] == "dayco")
    assert all(p["availability_percent"] == 100.0 for p in dayco["trend"])
