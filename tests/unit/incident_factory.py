"""Incident histories built through the real wire contract and the real Incident aggregate.

incidents = IncidentFactory(contracts)
incidents.report("I-1", "2026-10-05T08:00:00Z", customer="acme", priority="P1", outage=True)
incidents.then("I-1", "acknowledged", "2026-10-05T08:10:00Z")
incidents.histories()  # what `SlatrailApplication.histories().values()` gives
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from domain.contracts import Contracts
from domain.incident import Fact, Incident
from domain.messages import MESSAGE_ADAPTER, SCHEMA
from domain.model import IncidentEvent, parse_instant


def instant(value: str | datetime) -> datetime:
    return parse_instant(value) if isinstance(value, str) else value


class IncidentFactory:
    def __init__(self, contracts: Contracts) -> None:
        self.contracts = contracts
        self._incidents: dict[str, Incident] = {}
        self._events: dict[str, list[IncidentEvent]] = {}

    def report(
        self,
        incident_id: str,
        at: str | datetime,
        *,
        customer: str,
        priority: str = "P3",
        title: str | None = None,
        outage: bool = False,
        impact_started_at: str | None = None,
        recorded_at: str | datetime | None = None,
    ) -> IncidentFactory:
        data: dict[str, Any] = {
            "customer": customer,
            "title": title or f"incident {incident_id}",
            "priority": priority,
        }
        if outage:
            data["outage"] = True
        if impact_started_at is not None:
            data["impact_started_at"] = impact_started_at
        fact = self._fact(incident_id, "reported", at, data)
        incident = Incident.report(fact, contracts=self.contracts, now=self._now(fact, recorded_at))
        self._incidents[incident_id] = incident
        self._events[incident_id] = []
        self._collect(incident_id)
        return self

    def then(
        self,
        incident_id: str,
        kind: str,
        at: str | datetime,
        recorded_at: str | datetime | None = None,
        **data: Any,
    ) -> IncidentFactory:
        """Record a later event; `data` as in the wire contract (defaults filled in)."""
        defaults: dict[str, dict[str, Any]] = {
            "awaiting_customer": {"reason": "logs please"},
            "workaround_provided": {"description": "use the backup cluster"},
            "escalated": {"reason": "customer asked"},
            "resolved": {"resolution": "fixed"},
            "reopened": {"reason": "came back"},
            "priority_changed": {"reason": "impact changed"},
            "postmortem_published": {
                "summary": "what happened",
                "root_cause": "config",
                "action_items": [],
            },
        }
        fact = self._fact(incident_id, kind, at, {**defaults.get(kind, {}), **data})
        incident = self._incidents[incident_id]
        incident.record(fact, now=self._now(fact, recorded_at))
        self._collect(incident_id)
        return self

    def events(self, incident_id: str) -> list[IncidentEvent]:
        return list(self._events[incident_id])

    def histories(self) -> list[list[IncidentEvent]]:
        return [list(events) for events in self._events.values()]

    def _fact(self, incident_id: str, kind: str, at: str | datetime, data: dict[str, Any]) -> Fact:
        moment = instant(at)
        position = len(self._events.get(incident_id, [])) + 1
        raw = {
            "schema": SCHEMA,
            "message_id": f"{incident_id}-{position:03d}",
            "incident_id": incident_id,
            "type": kind,
            "occurred_at": moment.isoformat(),
            "actor": "tester",
            "data": data,
        }
        message = MESSAGE_ADAPTER.validate_json(json.dumps(raw))
        return Fact(
            type=message.event_type,
            incident_id=message.incident_id,
            occurred_at=message.occurred_at,
            actor=message.actor,
            source=message.source,
            message_id=message.message_id,
            data=message.payload,
        )

    @staticmethod
    def _now(fact: Fact, recorded_at: str | datetime | None) -> datetime:
        if recorded_at is not None:
            return instant(recorded_at)
        return fact.occurred_at + timedelta(seconds=1)

    def _collect(self, incident_id: str) -> None:
        for event in self._incidents[incident_id].collect_events():
            assert isinstance(event, Incident.Event)
            self._events[incident_id].append(event.to_record())


REPORT_CONTRACTS = """
at_risk_threshold = 0.75
postmortem_within = "120h"

[calendars.always]
kind = "24x7"

[calendars.berlin-business]
kind = "business"
timezone = "Europe/Berlin"
weekdays = ["mon", "tue", "wed", "thu", "fri"]
hours = ["09:00-17:00"]

[tiers.gold]
availability_target = 99.9
P1 = { calendar = "always", response = "15m", workaround = "2h", resolution = "4h" }
P2 = { calendar = "always", response = "1h", resolution = "8h" }
P3 = { calendar = "berlin-business", response = "4h", resolution = "24h" }
P4 = { calendar = "berlin-business", response = "8h" }

[tiers.plain]
availability_target = 99.9
P1 = { calendar = "always", response = "15m", workaround = "2h", resolution = "4h" }
P2 = { calendar = "always", response = "1h", resolution = "8h" }
P3 = {}
P4 = {}

[[credits]]
below = "target"
percent = 10
[[credits]]
below = 99.0
percent = 25
[[credits]]
below = 95.0
percent = 50

[customers.berlin]                # zone given
tier = "gold"
name = "Berlin Bikes GmbH"
timezone = "Europe/Berlin"

[customers.bizcal]                # no zone: its tier's business calendar gives Europe/Berlin
tier = "gold"

[customers.utc-co]                # no zone, 24x7 tier: UTC
tier = "plain"

[customers.shanghai]
tier = "plain"
timezone = "Asia/Shanghai"
"""
