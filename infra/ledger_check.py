"""`slatrail verify` on the materialised SLA ledger: the table against the ledger computed again
from the verified events (docs/scale.md#the-sla-ledger)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from itertools import groupby

from slatrail.application.selection import IndexedHistories, selected_histories
from slatrail.domain.contract_version import ContractSource
from slatrail.domain.model import IncidentEvent
from slatrail.infra.read_model_store import ReadModelStore
from slatrail.projections.incident_index import IndexQuery
from slatrail.projections.ledger import LedgerInterval, incident_ledger
from slatrail.projections.verification.differences import Difference, DifferenceKind

Keyed = tuple[tuple[datetime, str], list[LedgerInterval]]
LIMIT = 20  # incidents reported by name; the count says how many more


def _stored(store: ReadModelStore) -> Iterator[Keyed]:
    for incident_id, group in groupby(store.ledger_intervals(), key=lambda i: i.incident_id):
        rows = list(group)
        yield (min(r.start for r in rows), incident_id), rows


def _computed(
    histories: Iterable[Sequence[IncidentEvent]], contracts: ContractSource
) -> Iterator[Keyed]:
    for events in histories:
        if events:
            yield (events[0].occurred_at, events[0].incident_id), incident_ledger(events, contracts)


def ledger_drift(
    store: ReadModelStore,
    app: IndexedHistories,
    contracts: ContractSource,
    head: int,
    notes: list[str],
) -> list[Difference]:
    """Differences between a fresh ledger table and the ledger the events give; a note when the
    table was never built or is stale (behind the store: not a difference)."""
    position = store.ledger_position()
    if position is None:
        return []
    if position != head:
        notes.append(
            f"SLA ledger: the table was computed at notification {position}, the store is at "
            f"{head} (stale until `slatrail replay`; not a difference)"
        )
        return []
    stored = _stored(store)
    computed = _computed(selected_histories(app, IndexQuery()), contracts)
    drifted: list[tuple[str, str]] = []  # (incident, what)
    a, b = next(stored, None), next(computed, None)
    while a is not None or b is not None:
        if b is None or (a is not None and a[0] < b[0]):
            assert a is not None
            drifted.append((a[0][1], "intervals of an incident the store does not hold"))
            a = next(stored, None)
        elif a is None or b[0] < a[0]:
            drifted.append((b[0][1], "no intervals stored for this incident"))
            b = next(computed, None)
        else:
            if a[1] != b[1]:
                drifted.append((a[0][1], "the stored intervals differ from the events'"))
            a, b = next(stored, None), next(computed, None)
    notes.append(f"SLA ledger: the table compared with the ledger of the events (at {head})")
    return [
        Difference(DifferenceKind.READ_MODEL_DRIFT, f"SLA ledger: {what}", incident_id=incident)
        for incident, what in drifted[:LIMIT]
    ]
