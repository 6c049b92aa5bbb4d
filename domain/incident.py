"""The Incident aggregate: the only writer of an incident's history.

Public command methods check the rules and raise a `Rejection`; the events' `apply` only
assigns state, so replaying history never re-runs checks.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.domain import Aggregate

from slatrail.domain.contracts import Contracts
from slatrail.domain.durations import format_duration
from slatrail.domain.errors import (
    AlreadyReportedError,
    FromTheFutureError,
    InvalidFieldError,
    OutOfOrderError,
    TransitionNotAllowedError,
    UnknownCustomerError,
)
from slatrail.domain.lifecycle import check_transition, next_state, replay_lifecycle
from slatrail.domain.model import (
    GENESIS_HASH,
    EventType,
    IncidentEvent,
    State,
    chain_fields,
    chain_hash,
    format_instant,
    incident_uuid,
    parse_instant,
)

MAX_CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class Fact:
    """What a publisher says happened: one validated message, ready to be recorded."""

    type: EventType
    incident_id: str
    occurred_at: datetime
    actor: str
    source: str | None
    message_id: str
    data: Mapping[str, Any]
    redrive: str | None = None  # the dead letter it is redriven from (`slatrail redrive`)
    traceparent: str | None = None  # the W3C trace context it came with (not hashed)


def _check_not_future(fact: Fact, now: datetime) -> None:
    if fact.occurred_at > now + MAX_CLOCK_SKEW:
        raise FromTheFutureError(
            f"occurred_at {format_instant(fact.occurred_at)} is more than 5 minutes ahead of "
            f"the receiver's clock ({format_instant(now)})",
            incident_id=fact.incident_id,
        )


def _check_impact_start(fact: Fact, max_lead_s: int) -> None:
    """`impact_started_at` at most `limits.max_impact_lead` before the report (decisions.md): an
    impact start decades back would zero every month's availability since then."""
    text = fact.data.get("impact_started_at")
    if text is None:
        return
    started = parse_instant(str(text))
    earliest = fact.occurred_at - timedelta(seconds=max_lead_s)
    if started < earliest:
        raise InvalidFieldError(
            f"data.impact_started_at: {format_instant(started)} is more than "
            f"limits.max_impact_lead ({format_duration(max_lead_s)}) before the report "
            f"({format_instant(fact.occurred_at)}); the earliest allowed is "
            f"{format_instant(earliest)}",
            incident_id=fact.incident_id,
        )


class Incident(Aggregate):
    # Stored topics are names in the record, not import paths: they stay what the first stores
    # recorded, wherever the code lives (docs/architecture.md, *Stored topics*).
    TOPIC = "domain.incident:Incident"

    class Event(Aggregate.Event):
        incident_id: str
        occurred_at: datetime
        actor: str
        source: str | None
        message_id: str
        data: dict[str, Any]
        prev_hash: str
        hash: str
        # Last, with a default: events stored before the field existed decode with None.
        redrive: str | None = None
        traceparent: str | None = None

        type_name: ClassVar[EventType]

        def apply(self, aggregate: Incident) -> None:
            aggregate._evolve(self)

        def to_record(self) -> IncidentEvent:
            return record_of_state(self.__dict__, self.originator_version, self.type_name)

    class Created(Event, Aggregate.Created):  # eventsourcing's default; incidents begin Reported
        TOPIC = "domain.incident:Incident.Created"

    class Reported(Event, Aggregate.Created):
        type_name = EventType.REPORTED
        TOPIC = "domain.incident:Incident.Reported"

    class Triaged(Event):
        type_name = EventType.TRIAGED
        TOPIC = "domain.incident:Incident.Triaged"

    class PriorityChanged(Event):
        type_name = EventType.PRIORITY_CHANGED
        TOPIC = "domain.incident:Incident.PriorityChanged"

    class Acknowledged(Event):
        type_name = EventType.ACKNOWLEDGED
        TOPIC = "domain.incident:Incident.Acknowledged"

    class AwaitingCustomer(Event):
        type_name = EventType.AWAITING_CUSTOMER
        TOPIC = "domain.incident:Incident.AwaitingCustomer"

    class CustomerResponded(Event):
        type_name = EventType.CUSTOMER_RESPONDED
        TOPIC = "domain.incident:Incident.CustomerResponded"

    class WorkaroundProvided(Event):
        type_name = EventType.WORKAROUND_PROVIDED
        TOPIC = "domain.incident:Incident.WorkaroundProvided"

    class Escalated(Event):
        type_name = EventType.ESCALATED
        TOPIC = "domain.incident:Incident.Escalated"

    class Resolved(Event):
        type_name = EventType.RESOLVED
        TOPIC = "domain.incident:Incident.Resolved"

    class Reopened(Event):
        type_name = EventType.REOPENED
        TOPIC = "domain.incident:Incident.Reopened"

    class PostmortemPublished(Event):
        type_name = EventType.POSTMORTEM_PUBLISHED
        TOPIC = "domain.incident:Incident.PostmortemPublished"

    def __init__(self) -> None:
        self.incident_id = ""
        self.customer = ""
        self.state = State.OPEN
        self.acknowledged = False
        self.last_occurred_at: datetime | None = None
        self.head_hash = GENESIS_HASH
        self.message_ids: set[str] = set()
        self.reported_at: datetime | None = None
        self.impact_started_at: datetime | None = None
        # (occurred_at, position, type) of every event, in occurred order (ties: position)
        self.happened: list[tuple[datetime, int, EventType]] = []

    @staticmethod
    def create_id(incident_id: str) -> UUID:
        return incident_uuid(incident_id)

    @classmethod
    def report(cls, fact: Fact, *, contracts: Contracts, now: datetime) -> Incident:
        """Open a new incident from its `reported` fact."""
        if fact.type is not EventType.REPORTED:
            raise ValueError("Incident.report needs a reported fact")
        _check_not_future(fact, now)
        _check_impact_start(fact, contracts.max_impact_lead_s)
        customer = str(fact.data["customer"])
        if contracts.customer(customer) is None:
            raise UnknownCustomerError(
                f"customer {customer!r} is not in the contracts ({contracts.source})",
                incident_id=fact.incident_id,
            )
        fields = _chained(fact, position=cls.INITIAL_VERSION, now=now, prev_hash=GENESIS_HASH)
        return cls._create(cls.Reported, id=incident_uuid(fact.incident_id), **fields)

    def record(self, fact: Fact, *, now: datetime) -> None:
        """Record any later fact of this incident, if the lifecycle allows it now."""
        if fact.type is EventType.REPORTED:
            raise AlreadyReportedError(
                f"incident {self.incident_id!r} was already reported", incident_id=self.incident_id
            )
        _check_not_future(fact, now)
        if self.last_occurred_at is not None and fact.occurred_at < self.last_occurred_at:
            self._check_late(fact)
        else:
            check_transition(
                self.state, fact.type, acknowledged=self.acknowledged, incident_id=self.incident_id
            )
        if fact.type is EventType.RESOLVED:
            self._check_restoration(fact)
        fields = _chained(fact, position=self.version + 1, now=now, prev_hash=self.head_hash)
        self.trigger_event(EVENT_CLASSES[fact.type], **fields)

    def _check_late(self, fact: Fact) -> None:
        """A late fact (earlier than the latest event) is accepted when the incident's events in
        occurred order, with it inserted at its time (after any at the same instant), still
        form a valid lifecycle (reference/wire.md, *Late facts*); else `out_of_order` naming
        the rule it would break."""
        late = format_instant(fact.occurred_at)
        latest = format_instant(self.last_occurred_at or fact.occurred_at)
        if self.reported_at is not None and fact.occurred_at < self.reported_at:
            raise OutOfOrderError(
                f"occurred_at {late} is earlier than the incident's report "
                f"({format_instant(self.reported_at)}): nothing happens to an incident before "
                "it is reported",
                incident_id=self.incident_id,
            )
        ordered = _with_inserted(self.happened, (fact.occurred_at, self.version + 1, fact.type))
        try:
            replay_lifecycle(ordered, incident_id=self.incident_id)
        except TransitionNotAllowedError as broken:
            raise OutOfOrderError(
                f"occurred_at {late} is earlier than the incident's latest event ({latest}); "
                f"inserted there, the events in occurred order break the lifecycle: {broken}",
                incident_id=self.incident_id,
            ) from None

    def _check_restoration(self, fact: Fact) -> None:
        """`service_restored_at` not before the impact start nor the report (decisions.md, Bounds):
        an earlier one would shrink or wipe the outage's downtime."""
        text = fact.data.get("service_restored_at")
        if text is None or self.reported_at is None:
            return
        restored = parse_instant(str(text))
        start = self.impact_started_at
        if start is not None and restored < start:
            bound = f"the incident's impact start ({format_instant(start)})"
        elif restored < self.reported_at:
            bound = f"the incident's report ({format_instant(self.reported_at)})"
        else:
            return
        raise InvalidFieldError(
            f"data.service_restored_at: {format_instant(restored)} is before {bound}; it must "
            "not be earlier than the impact start nor the report",
            incident_id=self.incident_id,
        )

    def _evolve(self, event: Incident.Event) -> None:
        kind = event.type_name
        if kind is EventType.REPORTED:
            self.incident_id = event.incident_id
            self.customer = str(event.data["customer"])
            self.reported_at = event.occurred_at
            impact = event.data.get("impact_started_at")
            self.impact_started_at = parse_instant(str(impact)) if impact else None
        entry = (event.occurred_at, event.originator_version, kind)
        if self.last_occurred_at is None or event.occurred_at >= self.last_occurred_at:
            self.happened.append(entry)
            self.state = next_state(self.state, kind)
            if kind is EventType.ACKNOWLEDGED:
                self.acknowledged = True
            self.last_occurred_at = event.occurred_at
        else:  # a late fact: the state is the one its place in time leads to
            self.happened = _with_inserted(self.happened, entry)
            self.state, self.acknowledged = replay_lifecycle(self.happened)
        self.head_hash = event.hash
        self.message_ids.add(event.message_id)


EVENT_CLASSES: dict[EventType, type[Incident.Event]] = {
    cls.type_name: cls
    for cls in (
        Incident.Reported,
        Incident.Triaged,
        Incident.PriorityChanged,
        Incident.Acknowledged,
        Incident.AwaitingCustomer,
        Incident.CustomerResponded,
        Incident.WorkaroundProvided,
        Incident.Escalated,
        Incident.Resolved,
        Incident.Reopened,
        Incident.PostmortemPublished,
    )
}


def _with_inserted(
    happened: list[tuple[datetime, int, EventType]], entry: tuple[datetime, int, EventType]
) -> list[tuple[datetime, int, EventType]]:
    at = bisect.bisect_right(happened, entry[:2], key=lambda item: item[:2])
    return [*happened[:at], entry, *happened[at:]]


def _chained(fact: Fact, *, position: int, now: datetime, prev_hash: str) -> dict[str, Any]:
    """Event attributes for `fact`, including the hash chaining it to `prev_hash`."""
    data = dict(fact.data)
    fields = chain_fields(
        incident_id=fact.incident_id,
        position=position,
        type=fact.type,
        occurred_at=fact.occurred_at,
        recorded_at=now,
        actor=fact.actor,
        source=fact.source,
        message_id=fact.message_id,
        data=data,
        redrive=fact.redrive,
    )
    out: dict[str, Any] = {
        "timestamp": now,
        "incident_id": fact.incident_id,
        "occurred_at": fact.occurred_at,
        "actor": fact.actor,
        "source": fact.source,
        "message_id": fact.message_id,
        "data": data,
        "prev_hash": prev_hash,
        "hash": chain_hash(prev_hash, fields),
    }
    if fact.redrive is not None:
        out["redrive"] = fact.redrive
    if fact.traceparent is not None:
        out["traceparent"] = fact.traceparent
    return out


def record_of_state(state: Mapping[str, Any], position: int, type_name: EventType) -> IncidentEvent:
    """The record the projections fold, from an incident event's fields as stored (its state
    decoded by the mapper: the event's attributes, `timestamp` the recording instant;
    `redrive` and `traceparent` absent from events stored before they existed). What
    `Event.to_record` gives, without building the event (the read side decodes rows straight
    into records: `SlatrailApplication.histories_of`, `slatrail verify`)."""
    return IncidentEvent(
        incident_id=state["incident_id"],
        position=position,
        type=type_name,
        occurred_at=state["occurred_at"],
        recorded_at=state["timestamp"],
        actor=state["actor"],
        source=state["source"],
        message_id=state["message_id"],
        data=state["data"],
        prev_hash=state["prev_hash"],
        hash=state["hash"],
        redrive=state.get("redrive"),
        traceparent=state.get("traceparent"),
    )
