"""`slatrail ledger export`: the SLA ledger's intervals for BI tools
(docs/reference/commands.md#ledger-export)."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from datetime import datetime
from typing import IO, Any

import structlog

from slatrail.application.ledger import ledger_intervals, ledger_query
from slatrail.application.selection import selected_histories
from slatrail.infra.bootstrap import Container
from slatrail.infra.errors import StoreMissingError, UsageError
from slatrail.infra.ledger_check import freshness
from slatrail.infra.ledger_files import write_ledger_csv, write_ledger_parquet
from slatrail.infra.pathargs import cannot_write, output_file
from slatrail.infra.read_model_store import ReadModelStore
from slatrail.infra.render import echo
from slatrail.infra.timearg import instant
from slatrail.projections.ledger import LedgerInterval

log = structlog.get_logger("slatrail.ledger")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("ledger", help="the SLA ledger: status intervals of every clock")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    export = actions.add_parser(
        "export", help="write the ledger's intervals for BI tools (Parquet or CSV)"
    )
    export.add_argument("--format", choices=("parquet", "csv"), required=True)
    export.add_argument("--customer", help="only this customer's incidents")
    export.add_argument(
        "--from", dest="start", type=instant,
        help="only intervals that end after this instant (or have not ended)",
    )  # fmt: skip
    export.add_argument(
        "--to",
        dest="end",
        type=instant,
        help="only intervals that start before this instant (default: now)",
    )
    export.add_argument(
        "--output", type=output_file,
        help="file to write (default: standard output; Parquet is not written to a terminal)",
    )  # fmt: skip
    export.set_defaults(handler=run_export)


def materialised(
    container: Container,
    *,
    customer: str | None,
    start: datetime | None,
    end: datetime,
) -> Iterator[LedgerInterval] | None:
    """The intervals from the read-model database's ledger table, when it is current (it then
    holds exactly what computing would give: `ledger_check.freshness`); None otherwise."""
    store = current_table(container)
    if store is None:
        return None
    return store.ledger_intervals(customer=customer, start=start, end=end)


def current_table(container: Container) -> ReadModelStore | None:
    """The read-model database when its ledger table is current (log event `ledger_source`)."""
    try:
        store = container.read_models
    except StoreMissingError:
        log.info("ledger_source", source="events", why="no read-model database")
        return None
    fresh = freshness(store, container.app, container.contracts_known_at(None))
    if not fresh.current:
        log.info("ledger_source", source="events", why=fresh.why, table_at=fresh.position)
        return None
    log.info("ledger_source", source="table", table_at=fresh.position)
    return store


def run_export(container: Container, args: argparse.Namespace) -> int:
    # Without --to the window ends now: an interval starting later is a computed crossing that
    # has not happened yet (the fold as of then would answer it, if nothing else is recorded).
    end = args.end if args.end is not None else container.clock()
    if args.start and end <= args.start:
        raise UsageError("ledger export: --to (default: now) must be later than --from")
    binary = args.format == "parquet"
    if binary and args.output is None and sys.stdout.isatty():
        raise UsageError("ledger export: Parquet is binary; give --output FILE or redirect")
    intervals = materialised(container, customer=args.customer, start=args.start, end=end)
    if intervals is None:  # no table kept up to the store: computed from the events
        query = ledger_query(customer=args.customer, start=args.start, end=end)
        intervals = ledger_intervals(
            selected_histories(container.app, query), container.contracts_known_at(None),
            customer=args.customer, start=args.start, end=end,
        )  # fmt: skip
    with contextlib.ExitStack() as stack:
        try:
            if binary:
                raw: IO[bytes] = (
                    sys.stdout.buffer
                    if args.output is None
                    else stack.enter_context(args.output.open("wb"))
                )
                count = write_ledger_parquet(raw, intervals)
            else:
                text: IO[str] = (
                    sys.stdout
                    if args.output is None
                    else stack.enter_context(args.output.open("w", encoding="utf-8", newline=""))
                )
                count = write_ledger_csv(text, intervals)
        except BrokenPipeError:
            raise  # the reader stopped early (`| head`): not an error (infra/cli.py)
        except OSError as error:
            raise cannot_write(args.output or "standard output", error) from None
    if args.output is not None:
        echo(f"exported {count} ledger intervals to {args.output} ({args.format})")
    return 0
