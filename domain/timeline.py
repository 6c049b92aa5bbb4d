"""An incident's facts as known at `as_of`: the input of every clock (docs/reference/clocks.md)."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from slatrail.domain.model import (
    EXCLUDED_CAUSES,
    Cause,
    EventType,
    IncidentEvent,
    Priority,
    State,
    parse_instant,
)


@dataclass(frozen=True, slots=True)
class Resolution:
    at: datetime
    cause: Cause
    service_restored_at: datetime | None


@dataclass(frozen=True, slots=True)
class ManualEscalation:
    at: datetime
    level: int
    reason: str
    position: int


@dataclass(frozen=True, slots=True)
class Interval:
    start: datetime
    end: datetime | None  # None: still open at as_of


@dataclass(frozen=True)
class Timeline:
    incident_id: str
    customer: str
    title: str
    claimed_priority: Priority
    reported_at: datetime
    outage: bool
    impact_started_at: datetime | None
    priority_changes: tuple[tuple[datetime, Priority], ...]
    first_triage: Priority | None
    acknowledged_at: datetime | None
    first_workaround_at: datetime | None
    first_restoring_workaround_at: datetime | None
    pauses: tuple[Interval, ...]
    resolutions: tuple[Resolution, ...]
    reopenings: tuple[datetime, ...]
    postmortems: tuple[datetime, ...]
    escalations: tuple[ManualEscalation, ...]
    state: State
    as_of: datetime

    def priority_at(self, moment: datetime) -> Priority:
        """Latest `triaged`/`priority_changed` at or before `moment`, else the claimed one."""
        current = self.claimed_priority
        for at, priority in self.priority_changes:
            if at > moment:
                break
            current = priority
        return current

    @property
    def priority(self) -> Priority:
        return self.priority_at(self.as_of)

    @property
    def latest_resolution(self) -> Resolution | None:
        return self.resolutions[-1] if self.resolutions else None

    @property
    def excluded(self) -> bool:
        """Resolved with a cause outside the vendor's control (clocks.md#exclusions)."""
        latest = self.latest_resolution
        return (
            self.state is State.RESOLVED
            and latest is not None
            and (latest.cause in EXCLUDED_CAUSES)
        )

    @property
    def disputed(self) -> bool:
        return self.first_triage is not None and self.first_triage != self.claimed_priority

    def open_runs(self) -> list[Interval]:
        """Periods the incident was not resolved: reported→resolved, reopened→resolved, …"""
        runs: list[Interval] = []
        start: datetime | None = self.reported_at
        reopenings = iter(self.reopenings)
        for resolution in self.resolutions:
            assert start is not None
            runs.append(Interval(start, resolution.at))
            start = next(reopenings, None)
        if start is not None:
            runs.append(Interval(start, None))
        return runs


def in_occurred_order(events: Iterable[IncidentEvent]) -> list[IncidentEvent]:
    """An incident's events in the order they happened: by `occurred_at`, ties in recording
    order (position). Every projection folds them so; a late fact takes its place in time."""
    ordered = list(events)
    if any(b.occurred_at < a.occurred_at for a, b in itertools.pairwise(ordered)):
        ordered.sort(key=lambda e: (e.occurred_at, e.position))
    return ordered


def build_timeline(events: Iterable[IncidentEvent], as_of: datetime) -> Timeline | None:
    """Fold an incident's events with `occurred_at <= as_of`, in occurred order; None if not
    reported by then."""
    events = in_occurred_order(events)
    reported: IncidentEvent | None = None
    changes: list[tuple[datetime, Priority]] = []
    first_triage: Priority | None = None
    acknowledged_at = first_workaround = first_restoring = None
    pauses: list[Interval] = []
    pause_start: datetime | None = None
    resolutions: list[Resolution] = []
    reopenings: list[datetime] = []
    postmortems: list[datetime] = []
    escalations: list[ManualEscalation] = []
    state = State.OPEN
    for event in events:
        if event.occurred_at > as_of:
            break
        at, data, kind = event.occurred_at, event.data, event.type
        if kind is EventType.REPORTED:
            reported = event
        elif kind in (EventType.TRIAGED, EventType.PRIORITY_CHANGED):
            priority = Priority(data["priority"])
            changes.append((at, priority))
            if kind is EventType.TRIAGED and first_triage is None:
                first_triage = priority
        elif kind is EventType.ACKNOWLEDGED:
            acknowledged_at = acknowledged_at or at
        elif kind is EventType.AWAITING_CUSTOMER:
            pause_start = at
            state = State.AWAITING_CUSTOMER
        elif kind is EventType.CUSTOMER_RESPONDED:
            if pause_start is not None:
                pauses.append(Interval(pause_start, at))
                pause_start = None
            state = State.OPEN
        elif kind is EventType.WORKAROUND_PROVIDED:
            first_workaround = first_workaround or at
            if data.get("restores_service", True):
                first_restoring = first_restoring or at
        elif kind is EventType.ESCALATED:
            escalations.append(
                ManualEscalation(at, int(data["level"]), str(data["reason"]), event.position)
            )
        elif kind is EventType.RESOLVED:
            if pause_start is not None:
                pauses.append(Interval(pause_start, at))
                pause_start = None
            restored = data.get("service_restored_at")
            resolutions.append(
                Resolution(
                    at,
                    Cause(data.get("cause", Cause.VENDOR)),
                    parse_instant(restored) if restored else None,
                )
            )
            state = State.RESOLVED
        elif kind is EventType.REOPENED:
            reopenings.append(at)
            state = State.OPEN
        elif kind is EventType.POSTMORTEM_PUBLISHED:
            postmortems.append(at)
    if reported is None:
        return None
    if pause_start is not None:
        pauses.append(Interval(pause_start, None))
    data = reported.data
    impact = data.get("impact_started_at")
    return Timeline(
        incident_id=reported.incident_id,
        customer=str(data["customer"]),
        title=str(data.get("title", "")),
        claimed_priority=Priority(data["priority"]),
        reported_at=reported.occurred_at,
        outage=bool(data.get("outage", False)),
        impact_started_at=parse_instant(impact) if impact else None,
        priority_changes=tuple(changes),
        first_triage=first_triage,
        acknowledged_at=acknowledged_at,
        first_workaround_at=first_workaround,
        first_restoring_workaround_at=first_restoring,
        pauses=tuple(pauses),
        resolutions=tuple(resolutions),
        reopenings=tuple(reopenings),
        postmortems=tuple(postmortems),
        escalations=tuple(escalations),
        state=state,
        as_of=as_of,
    )
