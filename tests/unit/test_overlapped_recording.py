"""Batches recorded with each write overlapping the next batch (`OverlappedRecording`) give
the outcomes and the stored records that recording them one after another gives."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from slatrail.application.outcomes import Outcome
from slatrail.application.overlapped import OverlappedRecording
from slatrail.application.service import PreparedBatch, SlatrailApplication
from slatrail.infra.store import open_application
from slatrail.infra.wire import decode
from tests.builders import contracts_from, line, minimal_data, wire
from tests.unit.test_comparisons_by_customer import stores_per_example

T0 = datetime(2026, 9, 1, 8, tzinfo=UTC)
KINDS = ("reported", "acknowledged", "triaged", "workaround_provided", "escalated", "resolved",
         "reopened", "postmortem_published")  # fmt: skip


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[Any]:
    opened: list[SlatrailApplication] = []

    def new_store() -> SlatrailApplication:
        app = open_application(f"sqlite:///{tmp_path / f's-{len(opened)}.db'}", contracts_from())
        opened.append(app)
        return app

    yield new_store
    for app in opened:
        app.close()


@st.composite
def streams(draw: st.DrawFn) -> list[list[dict[str, Any]]]:
    """Messages for a few incidents in any order (so some are refused), message ids reused by
    other messages, exact repeats of earlier messages; cut into batches."""
    messages: list[dict[str, Any]] = []
    for n in range(draw(st.integers(1, 30))):
        if messages and draw(st.integers(0, 4)) == 0:
            messages.append(draw(st.sampled_from(messages)))
            continue
        kind = draw(st.sampled_from(KINDS))
        messages.append(
            wire(kind, T0 + timedelta(minutes=n), minimal_data(kind),
                 incident_id=draw(st.sampled_from(("A", "B", "C"))),
                 message_id=draw(st.sampled_from((None, None, None, "reused-1", "reused-2"))))
        )  # fmt: skip
    batches, at = [], 0
    while at < len(messages):
        size = draw(st.integers(1, 6))
        batches.append(messages[at : at + size])
        at += size
    return batches


def outcome_rows(outcomes: list[Outcome]) -> list[tuple[Any, ...]]:
    return [(str(o.status), o.message_id, o.incident_id, o.code, o.position) for o in outcomes]


def stored_rows(app: SlatrailApplication) -> list[tuple[Any, ...]]:
    """Every stored record, in store order: the same bytes for the same history."""
    return [
        (n.id, n.originator_id, n.originator_version, n.topic, n.state)
        for n in app.recorder.select_notifications(start=1, limit=1_000_000)
    ]


def now_of(number: int) -> datetime:
    return T0 + timedelta(days=1, seconds=number)


def one_after_another(app: SlatrailApplication, batches: list[list[dict[str, Any]]]) -> list[Any]:
    return [
        outcome_rows(app.record([decode(line(m)) for m in batch], now=now_of(n)))
        for n, batch in enumerate(batches)
    ]


def overlapped(recording: OverlappedRecording, batches: list[list[dict[str, Any]]]) -> list[Any]:
    ended: list[list[Outcome]] = []
    for n, batch in enumerate(batches):
        ended += recording.record([decode(line(m)) for m in batch], now=now_of(n))
    ended += recording.drain()
    return [outcome_rows(outcomes) for outcomes in ended]


def widest_overlap(app: SlatrailApplication, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Make each batch's write wait until the next batch has been prepared (or the last one is
    drained), so the next batch is always applied while the store is behind."""
    state = {"prepared": 0, "writes": 0, "draining": False}
    changed = threading.Condition()
    real_prepare, real_write = app.prepare, app.write

    def prepare(batch: Any, *, now: datetime, after: PreparedBatch | None = None) -> Any:
        try:
            return real_prepare(batch, now=now, after=after)
        finally:
            with changed:
                state["prepared"] += 1
                changed.notify_all()

    def write(prepared: PreparedBatch) -> None:
        with changed:
            number = state["writes"]
            state["writes"] += 1
            changed.wait_for(lambda: state["prepared"] > number + 1 or state["draining"], 10)
        real_write(prepared)

    def draining() -> None:
        with changed:
            state["draining"] = True
            changed.notify_all()

    monkeypatch.setattr(app, "prepare", prepare)
    monkeypatch.setattr(app, "write", write)
    return draining


def gated_recording(app: SlatrailApplication, monkeypatch: pytest.MonkeyPatch) -> Any:
    draining = widest_overlap(app, monkeypatch)
    recording = OverlappedRecording(app)
    real_drain = recording.drain

    def drain() -> list[list[Outcome]]:
        draining()
        return real_drain()

    monkeypatch.setattr(recording, "drain", drain)
    return recording


@stores_per_example(150)
@given(streams())
def test_overlapped_writes_record_what_one_batch_after_another_records(
    stores: Any, batches: list[list[dict[str, Any]]]
) -> None:
    reference = stores()
    expected = one_after_another(reference, batches)
    app = stores()
    with pytest.MonkeyPatch.context() as monkeypatch:
        recording = gated_recording(app, monkeypatch)
        try:
            assert overlapped(recording, batches) == expected
        finally:
            recording.close()
    assert stored_rows(app) == stored_rows(reference)


@stores_per_example(40)
@given(streams())
def test_overlapped_writes_left_to_run_freely_record_the_same(
    stores: Any, batches: list[list[dict[str, Any]]]
) -> None:
    reference = stores()
    expected = one_after_another(reference, batches)
    app = stores()
    with OverlappedRecording(app) as recording:
        assert overlapped(recording, batches) == expected
    assert stored_rows(app) == stored_rows(reference)


def test_without_overlap_each_batch_is_recorded_at_once(stores: Any) -> None:
    app = stores()
    with OverlappedRecording(app, overlap=False) as recording:
        ended = recording.record([decode(line(wire("reported", T0, minimal_data("reported"))))],
                                 now=now_of(0))  # fmt: skip
        assert [str(o.status) for o in ended[0]] == ["accepted"]
        assert recording.drain() == []


def test_a_write_refused_because_another_writer_came_first_is_recorded_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batch 1's write fails (another writer reported A meanwhile), after batch 2 was applied
    to the A batch 1 made: batch 1 is recorded again (A is already reported) and batch 2 on
    the A that was stored."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    app, other = open_application(url, contracts_from()), open_application(url, contracts_from())
    try:
        theirs = wire("reported", T0, minimal_data("reported"), incident_id="A",
                      message_id="theirs")  # fmt: skip
        ours = [
            [wire("reported", T0, minimal_data("reported"), incident_id="A")],
            [wire("acknowledged", T0 + timedelta(minutes=3), incident_id="A"),
             wire("reported", T0, minimal_data("reported"), incident_id="B")],
        ]  # fmt: skip
        draining = widest_overlap(app, monkeypatch)
        real_write = app.write
        first = [True]

        def write_after_the_other(prepared: PreparedBatch) -> None:
            if first[0]:
                first[0] = False
                assert [str(o.status) for o in other.record([decode(line(theirs))],
                        now=now_of(0))] == ["accepted"]  # fmt: skip
            real_write(prepared)

        monkeypatch.setattr(app, "write", write_after_the_other)
        recording = OverlappedRecording(app)
        ended = recording.record([decode(line(m)) for m in ours[0]], now=now_of(1))
        ended += recording.record([decode(line(m)) for m in ours[1]], now=now_of(2))
        draining()
        ended += recording.drain()
        recording.close()
        assert [[(str(o.status), o.code) for o in batch] for batch in ended] == [
            [("rejected", "already_reported")],
            [("accepted", None), ("accepted", None)],
        ]
        events = app.incident_events("A")
        assert [(e.type, e.position) for e in events] == [("reported", 1), ("acknowledged", 2)]
        assert events[0].message_id == "theirs"
        assert [e.type for e in app.incident_events("B")] == ["reported"]
    finally:
        other.close()
        app.close()


def test_a_batch_whose_preparation_fails_is_recorded_by_record_alone(
    stores: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    batches = [
        [wire("reported", T0, minimal_data("reported"), incident_id="A")],
        [wire("acknowledged", T0 + timedelta(minutes=3), incident_id="A")],
        [wire("resolved", T0 + timedelta(minutes=9), minimal_data("resolved"), incident_id="A")],
    ]
    reference = stores()
    expected = one_after_another(reference, batches)
    app = stores()
    real_prepare = app.prepare
    calls = [0]

    def failing_second(batch: Any, *, now: datetime, after: PreparedBatch | None = None) -> Any:
        calls[0] += 1
        if calls[0] == 2:
            raise RuntimeError("an unforeseen failure while applying")
        return real_prepare(batch, now=now, after=after)

    monkeypatch.setattr(app, "prepare", failing_second)
    with OverlappedRecording(app) as recording:
        assert overlapped(recording, batches) == expected
    assert stored_rows(app) == stored_rows(reference)
