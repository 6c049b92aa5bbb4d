"""Helpers for the Kafka pipeline tests, the in-memory consumer tests and bench/pipeline.py.

(The `pipeline` and `pipeline_factory` fixtures built on them are in tests/conftest.py.)

* `incident_stream(n)` — n valid `slatrail.incident/v1` messages, many incidents interleaved,
  each incident's messages in lifecycle order.
* `serve_process(...)` — `slatrail serve` as a subprocess (kill -9 / SIGTERM-able).
* `read_topic(...)` — everything in a topic, via an assigned (group-less) consumer.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.servers import KafkaServer

SCHEMA = "slatrail.incident/v1"
CUSTOMERS = ("acme-rtc", "brightcall", "chatnest")

_LIFECYCLE: tuple[tuple[str, dict[str, Any]], ...] = (
    ("reported", {}),
    ("triaged", {"priority": "P2", "reason": "partial outage"}),
    ("acknowledged", {"note": "looking"}),
    ("awaiting_customer", {"reason": "need logs"}),
    ("customer_responded", {"note": "logs attached"}),
    ("workaround_provided", {"description": "restart the gateway"}),
    ("escalated", {"level": 2, "reason": "customer request"}),
    ("resolved", {"resolution": "patched"}),
    ("reopened", {"reason": "came back"}),
    ("resolved", {"resolution": "patched again"}),
)


def incident_stream(
    n_messages: int,
    *,
    per_incident: int = len(_LIFECYCLE),
    prefix: str | None = None,
    start: datetime | None = None,
    width: int = 50,
) -> list[dict[str, Any]]:
    """n valid messages: `width` incidents in flight at a time, round robin."""
    prefix = prefix or f"INC-{uuid.uuid4().hex[:6]}"
    start = start or (datetime.now(UTC) - timedelta(days=2)).replace(microsecond=0)
    per_incident = max(1, min(per_incident, len(_LIFECYCLE)))
    incidents = -(-n_messages // per_incident)
    out: list[dict[str, Any]] = []
    for block in range(0, incidents, width):
        ids = range(block, min(block + width, incidents))
        for step in range(per_incident):
            for i in ids:
                if len(out) >= n_messages:
                    return out
                kind, data = _LIFECYCLE[step]
                if kind == "reported":
                    data = {
                        "customer": CUSTOMERS[i % len(CUSTOMERS)],
                        "title": f"calls drop #{i}",
                        "priority": "P2",
                        "outage": i % 7 == 0,
                    }
                at = start + timedelta(seconds=i * 7, minutes=step * 11)
                out.append(
                    {
                        "schema": SCHEMA,
                        "message_id": f"{prefix}-{i}-{step}",
                        "incident_id": f"{prefix}-{i}",
                        "type": kind,
                        "occurred_at": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "actor": "li.wei",
                        "source": "portal",
                        "data": data,
                    }
                )
    return out


def jsonl_bytes(messages: list[dict[str, Any]]) -> list[bytes]:
    return [json.dumps(m, separators=(",", ":")).encode() for m in messages]


@dataclass
class ServeProcess:
    proc: subprocess.Popen[bytes]
    log_path: Path

    def kill9(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, timeout: float = 40) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_events(self) -> list[dict[str, Any]]:
        out = []
        for text in self.log_text().splitlines():
            with contextlib.suppress(ValueError):
                out.append(json.loads(text))
        return out


def fast_group_env(kafka: KafkaServer) -> dict[str, str]:
    """Client timings for quick group joins on the test broker (see tests/servers.py)."""
    group = kafka.consumer_group_settings
    return {
        "SLATRAIL_KAFKA_SESSION_TIMEOUT_MS": str(group["session_timeout_ms"]),
        "SLATRAIL_KAFKA_HEARTBEAT_INTERVAL_MS": str(group["heartbeat_interval_ms"]),
        "SLATRAIL_KAFKA_MAX_POLL_INTERVAL_MS": "30000",
        "SLATRAIL_HEALTH_INTERVAL_S": "2",
    }


@dataclass(frozen=True)
class PipelineEnv:
    """Unique topics/groups and databases for one test."""

    kafka: KafkaServer
    store: str
    read_model: str
    topics: dict[str, str]
    groups: dict[str, str]
    workdir: Path
    partitions: int = 4
    spawned: list[ServeProcess] = field(default_factory=list)

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            **os.environ,
            **fast_group_env(self.kafka),
            "SLATRAIL_STORE": self.store,
            "SLATRAIL_READ_MODEL": self.read_model,
            "SLATRAIL_KAFKA_BOOTSTRAP": self.kafka.bootstrap,
            "SLATRAIL_TOPIC_PARTITIONS": str(self.partitions),
            "SLATRAIL_LOG_FORMAT": "json",
            "SLATRAIL_TOPIC_INBOUND": self.topics["inbound"],
            "SLATRAIL_TOPIC_EVENTS": self.topics["events"],
            "SLATRAIL_TOPIC_REJECTED": self.topics["rejected"],
            "SLATRAIL_TOPIC_ALERTS": self.topics["alerts"],
            "SLATRAIL_TOPIC_RETRY": self.topics["retry"],
            "SLATRAIL_GROUP_INBOUND": self.groups["inbound"],
            "SLATRAIL_GROUP_PROJECTIONS": self.groups["projections"],
            # the alert timer's offsets and its leader lease: one group per test, or a serve
            # killed by an earlier test would still hold the lease on the shared broker
            "SLATRAIL_GROUP_ALERTS": self.groups["alerts"],
        }
        env.pop("SLATRAIL_CONTRACTS", None)
        env.update(extra)
        return env

    def settings_overrides(self) -> dict[str, Any]:
        group = self.kafka.consumer_group_settings
        return {
            "store": self.store,
            "read_model": self.read_model,
            "kafka_bootstrap": self.kafka.bootstrap,
            "topic_partitions": self.partitions,
            "topic_inbound": self.topics["inbound"],
            "topic_events": self.topics["events"],
            "topic_rejected": self.topics["rejected"],
            "topic_alerts": self.topics["alerts"],
            "topic_retry": self.topics["retry"],
            "group_inbound": self.groups["inbound"],
            "group_projections": self.groups["projections"],
            "group_alerts": self.groups["alerts"],
            "kafka_session_timeout_ms": group["session_timeout_ms"],
            "kafka_heartbeat_interval_ms": group["heartbeat_interval_ms"],
            "kafka_max_poll_interval_ms": 30_000,
            "health_interval_s": 2.0,
        }

    def serve(self, name: str = "serve", *args: str, **extra_env: str) -> ServeProcess:
        log_path = self.workdir / f"{name}-{uuid.uuid4().hex[:6]}.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "slatrail.infra.cli", "serve", *args],
                env=self.env(**extra_env),
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
            )
        self.spawned.append(ServeProcess(proc, log_path))
        return self.spawned[-1]

    def cli(
        self, *args: str, input: bytes | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [sys.executable, "-m", "slatrail.infra.cli", *args],
            env=self.env(),
            input=input,
            capture_output=True,
            cwd=self.workdir,
            timeout=timeout,
            check=False,
        )


def read_topic(
    bootstrap: str, topic: str, *, expect: int | None = None, timeout: float = 60.0
) -> list[Any]:
    """All records of a topic (every partition, from the beginning), waiting for `expect`."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=32 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
    )
    try:
        deadline = time.monotonic() + timeout
        partitions: set[int] = set()
        while not partitions and time.monotonic() < deadline:
            partitions = consumer.partitions_for_topic(topic) or set()
            if not partitions:
                time.sleep(0.2)
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        out: list[Any] = []
        idle_since = time.monotonic()
        while time.monotonic() < deadline:
            batch = consumer.poll(timeout_ms=300)
            got = sum(len(v) for v in batch.values())
            for records in batch.values():
                out.extend(records)
            if got:
                idle_since = time.monotonic()
            # The end is the fetch high watermark: Tansu answers end_offsets() with the last
            # batch's base offset + 1 (short of its last records); and duplicates after kills
            # make `expect` records arrive before the tail does.
            done = all(
                (high := consumer.highwater(tp)) is not None and consumer.position(tp) >= high
                for tp in tps
            )
            enough = expect is not None and len(out) >= expect
            settled = expect is None and time.monotonic() - idle_since > 0.5
            if done and (enough or settled):
                return out
        raise AssertionError(
            f"read_topic({topic}): {len(out)} records after {timeout:.0f} s, expected {expect}"
        )
    finally:
        consumer.close()


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.25) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


@contextlib.contextmanager
def running(proc: ServeProcess) -> Iterator[ServeProcess]:
    try:
        yield proc
    finally:
        if proc.proc.poll() is None:
            with contextlib.suppress(Exception):
                proc.terminate(10)


# -- checking a pipeline's end state ---------------------------------------------------------


def producer(bootstrap: str, **overrides: Any) -> Any:
    from kafka import KafkaProducer

    config: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 5,
        "max_request_size": 8 * 1024 * 1024,
        **overrides,
    }
    return KafkaProducer(**config)


def publish_messages(
    bootstrap: str, topic: str, bodies: list[bytes], *, rate: float | None = None
) -> None:
    """Publish keyed by incident_id (optionally at `rate` messages/s); waits for the acks."""
    from slatrail.infra.commands.publish import incident_key

    client = producer(bootstrap)
    try:
        started = time.monotonic()
        for index, body in enumerate(bodies):
            if rate:
                delay = started + index / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            client.send(topic, value=body, key=incident_key(body))
        client.flush(timeout=120)
    finally:
        client.close()


def open_store(url: str) -> Any:
    from slatrail.infra.bootstrap import read_contracts
    from slatrail.infra.store import open_application

    return open_application(url, read_contracts(None))


def event_count(store_url: str) -> int:
    app = open_store(store_url)
    try:
        return sum(1 for _ in app.all_events())
    finally:
        app.close()


def read_model_count(url: str) -> int:
    from slatrail.infra.read_model_store import ReadModelStore
    from slatrail.projections.read_models import AUDIT, SLA

    store = ReadModelStore(url)
    try:
        return min(store.counts(SLA)[1], store.counts(AUDIT)[1])
    finally:
        store.close()


def assert_pipeline_consistent(
    pipe: PipelineEnv, accepted_message_ids: set[str], *, timeout: float = 90.0
) -> dict[str, Any]:
    """The guarantees of topics.md, checked on a quiescent pipeline; returns a few figures."""
    from slatrail.infra.kafka_envelope import decode_envelope
    from slatrail.infra.read_model_store import ReadModelStore
    from slatrail.projections.read_models import AUDIT, SLA, STORE_SOURCE, TrackedEvent

    expected = len(accepted_message_ids)
    assert wait_until(lambda: event_count(pipe.store) >= expected, timeout), (
        f"store has {event_count(pipe.store)} events, expected {expected}"
    )
    assert wait_until(lambda: read_model_count(pipe.read_model) >= expected, timeout), (
        f"read models have {read_model_count(pipe.read_model)} events, expected {expected}"
    )
    app = open_store(pipe.store)
    try:
        stored = list(app.all_events())
        histories = app.histories()
    finally:
        app.close()
    # Every accepted message recorded exactly once.
    ids = [event.message_id for _, event in stored]
    assert len(ids) == len(set(ids)), "a message was recorded twice"
    assert set(ids) == accepted_message_ids
    # incidents.events: every recorded event, no gap, in order per incident (duplicates ok).
    records = read_topic(pipe.kafka.bootstrap, pipe.topics["events"], expect=len(stored))
    by_store = {(e.incident_id, e.position): e for _, e in stored}
    seen: dict[str, int] = {}
    partition_of: dict[str, int] = {}
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        _, event = decode_envelope(r.value)
        assert by_store[(event.incident_id, event.position)] == event
        assert partition_of.setdefault(event.incident_id, r.partition) == r.partition
        top = seen.get(event.incident_id, 0)
        assert event.position <= top + 1, (
            f"gap in incidents.events: {event.incident_id} position {event.position} after {top}"
        )
        seen[event.incident_id] = max(top, event.position)
    missing = {i: (seen.get(i), len(h)) for i, h in histories.items() if seen.get(i) != len(h)}
    assert not missing, f"incidents.events lacks the last events of {missing}"
    # Read models equal a fresh rebuild from the store.
    live = ReadModelStore(pipe.read_model)
    rebuilt = ReadModelStore("sqlite:///:memory:")
    try:
        rebuilt.apply([TrackedEvent(STORE_SOURCE, nid, event) for nid, event in stored])
        assert live.histories(SLA) == rebuilt.histories(SLA) == histories
        assert live.histories(AUDIT) == rebuilt.histories(AUDIT) == histories
    finally:
        live.close()
        rebuilt.close()
    return {
        "events": len(stored),
        "relayed": len(records),
        "duplicates": len(records) - len(stored),
    }


def assert_ledger_kept(pipeline: PipelineEnv) -> None:
    """serve's projection consumer kept the SLA ledger table: current, and equal to the ledger
    computed from the store (docs/scale.md#the-sla-ledger)."""
    from slatrail.infra.bootstrap import read_contracts
    from slatrail.infra.ledger_check import freshness
    from slatrail.infra.read_model_store import ReadModelStore
    from slatrail.infra.store import open_application
    from slatrail.projections.ledger import incident_ledger

    app = open_application(pipeline.store, read_contracts(None), read_only=True)
    store = ReadModelStore(pipeline.read_model)
    try:
        book = app.contract_book()
        assert book is not None
        assert freshness(store, app, book).current
        histories = sorted(
            app.histories().values(), key=lambda h: (h[0].occurred_at, h[0].incident_id)
        )
        computed = [i for events in histories for i in incident_ledger(events, book)]
        assert computed and list(store.ledger_intervals()) == computed
    finally:
        store.close()
        app.close()
