"""`slatrail ingest FILE|-`: record JSON Lines; exit 1 if any line was rejected."""

from __future__ import annotations

import argparse
import os
import signal
import stat
import sys
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import FrameType
from typing import IO, Any

from slatrail.infra.batch_gc import fewer_collections
from slatrail.infra.bootstrap import Container
from slatrail.infra.deadletters import DeadLetterFile
from slatrail.infra.errors import EXIT_INTERRUPTED
from slatrail.infra.ingest import ingest_lines, pipe_lines
from slatrail.infra.pathargs import output_file
from slatrail.infra.progress import Progress
from slatrail.infra.render import echo, to_json
from slatrail.infra.store import sqlite_path


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "ingest", help="record JSON Lines messages (FILE or - for stdin)"
    )
    parser.add_argument("input", help="JSON Lines file, or - for standard input")
    parser.add_argument(
        "--rejected", type=output_file,
        help="where rejected lines go (default: <input>.rejected.jsonl, "
        "or slatrail-stdin.rejected.jsonl for -)",
    )  # fmt: skip
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.set_defaults(handler=run)


def rejected_path(source: str, explicit: Path | None) -> Path:
    if explicit is not None:
        return explicit
    if source == "-":
        return Path("slatrail-stdin.rejected.jsonl")
    path = Path(source)
    stem = path.name[: -len(".jsonl")] if path.name.endswith(".jsonl") else path.name
    return path.with_name(f"{stem}.rejected.jsonl")


def _already(count: int) -> str:
    if not count:
        return ""
    return f" ({count} already there from an earlier run, not repeated)"


def _lines(stream: IO[bytes]) -> Iterator[bytes | None]:
    """A file's lines; of a pipe or terminal, its lines as they come and a pause whenever it
    is quiet (what is batched is recorded then, not only when a batch is full)."""
    if stream is sys.stdin.buffer:
        try:
            fd = stream.fileno()
            regular = stat.S_ISREG(os.fstat(fd).st_mode)
        except (OSError, ValueError):  # no descriptor (a stand-in stream): read it as a file
            return iter(stream)
        if not regular:
            return pipe_lines(fd)
    return iter(stream)


_END: Any = object()


class StopReading:
    """Ctrl-C (SIGINT) during `ingest`: stop reading input and let the batch in flight finish.

    Nothing is half-written: the batch being recorded is one transaction (recorded, with its
    dead letters written whole, or not at all); lines not yet read are not touched. A Ctrl-C
    while blocked reading (a terminal or a pipe on stdin) ends the reading at once."""

    def __init__(self) -> None:
        self.interrupted = False
        self.lines_read = 0
        self._reading = False
        self._previous: Any = None

    def __enter__(self) -> StopReading:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.interrupted = True
        if self._reading:
            raise KeyboardInterrupt

    def lines(self, lines: Iterable[bytes | None]) -> Iterator[bytes | None]:
        iterator = iter(lines)
        while not self.interrupted:
            try:
                self._reading = True
                line = next(iterator, _END)
                self._reading = False
            except KeyboardInterrupt:
                self._reading = False
                return
            if line is _END:
                return
            if line is not None:  # None: the input is quiet
                self.lines_read += 1
            yield line


def run(container: Container, args: argparse.Namespace) -> int:
    source: str = args.input
    out_path = rejected_path(source, args.rejected)
    dead_letters = DeadLetterFile(out_path)  # a dead letter already there is not repeated

    if source == "-":
        stream: IO[bytes] = sys.stdin.buffer
        total = None
    else:
        try:
            stream = open(source, "rb")  # noqa: SIM115 - closed below
        except OSError as error:
            echo(f"slatrail ingest: cannot read {source}: {error.strerror}", file=sys.stderr)
            return 2
        total = os.fstat(stream.fileno()).st_size
    progress = Progress(total)
    stop = StopReading()
    try:
        container.app  # noqa: B018 - open the store before reading: Ctrl-C then stops cleanly
        with stop, fewer_collections():
            counts = ingest_lines(
                stop.lines(_lines(stream)),
                container.app, container.clock, dead_letters, progress.advance,
                overlap_writes=sqlite_path(container.settings.store) is None,
            )  # fmt: skip
    finally:
        progress.close()
        if stream is not sys.stdin.buffer:
            stream.close()
        opened = dead_letters.opened
        dead_letters.close()
    if args.format == "json":
        print(to_json({**counts.as_json(), "rejected_file": str(out_path) if opened else None}))
    else:
        echo(f"accepted {counts.accepted}, duplicate {counts.duplicate}, "
             f"rejected {counts.rejected}")  # fmt: skip
        for code, n in sorted(counts.by_code.items()):
            echo(f"  rejected {code}: {n}")
        if opened:
            echo(f"rejected messages written to {out_path}{_already(dead_letters.already)}")
    if stop.interrupted:
        echo(f"slatrail ingest: interrupted after {stop.lines_read} lines: the counts above are "
             "what was recorded; later lines were not read", file=sys.stderr)  # fmt: skip
        return EXIT_INTERRUPTED
    return 1 if counts.rejected else 0
