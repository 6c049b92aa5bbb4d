"""What slatrail writes to its topics and dead-letter files, as pydantic models.

The code that emits these messages builds plain dicts (`infra.kafka_envelope`,
`infra.ingest.rejection_record`, `consumers.inbound`, `consumers.alert_timer`); these models
describe exactly that output, so that the JSON Schemas under `schemas/` are generated from them
(`infra.schemas`) and tests can hold the emitted messages against both. All models are strict
and forbid unknown fields: a field the code starts writing without a model change fails a test.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict
from pydantic.json_schema import SkipJsonSchema

from slatrail.domain.clocks import Metric
from slatrail.domain.model import EventType, Priority

UTC_INSTANT = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$"
SHA256_HEX = r"^[0-9a-f]{64}$"
BASE64 = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"
INCIDENT_ID = r"^[A-Za-z0-9._:-]{1,128}$"

Instant = Annotated[
    str,
    Field(
        pattern=UTC_INSTANT,
        json_schema_extra={"format": "date-time"},
        description="RFC 3339 in UTC, ending in Z; microseconds (up to 6 digits) only when present",
    ),
]
Base64 = Annotated[str, Field(pattern=BASE64, description="base64 (RFC 4648, with padding)")]
IncidentId = Annotated[str, Field(pattern=INCIDENT_ID, description="the incident's id")]
Hash = Annotated[str, Field(pattern=SHA256_HEX, description="SHA-256, 64 lower-case hex digits")]
Count = Annotated[int, Field(ge=0)]
Level = Annotated[int, Field(ge=1, le=4, description="escalation level, 1 (lowest) to 4")]

REJECTION_CODES = (
    "too_large",
    "invalid_encoding",
    "invalid_json",
    "duplicate_field",
    "not_an_object",
    "unsupported_schema",
    "unknown_type",
    "unknown_field",
    "missing_field",
    "naive_timestamp",
    "invalid_field",
    "first_event_not_reported",
    "already_reported",
    "out_of_order",
    "future_timestamp",
    "transition_not_allowed",
    "unknown_customer",
    "message_id_conflict",
    "unprocessable",
)
RejectionCode = Literal[
    "too_large",
    "invalid_encoding",
    "invalid_json",
    "duplicate_field",
    "not_an_object",
    "unsupported_schema",
    "unknown_type",
    "unknown_field",
    "missing_field",
    "naive_timestamp",
    "invalid_field",
    "first_event_not_reported",
    "already_reported",
    "out_of_order",
    "future_timestamp",
    "transition_not_allowed",
    "unknown_customer",
    "message_id_conflict",
    "unprocessable",
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


# -- incidents.events --------------------------------------------------------------------------


class EventEnvelope(_Model):
    """One recorded incident event on `incidents.events` (`slatrail.event/v1`)."""

    model_config = ConfigDict(title="slatrail.event/v1")

    schema_: Literal["slatrail.event/v1"] = Field(alias="schema")
    notification_id: Annotated[int, Field(ge=1)] = Field(
        description="the event's position in the store's notification log (global order; gaps "
        "are other records)"
    )
    incident_id: IncidentId
    position: Annotated[int, Field(ge=1)] = Field(
        description="the incident's version: 1 is its `reported`, consecutive per incident"
    )
    type: EventType
    occurred_at: Instant
    recorded_at: Instant
    actor: Annotated[str, Field(min_length=1, max_length=200)]
    source: Annotated[str, Field(min_length=1, max_length=200)] | None = Field(
        description="always present; null when the message had none"
    )
    message_id: Annotated[str, Field(min_length=1, max_length=128)]
    data: dict[str, Any] = Field(
        description="the message's `data`, normalised: optional fields the publisher left out or "
        "sent as null are absent, timestamps in UTC (`Z`)"
    )
    prev_hash: Hash = Field(description="the previous event's `hash`; 64 zeros for position 1")
    hash: Hash = Field(
        description="SHA-256(prev_hash ‖ canonical JSON of the event's fields), docs/audit.md"
    )
    redrive: str | SkipJsonSchema[None] = Field(
        default=None,
        min_length=1,
        description="only on an event recorded by `slatrail redrive`: the dead letter it came "
        "from (`<topic>/<partition>/<offset>` or `file:<name>:<line>`); hashed when present",
    )
    traceparent: str | SkipJsonSchema[None] = Field(
        default=None,
        pattern=r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$",
        description="only when the inbound message came with a valid W3C `traceparent` header: "
        "that trace context (also sent as this message's `traceparent` header); not hashed",
    )


# -- dead letters ------------------------------------------------------------------------------

_ONE_ORIGINAL: JsonDict = {
    "oneOf": [
        {"properties": {"message": {"type": "object"}, "raw": {"type": "null"},
                        "raw_base64": {"type": "null"}}},
        {"properties": {"message": {"type": "null"}, "raw": {"type": "string"},
                        "raw_base64": {"type": "null"}}},
        {"properties": {"message": {"type": "null"}, "raw": {"type": "null"},
                        "raw_base64": {"type": "string"}}},
    ]
}  # fmt: skip
_TRUNCATED_OR_ONE_ORIGINAL: JsonDict = {
    "if": {"properties": {"truncated": {"const": True}}, "required": ["truncated"]},
    "then": {
        "properties": {"message": {"type": "null"}, "raw": {"type": "null"},
                       "raw_base64": {"type": "null"}},
        "required": ["raw_bytes", "raw_sha256", "raw_prefix_base64"],
    },
    "else": _ONE_ORIGINAL,
}  # fmt: skip


class _DeadLetter(_Model):
    dead_letter: Literal["slatrail.dead-letter/v1"] = Field(
        description="the format and its version; a reader refuses a version it does not know"
    )
    code: RejectionCode = Field(description="the stable rejection code (docs/architecture.md)")
    reason: str = Field(description="for people: what was wrong, naming the field and the bound")
    incident_id: str | None = Field(description="as read from the message, else null")
    message_id: str | None = Field(description="as read from the message, else null")
    rejected_at: Instant = Field(description="when slatrail refused the message")
    message: dict[str, Any] | None = Field(
        description="the original, parsed: when it is a JSON object strict JSON holds without loss"
    )
    raw: str | None = Field(description="the original as text: UTF-8, but not such an object")
    raw_base64: Base64 | None = Field(description="the original bytes, when they are not UTF-8")
    redrive_of: str | SkipJsonSchema[None] = Field(
        default=None,
        description="only on the dead letter of a `slatrail redrive` that failed again: the dead "
        "letter redriven (`<topic>/<partition>/<offset>` or `file:<name>:<line>`)",
    )


_AFTER_REDRIVE = (
    "only on the still-rejected letter of a redriven Kafka dead letter: the original's origin"
)


class FileDeadLetter(_DeadLetter):
    """A line of `<input>.rejected.jsonl` written by `slatrail ingest` (or `redrive`)."""

    model_config = ConfigDict(
        title="slatrail.dead-letter/v1 (file)", json_schema_extra=_ONE_ORIGINAL
    )

    line: Annotated[int, Field(ge=1)] | SkipJsonSchema[None] = Field(
        default=None, description="the 1-based line number in the input (absent after a redrive "
        "of a Kafka dead letter)"
    )  # fmt: skip
    # A redrive's still-rejected letter keeps the first letter's origin (infra.redrive).
    topic: str | SkipJsonSchema[None] = Field(default=None, description=_AFTER_REDRIVE)
    partition: Count | SkipJsonSchema[None] = Field(default=None, description=_AFTER_REDRIVE)
    offset: Count | SkipJsonSchema[None] = Field(default=None, description=_AFTER_REDRIVE)
    key: str | None = Field(default=None, description=_AFTER_REDRIVE)
    timestamp: Instant | None = Field(default=None, description=_AFTER_REDRIVE)


class ParkingAttempt(_Model):
    at: Instant
    code: str = Field(description="why it was (re)parked: the code or the first refusal's reason")


class ParkingReport(_Model):
    """How long a message waited for its incident before it was dead-lettered."""

    first_parked_at: Instant
    attempts: Annotated[int, Field(ge=1)]
    timeout_s: float = Field(description="SLATRAIL_PARK_TIMEOUT_S in force")
    retry_topic: str | None
    history: list[ParkingAttempt]


class KafkaDeadLetter(_DeadLetter):
    """A record of `incidents.rejected`: the file form's fields plus where the original was read."""

    model_config = ConfigDict(
        title="slatrail.dead-letter/v1 (Kafka)", json_schema_extra=_TRUNCATED_OR_ONE_ORIGINAL
    )

    topic: str = Field(description="the topic the original was read from")
    partition: Count
    offset: Count
    key: str | None = Field(description="the original record's key as text; null when absent "
                            "or not UTF-8")  # fmt: skip
    key_base64: Base64 | SkipJsonSchema[None] = Field(
        default=None, description="only when the key is not UTF-8: the key bytes"
    )
    timestamp: Instant | None = Field(description="the original record's timestamp")
    line: Annotated[int, Field(ge=1)] | SkipJsonSchema[None] = Field(
        default=None, description="only after a redrive of a file dead letter: its line"
    )
    truncated: Literal[True] | SkipJsonSchema[None] = Field(
        default=None,
        description="only when the full entry was too large for the broker: the original stays "
        "at topic/partition/offset; message, raw and raw_base64 are all null",
    )
    raw_bytes: Count | SkipJsonSchema[None] = Field(default=None, description="truncated only")
    raw_sha256: Hash | SkipJsonSchema[None] = Field(default=None, description="truncated only")
    raw_prefix_base64: Base64 | SkipJsonSchema[None] = Field(
        default=None, description="truncated only: the first 64 KiB of the original"
    )
    parking: ParkingReport | SkipJsonSchema[None] = Field(
        default=None,
        description="only on a `first_event_not_reported` letter after parking timed out",
    )


# -- incidents.alerts --------------------------------------------------------------------------


class Alert(_Model):
    """An at-risk, breach or escalation alert on `incidents.alerts` (`slatrail.alert/v1`)."""

    model_config = ConfigDict(title="slatrail.alert/v1")

    schema_: Literal["slatrail.alert/v1"] = Field(alias="schema")
    alert_key: Annotated[
        str, Field(pattern=r"^[A-Za-z0-9._:-]+/(escalated/[1-4]|[a-z]+/(at_risk|breached)/\d+)$")
    ] = Field(
        description="stable per crossing (`INC-1/resolution/breached/0`, `INC-1/escalated/3`): "
        "consumers de-duplicate on it"
    )
    incident_id: IncidentId
    customer: str
    kind: Literal["at_risk", "breached", "escalated"]
    metric: Metric | None = Field(description="the clock; null for `escalated`")
    level: Level
    level_name: Annotated[str, Field(min_length=1, max_length=100)]
    cycle: Count = Field(description="number of reopenings before the crossing")
    priority: Priority | None = Field(description="the clock's priority; null for `escalated`")
    reason: str
    due_at: Instant | None = Field(description="the clock's due instant; null for `escalated`")
    crossed_at: Instant
    fired_at: Instant
    late: bool = Field(description="fired more than `late_after` after `crossed_at`")
    explanation: str


class CorrectionCause(_Model):
    type: str = Field(description="the event type that changed the history")
    occurred_at: Instant
    position: Count


class AlertCorrection(_Model):
    """A correction on `incidents.alerts` (`slatrail.alert/v1`, kind `correction`): a late
    fact removed or moved a crossing already alerted."""

    model_config = ConfigDict(title="slatrail.alert/v1 correction")

    schema_: Literal["slatrail.alert/v1"] = Field(alias="schema")
    alert_key: Annotated[str, Field(pattern=r"^[^/]+/.+/corrected/.+$")] = Field(
        description="the correction's own stable key: `<corrects>/corrected/removed` or "
        "`<corrects>/corrected/<new crossed_at>`; consumers de-duplicate on it"
    )
    corrects: str = Field(description="the `alert_key` of the alert corrected")
    incident_id: IncidentId
    customer: str
    kind: Literal["correction"]
    corrected_kind: Literal["at_risk", "breached", "escalated"]
    change: Literal["removed", "moved"]
    was_crossed_at: Instant | None = Field(
        description="the instant the corrected alert was published for (null when this timer "
        "did not publish it itself, e.g. before a restart)"
    )
    crossed_at: Instant | None = Field(description="the new instant; null when removed")
    cause: CorrectionCause
    fired_at: Instant
    explanation: str


# -- incidents.retry ---------------------------------------------------------------------------


class ParkedOrigin(_Model):
    topic: str
    partition: Count
    offset: Count
    key_base64: Base64 | None
    timestamp_ms: int | None
    headers: list[tuple[str, Base64]] = Field(description="[name, base64 value] pairs")


class Parked(_Model):
    """A message parked on `incidents.retry` until its incident exists (`slatrail.parked/v1`)."""

    model_config = ConfigDict(title="slatrail.parked/v1")

    schema_: Literal["slatrail.parked/v1"] = Field(alias="schema")
    park_id: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
    incident_id: str
    message_id: str | None
    first_parked_at: Instant
    due_at: Instant
    attempts: Count
    history: list[ParkingAttempt]
    origin: ParkedOrigin = Field(description="the inbound record as first received")
    raw_base64: Base64 = Field(description="the original message bytes")


# -- incidents.checkpoints ---------------------------------------------------------------------


class CheckpointMessage(_Model):
    """A signed checkpoint of the Merkle log on `incidents.checkpoints`
    (`slatrail.checkpoint/v1`)."""

    model_config = ConfigDict(title="slatrail.checkpoint/v1")

    schema_: Literal["slatrail.checkpoint/v1"] = Field(alias="schema")
    origin: Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\s+]+$")]
    tree_size: Count = Field(description="stored records the checkpoint commits to")
    root: Annotated[str, Field(pattern=r"^[A-Za-z0-9+/]{43}=$")] = Field(
        description="the Merkle root, standard base64 of 32 bytes"
    )
    known_at: Instant = Field(description="every event recorded by then is inside")
    note: str = Field(
        description="the C2SP signed note (checkpoint text, blank line, Ed25519 signature "
        "line): the only part to trust, after checking its signature (docs/audit.md §9)"
    )
