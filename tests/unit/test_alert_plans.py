"""The alert timer fires from the plan its incident's one sweep made (no second sweep when an
alert comes due), with exactly the alerts a timer that sweeps again at each firing publishes."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import slatrail.consumers.alert_scheduler as scheduler
from slatrail.consumers.alert_scheduler import AlertTimer
from slatrail.domain.model import IncidentEvent
from tests.builders import record_history
from tests.hypothesis_profiles import examples
from tests.unit.test_clock_properties import CONTRACTS, Walk, walks

US = timedelta(microseconds=1)


def drive(timer: AlertTimer, events: list[IncidentEvent], moments: list[datetime]) -> list[Any]:
    """Apply each event at its instant and ask for due alerts at every moment, in time order:
    everything the timer publishes, with when it was asked."""
    asks = sorted([(e.occurred_at, 0, e) for e in events] + [(m, 1, None) for m in moments],
                  key=lambda item: (item[0], item[1]))  # fmt: skip
    out: list[Any] = []
    for moment, _, event in asks:
        if event is not None:
            timer.apply(event, now=moment)
        out.append((moment, timer.take_corrections() + timer.due(moment)))
    return out


def moments_of(walk: Walk, events: list[IncidentEvent], offsets: list[int]) -> list[datetime]:
    """Random instants over the incident's life and two days on, and every alert instant the
    events imply, one microsecond either side."""
    first = walk.facts[0][1]
    span = walk.as_of + timedelta(days=2) - first
    probe = AlertTimer(CONTRACTS, plans_kept=0)
    for event in events:
        probe.apply(event, now=first)
    crossings = [entry[0] for entry in probe._heap]
    return [first + span * (n / 1_000_000) for n in offsets] + [
        at + d for at in crossings for d in (-US, 0 * US, US)
    ]


@settings(max_examples=examples(100), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(walks(), st.lists(st.integers(0, 1_000_000), max_size=8))
def test_alerts_from_the_kept_plan_equal_alerts_swept_again_at_each_firing(
    walk: Walk, offsets: list[int]
) -> None:
    events = record_history(walk.facts, CONTRACTS)
    moments = moments_of(walk, events, offsets)
    shared = drive(AlertTimer(CONTRACTS), events, moments)
    separate = drive(AlertTimer(CONTRACTS, plans_kept=0), events, moments)
    assert shared == separate


def test_an_incident_is_swept_once_per_event_not_again_when_its_alerts_fire(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sweeps: list[str] = []
    plan = scheduler.planned_alerts

    def counted(timeline: Any, contracts: Any, **kwargs: Any) -> Any:
        sweeps.append(timeline.incident_id)
        return plan(timeline, contracts, **kwargs)

    monkeypatch.setattr(scheduler, "planned_alerts", counted)
    start = datetime(2026, 3, 2, 8, tzinfo=scheduler.FAR_FUTURE.tzinfo)
    facts = [
        ("reported", start, {"customer": "acme", "title": "t", "priority": "P1"}),
        ("acknowledged", start + timedelta(minutes=5), {}),
    ]
    events = record_history(facts, CONTRACTS)
    timer = AlertTimer(CONTRACTS)
    fired = [d for _, found in drive(timer, events, [start + timedelta(hours=h) for h in range(9)])
             for d in found]  # fmt: skip
    assert {d["kind"] for d in fired} == {"at_risk", "breached", "escalated"}
    assert len(sweeps) == len(events) == timer.stats.replans  # one per event, none per firing
    sweeps.clear()
    again = AlertTimer(CONTRACTS, plans_kept=0)
    assert drive(again, events, [start + timedelta(hours=h) for h in range(9)]) == drive(
        AlertTimer(CONTRACTS), events, [start + timedelta(hours=h) for h in range(9)]
    )
    assert len(sweeps) > 2 * len(events)  # without kept plans every firing sweeps again
