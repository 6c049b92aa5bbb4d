"""Alert timer: at-risk, breach and escalation alerts on `incidents.alerts`, at the instant.

The timer keeps every tracked incident's events (slimmed to what the clocks need) and, in a
heap, the instant of every alert still to come (`projections.escalation.planned_alerts`: the
at-risk and breach instant of every clock per open cycle, and every level change — the overrun
instant shows as a level change). Each new event of an incident recomputes that incident's
plan from its events, so pauses, priority changes, stops and reopenings reschedule or cancel its
pending alerts (older heap entries are dropped lazily by generation). At an alert's instant the
timer publishes

    {"schema": "slatrail.alert/v1", "alert_key", "incident_id", "customer", "kind", "metric",
     "level", "level_name", "cycle", "priority", "reason", "due_at", "crossed_at", "fired_at",
     "late", "explanation"}

keyed by incident_id. `alert_key` is stable — `INC-1/resolution/breached/0` (cycle = number of
reopenings before the crossing), `INC-1/escalated/3` — so a restarted or second timer publishes
the same key for the same crossing and consumers de-duplicate on it.

Restart (docs/escalation.md): the worker (1) loads every incident from the event store, (2) reads
`incidents.alerts` back from the beginning to learn which keys were already published (only for
tracked incidents), (3) consumes `incidents.events` from its group's committed offsets (the
first time: from the beginning), skipping events it already holds (by position), and fires
nothing until it has caught up; then (4) it publishes every alert whose instant has passed and
was not published — marked `late` when more than `late_after` behind its instant — except
those older than `catch_up` (a first deployment does not replay history), and schedules the rest.

The clock is injectable (`Clock`): `SystemClock` in production, `ManualClock` in unit tests and
`FileClock` (an instant read from a file, `--clock-file`) to drive a separate process through
simulated time in integration tests.
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import structlog

from consumers.runtime import wait_for_flush
from consumers.streams import Outgoing, Partition, Record, Sink, Source
from domain.clocks import IncidentClocks, Metric, evaluate
from domain.contracts import Contracts
from domain.model import EventType, IncidentEvent, Priority, format_instant, parse_instant
from domain.timeline import build_timeline
from infra.kafka_envelope import EnvelopeError, decode_envelope
from projections.escalation import FAR_FUTURE, PlannedAlert, alert_key, planned_alerts

log = structlog.get_logger("slatrail.alerts")

ALERT_SCHEMA = "slatrail.alert/v1"
DEFAULT_GROUP = "slatrail-alert-timer"

# -- clocks -----------------------------------------------------------------------------------


class Clock(Protocol):
    """Where the timer's `now` comes from, and how long it may block waiting for input."""

    def now(self) -> datetime: ...

    def wait_s(self, deadline: datetime | None) -> float:
        """Real seconds the timer may block polling for events before looking at `now()`
        again, given its next deadline (None: nothing scheduled)."""


class SystemClock:
    """Wall-clock time; blocks until the next deadline, at most `max_wait_s` at a time."""

    def __init__(self, max_wait_s: float = 1.0) -> None:
        self.max_wait_s = max_wait_s

    def now(self) -> datetime:
        return datetime.now(UTC)

    def wait_s(self, deadline: datetime | None) -> float:
        if deadline is None:
            return self.max_wait_s
        return min(max((deadline - self.now()).total_seconds(), 0.0), self.max_wait_s)


class ManualClock:
    """Simulated time set by the test (`set`, `advance`); never blocks."""

    def __init__(self, start: datetime) -> None:
        self.current = start

    def now(self) -> datetime:
        return self.current

    def set(self, moment: datetime) -> None:
        self.current = moment

    def advance(self, delta: timedelta) -> None:
        self.current += delta

    def wait_s(self, deadline: datetime | None) -> float:
        return 0.0


class FileClock:
    """Simulated time read from a file holding one RFC 3339 instant (written by a test driver
    in another process); re-read whenever the file changes; blocks `poll_s` at most."""

    def __init__(self, path: Path, poll_s: float = 0.05) -> None:
        self.path = path
        self.poll_s = poll_s
        self._seen: tuple[int, int] | None = None
        self._now: datetime | None = None

    def now(self) -> datetime:
        stat = self.path.stat()
        signature = (stat.st_mtime_ns, stat.st_size)
        if self._now is None or signature != self._seen:
            text = self.path.read_text(encoding="utf-8").strip()
            if text:  # a writer may be between truncate and write: keep the last instant
                self._now = parse_instant(text)
                self._seen = signature
        if self._now is None:
            raise ValueError(f"{self.path}: no instant in the clock file")
        return self._now

    def wait_s(self, deadline: datetime | None) -> float:
        return self.poll_s


# -- the timer (no I/O) -----------------------------------------------------------------------

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
        contracts: Contracts,
        *,
        late_after: timedelta = timedelta(seconds=60),
        catch_up: timedelta = timedelta(days=7),
        history: HistoryLoader | None = None,
    ) -> None:
        self.contracts = contracts
        self.late_after = late_after
        self.catch_up = catch_up
        self.history = history
        self.incidents: dict[str, _Incident] = {}
        self.fired: set[str] = set()
        self.stats = TimerStats()
        self._heap: list[_Entry] = []
        self._live = 0  # heap entries of the current generation (for compaction)
        self._last_clocks: tuple[list[IncidentEvent], datetime, IncidentClocks] | None = None

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
        self.fired.update(keys)

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
        self._replan(event.incident_id, now)
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

    def _replan(self, incident_id: str, now: datetime) -> None:
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
        for alert in planned_alerts(timeline, self.contracts):
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
            self._evict(incident)
        if len(self._heap) > 1024 and len(self._heap) > 3 * self._live:
            self._compact()

    def _evict(self, incident: _Incident) -> None:
        """Nothing left to alert until a new event: free the events (reloaded when one comes;
        the keys fired stay known, so nothing fires twice)."""
        if self.history is not None:
            incident.events = None

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
                self._evict(incident)
        return out

    def _plan(self, incident_id: str) -> dict[int, PlannedAlert]:
        events = self.incidents[incident_id].events
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
        names = self.contracts.escalation.level_names
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


def encode_alert(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


# -- the worker --------------------------------------------------------------------------------


FiredReader = Callable[[Callable[[str], bool]], set[str]]
"""Reads `incidents.alerts` back: the alert keys published for incidents the filter keeps."""


def memory_fired_reader(records: Callable[[], Iterable[Record]]) -> FiredReader:
    """A `FiredReader` over records already in memory (tests: `MemoryBroker.records`)."""

    def read(keep: Callable[[str], bool]) -> set[str]:
        return _keys(records(), keep)

    return read


def _keys(records: Iterable[Record], keep: Callable[[str], bool]) -> set[str]:
    keys: set[str] = set()
    for record in records:
        if record.key is None or not keep(record.key.decode("utf-8", "replace")):
            continue
        try:
            keys.add(str(json.loads(record.value or b"")["alert_key"]))
        except (ValueError, KeyError, TypeError):
            log.warning("alert_unreadable", partition=record.partition, offset=record.offset)
    return keys


class AlertTimerWorker:
    """Worker (`consumers.runtime.Worker`): `incidents.events` → timer → `incidents.alerts`."""

    name = "alerts"

    def __init__(
        self,
        contracts: Contracts,
        *,
        source_factory: Callable[[], Source],
        sink_factory: Callable[[], Sink],
        fired_reader: FiredReader,
        alerts_topic: str,
        clock: Clock,
        store_events: Callable[[], Iterable[IncidentEvent]] | None = None,
        history: HistoryLoader | None = None,
        late_after: timedelta = timedelta(seconds=60),
        catch_up: timedelta = timedelta(days=7),
        batch_size: int = 500,
        catch_up_limit_s: float = 60.0,
        commit_interval_s: float = 1.0,
    ) -> None:
        self.contracts = contracts
        self.source_factory = source_factory
        self.sink_factory = sink_factory
        self.fired_reader = fired_reader
        self.alerts_topic = alerts_topic
        self.clock = clock
        self.store_events = store_events
        self.history = history
        self.late_after = late_after
        self.catch_up = catch_up
        self.batch_size = batch_size
        self.catch_up_limit_s = catch_up_limit_s
        self.commit_interval_s = commit_interval_s
        self.timer: AlertTimer | None = None
        self.source: Source | None = None
        self.sink: Sink | None = None
        self.caught_up = False
        self.consumed = 0
        self.invalid = 0
        self._opened_at = 0.0
        self._offsets: dict[Partition, int] = {}
        self._committed_at = 0.0

    # -- worker protocol ---------------------------------------------------------------

    def open(self) -> None:
        started = time.monotonic()
        now = self.clock.now()
        timer = AlertTimer(
            self.contracts, late_after=self.late_after, catch_up=self.catch_up,
            history=self.history,
        )  # fmt: skip
        loaded = timer.load(self.store_events(), now=now) if self.store_events else 0
        loaded_s = time.monotonic() - started
        timer.mark_fired(self.fired_reader(timer.knows))
        self.timer = timer
        self.sink = self.sink_factory()
        self.source = self.source_factory()
        self.caught_up = False
        self._opened_at = time.monotonic()
        log.info(
            "alert_timer_loaded",
            incidents=loaded,
            pending=timer.pending(),
            already_fired=len(timer.fired),
            load_s=round(loaded_s, 3),
            total_s=round(time.monotonic() - started, 3),
            now=format_instant(now),
        )

    def close(self) -> None:
        if self.source is not None:
            self._commit(force=True)
            self.source.close()
        if self.sink is not None:
            self.sink.close()
        self.source = self.sink = None

    def stats(self) -> dict[str, Any]:
        timer = self.timer
        if timer is None:
            return {"state": "not loaded"}
        tracked, held = timer.tracked()
        deadline = timer.next_deadline()
        return {
            "incidents": tracked,
            "incidents_in_memory": held,
            "pending_alerts": timer.pending(),
            "next_alert_at": format_instant(deadline) if deadline else None,
            "fired": timer.stats.fired,
            "fired_late": timer.stats.late,
            "caught_up": self.caught_up,
            "consumed": self.consumed,
            "invalid_envelopes": self.invalid,
        }

    def step(self, stop: threading.Event) -> int:
        assert self.timer is not None and self.source is not None
        fired = 0
        if self.caught_up:
            fired += self._fire(stop)
        wait = self.clock.wait_s(self.timer.next_deadline()) if self.caught_up else 0.2
        records = self.source.poll(wait, self.batch_size)
        if records:
            self._apply(records)
        if not self.caught_up:
            lag = self.source.lag()
            waited = time.monotonic() - self._opened_at
            if (lag == 0 and not records and self.source.assignment()) or (
                waited > self.catch_up_limit_s
            ):
                self.caught_up = True
                log.info("alert_timer_caught_up", lag=lag, waited_s=round(waited, 3))
        else:
            fired += self._fire(stop)
        self._commit()
        return fired + len(records)

    def _apply(self, records: list[Record]) -> None:
        assert self.timer is not None
        now = self.clock.now()
        for record in records:
            try:
                _, event = decode_envelope(record.value)
            except EnvelopeError as error:
                self.invalid += 1
                log.error(
                    "invalid_event_envelope", topic=record.topic, partition=record.partition,
                    offset=record.offset, code="invalid_envelope", error=str(error),
                )  # fmt: skip
                continue
            self.timer.apply(event, now=now)
        for record in records:
            self._offsets[record.tp] = max(self._offsets.get(record.tp, 0), record.offset + 1)
        self.consumed += len(records)

    def _fire(self, stop: threading.Event) -> int:
        assert self.timer is not None and self.sink is not None
        documents = self.timer.due(self.clock.now())
        if not documents:
            return 0
        for document in documents:
            self.sink.send(
                Outgoing(
                    self.alerts_topic,
                    str(document["incident_id"]).encode("utf-8"),
                    encode_alert(document),
                    (("slatrail-schema", ALERT_SCHEMA.encode("ascii")),),
                )
            )
            log.info(
                "alert_fired", alert_key=document["alert_key"], kind=document["kind"],
                level=document["level"], crossed_at=document["crossed_at"], late=document["late"],
            )  # fmt: skip
        # Not acknowledged before a stop: the restart reads the topic back and fires again.
        wait_for_flush(self.sink.flush, stop, worker=self.name, pending=self.sink.pending)
        return len(documents)

    def _commit(self, *, force: bool = False) -> None:
        if self.source is None or not self._offsets:
            return
        if not force and time.monotonic() - self._committed_at < self.commit_interval_s:
            return
        try:
            self.source.commit(dict(self._offsets))
        except Exception as error:  # advisory: the store is the truth, positions dedupe
            log.debug("commit_failed", worker=self.name, error=repr(error))
        self._committed_at = time.monotonic()


# -- composition (serve and standalone) --------------------------------------------------------


def kafka_fired_reader(
    config: Mapping[str, Any], topic: str, *, timeout_s: float = 120.0
) -> FiredReader:
    """Reads every partition of `topic` from the beginning to its end.

    The end is the high watermark of the fetch responses, not only `end_offsets`: Tansu 0.6
    answers ListOffsets(latest) with the last batch's base offset + 1, short of the last
    records when that batch held several. Raises TimeoutError when the end is not reached in
    `timeout_s` (the worker restarts rather than fire everything again).
    """

    def read(keep: Callable[[str], bool]) -> set[str]:
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(
            **{k: v for k, v in config.items() if k != "client_id"},
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        try:
            partitions = consumer.partitions_for_topic(topic) or set()
            assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
            if not assigned:
                return set()
            consumer.assign(assigned)
            consumer.seek_to_beginning(*assigned)
            listed = consumer.end_offsets(assigned)
            keys: set[str] = set()
            deadline = time.monotonic() + timeout_s
            while True:
                batches = consumer.poll(timeout_ms=300, max_records=5000)
                for tp, messages in batches.items():
                    keys |= _keys(
                        (
                            Record(tp.topic, tp.partition, m.offset, m.key, m.value)
                            for m in messages
                        ),
                        keep,
                    )
                if not batches and all(_at_end(consumer, tp, listed[tp]) for tp in assigned):
                    return keys
                if time.monotonic() > deadline:
                    raise TimeoutError(f"could not read {topic} to its end in {timeout_s:.0f} s")
        finally:
            consumer.close()

    return read


def _at_end(consumer: Any, tp: Any, listed: int) -> bool:
    high = consumer.highwater(tp)
    position = consumer.position(tp)
    return high is not None and position >= max(high, listed)


CLOCK_FILE_ENV = "SLATRAIL_ALERT_CLOCK_FILE"
"""Testing hook: when set, the timer of `serve` reads simulated time from this file."""


def build_alert_timer(container: Any, *, clock: Clock | None = None) -> AlertTimerWorker:
    """The `alerts` worker of `slatrail serve` (Container → Worker)."""
    if clock is None:
        path = os.environ.get(CLOCK_FILE_ENV)
        clock = FileClock(Path(path)) if path else SystemClock()
    s, kafka = container.settings, container.kafka()
    app = container.app
    group = getattr(s, "group_alerts", None) or DEFAULT_GROUP
    return AlertTimerWorker(
        container.contracts,
        source_factory=lambda: kafka.assigned_source([s.topic_events], group, s.kafka_batch_size),
        sink_factory=kafka.sink,
        fired_reader=kafka_fired_reader(kafka.config(), s.topic_alerts),
        alerts_topic=s.topic_alerts,
        clock=clock,
        store_events=lambda: (event for _, event in app.all_events()),
        history=app.incident_events,
        batch_size=s.kafka_batch_size,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m consumers.alert_timer`: the alert timer alone (serve runs it as `alerts`)."""
    from consumers.runtime import Supervisor
    from infra.bootstrap import Container
    from infra.kafka import quiet_kafka_logging
    from infra.logging import configure_logging
    from infra.settings import Settings

    parser = argparse.ArgumentParser(prog="python -m consumers.alert_timer")
    parser.add_argument("--store", help="event store URL  [SLATRAIL_STORE]")
    parser.add_argument("--contracts", type=Path, help="contracts file  [SLATRAIL_CONTRACTS]")
    parser.add_argument("--kafka", help="bootstrap servers  [SLATRAIL_KAFKA_BOOTSTRAP]")
    parser.add_argument(
        "--group", default=DEFAULT_GROUP, help="group id its offsets are committed under"
    )
    parser.add_argument(
        "--clock-file", type=Path, help="simulated time: read `now` from this file (tests)"
    )
    parser.add_argument("--late-after", type=float, default=60.0, help="seconds (default 60)")
    parser.add_argument("--catch-up", type=float, default=7 * 86400.0, help="seconds (7 days)")
    args = parser.parse_args(argv)
    overrides: dict[str, Any] = {
        k: v
        for k, v in (
            ("store", args.store), ("contracts", args.contracts),
            ("kafka_bootstrap", args.kafka),
        )
        if v is not None
    }  # fmt: skip
    settings = Settings(**overrides)
    configure_logging(settings.log_level, settings.log_format)
    quiet_kafka_logging()
    container = Container(settings)
    clock: Clock | None = FileClock(args.clock_file) if args.clock_file else None
    worker = build_alert_timer(container, clock=clock)
    kafka = container.kafka()
    worker.source_factory = lambda: kafka.assigned_source(
        [settings.topic_events], args.group, settings.kafka_batch_size
    )
    worker.late_after = timedelta(seconds=args.late_after)
    worker.catch_up = timedelta(seconds=args.catch_up)
    supervisor = Supervisor([worker], health_interval_s=settings.health_interval_s)
    stop = threading.Event()
    import signal

    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    supervisor.start()
    while not stop.wait(0.2):
        pass
    supervisor.stop()
    supervisor.join(timeout_s=30)
    container.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = [
    "ALERT_SCHEMA",
    "AlertTimer",
    "AlertTimerWorker",
    "Clock",
    "FileClock",
    "ManualClock",
    "SystemClock",
    "build_alert_timer",
    "encode_alert",
    "memory_fired_reader",
    "slim",
]
