"""`slatrail demo`: a simulated month for the sample customers, ingested and summarised."""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any

from slatrail.application.queries import reports_for
from slatrail.domain.clocks import Metric, Status
from slatrail.domain.model import format_instant
from slatrail.infra.bootstrap import Container
from slatrail.infra.commands.ingest import rejected_path
from slatrail.infra.commands.report import write_html
from slatrail.infra.demo import generate_month, month_bounds
from slatrail.infra.errors import UsageError
from slatrail.infra.ingest import ingest_lines
from slatrail.infra.logging import expected_rejections
from slatrail.infra.pathargs import cannot_write, output_dir
from slatrail.infra.redact import redact_url
from slatrail.infra.render import table
from slatrail.infra.timearg import month as month_arg
from slatrail.projections.availability import Month
from slatrail.projections.sla import IncidentSla, sla_view


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo", help="simulate a month of incidents, ingest them and print the SLA summary"
    )
    parser.add_argument(
        "--month",
        default="2026-10",
        type=month_arg,
        help="YYYY-MM to simulate (default 2026-10: Golden Week, 调休 Saturday)",
    )
    parser.add_argument("--seed", type=int, default=20261)
    parser.add_argument(
        "--out-dir",
        type=output_dir,
        default=Path("."),
        help="where the generated input and dead letters are written",
    )
    parser.set_defaults(handler=run)


def run(container: Container, args: argparse.Namespace) -> int:
    year, month = args.month.year, args.month.month
    if month_bounds(year, month)[0] > container.clock():
        raise UsageError(
            f"--month {args.month} is in the future: its messages would all be refused "
            "(future_timestamp); simulate this month or an earlier one"
        )
    messages = generate_month(container.contracts, year, month, args.seed)
    source = args.out_dir / f"slatrail-demo-{year}-{month:02d}.jsonl"
    dead_letters = rejected_path(str(source), None)
    try:
        args.out_dir.mkdir(parents=True, exist_ok=True)
        source.write_text("".join(json.dumps(m, ensure_ascii=False) + "\n" for m in messages))
        sink = dead_letters.open("w", encoding="utf-8")
    except OSError as error:
        raise cannot_write(args.out_dir, error) from None
    # The month holds deliberate bad input: the summary below counts it, the file keeps it.
    with sink, expected_rejections():
        counts = ingest_lines(
            (line.encode() for line in source.read_text().splitlines(keepends=True)),
            container.app, container.clock, sink,
        )  # fmt: skip
    print(f"slatrail demo — {args.month}, store {redact_url(container.settings.store)}")
    print(f"input {source}: {len(messages)} messages; accepted {counts.accepted}, "
          f"duplicate {counts.duplicate}, rejected {counts.rejected} "
          f"({', '.join(f'{c} {n}' for c, n in sorted(counts.by_code.items()))}) "
          f"→ dead letters in {dead_letters}")  # fmt: skip
    _, end = month_bounds(year, month)
    as_of = end
    view = [s for s in sla_view(container.app.histories().values(), container.contract_book, as_of)
            if s.clocks.timeline.reported_at < end]  # fmt: skip
    print()
    print(summary(view, format_instant(as_of)))
    reports = reports_for(container, [Month(year, month)], as_of=as_of)
    page = write_html(container, reports, args.out_dir / f"slatrail-report-{year}-{month:02d}.html")
    print()
    print(f"HTML report: {page.resolve()}")
    return 0


def _any_status(sla: IncidentSla, status: Status) -> bool:
    return any(c.status is status for c in sla.clocks.clocks.values())


def summary(view: list[IncidentSla], as_of: str) -> str:
    """Per customer: incidents, met/breached per metric (exclusions left out), open risk."""
    by_customer: dict[str, list[IncidentSla]] = {}
    for sla in view:
        by_customer.setdefault(sla.clocks.timeline.customer, []).append(sla)
    rows = []
    for customer, items in sorted(by_customer.items()):
        counted = [s for s in items if not s.clocks.timeline.excluded]
        cells = []
        for metric in Metric:
            statuses = Counter(s.clocks.clocks[metric].status for s in counted)
            met, breached = statuses[Status.MET], statuses[Status.BREACHED]
            share = f"{100 * met / (met + breached):.0f}%" if met + breached else "n/a"
            cells.append(f"{met}/{met + breached} {share}")
        disputes = sum(1 for s in items if s.clocks.timeline.disputed)
        open_items = [s for s in items if s.clocks.timeline.state != "resolved"]
        at_risk = sum(1 for s in open_items if _any_status(s, Status.AT_RISK))
        rows.append([customer, items[0].clocks.tier, len(items),
                     len(items) - len(counted), disputes, *cells, len(open_items), at_risk,
                     max(s.escalation.level for s in items)])  # fmt: skip
    headers = ["customer", "tier", "incidents", "excluded", "disputes",
               "response met", "workaround met", "resolution met", "postmortem met",
               "open", "at risk", "max esc"]  # fmt: skip
    breaches = [
        [s.incident_id, s.clocks.timeline.customer, str(s.clocks.timeline.priority), str(m),
         format_instant(c.due_at) if c.due_at else "", f"{(c.elapsed_s or 0) / 60:.0f} min",
         f"{(c.target_s or 0) / 60:.0f} min"]
        for s in view if not s.clocks.timeline.excluded
        for m, c in s.clocks.clocks.items() if c.status is Status.BREACHED
    ]  # fmt: skip
    out = [f"SLA summary as of {as_of} (met/(met+breached), excluded incidents left out)",
           table(headers, rows), "", f"breaches ({len(breaches)}):",
           table(["incident", "customer", "priority", "metric", "due_at", "counted", "target"],
                 breaches)]  # fmt: skip
    return "\n".join(out)
