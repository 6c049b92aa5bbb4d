"""Bytes → `slatrail.incident/v1` messages: the wire codec, run once at the edge; every refusal
gets a stable code (reference/wire.md)."""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from typing import Any

import structlog
from pydantic import ValidationError

from slatrail.domain.errors import InvalidMessageError, unprocessable_reason
from slatrail.domain.messages import MAX_MESSAGE_BYTES, MESSAGE_ADAPTER, SCHEMA, IncidentMessage

log = structlog.get_logger("slatrail.wire")

_CODE_BY_PYDANTIC_TYPE = {
    "extra_forbidden": "unknown_field",
    "missing": "missing_field",
    "timezone_aware": "naive_timestamp",
    "union_tag_invalid": "unknown_type",
    "union_tag_not_found": "missing_field",
    "json_invalid": "invalid_json",
}


def decode(raw: bytes | str) -> tuple[IncidentMessage, dict[str, Any]]:
    """Validate one message; returns it with its parsed JSON object (for fingerprinting).

    Total: any input either decodes or raises `InvalidMessageError` with a specific code (an
    unforeseen failure is `unprocessable`, never another exception)."""
    try:
        return _decode(raw)
    except InvalidMessageError:
        raise
    except Exception as error:  # a defect here must not stop a consumer: one dead letter
        log.error("message_unprocessable", stage="decode", error_class=type(error).__name__)
        raise InvalidMessageError("unprocessable", unprocessable_reason(error)) from error


def _decode(raw: bytes | str) -> tuple[IncidentMessage, dict[str, Any]]:
    if isinstance(raw, str):
        try:
            body = raw.encode("utf-8")
        except UnicodeEncodeError as error:  # a str holding lone surrogates
            raise InvalidMessageError(
                "invalid_encoding", f"message is not Unicode text: {error}"
            ) from error
    else:
        body = raw
    if len(body) > MAX_MESSAGE_BYTES:
        raise InvalidMessageError(
            "too_large", f"message is {len(body)} bytes; the limit is {MAX_MESSAGE_BYTES} (1 MiB)"
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidMessageError("invalid_encoding", f"message is not UTF-8: {error}") from error
    try:
        obj = strict_loads(text)
    except _DuplicateKeyError as error:
        raise InvalidMessageError("duplicate_field", str(error)) from error
    except (ValueError, RecursionError) as error:  # also too deeply nested, or huge integers
        raise InvalidMessageError("invalid_json", f"message is not valid JSON: {error}") from error
    if _MAY_HOLD_SURROGATE.search(body):
        where = lone_surrogate_at(obj)
        if where is not None:
            raise InvalidMessageError(
                "invalid_encoding",
                f"{where} holds a lone UTF-16 surrogate escape (\\ud800–\\udfff not in a "
                "valid pair): not Unicode text",
            )
    if not isinstance(obj, dict):
        raise InvalidMessageError(
            "not_an_object", f"message must be a JSON object, got {type(obj).__name__}"
        )
    incident_id = _readable_incident_id(obj.get("incident_id"))
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


_INCIDENT_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def _readable_incident_id(value: object) -> str | None:
    """The incident_id a refusal carries (dead-letter field, Kafka key, logs): only a valid one,
    so a megabyte or an escape sequence sent as `incident_id` never becomes a key or a log."""
    if isinstance(value, str) and _INCIDENT_ID.fullmatch(value):
        return value
    return None


# A `\uD800`–`\uDFFF` escape (maybe preceded by an escaped backslash: then a false alarm that
# `lone_surrogate_at` clears). Strict UTF-8 decoding cannot produce surrogates otherwise.
_MAY_HOLD_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (RFC 8259 has no NaN or Infinity)")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def strict_loads(text: str) -> Any:
    """`json.loads` for an audit trail: no NaN/Infinity, no number beyond a float, no repeated
    key (raises `ValueError`; `_DuplicateKeyError` for a repeated key)."""
    if text.startswith("\ufeff"):  # what json.loads refuses before decoding
        raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
    return _STRICT_DECODER.decode(text)


def _is_unicode(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def lone_surrogate_at(obj: Any) -> str | None:
    """Path of the first key or string holding a lone surrogate, else None (iterative: the
    object may be nested as deep as the parser allows)."""
    stack: list[tuple[Any, str]] = [(obj, "message")]
    while stack:
        value, path = stack.pop()
        if isinstance(value, str):
            if not _is_unicode(value):
                return path
        elif isinstance(value, dict):
            for key, item in value.items():
                if not _is_unicode(key):
                    return f"a key in {path}"
                stack.append((item, key if path == "message" else f"{path}.{key}"))
        elif isinstance(value, list):
            stack.extend((item, f"{path}[{index}]") for index, item in enumerate(value))
    return None


class _DuplicateKeyError(ValueError):
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
    return _visible(".".join(parts)) or "message"


_INVISIBLE = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _visible(name: str) -> str:
    """A field name as it may appear in a reason: control characters as `\\xNN` escapes (an
    unknown key can hold anything; reasons end up in logs and on terminals)."""
    return _INVISIBLE.sub(lambda m: f"\\x{ord(m.group()):02x}", name)


def _message(problem: Any) -> str:
    if problem["type"] == "timezone_aware":
        return "timestamp must carry an offset (Z or +08:00); naive timestamps are rejected"
    if problem["type"] == "extra_forbidden":
        return "unknown field (not in slatrail.incident/v1)"
    msg = str(problem["msg"])
    return msg.removeprefix("Value error, ")


# One decoder for every message (json.loads builds a new one per call when given hooks).
_STRICT_DECODER = json.JSONDecoder(
    object_pairs_hook=_unique_keys, parse_constant=_no_constant, parse_float=_finite_float
)
