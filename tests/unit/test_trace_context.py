"""A W3C `traceparent` on an inbound message reaches its recorded event (unhashed) and the
`incidents.events` message, value and header (docs/reference/topics.md, "Trace context")."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from slatrail.application.service import SlatrailApplication
from slatrail.consumers.inbound import InboundConsumer
from slatrail.consumers.relay import EventRelay
from slatrail.consumers.streams import Outgoing
from slatrail.consumers.trace import trace_context, valid_traceparent
from slatrail.infra.bootstrap import read_contracts
from slatrail.infra.cloudevents import CloudEventsSink
from slatrail.infra.commands.publish import incident_key
from slatrail.infra.kafka_envelope import ENVELOPES, decode_envelope
from slatrail.infra.kafka_outbox import Outbox
from slatrail.infra.rejections import KafkaDeadLetters
from slatrail.infra.store import open_application
from slatrail.infra.wire import decode
from tests.builders import line, reported_data, wire
from tests.memory_broker import MemoryBroker

TRACE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        (TRACE, TRACE),
        (TRACE.encode(), TRACE),
        ("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", None),  # upper case
        ("00-00000000000000000000000000000000-00f067aa0ba902b7-01", None),  # zero trace id
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", None),  # zero parent
        ("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", None),  # version ff
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7", None),
        (b"\xff\xfe", None),
        (None, None),
    ],
)
def test_only_a_valid_traceparent_is_kept(value: str | bytes | None, kept: str | None) -> None:
    assert valid_traceparent(value) == kept


def test_the_header_is_found_by_name_case_insensitively() -> None:
    assert trace_context([("x", b"1"), ("TraceParent", TRACE.encode())]) == TRACE
    assert trace_context([("x", b"1")]) is None


@pytest.fixture
def app(tmp_path: Path) -> Iterator[SlatrailApplication]:
    application = open_application(f"sqlite:///{tmp_path / 's.db'}", read_contracts(None))
    yield application
    application.close()


def test_the_trace_context_travels_from_inbound_to_incidents_events(
    app: SlatrailApplication, tmp_path: Path
) -> None:
    broker = MemoryBroker(partitions=1)
    at = datetime.now(UTC).replace(microsecond=0)
    traced = line(wire("reported", at, reported_data("acme-rtc"), incident_id="T-1"))
    plain = line(wire("reported", at, reported_data("acme-rtc"), incident_id="T-2"))
    broker.append(Outgoing("in", incident_key(traced), traced, (("traceparent", TRACE.encode()),)))
    broker.append(Outgoing("in", incident_key(plain), plain, (("traceparent", b"garbage"),)))
    inbound = InboundConsumer(
        app, lambda: broker.source(["in"], "g"), broker.sink, decode=decode,
        dead_letters=KafkaDeadLetters(), rejected_topic="rej", clock=lambda: datetime.now(UTC),
        batch_size=10,
    )  # fmt: skip
    inbound.open()
    inbound.step(threading.Event())
    (one,) = app.incident_events("T-1")
    (two,) = app.incident_events("T-2")
    assert one.traceparent == TRACE and two.traceparent is None
    assert one.computed_hash() == one.hash  # the chain does not cover it
    relay = EventRelay(
        lambda: Outbox(app, f"sqlite:///{tmp_path / 's.db'}", name="relay:ev"),
        lambda: CloudEventsSink(broker.sink(), events_topic="ev", alerts_topic="al"),
        envelopes=ENVELOPES, topic="ev", batch_size=10, poll_interval_s=0,
    )  # fmt: skip
    relay.open()
    relay.step(threading.Event())
    records = {json.loads(r.value or b"")["incident_id"]: r for r in broker.records("ev")}
    assert json.loads(records["T-1"].value or b"")["traceparent"] == TRACE
    assert dict(records["T-1"].headers)["traceparent"] == TRACE.encode()
    assert "traceparent" not in dict(records["T-2"].headers)
    assert "traceparent" not in json.loads(records["T-2"].value or b"")
    _, decoded = decode_envelope(records["T-1"].value)
    assert decoded.hash == one.hash
