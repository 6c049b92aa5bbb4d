"""`slatrail export`: the audit trail for external auditors, with the chain heads (verifiable)."""

from __future__ import annotations

import argparse
import contextlib
import sys
from typing import IO, Any

from slatrail.infra.bootstrap import Container
from slatrail.infra.exports import (
    ExportCounts,
    Selection,
    contract_records,
    export_header,
    exported_events,
    write_csv,
    write_jsonl,
)
from slatrail.infra.pathargs import cannot_write, output_file
from slatrail.infra.proofs import export_checkpoint, with_inclusion
from slatrail.infra.render import echo
from slatrail.infra.timearg import instant


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "export",
        help="the audit trail for external auditors: whole hash chains and their heads",
    )
    parser.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    parser.add_argument("--customer", help="only this customer's incidents")
    parser.add_argument(
        "--from",
        dest="start",
        type=instant,
        help="only incidents with an event that occurred at or after this instant",
    )
    parser.add_argument(
        "--to",
        dest="end",
        type=instant,
        help="only incidents with an event that occurred before this instant",
    )
    parser.add_argument(
        "--output", type=output_file, help="file to write (default: standard output)"
    )
    parser.set_defaults(handler=run)


def run(container: Container, args: argparse.Namespace) -> int:
    if args.start and args.end and args.end <= args.start:
        print("slatrail export: --to must be later than --from", file=sys.stderr)
        return 2
    selection = Selection(args.customer, args.start, args.end)
    counts = ExportCounts()
    checkpoint = export_checkpoint(container)
    records = with_inclusion(
        container, exported_events(container.app, selection, counts), checkpoint
    )
    contracts = contract_records(container.app.contract_book())
    with contextlib.ExitStack() as stack:
        try:
            out: IO[str] = (
                sys.stdout
                if args.output is None
                else stack.enter_context(args.output.open("w", encoding="utf-8", newline=""))
            )
        except OSError as error:
            raise cannot_write(args.output, error) from None
        if args.format == "jsonl":
            header = export_header(selection, container.clock())
            if checkpoint is not None:
                header["checkpoint"] = checkpoint.as_json()
            write_jsonl(out, records, counts, header, contracts)
        else:
            carried = checkpoint.as_json() if checkpoint is not None else None
            write_csv(out, records, counts, contracts, carried)
    if args.output is not None:
        echo(
            f"exported {counts.events} events of {counts.incidents} incidents "
            f"to {args.output} ({args.format})"
        )
    return 0
