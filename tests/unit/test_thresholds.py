"""Thresholds compared exactly (reference/clocks.md, decisions.md): a clock is `at_risk` from the
instant its counted time reaches `at_risk_threshold × target`, computed in whole microseconds
times the threshold as the decimal written in the contracts file — and the clock status, the
escalation crossing, the audit annotation and the alert timer all name that same instant.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slatrail.consumers.alert_scheduler import AlertTimer
from slatrail.domain.clocks import Metric, exact_ratio, ratio_threshold_us
from slatrail.domain.contracts import Contracts
from slatrail.domain.escalation import CrossingKind, crossings
from slatrail.domain.model import Priority, format_instant
from slatrail.domain.timeline import build_timeline
from slatrail.projections.audit import derive_annotations
from slatrail.projections.escalation import FAR_FUTURE, planned_alerts
from slatrail.projections.sla import incident_sla
from tests.builders import CONTRACTS_TOML, contracts_from, record_history, reported_data, utc
from tests.hypothesis_profiles import examples

US = timedelta(microseconds=1)
MON = utc(2026, 3, 2, 9, 51, 45)  # Monday 10:51:45 Berlin; + 495 s = 10:00:00Z


def contracts_with(threshold: str, response: str = "15m", priority: str = "P1") -> Contracts:
    """The test contracts with this threshold and this response target of gold `priority`
    (P1: 24x7, P3: Berlin office hours)."""
    text = CONTRACTS_TOML.replace("at_risk_threshold = 0.75", f"at_risk_threshold = {threshold}")
    old = {"P1": 'response = "15m"', "P3": 'response = "4h"'}[priority]
    return contracts_from(text.replace(old, f'response = "{response}"', 1))


def status_at(events: list[Any], contracts: Contracts, moment: datetime, metric: str) -> str:
    view = incident_sla(events, contracts, moment)
    assert view is not None
    return str(view.as_json()["metrics"][metric]["status"])


def at_risk_crossing(events: list[Any], contracts: Contracts, metric: Metric) -> datetime:
    timeline = build_timeline(events, FAR_FUTURE)
    assert timeline is not None
    found = [
        c
        for c in crossings(timeline, contracts)
        if c.metric is metric and c.kind is CrossingKind.AT_RISK
    ]
    assert found, "no at-risk crossing"
    return found[0].at


def timer_deadline(events: list[Any], contracts: Contracts, key: str) -> datetime:
    """When the alert timer fires the alert `key` (simulated time, microsecond steps)."""
    timer = AlertTimer(contracts)
    timer.load(events, now=events[0].occurred_at)
    timeline = build_timeline(events, FAR_FUTURE)
    assert timeline is not None
    planned = {a.key: a.at for a in planned_alerts(timeline, contracts)}
    moment = planned[key]
    fired_before = {d["alert_key"] for d in timer.due(moment - US)}
    assert key not in fired_before
    fired_at = {d["alert_key"]: d["crossed_at"] for d in timer.due(moment)}
    assert fired_at[key] == format_instant(moment)
    return moment


# -- the case of the issue: 0.55 × 900 s = 495 s exactly ------------------------------------


def test_a_threshold_of_0_55_puts_a_p1_response_at_risk_at_exactly_495_s() -> None:
    contracts = contracts_with("0.55")
    events = record_history([("reported", MON, reported_data(priority="P1"))], contracts)
    exact = MON + timedelta(seconds=495)
    assert format_instant(exact) == "2026-03-02T10:00:00Z"
    # sla status
    assert status_at(events, contracts, exact - US, "response") == "running"
    assert status_at(events, contracts, exact, "response") == "at_risk"
    # the escalation crossing instant and the level it calls for
    assert at_risk_crossing(events, contracts, Metric.RESPONSE) == exact
    # the audit annotation
    notes = derive_annotations(events, contracts, exact + timedelta(minutes=1))[0]
    risk = [n for n in notes if n.kind == "at_risk" and n.metric is Metric.RESPONSE]
    assert [n.at for n in risk] == [exact]
    assert "response clock at risk at 2026-03-02T10:00:00Z (55% of 15m)" in risk[0].text
    # the alert timer: not a microsecond later
    assert timer_deadline(events, contracts, "INC-1/response/at_risk/0") == exact


def test_the_shared_threshold_is_the_decimal_of_the_contract_rounded_up_to_a_microsecond() -> None:
    assert exact_ratio(0.55) == Fraction(11, 20)
    assert 0.55 * 900 > 495  # the binary double is a hair above: why floats disagreed
    assert ratio_threshold_us(900, 0.55) == 495_000_000
    assert ratio_threshold_us(900, 0.75) == 675_000_000
    assert ratio_threshold_us(7, 1 / 3) == 2_333_334  # ceil(7e6 × 0.3333333333333333)
    assert ratio_threshold_us(3660 * 86400, 2.0) == 2 * 3660 * 86400 * 1_000_000


# -- property: every view flips at the same instant -----------------------------------------

THRESHOLDS = st.one_of(
    st.integers(1, 99).map(lambda n: f"0.{n:02d}"),
    st.integers(1, 999).map(lambda n: f"0.{n:03d}"),
    st.integers(1, 99999).map(lambda n: f"0.{n:05d}"),
    st.sampled_from(["0.55", "0.7", "0.9", "0.15", "0.33"]),
)


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    threshold=THRESHOLDS,
    target_s=st.integers(1, 12 * 3600),
    priority=st.sampled_from(["P1", "P3"]),  # 24x7 / Berlin office hours
    offset_s=st.integers(0, 7 * 86400),
)
def test_status_flips_exactly_at_the_instant_the_escalation_and_the_alert_timer_compute(
    threshold: str, target_s: int, priority: str, offset_s: int
) -> None:
    contracts = contracts_with(threshold, f"{target_s}s", priority)
    reported_at = utc(2026, 3, 2, 7) + timedelta(seconds=offset_s)
    events = record_history(
        [("reported", reported_at, reported_data(priority=priority))], contracts
    )
    crossing = at_risk_crossing(events, contracts, Metric.RESPONSE)
    assert status_at(events, contracts, crossing - US, "response") == "running"
    assert status_at(events, contracts, crossing, "response") == "at_risk"
    assert timer_deadline(events, contracts, "INC-1/response/at_risk/0") == crossing
    # The audit names the same instant.
    notes = derive_annotations(events, contracts, crossing + timedelta(minutes=1))[0]
    assert [n.at for n in notes if n.kind == "at_risk" and n.metric is Metric.RESPONSE] == [
        crossing
    ]
    # And it is where counted time reaches ceil(threshold × target) in µs, exactly.
    product = Fraction(threshold) * target_s * 1_000_000
    needed = -(-product.numerator // product.denominator)
    calendar = contracts.target("acme", Priority(priority), "response").calendar
    assert crossing == calendar.instant_after(reported_at, needed / 1_000_000)
    view = incident_sla(events, contracts, crossing)
    assert view is not None
    assert view.clocks.clocks[Metric.RESPONSE].elapsed_us == needed
