"""kafka-python clients built from `Settings`, adapted to the consumers' `Source`/`Sink`.

Nothing here connects at import time; clients are created when a worker opens.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from slatrail.consumers.streams import (
    DeliveryError,
    MessageTooLargeError,
    OnAssign,
    Outgoing,
    Partition,
    Record,
    StalledPartition,
)
from slatrail.infra import kafka_client as kafka_errors
from slatrail.infra.kafka_client import (
    Admin,
    Consumer,
    ConsumerRebalanceListener,
    ConsumerRecord,
    OffsetAndMetadata,
    Producer,
    SendFuture,
    TopicPartition,
    create_topic,
    decoding_partition,
    forget_fetched,
    new_admin,
    new_consumer,
    new_producer,
)
from slatrail.infra.settings import Settings

log = structlog.get_logger("slatrail.kafka")

SECRET_KEYS = frozenset({"sasl_plain_password", "ssl_password"})


class KafkaNotConfiguredError(ValueError):
    """No bootstrap servers: pass --kafka HOST:PORT or set SLATRAIL_KAFKA_BOOTSTRAP."""


def client_config(settings: Settings) -> dict[str, Any]:
    """Connection and security options common to every kafka-python client."""
    if not settings.kafka_bootstrap:
        raise KafkaNotConfiguredError(
            "no Kafka bootstrap servers: use --kafka HOST:PORT or SLATRAIL_KAFKA_BOOTSTRAP"
        )
    config: dict[str, Any] = {
        "bootstrap_servers": [s.strip() for s in settings.kafka_bootstrap.split(",") if s.strip()],
        "client_id": settings.kafka_client_id,
        "security_protocol": settings.kafka_security_protocol,
        "request_timeout_ms": settings.kafka_request_timeout_ms,
    }
    if settings.kafka_sasl_mechanism:
        config["sasl_mechanism"] = settings.kafka_sasl_mechanism
    if settings.kafka_sasl_username is not None:
        config["sasl_plain_username"] = settings.kafka_sasl_username
    if settings.kafka_sasl_password is not None:
        config["sasl_plain_password"] = settings.kafka_sasl_password.get_secret_value()
    for key, path in (
        ("ssl_cafile", settings.kafka_ssl_cafile),
        ("ssl_certfile", settings.kafka_ssl_certfile),
        ("ssl_keyfile", settings.kafka_ssl_keyfile),
    ):
        if path is not None:
            config[key] = str(path)
    return config


def check_crcs(settings: Settings) -> bool:
    """CRC-32C checks of fetched records: kafka-python's pure-Python CRC costs more than the
    rest of a fetch, so by default only when the C `crc32c` module is installed."""
    if settings.kafka_check_crcs is not None:
        return settings.kafka_check_crcs
    try:
        import crc32c  # noqa: F401
    except ImportError:
        return False
    return True


def redact_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A client config safe to log (secrets replaced)."""
    return {k: ("**********" if k in SECRET_KEYS and v else v) for k, v in config.items()}


def quiet_kafka_logging(level: int = logging.ERROR) -> None:
    """kafka-python logs every reconnect attempt as a warning; our workers log the outage."""
    logging.getLogger("kafka").setLevel(level)


@dataclass(frozen=True)
class Topics:
    inbound: str
    events: str
    rejected: str
    alerts: str

    @classmethod
    def from_settings(cls, settings: Settings) -> Topics:
        return cls(
            settings.topic_inbound,
            settings.topic_events,
            settings.topic_rejected,
            settings.topic_alerts,
            settings.topic_retry,
            settings.topic_checkpoints,
        )

    retry: str = "incidents.retry"
    checkpoints: str = "incidents.checkpoints"

    def all(self) -> tuple[str, ...]:
        return (
            self.inbound, self.events, self.rejected, self.alerts, self.retry, self.checkpoints
        )  # fmt: skip


class KafkaClients:
    """Builds slatrail's Kafka clients (the Container's `kafka()`); connects only when asked."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topics = Topics.from_settings(settings)

    def config(self) -> dict[str, Any]:
        return client_config(self.settings)

    def producer(self, **overrides: Any) -> Producer:
        s = self.settings
        config = {
            **self.config(),
            "enable_idempotence": True,
            "acks": "all",
            # Every slatrail producer flushes explicitly after a batch, so lingering adds no
            # latency; it lets one request carry the batch (ordering allows one in flight).
            "linger_ms": 100,
            "batch_size": 1024 * 1024,
            "max_request_size": s.kafka_max_message_bytes,
            "delivery_timeout_ms": s.kafka_delivery_timeout_ms,
            "max_block_ms": 10_000,
            "bootstrap_timeout_ms": 10_000,
            **overrides,
        }
        return new_producer(**config)

    def sink(self, **overrides: Any) -> KafkaSink:
        return KafkaSink(self.producer(**overrides))

    def source(
        self,
        topics: Sequence[str],
        group_id: str,
        *,
        on_assign: OnAssign | None = None,
        **overrides: Any,
    ) -> KafkaSource:
        s = self.settings
        config = {
            **self.config(),
            "group_id": group_id,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "max_poll_records": s.kafka_batch_size,
            "session_timeout_ms": s.kafka_session_timeout_ms,
            "heartbeat_interval_ms": s.kafka_heartbeat_interval_ms,
            "max_poll_interval_ms": s.kafka_max_poll_interval_ms,
            "max_partition_fetch_bytes": s.kafka_max_message_bytes,
            "fetch_max_bytes": max(s.kafka_max_message_bytes, 50 * 1024 * 1024),
            "fetch_max_wait_ms": s.kafka_fetch_max_wait_ms,
            "check_crcs": check_crcs(s),
            "bootstrap_timeout_ms": 10_000,
            **overrides,
        }
        consumer = new_consumer(**config)
        return KafkaSource(consumer, list(topics), on_assign)

    def assigned_source(
        self, topics: Sequence[str], group_id: str, batch: int
    ) -> AssignedKafkaSource:
        """Every partition of `topics`, outside any group (offsets committed under group_id)."""
        consumer = new_consumer(
            **self.config(),
            group_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=batch,
            fetch_max_wait_ms=100,
        )
        return AssignedKafkaSource(consumer, topics)

    def admin(self) -> Admin:
        return new_admin(**{**self.config(), "bootstrap_timeout_ms": 5_000})

    def ensure_topics(self, topics: Sequence[str] | None = None) -> list[str]:
        """Create the missing topics (settings.topic_partitions each); returns those created."""
        wanted = list(topics or self.topics.all())
        s = self.settings
        admin = self.admin()
        try:
            existing = set(admin.list_topics())
            missing = [name for name in wanted if name not in existing]
            created: list[str] = []
            for name in missing:
                try:
                    self._create_topic(admin, name)
                except kafka_errors.TopicAlreadyExistsError:
                    continue
                created.append(name)
                log.info("topic_created", topic=name, partitions=s.topic_partitions)
            return created
        finally:
            admin.close()

    def _create_topic(self, admin: Admin, name: str) -> None:
        s = self.settings
        configs = {"max.message.bytes": str(s.kafka_max_message_bytes)}
        try:
            create_topic(admin, name, s.topic_partitions, s.topic_replication_factor, configs)
        except (kafka_errors.InvalidConfigurationError, kafka_errors.PolicyViolationError) as e:
            log.warning("topic_config_refused", topic=name, error=repr(e))
            create_topic(admin, name, s.topic_partitions, s.topic_replication_factor)


class KafkaSink:
    """`Sink` over an idempotent KafkaProducer (acks=all, ordered per partition)."""

    def __init__(self, producer: Producer) -> None:
        self.producer = producer
        self._pending: list[tuple[Outgoing, SendFuture]] = []

    def send(self, message: Outgoing) -> None:
        try:
            future = self.producer.send(
                message.topic,
                value=message.value,
                key=message.key,
                headers=list(message.headers) or None,
            )
        except kafka_errors.MessageSizeTooLargeError as error:
            raise MessageTooLargeError(str(error)) from error
        except kafka_errors.KafkaTimeoutError as error:
            raise TimeoutError(f"producer blocked: {error}") from error
        self._pending.append((message, future))

    def flush(self, timeout_s: float) -> None:
        if not self._pending:
            return
        try:
            self.producer.flush(timeout=timeout_s)
        except kafka_errors.KafkaTimeoutError as error:
            raise TimeoutError(str(error)) from error
        if not all(future.is_done for _, future in self._pending):
            raise TimeoutError("not all sends acknowledged yet")
        pending, self._pending = self._pending, []
        failed = [
            (message, future.exception or RuntimeError("delivery failed"))
            for message, future in pending
            if future.failed()
        ]
        if failed:
            raise DeliveryError(failed)

    def pending(self) -> int:
        return len(self._pending)

    def close(self) -> None:
        self._pending.clear()
        with contextlib.suppress(Exception):
            self.producer.close(timeout=5)


class _Listener(ConsumerRebalanceListener):
    def __init__(self, source: KafkaSource) -> None:
        self.source = source

    def on_partitions_revoked(self, revoked: Collection[TopicPartition]) -> None:
        if revoked:
            log.info("partitions_revoked", partitions=_names(revoked))
            for tp in revoked:
                self.source.stalls.pop((tp.topic, tp.partition), None)

    def on_partitions_assigned(self, assigned: Collection[TopicPartition]) -> None:
        log.info("partitions_assigned", partitions=_names(assigned))
        if self.source.on_assign is None or not assigned:
            return
        starts = self.source.on_assign([(tp.topic, tp.partition) for tp in assigned])
        for (topic, partition), offset in starts.items():
            self.source.consumer.seek(TopicPartition(topic, partition), offset)


def _names(partitions: Collection[TopicPartition]) -> list[str]:
    return sorted(f"{tp.topic}:{tp.partition}" for tp in partitions)


# Errors kafka-python raises while *decoding* a fetched batch (as opposed to talking to the
# broker): a codec it lacks, a failed CRC, or whatever a decompressor raises on bad input.
_DECODE_ERRORS: tuple[type[BaseException], ...] = (
    kafka_errors.UnsupportedCodecError,
    kafka_errors.CorruptRecordError,
)

STALL_RETRY_S = 60.0
"""A stalled partition is tried again this often (a transient fault heals; a bad batch stays)."""


def _is_decode_error(error: BaseException) -> bool:
    if isinstance(error, _DECODE_ERRORS):
        return True
    if isinstance(error, kafka_errors.KafkaError):
        return False  # the broker or the group said something: not the batch's bytes
    # Decompressors (zlib/gzip, lz4, zstandard, snappy) raise their own errors on bad input.
    module = type(error).__module__.split(".")[0]
    return module in ("zlib", "gzip", "lz4", "zstandard", "snappy", "cramjam") or isinstance(
        error, (ValueError, EOFError, NotImplementedError, LookupError)
    )


class _ConsumerSource:
    """What every `Source` over a KafkaConsumer shares: records, manual commits, lag, stalls."""

    consumer: Consumer
    stalls: dict[Partition, StalledPartition]

    def poll(self, timeout_s: float, max_records: int) -> list[Record]:
        self._retry_stalled()
        try:
            batches = self.consumer.poll(timeout_ms=int(timeout_s * 1000), max_records=max_records)
        except Exception as error:
            if not _is_decode_error(error):
                raise
            self._stall(error)
            return []
        return self._records(batches)

    # -- a batch that cannot be decoded stops its partition, loudly, and only it ------------

    def _stall(self, error: BaseException) -> None:
        tp = self._culprit()
        if tp is None:
            tp = self._probe(error)
        if tp is None:  # cannot tell which partition: fail the worker (it restarts)
            raise error
        try:
            offset = self.consumer.position(tp, timeout_ms=1000)
        except Exception:
            offset = -1
        self.consumer.pause(tp)
        self._forget_buffered(tp, offset)
        key = (tp.topic, tp.partition)
        known = self.stalls.get(key)
        since = known.since if known is not None and known.offset == offset else time.time()
        self.stalls[key] = StalledPartition(tp.topic, tp.partition, offset, repr(error), since)
        log.error(
            "partition_stalled",
            topic=tp.topic,
            partition=tp.partition,
            offset=offset,
            error=repr(error),
            retry_in_s=STALL_RETRY_S,
            hint="the batch at this offset cannot be decoded; the partition is not read past it "
            "(install the codec, or after inspection move the group offset past the batch)",
        )

    def _culprit(self) -> TopicPartition | None:
        return decoding_partition(self.consumer)

    def _forget_buffered(self, tp: TopicPartition, offset: int) -> None:
        """Drop what kafka-python holds of a batch it failed to decode, so that reading the
        partition again fetches the batch again (and fails again, loudly) instead of hanging on
        a dead iterator."""
        forget_fetched(self.consumer, tp)
        if offset >= 0:
            with contextlib.suppress(Exception):
                self.consumer.seek(tp, offset)

    def _probe(self, error: BaseException) -> TopicPartition | None:
        """Find the failing partition by reading each alone (fallback; positions restored)."""
        candidates = sorted(self.consumer.assignment() - self.consumer.paused())
        if not candidates:
            return None
        positions = {tp: self.consumer.position(tp, timeout_ms=1000) for tp in candidates}
        found: TopicPartition | None = None
        try:
            for tp in candidates:
                self.consumer.pause(*[c for c in candidates if c != tp])
                self.consumer.resume(tp)
                deadline = time.monotonic() + 1.0
                while time.monotonic() < deadline:
                    try:
                        got = self.consumer.poll(timeout_ms=200, max_records=1)
                    except Exception as again:
                        if _is_decode_error(again):
                            found = tp
                            self._forget_buffered(tp, positions[tp])
                        break
                    if got:
                        break
                if found is not None:
                    break
        finally:
            self.consumer.resume(*candidates)
            for tp, offset in positions.items():
                self.consumer.seek(tp, offset)
        return found

    def _retry_stalled(self) -> None:
        now = time.time()
        tried = self.__dict__.setdefault("_stall_tried", {})
        for key, stall in list(self.stalls.items()):
            tp = TopicPartition(*key)
            if tp not in self.consumer.assignment():
                self.stalls.pop(key)
                tried.pop(key, None)
            elif now - tried.get(key, stall.since) >= STALL_RETRY_S:
                # The next fetch re-reads the batch: a lasting fault stalls it again (health
                # keeps the first `since`), a transient one heals.
                tried[key] = now
                self.consumer.resume(tp)

    def _records(self, batches: Mapping[TopicPartition, list[ConsumerRecord]]) -> list[Record]:
        out = [
            Record(tp.topic, tp.partition, m.offset, m.key, m.value, tuple(m.headers or ()),
                   m.timestamp)
            for tp, messages in batches.items()
            for m in messages
        ]  # fmt: skip
        if self.stalls:
            for record in out:
                stall = self.stalls.get(record.tp)
                if stall is not None and record.offset >= stall.offset:
                    del self.stalls[record.tp]
                    log.info("partition_resumed", topic=record.topic,
                             partition=record.partition, offset=record.offset)  # fmt: skip
        return out

    def stalled(self) -> dict[Partition, StalledPartition]:
        return dict(self.stalls)

    def commit(self, offsets: Mapping[Partition, int]) -> None:
        self.consumer.commit(
            {TopicPartition(t, p): OffsetAndMetadata(o, "", -1) for (t, p), o in offsets.items()},
            timeout_ms=10_000,
        )

    def seek(self, partition: Partition, offset: int) -> None:
        self.consumer.seek(TopicPartition(*partition), offset)

    def lag(self) -> int | None:
        return self._lag(None)

    def topic_lag(self, topic: str) -> int | None:
        return self._lag(topic)

    def _lag(self, topic: str | None) -> int | None:
        assigned = [tp for tp in self.consumer.assignment() if topic in (None, tp.topic)]
        if not assigned:
            return None  # holding nothing is not "no lag"
        total = 0
        for tp in assigned:
            high = self.consumer.highwater(tp)
            try:
                position = self.consumer.position(tp, timeout_ms=0)
            except Exception:
                return None
            if high is None or position is None:
                return None
            total += max(high - position, 0)
        return total

    def assignment(self) -> set[Partition]:
        return {(tp.topic, tp.partition) for tp in self.consumer.assignment()}

    def broker_silence_s(self) -> float | None:
        return None

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.consumer.close(autocommit=False, timeout_ms=5_000)


class KafkaSource(_ConsumerSource):
    """`Source` over a KafkaConsumer in a group, manual commits."""

    def __init__(self, consumer: Consumer, topics: list[str], on_assign: OnAssign | None) -> None:
        self.consumer = consumer
        self.on_assign = on_assign
        self.stalls = {}
        consumer.subscribe(topics, listener=_Listener(self))

    def broker_silence_s(self) -> float | None:
        try:
            metrics = self.consumer.metrics()["consumer-coordinator-metrics"]
            age = float(metrics["last-heartbeat-seconds-ago"])
        except (KeyError, TypeError, ValueError):
            return None
        return None if age == float("inf") else age


class AssignedKafkaSource(_ConsumerSource):
    """`Source` over every partition of the topics, assigned without joining a group.

    Every alert timer must see every incident, so timers never share partitions (two `serve`
    processes each run a complete timer; their alerts carry the same keys). Offsets are still
    committed under `group_id`, so a restart resumes near where it stopped (advisory: the store
    is loaded first and positions de-duplicate). Partitions added later are picked up.
    """

    def __init__(self, consumer: Consumer, topics: Sequence[str]) -> None:
        self.consumer = consumer
        self.topics = list(topics)
        self.stalls = {}
        self._checked = 0.0

    def _assign(self) -> None:
        now = time.monotonic()
        if self.consumer.assignment() and now - self._checked < 30:
            return
        self._checked = now
        wanted = {
            TopicPartition(topic, p)
            for topic in self.topics
            for p in (self.consumer.partitions_for_topic(topic) or ())
        }
        if wanted and wanted != self.consumer.assignment():
            self.consumer.assign(sorted(wanted))
            log.info("source_assigned", partitions=sorted(f"{t}:{p}" for t, p in wanted))

    def poll(self, timeout_s: float, max_records: int) -> list[Record]:
        self._assign()
        if not self.consumer.assignment():
            time.sleep(timeout_s)
            return []
        return super().poll(timeout_s, max_records)
