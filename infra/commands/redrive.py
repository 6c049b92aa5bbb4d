"""`slatrail redrive [--file X.rejected.jsonl]`: re-submit dead letters once their cause is fixed.

From the `incidents.rejected` topic (default; `--kafka`) or a dead-letter file, filtered by
`--code`, `--incident`, `--since`; exit 1 if any dead letter in scope is still not recorded.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from slatrail.application.outcomes import Outcome
from slatrail.infra.bootstrap import Container
from slatrail.infra.deadletters import DeadLetter, DeadLetterFile, read_file
from slatrail.infra.kafka import KafkaNotConfiguredError, client_config, quiet_kafka_logging
from slatrail.infra.redrive import (
    Filter,
    RedriveCounts,
    TopicNotFoundError,
    read_topic,
    redrive,
    still_rejected_entry,
)
from slatrail.infra.render import to_json
from slatrail.infra.timearg import instant

SHOWN_NOT_REDRIVABLE = 20


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "redrive",
        help="re-submit dead letters (incidents.rejected, or --file X.rejected.jsonl)",
    )
    parser.add_argument(
        "--file", type=Path,
        help="a dead-letter file (e.g. incidents.rejected.jsonl) instead of the rejected topic",
    )  # fmt: skip
    parser.add_argument(
        "--code", action="append", metavar="CODE",
        help="only dead letters with this code (repeatable, or comma-separated)",
    )  # fmt: skip
    parser.add_argument("--incident", help="only dead letters of this incident_id")
    parser.add_argument(
        "--since", type=instant, help="only dead letters rejected at or after this instant"
    )
    parser.add_argument(
        "--rejected", type=Path,
        help="where dead letters that fail again go (default: <file stem>.redrive.rejected.jsonl "
        "next to --file, or <rejected topic>.redrive.rejected.jsonl)",
    )  # fmt: skip
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.set_defaults(handler=run)


def still_rejected_path(container: Container, args: argparse.Namespace) -> Path:
    if args.rejected is not None:
        path: Path = args.rejected
        return path
    if args.file is None:
        return Path(f"{container.settings.topic_rejected}.redrive.rejected.jsonl")
    redriven: Path = args.file
    name = redriven.name
    stem = name[: -len(".rejected.jsonl")] if name.endswith(".rejected.jsonl") else name
    stem = stem[: -len(".jsonl")] if stem.endswith(".jsonl") else stem
    return redriven.with_name(f"{stem}.redrive.rejected.jsonl")


def _filter(args: argparse.Namespace) -> Filter:
    codes = None
    if args.code:
        codes = frozenset(c.strip() for arg in args.code for c in arg.split(",") if c.strip())
    return Filter(codes=codes, incident=args.incident, since=args.since)


def run(container: Container, args: argparse.Namespace) -> int:
    out_path = still_rejected_path(container, args)
    if args.file is not None:
        if not args.file.is_file():
            print(f"slatrail redrive: cannot read {args.file}: not a file", file=sys.stderr)
            return 2
        if out_path.resolve() == args.file.resolve():
            print("slatrail redrive: --rejected must not be the file being redriven",
                  file=sys.stderr)  # fmt: skip
            return 2
        source = str(args.file)
        letters: Iterable[DeadLetter] = read_file(args.file)
    else:
        topic = container.settings.topic_rejected
        try:
            config = client_config(container.settings)
        except KafkaNotConfiguredError as error:
            print(f"slatrail redrive: {error} (or use --file X.rejected.jsonl)", file=sys.stderr)
            return 2
        quiet_kafka_logging()
        source = topic
        letters = read_topic(config, topic, timeout_s=container.settings.kafka_request_timeout_ms
                             / 1000)  # fmt: skip
    failed = DeadLetterFile(out_path)

    def keep(letter: DeadLetter, raw: bytes, outcome: Outcome) -> None:
        failed.add(still_rejected_entry(letter, raw, outcome, container.clock()))

    try:
        counts = redrive(letters, container.app, container.clock, keep, _filter(args))
    except TopicNotFoundError as error:
        print(f"slatrail redrive: {error}", file=sys.stderr)
        return 2
    except TimeoutError as error:
        print(f"slatrail redrive: cannot read {source}: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"slatrail redrive: {error.filename or source}: {error.strerror or error}",
              file=sys.stderr)  # fmt: skip
        return 2
    except Exception as error:  # kafka-python: NoBrokersAvailable, KafkaTimeoutError, …
        if type(error).__module__.startswith("kafka"):
            print(f"slatrail redrive: cannot read {source} from Kafka: {error!r}",
                  file=sys.stderr)  # fmt: skip
            return 2
        raise
    finally:
        opened = failed.opened
        failed.close()
    written = str(out_path) if opened else None
    if args.format == "json":
        print(to_json({"source": source, **counts.as_json(), "rejected_file": written}))
    else:
        print(render(source, counts, written, failed.already))
    return 1 if counts.unresolved else 0


def render(source: str, counts: RedriveCounts, written: str | None, already: int) -> str:
    lines = [
        f"redrive of {source}: {counts.read} dead letters read",
        f"accepted {counts.accepted}, duplicate {counts.duplicate}, "
        f"still rejected {counts.still_rejected}, not redrivable {len(counts.not_redrivable)}, "
        f"skipped by filter {counts.skipped}",
    ]
    lines += [f"  still rejected {code}: {n}" for code, n in sorted(counts.by_code.items())]
    for item in counts.not_redrivable[:SHOWN_NOT_REDRIVABLE]:
        lines.append(f"  not redrivable {item['dead_letter']}: {item['reason']}")
    hidden = len(counts.not_redrivable) - SHOWN_NOT_REDRIVABLE
    if hidden > 0:
        lines.append(f"  … and {hidden} more not redrivable (--format json lists them all)")
    if written is not None:
        note = f" ({already} already there, not repeated)" if already else ""
        lines.append(f"dead letters that failed again written to {written}{note}")
    return "\n".join(lines)
