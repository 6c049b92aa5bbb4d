"""CloudEvents binary-mode headers on `incidents.events` and `incidents.alerts`
(docs/reference/topics.md, "CloudEvents headers"), added by the sink the relay and the alert
timer write through, beside slatrail's own headers (the value is unchanged).

Kafka protocol binding of CloudEvents 1.0: `ce_specversion`, `ce_id`, `ce_source`, `ce_type`,
`ce_time`, `ce_subject` and `content-type`. A recorded event that carries a W3C trace context
also gets its `traceparent` header, so the publisher's trace continues downstream.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from slatrail.consumers.streams import Outgoing, Sink

SPECVERSION = b"1.0"
SOURCE = "/slatrail"
CONTENT_TYPE = b"application/json"


def event_headers(body: dict[str, Any]) -> tuple[tuple[str, bytes], ...]:
    """`incidents.events`: id is the event's chain hash (unique), type `slatrail.incident.<t>`,
    time when it was recorded, subject the incident."""
    headers = [
        ("ce_specversion", SPECVERSION),
        ("ce_id", str(body["hash"]).encode()),
        ("ce_source", f"{SOURCE}/incidents".encode()),
        ("ce_type", f"slatrail.incident.{body['type']}".encode()),
        ("ce_time", str(body["recorded_at"]).encode()),
        ("ce_subject", str(body["incident_id"]).encode()),
        ("content-type", CONTENT_TYPE),
    ]
    traceparent = body.get("traceparent")
    if isinstance(traceparent, str):
        headers.append(("traceparent", traceparent.encode("ascii")))
    return tuple(headers)


def alert_headers(body: dict[str, Any]) -> tuple[tuple[str, bytes], ...]:
    """`incidents.alerts`: id is the alert key (fired once), type `slatrail.alert.<kind>`,
    time when it was fired."""
    return (
        ("ce_specversion", SPECVERSION),
        ("ce_id", str(body["alert_key"]).encode()),
        ("ce_source", f"{SOURCE}/alerts".encode()),
        ("ce_type", f"slatrail.alert.{body['kind']}".encode()),
        ("ce_time", str(body["fired_at"]).encode()),
        ("ce_subject", str(body["incident_id"]).encode()),
        ("content-type", CONTENT_TYPE),
    )


class CloudEventsSink:
    """A sink that adds the CloudEvents headers to what it sends on the two topics."""

    def __init__(
        self,
        sink: Sink,
        *,
        events_topic: str,
        alerts_topic: str,
        on_alert: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self._sink = sink
        self._events_topic = events_topic
        self._alerts_topic = alerts_topic
        self._on_alert = on_alert

    def send(self, message: Outgoing) -> None:
        if message.topic in (self._events_topic, self._alerts_topic):
            try:
                body = json.loads(message.value)
                extra = (
                    event_headers(body) if message.topic == self._events_topic
                    else alert_headers(body)
                )  # fmt: skip
            except (ValueError, KeyError, TypeError, AttributeError):
                extra = ()  # not ours to judge here: sent as it is
            else:
                if message.topic == self._alerts_topic and self._on_alert is not None:
                    self._on_alert(body)
            names = {name for name, _ in message.headers}
            message = Outgoing(
                message.topic, message.key, message.value,
                (*message.headers, *((n, v) for n, v in extra if n not in names)),
            )  # fmt: skip
        self._sink.send(message)

    def flush(self, timeout_s: float) -> None:
        self._sink.flush(timeout_s)

    def pending(self) -> int:
        return self._sink.pending()

    def close(self) -> None:
        self._sink.close()
