"""Recording JSON Lines input in batches; rejected lines are kept next to the input."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any

import structlog

from domain.errors import InvalidMessageError
from domain.model import format_instant
from infra.deadletters import DEAD_LETTER_FORMAT, DeadLetterFile, encode_dead_letter
from infra.store import Decoded, Outcome, SlatrailApplication
from infra.wire import decode, lone_surrogate_at, strict_loads

log = structlog.get_logger("slatrail.ingest")

BATCH_SIZE = 500


@dataclass
class IngestCounts:
    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0
    by_code: dict[str, int] = field(default_factory=dict)

    def add(self, outcome: Outcome) -> None:
        if outcome.status == "accepted":
            self.accepted += 1
        elif outcome.status == "duplicate":
            self.duplicate += 1
        else:
            self.rejected += 1
            code = outcome.code or "rejected"
            self.by_code[code] = self.by_code.get(code, 0) + 1

    @property
    def total(self) -> int:
        return self.accepted + self.duplicate + self.rejected

    def as_json(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "duplicate": self.duplicate,
            "rejected": self.rejected,
            "rejected_by_code": dict(sorted(self.by_code.items())),
        }


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


class Ingestor:
    """Feeds raw messages to the application in batches; reports every outcome."""

    def __init__(
        self,
        app: SlatrailApplication,
        clock: Callable[[], datetime],
        on_rejected: Callable[[bytes, Outcome, int | None], None],
        batch_size: int = BATCH_SIZE,
    ) -> None:
        self.app = app
        self.clock = clock
        self.on_rejected = on_rejected
        self.batch_size = batch_size
        self.counts = IngestCounts()
        self._batch: list[tuple[Decoded, bytes, int | None]] = []

    def feed(self, raw: bytes, line: int | None = None) -> None:
        try:
            decoded = decode(raw)
        except InvalidMessageError as error:
            self._done(raw, Outcome.rejected(error), line)
            return
        self._batch.append((decoded, raw, line))
        if len(self._batch) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        if not self._batch:
            return
        batch, self._batch = self._batch, []
        outcomes = self.app.record([item[0] for item in batch], now=self.clock())
        for (_, raw, line), outcome in zip(batch, outcomes, strict=True):
            self._done(raw, outcome, line)

    def _done(self, raw: bytes, outcome: Outcome, line: int | None) -> None:
        self.counts.add(outcome)
        if outcome.status == "rejected":
            log.warning(
                "message_rejected",
                line=line,
                incident_id=outcome.incident_id,
                message_id=outcome.message_id,
                code=outcome.code,
                reason=outcome.reason,
            )
            self.on_rejected(raw, outcome, line)


def ingest_lines(
    lines: Iterable[bytes],
    app: SlatrailApplication,
    clock: Callable[[], datetime],
    rejected_out: IO[str] | Callable[[], IO[str]] | DeadLetterFile,
    progress: Callable[[int], None] | None = None,
) -> IngestCounts:
    """Record every non-blank line; rejected ones are appended to `rejected_out` as JSON
    (to a `DeadLetterFile`: unless it holds that dead letter already, e.g. from an earlier run)."""
    sink: IO[str] | DeadLetterFile | None = None if callable(rejected_out) else rejected_out

    def keep(raw: bytes, outcome: Outcome, line: int | None) -> None:
        nonlocal sink
        if sink is None:
            assert callable(rejected_out)
            sink = rejected_out()
        record = rejection_record(raw, outcome, line=line, rejected_at=clock())
        if isinstance(sink, DeadLetterFile):
            sink.add(record)
        else:
            sink.write(encode_dead_letter(record) + "\n")

    ingestor = Ingestor(app, clock, keep)
    for number, raw in enumerate(lines, start=1):
        body = raw.rstrip(b"\r\n")
        if body.strip():
            ingestor.feed(body, number)
        if progress is not None:
            progress(len(raw))
    ingestor.flush()
    if sink is not None:
        sink.flush()
    return ingestor.counts
