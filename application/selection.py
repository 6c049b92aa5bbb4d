"""Selecting incidents from the incident index, and folding them one chunk at a time.

A question (`sla`, `escalations`, `report`) turns its options into an `IndexQuery`: conditions
that only exclude incidents which cannot be part of the answer (projections/incident_index.py
says why each column is a safe bound). The selected incidents' events are read a chunk at a
time, in report order, so memory holds one chunk however large the store is. A store without
an index (recorded before it existed, or by a recorder without one) gives the same answers
from the whole store, filtered by the same conditions.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

from slatrail.domain.contract_version import ContractSource
from slatrail.domain.model import IncidentEvent, State
from slatrail.projections.incident_index import IndexQuery, entry_of
from slatrail.projections.sla import IncidentSla, incident_sla

if TYPE_CHECKING:
    from slatrail.domain.contract_version import ContractBook
    from slatrail.domain.contracts import Contracts
    from slatrail.projections.availability import Month

UTC_ZONE = ZoneInfo("UTC")
CHUNK = 256  # incidents whose events are read in one query
# Month bounds are in each customer's reporting zone: a day either side covers every zone.
ZONE_MARGIN = timedelta(days=1)
_NEVER = datetime(9999, 12, 31, tzinfo=UTC_ZONE)


class IndexedHistories(Protocol):
    """The event store's read side with its incident index (`SlatrailApplication`)."""

    def select_incident_ids(self, query: IndexQuery) -> Iterator[str] | None: ...

    def histories_of(self, incident_ids: Sequence[str]) -> list[list[IncidentEvent]]: ...

    def histories(self) -> dict[str, list[IncidentEvent]]: ...


def sla_query(
    *,
    as_of: datetime,
    as_known_at: datetime | None,
    customer: str | None = None,
    state: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> IndexQuery:
    """The incidents `sla`/`escalations` may show as of `as_of` in `state` (open|resolved).

    Open as of `as_of` but resolved now means a resolution occurred after `as_of` (and
    resolved then but open now, a reopening after it). Answers as known at an earlier
    moment may have seen fewer events: the state condition is left to the fold."""
    knowing = as_known_at is None
    return IndexQuery(
        customer=customer,
        reported_by=as_of,
        reported_since=since,
        reported_until=until,
        open_or_changed_after=as_of if knowing and state == "open" else None,
        resolved_or_changed_after=as_of if knowing and state == "resolved" else None,
    )


def report_query(
    months: Sequence[Month],
    *,
    as_of: datetime,
    as_known_at: datetime | None,
    customer: str | None = None,
) -> IndexQuery:
    """The incidents a report of `months` (and its trend months before them) may count: they
    may count from before the period ends, and were still open or changed within it."""
    from slatrail.projections.report import TREND_MONTHS  # only reports need the report module

    first = min(months).shifted(-TREND_MONTHS).bounds(UTC_ZONE)[0] - ZONE_MARGIN
    last = max(months).bounds(UTC_ZONE)[1] + ZONE_MARGIN
    return IndexQuery(
        customer=customer,
        reported_by=as_of,
        starts_before=last,
        open_or_ended_since=first if as_known_at is None else None,
    )


def selected_histories(
    store: IndexedHistories, query: IndexQuery, *, chunk: int = CHUNK
) -> Iterator[list[IncidentEvent]]:
    """The events of every incident `query` admits, in report order, a chunk at a time."""
    ids = store.select_incident_ids(query)
    if ids is None:
        yield from _filtered(store.histories().values(), query)
        return
    yield from histories_of_ids(store, ids, chunk=chunk)


def histories_of_ids(
    store: IndexedHistories, incident_ids: Iterable[str], *, chunk: int = CHUNK
) -> Iterator[list[IncidentEvent]]:
    """The events of each incident of `incident_ids` (in their order), a chunk at a time."""
    batch: list[str] = []
    for incident_id in incident_ids:
        batch.append(incident_id)
        if len(batch) >= chunk:
            yield from store.histories_of(batch)
            batch = []
    if batch:
        yield from store.histories_of(batch)


def _filtered(
    histories: Iterable[list[IncidentEvent]], query: IndexQuery
) -> Iterator[list[IncidentEvent]]:
    chosen = []
    for events in histories:
        entry = entry_of(events)
        if entry is not None and query.admits(entry):
            chosen.append((entry.reported_at, entry.incident_id, events))
    chosen.sort(key=lambda item: (item[0], item[1]))
    for _, _, events in chosen:
        yield events


def sla_answers(
    histories: Iterable[Sequence[IncidentEvent]],
    contracts: ContractSource,
    as_of: datetime,
    *,
    as_known_at: datetime | None = None,
    customer: str | None = None,
    state: str | None = None,
    status: str | None = None,
) -> Iterator[IncidentSla]:
    """`sla_view` one incident at a time, for histories already in report order (what
    `selected_histories` yields), keeping those in `state` (open|resolved as of `as_of`) with
    a clock in `status`."""
    for events in histories:
        if customer is not None and events and events[0].data.get("customer") != customer:
            continue
        sla = incident_sla(events, contracts, as_of, as_known_at=as_known_at)
        if sla is None:
            continue
        resolved = sla.clocks.timeline.state is State.RESOLVED
        if state is not None and resolved != (state == "resolved"):
            continue
        if status is not None and not any(
            str(c.status) == status for c in sla.clocks.clocks.values()
        ):
            continue
        yield sla


def selected_reports(
    store: IndexedHistories,
    contracts: ContractSource,
    months: Sequence[Month],
    *,
    as_of: datetime,
    as_known_at: datetime | None = None,
    customer: str | None = None,
) -> list[dict[str, Any]]:
    """`monthly_reports` from the incidents the index selects for those months, one customer
    at a time (memory holds one customer's incidents of the period, not the store's)."""
    reports: list[dict[str, Any]] = []
    for name in report_customers(contracts, months, customer):
        reports += customer_reports(
            store, contracts, months, name, as_of=as_of, as_known_at=as_known_at
        )
    return reports


def report_customers(
    contracts: ContractSource, months: Sequence[Month], customer: str | None = None
) -> list[str]:
    """The customers a report of `months` is about, in report order: `customer`, else every
    customer contracted in any of the months."""
    from slatrail.projections.report import contracted_customers

    return sorted(contracted_customers(contracts, months)) if customer is None else [customer]


def customer_reports(
    store: IndexedHistories,
    contracts: ContractSource,
    months: Sequence[Month],
    customer: str,
    *,
    as_of: datetime,
    as_known_at: datetime | None = None,
) -> list[dict[str, Any]]:
    """One customer's reports of `months` (in month order), from the incidents the index
    selects for them: independent of every other customer's, so customers can be reported
    on by separate processes (`slatrail report --workers`)."""
    from slatrail.projections.report import monthly_reports

    query = report_query(months, as_of=as_of, as_known_at=as_known_at, customer=customer)
    return monthly_reports(
        selected_histories(store, query), contracts, months, as_of,
        as_known_at=as_known_at, customer=customer,
    )  # fmt: skip


def selected_restatements(
    store: IndexedHistories,
    book: ContractBook,
    months: Sequence[Month],
    as_of: datetime,
    known_at: datetime,
    vs: datetime | None,
    *,
    customer: str | None = None,
) -> dict[str, Any]:
    """`restatements` one customer at a time, from the incidents the index selects for their
    reports (memory holds one customer's incidents, not the store's): every customer the later
    knowledge contracts for `months` (or `customer`, if it does), in report order — the
    figures and clocks of one `restatements` call over the whole store, in the same order."""
    from slatrail.projections.report import contracted_customers
    from slatrail.projections.restatements import restatement_answer, restatements

    contracted = contracted_customers(book.known_at(vs), months)
    names = sorted(contracted) if customer is None else [customer] if customer in contracted else []
    figures: list[dict[str, Any]] = []
    clocks: list[dict[str, Any]] = []
    for name in names:
        # Known at `known_at` may differ from now in any state: only the time conditions hold.
        query = report_query(months, as_of=as_of, as_known_at=known_at, customer=name)
        part = restatements(
            selected_histories(store, query), book, months, as_of, known_at, vs, customer=name
        )
        figures += part["figures"]
        clocks += part["clocks"]
    return restatement_answer(as_of, known_at, vs, figures, clocks)


def selected_whatif(
    store: IndexedHistories,
    recorded: ContractSource,
    draft: Contracts,
    months: Sequence[Month],
    as_of: datetime,
    *,
    customer: str | None = None,
) -> dict[str, Any]:
    """`whatif` one customer at a time, from the incidents a report of `months` selects (what
    is recorded decides which incidents may count; the contracts only measure them): every
    customer the recorded contracts name for `months` (or `customer`), in report order — the
    rows of one `whatif` call over the whole store, in the same order."""
    from slatrail.projections.report import contracted_customers
    from slatrail.projections.whatif import whatif

    names = [customer] if customer is not None else sorted(contracted_customers(recorded, months))
    answer: dict[str, Any] = {"as_of": None, "draft": draft.source, "rows": []}
    for name in names:
        query = report_query(months, as_of=as_of, as_known_at=None, customer=name)
        part = whatif(selected_histories(store, query), recorded, draft, months, as_of,
                      customer=name)  # fmt: skip
        answer["as_of"] = part["as_of"] or answer["as_of"]
        answer["rows"] += part["rows"]
    return answer


def unsettled_events(store: IndexedHistories, *, since: datetime) -> Iterator[IncidentEvent]:
    """The events of every incident an alert may still come from: open, or a post-mortem
    pending, or changed since `since` (the timer's catch-up horizon: a settled incident's
    alerts all lie before its last event). What the alert timer plans at start-up; the others
    are reloaded from the store if an event of theirs arrives later (`AlertTimer.apply`)."""
    query = IndexQuery(unsettled_or_changed_since=since)
    for events in selected_histories(store, query):
        yield from events


def report_key(events: Sequence[IncidentEvent]) -> tuple[datetime, str]:
    """Where an incident's history stands in report order (by its reported event)."""
    return events[0].occurred_at, events[0].incident_id


def merged_histories(
    store: IndexedHistories, queries: Sequence[IndexQuery], *, chunk: int = CHUNK
) -> Iterator[list[IncidentEvent]]:
    """The histories several queries select (one per customer a token may see), merged in
    report order; memory holds one chunk per query, `chunk` incidents in all."""
    if len(queries) == 1:
        yield from selected_histories(store, queries[0], chunk=chunk)
        return
    each = max(16, chunk // max(len(queries), 1))
    streams = [selected_histories(store, query, chunk=each) for query in queries]
    yield from heapq.merge(*streams, key=report_key)


def histories_after(
    histories: Iterable[list[IncidentEvent]], after: tuple[datetime, str] | None
) -> Iterator[list[IncidentEvent]]:
    """The histories (in report order) that come after the key `after` (a page's cursor)."""
    for events in histories:
        if events and (after is None or report_key(events) > after):
            yield events


def sla_page(
    histories: Iterable[Sequence[IncidentEvent]],
    contracts: ContractSource,
    as_of: datetime,
    *,
    as_known_at: datetime | None,
    keep: Callable[[IncidentSla], bool],
    limit: int,
) -> tuple[list[IncidentSla], bool]:
    """The first `limit` answers `keep` admits, and whether another follows: incidents are
    folded one at a time and folding stops at the one after the page."""
    answers = (
        sla
        for sla in sla_answers(histories, contracts, as_of, as_known_at=as_known_at)
        if keep(sla)
    )
    page = list(itertools.islice(answers, limit + 1))
    return page[:limit], len(page) > limit


def listing_query(
    *,
    as_of: datetime,
    as_known_at: datetime | None,
    customer: str | None,
    state: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    after: tuple[datetime, str] | None = None,
) -> IndexQuery:
    """The incidents a page of the incident list may show: `sla_query` for a lifecycle state
    (`open` and `awaiting_customer` are both unresolved; the fold tells them apart), reported
    from the page cursor's report instant on (`histories_after` drops those at or before it)."""
    unresolved = state in ("open", "awaiting_customer")
    start = since
    if after is not None and (start is None or after[0] > start):
        start = after[0]
    return sla_query(
        as_of=as_of, as_known_at=as_known_at, customer=customer,
        state="open" if unresolved else state, since=start, until=until,
    )  # fmt: skip


def open_histories(store: IndexedHistories) -> Iterator[list[IncidentEvent]] | None:
    """The histories of every incident unresolved now, in report order (None: the store has
    no index)."""
    # Open now, or changed after an instant no event can be at: open now.
    query = IndexQuery(open_or_changed_after=_NEVER)
    if store.select_incident_ids(query) is None:
        return None
    return selected_histories(store, query)
