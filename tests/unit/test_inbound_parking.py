"""Inbound parking, key checks, stalled partitions and worker health, on the in-memory broker.

The same paths run on the real broker in tests/integration/test_kafka_publishers.py.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from slatrail.application.service import SlatrailApplication
from slatrail.consumers.inbound import InboundConsumer
from slatrail.consumers.runtime import Supervisor
from slatrail.consumers.streams import Outgoing
from slatrail.infra.bootstrap import read_contracts
from slatrail.infra.logging import configure_logging
from slatrail.infra.rejections import KafkaDeadLetters
from slatrail.infra.store import open_application
from slatrail.infra.wire import decode
from tests.kafka_helpers import incident_stream, jsonl_bytes
from tests.memory_broker import MemoryBroker

EDGE = {"decode": decode, "dead_letters": KafkaDeadLetters()}
"""The edge's codecs, injected into the inbound consumer as the composition root does."""

INBOUND, RETRY, REJECTED = "in", "retry", "rejected"


class SteppingClock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def app(tmp_path: Path) -> Iterator[SlatrailApplication]:
    application = open_application(f"sqlite:///{tmp_path / 'store.db'}", read_contracts(None))
    yield application
    application.close()


def make(
    app: SlatrailApplication, broker: MemoryBroker, clock: SteppingClock, timeout_s: float = 60.0
) -> InboundConsumer:
    consumer = InboundConsumer(
        app,
        lambda: broker.source([INBOUND, RETRY], "g-in"),
        broker.sink,
        **EDGE,
        rejected_topic=REJECTED,
        retry_topic=RETRY,
        park_timeout_s=timeout_s,
        clock=clock,
        batch_size=100,
    )
    consumer.open()
    return consumer


def run(consumer: InboundConsumer, steps: int = 5) -> None:
    stop = threading.Event()
    for _ in range(steps):
        consumer.step(stop)


def send(broker: MemoryBroker, body: bytes, partition_key: bytes | None, key: Any = "same") -> None:
    """Publish `body` to the partition `partition_key` maps to, with Kafka key `key`."""
    record = broker.append(Outgoing(INBOUND, partition_key, body))
    if key != "same":
        log = broker.topic(INBOUND)[record.partition]
        log[-1] = type(record)(INBOUND, record.partition, record.offset, key, body)


def on_partition(broker: MemoryBroker, body: bytes, partition: int) -> None:
    log = broker.topic(INBOUND)[partition]
    from slatrail.consumers.streams import Record

    key = json.loads(body)["incident_id"].encode()
    log.append(Record(INBOUND, partition, len(log), key, body))


def history(app: SlatrailApplication, incident_id: str) -> list[str]:
    return [event.type.value for event in app.incident_events(incident_id)]


def letters(broker: MemoryBroker) -> list[dict[str, Any]]:
    return [json.loads(r.value or b"") for r in broker.records(REJECTED)]


def test_messages_that_arrive_before_their_incident_are_parked_then_recorded_in_order(
    app: SlatrailApplication,
) -> None:
    broker, clock = MemoryBroker(partitions=4), SteppingClock()
    messages = incident_stream(4, per_incident=4, prefix="P")  # one incident, 4 messages
    reported, *later = jsonl_bytes(messages)
    for body in later:  # triaged, acknowledged, awaiting_customer on partition 1 (read first)
        on_partition(broker, body, 1)
    consumer = make(app, broker, clock)
    run(consumer)
    assert history(app, "P-0") == []
    assert consumer.stats()["parked"] == 3 and consumer.parked_total == 3
    assert not broker.records(REJECTED)
    assert len(broker.records(RETRY)) == 3
    on_partition(broker, reported, 3)  # the reported comes later, on another partition
    run(consumer, 2)
    clock.advance(1.5)  # first retry after 1 s
    run(consumer, 3)
    assert history(app, "P-0") == ["reported", "triaged", "acknowledged", "awaiting_customer"]
    stats = consumer.stats()
    assert stats["parked"] == 0 and stats["unparked"] == 3 and stats["rejected"] == 0
    assert not broker.records(REJECTED)
    # every retry record is committed once settled
    committed = {tp: o for (g, tp), o in broker.committed.items() if tp[0] == RETRY}
    assert sum(committed.values()) == len(broker.records(RETRY))


def test_later_messages_of_a_parked_incident_wait_behind_it(app: SlatrailApplication) -> None:
    broker, clock = MemoryBroker(partitions=4), SteppingClock()
    reported, triaged, acknowledged = jsonl_bytes(incident_stream(3, per_incident=3, prefix="B"))
    on_partition(broker, triaged, 0)
    consumer = make(app, broker, clock)
    run(consumer)
    on_partition(broker, reported, 2)
    run(consumer)  # reported recorded; triaged still parked (not due)
    on_partition(broker, acknowledged, 2)
    run(consumer)
    assert history(app, "B-0") == ["reported"]  # acknowledged waits behind triaged
    assert consumer.stats()["parked"] == 2
    clock.advance(1.5)
    run(consumer)
    assert history(app, "B-0") == ["reported", "triaged", "acknowledged"]


def test_a_message_whose_incident_never_comes_is_dead_lettered_after_the_bound(
    app: SlatrailApplication,
) -> None:
    broker, clock = MemoryBroker(partitions=2), SteppingClock()
    _, triaged = jsonl_bytes(incident_stream(2, per_incident=2, prefix="N"))
    on_partition(broker, triaged, 0)
    consumer = make(app, broker, clock, timeout_s=10)
    run(consumer)
    for _ in range(12):  # retries at 1, 3, 7, 10 s (capped by the bound)
        clock.advance(1)
        run(consumer, 2)
    dead = letters(broker)
    assert len(dead) == 1
    letter = dead[0]
    assert letter["code"] == "first_event_not_reported"
    assert letter["topic"] == INBOUND and letter["partition"] == 0 and letter["offset"] == 0
    parking = letter["parking"]
    assert parking["timeout_s"] == 10 and parking["attempts"] >= 3
    assert parking["history"][0]["code"] == "first_event_not_reported"
    assert consumer.stats()["parked"] == 0 and consumer.park_expired == 1
    run(consumer, 3)
    assert len(letters(broker)) == 1  # once


def test_parked_messages_survive_a_restart_and_are_recorded_once(
    app: SlatrailApplication,
) -> None:
    broker, clock = MemoryBroker(partitions=4), SteppingClock()
    reported, triaged, ack = jsonl_bytes(incident_stream(3, per_incident=3, prefix="R"))
    on_partition(broker, triaged, 0)
    on_partition(broker, ack, 0)
    first = make(app, broker, clock)
    run(first)
    assert first.stats()["parked"] == 2
    first.close()  # a crash: nothing but the broker and the store remain
    on_partition(broker, reported, 1)
    second = make(app, broker, clock)
    run(second, 2)
    assert second.stats()["parked"] == 2  # read back from the retry topic
    clock.advance(2)
    run(second, 3)
    assert history(app, "R-0") == ["reported", "triaged", "acknowledged"]
    second.close()
    third = make(app, broker, clock)  # nothing left to redo
    run(third, 3)
    assert third.stats()["parked"] == 0 and third.counts.total == 0


def test_without_a_retry_topic_the_refusal_is_a_dead_letter_at_once(
    app: SlatrailApplication,
) -> None:
    broker = MemoryBroker(partitions=2)
    _, triaged = jsonl_bytes(incident_stream(2, per_incident=2, prefix="D"))
    on_partition(broker, triaged, 0)
    consumer = InboundConsumer(app, lambda: broker.source([INBOUND], "g"), broker.sink,
                               **EDGE, rejected_topic=REJECTED, clock=SteppingClock())  # fmt: skip
    consumer.open()
    run(consumer)
    assert [d["code"] for d in letters(broker)] == ["first_event_not_reported"]


def test_a_key_that_is_not_the_incident_id_is_processed_and_counted(
    app: SlatrailApplication, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("info", "json")
    broker, clock = MemoryBroker(partitions=2), SteppingClock()
    a, b, c = jsonl_bytes(incident_stream(3, per_incident=1, prefix="K"))
    send(broker, a, b"K-0")
    send(broker, b, b"K-1", key=b"someone-else")
    send(broker, c, None)
    consumer = make(app, broker, clock)
    run(consumer)
    assert consumer.counts.accepted == 3
    assert consumer.stats()["key_mismatch"] == 2
    captured = capsys.readouterr()
    logged = [json.loads(x) for x in (captured.out + captured.err).splitlines() if x[:1] == "{"]
    mismatches = [e for e in logged if e["event"] == "key_mismatch"]
    assert [(e["key"], e["incident_id"]) for e in mismatches] == [
        ("someone-else", "K-1"), (None, "K-2")]  # fmt: skip
    assert all(e["topic"] == INBOUND and "partition" in e and "offset" in e for e in mismatches)


def test_an_undecodable_batch_stalls_its_partition_only_and_health_says_where(
    app: SlatrailApplication,
) -> None:
    broker, clock = MemoryBroker(partitions=2), SteppingClock()
    bodies = jsonl_bytes(incident_stream(20, per_incident=1, prefix="S"))
    for index, body in enumerate(bodies):
        on_partition(broker, body, index % 2)
    broker.undecodable[(INBOUND, 1, 3)] = "UnsupportedCodecError('zstd')"
    consumer = make(app, broker, clock)
    run(consumer)
    assert consumer.counts.accepted == 10 + 3  # partition 0 whole, partition 1 up to offset 3
    state, reason = consumer.health()
    assert state == "stalled"
    assert reason is not None and "in:1" in reason and "offset 3" in reason and "zstd" in reason
    stalled = consumer.stats()["stalled_partitions"]
    assert stalled == [{"topic": INBOUND, "partition": 1, "offset": 3,
                        "error": "UnsupportedCodecError('zstd')"}]  # fmt: skip
    assert broker.committed[("g-in", (INBOUND, 1))] == 3  # never past the bad batch
    assert not letters(broker)


# -- supervisor ------------------------------------------------------------------------------


class FailsAtFirstBatch:
    """Opens fine, fails in its first step: the crash loop the back-off must slow down."""

    name = "looping"

    def __init__(self) -> None:
        self.opened = 0

    def open(self) -> None:
        self.opened += 1

    def step(self, stop: threading.Event) -> int:
        raise ConnectionError("store unreachable")

    def close(self) -> None:
        pass

    def stats(self) -> dict[str, Any]:
        return {"lag": 0}


def test_backoff_grows_for_a_worker_that_opens_then_fails_and_health_never_says_running(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("info", "json")
    worker = FailsAtFirstBatch()
    supervisor = Supervisor([worker], health_interval_s=0.05, min_backoff_s=0.02,
                            max_backoff_s=0.16)  # fmt: skip
    supervisor.start()
    threading.Event().wait(1.2)
    supervisor.stop()
    assert supervisor.join(5)
    captured = capsys.readouterr()
    lines = [json.loads(x) for x in (captured.out + captured.err).splitlines() if x[:1] == "{"]
    delays = [e["restart_in_s"] for e in lines if e["event"] == "worker_failed"]
    assert delays[:5] == [0.02, 0.04, 0.08, 0.16, 0.16]
    health = [e for e in lines if e["event"] == "health"]
    assert health and all(e["state"] != "running" for e in health)
    assert {e["state"] for e in health} <= {"starting", "degraded", "stalled"}
    assert health[-1]["state"] == "stalled" and "store unreachable" in health[-1]["reason"]


def test_health_reports_the_worker_own_state_and_recent_failures() -> None:
    class Idle:
        name = "idle"
        verdict: tuple[str, str | None] = ("degraded", "holds no partitions")

        def open(self) -> None: ...

        def step(self, stop: threading.Event) -> int:
            stop.wait(0.01)
            return 0

        def close(self) -> None: ...

        def stats(self) -> dict[str, Any]:
            return {}

        def health(self) -> tuple[str, str | None]:
            return self.verdict

    worker = Idle()
    supervisor = Supervisor([worker], health_interval_s=0)
    supervisor.start()
    threading.Event().wait(0.2)
    assert (supervisor.states[0].state, supervisor.states[0].reason) == worker.verdict
    worker.verdict = ("running", None)
    threading.Event().wait(0.1)
    assert supervisor.states[0].state == "running" and supervisor.states[0].reason is None
    supervisor.stop()
    assert supervisor.join(5)


def test_a_consumer_holding_no_partitions_is_starting_then_degraded_never_running_with_lag_0(
    app: SlatrailApplication,
) -> None:
    empty = MemoryBroker(partitions=0)  # a group member that got no partitions
    consumer = make(app, empty, SteppingClock())
    run(consumer, 2)
    assert consumer.health() == ("starting", "joining the consumer group")
    consumer._opened_at -= 60  # a minute later, still nothing
    state, reason = consumer.health()
    assert state == "degraded" and reason is not None and "no partitions" in reason
    assert consumer.stats()["lag"] is None
    consumer.close()
    assert consumer.stats()["lag"] is None


def test_submit_records_is_the_inbound_path_for_messages_with_an_origin(
    app: SlatrailApplication,
) -> None:
    from slatrail.consumers.inbound import submit_records
    from slatrail.consumers.streams import Record

    broker = MemoryBroker(partitions=2)
    reported, triaged = jsonl_bytes(incident_stream(2, per_incident=2, prefix="S"))
    origin = [Record(INBOUND, 1, 7, b"S-0", triaged), Record(INBOUND, 0, 3, b"S-0", reported)]
    outcomes = submit_records(
        app, broker.sink(), origin, **EDGE, rejected_topic=REJECTED, clock=SteppingClock()
    )
    assert outcomes is not None
    assert [o.status for o in outcomes] == ["rejected", "accepted"]
    [letter] = letters(broker)
    assert (letter["code"], letter["partition"], letter["offset"]) == (
        "first_event_not_reported", 1, 7)  # fmt: skip
    again = submit_records(
        app, broker.sink(), origin[1:], **EDGE, rejected_topic=REJECTED, clock=SteppingClock()
    )
    assert again is not None and [o.status for o in again] == ["duplicate"]


def test_backoff_doubles_while_failing_fast_and_starts_over_after_a_stable_run() -> None:
    from slatrail.consumers.runtime import Backoff

    backoff = Backoff(1.0, 15.0, stable_after_s=30.0)
    assert [backoff.failed(up_s=0.2) for _ in range(6)] == [1, 2, 4, 8, 15, 15]
    assert backoff.failed(up_s=45.0) == 1  # it had run fine for a while
    assert backoff.failed(up_s=1.0) == 2


def test_a_message_parked_again_after_a_redelivery_is_one_entry_and_its_records_are_committed(
    app: SlatrailApplication,
) -> None:
    broker, clock = MemoryBroker(partitions=2), SteppingClock()
    reported, triaged = jsonl_bytes(incident_stream(2, per_incident=2, prefix="T"))
    on_partition(broker, triaged, 0)
    first = make(app, broker, clock)
    run(first)
    # A crash after the parked copy was acknowledged but before the inbound commit:
    broker.committed.pop(("g-in", (INBOUND, 0)))
    first.close()
    second = make(app, broker, clock)
    run(second, 4)
    assert len(broker.records(RETRY)) == 2  # parked twice …
    assert second.stats()["parked"] == 1  # … one message waiting
    on_partition(broker, reported, 1)
    for _ in range(3):
        clock.advance(2)
        run(second, 2)
    assert history(app, "T-0") == ["reported", "triaged"]
    assert second.stats()["parked"] == 0
    retry_committed = sum(o for (_, tp), o in broker.committed.items() if tp[0] == RETRY)
    assert retry_committed == len(broker.records(RETRY))  # every copy settled


def test_parking_is_bounded_in_size_too(app: SlatrailApplication) -> None:
    broker, clock = MemoryBroker(partitions=1), SteppingClock()
    stream = incident_stream(10, per_incident=2)
    orphans = jsonl_bytes([m for m in stream if m["type"] == "triaged"])
    for body in orphans:  # five triaged of five unknown incidents
        on_partition(broker, body, 0)
    consumer = InboundConsumer(app, lambda: broker.source([INBOUND, RETRY], "g"), broker.sink,
                               **EDGE, rejected_topic=REJECTED, retry_topic=RETRY, clock=clock,
                               max_parked=3)  # fmt: skip
    consumer.open()
    run(consumer)
    assert consumer.stats()["parked"] == 3
    assert [d["code"] for d in letters(broker)] == ["first_event_not_reported"] * 2


def test_a_health_line_keeps_a_stats_key_that_shadows_the_supervisors_as_worker_key() -> None:
    """A worker's `stats()` naming `state` once killed the health thread (a TypeError from
    structlog): the line is now written, the worker's value kept as `worker_state`."""
    from structlog.testing import capture_logs

    class Shadowing:
        name = "shadowing"

        def open(self) -> None: ...

        def step(self, stop: threading.Event) -> int:
            stop.wait(0.01)
            return 1

        def close(self) -> None: ...

        def stats(self) -> dict[str, Any]:
            return {"state": "follower", "event": "mine", "pending": 3}

    supervisor = Supervisor([Shadowing()], health_interval_s=0.05)
    with capture_logs() as logs:
        supervisor.start()
        threading.Event().wait(0.3)
        supervisor.stop()
        assert supervisor.join(5)
    lines = [line for line in logs if line["event"] == "health"]
    assert len(lines) >= 2, logs  # the thread lived on after its first line
    assert lines[0]["state"] == "running" and lines[0]["worker_state"] == "follower"
    assert lines[0]["worker_event"] == "mine" and lines[0]["pending"] == 3
