"""The clocks' µs core and batched evaluations against the evaluation they replaced.

`evaluate_figures` (many incidents in one call) and `evaluate_instants` (one incident at many
instants in one call) must say exactly what `evaluate` says clock by clock, and that what the
previous, datetime-based evaluation (`tests/clock_reference.py`) said: at random instants to
the microsecond, one microsecond either side of every due instant and of every event, on the
24x7 calendar and the Berlin office calendar (lunch break, a holiday).
"""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slatrail.domain.calendars import instant_us
from slatrail.domain.clocks import (
    Clock,
    ClockFigures,
    Metric,
    Status,
    evaluate,
    evaluate_figures,
    evaluate_instants,
)
from slatrail.domain.timeline import Timeline, build_timeline
from tests import clock_reference
from tests.builders import record_history, utc
from tests.hypothesis_profiles import examples
from tests.unit.test_clock_properties import CONTRACTS, Walk, walks

US = timedelta(microseconds=1)


def reference(timeline: Timeline) -> tuple[str | None, tuple[ClockFigures, ...]]:
    old = clock_reference.evaluate(timeline, CONTRACTS)
    return old.tier, tuple(
        ClockFigures(
            c.metric, c.status, c.target_s, c.elapsed_us,
            None if c.due_at is None else instant_us(c.due_at),
            None if c.stopped_at is None else instant_us(c.stopped_at), c.priority,
        )
        for c in old.clocks.values()
    )  # fmt: skip


def per_clock(timeline: Timeline) -> tuple[str | None, tuple[ClockFigures, ...]]:
    clocks = evaluate(timeline, CONTRACTS)
    return clocks.tier, tuple(c.figures() for c in clocks.clocks.values())


def instants(walk: Walk, offsets: list[int]) -> list[datetime]:
    """Random instants from the report to two days after as_of, and each clock's due instant
    as of then, one microsecond either side."""
    first = walk.facts[0][1]
    span = walk.as_of + timedelta(days=2) - first
    chosen = [first + span * (n / 1_000_000) for n in offsets] + [walk.as_of]
    events = record_history(walk.facts, CONTRACTS)
    around: list[datetime] = []
    for moment in chosen:
        timeline = build_timeline(events, moment)
        assert timeline is not None
        for clock in evaluate(timeline, CONTRACTS).clocks.values():
            if clock.due_at is not None:
                around += [clock.due_at - US, clock.due_at, clock.due_at + US]
    return chosen + around


@settings(max_examples=examples(120), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(walks(), st.lists(st.integers(0, 1_000_000), min_size=1, max_size=6))
def test_batched_and_per_clock_evaluations_equal_the_previous_one_to_the_microsecond(
    walk: Walk, offsets: list[int]
) -> None:
    events = record_history(walk.facts, CONTRACTS)
    timelines = [t for m in instants(walk, offsets) if (t := build_timeline(events, m))]
    batched = evaluate_figures(timelines, CONTRACTS)
    assert batched == [per_clock(t) for t in timelines]
    assert batched == [reference(t) for t in timelines]
    for timeline in timelines:  # each Clock as its dataclass constructor would build it
        for clock in evaluate(timeline, CONTRACTS).clocks.values():
            assert set(vars(clock)) == {f.name for f in fields(Clock)}
            assert clock == Clock(**{f.name: getattr(clock, f.name) for f in fields(Clock)})
            if clock.elapsed_us is not None:
                assert clock.elapsed_s == clock.elapsed_us / 1_000_000


@settings(max_examples=examples(120), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(walks(), st.lists(st.integers(0, 1_000_000), min_size=1, max_size=6))
def test_one_incident_at_many_instants_in_one_call_equals_evaluating_each_instant(
    walk: Walk, offsets: list[int]
) -> None:
    events = record_history(walk.facts, CONTRACTS)
    edges = [at + d for _, at, _ in walk.facts for d in (-US, 0 * US, US)]
    moments = instants(walk, offsets) + edges
    found = evaluate_instants(events, moments, CONTRACTS)
    assert set(found) == set(moments)
    for moment in moments:
        timeline = build_timeline(events, moment)
        expected = None if timeline is None else per_clock(timeline)
        assert found[moment] == expected, moment


def test_a_batch_mixes_incidents_instants_and_clocks_in_any_order() -> None:
    """One call over two incidents at several instants each, interleaved, gives each
    (incident, instant) exactly its own clocks."""
    p1 = record_history(
        [("reported", utc(2026, 3, 2, 9), {"customer": "acme", "title": "t", "priority": "P1"}),
         ("acknowledged", utc(2026, 3, 2, 9, 10), {}),
         ("awaiting_customer", utc(2026, 3, 2, 9, 30), {"reason": "logs"})],
        CONTRACTS, incident_id="INC-1",
    )  # fmt: skip
    p3 = record_history(
        [("reported", utc(2026, 3, 3, 16), {"customer": "acme", "title": "t", "priority": "P3"}),
         ("resolved", utc(2026, 3, 5, 10), {"resolution": "r"})],
        CONTRACTS, incident_id="INC-2",
    )  # fmt: skip
    moments = [utc(2026, 3, 3, 17), utc(2026, 3, 2, 9, 20), utc(2026, 3, 6)]
    timelines = [
        t for m in moments for events in (p3, p1) if (t := build_timeline(events, m)) is not None
    ]
    batched = evaluate_figures(timelines, CONTRACTS)
    assert batched == [per_clock(t) for t in timelines]
    by_key = {
        (t.incident_id, t.as_of): figures
        for t, (_, figures) in zip(timelines, batched, strict=True)
    }
    paused = by_key["INC-1", utc(2026, 3, 2, 9, 20)]  # acknowledged, not yet waiting
    assert [f.status for f in paused[:3]] == [Status.MET, Status.RUNNING, Status.RUNNING]
    waiting = by_key["INC-1", utc(2026, 3, 3, 17)]
    assert waiting[2].status is Status.PAUSED and waiting[2].elapsed_us == 30 * 60 * 1_000_000
    resolved = by_key["INC-2", utc(2026, 3, 6)]
    assert resolved[2].metric is Metric.RESOLUTION and resolved[2].stopped_us == instant_us(
        utc(2026, 3, 5, 10)
    )
