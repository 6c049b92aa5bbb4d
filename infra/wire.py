"""Bytes ⇄ `slatrail.incident/v1` messages; every refusal gets a stable code (SPEC §3)."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from typing import Any

from pydantic import ValidationError

from domain.errors import InvalidMessageError
from domain.incident import Fact
from domain.messages import MAX_MESSAGE_BYTES, MESSAGE_ADAPTER, SCHEMA, IncidentMessage
from domain.model import canonical_json

_CODE_BY_PYDANTIC_TYPE = {
    "extra_forbidden": "unknown_field",
    "missing": "missing_field",
    "timezone_aware": "naive_timestamp",
    "union_tag_invalid": "unknown_type",
    "union_tag_not_found": "missing_field",
    "json_invalid": "invalid_json",
}


def decode(raw: bytes | str) -> tuple[IncidentMessage, dict[str, Any]]:
    """Validate one message; returns it with its parsed JSON object (for fingerprinting)."""
    body = raw.encode("utf-8") if isinstance(raw, str) else raw
    if len(body) > MAX_MESSAGE_BYTES:
        raise InvalidMessageError(
            "too_large", f"message is {len(body)} bytes; the limit is {MAX_MESSAGE_BYTES} (1 MiB)"
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidMessageError("invalid_encoding", f"message is not UTF-8: {error}") from error
    try:
        obj = json.loads(text, object_pairs_hook=_unique_keys)
    except _DuplicateKeyError as error:
        raise InvalidMessageError("duplicate_field", str(error)) from error
    except (ValueError, RecursionError) as error:  # also too deeply nested, or huge integers
        raise InvalidMessageError("invalid_json", f"message is not valid JSON: {error}") from error
    if not isinstance(obj, dict):
        raise InvalidMessageError(
            "not_an_object", f"message must be a JSON object, got {type(obj).__name__}"
        )
    incident_id = obj.get("incident_id") if isinstance(obj.get("incident_id"), str) else None
    if obj.get("schema") != SCHEMA:
        raise InvalidMessageError(
            "unsupported_schema",
            f"schema must be {SCHEMA!r}, got {obj.get('schema')!r}",
            incident_id=incident_id,
        )
    try:
        message = MESSAGE_ADAPTER.validate_json(body)
    except ValidationError as error:
        raise _rejection(error, incident_id) from error
    return message, obj


class _DuplicateKeyError(Exception):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # JSON parsers keep the last of repeated keys: an audit system must not drop the others.
    obj = dict(pairs)
    if len(obj) != len(pairs):
        counts = Counter(key for key, _ in pairs)
        repeated = sorted(key for key, n in counts.items() if n > 1)
        raise _DuplicateKeyError(
            f"field(s) {', '.join(map(repr, repeated))} appear more than once in one object"
        )
    return obj


def _rejection(error: ValidationError, incident_id: str | None) -> InvalidMessageError:
    problems = error.errors(include_url=False)
    first = problems[0]
    code = _CODE_BY_PYDANTIC_TYPE.get(first["type"], "invalid_field")
    reason = "; ".join(f"{_field(p['loc'], p['type'])}: {_message(p)}" for p in problems)
    return InvalidMessageError(code, reason, incident_id=incident_id)


def _field(loc: tuple[int | str, ...], kind: str) -> str:
    # pydantic puts the union tag first ("reported", "data", "priority"): drop it.
    parts = [str(p) for p in loc[1:]] if kind not in ("union_tag_invalid",) else []
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        return "type"
    return ".".join(parts) or "message"


def _message(problem: Any) -> str:
    if problem["type"] == "timezone_aware":
        return "timestamp must carry an offset (Z or +08:00); naive timestamps are rejected"
    if problem["type"] == "extra_forbidden":
        return "unknown field (not in slatrail.incident/v1)"
    msg = str(problem["msg"])
    return msg.removeprefix("Value error, ")


def to_fact(message: IncidentMessage) -> Fact:
    return Fact(
        type=message.event_type,
        incident_id=message.incident_id,
        occurred_at=message.occurred_at,
        actor=message.actor,
        source=message.source,
        message_id=message.message_id,
        data=message.payload,
    )


def fingerprint(obj: dict[str, Any]) -> str:
    """Content identity of a message: the same message_id with another fingerprint conflicts."""
    return hashlib.sha256(canonical_json(obj)).hexdigest()
