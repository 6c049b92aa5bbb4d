"""The SLA ledger kept live by the projection consumer: each batch recomputes the ledger of the
incidents it touches, from their whole history, in the batch's transaction; a newly recorded
contract version re-measures the incidents it measures; the table is current exactly when it
has applied every incident event of the store under the latest version (docs/scale.md)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

import slatrail.infra.ledger_table as ledger_table
from slatrail.application.service import SlatrailApplication
from slatrail.consumers.projections import ProjectionConsumer
from slatrail.consumers.relay import EventRelay
from slatrail.consumers.streams import OnAssign
from slatrail.domain.contract_version import SINCE_EVER, ContractBook, ContractVersion
from slatrail.infra.kafka_envelope import ENVELOPES
from slatrail.infra.kafka_outbox import Outbox
from slatrail.infra.ledger_check import freshness
from slatrail.infra.read_model_store import ReadModelStore
from slatrail.infra.store import open_application
from slatrail.projections.ledger import LedgerInterval, incident_ledger, measuring_segments, to_us
from slatrail.projections.read_models import SLA, STORE_SOURCE, TrackedEvent, kafka_source
from tests.builders import (
    CONTRACTS_TOML,
    contracts_from,
    record_accepted,
    reported_data,
    utc,
    wire,
)
from tests.memory_broker import MemoryBroker

NOW = utc(2026, 3, 10)
EVENTS = "ev"
# version 2: a P1 responds within 45 minutes, for incidents reported from 09:00 on 2 March
V2 = CONTRACTS_TOML.replace('response = "30m"', 'response = "45m"', 1)
assert V2 != CONTRACTS_TOML


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store.db'}"


@pytest.fixture
def app(store_url: str) -> Iterator[SlatrailApplication]:
    application = open_application(store_url, contracts_from())
    application.record_contracts(
        CONTRACTS_TOML, source="contracts.toml", effective_from=SINCE_EVER, actor="am",
        reason="first", now=utc(2026, 3, 1),
    )  # fmt: skip
    yield application
    application.close()


@pytest.fixture
def read_models(tmp_path: Path) -> Iterator[ReadModelStore]:
    store = ReadModelStore(f"sqlite:///{tmp_path / 'read.db'}")
    yield store
    store.close()


def book(app: SlatrailApplication) -> ContractBook:
    found = app.contract_book()
    assert found is not None
    return found


def record(app: SlatrailApplication, *messages: dict[str, Any]) -> None:
    record_accepted(app, messages, now=NOW)


def first_part(app: SlatrailApplication) -> None:
    record(
        app,
        wire("reported", "2026-03-02T08:00:00Z", reported_data("acme", "P3"), incident_id="I-1"),
        wire("reported", "2026-03-02T10:00:00Z", reported_data("dayco", "P1"), incident_id="I-2"),
        wire("acknowledged", "2026-03-02T09:30:00Z", incident_id="I-1"),
        wire("awaiting_customer", "2026-03-02T11:00:00Z", {"reason": "logs"}, incident_id="I-1"),
        wire("resolved", "2026-03-02T13:00:00Z", {"resolution": "fixed"}, incident_id="I-2"),
        wire("reported", "2026-03-03T08:00:00Z", reported_data("acme", "P1"), incident_id="I-3"),
    )


def late_fact(app: SlatrailApplication) -> None:
    """I-2 was acknowledged at 10:20, told after its resolution (a late fact)."""
    record(app, wire("acknowledged", "2026-03-02T10:20:00Z", incident_id="I-2"))


def second_version(app: SlatrailApplication) -> None:
    app.record_contracts(
        V2, source="contracts.toml", effective_from=utc(2026, 3, 2, 9), actor="am",
        reason="P1 response relaxed", now=utc(2026, 3, 4),
    )  # fmt: skip


def recomputed(app: SlatrailApplication) -> list[LedgerInterval]:
    """The ledger of every incident computed from the store, in report order."""
    histories = sorted(app.histories().values(), key=lambda h: (h[0].occurred_at, h[0].incident_id))
    return [i for events in histories for i in incident_ledger(events, book(app))]


def apply_the_store(app: SlatrailApplication, read_models: ReadModelStore) -> list[TrackedEvent]:
    """Every recorded event applied with the ledger, in store order (as `replay` feeds)."""
    events = [TrackedEvent(STORE_SOURCE, n, e) for n, e in app.all_events()]
    read_models.apply(events, contracts=book(app), notification=events[-1].position)
    return events


class Pipeline:
    """The store's relay into an in-memory broker, and the projection consumer of `serve`."""

    def __init__(self, app: SlatrailApplication, store_url: str, read_models: ReadModelStore):
        self.broker = MemoryBroker(partitions=3)
        self.relay = EventRelay(
            lambda: Outbox(app, store_url, name=f"relay:{EVENTS}"), self.broker.sink,
            envelopes=ENVELOPES, topic=EVENTS, batch_size=100, poll_interval_s=0,
        )  # fmt: skip
        self.relay.open()

        def source(on_assign: OnAssign) -> Any:
            return self.broker.source([EVENTS], "g-proj", on_assign)

        self.consumer = ProjectionConsumer(
            read_models, source, envelopes=ENVELOPES, batch_size=4,
            contracts=lambda: book(app), recorded=app.incident_notifications,
        )  # fmt: skip
        self.consumer.open()

    def run(self) -> None:
        drain(self.relay.step)
        drain(self.consumer.step)


def drain(step: Callable[[threading.Event], int]) -> None:
    stop = threading.Event()
    for _ in range(200):
        if step(stop) == 0:
            return
    raise AssertionError("did not drain")


def test_the_consumer_keeps_the_ledger_equal_to_the_recomputed_one(
    app: SlatrailApplication, store_url: str, read_models: ReadModelStore
) -> None:
    pipeline = Pipeline(app, store_url, read_models)
    first_part(app)
    pipeline.run()
    assert list(read_models.ledger_intervals()) == recomputed(app)
    assert freshness(read_models, app, book(app)).current
    assert read_models.ledger_contiguous() == read_models.ledger_position()

    late_fact(app)
    assert not freshness(read_models, app, book(app)).current  # recorded, not applied yet
    before = list(read_models.ledger_intervals())
    pipeline.run()
    after = list(read_models.ledger_intervals())
    assert after == recomputed(app) and after != before  # the late fact moved I-2's intervals
    assert freshness(read_models, app, book(app)).current

    second_version(app)
    fresh = freshness(read_models, app, book(app))
    assert not fresh.current and fresh.why is not None and "version 1" in fresh.why
    pipeline.consumer.step(threading.Event())  # no event: the version alone re-measures
    table = list(read_models.ledger_intervals())
    assert table == recomputed(app) and table != after
    versions = {i.incident_id: i.contract_version for i in table}
    assert versions == {"I-1": 1, "I-2": 2, "I-3": 2}  # I-1 was reported before 09:00
    assert read_models.ledger_version() == 2
    assert freshness(read_models, app, book(app)).current


def test_redelivery_after_a_crash_leaves_nothing_doubled(
    app: SlatrailApplication, store_url: str, read_models: ReadModelStore
) -> None:
    pipeline = Pipeline(app, store_url, read_models)
    first_part(app)
    late_fact(app)
    pipeline.run()
    expected = recomputed(app)
    source = pipeline.consumer.source
    assert source is not None
    for tp in source.assignment():  # as after kill -9: everything is read again
        source.seek(tp, 0)
    drain(pipeline.consumer.step)
    assert list(read_models.ledger_intervals()) == expected
    assert freshness(read_models, app, book(app)).current


def test_a_batch_that_fails_leaves_no_rows_of_it(
    app: SlatrailApplication, read_models: ReadModelStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    first_part(app)
    batch = [TrackedEvent(STORE_SOURCE, n, e) for n, e in app.all_events()]
    real = ledger_table.incident_ledger

    def failing(events: Any, contracts: Any, **options: Any) -> list[LedgerInterval]:
        if events[0].incident_id == "I-2":
            raise RuntimeError("disk full")
        return real(events, contracts, **options)

    monkeypatch.setattr(ledger_table, "incident_ledger", failing)
    with pytest.raises(RuntimeError):
        read_models.apply(batch, contracts=book(app), notification=batch[-1].position)
    assert read_models.counts(SLA) == (0, 0)
    assert list(read_models.ledger_intervals()) == []
    assert read_models.ledger_position() is None and read_models.position(SLA, "store") is None
    monkeypatch.setattr(ledger_table, "incident_ledger", real)
    read_models.apply(batch, contracts=book(app), notification=batch[-1].position)
    assert list(read_models.ledger_intervals()) == recomputed(app)


def test_a_read_model_fed_before_the_ledger_is_not_taken_for_complete(
    app: SlatrailApplication, read_models: ReadModelStore
) -> None:
    first_part(app)
    events = [TrackedEvent(STORE_SOURCE, n, e) for n, e in app.all_events()]
    read_models.apply(events[:2])  # without the ledger (as before it was kept)
    read_models.apply(events[2:], contracts=book(app), notification=events[-1].position)
    assert read_models.ledger_version() is None and read_models.ledger_position() is None
    assert freshness(read_models, app, book(app)).why == "never completed (run `slatrail replay`)"
    read_models.reset([SLA])  # the ledger goes with the sla read model, and comes back whole
    assert list(read_models.ledger_intervals()) == []
    read_models.apply(events, contracts=book(app), notification=events[-1].position)
    assert read_models.ledger_version() == 1
    assert freshness(read_models, app, book(app)).current


def test_a_new_version_re_measures_a_bounded_chunk_per_call(
    app: SlatrailApplication, read_models: ReadModelStore
) -> None:
    first_part(app)
    apply_the_store(app, read_models)
    assert read_models.remeasure(book(app)) == 0  # up to date: nothing to do
    second_version(app)
    assert read_models.remeasure(book(app), limit=1) == 1  # I-2
    assert read_models.ledger_version() == 1  # I-3 still measured by version 1
    assert read_models.remeasure(book(app), limit=1) == 1  # I-3
    assert read_models.ledger_version() == 1
    assert read_models.remeasure(book(app), limit=1) == 0  # none left: the version is recorded
    assert read_models.ledger_version() == 2
    assert list(read_models.ledger_intervals()) == recomputed(app)


def test_the_measuring_steps_are_the_measuring_rule() -> None:
    """`remeasure` finds the rows another version measures through these steps."""
    v1 = ContractVersion.unrecorded(contracts_from(), CONTRACTS_TOML, utc(2026, 3, 1))
    v1 = replace(v1, effective_from=utc(2026, 3, 1))
    v2 = replace(v1, version=2)  # the same effective_from, recorded later: it wins from then
    v3 = replace(v1, version=3, effective_from=utc(2026, 4, 1))
    v4 = replace(v1, version=4, effective_from=utc(2026, 2, 1))  # a restatement back in time
    for book, expected in ((ContractBook((v1, v2, v3, v4)), [4, 2, 3]),
                           (ContractBook((v1, v2, v3)), [1, 2, 3])):  # fmt: skip
        steps = measuring_segments(book)
        for moment in (utc(2026, 1, 1), utc(2026, 2, 1), utc(2026, 2, 28), utc(2026, 3, 1),
                       utc(2026, 3, 31), utc(2026, 4, 1), utc(2027, 1, 1)):  # fmt: skip
            us = to_us(moment)
            assert us is not None
            step = [v for start, v in steps if start is None or start <= us][-1]
            assert step == book.measuring_version(moment).version, moment
        assert [v for _, v in steps] == expected


def test_a_partition_behind_another_keeps_the_table_from_being_current(
    app: SlatrailApplication, read_models: ReadModelStore
) -> None:
    """I-1's events come by one partition, I-2's and I-3's by another, which is ahead: the
    table has applied the highest notification but not every one below it."""
    first_part(app)

    def by_partition(incidents: set[str], partition: int) -> list[TrackedEvent]:
        return [
            TrackedEvent(kafka_source(EVENTS, partition), offset, event, notification)
            for offset, (notification, event) in enumerate(
                (n, e) for n, e in app.all_events() if e.incident_id in incidents
            )
        ]

    behind, ahead = by_partition({"I-1"}, 0), by_partition({"I-2", "I-3"}, 1)
    highest = max(e.notification or 0 for e in behind + ahead)
    assert ahead[-1].notification == highest  # the partition ahead holds the latest event
    read_models.apply(ahead, contracts=book(app), notification=highest)
    assert read_models.ledger_position() == highest
    fresh = freshness(read_models, app, book(app))
    assert not fresh.current and fresh.why is not None
    assert "behind another" in fresh.why
    assert read_models.close_ledger_gaps(app.incident_notifications) == 0  # I-1's are missing
    read_models.apply(behind, contracts=book(app), notification=behind[-1].notification)
    assert freshness(read_models, app, book(app)).current  # seen before the watermark moves
    assert read_models.close_ledger_gaps(app.incident_notifications) == highest
    assert read_models.ledger_contiguous() == highest
    assert list(read_models.ledger_intervals()) == recomputed(app)
    late_fact(app)  # recorded, not applied: not current, however far the watermark is
    assert not freshness(read_models, app, book(app)).current


def test_a_table_kept_before_the_watermark_is_trusted_to_its_highest_notification(
    app: SlatrailApplication, read_models: ReadModelStore
) -> None:
    first_part(app)
    events = apply_the_store(app, read_models)
    with read_models._recorder.write() as cursor:  # as a table written by an earlier release
        cursor.execute(
            f"DELETE FROM {read_models._recorder.tracking_table} WHERE application_name = ?",
            ("ledger@contiguous",),
        )
    assert read_models.ledger_contiguous() is None
    assert freshness(read_models, app, book(app)).current
    late_fact(app)
    (notification, event), *_ = app.all_events(start=events[-1].position + 1)
    later = TrackedEvent(kafka_source(EVENTS, 0), 0, event, notification)
    read_models.apply([later], contracts=book(app), notification=notification)
    assert read_models.ledger_contiguous() == events[-1].position  # started where it was
    assert read_models.close_ledger_gaps(app.incident_notifications) == notification
    assert freshness(read_models, app, book(app)).current


def test_a_watermark_moved_by_another_writer_meanwhile_is_no_failure(
    app: SlatrailApplication, read_models: ReadModelStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from eventsourcing.persistence import IntegrityError

    import slatrail.infra.read_model_store as read_model_store

    first_part(app)
    apply_the_store(app, read_models)

    def raced(*args: Any) -> int:
        raise IntegrityError("UNIQUE constraint failed: tracking")  # a second `serve` won

    monkeypatch.setattr(read_model_store, "close_gaps", raced)
    assert read_models.close_ledger_gaps(app.incident_notifications) is None
