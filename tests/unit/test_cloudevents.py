"""CloudEvents binary-mode headers on incidents.events and incidents.alerts (topics.md)."""

from __future__ import annotations

import json
from typing import Any

from slatrail.consumers.streams import Outgoing
from slatrail.infra.cloudevents import CloudEventsSink
from slatrail.infra.kafka_envelope import encode_envelope, envelope_headers
from tests.builders import IncidentFactory, contracts_from


class Recorder:
    def __init__(self) -> None:
        self.sent: list[Outgoing] = []

    def send(self, message: Outgoing) -> None:
        self.sent.append(message)

    def flush(self, timeout_s: float) -> None: ...

    def pending(self) -> int:
        return 0

    def close(self) -> None: ...


def test_events_and_alerts_get_cloudevents_headers_and_other_topics_do_not() -> None:
    factory = IncidentFactory(contracts_from())
    factory.report("INC-7", "2026-05-04T09:00:00Z", customer="acme")
    event = factory.events("INC-7")[0]
    alerts: list[dict[str, Any]] = []
    inner = Recorder()
    sink = CloudEventsSink(inner, events_topic="ev", alerts_topic="al", on_alert=alerts.append)
    sink.send(Outgoing("ev", b"INC-7", encode_envelope(42, event), envelope_headers(42)))
    alert = {"alert_key": "INC-7/response/breach/1", "kind": "breach", "incident_id": "INC-7",
             "fired_at": "2026-05-04T10:00:00Z"}  # fmt: skip
    sink.send(Outgoing("al", b"INC-7", json.dumps(alert).encode(), (("slatrail-schema", b"x"),)))
    sink.send(Outgoing("other", None, b"not json"))
    sink.send(Outgoing("ev", None, b"not json"))
    relayed, fired, other, broken = (dict(m.headers) for m in inner.sent)
    assert relayed == {
        "slatrail-notification-id": b"42", "slatrail-schema": b"slatrail.event/v1",
        "ce_specversion": b"1.0", "ce_id": event.hash.encode(),
        "ce_source": b"/slatrail/incidents", "ce_type": b"slatrail.incident.reported",
        "ce_time": json.loads(inner.sent[0].value)["recorded_at"].encode(),
        "ce_subject": b"INC-7", "content-type": b"application/json",
    }  # fmt: skip
    assert fired["ce_id"] == b"INC-7/response/breach/1"
    assert (
        fired["ce_type"] == b"slatrail.alert.breach" and fired["ce_source"] == b"/slatrail/alerts"
    )
    assert fired["ce_time"] == b"2026-05-04T10:00:00Z" and fired["slatrail-schema"] == b"x"
    assert other == {} and broken == {}
    assert alerts == [alert]
    assert inner.sent[0].value == encode_envelope(42, event)  # the value is unchanged
