"""The AsyncAPI 3.0 document of slatrail's Kafka topics (`schemas/asyncapi.json`).

Described from slatrail's side: what `slatrail serve` receives and sends. Payloads point at the
JSON Schema files beside it (`infra.schemas`); names, groups and limits are the settings'
defaults (`SLATRAIL_*`, docs/streaming.md).
"""

from __future__ import annotations

from typing import Any

from slatrail.domain.model import EventType
from slatrail.infra.kafka_envelope import ENVELOPE_SCHEMA, NOTIFICATION_HEADER, SCHEMA_HEADER
from slatrail.infra.settings import Settings
from slatrail.infra.stream_models import REJECTION_CODES

ASYNCAPI_VERSION = "3.0.0"
KAFKA_BINDING = "0.5.0"
PAYLOAD_FORMAT = "application/schema+json;version=draft-2020-12"
CODE_HEADER = "slatrail-code"
ALERT_TIMER_GROUP: str = Settings.model_fields["group_alerts"].default
PARTITIONING = (
    "Key: the incident_id (UTF-8). Partitioner: murmur2 over the key (kafka-python's and the "
    "Java client's default; librdkafka clients need partitioner=murmur2_random), so one "
    "incident lives in one partition, in order."
)


def _defaults() -> dict[str, Any]:
    return {name: field.default for name, field in Settings.model_fields.items()}


def _payload(path: str) -> dict[str, Any]:
    return {"schemaFormat": PAYLOAD_FORMAT, "schema": {"$ref": f"./{path}"}}


def _key(description: str) -> dict[str, Any]:
    return {
        "kafka": {
            "key": {"type": "string", "description": description},
            "bindingVersion": KAFKA_BINDING,
        }
    }


def _schema_header(value: str) -> dict[str, Any]:
    return {"type": "string", "const": value, "description": "the payload's format and version"}


def _channel(topic: str, description: str, messages: dict[str, Any]) -> dict[str, Any]:
    settings = _defaults()
    return {
        "address": topic,
        "description": f"{description} {PARTITIONING}",
        "messages": messages,
        "bindings": {
            "kafka": {
                "topic": topic,
                "partitions": settings["topic_partitions"],
                "replicas": settings["topic_replication_factor"],
                "topicConfiguration": {"max.message.bytes": settings["kafka_max_message_bytes"]},
                "bindingVersion": KAFKA_BINDING,
            }
        },
        "x-partitioning": {"key": "incident_id", "partitioner": "murmur2"},
    }


def _operation(
    action: str, channel: str, messages: list[str], summary: str, group: str | None = None
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "action": action,
        "channel": {"$ref": f"#/channels/{channel}"},
        "summary": summary,
        "messages": [{"$ref": f"#/channels/{channel}/messages/{name}"} for name in messages],
    }
    if group is not None:
        operation["bindings"] = {
            "kafka": {
                "groupId": {"type": "string", "enum": [group]},
                "bindingVersion": KAFKA_BINDING,
            }
        }
    return operation


def asyncapi_document() -> dict[str, Any]:
    settings = _defaults()
    inbound_messages = {
        f"message.{t}": {
            "name": f"message.{t}",
            "title": f"slatrail.incident/v1 {t}",
            "contentType": "application/json",
            "payload": _payload(f"incident-message/{t}.schema.json"),
            "bindings": _key("the message's incident_id"),
        }
        for t in EventType
    }
    channels = {
        "inbound": _channel(
            settings["topic_inbound"],
            "Incident messages from publishers (`slatrail publish`, any Kafka producer): one "
            "JSON object `slatrail.incident/v1` per record, at most 1 MiB. Anything else is "
            "dead-lettered on `incidents.rejected`; any codec (none, gzip, snappy, lz4, zstd).",
            inbound_messages,
        ),
        "events": _channel(
            settings["topic_events"],
            "Every recorded event, relayed from the event store at least once, in order per "
            "incident, never skipping a position.",
            {
                "envelope": {
                    "name": "envelope",
                    "title": ENVELOPE_SCHEMA,
                    "contentType": "application/json",
                    "headers": {
                        "type": "object",
                        "required": [NOTIFICATION_HEADER, SCHEMA_HEADER],
                        "properties": {
                            NOTIFICATION_HEADER: {
                                "type": "string",
                                "pattern": "^[1-9][0-9]*$",
                                "description": "the notification_id, decimal ASCII",
                            },
                            SCHEMA_HEADER: _schema_header(ENVELOPE_SCHEMA),
                        },
                    },
                    "payload": _payload("incident-event.schema.json"),
                    "bindings": _key("the event's incident_id"),
                }
            },
        ),
        "rejected": _channel(
            settings["topic_rejected"],
            "Dead letters: one per refused inbound message (at least once), in the Kafka form "
            "of `slatrail.dead-letter/v1`; read back by `slatrail redrive`.",
            {
                "dead-letter": {
                    "name": "dead-letter",
                    "title": "slatrail.dead-letter/v1",
                    "contentType": "application/json",
                    "headers": {
                        "type": "object",
                        "required": [CODE_HEADER],
                        "properties": {
                            CODE_HEADER: {
                                "type": "string",
                                "enum": list(REJECTION_CODES),
                                "description": "the dead letter's rejection code",
                            }
                        },
                    },
                    "payload": _payload("dead-letter/kafka.schema.json"),
                    "bindings": _key(
                        "the incident_id when it could be read, else the original record's key "
                        "(absent when the original had none)"
                    ),
                }
            },
        ),
        "alerts": _channel(
            settings["topic_alerts"],
            "At-risk, breach and escalation alerts, each at its instant, and corrections after "
            "late facts; `alert_key` is stable "
            "(a restarted or second timer publishes the same key), de-duplicate on it.",
            {
                "alert": {
                    "name": "alert",
                    "title": "slatrail.alert/v1",
                    "contentType": "application/json",
                    "headers": {
                        "type": "object",
                        "required": [SCHEMA_HEADER],
                        "properties": {SCHEMA_HEADER: _schema_header("slatrail.alert/v1")},
                    },
                    "payload": _payload("alert.schema.json"),
                    "bindings": _key("the alert's incident_id"),
                },
                "alert-correction": {
                    "name": "alert-correction",
                    "title": "slatrail.alert/v1 correction",
                    "contentType": "application/json",
                    "headers": {
                        "type": "object",
                        "required": [SCHEMA_HEADER],
                        "properties": {SCHEMA_HEADER: _schema_header("slatrail.alert/v1")},
                    },
                    "payload": _payload("alert-correction.schema.json"),
                    "bindings": _key("the alert's incident_id"),
                },
            },
        ),
        "retry": _channel(
            settings["topic_retry"],
            "slatrail's own: messages parked until their incident exists, re-read by the "
            "inbound consumer (same group). Not for other producers or consumers.",
            {
                "parked": {
                    "name": "parked",
                    "title": "slatrail.parked/v1",
                    "contentType": "application/json",
                    "headers": {
                        "type": "object",
                        "required": [SCHEMA_HEADER],
                        "properties": {SCHEMA_HEADER: _schema_header("slatrail.parked/v1")},
                    },
                    "payload": _payload("parked.schema.json"),
                    "bindings": _key("the parked message's incident_id"),
                }
            },
        ),
        "checkpoints": _channel(
            settings["topic_checkpoints"],
            "Signed checkpoints of the Merkle log over every stored record, one every "
            "SLATRAIL_CHECKPOINT_INTERVAL_S: for auditors and witnesses (docs/audit.md §9).",
            {
                "checkpoint": {
                    "name": "checkpoint",
                    "title": "slatrail.checkpoint/v1",
                    "contentType": "application/json",
                    "headers": {
                        "type": "object",
                        "required": [SCHEMA_HEADER],
                        "properties": {SCHEMA_HEADER: _schema_header("slatrail.checkpoint/v1")},
                    },
                    "payload": _payload("checkpoint.schema.json"),
                    "bindings": _key("the log's origin"),
                }
            },
        ),
    }
    inbound, projections = settings["group_inbound"], settings["group_projections"]
    operations = {
        "receiveIncidentMessages": _operation(
            "receive", "inbound", list(inbound_messages),
            "The inbound consumer records each message, or parks or dead-letters it.", inbound,
        ),
        "sendEvents": _operation(
            "send", "events", ["envelope"], "The relay publishes every recorded event."
        ),
        "receiveEventsForReadModels": _operation(
            "receive", "events", ["envelope"],
            "The projection consumer applies each event once to the read models.", projections,
        ),
        "receiveEventsForAlerts": _operation(
            "receive", "events", ["envelope"],
            "The alert timer plans every incident's alerts from its events.", ALERT_TIMER_GROUP,
        ),
        "sendDeadLetters": _operation(
            "send", "rejected", ["dead-letter"], "The inbound consumer dead-letters a refusal."
        ),
        "sendAlerts": _operation(
            "send", "alerts", ["alert", "alert-correction"],
            "The alert timer publishes an alert at its instant, and a correction when a late "
            "fact removes or moves a crossing it already alerted.",
        ),
        "sendParked": _operation(
            "send", "retry", ["parked"], "The inbound consumer parks a message of an unknown "
            "incident.",
        ),
        "receiveParked": _operation(
            "receive", "retry", ["parked"], "The inbound consumer re-submits parked messages.",
            inbound,
        ),
        "sendCheckpoints": _operation(
            "send", "checkpoints", ["checkpoint"], "The checkpoint worker publishes a signed "
            "checkpoint periodically.",
        ),
    }  # fmt: skip
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "id": "urn:slatrail:schemas:asyncapi.json",
        "info": {
            "title": "slatrail",
            "version": "1",
            "description": "Event-sourced incident lifecycle and SLA compliance: the Kafka "
            "topics of `slatrail serve`. Payload schemas are the JSON Schema (draft 2020-12) "
            "files beside this document; rules across messages are in schemas/README.md.",
        },
        "defaultContentType": "application/json",
        "servers": {
            "kafka": {
                "host": "{bootstrap}",
                "protocol": "kafka",
                "description": "SLATRAIL_KAFKA_BOOTSTRAP",
                "variables": {
                    "bootstrap": {"default": "localhost:9092", "description": "host:port"}
                },
            }
        },
        "channels": channels,
        "operations": operations,
    }
