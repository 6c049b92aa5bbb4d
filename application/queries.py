"""The read side: the questions every command (and, later, the web API) asks of the store.

Answers come from the event store, or from the read models `slatrail serve` keeps (`--from-read-
model`); both give each incident's events in position order. The stores are reached through
the small interfaces below, which the composition root's `Container` satisfies.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from slatrail.application.selection import selected_reports
from slatrail.domain.contract_version import ContractBook
from slatrail.domain.contracts import Contracts
from slatrail.domain.model import IncidentEvent, parse_instant
from slatrail.projections.incident_index import IndexQuery
from slatrail.projections.read_models import AUDIT, SLA

if TYPE_CHECKING:
    from slatrail.projections.availability import Month


class EventHistories(Protocol):
    """The event store's read side (`SlatrailApplication`)."""

    def incident_events(self, incident_id: str) -> list[IncidentEvent]: ...

    def histories(self) -> dict[str, list[IncidentEvent]]: ...

    def select_incident_ids(self, query: IndexQuery) -> Iterator[str] | None: ...

    def histories_of(self, incident_ids: Sequence[str]) -> list[list[IncidentEvent]]: ...


class ReadModelHistories(Protocol):
    """The read models' copy of the events (`ReadModelStore`)."""

    def incident_events(self, incident_id: str, read_model: str = ...) -> list[IncidentEvent]: ...

    def histories(
        self, read_model: str = ..., *, customer: str | None = None
    ) -> dict[str, list[IncidentEvent]]: ...

    def sla_incidents(self, *, customer: str | None = None) -> list[tuple[str, str]]: ...

    def sla_histories_of(self, incident_ids: Sequence[str]) -> list[list[IncidentEvent]]: ...


class Stores(Protocol):
    """Where answers come from; each store is opened on first use (a command that never asks
    the read models never opens them)."""

    @property
    def app(self) -> EventHistories: ...

    @property
    def read_models(self) -> ReadModelHistories: ...

    @property
    def contracts(self) -> Contracts: ...

    def contracts_known_at(self, as_known_at: datetime | None) -> ContractBook: ...


def answer_as_of(
    as_of: datetime | None, as_known_at: datetime | None, now: Callable[[], datetime]
) -> datetime:
    """`as_of`, else `as_known_at` (the answer slatrail gave then), else now."""
    return as_of or as_known_at or now()


def histories_for(
    stores: Stores,
    incident: str | None,
    *,
    from_read_model: bool = False,
    customer: str | None = None,
) -> list[list[IncidentEvent]]:
    """The events of one incident (a list of one, or none if unknown) or of every incident
    (from the read model: optionally only one customer's)."""
    if from_read_model:
        read_models = stores.read_models
        if incident is not None:
            events = read_models.incident_events(incident, SLA)
            return [events] if events else []
        return list(read_models.histories(SLA, customer=customer).values())
    if incident is not None:
        events = stores.app.incident_events(incident)
        return [events] if events else []
    return list(stores.app.histories().values())


READ_MODEL_CHUNK = 256  # incidents whose read-model events are read in one query


def read_model_histories(
    read_models: ReadModelHistories,
    customers: Sequence[str | None] = (None,),
    *,
    reported_by: datetime | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    after: tuple[datetime, str] | None = None,
    chunk: int = READ_MODEL_CHUNK,
) -> Iterator[list[IncidentEvent]]:
    """The `sla` read model's histories of `customers` (None: every customer) reported by
    `reported_by`, in `[since, until)` and after the report-order key `after`, in report
    order, a chunk of incidents at a time.

    Selected on the read model's own incident table (customer and report instant, both fixed
    when an incident is reported): exactly the incidents a fold of the whole read model could
    show, whatever the read model has applied so far. Only (id, instant) pairs of the selected
    customers are held; events are read `chunk` incidents at a time."""
    keys: list[tuple[datetime, str]] = []
    for customer in customers:
        for incident_id, reported_text in read_models.sla_incidents(customer=customer):
            reported = parse_instant(reported_text)
            key = (reported, incident_id)
            if (
                (reported_by is None or reported <= reported_by)
                and (since is None or reported >= since)
                and (until is None or reported < until)
                and (after is None or key > after)
            ):
                keys.append(key)
    keys.sort()
    for first in range(0, len(keys), chunk):
        yield from read_models.sla_histories_of([i for _, i in keys[first : first + chunk]])


def trail_events(
    stores: Stores, incident: str, *, from_read_model: bool = False
) -> list[IncidentEvent]:
    """One incident's events for its audit trail (empty if unknown)."""
    if from_read_model:
        return stores.read_models.incident_events(incident, AUDIT)
    return stores.app.incident_events(incident)


def reports_for(
    stores: Stores,
    months: Sequence[Month],
    *,
    as_of: datetime,
    as_known_at: datetime | None = None,
    customer: str | None = None,
) -> list[dict[str, Any]]:
    """The monthly service reports of `months` (per customer), from the event store: the
    incidents its index selects for those months (`selected_reports`)."""
    return selected_reports(
        stores.app, stores.contracts_known_at(as_known_at), months, as_of=as_of,
        as_known_at=as_known_at, customer=customer,
    )  # fmt: skip
