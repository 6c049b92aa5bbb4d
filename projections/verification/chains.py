"""Hash chains of recorded history (docs/audit.md), as a streaming fold.

`ChainVerifier` is fed every stored record in store (notification) order and keeps, per
incident, only its chain head; so a store of any size is checked in one pass with memory in
proportion to the number of incidents. It reports every difference it finds, each naming the
incident, the position and what differs; message receipts are checked alongside
(`projections.verification.receipts`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from uuid import UUID

from slatrail.domain.model import GENESIS_HASH, EventType, IncidentEvent, incident_key
from slatrail.projections.incident_index import EntryBuilder, IndexEntry
from slatrail.projections.verification.contract_chain import ContractChain
from slatrail.projections.verification.differences import (
    Aggregate,
    Anchor,
    Difference,
    DifferenceKind,
    aggregate_key,
)
from slatrail.projections.verification.receipts import ReceiptCheck, ReceiptRecord

Held = dict[int, tuple[IncidentEvent | None, str | None, int]]


def _packed(text: str) -> bytes | str:
    """A hash as a chain keeps it: the 32 bytes its 64 lower-case hex digits spell (65 bytes
    of memory, not 113), or the text itself when it is not exactly that (damage: it is still
    compared as it is)."""
    if len(text) == 64:
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            return text
        if raw.hex() == text:
            return raw
    return text


def _unpacked(kept: bytes | str) -> str:
    """The hash text `_packed` kept (always exactly the text it was given)."""
    return kept.hex() if isinstance(kept, bytes) else kept


_GENESIS = _packed(GENESIS_HASH)


class _Chain:
    """What is kept of one aggregate between its events — for every incident of the store, so
    only this: its name, the position and hash (`_packed`) the next event must link to, the
    events stored ahead of a gap (None without one), and its incident-index row folded so far
    (None unless the index is checked, and again once it was compared)."""

    __slots__ = ("hash", "held", "incident_id", "index", "next_position")

    def __init__(self, index: EntryBuilder | None) -> None:
        self.incident_id: str | None = None
        self.next_position = 1
        self.hash: bytes | str | None = _GENESIS  # None: unknown (the previous one did not decode)
        self.held: Held | None = None
        self.index = index


@dataclass
class ChainSummary:
    incidents: int = 0
    events: int = 0
    receipts: int = 0
    other_records: int = 0
    contract_versions: int = 0
    heads: Mapping[str, Anchor] = field(default_factory=dict)


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


class ChainVerifier:
    """Feed every stored record in store order, then `finish()`; read `differences`.

    Aggregates are named by their UUID or, as `verify` reads them straight from a store, by
    its integer; each is kept as one small `_Chain` under that integer. With `index=True` each
    incident's index row is folded as well (`index_entry`, `unindexed`)."""

    def __init__(
        self,
        anchors: Mapping[str, Anchor] | None = None,
        *,
        receipts: bool = True,
        index: bool = False,
    ) -> None:
        self.differences: list[Difference] = []
        self.summary = ChainSummary()
        self.undecodable: set[tuple[int, int]] = set()  # (aggregate, position) not decoding
        self._receipts = ReceiptCheck() if receipts else None
        self._anchors = dict(anchors or {})
        self._chains: dict[int, _Chain] = {}
        self._index = index
        # chains named after an incident whose aggregate is another one (damage: few)
        self._elsewhere: dict[int, None] = {}
        self.contracts = ContractChain()

    # -- feeding ---------------------------------------------------------------------------

    def incident_event(
        self,
        aggregate_id: Aggregate,
        version: int,
        event: IncidentEvent | None,
        *,
        notification_id: int,
        error: str | None = None,
    ) -> None:
        """One stored incident event (`event` None with `error` when it does not decode)."""
        key = aggregate_key(aggregate_id)
        chain = self._chains.get(key)
        if chain is None:
            chain = self._chains[key] = _Chain(EntryBuilder() if self._index else None)
        if version > chain.next_position:
            # A gap so far: hold it until the missing position shows up (or the end).
            if chain.held is None:
                chain.held = {}
            chain.held[version] = (event, error, notification_id)
            return
        if version < chain.next_position:
            self.summary.events += 1
            self._report(
                DifferenceKind.OUT_OF_ORDER,
                chain,
                key,
                version,
                notification_id,
                f"position {version} is stored again after position {chain.next_position - 1}",
            )
            return
        self._link(chain, key, version, event, error, notification_id)
        while chain.held and chain.next_position in chain.held:
            position = chain.next_position
            held_event, held_error, held_id = chain.held.pop(position)
            self._report(
                DifferenceKind.OUT_OF_ORDER,
                chain,
                key,
                position,
                held_id,
                f"position {position} is stored before position {position - 1} "
                f"(store order differs from the chain order)",
            )
            self._link(chain, key, position, held_event, held_error, held_id)
        if chain.held is not None and not chain.held:
            chain.held = None  # the gap is closed: nothing more to keep for it

    def receipt(
        self,
        aggregate_id: Aggregate,
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

    def other(
        self, aggregate_id: Aggregate, version: int, topic: str, *, notification_id: int
    ) -> None:
        """A stored record that is neither an incident event nor a receipt."""
        assert self._receipts is not None, "built with receipts=False"
        self._receipts.other(aggregate_id, version, topic, notification_id=notification_id)

    def finish(self) -> ChainSummary:
        """Settle what only the end of the store can tell: gaps, lone receipts, anchors."""
        for key, chain in self._chains.items():
            while chain.held:
                first = min(chain.held)
                missing = range(chain.next_position, first)
                jump = (
                    f"the chain starts at position {first}"
                    if missing.start == 1
                    else f"the chain jumps from position {missing.start - 1} to {first}"
                )
                self._report(
                    DifferenceKind.MISSING_POSITION,
                    chain,
                    key,
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
                    self._link(chain, key, position, event, error, notification_id)
            chain.held = None
        self.summary.heads = ChainHeads(self._chains, self._elsewhere)
        self.summary.incidents = len(self._chains)
        chains = self._chains
        self.differences = [
            replace(d, incident_id=named)
            if d.incident_id is None
            and d.aggregate_id is not None
            and (found := chains.get(d.aggregate_id.int)) is not None
            and (named := found.incident_id) is not None
            else d
            for d in self.differences
        ]
        self.differences.extend(self.contracts.found)
        self.summary.contract_versions = self.contracts.versions
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
                        DifferenceKind.ANCHOR_MISSING,
                        f"anchored head position {anchor.position} (hash {anchor.hash}) is not "
                        f"in the store: {have}",
                        incident_id=incident_id,
                        position=anchor.position,
                    )
                )
        return self.summary

    # -- the incident index (built with index=True; after finish) ----------------------------

    def index_entry(self, incident_id: str) -> IndexEntry | None:
        """The index row the recorded events of `incident_id` give (None: it has none, or was
        never reported), and the folded row dropped: each is asked for once."""
        chain = _chain_named(self._chains, self._elsewhere, incident_id)
        if chain is None or chain.index is None:
            return None
        builder, chain.index = chain.index, None
        return builder.entry()

    def unindexed(self) -> Iterator[str]:
        """The incidents with an index row whose row `index_entry` was never asked for."""
        for chain in self._chains.values():
            index, name = chain.index, chain.incident_id
            if index is not None and name is not None and index.entry() is not None:
                yield name

    # -- checks ----------------------------------------------------------------------------

    def _link(
        self,
        chain: _Chain,
        key: int,
        version: int,
        event: IncidentEvent | None,
        error: str | None,
        notification_id: int,
    ) -> None:
        chain.next_position = version + 1
        self.summary.events += 1
        if event is None:
            self.undecodable.add((key, version))
            self._report(
                DifferenceKind.UNDECODABLE,
                chain,
                key,
                version,
                notification_id,
                f"stored event does not decode: {error}",
            )
            chain.hash = None
            return
        if chain.incident_id != event.incident_id:  # checked once per incident, not per event
            own = incident_key(event.incident_id)
            if own != key:
                self._report(
                    DifferenceKind.WRONG_AGGREGATE,
                    chain,
                    key,
                    version,
                    notification_id,
                    f"event of incident {event.incident_id!r} is stored in aggregate "
                    f"{UUID(int=key)}, not {UUID(int=own)} (uuid5 of its id)",
                )
            if chain.incident_id is None:
                chain.incident_id = event.incident_id
                if own != key:
                    self._elsewhere[key] = None
        if (version == 1) != (event.type is EventType.REPORTED):
            what = f"first event is {event.type!s}" if version == 1 else "reported again"
            self._report(
                DifferenceKind.FIRST_NOT_REPORTED,
                chain,
                key,
                version,
                notification_id,
                f"{what}: an incident's history starts with its one reported event",
            )
        if chain.hash is not None and event.prev_hash != (kept := _unpacked(chain.hash)):
            self._report(
                DifferenceKind.BROKEN_LINK,
                chain,
                key,
                version,
                notification_id,
                f"prev_hash {event.prev_hash} is not the hash of position {version - 1} ({kept})",
            )
        try:
            computed = event.computed_hash()
        except (TypeError, ValueError, AttributeError) as problem:  # e.g. NaN in data
            computed = f"nothing: {problem}"
        if computed != event.hash:
            self._report(
                DifferenceKind.HASH_MISMATCH,
                chain,
                key,
                version,
                notification_id,
                f"stored hash {event.hash} but the event's content hashes to {computed}: "
                f"the event was altered after it was recorded",
            )
        if self._anchors:
            anchor = self._anchors.get(event.incident_id)
            if anchor is not None and anchor.position == version and anchor.hash != event.hash:
                self._report(
                    DifferenceKind.ANCHOR_MISMATCH,
                    chain,
                    key,
                    version,
                    notification_id,
                    f"anchored hash {anchor.hash} but the store has {event.hash}: the history "
                    f"up to this position was rewritten since the anchor was taken",
                )
        chain.hash = _packed(event.hash)
        if chain.index is not None:
            chain.index.add(event)
        if self._receipts is not None:
            self._receipts.event(event.message_id, event.incident_id, version, key, notification_id)

    def _report(
        self,
        kind: DifferenceKind,
        chain: _Chain,
        key: int,
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
                aggregate_id=UUID(int=key),
            )
        )


def _chain_named(
    chains: Mapping[int, _Chain], elsewhere: Iterable[int], name: str
) -> _Chain | None:
    """The chain of incident `name`: its own aggregate's, else one stored elsewhere (the last)."""
    chain = chains.get(incident_key(name))
    if chain is not None and chain.incident_id == name:
        return chain
    found = None
    for key in elsewhere:
        if chains[key].incident_id == name:
            found = chains[key]
    return found


class ChainHeads(Mapping[str, Anchor]):
    """Each incident's head — its last position and that position's hash — read from the
    verifier's chains when asked, not copied into a second mapping of every incident."""

    def __init__(self, chains: Mapping[int, _Chain], elsewhere: Mapping[int, None]) -> None:
        self._chains = chains
        self._elsewhere = elsewhere
        self._length: int | None = None

    def __getitem__(self, incident_id: str) -> Anchor:
        chain = _chain_named(self._chains, self._elsewhere, incident_id)
        if chain is None:
            raise KeyError(incident_id)
        kept = chain.hash
        return Anchor(chain.next_position - 1, "" if kept is None else _unpacked(kept))

    def __iter__(self) -> Iterator[str]:
        moved: set[str] = set()
        for key, chain in self._chains.items():
            name = chain.incident_id
            if name is None:
                continue
            if key in self._elsewhere:  # named once: by its own aggregate if that has it
                own = self._chains.get(incident_key(name))
                if (own is not None and own.incident_id == name) or name in moved:
                    continue
                moved.add(name)
            yield name

    def __len__(self) -> int:
        if self._length is None:
            self._length = sum(1 for _ in self)
        return self._length


def _span(first: int, last: int) -> str:
    return str(first) if first == last else f"{first}–{last}"


def verify_chain(events: Iterable[IncidentEvent]) -> list[Difference]:
    """Differences in one incident's events given in position order (no receipts checked)."""
    verifier = ChainVerifier(receipts=False)
    for event in events:
        verifier.incident_event(
            incident_key(event.incident_id), event.position, event, notification_id=0
        )
    verifier.finish()
    return verifier.differences
