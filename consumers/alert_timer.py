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

The pieces: `consumers/alert_clock.py` (the injectable `TimerClock`: `SystemClock` in production,
`ManualClock` in unit tests; `infra/alert_drivers.py` adds `FileClock` for integration tests),
`consumers/alert_scheduler.py` (the heap, no I/O), this worker, and its wiring in the
composition root (`infra/commands/serve.py`, worker `alerts`).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any

import structlog

from slatrail.consumers.alert_clock import TimerClock
from slatrail.consumers.alert_scheduler import ALERT_SCHEMA, AlertTimer, HistoryLoader, encode_alert
from slatrail.consumers.ports import EventDecoder
from slatrail.consumers.runtime import wait_for_flush
from slatrail.consumers.streams import Outgoing, Partition, Record, Sink, Source
from slatrail.domain.contract_version import ContractSource
from slatrail.domain.model import IncidentEvent, format_instant

log = structlog.get_logger("slatrail.alerts")

FiredReader = Callable[[Callable[[str], bool]], set[str]]
"""Reads `incidents.alerts` back: the alert keys published for incidents the filter keeps."""


def memory_fired_reader(records: Callable[[], Iterable[Record]]) -> FiredReader:
    """A `FiredReader` over records already in memory (tests: `MemoryBroker.records`)."""

    def read(keep: Callable[[str], bool]) -> set[str]:
        return alert_keys(records(), keep)

    return read


def alert_keys(records: Iterable[Record], keep: Callable[[str], bool]) -> set[str]:
    """The `alert_key` of every readable alert among `records` whose key `keep` accepts."""
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
        contracts: ContractSource,
        *,
        source_factory: Callable[[], Source],
        sink_factory: Callable[[], Sink],
        fired_reader: FiredReader,
        decode_event: EventDecoder,
        alerts_topic: str,
        clock: TimerClock,
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
        self.decode_event = decode_event
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
            return {"timer": "not loaded"}
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
                _, event = self.decode_event(record.value)
            except ValueError as error:
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
        documents = self.timer.take_corrections() + self.timer.due(self.clock.now())
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
                level=document.get("level"), crossed_at=document["crossed_at"],
                late=document.get("late"),
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
