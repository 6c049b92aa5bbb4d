"""`slatrail ledger status`: clocks per customer, clock and status at an instant — one query of a
current ledger table, the fold through the incident index otherwise, the same output either way
(docs/reference/commands.md#ledger-status)."""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from slatrail.infra.bootstrap import Container
from slatrail.infra.commands.ledger import run_status
from slatrail.infra.commands.replay import rebuild_ledger, replay
from slatrail.infra.commands.sla import run as sla_run
from slatrail.infra.ledger_check import freshness
from slatrail.infra.settings import Settings
from slatrail.projections.sla import incident_sla
from tests.builders import CONTRACTS_TOML, record_accepted, reported_data, utc, wire

NOW = utc(2026, 3, 10)
AT = utc(2026, 3, 2, 12, 0)


@pytest.fixture
def container(tmp_path: Path) -> Iterator[Container]:
    contracts = tmp_path / "contracts.toml"
    contracts.write_text(CONTRACTS_TOML, encoding="utf-8")
    settings = Settings(
        store=f"sqlite:///{tmp_path / 'store.db'}",
        read_model=f"sqlite:///{tmp_path / 'read.db'}",
        contracts=contracts,
    )
    opened = Container(settings, clock=lambda: NOW)
    yield opened
    opened.close()


def record(container: Container, *messages: dict[str, Any]) -> None:
    record_accepted(container.app, messages, now=NOW)


def history(container: Container) -> None:
    record(
        container,
        wire("reported", "2026-03-02T08:00:00Z", reported_data("acme", "P1"), incident_id="A-1"),
        wire("reported", "2026-03-02T11:50:00Z", reported_data("acme", "P1"), incident_id="A-2"),
        wire("reported", "2026-03-02T09:00:00Z", reported_data("acme", "P3"), incident_id="A-3"),
        wire("reported", "2026-03-02T10:00:00Z", reported_data("dayco", "P1"), incident_id="D-1"),
        wire("acknowledged", "2026-03-02T08:10:00Z", incident_id="A-1"),
        wire("awaiting_customer", "2026-03-02T09:30:00Z", {"reason": "logs"}, incident_id="A-3"),
        wire("resolved", "2026-03-02T10:20:00Z", {"resolution": "fixed"}, incident_id="D-1"),
        wire("reported", "2026-03-02T13:00:00Z", reported_data("dayco", "P1"), incident_id="D-2"),
    )


def ask(
    container: Container, capsys: pytest.CaptureFixture[str], *options: str, source: str
) -> str:
    """The command's output, asserting where it was answered from (`ledger_source`)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--as-of", type=lambda t: datetime.fromisoformat(t))
    parser.add_argument("--customer")
    parser.add_argument("--format", default="table")
    with capture_logs() as logs:
        assert run_status(container, parser.parse_args(list(options))) == 0
    assert [e["source"] for e in logs if e["event"] == "ledger_source"] == [source]
    return capsys.readouterr().out


def the_fold(container: Container, at: datetime) -> Counter[tuple[str, str, str]]:
    """Clocks per (customer, clock, status) as `sla` answers them, incident by incident."""
    counted: Counter[tuple[str, str, str]] = Counter()
    for events in container.app.histories().values():
        answer = incident_sla(events, container.contract_book, at)
        if answer is not None:
            t = answer.clocks.timeline
            for metric, clock in answer.clocks.clocks.items():
                counted[(t.customer, str(metric), str(clock.status))] += 1
    return counted


def counted(document: dict[str, Any]) -> Counter[tuple[str, str, str]]:
    found: Counter[tuple[str, str, str]] = Counter()
    for row in document["clocks"]:
        assert row["total"] == sum(row["counts"].values())
        for status, n in row["counts"].items():
            if n:
                found[(row["customer"], row["clock"], status)] = n
    return found


def build_table(container: Container) -> None:
    replay(container.app, container.read_models)
    rebuild_ledger(container.app, container.read_models, container.contract_book)
    assert freshness(container.read_models, container.app, container.contract_book).current


def test_the_table_and_the_events_give_the_same_counts_as_the_fold(
    container: Container, capsys: pytest.CaptureFixture[str]
) -> None:
    history(container)
    as_of = ("--as-of", AT.isoformat())
    computed_json = ask(container, capsys, *as_of, "--format", "json", source="events")
    computed_table = ask(container, capsys, *as_of, source="events")
    computed_acme = ask(
        container, capsys, *as_of, "--customer", "acme", "--format", "json", source="events"
    )
    document = json.loads(computed_json)
    assert counted(document) == the_fold(container, AT)
    assert document["statuses"][:3] == ["running", "at_risk", "breached"]
    assert counted(document)[("acme", "response", "met")] == 1  # A-1, acknowledged at 08:10
    assert ("dayco", "resolution", "met") in counted(document)
    assert all(row["customer"] != "dayco" or row["total"] == 1 for row in document["clocks"])
    assert [r["customer"] for r in json.loads(computed_acme)["clocks"]] == ["acme"] * 4

    build_table(container)
    assert container.read_models.ledger_status(AT)  # the table answers now, in one query
    assert ask(container, capsys, *as_of, "--format", "json", source="table") == computed_json
    assert ask(container, capsys, *as_of, source="table") == computed_table
    assert computed_acme == ask(
        container, capsys, *as_of, "--customer", "acme", "--format", "json", source="table"
    )


def test_a_stale_table_is_not_asked(
    container: Container, capsys: pytest.CaptureFixture[str]
) -> None:
    history(container)
    build_table(container)
    record(container, wire("acknowledged", "2026-03-02T11:55:00Z", incident_id="A-2"))
    assert not freshness(container.read_models, container.app, container.contract_book).current
    stale = Counter({(c, m, s): n for c, m, s, n in container.read_models.ledger_status(AT)})
    answer = counted(
        json.loads(
            ask(container, capsys, "--as-of", AT.isoformat(), "--format", "json", source="events")
        )
    )
    assert answer == the_fold(container, AT) != stale  # A-2's response is met now


def test_sla_status_is_preselected_from_a_current_table_with_the_same_answer(
    container: Container, capsys: pytest.CaptureFixture[str]
) -> None:
    history(container)

    def sla(status: str, source: str | None) -> str:
        args = argparse.Namespace(
            as_of=AT, as_known_at=None, incident=None, from_read_model=False, customer=None,
            state=None, status=status, since=None, until=None, explain=False, format="json",
        )  # fmt: skip
        with capture_logs() as logs:
            assert sla_run(container, args) == 0
        sources = [e["source"] for e in logs if e["event"] == "ledger_source"]
        assert sources == ([] if source is None else [source])
        return capsys.readouterr().out

    before = {s: sla(s, "events") for s in ("met", "running", "pending")}
    build_table(container)
    for status, answer in before.items():
        assert sla(status, "table") == answer
    assert [i["incident_id"] for i in json.loads(before["met"])] == ["A-1", "D-1"]
