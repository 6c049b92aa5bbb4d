"""Issue 9 §2: facts that would rewrite money are bounded; every tier defines P1–P4."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from slatrail.domain.contracts import ContractsError
from slatrail.domain.errors import InvalidFieldError
from slatrail.domain.incident import Incident
from slatrail.domain.messages import to_fact
from slatrail.domain.model import Priority
from slatrail.infra.wire import decode
from tests.builders import CONTRACTS_TOML, contracts_from, line, reported_data, rfc3339, utc, wire

T0 = utc(2026, 11, 10, 9)
NOW = T0 + timedelta(days=1)
WEEK = timedelta(days=7)
CONTRACTS = contracts_from()


def fact(type: str, at: Any, data: dict[str, Any] | None, n: int = 1) -> Any:
    message, _ = decode(line(wire(type, at, data, message_id=f"m-{n}")))
    return to_fact(message)


def report(impact: Any = None, contracts: Any = CONTRACTS) -> Incident:
    data = reported_data(outage=True, **({"impact_started_at": rfc3339(impact)} if impact else {}))
    return Incident.report(fact("reported", T0, data), contracts=contracts, now=NOW)


def refusal(call: Any) -> InvalidFieldError:
    with pytest.raises(InvalidFieldError) as caught:
        call()
    assert caught.value.code == "invalid_field"
    return caught.value


# -- impact_started_at -------------------------------------------------------------------------


def test_an_impact_start_decades_before_the_report_is_refused_naming_the_bound() -> None:
    error = refusal(lambda: report("1970-01-01T00:00:00Z"))
    assert error.reason.startswith("data.impact_started_at")
    assert "limits.max_impact_lead" in error.reason and "168h" in error.reason
    assert error.incident_id == "INC-1"


def test_an_impact_start_exactly_seven_days_before_the_report_is_accepted() -> None:
    incident = report(T0 - WEEK)
    assert incident.impact_started_at == T0 - WEEK


def test_an_impact_start_one_second_beyond_seven_days_is_refused() -> None:
    refusal(lambda: report(T0 - WEEK - timedelta(seconds=1)))


def test_the_contract_sets_the_impact_lead() -> None:
    text = CONTRACTS_TOML.replace(
        'postmortem_within = "120h"', 'postmortem_within = "120h"\n[limits]\nmax_impact_lead = "1h"'
    )
    contracts = contracts_from(text)
    assert contracts.max_impact_lead_s == 3600
    report(T0 - timedelta(hours=1), contracts)
    error = refusal(lambda: report(T0 - timedelta(hours=1, seconds=1), contracts))
    assert "(1h)" in error.reason


def test_the_impact_lead_defaults_to_seven_days() -> None:
    assert CONTRACTS.max_impact_lead_s == 7 * 86400


# -- service_restored_at -----------------------------------------------------------------------


def resolve(incident: Incident, restored: Any) -> None:
    data = {"resolution": "fixed", "service_restored_at": rfc3339(restored)}
    incident.record(fact("resolved", T0 + timedelta(hours=2), data, n=2), now=NOW)


def test_a_restoration_before_the_report_is_refused() -> None:
    incident = report()
    error = refusal(lambda: resolve(incident, T0 - timedelta(seconds=1)))
    assert error.reason.startswith("data.service_restored_at")
    assert "report (2026-11-10T09:00:00Z)" in error.reason


def test_a_restoration_before_the_impact_start_is_refused_naming_it() -> None:
    incident = report(T0 - timedelta(hours=3))
    error = refusal(lambda: resolve(incident, T0 - timedelta(hours=4)))
    assert "impact start (2026-11-10T06:00:00Z)" in error.reason


def test_a_restoration_between_impact_start_and_report_is_refused() -> None:
    incident = report(T0 - timedelta(hours=3))
    error = refusal(lambda: resolve(incident, T0 - timedelta(hours=1)))
    assert "report" in error.reason


def test_a_restoration_at_the_report_or_later_is_accepted() -> None:
    incident = report(T0 - timedelta(hours=3))
    resolve(incident, T0)
    assert incident.state == "resolved"
    later = report()
    resolve(later, T0 + timedelta(hours=1))
    assert later.state == "resolved"


def test_a_refused_restoration_leaves_the_incident_unchanged() -> None:
    incident = report()
    refusal(lambda: resolve(incident, T0 - timedelta(days=365)))
    assert incident.state == "open" and incident.version == 1


# -- tiers define P1..P4 -----------------------------------------------------------------------


def test_a_tier_without_p1_fails_loading_naming_the_tier_and_the_priority() -> None:
    text = CONTRACTS_TOML.replace(
        'P1 = { calendar = "always", response = "30m", resolution = "24h" }\n', ""
    )
    with pytest.raises(ContractsError) as caught:
        contracts_from(text)
    message = str(caught.value)
    assert "tiers.daily" in message and "missing P1" in message and "P1 = {}" in message


def test_a_tier_missing_several_priorities_names_them_all() -> None:
    text = CONTRACTS_TOML.replace("P2 = {}\n", "").replace("P4 = {}\n", "")
    with pytest.raises(ContractsError, match=r"tiers\.daily.*missing P2, P4"):
        contracts_from(text)


def test_a_priority_written_empty_has_no_targets() -> None:
    for metric in ("response", "workaround", "resolution"):
        assert CONTRACTS.target("dayco", Priority.P2, metric).seconds is None
    assert CONTRACTS.target("dayco", Priority.P1, "response").seconds == 1800


def test_targets_without_a_calendar_fail_loading() -> None:
    text = CONTRACTS_TOML.replace("P2 = {}", 'P2 = { response = "1h" }')
    with pytest.raises(ContractsError, match=r"tiers\.daily\.P2.*needs a calendar"):
        contracts_from(text)


def test_the_shipped_sample_defines_every_priority_of_every_tier() -> None:
    from slatrail.infra.bootstrap import read_contracts

    contracts = read_contracts(None)
    for tier in contracts.spec.tiers.values():
        assert all(tier.for_priority(p) is not None for p in Priority)
    assert contracts.max_impact_lead_s == 7 * 86400
