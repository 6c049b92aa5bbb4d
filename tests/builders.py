"""The one place tests build incidents: wire messages, contracts, recorded histories.

Every history goes through the real wire contract and the real Incident aggregate:
`record_history(facts, contracts)` for one incident, `IncidentFactory` for several, event by
event:

incidents = IncidentFactory(contracts)
incidents.report("I-1", "2026-10-05T08:00:00Z", customer="acme", priority="P1", outage=True)
incidents.then("I-1", "acknowledged", "2026-10-05T08:10:00Z")
incidents.histories()  # what `SlatrailApplication.histories().values()` gives
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from slatrail.domain.contracts import Contracts, load_contracts
from slatrail.domain.incident import Fact, Incident
from slatrail.domain.messages import to_fact
from slatrail.domain.model import IncidentEvent, format_instant, incident_uuid, parse_instant
from slatrail.infra.wire import decode

SCHEMA = "slatrail.incident/v1"

# A contract written for the tests (not the shipped sample, so a change there cannot hide a bug):
# a 24x7 calendar, a Berlin business calendar with a lunch break and a holiday (DST-relevant),
# and a Berlin calendar of every morning (00:00-12:00 local), 11 h / 13 h long on DST days.
CONTRACTS_TOML = """
at_risk_threshold = 0.75
postmortem_within = "120h"

[calendars.always]
kind = "24x7"

[calendars.office]
kind = "business"
timezone = "Europe/Berlin"
weekdays = ["mon", "tue", "wed", "thu", "fri"]
hours = ["09:00-12:00", "13:00-17:30"]
extra_holidays = ["2026-03-04"]

[calendars.mornings]
kind = "business"
timezone = "Europe/Berlin"
weekdays = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
hours = ["00:00-12:00"]

[tiers.gold]
availability_target = 99.99
P1 = { calendar = "always", response = "15m", workaround = "2h", resolution = "4h" }
P2 = { calendar = "always", response = "1h", resolution = "8h" }
P3 = { calendar = "office", response = "4h", workaround = "8h", resolution = "24h" }
P4 = { calendar = "office", response = "8h" }

[tiers.daily]
availability_target = 99.9
P1 = { calendar = "always", response = "30m", resolution = "24h" }
P2 = {}
P3 = { calendar = "mornings", response = "4h", resolution = "48h" }
P4 = {}

[customers.acme]
tier = "gold"

[customers.dayco]
tier = "daily"
"""


def contracts_from(text: str = CONTRACTS_TOML, source: str = "test-contracts.toml") -> Contracts:
    return load_contracts(text, source)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def instant(value: str | datetime) -> datetime:
    """An RFC 3339 text as a datetime; a datetime as it is."""
    return parse_instant(value) if isinstance(value, str) else value


def rfc3339(moment: datetime | Any) -> Any:
    """A datetime as RFC 3339 UTC; anything else (a deliberately bad value) as it is."""
    return format_instant(moment) if isinstance(moment, datetime) else moment


def wire(
    type: str,
    occurred_at: datetime | str,
    data: dict[str, Any] | None = None,
    *,
    incident_id: str = "INC-1",
    message_id: str | None = None,
    actor: str = "li.wei",
    **extra: Any,
) -> dict[str, Any]:
    """One `slatrail.incident/v1` message as a JSON-ready dict."""
    message: dict[str, Any] = {
        "schema": SCHEMA,
        "message_id": (
            message_id if message_id is not None else f"{incident_id}:{type}:{rfc3339(occurred_at)}"
        ),
        "incident_id": incident_id,
        "type": type,
        "occurred_at": rfc3339(occurred_at),
        "actor": actor,
    }
    if data is not None:
        message["data"] = data
    message.update(extra)
    return message


def reported_data(customer: str = "acme", priority: str = "P3", **extra: Any) -> dict[str, Any]:
    return {"customer": customer, "title": "Calls drop after 30 s", "priority": priority, **extra}


def minimal_data(type: str) -> dict[str, Any] | None:
    """The least `data` a message of `type` must carry to be valid (a fresh copy)."""
    needed: dict[str, dict[str, Any] | None] = {
        "reported": reported_data(),
        "triaged": {"priority": "P2"},
        "priority_changed": {"priority": "P1", "reason": "more users affected"},
        "acknowledged": None,
        "awaiting_customer": {"reason": "SDK logs"},
        "customer_responded": None,
        "workaround_provided": {"description": "use the backup cluster"},
        "escalated": {"level": 2, "reason": "customer asked"},
        "resolved": {"resolution": "fixed"},
        "reopened": {"reason": "came back"},
        "postmortem_published": {"summary": "s", "root_cause": "r", "action_items": ["a"]},
    }
    return needed[type]


def line(message: dict[str, Any]) -> bytes:
    return json.dumps(message, ensure_ascii=False).encode("utf-8")


def jsonl(messages: Iterable[dict[str, Any] | str]) -> str:
    return "".join((m if isinstance(m, str) else json.dumps(m)) + "\n" for m in messages)


def record_accepted(app: Any, messages: Iterable[dict[str, Any]], *, now: datetime) -> None:
    """Record wire messages through the application in one batch; each must be accepted."""
    batch = [decode(line(m)) for m in messages]
    outcomes = app.record(batch, now=now)
    assert [o.status for o in outcomes] == ["accepted"] * len(batch), outcomes


FactSpec = tuple[str, datetime, dict[str, Any]]


def received(
    type: str,
    occurred_at: datetime,
    data: dict[str, Any] | None,
    *,
    incident_id: str,
    message_id: str,
) -> Fact:
    """A fact as the receiver gets it: through the wire contract, so `data` carries its
    defaults exactly as in production."""
    message, _ = decode(
        line(wire(type, occurred_at, data, incident_id=incident_id, message_id=message_id))
    )
    return to_fact(message)


def record_history(
    facts: Sequence[FactSpec],
    contracts: Contracts,
    *,
    incident_id: str = "INC-1",
    now: datetime | None = None,
) -> list[IncidentEvent]:
    """Run facts through the Incident aggregate (all rules checked) and return its records."""
    assert facts and facts[0][0] == "reported", "a history starts with reported"
    receiver_now = now or max(at for _, at, _ in facts)
    incidents = IncidentFactory(contracts)
    for kind, at, data in facts:
        incidents.record(incident_id, kind, at, data, recorded_at=receiver_now)
    return incidents.events(incident_id)


class IncidentFactory:
    """Histories of several incidents, recorded one fact at a time."""

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
        return self.record(incident_id, "reported", at, data, recorded_at=recorded_at)

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
        data = {**defaults.get(kind, {}), **data}
        return self.record(incident_id, kind, at, data, recorded_at=recorded_at)

    def record(
        self,
        incident_id: str,
        kind: str,
        at: str | datetime,
        data: dict[str, Any] | None,
        *,
        recorded_at: str | datetime | None = None,
    ) -> IncidentFactory:
        """Record one fact (`reported` opens the incident), received at `recorded_at`, else a
        second after it happened."""
        moment = instant(at)
        events = self._events.setdefault(incident_id, [])
        fact = received(
            kind,
            moment,
            data,
            incident_id=incident_id,
            message_id=f"{incident_id}-{len(events) + 1:03d}",
        )
        now = instant(recorded_at) if recorded_at is not None else moment + timedelta(seconds=1)
        if kind == "reported":
            incident = Incident.report(fact, contracts=self.contracts, now=now)
            self._incidents[incident_id] = incident
        else:
            incident = self._incidents[incident_id]
            incident.record(fact, now=now)
        for event in incident.collect_events():
            assert isinstance(event, Incident.Event)
            events.append(event.to_record())
        return self

    def events(self, incident_id: str) -> list[IncidentEvent]:
        return list(self._events[incident_id])

    def histories(self) -> list[list[IncidentEvent]]:
        return [list(events) for events in self._events.values()]


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


def damage_first_event(store_url: str, incident_id: str) -> None:
    """Overwrite the state of the incident's first stored event with bytes that are no JSON,
    straight in the database (SQLite or PostgreSQL), as damage would."""
    aggregate_id = incident_uuid(incident_id)
    if store_url.startswith("sqlite"):
        import sqlite3

        with sqlite3.connect(store_url.removeprefix("sqlite:///")) as db:
            db.execute(
                "UPDATE stored_events SET state = ? WHERE originator_id = ? "
                "AND originator_version = 1",
                (b"{not json", aggregate_id.hex),
            )
        return
    import psycopg

    with psycopg.connect(store_url) as db:
        db.execute(
            "UPDATE slatrail_events SET state = %s "
            "WHERE originator_id = %s AND originator_version = 1",
            (b"{not json", aggregate_id),
        )
