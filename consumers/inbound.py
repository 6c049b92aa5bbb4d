"""Inbound consumer: `incidents.inbound` → event store; refusals → `incidents.rejected`.

Per poll batch: decode every message, record the decodable ones in one store transaction
(the application's `record`), send a dead letter for every refusal, wait until the broker
acknowledged the dead letters, and only then commit the offsets. A crash anywhere redelivers
the batch: accepted messages come back as duplicates (message_id receipts), refusals are
refused again (their dead letters may then appear twice). Bad input never stops the loop.

Parking (docs/streaming.md): a message refused only because its incident does not exist yet
(`first_event_not_reported`) is written to `incidents.retry` instead — acknowledged before the
inbound offset is committed — and re-submitted through the same path until its incident
exists or `park_timeout_s` has passed (then one dead letter with the parking history). While an
incident has parked messages, its later messages are parked behind them (order per incident).
The same consumer reads `incidents.retry` (same group), keeps what is parked in memory and
commits a retry record's offset only once the message is recorded, re-parked or dead-lettered.

`InboundConsumer.submit(records, stop)` is that path for any raw message with an origin
(redrive uses it): decode → record → park / dead letter → wait for the broker's acks.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog

from slatrail.application.outcomes import Decoded, IngestCounts, Outcome, Status
from slatrail.consumers.ports import DeadLetters, Decoder, Now, Recorder
from slatrail.consumers.runtime import BrokerWatch, consumer_health, wait_for_flush
from slatrail.consumers.streams import (
    DeliveryError,
    MessageTooLargeError,
    Outgoing,
    Partition,
    Record,
    Sink,
    Source,
)
from slatrail.consumers.trace import trace_context
from slatrail.domain.errors import FirstEventNotReportedError, InvalidMessageError
from slatrail.domain.model import EventType, format_instant

log = structlog.get_logger("slatrail.inbound")

PARKED_SCHEMA = "slatrail.parked/v1"
PARK_CODE = FirstEventNotReportedError.code
PARK_FIRST_RETRY_S = 1.0
PARK_MAX_RETRY_S = 30.0
CATCH_UP_LIMIT_S = 30.0


def _encode(entry: dict[str, Any]) -> bytes:
    """A parked envelope as strict one-line JSON (every text in it came from a decoded message
    or was written here; a stray lone surrogate is escaped rather than lost)."""
    text = json.dumps(entry, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.encode("utf-8", "backslashreplace")


# -- parking --------------------------------------------------------------------------------


@dataclass
class Parked:
    """A message waiting for its incident, in memory (its copy is in `incidents.retry`)."""

    park_id: str
    incident_id: str
    message_id: str | None
    origin: Record  # the message as first received (topic/partition/offset of the inbound)
    first_parked_at: datetime
    due_at: datetime
    attempts: int
    history: list[dict[str, Any]]
    retry_offsets: set[tuple[str, int, int]] = field(default_factory=set)
    """(retry topic, partition, offset) of every retry record that holds this message."""

    def envelope(self) -> bytes:
        origin = self.origin
        return _encode(
            {
                "schema": PARKED_SCHEMA,
                "park_id": self.park_id,
                "incident_id": self.incident_id,
                "message_id": self.message_id,
                "first_parked_at": format_instant(self.first_parked_at),
                "due_at": format_instant(self.due_at),
                "attempts": self.attempts,
                "history": self.history,
                "origin": {
                    "topic": origin.topic,
                    "partition": origin.partition,
                    "offset": origin.offset,
                    "key_base64": None
                    if origin.key is None
                    else base64.b64encode(origin.key).decode("ascii"),
                    "timestamp_ms": origin.timestamp_ms,
                    "headers": [
                        [k, base64.b64encode(v or b"").decode("ascii")] for k, v in origin.headers
                    ],
                },
                "raw_base64": base64.b64encode(origin.value or b"").decode("ascii"),
            }
        )

    @classmethod
    def from_envelope(cls, value: bytes) -> Parked:
        """Raises ValueError/KeyError/TypeError on anything that is not our envelope."""
        body = json.loads(value)
        if body.get("schema") != PARKED_SCHEMA:
            raise ValueError(f"not a {PARKED_SCHEMA} envelope")
        o = body["origin"]
        key = None if o["key_base64"] is None else base64.b64decode(o["key_base64"])
        origin = Record(
            str(o["topic"]),
            int(o["partition"]),
            int(o["offset"]),
            key,
            base64.b64decode(body["raw_base64"]),
            tuple((str(k), base64.b64decode(v)) for k, v in o.get("headers") or ()),
            o.get("timestamp_ms"),
        )
        return cls(
            park_id=str(body["park_id"]),
            incident_id=str(body["incident_id"]),
            message_id=body.get("message_id"),
            origin=origin,
            first_parked_at=_instant(body["first_parked_at"]),
            due_at=_instant(body["due_at"]),
            attempts=int(body["attempts"]),
            history=list(body["history"]),
        )


def _same(a: Parked, b: Parked) -> bool:
    return a.message_id == b.message_id and a.origin.value == b.origin.value


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass
class _Item:
    """One message going through `submit`: the record as received, and its parking if any."""

    record: Record
    parked: Parked | None = None
    outcome: Outcome | None = None
    decoded: Decoded | None = None


class InboundConsumer:
    """Worker: decode → `app.record` → dead letters / parked copies acknowledged → commit."""

    name = "inbound"

    def __init__(
        self,
        app: Recorder,
        source_factory: Callable[[], Source],
        sink_factory: Callable[[], Sink],
        *,
        decode: Decoder,
        dead_letters: DeadLetters,
        rejected_topic: str,
        clock: Now,
        batch_size: int = 500,
        poll_timeout_s: float = 0.2,
        unreachable_after_s: float = 6.0,
        on_recorded: Callable[[], None] | None = None,
        retry_topic: str | None = None,
        park_timeout_s: float = 300.0,
        max_parked: int = 100_000,
    ) -> None:
        self.app = app
        self.decode = decode
        self.dead_letters = dead_letters
        self.max_parked = max_parked
        self._full_warned = False
        self.source_factory = source_factory
        self.sink_factory = sink_factory
        self.rejected_topic = rejected_topic
        self.retry_topic = retry_topic
        self.park_timeout_s = park_timeout_s
        self.clock = clock
        self.batch_size = batch_size
        self.poll_timeout_s = poll_timeout_s
        self.watch = BrokerWatch(self.name, threshold_s=unreachable_after_s)
        self.on_recorded = on_recorded
        self.counts = IngestCounts()
        self.batches = 0
        self.commit_failures = 0
        self.key_mismatch = 0
        self.parked_total = 0
        self.unparked = 0
        self.park_expired = 0
        self.invalid_parked = 0
        self.lag: int | None = None
        self.seconds = {"poll": 0.0, "record": 0.0, "dead_letter": 0.0, "commit": 0.0}
        self.source: Source | None = None
        self.sink: Sink | None = None
        self._reset_parking()

    def _reset_parking(self) -> None:
        self.parked: dict[str, list[Parked]] = {}
        self._by_park_id: dict[str, Parked] = {}
        self._resolved: dict[str, None] = {}  # park ids resolved before their echo was read
        self._retry_pending: dict[Partition, set[int]] = {}
        self._retry_next: dict[Partition, int] = {}
        self._retry_committed: dict[Partition, int] = {}
        self._retry_assigned: set[Partition] = set()
        self._catching_up_since: float | None = None
        self._opened_at = time.monotonic()

    # -- worker protocol ---------------------------------------------------------------

    def open(self) -> None:
        self._reset_parking()
        self.source = self.source_factory()
        self.sink = self.sink_factory()

    def close(self) -> None:
        for client in (self.source, self.sink):
            if client is not None:
                client.close()
        self.source = self.sink = None
        self.lag = None  # unknown until it reads again

    def step(self, stop: threading.Event) -> int:
        assert self.source is not None
        started = time.perf_counter()
        records = self.source.poll(self.poll_timeout_s, self.batch_size)
        self.seconds["poll"] += time.perf_counter() - started
        behind = self.source.lag()
        # Until the batch in hand is handled it is still behind (a failing worker is never
        # "lag 0" because it fetched what it cannot record).
        self.lag = None if behind is None else behind + len(records)
        if self.watch.due():
            self.watch.observe(self.source.broker_silence_s())
        self._follow_assignment()
        inbound: list[Record] = []
        for record in records:
            if record.topic == self.retry_topic:
                self._absorb(record)
            else:
                inbound.append(record)
        if self._catching_up_since is not None:
            inbound = self._hold(inbound)
        done = len(records) - len(inbound) if self.retry_topic else 0
        if self.parked and self._catching_up_since is None:
            done += self._retry_due(stop)  # before new messages: re-parked ones stay ahead
        if inbound:
            self.handle(inbound, stop)
        self._commit_retry()
        self.lag = behind
        return done + len(inbound)

    def stats(self) -> dict[str, Any]:
        stalled = self.source.stalled() if self.source is not None else {}
        return {
            "lag": self.lag,
            "broker_silent_s": self.watch.silence_s,
            **self.counts.as_json(),
            "key_mismatch": self.key_mismatch,
            "parked": sum(len(queue) for queue in self.parked.values()),
            "parked_incidents": len(self.parked),
            "parked_total": self.parked_total,
            "unparked": self.unparked,
            "park_expired": self.park_expired,
            "invalid_parked": self.invalid_parked,
            "stalled_partitions": [s.as_json() for _, s in sorted(stalled.items())],
            "batches": self.batches,
            "commit_failures": self.commit_failures,
            "seconds": {k: round(v, 2) for k, v in self.seconds.items()},
        }

    def health(self) -> tuple[str, str | None]:
        """What only this worker can see (the supervisor adds failures and restarts)."""
        own = consumer_health(self.source, self.watch, self._opened_at)
        if own[0] == "running" and self._catching_up_since is not None:
            return ("starting", f"reading the parked messages of {self.retry_topic}")
        return own

    # -- one batch ------------------------------------------------------------------

    def handle(self, records: list[Record], stop: threading.Event) -> bool:
        """Record a batch; True once its offsets are committed (False: stopped before acks)."""
        if self.submit(records, stop) is None:
            return False
        committing = time.perf_counter()
        self._commit(records)
        self.seconds["commit"] += time.perf_counter() - committing
        self.batches += 1
        return True

    def submit(self, records: Sequence[Record], stop: threading.Event) -> list[Outcome] | None:
        """The inbound path for raw messages with an origin: decode → `app.record` → park or
        dead-letter the refusals → wait for the broker's acknowledgements. Returns one outcome
        per record (status `parked` for a parked one), or None if `stop` was set before the
        broker acknowledged (then nothing may be committed). Commits nothing itself."""
        items = [_Item(record) for record in records]
        if not self._process(items, stop, fresh=True):
            return None
        return [item.outcome for item in items if item.outcome is not None]

    def _process(self, items: list[_Item], stop: threading.Event, *, fresh: bool) -> bool:
        """Decode, record, then send dead letters and parked copies and wait for their acks.

        `fresh`: messages as received (key check, parking behind parked ones); else parked
        messages being retried (in order per incident)."""
        assert self.sink is not None
        started = time.perf_counter()
        now = self.clock()
        decodable: list[_Item] = []
        for item in items:
            try:
                item.decoded = self.decode(item.record.value or b"")
            except InvalidMessageError as error:
                item.outcome = Outcome.rejected(error)
                continue
            message = item.decoded[0]
            if fresh:
                self._check_key(item.record, message.incident_id)
                if (
                    self.retry_topic is not None
                    and message.incident_id in self.parked
                    and message.event_type is not EventType.REPORTED  # what the others wait for
                ):
                    item.outcome = self._park_outcome(
                        message.message_id, message.incident_id, "behind_parked"
                    )
                    continue
            decodable.append(item)
        if decodable:
            traces = [trace_context(item.record.headers) for item in decodable]
            results = self.app.record(
                [item.decoded for item in decodable],  # type: ignore[misc]
                now=now,
                traceparent=traces if any(traces) else None,
            )
            if self.on_recorded is not None:
                self.on_recorded()  # wakes the relay at once
            for item, result in zip(decodable, results, strict=True):
                item.outcome = result
        rejected_at = self.clock()
        rejects: list[tuple[Record, Outcome, dict[str, Any] | None]] = []
        parks: list[Parked] = []
        resolved: list[Parked] = []
        for item in items:
            outcome = item.outcome
            assert outcome is not None
            if (
                outcome.status == Status.REJECTED
                and outcome.code == PARK_CODE
                and self.retry_topic
                and (item.parked is not None or self._room_to_park(len(parks)))
            ):
                parking = self._repark(item, outcome, rejected_at)
                if parking is not None:
                    parks.append(parking)
                    if item.parked is None:
                        item.outcome = self._park_outcome(
                            outcome.message_id, outcome.incident_id, outcome.code
                        )
                    else:
                        resolved.append(item.parked)  # its old retry record is done with
                    continue
            if outcome.status == Status.PARKED:
                parks.append(self._new_parked(item, outcome, rejected_at))
                continue
            if item.parked is not None:
                resolved.append(item.parked)
                if outcome.status != Status.REJECTED:
                    self.unparked += 1
            self.counts.add(outcome)
            if outcome.status == Status.REJECTED:
                extra = None if item.parked is None else self._parking_report(item.parked)
                rejects.append((item.record, outcome, extra))
                log.warning(
                    "message_rejected",
                    topic=item.record.topic,
                    partition=item.record.partition,
                    offset=item.record.offset,
                    incident_id=outcome.incident_id,
                    message_id=outcome.message_id,
                    code=outcome.code,
                    reason=_short(outcome.reason),
                    parked_attempts=None if item.parked is None else item.parked.attempts,
                )
        recorded = time.perf_counter()
        self.seconds["record"] += recorded - started
        if rejects or parks:
            delivered = self._deliver(rejects, parks, rejected_at, stop)
            self.seconds["dead_letter"] += time.perf_counter() - recorded
            if not delivered:
                return False
        for parking in parks:
            self._remember(parking)
        for done in resolved:
            self._forget(done)
        return True

    # -- keys ---------------------------------------------------------------------------

    def _check_key(self, record: Record, incident_id: str) -> None:
        key = record.key
        if key is not None and key == incident_id.encode("utf-8"):
            return
        self.key_mismatch += 1
        log.info(
            "key_mismatch",
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=None if key is None else key.decode("utf-8", errors="replace"),
            incident_id=incident_id,
            hint="publish keyed by incident_id with the murmur2 partitioner (docs/streaming.md)",
        )

    # -- parking ------------------------------------------------------------------------

    def _room_to_park(self, pending: int) -> bool:
        if len(self._by_park_id) + pending < self.max_parked:
            return True
        if not self._full_warned:
            self._full_warned = True
            log.warning(
                "parking_full",
                parked=len(self._by_park_id),
                max_parked=self.max_parked,
                hint="new messages of unknown incidents are dead-lettered at once",
            )
        return False

    def _park_outcome(self, message_id: str | None, incident_id: str | None, why: str) -> Outcome:
        return Outcome(Status.PARKED, message_id, incident_id, code=PARK_CODE, reason=why)

    def _new_parked(self, item: _Item, outcome: Outcome, now: datetime) -> Parked:
        assert outcome.incident_id is not None
        self.parked_total += 1
        log.info(
            "message_parked",
            topic=item.record.topic,
            partition=item.record.partition,
            offset=item.record.offset,
            incident_id=outcome.incident_id,
            message_id=outcome.message_id,
            why=outcome.reason,
            timeout_s=self.park_timeout_s,
        )
        return Parked(
            park_id=uuid.uuid4().hex,
            incident_id=outcome.incident_id,
            message_id=outcome.message_id,
            origin=item.record,
            first_parked_at=now,
            due_at=now + timedelta(seconds=min(PARK_FIRST_RETRY_S, self.park_timeout_s)),
            attempts=0,
            history=[{"at": format_instant(now), "code": outcome.reason or PARK_CODE}],
        )

    def _repark(self, item: _Item, outcome: Outcome, now: datetime) -> Parked | None:
        """The next parking of a refused message, or None when its time is up."""
        if item.parked is None:
            first = self._park_outcome(outcome.message_id, outcome.incident_id, PARK_CODE)
            return self._new_parked(item, first, now)
        old = item.parked
        deadline = old.first_parked_at + timedelta(seconds=self.park_timeout_s)
        if now >= deadline:
            self.park_expired += 1
            old.history.append({"at": format_instant(now), "code": PARK_CODE})
            return None
        attempts = old.attempts + 1
        delay = min(PARK_FIRST_RETRY_S * 2**attempts, PARK_MAX_RETRY_S)
        return Parked(
            park_id=uuid.uuid4().hex,
            incident_id=old.incident_id,
            message_id=old.message_id,
            origin=old.origin,
            first_parked_at=old.first_parked_at,
            due_at=min(now + timedelta(seconds=delay), deadline),
            attempts=attempts,
            history=[*old.history, {"at": format_instant(now), "code": PARK_CODE}],
        )

    def _parking_report(self, parked: Parked) -> dict[str, Any]:
        return {
            "parking": {
                "first_parked_at": format_instant(parked.first_parked_at),
                "attempts": parked.attempts + 1,
                "timeout_s": self.park_timeout_s,
                "retry_topic": self.retry_topic,
                "history": parked.history,
            }
        }

    def _remember(self, parking: Parked) -> None:
        """A parked copy was acknowledged: it takes (or keeps) its place in the queue."""
        queue = self.parked.setdefault(parking.incident_id, [])
        for index, entry in enumerate(queue):
            if _same(entry, parking):
                # A re-parking (or the same message parked again after a redelivery) keeps
                # the message's place, and the retry records it still holds.
                parking.retry_offsets |= entry.retry_offsets
                if self._by_park_id.get(entry.park_id) is entry:
                    del self._by_park_id[entry.park_id]
                queue[index] = parking
                break
        else:
            queue.append(parking)
        self._by_park_id[parking.park_id] = parking

    def _forget(self, parked: Parked) -> None:
        """A parked message was recorded, re-parked or dead-lettered: its records are done."""
        queue = self.parked.get(parked.incident_id, [])
        if parked in queue:
            queue.remove(parked)
            if not queue:
                del self.parked[parked.incident_id]
        if self._by_park_id.get(parked.park_id) is parked:
            del self._by_park_id[parked.park_id]
        if not parked.retry_offsets:
            self._resolved[parked.park_id] = None  # its copy is still to be read back
            while len(self._resolved) > 100_000:
                del self._resolved[next(iter(self._resolved))]
        for topic, partition, offset in parked.retry_offsets:
            self._retry_pending.get((topic, partition), set()).discard(offset)
        parked.retry_offsets = set()

    def _absorb(self, record: Record) -> None:
        """A record of the retry topic: the parked message it holds joins (or is) the queue."""
        tp = record.tp
        self._retry_next[tp] = max(self._retry_next.get(tp, 0), record.offset + 1)
        where = (record.topic, record.partition, record.offset)
        try:
            parking = Parked.from_envelope(record.value or b"")
        except (ValueError, KeyError, TypeError) as error:
            self.invalid_parked += 1
            log.error("invalid_parked_message", topic=record.topic, partition=record.partition,
                      offset=record.offset, error=repr(error))  # fmt: skip
            return
        if parking.park_id in self._resolved:
            del self._resolved[parking.park_id]
            return  # parked and settled by this process before it read the copy back
        self._retry_pending.setdefault(tp, set()).add(record.offset)
        known = self._by_park_id.get(parking.park_id)
        if known is not None:
            known.retry_offsets.add(where)
            return
        for entry in self.parked.get(parking.incident_id, []):
            if _same(entry, parking):
                # The same message twice (a re-parking whose old copy was not committed yet,
                # read again after a restart): one entry, the latest state, all its records.
                entry.retry_offsets.add(where)
                if parking.attempts > entry.attempts:
                    entry.attempts, entry.history = parking.attempts, parking.history
                    entry.due_at = parking.due_at
                entry.first_parked_at = min(entry.first_parked_at, parking.first_parked_at)
                return
        parking.retry_offsets.add(where)
        self.parked.setdefault(parking.incident_id, []).append(parking)
        self._by_park_id[parking.park_id] = parking

    def _retry_due(self, stop: threading.Event) -> int:
        """Re-submit the parked messages of every incident whose first parked one is due."""
        now = self.clock()
        due = [queue for queue in self.parked.values() if queue and queue[0].due_at <= now]
        if not due:
            return 0
        items = [_Item(entry.origin, parked=entry) for queue in due for entry in queue]
        items = items[: max(self.batch_size, 1)]
        if not self._process(items, stop, fresh=False):
            return 0
        return len(items)

    def _follow_assignment(self) -> None:
        """Retry partitions newly held: read them to their end before new messages are
        handled (so a message parked before a restart stays ahead of its incident's next)."""
        if self.retry_topic is None or self.source is None:
            return
        assigned = self.source.assignment()
        retry = {tp for tp in assigned if tp[0] == self.retry_topic}
        gone = self._retry_assigned - retry
        for tp in gone:  # another consumer holds them now, with what they hold
            for queue in list(self.parked.values()):
                for entry in list(queue):
                    if any((t, p) == tp for t, p, _ in entry.retry_offsets):
                        queue.remove(entry)
                        self._by_park_id.pop(entry.park_id, None)
            self.parked = {k: v for k, v in self.parked.items() if v}
            self._retry_pending.pop(tp, None)
            self._retry_next.pop(tp, None)
            self._retry_committed.pop(tp, None)
        if retry - self._retry_assigned:
            self._catching_up_since = time.monotonic()
        self._retry_assigned = retry
        if self._catching_up_since is not None:
            behind = self.source.topic_lag(self.retry_topic)
            waited = time.monotonic() - self._catching_up_since
            if behind == 0 or not retry or waited > CATCH_UP_LIMIT_S:
                if waited > CATCH_UP_LIMIT_S:
                    log.warning("retry_catch_up_timeout", waited_s=round(waited, 1))
                self._catching_up_since = None

    def _hold(self, inbound: list[Record]) -> list[Record]:
        """While catching up: put new messages back (seek), to be read again afterwards."""
        assert self.source is not None
        first: dict[Partition, int] = {}
        for record in inbound:
            first[record.tp] = min(first.get(record.tp, record.offset), record.offset)
        for tp, offset in first.items():
            self.source.seek(tp, offset)
        return []

    def _commit_retry(self) -> None:
        """Commit each retry partition up to its first record still parked."""
        if not self._retry_next or self.source is None:
            return
        offsets: dict[Partition, int] = {}
        for tp, next_offset in self._retry_next.items():
            pending = self._retry_pending.get(tp)
            target = min(pending) if pending else next_offset
            if target > self._retry_committed.get(tp, -1):
                offsets[tp] = target
        if not offsets:
            return
        try:
            self.source.commit(offsets)
        except Exception as error:
            self.commit_failures += 1
            log.warning("commit_failed", worker=self.name, error=repr(error))
            return
        self._retry_committed.update(offsets)

    # -- sending --------------------------------------------------------------------------

    def _deliver(
        self,
        rejects: list[tuple[Record, Outcome, dict[str, Any] | None]],
        parks: list[Parked],
        rejected_at: datetime,
        stop: threading.Event,
    ) -> bool:
        by_message: dict[int, tuple[Record, Outcome, dict[str, Any] | None]] = {}
        for parking in parks:
            assert self.sink is not None and self.retry_topic is not None
            self.sink.send(
                Outgoing(
                    self.retry_topic,
                    parking.incident_id.encode("utf-8"),
                    parking.envelope(),
                    (("slatrail-schema", PARKED_SCHEMA.encode("ascii")),),
                )
            )
        for record, outcome, extra in rejects:
            self._send(record, outcome, rejected_at, by_message, extra=extra)
        assert self.sink is not None
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
                for record, outcome, extra in retry:
                    log.warning(
                        "dead_letter_truncated",
                        topic=record.topic,
                        partition=record.partition,
                        offset=record.offset,
                        size=len(record.value or b""),
                    )
                    self._send(record, outcome, rejected_at, by_message, truncate=True,
                               extra=extra)  # fmt: skip

    def _send(
        self,
        record: Record,
        outcome: Outcome,
        rejected_at: datetime,
        by_message: dict[int, tuple[Record, Outcome, dict[str, Any] | None]],
        *,
        truncate: bool = False,
        extra: dict[str, Any] | None = None,
    ) -> None:
        assert self.sink is not None
        key_text = outcome.incident_id
        key = key_text.encode("utf-8") if key_text is not None else record.key
        headers = (("slatrail-code", (outcome.code or "rejected").encode("ascii")),)
        letters = self.dead_letters
        build = letters.truncated if truncate else letters.entry
        entry = build(record, outcome, rejected_at)
        if extra:
            entry.update(extra)
        message = Outgoing(self.rejected_topic, key, letters.encode(entry), headers)
        try:
            self.sink.send(message)
        except MessageTooLargeError:
            if truncate:
                raise
            self._send(record, outcome, rejected_at, by_message, truncate=True, extra=extra)
            return
        by_message[id(message)] = (record, outcome, extra)

    def _commit(self, records: Sequence[Record]) -> None:
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


def submit_records(
    app: Recorder,
    sink: Sink,
    records: Sequence[Record],
    *,
    decode: Decoder,
    dead_letters: DeadLetters,
    rejected_topic: str,
    clock: Now,
    retry_topic: str | None = None,
    park_timeout_s: float = 300.0,
    stop: threading.Event | None = None,
) -> list[Outcome] | None:
    """`InboundConsumer.submit` without a consumer: for re-submitting messages (redrive).

    `records` carry the raw bytes and their origin (topic/partition/offset/key/timestamp, as
    kept in a dead letter). Recorded, duplicate or dead-lettered (to `rejected_topic`, waiting
    for the broker's acks); with `retry_topic`, a message whose incident does not exist yet is
    parked there instead (a running `serve` retries it). None if `stop` was set before the acks.
    """

    def no_source() -> Source:
        raise RuntimeError("submit_records reads nothing")

    consumer = InboundConsumer(
        app,
        no_source,
        lambda: sink,
        decode=decode,
        dead_letters=dead_letters,
        rejected_topic=rejected_topic,
        clock=clock,
        retry_topic=retry_topic,
        park_timeout_s=park_timeout_s,
    )
    consumer.sink = sink
    return consumer.submit(records, stop or threading.Event())


def _too_large(error: BaseException) -> bool:
    return isinstance(error, MessageTooLargeError) or "TooLarge" in type(error).__name__


def _short(text: str | None, limit: int = 300) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return text[: limit - 1] + "…"
