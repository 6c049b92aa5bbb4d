"""Hash chains of recorded history (docs/audit.md), as a streaming fold.

`ChainVerifier` is fed every stored record in store (notification) order and keeps, per
incident, only its chain head; so a store of any size is checked in one pass with memory in
proportion to the number of incidents. It reports every difference it finds, each naming the
incident, the position and what differs; message receipts are checked alongside
(`projections.verification.receipts`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from uuid import UUID

from slatrail.domain.model import GENESIS_HASH, EventType, IncidentEvent, incident_uuid
from slatrail.projections.verification.contract_chain import ContractChain
from slatrail.projections.verification.differences import Anchor, Difference, DifferenceKind
from slatrail.projections.verification.receipts import ReceiptCheck, ReceiptRecord


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
    contract_versions: int = 0
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
        self.contracts = ContractChain()

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
                DifferenceKind.OUT_OF_ORDER,
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
                DifferenceKind.OUT_OF_ORDER,
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
                    DifferenceKind.MISSING_POSITION,
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
                DifferenceKind.UNDECODABLE,
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
                    DifferenceKind.WRONG_AGGREGATE,
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
                DifferenceKind.FIRST_NOT_REPORTED,
                chain,
                aggregate_id,
                version,
                notification_id,
                f"{what}: an incident's history starts with its one reported event",
            )
        if chain.hash is not None and event.prev_hash != chain.hash:
            self._report(
                DifferenceKind.BROKEN_LINK,
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
                DifferenceKind.HASH_MISMATCH,
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
                DifferenceKind.ANCHOR_MISMATCH,
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
        kind: DifferenceKind,
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
