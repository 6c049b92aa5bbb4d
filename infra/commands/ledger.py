"""`slatrail ledger export`: the SLA ledger's intervals for BI tools; `slatrail ledger status`:
how many clocks are in each status at an instant (docs/reference/commands.md#ledger-export)."""

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
from slatrail.domain.clocks import Metric, Status
from slatrail.domain.model import format_instant
from slatrail.infra.bootstrap import Container
from slatrail.infra.errors import UsageError
from slatrail.infra.ledger_check import current_table
from slatrail.infra.ledger_files import write_ledger_csv, write_ledger_parquet
from slatrail.infra.pathargs import cannot_write, output_file
from slatrail.infra.render import echo, table, to_json
from slatrail.infra.timearg import instant
from slatrail.projections.incident_index import IndexQuery
from slatrail.projections.ledger import (
    STATUS_ORDER,
    LedgerInterval,
    clock_statuses,
    status_counts,
)

log = structlog.get_logger("slatrail.ledger")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "ledger",
        help="the SLA ledger: status intervals of every clock, clocks per status",
    )
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
    status = actions.add_parser(
        "status", help="how many clocks are in each status at an instant, per customer and clock"
    )
    status.add_argument("--as-of", type=instant, help="the instant (default: now)")
    status.add_argument("--customer", help="only this customer's clocks")
    status.add_argument("--format", choices=("table", "json"), default="table")
    status.set_defaults(handler=run_status)


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


StatusRows = list[tuple[str, Metric, dict[Status, int]]]


def statuses_at(container: Container, as_of: datetime, customer: str | None) -> StatusRows:
    """Clocks per customer, clock and status at `as_of`: one query of a current ledger table,
    else each incident reported by then folded at `as_of` (the same counts either way)."""
    store = current_table(container)
    if store is not None:
        return status_counts(store.ledger_status(as_of, customer=customer))
    contracts = container.contracts_known_at(None)
    histories = selected_histories(container.app, IndexQuery(customer=customer, reported_by=as_of))
    return status_counts(
        (name, metric, status, 1)
        for events in histories
        for name, metric, status in clock_statuses(events, contracts, as_of)
        if customer is None or name == customer
    )


def status_document(as_of: datetime, customer: str | None, rows: StatusRows) -> dict[str, Any]:
    """The JSON of `ledger status` (docs/reference/commands.md#ledger-status)."""
    return {
        "as_of": format_instant(as_of),
        "customer": customer,
        "statuses": [str(s) for s in STATUS_ORDER],
        "clocks": [
            {
                "customer": name,
                "clock": str(metric),
                "counts": {str(s): counts[s] for s in STATUS_ORDER},
                "total": sum(counts.values()),
            }
            for name, metric, counts in rows
        ],
    }


def run_status(container: Container, args: argparse.Namespace) -> int:
    as_of = args.as_of if args.as_of is not None else container.clock()
    rows = statuses_at(container, as_of, args.customer)
    if args.format == "json":
        print(to_json(status_document(as_of, args.customer, rows)))
        return 0
    headers = ["customer", "clock", *(str(s) for s in STATUS_ORDER), "total"]
    body = [
        [name, str(metric), *(counts[s] for s in STATUS_ORDER), sum(counts.values())]
        for name, metric, counts in rows
    ]
    echo(f"clocks by status as of {format_instant(as_of)}")
    echo(table(headers, body) if body else "(no clock: nothing reported by then)")
    return 0
