"""`slatrail audit ID`: an incident's audit trail, with what each event caused."""

from __future__ import annotations

import argparse
import json
from typing import Any

from slatrail.application.queries import answer_as_of, trail_events
from slatrail.domain.model import format_instant
from slatrail.infra.bootstrap import Container
from slatrail.infra.commands.options import add_read_model_option, add_time_options
from slatrail.infra.render import echo, table, terminal_safe, to_json
from slatrail.projections.audit import annotated_trail


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("audit", help="an incident's audit trail")
    parser.add_argument("incident", help="incident_id")
    add_time_options(parser)
    parser.add_argument("--format", choices=("table", "json"), default="table")
    add_read_model_option(parser)
    parser.set_defaults(handler=run)


def run(container: Container, args: argparse.Namespace) -> int:
    events = trail_events(container, args.incident, from_read_model=args.from_read_model)
    if not events:
        echo(f"slatrail audit: no incident {args.incident!r}")
        return 1
    as_of = answer_as_of(args.as_of, args.as_known_at, container.clock)
    trail = annotated_trail(
        events, container.contracts_known_at(args.as_known_at), as_of, as_known_at=args.as_known_at
    )
    if args.format == "json":
        print(to_json(trail))
        return 0
    echo(render(args.incident, trail, as_of, args.as_known_at))
    return 0


def render(incident: str, trail: list[dict[str, Any]], as_of: Any, as_known_at: Any) -> str:
    rows = [
        [e["position"], e["occurred_at"], e["recorded_at"], e["type"], e["actor"],
         e["source"] or "", e["message_id"], _short(e["data"]), e["hash"][:12]]
        for e in trail
    ]  # fmt: skip
    headers = ["pos", "occurred_at", "recorded_at", "type", "actor", "source",
               "message_id", "data", "hash"]  # fmt: skip
    lines = table(headers, rows).split("\n")
    out = lines[:2]
    for entry, line in zip(trail, lines[2:], strict=True):
        out.append(line)
        if entry.get("redrive"):
            out.append(
                f"      ↳ recorded by redrive of the dead letter {terminal_safe(entry['redrive'])}"
            )
        out.extend(f"      ↳ {terminal_safe(note['text'])}" for note in entry["annotations"])
    known = f", as known at {format_instant(as_known_at)}" if as_known_at else ""
    title = (
        f"audit trail of {terminal_safe(incident)} as of {format_instant(as_of)}{known}"
        f" — {len(trail)} events"
    )
    return "\n".join([title, *out])


def _short(data: dict[str, Any], limit: int = 60) -> str:
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= limit else text[: limit - 1] + "…"
