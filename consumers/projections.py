"""Projection consumer: `incidents.events` → the `sla` and `audit` read models.

Each poll batch is written with the consumed (topic, partition, offset) in the same read-model
transaction (`ReadModelWriter.apply`), so a redelivered record is never applied twice; rows are
keyed by (incident_id, position), so the relay's duplicates are stored once. Where to read from
is the read model's own tracking, not the group's committed offsets: on assignment each
partition is sought to its tracked offset + 1 (0 when the read model is empty — a rebuild).
Kafka offsets are still committed afterwards, for lag monitoring only.

Given the contract versions (`contracts`, as `serve` has read them), the same transaction keeps
the SLA ledger of the incidents each batch touches, and every step re-measures a chunk of the
incidents a newly recorded version measures (docs/scale.md#the-sla-ledger).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import structlog

from slatrail.consumers.projection_ports import EnvelopeDecoder, ReadModelWriter, RecordedIds
from slatrail.consumers.runtime import BrokerWatch, consumer_health
from slatrail.consumers.streams import OnAssign, Partition, Record, Source
from slatrail.domain.contract_version import ContractBook
from slatrail.projections.read_models import READ_MODELS, TrackedEvent, kafka_source

log = structlog.get_logger("slatrail.projections")


class ProjectionConsumer:
    """Worker: envelopes → read models, tracking stored with the rows."""

    name = "projections"

    def __init__(
        self,
        read_models: ReadModelWriter,
        source_factory: Callable[[OnAssign], Source],
        *,
        envelopes: EnvelopeDecoder,
        names: Sequence[str] = READ_MODELS,
        batch_size: int = 500,
        poll_timeout_s: float = 0.2,
        unreachable_after_s: float = 6.0,
        reset_check_s: float = 5.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        contracts: Callable[[], ContractBook] | None = None,
        recorded: RecordedIds | None = None,
    ) -> None:
        self.read_models = read_models
        # with the contract versions as recorded now, the SLA ledger is kept too
        self.contracts = contracts
        # the store's incident notifications: the ledger's gaps between partitions are closed
        self.recorded = recorded
        self.source_factory = source_factory
        self.envelopes = envelopes
        self.names = tuple(names)
        self.batch_size = batch_size
        self.poll_timeout_s = poll_timeout_s
        self.watch = BrokerWatch(self.name, threshold_s=unreachable_after_s)
        self.reset_check_s = reset_check_s
        self.clock = clock
        self.source: Source | None = None
        self.applied: dict[Partition, int] = {}
        self.consumed = 0
        self.written = 0
        self.invalid = 0
        self.lag: int | None = None
        self.last_delay_s: float | None = None
        self._reset_checked = time.monotonic()
        self._opened_at = time.monotonic()

    # -- worker protocol ---------------------------------------------------------------

    def open(self) -> None:
        self.applied.clear()
        self._opened_at = time.monotonic()
        self.source = self.source_factory(self.start_offsets)

    def health(self) -> tuple[str, str | None]:
        return consumer_health(self.source, self.watch, self._opened_at)

    def close(self) -> None:
        if self.source is not None:
            self.source.close()
        self.source = None
        self.lag = None

    def stats(self) -> dict[str, Any]:
        return {
            "lag": self.lag,
            "broker_silent_s": self.watch.silence_s,
            "consumed": self.consumed,
            "rows_written": self.written,
            "invalid_envelopes": self.invalid,
            "last_batch_store_to_read_model_s": self.last_delay_s,
        }

    def start_offsets(self, partitions: Sequence[Partition]) -> dict[Partition, int]:
        """Offset to resume each partition at: the read models' tracking + 1 (the smallest)."""
        starts = self._tracked_starts(partitions)
        for tp, start in starts.items():
            self.applied[tp] = start - 1
        log.info(
            "projection_start_offsets", offsets={f"{t}:{p}": o for (t, p), o in starts.items()}
        )
        return starts

    def _tracked_starts(self, partitions: Iterable[Partition]) -> dict[Partition, int]:
        tracked = [self.read_models.positions(name) for name in self.names]
        starts: dict[Partition, int] = {}
        for tp in partitions:
            positions = [t.get(kafka_source(*tp)) for t in tracked]
            known = [p for p in positions if p is not None]
            starts[tp] = min(known) + 1 if len(known) == len(positions) else 0
        return starts

    def step(self, stop: threading.Event) -> int:
        assert self.source is not None
        records = self.source.poll(self.poll_timeout_s, self.batch_size)
        self.lag = self.source.lag()
        if self.watch.due():
            self.watch.observe(self.source.broker_silence_s())
        if records:
            self.handle(records)
        self._remeasure()
        self._rewind_if_reset()
        return len(records)

    def _remeasure(self) -> None:
        """A newly recorded contract version re-measures the incidents it measures: a chunk
        of them per step, so `stop` is honoured (docs/scale.md#the-sla-ledger)."""
        if self.contracts is None:
            return
        recomputed = self.read_models.remeasure(self.contracts())
        if recomputed:
            log.info("ledger_remeasuring", incidents=recomputed)

    def handle(self, records: list[Record]) -> int:
        """Apply a batch; returns the rows newly written."""
        assert self.source is not None
        batch: list[TrackedEvent] = []
        notification: int | None = None
        for record in records:
            try:
                notification_id, event = self.envelopes.decode(record.value)
                if event.computed_hash() != event.hash:
                    raise ValueError(f"hash mismatch for {event.incident_id}#{event.position}")
            except ValueError as error:
                self.invalid += 1
                log.error(
                    "invalid_event_envelope",
                    topic=record.topic,
                    partition=record.partition,
                    offset=record.offset,
                    code="invalid_envelope",
                    error=str(error),
                )
                continue
            source = kafka_source(record.topic, record.partition)
            batch.append(TrackedEvent(source, record.offset, event, notification_id))
            notification = max(notification or 0, notification_id)
        if self.contracts is None:
            written = self.read_models.apply(batch, read_models=self.names)
        else:
            written = self.read_models.apply(
                batch,
                read_models=self.names,
                contracts=self.contracts(),
                notification=notification,
            )
            if self.recorded is not None:
                self.read_models.close_ledger_gaps(self.recorded)
        offsets: dict[Partition, int] = {}
        for record in records:
            offsets[record.tp] = max(offsets.get(record.tp, 0), record.offset + 1)
            self.applied[record.tp] = max(self.applied.get(record.tp, -1), record.offset)
        self.consumed += len(records)
        self.written += written
        if batch:
            newest = max(item.event.recorded_at for item in batch)
            self.last_delay_s = round((self.clock() - newest).total_seconds(), 3)
        try:
            self.source.commit(offsets)
        except Exception as error:  # advisory only: the read model's tracking is the truth
            log.debug("commit_failed", worker=self.name, error=repr(error))
        return written

    def _rewind_if_reset(self) -> None:
        """A read model was reset (e.g. `slatrail replay`) while we run: read again from there."""
        now = time.monotonic()
        if self.source is None or now - self._reset_checked < self.reset_check_s:
            return
        self._reset_checked = now
        assigned = self.source.assignment()
        if not assigned:
            return
        starts = self._tracked_starts(assigned)
        for tp, start in starts.items():
            if start <= self.applied.get(tp, -1):
                log.warning(
                    "read_model_behind_consumer_rewinding",
                    partition=f"{tp[0]}:{tp[1]}",
                    offset=start,
                )
                self.source.seek(tp, start)
                self.applied[tp] = start - 1
