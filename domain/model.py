"""Value types shared by the whole model: priorities, event types, states, recorded events."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import orjson


class Priority(StrEnum):
    P1 = "P1"
    P2 = "P2"
    P3 = "P3"
    P4 = "P4"


class EventType(StrEnum):
    REPORTED = "reported"
    TRIAGED = "triaged"
    PRIORITY_CHANGED = "priority_changed"
    ACKNOWLEDGED = "acknowledged"
    AWAITING_CUSTOMER = "awaiting_customer"
    CUSTOMER_RESPONDED = "customer_responded"
    WORKAROUND_PROVIDED = "workaround_provided"
    ESCALATED = "escalated"
    RESOLVED = "resolved"
    REOPENED = "reopened"
    POSTMORTEM_PUBLISHED = "postmortem_published"


class State(StrEnum):
    OPEN = "open"
    AWAITING_CUSTOMER = "awaiting_customer"
    RESOLVED = "resolved"


class Cause(StrEnum):
    VENDOR = "vendor"
    CUSTOMER = "customer"
    THIRD_PARTY = "third_party"
    FORCE_MAJEURE = "force_majeure"
    MAINTENANCE = "maintenance"


EXCLUDED_CAUSES = frozenset(
    {Cause.CUSTOMER, Cause.THIRD_PARTY, Cause.FORCE_MAJEURE, Cause.MAINTENANCE}
)

GENESIS_HASH = "0" * 64

_INCIDENT_NAMESPACE = uuid.UUID("6f1d7c1e-52a4-5b8e-9a57-5c1a7a7e0001")
_MESSAGE_NAMESPACE = uuid.UUID("6f1d7c1e-52a4-5b8e-9a57-5c1a7a7e0002")


def incident_uuid(incident_id: str) -> uuid.UUID:
    """Aggregate id of an incident: stable, so a redelivered message lands on the same one.
    (`uuid.uuid5(_INCIDENT_NAMESPACE, incident_id)`, built from its integer: half the time.)"""
    return uuid.UUID(int=incident_key(incident_id))


def receipt_uuid(message_id: str) -> uuid.UUID:
    """Aggregate id of the receipt that makes a message_id unique across the store
    (`uuid.uuid5(_MESSAGE_NAMESPACE, message_id)`, built from its integer)."""
    return uuid.UUID(int=receipt_key(message_id))


_INCIDENT_PREFIX = _INCIDENT_NAMESPACE.bytes
_MESSAGE_PREFIX = _MESSAGE_NAMESPACE.bytes
_UUID5_KEEP = ~((0xC000 << 48) | (0xF000 << 64))  # the variant and version bits cleared …
_UUID5_SET = (0x8000 << 48) | (5 << 76)  # … and set to RFC 4122, version 5


def _uuid5_int(namespace: bytes, name: str) -> int:
    """`uuid.uuid5(namespace, name).int`, without building the UUID."""
    digest = hashlib.sha1(namespace + name.encode("utf-8")).digest()
    return (int.from_bytes(digest[:16]) & _UUID5_KEEP) | _UUID5_SET


def incident_key(incident_id: str) -> int:
    """`incident_uuid(incident_id).int`, without building the UUID (verify: once per incident)."""
    return _uuid5_int(_INCIDENT_PREFIX, incident_id)


def receipt_key(message_id: str) -> int:
    """`receipt_uuid(message_id).int`, without building the UUID (verify: once per receipt)."""
    return _uuid5_int(_MESSAGE_PREFIX, message_id)


def format_instant(moment: datetime) -> str:
    """RFC 3339 in UTC ending in `Z`; microseconds only when present.

    (`isoformat` writes exactly that, converted to UTC first, `+00:00` replaced by `Z`; of a
    UTC time orjson writes the same, about a third of the time: `utc_isoformat`.)"""
    if moment.tzinfo is UTC:  # the common case: every decoded stored timestamp
        if _ORJSON_WRITES_INSTANTS:
            return orjson.dumps(moment, option=orjson.OPT_UTC_Z)[1:-1].decode("ascii")
        return moment.isoformat()[:-6] + "Z"
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"


def utc_isoformat(moment: datetime) -> str:
    """`moment.isoformat()`; of a UTC time written by orjson (the same text, checked at
    start-up against `_INSTANT_AGREEMENT`; tests/unit/test_canonical_json.py)."""
    if moment.tzinfo is UTC and _ORJSON_WRITES_INSTANTS:
        return orjson.dumps(moment)[1:-1].decode("ascii")
    return moment.isoformat()


def parse_instant(text: str) -> datetime:
    """Inverse of `format_instant` (accepts any RFC 3339 offset)."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"timestamp without offset: {text!r}")
    return moment.astimezone(UTC)


_CANONICAL = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)
_PLAIN_SCALARS = (str, int, bool, type(None))


def canonical_json(value: Any) -> bytes:
    """The one canonical encoding used for hashes and fingerprints (docs/audit.md §2): JSON
    with sorted keys, no spaces, UTF-8 (not ASCII escapes), as Python's `json` writes it.

    Values made of objects, arrays, strings, integers, booleans and nulls alone, the shape of
    every hashed event and message, are written by orjson (about a third of the time, the
    same bytes); anything else (a number with a fraction, which the two write differently, or a
    type either would refuse) by `json` itself (the same bytes:
    tests/unit/test_canonical_json.py; and an orjson that writes any of `_AGREEMENT` otherwise
    is not used at all)."""
    if _ORJSON_AGREES and is_plain_json(value):
        try:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:  # an integer beyond 64 bits, a lone surrogate, …
            pass
    return _json_canonical(value)


def _json_canonical(value: Any) -> bytes:
    return _CANONICAL.encode(value).encode("utf-8")


# Every recorded hash depends on these bytes: an installed orjson that writes any of these
# otherwise than `json` does (a release that escapes differently) is not used.
_AGREEMENT: tuple[Any, ...] = (
    {"b": [1, -(2**63), 2**64 - 1, True, False, None], "a": {"é": "ü 漢 😀", "Z": ""}},
    {"esc": '"\\/\b\f\n\r\t\u0000\u001f\u007f\u0080\u009f\u2028\u2029\ufeff'},
    [],
    {},
)


def orjson_agrees(dumps: Callable[..., bytes] = orjson.dumps) -> bool:
    """Whether `dumps` (orjson's) writes every value of `_AGREEMENT` as `json` does."""
    return all(dumps(v, option=orjson.OPT_SORT_KEYS) == _json_canonical(v) for v in _AGREEMENT)


_ORJSON_AGREES = orjson_agrees()

# Instants as every stored record and hash holds them: UTC, with and without microseconds, at
# the ends of the range datetime can hold.
_INSTANT_AGREEMENT: tuple[datetime, ...] = (
    datetime(2026, 12, 2, 3, 4, 5, tzinfo=UTC),
    datetime(2026, 12, 2, 3, 4, 5, 678901, tzinfo=UTC),
    datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
    datetime(1, 1, 1, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
)


def orjson_writes_instants(dumps: Callable[..., bytes] = orjson.dumps) -> bool:
    """Whether `dumps` (orjson's) writes every instant of `_INSTANT_AGREEMENT` as `isoformat`
    does (and as `Z` with `OPT_UTC_Z`)."""
    return all(
        dumps(moment)[1:-1].decode("ascii") == moment.isoformat()
        and dumps(moment, option=orjson.OPT_UTC_Z)[1:-1].decode("ascii")
        == moment.isoformat()[:-6] + "Z"
        for moment in _INSTANT_AGREEMENT
    )


_ORJSON_WRITES_INSTANTS = orjson_writes_instants()


def is_plain_json(value: Any) -> bool:
    """Whether `value` holds only JSON objects (string keys), arrays (lists, tuples), strings,
    integers, booleans and nulls, exactly of those types (no subclass: orjson writes some,
    e.g. enumerations, where `json` would not)."""
    kind = type(value)
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str or not (type(item) in _PLAIN_SCALARS or is_plain_json(item)):
                return False
        return True
    if kind is list or kind is tuple:
        return all(type(item) in _PLAIN_SCALARS or is_plain_json(item) for item in value)
    return kind in _PLAIN_SCALARS


@dataclass(frozen=True, slots=True)
class IncidentEvent:
    """One recorded event of an incident: what every projection folds over."""

    incident_id: str
    position: int
    type: EventType
    occurred_at: datetime
    recorded_at: datetime
    actor: str
    source: str | None
    message_id: str
    data: Mapping[str, Any]
    prev_hash: str
    hash: str
    redrive: str | None = None
    """Set when the event was recorded by `slatrail redrive`: the dead letter it came from
    (`<rejected topic>/<partition>/<offset>` or `file:<name>:<line>`); hashed only when set."""
    traceparent: str | None = None
    """The W3C trace context the message came with (its `traceparent` header), if any: transport
    context carried to `incidents.events`, not a fact about the incident, so never hashed and not
    among EVENT_FIELDS (docs/reference/topics.md, "Trace context")."""

    def canonical_fields(self) -> dict[str, Any]:
        return chain_fields(
            incident_id=self.incident_id,
            position=self.position,
            type=self.type,
            occurred_at=self.occurred_at,
            recorded_at=self.recorded_at,
            actor=self.actor,
            source=self.source,
            message_id=self.message_id,
            data=self.data,
            redrive=self.redrive,
        )

    def computed_hash(self) -> str:
        return chain_hash(self.prev_hash, self.canonical_fields())


def chain_fields(
    *,
    incident_id: str,
    position: int,
    type: EventType,
    occurred_at: datetime,
    recorded_at: datetime,
    actor: str,
    source: str | None,
    message_id: str,
    data: Mapping[str, Any],
    redrive: str | None = None,
) -> dict[str, Any]:
    """The fields covered by the hash chain, in their canonical (JSON) form.

    `redrive` is a member only when set, so an event that did not come by redrive hashes
    exactly as before the field existed (docs/audit.md §2)."""
    fields = {
        "incident_id": incident_id,
        "position": position,
        "type": str(type),
        "occurred_at": format_instant(occurred_at),
        "recorded_at": format_instant(recorded_at),
        "actor": actor,
        "source": source,
        "message_id": message_id,
        "data": dict(data),
    }
    if redrive is not None:
        fields["redrive"] = redrive
    return fields


def chain_hash(prev_hash: str, fields: Mapping[str, Any]) -> str:
    """hash = SHA-256(prev_hash as ASCII hex ‖ canonical JSON of the fields), hex."""
    body = canonical_json(fields if type(fields) is dict else dict(fields))
    return hashlib.sha256(prev_hash.encode("ascii") + body).hexdigest()


EVENT_FIELDS: tuple[str, ...] = (
    "incident_id",
    "position",
    "type",
    "occurred_at",
    "recorded_at",
    "actor",
    "source",
    "message_id",
    "data",
    "prev_hash",
    "hash",
    "redrive",
)
"""`IncidentEvent`'s fields in the order of its JSON form (`event_to_dict`)."""


def event_to_dict(event: IncidentEvent) -> dict[str, Any]:
    """The one JSON form of an event: its hashed fields (canonical form) and its chain links.

    `redrive` is a member only when set. Used by the `incidents.events` envelope, the read-model
    rows, the audit trail and the export."""
    fields = event.canonical_fields()
    redrive = fields.pop("redrive", None)
    fields["prev_hash"] = event.prev_hash
    fields["hash"] = event.hash
    if redrive is not None:
        fields["redrive"] = redrive
    return fields


def event_from_dict(obj: Mapping[str, Any]) -> IncidentEvent:
    """Inverse of `event_to_dict`; raises KeyError/ValueError/TypeError on a malformed object."""
    data = obj["data"]
    if not isinstance(data, dict):
        raise TypeError("data must be an object")
    source = obj["source"]
    redrive = obj.get("redrive")
    return IncidentEvent(
        incident_id=str(obj["incident_id"]),
        position=int(obj["position"]),
        type=EventType(obj["type"]),
        occurred_at=parse_instant(str(obj["occurred_at"])),
        recorded_at=parse_instant(str(obj["recorded_at"])),
        actor=str(obj["actor"]),
        source=None if source is None else str(source),
        message_id=str(obj["message_id"]),
        data=data,
        prev_hash=str(obj["prev_hash"]),
        hash=str(obj["hash"]),
        redrive=None if redrive is None else str(redrive),
    )
