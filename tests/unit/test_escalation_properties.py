"""The exact escalation level against a brute force sampled every minute.

The brute force evaluates the SLA clocks (`domain.clocks.evaluate`) at every sampled instant
and keeps the highest level their statuses called for so far (clocks.md). Every instant involved
(events, calendar boundaries, targets × 0.75 and × 2) is a whole minute, so every condition
that holds at all holds at some half-minute: sampling at hh:mm:30 sees them all, and the exact
level must equal the sampled one at every sample.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slatrail.domain.clocks import Metric, Status, evaluate
from slatrail.domain.contracts import Contracts
from slatrail.domain.model import IncidentEvent, Priority, State
from slatrail.domain.timeline import build_timeline
from slatrail.projections.escalation import (
    escalation_level,
    escalation_state,
    next_alert,
    planned_alerts,
    state_of,
    sweep,
)
from tests.builders import contracts_from, record_history, utc
from tests.hypothesis_profiles import examples

MINUTE = timedelta(minutes=1)
HALF = timedelta(seconds=30)

# Targets are multiples of 4 minutes, so 75 % and 200 % of them are whole minutes.
CONTRACTS_TOML = """
at_risk_threshold = 0.75
postmortem_within = "4h"

[calendars.always]
kind = "24x7"

[calendars.office]
kind = "business"
timezone = "Europe/Berlin"
weekdays = ["mon", "tue", "wed", "thu", "fri"]
hours = ["09:00-12:00", "13:00-17:32"]
extra_holidays = ["2026-03-04"]

[tiers.gold]
availability_target = 99.99
P1 = { calendar = "always", response = "16m", workaround = "1h", resolution = "2h" }
P2 = { calendar = "always", response = "32m", resolution = "4h" }
P3 = { calendar = "office", response = "1h", workaround = "2h", resolution = "4h" }
P4 = { calendar = "office", response = "2h" }

[customers.acme]
tier = "gold"
"""

CONTRACTS = contracts_from(CONTRACTS_TOML)
START = utc(2026, 3, 2, 7)  # a Monday; Wednesday 4 March is a holiday, DST starts 29 March

PROPERTY_SETTINGS = settings(
    max_examples=examples(120),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

_NEXT = {
    State.OPEN: ["triaged", "priority_changed", "acknowledged", "awaiting_customer",
                 "workaround_provided", "escalated", "resolved"],
    State.AWAITING_CUSTOMER: ["triaged", "priority_changed", "customer_responded",
                              "workaround_provided", "escalated", "resolved", "acknowledged"],
    State.RESOLVED: ["reopened", "postmortem_published"],
}  # fmt: skip


@st.composite
def timelines(draw: st.DrawFn) -> tuple[list[IncidentEvent], datetime]:
    at = START + draw(st.integers(0, 3 * 24 * 60)) * MINUTE
    priority = draw(st.sampled_from(["P1", "P2", "P3", "P4"]))
    outage = draw(st.booleans())
    data: dict[str, Any] = {"customer": "acme", "title": "t", "priority": priority}
    if outage:
        data["outage"] = True
    facts: list[tuple[str, datetime, dict[str, Any]]] = [("reported", at, data)]
    state, acknowledged = State.OPEN, False
    for _ in range(draw(st.integers(0, 8))):
        choices = [c for c in _NEXT[state] if not (c == "acknowledged" and acknowledged)]
        kind = draw(st.sampled_from(choices))
        at += draw(st.sampled_from([0, 1, 5, 12, 30, 45, 90, 240, 600])) * MINUTE
        payload: dict[str, Any] = {}
        if kind in ("triaged", "priority_changed"):
            payload = {"priority": draw(st.sampled_from(["P1", "P2", "P3", "P4"]))}
            if kind == "priority_changed":
                payload["reason"] = "r"
        elif kind == "awaiting_customer":
            payload = {"reason": "logs"}
        elif kind == "workaround_provided":
            payload = {"description": "d"}
        elif kind == "escalated":
            payload = {"level": draw(st.integers(1, 4)), "reason": "customer asked"}
        elif kind == "resolved":
            payload = {"resolution": "fixed"}
        elif kind == "reopened":
            payload = {"reason": "again"}
        elif kind == "postmortem_published":
            payload = {"summary": "s", "root_cause": "r", "action_items": []}
        facts.append((kind, at, payload))
        if kind == "acknowledged":
            acknowledged = True
        elif kind == "awaiting_customer":
            state = State.AWAITING_CUSTOMER
        elif kind in ("customer_responded", "reopened"):
            state = State.OPEN
        elif kind == "resolved":
            state = State.RESOLVED
    horizon = at + draw(st.sampled_from([60, 300, 900, 1800])) * MINUTE
    return record_history(facts, CONTRACTS, now=horizon), horizon


def instantaneous_level(events: list[IncidentEvent], contracts: Contracts, u: datetime) -> int:
    """What the clocks' statuses call for at `u` (clocks.md), from `domain.clocks` alone."""
    timeline = build_timeline(events, u)
    assert timeline is not None
    policy = contracts.escalation
    resolved = timeline.state is State.RESOLVED
    level = 1
    for metric, clock in evaluate(timeline, contracts).clocks.items():
        in_force = resolved if metric is Metric.POSTMORTEM else not resolved
        if not in_force or clock.target_s is None or clock.elapsed_s is None:
            continue
        if clock.status is Status.AT_RISK:
            level = max(level, policy.at_risk_level)
        if clock.status is Status.BREACHED:
            p1 = clock.priority is Priority.P1
            level = max(level, policy.p1_breached_level if p1 else policy.breached_level)
            if clock.elapsed_s >= policy.overrun_ratio * clock.target_s:
                level = max(level, policy.overrun_level)
    for manual in timeline.escalations:
        level = max(level, manual.level)
    return level


@PROPERTY_SETTINGS
@given(timelines())
def test_the_exact_level_equals_the_level_sampled_every_minute(case: Any) -> None:
    events, horizon = case
    u = events[0].occurred_at + HALF
    sampled = 1
    while u <= horizon:
        sampled = max(sampled, instantaneous_level(events, CONTRACTS, u))
        exact = escalation_level(events, CONTRACTS, u)
        assert exact.level == sampled, (
            u,
            exact,
            [(e.type, e.occurred_at, dict(e.data)) for e in events],
        )
        u += MINUTE


@PROPERTY_SETTINGS
@given(timelines())
def test_the_level_holds_exactly_from_its_instant(case: Any) -> None:
    """Just before each step's instant the level is lower; at it (or just after) it is reached."""
    events, horizon = case
    state = escalation_state(events, CONTRACTS, horizon)
    assert state is not None
    tiny = timedelta(microseconds=1)
    for step in state.steps:
        before = escalation_level(events, CONTRACTS, step.at - tiny).level
        at = escalation_level(events, CONTRACTS, step.at).level
        after = escalation_level(events, CONTRACTS, step.at + tiny).level
        assert before < step.level
        assert after >= step.level
        assert (at >= step.level) == step.inclusive


@PROPERTY_SETTINGS
@given(timelines(), st.data())
def test_one_sweep_gives_the_same_state_alerts_and_next_alert_as_separate_sweeps(
    case: Any, data: st.DataObject
) -> None:
    """`sweep` once, then the state as of `as_of` and the alerts from it, equal the separate
    sweeps (up to `as_of` for the state, unbounded for the alerts), at any instant: a whole
    minute, or a crossing's own instant (inclusive or not) and a microsecond either side."""
    events, horizon = case
    tiny = timedelta(microseconds=1)
    everything = build_timeline(events, horizon)
    assert everything is not None
    instants = [
        c.at + d for c in sweep(everything, CONTRACTS).found for d in (-tiny, 0 * tiny, tiny)
    ]
    minutes = int((horizon - events[0].occurred_at) / MINUTE)
    minute = events[0].occurred_at + data.draw(st.integers(0, minutes)) * MINUTE
    for u in [
        minute,
        *data.draw(st.lists(st.sampled_from(instants), max_size=4) if instants else st.just([])),
    ]:
        timeline = build_timeline(events, u)
        if timeline is None:
            continue
        swept = sweep(timeline, CONTRACTS)
        assert state_of(timeline, CONTRACTS, swept=swept) == state_of(timeline, CONTRACTS)
        assert planned_alerts(timeline, CONTRACTS, swept=swept) == planned_alerts(
            timeline, CONTRACTS
        )
        assert next_alert(timeline, CONTRACTS, swept=swept) == next_alert(timeline, CONTRACTS)
