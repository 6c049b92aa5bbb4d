"""Synthetic incident streams for benchmarks: valid, time-ordered, deterministic."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from slatrail.domain.messages import SCHEMA
from slatrail.domain.model import format_instant

CUSTOMERS = ("acme-rtc", "brightcall", "chatnest")


def incident_messages(index: int, rng: random.Random, base: datetime) -> list[dict[str, Any]]:
    """Ten messages of one incident: report → … → resolved → post-mortem."""
    incident_id = f"BENCH-{index:07d}"
    at = base + timedelta(minutes=rng.randint(0, 60 * 24 * 25))
    steps: list[tuple[str, dict[str, Any] | None]] = [
        ("reported", {"customer": CUSTOMERS[index % 3], "title": "calls drop",
                      "priority": rng.choice(["P1", "P2", "P3", "P4"]), "outage": index % 5 == 0}),
        ("triaged", {"priority": rng.choice(["P1", "P2", "P3"])}),
        ("acknowledged", None),
        ("awaiting_customer", {"reason": "logs"}),
        ("customer_responded", None),
        ("priority_changed", {"priority": "P2", "reason": "fewer users than thought"}),
        ("workaround_provided", {"description": "use backup cluster"}),
        ("escalated", {"level": 2, "reason": "customer request"}),
        ("resolved", {"resolution": "fixed"}),
        ("postmortem_published", {"summary": "s", "root_cause": "r", "action_items": []}),
    ]  # fmt: skip
    out = []
    for n, (kind, data) in enumerate(steps, start=1):
        at += timedelta(minutes=rng.randint(1, 90))
        out.append(wire_message(incident_id, n, kind, at, data))
    return out


def wire_message(
    incident_id: str, n: int, kind: str, at: datetime, data: dict[str, Any] | None
) -> dict[str, Any]:
    """The n-th message of an incident, as a publisher sends it."""
    message: dict[str, Any] = {
        "schema": SCHEMA, "message_id": f"{incident_id}-{n}", "incident_id": incident_id,
        "type": kind, "occurred_at": format_instant(at), "actor": "bench",
    }  # fmt: skip
    if data is not None:
        message["data"] = data
    return message


def jsonl(events: int, seed: int = 7) -> str:
    """`events` messages (a multiple of 10) interleaved across incidents like a live stream."""
    rng = random.Random(seed)
    base = datetime(2026, 9, 1, tzinfo=UTC)
    messages = [m for i in range(events // 10) for m in incident_messages(i, rng, base)]
    messages.sort(key=lambda m: m["occurred_at"])
    return "".join(json.dumps(m) + "\n" for m in messages)
