"""`slatrail escalations`: open incidents by escalation level, with the reason (commands.md)."""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from slatrail.application.queries import answer_as_of, histories_for
from slatrail.application.selection import selected_histories, sla_query
from slatrail.domain.model import IncidentEvent, format_instant
from slatrail.infra.bootstrap import Container
from slatrail.infra.commands.options import add_read_model_option, add_time_options
from slatrail.infra.render import echo, table, terminal_safe, to_json
from slatrail.projections.escalation import (
    EscalationState,
    crossing_json,
    escalations_with_next,
    planned_json,
)
from slatrail.projections.history import known_by


def _level(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 4:
        raise argparse.ArgumentTypeError(f"a level is 1, 2, 3 or 4, not {text!r}")
    return value


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "escalations", help="open incidents by escalation level, with the reason"
    )
    add_time_options(parser)
    parser.add_argument("--level", type=_level, help="only incidents at this level (1-4)")
    parser.add_argument("--incident", help="only this incident")
    parser.add_argument("--customer", help="only this customer's incidents")
    parser.add_argument(
        "--all", action="store_true", help="resolved incidents too (the level they reached)"
    )
    parser.add_argument(
        "--explain", action="store_true", help="show the history and every threshold crossing"
    )
    parser.add_argument("--format", choices=("table", "json"), default="table")
    add_read_model_option(parser)
    parser.set_defaults(handler=run)


def run(container: Container, args: argparse.Namespace) -> int:
    as_of = answer_as_of(args.as_of, args.as_known_at, container.clock)
    answer = escalations_answer(
        container, as_of, as_known_at=args.as_known_at, incident=args.incident,
        customer=args.customer, level=args.level, include_resolved=args.all,
        from_read_model=args.from_read_model,
    )  # fmt: skip
    if answer is None:
        echo(f"slatrail escalations: no incident {args.incident!r}")
        return 1
    view, upcoming = answer
    if args.format == "json":
        print(to_json(documents(view, upcoming, explain=args.explain)))
        return 0
    echo(render_table(view, upcoming, as_of))
    if args.explain:
        for state in view:
            echo()
            echo(render_history(state))
    return 0


Upcoming = dict[str, dict[str, Any] | None]


def escalations_answer(
    container: Container,
    as_of: datetime,
    *,
    as_known_at: datetime | None = None,
    incident: str | None = None,
    customer: str | None = None,
    level: int | None = None,
    include_resolved: bool = False,
    from_read_model: bool = False,
) -> tuple[list[EscalationState], Upcoming] | None:
    """The incidents by level with each one's next planned alert (None: `incident` unknown)."""
    include = include_resolved or incident is not None
    histories: Iterable[Sequence[IncidentEvent]]
    if incident is not None or from_read_model:
        histories = histories_for(
            container, incident, from_read_model=from_read_model, customer=customer
        )
        if incident and not histories:
            return None
    else:  # from the incident index: the open incidents only, unless resolved ones are asked
        query = sla_query(
            as_of=as_of, as_known_at=as_known_at, customer=customer,
            state=None if include else "open",
        )  # fmt: skip
        histories = selected_histories(container.app, query)
    visible = [known_by(events, as_known_at) for events in histories]
    if customer is not None:
        visible = [e for e in visible if e and e[0].data.get("customer") == customer]
    contracts = container.contracts_known_at(as_known_at)
    found = escalations_with_next(
        visible, contracts, as_of, level=level, include_resolved=include
    )  # one sweep of each incident's clocks gives its level and its next alert
    view = [state for state, _ in found]
    upcoming: Upcoming = {
        state.incident_id: planned_json(coming) if coming is not None else None
        for state, coming in found
    }
    return view, upcoming


def documents(
    view: list[EscalationState], upcoming: Upcoming, *, explain: bool = False
) -> list[dict[str, Any]]:
    """The objects of `escalations --format json` (and of the web API's `/v1/escalations`)."""
    out = []
    for state in view:
        document = state.as_json()
        if not explain:
            document.pop("crossings")
        document["next"] = upcoming[state.incident_id]
        out.append(document)
    return out


def render_table(
    view: list[EscalationState], upcoming: dict[str, dict[str, Any] | None], as_of: Any
) -> str:
    rows = []
    for state in view:
        coming = upcoming.get(state.incident_id)
        rows.append([
            state.incident_id, state.customer, state.priority, str(state.state),
            f"{state.level} {state.level_names[state.level - 1]}",
            format_instant(state.since) if state.since else "-",
            state.reason.why,
            f"{coming['reason']} at {coming['at']}" if coming else "-",
        ])  # fmt: skip
    counts = {level: sum(1 for s in view if s.level == level) for level in (1, 2, 3, 4)}
    header = (
        f"Escalations as of {format_instant(as_of)} — {len(view)} incidents "
        f"(level 4: {counts[4]}, 3: {counts[3]}, 2: {counts[2]}, 1: {counts[1]})"
    )
    headers = ["incident", "customer", "priority", "state", "level", "since", "reason", "next"]
    return header + "\n" + table(headers, rows)


def render_history(state: EscalationState) -> str:
    safe = terminal_safe  # every value from a message or the contracts, shown escaped
    lines = [f"{safe(state.incident_id)} ({safe(state.customer)}): level {state.level}"]
    if not state.steps:
        lines.append("  level 1 since the report: no threshold crossed, no manual escalation")
    for step in state.steps:
        lines.append(
            f"  {format_instant(step.at)}  level {step.previous} → {step.level} "
            f"({safe(state.level_names[step.level - 1])}): {safe(step.why)} — {safe(step.detail)}"
        )
    for crossing in state.crossings:
        c = crossing_json(crossing)
        lines.append(
            f"    crossing: {c['metric']} {c['kind']} at {c['at']}"
            f"{' (from just after)' if c['from_just_after'] else ''}, cycle {c['cycle']}, "
            f"{c['priority']} target {c['target_s']} s, calendar {safe(c['calendar'])}"
        )
    return "\n".join(lines)
