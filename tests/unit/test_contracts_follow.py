"""A long-running process (`serve`) takes up a contract version recorded by another process
(`contracts apply`) without a restart: it re-reads the record when it grew, asked at most every
`contracts_check_s` seconds (docs/reference/contracts.md, *Versions*)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from eventsourcing.application import AggregateNotFoundError, Repository

from slatrail.application.service import SlatrailApplication
from slatrail.domain.contract_version import CONTRACTS_ID, SINCE_EVER
from slatrail.infra.bootstrap import Container
from slatrail.infra.commands.serve import build_alert_timer
from slatrail.infra.errors import UsageError
from slatrail.infra.settings import Settings
from slatrail.infra.store import open_application
from slatrail.infra.wire import decode
from tests.builders import CONTRACTS_TOML, contracts_from, reported_data, utc, wire
from tests.builders import line as message_line

NEWCO = CONTRACTS_TOML + '\n[customers.newco]\ntier = "gold"\n'
AT = utc(2026, 10, 1, 9)


def _report(container: Container, incident: str) -> str:
    message = wire("reported", AT, reported_data("newco", "P1"), incident_id=incident,
                   message_id=f"{incident}-1")  # fmt: skip
    return container.app.record([decode(message_line(message))], now=AT)[0].status


def test_a_serving_container_follows_a_version_recorded_by_another_process(
    tmp_path: Path,
) -> None:
    contracts = tmp_path / "contracts.toml"
    contracts.write_text(CONTRACTS_TOML, encoding="utf-8")
    store = f"sqlite:///{tmp_path / 'store.db'}"
    ticks = [100.0]
    serving = Container(
        Settings(store=store, contracts=contracts, kafka_bootstrap="127.0.0.1:1"),
        contracts_check_s=5.0,
        monotonic=lambda: ticks[0],
    )  # fmt: skip
    once = Container(Settings(store=store))  # a one-shot command reads the versions once
    live = build_alert_timer(serving).timer.contracts  # what the alert timer measures by
    assert serving.contract_book.latest.version == 1  # the file, recorded as version 1
    assert once.contract_book.latest.version == 1
    assert _report(serving, "N-1") != "accepted"  # newco is not under contract yet
    assert live.measuring(AT).customer("newco") is None

    other = open_application(store, contracts_from())  # `contracts apply`, elsewhere
    other.record_contracts(
        NEWCO, source="contracts.toml", effective_from=SINCE_EVER, actor="am",
        reason="newco signed", now=AT,
    )  # fmt: skip
    other.close()

    ticks[0] += 4.9  # not asked again before the interval is over
    assert serving.contract_book.latest.version == 1
    ticks[0] += 0.1
    assert serving.contract_book.latest.version == 2
    assert live.measuring(AT).customer("newco") is not None
    assert _report(serving, "N-2") == "accepted"  # the writer judges by the new version
    assert once.contract_book.latest.version == 1
    serving.close()
    once.close()


def test_two_writers_starting_at_once_on_a_new_store_share_the_first_version(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """Both read no version and record the file as version 1: the second's save fails on the
    first's, which it then takes (checked against its file) instead of failing to start."""
    contracts = tmp_path / "contracts.toml"
    contracts.write_text(CONTRACTS_TOML, encoding="utf-8")
    store = f"sqlite:///{tmp_path / 'store.db'}"
    first = Container(Settings(store=store, contracts=contracts))
    assert first.contract_book.latest.version == 1  # the first writer recorded it …
    read_before_it: list[str] = ["contract_book", "repository.get"]  # … after the second read

    real_book = SlatrailApplication.contract_book

    def contract_book(self: SlatrailApplication) -> Any:
        if "contract_book" in read_before_it:
            read_before_it.remove("contract_book")
            return None
        return real_book(self)

    def get(self: Any, aggregate_id: Any, *args: Any, **kwargs: Any) -> Any:
        if aggregate_id == CONTRACTS_ID and "repository.get" in read_before_it:
            read_before_it.remove("repository.get")
            raise AggregateNotFoundError(aggregate_id)
        return real_get(self, aggregate_id, *args, **kwargs)

    real_get = Repository.get
    monkeypatch.setattr(SlatrailApplication, "contract_book", contract_book)
    monkeypatch.setattr(Repository, "get", get)
    second = Container(Settings(store=store, contracts=contracts))
    assert second.contract_book.latest.version == 1
    assert read_before_it == []  # the race was run
    assert _report(second, "N-1") != "accepted"  # judged by the recorded version (no newco)

    other = tmp_path / "other.toml"
    other.write_text(NEWCO, encoding="utf-8")
    read_before_it[:] = ["contract_book", "repository.get"]
    third = Container(Settings(store=store, contracts=other))
    with pytest.raises(UsageError, match="differs from the recorded contract version"):
        third.contract_book  # noqa: B018 - another file is refused, as on any later start
