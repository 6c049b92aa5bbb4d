"""SLA clocks against a slow, obviously-correct reference: replay the history minute by minute.

Histories are random walks through the lifecycle (events on whole minutes); the reference asks,
for every minute since the report, "was this clock counting during this minute?" and adds up.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slatrail.domain.contracts import Contracts
from slatrail.projections.sla import incident_sla
from tests.builders import contracts_from, record_history, utc
from tests.hypothesis_profiles import examples

START = utc(2026, 3, 2, 7)  # Monday 08:00 Berlin
MINUTE = timedelta(minutes=1)
BERLIN = ZoneInfo("Europe/Berlin")
CONTRACTS: Contracts = contracts_from()
TARGET_MIN = {  # tests.builders.CONTRACTS_TOML, tier gold
    "P1": {"response": 15, "workaround": 120, "resolution": 240},
    "P3": {"response": 240, "workaround": 480, "resolution": 1440},
}

# what may happen next, per state (reference/wire.md), with the data each type needs
NEXT = {
    "open": [
        "acknowledged", "awaiting_customer", "workaround_provided", "resolved", "escalated",
        "priority_changed",
    ],
    "awaiting": [
        "acknowledged", "customer_responded", "workaround_provided", "resolved", "priority_changed",
    ],
    "resolved": ["reopened", "postmortem_published"],
}  # fmt: skip
DATA: dict[str, dict[str, Any]] = {
    "acknowledged": {},
    "awaiting_customer": {"reason": "logs"},
    "customer_responded": {},
    "workaround_provided": {"description": "d"},
    "resolved": {"resolution": "r"},
    "reopened": {"reason": "r"},
    "postmortem_published": {"summary": "s", "root_cause": "r", "action_items": []},
    "escalated": {"level": 2, "reason": "r"},
}


@dataclass
class Walk:
    priority: str  # as claimed
    facts: list[tuple[str, datetime, dict[str, Any]]]
    as_of: datetime

    def priority_at(self, moment: datetime) -> str:
        current = self.priority
        for kind, at, data in self.facts:
            if at <= moment and kind == "priority_changed":
                current = data["priority"]
        return current

    def stop(self, metric: str) -> datetime | None:
        """When the clock stopped (events up to as_of), None if it runs."""
        stops = {
            "response": ("acknowledged",),
            "workaround": ("workaround_provided", "resolved"),
            "resolution": ("resolved",),
        }[metric]
        found = [at for kind, at, _ in self.facts if kind in stops and at <= self.as_of]
        if metric == "resolution":
            resolved = replay(self, self.as_of)["state"] == "resolved"
            return found[-1] if found and resolved else None
        return found[0] if found else None


@st.composite
def walks(draw: st.DrawFn) -> Walk:
    priority = draw(st.sampled_from(["P1", "P3"]))
    at = START + draw(st.integers(0, 3 * 24 * 60)) * MINUTE
    facts = [("reported", at, {"customer": "acme", "title": "t", "priority": priority})]
    state, acknowledged = "open", False
    for _ in range(draw(st.integers(0, 8))):
        choices = [t for t in NEXT[state] if not (t == "acknowledged" and acknowledged)]
        kind = draw(st.sampled_from(choices))
        at += draw(st.integers(0, 600)) * MINUTE
        data = DATA.get(kind, {})
        if kind == "priority_changed":  # between 24x7 (P1) and office hours (P3)
            data = {"priority": draw(st.sampled_from(["P1", "P3"])), "reason": "r"}
        facts.append((kind, at, data))
        acknowledged = acknowledged or kind == "acknowledged"
        state = {
            "awaiting_customer": "awaiting",
            "customer_responded": "open",
            "resolved": "resolved",
            "reopened": "open",
        }.get(kind, state)
    as_of = at + draw(st.integers(0, 3 * 24 * 60)) * MINUTE
    return Walk(priority, facts, as_of)


def working(priority: str, minute: datetime) -> bool:
    """Does this minute count on the priority's calendar? (office: Berlin business hours)"""
    if priority == "P1":
        return True
    local = minute.astimezone(BERLIN)
    if local.weekday() >= 5 or local.date().isoformat() == "2026-03-04":
        return False
    minutes = local.hour * 60 + local.minute
    return 9 * 60 <= minutes < 12 * 60 or 13 * 60 <= minutes < 17 * 60 + 30


def replay(walk: Walk, minute: datetime) -> dict[str, Any]:
    """The incident as of the start of `minute` (events at or before it applied)."""
    state, acked, relieved = "open", False, False
    for kind, at, _ in walk.facts:
        if at > minute:
            break
        acked = acked or kind == "acknowledged"
        relieved = relieved or kind in ("workaround_provided", "resolved")
        state = {
            "awaiting_customer": "awaiting",
            "customer_responded": "open",
            "resolved": "resolved",
            "reopened": "open",
        }.get(kind, state)
    return {"state": state, "acked": acked, "relieved": relieved}


def counting(metric: str, now: dict[str, Any]) -> bool:
    if metric == "response":
        return not now["acked"]
    if metric == "workaround":
        return now["state"] == "open" and not now["relieved"]
    return now["state"] == "open"


def reference(walk: Walk, metric: str) -> tuple[int, str, datetime | None]:
    """(counted minutes, status, due_at) by brute force."""
    reported_at = walk.facts[0][1]
    stop = walk.stop(metric)
    # priority in effect: at the stop (stopped) or at as_of (running), over the whole run
    priority = walk.priority_at(stop or walk.as_of)
    target = TARGET_MIN[priority][metric]
    counted, due = 0, None
    minute = reported_at
    while minute < walk.as_of:
        if counting(metric, replay(walk, minute)) and working(priority, minute):
            counted += 1
            if counted == target:
                due = minute + MINUTE
        minute += MINUTE
    now = replay(walk, walk.as_of)
    stopped = {
        "response": now["acked"],
        "workaround": now["relieved"],
        "resolution": now["state"] == "resolved",
    }[metric]
    paused = now["state"] == "awaiting" and metric != "response" and not stopped
    if due is None and not paused:  # go on counting after as_of (no further pause)
        extra, minute = counted, walk.as_of
        while extra < target:
            if working(priority, minute):
                extra += 1
            minute += MINUTE
        due = minute
    if stopped and counted <= target:
        status = "met"
    elif counted > target:
        status = "breached"
    elif paused:
        status = "paused"
    elif counted >= 0.75 * target:
        status = "at_risk"
    else:
        status = "running"
    return counted, status, due


@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(walks())
def test_clocks_agree_with_a_minute_by_minute_replay(walk: Walk) -> None:
    events = record_history(walk.facts, CONTRACTS)
    view = incident_sla(events, CONTRACTS, walk.as_of)
    assert view is not None
    for metric in ("response", "workaround", "resolution"):
        counted, status, due = reference(walk, metric)
        got = view.as_json()["metrics"][metric]
        assert got["elapsed_s"] == counted * 60, (metric, got)
        assert got["status"] == status, (metric, got)
        expected_due = due.strftime("%Y-%m-%dT%H:%M:%SZ") if due else None
        if got["stopped_at"] is None:  # a stopped clock's due_at is checked elsewhere
            assert got["due_at"] == expected_due, (metric, got)
