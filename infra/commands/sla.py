"""`slatrail sla`: SLA clocks of incidents as of any moment (docs/reference/commands.md#sla)."""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence
from typing import Any

from slatrail.application.queries import answer_as_of, histories_for, read_model_histories
from slatrail.application.selection import selected_histories, sla_answers, sla_query
from slatrail.domain.clocks import Clock, Status
from slatrail.domain.durations import format_duration
from slatrail.domain.model import IncidentEvent, format_instant
from slatrail.infra.bootstrap import Container
from slatrail.infra.commands.options import add_read_model_option, add_time_options
from slatrail.infra.render import echo, table, terminal_safe, write_json_list
from slatrail.infra.timearg import instant
from slatrail.projections.sla import IncidentSla


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("sla", help="SLA clocks of incidents")
    add_time_options(parser)
    parser.add_argument("--incident", help="only this incident")
    parser.add_argument("--customer", help="only this customer's incidents")
    parser.add_argument(
        "--state", choices=("open", "resolved"), help="only incidents in this state (as of)"
    )
    parser.add_argument(
        "--status",
        choices=[str(s) for s in Status],
        help="only incidents with a clock in this status (as of)",
    )
    parser.add_argument("--since", type=instant, help="only incidents reported at or after this")
    parser.add_argument("--until", type=instant, help="only incidents reported before this")
    parser.add_argument(
        "--explain",
        action="store_true",
        help="show intervals counted, pauses, calendar and priority",
    )
    parser.add_argument("--format", choices=("table", "json"), default="table")
    add_read_model_option(parser)
    parser.set_defaults(handler=run)


def run(container: Container, args: argparse.Namespace) -> int:
    as_of = answer_as_of(args.as_of, args.as_known_at, container.clock)
    histories: Iterable[Sequence[IncidentEvent]]
    if args.incident is not None:
        histories = histories_for(
            container, args.incident, from_read_model=args.from_read_model,
            customer=args.customer,
        )  # fmt: skip
        if args.incident and not histories:
            echo(f"slatrail sla: no incident {args.incident!r}")
            return 1
        histories = sorted_by_report(histories)
    elif args.from_read_model:  # selected on the read model's incident table, in report order
        histories = read_model_histories(
            container.read_models, [args.customer], reported_by=as_of,
            since=args.since, until=args.until,
        )  # fmt: skip
    else:  # from the incident index: only the incidents the options may select
        query = sla_query(
            as_of=as_of, as_known_at=args.as_known_at, customer=args.customer,
            state=args.state, since=args.since, until=args.until,
        )  # fmt: skip
        histories = selected_histories(container.app, query)
        if args.status is not None and args.as_known_at is None:
            from slatrail.application.selection import histories_of_ids
            from slatrail.infra.ledger_check import status_preselection

            # a current SLA ledger table names the incidents with a clock in that status
            ids = status_preselection(
                container, args.status, as_of, customer=args.customer,
                since=args.since, until=args.until,
            )  # fmt: skip
            if ids is not None:
                histories = histories_of_ids(container.app, ids)
    answers = sla_answers(
        histories, container.contracts_known_at(args.as_known_at), as_of,
        as_known_at=args.as_known_at,
        customer=args.customer, state=args.state, status=args.status,
    )  # fmt: skip
    if args.format == "json":
        write_json_list(s.explain() if args.explain else s.as_json() for s in answers)
        return 0
    explained: list[str] = []
    rows = []
    for sla in answers:  # one incident at a time: only its table row (and text) are kept
        rows.append(table_row(sla))
        if args.explain:
            explained.append(render_explanation(sla))
    echo(render_rows(rows, as_of))
    for text in explained:
        echo()
        echo(text)
    return 0


def documents(view: list[IncidentSla], *, explain: bool = False) -> list[dict[str, Any]]:
    """The objects of `sla --format json` (and of the web API's `/v1/incidents`)."""
    return [sla.explain() if explain else sla.as_json() for sla in view]


def sorted_by_report(histories: Iterable[Sequence[IncidentEvent]]) -> list[Sequence[IncidentEvent]]:
    """Histories in report order (what `sla_view` shows), for the answers read whole."""
    return [
        s
        for _, s in sorted(
            ((events[0].occurred_at, events[0].incident_id), events)
            for events in histories
            if events
        )
    ]


_SHORT = {
    Status.NOT_APPLICABLE: "-", Status.PENDING: "pending", Status.MET: "met",
    Status.BREACHED: "BREACHED", Status.PAUSED: "paused", Status.AT_RISK: "AT RISK",
    Status.RUNNING: "running",
}  # fmt: skip


def _cell(clock: Clock) -> str:
    if clock.status in (Status.NOT_APPLICABLE, Status.PENDING) or clock.target_s is None:
        return _SHORT[clock.status]
    elapsed = format_duration(clock.elapsed_s or 0)
    return f"{_SHORT[clock.status]} {elapsed}/{format_duration(clock.target_s)}"


def table_row(sla: IncidentSla) -> list[Any]:
    t = sla.clocks.timeline
    priority = str(t.priority)
    if t.claimed_priority != t.priority:
        priority += f" (claimed {t.claimed_priority})"
    return [
        t.incident_id, t.customer, sla.clocks.tier, priority,
        str(t.state) + (" excluded" if t.excluded else ""),
        sla.escalation.level,
        *(_cell(c) for c in sla.clocks.clocks.values()),
    ]  # fmt: skip


def render_table(view: list[IncidentSla], as_of: Any) -> str:
    return render_rows([table_row(sla) for sla in view], as_of)


def render_rows(rows: list[list[Any]], as_of: Any) -> str:
    header = f"SLA as of {format_instant(as_of)} — {len(rows)} incidents"
    headers = ["incident", "customer", "tier", "priority", "state", "esc",
               "response", "workaround", "resolution", "postmortem"]  # fmt: skip
    return header + "\n" + table(headers, rows)


def render_explanation(sla: IncidentSla) -> str:
    t = sla.clocks.timeline
    safe = terminal_safe  # every value from a message or the contracts, shown escaped
    lines = [f"{safe(t.incident_id)} ({safe(t.customer)}, claimed {t.claimed_priority}, "
             f"escalation {sla.escalation.level}: {safe(sla.escalation.why)})"]  # fmt: skip
    for at, priority in t.priority_changes:
        lines.append(f"  priority {priority} from {format_instant(at)}")
    for metric, clock in sla.clocks.clocks.items():
        info = clock.explain()
        lines.append(
            f"  {metric}: {info['status']} — priority {info['priority']}, calendar "
            f"{safe(info['calendar'])}, target {info['target_s']} s, counted "
            f"{info['elapsed_s']} s, due {info['due_at']}, stopped {info['stopped_at']}"
        )
        for start, end in info["pauses"]:
            lines.append(f"    paused {start} → {end or 'still paused'}")
        for start, end in info["counted_intervals"]:
            lines.append(f"    counted {start} → {end}")
        if info.get("counted_intervals_truncated"):
            lines.append(f"    … only the first {len(info['counted_intervals'])} intervals shown")
    return "\n".join(lines)
