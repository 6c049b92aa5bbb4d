"""Escalation (clocks.md): the exact instants at which an incident's clocks cross the policy's
thresholds, and the levels they call for.

Pure: a `Timeline` and the contracts in, `Crossing`s and level `Step`s out. No sampling: each
clock's life is cut into *phases* at every instant where something it depends on changes (start,
stop, run and pause edges, priority changes, resolutions and reopenings). Inside a phase the
priority, target, calendar and running/paused state are fixed and counted time only grows, so
the first instant a threshold is reached is found with the calendar's interval arithmetic
(`instant_after`), the same arithmetic as `domain.clocks.due_instant`. All counting is done in
whole microseconds, so the instants are exact.

Conditions (each one holds at an instant τ exactly when `domain.clocks` would say so at τ):

* at risk   — the clock runs and is not paused, and threshold × target ≤ counted ≤ target;
* breached  — counted > target (so the breach instant is `due_at`, the condition holding from
  the instant just after it; on a business calendar a target reached exactly at the end of the
  working day is breached when work resumes);
* overrun   — counted ≥ overrun_ratio × target.

A condition counts only while its clock is *in force*: the response, workaround and resolution
clocks while the incident is not resolved, the post-mortem clock while it is resolved.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from slatrail.domain.calendars import AlwaysCalendar, Calendar, from_instant_us, instant_us
from slatrail.domain.clocks import Metric, ratio_threshold_us
from slatrail.domain.contract_version import ContractSource
from slatrail.domain.contracts import Contracts, EscalationPolicy, Target
from slatrail.domain.model import Priority
from slatrail.domain.timeline import ManualEscalation, Timeline

_US = 1_000_000
_ONE_US = timedelta(microseconds=1)

SpanUs = tuple[int, int | None]  # [start, end) in µs since the epoch, end None: open-ended

DEFAULT_REASON = "support engineer (default)"


class CrossingKind(StrEnum):
    """Which threshold of a clock a crossing is: at risk, breached, or overrun."""

    AT_RISK = "at_risk"
    BREACHED = "breached"
    OVERRUN = "overrun"


@dataclass(frozen=True, slots=True)
class Crossing:
    """The first instant of one phase of a clock at which a condition holds.

    `inclusive`: the condition holds at `at` itself; otherwise from the instant just after
    (a breach: counted time equals the target at `at` and exceeds it right after).
    `running`: the clock had not stopped for good then (only such crossings are alerted).
    """

    metric: Metric
    kind: CrossingKind
    at: datetime
    inclusive: bool
    cycle: int
    priority: Priority
    target_s: int
    threshold_s: float
    calendar: str
    running: bool
    level: int

    def reached_by(self, moment: datetime) -> bool:
        return self.at < moment or (self.inclusive and self.at == moment)

    @property
    def why(self) -> str:
        """Short reason, as shown next to a level."""
        if self.kind is CrossingKind.AT_RISK:
            return f"{self.metric} at risk"
        if self.kind is CrossingKind.OVERRUN:
            return f"{self.metric} over {self.threshold_s / self.target_s:g}x target"
        if self.priority is Priority.P1:
            return f"P1 {self.metric} breached"
        return f"{self.metric} breached"

    @property
    def detail(self) -> str:
        """Which clock, which threshold, under which priority and calendar."""
        target = _duration(self.target_s)
        if self.kind is CrossingKind.AT_RISK:
            what = f"counted reached {_duration(self.threshold_s)} ({_ratio(self)} of {target})"
        elif self.kind is CrossingKind.BREACHED:
            what = f"counted exceeded the {target} target"
        else:
            what = f"counted reached {_duration(self.threshold_s)} ({_ratio(self)} of {target})"
        return f"{self.metric} clock: {what}; {self.priority} target, calendar {self.calendar}"


def _ratio(crossing: Crossing) -> str:
    return f"{crossing.threshold_s / crossing.target_s:.0%}"


def _duration(seconds: float) -> str:
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "")
    if secs or seconds != whole or not text:
        text += f"{seconds - 60 * (hours * 60 + minutes):g}s"
    return text


@dataclass(frozen=True, slots=True)
class Step:
    """The level rose to `level` at `at` (from the instant just after, unless `inclusive`)."""

    at: datetime
    inclusive: bool
    level: int
    previous: int
    crossing: Crossing | None = None
    manual: ManualEscalation | None = None

    def reached_by(self, moment: datetime) -> bool:
        return self.at < moment or (self.inclusive and self.at == moment)

    @property
    def why(self) -> str:
        if self.manual is not None:
            return f"manual escalation: {self.manual.reason}"
        assert self.crossing is not None
        return self.crossing.why

    @property
    def detail(self) -> str:
        if self.manual is not None:
            return (
                f"escalated event at position {self.manual.position}: level "
                f"{self.manual.level} asked: {self.manual.reason}"
            )
        assert self.crossing is not None
        return self.crossing.detail


# -- clocks as the escalation sees them ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class _ClockLife:
    """One clock's life: when it may count, when it stopped for good, when it is in force
    (instants in µs since the epoch)."""

    metric: Metric
    start: int
    stop: int | None
    runs: tuple[SpanUs, ...]
    pauses: tuple[SpanUs, ...]
    in_force: tuple[SpanUs, ...]
    fixed_priority: Priority | None = None


def _lives(t: Timeline, metrics: Iterable[str]) -> list[_ClockLife]:
    """The clocks of `domain.clocks`, with the same starts, stops, runs and pauses."""
    us = instant_us
    wanted = set(metrics)
    open_runs = tuple((us(r.start), _us_or_none(r.end)) for r in t.open_runs())
    pauses = tuple((us(p.start), _us_or_none(p.end)) for p in t.pauses)
    reported = us(t.reported_at)
    since_report: tuple[SpanUs, ...] = ((reported, None),)
    lives: list[_ClockLife] = []
    if Metric.RESPONSE in wanted:
        lives.append(
            _ClockLife(
                Metric.RESPONSE, reported, _us_or_none(t.acknowledged_at), since_report, (),
                open_runs,
            )
        )  # fmt: skip
    if Metric.WORKAROUND in wanted:
        stops = [m for m in (t.first_workaround_at, _first_resolution(t)) if m is not None]
        lives.append(
            _ClockLife(
                Metric.WORKAROUND, reported, us(min(stops)) if stops else None,
                since_report, pauses, open_runs,
            )
        )  # fmt: skip
    if Metric.RESOLUTION in wanted:
        lives.append(_ClockLife(Metric.RESOLUTION, reported, None, open_runs, pauses, open_runs))
    if Metric.POSTMORTEM in wanted:
        # One post-mortem clock per resolution: it runs from the resolution until published;
        # a reopening returns it to pending (the clock of that resolution is gone).
        for index, resolution in enumerate(t.resolutions):
            priority = t.priority_at(resolution.at)
            if not (t.outage or priority is Priority.P1):
                continue
            gone = t.reopenings[index] if index < len(t.reopenings) else None
            published = next((at for at in t.postmortems if at >= resolution.at), None)
            if published is not None and gone is not None and published >= gone:
                published = None
            at = us(resolution.at)
            span = ((at, _us_or_none(gone)),)
            lives.append(
                _ClockLife(Metric.POSTMORTEM, at, _us_or_none(published), span, (), span, priority)
            )
    return lives


def _us_or_none(moment: datetime | None) -> int | None:
    return None if moment is None else instant_us(moment)


def _first_resolution(t: Timeline) -> datetime | None:
    return t.resolutions[0].at if t.resolutions else None


def _inside(spans: Sequence[SpanUs], moment: int) -> bool:
    for start, end in spans:  # noqa: SIM110 - a loop is faster than any() here
        if start <= moment and (end is None or moment < end):
            return True
    return False


# -- calendar arithmetic in whole microseconds ---------------------------------------------


def _resume(calendar: Calendar, moment: int) -> int | None:
    """First instant at or after `moment` from which working time is counted: the start of
    the first working microsecond (None: none before the end of year 9999)."""
    if isinstance(calendar, AlwaysCalendar):
        return moment
    after_one = calendar.reach_us(moment, 1)
    return None if after_one is None else after_one - 1


# -- the sweep ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Levels:
    at_risk: int
    breached: int
    p1_breached: int
    overrun: int
    ratio: float
    threshold: float

    @classmethod
    def of(cls, policy: EscalationPolicy, threshold: float) -> _Levels:
        return cls(
            policy.at_risk_level,
            policy.breached_level,
            policy.p1_breached_level,
            policy.overrun_level,
            policy.overrun_ratio,
            threshold,
        )


@dataclass(frozen=True, slots=True)
class _Goal:
    """One target with its thresholds in whole microseconds."""

    seconds: int
    calendar: Calendar
    target_us: int
    risk_s: float
    risk_us: int
    over_s: float
    over_us: int


_GOALS: dict[tuple[int, str, Priority, str], tuple[Contracts, _Goal | None]] = {}


def _goal(contracts: Contracts, customer: str, priority: Priority, metric: str) -> _Goal | None:
    """`contracts.target` with its thresholds, cached (the key holds the contracts object, so
    an id is never reused while cached)."""
    key = (id(contracts), customer, priority, metric)
    cached = _GOALS.get(key)
    if cached is not None and cached[0] is contracts:
        return cached[1]
    target: Target = contracts.target(customer, priority, metric)
    goal: _Goal | None = None
    if target.seconds is not None:
        # The same exact thresholds as the clocks' status (domain.clocks.ratio_threshold_us).
        risk_us = ratio_threshold_us(target.seconds, contracts.at_risk_threshold)
        over_us = ratio_threshold_us(target.seconds, contracts.escalation.overrun_ratio)
        goal = _Goal(
            target.seconds, target.calendar, target.seconds * _US,
            risk_us / _US, risk_us, over_us / _US, over_us,
        )  # fmt: skip
    if len(_GOALS) > 4096:
        _GOALS.clear()
    _GOALS[key] = (contracts, goal)
    return goal


def crossings(
    t: Timeline, source: ContractSource, *, horizon: datetime | None = None
) -> list[Crossing]:
    """The first crossing of every condition of the incident's clocks, in time order: per
    clock, condition and open cycle, the first instant it holds, and again whenever it is met
    at a level not seen before (a P1 upgrade of a breached clock).

    `horizon=None`: all crossings implied by the known events, future ones included (as if no
    further event came); else only those reached by `horizon` (normally `t.as_of`).
    """
    contracts = source.measuring(t.reported_at)
    policy = contracts.escalation
    levels = _Levels.of(policy, contracts.at_risk_threshold)
    out: list[Crossing] = []
    horizon_us = _us_or_none(horizon)
    changes = [(instant_us(at), p) for at, p in t.priority_changes]
    reopenings = [instant_us(at) for at in t.reopenings]
    for life in _lives(t, policy.metrics):
        _sweep(life, t, changes, reopenings, contracts, levels, horizon_us, out)
    out.sort(key=_order)
    return out


def _order(c: Crossing) -> tuple[datetime, bool, int]:
    return (c.at, not c.inclusive, -c.level)


def _sweep(
    life: _ClockLife,
    t: Timeline,
    changes: Sequence[tuple[int, Priority]],
    reopenings: Sequence[int],
    contracts: Contracts,
    levels: _Levels,
    horizon: int | None,
    out: list[Crossing],
) -> None:
    """Cut the clock's life into phases and find each condition's first instant in each
    (every instant in µs since the epoch; a crossing's instant a UTC datetime)."""
    start, stop, metric = life.start, life.stop, life.metric
    edges = {start}
    if stop is not None:
        edges.add(stop)
    for spans in (life.runs, life.in_force, life.pauses):
        for x, y in spans:
            edges.add(x)
            if y is not None:
                edges.add(y)
    fixed = life.fixed_priority
    if fixed is None:
        edges.update(at for at, _ in changes if stop is None or at < stop)
    bounds = sorted(e for e in edges if e >= start and (horizon is None or e <= horizon))
    name = "postmortem" if metric is Metric.POSTMORTEM else str(metric)
    pieces: list[tuple[int, int]] = []  # active time so far
    prefix: dict[int, int] = {}  # id(calendar) -> µs counted on it over `pieces`
    calendars: dict[int, Calendar] = {}
    seen: set[tuple[CrossingKind, int, int]] = set()  # (kind, cycle, level) already emitted
    last = len(bounds) - 1
    for index, a in enumerate(bounds):
        b = bounds[index + 1] if index < last else None
        before_stop = stop is None or a < stop
        active = before_stop and _inside(life.runs, a) and not _inside(life.pauses, a)
        if fixed is not None:
            priority = fixed
        else:  # a stopped clock keeps its priority
            moment = a if before_stop or stop is None else stop
            priority = t.claimed_priority
            for at, changed in changes:
                if at > moment:
                    break
                priority = changed
        goal = _goal(contracts, t.customer, priority, name)
        if goal is not None and _inside(life.in_force, a):
            calendar = goal.calendar
            key = id(calendar)
            counted = prefix.get(key)
            if counted is None:
                calendars[key] = calendar
                count = calendar.count_us
                counted = prefix[key] = sum(count(x, y) for x, y in pieces)
            end = b if b is not None else horizon  # where counting stops for this phase
            reached: int | None = counted  # counted at the phase's end (None: unbounded)
            if active:
                reached = None if end is None else counted + calendar.count_us(a, end)
            running = stop is None or a <= stop
            cycle = bisect.bisect_right(reopenings, a)  # reopenings are phase edges
            for kind, at_us, inclusive, threshold, level in _phase(
                a, b, horizon, active, priority, goal, counted, reached, levels
            ):
                mark = (kind, cycle, level)
                if mark in seen:  # still holding since an earlier phase: not a new crossing
                    continue
                seen.add(mark)
                out.append(
                    Crossing(
                        metric, kind, from_instant_us(at_us), inclusive, cycle, priority,
                        goal.seconds, threshold, calendar.name, running, level,
                    )
                )  # fmt: skip
        if active and b is not None:
            pieces.append((a, b))
            for k, cal in calendars.items():
                prefix[k] += cal.count_us(a, b)


_Found = tuple[CrossingKind, int, bool, float, int]


def _phase(
    a: int,
    b: int | None,
    horizon: int | None,
    active: bool,
    priority: Priority,
    goal: _Goal,
    counted: int,
    reached: int | None,
    levels: _Levels,
) -> list[_Found]:
    """The first instant in [a, b) (capped at `horizon`) of each condition."""
    found: list[_Found] = []
    calendar, target = goal.calendar, goal.target_us
    # at risk: running, not paused, threshold <= counted <= target
    if active:
        if goal.risk_us <= counted <= target:
            found.append((CrossingKind.AT_RISK, a, True, goal.risk_s, levels.at_risk))
        elif counted < goal.risk_us and (reached is None or reached >= goal.risk_us):
            moment = calendar.reach_us(a, goal.risk_us - counted)
            if _within(moment, b, horizon, strictly=False):
                assert moment is not None
                found.append((CrossingKind.AT_RISK, moment, True, goal.risk_s, levels.at_risk))
    # breached: counted > target, from just after the instant it equals the target
    level = levels.p1_breached if priority is Priority.P1 else levels.breached
    if counted > target:
        found.append((CrossingKind.BREACHED, a, True, float(goal.seconds), level))
    elif active and (reached is None or reached > target):
        due = calendar.reach_us(a, target - counted)
        moment = None if due is None else _resume(calendar, due)
        if _within(moment, b, horizon, strictly=True):
            assert moment is not None
            found.append((CrossingKind.BREACHED, moment, False, float(goal.seconds), level))
    # overrun: counted >= ratio x target
    if counted >= goal.over_us:
        found.append((CrossingKind.OVERRUN, a, True, goal.over_s, levels.overrun))
    elif active and (reached is None or reached >= goal.over_us):
        moment = calendar.reach_us(a, goal.over_us - counted)
        if _within(moment, b, horizon, strictly=False):
            assert moment is not None
            found.append((CrossingKind.OVERRUN, moment, True, goal.over_s, levels.overrun))
    return found


def _within(moment: int | None, b: int | None, horizon: int | None, *, strictly: bool) -> bool:
    """In the phase (before `b`) and reached by the horizon (a breach: strictly before it)."""
    if moment is None or (b is not None and moment >= b):
        return False
    return horizon is None or moment < horizon or (moment == horizon and not strictly)


# -- levels ---------------------------------------------------------------------------------


def level_steps(
    found: Sequence[Crossing],
    manual: Sequence[ManualEscalation],
    policy: EscalationPolicy,
) -> list[Step]:
    """The instants the level rose, in order: it never drops (clocks.md#escalation)."""
    candidates: list[tuple[datetime, bool, int, Crossing | None, ManualEscalation | None]] = [
        (c.at, c.inclusive, c.level, c, None) for c in found
    ]
    if policy.manual_override:
        candidates.extend((m.at, True, m.level, None, m) for m in manual)
    candidates.sort(key=lambda c: (c[0], not c[1], -c[2]))
    steps: list[Step] = []
    level = 1
    for at, inclusive, wanted, crossing, escalation in candidates:
        if wanted > level:
            steps.append(Step(at, inclusive, wanted, level, crossing, escalation))
            level = wanted
    return steps


def level_at(steps: Sequence[Step], moment: datetime) -> int:
    level = 1
    for step in steps:
        if step.reached_by(moment):
            level = step.level
    return level
