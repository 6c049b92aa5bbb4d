"""The `slatrail.incident/v1` message: one pydantic model per event type (SPEC §3).

Unknown fields are rejected everywhere; timestamps must carry an offset.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    StrictBool,
    StringConstraints,
    TypeAdapter,
    field_validator,
    model_validator,
)

from domain.model import Cause, EventType, Priority, format_instant

SCHEMA = "slatrail.incident/v1"
MAX_MESSAGE_BYTES = 1024 * 1024

Text = Annotated[str, StringConstraints(min_length=1)]

# RFC 3339 date-time; the offset is optional here only so that a naive timestamp gets its own
# code (`naive_timestamp`) from the AwareDatetime check that follows.
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})?$")


def _rfc3339_text(value: object) -> object:
    """Only RFC 3339 strings are timestamps (pydantic alone would take "1772442000")."""
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise ValueError("must be an RFC 3339 timestamp with an offset, e.g. 2026-10-31T23:59:59Z")
    return value


Timestamp = Annotated[AwareDatetime, Strict(False), BeforeValidator(_rfc3339_text)]


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
    customer: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    title: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    priority: Priority
    channel: Literal["ticket", "email", "im", "phone", "portal"] = "ticket"
    outage: StrictBool = False
    impact_started_at: Timestamp | None = None
    description: str | None = None


class TriagedData(_Strict):
    priority: Priority
    reason: str | None = None


class PriorityChangedData(_Strict):
    priority: Priority
    reason: Text


class AcknowledgedData(_Strict):
    note: str | None = None


class AwaitingCustomerData(_Strict):
    reason: Text


class CustomerRespondedData(_Strict):
    note: str | None = None


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
    action_items: list[str]
    url: str | None = None


IncidentId = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")
]


class _Message(_Strict):
    schema_: Literal["slatrail.incident/v1"] = Field(alias="schema")
    message_id: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    incident_id: IncidentId
    occurred_at: Timestamp
    actor: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    source: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None

    @field_validator("occurred_at")
    @classmethod
    def _reasonable_year(cls, value: datetime) -> datetime:
        if not 1970 <= value.year <= 9998:
            raise ValueError("year out of range 1970–9998")
        return value.astimezone(UTC)  # one normal form: the instant in UTC

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
