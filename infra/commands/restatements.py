"""`slatrail restatements --month M --known-at T1 [--vs T2]`: figures that changed between two
knowledge instants, with their cause (docs/reports.md#restatements)."""

from __future__ import annotations

import argparse
from typing import Any

from slatrail.application.selection import selected_restatements
from slatrail.infra.bootstrap import Container
from slatrail.infra.errors import UsageError
from slatrail.infra.render import echo, table, terminal_safe, to_json
from slatrail.infra.timearg import instant, month, quarter
from slatrail.projections.availability import Month


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "restatements", help="figures that changed between two knowledge instants, and why"
    )
    period = parser.add_mutually_exclusive_group(required=True)
    period.add_argument("--month", type=month, help="YYYY-MM")
    period.add_argument("--quarter", type=quarter, help="YYYY-Qn")
    parser.add_argument("--customer", help="only this customer")
    parser.add_argument(
        "--known-at", type=instant, required=True,
        help="the earlier knowledge instant (say, when the report was sent)",
    )  # fmt: skip
    parser.add_argument("--vs", type=instant, help="the later one (default: now)")
    parser.add_argument(
        "--as-of", type=instant, help="event time both answers are for (default: --known-at)"
    )
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.set_defaults(handler=run, store_reader=True)


def run(container: Container, args: argparse.Namespace) -> int:
    months: list[Month] = args.quarter or [args.month]
    if args.vs is not None and args.vs < args.known_at:
        raise UsageError("restatements: --vs must not be earlier than --known-at")
    book = container.contract_book
    contracted = book.customers()
    if args.customer is not None and args.customer not in contracted:
        raise UsageError(f"restatements: unknown customer {args.customer!r}")
    result = selected_restatements(
        container.app, book, months, args.as_of or args.known_at, args.known_at, args.vs,
        customer=args.customer,
    )  # fmt: skip
    if args.format == "json":
        print(to_json(result))
        return 0
    echo(render(result))
    return 0


def render(result: dict[str, Any]) -> str:
    vs = result["vs"] or "now"
    out = [
        f"restatements of the figures as of {result['as_of']}: known at {result['known_at']} "
        f"vs {vs} — {len(result['figures'])} figure(s), {len(result['clocks'])} clock(s)"
    ]
    if result["figures"]:
        out.append(table(
            ["customer", "month", "figure", "old", "new", "cause"],
            [[f["customer"], f["month"], f["figure"], f["old"], f["new"],
              terminal_safe("; ".join(f["causes"]) or "-")] for f in result["figures"]],
        ))  # fmt: skip
    if result["clocks"]:
        out.append(table(
            ["incident", "customer", "clock", "old", "new", "cause"],
            [[c["incident_id"], c["customer"], c["metric"], c["old_status"] or "(unknown)",
              c["new_status"], terminal_safe("; ".join(c["causes"]) or "-")]
             for c in result["clocks"]],
        ))  # fmt: skip
    return "\n".join(out)
