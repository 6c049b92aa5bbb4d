"""When the materialised SLA ledger answers for the store (`freshness`), and `slatrail verify` on
it: the table against the ledger computed again from the verified events
(docs/scale.md#the-sla-ledger)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby

import structlog

from slatrail.application.selection import selected_histories
from slatrail.application.service import INCIDENT_TOPICS, SlatrailApplication
from slatrail.domain.contract_version import ContractBook, ContractSource
from slatrail.domain.model import IncidentEvent
from slatrail.infra.bootstrap import Container
from slatrail.infra.errors import StoreMissingError
from slatrail.infra.read_model_store import ReadModelStore
from slatrail.projections.incident_index import IndexQuery
from slatrail.projections.ledger import LedgerInterval, incident_ledger
from slatrail.projections.verification.differences import Difference, DifferenceKind

Keyed = tuple[tuple[datetime, str], list[LedgerInterval]]
LIMIT = 20  # incidents reported by name; the count says how many more
log = structlog.get_logger("slatrail.ledger")


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


@dataclass(frozen=True)
class Freshness:
    """Whether the ledger table answers for the store now, and if not, why."""

    current: bool
    position: int | None  # the highest store notification the table has applied
    version: int | None  # the contract version the whole table is measured by
    why: str | None = None  # None: current

    @property
    def built(self) -> bool:
        return self.position is not None or self.version is not None


def freshness(
    store: ReadModelStore, app: SlatrailApplication, contracts: ContractSource
) -> Freshness:
    """The table is current when it is complete, measured by the latest recorded contract
    version, and has applied every incident event the store holds: each one up to the highest
    notification it applied (the partitions of the event stream are consumed side by side:
    one may be behind another), and none recorded after it (docs/scale.md#the-sla-ledger)."""
    position, version = store.ledger_position(), store.ledger_version()
    latest = contracts.latest.version if isinstance(contracts, ContractBook) else None
    if position is None or version is None:
        return Freshness(False, position, version, "never completed (run `slatrail replay`)")
    if latest is None or version != latest:
        why = f"measured by contract version {version}, the latest is {latest}"
        return Freshness(False, position, version, why)
    reached = store.ledger_reach(app.incident_notifications)
    if reached is not None and reached < position:
        why = (
            f"an incident event recorded after notification {reached} not applied yet, though "
            f"notification {position} is (a partition of the event stream behind another)"
        )
        return Freshness(False, position, version, why)
    later = app.recorder.select_notifications(position + 1, 1, topics=INCIDENT_TOPICS)
    if later:
        why = f"incident events recorded after notification {position} not applied yet"
        return Freshness(False, position, version, why)
    return Freshness(True, position, version)


def current_table(container: Container) -> ReadModelStore | None:
    """The read-model database when its ledger table is current (log event `ledger_source`:
    `table`, or `events` with why not)."""
    try:
        store = container.read_models
    except StoreMissingError:
        log.info("ledger_source", source="events", why="no read-model database")
        return None
    fresh = freshness(store, container.app, container.contracts_known_at(None))
    if not fresh.current:
        log.info("ledger_source", source="events", why=fresh.why, table_at=fresh.position)
        return None
    log.info("ledger_source", source="table", table_at=fresh.position)
    return store


def status_preselection(
    container: Container,
    status: str,
    as_of: datetime,
    *,
    customer: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Iterator[str] | None:
    """`sla --status S --as-of T`: the incidents a current ledger table says have a clock in
    `status` at `as_of`, in report order (the fold still decides); None when not current."""
    store = current_table(container)
    if store is None:
        return None
    return store.ledger_incidents(status, as_of, customer=customer, since=since, until=until)


def ledger_drift(
    store: ReadModelStore,
    app: SlatrailApplication,
    contracts: ContractSource,
    head: int,
    notes: list[str],
    *,
    sla_lagging: int = 0,
) -> list[Difference]:
    """Differences between a current ledger table and the ledger the events give; a note when
    the table is not current (behind the store: not a difference), none when never built.
    `sla_lagging`: recorded events the `sla` read model has not applied (verify counts them
    exactly): the ledger kept with it lags too, even where its own check cannot tell (a
    partition behind another)."""
    fresh = freshness(store, app, contracts)
    if not fresh.built:
        return []
    if fresh.current and sla_lagging:
        fresh = Freshness(
            False, fresh.position, fresh.version,
            f"the sla read model it is kept with has {sla_lagging} recorded events not applied",
        )  # fmt: skip
    if not fresh.current:
        notes.append(
            f"SLA ledger: the table is not current ({fresh.why}; the store is at notification "
            f"{head}): not compared, not a difference"
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
