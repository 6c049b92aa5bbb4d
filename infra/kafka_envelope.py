"""The `incidents.events` message: one recorded incident event (envelope `slatrail.event/v1`).

Key: the incident_id (UTF-8). Headers: `slatrail-notification-id` (decimal ASCII) and
`slatrail-schema`. Value (UTF-8 JSON object)::

    {"schema": "slatrail.event/v1", "notification_id": 42,
     "incident_id": "INC-1", "position": 3, "type": "acknowledged",
     "occurred_at": "2026-05-04T09:10:00Z", "recorded_at": "2026-05-04T09:10:00.123456Z",
     "actor": "li.wei", "source": "portal", "message_id": "m-3", "data": {...},
     "prev_hash": "…64 hex…", "hash": "…64 hex…"}

`position` is the incident's version (1 = reported); `hash` chains the event to `prev_hash`
(see domain.model.chain_hash), so a consumer can verify the trail it receives. An event recorded
by `slatrail redrive` also has `"redrive": "<dead letter reference>"` (hashed when present); an
event whose message came with a W3C `traceparent` header has `"traceparent"` (not hashed), which
the relay also sends as the message's `traceparent` header (`infra/cloudevents.py`).
"""

from __future__ import annotations

import json
from typing import Any

from slatrail.domain.model import IncidentEvent, event_from_dict, event_to_dict

ENVELOPE_SCHEMA = "slatrail.event/v1"
NOTIFICATION_HEADER = "slatrail-notification-id"
SCHEMA_HEADER = "slatrail-schema"


class EnvelopeError(ValueError):
    """Not a `slatrail.event/v1` message."""


def encode_envelope(notification_id: int, event: IncidentEvent) -> bytes:
    body: dict[str, Any] = {"schema": ENVELOPE_SCHEMA, "notification_id": notification_id}
    body.update(event_to_dict(event))
    if event.traceparent is not None:  # transport context, outside the hashed fields
        body["traceparent"] = event.traceparent
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def envelope_headers(notification_id: int) -> tuple[tuple[str, bytes], ...]:
    return (
        (NOTIFICATION_HEADER, str(notification_id).encode("ascii")),
        (SCHEMA_HEADER, ENVELOPE_SCHEMA.encode("ascii")),
    )


def decode_envelope(value: bytes | None) -> tuple[int, IncidentEvent]:
    """(notification_id, event) from an `incidents.events` value."""
    try:
        body = json.loads(value or b"")
    except ValueError as error:
        raise EnvelopeError(f"not JSON: {error}") from error
    if not isinstance(body, dict) or body.get("schema") != ENVELOPE_SCHEMA:
        raise EnvelopeError(f"not a {ENVELOPE_SCHEMA} envelope")
    try:
        return int(body["notification_id"]), event_from_dict(body)
    except (KeyError, ValueError, TypeError) as error:
        raise EnvelopeError(f"malformed envelope: {error!r}") from error


class EnvelopeCodec:
    """The envelope codec as the relay and projection consumer take it (their ports)."""

    def encode(self, notification_id: int, event: IncidentEvent) -> bytes:
        return encode_envelope(notification_id, event)

    def headers(self, notification_id: int) -> tuple[tuple[str, bytes], ...]:
        return envelope_headers(notification_id)

    def decode(self, value: bytes | None) -> tuple[int, IncidentEvent]:
        return decode_envelope(value)


ENVELOPES = EnvelopeCodec()
