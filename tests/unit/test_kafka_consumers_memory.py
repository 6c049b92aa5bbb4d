"""The Kafka workers driven by the in-memory broker (same Source/Sink interface as Kafka)."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from slatrail.application.service import SlatrailApplication
from slatrail.consumers.inbound import InboundConsumer
from slatrail.consumers.projections import ProjectionConsumer
from slatrail.consumers.relay import EventRelay
from slatrail.consumers.runtime import Supervisor
from slatrail.consumers.streams import DeliveryError, OnAssign, Record
from slatrail.domain.messages import MAX_MESSAGE_BYTES
from slatrail.infra.bootstrap import read_contracts
from slatrail.infra.commands.publish import incident_key
from slatrail.infra.kafka_envelope import (
    ENVELOPE_SCHEMA,
    ENVELOPES,
    NOTIFICATION_HEADER,
    EnvelopeError,
    decode_envelope,
    encode_envelope,
)
from slatrail.infra.kafka_outbox import Outbox
from slatrail.infra.read_model_store import ReadModelStore, default_read_model_url
from slatrail.infra.rejections import KafkaDeadLetters
from slatrail.infra.store import open_application
from slatrail.infra.wire import decode
from slatrail.projections.read_models import AUDIT, SLA, STORE_SOURCE, TrackedEvent, kafka_source
from tests.kafka_helpers import incident_stream, jsonl_bytes
from tests.memory_broker import MemoryBroker

EDGE = {"decode": decode, "dead_letters": KafkaDeadLetters()}
"""The edge's codecs, injected into the inbound consumer as the composition root does."""

INBOUND, EVENTS, REJECTED = "in", "ev", "rej"


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store.db'}"


@pytest.fixture
def app(store_url: str) -> Iterator[SlatrailApplication]:
    application = open_application(store_url, read_contracts(None))
    yield application
    application.close()


@pytest.fixture
def read_models(tmp_path: Path) -> Iterator[ReadModelStore]:
    store = ReadModelStore(f"sqlite:///{tmp_path / 'read.db'}")
    yield store
    store.close()


@pytest.fixture
def broker() -> MemoryBroker:
    return MemoryBroker(partitions=4)


def now() -> datetime:
    return datetime.now(UTC)


def make_inbound(app: SlatrailApplication, broker: MemoryBroker) -> InboundConsumer:
    consumer = InboundConsumer(
        app,
        lambda: broker.source([INBOUND], "g-in"),
        broker.sink,
        **EDGE,
        rejected_topic=REJECTED,
        clock=now,
        batch_size=100,
    )
    consumer.open()
    return consumer


def make_relay(app: SlatrailApplication, store_url: str, broker: MemoryBroker) -> EventRelay:
    relay = EventRelay(
        lambda: Outbox(app, store_url, name=f"relay:{EVENTS}"),
        broker.sink,
        envelopes=ENVELOPES,
        topic=EVENTS,
        batch_size=100,
        poll_interval_s=0,
    )
    relay.open()
    return relay


def make_projections(read_models: ReadModelStore, broker: MemoryBroker) -> ProjectionConsumer:
    def source(on_assign: OnAssign) -> Any:
        return broker.source([EVENTS], "g-proj", on_assign)

    consumer = ProjectionConsumer(read_models, source, envelopes=ENVELOPES, batch_size=100)
    consumer.open()
    return consumer


def drain(step: Callable[[threading.Event], int], limit: int = 1000) -> int:
    stop, total = threading.Event(), 0
    for _ in range(limit):
        n = step(stop)
        if n == 0:
            return total
        total += n
    raise AssertionError("did not drain")


def publish(broker: MemoryBroker, messages: list[bytes]) -> None:
    for body in messages:
        broker.produce(INBOUND, body, incident_key(body))


def dead_letters(broker: MemoryBroker) -> list[dict[str, Any]]:
    return [json.loads(r.value or b"") for r in broker.records(REJECTED)]


# -- inbound --------------------------------------------------------------------------------


def test_inbound_records_valid_messages_and_commits_after_the_batch(
    app: SlatrailApplication, broker: MemoryBroker
) -> None:
    messages = jsonl_bytes(incident_stream(250, prefix="A"))
    publish(broker, messages)
    consumer = make_inbound(app, broker)
    assert drain(consumer.step) == 250
    assert consumer.counts.accepted == 250
    assert sum(1 for _ in app.all_events()) == 250
    committed = sum(o for (g, _), o in broker.committed.items() if g == "g-in")
    assert committed == 250
    assert broker.records(REJECTED) == []


def test_inbound_dead_letters_every_kind_of_bad_input_with_its_code(
    app: SlatrailApplication, broker: MemoryBroker
) -> None:
    good = jsonl_bytes(incident_stream(3, prefix="B"))
    wrong_schema = json.dumps({"schema": "other/v9", "incident_id": "B-x"}).encode()
    unknown_field = json.dumps(
        {**json.loads(good[1]), "message_id": "B-uf", "colour": "red"}
    ).encode()
    oversize = b'{"incident_id":"B-big","pad":"' + b"x" * MAX_MESSAGE_BYTES + b'"}'
    bad = {
        b"\xff\xfe\x00garbage": "invalid_encoding",
        b"not json at all": "invalid_json",
        b"[1,2,3]": "not_an_object",
        wrong_schema: "unsupported_schema",
        unknown_field: "unknown_field",
        oversize: "too_large",
    }
    publish(broker, [good[0], *bad, good[1], good[2]])
    consumer = make_inbound(app, broker)
    drain(consumer.step)
    assert consumer.counts.accepted == 3
    letters = dead_letters(broker)
    assert sorted(d["code"] for d in letters) == sorted(bad.values())
    by_code = {d["code"]: d for d in letters}
    assert base64.b64decode(by_code["invalid_encoding"]["raw_base64"]) == b"\xff\xfe\x00garbage"
    assert by_code["invalid_json"]["raw"] == "not json at all"
    assert by_code["unsupported_schema"]["message"] == json.loads(wrong_schema)
    assert by_code["too_large"]["message"]["incident_id"] == "B-big"
    for letter in letters:
        assert {"reason", "rejected_at", "topic", "partition", "offset"} <= set(letter)
        assert letter["topic"] == INBOUND
    keys = {r.key for r in broker.records(REJECTED)}
    assert b"B-x" in keys and b"B-big" in keys


def test_inbound_domain_rejections_are_dead_lettered_keyed_by_incident(
    app: SlatrailApplication, broker: MemoryBroker
) -> None:
    messages = incident_stream(3, prefix="C")
    orphan = {**messages[1], "incident_id": "C-orphan", "message_id": "C-o"}
    publish(broker, jsonl_bytes([*messages, orphan]))
    consumer = make_inbound(app, broker)
    drain(consumer.step)
    (letter,) = dead_letters(broker)
    assert letter["code"] == "first_event_not_reported"
    assert broker.records(REJECTED)[0].key == b"C-orphan"


def test_inbound_redelivery_after_a_crash_records_nothing_twice(
    app: SlatrailApplication, broker: MemoryBroker
) -> None:
    publish(broker, [*jsonl_bytes(incident_stream(120, prefix="D")), b"nope"])
    consumer = make_inbound(app, broker)
    drain(consumer.step)
    broker.committed.clear()  # as if the commit never happened (crash before it)
    again = make_inbound(app, broker)
    drain(again.step)
    assert again.counts.duplicate == 120 and again.counts.accepted == 0
    assert sum(1 for _ in app.all_events()) == 120
    assert [d["code"] for d in dead_letters(broker)] == ["invalid_json", "invalid_json"]


def test_inbound_does_not_commit_until_dead_letters_are_acknowledged(
    app: SlatrailApplication, broker: MemoryBroker
) -> None:
    publish(broker, [b"bad 1", b"bad 2"])
    consumer = make_inbound(app, broker)
    source = consumer.source
    assert source is not None
    records = source.poll(0, 100)
    broker.down = True
    stop = threading.Event()
    stop.set()  # stopping while the broker is away: give up without committing
    assert consumer.handle(records, stop) is False
    assert broker.committed == {}
    broker.down = False
    consumer.sink = broker.sink()
    assert consumer.handle(records, threading.Event()) is True
    assert len(dead_letters(broker)) == 2
    assert sum(broker.committed.values()) == 2


def test_inbound_failed_delivery_raises_so_the_batch_is_redelivered(
    app: SlatrailApplication, broker: MemoryBroker
) -> None:
    publish(broker, [b"bad"])
    consumer = make_inbound(app, broker)
    sink = broker.sink()
    sink.fail_next.append(ConnectionError("broker gone"))
    consumer.sink = sink
    with pytest.raises(DeliveryError):
        consumer.step(threading.Event())
    assert broker.committed == {}


def test_inbound_truncates_a_dead_letter_the_broker_finds_too_large(
    app: SlatrailApplication, broker: MemoryBroker
) -> None:
    broker.max_message_bytes = 200_000
    publish(broker, [b"z" * 300_000])
    broker.max_message_bytes = 100_000
    consumer = make_inbound(app, broker)
    drain(consumer.step)
    (letter,) = dead_letters(broker)
    assert letter["code"] == "invalid_json" and letter["truncated"] is True
    assert letter["raw_bytes"] == 300_000 and letter["offset"] == 0


# -- relay ----------------------------------------------------------------------------------


def record(app: SlatrailApplication, messages: list[dict[str, Any]]) -> None:
    from slatrail.infra.wire import decode

    outcomes = app.record([decode(json.dumps(m)) for m in messages], now=now())
    assert all(o.status == "accepted" for o in outcomes)


def relayed(broker: MemoryBroker) -> list[tuple[int, Any]]:
    return [decode_envelope(r.value) for r in broker.records(EVENTS)]


def test_relay_publishes_every_event_in_order_keyed_by_incident(
    app: SlatrailApplication, store_url: str, broker: MemoryBroker
) -> None:
    record(app, incident_stream(230, prefix="E"))
    relay = make_relay(app, store_url, broker)
    assert drain(relay.step) == 230
    stored = list(app.all_events())
    got = relayed(broker)
    assert sorted(got, key=lambda x: x[0]) == stored
    for r in broker.records(EVENTS):
        notification_id, event = decode_envelope(r.value)
        assert r.key == event.incident_id.encode()
        assert dict(r.headers)[NOTIFICATION_HEADER] == str(notification_id).encode()
    per_incident: dict[str, list[int]] = {}
    for _, event in got:
        per_incident.setdefault(event.incident_id, []).append(event.position)
    assert all(p == list(range(1, len(p) + 1)) for p in per_incident.values())
    assert relay.outbox is not None and relay.outbox.position() == stored[-1][0]


def test_relay_stats_say_where_its_time_went(
    app: SlatrailApplication, store_url: str, broker: MemoryBroker
) -> None:
    record(app, incident_stream(30, prefix="S"))
    relay = make_relay(app, store_url, broker)
    drain(relay.step)
    seconds = relay.stats()["seconds"]
    assert set(seconds) == {"read", "wait", "send", "flush", "save"}
    assert all(value >= 0 for value in seconds.values())
    assert relay.seconds["read"] > 0 and relay.seconds["save"] > 0


def test_the_relay_on_sqlite_wakes_when_another_connection_commits_not_after_its_interval(
    app: SlatrailApplication, store_url: str
) -> None:
    outbox = Outbox(app, store_url, name=f"relay:{EVENTS}")
    started = time.monotonic()
    outbox.wait(0.05)  # nothing recorded: the whole interval
    assert time.monotonic() - started >= 0.045
    writer = threading.Timer(0.05, record, (app, incident_stream(1, prefix="W")))
    writer.start()
    started = time.monotonic()
    outbox.wait(10.0)
    writer.join()
    assert time.monotonic() - started < 5.0
    record(app, incident_stream(1, prefix="X"))  # committed while the relay was reading
    started = time.monotonic()
    outbox.wait(10.0)
    assert time.monotonic() - started < 5.0
    outbox.close()


def test_relay_resumes_from_the_acknowledged_position_after_a_failure(
    app: SlatrailApplication, store_url: str, broker: MemoryBroker
) -> None:
    record(app, incident_stream(150, prefix="F"))
    relay = make_relay(app, store_url, broker)
    relay.step(threading.Event())  # first 100 acknowledged and tracked
    failing = broker.sink()
    failing.fail_next.append(ConnectionError("lost"))
    relay.sink = failing
    with pytest.raises(DeliveryError):
        relay.step(threading.Event())
    relay.close()
    restarted = make_relay(app, store_url, broker)
    assert drain(restarted.step) == 50
    assert len(relayed(broker)) == 150
    record(app, incident_stream(20, prefix="G"))
    assert drain(restarted.step) == 20


def test_only_one_relay_leads_per_store(
    app: SlatrailApplication, store_url: str, broker: MemoryBroker
) -> None:
    record(app, incident_stream(10, prefix="H"))
    first = make_relay(app, store_url, broker)
    second = make_relay(app, store_url, broker)
    stop = threading.Event()
    assert first.step(stop) == 10
    waiting = threading.Timer(0.05, stop.set)
    waiting.start()
    assert second.step(stop) == 0 and second.leader is False
    first.close()
    assert second.step(threading.Event()) == 0  # leads now, nothing new
    assert second.leader is True
    second.close()


# -- projections ----------------------------------------------------------------------------


def pipeline_through(
    app: SlatrailApplication, store_url: str, broker: MemoryBroker, messages: list[dict[str, Any]]
) -> None:
    record(app, messages)
    drain(make_relay(app, store_url, broker).step)


def test_projections_equal_the_store_and_sla_view(
    app: SlatrailApplication, store_url: str, broker: MemoryBroker, read_models: ReadModelStore
) -> None:
    pipeline_through(app, store_url, broker, incident_stream(300, prefix="P"))
    consumer = make_projections(read_models, broker)
    drain(consumer.step)
    assert read_models.histories(SLA) == app.histories()
    assert read_models.histories(AUDIT) == app.histories()
    some = next(iter(app.histories()))
    assert read_models.incident_events(some) == app.incident_events(some)
    acme = read_models.histories(SLA, customer="acme-rtc")
    assert acme and all(v[0].data["customer"] == "acme-rtc" for v in acme.values())
    positions = read_models.positions(SLA)
    assert sum(p + 1 for p in positions.values()) == 300


def test_projections_apply_redelivered_and_duplicated_events_once(
    app: SlatrailApplication, store_url: str, broker: MemoryBroker, read_models: ReadModelStore
) -> None:
    pipeline_through(app, store_url, broker, incident_stream(80, prefix="Q"))
    # The relay re-sends some events (a crash before it tracked its position):
    for r in broker.records(EVENTS)[:30]:
        broker.produce(EVENTS, r.value or b"", r.key)
    consumer = make_projections(read_models, broker)
    drain(consumer.step)
    assert read_models.counts(AUDIT) == (len(app.histories()), 80)
    assert consumer.source is not None
    for tp in consumer.source.assignment():
        consumer.source.seek(tp, 0)  # Kafka redelivers everything
    drain(consumer.step)
    assert consumer.written == 160  # 80 events x 2 read models, once
    assert read_models.histories(SLA) == app.histories()


def test_projection_consumer_resumes_from_read_model_tracking_not_group_offsets(
    app: SlatrailApplication, store_url: str, broker: MemoryBroker, read_models: ReadModelStore
) -> None:
    pipeline_through(app, store_url, broker, incident_stream(60, prefix="R"))
    drain(make_projections(read_models, broker).step)
    broker.committed.clear()
    fresh = make_projections(read_models, broker)
    assert drain(fresh.step) == 0  # sought to tracking + 1: nothing to read again
    read_models.reset([AUDIT])
    again = make_projections(read_models, broker)
    assert drain(again.step) == 60  # audit rebuilt from offset 0, sla skips (tracked)
    assert again.written == 60
    assert read_models.histories(AUDIT) == app.histories()


def test_projection_consumer_rewinds_when_its_read_model_is_reset_while_running(
    app: SlatrailApplication, store_url: str, broker: MemoryBroker, read_models: ReadModelStore
) -> None:
    pipeline_through(app, store_url, broker, incident_stream(40, prefix="S"))
    consumer = make_projections(read_models, broker)
    consumer.reset_check_s = 0
    drain(consumer.step)
    read_models.reset()
    consumer.step(threading.Event())  # notices the reset and seeks back
    drain(consumer.step)
    assert read_models.histories(SLA) == app.histories()


def test_projection_consumer_skips_and_counts_foreign_messages(
    read_models: ReadModelStore, broker: MemoryBroker
) -> None:
    broker.produce(EVENTS, b"garbage", b"x")
    consumer = make_projections(read_models, broker)
    drain(consumer.step)
    assert consumer.invalid == 1 and read_models.counts(SLA) == (0, 0)


# -- read-model store -------------------------------------------------------------------------


def test_read_model_fed_from_the_store_tracks_notification_ids(
    app: SlatrailApplication, read_models: ReadModelStore
) -> None:
    record(app, incident_stream(50, prefix="T"))
    batch = [TrackedEvent(STORE_SOURCE, nid, event) for nid, event in app.all_events()]
    assert read_models.apply(batch) == 100
    assert read_models.apply(batch) == 0
    assert read_models.position(SLA, STORE_SOURCE) == batch[-1].position
    assert read_models.histories() == app.histories()
    read_models.reset()
    assert read_models.counts(SLA) == (0, 0) and read_models.positions(SLA) == {}


def test_default_read_model_url_sits_next_to_a_sqlite_store() -> None:
    assert default_read_model_url("sqlite:///data/slatrail.db") == "sqlite:///data/slatrail-read.db"
    assert default_read_model_url("sqlite:///:memory:") == "sqlite:///:memory:"
    pg = "postgresql://u:p@h:5432/db"
    assert default_read_model_url(pg) == pg
    assert kafka_source("incidents.events", 3) == "incidents.events:3"


# -- envelope, publish, supervisor ------------------------------------------------------------


def test_envelope_round_trips_an_event_with_its_hash(app: SlatrailApplication) -> None:
    record(app, incident_stream(2, prefix="U"))
    for notification_id, event in app.all_events():
        body = encode_envelope(notification_id, event)
        obj = json.loads(body)
        assert obj["schema"] == ENVELOPE_SCHEMA and obj["notification_id"] == notification_id
        assert decode_envelope(body) == (notification_id, event)
        assert decode_envelope(body)[1].computed_hash() == event.hash
    with pytest.raises(EnvelopeError):
        decode_envelope(b'{"schema":"slatrail.event/v1"}')


@pytest.mark.parametrize(
    ("line", "key"),
    [
        (b'{"incident_id":"INC-7","type":"reported"}', b"INC-7"),
        (b'{"incident_id":"INC-8", "type": oops', b"INC-8"),
        (b'{"incident_id":"I\\u00e9"}', "Ié".encode()),
        (b'{"incident_id":42}', None),
        (b"garbage", None),
        (b"[1]", None),
    ],
)
def test_publish_finds_the_key_leniently(line: bytes, key: bytes | None) -> None:
    assert incident_key(line) == key


def test_supervisor_restarts_a_failing_worker_and_stops_cleanly() -> None:
    class Flaky:
        name = "flaky"

        def __init__(self) -> None:
            self.opens = 0

        def open(self) -> None:
            self.opens += 1
            if self.opens < 3:
                raise ConnectionError("broker down")

        def step(self, stop: threading.Event) -> int:
            stop.wait(0.01)
            return 1

        def close(self) -> None:
            pass

        def stats(self) -> dict[str, Any]:
            return {}

    worker = Flaky()
    supervisor = Supervisor([worker], health_interval_s=0.05)
    supervisor.start()
    deadline = datetime.now(UTC).timestamp() + 10
    while supervisor.states[0].processed < 3 and datetime.now(UTC).timestamp() < deadline:
        threading.Event().wait(0.05)
    supervisor.stop()
    assert supervisor.join(5)
    assert worker.opens == 3 and supervisor.states[0].restarts == 2
    assert supervisor.states[0].processed >= 3


def test_memory_records_expose_their_partition() -> None:
    record_ = Record("t", 2, 5, None, b"x")
    assert record_.tp == ("t", 2)


def test_projection_consumer_refuses_an_event_whose_hash_does_not_match(
    app: SlatrailApplication, store_url: str, broker: MemoryBroker, read_models: ReadModelStore
) -> None:
    record(app, incident_stream(1, prefix="V"))
    ((notification_id, event),) = list(app.all_events())
    body = json.loads(encode_envelope(notification_id, event))
    body["actor"] = "mallory"
    broker.produce(EVENTS, json.dumps(body).encode(), b"V-0")
    consumer = make_projections(read_models, broker)
    drain(consumer.step)
    assert consumer.invalid == 1 and read_models.counts(AUDIT) == (0, 0)


def test_security_settings_pass_through_and_the_password_is_never_logged() -> None:
    from pydantic import SecretStr

    from slatrail.infra.kafka import KafkaNotConfiguredError, client_config, redact_config
    from slatrail.infra.settings import Settings

    settings = Settings(
        kafka_bootstrap="b1:9093, b2:9093",
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="slatrail",
        kafka_sasl_password=SecretStr("hunter2"),
        kafka_ssl_cafile=Path("/etc/ca.pem"),
    )
    config = client_config(settings)
    assert config["bootstrap_servers"] == ["b1:9093", "b2:9093"]
    assert config["security_protocol"] == "SASL_SSL"
    assert config["sasl_mechanism"] == "SCRAM-SHA-512"
    assert config["sasl_plain_username"] == "slatrail"
    assert config["sasl_plain_password"] == "hunter2"
    assert config["ssl_cafile"] == "/etc/ca.pem"
    assert "hunter2" not in repr(redact_config(config)) and "hunter2" not in repr(settings)
    with pytest.raises(KafkaNotConfiguredError):
        client_config(Settings(kafka_bootstrap=None))
