"""`slatrail report --month YYYY-MM`: monthly service reports (table, JSON, CSV, HTML)."""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
import sys
from collections.abc import Sequence
from datetime import datetime
from multiprocessing import util as multiprocessing_util
from pathlib import Path
from typing import Any

from slatrail.application.queries import answer_as_of
from slatrail.application.selection import (
    customer_reports,
    report_customers,
    selected_restatements,
)
from slatrail.application.service import SlatrailApplication
from slatrail.domain.contract_version import ContractSource
from slatrail.domain.model import format_instant
from slatrail.infra.batch_gc import fewer_collections
from slatrail.infra.bootstrap import Container
from slatrail.infra.errors import UsageError
from slatrail.infra.pathargs import cannot_write, output_file_in_new_dirs
from slatrail.infra.render import echo, table, to_json
from slatrail.infra.settings import MAX_REPORT_WORKERS
from slatrail.infra.store import open_application
from slatrail.infra.timearg import instant, month, quarter
from slatrail.infra.workers import forked_map, worker_count
from slatrail.projections.availability import Month

FORMATS = ("table", "json", "csv", "html")
METRICS = ("response", "workaround", "resolution", "postmortem")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "report", help="monthly service report per customer (SLA attainment, availability)"
    )
    period = parser.add_mutually_exclusive_group(required=True)
    period.add_argument("--month", type=month, help="YYYY-MM, in each customer's time zone")
    period.add_argument("--quarter", type=quarter, help="YYYY-Qn: its three monthly reports")
    parser.add_argument("--customer", help="only this customer")
    parser.add_argument("--format", choices=FORMATS, default="table")
    parser.add_argument(
        "--output", type=output_file_in_new_dirs, help="write to FILE instead of standard output"
    )
    parser.add_argument(
        "--as-of", type=instant, help="event time to evaluate the clocks at (default now)"
    )
    parser.add_argument(
        "--as-known-at",
        type=instant,
        help="answer with only what had been recorded by this instant",
    )
    parser.add_argument(
        "--restated-since",
        type=instant,
        metavar="T",
        help="flag every figure that differs from what was known at T (say, when the report "
        "was sent), with its cause",
    )
    parser.add_argument(
        "--workers",
        type=_workers,
        metavar="N",
        help="at most N worker processes, each reporting on whole customers (default: "
        "SLATRAIL_REPORT_WORKERS, 4; never more than the CPUs or the customers; 1: in-process)",
    )
    parser.set_defaults(handler=run)


def _workers(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        count = 0
    if not 1 <= count <= MAX_REPORT_WORKERS:
        raise argparse.ArgumentTypeError(
            f"expected a whole number from 1 to {MAX_REPORT_WORKERS}, got {text!r}"
        )
    return count


def write_html(container: Container, reports: list[dict[str, Any]], path: Path) -> Path:
    from slatrail.infra.report_html import render_html  # only HTML needs templates and charts

    page = render_html(
        reports,
        generated_at=container.clock(),
        source=container.contract_book.latest.source,
        checkpoint=reports[0].get("checkpoint") if reports else None,
    )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(page, encoding="utf-8")
    except OSError as error:
        raise cannot_write(path, error) from None
    return path


def run(container: Container, args: argparse.Namespace) -> int:
    months: list[Month] = args.quarter or [args.month]
    book = container.contracts_known_at(args.as_known_at)
    contracted = book.customers()
    if args.customer is not None and args.customer not in contracted:
        known = ", ".join(sorted(contracted))
        print(f"slatrail report: unknown customer {args.customer!r} (known: {known})",
              file=sys.stderr)  # fmt: skip
        return 1
    as_of = answer_as_of(args.as_of, args.as_known_at, container.clock)
    names = report_customers(book, months, args.customer)
    limit = container.settings.report_workers if args.workers is None else args.workers
    reports = computed_reports(
        container, book, months, names, as_of=as_of, as_known_at=args.as_known_at,
        workers=worker_count(limit, len(names)),
    )  # fmt: skip
    if args.restated_since is not None:
        if args.as_known_at is not None and args.restated_since > args.as_known_at:
            raise UsageError("report: --restated-since must not be later than --as-known-at")
        found = selected_restatements(
            container.app, container.contract_book, months, as_of, args.restated_since,
            args.as_known_at, customer=args.customer,
        )  # fmt: skip
        for report in reports:
            report["restated"] = [
                {k: f[k] for k in ("figure", "old", "new", "causes")}
                for f in found["figures"]
                if (f["customer"], f["month"]) == (report["customer"], report["month"])
            ]
    # Made after the figures: every event they used is inside it (docs/reports.md).
    checkpoint = report_checkpoint(container)
    for report in reports:
        report["checkpoint"] = checkpoint
    if args.format == "html":
        if args.output is None:
            period = f"{months[0]}_{months[-1]}" if args.quarter else str(months[0])
            args.output = Path(f"slatrail-report-{period}.html")
        write_html(container, reports, args.output)
        echo(f"wrote {args.output} ({len(reports)} report(s))")
        return 0
    if args.format == "csv":
        # RFC 4180 rows end in CRLF, written as they are (no newline translation).
        text = render_csv(reports)
        if args.output is None:
            sys.stdout.write(text)
            return 0
    elif args.format == "json":
        text = to_json(reports) + "\n"
    else:
        text = render_table(reports) + _restated_lines(reports, args.restated_since) + "\n"
    if args.output is not None:
        try:
            args.output.parent.mkdir(parents=True, exist_ok=True)
            args.output.write_text(text, encoding="utf-8", newline="")
        except OSError as error:
            raise cannot_write(args.output, error) from None
        echo(f"wrote {args.output} ({len(reports)} report(s))")
    elif args.format == "json":
        sys.stdout.write(text)
    else:
        echo(text.rstrip("\n"))
    return 0


def computed_reports(
    container: Container,
    book: ContractSource,
    months: Sequence[Month],
    customers: Sequence[str],
    *,
    as_of: datetime,
    as_known_at: datetime | None,
    workers: int,
) -> list[dict[str, Any]]:
    """The reports of `customers` (each customer's months in order, customers in the order
    given): in this process, or by `workers` forked processes each taking whole customers,
    each with its own connection to the store (the same figures, byte for byte)."""
    if workers <= 1:
        with fewer_collections():
            return [
                report
                for name in customers
                for report in customer_reports(
                    container.app, book, months, name, as_of=as_of, as_known_at=as_known_at
                )
            ]
    settings = container.settings
    opened: list[SlatrailApplication] = []  # the worker's own store, opened on its first task

    def one_customer(name: str) -> list[dict[str, Any]]:
        if not opened:
            app = open_application(  # read-only: the record measures, no file is needed
                settings.store, book, read_only=True,
                connect_timeout_s=settings.store_connect_timeout_s,
            )  # fmt: skip
            opened.append(app)
            multiprocessing_util.Finalize(app, app.close, exitpriority=10)
        return customer_reports(opened[0], book, months, name, as_of=as_of, as_known_at=as_known_at)

    # No connection (nor a PostgreSQL pool's threads) crosses the fork: the store is opened
    # again, in this process too, when it is next needed (the checkpoint, --restated-since).
    container.close()
    with fewer_collections():  # before the fork: the workers inherit it
        per_customer = forked_map(one_customer, customers, workers, what="report")
    return [report for reports in per_customer for report in reports]


def _versions_note(reports: list[dict[str, Any]]) -> str:
    used = sorted({v for r in reports for v in r.get("contract_versions") or []})
    return f", under contract version(s) {', '.join(map(str, used))}" if used else ""


def _restated_lines(reports: list[dict[str, Any]], since: Any) -> str:
    if since is None:
        return ""
    lines = [f"\nrestated since {format_instant(since)}:"]
    for report in reports:
        for f in report.get("restated", []):
            lines.append(
                f"  {report['customer']} {report['month']} {f['figure']}: {f['old']} → "
                f"{f['new']} ({'; '.join(f['causes']) or 'no recorded cause'})"
            )
    if len(lines) == 1:
        lines.append("  nothing")
    return "\n".join(lines)


def csv_row(r: dict[str, Any]) -> dict[str, Any]:
    """One flat row per (customer, month)."""
    a = r["availability"]
    row: dict[str, Any] = {
        "customer": r["customer"],
        "tier": r["tier"],
        "month": r["month"],
        "timezone": r["timezone"],
        "final": r["final"],
        "incidents": r["incidents"]["total"],
        **{f"incidents_{p.lower()}": n for p, n in r["incidents"]["by_priority"].items()},
        "incidents_open": r["incidents"]["open"],
        "incidents_excluded": r["incidents"]["excluded"],
    }
    for metric in METRICS:
        figures = r["metrics"][metric]
        row[f"{metric}_met"] = figures["met"]
        row[f"{metric}_breached"] = figures["breached"]
        row[f"{metric}_attainment"] = figures["attainment"]
    row.update(
        {
            "mtta_s": r["mtta_s"],
            "mtta_counted_s": r["mtta_counted_s"],
            "mttr_s": r["mttr_s"],
            "mttr_counted_s": r["mttr_counted_s"],
            "disputes": r["disputes"]["total"],
            **{f"escalation_level_{k}": v for k, v in r["escalations"]["by_level"].items()},
            "postmortems_required": r["postmortems"]["required"],
            "postmortem_compliance": r["postmortems"]["compliance"],
            "breaches": len(r["breaches"]),
            "availability_target": a["target"],
            "availability_percent": a["percent"],
            "downtime_s": a["downtime_s"],
            "allowance_s": a["allowance_s"],
            "credit_percent": a["credit_percent"],
        }
    )
    versions = r.get("contract_versions")
    row["contract_versions"] = " ".join(map(str, versions)) if versions else None
    restated = r.get("restated")
    row["restated_figures"] = None if restated is None else len(restated)
    row["restated"] = None if restated is None else _restated_cell(restated)
    checkpoint = r.get("checkpoint") or {}
    row["checkpoint_note"] = checkpoint.get("note")
    row["checkpoint_origin"] = checkpoint.get("origin")
    row["checkpoint_tree_size"] = checkpoint.get("tree_size")
    row["checkpoint_root"] = checkpoint.get("root")
    return row


def _restated_cell(restated: list[dict[str, Any]]) -> str:
    """The restated figures as JSON text, `[{"figure", "old", "new", "causes"}, …]`."""
    return json.dumps(restated, ensure_ascii=False, separators=(",", ":"))


# A cell a spreadsheet would read as a formula (OWASP "CSV injection"): it starts with one of
# these. Such a cell is written with a leading apostrophe, which spreadsheets take as "text".
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")
_NUMBER = re.compile(r"-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")


def spreadsheet_cell(value: Any) -> str:
    """One report CSV cell: empty for null, a number as it is, text never read as a formula."""
    if value is None:
        return ""
    text = str(value)
    if text.startswith(FORMULA_START) and not _NUMBER.fullmatch(text):
        return "'" + text
    return text


def render_csv(reports: list[dict[str, Any]]) -> str:
    """RFC 4180 (CRLF line ends, fields quoted when they hold `,` `"` CR or LF), for spreadsheets:
    cells that would start a formula are neutralised (`spreadsheet_cell`)."""
    rows = [csv_row(r) for r in reports]
    out = io.StringIO()
    if rows:
        names = list(rows[0])
        writer = csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
        writer.writerow([spreadsheet_cell(name) for name in names])
        writer.writerows([spreadsheet_cell(row[name]) for name in names] for row in rows)
    return out.getvalue()


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _minutes(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds / 60:.0f} min"


def render_table(reports: list[dict[str, Any]]) -> str:
    if not reports:
        return "no report"
    head = reports[0]
    out = [f"Monthly service report as of {head['as_of']}"
           + (f" (as known at {head['as_known_at']})" if head["as_known_at"] else "")
           + _versions_note(reports)]  # fmt: skip
    rows = []
    for r in reports:
        a = r["availability"]
        rows.append([
            r["customer"], r["tier"], r["month"], r["incidents"]["total"],
            r["incidents"]["excluded"],
            *(f"{r['metrics'][m]['met']}/{r['metrics'][m]['met'] + r['metrics'][m]['breached']} "
              f"{_pct(r['metrics'][m]['attainment'])}" for m in METRICS),
            _minutes(r["mtta_s"]), _minutes(r["mttr_s"]), r["disputes"]["total"],
            r["escalations"]["escalated"], f"{a['percent']:.4f}%", f"{a['target']}%",
            f"{a['downtime_s'] / 60:.1f} min", f"{a['credit_percent']:g}%",
            "final" if r["final"] else "provisional",
        ])  # fmt: skip
    out.append(table(
        ["customer", "tier", "month", "incidents", "excluded", "response", "workaround",
         "resolution", "postmortem", "MTTA", "MTTR", "disputes", "escalated", "availability",
         "target", "downtime", "credit", "status"], rows))  # fmt: skip
    breaches = [
        [r["customer"], r["month"], b["incident_id"], b["metric"], b["priority"],
         f"{b['elapsed_s'] / 60:.0f} min", f"{b['target_s'] / 60:.0f} min"]
        for r in reports for b in r["breaches"]
    ]  # fmt: skip
    out += ["", f"breaches ({len(breaches)}):"]
    if breaches:
        out.append(table(["customer", "month", "incident", "metric", "priority", "counted",
                          "target"], breaches))  # fmt: skip
    checkpoint = head.get("checkpoint")
    if checkpoint:
        out += ["", f"computed at checkpoint {checkpoint['origin']} size "
                f"{checkpoint['tree_size']} root {checkpoint['root']}"]  # fmt: skip
    return "\n".join(out)


def report_checkpoint(container: Container) -> dict[str, Any] | None:
    """A new signed checkpoint when this host holds the signing key; else none."""
    if not container.settings.signing_key.is_file():
        return None
    from slatrail.infra.proofs import new_checkpoint  # only a signing host makes checkpoints

    return new_checkpoint(container).as_json()
