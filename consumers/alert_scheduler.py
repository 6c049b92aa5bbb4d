"""The alert timer's schedule (no I/O): every tracked incident's events and, in a heap, the
instant of every alert still to come; what fires when, as `incidents.alerts` documents.

See `consumers/alert_timer.py` for the worker around it and docs/escalation.md for the rules.
"""

from __future__ import annotations

import heapq
import json
import sys
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog

from slatrail.domain.clocks import IncidentClocks, Metric, evaluate
from slatrail.domain.contract_version import ContractSource
from slatrail.domain.model import EventType, IncidentEvent, Priority, format_instant
from slatrail.domain.timeline import build_timeline
from slatrail.projections.escalation import FAR_FUTURE, PlannedAlert, alert_key, planned_alerts

log = structlog.get_logger("slatrail.alerts")

ALERT_SCHEMA = "slatrail.alert/v1"

_EMPTY: Mapping[str, Any] = {}
_PRIORITY_DATA: dict[str, Mapping[str, Any]] = {p.value: {"priority": p.value} for p in Priority}
_KEEP_REPORTED = ("customer", "priority", "outage", "impact_started_at")


def slim(event: IncidentEvent) -> IncidentEvent:
    """The event with only what the clocks and the escalation need (memory: ~5x smaller)."""
    kind, data = event.type, event.data
    kept: Mapping[str, Any]
    if kind is EventType.REPORTED:
        kept = {
            key: sys.intern(value) if isinstance(value, str) else value
            for key in _KEEP_REPORTED
            if (value := data.get(key)) is not None
        }
    elif kind in (EventType.TRIAGED, EventType.PRIORITY_CHANGED):
        kept = _PRIORITY_DATA[str(data["priority"])]
    elif kind is EventType.ESCALATED:
        kept = {"level": data["level"], "reason": str(data.get("reason", ""))[:200]}
    elif kind is EventType.RESOLVED:
        kept = {k: data[k] for k in ("cause", "service_restored_at") if k in data}
    elif kind is EventType.WORKAROUND_PROVIDED and data.get("restores_service") is False:
        kept = {"restores_service": False}
    else:
        kept = _EMPTY
    return IncidentEvent(
        incident_id=sys.intern(event.incident_id),
        position=event.position,
        type=kind,
        occurred_at=event.occurred_at,
        recorded_at=event.occurred_at,
        actor="",
        source=None,
        message_id="",
        data=kept,
        prev_hash="",
        hash="",
    )


@dataclass(slots=True)
class _Incident:
    events: list[IncidentEvent] | None  # None: evicted (nothing left to alert)
    position: int
    generation: int = 0
    pending: int = 0  # heap entries of the current generation not yet due
    customer: str = ""


PLANS_KEPT = 4096
"""Plans kept in memory (the incidents replanned last): bounded, so the timer's memory does not
grow with the incidents it tracks; an alert of an incident whose plan was dropped is swept
again when it fires."""

_Entry = tuple[datetime, str, int, int, int]
"""A heap entry: (instant, incident_id, kind rank, alert code, generation) — small on purpose:
the alert itself is recomputed from the incident's events when it fires. At one instant an
incident's at-risk alerts come first, then breaches, then the level change."""

_KINDS = ("at_risk", "breached", "escalated")
_METRICS = tuple(Metric)


def alert_code(alert: PlannedAlert) -> int:
    """A small int naming the alert within its incident (small ints are shared objects)."""
    metric = _METRICS.index(alert.metric) if alert.metric is not None else 0
    number = alert.level if alert.kind == "escalated" else alert.cycle
    return (number * len(_METRICS) + metric) * len(_KINDS) + _KINDS.index(alert.kind)


def code_key(incident_id: str, code: int) -> str:
    rest, kind = divmod(code, len(_KINDS))
    number, metric = divmod(rest, len(_METRICS))
    name = _KINDS[kind]
    return alert_key(incident_id, name, None if name == "escalated" else _METRICS[metric], number)


HistoryLoader = Callable[[str], Sequence[IncidentEvent]]


@dataclass
class TimerStats:
    fired: int = 0
    late: int = 0
    skipped_old: int = 0
    replans: int = 0
    duplicates: int = 0
    reloads: int = 0
    unknown: int = 0


class AlertTimer:
    """The heap of upcoming alerts of every tracked incident, and what fires when."""

    def __init__(
        self,
        contracts: ContractSource,
        *,
        late_after: timedelta = timedelta(seconds=60),
        catch_up: timedelta = timedelta(days=7),
        history: HistoryLoader | None = None,
        plans_kept: int = PLANS_KEPT,
    ) -> None:
        self.contracts = contracts
        self.plans_kept = plans_kept
        self.late_after = late_after
        self.catch_up = catch_up
        self.history = history
        self.incidents: dict[str, _Incident] = {}
        self.fired: set[str] = set()
        self.fired_of: dict[str, set[str]] = {}  # incident_id → its alert keys fired
        self.crossed: dict[str, datetime] = {}  # alert key → the instant it was fired for
        self.corrections: list[dict[str, Any]] = []  # `correction` alerts still to publish
        self.stats = TimerStats()
        self._heap: list[_Entry] = []
        self._live = 0  # heap entries of the current generation (for compaction)
        self._last_clocks: tuple[list[IncidentEvent], datetime, IncidentClocks] | None = None
        # The plans of the incidents replanned last (generation, alerts by code): an alert
        # fires from the plan its incident's sweep made, not from a second sweep.
        self._plans: OrderedDict[str, tuple[int, dict[int, PlannedAlert]]] = OrderedDict()

    # -- feeding ----------------------------------------------------------------------------

    def load(self, events: Iterable[IncidentEvent], *, now: datetime) -> int:
        """Bootstrap from a store: events grouped by incident, each incident's in position
        order (any interleaving across incidents). Plans every incident; fires nothing."""
        grouped: dict[str, list[IncidentEvent]] = {}
        for event in events:
            known = grouped.get(event.incident_id)
            if known is None:
                if event.position != 1:
                    continue
                grouped[event.incident_id] = [slim(event)]
            elif event.position == known[-1].position + 1:
                known.append(slim(event))
        for incident_id, events_of in grouped.items():
            self.incidents[incident_id] = _Incident(events_of, events_of[-1].position)
            self._replan(incident_id, now)
        return len(grouped)

    def mark_fired(self, keys: Iterable[str]) -> None:
        for key in keys:
            self.fired.add(key)
            self.fired_of.setdefault(key.split("/", 1)[0], set()).add(key)

    def knows(self, incident_id: str) -> bool:
        return incident_id in self.incidents

    def apply(self, event: IncidentEvent, *, now: datetime) -> bool:
        """A new event of an incident: recompute its plan. False if already known."""
        incident = self.incidents.get(event.incident_id)
        if incident is not None and event.position <= incident.position:
            self.stats.duplicates += 1
            return False
        if incident is None and event.position == 1:
            incident = self.incidents[event.incident_id] = _Incident([slim(event)], 1)
        elif (
            incident is not None
            and incident.events is not None
            and event.position == incident.position + 1
        ):
            incident.events.append(slim(event))
            incident.position = event.position
        else:  # evicted, a gap, or an incident first seen in the middle: read its history
            events = self._reload(event)
            if events is None:
                return False
            generation = incident.generation if incident is not None else 0
            incident = self.incidents[event.incident_id] = _Incident(
                events, events[-1].position, generation
            )
        self._replan(event.incident_id, now, cause=event)
        return True

    def _reload(self, event: IncidentEvent) -> list[IncidentEvent] | None:
        known = list(self.history(event.incident_id)) if self.history is not None else []
        known = [e for e in known if e.position < event.position]
        if not known or known[0].position != 1 or len(known) != event.position - 1:
            self.stats.unknown += 1
            log.warning(
                "alert_timer_history_missing",
                incident_id=event.incident_id,
                position=event.position,
                known=len(known),
            )
            return None
        self.stats.reloads += 1
        return [slim(e) for e in known] + [slim(event)]

    def _replan(
        self, incident_id: str, now: datetime, *, cause: IncidentEvent | None = None
    ) -> None:
        incident = self.incidents[incident_id]
        assert incident.events is not None
        self.stats.replans += 1
        incident.generation += 1
        timeline = build_timeline(incident.events, FAR_FUTURE)
        if timeline is None:
            return
        incident.customer = timeline.customer
        oldest = now - self.catch_up
        upcoming = 0
        generation = incident.generation
        plan = planned_alerts(timeline, self.contracts)
        self._keep_plan(incident_id, generation, plan)
        if cause is not None and incident_id in self.fired_of:
            self._correct(incident_id, {a.key: a for a in plan}, cause, now)
        for alert in plan:
            if alert.key in self.fired:
                continue
            if alert.at < oldest:
                self.stats.skipped_old += 1
                continue
            code = alert_code(alert)
            heapq.heappush(self._heap, (alert.at, incident_id, code % 3, code, generation))
            upcoming += 1
        self._live += upcoming - incident.pending
        incident.pending = upcoming
        if not upcoming:
            self._evict(incident_id)
        if len(self._heap) > 1024 and len(self._heap) > 3 * self._live:
            self._compact()

    def _correct(
        self, incident_id: str, plan: Mapping[str, PlannedAlert], cause: IncidentEvent,
        now: datetime,
    ) -> None:  # fmt: skip
        """An event (typically a late fact) that removes or moves a crossing already alerted:
        queue a `correction` naming the original `alert_key` (docs/escalation.md)."""
        fired = self.fired_of[incident_id]
        for key in sorted(fired):
            if CORRECTED in key:
                continue
            alert, was = plan.get(key), self.crossed.get(key)
            if alert is None:
                moved_to = None
            elif was is not None and alert.at != was:
                moved_to = alert.at
            else:
                continue
            own_key = f"{key}{CORRECTED}{format_instant(moved_to) if moved_to else 'removed'}"
            if own_key in self.fired:
                continue
            self.fired.add(own_key)
            fired.add(own_key)
            if moved_to is None:  # it may come back with a later fact: it fires again then
                self.fired.discard(key)
                fired.discard(key)
                self.crossed.pop(key, None)
            else:
                self.crossed[key] = moved_to
            self.corrections.append(
                correction_document(
                    own_key, key, incident_id, self.incidents[incident_id].customer, was,
                    moved_to, cause, now,
                )
            )  # fmt: skip

    def take_corrections(self) -> list[dict[str, Any]]:
        out, self.corrections = self.corrections, []
        return out

    def _evict(self, incident_id: str) -> None:
        """Nothing left to alert until a new event: free the events and the plan (reloaded
        when one comes; the keys fired stay known, so nothing fires twice)."""
        self._plans.pop(incident_id, None)
        if self.history is not None:
            self.incidents[incident_id].events = None

    def _compact(self) -> None:
        self._heap = [e for e in self._heap if self._current(e)]
        heapq.heapify(self._heap)
        self._live = len(self._heap)

    def _current(self, entry: _Entry) -> bool:
        incident = self.incidents.get(entry[1])
        return incident is not None and incident.generation == entry[4]

    # -- firing -------------------------------------------------------------------------------

    def next_deadline(self) -> datetime | None:
        while self._heap and not self._current(self._heap[0]):
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None

    def due(self, now: datetime) -> list[dict[str, Any]]:
        """Alerts whose instant has come (in instant order), marked as fired."""
        popped: list[tuple[str, int]] = []
        while self._heap and self._heap[0][0] <= now:
            entry = heapq.heappop(self._heap)
            if not self._current(entry):
                continue
            incident_id, code = entry[1], entry[3]
            self._live -= 1
            self.incidents[incident_id].pending -= 1
            key = code_key(incident_id, code)
            if key not in self.fired:
                self.fired.add(key)
                self.fired_of.setdefault(incident_id, set()).add(key)
                self.crossed[key] = entry[0]
                popped.append((incident_id, code))
        plans: dict[str, dict[int, PlannedAlert]] = {}
        out: list[dict[str, Any]] = []
        for incident_id, code in popped:
            plan = plans.get(incident_id)
            if plan is None:
                plan = plans[incident_id] = self._plan(incident_id)
            out.append(self.document(incident_id, plan[code], now))
        for incident_id in plans:
            incident = self.incidents[incident_id]
            if not incident.pending:
                self._evict(incident_id)
        return out

    def _keep_plan(self, incident_id: str, generation: int, plan: list[PlannedAlert]) -> None:
        plans = self._plans
        plans.pop(incident_id, None)
        if self.plans_kept <= 0 or not plan:
            return
        plans[incident_id] = (generation, {alert_code(a): a for a in plan})
        if len(plans) > self.plans_kept:
            plans.popitem(last=False)

    def _plan(self, incident_id: str) -> dict[int, PlannedAlert]:
        """The incident's alerts by code: from its last sweep if kept, else swept again."""
        incident = self.incidents[incident_id]
        kept = self._plans.get(incident_id)
        if kept is not None and kept[0] == incident.generation:
            return kept[1]
        events = incident.events
        assert events is not None
        timeline = build_timeline(events, FAR_FUTURE)
        assert timeline is not None
        return {alert_code(a): a for a in planned_alerts(timeline, self.contracts)}

    def document(self, incident_id: str, alert: PlannedAlert, now: datetime) -> dict[str, Any]:
        """The `incidents.alerts` message of one alert."""
        incident = self.incidents[incident_id]
        events = incident.events
        assert events is not None
        late = now - alert.at > self.late_after
        self.stats.fired += 1
        self.stats.late += late
        names = self.contracts.measuring(events[0].occurred_at).escalation.level_names
        due_at: datetime | None = None
        priority: str | None = None
        if alert.metric is not None:
            clock = self._clocks(events, alert.at).clocks[alert.metric]
            due_at, priority = clock.due_at, str(clock.priority) if clock.priority else None
        subject = {
            "at_risk": f"{alert.metric} clock at risk",
            "breached": f"{alert.metric} clock breached",
            "escalated": f"escalated to level {alert.level} ({names[alert.level - 1]})",
        }[alert.kind]
        explanation = (
            f"{incident_id} ({incident.customer}): {subject} at {format_instant(alert.at)} — "
            f"{alert.detail}"
        )
        if due_at is not None:
            explanation += f"; due {format_instant(due_at)}"
        if alert.kind != "escalated":
            explanation += f"; escalation level {alert.level}"
        return {
            "schema": ALERT_SCHEMA,
            "alert_key": alert.key,
            "incident_id": incident_id,
            "customer": incident.customer,
            "kind": alert.kind,
            "metric": str(alert.metric) if alert.metric is not None else None,
            "level": alert.level,
            "level_name": names[alert.level - 1],
            "cycle": alert.cycle,
            "priority": priority,
            "reason": alert.reason,
            "due_at": format_instant(due_at) if due_at else None,
            "crossed_at": format_instant(alert.at),
            "fired_at": format_instant(now),
            "late": late,
            "explanation": explanation,
        }

    def _clocks(self, events: list[IncidentEvent], moment: datetime) -> IncidentClocks:
        """The clocks at an alert's instant (one evaluation for alerts at the same instant)."""
        cached = self._last_clocks
        if cached is not None and cached[0] is events and cached[1] == moment:
            return cached[2]
        timeline = build_timeline(events, moment)
        assert timeline is not None
        clocks = evaluate(timeline, self.contracts)
        self._last_clocks = (events, moment, clocks)
        return clocks

    def pending(self) -> int:
        return self._live

    def tracked(self) -> tuple[int, int]:
        """(incidents tracked, of which holding events in memory)."""
        held = sum(1 for i in self.incidents.values() if i.events is not None)
        return len(self.incidents), held


CORRECTED = "/corrected/"


def correction_document(
    own_key: str, key: str, incident_id: str, customer: str, was: datetime | None,
    moved_to: datetime | None, cause: IncidentEvent, now: datetime,
) -> dict[str, Any]:  # fmt: skip
    """The `incidents.alerts` message correcting an alert already published."""
    parts = key.split("/")
    kind = "escalated" if parts[1] == "escalated" else parts[2]
    change = "removed" if moved_to is None else "moved"
    what = "no longer happens" if moved_to is None else f"now happens at {format_instant(moved_to)}"
    return {
        "schema": ALERT_SCHEMA,
        "alert_key": own_key,
        "corrects": key,
        "incident_id": incident_id,
        "customer": customer,
        "kind": "correction",
        "corrected_kind": kind,
        "change": change,
        "was_crossed_at": format_instant(was) if was else None,
        "crossed_at": format_instant(moved_to) if moved_to else None,
        "cause": {
            "type": str(cause.type),
            "occurred_at": format_instant(cause.occurred_at),
            "position": cause.position,
        },
        "fired_at": format_instant(now),
        "explanation": (
            f"{incident_id} ({customer}): the alert {key} {what}: {cause.type} of "
            f"{format_instant(cause.occurred_at)} (position {cause.position}) changed the "
            "incident's history in occurred order"
        ),
    }


def encode_alert(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
