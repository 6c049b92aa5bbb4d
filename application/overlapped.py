"""Recording batch after batch with each batch's write to the store overlapping the next.

`SlatrailApplication.record` applies a batch, then waits while the store writes it: a
PostgreSQL server (or SQLite's C code, which releases the interpreter) works on its own CPU
while this process waits. Here the write of batch N runs in a thread of its own while batch N+1
is decoded and applied, so on a machine with two CPUs the store's time is mostly hidden
(docs/scale.md, "Ingest": "Writes overlapped").

What each batch records is what `record` would record, batch after batch:
- batch N+1 is applied to the incidents as batch N left them (remembered, not yet stored), and
  a message of N+1 repeating one of N is answered from N's receipts, not from the store;
- outcomes of batch N are given only once its transaction committed;
- if N's write fails, or applying N+1 raises, nothing of the overlap is kept: the remembered
  incidents are dropped and each batch is recorded again by `record`, alone, with its full
  error handling (a conflicting writer, one unprocessable message, store trouble raised).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from slatrail.application.outcomes import Decoded, Outcome
from slatrail.application.service import PreparedBatch, SlatrailApplication


@dataclass(frozen=True, slots=True)
class _InFlight:
    batch: Sequence[Decoded]
    now: datetime
    prepared: PreparedBatch
    written: Future[None]


class OverlappedRecording:
    """`record` of one batch after another, at most one batch's write under way at a time.
    Use it as a context manager (or call `close`): the last write is waited for.

    `overlap=False` records each batch at once, in this thread: for SQLite, whose writes run
    in this process and take the interpreter lock back for every row, so that a writer
    thread only competes with the next batch (measured: docs/scale.md)."""

    def __init__(self, app: SlatrailApplication, *, overlap: bool = True) -> None:
        self._app = app
        self._overlap = overlap
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="slatrail-write")
        self._in_flight: _InFlight | None = None

    def __enter__(self) -> OverlappedRecording:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def record(self, batch: Sequence[Decoded], *, now: datetime) -> list[list[Outcome]]:
        """Start recording `batch`. Returns the outcomes of every batch whose recording has
        ended since the last call, oldest first: the batch before this one, and this one
        too if it had to be recorded without overlap."""
        if not self._overlap:
            return [self._app.record(batch, now=now)]
        previous = self._in_flight
        self._in_flight = None
        try:
            prepared: PreparedBatch | None = self._app.prepare(
                batch, now=now, after=previous.prepared if previous is not None else None
            )
        except Exception:  # recorded again below, by `record` and its error handling
            prepared = None
        ended: list[list[Outcome]] = []
        if previous is not None:
            outcomes, kept = self._settle(previous)
            ended.append(outcomes)
            if not kept:
                prepared = None
        if prepared is None:
            self._app.forget()
            ended.append(self._app.record(batch, now=now))
            return ended
        self._in_flight = _InFlight(
            batch, now, prepared, self._writer.submit(self._app.write, prepared)
        )
        return ended

    def drain(self) -> list[list[Outcome]]:
        """Wait for the write under way: the outcomes of its batch (none if there is none)."""
        previous, self._in_flight = self._in_flight, None
        return [] if previous is None else [self._settle(previous)[0]]

    def close(self) -> None:
        """Wait for the write under way (its outcomes are dropped: `drain` first to keep
        them), then stop the writer thread."""
        try:
            self.drain()
        finally:
            self._writer.shutdown(wait=True)

    def _settle(self, flight: _InFlight) -> tuple[list[Outcome], bool]:
        """The outcomes of `flight` once its write ended, and whether it was written as
        prepared (False: it failed and was recorded again, alone)."""
        try:
            flight.written.result()
        except Exception:
            self._app.forget()
            return self._app.record(flight.batch, now=flight.now), False
        return flight.prepared.outcomes, True
