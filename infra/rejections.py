"""Dead-letter entries (docs/dead-letters.md): what a refused message becomes, in a
`*.rejected.jsonl` file and on `incidents.rejected`. The consumers get them through
`KafkaDeadLetters` (their `DeadLetters` port)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from slatrail.application.outcomes import Outcome
from slatrail.consumers.streams import Record
from slatrail.domain.model import format_instant
from slatrail.infra.deadletters import DEAD_LETTER_FORMAT, encode_dead_letter
from slatrail.infra.wire import lone_surrogate_at, strict_loads

PREFIX_BYTES = 64 * 1024


def rejection_record(
    raw: bytes, outcome: Outcome, *, line: int | None, rejected_at: datetime
) -> dict[str, Any]:
    """A dead-letter entry (docs/dead-letters.md): the original message, why, and when.

    Exactly one of `message` (the parsed JSON object), `raw` (the text, when it is UTF-8 but
    not a JSON object slatrail can hold losslessly) and `raw_base64` (the bytes, when they are
    not UTF-8 text) holds the original; the other two are null."""
    message, text, encoded = preserve(raw)
    record: dict[str, Any] = {
        "dead_letter": DEAD_LETTER_FORMAT,
        "code": outcome.code,
        "reason": _text(outcome.reason),
        "incident_id": _text(outcome.incident_id),
        "message_id": _text(outcome.message_id),
        "rejected_at": format_instant(rejected_at),
        "message": message,
        "raw": text,
        "raw_base64": encoded,
    }
    if line is not None:
        record["line"] = line
    return record


def preserve(raw: bytes) -> tuple[dict[str, Any] | None, str | None, str | None]:
    """(message, raw, raw_base64): the original as a JSON object when strict JSON parses it
    without loss, else as UTF-8 text, else as base64 of the bytes."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None, None, base64.b64encode(raw).decode("ascii")
    try:
        parsed: Any = strict_loads(text)
    except (ValueError, RecursionError):  # not JSON, NaN, a repeated key (would lose a value)
        return None, text, None
    if isinstance(parsed, dict) and lone_surrogate_at(parsed) is None:
        return parsed, None, None
    return None, text, None  # the text itself is UTF-8: its `\ud800` escapes are kept as text


def _text(value: str | None) -> str | None:
    """A reason or id as UTF-8-encodable text (a lone surrogate becomes its escape)."""
    if value is None:
        return None
    return value.encode("utf-8", "backslashreplace").decode("utf-8")


def dead_letter(record: Record, outcome: Outcome, rejected_at: datetime) -> dict[str, Any]:
    """The `incidents.rejected` entry: the file ingest's dead letter (original message as JSON,
    text or base64, why, when) plus where it was read (docs/dead-letters.md)."""
    raw = record.value or b""
    entry = rejection_record(raw, outcome, line=None, rejected_at=rejected_at)
    entry.update(_origin(record))
    return entry


def truncated_dead_letter(
    record: Record, outcome: Outcome, rejected_at: datetime
) -> dict[str, Any]:
    """Fallback when the full entry is too large for the broker: a prefix plus a digest.

    The original stays in the inbound topic at (topic, partition, offset).
    """
    raw = record.value or b""
    entry = rejection_record(b"", outcome, line=None, rejected_at=rejected_at)
    entry.update(
        message=None,
        raw=None,
        raw_base64=None,
        truncated=True,
        raw_bytes=len(raw),
        raw_sha256=hashlib.sha256(raw).hexdigest(),
        raw_prefix_base64=base64.b64encode(raw[:PREFIX_BYTES]).decode("ascii"),
    )
    entry.update(_origin(record))
    return entry


def _origin(record: Record) -> dict[str, Any]:
    key: str | None = None
    key_base64: str | None = None
    if record.key is not None:
        try:
            key = record.key.decode("utf-8")
        except UnicodeDecodeError:
            key_base64 = base64.b64encode(record.key).decode("ascii")
    timestamp = None
    if record.timestamp_ms is not None and record.timestamp_ms >= 0:
        timestamp = format_instant(datetime.fromtimestamp(record.timestamp_ms / 1000, UTC))
    return {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "key": key,
        **({"key_base64": key_base64} if key_base64 is not None else {}),
        "timestamp": timestamp,
    }


class KafkaDeadLetters:
    """The inbound consumer's `DeadLetters`: entries as above, encoded as strict one-line JSON."""

    def entry(self, record: Record, outcome: Outcome, rejected_at: datetime) -> dict[str, Any]:
        return dead_letter(record, outcome, rejected_at)

    def truncated(self, record: Record, outcome: Outcome, rejected_at: datetime) -> dict[str, Any]:
        return truncated_dead_letter(record, outcome, rejected_at)

    def encode(self, entry: Mapping[str, Any]) -> bytes:
        return encode_dead_letter(entry).encode("utf-8")
