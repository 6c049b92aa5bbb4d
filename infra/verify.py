"""`slatrail verify` against a real store: every stored record, as stored, through the verifier.

Reads the raw notifications (all topics, not only the ones slatrail writes; an SQLite store's
rows straight from its table, `stored_records`), decodes each one itself so that a record whose
bytes no longer decode is reported rather than fatal, and feeds
`projections.verification.ChainVerifier`. Streaming: memory grows with the number of incidents
(one small object each), not of events.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsourcing.persistence import Notification, StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder
from eventsourcing.utils import get_topic

from slatrail.application.service import (
    INCIDENT_EVENT_TYPES,
    INCIDENT_TOPICS,
    SlatrailApplication,
)
from slatrail.domain.contract_version import ContractHistory
from slatrail.domain.incident import record_of_state
from slatrail.domain.model import IncidentEvent, format_instant, incident_uuid
from slatrail.domain.receipt import MessageReceipt
from slatrail.infra.bootstrap import Container
from slatrail.infra.errors import StoreMissingError
from slatrail.infra.redact import redact_url
from slatrail.infra.store import sqlite_path
from slatrail.projections.incident_index import IndexEntry
from slatrail.projections.read_models import READ_MODELS, SLA, STORE_SOURCE
from slatrail.projections.sla import incident_sla
from slatrail.projections.verification import (
    Anchor,
    ChainSummary,
    ChainVerifier,
    Difference,
    DifferenceKind,
    ReadModelRows,
    ReceiptRecord,
    compare_read_model,
    malformed,
    summarise_rows,
)
from slatrail.projections.verification.contract_chain import StoredVersion

if TYPE_CHECKING:  # imported where used: a store without read models never needs them
    from slatrail.infra.read_model_store import ReadModelStore

PAGE = 10_000
RECEIPT_TOPIC = get_topic(MessageReceipt.Received)
CONTRACT_TOPICS = frozenset(ContractHistory.EVENT_TOPICS)
_INCIDENT_TOPICS = frozenset(INCIDENT_TOPICS)

Progress = Callable[[int, int], None]  # (notifications advanced, events in them)


def stored_notifications(
    app: SlatrailApplication, *, start: int = 1, page: int = PAGE, topics: Sequence[str] = ()
) -> Iterator[Notification]:
    """Every stored record from notification id `start`, in store order, whatever its topic
    (or only `topics`)."""
    for notifications in stored_pages(app, start=start, page=page, topics=topics):
        yield from notifications


def stored_pages(
    app: SlatrailApplication, *, start: int = 1, page: int = PAGE, topics: Sequence[str] = ()
) -> Iterator[Sequence[Notification]]:
    """`stored_notifications` a page at a time (each page non-empty)."""
    position = start
    while True:
        notifications = app.recorder.select_notifications(position, page, topics=topics)
        if not notifications:
            return
        yield notifications
        position = notifications[-1].id + 1


StateDecoder = Callable[[bytes], Any]


def decode_incident_event(
    app: SlatrailApplication, notification: StoredEvent
) -> tuple[IncidentEvent | None, str | None]:
    """The recorded event in a stored incident record, or None and why it does not decode."""
    return incident_record(
        app.state_decoder(), notification.topic, notification.originator_version,
        notification.state,
    )  # fmt: skip


def incident_record(
    decode: StateDecoder, topic: str, version: int, data: bytes
) -> tuple[IncidentEvent | None, str | None]:
    """`decode_incident_event` of a stored record's topic, version and state.

    The state is decoded by the application's own mapper parts (cipher, compressor,
    transcoder) straight into the record the projections fold, without the aggregate event
    object `mapper.to_domain_event` would build first, then convert."""
    kind = INCIDENT_EVENT_TYPES.get(topic)
    if kind is None:
        return None, f"topic {topic!r} is not an incident event"
    try:
        record = record_of_state(decode(data), version, kind)
    except Exception as error:  # any damage to the bytes shows up here
        return None, _reason(error)
    problem = malformed(record)
    return (None, problem) if problem else (record, None)


def decode_contract_version(
    app: SlatrailApplication, notification: StoredEvent
) -> tuple[StoredVersion | None, str | None]:
    try:
        event = app.mapper.to_domain_event(notification)
        if not isinstance(event, ContractHistory.Event):
            return None, f"topic {notification.topic!r} is not a contract version"
        return StoredVersion(
            notification.originator_version, event.content, event.sha256, event.effective_from,
            event.timestamp, event.actor, event.reason, event.prev_hash, event.hash,
            event.holidays,
        ), None  # fmt: skip
    except Exception as error:
        return None, _reason(error)


def decode_receipt(
    app: SlatrailApplication, notification: StoredEvent
) -> tuple[ReceiptRecord | None, str | None]:
    return receipt_record(app.state_decoder(), notification.state)


def receipt_record(decode: StateDecoder, data: bytes) -> tuple[ReceiptRecord | None, str | None]:
    """`decode_receipt` of a stored receipt's state."""
    try:
        state = decode(data)
        record = ReceiptRecord(state["message_id"], state["incident_id"], state["position"])
    except Exception as error:
        return None, _reason(error)
    if not (
        isinstance(record.message_id, str)
        and isinstance(record.incident_id, str)
        and isinstance(record.position, int)
    ):
        return None, "message_id/incident_id/position have the wrong types"
    return record, None


def _reason(error: BaseException) -> str:
    cause = error.__cause__ or error
    return f"{type(cause).__name__}: {cause}"


@dataclass
class Verification:
    """The outcome of `verify_store`."""

    summary: ChainSummary
    differences: list[Difference]
    read_models: list[str] = field(default_factory=list)  # the read models compared
    notes: list[str] = field(default_factory=list)  # what could not be compared, and why

    @property
    def ok(self) -> bool:
        return not self.differences

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "incidents": self.summary.incidents,
            "events": self.summary.events,
            "receipts": self.summary.receipts,
            "contract_versions": self.summary.contract_versions,
            "read_models": self.read_models,
            "notes": self.notes,
            "differences": [d.as_json() for d in self.differences],
        }


StoredRecord = tuple[int, int, int, str, bytes]
"""A stored record as `verify` reads it: notification id, aggregate (`UUID.int`), version,
topic, state."""


def stored_records(app: SlatrailApplication, *, page: int = PAGE) -> Iterator[list[StoredRecord]]:
    """Every stored record, a page at a time in store order (each page non-empty).

    From SQLite straight from the recorder's table through its own connection, as plain rows:
    the recorder would build a `UUID` and a `Notification` for each, which cost more than
    decoding the record (docs/scale.md, "Verify"). Elsewhere through `select_notifications`."""
    recorder = app.recorder
    if isinstance(recorder, SQLiteApplicationRecorder) and (
        recorder.datastore.originator_id_type == "uuid"
    ):
        yield from _sqlite_records(recorder, page)
        return
    for notifications in stored_pages(app, page=page):
        yield [
            (n.id, _uuid_key(n.originator_id), n.originator_version, n.topic, n.state)
            for n in notifications
        ]


def _sqlite_records(recorder: SQLiteApplicationRecorder, page: int) -> Iterator[list[StoredRecord]]:
    statement = (
        "SELECT rowid, originator_id, originator_version, topic, state "
        f"FROM {recorder.events_table_name} WHERE rowid >= ? ORDER BY rowid LIMIT ?"
    )
    position = 1
    while True:
        with recorder.datastore.transaction(commit=False) as cursor:
            raw = cursor.sqlite_cursor
            raw.row_factory = None  # tuples, not sqlite3.Row
            raw.execute(statement, (position, page))
            rows = raw.fetchall()
        if not rows:
            return
        # the hex text the recorder stores; exactly `UUID(text).int` (which is `int(text, 16)`
        # once UUID has dropped braces, dashes and a urn prefix: alphanumeric text has none)
        yield [
            (
                notification_id,
                int(text, 16)
                if type(text) is str and len(text) == 32 and text.isalnum()
                else UUID(text).int,
                version,
                topic,
                state,
            )
            for notification_id, text, version, topic, state in rows
        ]
        position = rows[-1][0] + 1


def _uuid_key(originator_id: UUID | str) -> int:
    return originator_id.int if isinstance(originator_id, UUID) else UUID(originator_id).int


def verify_chains(
    app: SlatrailApplication,
    *,
    anchors: Mapping[str, Anchor] | None = None,
    progress: Progress | None = None,
    observers: Sequence[Callable[[int, IncidentEvent], None]] = (),
    page: int = PAGE,
    index: bool = False,
) -> ChainVerifier:
    """Stream the whole store through a `ChainVerifier` (finished; folding each incident's
    index row with `index`) and return it; each decoded incident event also goes to every
    observer, with its notification id."""
    verifier = ChainVerifier(anchors, index=index)
    # The pass makes millions of short-lived objects (no cycles among them) and keeps one small
    # chain per incident: the cycle collector would scan those chains again and again and find
    # nothing (a tenth of the pass at 200,000 incidents). Paused for the pass only.
    collecting = gc.isenabled()
    gc.disable()
    try:
        _feed(app, verifier, progress, observers, page)
    finally:
        if collecting:
            gc.enable()
    verifier.finish()
    return verifier


def _feed(
    app: SlatrailApplication,
    verifier: ChainVerifier,
    progress: Progress | None,
    observers: Sequence[Callable[[int, IncidentEvent], None]],
    page: int,
) -> None:
    incident_event, receipt_of = verifier.incident_event, verifier.receipt
    decode = app.state_decoder()
    last_id = 0
    for records in stored_records(app, page=page):
        events = 0
        for notification_id, key, version, topic, state in records:
            if topic in _INCIDENT_TOPICS:
                event, error = incident_record(decode, topic, version, state)
                incident_event(key, version, event, notification_id=notification_id, error=error)
                if event is not None:
                    for observe in observers:
                        observe(notification_id, event)
                events += 1
            elif topic == RECEIPT_TOPIC:
                receipt, error = receipt_record(decode, state)
                receipt_of(key, version, receipt, notification_id=notification_id, error=error)
            elif topic in CONTRACT_TOPICS:
                stored = StoredEvent(UUID(int=key), version, topic, state)
                version_found, error = decode_contract_version(app, stored)
                verifier.contracts.version(
                    UUID(int=key), version_found, version=version,
                    notification_id=notification_id, error=error,
                )  # fmt: skip
            else:
                verifier.other(key, version, topic, notification_id=notification_id)
        if progress is not None:  # once a page: the bar moves as often as it can be seen
            progress(records[-1][0] - last_id, events)
        last_id = records[-1][0]


# Stored records from which the read models are summarised in a process of their own (they are
# another database: that work runs beside the one pass over the store).
PARALLEL_FROM = 200_000


def verify_store(
    container: Container,
    *,
    anchors: Mapping[str, Anchor] | None = None,
    progress: Progress | None = None,
    read_models: bool = True,
) -> Verification:
    """Every chain and receipt of the store, and every stored read model against the events.

    The store is read once, chains and receipts checked in the same pass; the read models'
    rows are summarised (`summarise_rows`) while it is streamed — in a second process for a
    large store — then compared with the verified chains."""
    notes: list[str] = []
    store = stored_read_models(container, notes) if read_models else None
    plans = read_model_plans(store, notes) if store is not None else []
    tracked = {plan.tracked_store for plan in plans if plan.tracked_store is not None}
    tracked_last: dict[int, dict[str, int]] = {position: {} for position in tracked}

    def note_tracked(notification_id: int, event: IncidentEvent) -> None:
        for position, last in tracked_last.items():
            if notification_id <= position:
                last[event.incident_id] = event.position

    app = container.app
    stored_index = app.index_entries()
    observers: list[Callable[[int, IncidentEvent], None]] = [note_tracked] if tracked_last else []
    parallel = (app.recorder.max_notification_id() or 0) >= PARALLEL_FROM
    with contextlib.ExitStack() as stack:
        rows: Future[list[ReadModelRows]] | None = None
        if parallel and plans:
            pool = stack.enter_context(
                ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
            )
            rows = pool.submit(summarise_read_models, container.read_model_url, plans)
        # One pass over the store checks chains and receipts together: a second process reading
        # the store again for the receipts cost more than it saved (docs/scale.md, "Verify").
        verifier = verify_chains(
            app, anchors=anchors, progress=progress, observers=observers,
            index=stored_index is not None,
        )  # fmt: skip
        if rows is not None:
            summaries = rows.result()
        elif store is not None:
            summaries = summarise_read_models(container.read_model_url, plans, store)
        else:
            summaries = []  # no read-model database: verifying never creates one
    result = Verification(verifier.summary, list(verifier.differences), notes=notes)
    if stored_index is not None:  # for incidents whose events verify (else that is the finding)
        damaged = {d.incident_id for d in result.differences}
        drift = index_drift(verifier, stored_index)
        result.differences.extend(d for d in drift if d.incident_id not in damaged)
    sla_lagging = 0  # the SLA ledger is kept with the `sla` read model: it lags the same
    for plan, summary in zip(plans, summaries, strict=True):
        assert store is not None
        drift, lagging = compare_read_model(
            summary,
            store_heads=verifier.summary.heads,
            hash_at=partial(stored_hash_at, app),
            rows_of=partial(_rows_of, store, plan.name),
            events_of=partial(recorded_events, app),
            tracked_store=plan.tracked_store,
            tracked_last=tracked_last.get(plan.tracked_store or 0),
        )
        result.differences.extend(drift)
        if plan.name == SLA:
            sla_lagging = lagging
            drifted = sorted({d.incident_id for d in drift if d.incident_id})
            result.differences.extend(sla_effects(container, store, drifted))
        result.read_models.append(f"{plan.name} ({summary.rows} rows)")
        if lagging:
            result.notes.append(
                f"read model {plan.name}: {lagging} recorded events not applied yet (behind the "
                f"store; not a difference)"
            )
    if store is not None and verifier.differences:
        result.notes.append("SLA ledger: not compared (the store's own differences come first)")
    elif store is not None:
        from slatrail.infra.ledger_check import ledger_drift

        head = app.recorder.max_notification_id() or 0
        result.differences.extend(
            ledger_drift(
                store, app, container.contract_book, head, result.notes, sla_lagging=sla_lagging
            )
        )
    result.differences.sort(key=_by_place)
    return result


def index_drift(verifier: ChainVerifier, stored: Iterable[IndexEntry]) -> list[Difference]:
    """Rows of the incident index that are not what the verified events give (docs/scale.md);
    `verifier` folded them (`index=True`, finished), and drops each once compared."""
    found: list[Difference] = []
    for entry in stored:
        want = verifier.index_entry(entry.incident_id)
        if want is None:
            found.append(Difference(DifferenceKind.INDEX_DRIFT, "indexed but never reported",
                                    incident_id=entry.incident_id))  # fmt: skip
        elif want != entry:
            changed = [f for f in want.__slots__ if getattr(want, f) != getattr(entry, f)]
            found.append(Difference(
                DifferenceKind.INDEX_DRIFT,
                f"index row differs from the events in {', '.join(changed)} (rebuild it: "
                "empty the table and open the store with a writing command)",
                incident_id=entry.incident_id,
            ))  # fmt: skip
    for incident_id in verifier.unindexed():
        found.append(Difference(DifferenceKind.INDEX_DRIFT, "reported but not indexed",
                                incident_id=incident_id))  # fmt: skip
    return found


_KIND_ORDER = {kind: n for n, kind in enumerate(DifferenceKind)}


def _by_place(difference: Difference) -> tuple[str, int, int]:
    """Report order: by incident, then position, then kind (the same however it was found)."""
    return (
        difference.incident_id or "",
        difference.position if difference.position is not None else -1,
        _KIND_ORDER[difference.kind],
    )


@dataclass(frozen=True)
class ReadModelPlan:
    name: str
    tracked_store: int | None
    index: dict[str, tuple[str, str]] | None


def summarise_read_models(
    url: str, plans: Sequence[ReadModelPlan], store: ReadModelStore | None = None
) -> list[ReadModelRows]:
    """`summarise_rows` of each planned read model (in a worker process: opens its own store)."""
    from slatrail.infra.read_model_store import ReadModelStore

    own = store is None
    store = store or ReadModelStore(url)
    try:
        return summarise_rows([(p.name, store.iter_rows(p.name), p.index) for p in plans])
    finally:
        if own:
            store.close()


def recorded_events(
    app: SlatrailApplication, incident_id: str, *, gt: int | None = None, lte: int | None = None
) -> list[IncidentEvent]:
    """An incident's recorded events that still decode (damaged ones are reported already)."""
    out = []
    for stored in app.recorder.select_events(incident_uuid(incident_id), gt=gt, lte=lte):
        event, _ = decode_incident_event(app, stored)
        if event is not None:
            out.append(event)
    return out


def stored_hash_at(app: SlatrailApplication, incident_id: str, position: int) -> str | None:
    """The recorded hash of one position (for a read model behind the store's head)."""
    events = recorded_events(app, incident_id, gt=position - 1, lte=position)
    return events[0].hash if events else None


def _rows_of(store: ReadModelStore, name: str, incident_id: str) -> list[IncidentEvent]:
    return store.incident_events(incident_id, name)


def stored_read_models(container: Container, notes: list[str]) -> ReadModelStore | None:
    """The read-model database, if there is one (never created by verifying)."""
    url = container.read_model_url
    path = sqlite_path(url, "read-model")
    if path is not None and not path.startswith("file:") and not Path(path).exists():
        notes.append(f"no read models at {url}: nothing to compare")
        return None
    try:
        return container.read_models
    except StoreMissingError:  # a PostgreSQL database without read-model tables
        notes.append(f"no read models at {redact_url(url)}: nothing to compare")
        return None


def read_model_plans(store: ReadModelStore, notes: list[str]) -> list[ReadModelPlan]:
    """The read models holding anything, with their tracking on the store and index."""
    plans = []
    for name in READ_MODELS:
        tracking = store.positions(name)
        if not tracking and store.counts(name)[1] == 0:
            notes.append(f"read model {name} is empty (never fed): nothing to compare")
            continue
        index = store.sla_index() if name == SLA else None
        plans.append(ReadModelPlan(name, tracking.get(STORE_SOURCE), index))
    return plans


def sla_effects(
    container: Container, store: ReadModelStore, incidents: Sequence[str], limit: int = 20
) -> list[Difference]:
    """For drifted incidents: how the SLA answer from the read model differs from the store's."""
    as_of = container.clock()
    out = []
    for incident_id in incidents[:limit]:
        try:
            rebuilt = incident_sla(
                recorded_events(container.app, incident_id), container.contract_book, as_of
            )
        except (KeyError, TypeError, ValueError):
            continue  # the recorded events themselves are damaged: reported as such already
        want = rebuilt.as_json() if rebuilt else None
        try:
            stored = incident_sla(
                store.incident_events(incident_id, SLA), container.contract_book, as_of
            )
        except (KeyError, TypeError, ValueError) as error:  # rows too damaged to evaluate
            changes = [f"cannot be evaluated from the read model ({type(error).__name__}: {error})"]
        else:
            have = stored.as_json() if stored else None
            if want == have:
                continue
            changes = _json_changes(have, want)
        out.append(
            Difference(
                DifferenceKind.READ_MODEL_DRIFT,
                f"read model {SLA}: the SLA view as of {format_instant(as_of)} differs: "
                + "; ".join(changes[:6]),
                incident_id=incident_id,
            )
        )
    return out


def _json_changes(have: Any, want: Any, path: str = "") -> list[str]:
    if isinstance(have, dict) and isinstance(want, dict):
        return [
            change
            for key in sorted(set(have) | set(want))
            for change in _json_changes(have.get(key), want.get(key), f"{path}.{key}".lstrip("."))
        ]
    if have == want:
        return []
    return [f"{path or 'view'} is {have!r}, rebuilt from the store {want!r}"]
