"""`slatrail report` for several customers computed by forked workers, each taking whole
customers with its own connection to the store, says exactly what one process says (the
JSON byte for byte), on SQLite and PostgreSQL; a worker's error is the command's error."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from slatrail.application.selection import report_customers, selected_reports
from slatrail.application.service import DamagedStoreError
from slatrail.domain.model import incident_uuid
from slatrail.infra.bootstrap import Container
from slatrail.infra.commands.report import computed_reports
from slatrail.infra.render import to_json
from slatrail.infra.settings import Settings
from slatrail.infra.store import open_application
from slatrail.infra.workers import can_fork
from slatrail.projections.availability import Month
from tests.builders import (
    CONTRACTS_TOML,
    contracts_from,
    damage_first_event,
    record_accepted,
    wire,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not can_fork(), reason="report workers are forked"),
]

EXTRA = "".join(
    f'\n[customers.{name}]\ntier = "{tier}"\ntimezone = "{zone}"\n'
    for name, tier, zone in (
        ("bolt", "gold", "Asia/Tokyo"),
        ("cyan", "daily", "America/New_York"),
        ("delta", "gold", "Europe/Berlin"),
    )
)
CONTRACTS = CONTRACTS_TOML + EXTRA
CUSTOMERS = ["acme", "bolt", "cyan", "dayco", "delta"]
START = datetime(2026, 2, 1, tzinfo=UTC)
AS_OF = datetime(2026, 7, 3, tzinfo=UTC)


def messages(count: int) -> list[dict[str, Any]]:
    """`count` incidents over February–June 2026, spread over the customers: some breach,
    some wait for the customer, some are still open, some are disputed or reopened."""
    rng = random.Random(7)
    out: list[dict[str, Any]] = []
    for n in range(count):
        incident_id = f"W-{n:03d}"
        at = START + timedelta(minutes=rng.randint(0, 150 * 24 * 60))
        data = {"customer": CUSTOMERS[n % len(CUSTOMERS)], "title": f"incident {n}",
                "priority": rng.choice(["P1", "P2", "P3", "P4"]), "outage": n % 4 == 0}  # fmt: skip
        steps: list[tuple[str, dict[str, Any] | None]] = [("reported", data)]
        if n % 6 == 1:
            steps.append(("triaged", {"priority": "P1"}))
        steps.append(("acknowledged", None))
        if n % 5 == 2:
            steps += [("awaiting_customer", {"reason": "logs"}), ("customer_responded", None)]
        if n % 9 != 4:  # still open otherwise
            steps.append(("resolved", {"resolution": "fixed"}))
            if n % 7 == 3:
                steps += [("reopened", {"reason": "again"}), ("resolved", {"resolution": "ok"})]
        for kind, body in steps:
            at += timedelta(minutes=rng.randint(5, 900))
            out.append(wire(kind, at, body, incident_id=incident_id))
    return out


@pytest.fixture
def container(store_url: str, tmp_path: Path) -> Iterator[Container]:
    contracts = tmp_path / "contracts.toml"
    contracts.write_text(CONTRACTS, encoding="utf-8")
    app = open_application(store_url, contracts_from(CONTRACTS))
    record_accepted(app, messages(160), now=AS_OF)
    app.close()
    made = Container(Settings(store=store_url, contracts=contracts), store_read_only=True)
    yield made
    made.close()


def reports(container: Container, months: list[Month], workers: int) -> str:
    book = container.contracts_known_at(None)
    names = report_customers(book, months)
    found = computed_reports(
        container, book, months, names, as_of=AS_OF, as_known_at=None, workers=workers
    )
    return to_json(found)


@pytest.mark.parametrize(
    "months", [[Month(2026, 6)], [Month(2026, 4), Month(2026, 5), Month(2026, 6)]]
)
def test_reports_by_forked_workers_are_byte_for_byte_the_reports_of_one_process(
    container: Container, months: list[Month]
) -> None:
    serial = reports(container, months, workers=1)
    assert serial == to_json(
        selected_reports(container.app, container.contracts_known_at(None), months, as_of=AS_OF)
    )
    document = json.loads(serial)
    assert [(r["customer"], r["month"]) for r in document] == [
        (c, str(m)) for c in CUSTOMERS for m in months
    ]
    assert sum(r["incidents"]["total"] for r in document) > 0
    assert any(r["breaches"] for r in document)
    for workers in (2, 3, 5):
        assert reports(container, months, workers=workers) == serial


def test_a_workers_error_is_the_error_the_command_gives_in_one_process(
    container: Container, store_url: str
) -> None:
    damaged = next(
        m["incident_id"]
        for m in messages(160)
        if m["type"] == "reported" and m["data"]["customer"] == "cyan"
        and m["occurred_at"].startswith("2026-06")
    )  # fmt: skip
    damage_first_event(store_url, damaged)
    errors = []
    for workers in (1, 3):
        with pytest.raises(DamagedStoreError) as raised:
            reports(container, [Month(2026, 6)], workers=workers)
        errors.append(str(raised.value))
    assert errors[0] == errors[1]
    assert errors[0].startswith(f"stored event {incident_uuid(damaged)} v1 ")
