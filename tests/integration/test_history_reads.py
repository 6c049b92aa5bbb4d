"""`histories_of` (what `sla`, `escalations` and `report` fold) reads the stored rows of many
incidents in one query and decodes each row straight into its `IncidentEvent`: the same records
the library's own decoding gives (`incident_events`), on every engine, and the same error for
a stored event that no longer decodes."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import AggregateRecorder

from slatrail.application.service import DamagedStoreError, SlatrailApplication
from slatrail.domain.model import incident_uuid
from slatrail.infra.store import open_application
from tests.builders import (
    contracts_from,
    damage_first_event,
    record_accepted,
    reported_data,
    wire,
)

pytestmark = pytest.mark.integration

T0 = datetime(2026, 9, 1, 8, tzinfo=UTC)
NOW = T0 + timedelta(days=30)
IDS = [f"H-{n}" for n in range(6)]


def history(n: int) -> list[dict[str, Any]]:
    incident_id = IDS[n]
    at = T0 + timedelta(hours=n)
    messages = [
        wire("reported", at, reported_data(priority="P2", outage=n % 2 == 0),
             incident_id=incident_id),
        wire("acknowledged", at + timedelta(minutes=5), incident_id=incident_id),
    ]  # fmt: skip
    if n % 3 != 2:
        messages += [
            wire("awaiting_customer", at + timedelta(minutes=9), {"reason": "logs"},
                 incident_id=incident_id),
            wire("customer_responded", at + timedelta(minutes=30), incident_id=incident_id),
            wire("resolved", at + timedelta(hours=2), {"resolution": "fixed"},
                 incident_id=incident_id),
        ]  # fmt: skip
    return messages


@pytest.fixture
def app(store_url: str) -> Iterator[SlatrailApplication]:
    application = open_application(store_url, contracts_from())
    record_accepted(application, [m for n in range(len(IDS)) for m in history(n)], now=NOW)
    yield application
    application.close()


def test_histories_of_are_the_records_the_library_decodes(app: SlatrailApplication) -> None:
    wanted = [IDS[3], "H-absent", IDS[0], IDS[5], IDS[0]]
    expected = [app.incident_events(i) for i in wanted if app.incident_events(i)]
    assert len(expected) == 4 and all(expected)
    assert app.histories_of(wanted) == expected
    assert app.histories_of([]) == []


def test_histories_of_reads_all_incidents_in_one_query_and_builds_no_domain_event(
    app: SlatrailApplication, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[list[UUID]] = []
    inner = app._event_rows_of

    def counted(recorder: AggregateRecorder, ids: Sequence[UUID]) -> Any:
        calls.append(list(ids))
        return inner(recorder, ids)

    def single(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("one aggregate read on its own")

    def built(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a domain event was built")

    monkeypatch.setattr(app, "_event_rows_of", counted)
    monkeypatch.setattr(app.recorder, "select_events", single)
    monkeypatch.setattr(app.mapper, "to_domain_event", built)
    assert [h[0].incident_id for h in app.histories_of(IDS)] == IDS
    assert calls == [[incident_uuid(i) for i in IDS]]


def test_a_stored_event_that_no_longer_decodes_is_named_as_damage(
    app: SlatrailApplication, store_url: str
) -> None:
    damage_first_event(store_url, IDS[1])
    with pytest.raises(DamagedStoreError) as raised:
        app.histories_of([IDS[0], IDS[1]])
    aggregate_id = incident_uuid(IDS[1])
    assert str(raised.value).startswith(
        f"stored event {aggregate_id} v1 (domain.incident:Incident.Reported) cannot be decoded: "
    )
    assert str(raised.value).endswith("; run `slatrail verify`")
    assert app.histories_of([IDS[0]]) == [app.incident_events(IDS[0])]


@pytest.mark.parametrize(
    "env",
    [
        {"COMPRESSOR_TOPIC": "eventsourcing.compressor:ZlibCompressor"},
        {
            "CIPHER_TOPIC": "eventsourcing.cryptography:AESCipher",
            "CIPHER_KEY": base64.b64encode(os.urandom(32)).decode(),
        },
    ],
    ids=["compressed", "encrypted"],
)
def test_histories_of_decode_through_the_stores_compressor_and_cipher(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    application = open_application(f"sqlite:///{tmp_path / 'store.db'}", contracts_from())
    try:
        record_accepted(application, [m for n in range(3) for m in history(n)], now=NOW)
        expected = [application.incident_events(i) for i in IDS[:3]]
        assert all(expected)
        assert application.histories_of(IDS[:3]) == expected
    finally:
        application.close()
