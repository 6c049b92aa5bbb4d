"""Escalation state of incidents (clocks.md): a pure function of (events, contracts, as_of).

The level (1-4) and its history — when it rose, to which level, why (which clock crossed which
threshold, or which manual `escalated` event) — from the exact crossing instants computed by
`domain.escalation`. The level never drops: not while the incident is open, not when it is
resolved (the level it reached stays on record), not when it is reopened (it keeps its level).

The same computation, run with no horizon over every known event, gives the alerts a running
service must publish (`planned_alerts`): one per at-risk and breach crossing per clock and open
cycle, one per level change, each with a stable key.

`sweep` runs that computation once per incident; the state as of `as_of` is then the crossings
reached by `as_of` (`state_of(..., swept=)`), so a view that shows both the level and the next
alert (`escalations`) sweeps each incident's clocks once, not twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from slatrail.domain.clocks import Metric
from slatrail.domain.contract_version import ContractSource
from slatrail.domain.contracts import Contracts
from slatrail.domain.escalation import (
    DEFAULT_REASON,
    Crossing,
    CrossingKind,
    Step,
    crossings,
    level_steps,
)
from slatrail.domain.model import IncidentEvent, State, format_instant
from slatrail.domain.timeline import Timeline, build_timeline

FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)
"""`as_of` that includes every known event (used to plan alerts)."""


@dataclass(frozen=True, slots=True)
class Reason:
    level: int
    why: str


@dataclass(frozen=True)
class EscalationState:
    """An incident's escalation as of `as_of`."""

    incident_id: str
    customer: str
    state: State
    priority: str
    as_of: datetime
    steps: tuple[Step, ...]
    crossings: tuple[Crossing, ...]
    level_names: tuple[str, ...]

    @property
    def level(self) -> int:
        return self.steps[-1].level if self.steps else 1

    @property
    def open(self) -> bool:
        return self.state is not State.RESOLVED

    @property
    def reason(self) -> Reason:
        return Reason(self.level, self.steps[-1].why if self.steps else DEFAULT_REASON)

    @property
    def since(self) -> datetime | None:
        return self.steps[-1].at if self.steps else None

    def as_json(self) -> dict[str, Any]:
        return {
            "incident_id": self.incident_id,
            "customer": self.customer,
            "state": str(self.state),
            "priority": self.priority,
            "level": self.level,
            "level_name": self.level_names[self.level - 1],
            "since": format_instant(self.since) if self.since else None,
            "reason": self.reason.why,
            "history": [step_json(step, self.level_names) for step in self.steps],
            "crossings": [crossing_json(c) for c in self.crossings],
        }


def step_json(step: Step, names: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "at": format_instant(step.at),
        "level": step.level,
        "level_name": names[step.level - 1],
        "from_level": step.previous,
        "why": step.why,
        "detail": step.detail,
    }
    if step.manual is not None:
        out["cause"] = {
            "manual": True,
            "position": step.manual.position,
            "level": step.manual.level,
            "reason": step.manual.reason,
        }
    else:
        assert step.crossing is not None
        out["cause"] = crossing_json(step.crossing)
    return out


def crossing_json(c: Crossing) -> dict[str, Any]:
    return {
        "metric": str(c.metric),
        "kind": str(c.kind),
        "at": format_instant(c.at),
        "from_just_after": not c.inclusive,
        "cycle": c.cycle,
        "priority": str(c.priority),
        "target_s": c.target_s,
        "threshold_s": c.threshold_s,
        "calendar": c.calendar,
        "level": c.level,
    }


@dataclass(frozen=True, slots=True)
class Swept:
    """An incident's crossings computed once with no horizon (future ones included), under
    the contract version that measures it: enough for its state as of the timeline's `as_of`,
    its planned alerts and its next alert."""

    measured: Contracts
    found: tuple[Crossing, ...]


def sweep(timeline: Timeline, contracts: ContractSource) -> Swept:
    measured = contracts.measuring(timeline.reported_at)
    return Swept(measured, tuple(crossings(timeline, measured, horizon=None)))


def state_of(
    timeline: Timeline, contracts: ContractSource, *, swept: Swept | None = None
) -> EscalationState:
    """Escalation as of `timeline.as_of` (the timeline holds the events known by then).

    With `swept` (`sweep` of the same timeline), the crossings reached by `as_of` are taken
    from it: the same crossings a sweep up to `as_of` finds, as the sweep only ever looks
    forward from each phase start."""
    if swept is None:
        measured = contracts.measuring(timeline.reported_at)
        found = crossings(timeline, measured, horizon=timeline.as_of)
    else:
        measured = swept.measured
        found = [c for c in swept.found if c.reached_by(timeline.as_of)]
    steps = level_steps(found, timeline.escalations, measured.escalation)
    return EscalationState(
        incident_id=timeline.incident_id,
        customer=timeline.customer,
        state=timeline.state,
        priority=str(timeline.priority),
        as_of=timeline.as_of,
        steps=tuple(steps),
        crossings=tuple(distinct(found)),
        level_names=tuple(measured.escalation.level_names),
    )


def distinct(found: Iterable[Crossing]) -> list[Crossing]:
    """The first crossing of each (clock, kind, cycle, level): a condition still holding in a
    later phase (after a priority change, a pause, …) is not a new crossing."""
    seen: set[tuple[str, str, int, int]] = set()
    out: list[Crossing] = []
    for c in found:
        key = (str(c.metric), str(c.kind), c.cycle, c.level)
        if key not in seen:
            seen.add(key)
            out.append(c)
    return out


def escalation_state(
    events: Sequence[IncidentEvent], contracts: ContractSource, as_of: datetime
) -> EscalationState | None:
    """None if the incident was not reported by `as_of`."""
    timeline = build_timeline(events, as_of)
    return None if timeline is None else state_of(timeline, contracts)


def escalation_level(
    events: Sequence[IncidentEvent], contracts: ContractSource, as_of: datetime
) -> Reason:
    """The level as of `as_of` and the reason for it."""
    state = escalation_state(events, contracts, as_of)
    return Reason(1, "not reported") if state is None else state.reason


def escalations_view(
    histories: Iterable[Sequence[IncidentEvent]],
    contracts: ContractSource,
    as_of: datetime,
    *,
    level: int | None = None,
    include_resolved: bool = False,
) -> list[EscalationState]:
    """Incidents (open ones unless `include_resolved`) by level, highest first, then longest
    at that level."""
    found = escalations_with_next(
        histories, contracts, as_of, level=level, include_resolved=include_resolved, plan=False
    )
    return [state for state, _ in found]


def escalations_with_next(
    histories: Iterable[Sequence[IncidentEvent]],
    contracts: ContractSource,
    as_of: datetime,
    *,
    level: int | None = None,
    include_resolved: bool = False,
    plan: bool = True,
) -> list[tuple[EscalationState, PlannedAlert | None]]:
    """`escalations_view`, each incident with its next alert (`next_alert`; None when `plan`
    is False), from one sweep of its clocks."""
    out: list[tuple[EscalationState, PlannedAlert | None]] = []
    for events in histories:
        timeline = build_timeline(events, as_of)
        if timeline is None:
            continue
        swept = sweep(timeline, contracts) if plan else None
        state = state_of(timeline, contracts, swept=swept)
        if not (include_resolved or state.open):
            continue
        if level is not None and state.level != level:
            continue
        coming = next_alert(timeline, contracts, swept=swept) if swept is not None else None
        out.append((state, coming))
    out.sort(key=lambda p: (-p[0].level, p[0].since or FAR_FUTURE, p[0].incident_id))
    return out


# -- alerts ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlannedAlert:
    """An alert a running service publishes at `at` (reference/topics.md), under a stable key."""

    key: str
    kind: str  # at_risk | breached | escalated
    at: datetime
    inclusive: bool  # False: the condition holds from just after `at` (a breach)
    metric: Metric | None
    cycle: int
    level: int
    crossing: Crossing | None
    step: Step | None

    @property
    def reason(self) -> str:
        if self.step is not None:
            return self.step.why
        assert self.crossing is not None
        return self.crossing.why

    @property
    def detail(self) -> str:
        if self.step is not None:
            return self.step.detail
        assert self.crossing is not None
        return self.crossing.detail


def alert_key(incident_id: str, kind: str, metric: str | None, cycle_or_level: int) -> str:
    """`INC-1/resolution/breached/0` (cycle = reopenings before it), `INC-1/escalated/3`.

    `/` never occurs in an incident_id, so keys cannot collide.
    """
    if kind == "escalated":
        return f"{incident_id}/escalated/{cycle_or_level}"
    return f"{incident_id}/{metric}/{kind}/{cycle_or_level}"


def planned_alerts(
    timeline: Timeline, contracts: ContractSource, *, swept: Swept | None = None
) -> list[PlannedAlert]:
    """Every alert the known events imply, past and future (as if no further event came),
    in time order. Build `timeline` with `as_of=FAR_FUTURE` to see every known event.
    `swept`: `sweep` of the same timeline, if already computed."""
    if swept is None:
        swept = sweep(timeline, contracts)
    measured, found = swept.measured, swept.found
    steps = level_steps(found, timeline.escalations, measured.escalation)
    alerts: dict[str, PlannedAlert] = {}
    for c in found:
        if c.kind is CrossingKind.OVERRUN or not c.running:
            continue  # an overrun shows as a level change; a stopped clock is not alerted
        key = alert_key(timeline.incident_id, str(c.kind), str(c.metric), c.cycle)
        if key not in alerts:  # the first crossing of its cycle (found is in time order)
            level = _level_after(steps, c)
            alerts[key] = PlannedAlert(
                key, str(c.kind), c.at, c.inclusive, c.metric, c.cycle, level, c, None
            )
    for step in steps:
        key = alert_key(timeline.incident_id, "escalated", None, step.level)
        metric = step.crossing.metric if step.crossing is not None else None
        cycle = step.crossing.cycle if step.crossing is not None else _cycle(timeline, step.at)
        alerts[key] = PlannedAlert(
            key, "escalated", step.at, step.inclusive, metric, cycle, step.level,
            step.crossing, step,
        )  # fmt: skip
    return sorted(alerts.values(), key=lambda a: (a.at, _KIND_ORDER[a.kind], a.key))


_KIND_ORDER = {"at_risk": 0, "breached": 1, "escalated": 2}


def _level_after(steps: Sequence[Step], crossing: Crossing) -> int:
    level = 1
    for step in steps:
        if (step.at, not step.inclusive) <= (crossing.at, not crossing.inclusive):
            level = step.level
    return level


def _cycle(timeline: Timeline, moment: datetime) -> int:
    return sum(1 for at in timeline.reopenings if at <= moment)


def next_alert(
    timeline: Timeline, contracts: ContractSource, *, swept: Swept | None = None
) -> PlannedAlert | None:
    """The first alert still to come after `timeline.as_of` if no further event came."""
    for alert in planned_alerts(timeline, contracts, swept=swept):
        if not (alert.at < timeline.as_of or (alert.inclusive and alert.at == timeline.as_of)):
            return alert
    return None


def planned_json(alert: PlannedAlert) -> dict[str, Any]:
    return {
        "alert_key": alert.key,
        "kind": alert.kind,
        "metric": str(alert.metric) if alert.metric is not None else None,
        "at": format_instant(alert.at),
        "level": alert.level,
        "reason": alert.reason,
    }
