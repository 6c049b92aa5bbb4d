"""Inbound consumer: `incidents.inbound` → event store; refusals → `incidents.rejected`.

Per poll batch: decode every message, record the decodable ones in one store transaction
(`SlatrailApplication.record`), send a dead letter for every refusal, wait until the broker
acknowledged the dead letters, and only then commit the offsets. A crash anywhere redelivers
the batch: accepted messages come back as duplicates (message_id receipts), refusals are
refused again (their dead letters may then appear twice). Bad input never stops the loop.
"""

from __future__ import annotations

import base64
import hashlib
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import structlog

from consumers.runtime import BrokerWatch, wait_for_flush
from consumers.streams import (
    DeliveryError,
    MessageTooLargeError,
    Outgoing,
    Partition,
    Record,
    Sink,
    Source,
)
from domain.errors import InvalidMessageError
from domain.model import format_instant
from infra.ingest import IngestCounts, encode_dead_letter, rejection_record
from infra.store import Decoded, Outcome, SlatrailApplication
from infra.wire import decode

log = structlog.get_logger("slatrail.inbound")

PREFIX_BYTES = 64 * 1024


def dead_letter(record: Record, outcome: Outcome, rejected_at: datetime) -> dict[str, Any]:
    """The `incidents.rejected` entry: the file ingest's dead letter (original message as JSON,
    text or base64, why, when) plus where it was read (docs/dead-letters.md)."""
    raw = record.value or b""
    entry = rejection_record(raw, outcome, line=None, rejected_at=rejected_at)
    entry.update(_origin(record))
    return entry


def truncated_dead_letter(
    record: Record, outcome: Outcome, rejected_at: datetime
) -> dict[str, Any]:
    """Fallback when the full entry is too large for the broker: a prefix plus a digest.

    The original stays in the inbound topic at (topic, partition, offset).
    """
    raw = record.value or b""
    entry = rejection_record(b"", outcome, line=None, rejected_at=rejected_at)
    entry.update(
        message=None,
        raw=None,
        raw_base64=None,
        truncated=True,
        raw_bytes=len(raw),
        raw_sha256=hashlib.sha256(raw).hexdigest(),
        raw_prefix_base64=base64.b64encode(raw[:PREFIX_BYTES]).decode("ascii"),
    )
    entry.update(_origin(record))
    return entry


def _origin(record: Record) -> dict[str, Any]:
    key: str | None = None
    key_base64: str | None = None
    if record.key is not None:
        try:
            key = record.key.decode("utf-8")
        except UnicodeDecodeError:
            key_base64 = base64.b64encode(record.key).decode("ascii")
    timestamp = None
    if record.timestamp_ms is not None and record.timestamp_ms >= 0:
        timestamp = format_instant(datetime.fromtimestamp(record.timestamp_ms / 1000, UTC))
    return {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "key": key,
        **({"key_base64": key_base64} if key_base64 is not None else {}),
        "timestamp": timestamp,
    }


def _encode(entry: dict[str, Any]) -> bytes:
    return encode_dead_letter(entry).encode("utf-8")


class InboundConsumer:
    """Worker: decode → `app.record` → dead letters acknowledged → commit."""

    name = "inbound"

    def __init__(
        self,
        app: SlatrailApplication,
        source_factory: Callable[[], Source],
        sink_factory: Callable[[], Sink],
        *,
        rejected_topic: str,
        clock: Callable[[], datetime],
        batch_size: int = 500,
        poll_timeout_s: float = 0.2,
        unreachable_after_s: float = 6.0,
        on_recorded: Callable[[], None] | None = None,
    ) -> None:
        self.app = app
        self.source_factory = source_factory
        self.sink_factory = sink_factory
        self.rejected_topic = rejected_topic
        self.clock = clock
        self.batch_size = batch_size
        self.poll_timeout_s = poll_timeout_s
        self.watch = BrokerWatch(self.name, threshold_s=unreachable_after_s)
        self.on_recorded = on_recorded
        self.counts = IngestCounts()
        self.batches = 0
        self.commit_failures = 0
        self.lag: int | None = None
        self.seconds = {"poll": 0.0, "record": 0.0, "dead_letter": 0.0, "commit": 0.0}
        self.source: Source | None = None
        self.sink: Sink | None = None

    # -- worker protocol ---------------------------------------------------------------

    def open(self) -> None:
        self.source = self.source_factory()
        self.sink = self.sink_factory()

    def close(self) -> None:
        for client in (self.source, self.sink):
            if client is not None:
                client.close()
        self.source = self.sink = None

    def step(self, stop: threading.Event) -> int:
        assert self.source is not None
        started = time.perf_counter()
        records = self.source.poll(self.poll_timeout_s, self.batch_size)
        self.seconds["poll"] += time.perf_counter() - started
        self.lag = self.source.lag()
        if self.watch.due():
            self.watch.observe(self.source.broker_silence_s())
        if not records:
            return 0
        self.handle(records, stop)
        return len(records)

    def stats(self) -> dict[str, Any]:
        return {
            "lag": self.lag,
            "broker_silent_s": self.watch.silence_s,
            **self.counts.as_json(),
            "batches": self.batches,
            "commit_failures": self.commit_failures,
            "seconds": {k: round(v, 2) for k, v in self.seconds.items()},
        }

    # -- one batch ------------------------------------------------------------------

    def handle(self, records: list[Record], stop: threading.Event) -> bool:
        """Record a batch; True once its offsets are committed (False: stopped before acks)."""
        assert self.source is not None and self.sink is not None
        started = time.perf_counter()
        outcomes: list[Outcome | None] = [None] * len(records)
        decodable: list[tuple[int, Decoded]] = []
        for index, record in enumerate(records):
            try:
                decodable.append((index, decode(record.value or b"")))
            except InvalidMessageError as error:
                outcomes[index] = Outcome.rejected(error)
        if decodable:
            results = self.app.record([item for _, item in decodable], now=self.clock())
            if self.on_recorded is not None:
                self.on_recorded()  # wakes the relay at once
            for (index, _), result in zip(decodable, results, strict=True):
                outcomes[index] = result
        rejected_at = self.clock()
        rejects: list[tuple[Record, Outcome]] = []
        for record, maybe in zip(records, outcomes, strict=True):
            assert maybe is not None
            outcome = maybe
            self.counts.add(outcome)
            if outcome.status == "rejected":
                rejects.append((record, outcome))
                log.warning(
                    "message_rejected",
                    topic=record.topic,
                    partition=record.partition,
                    offset=record.offset,
                    incident_id=outcome.incident_id,
                    message_id=outcome.message_id,
                    code=outcome.code,
                    reason=_short(outcome.reason),
                )
        recorded = time.perf_counter()
        self.seconds["record"] += recorded - started
        if rejects:
            delivered = self._dead_letter(rejects, rejected_at, stop)
            self.seconds["dead_letter"] += time.perf_counter() - recorded
            if not delivered:
                return False
        committing = time.perf_counter()
        self._commit(records)
        self.seconds["commit"] += time.perf_counter() - committing
        self.batches += 1
        return True

    def _dead_letter(
        self, rejects: list[tuple[Record, Outcome]], rejected_at: datetime, stop: threading.Event
    ) -> bool:
        assert self.sink is not None
        by_message: dict[int, tuple[Record, Outcome]] = {}
        for record, outcome in rejects:
            self._send(record, outcome, rejected_at, by_message)
        while True:
            try:
                return wait_for_flush(
                    self.sink.flush, stop, worker=self.name, pending=self.sink.pending
                )
            except DeliveryError as error:
                retry = []
                for message, cause in error.failed:
                    original = by_message.get(id(message))
                    if original is None or not _too_large(cause):
                        raise
                    retry.append(original)
                for record, outcome in retry:
                    log.warning(
                        "dead_letter_truncated",
                        topic=record.topic,
                        partition=record.partition,
                        offset=record.offset,
                        size=len(record.value or b""),
                    )
                    self._send(record, outcome, rejected_at, by_message, truncate=True)

    def _send(
        self,
        record: Record,
        outcome: Outcome,
        rejected_at: datetime,
        by_message: dict[int, tuple[Record, Outcome]],
        *,
        truncate: bool = False,
    ) -> None:
        assert self.sink is not None
        key_text = outcome.incident_id
        key = key_text.encode("utf-8") if key_text is not None else record.key
        headers = (("slatrail-code", (outcome.code or "rejected").encode("ascii")),)
        build = truncated_dead_letter if truncate else dead_letter
        message = Outgoing(
            self.rejected_topic, key, _encode(build(record, outcome, rejected_at)), headers
        )
        try:
            self.sink.send(message)
        except MessageTooLargeError:
            if truncate:
                raise
            self._send(record, outcome, rejected_at, by_message, truncate=True)
            return
        by_message[id(message)] = (record, outcome)

    def _commit(self, records: list[Record]) -> None:
        assert self.source is not None
        offsets: dict[Partition, int] = {}
        for record in records:
            offsets[record.tp] = max(offsets.get(record.tp, 0), record.offset + 1)
        try:
            self.source.commit(offsets)
        except Exception as error:
            # Safe: the batch is recorded; a redelivery is a no-op (receipts).
            self.commit_failures += 1
            log.warning("commit_failed", worker=self.name, error=repr(error))


def _too_large(error: BaseException) -> bool:
    return isinstance(error, MessageTooLargeError) or "TooLarge" in type(error).__name__


def _short(text: str | None, limit: int = 300) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return text[: limit - 1] + "…"
