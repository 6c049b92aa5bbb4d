"""`slatrail verify` on a ledger kept live: compared while it holds every recorded event, a note
(not a difference) while it lags — also when one partition lags behind another."""

from __future__ import annotations

from slatrail.infra.bootstrap import Container
from slatrail.infra.ledger_check import freshness
from slatrail.infra.verify import verify_store
from slatrail.projections.read_models import TrackedEvent, kafka_source
from tests.unit.test_ledger_status import container, history

__all__ = ["container"]  # the fixture


def applied(container: Container, *, skip: str | None = None) -> None:
    """Every recorded event applied with the ledger, but `skip`'s last one (a lagging
    partition: later notifications of other incidents are applied)."""
    recorded = list(container.app.all_events())
    offsets = [0, 0]
    events = []
    for notification, event in recorded:  # `skip`'s on partition 1, the others' on 0
        partition = int(event.incident_id == skip)
        source = kafka_source("ev", partition)
        events.append(TrackedEvent(source, offsets[partition], event, notification))
        offsets[partition] += 1
    last = {e.event.incident_id: e for e in events}
    kept = [e for e in events if skip is None or e is not last[skip]]
    store = container.read_models
    store.apply(kept, contracts=container.contract_book, notification=recorded[-1][0])


def test_a_live_ledger_holding_every_event_is_compared_and_agrees(container: Container) -> None:
    history(container)
    applied(container)
    result = verify_store(container)
    assert result.ok, result.differences
    assert any("SLA ledger: the table compared" in n for n in result.notes)


def test_a_ledger_behind_on_one_partition_is_a_note_not_a_difference(
    container: Container,
) -> None:
    history(container)
    applied(container, skip="D-1")
    fresh = freshness(container.read_models, container.app, container.contract_book)
    assert not fresh.current and fresh.why is not None and "behind another" in fresh.why
    result = verify_store(container)
    assert not [d for d in result.differences if "SLA ledger" in d.detail], result.differences
    assert any("SLA ledger: the table is not current" in n for n in result.notes), result.notes
