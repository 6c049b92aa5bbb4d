"""Receipts' stored records written directly (application/receipt_records.py) are byte for byte
what eventsourcing's mapper writes for the receipt event, and the record path uses them only
where the mapper is the library's plain JSON one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from eventsourcing.application import Application
from hypothesis import given, settings
from hypothesis import strategies as st

from slatrail.application.receipt_records import NewReceipt, ReceiptRecords
from slatrail.application.service import SlatrailApplication
from slatrail.domain.model import receipt_uuid
from slatrail.domain.receipt import MessageReceipt
from slatrail.infra.store import open_application
from slatrail.infra.wire import decode
from tests.builders import contracts_from, line, reported_data, wire
from tests.hypothesis_profiles import examples

T0 = datetime(2026, 9, 1, 8, tzinfo=UTC)
texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
zones = st.sampled_from(
    [UTC, timezone(timedelta(hours=5, minutes=45)), ZoneInfo("America/St_Johns")]
)


def library_app(**env: str) -> Application[Any]:
    return Application(env={"PERSISTENCE_MODULE": "eventsourcing.popo", **env})


@settings(max_examples=examples(300), deadline=None)
@given(
    fields=st.lists(st.tuples(texts, texts, texts, st.integers(1, 2**62)), min_size=1, max_size=4),
    now=st.datetimes(timezones=zones),
)
def test_a_receipt_record_is_the_librarys_record_of_its_event(
    fields: list[tuple[str, str, str, int]], now: datetime
) -> None:
    mapper = library_app().mapper
    records = ReceiptRecords(mapper)
    assert records.enabled
    for message_id, incident_id, fingerprint, position in fields:
        event: Any = MessageReceipt.received(
            message_id=message_id, incident_id=incident_id, fingerprint=fingerprint,
            position=position, now=now,
        )  # fmt: skip
        receipt = NewReceipt(message_id, incident_id, fingerprint, position, now)
        assert records.record(receipt) == mapper.to_stored_event(event)


def test_receipts_go_through_their_events_where_the_mapper_compresses() -> None:
    mapper = library_app(COMPRESSOR_TOPIC="eventsourcing.compressor:ZlibCompressor").mapper
    assert not ReceiptRecords(mapper).enabled


def send(app: SlatrailApplication, *messages: dict[str, Any]) -> list[str]:
    batch = [decode(line(m)) for m in messages]
    return [str(o.status) for o in app.record(batch, now=T0 + timedelta(days=1))]


@pytest.mark.parametrize("compressed", [False, True])
def test_the_record_path_stores_receipts_that_refuse_a_second_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, compressed: bool
) -> None:
    if compressed:
        monkeypatch.setenv("COMPRESSOR_TOPIC", "eventsourcing.compressor:ZlibCompressor")
    app = open_application(f"sqlite:///{tmp_path / 'store.db'}", contracts_from())
    try:
        if not compressed:  # records are built directly: the receipt events are never made

            def refuse(*args: Any, **kwargs: Any) -> Any:
                raise AssertionError("a receipt event was built")

            monkeypatch.setattr(MessageReceipt, "received", refuse)
        report = wire("reported", T0, reported_data(), incident_id="R-1", message_id="m-1")
        ack = wire("acknowledged", T0 + timedelta(minutes=1), incident_id="R-1")
        assert send(app, report, ack) == ["accepted", "accepted"]
        receipt: MessageReceipt = app.repository.get(receipt_uuid("m-1"))
        assert (receipt.incident_id, receipt.position) == ("R-1", 1)
        notifications = app.recorder.select_notifications(1, 10)
        assert [n.topic.rsplit(":", 1)[1] for n in notifications] == [
            "Incident.Reported", "Incident.Acknowledged",
            "MessageReceipt.Received", "MessageReceipt.Received",
        ]  # fmt: skip
        other = wire("reported", T0, reported_data(), incident_id="R-2", message_id="m-1")
        assert send(app, report, other) == ["duplicate", "rejected"]
    finally:
        app.close()


def test_save_hands_its_recordings_to_notify_and_the_record_path_builds_none(
    tmp_path: Path,
) -> None:
    """`save` is the library's: it returns each event's `Recording` and calls the `_notify`
    hook with them. The record path builds none (nothing in slatrail listens to the hook)."""
    app = open_application(f"sqlite:///{tmp_path / 'store.db'}", contracts_from())
    try:
        notified: list[list[Any]] = []
        app._notify = notified.append  # type: ignore[method-assign]
        assert send(app, wire("reported", T0, reported_data(), incident_id="R-1")) == ["accepted"]
        assert notified == []
        receipt: Any = MessageReceipt.received(
            message_id="m-9", incident_id="R-1", fingerprint="0" * 64, position=1, now=T0
        )
        recordings = app.save(receipt)
        assert notified == [recordings]
        assert [r.notification.originator_id for r in recordings] == [receipt_uuid("m-9")]
        assert recordings[0].notification.id == app.recorder.max_notification_id()
    finally:
        app.close()
