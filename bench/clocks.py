"""Clock evaluation speed: all four clocks of N incidents (default 10,000), as of month end.

Baselines in the same run: the same evaluation with the calendar arithmetic before block prefix
sums (date-by-date walk and per-year sums, still in the code as `_count_by_dates` and
`_instant_after_by_dates`), on fresh calendars each, with identical results asserted; and a
minute-stepping evaluation of counted time (the obviously-correct reference of the property
tests) over a sample of the same clocks.
Then whole clock evaluations, warm, best of five alternating rounds: the evaluation before the
µs core (`tests/clock_reference.py`, the same-run baseline), today's `evaluate` per incident and
the batched `evaluate_figures` (every incident in one call), results asserted identical.
Usage: python bench/clocks.py [INCIDENTS]
"""

from __future__ import annotations

import gc
import json
import random
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._data import incident_messages
from slatrail.domain.calendars import BusinessCalendar, Calendar, _to_us
from slatrail.domain.clocks import (
    ClockFigures,
    IncidentClocks,
    evaluate,
    evaluate_figures,
    evaluate_instants,
)
from slatrail.domain.incident import Incident
from slatrail.domain.messages import to_fact
from slatrail.domain.model import IncidentEvent
from slatrail.domain.timeline import build_timeline
from slatrail.infra.bootstrap import read_contracts
from slatrail.infra.wire import decode
from slatrail.projections.escalation import escalations_with_next, next_alert, state_of
from slatrail.projections.sla import sla_view
from tests import clock_reference

AS_OF = datetime(2026, 10, 1, tzinfo=UTC)
ROUNDS = 5  # alternating rounds of each way, the best of each kept (2 shared cores under load)


def histories(count: int) -> list[list[IncidentEvent]]:
    contracts = read_contracts(None)
    rng = random.Random(11)
    base = datetime(2026, 9, 1, tzinfo=UTC)
    out = []
    for index in range(count):
        messages = incident_messages(index, rng, base)
        # Cut some incidents short so running, paused and at-risk clocks are measured too.
        messages = messages[: rng.choice([3, 4, 6, 8, 10, 10])]
        facts = [to_fact(decode(json.dumps(m))[0]) for m in messages]
        now = datetime(2026, 12, 1, tzinfo=UTC)
        incident = Incident.report(facts[0], contracts=contracts, now=now)
        for fact in facts[1:]:
            incident.record(fact, now=now)
        out.append([e.to_record() for e in incident.collect_events()])
    return out


@contextmanager
def date_walk_arithmetic() -> Iterator[None]:
    """Business calendars count and search as before block prefix sums (the baseline)."""
    count, search = BusinessCalendar._count, BusinessCalendar._instant_after
    BusinessCalendar._count = BusinessCalendar._count_by_dates  # type: ignore[method-assign]
    BusinessCalendar._instant_after = BusinessCalendar._instant_after_by_dates  # type: ignore[method-assign]
    try:
        yield
    finally:
        BusinessCalendar._count = count  # type: ignore[method-assign]
        BusinessCalendar._instant_after = search  # type: ignore[method-assign]


def figures(clocks: IncidentClocks) -> list[tuple[object, ...]]:
    return [
        (c.metric, c.status, c.elapsed_us, c.due_at, c.stopped_at) for c in clocks.clocks.values()
    ]


def timed_evaluation(data: list[list[IncidentEvent]]) -> tuple[float, list[IncidentClocks]]:
    """All four clocks of every incident on freshly loaded contracts (cold calendar caches)."""
    contracts = read_contracts(None)
    timelines = [t for events in data if (t := build_timeline(events, AS_OF))]
    started = time.perf_counter()
    evaluated = [evaluate(t, contracts) for t in timelines]
    return time.perf_counter() - started, evaluated


def minute_stepping(calendar: Calendar, start: datetime, end: datetime) -> float:
    """Reference: count working minutes one by one."""
    counted, moment = 0.0, start
    while moment < end:
        step = min(moment + timedelta(minutes=1), end)
        if calendar.counted_seconds(moment, step) > 0:
            counted += (step - moment).total_seconds()
        moment = step
    return counted


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    contracts = read_contracts(None)
    data = histories(count)

    with date_walk_arithmetic():
        walk_s, walked = timed_evaluation(data)
    clocks_s, evaluated = timed_evaluation(data)
    with date_walk_arithmetic():  # twice each, alternating: the best of two against load
        walk_s = min(walk_s, timed_evaluation(data)[0])
    clocks_s = min(clocks_s, timed_evaluation(data)[0])
    assert [figures(c) for c in evaluated] == [figures(c) for c in walked]
    started = time.perf_counter()
    view = sla_view(data, contracts, AS_OF)
    view_s = time.perf_counter() - started

    sample = evaluated[:200]
    started = time.perf_counter()
    for clocks in sample:
        for clock in clocks.clocks.values():
            if clock.calendar is not None:
                for a, b in clock.segments:
                    minute_stepping(clock.calendar, a, b)
    reference_s = (time.perf_counter() - started) * len(evaluated) / max(len(sample), 1)

    n = len(evaluated)
    print(f"incidents: {n}, clocks: {4 * n}")
    print(f"four clocks, interval arithmetic: {clocks_s:.3f} s = {1000 * clocks_s / n * 1000:.1f} "
          f"ms per 1,000 incidents, {4 * n / clocks_s:,.0f} clock evaluations/s")  # fmt: skip
    ratio = walk_s / clocks_s
    print(f"  baseline, date walk (no block prefix sums): {4 * n / walk_s:,.0f} clock "
          f"evaluations/s; block prefix sums = {ratio:.2f}x, results identical")  # fmt: skip
    per_thousand = 1000 * view_s / len(view) * 1000
    print(f"sla view incl. escalation level: {view_s:.3f} s = {per_thousand:.1f} ms per 1,000")
    print(f"baseline minute-stepping counted time (extrapolated from {len(sample)} incidents): "
          f"{reference_s:.1f} s; speed-up {reference_s / clocks_s:,.0f}x")  # fmt: skip
    arithmetic(evaluated)
    whole_evaluations(data)
    many_instants(data[:2000])
    shared_sweep(data)
    long_span()


def arithmetic(evaluated: list[IncidentClocks]) -> None:
    """The calendar calls alone (warm caches): counted time of every business-calendar clock's
    segments and the instant its target is reached from its start, block prefix sums against
    the date walk."""
    calls = [
        (clock.calendar, _to_us(a), _to_us(b), (clock.target_s or 1) * 1_000_000)
        for clocks in evaluated
        for clock in clocks.clocks.values()
        if isinstance(clock.calendar, BusinessCalendar)
        for a, b in clock.segments
    ]

    def run() -> tuple[float, list[tuple[int, int | None]]]:
        started = time.perf_counter()
        out = [(cal._count(s, e), cal._instant_after(s, need)) for cal, s, e, need in calls]
        return time.perf_counter() - started, out

    run()
    with date_walk_arithmetic():
        run()
        walk_s, walked = run()
    blocks_s, summed = run()
    assert summed == walked
    ratio = walk_s / blocks_s
    print(f"calendar arithmetic alone ({len(calls):,} counts + due-time searches, warm): date "
          f"walk {walk_s:.3f} s, block prefix sums {blocks_s:.3f} s = {ratio:.1f}x")  # fmt: skip


def whole_evaluations(data: list[list[IncidentEvent]]) -> None:
    """All four clocks of every incident: the evaluation before the µs core, `evaluate` per
    incident and `evaluate_figures` in one call (warm calendars, same figures asserted)."""
    contracts = read_contracts(None)
    timelines = [t for events in data if (t := build_timeline(events, AS_OF))]

    def before() -> list[tuple[str | None, tuple[ClockFigures, ...]]]:
        return [reference_figures(t, contracts) for t in timelines]

    def per_clock() -> list[tuple[str | None, tuple[ClockFigures, ...]]]:
        out = []
        for t in timelines:
            clocks = evaluate(t, contracts)
            out.append((clocks.tier, tuple(c.figures() for c in clocks.clocks.values())))
        return out

    def batched() -> list[tuple[str | None, tuple[ClockFigures, ...]]]:
        return evaluate_figures(timelines, contracts)

    def timed_run(action: Any) -> tuple[float, Any]:
        started = time.perf_counter()
        result = action()
        return time.perf_counter() - started, result

    reference = before()  # warms the calendars
    best = {"before": float("inf"), "evaluate": float("inf"), "batched": float("inf")}
    for _ in range(ROUNDS):
        for name, action in (("before", before), ("evaluate", per_clock), ("batched", batched)):
            gc.collect()
            elapsed, result = timed_run(action)
            assert result == reference, name
            best[name] = min(best[name], elapsed)
    n = 4 * len(timelines)
    rate = {name: n / seconds for name, seconds in best.items()}
    print(f"whole clock evaluations, warm, best of {ROUNDS} ({n:,} clocks): before the µs core "
          f"{rate['before']:,.0f}/s (baseline); evaluate {rate['evaluate']:,.0f}/s = "
          f"{rate['evaluate'] / rate['before']:.2f}x; batched evaluate_figures "
          f"{rate['batched']:,.0f}/s = {rate['batched'] / rate['before']:.2f}x "
          f"({rate['batched'] / rate['evaluate']:.2f}x evaluate); identical figures")  # fmt: skip


def reference_figures(timeline: Any, contracts: Any) -> tuple[str | None, tuple[ClockFigures, ...]]:
    """The figures the evaluation before the µs core gives (`tests/clock_reference.py`)."""
    clocks = clock_reference.evaluate(timeline, contracts)
    return clocks.tier, tuple(
        ClockFigures(
            c.metric, c.status, c.target_s, c.elapsed_us,
            None if c.due_at is None else _to_us(c.due_at),
            None if c.stopped_at is None else _to_us(c.stopped_at), c.priority,
        )
        for c in clocks.clocks.values()
    )  # fmt: skip


def many_instants(data: list[list[IncidentEvent]], per_incident: int = 24) -> None:
    """Each incident at `per_incident` instants spread over its life and two days on (what the
    ledger and the audit ask): its timeline and clocks at each instant with the evaluation
    before the µs core (baseline) and with `evaluate`, against `evaluate_instants` (one call
    per incident); warm calendars, best of ROUNDS, identical figures."""
    contracts = read_contracts(None)
    asked = []
    for events in data:
        first, last = events[0].occurred_at, AS_OF + timedelta(days=2)
        step = (last - first) / per_incident
        asked.append((events, [first + step * k for k in range(per_incident)]))

    def before() -> list[Any]:
        return [
            [None if (t := build_timeline(e, m)) is None else reference_figures(t, contracts)
             for m in moments]
            for e, moments in asked
        ]  # fmt: skip

    def per_clock() -> list[Any]:
        out = []
        for e, moments in asked:
            row = []
            for m in moments:
                t = build_timeline(e, m)
                clocks = None if t is None else evaluate(t, contracts)
                row.append(
                    None if clocks is None
                    else (clocks.tier, tuple(c.figures() for c in clocks.clocks.values()))
                )  # fmt: skip
            out.append(row)
        return out

    def batched() -> list[Any]:
        out = []
        for e, moments in asked:
            found = evaluate_instants(e, moments, contracts)
            out.append([found[m] for m in moments])
        return out

    reference = before()
    best = {"before": float("inf"), "evaluate": float("inf"), "instants": float("inf")}
    for _ in range(ROUNDS):
        for name, action in (("before", before), ("evaluate", per_clock), ("instants", batched)):
            gc.collect()
            started = time.perf_counter()
            result = action()
            best[name] = min(best[name], time.perf_counter() - started)
            assert result == reference, name
    n = 4 * per_incident * len(asked)
    rate = {name: n / seconds for name, seconds in best.items()}
    print(f"{len(asked):,} incidents at {per_incident} instants each ({n:,} clocks, timelines "
          f"included): before the µs core {rate['before']:,.0f}/s (baseline); evaluate "
          f"{rate['evaluate']:,.0f}/s = {rate['evaluate'] / rate['before']:.2f}x; batched "
          f"evaluate_instants {rate['instants']:,.0f}/s = "
          f"{rate['instants'] / rate['before']:.2f}x; identical figures")  # fmt: skip


def shared_sweep(data: list[list[IncidentEvent]]) -> None:
    """Level and next alert of every incident (what `escalations` shows): one crossing sweep
    per incident against the two separate ones (to as_of, then unbounded) it replaced; the
    timelines built in both, best of ROUNDS alternating rounds."""
    contracts = read_contracts(None)

    def two_sweeps() -> list[Any]:
        timelines = [t for events in data if (t := build_timeline(events, AS_OF))]
        return [(state_of(t, contracts), next_alert(t, contracts)) for t in timelines]

    def one_sweep() -> list[Any]:
        return escalations_with_next(data, contracts, AS_OF, include_resolved=True)

    separate_s = shared_s = float("inf")
    for _ in range(ROUNDS):
        gc.collect()
        started = time.perf_counter()
        separate = two_sweeps()
        separate_s = min(separate_s, time.perf_counter() - started)
        gc.collect()
        started = time.perf_counter()
        shared = one_sweep()
        shared_s = min(shared_s, time.perf_counter() - started)
    key = {state.incident_id: (state, coming) for state, coming in shared}
    assert all(key[state.incident_id] == (state, coming) for state, coming in separate)
    assert len(key) == len(separate)
    print(f"level + next alert of {len(separate)} incidents: two sweeps {separate_s:.2f} s, one "
          f"shared sweep {shared_s:.2f} s = {separate_s / shared_s:.2f}x, identical")  # fmt: skip


def long_span() -> None:
    """Counted time over a century on a business calendar: the date-by-date walk (what every
    span cost before per-year sums) against the per-year sums, cold (fresh calendar) and warm."""
    spec = read_contracts(None).calendars["cn-business"]
    assert isinstance(spec, BusinessCalendar)

    def fresh() -> BusinessCalendar:
        return BusinessCalendar(
            "cn-business", timezone=spec.timezone, weekdays=spec.weekdays, hours=spec.hours,
            holidays_country=spec.holidays_country,
        )  # fmt: skip

    start, end = datetime(2026, 3, 2, 1, tzinfo=UTC), datetime(2126, 3, 2, 1, tzinfo=UTC)
    s_us, e_us = _to_us(start), _to_us(end)
    walker = fresh()
    started = time.perf_counter()
    walked = walker._walk(s_us, e_us, start.toordinal() - 2, end.toordinal() + 1)
    walk_s = time.perf_counter() - started
    summed = fresh()
    started = time.perf_counter()
    fast = summed.counted_us(start, end)
    cold_s = time.perf_counter() - started
    started = time.perf_counter()
    summed.counted_us(start + timedelta(hours=1), end - timedelta(hours=1))
    warm_s = time.perf_counter() - started
    assert fast == walked
    started = time.perf_counter()
    fresh().counted_us(start, datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC))
    far_s = time.perf_counter() - started
    print(f"long span, 100 years of cn-business: date-by-date walk {walk_s:.2f} s, per-year sums "
          f"{cold_s:.3f} s cold ({walk_s / cold_s:,.0f}x) / {1000 * warm_s:.2f} ms warm "
          f"({walk_s / warm_s:,.0f}x); 2026 -> 9999-12-31: {far_s:.2f} s cold")  # fmt: skip


if __name__ == "__main__":
    main()
