"""The read side: the questions every command (and, later, the web API) asks of the store.

Answers come from the event store, or from the read models `slatrail serve` keeps (`--from-read-
model`); both give each incident's events in position order. The stores are reached through
the small interfaces below, which the composition root's `Container` satisfies.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol

from slatrail.domain.contract_version import ContractBook
from slatrail.domain.contracts import Contracts
from slatrail.domain.model import IncidentEvent
from slatrail.projections.availability import Month
from slatrail.projections.read_models import AUDIT, SLA
from slatrail.projections.report import monthly_reports


class EventHistories(Protocol):
    """The event store's read side (`SlatrailApplication`)."""

    def incident_events(self, incident_id: str) -> list[IncidentEvent]: ...

    def histories(self) -> dict[str, list[IncidentEvent]]: ...


class ReadModelHistories(Protocol):
    """The read models' copy of the events (`ReadModelStore`)."""

    def incident_events(self, incident_id: str, read_model: str = ...) -> list[IncidentEvent]: ...

    def histories(
        self, read_model: str = ..., *, customer: str | None = None
    ) -> dict[str, list[IncidentEvent]]: ...


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
    """The monthly service reports of `months` (per customer), from the event store."""
    return monthly_reports(
        stores.app.histories().values(), stores.contracts_known_at(as_known_at), months, as_of,
        as_known_at=as_known_at, customer=customer,
    )  # fmt: skip
