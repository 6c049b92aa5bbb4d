"""The clock evaluation as it was before the µs core and the batched evaluation: the reference of
`tests/unit/test_clock_batches.py` and the same-run baseline of `bench/clocks.py`.

A copy of `domain/clocks.py` of that time, trimmed to what evaluates: datetimes throughout,
the runs and pauses clipped interval by interval, a target lookup and an exact threshold per
clock. Slow and plain on purpose; its figures were checked against a minute-by-minute replay by
the property tests of that time (`tests/unit/test_clock_properties.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from slatrail.domain.calendars import Calendar
from slatrail.domain.clocks import Metric, Status, ratio_threshold_us
from slatrail.domain.contract_version import ContractSource
from slatrail.domain.contracts import Contracts, Target
from slatrail.domain.model import Priority, State
from slatrail.domain.timeline import Interval, Timeline

Segment = tuple[datetime, datetime]
_US = 1_000_000


@dataclass(frozen=True)
class Clock:
    metric: Metric
    status: Status
    target_s: int | None
    elapsed_s: float | None
    due_at: datetime | None
    stopped_at: datetime | None
    started_at: datetime | None = None
    priority: Priority | None = None
    calendar: Calendar | None = None
    segments: tuple[Segment, ...] = ()
    pauses: tuple[Interval, ...] = ()
    at_risk_threshold: float = 0.75
    elapsed_us: int | None = None


@dataclass(frozen=True)
class IncidentClocks:
    timeline: Timeline
    tier: str | None
    clocks: dict[Metric, Clock] = field(default_factory=dict)


def evaluate(timeline: Timeline, source: ContractSource) -> IncidentClocks:
    """All four clocks of one incident as of `timeline.as_of`, under the contract version that
    measures it (`ContractBook.measuring_version`)."""
    contracts = source.measuring(timeline.reported_at)
    tier = contracts.tier_of(timeline.customer)
    clocks = {
        Metric.RESPONSE: _response(timeline, contracts),
        Metric.WORKAROUND: _workaround(timeline, contracts),
        Metric.RESOLUTION: _resolution(timeline, contracts),
        Metric.POSTMORTEM: _postmortem(timeline, contracts),
    }
    return IncidentClocks(timeline=timeline, tier=tier[0] if tier else None, clocks=clocks)


def _response(t: Timeline, contracts: Contracts) -> Clock:
    return _clock(
        Metric.RESPONSE, t, contracts, start=t.reported_at, stop=t.acknowledged_at,
        runs=[Interval(t.reported_at, None)], pauses=(),
    )  # fmt: skip


def _workaround(t: Timeline, contracts: Contracts) -> Clock:
    candidates = [m for m in (t.first_workaround_at, _first_resolution_at(t)) if m is not None]
    return _clock(
        Metric.WORKAROUND, t, contracts, start=t.reported_at,
        stop=min(candidates) if candidates else None,
        runs=[Interval(t.reported_at, None)], pauses=t.pauses,
    )  # fmt: skip


def _resolution(t: Timeline, contracts: Contracts) -> Clock:
    latest = t.latest_resolution
    stop = latest.at if t.state is State.RESOLVED and latest is not None else None
    return _clock(
        Metric.RESOLUTION, t, contracts, start=t.reported_at, stop=stop,
        runs=t.open_runs(), pauses=t.pauses,
    )  # fmt: skip


def postmortem_required(t: Timeline) -> bool:
    """P1 (in effect at the latest resolution, or now if unresolved) or an outage."""
    latest = t.latest_resolution
    moment = latest.at if t.state is State.RESOLVED and latest is not None else t.as_of
    return t.outage or t.priority_at(moment) is Priority.P1


def _postmortem(t: Timeline, contracts: Contracts) -> Clock:
    target = contracts.target(t.customer, Priority.P1, Metric.POSTMORTEM)
    if not postmortem_required(t):
        return Clock(Metric.POSTMORTEM, Status.NOT_APPLICABLE, None, None, None, None)
    latest = t.latest_resolution
    if t.state is not State.RESOLVED or latest is None:
        return Clock(Metric.POSTMORTEM, Status.PENDING, target.seconds, None, None, None)
    published = [at for at in t.postmortems if at >= latest.at]
    return _measure(
        Metric.POSTMORTEM, t, target, start=latest.at,
        stop=published[0] if published else None,
        runs=[Interval(latest.at, None)], pauses=(), priority=t.priority_at(latest.at),
        threshold=contracts.at_risk_threshold,
    )  # fmt: skip


def _first_resolution_at(t: Timeline) -> datetime | None:
    return t.resolutions[0].at if t.resolutions else None


def _clock(
    metric: Metric,
    t: Timeline,
    contracts: Contracts,
    *,
    start: datetime,
    stop: datetime | None,
    runs: Sequence[Interval],
    pauses: Sequence[Interval],
) -> Clock:
    # A stopped clock keeps the priority in effect when it stopped; a running one uses now's,
    # recomputed over the whole interval since it started (clocks.md#priority-in-effect).
    priority = t.priority_at(stop if stop is not None else t.as_of)
    target = contracts.target(t.customer, priority, metric)
    return _measure(
        metric, t, target, start=start, stop=stop, runs=runs, pauses=pauses,
        priority=priority, threshold=contracts.at_risk_threshold,
    )  # fmt: skip


def _measure(
    metric: Metric,
    t: Timeline,
    target: Target,
    *,
    start: datetime,
    stop: datetime | None,
    runs: Sequence[Interval],
    pauses: Sequence[Interval],
    priority: Priority,
    threshold: float,
) -> Clock:
    horizon = stop if stop is not None else t.as_of
    segments = active_segments(runs, pauses, horizon)
    paused = _paused_at(pauses, horizon)
    calendar = target.calendar
    counted = [calendar.counted_us(a, b) for a, b in segments]
    elapsed_us = sum(counted)
    due = None
    if target.seconds is not None:
        due = due_instant_us(
            calendar, segments, None if paused else horizon, target.seconds * _US, counted=counted
        )
    status = _status(
        target.seconds, elapsed_us, stopped=stop is not None, paused=paused, ratio=threshold
    )
    return Clock(
        metric=metric,
        status=status,
        target_s=target.seconds,
        elapsed_s=_seconds(elapsed_us),
        due_at=due,
        stopped_at=stop,
        started_at=start,
        priority=priority,
        calendar=calendar,
        segments=tuple(segments),
        pauses=tuple(p for p in pauses if p.start <= horizon),
        at_risk_threshold=threshold,
        elapsed_us=elapsed_us,
    )


def active_segments(
    runs: Sequence[Interval], pauses: Sequence[Interval], horizon: datetime
) -> list[Segment]:
    """The runs clipped at `horizon`, minus the pauses: the time a clock may count."""
    segments: list[Segment] = []
    for run in runs:
        run_end = horizon if run.end is None else min(run.end, horizon)
        if run_end <= run.start:
            continue
        pieces = [(run.start, run_end)]
        for pause in pauses:
            pause_end = horizon if pause.end is None else min(pause.end, horizon)
            pieces = [piece for a, b in pieces for piece in _minus(a, b, pause.start, pause_end)]
        segments.extend(pieces)
    return segments


def _minus(a: datetime, b: datetime, c: datetime, d: datetime) -> list[Segment]:
    if d <= a or c >= b or d <= c:
        return [(a, b)]
    out = []
    if c > a:
        out.append((a, c))
    if d < b:
        out.append((d, b))
    return out


def _paused_at(pauses: Sequence[Interval], moment: datetime) -> bool:
    return any(p.start <= moment and (p.end is None or p.end > moment) for p in pauses)


def due_instant_us(
    calendar: Calendar,
    segments: Sequence[Segment],
    tail_from: datetime | None,
    target_us: int,
    *,
    counted: Sequence[int] | None = None,
) -> datetime | None:
    """Earliest instant counted time reaches `target_us` microseconds: over the known segments,
    then (unless paused) onwards from `tail_from` with no further pause (clocks.md, Figures).
    `counted`: each segment's counted µs, if already known."""
    remaining = target_us
    for index, (start, end) in enumerate(segments):
        counted_us = calendar.counted_us(start, end) if counted is None else counted[index]
        if counted_us >= remaining:
            return calendar.instant_after_us(start, remaining)
        remaining -= counted_us
    if tail_from is None:
        return None
    return calendar.instant_after_us(tail_from, remaining)


def _seconds(micros: int) -> float:
    return micros / 1_000_000


def _status(
    target_s: int | None, elapsed_us: int, *, stopped: bool, paused: bool, ratio: float
) -> Status:
    """First match wins (clocks.md#statuses), in whole microseconds, the threshold exactly."""
    if target_s is None:
        return Status.NOT_APPLICABLE
    target_us = target_s * _US
    if stopped and elapsed_us <= target_us:
        return Status.MET
    if elapsed_us > target_us:
        return Status.BREACHED
    if paused:
        return Status.PAUSED
    if elapsed_us >= ratio_threshold_us(target_s, ratio):
        return Status.AT_RISK
    return Status.RUNNING
