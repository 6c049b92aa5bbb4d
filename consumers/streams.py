"""The small interface every consumer is driven through: a `Source` of records and a `Sink`.

`infra/kafka.py` implements it over kafka-python; `tests/memory_broker.py` implements it in
memory for unit tests (same semantics: partitions by key, offsets, group commits, seek,
delivery errors).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

Partition = tuple[str, int]
"""(topic, partition)."""

OnAssign = Callable[[Sequence[Partition]], Mapping[Partition, int]]
"""Called with newly assigned partitions; returns the offset to start each one at.

Partitions it leaves out start at the group's committed offset (else the earliest).
"""


@dataclass(frozen=True, slots=True)
class Record:
    """One message read from a topic partition."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()
    timestamp_ms: int | None = None

    @property
    def tp(self) -> Partition:
        return (self.topic, self.partition)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message to be written."""

    topic: str
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


class DeliveryError(Exception):
    """Some messages sent since the last flush were not acknowledged by the broker."""

    def __init__(self, failed: Sequence[tuple[Outgoing, BaseException]]) -> None:
        first = failed[0][1] if failed else None
        super().__init__(f"{len(failed)} message(s) not delivered: {first!r}")
        self.failed = list(failed)


class MessageTooLargeError(Exception):
    """The broker (or the client's limit) refuses a message this large."""


@dataclass(frozen=True, slots=True)
class StalledPartition:
    """A partition whose next batch cannot be decoded (unknown codec, corrupt batch).

    The source stops reading it at `offset` (never skips it); the others go on.
    """

    topic: str
    partition: int
    offset: int
    error: str
    since: float  # time.time() when it stalled

    def as_json(self) -> dict[str, object]:
        return {
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "error": self.error,
        }


class Source(Protocol):
    """Records from subscribed topics, with manual offset commits."""

    def poll(self, timeout_s: float, max_records: int) -> list[Record]: ...

    def commit(self, offsets: Mapping[Partition, int]) -> None:
        """Commit the *next* offset to read for each partition (offset of last record + 1)."""

    def seek(self, partition: Partition, offset: int) -> None: ...

    def lag(self) -> int | None:
        """Records not yet read from the assigned partitions (None when unknown or none held)."""

    def topic_lag(self, topic: str) -> int | None:
        """Records not yet read from the assigned partitions of `topic` (None when unknown)."""

    def assignment(self) -> set[Partition]: ...

    def stalled(self) -> dict[Partition, StalledPartition]:
        """Partitions stopped at a batch that cannot be decoded."""

    def broker_silence_s(self) -> float | None:
        """Seconds since the broker last answered the group's heartbeats (None: unknown)."""

    def close(self) -> None: ...


class Sink(Protocol):
    """Asynchronous sends, acknowledged together by `flush`."""

    def send(self, message: Outgoing) -> None:
        """Queue a message; may raise `MessageTooLargeError` at once."""

    def flush(self, timeout_s: float) -> None:
        """Wait until everything sent so far is acknowledged.

        Raises `TimeoutError` when not all are acknowledged yet (they stay pending: call again)
        and `DeliveryError` (listing the failed messages, which are then forgotten) when the
        broker refused or gave up on some.
        """

    def pending(self) -> int: ...

    def close(self) -> None: ...
