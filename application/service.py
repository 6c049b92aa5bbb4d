"""The application service: an eventsourcing Application that records incident facts.

Write side: `record` applies a batch of decoded messages to their incidents and saves the
accepted ones with their receipts in one transaction. The incidents a batch touches are read
in one query (`StoredEventsOf`, given by the composition root); an LRU cache keeps recent
incidents, and a second one the incident ids known to be absent, so a stream of new incidents
costs no lookup per message.
Read side: the recorded events, per incident or in store order. Its persistence (SQLite or
PostgreSQL) is the eventsourcing environment the composition root builds (`infra/store.py`).
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol, runtime_checkable
from uuid import UUID

from eventsourcing.application import (
    AggregateNotFoundError,
    Application,
    ProcessingEvent,
)
from eventsourcing.domain import DomainEventProtocol, MutableOrImmutableAggregate
from eventsourcing.persistence import (
    AggregateRecorder,
    DataError,
    IntegrityError,
    Notification,
    PersistenceError,
    Recording,
    StoredEvent,
)
from eventsourcing.utils import get_topic

from slatrail.application.event_records import EventRecords
from slatrail.application.lazy_log import LazyLogger
from slatrail.application.outcomes import Decoded, Outcome, Status
from slatrail.application.receipt_records import NewReceipt, ReceiptRecords
from slatrail.domain.contract_version import (
    CONTRACTS_ID,
    ContractBook,
    ContractHistory,
    ContractSource,
    ContractVersion,
)
from slatrail.domain.errors import (
    AlreadyReportedError,
    FirstEventNotReportedError,
    MessageIdConflictError,
    Rejection,
    unprocessable_reason,
)
from slatrail.domain.incident import EVENT_CLASSES, Fact, Incident, record_of_state
from slatrail.domain.model import EventType, IncidentEvent, State, incident_uuid, receipt_uuid
from slatrail.domain.receipt import MessageReceipt
from slatrail.projections.incident_index import (
    INDEX_ROWS,
    EntryBuilder,
    IndexEntry,
    IndexQuery,
    starts_from,
)

log = LazyLogger("slatrail.store")

INCIDENT_TOPICS: tuple[str, ...] = tuple(get_topic(cls) for cls in EVENT_CLASSES.values())

StoredEventsOf = Callable[[AggregateRecorder, Sequence[UUID]], Mapping[UUID, Sequence[StoredEvent]]]
"""The stored events of each given aggregate that exists, read through the application's
recorder (in one query: `infra/batch_reads.py`)."""

EventRow = tuple[int, str, bytes]  # (originator_version, topic, state)
EventRowsOf = Callable[[AggregateRecorder, Sequence[UUID]], Sequence[Sequence[EventRow]]]
"""The stored `(version, topic, state)` rows of each given aggregate, one list per id in the
order given (empty: absent), read through the application's recorder (`infra/batch_reads.py`)."""


def stored_events_one_query_each(
    recorder: AggregateRecorder, ids: Sequence[UUID]
) -> dict[UUID, Sequence[StoredEvent]]:
    """`StoredEventsOf` through the library's `select_events`, one query per aggregate (any
    recorder; `infra/batch_reads.py` reads the ones it knows in one query)."""
    return {i: found for i in ids if (found := recorder.select_events(i))}


def event_rows_one_query_each(
    recorder: AggregateRecorder, ids: Sequence[UUID]
) -> list[list[EventRow]]:
    """`EventRowsOf` through the library's `select_events`, one query per aggregate."""
    return [
        [(e.originator_version, e.topic, e.state) for e in recorder.select_events(i)] for i in ids
    ]


INCIDENT_EVENT_TYPES: dict[str, EventType] = {
    get_topic(cls): cls.type_name for cls in EVENT_CLASSES.values()
}
"""The incident event types by stored topic: a row with one of these topics is decoded
straight into its `IncidentEvent` (`record_of_state`)."""

Receipt = MessageReceipt | NewReceipt  # a stored receipt, or one of this batch
# every message names its incident: its uuid5 computed once per incident, not per message
_aggregate_id = functools.lru_cache(maxsize=65_536)(incident_uuid)
_OWN = (Incident, MessageReceipt, MessageReceipt.Received, NewReceipt)


class DamagedStoreError(RuntimeError):
    """A stored event that no longer decodes, or a store file that is not (all) a database.

    The CLI reports it as an operator error: one line with `prefix`, exit `exit_code`."""

    exit_code = 1  # EXIT_FINDING (infra/errors.py)
    prefix = "the store is damaged: "


def _store_trouble(error: BaseException) -> bool:
    """A failure of the store itself, not of one message (a `DataError` is the message's)."""
    return isinstance(error, PersistenceError) and not isinstance(error, DataError)


@dataclass(frozen=True, slots=True)
class PreparedBatch:
    """A batch applied and its records built, not stored yet (`SlatrailApplication.prepare`)."""

    outcomes: list[Outcome]
    receipts: Mapping[str, NewReceipt]
    incidents: frozenset[UUID]  # the ids of the incidents it changed
    processing: ProcessingEvent[UUID]
    records: Sequence[DomainEventProtocol[UUID] | StoredEvent]


class SlatrailApplication(Application[UUID]):
    """Records incident facts; every recorded event is also the outbox for Kafka."""

    name = "slatrail"

    def __init__(
        self,
        contracts: ContractSource,
        env: dict[str, str] | None = None,
        *,
        stored_events_of: StoredEventsOf | None = None,
        event_rows_of: EventRowsOf | None = None,
    ) -> None:
        super().__init__(env=env)
        self.contracts = contracts  # the recorded versions once `use_contract_book` is called
        self._incidents: OrderedDict[UUID, Incident] = OrderedDict()
        self._absent: OrderedDict[UUID, None] = OrderedDict()  # known not to exist
        self._cache_size = 50_000
        self._stored_events_of = stored_events_of or stored_events_one_query_each
        self._event_rows_of = event_rows_of or event_rows_one_query_each
        self._receipt_records = ReceiptRecords(self.mapper)
        self._event_records = EventRecords(self.mapper)

    def record(
        self,
        batch: Sequence[Decoded],
        *,
        now: datetime,
        redrive: Sequence[str | None] | None = None,
        traceparent: Sequence[str | None] | None = None,
    ) -> list[Outcome]:
        """Apply a batch of decoded messages and store what was accepted in one transaction.

        One outcome per message, always: a message that makes applying or saving fail in an
        unforeseen way is refused alone as `unprocessable` and the others are recorded. Store
        trouble (unreachable, locked, …: a `PersistenceError` other than `DataError`) is raised:
        it is not the message's fault, and the caller retries the batch.

        `redrive` (one entry per message, from `slatrail redrive`): the dead letter each message
        comes from, recorded on its event (docs/redrive.md). `traceparent` (one entry per
        message): the W3C trace context each came with, carried on its event (not hashed)."""
        refs = _redrive_refs(batch, redrive)
        traces = _redrive_refs(batch, traceparent, what="trace context")
        try:
            return self._record_batch(batch, now, careful=False, refs=refs, traces=traces)
        except IntegrityError:
            # A receipt or incident version already exists: a message_id reused by another
            # incident, or another writer got there first. Redo one message at a time, looking
            # up every receipt first.
            log.warning("batch_conflict_retrying_singly", batch_size=len(batch))
        except Exception as error:
            if _store_trouble(error):
                self._forget()
                raise
            log.error(
                "batch_failed_retrying_singly", batch_size=len(batch),
                error_class=type(error).__name__,
            )  # fmt: skip
        self._forget()  # the caches may hold incidents changed by the failed attempt
        return [self._record_one(item, now, refs, traces) for item in batch]

    def _record_one(
        self,
        item: Decoded,
        now: datetime,
        refs: Mapping[int, str] | None = None,
        traces: Mapping[int, str] | None = None,
    ) -> Outcome:
        for attempt in (1, 2):
            try:
                return self._record_batch([item], now, careful=True, refs=refs, traces=traces)[0]
            except IntegrityError:
                self._forget()
                if attempt == 2:
                    raise
            except Exception as error:
                self._forget()
                if _store_trouble(error):
                    raise
                return self._unprocessable(item, error)
        raise AssertionError("unreachable")

    def _unprocessable(self, item: Decoded, error: Exception) -> Outcome:
        message, _ = item
        message_id = getattr(message, "message_id", None)
        incident_id = getattr(message, "incident_id", None)
        log.error(
            "message_unprocessable", stage="record", error_class=type(error).__name__,
            incident_id=incident_id, message_id=message_id,
        )  # fmt: skip
        return Outcome(
            Status.REJECTED,
            message_id if isinstance(message_id, str) else None,
            incident_id if isinstance(incident_id, str) else None,
            "unprocessable",
            unprocessable_reason(error),
        )

    def _record_batch(
        self,
        batch: Sequence[Decoded],
        now: datetime,
        *,
        careful: bool,
        refs: Mapping[int, str] | None = None,
        traces: Mapping[int, str] | None = None,
    ) -> list[Outcome]:
        """One transaction for the batch. Receipts are read only when needed: when `careful`,
        when the incident already holds the message_id, or to explain a rejection."""
        outcomes, touched, receipts = self._apply_batch(
            batch, now, careful=careful, refs=refs, traces=traces
        )
        if touched or receipts:
            try:
                self._save_own((*touched.values(), *receipts.values()), notify=False)
            except BaseException:
                for aggregate_id in touched:
                    self._incidents.pop(aggregate_id, None)
                raise
            for aggregate_id, incident in touched.items():
                self._remember(aggregate_id, incident)
        return outcomes

    def _apply_batch(
        self,
        batch: Sequence[Decoded],
        now: datetime,
        *,
        careful: bool,
        refs: Mapping[int, str] | None = None,
        traces: Mapping[int, str] | None = None,
        after: PreparedBatch | None = None,
    ) -> tuple[list[Outcome], dict[UUID, Incident], dict[str, NewReceipt]]:
        """The batch applied to its incidents, nothing stored: (an outcome per message, the
        incidents changed, the receipts to store). `after`: a batch whose write may still be
        under way (`prepare`): the store cannot answer for its receipts and incidents yet, so
        its receipts are asked first and its incidents are taken as remembered."""
        from slatrail.domain.messages import fingerprint, to_fact  # a writer's import (start-up)

        touched: dict[UUID, Incident] = {}
        receipts: dict[str, NewReceipt] = {}
        outcomes: list[Outcome] = []
        facts = [(to_fact(message), message, obj) for message, obj in batch]
        ids = [_aggregate_id(fact.incident_id) for fact, _, _ in facts]
        self._look_up(ids)
        for (fact, message, obj), aggregate_id in zip(facts, ids, strict=True):
            if refs and id(message) in refs:
                fact = replace(fact, redrive=refs[id(message)])
            if traces and id(message) in traces:
                fact = replace(fact, traceparent=traces[id(message)])
            print_ = fingerprint(obj)
            prior: Receipt | None = receipts.get(fact.message_id)
            if prior is None and after is not None:
                prior = after.receipts.get(fact.message_id)
            if prior is None and (careful or self._holds(fact, aggregate_id, touched)):
                prior = self._receipt(fact.message_id)
            if prior is not None:
                outcomes.append(self._repeat(fact, prior, print_))
                continue
            try:
                incident = self._apply(
                    fact, aggregate_id, touched, now,
                    unstored=after.incidents if after is not None else frozenset(),
                )  # fmt: skip
            except Rejection as error:
                earlier = None if careful else self._receipt(fact.message_id)
                if earlier is not None:
                    outcomes.append(self._repeat(fact, earlier, print_))
                    continue
                error.incident_id = error.incident_id or fact.incident_id
                outcomes.append(Outcome.rejected(error, fact.message_id))
                continue
            receipts[fact.message_id] = NewReceipt(
                fact.message_id, fact.incident_id, print_, incident.version, now
            )
            outcomes.append(
                Outcome(
                    Status.ACCEPTED, fact.message_id, fact.incident_id, position=incident.version
                )
            )
        return outcomes, touched, receipts

    # -- a batch's write overlapping the next batch (application/overlapped.py) ------------

    def prepare(
        self, batch: Sequence[Decoded], *, now: datetime, after: PreparedBatch | None = None
    ) -> PreparedBatch:
        """The first half of `record`: the batch applied to its incidents (remembered as they
        now are) and its records built, nothing stored. `after`: the batch prepared before,
        whose `write` may still be under way. Raises what applying raised; after a raise, or
        after a failed `write` of `after`, the caller must `forget` and `record` instead."""
        outcomes, touched, receipts = self._apply_batch(batch, now, careful=False, after=after)
        processing, records = self._to_records((*touched.values(), *receipts.values()))
        for aggregate_id, incident in touched.items():
            self._remember(aggregate_id, incident)
        return PreparedBatch(outcomes, receipts, frozenset(touched), processing, records)

    def write(self, prepared: PreparedBatch) -> None:
        """The second half: the prepared records stored in one transaction. It reads nothing
        but `prepared`, so it may run in another thread while the next batch is prepared.
        (No snapshot is taken: slatrail configures none; `_save_own` would take them.)"""
        if prepared.records:
            self._record_all(prepared.processing, prepared.records, recordings=False)

    def forget(self) -> None:
        """Drop the remembered incidents: the next batch reads them from the store."""
        self._forget()

    # -- saving ----------------------------------------------------------------------------

    def save(
        self,
        *objs: MutableOrImmutableAggregate[UUID] | DomainEventProtocol[UUID] | NewReceipt | None,
        **kwargs: Any,
    ) -> list[Recording[UUID]]:
        """`Application.save`, also taking this batch's receipts (`NewReceipt`). Given only
        incidents and receipts: without the library's runtime protocol checks per object (a
        third of the save's cost), the receipts' records built directly (`ReceiptRecords`);
        the same recorder call, snapshots and notifications, records in the order given."""
        if kwargs or not all(isinstance(obj, _OWN) for obj in objs):
            given = [ReceiptRecords.event(o) if isinstance(o, NewReceipt) else o for o in objs]
            return super().save(*given, **kwargs)
        return self._save_own(objs, notify=True)

    def _save_own(self, objs: Sequence[Any], *, notify: bool) -> list[Recording[UUID]]:
        """`save` of incidents and receipts. Without `notify` (the record path: nothing in
        slatrail listens to the library's `_notify` hook), the library's `Recording` of each
        event is not built and the hook not called (a twentieth of ingest's time)."""
        processing, records = self._to_records(objs)
        recordings = self._record_all(processing, records, recordings=notify)
        self._take_snapshots(processing)
        if notify:
            self._notify(recordings)
        return recordings

    def _to_records(
        self, objs: Sequence[Any]
    ) -> tuple[ProcessingEvent[UUID], list[DomainEventProtocol[UUID] | StoredEvent]]:
        """The events of incidents and receipts to store, receipts as records already, and the
        index rows of the incidents (in the processing event's saved arguments)."""
        processing: ProcessingEvent[UUID] = ProcessingEvent()
        records: list[DomainEventProtocol[UUID] | StoredEvent] = []
        entries: list[IndexEntry] = []
        for obj in objs:
            if isinstance(obj, NewReceipt) and self._receipt_records.enabled:
                records.append(self._receipt_records.record(obj))
                continue
            if isinstance(obj, NewReceipt):
                events: Sequence[DomainEventProtocol[UUID]] = [ReceiptRecords.event(obj)]
            elif isinstance(obj, MessageReceipt.Received):
                events = [obj]
            elif isinstance(obj, Incident | MessageReceipt):
                events = list(obj.collect_events())
                processing.aggregates[obj.id] = obj
                if isinstance(obj, Incident) and events:
                    entries.append(_index_entry(obj, events))
            processing.events.extend(events)
            records.extend(events)
        if entries:  # the recorder writes them in the events' transaction (docs/scale.md)
            processing.saved_kwargs[INDEX_ROWS] = entries
        return processing, records

    def _record_all(
        self,
        processing: ProcessingEvent[UUID],
        records: Sequence[DomainEventProtocol[UUID] | StoredEvent],
        *,
        recordings: bool = True,
    ) -> list[Recording[UUID]]:
        """`Application._record` (the library's `EventStore.put`) of `records`: the events
        mapped, the records built already as they are, in one recorder call; the events'
        `Recording`s returned when `recordings`."""
        encode = (
            self._event_records.record
            if self._event_records.enabled
            else self.mapper.to_stored_event
        )
        stored = [r if isinstance(r, StoredEvent) else encode(r) for r in records]
        ids = self.recorder.insert_events(
            stored, tracking=processing.tracking, **processing.saved_kwargs
        )
        made: list[Recording[UUID]] = []
        if ids and recordings:
            assert len(ids) == len(stored)
            for record, done, notification_id in zip(records, stored, ids, strict=True):
                if isinstance(record, StoredEvent):
                    continue
                notification = Notification(
                    originator_id=done.originator_id,
                    originator_version=done.originator_version,
                    topic=done.topic,
                    state=done.state,
                    id=notification_id,
                )
                made.append(Recording(record, notification))
        if self.repository.cache and not self.repository.fastforward:
            for aggregate_id, aggregate in processing.aggregates.items():
                self.repository.cache.put(aggregate_id, aggregate)
        return made

    def _look_up(self, ids: Sequence[UUID]) -> None:
        """Read every incident of `ids` that is in neither cache, in one query; remember the
        ones found and the ones absent."""
        wanted = list(dict.fromkeys(i for i in ids if i not in self._incidents))
        wanted = [i for i in wanted if i not in self._absent]
        if not wanted:
            return
        found = self._stored_events_of(self.recorder, wanted)
        for aggregate_id in wanted:
            stored = found.get(aggregate_id)
            if not stored:
                self._remember_absent(aggregate_id)
                continue
            incident: Incident | None = None
            for record in stored:
                event = self._decode(record)
                if not isinstance(event, Incident.Event):
                    raise DamagedStoreError(
                        f"stored record {record.originator_id} v{record.originator_version} "
                        f"belongs to an incident but decodes to {type(event).__name__}; "
                        "run `slatrail verify`"
                    )
                incident = event.mutate(incident)
            if incident is not None:
                self._remember(aggregate_id, incident)

    def _holds(self, fact: Fact, aggregate_id: UUID, touched: dict[UUID, Incident]) -> bool:
        incident = touched.get(aggregate_id) or self._load_incident(aggregate_id)
        return incident is not None and fact.message_id in incident.message_ids

    def _apply(
        self,
        fact: Fact,
        aggregate_id: UUID,
        touched: dict[UUID, Incident],
        now: datetime,
        *,
        unstored: frozenset[UUID] = frozenset(),
    ) -> Incident:
        # `unstored`: changed by a batch still being written, so the store is behind the cache
        cached = (
            aggregate_id not in touched
            and aggregate_id not in unstored
            and (aggregate_id in self._incidents or aggregate_id in self._absent)
        )
        try:
            return self._apply_to(fact, aggregate_id, touched, now)
        except Rejection:
            if not cached:
                raise
            # The cached incident (or its absence) may be stale (another writer went on with
            # it): a refusal must be judged on the stored history. (A stale acceptance fails
            # at save instead: the version or the receipt is already there.)
            self._incidents.pop(aggregate_id, None)
            self._absent.pop(aggregate_id, None)
            return self._apply_to(fact, aggregate_id, touched, now)

    def _apply_to(
        self, fact: Fact, aggregate_id: UUID, touched: dict[UUID, Incident], now: datetime
    ) -> Incident:
        incident = touched.get(aggregate_id) or self._load_incident(aggregate_id)
        if fact.type is EventType.REPORTED:
            if incident is not None:
                raise AlreadyReportedError(
                    f"incident {fact.incident_id!r} was already reported",
                    incident_id=fact.incident_id,
                )
            contracts = self.contracts.measuring(fact.occurred_at)
            incident = Incident.report(fact, contracts=contracts, now=now)
        elif incident is None:
            raise FirstEventNotReportedError(
                f"incident {fact.incident_id!r} does not exist: its first message must be "
                f"'reported', got {fact.type!s}",
                incident_id=fact.incident_id,
            )
        else:
            incident.record(fact, now=now)
        touched[aggregate_id] = incident
        return incident

    def _repeat(self, fact: Fact, prior: Receipt, print_: str) -> Outcome:
        if prior.fingerprint == print_:
            return Outcome(
                Status.DUPLICATE, fact.message_id, fact.incident_id, position=prior.position
            )
        error = MessageIdConflictError(
            f"message_id {fact.message_id!r} was already recorded with different content "
            f"(incident {prior.incident_id!r}, position {prior.position})",
            incident_id=fact.incident_id,
        )
        return Outcome.rejected(error, fact.message_id)

    def _receipt(self, message_id: str) -> MessageReceipt | None:
        try:
            receipt: MessageReceipt = self.repository.get(receipt_uuid(message_id))
        except AggregateNotFoundError:
            return None
        return receipt

    def _load_incident(self, aggregate_id: UUID) -> Incident | None:
        cached = self._incidents.get(aggregate_id)
        if cached is not None:
            self._incidents.move_to_end(aggregate_id)
            return cached
        if aggregate_id in self._absent:
            return None
        try:
            incident: Incident = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            self._remember_absent(aggregate_id)
            return None
        self._remember(aggregate_id, incident)
        return incident

    def _remember(self, aggregate_id: UUID, incident: Incident) -> None:
        self._absent.pop(aggregate_id, None)
        self._incidents[aggregate_id] = incident
        self._incidents.move_to_end(aggregate_id)
        while len(self._incidents) > self._cache_size:
            self._incidents.popitem(last=False)

    # -- contract versions ---------------------------------------------------------------

    def contract_book(self) -> ContractBook | None:
        """Every recorded contract version, in order (None: none recorded yet)."""
        versions = []
        for stored in self.recorder.select_events(CONTRACTS_ID):
            event = self._decode(stored)
            if not isinstance(event, ContractHistory.Event):
                raise DamagedStoreError(
                    f"stored event {stored.originator_id} v{stored.originator_version} is not "
                    "a contract version; run `slatrail verify`"
                )
            versions.append(ContractVersion.from_event(event))
        return ContractBook(tuple(versions)) if versions else None

    def contract_history_version(self) -> int:
        """The number of recorded contract versions (0: none), from the latest stored record
        alone: cheap enough to ask every few seconds."""
        latest = self.recorder.select_events(CONTRACTS_ID, desc=True, limit=1)
        return latest[0].originator_version if latest else 0

    def record_contracts(
        self, text: str, *, source: str, effective_from: datetime, actor: str, reason: str,
        now: datetime,
    ) -> ContractVersion:  # fmt: skip
        """Record `text` (validated) as the next contract version; version 1 on an empty
        history. Another writer recording at the same time makes this fail, never fork."""
        try:
            history: ContractHistory = self.repository.get(CONTRACTS_ID)
        except AggregateNotFoundError:
            history = ContractHistory.start(
                text, source=source, effective_from=effective_from, actor=actor, reason=reason,
                now=now,
            )  # fmt: skip
        else:
            history.apply_version(
                text, source=source, effective_from=effective_from, actor=actor, reason=reason,
                now=now,
            )  # fmt: skip
        self.save(history)
        book = self.contract_book()
        assert book is not None
        self.use_contract_book(book)
        return book.latest

    def use_contract_book(self, book: ContractSource) -> None:
        """Judge new incidents (customer, bounds) by the recorded versions (a `ContractBook`,
        or a source that follows the record, as `serve` gives)."""
        self.contracts = book

    def _remember_absent(self, aggregate_id: UUID) -> None:
        self._absent[aggregate_id] = None
        self._absent.move_to_end(aggregate_id)
        while len(self._absent) > self._cache_size:
            self._absent.popitem(last=False)

    def _forget(self) -> None:
        self._incidents.clear()
        self._absent.clear()

    # -- reading -------------------------------------------------------------------------

    def incident_events(self, incident_id: str) -> list[IncidentEvent]:
        """The recorded events of one incident, in order (empty if unknown)."""
        aggregate_id = incident_uuid(incident_id)
        records = []
        for stored in self.recorder.select_events(aggregate_id):
            event = self._decode(stored)
            if isinstance(event, Incident.Event):
                records.append(event.to_record())
        return records

    def incident_notifications(self, start: int, stop: int, limit: int) -> list[int]:
        """The notification ids of the incident events recorded from `start` to `stop`
        (inclusive), at most `limit`, in order (the SLA ledger's contiguous watermark)."""
        recorder = self.recorder
        if isinstance(recorder, IndexedRecorder):
            return recorder.select_notification_ids(start, stop, limit, INCIDENT_TOPICS)
        found = recorder.select_notifications(start, limit, stop=stop, topics=INCIDENT_TOPICS)
        return [notification.id for notification in found]

    def all_events(
        self, *, start: int = 1, page: int = 2000
    ) -> Iterator[tuple[int, IncidentEvent]]:
        """Every recorded incident event with its notification id, in store order."""
        position = start
        while True:
            notifications = self.recorder.select_notifications(
                position, page, topics=INCIDENT_TOPICS
            )
            if not notifications:
                return
            for notification in notifications:
                event = self._decode(notification)
                if not isinstance(event, Incident.Event):
                    raise DamagedStoreError(
                        f"stored record {notification.originator_id} v"
                        f"{notification.originator_version} has an incident topic but decodes "
                        f"to {type(event).__name__}; run `slatrail verify`"
                    )
                yield notification.id, event.to_record()
            position = notifications[-1].id + 1

    # -- the incident index (docs/scale.md) ---------------------------------------------------

    def select_incident_ids(self, query: IndexQuery) -> Iterator[str] | None:
        """The ids of the incidents `query` admits, in report order; None without an index."""
        recorder = self.recorder
        if not isinstance(recorder, IndexedRecorder) or not recorder.has_index():
            return None
        return recorder.select_incident_ids(query)

    def histories_of(self, incident_ids: Sequence[str]) -> list[list[IncidentEvent]]:
        """The events of each of `incident_ids` that exists (one query), in the order given.

        Each stored incident event is decoded straight into its `IncidentEvent`: what
        `mapper.to_domain_event(stored).to_record()` gives, without building the domain event
        (the state goes through the mapper's own cipher, compressor and transcoder, and its
        fields are taken as `Incident.Event.to_record` takes them). Anything else — another
        topic, an upcast class version, a state that fails to decode or lacks a field — goes
        the library's way, with its errors."""
        ids = [_aggregate_id(i) for i in incident_ids]
        found = self._event_rows_of(self.recorder, ids)
        decode, types = self.state_decoder(), INCIDENT_EVENT_TYPES
        out = []
        for aggregate_id, rows in zip(ids, found, strict=True):
            records = []
            for version, topic, state in rows:
                record: IncidentEvent | None = None
                kind = types.get(topic)
                if kind is not None:
                    try:
                        fields = decode(state)
                        if "class_version" not in fields:
                            record = record_of_state(fields, version, kind)
                    except Exception:  # decoded again below, raising the library's error
                        record = None
                if record is None:
                    event = self._decode(StoredEvent(aggregate_id, version, topic, state))
                    if not isinstance(event, Incident.Event):
                        continue
                    record = event.to_record()
                records.append(record)
            if records:
                out.append(records)
        return out

    def state_decoder(self) -> Callable[[bytes], Any]:
        """Stored state → the event's fields, as the mapper decodes them (its own cipher,
        compressor and transcoder, looked up once)."""
        cipher, compressor = self.mapper.cipher, self.mapper.compressor
        transcode = self.mapper.transcoder.decode
        if cipher is None and compressor is None:
            return transcode

        def decode(state: bytes) -> Any:
            if cipher:
                state = cipher.decrypt(state)
            if compressor:
                state = compressor.decompress(state)
            return transcode(state)

        return decode

    def index_entries(self) -> Iterator[IndexEntry] | None:
        """Every row of the incident index, by incident id; None without an index."""
        recorder = self.recorder
        if not isinstance(recorder, IndexedRecorder) or not recorder.has_index():
            return None
        return recorder.index_entries()

    def index_is_stale(self) -> bool:
        """The store has an index table that is empty while incidents are recorded (a store
        written before the index existed)."""
        recorder = self.recorder
        if not isinstance(recorder, IndexedRecorder) or not recorder.has_index():
            return False
        if next(recorder.select_incident_ids(IndexQuery()), None) is not None:
            return False
        return bool(self.recorder.select_notifications(1, 1, topics=INCIDENT_TOPICS))

    def rebuild_index(self) -> int:
        """Write the index afresh from every recorded event (streamed; one small row of
        state per incident). Returns the number of incidents indexed."""
        recorder = self.recorder
        if not isinstance(recorder, IndexedRecorder):
            return 0
        builders: dict[str, EntryBuilder] = {}
        for _, event in self.all_events():
            builders.setdefault(event.incident_id, EntryBuilder()).add(event)
        entries = [e for b in builders.values() if (e := b.entry()) is not None]
        recorder.replace_index(entries)
        log.info("incident_index_rebuilt", incidents=len(entries))
        return len(entries)

    def _decode(self, stored: StoredEvent) -> object:
        try:
            return self.mapper.to_domain_event(stored)
        except Exception as error:  # any damage to the stored bytes
            raise DamagedStoreError(
                f"stored event {stored.originator_id} v{stored.originator_version} "
                f"({stored.topic}) cannot be decoded: {error!r}; run `slatrail verify`"
            ) from error

    def histories(self) -> dict[str, list[IncidentEvent]]:
        """All incidents' events grouped by incident, each list in position order."""
        grouped: dict[str, list[IncidentEvent]] = {}
        for _, event in self.all_events():
            grouped.setdefault(event.incident_id, []).append(event)
        return grouped


@runtime_checkable
class IndexedRecorder(Protocol):
    """A recorder that keeps the incident index (infra/incident_index.py)."""

    def has_index(self) -> bool: ...

    def select_incident_ids(self, query: IndexQuery) -> Iterator[str]: ...

    def replace_index(self, entries: Sequence[IndexEntry]) -> None: ...

    def index_entries(self) -> Iterator[IndexEntry]: ...

    def select_notification_ids(
        self, start: int, stop: int, limit: int, topics: Sequence[str]
    ) -> list[int]: ...


def _index_entry(incident: Incident, pending: Sequence[Any]) -> IndexEntry:
    """The index row of `incident` after its `pending` events: the upsert keeps the earliest
    start and the latest occurred_at of everything recorded (infra/incident_index.py)."""
    reported_at = incident.reported_at
    assert reported_at is not None
    starts = min([reported_at] + [starts_from(reported_at, e.data) for e in pending])
    if incident.impact_started_at is not None:
        starts = min(starts, incident.impact_started_at)
    priority = next(
        (str(e.data["priority"]) for e in reversed(pending) if "priority" in e.data), None
    )

    def latest(kind: EventType) -> datetime | None:
        return max((e.occurred_at for e in pending if e.type_name is kind), default=None)

    return IndexEntry(
        incident_id=incident.incident_id,
        customer=incident.customer,
        reported_at=reported_at,
        starts_at=starts,
        last_occurred_at=max(e.occurred_at for e in pending),
        open=incident.state is not State.RESOLVED,
        priority=priority,
        resolved_at=latest(EventType.RESOLVED),
        postmortem_at=latest(EventType.POSTMORTEM_PUBLISHED),
    )


def _redrive_refs(
    batch: Sequence[Decoded],
    redrive: Sequence[str | None] | None,
    what: str = "redrive reference",
) -> dict[int, str] | None:
    """The redrive reference (or trace context) of each message in `batch`, by the identity of
    its message."""
    if redrive is None:
        return None
    if len(redrive) != len(batch):
        raise ValueError(f"record: give one {what} per message")
    pairs = zip(batch, redrive, strict=True)
    return {id(message): ref for (message, _), ref in pairs if ref is not None}
