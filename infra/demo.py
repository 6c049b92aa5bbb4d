"""A realistic, deterministic month of incidents for the sample customers (`slatrail demo`).

Varied priorities, disputed priorities, waits for the customer, priority changes, manual
escalations, reopenings, outages, exclusions, post-mortems, reports at weekends and on public
holidays, a few incidents still open at month end — and a few faulty deliveries (a duplicate,
a conflicting message_id, an out-of-order event, an unknown customer) to show the dead letters.
"""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from slatrail.domain.contracts import Contracts
from slatrail.domain.messages import SCHEMA
from slatrail.domain.model import Priority, format_instant

_PRIORITY_WEIGHTS = (
    (Priority.P1, 0.16),
    (Priority.P2, 0.3),
    (Priority.P3, 0.34),
    (Priority.P4, 0.2),
)
_TITLES = {
    Priority.P1: ["All calls fail to connect in region {r}",
                  "Signalling gateway down for all {r} users",
                  "Media server crash loop, rooms cannot be joined"],
    Priority.P2: ["Video freezes for Android users on {r}",
                  "Recording upload fails for 20% of rooms",
                  "Push notifications delayed by minutes"],
    Priority.P3: ["Echo on iOS 18 with Bluetooth headsets", "Screen share blurry above 1080p",
                  "SDK logs flood the console"],
    Priority.P4: ["How to configure simulcast layers?", "Question about TURN server quotas",
                  "Docs typo in the Web SDK guide"],
}  # fmt: skip
_REGIONS = ["cn-east", "cn-north", "ap-southeast", "eu-central"]


@dataclass
class _Incident:
    incident_id: str
    customer: str
    messages: list[dict[str, Any]]

    def add(self, kind: str, at: datetime, actor: str, data: dict[str, Any] | None = None) -> None:
        message: dict[str, Any] = {
            "schema": SCHEMA,
            "message_id": f"{self.incident_id}-{len(self.messages) + 1:02d}",
            "incident_id": self.incident_id,
            "type": kind,
            "occurred_at": format_instant(at),
            "actor": actor,
            "source": "demo-portal",
        }
        if data is not None:
            message["data"] = data
        self.messages.append(message)


def month_bounds(year: int, month: int) -> tuple[datetime, datetime]:
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=UTC)
    return start, end


def generate_month(
    contracts: Contracts, year: int = 2026, month: int = 10, seed: int = 20261
) -> list[dict[str, Any]]:
    """Messages for every sample customer, sorted by occurred_at; deterministic per seed."""
    rng = random.Random(seed)
    start, end = month_bounds(year, month)
    incidents: list[_Incident] = []
    for index, customer in enumerate(sorted(contracts.spec.customers)):
        count = rng.randint(16, 22)
        prefix = customer.replace("-", "")[:4].upper()
        for n in range(1, count + 1):
            incident = _Incident(f"{prefix}-{year}{month:02d}-{n:03d}", customer, [])
            _simulate(incident, rng, contracts, start, end, forced=_forced(index, n))
            incidents.append(incident)
    messages = [m for incident in incidents for m in incident.messages]
    messages.sort(key=lambda m: (m["occurred_at"], m["incident_id"], m["message_id"]))
    return messages + _faulty_deliveries(incidents, end)


def _forced(customer_index: int, n: int) -> str | None:
    """A few scenarios every demo month shows, whatever the dice say."""
    return {1: "holiday_p1_outage", 2: "weekend_dispute", 3: "reopened", 4: "excluded"}.get(n)


def _pick_priority(rng: random.Random) -> Priority:
    roll, acc = rng.random(), 0.0
    for priority, weight in _PRIORITY_WEIGHTS:
        acc += weight
        if roll < acc:
            return priority
    return Priority.P4


class _MonthOver(Exception):
    """The next event of an incident would fall after the simulated month."""


def _simulate(
    inc: _Incident,
    rng: random.Random,
    contracts: Contracts,
    start: datetime,
    end: datetime,
    forced: str | None,
) -> None:
    """One incident's messages up to the month's end (later ones are left out)."""
    with contextlib.suppress(_MonthOver):
        _lifecycle(inc, rng, contracts, start, end, forced)


def _lifecycle(
    inc: _Incident,
    rng: random.Random,
    contracts: Contracts,
    start: datetime,
    end: datetime,
    forced: str | None,
) -> None:
    span = (end - start).total_seconds()
    reported = start + timedelta(seconds=rng.uniform(0, span * 0.97))
    claimed = _pick_priority(rng)
    outage = claimed is Priority.P1 and rng.random() < 0.8
    if forced == "holiday_p1_outage":  # Golden Week in October, or early in any month
        reported = start + timedelta(days=1, hours=rng.uniform(1, 20))
        claimed, outage = Priority.P1, True
    elif forced == "weekend_dispute":
        reported = _next_weekend(start + timedelta(days=rng.randint(8, 14)), rng)
        claimed = Priority.P1
    reported = reported.replace(microsecond=0)
    engineer = rng.choice(["li.wei", "zhang.min", "chen.jie", "wang.fang", "liu.yang"])
    customer_actor = f"{inc.customer}-ops"
    title = rng.choice(_TITLES[claimed]).format(r=rng.choice(_REGIONS))
    data: dict[str, Any] = {
        "customer": inc.customer,
        "title": title,
        "priority": str(claimed),
        "channel": rng.choice(["ticket", "email", "im", "phone", "portal"]),
    }
    if outage:
        data["outage"] = True
        data["impact_started_at"] = format_instant(reported - timedelta(minutes=rng.randint(2, 25)))
    inc.add("reported", reported, customer_actor, data)
    now = reported

    def later(minutes: float) -> datetime:
        nonlocal now
        moment = (now + timedelta(minutes=max(minutes, 0.5))).replace(microsecond=0)
        if moment >= end:
            raise _MonthOver
        now = moment
        return moment

    triaged = claimed
    if forced == "weekend_dispute" or rng.random() < 0.2:
        triaged = Priority.P2 if claimed is Priority.P1 else rng.choice(list(Priority))
    at = later(rng.uniform(2, 20))
    reason = "matches impact" if triaged is claimed else "impact limited to part of the users"
    inc.add("triaged", at, engineer, {"priority": str(triaged), "reason": reason})
    response = contracts.target(inc.customer, triaged, "response")
    target_min = (response.seconds or 3600) / 60
    wall_factor = 1.0 if response.calendar.name == "always" else 2.5
    at = later(
        target_min * wall_factor * rng.choice([0.2, 0.4, 0.6, 0.8, 0.9, 1.3])
        - (now - reported).total_seconds() / 60
    )
    inc.add("acknowledged", at, engineer, {"note": "looking into it"})
    priority = triaged
    if rng.random() < 0.1 and priority is not Priority.P1:
        at = later(rng.uniform(20, 240))
        priority = Priority(f"P{int(priority.value[1]) - 1}")
        inc.add(
            "priority_changed",
            at,
            engineer,
            {"priority": str(priority), "reason": "more users affected than reported"},
        )
    if rng.random() < 0.3:
        at = later(rng.uniform(10, 120))
        inc.add(
            "awaiting_customer",
            at,
            engineer,
            {
                "reason": rng.choice(
                    [
                        "SDK logs from the affected device",
                        "repro steps",
                        "network environment details",
                    ]
                )
            },
        )
        at = later(rng.uniform(30, 60 * 20))
        inc.add("customer_responded", at, customer_actor, {"note": "logs attached"})
    if priority is Priority.P1 and rng.random() < 0.75:
        at = later(rng.uniform(20, 200))
        inc.add(
            "workaround_provided",
            at,
            engineer,
            {"description": "switch clients to the backup media cluster", "restores_service": True},
        )
    if rng.random() < 0.1:
        at = later(rng.uniform(10, 90))
        inc.add(
            "escalated",
            at,
            "duty-manager",
            {"level": rng.choice([2, 3]), "reason": "customer asked for an expert"},
        )
    resolution = contracts.target(inc.customer, priority, "resolution")
    budget_min = (resolution.seconds or 72 * 3600) / 60
    wall = 1.0 if resolution.calendar.name == "always" else 3.0
    at = later(budget_min * wall * rng.choice([0.3, 0.5, 0.7, 0.85, 0.95, 1.4]))
    cause = "vendor"
    if forced == "excluded" or rng.random() < 0.08:
        cause = rng.choice(["customer", "third_party", "maintenance"])
    resolved: dict[str, Any] = {"resolution": "fix deployed", "cause": cause}
    if outage:
        resolved["service_restored_at"] = format_instant(at - timedelta(minutes=rng.randint(0, 20)))
    inc.add("resolved", at, engineer, resolved)
    if forced == "reopened" or rng.random() < 0.07:
        at = later(rng.uniform(60, 60 * 30))
        inc.add("reopened", at, customer_actor, {"reason": "problem came back after the fix"})
        at = later(rng.uniform(30, 60 * 6))
        inc.add("resolved", at, engineer, {"resolution": "root cause fixed", "cause": "vendor"})
    if priority is Priority.P1 or outage:
        at = later(rng.uniform(60 * 12, 60 * 24 * 6))
        inc.add(
            "postmortem_published",
            at,
            "sre-lead",
            {
                "summary": f"Post-mortem of {inc.incident_id}",
                "root_cause": "config rollout",
                "action_items": ["canary the config rollout", "alert on error rate"],
                "url": f"https://status.example/pm/{inc.incident_id}",
            },
        )


def _next_weekend(moment: datetime, rng: random.Random) -> datetime:
    while moment.weekday() < 5:
        moment += timedelta(days=1)
    return moment.replace(hour=rng.randint(1, 12), minute=rng.randint(0, 59))


def _faulty_deliveries(incidents: list[_Incident], end: datetime) -> list[dict[str, Any]]:
    """Deliveries a real pipeline sees: one repeat, one conflict, one out of order, one stranger."""
    sample = next(i for i in incidents if len(i.messages) >= 3)
    duplicate = dict(sample.messages[1])
    conflict = {**sample.messages[1], "actor": "someone-else"}
    out_of_order = {
        **sample.messages[0],
        "message_id": f"{sample.incident_id}-late",
        # late, and it does not fit: the incident was not awaiting the customer when reported
        "type": "customer_responded",
        "data": {"note": "late delivery"},
    }
    stranger = {
        **sample.messages[0],
        "message_id": "stranger-01",
        "incident_id": "UNKNOWN-1",
        "data": {**sample.messages[0]["data"], "customer": "not-a-customer"},
    }
    return [duplicate, conflict, out_of_order, stranger]
