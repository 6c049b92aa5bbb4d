"""The real-server fixtures give real, usable PostgreSQL and Kafka servers."""

from __future__ import annotations

import json
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from uuid import UUID

import psycopg
import pytest
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

from tests.servers import KafkaServer, postgres_env_from_url

pytestmark = pytest.mark.integration

# --------------------------------------------------------------------------- PostgreSQL


def test_postgres_fresh_database_round_trips_a_row(postgres_url: str) -> None:
    with psycopg.connect(postgres_url) as conn:
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        assert tables.fetchone() == (0,)  # a fresh database
        conn.execute("CREATE TABLE probe (id integer PRIMARY KEY, body text NOT NULL)")
        conn.execute("INSERT INTO probe VALUES (%s, %s)", (1, "hello ✓"))
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT id, body FROM probe").fetchall() == [(1, "hello ✓")]
        dbname = conn.execute("SELECT current_database()").fetchone()
    assert dbname is not None and postgres_url.endswith("/" + dbname[0])


def test_postgres_databases_are_isolated(postgres_database_factory: Callable[..., str]) -> None:
    first, second = postgres_database_factory("a"), postgres_database_factory("b")
    assert first != second
    with psycopg.connect(first) as conn:
        conn.execute("CREATE TABLE only_in_first (id integer)")
    with psycopg.connect(second) as conn:
        row = conn.execute("SELECT to_regclass('only_in_first')").fetchone()
    assert row == (None,)


class Ticket(Aggregate):
    @event("Opened")
    def __init__(self, title: str) -> None:
        self.title = title
        self.notes: list[str] = []

    @event("Noted")
    def add_note(self, note: str) -> None:
        self.notes.append(note)


class Desk(Application):
    def open(self, title: str) -> UUID:
        ticket = Ticket(title)
        self.save(ticket)
        return ticket.id

    def note(self, ticket_id: UUID, note: str) -> None:
        ticket: Ticket = self.repository.get(ticket_id)
        ticket.add_note(note)
        self.save(ticket)


def test_eventsourcing_application_on_postgres(postgres_url: str) -> None:
    env = {"PERSISTENCE_MODULE": "eventsourcing.postgres", **postgres_env_from_url(postgres_url)}
    writer = Desk(env=env)
    try:
        ticket_id = writer.open("printer on fire")
        writer.note(ticket_id, "extinguisher applied")
    finally:
        writer.close()

    reader = Desk(env=env)  # a new application instance: state comes from the database
    try:
        ticket: Ticket = reader.repository.get(ticket_id)
        assert (ticket.title, ticket.notes, ticket.version) == (
            "printer on fire",
            ["extinguisher applied"],
            2,
        )
    finally:
        reader.close()

    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT count(*) FROM desk_events").fetchone() == (2,)


# --------------------------------------------------------------------------------- Kafka


def _consumer(kafka_server: KafkaServer, *topics: str, **config: object) -> KafkaConsumer:
    settings: dict[str, object] = {
        "bootstrap_servers": kafka_server.bootstrap,
        "auto_offset_reset": "earliest",
        "enable_auto_commit": False,
        "max_poll_interval_ms": 3000,
        **kafka_server.consumer_group_settings,  # short session: fast group join
        **config,
    }
    return KafkaConsumer(*topics, **settings)


def _create_topic(bootstrap: str, partitions: int) -> str:
    topic = f"slatrail-test-{uuid.uuid4().hex[:10]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
        described = admin.describe_topics([topic])
    finally:
        admin.close()
    assert len(described[0]["partitions"]) == partitions
    return topic


def _poll_until(consumer: KafkaConsumer, count: int, timeout: float) -> list:
    records: list = []
    deadline = time.monotonic() + timeout
    while len(records) < count and time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=200).values():
            records.extend(batch)
    return records


def test_kafka_idempotent_keyed_produce_and_group_consume(
    kafka_server: KafkaServer, kafka_bootstrap: str
) -> None:
    topic = _create_topic(kafka_bootstrap, partitions=4)
    group = f"{topic}-group"

    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=True, acks="all")
    try:
        futures = [
            producer.send(
                topic,
                key=f"incident-{n % 10}".encode(),
                value=json.dumps({"key": n % 10, "seq": n}).encode(),
            )
            for n in range(100)
        ]
        producer.flush()
        metadata = [future.get(timeout=10) for future in futures]
    finally:
        producer.close()
    partition_of_key: dict[int, set[int]] = defaultdict(set)
    for n, meta in enumerate(metadata):
        partition_of_key[n % 10].add(meta.partition)
    assert all(len(partitions) == 1 for partitions in partition_of_key.values())
    assert len({meta.partition for meta in metadata}) > 1
    partitions = [TopicPartition(topic, p) for p in range(4)]
    # Not consumer.end_offsets(): Tansu answers ListOffsets(latest) with the base offset
    # of the last batch + 1 (see tests/servers.py).
    end_offsets = {tp: 0 for tp in partitions}
    for meta in metadata:
        tp = TopicPartition(topic, meta.partition)
        end_offsets[tp] = max(end_offsets[tp], meta.offset + 1)

    consumer = _consumer(kafka_server, topic, group_id=group)
    try:
        records = _poll_until(consumer, 100, timeout=30)
        assert len(records) == 100
        consumer.commit()
        assert {tp: consumer.committed(tp) or 0 for tp in partitions} == end_offsets
    finally:
        consumer.close()
    by_key: dict[int, list[int]] = defaultdict(list)
    for record in records:
        value = json.loads(record.value)
        by_key[value["key"]].append(value["seq"])
    assert all(seqs == sorted(seqs) and len(seqs) == 10 for seqs in by_key.values())

    # A new member of the same group resumes at the committed offsets: nothing old comes
    # back, but a new record does.
    second = _consumer(kafka_server, topic, group_id=group)
    try:
        deadline = time.monotonic() + 30
        while not second.assignment() and time.monotonic() < deadline:
            assert not second.poll(timeout_ms=200)
        assert len(second.assignment()) == 4
        assert _poll_until(second, 1, timeout=1.0) == []
        assert {tp: second.position(tp) for tp in partitions} == end_offsets

        with KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all") as late:
            late.send(topic, key=b"incident-late", value=b'{"key": -1, "seq": 100}').get(10)
        newer = _poll_until(second, 1, timeout=10)
        assert [record.key for record in newer] == [b"incident-late"]
    finally:
        second.close()


def _process_state(pid: int) -> str:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0]


def test_kafka_broker_pause_and_resume(kafka_server: KafkaServer, kafka_bootstrap: str) -> None:
    if not kafka_server.can_pause:
        pytest.skip(f"cannot pause a Kafka server of kind {kafka_server.kind!r}")
    topic = _create_topic(kafka_bootstrap, partitions=1)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=True, acks="all")
    try:
        producer.send(topic, b"before").get(timeout=10)
        with kafka_server.paused():
            if kafka_server.pid is not None and Path("/proc").is_dir():
                assert _process_state(kafka_server.pid) == "T"  # really stopped
            during = producer.send(topic, b"during")
            time.sleep(1.0)
            assert not during.is_done  # nobody answers while paused
        assert not kafka_server.is_paused
        during.get(timeout=30)  # delivered after resume
        producer.send(topic, b"after").get(timeout=10)
    finally:
        producer.close()

    consumer = _consumer(kafka_server, topic, group_id=None)
    try:
        values = [record.value for record in _poll_until(consumer, 3, timeout=15)]
    finally:
        consumer.close()
    assert values == [b"before", b"during", b"after"]
