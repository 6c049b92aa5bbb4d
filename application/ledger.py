"""The SLA ledger's intervals of the incidents a window selects (docs/scale.md#the-sla-ledger).

Every clock has an interval from its report on (the last one open-ended), so every incident
reported before the window ends has intervals overlapping it: the index selects by customer
and report time, the ledger of each selected incident is computed from its events, one
incident at a time, and only the intervals overlapping `[start, end)` are kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime

from slatrail.domain.contract_version import ContractSource
from slatrail.domain.model import IncidentEvent
from slatrail.projections.incident_index import IndexQuery
from slatrail.projections.ledger import LedgerInterval, incident_ledger


def ledger_query(
    *, customer: str | None = None, start: datetime | None = None, end: datetime | None = None
) -> IndexQuery:
    """The incidents that may have an interval overlapping `[start, end)`."""
    del start  # the last interval of every clock is open-ended: any incident may overlap
    return IndexQuery(customer=customer, reported_by=end)


def overlaps(interval: LedgerInterval, start: datetime | None, end: datetime | None) -> bool:
    if end is not None and interval.start >= end:
        return False
    return start is None or interval.end is None or interval.end > start


def ledger_intervals(
    histories: Iterable[Sequence[IncidentEvent]],
    contracts: ContractSource,
    *,
    customer: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> Iterator[LedgerInterval]:
    """The intervals of each history's clocks overlapping `[start, end)`, incident by incident."""
    for events in histories:
        if customer is not None and events and events[0].data.get("customer") != customer:
            continue
        for interval in incident_ledger(events, contracts):
            if overlaps(interval, start, end):
                yield interval
