"""W3C Trace Context on inbound messages (docs/reference/topics.md, "Trace context").

A message's `traceparent` header, when it is a valid version-00 trace context, is carried to the
event it records and from there to its `incidents.events` message, so that a publisher's trace
continues through slatrail. An invalid header is ignored, as the W3C recommendation says (the
message itself is not refused for it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

HEADER = "traceparent"
_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def valid_traceparent(value: bytes | str | None) -> str | None:
    """The header's text if it is a usable trace context: lower-case hex, version not `ff`,
    trace id and parent id not all zeros (version 00 has exactly these four fields)."""
    if value is None:
        return None
    try:
        text = value.decode("ascii") if isinstance(value, bytes) else value
    except UnicodeDecodeError:
        return None
    match = _TRACEPARENT.match(text.strip())
    if match is None:
        return None
    version, trace_id, parent_id, _ = match.groups()
    if version == "ff" or trace_id == "0" * 32 or parent_id == "0" * 16:
        return None
    if version == "00" and len(text.strip()) != 55:
        return None
    return text.strip()


def trace_context(headers: Iterable[tuple[str, bytes | None]]) -> str | None:
    """The valid `traceparent` among a record's headers (the first one), else None."""
    for name, value in headers:
        if name.lower() == HEADER:
            return valid_traceparent(value)
    return None
