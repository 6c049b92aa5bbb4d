"""`slatrail audit ID`: an incident's audit trail."""

from __future__ import annotations

import argparse
import json
from typing import Any

from infra.bootstrap import Container
from infra.commands.sla import add_time_options
from infra.render import table, to_json
from projections.audit import audit_trail


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("audit", help="an incident's audit trail")
    parser.add_argument("incident", help="incident_id")
    add_time_options(parser)
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.set_defaults(handler=run)


def run(container: Container, args: argparse.Namespace) -> int:
    events = container.app.incident_events(args.incident)
    if not events:
        print(f"slatrail audit: no incident {args.incident!r}")
        return 1
    trail = audit_trail(events, as_of=args.as_of, as_known_at=args.as_known_at)
    if args.format == "json":
        print(to_json(trail))
        return 0
    rows = [
        [e["position"], e["occurred_at"], e["recorded_at"], e["type"], e["actor"],
         e["source"] or "", e["message_id"], _short(e["data"]), e["hash"][:12]]
        for e in trail
    ]  # fmt: skip
    print(f"audit trail of {args.incident} — {len(trail)} events")
    print(table(["pos", "occurred_at", "recorded_at", "type", "actor", "source",
                 "message_id", "data", "hash"], rows))  # fmt: skip
    return 0


def _short(data: dict[str, Any], limit: int = 60) -> str:
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= limit else text[: limit - 1] + "…"
