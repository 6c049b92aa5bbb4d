"""`slatrail ingest FILE|-`: record JSON Lines; exit 1 if any line was rejected."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from infra.bootstrap import Container
from infra.deadletters import DeadLetterFile
from infra.ingest import ingest_lines
from infra.progress import Progress
from infra.render import echo, to_json


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "ingest", help="record JSON Lines messages (FILE or - for stdin)"
    )
    parser.add_argument("input", help="JSON Lines file, or - for standard input")
    parser.add_argument(
        "--rejected", type=Path,
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


def _lines(stream: IO[bytes]) -> Iterator[bytes]:
    yield from stream


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
    try:
        counts = ingest_lines(
            _lines(stream), container.app, container.clock, dead_letters, progress.advance
        )
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
    return 1 if counts.rejected else 0
