"""One codec for `IncidentEvent` (`domain.model.event_to_dict` / `event_from_dict`): every copy
of an event — envelope, read-model row, audit trail, export — is that one JSON form, and the
chain hashes of a recorded store are byte for byte what they were before the codec existed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from slatrail.domain.model import EVENT_FIELDS, IncidentEvent, event_from_dict, event_to_dict
from slatrail.infra.exports import CSV_COLUMNS, event_record
from slatrail.infra.kafka_envelope import decode_envelope, encode_envelope
from slatrail.infra.store import SlatrailApplication, open_application
from slatrail.infra.wire import decode
from slatrail.projections.audit import audit_trail
from slatrail.projections.read_models import event_row, row_event
from tests.builders import contracts_from, line, reported_data, utc, wire

T0 = utc(2026, 3, 2, 9)
MIN = timedelta(minutes=1)
# Recorded with the code before the codec (commit cf49e9c): the codec must not change them.
PINNED_HASHES = [
    "f5ba0aad4fd2f20f94649cca9cfa9f850835126bac3b1a61131b8fae86f37baf",
    "8cca61caf5ffa8d355aaffd482873cba0467963718ecdaf28bf8c7d679fe6234",
    "deef6342f86015dad55b7191fa0b38bf72ff70484e269b793ae19e63035cc581",
]


@pytest.fixture
def recorded(tmp_path: Path) -> Iterator[list[IncidentEvent]]:
    app: SlatrailApplication = open_application(f"sqlite:///{tmp_path / 's.db'}", contracts_from())
    messages = [
        line(wire("reported", T0, reported_data(priority="P1"), message_id="r", actor="Łukasz 😀")),
        line(wire("acknowledged", T0 + 10 * MIN, message_id="a")),
        line(wire("resolved", T0 + 30 * MIN, {"cause": "vendor", "resolution": "patched ü"},
                  message_id="z")),
    ]  # fmt: skip
    outcomes = app.record(
        [decode(m) for m in messages],
        now=T0 + 40 * MIN,
        redrive=[None, "incidents.rejected/0/7", None],
    )
    assert [o.status for o in outcomes] == ["accepted"] * 3
    try:
        yield app.incident_events("INC-1")
    finally:
        app.close()


def test_the_hashes_of_a_recorded_store_are_unchanged(recorded: list[IncidentEvent]) -> None:
    assert [e.hash for e in recorded] == PINNED_HASHES
    assert all(e.computed_hash() == e.hash for e in recorded)


def test_the_json_form_round_trips_and_has_every_field_in_order(
    recorded: list[IncidentEvent],
) -> None:
    for event in recorded:
        obj = event_to_dict(event)
        assert event_from_dict(json.loads(json.dumps(obj))) == event
        expected = [f for f in EVENT_FIELDS if f != "redrive" or event.redrive is not None]
        assert list(obj) == expected
    assert "redrive" not in event_to_dict(recorded[0])
    assert event_to_dict(recorded[1])["redrive"] == "incidents.rejected/0/7"


def test_envelope_row_audit_and_export_are_the_one_json_form(
    recorded: list[IncidentEvent],
) -> None:
    for n, event in enumerate(recorded, 1):
        one = event_to_dict(event)
        body = json.loads(encode_envelope(n, event))
        assert {k: v for k, v in body.items() if k not in ("schema", "notification_id")} == one
        assert decode_envelope(encode_envelope(n, event)) == (n, event)
        assert row_event(event_row(event)) == event
        record = event_record(event, in_range=True)
        assert {k: v for k, v in record.items() if k not in ("record", "in_range")} == one
    assert audit_trail(recorded) == [event_to_dict(e) for e in recorded]


def test_a_malformed_object_is_refused() -> None:
    with pytest.raises(TypeError):
        event_from_dict({"data": []})
    with pytest.raises(KeyError):
        event_from_dict({"data": {}})


def test_the_export_csv_has_a_column_for_every_field_of_the_codec() -> None:
    assert set(CSV_COLUMNS) == {"record", "in_range", *EVENT_FIELDS}
