"""`slatrail whatif --contracts DRAFT --month M`: the report under a draft contract next to the
recorded one, with every clock that flips; records nothing (docs/reports.md#what-if)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader

from slatrail.application.selection import selected_whatif
from slatrail.infra.bootstrap import Container, read_contracts
from slatrail.infra.errors import UsageError
from slatrail.infra.pathargs import cannot_write, output_file_in_new_dirs
from slatrail.infra.render import echo, table, terminal_safe, to_json
from slatrail.infra.timearg import instant, month, quarter
from slatrail.projections.availability import Month

FORMATS = ("table", "json", "html")
METRICS = ("response", "workaround", "resolution", "postmortem")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "whatif", help="the report under a draft contract next to the recorded one"
    )
    # dest differs from the global --contracts: this file is only tried, never applied
    parser.add_argument(
        "--contracts", dest="draft", type=Path, required=True, metavar="DRAFT",
        help="the draft contracts file (TOML) to try",
    )  # fmt: skip
    period = parser.add_mutually_exclusive_group(required=True)
    period.add_argument("--month", type=month, help="YYYY-MM")
    period.add_argument("--quarter", type=quarter, help="YYYY-Qn")
    parser.add_argument("--customer", help="only this customer")
    parser.add_argument("--as-of", type=instant, help="event time (default now)")
    parser.add_argument("--format", choices=FORMATS, default="table")
    parser.add_argument("--output", type=output_file_in_new_dirs, help="write to FILE")
    parser.set_defaults(handler=run, store_reader=True)


def run(container: Container, args: argparse.Namespace) -> int:
    months: list[Month] = args.quarter or [args.month]
    draft = read_contracts(args.draft)
    book = container.contract_book
    contracted = book.customers()
    if args.customer is not None and args.customer not in contracted | set(draft.spec.customers):
        raise UsageError(f"whatif: unknown customer {args.customer!r}")
    as_of = args.as_of or container.clock()
    result = selected_whatif(container.app, book, draft, months, as_of, customer=args.customer)
    if args.format == "json":
        text = to_json(result) + "\n"
    elif args.format == "html":
        text = render_html(result)
    else:
        text = render_table(result) + "\n"
    if args.output is None:
        if args.format == "table":
            echo(text.rstrip("\n"))
        else:
            print(text, end="")
        return 0
    try:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text, encoding="utf-8")
    except OSError as error:
        raise cannot_write(args.output, error) from None
    echo(f"wrote {args.output}")
    return 0


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}%"


def _lines(row: dict[str, Any]) -> list[dict[str, Any]]:
    old, new = row["recorded"], row["draft"]
    lines = []

    def add(name: str, a: Any, b: Any) -> None:
        lines.append({"name": name, "recorded": a, "draft": b, "changed": a != b})

    missing = "not in the draft"
    for metric in METRICS:
        a = old["metrics"][metric]
        b = new["metrics"][metric] if new else None
        add(f"{metric} attainment", _percent(a["attainment"]),
            _percent(b["attainment"]) if b else missing)  # fmt: skip
        add(f"{metric} breached", a["breached"], b["breached"] if b else missing)
    add("availability", f"{old['availability_percent']}%",
        f"{new['availability_percent']}%" if new else missing)  # fmt: skip
    add("credit", f"{old['credit_percent']}%", f"{new['credit_percent']}%" if new else missing)
    return lines


def render_table(result: dict[str, Any]) -> str:
    out = [f"what-if under {terminal_safe(result['draft'])}, as of {result['as_of']} "
           "(nothing recorded)"]  # fmt: skip
    for row in result["rows"]:
        versions = row["recorded"]["contract_versions"]
        out.append("")
        out.append(f"{terminal_safe(row['customer'])} {row['month']} (recorded under contract "
                   f"version(s) {', '.join(map(str, versions or []))})")  # fmt: skip
        out.append(table(
            ["figure", "recorded", "draft", ""],
            [[ln["name"], ln["recorded"], ln["draft"], "*" if ln["changed"] else ""]
             for ln in _lines(row)],
        ))  # fmt: skip
        flips = row["flips"]
        out.append(f"clocks that flip: {len(flips)}")
        if flips:
            out.append(table(
                ["incident", "clock", "recorded", "draft"],
                [[f["incident_id"], f["metric"], f["recorded"], f["draft"]] for f in flips],
            ))  # fmt: skip
    return "\n".join(out)


def render_html(result: dict[str, Any]) -> str:
    environment = Environment(
        loader=PackageLoader("slatrail.infra", "templates"), autoescape=True,
        finalize=lambda v: terminal_safe(v) if isinstance(v, str) else v,
    )  # fmt: skip
    rows = [{**row, "lines": _lines(row)} for row in result["rows"]]
    return environment.get_template("whatif.html.j2").render(
        draft=result["draft"], as_of=result["as_of"], rows=rows
    )
