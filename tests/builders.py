"""Small builders shared by the foundation tests: wire messages, contracts, recorded histories."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from domain.contracts import Contracts, load_contracts
from domain.incident import Incident
from domain.messages import to_fact
from domain.model import IncidentEvent, format_instant
from infra.wire import decode

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


def instant(moment: datetime | Any) -> Any:
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
            message_id if message_id is not None else f"{incident_id}:{type}:{instant(occurred_at)}"
        ),
        "incident_id": incident_id,
        "type": type,
        "occurred_at": instant(occurred_at),
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


FactSpec = tuple[str, datetime, dict[str, Any]]


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
    incident: Incident | None = None
    for index, (kind, at, data) in enumerate(facts, start=1):
        # Through the wire contract, so data carries its defaults exactly as in production.
        message, _ = decode(
            line(
                wire(
                    kind, at, data, incident_id=incident_id, message_id=f"{incident_id}-{index:03d}"
                )
            )
        )
        fact = to_fact(message)
        if incident is None:
            incident = Incident.report(fact, contracts=contracts, now=receiver_now)
        else:
            incident.record(fact, now=receiver_now)
    assert incident is not None
    return [event.to_record() for event in incident.collect_events()]
