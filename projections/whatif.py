"""What-if: the monthly reports under a draft contract next to the recorded ones (docs/reports.md,
*What-if*). Pure: nothing is recorded; each incident's timeline is built once and evaluated
under both."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from slatrail.domain.clocks import Metric, Status
from slatrail.domain.contract_version import ContractSource
from slatrail.domain.contracts import Contracts
from slatrail.domain.model import IncidentEvent, parse_instant
from slatrail.projections.availability import Month
from slatrail.projections.report import evaluated, reports_from, visible_timelines

_FLIPPING = (Status.MET, Status.BREACHED)


def whatif(
    histories: Iterable[Sequence[IncidentEvent]],
    recorded: ContractSource,
    draft: Contracts,
    months: Sequence[Month],
    as_of: datetime,
    *,
    customer: str | None = None,
) -> dict[str, Any]:
    """Per (customer, month): the recorded and the draft figures and every clock that flips."""
    seen = visible_timelines(histories, as_of, customer=customer)
    now_incidents = evaluated(seen, recorded)
    draft_incidents = evaluated(seen, draft)
    before = reports_from(now_incidents, recorded, months, as_of, customer=customer)
    draft_names = set(draft.spec.customers)
    after: dict[tuple[str, str], dict[str, Any]] = {}
    if customer is None or customer in draft_names:
        drafted = {name: items for name, items in draft_incidents.items() if name in draft_names}
        for report in reports_from(drafted, draft, months, as_of, customer=customer):
            after[(report["customer"], report["month"])] = report
    rows = []
    for old in before:
        new = after.get((old["customer"], old["month"]))
        start, end = (parse_instant(old["period"][k]) for k in ("start", "end"))
        flips = _flips(
            now_incidents.get(old["customer"], []), draft_incidents.get(old["customer"], []),
            start, end,
        )  # fmt: skip
        rows.append(
            {
                "customer": old["customer"],
                "month": old["month"],
                "recorded": figures(old),
                "draft": figures(new) if new is not None else None,
                "flips": flips,
            }
        )
    return {"as_of": before[0]["as_of"] if before else None, "draft": draft.source, "rows": rows}


def figures(report: dict[str, Any]) -> dict[str, Any]:
    """The compared figures of one report: per metric met / breached / attainment,
    availability and credit."""
    avail = report["availability"]
    return {
        "tier": report["tier"],
        "contract_versions": report.get("contract_versions"),
        "metrics": {
            name: {k: m[k] for k in ("met", "breached", "attainment")}
            for name, m in report["metrics"].items()
        },
        "breaches": sum(m["breached"] for m in report["metrics"].values()),
        "availability_percent": avail["percent"],
        "credit_percent": avail["credit_percent"],
    }


def _flips(
    old: Sequence[Any], new: Sequence[Any], start: datetime, end: datetime
) -> list[dict[str, Any]]:
    out = []
    drafted = {i.timeline.incident_id: i for i in new}
    for incident in old:
        t = incident.timeline
        if not start <= t.reported_at < end or t.excluded:
            continue
        other = drafted.get(t.incident_id)
        if other is None:
            continue
        for metric in Metric:
            a, b = incident.clock(metric), other.clock(metric)
            if a.status != b.status and a.status in _FLIPPING and b.status in _FLIPPING:
                out.append(
                    {
                        "incident_id": t.incident_id,
                        "metric": str(metric),
                        "recorded": str(a.status),
                        "draft": str(b.status),
                        "elapsed_s": round(b.elapsed_s or 0.0, 3),
                        "recorded_target_s": a.target_s,
                        "draft_target_s": b.target_s,
                    }
                )
    return out
