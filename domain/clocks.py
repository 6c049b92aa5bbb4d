"""The four SLA clocks of an incident (reference/clocks.md), by interval arithmetic over calendars.

Every result is a pure function of (timeline as of `as_of`, contracts).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from fractions import Fraction
from typing import Any, NamedTuple

from slatrail.domain.calendars import Calendar, from_instant_us, instant_us
from slatrail.domain.contract_version import ContractSource
from slatrail.domain.contracts import Contracts
from slatrail.domain.model import IncidentEvent, Priority, State, format_instant
from slatrail.domain.timeline import Interval, Timeline, build_timeline, in_occurred_order


class Metric(StrEnum):
    RESPONSE = "response"
    WORKAROUND = "workaround"
    RESOLUTION = "resolution"
    POSTMORTEM = "postmortem"


class Status(StrEnum):
    NOT_APPLICABLE = "not_applicable"
    PENDING = "pending"
    MET = "met"
    BREACHED = "breached"
    PAUSED = "paused"
    AT_RISK = "at_risk"
    RUNNING = "running"


# Enum members read once (a member lookup costs ~0.1 µs on Python 3.11, many per evaluation).
_RESPONSE, _WORKAROUND, _RESOLUTION, _POSTMORTEM = Metric
_NOT_APPLICABLE, _PENDING, _MET, _BREACHED, _PAUSED, _AT_RISK, _RUNNING = Status
_RESOLVED, _P1 = State.RESOLVED, Priority.P1

Segment = tuple[datetime, datetime]
SegmentUs = tuple[int, int]  # [start, end) in µs since the epoch
_SpanUs = tuple[int, int | None]  # end None: still open at the horizon

EXPLAIN_INTERVALS = 1000
"""At most this many counted intervals are listed per clock by `Clock.explain` (a clock running
for years has thousands; the figures are exact regardless)."""


class ClockFigures(NamedTuple):
    """One clock's figures in integer microseconds (exact): what `evaluate_figures` returns
    per clock, and `Clock.figures()` of the clock `evaluate` returns."""

    metric: Metric
    status: Status
    target_s: int | None
    elapsed_us: int | None
    due_us: int | None
    stopped_us: int | None
    priority: Priority | None


@dataclass(frozen=True)
class Clock:
    """One metric's clock as of `as_of`: status, figures and what they were computed from."""

    metric: Metric
    status: Status
    target_s: int | None
    elapsed_s: float | None
    due_at: datetime | None
    stopped_at: datetime | None
    started_at: datetime | None = None
    priority: Priority | None = None
    calendar: Calendar | None = None
    segments_us: tuple[SegmentUs, ...] = ()
    pauses: tuple[Interval, ...] = ()
    at_risk_threshold: float = 0.75
    elapsed_us: int | None = None  # elapsed_s in whole microseconds (exact, for comparisons)

    @property
    def segments(self) -> tuple[Segment, ...]:
        """The active segments counted (runs clipped at the horizon, minus the pauses)."""
        return tuple((from_instant_us(a), from_instant_us(b)) for a, b in self.segments_us)

    @property
    def running(self) -> bool:
        return self.status in (Status.RUNNING, Status.AT_RISK, Status.PAUSED) or (
            self.status is Status.BREACHED and self.stopped_at is None
        )

    def figures(self) -> ClockFigures:
        return ClockFigures(
            self.metric, self.status, self.target_s, self.elapsed_us,
            None if self.due_at is None else instant_us(self.due_at),
            None if self.stopped_at is None else instant_us(self.stopped_at), self.priority,
        )  # fmt: skip

    def as_json(self) -> dict[str, Any]:
        return {
            "status": str(self.status),
            "target_s": self.target_s,
            "elapsed_s": self.elapsed_s,
            "due_at": format_instant(self.due_at) if self.due_at else None,
            "stopped_at": format_instant(self.stopped_at) if self.stopped_at else None,
        }

    def explain(self) -> dict[str, Any]:
        """The intervals counted (the first `EXPLAIN_INTERVALS`; `counted_intervals_truncated`
        says whether there were more), the pauses, the calendar and the priority used."""
        counted: list[list[str]] = []
        truncated = False
        if self.calendar is not None:
            for start, end in self.segments:
                if not self.calendar.counted_us(start, end):
                    continue  # (a long span without working time would be walked for nothing)
                for a, b in self.calendar.working_intervals(start, end):
                    if len(counted) == EXPLAIN_INTERVALS:
                        truncated = True
                        break
                    counted.append([format_instant(a), format_instant(b)])
                if truncated:
                    break
        return {
            **self.as_json(),
            "started_at": format_instant(self.started_at) if self.started_at else None,
            "priority": str(self.priority) if self.priority else None,
            "calendar": self.calendar.name if self.calendar else None,
            "at_risk_threshold": self.at_risk_threshold,
            "active_segments": [[format_instant(a), format_instant(b)] for a, b in self.segments],
            "pauses": [
                [format_instant(p.start), format_instant(p.end) if p.end else None]
                for p in self.pauses
            ],
            "counted_intervals": counted,
            "counted_intervals_truncated": truncated,
        }


@dataclass(frozen=True)
class IncidentClocks:
    timeline: Timeline
    tier: str | None
    clocks: dict[Metric, Clock] = field(default_factory=dict)


def evaluate(timeline: Timeline, source: ContractSource) -> IncidentClocks:
    """All four clocks of one incident as of `timeline.as_of`, under the contract version that
    measures it (`ContractBook.measuring_version`)."""
    measures = _Measures(source.measuring(timeline.reported_at))
    clocks = {c.metric: c for c in measures.clocks(timeline)}
    return IncidentClocks(timeline=timeline, tier=measures.tier(timeline.customer), clocks=clocks)


IncidentFigures = tuple[str | None, tuple[ClockFigures, ...]]
"""(tier, the four clocks' figures in `Metric` order) of one incident."""


def evaluate_figures(
    timelines: Iterable[Timeline], source: ContractSource
) -> list[IncidentFigures]:
    """The figures of all four clocks of many incidents (each as of its timeline's `as_of`)
    in one call: what `evaluate(t).clocks` says, as integer microseconds, without building
    `Clock` objects or datetimes; the contracts' tiers, targets and thresholds are looked up
    once per call and the instants shared by the incidents (`as_of`) converted once."""
    out: list[IncidentFigures] = []
    measures: dict[int, tuple[Contracts, _Measures]] = {}
    for timeline in timelines:
        contracts = source.measuring(timeline.reported_at)
        known = measures.get(id(contracts))
        if known is None or known[0] is not contracts:
            known = measures[id(contracts)] = (contracts, _Measures(contracts))
        of = known[1]
        out.append((of.tier(timeline.customer), of.figures(timeline)))
    return out


def evaluate_instants(
    events: Sequence[IncidentEvent], instants: Iterable[datetime], source: ContractSource
) -> dict[datetime, IncidentFigures | None]:
    """The figures of one incident's four clocks at each of many instants, in one call (None:
    not reported by then): `evaluate_figures` of the timeline as of each instant.

    Between two of the incident's events only `as_of` changes: every run, pause, stop and
    priority is the same, so each clock's segments are cut once for all the instants that
    see the same events, and at each instant only the open segment is counted again (its
    due instant does not move: counting on from the open segment's start reaches the target
    where counting on from the instant would, counted time being exactly additive)."""
    ordered = in_occurred_order(events)
    occurred = [e.occurred_at for e in ordered]
    groups: dict[int, list[datetime]] = {}
    for moment in set(instants):
        groups.setdefault(bisect.bisect_right(occurred, moment), []).append(moment)
    out: dict[datetime, IncidentFigures | None] = {}
    measures: _Measures | None = None
    for known, moments in groups.items():
        moments.sort()
        timeline = build_timeline(ordered[:known], moments[-1])
        if timeline is None:
            out.update(dict.fromkeys(moments))
            continue
        contracts = source.measuring(timeline.reported_at)
        if measures is None or measures.contracts is not contracts:
            measures = _Measures(contracts)
        tier = measures.tier(timeline.customer)
        if len(moments) == 1:
            out[moments[0]] = (tier, measures.figures(timeline))
            continue
        per_clock = [_along(spec, measures._as_of, moments) for spec in measures._specs(timeline)]
        for index, moment in enumerate(moments):
            out[moment] = (tier, tuple(figures[index] for figures in per_clock))
    return out


def _along(spec: _Spec, last: int, moments: Sequence[datetime]) -> list[ClockFigures]:
    """One clock's figures at each of `moments` (sorted, the last one `last` in µs), all
    seeing the same events."""
    metric, _, stop, runs, pauses, _, priority, goal, fixed = spec
    if goal is None or fixed is not None:  # not measured: not applicable, or pending
        seconds = None if goal is None else goal.seconds
        found = ClockFigures(metric, fixed or _NOT_APPLICABLE, seconds, None, None, None, None)
        return [found] * len(moments)
    if stop is not None:  # stopped by the first of the moments: the same figures at each
        stop_us = instant_us(stop)
        status, elapsed, due, _ = _core(goal, stop_us, stop_us, runs, pauses)
        found = ClockFigures(metric, status, goal.seconds, elapsed, due, stop_us, priority)
        return [found] * len(moments)
    status, elapsed, due, segments = _core(goal, None, last, runs, pauses)
    # Between events no pause starts or ends and no run either: only a segment still open at
    # `last` grows; an earlier moment sees it up to itself (it starts at or before the moment).
    count = goal.calendar.count_us
    open_from = segments[-1][0] if segments and segments[-1][1] == last else None
    closed = elapsed if open_from is None else elapsed - count(open_from, last)
    paused = any(a <= last and (b is None or b > last) for a, b in pauses)
    # A running clock not paused counts on from a run still open: its due instant is where
    # counting on from that segment's start reaches the target, whichever the moment.
    assert open_from is not None or paused
    out = []
    for moment in moments:
        horizon = instant_us(moment)
        counted = closed if open_from is None else closed + count(open_from, horizon)
        if goal.seconds is None:
            out.append(ClockFigures(metric, _NOT_APPLICABLE, None, counted, None, None, priority))
            continue
        status = _status_of(goal, counted, stopped=False, paused=paused)
        out.append(ClockFigures(metric, status, goal.seconds, counted, due, None, priority))
    return out


def postmortem_required(t: Timeline) -> bool:
    """P1 (in effect at the latest resolution, or now if unresolved) or an outage."""
    latest = t.latest_resolution
    moment = latest.at if t.state is State.RESOLVED and latest is not None else t.as_of
    return t.outage or t.priority_at(moment) is Priority.P1


def _first_resolution_at(t: Timeline) -> datetime | None:
    return t.resolutions[0].at if t.resolutions else None


@dataclass(frozen=True, slots=True)
class _Goal:
    """A target looked up once: seconds, calendar and the at-risk threshold in µs."""

    seconds: int | None
    calendar: Calendar
    risk_us: int | None


_TIERS: dict[tuple[int, str], tuple[Contracts, str | None]] = {}
_TARGETS: dict[tuple[int, str, Priority, str], tuple[Contracts, _Goal]] = {}
_CACHE_LIMIT = 4096


class _Measures:
    """The clocks of incidents under one `Contracts`: its tiers, targets and thresholds are
    cached (keyed by the contracts object, held in the entry so its id is never reused while
    cached)."""

    __slots__ = ("_as_of", "_as_of_dt", "contracts", "threshold")

    def __init__(self, contracts: Contracts) -> None:
        self.contracts = contracts
        self.threshold = contracts.at_risk_threshold
        self._as_of_dt: datetime | None = None  # the last as_of converted, and its µs
        self._as_of = 0

    def tier(self, customer: str) -> str | None:
        key = (id(self.contracts), customer)
        cached = _TIERS.get(key)
        if cached is None or cached[0] is not self.contracts:
            found = self.contracts.tier_of(customer)
            if len(_TIERS) > _CACHE_LIMIT:
                _TIERS.clear()
            cached = _TIERS[key] = (self.contracts, found[0] if found else None)
        return cached[1]

    def goal(self, customer: str, priority: Priority, metric: str) -> _Goal:
        key = (id(self.contracts), customer, priority, metric)
        cached = _TARGETS.get(key)
        if cached is None or cached[0] is not self.contracts:
            target = self.contracts.target(customer, priority, metric)
            risk = (
                None
                if target.seconds is None
                else ratio_threshold_us(target.seconds, self.threshold)
            )
            if len(_TARGETS) > _CACHE_LIMIT:
                _TARGETS.clear()
            cached = _TARGETS[key] = (self.contracts, _Goal(target.seconds, target.calendar, risk))
        return cached[1]

    def clocks(self, t: Timeline) -> list[Clock]:
        out: list[Clock] = []
        for metric, start, stop, runs, pauses, spans, priority, goal, status in self._specs(t):
            if goal is None or status is not None:  # not measured: not applicable, or pending
                seconds = None if goal is None else goal.seconds
                out.append(Clock(metric, status or _NOT_APPLICABLE, seconds, None, None, None))
                continue
            stop_us = None if stop is None else instant_us(stop)
            horizon = self._as_of if stop_us is None else stop_us
            status, elapsed, due, segments = _core(goal, stop_us, horizon, runs, pauses)
            clock = object.__new__(Clock)  # see `_CLOCK_FIELDS`
            clock.__dict__.update(
                metric=metric, status=status, target_s=goal.seconds,
                elapsed_s=elapsed / _US, due_at=None if due is None else from_instant_us(due),
                stopped_at=stop, started_at=start, priority=priority, calendar=goal.calendar,
                segments_us=tuple(segments),
                pauses=tuple(p for p, (a, _) in zip(spans, pauses, strict=True) if a <= horizon)
                if spans else (),
                at_risk_threshold=self.threshold, elapsed_us=elapsed,
            )  # fmt: skip
            out.append(clock)
        return out

    def figures(self, t: Timeline) -> tuple[ClockFigures, ...]:
        out: list[ClockFigures] = []
        for metric, _, stop, runs, pauses, _, priority, goal, status in self._specs(t):
            if goal is None or status is not None:
                seconds = None if goal is None else goal.seconds
                out.append(
                    ClockFigures(metric, status or _NOT_APPLICABLE, seconds, None, None, None, None)
                )
                continue
            stop_us = None if stop is None else instant_us(stop)
            horizon = self._as_of if stop_us is None else stop_us
            status, elapsed, due, _ = _core(goal, stop_us, horizon, runs, pauses)
            out.append(ClockFigures(metric, status, goal.seconds, elapsed, due, stop_us, priority))
        return tuple(out)

    def _specs(self, t: Timeline) -> list[_Spec]:
        """What each of the four clocks measures (clocks.md): start, stop, runs, pauses (µs),
        priority and target."""
        us = instant_us
        if t.as_of is not self._as_of_dt:
            self._as_of_dt, self._as_of = t.as_of, us(t.as_of)
        reported = us(t.reported_at)
        pauses = tuple((us(p.start), None if p.end is None else us(p.end)) for p in t.pauses)
        since_report: tuple[_SpanUs, ...] = ((reported, None),)
        latest = t.latest_resolution
        resolved = t.state is _RESOLVED and latest is not None
        # A stopped clock keeps the priority in effect when it stopped; a running one uses
        # now's, recomputed over the whole interval since it started
        # (clocks.md#priority-in-effect).
        customer, goal, priority_at, now = t.customer, self.goal, t.priority_at, t.as_of
        specs: list[_Spec] = []
        # response: never pauses, stops at the acknowledgement
        stop = t.acknowledged_at
        priority = priority_at(now if stop is None else stop)
        specs.append((
            _RESPONSE, t.reported_at, stop, since_report, (), (), priority,
            goal(customer, priority, _RESPONSE), None,
        ))  # fmt: skip
        # workaround: stops at the first workaround or resolution
        stops = [m for m in (t.first_workaround_at, _first_resolution_at(t)) if m is not None]
        stop = min(stops) if stops else None
        priority = priority_at(now if stop is None else stop)
        specs.append((
            _WORKAROUND, t.reported_at, stop, since_report, pauses, t.pauses, priority,
            goal(customer, priority, _WORKAROUND), None,
        ))  # fmt: skip
        # resolution: runs while not resolved, stops at the latest resolution
        runs = tuple((us(r.start), None if r.end is None else us(r.end)) for r in t.open_runs())
        stop = latest.at if resolved and latest is not None else None
        priority = priority_at(now if stop is None else stop)
        specs.append((
            _RESOLUTION, t.reported_at, stop, runs, pauses, t.pauses, priority,
            goal(customer, priority, _RESOLUTION), None,
        ))  # fmt: skip
        # post-mortem: from the latest resolution until published, if required
        metric = _POSTMORTEM
        if not postmortem_required(t):
            specs.append((metric, None, None, (), (), (), None, None, _NOT_APPLICABLE))
        elif not resolved or latest is None:
            pm_goal = goal(customer, _P1, metric)
            specs.append((metric, None, None, (), (), (), None, pm_goal, _PENDING))
        else:
            published = [at for at in t.postmortems if at >= latest.at]
            priority = priority_at(latest.at)
            specs.append((
                metric, latest.at, published[0] if published else None,
                ((us(latest.at), None),), (), (), priority, goal(customer, _P1, metric),
                None,
            ))  # fmt: skip
        return specs


_CLOCK_FIELDS = frozenset(f.name for f in fields(Clock))
"""`_Measures.clocks` fills a `Clock`'s instance dictionary at once (every one of these
fields), skipping the frozen dataclass's per-field `object.__setattr__` (a third of an
evaluation's cost); `tests/unit/test_clock_batches.py` checks the clocks it builds equal
`Clock(...)` built the ordinary way."""


_Spec = tuple[
    Metric,
    datetime | None,  # start
    datetime | None,  # stop
    tuple[_SpanUs, ...],  # runs
    tuple[_SpanUs, ...],  # pauses
    tuple[Interval, ...],  # the same pauses, as the timeline holds them
    Priority | None,
    _Goal | None,
    Status | None,  # not measured: this status (not applicable, pending)
]


def _core(
    goal: _Goal,
    stop_us: int | None,
    horizon: int,
    runs: Sequence[_SpanUs],
    pauses: Sequence[_SpanUs],
) -> tuple[Status, int, int | None, list[SegmentUs]]:
    """(status, counted µs, due instant µs, active segments) of one clock at `horizon` (its
    stop, else as_of): every figure in integer microseconds."""
    segments = active_segments_us(runs, pauses, horizon)
    paused = False
    for a, b in pauses:
        if a <= horizon and (b is None or b > horizon):
            paused = True
            break
    calendar = goal.calendar
    count = calendar.count_us
    counted = [count(a, b) for a, b in segments]
    elapsed = sum(counted)
    seconds = goal.seconds
    if seconds is None or goal.risk_us is None:
        return _NOT_APPLICABLE, elapsed, None, segments
    target_us = seconds * _US
    due = _due_us(calendar, segments, counted, None if paused else horizon, target_us)
    status = _status_of(goal, elapsed, stopped=stop_us is not None, paused=paused)
    return status, elapsed, due, segments


def active_segments_us(
    runs: Sequence[_SpanUs], pauses: Sequence[_SpanUs], horizon: int
) -> list[SegmentUs]:
    """The runs clipped at `horizon`, minus the pauses: the time a clock may count (µs)."""
    segments: list[SegmentUs] = []
    for run_start, end in runs:
        run_end = horizon if end is None or end > horizon else end
        if run_end <= run_start:
            continue
        if not pauses:
            segments.append((run_start, run_end))
            continue
        pieces = [(run_start, run_end)]
        for c, pause_end in pauses:
            d = horizon if pause_end is None or pause_end > horizon else pause_end
            if d <= c:
                continue
            cut: list[SegmentUs] = []
            for a, b in pieces:
                if d <= a or c >= b:
                    cut.append((a, b))
                    continue
                if c > a:
                    cut.append((a, c))
                if d < b:
                    cut.append((d, b))
            pieces = cut
        segments.extend(pieces)
    return segments


def _status_of(goal: _Goal, elapsed: int, *, stopped: bool, paused: bool) -> Status:
    """First match wins (clocks.md#statuses), in whole microseconds, the threshold exactly."""
    assert goal.seconds is not None and goal.risk_us is not None
    target_us = goal.seconds * _US
    if stopped and elapsed <= target_us:
        return _MET
    if elapsed > target_us:
        return _BREACHED
    if paused:
        return _PAUSED
    if elapsed >= goal.risk_us:
        return _AT_RISK
    return _RUNNING


def _due_us(
    calendar: Calendar,
    segments: Sequence[SegmentUs],
    counted: Sequence[int],
    tail_from: int | None,
    target_us: int,
) -> int | None:
    """`due_instant_us` on µs instants, each segment's counted time known."""
    remaining = target_us
    for (start, _), counted_us in zip(segments, counted, strict=True):
        if counted_us >= remaining:
            return calendar.reach_us(start, remaining)
        remaining -= counted_us
    if tail_from is None:
        return None
    return calendar.reach_us(tail_from, remaining)


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


def due_instant(
    calendar: Calendar, segments: Sequence[Segment], tail_from: datetime | None, target_s: float
) -> datetime | None:
    """Earliest instant counted time reaches `target_s` (rounded to whole microseconds): see
    `due_instant_us`."""
    return due_instant_us(calendar, segments, tail_from, _micros(target_s))


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


# -- exact thresholds ------------------------------------------------------------------------

_US = 1_000_000


def exact_ratio(ratio: float | Fraction) -> Fraction:
    """A contract ratio (`at_risk_threshold`, `overrun_ratio`) as the exact decimal written in
    the contracts file: a float is read back through its shortest repr (`0.55` is 11/20, not
    the binary double just above it), so `ratio × target` is computed without rounding."""
    if isinstance(ratio, float):
        return Fraction(repr(ratio))
    return Fraction(ratio)


def ratio_threshold_us(target_s: int, ratio: float | Fraction) -> int:
    """The counted time, in whole microseconds, from which `counted ≥ ratio × target` holds
    (docs/reference/clocks.md#statuses): ceil(ratio × target in µs), in exact rational arithmetic.

    The one comparison every view uses — clock status (`at_risk`), escalation crossings,
    alerts and the audit's annotations — so they all agree to the microsecond.
    """
    product = exact_ratio(ratio) * (target_s * _US)
    return -(-product.numerator // product.denominator)


# Counted time is summed in whole microseconds (the calendars' resolution): a float sum of
# pieces that add up to a target exactly may land a hair above it and turn "met" into "breached".
def _micros(seconds: float) -> int:
    return round(seconds * 1_000_000)


def _seconds(micros: int) -> float:
    return micros / 1_000_000
