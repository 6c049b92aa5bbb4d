"""Monthly service reports per customer (reference/commands.md; rules in docs/reports.md).

A pure function of (incident histories, contracts, months, as_of, as_known_at). The result is
the JSON of `slatrail report --format json`; the table, CSV and HTML renderings read only it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from slatrail.domain.clocks import (
    Clock,
    ClockFigures,
    IncidentClocks,
    Metric,
    Status,
    evaluate,
    evaluate_figures,
)
from slatrail.domain.contract_version import ContractBook, ContractSource
from slatrail.domain.durations import format_duration
from slatrail.domain.model import IncidentEvent, Priority, State, format_instant
from slatrail.domain.timeline import Timeline, build_timeline
from slatrail.projections.availability import (
    Month,
    MonthlyAvailability,
    availability,
    month_contracts,
    reporting_zone,
)
from slatrail.projections.escalation import state_of
from slatrail.projections.history import known_by

TREND_MONTHS = 3
LEVELS = (1, 2, 3, 4)
_STILL_RUNNING = (Status.RUNNING, Status.AT_RISK, Status.PAUSED, Status.PENDING)


class _Incident:
    """One incident evaluated once, as of the report's `as_of`: its clocks' figures (status,
    target, counted µs, stop: `evaluate_figures`, no `Clock` objects or datetimes), and the
    whole clocks (calendars, pauses, due instants) only where a figure needs them, a breach's
    explanation (`evaluate`, the same figures: docs/scale.md, "Monthly reports")."""

    __slots__ = ("_clocks", "_figures", "_source", "events", "timeline")

    def __init__(
        self,
        events: Sequence[IncidentEvent],
        timeline: Timeline,
        source: ContractSource,
        figures: Iterable[ClockFigures],
    ) -> None:
        self.events = events
        self.timeline = timeline
        self._source = source
        self._figures = {f.metric: f for f in figures}
        self._clocks: IncidentClocks | None = None

    @property
    def excluded(self) -> bool:
        return self.timeline.excluded

    def figure(self, metric: Metric) -> ClockFigures:
        return self._figures[metric]

    @property
    def clocks(self) -> IncidentClocks:
        if self._clocks is None:
            self._clocks = evaluate(self.timeline, self._source)
        return self._clocks

    def clock(self, metric: Metric) -> Clock:
        return self.clocks.clocks[metric]


def _elapsed_s(figure: ClockFigures) -> float:
    """`Clock.elapsed_s or 0.0` of the clock with these figures."""
    return 0.0 if figure.elapsed_us is None else figure.elapsed_us / 1_000_000


def reported_priority(t: Timeline) -> Priority:
    """The priority an incident is reported under: in effect at its latest resolution if it is
    resolved as of `as_of`, else in effect at `as_of`."""
    latest = t.latest_resolution
    if t.state is State.RESOLVED and latest is not None:
        return t.priority_at(latest.at)
    return t.priority


def open_wall_seconds(t: Timeline) -> float:
    """Wall-clock time the incident was not resolved: reported→resolved, reopened→resolved…"""
    return sum(
        ((run.end or t.as_of) - run.start).total_seconds()
        for run in t.open_runs()
        if (run.end or t.as_of) > run.start
    )


def monthly_reports(
    histories: Iterable[Sequence[IncidentEvent]],
    contracts: ContractSource,
    months: Sequence[Month],
    as_of: datetime,
    *,
    as_known_at: datetime | None = None,
    customer: str | None = None,
) -> list[dict[str, Any]]:
    """One report per (customer, month): every contracted customer, or only `customer`;
    ordered by customer, then month."""
    seen = visible_timelines(histories, as_of, as_known_at=as_known_at, customer=customer)
    return reports_from(
        evaluated(seen, contracts), contracts, months, as_of,
        as_known_at=as_known_at, customer=customer,
    )  # fmt: skip


Seen = tuple[Sequence[IncidentEvent], Timeline]


def visible_timelines(
    histories: Iterable[Sequence[IncidentEvent]],
    as_of: datetime,
    *,
    as_known_at: datetime | None = None,
    customer: str | None = None,
) -> list[Seen]:
    """Each incident's events known by `as_known_at` and its timeline as of `as_of`."""
    out: list[Seen] = []
    for events in histories:
        visible = known_by(events, as_known_at)
        timeline = build_timeline(visible, as_of)
        if timeline is None or (customer is not None and timeline.customer != customer):
            continue
        out.append((visible, timeline))
    return out


def evaluated(seen: Iterable[Seen], contracts: ContractSource) -> dict[str, list[_Incident]]:
    """The incidents evaluated under `contracts`, by customer, in report order."""
    by_customer: dict[str, list[_Incident]] = {}
    seen = list(seen)
    figures = evaluate_figures((timeline for _, timeline in seen), contracts)
    for (visible, timeline), (_, clocks) in zip(seen, figures, strict=True):
        by_customer.setdefault(timeline.customer, []).append(
            _Incident(visible, timeline, contracts, clocks)
        )
    for incidents in by_customer.values():
        incidents.sort(key=lambda i: (i.timeline.reported_at, i.timeline.incident_id))
    return by_customer


def reports_from(
    by_customer: dict[str, list[_Incident]],
    contracts: ContractSource,
    months: Sequence[Month],
    as_of: datetime,
    *,
    as_known_at: datetime | None = None,
    customer: str | None = None,
) -> list[dict[str, Any]]:
    names = sorted(contracted_customers(contracts, months)) if customer is None else [customer]
    reports = []
    for name in names:
        if all(month_contracts(contracts, name, m).tier_of(name) is None for m in months):
            source = month_contracts(contracts, name, max(months)).source
            raise ValueError(f"customer {name!r} is not in the contracts ({source})")
        incidents = by_customer.get(name, [])
        for month in sorted(months):
            reports.append(
                customer_month_report(incidents, contracts, name, month, as_of, as_known_at)
            )
    return reports


def contracted_customers(source: ContractSource, months: Sequence[Month]) -> set[str]:
    """Every customer contracted in any of the months (by each month's version)."""
    names: set[str] = set()
    for month in months:
        names.update(source.for_period(month.bounds(ZoneInfo("UTC"))[1]).spec.customers)
    return names


def customer_month_report(
    incidents: Sequence[_Incident],
    source: ContractSource,
    customer: str,
    month: Month,
    as_of: datetime,
    as_known_at: datetime | None = None,
) -> dict[str, Any]:
    contracts = month_contracts(source, customer, month)
    zone = ZoneInfo(reporting_zone(contracts, customer))
    start, end = month.bounds(zone)
    ours = _of_month(incidents, start, end)
    counted = [i for i in ours if not i.excluded]
    avail = availability((i.timeline for i in incidents), source, customer, month, as_of)
    metrics = {str(m): _metric_figures(counted, m) for m in Metric}
    still_running = sum(metrics[str(m)]["running"] for m in Metric)
    spec_customer = contracts.customer(customer)
    versions = _versions(source, ours, start, end)
    return {
        "customer": customer,
        "customer_name": spec_customer.name if spec_customer else None,
        "tier": avail.tier,
        "month": str(month),
        "timezone": avail.timezone,
        "period": {"start": format_instant(start), "end": format_instant(end)},
        "as_of": format_instant(as_of),
        "as_known_at": format_instant(as_known_at) if as_known_at else None,
        **({"contract_versions": versions} if versions is not None else {}),
        "final": as_of >= end and still_running == 0 and not any(o.ongoing for o in avail.outages),
        "incidents": _incident_counts(ours),
        "metrics": metrics,
        **_means(counted),
        "mttr_by_priority": _mttr_by_priority(counted),
        "disputes": _disputes(ours),
        "escalations": _escalations(ours, source),
        "postmortems": _postmortems(counted),
        "availability": avail.as_json(),
        "breaches": _breaches(counted),
        "excluded": [
            {
                "incident_id": i.timeline.incident_id,
                "title": i.timeline.title,
                "cause": str(latest.cause),
            }
            for i in ours
            if i.excluded and (latest := i.timeline.latest_resolution) is not None
        ],
        "trend": [
            _trend_point(incidents, source, customer, month.shifted(-n), as_of)
            for n in range(TREND_MONTHS, 0, -1)
        ],
    }


def _versions(
    source: ContractSource, ours: Sequence[_Incident], start: datetime, end: datetime
) -> list[int] | None:
    """The recorded contract versions the figures were computed under: the month's, and each
    incident's (None when measured under a contracts file that is not a recorded version)."""
    if not isinstance(source, ContractBook):
        return None
    used = {source.in_force(end - _INSTANT).version}
    used.update(source.measuring_version(i.timeline.reported_at).version for i in ours)
    return sorted(used)


_INSTANT = timedelta(microseconds=1)


def _of_month(incidents: Sequence[_Incident], start: datetime, end: datetime) -> list[_Incident]:
    return [i for i in incidents if start <= i.timeline.reported_at < end]


def _incident_counts(ours: Sequence[_Incident]) -> dict[str, Any]:
    priorities = Counter(reported_priority(i.timeline) for i in ours)
    return {
        "total": len(ours),
        "by_priority": {str(p): priorities[p] for p in Priority},
        "open": sum(1 for i in ours if i.timeline.state is not State.RESOLVED),
        "excluded": sum(1 for i in ours if i.excluded),
        "outages": sum(1 for i in ours if i.timeline.outage),
    }


def _metric_figures(counted: Sequence[_Incident], metric: Metric) -> dict[str, Any]:
    statuses = Counter(i.figure(metric).status for i in counted)
    met, breached = statuses[Status.MET], statuses[Status.BREACHED]
    return {
        "met": met,
        "breached": breached,
        "attainment": _ratio(met, met + breached),
        "running": sum(statuses[s] for s in _STILL_RUNNING),
    }


def _means(counted: Sequence[_Incident]) -> dict[str, float | None]:
    acknowledged = [i for i in counted if i.timeline.acknowledged_at is not None]
    resolved = [i for i in counted if i.timeline.state is State.RESOLVED]
    return {
        "mtta_s": _mean(
            (i.timeline.acknowledged_at - i.timeline.reported_at).total_seconds()
            for i in acknowledged
            if i.timeline.acknowledged_at is not None
        ),
        "mtta_counted_s": _mean(_elapsed_s(i.figure(Metric.RESPONSE)) for i in acknowledged),
        "mttr_s": _mean(open_wall_seconds(i.timeline) for i in resolved),
        "mttr_counted_s": _mean(_elapsed_s(i.figure(Metric.RESOLUTION)) for i in resolved),
    }


def _mttr_by_priority(counted: Sequence[_Incident]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for priority in Priority:
        resolved = [
            i
            for i in counted
            if i.timeline.state is State.RESOLVED and reported_priority(i.timeline) is priority
        ]
        out[str(priority)] = {
            "resolved": len(resolved),
            "mttr_s": _mean(open_wall_seconds(i.timeline) for i in resolved),
            "mttr_counted_s": _mean(_elapsed_s(i.figure(Metric.RESOLUTION)) for i in resolved),
        }
    return out


def dispute_outcome(claimed: Priority, triaged: Priority, final: Priority) -> str:
    """`claimed_accepted` (final = claimed), `triage_upheld` (final = first triage) or
    `changed` (neither)."""
    if final == claimed:
        return "claimed_accepted"
    if final == triaged:
        return "triage_upheld"
    return "changed"


def _disputes(ours: Sequence[_Incident]) -> dict[str, Any]:
    items = []
    for i in ours:
        t = i.timeline
        if not t.disputed or t.first_triage is None:
            continue
        final = reported_priority(t)
        items.append(
            {
                "incident_id": t.incident_id,
                "title": t.title,
                "claimed": str(t.claimed_priority),
                "triaged": str(t.first_triage),
                "final": str(final),
                "outcome": dispute_outcome(t.claimed_priority, t.first_triage, final),
            }
        )
    outcomes = Counter(item["outcome"] for item in items)
    return {
        "total": len(items),
        "by_outcome": {k: outcomes[k] for k in ("claimed_accepted", "triage_upheld", "changed")},
        "items": items,
    }


def _escalations(ours: Sequence[_Incident], contracts: ContractSource) -> dict[str, Any]:
    levels = {i.timeline.incident_id: state_of(i.timeline, contracts).reason for i in ours}
    counts = Counter(reason.level for reason in levels.values())
    return {
        "by_level": {str(level): counts[level] for level in LEVELS},
        "escalated": sum(1 for reason in levels.values() if reason.level > 1),
        "manual": sum(1 for i in ours if i.timeline.escalations),
        "items": [
            {"incident_id": incident_id, "level": reason.level, "reason": reason.why}
            for incident_id, reason in levels.items()
            if reason.level > 1
        ],
    }


def _postmortems(counted: Sequence[_Incident]) -> dict[str, Any]:
    clocks = [i.figure(Metric.POSTMORTEM) for i in counted]
    required = [c for c in clocks if c.status is not Status.NOT_APPLICABLE]
    on_time = sum(1 for c in required if c.status is Status.MET)
    late = sum(1 for c in required if c.status is Status.BREACHED and c.stopped_us is not None)
    overdue = sum(1 for c in required if c.status is Status.BREACHED and c.stopped_us is None)
    return {
        "required": len(required),
        "published": sum(1 for c in required if c.stopped_us is not None),
        "on_time": on_time,
        "late": late,
        "overdue": overdue,
        "not_yet_due": len(required) - on_time - late - overdue,
        "compliance": _ratio(on_time, on_time + late + overdue),
    }


def _breaches(counted: Sequence[_Incident]) -> list[dict[str, Any]]:
    out = []
    for i in counted:
        for metric in Metric:
            figure = i.figure(metric)
            if figure.status is not Status.BREACHED or figure.target_s is None:
                continue
            clock = i.clock(metric)  # the whole clock: its calendar, pauses and instants
            if clock.status is not Status.BREACHED or clock.target_s is None:
                continue
            elapsed = clock.elapsed_s or 0.0
            out.append(
                {
                    "incident_id": i.timeline.incident_id,
                    "title": i.timeline.title,
                    "metric": str(metric),
                    "priority": str(clock.priority) if clock.priority else None,
                    "calendar": clock.calendar.name if clock.calendar else None,
                    "target_s": clock.target_s,
                    "elapsed_s": _seconds(elapsed),
                    "overrun_s": _seconds(elapsed - clock.target_s),
                    "due_at": format_instant(clock.due_at) if clock.due_at else None,
                    "stopped_at": format_instant(clock.stopped_at) if clock.stopped_at else None,
                    "explanation": explain_breach(metric, clock, i.timeline.as_of),
                }
            )
    return out


def explain_breach(metric: Metric, clock: Clock, as_of: datetime) -> str:
    """One sentence a support manager can read out: what was counted, against what, why."""
    elapsed = clock.elapsed_s or 0.0
    target = clock.target_s or 0
    calendar = clock.calendar.name if clock.calendar else "?"
    words = [
        f"{str(metric).capitalize()} clock at {clock.priority} on calendar {calendar!r}: "
        f"{format_duration(elapsed)} counted against a target of {format_duration(target)}, "
        f"{format_duration(elapsed - target)} over"
    ]
    if clock.due_at is not None:
        words.append(f"; it was due at {format_instant(clock.due_at)}")
    if clock.stopped_at is not None:
        words.append(f" and stopped at {format_instant(clock.stopped_at)}")
    else:
        words.append(" and is still running")
    if clock.pauses:
        horizon = clock.stopped_at or as_of
        paused = sum(
            (min(p.end or horizon, horizon) - p.start).total_seconds() for p in clock.pauses
        )
        words.append(
            f"; {len(clock.pauses)} wait(s) for the customer ({format_duration(paused)}) "
            "were not counted"
        )
    return "".join(words) + "."


def _trend_point(
    incidents: Sequence[_Incident],
    contracts: ContractSource,
    customer: str,
    month: Month,
    as_of: datetime,
) -> dict[str, Any]:
    terms = month_contracts(contracts, customer, month)
    if terms.tier_of(customer) is None:
        start, end = month.bounds(ZoneInfo(reporting_zone(terms, customer)))
        return _uncontracted_point(month, len(_of_month(incidents, start, end)))
    avail: MonthlyAvailability = availability(
        (i.timeline for i in incidents), contracts, customer, month, as_of
    )
    ours = _of_month(incidents, avail.start, avail.end)
    counted = [i for i in ours if not i.excluded]
    figures = {str(m): _metric_figures(counted, m) for m in Metric}
    return {
        "month": str(month),
        "incidents": len(ours),
        "attainment": {name: f["attainment"] for name, f in figures.items()},
        "breached": sum(f["breached"] for f in figures.values()),
        **{k: v for k, v in _means(counted).items() if k in ("mtta_s", "mttr_s")},
        "availability_percent": avail.percent,
        "downtime_s": avail.downtime_s,
        "credit_percent": avail.credit_percent,
    }


def _uncontracted_point(month: Month, incidents: int) -> dict[str, Any]:
    """A trend month in which the customer had no contract (before their first, say): its
    incidents counted, and no target, so no attainment, availability or credit
    (docs/reports.md)."""
    return {
        "month": str(month),
        "incidents": incidents,
        "attainment": {str(m): None for m in Metric},
        "breached": 0,
        "mtta_s": None,
        "mttr_s": None,
        "availability_percent": None,
        "downtime_s": None,
        "credit_percent": None,
    }


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _mean(values: Iterable[float]) -> float | None:
    items = list(values)
    return _seconds(sum(items) / len(items)) if items else None


def _seconds(value: float) -> float:
    return round(value, 3)
