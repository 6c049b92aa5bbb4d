"""The record path reads the incidents a batch touches in one query, remembers which incidents
do not exist, and stays correct when another writer shares the store."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import AggregateRecorder

from slatrail.application.service import SlatrailApplication
from slatrail.domain.model import incident_uuid
from slatrail.infra.batch_reads import stored_events_of
from slatrail.infra.store import open_application
from slatrail.infra.wire import decode
from tests.builders import contracts_from, line, reported_data, wire

T0 = datetime(2026, 9, 1, 8, tzinfo=UTC)
NOW = T0 + timedelta(days=30)


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store.db'}"


@pytest.fixture
def app(store_url: str) -> Iterator[SlatrailApplication]:
    application = open_application(store_url, contracts_from())
    yield application
    application.close()


class Counting:
    """The batch lookup of `app`, counting its calls and the single-aggregate reads."""

    def __init__(self, app: SlatrailApplication, monkeypatch: pytest.MonkeyPatch) -> None:
        self.batches: list[list[UUID]] = []
        self.single_reads = 0
        inner = app._stored_events_of

        def batch(recorder: AggregateRecorder, ids: Sequence[UUID]) -> Any:
            self.batches.append(list(ids))
            return inner(recorder, ids)

        original = app.recorder.select_events

        def single(*args: Any, **kwargs: Any) -> Any:
            self.single_reads += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(app, "_stored_events_of", batch)
        monkeypatch.setattr(app.recorder, "select_events", single)


def reported(n: int) -> dict[str, Any]:
    return wire("reported", T0 + timedelta(minutes=n), reported_data(), incident_id=f"L-{n}")


def acknowledged(n: int) -> dict[str, Any]:
    return wire("acknowledged", T0 + timedelta(minutes=n + 1), incident_id=f"L-{n}")


def send(app: SlatrailApplication, *messages: dict[str, Any]) -> list[str]:
    return [str(o.status) for o in app.record([decode(line(m)) for m in messages], now=NOW)]


def test_a_batch_of_new_incidents_costs_one_lookup_and_no_read_per_message(
    app: SlatrailApplication, monkeypatch: pytest.MonkeyPatch
) -> None:
    counting = Counting(app, monkeypatch)
    messages = [m for n in range(40) for m in (reported(n), acknowledged(n))]
    assert send(app, *messages) == ["accepted"] * 80
    assert len(counting.batches) == 1 and len(counting.batches[0]) == 40
    assert counting.single_reads == 0
    # the next batch for the same incidents reads nothing: they are remembered
    closing = [wire("resolved", T0 + timedelta(hours=2), {"resolution": "x"}, incident_id="L-1")]
    assert send(app, *closing) == ["accepted"]
    assert len(counting.batches) == 1 and counting.single_reads == 0


def test_an_incident_known_absent_is_not_looked_up_again(
    app: SlatrailApplication, monkeypatch: pytest.MonkeyPatch
) -> None:
    counting = Counting(app, monkeypatch)
    first_ack = wire("acknowledged", T0, incident_id="GHOST")
    assert send(app, first_ack) == ["rejected"]
    looked_up = len(counting.batches) + counting.single_reads
    assert send(app, reported(7)) == ["accepted"]  # another incident: one lookup for L-7 only
    assert counting.batches[-1] == [incident_uuid("L-7")]
    assert send(app, wire("reported", T0, reported_data(), incident_id="GHOST")) == ["accepted"]
    assert len(counting.batches) + counting.single_reads == looked_up + 1  # GHOST: no read


def test_a_stale_absence_is_corrected_by_the_store(store_url: str) -> None:
    """Writer A believes L-1 absent; writer B reports it. A's acknowledgement is judged on the
    stored history (accepted), and B's report sent to A is a duplicate, not a second report."""
    contracts = contracts_from()
    a = open_application(store_url, contracts)
    b = open_application(store_url, contracts)
    try:
        assert send(a, acknowledged(1)) == ["rejected"]  # A now knows L-1 as absent
        assert send(b, reported(1)) == ["accepted"]
        assert send(a, acknowledged(1)) == ["accepted"]
        assert send(a, reported(1)) == ["duplicate"]
        assert send(a, reported(2)) == ["accepted"]
        assert send(b, reported(2), acknowledged(2)) == ["duplicate", "accepted"]
        assert [e.position for e in a.incident_events("L-2")] == [1, 2]
    finally:
        a.close()
        b.close()


def test_the_batch_read_equals_the_librarys_reads(app: SlatrailApplication) -> None:
    send(app, *[m for n in range(5) for m in (reported(n), acknowledged(n))])
    ids = [incident_uuid(f"L-{n}") for n in range(7)]  # two that do not exist
    found = stored_events_of(app.recorder, ids)
    assert set(found) == set(ids[:5])
    for aggregate_id in ids[:5]:
        assert list(found[aggregate_id]) == list(app.recorder.select_events(aggregate_id))
