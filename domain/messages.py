"""The `slatrail.incident/v1` message: one pydantic model per event type (docs/reference/wire.md).

Unknown fields are rejected everywhere; timestamps must carry an offset and convert to UTC
within 1970–9998; text fields hold no control characters other than tab, LF and CR
(docs/decisions.md, "Strings").
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    StrictBool,
    StringConstraints,
    TypeAdapter,
    model_validator,
)

from slatrail.domain.incident import Fact
from slatrail.domain.model import Cause, EventType, Priority, canonical_json, format_instant

SCHEMA = "slatrail.incident/v1"
MAX_MESSAGE_BYTES = 1024 * 1024

# C0 controls, DEL and C1 controls, except tab, line feed and carriage return.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _no_control_characters(value: str) -> str:
    found = _CONTROL.search(value)
    if found is not None:
        raise ValueError(
            f"must not contain control characters (U+{ord(found.group()):04X} at index "
            f"{found.start()}); only tab, line feed and carriage return are allowed"
        )
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank (empty after trimming whitespace)")
    return value


_NoControl = AfterValidator(_no_control_characters)
FreeText = Annotated[str, _NoControl]
Text = Annotated[str, StringConstraints(min_length=1), _NoControl]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200), _NoControl]
Title = Annotated[str, StringConstraints(min_length=1, max_length=500), _NoControl]
MessageId = Annotated[
    str, StringConstraints(min_length=1, max_length=128), _NoControl, AfterValidator(_not_blank)
]
Actor = Annotated[Name, AfterValidator(_not_blank)]

# RFC 3339 date-time; the offset is optional here only so that a naive timestamp gets its own
# code (`naive_timestamp`) from the AwareDatetime check that follows.
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})?$")


def _rfc3339_text(value: object) -> object:
    """Only RFC 3339 strings are timestamps (pydantic alone would take "1772442000")."""
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise ValueError("must be an RFC 3339 timestamp with an offset, e.g. 2026-10-31T23:59:59Z")
    return value


def _utc_in_range(value: datetime) -> datetime:
    """The instant in UTC, within 1970–9998 (`0001-01-01T00:00:00+14:00` has no UTC form)."""
    try:
        moment = value.astimezone(UTC)
    except (OverflowError, ValueError) as error:
        raise ValueError("year out of range 1970–9998 (cannot be converted to UTC)") from error
    if not 1970 <= moment.year <= 9998:
        raise ValueError("year out of range 1970–9998")
    return moment


Timestamp = Annotated[
    AwareDatetime, Strict(False), BeforeValidator(_rfc3339_text), AfterValidator(_utc_in_range)
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    def normalised(self) -> dict[str, Any]:
        """Normalised JSON form stored in the event (timestamps as RFC 3339 UTC)."""
        out: dict[str, Any] = {}
        for name, value in self.model_dump(mode="python", exclude_none=True).items():
            if isinstance(value, datetime):
                out[name] = format_instant(value)
            elif isinstance(value, (Priority, Cause)):
                out[name] = str(value)
            else:
                out[name] = value
        return out


class ReportedData(_Strict):
    customer: Name
    title: Title
    priority: Priority
    channel: Literal["ticket", "email", "im", "phone", "portal"] = "ticket"
    outage: StrictBool = False
    impact_started_at: Timestamp | None = None
    description: FreeText | None = None


class TriagedData(_Strict):
    priority: Priority
    reason: FreeText | None = None


class PriorityChangedData(_Strict):
    priority: Priority
    reason: Text


class AcknowledgedData(_Strict):
    note: FreeText | None = None


class AwaitingCustomerData(_Strict):
    reason: Text


class CustomerRespondedData(_Strict):
    note: FreeText | None = None


class WorkaroundProvidedData(_Strict):
    description: Text
    restores_service: StrictBool = True


class EscalatedData(_Strict):
    level: Annotated[int, Field(ge=1, le=4)]
    reason: Text


class ResolvedData(_Strict):
    resolution: Text
    cause: Cause = Cause.VENDOR
    service_restored_at: Timestamp | None = None


class ReopenedData(_Strict):
    reason: Text


class PostmortemPublishedData(_Strict):
    summary: Text
    root_cause: Text
    action_items: list[FreeText]
    url: FreeText | None = None


IncidentId = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")
]


class _Message(_Strict):
    schema_: Literal["slatrail.incident/v1"] = Field(alias="schema")
    message_id: MessageId
    incident_id: IncidentId
    occurred_at: Timestamp  # one normal form: the instant in UTC
    actor: Actor
    source: Name | None = None

    @property
    def event_type(self) -> EventType:
        return EventType(getattr(self, "type"))  # noqa: B009 - each subclass declares it

    @property
    def payload(self) -> dict[str, Any]:
        data: _Strict = getattr(self, "data")  # noqa: B009
        return data.normalised()


class Reported(_Message):
    type: Literal["reported"]
    data: ReportedData

    @model_validator(mode="after")
    def _impact_not_after_report(self) -> Reported:
        started = self.data.impact_started_at
        if started is not None and started > self.occurred_at:
            raise ValueError("data.impact_started_at must not be later than occurred_at")
        return self


class Triaged(_Message):
    type: Literal["triaged"]
    data: TriagedData


class PriorityChanged(_Message):
    type: Literal["priority_changed"]
    data: PriorityChangedData


class Acknowledged(_Message):
    type: Literal["acknowledged"]
    data: AcknowledgedData = AcknowledgedData()


class AwaitingCustomer(_Message):
    type: Literal["awaiting_customer"]
    data: AwaitingCustomerData


class CustomerResponded(_Message):
    type: Literal["customer_responded"]
    data: CustomerRespondedData = CustomerRespondedData()


class WorkaroundProvided(_Message):
    type: Literal["workaround_provided"]
    data: WorkaroundProvidedData


class Escalated(_Message):
    type: Literal["escalated"]
    data: EscalatedData


class Resolved(_Message):
    type: Literal["resolved"]
    data: ResolvedData

    @model_validator(mode="after")
    def _restored_not_after_resolution(self) -> Resolved:
        restored = self.data.service_restored_at
        if restored is not None and restored > self.occurred_at:
            raise ValueError("data.service_restored_at must not be later than occurred_at")
        return self


class Reopened(_Message):
    type: Literal["reopened"]
    data: ReopenedData


class PostmortemPublished(_Message):
    type: Literal["postmortem_published"]
    data: PostmortemPublishedData


IncidentMessage = Annotated[
    Reported
    | Triaged
    | PriorityChanged
    | Acknowledged
    | AwaitingCustomer
    | CustomerResponded
    | WorkaroundProvided
    | Escalated
    | Resolved
    | Reopened
    | PostmortemPublished,
    Field(discriminator="type"),
]

MESSAGE_ADAPTER: TypeAdapter[IncidentMessage] = TypeAdapter(IncidentMessage)


def to_fact(message: IncidentMessage) -> Fact:
    """The fact a decoded message states, as the Incident aggregate takes it."""
    return Fact(
        type=message.event_type,
        incident_id=message.incident_id,
        occurred_at=message.occurred_at,
        actor=message.actor,
        source=message.source,
        message_id=message.message_id,
        data=message.payload,
    )


def fingerprint(obj: dict[str, Any]) -> str:
    """Content identity of a message: the same message_id with another fingerprint conflicts."""
    return hashlib.sha256(canonical_json(obj)).hexdigest()
