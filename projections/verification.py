"""Verifying recorded history (audit.md): hash chains and message receipts, as a streaming fold.

`ChainVerifier` is fed every stored record in store (notification) order and keeps, per
incident, only its chain head; so a store of any size is checked in one pass with memory in
proportion to the number of incidents. It reports every difference it finds, each naming the
incident, the position and what differs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from domain.model import (
    _MESSAGE_NAMESPACE,  # the receipts' uuid5 namespace
    GENESIS_HASH,
    EventType,
    IncidentEvent,
    chain_hash,
    incident_uuid,
    receipt_uuid,
)

_RECEIPT_NAMESPACE = _MESSAGE_NAMESPACE.bytes


def _is_receipt_id(aggregate_id: UUID, message_id: str) -> bool:
    """`aggregate_id == receipt_uuid(message_id)`, without building a UUID (hot path)."""
    digest = bytearray(hashlib.sha1(_RECEIPT_NAMESPACE + message_id.encode("utf-8")).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    return bytes(digest) == aggregate_id.bytes


class Kind(StrEnum):
    """What a difference is about; stable codes for scripts."""

    UNDECODABLE = "undecodable"
    HASH_MISMATCH = "hash_mismatch"
    BROKEN_LINK = "broken_link"
    MISSING_POSITION = "missing_position"
    OUT_OF_ORDER = "out_of_order"
    WRONG_AGGREGATE = "wrong_aggregate"
    FIRST_NOT_REPORTED = "first_event_not_reported"
    UNKNOWN_TOPIC = "unknown_topic"
    RECEIPT_MISSING = "receipt_missing"
    RECEIPT_ORPHAN = "receipt_orphan"
    RECEIPT_MISMATCH = "receipt_mismatch"
    ANCHOR_MISMATCH = "anchor_mismatch"
    ANCHOR_MISSING = "anchor_missing"
    READ_MODEL_DRIFT = "read_model_drift"


@dataclass(frozen=True, slots=True)
class Difference:
    """One thing in the store that is not what the history says it must be."""

    kind: Kind
    detail: str
    incident_id: str | None = None
    position: int | None = None
    notification_id: int | None = None
    aggregate_id: UUID | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": str(self.kind),
            "incident_id": self.incident_id,
            "position": self.position,
            "notification_id": self.notification_id,
            "aggregate_id": str(self.aggregate_id) if self.aggregate_id else None,
            "detail": self.detail,
        }

    def line(self) -> str:
        where = self.incident_id or (str(self.aggregate_id) if self.aggregate_id else "store")
        if self.position is not None:
            where += f" #{self.position}"
        return f"{where}: {self.kind}: {self.detail}"


@dataclass(frozen=True, slots=True)
class ReceiptRecord:
    """What a stored message receipt says: this message_id is that incident's position."""

    message_id: str
    incident_id: str
    position: int


@dataclass(frozen=True, slots=True)
class Anchor:
    """A chain head published earlier (e.g. by `slatrail export`): position and its hash."""

    position: int
    hash: str


@dataclass(slots=True)
class _Chain:
    incident_id: str | None = None
    next_position: int = 1
    hash: str | None = GENESIS_HASH  # None: unknown (the previous event did not decode)
    held: dict[int, tuple[IncidentEvent | None, str | None, int]] | None = None


@dataclass
class ChainSummary:
    incidents: int = 0
    events: int = 0
    receipts: int = 0
    other_records: int = 0
    heads: dict[str, Anchor] = field(default_factory=dict)


def malformed(event: IncidentEvent) -> str | None:
    """Why a decoded event cannot be one slatrail recorded (wrong field types), or None.

    Only what the verifier itself relies on; any other damage makes the hash differ."""
    occurred, recorded = event.occurred_at, event.recorded_at
    if (
        isinstance(event.incident_id, str)
        and isinstance(event.message_id, str)
        and isinstance(event.prev_hash, str)
        and isinstance(event.hash, str)
        and isinstance(event.data, dict)
        and isinstance(occurred, datetime)
        and occurred.tzinfo is not None
        and isinstance(recorded, datetime)
        and recorded.tzinfo is not None
        and (event.redrive is None or isinstance(event.redrive, str))
    ):
        return None  # the common case, checked fast
    for name in ("incident_id", "message_id", "prev_hash", "hash"):
        if not isinstance(getattr(event, name), str):
            return f"{name} is not a string"
    for name in ("occurred_at", "recorded_at"):
        moment = getattr(event, name)
        if not isinstance(moment, datetime) or moment.tzinfo is None:
            return f"{name} is not an aware timestamp"
    if not isinstance(event.data, dict):
        return "data is not an object"
    if event.redrive is not None and not isinstance(event.redrive, str):
        return "redrive is not a string"
    return None


class ReceiptCheck:
    """Message receipts against the events they name, streaming: a receipt and its event are
    saved in one transaction, so each waits only briefly for the other. Also reports records
    of unknown topics. Picklable: it may run in a process of its own."""

    def __init__(self) -> None:
        self.differences: list[Difference] = []
        self.receipts = 0
        self.other_records = 0
        self._events_waiting: dict[str, tuple[str, int, UUID, int]] = {}
        self._receipts_waiting: dict[str, tuple[ReceiptRecord, UUID, int]] = {}

    def event(
        self,
        message_id: str,
        incident_id: str,
        position: int,
        aggregate_id: UUID,
        notification_id: int,
    ) -> None:
        """A recorded event's message: its receipt must name this incident and position."""
        receipt = self._receipts_waiting.pop(message_id, None)
        if receipt is None:
            self._events_waiting[message_id] = (
                incident_id,
                position,
                aggregate_id,
                notification_id,
            )
        else:
            self._compare(receipt[0], incident_id, position, notification_id)

    def receipt(
        self,
        aggregate_id: UUID,
        version: int,
        receipt: ReceiptRecord | None,
        *,
        notification_id: int,
        error: str | None = None,
    ) -> None:
        """One stored message receipt (`receipt` None with `error` when it does not decode)."""
        self.receipts += 1
        if receipt is None:
            self.differences.append(
                Difference(
                    Kind.UNDECODABLE,
                    f"stored message receipt does not decode: {error}",
                    notification_id=notification_id,
                    aggregate_id=aggregate_id,
                )
            )
            return
        if not _is_receipt_id(aggregate_id, receipt.message_id) or version != 1:
            self.differences.append(
                Difference(
                    Kind.WRONG_AGGREGATE,
                    f"receipt of message {receipt.message_id!r} is stored as aggregate "
                    f"{aggregate_id} version {version}, not {receipt_uuid(receipt.message_id)} "
                    f"version 1",
                    incident_id=receipt.incident_id,
                    position=receipt.position,
                    notification_id=notification_id,
                    aggregate_id=aggregate_id,
                )
            )
        waiting = self._events_waiting.pop(receipt.message_id, None)
        if waiting is None:
            self._receipts_waiting[receipt.message_id] = (receipt, aggregate_id, notification_id)
        else:
            incident_id, position, _, event_notification = waiting
            self._compare(receipt, incident_id, position, event_notification)

    def other(self, aggregate_id: UUID, version: int, topic: str, *, notification_id: int) -> None:
        """A stored record that is neither an incident event nor a receipt."""
        self.other_records += 1
        self.differences.append(
            Difference(
                Kind.UNKNOWN_TOPIC,
                f"stored record with unknown topic {topic!r} (aggregate {aggregate_id} "
                f"version {version})",
                notification_id=notification_id,
                aggregate_id=aggregate_id,
            )
        )

    def finish(self, undecodable: Collection[tuple[UUID, int]] = ()) -> list[Difference]:
        """Receipts without their event (unless that event is `undecodable`: reported as
        such), events without their receipt; then every difference found."""
        for message_id, (receipt, aggregate_id, notification_id) in sorted(
            self._receipts_waiting.items()
        ):
            if (incident_uuid(receipt.incident_id), receipt.position) in undecodable:
                continue
            self.differences.append(
                Difference(
                    Kind.RECEIPT_ORPHAN,
                    f"receipt of message {message_id!r} says it was recorded as position "
                    f"{receipt.position} of {receipt.incident_id!r}, but no event of that "
                    f"message is in the store",
                    incident_id=receipt.incident_id,
                    position=receipt.position,
                    notification_id=notification_id,
                    aggregate_id=aggregate_id,
                )
            )
        for message_id, (incident_id, position, aggregate_id, notification_id) in sorted(
            self._events_waiting.items()
        ):
            self.differences.append(
                Difference(
                    Kind.RECEIPT_MISSING,
                    f"no message receipt for message {message_id!r} of this event",
                    incident_id=incident_id,
                    position=position,
                    notification_id=notification_id,
                    aggregate_id=aggregate_id,
                )
            )
        self._events_waiting.clear()
        self._receipts_waiting.clear()
        return self.differences

    def _compare(
        self, receipt: ReceiptRecord, incident_id: str, position: int, notification_id: int
    ) -> None:
        if (receipt.incident_id, receipt.position) != (incident_id, position):
            self.differences.append(
                Difference(
                    Kind.RECEIPT_MISMATCH,
                    f"message {receipt.message_id!r} is stored at position {position} of "
                    f"{incident_id!r}, but its receipt says position {receipt.position} of "
                    f"{receipt.incident_id!r}",
                    incident_id=incident_id,
                    position=position,
                    notification_id=notification_id,
                )
            )


class ChainVerifier:
    """Feed every stored record in store order, then `finish()`; read `differences`."""

    def __init__(
        self, anchors: Mapping[str, Anchor] | None = None, *, receipts: bool = True
    ) -> None:
        self.differences: list[Difference] = []
        self.summary = ChainSummary()
        self.undecodable: set[tuple[UUID, int]] = set()
        self._receipts = ReceiptCheck() if receipts else None
        self._anchors = dict(anchors or {})
        self._chains: dict[UUID, _Chain] = {}

    # -- feeding ---------------------------------------------------------------------------

    def incident_event(
        self,
        aggregate_id: UUID,
        version: int,
        event: IncidentEvent | None,
        *,
        notification_id: int,
        error: str | None = None,
    ) -> None:
        """One stored incident event (`event` None with `error` when it does not decode)."""
        chain = self._chains.get(aggregate_id)
        if chain is None:
            chain = self._chains[aggregate_id] = _Chain()
        if version > chain.next_position:
            # A gap so far: hold it until the missing position shows up (or the end).
            if chain.held is None:
                chain.held = {}
            chain.held[version] = (event, error, notification_id)
            return
        if version < chain.next_position:
            self.summary.events += 1
            self._report(
                Kind.OUT_OF_ORDER,
                chain,
                aggregate_id,
                version,
                notification_id,
                f"position {version} is stored again after position {chain.next_position - 1}",
            )
            return
        self._link(chain, aggregate_id, version, event, error, notification_id)
        while chain.held and chain.next_position in chain.held:
            position = chain.next_position
            held_event, held_error, held_id = chain.held.pop(position)
            self._report(
                Kind.OUT_OF_ORDER,
                chain,
                aggregate_id,
                position,
                held_id,
                f"position {position} is stored before position {position - 1} "
                f"(store order differs from the chain order)",
            )
            self._link(chain, aggregate_id, position, held_event, held_error, held_id)

    def receipt(
        self,
        aggregate_id: UUID,
        version: int,
        receipt: ReceiptRecord | None,
        *,
        notification_id: int,
        error: str | None = None,
    ) -> None:
        """One stored message receipt (`receipt` None with `error` when it does not decode)."""
        assert self._receipts is not None, "built with receipts=False"
        self._receipts.receipt(
            aggregate_id, version, receipt, notification_id=notification_id, error=error
        )

    def other(self, aggregate_id: UUID, version: int, topic: str, *, notification_id: int) -> None:
        """A stored record that is neither an incident event nor a receipt."""
        assert self._receipts is not None, "built with receipts=False"
        self._receipts.other(aggregate_id, version, topic, notification_id=notification_id)

    def finish(self) -> ChainSummary:
        """Settle what only the end of the store can tell: gaps, lone receipts, anchors."""
        for aggregate_id, chain in self._chains.items():
            while chain.held:
                first = min(chain.held)
                missing = range(chain.next_position, first)
                jump = (
                    f"the chain starts at position {first}"
                    if missing.start == 1
                    else f"the chain jumps from position {missing.start - 1} to {first}"
                )
                self._report(
                    Kind.MISSING_POSITION,
                    chain,
                    aggregate_id,
                    chain.next_position,
                    None,
                    f"position{'s' if len(missing) > 1 else ''} "
                    f"{_span(missing.start, missing.stop - 1)} missing: {jump}",
                )
                chain.hash = None  # the link across a gap cannot be checked
                chain.next_position = first
                while chain.held and chain.next_position in chain.held:
                    position = chain.next_position
                    event, error, notification_id = chain.held.pop(position)
                    self._link(chain, aggregate_id, position, event, error, notification_id)
            if chain.incident_id is not None:
                self.summary.heads[chain.incident_id] = Anchor(
                    chain.next_position - 1, chain.hash or ""
                )
        self.summary.incidents = len(self._chains)
        names = {a: c.incident_id for a, c in self._chains.items() if c.incident_id is not None}
        self.differences = [
            replace(d, incident_id=names[d.aggregate_id])
            if d.incident_id is None and d.aggregate_id in names
            else d
            for d in self.differences
        ]
        if self._receipts is not None:
            self.differences.extend(self._receipts.finish(self.undecodable))
            self.summary.receipts = self._receipts.receipts
            self.summary.other_records = self._receipts.other_records
        for incident_id, anchor in sorted(self._anchors.items()):
            head = self.summary.heads.get(incident_id)
            if head is None or head.position < anchor.position:
                have = f"its head is {head.position}" if head else "no such incident"
                self.differences.append(
                    Difference(
                        Kind.ANCHOR_MISSING,
                        f"anchored head position {anchor.position} (hash {anchor.hash}) is not "
                        f"in the store: {have}",
                        incident_id=incident_id,
                        position=anchor.position,
                    )
                )
        return self.summary

    # -- checks ----------------------------------------------------------------------------

    def _link(
        self,
        chain: _Chain,
        aggregate_id: UUID,
        version: int,
        event: IncidentEvent | None,
        error: str | None,
        notification_id: int,
    ) -> None:
        chain.next_position = version + 1
        self.summary.events += 1
        if event is None:
            self.undecodable.add((aggregate_id, version))
            self._report(
                Kind.UNDECODABLE,
                chain,
                aggregate_id,
                version,
                notification_id,
                f"stored event does not decode: {error}",
            )
            chain.hash = None
            return
        if chain.incident_id != event.incident_id:  # checked once per incident, not per event
            if incident_uuid(event.incident_id) != aggregate_id:
                self._report(
                    Kind.WRONG_AGGREGATE,
                    chain,
                    aggregate_id,
                    version,
                    notification_id,
                    f"event of incident {event.incident_id!r} is stored in aggregate "
                    f"{aggregate_id}, not {incident_uuid(event.incident_id)} (uuid5 of its id)",
                )
            if chain.incident_id is None:
                chain.incident_id = event.incident_id
        if (version == 1) != (event.type is EventType.REPORTED):
            what = f"first event is {event.type!s}" if version == 1 else "reported again"
            self._report(
                Kind.FIRST_NOT_REPORTED,
                chain,
                aggregate_id,
                version,
                notification_id,
                f"{what}: an incident's history starts with its one reported event",
            )
        if chain.hash is not None and event.prev_hash != chain.hash:
            self._report(
                Kind.BROKEN_LINK,
                chain,
                aggregate_id,
                version,
                notification_id,
                f"prev_hash {event.prev_hash} is not the hash of position {version - 1} "
                f"({chain.hash})",
            )
        try:
            computed = event.computed_hash()
        except (TypeError, ValueError, AttributeError) as problem:  # e.g. NaN in data
            computed = f"nothing: {problem}"
        if computed != event.hash:
            self._report(
                Kind.HASH_MISMATCH,
                chain,
                aggregate_id,
                version,
                notification_id,
                f"stored hash {event.hash} but the event's content hashes to {computed}: "
                f"the event was altered after it was recorded",
            )
        anchor = self._anchors.get(event.incident_id)
        if anchor is not None and anchor.position == version and anchor.hash != event.hash:
            self._report(
                Kind.ANCHOR_MISMATCH,
                chain,
                aggregate_id,
                version,
                notification_id,
                f"anchored hash {anchor.hash} but the store has {event.hash}: the history up "
                f"to this position was rewritten since the anchor was taken",
            )
        chain.hash = event.hash
        if self._receipts is not None:
            self._receipts.event(
                event.message_id, event.incident_id, version, aggregate_id, notification_id
            )

    def _report(
        self,
        kind: Kind,
        chain: _Chain,
        aggregate_id: UUID,
        position: int,
        notification_id: int | None,
        detail: str,
    ) -> None:
        self.differences.append(
            Difference(
                kind,
                detail,
                incident_id=chain.incident_id,
                position=position,
                notification_id=notification_id,
                aggregate_id=aggregate_id,
            )
        )


def _span(first: int, last: int) -> str:
    return str(first) if first == last else f"{first}–{last}"


def verify_chain(events: Iterable[IncidentEvent]) -> list[Difference]:
    """Differences in one incident's events given in position order (no receipts checked)."""
    verifier = ChainVerifier(receipts=False)
    for event in events:
        verifier.incident_event(
            incident_uuid(event.incident_id), event.position, event, notification_id=0
        )
    verifier.finish()
    return verifier.differences


_FIELDS = (
    "type",
    "occurred_at",
    "recorded_at",
    "actor",
    "source",
    "message_id",
    "data",
    "prev_hash",
    "hash",
    "redrive",
)


def field_differences(stored: IncidentEvent, recorded: IncidentEvent) -> list[str]:
    """What differs between a read model's copy of an event and the event as recorded."""
    out = []
    mine, theirs = stored.canonical_fields(), recorded.canonical_fields()
    for name in _FIELDS:
        have = mine.get(name, getattr(stored, name))
        want = theirs.get(name, getattr(recorded, name))
        if have != want:
            out.append(f"{name} is {_brief(have)}, the store has {_brief(want)}")
    return out


def _brief(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(slots=True)
class _Copy:
    """What a read model holds of one incident: its last position and that row's hash, its
    number of rows, and the first way its rows are not a consistent chain (if any)."""

    last: int
    rows: int
    hash: str
    problem: str | None = None


@dataclass
class ReadModelRows:
    """A read model's rows, summarised per incident (`summarise_rows`): small and picklable,
    so it can be computed in another process while the store is verified."""

    name: str
    rows: int = 0
    copies: dict[str, _Copy] = field(default_factory=dict)
    index_problems: list[tuple[str, str]] = field(default_factory=list)


def _row_hash(values: Sequence[Any]) -> str:
    """The chain hash a stored row's values give (columns as `ReadModelStore.iter_rows`)."""
    fields = dict(zip(_ROW_FIELDS, values[:9], strict=True))
    fields["data"] = json.loads(fields["data"])
    if len(values) > 11 and values[11] is not None:
        fields["redrive"] = values[11]  # hashed only when set (docs/audit.md §2)
    return chain_hash(str(values[9]), fields)


_ROW_FIELDS = (
    "incident_id", "position", "type", "occurred_at", "recorded_at", "actor", "source",
    "message_id", "data",
)  # fmt: skip


def _row_problem(values: Sequence[Any]) -> str | None:
    """None when a stored row's values hash to its stored hash, else what is wrong."""
    try:
        return None if _row_hash(values) == str(values[10]) else "does not hash to its stored hash"
    except (TypeError, ValueError, KeyError, AttributeError) as error:
        return f"cannot be read: {error}"


class _Summariser:
    """Folds one read model's rows, in (incident_id, position) order, into `ReadModelRows`."""

    def __init__(self, name: str, index: Mapping[str, tuple[str, str]] | None) -> None:
        self.out = ReadModelRows(name)
        self.index = index
        self.customers: dict[str, tuple[str, str]] = {}
        self.copy: _Copy | None = None
        self.current = ""

    def feed(self, values: Sequence[Any], problem: str | None) -> None:
        self.out.rows += 1
        incident_id, position = str(values[0]), int(values[1])
        copy = self.copy
        if copy is None or incident_id != self.current:
            self.current = incident_id
            copy = self.copy = self.out.copies[incident_id] = _Copy(0, 0, GENESIS_HASH)
        prev = copy.hash
        copy.rows += 1
        copy.last = position
        copy.hash = str(values[10])
        if copy.problem is not None:
            return
        if position != copy.rows:
            copy.problem = f"position {copy.rows} is missing"
        elif str(values[9]) != prev:
            copy.problem = f"position {position} does not link to position {position - 1}"
        elif problem is not None:
            copy.problem = f"position {position} {problem}"
        elif position == 1 and self.index is not None:
            customer = str(json.loads(values[8]).get("customer", ""))
            self.customers[incident_id] = (customer, str(values[3]))

    def done(self) -> ReadModelRows:
        out, index, copies = self.out, self.index, self.out.copies
        if index is None:
            return out
        for incident_id in sorted(set(copies) | set(index)):
            entry, want = index.get(incident_id), self.customers.get(incident_id)
            if entry is None:
                out.index_problems.append(
                    (incident_id, "incident is missing from the customer index")
                )
            elif incident_id not in copies:
                out.index_problems.append(
                    (incident_id, "customer index lists an incident with no events")
                )
            elif want is not None and entry != want:
                out.index_problems.append(
                    (
                        incident_id,
                        f"customer index says {entry[0]!r} reported at {entry[1]}, the "
                        f"events say {want[0]!r} at {want[1]}",
                    )
                )
        return out


RowSource = tuple[str, Iterable[Sequence[Any]], Mapping[str, tuple[str, str]] | None]


def summarise_rows(sources: Sequence[RowSource]) -> list[ReadModelRows]:
    """Per read model (name, rows in (incident_id, position) order, customer index or None),
    per incident: last position, its hash, and whether the rows are positions 1..k, each
    hashing to its stored hash and linking to the previous. Read models holding the same row
    (the usual case) are read side by side and the row is hashed once."""
    summarisers = [_Summariser(name, index) for name, _, index in sources]
    streams = [iter(rows) for _, rows, _ in sources]
    heads: list[Sequence[Any] | None] = [next(stream, None) for stream in streams]
    while True:
        if len(heads) == 2 and heads[0] is not None and heads[0] == heads[1]:
            values = tuple(heads[0])  # the usual case: both read models hold the same row
            problem = _row_problem(values)
            for n in (0, 1):
                summarisers[n].feed(values, problem)
                heads[n] = next(streams[n], None)
            continue
        keys = [(str(h[0]), int(h[1])) for h in heads if h is not None]
        if not keys:
            return [summariser.done() for summariser in summarisers]
        key = min(keys)
        checked: dict[tuple[Any, ...], str | None] = {}
        for n, head in enumerate(heads):
            if head is None or (str(head[0]), int(head[1])) != key:
                continue
            values = tuple(head)
            if values not in checked:
                checked[values] = _row_problem(values)
            summarisers[n].feed(values, checked[values])
            heads[n] = next(streams[n], None)


def compare_read_model(
    summary: ReadModelRows,
    *,
    store_heads: Mapping[str, Anchor],
    hash_at: Callable[[str, int], str | None],
    rows_of: Callable[[str], Sequence[IncidentEvent]],
    events_of: Callable[[str], Sequence[IncidentEvent]],
    tracked_store: int | None = None,
    tracked_last: Mapping[str, int] | None = None,
) -> tuple[list[Difference], int]:
    """A summarised read model against the verified store: each incident's rows must be a
    consistent prefix 1..k of its chain whose k-th hash is the store's (so, by the chain, every
    value equals the recorded one). Returns the differences (field by field where rows differ)
    and how many recorded events the read model has not applied yet (`lagging`).

    `hash_at(incident_id, k)` is the store's hash at a position below the head (rows behind);
    `tracked_last` the last position of each incident at or before the read model's tracking
    position on the store's notification log (`tracked_store`): those must all be there.
    """
    differences: list[Difference] = []
    lagging = 0

    def drift(incident_id: str, position: int | None, detail: str) -> None:
        differences.append(
            Difference(
                Kind.READ_MODEL_DRIFT,
                f"read model {summary.name}: {detail}",
                incident_id=incident_id,
                position=position,
            )
        )

    drifted: list[str] = []
    for incident_id, copy in summary.copies.items():
        head = store_heads.get(incident_id)
        if head is None:
            drift(incident_id, None, "incident is not in the store")
            continue
        if copy.problem is not None or copy.last > head.position:
            drifted.append(incident_id)
            continue
        recorded = head.hash if copy.last == head.position else hash_at(incident_id, copy.last)
        if recorded != copy.hash:
            drifted.append(incident_id)
    for incident_id, head in store_heads.items():
        held = summary.copies.get(incident_id)
        have = held.last if held is not None else 0
        must = (tracked_last or {}).get(incident_id, 0)
        if have < must and (held is None or held.problem is None):
            drift(
                incident_id,
                have + 1,
                f"missing, although the read model's tracking says it applied the store up to "
                f"notification {tracked_store} (position {must} is at or before it)",
            )
        lagging += max(head.position - max(have, must), 0)
    for incident_id in sorted(drifted):
        before = len(differences)
        problem = summary.copies[incident_id].problem
        try:
            rows = rows_of(incident_id)
        except (KeyError, TypeError, ValueError) as error:  # rows too damaged to read back
            problem = problem or f"rows cannot be read: {type(error).__name__}: {error}"
        else:
            _field_drift(drift, incident_id, rows, events_of(incident_id))
        if len(differences) == before:
            drift(incident_id, None, problem or "rows differ from the recorded events")
    for incident_id, detail in summary.index_problems:
        drift(incident_id, None, detail)
    return differences, lagging


def _field_drift(
    drift: Callable[[str, int | None, str], None],
    incident_id: str,
    rows: Sequence[IncidentEvent],
    recorded: Sequence[IncidentEvent],
) -> None:
    by_position = {row.position: row for row in rows}
    events = {event.position: event for event in recorded}
    last = max(by_position, default=0)
    head = max(events, default=0)
    for position in range(1, last + 1):
        row, event = by_position.get(position), events.get(position)
        if row is None:
            drift(incident_id, position, "missing (positions after it are there)")
        elif event is None:
            drift(
                incident_id,
                position,
                f"holds position {position}; the store's chain ends at {head}",
            )
        else:
            what = field_differences(row, event)
            if what:
                drift(incident_id, position, "; ".join(what))
