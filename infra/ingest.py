"""Recording JSON Lines input in batches; rejected lines are kept next to the input."""

from __future__ import annotations

import os
import select
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import IO

import structlog

from slatrail.application.outcomes import Decoded, IngestCounts, Outcome, Status
from slatrail.application.overlapped import OverlappedRecording
from slatrail.application.service import SlatrailApplication
from slatrail.domain.errors import InvalidMessageError
from slatrail.infra.deadletters import DeadLetterFile, encode_dead_letter
from slatrail.infra.rejections import rejection_record
from slatrail.infra.wire import decode

log = structlog.get_logger("slatrail.ingest")

BATCH_SIZE = 2000
# A pipe quiet this long has its batched lines recorded without waiting for a full batch.
QUIET_S = 1.0
READ_BYTES = 1 << 16


class Ingestor:
    """Feeds raw messages to the application in batches; reports every outcome. A batch is
    written while the next one is read and applied (`OverlappedRecording`); `flush` records
    the lines batched so far and waits until they are written."""

    def __init__(
        self,
        app: SlatrailApplication,
        clock: Callable[[], datetime],
        on_rejected: Callable[[bytes, Outcome, int | None], None],
        batch_size: int = BATCH_SIZE,
        *,
        overlap_writes: bool = False,
    ) -> None:
        self.app = app
        self.clock = clock
        self.on_rejected = on_rejected
        self.batch_size = batch_size
        self.counts = IngestCounts()
        self._batch: list[tuple[Decoded, bytes, int | None]] = []
        self._recording = OverlappedRecording(app, overlap=overlap_writes)
        self._in_flight: deque[list[tuple[Decoded, bytes, int | None]]] = deque()

    def __enter__(self) -> Ingestor:
        return self

    def __exit__(self, *exc: object) -> None:
        self._recording.close()

    def feed(self, raw: bytes, line: int | None = None) -> None:
        try:
            decoded = decode(raw)
        except InvalidMessageError as error:
            self._done(raw, Outcome.rejected(error), line)
            return
        self._batch.append((decoded, raw, line))
        if len(self._batch) >= self.batch_size:
            self._start()

    def flush(self) -> None:
        self._start()
        self._report(self._recording.drain())

    def _start(self) -> None:
        if not self._batch:
            return
        batch, self._batch = self._batch, []
        self._in_flight.append(batch)
        self._report(self._recording.record([item[0] for item in batch], now=self.clock()))

    def _report(self, ended: list[list[Outcome]]) -> None:
        for outcomes in ended:
            batch = self._in_flight.popleft()
            for (_, raw, line), outcome in zip(batch, outcomes, strict=True):
                self._done(raw, outcome, line)

    def _done(self, raw: bytes, outcome: Outcome, line: int | None) -> None:
        self.counts.add(outcome)
        if outcome.status == Status.REJECTED:
            log.warning(
                "message_rejected",
                line=line,
                incident_id=outcome.incident_id,
                message_id=outcome.message_id,
                code=outcome.code,
                reason=outcome.reason,
            )
            self.on_rejected(raw, outcome, line)


def pipe_lines(
    fd: int, quiet_s: float = QUIET_S, read_bytes: int = READ_BYTES
) -> Iterator[bytes | None]:
    """The lines read from the pipe or terminal `fd` as they arrive (each with its line end;
    the last one without, if the input ends without one), and `None` whenever nothing came for
    `quiet_s` seconds while part of a line or nothing is pending: the input is quiet."""
    parts: list[bytes] = []  # of a line not ended yet (a long line is not copied per read)
    while True:
        ready, _, _ = select.select([fd], [], [], quiet_s)
        if not ready:
            yield None
            continue
        chunk = os.read(fd, read_bytes)
        if not chunk:
            if parts:
                yield b"".join(parts)
            return
        start = 0
        while (end := chunk.find(b"\n", start)) >= 0:
            parts.append(chunk[start : end + 1])
            yield b"".join(parts)
            parts = []
            start = end + 1
        if start < len(chunk):
            parts.append(chunk[start:])


def ingest_lines(
    lines: Iterable[bytes | None],
    app: SlatrailApplication,
    clock: Callable[[], datetime],
    rejected_out: IO[str] | Callable[[], IO[str]] | DeadLetterFile,
    progress: Callable[[int], None] | None = None,
    *,
    overlap_writes: bool = False,
) -> IngestCounts:
    """Record every non-blank line; rejected ones are appended to `rejected_out` as JSON
    (to a `DeadLetterFile`: unless it holds that dead letter already, e.g. from an earlier run).
    A `None` among the lines (a quiet pipe, `pipe_lines`) records the lines batched so far.
    `overlap_writes`: each batch is written while the next is read and applied (a store that
    is a server: docs/scale.md, "Writes overlapped")."""
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

    with Ingestor(app, clock, keep, overlap_writes=overlap_writes) as ingestor:
        number = 0
        for raw in lines:
            if raw is None:
                ingestor.flush()
                continue
            number += 1
            body = raw.rstrip(b"\r\n")
            if body.strip():
                ingestor.feed(body, number)
            if progress is not None:
                progress(len(raw))
        ingestor.flush()
    if sink is not None:
        sink.flush()
    return ingestor.counts
