"""kafka-python behind types: the one module that imports `kafka`.

kafka-python ships no type hints, so everything it returns is `Any` to mypy. This module is the
boundary: the other modules use the Protocols and names below, mypy strict checks them, and the
untyped library is reached only here (constructors `cast` to the Protocols; the error classes and
`TopicPartition`/`OffsetAndMetadata` are kafka-python's own at run time, described for mypy under
`TYPE_CHECKING`). Nothing connects at import time.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, cast

if TYPE_CHECKING:

    class TopicPartition(NamedTuple):
        topic: str
        partition: int

    class OffsetAndMetadata(NamedTuple):
        offset: int
        metadata: str
        leader_epoch: int

    class KafkaError(Exception): ...

    class KafkaTimeoutError(KafkaError): ...

    class MessageSizeTooLargeError(KafkaError): ...

    class TopicAlreadyExistsError(KafkaError): ...

    class InvalidConfigurationError(KafkaError): ...

    class PolicyViolationError(KafkaError): ...

    class UnsupportedCodecError(KafkaError): ...

    class CorruptRecordError(KafkaError): ...

    class ConsumerRebalanceListener:
        def on_partitions_revoked(self, revoked: Collection[TopicPartition]) -> None: ...

        def on_partitions_assigned(self, assigned: Collection[TopicPartition]) -> None: ...

else:
    from kafka import TopicPartition
    from kafka.consumer.subscription_state import ConsumerRebalanceListener
    from kafka.errors import (
        CorruptRecordError,
        InvalidConfigurationError,
        KafkaError,
        KafkaTimeoutError,
        MessageSizeTooLargeError,
        PolicyViolationError,
        TopicAlreadyExistsError,
        UnsupportedCodecError,
    )
    from kafka.structs import OffsetAndMetadata

__all__ = [
    "Admin",
    "Consumer",
    "ConsumerRebalanceListener",
    "ConsumerRecord",
    "CorruptRecordError",
    "InvalidConfigurationError",
    "KafkaError",
    "KafkaTimeoutError",
    "MessageSizeTooLargeError",
    "OffsetAndMetadata",
    "PolicyViolationError",
    "Producer",
    "SendFuture",
    "TopicAlreadyExistsError",
    "TopicPartition",
    "UnsupportedCodecError",
    "create_topic",
    "decoding_partition",
    "forget_fetched",
    "new_admin",
    "new_consumer",
    "new_producer",
]


class ConsumerRecord(Protocol):
    """One fetched record (kafka-python's `ConsumerRecord`)."""

    @property
    def topic(self) -> str: ...

    @property
    def partition(self) -> int: ...

    @property
    def offset(self) -> int: ...

    @property
    def timestamp(self) -> int: ...

    @property
    def key(self) -> bytes | None: ...

    @property
    def value(self) -> bytes | None: ...

    @property
    def headers(self) -> list[tuple[str, bytes]] | None: ...


class Consumer(Protocol):
    """The part of kafka-python's `KafkaConsumer` slatrail uses."""

    def poll(
        self, timeout_ms: int = 0, max_records: int | None = None
    ) -> Mapping[TopicPartition, list[ConsumerRecord]]: ...

    def position(self, partition: TopicPartition, timeout_ms: int | None = None) -> int: ...

    def highwater(self, partition: TopicPartition) -> int | None: ...

    def end_offsets(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]: ...

    def assignment(self) -> set[TopicPartition]: ...

    def paused(self) -> set[TopicPartition]: ...

    def pause(self, *partitions: TopicPartition) -> None: ...

    def resume(self, *partitions: TopicPartition) -> None: ...

    def seek(self, partition: TopicPartition, offset: int) -> None: ...

    def seek_to_beginning(self, *partitions: TopicPartition) -> None: ...

    def assign(self, partitions: Sequence[TopicPartition]) -> None: ...

    def subscribe(
        self, topics: Sequence[str], listener: ConsumerRebalanceListener | None = None
    ) -> None: ...

    def partitions_for_topic(self, topic: str) -> set[int] | None: ...

    def commit(
        self, offsets: Mapping[TopicPartition, OffsetAndMetadata], timeout_ms: int | None = None
    ) -> None: ...

    def metrics(self) -> dict[str, dict[str, Any]]: ...

    def close(self, autocommit: bool = True, timeout_ms: int | None = None) -> None: ...


class SendFuture(Protocol):
    """kafka-python's `FutureRecordMetadata`."""

    @property
    def is_done(self) -> bool: ...

    @property
    def exception(self) -> BaseException | None: ...

    def failed(self) -> bool: ...


class Producer(Protocol):
    """The part of kafka-python's `KafkaProducer` slatrail uses."""

    def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> SendFuture: ...

    def flush(self, timeout: float | None = None) -> None: ...

    def close(self, timeout: float | None = None) -> None: ...


class Admin(Protocol):
    """The part of kafka-python's `KafkaAdminClient` slatrail uses."""

    def list_topics(self) -> list[str]: ...

    def close(self) -> None: ...


def new_consumer(**config: Any) -> Consumer:
    from kafka import KafkaConsumer

    return cast(Consumer, KafkaConsumer(**config))


def new_producer(**config: Any) -> Producer:
    from kafka import KafkaProducer

    return cast(Producer, KafkaProducer(**config))


def new_admin(**config: Any) -> Admin:
    from kafka import KafkaAdminClient

    return cast(Admin, KafkaAdminClient(**config))


def create_topic(
    admin: Admin,
    name: str,
    partitions: int,
    replication_factor: int,
    configs: Mapping[str, str] | None = None,
) -> None:
    from kafka.admin import NewTopic

    topic = NewTopic(name, partitions, replication_factor, topic_configs=dict(configs or {}))
    cast(Any, admin).create_topics([topic])


# kafka-python's fetcher internals: which partition a failed decode came from, and forgetting
# what it buffered of that batch (see `infra.kafka._ConsumerSource._stall`).


def decoding_partition(consumer: Consumer) -> TopicPartition | None:
    """The partition kafka-python was decoding when it failed (its fetcher's state)."""
    fetcher: Any = getattr(consumer, "_fetcher", None)
    meta: Any = getattr(fetcher, "_next_in_line_exception_metadata", None)
    if meta is not None and getattr(meta, "partition", None) is not None:
        fetcher._next_in_line_exception_metadata = None
        culprit: TopicPartition = meta.partition
        return culprit
    current: Any = getattr(fetcher, "_next_partition_records", None)
    tp: TopicPartition | None = getattr(current, "topic_partition", None)
    if tp is not None and tp in consumer.assignment():
        return tp
    return None


def forget_fetched(consumer: Consumer, tp: TopicPartition) -> None:
    """Drop what kafka-python's fetcher holds of `tp`'s current batch."""
    fetcher: Any = getattr(consumer, "_fetcher", None)
    with contextlib.suppress(Exception):
        current = fetcher._next_partition_records
        if current is not None and current.topic_partition == tp:
            fetcher._next_partition_records = None
        fetcher._paused_partition_records.pop(tp, None)
        fetcher._paused_completed_fetches.pop(tp, None)
        meta = fetcher._next_in_line_exception_metadata
        if meta is not None and meta.partition == tp:
            fetcher._next_in_line_exception_metadata = None
