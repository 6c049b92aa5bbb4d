"""An in-memory broker implementing the consumers' `Source`/`Sink` interface, for tests.

Same semantics as Kafka where the consumers depend on them: partitions by key, offsets, group
commits, seek, delivery errors, undecodable batches.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from slatrail.consumers.streams import (
    DeliveryError,
    MessageTooLargeError,
    OnAssign,
    Outgoing,
    Partition,
    Record,
    StalledPartition,
)


def partition_for(key: bytes | None, partitions: int, counter: int) -> int:
    """Deterministic key → partition (round robin without a key), like Kafka's partitioner."""
    if key is None:
        return counter % partitions
    return zlib.crc32(key) % partitions


@dataclass
class MemoryBroker:
    """Topics, partitions and committed group offsets, all in memory (tests only)."""

    partitions: int = 4
    max_message_bytes: int | None = None
    topics: dict[str, list[list[Record]]] = field(default_factory=dict)
    committed: dict[tuple[str, Partition], int] = field(default_factory=dict)
    down: bool = False
    undecodable: dict[tuple[str, int, int], str] = field(default_factory=dict)
    """(topic, partition, offset) → error: records a consumer cannot decode (a bad batch)."""
    _counter: int = 0

    def topic(self, name: str) -> list[list[Record]]:
        if name not in self.topics:
            self.topics[name] = [[] for _ in range(self.partitions)]
        return self.topics[name]

    def append(self, message: Outgoing) -> Record:
        parts = self.topic(message.topic)
        self._counter += 1
        index = partition_for(message.key, len(parts), self._counter)
        log = parts[index]
        record = Record(message.topic, index, len(log), message.key, message.value, message.headers)
        log.append(record)
        return record

    def produce(self, topic: str, value: bytes, key: bytes | None = None) -> Record:
        return self.append(Outgoing(topic, key, value))

    def records(self, topic: str) -> list[Record]:
        """Every record of a topic, partition by partition."""
        return [record for log in self.topic(topic) for record in log]

    def source(
        self, topics: Sequence[str], group: str, on_assign: OnAssign | None = None
    ) -> MemorySource:
        return MemorySource(self, list(topics), group, on_assign)

    def sink(self) -> MemorySink:
        return MemorySink(self)


class MemorySource:
    """A single group member that owns every partition of its topics."""

    def __init__(
        self,
        broker: MemoryBroker,
        topics: list[str],
        group: str,
        on_assign: OnAssign | None = None,
    ) -> None:
        self.broker = broker
        self.topics = topics
        self.group = group
        self.on_assign = on_assign
        self.positions: dict[Partition, int] = {}
        self.stalls: dict[Partition, StalledPartition] = {}
        self.closed = False

    def _assign(self) -> None:
        fresh = [
            (topic, index)
            for topic in self.topics
            for index in range(len(self.broker.topic(topic)))
            if (topic, index) not in self.positions
        ]
        if not fresh:
            return
        starts = dict(self.on_assign(fresh)) if self.on_assign else {}
        for tp in fresh:
            self.positions[tp] = starts.get(tp, self.broker.committed.get((self.group, tp), 0))

    def poll(self, timeout_s: float, max_records: int) -> list[Record]:
        if self.broker.down:
            return []
        self._assign()
        out: list[Record] = []
        for tp, position in sorted(self.positions.items()):
            if tp in self.stalls:
                continue
            log = self.broker.topic(tp[0])[tp[1]]
            chunk = log[position : position + max_records - len(out)]
            for index, record in enumerate(chunk):
                error = self.broker.undecodable.get((tp[0], tp[1], record.offset))
                if error is not None:
                    chunk = chunk[:index]
                    self.stalls[tp] = StalledPartition(
                        tp[0], tp[1], record.offset, error, time.time()
                    )
                    break
            out.extend(chunk)
            self.positions[tp] = position + len(chunk)
            if len(out) >= max_records:
                break
        return out

    def commit(self, offsets: Mapping[Partition, int]) -> None:
        if self.broker.down:
            raise ConnectionError("broker down")
        for tp, offset in offsets.items():
            self.broker.committed[(self.group, tp)] = offset

    def seek(self, partition: Partition, offset: int) -> None:
        self.positions[partition] = offset
        self.stalls.pop(partition, None)

    def lag(self) -> int | None:
        if not self.positions:
            return None
        return sum(
            len(self.broker.topic(tp[0])[tp[1]]) - position
            for tp, position in self.positions.items()
        )

    def topic_lag(self, topic: str) -> int | None:
        self._assign()
        return sum(
            len(self.broker.topic(tp[0])[tp[1]]) - position
            for tp, position in self.positions.items()
            if tp[0] == topic
        )

    def assignment(self) -> set[Partition]:
        return set(self.positions)

    def stalled(self) -> dict[Partition, StalledPartition]:
        return dict(self.stalls)

    def broker_silence_s(self) -> float | None:
        return float("inf") if self.broker.down else 0.0

    def close(self) -> None:
        self.closed = True


class MemorySink:
    """Buffers sends; `flush` appends them to the broker (or fails while it is down)."""

    def __init__(self, broker: MemoryBroker) -> None:
        self.broker = broker
        self._pending: list[Outgoing] = []
        self.fail_next: list[BaseException] = []

    def send(self, message: Outgoing) -> None:
        limit = self.broker.max_message_bytes
        if limit is not None and len(message.value) > limit:
            raise MessageTooLargeError(f"{len(message.value)} bytes > {limit}")
        self._pending.append(message)

    def flush(self, timeout_s: float) -> None:
        if self.broker.down:
            raise TimeoutError("broker down")
        pending, self._pending = self._pending, []
        if self.fail_next and pending:
            error = self.fail_next.pop(0)
            raise DeliveryError([(message, error) for message in pending])
        for message in pending:
            self.broker.append(message)

    def pending(self) -> int:
        return len(self._pending)

    def close(self) -> None:
        self._pending.clear()
