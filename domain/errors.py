"""Why a message is refused: each error carries a stable, machine-readable `code` (wire.md)."""

from __future__ import annotations


class Rejection(Exception):
    """A message refused as a whole; `code` is stable, `reason` is for people."""

    code = "rejected"

    def __init__(self, reason: str, *, incident_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.incident_id = incident_id


class InvalidMessageError(Rejection):
    """Not the wire contract; `code` is set per problem (invalid_json, unknown_field, …)."""

    def __init__(self, code: str, reason: str, *, incident_id: str | None = None) -> None:
        super().__init__(reason, incident_id=incident_id)
        self.code = code


def unprocessable_reason(error: BaseException) -> str:
    """`unprocessable` reason: the error's class and first line, no traceback."""
    detail = str(error).splitlines()[0] if str(error) else ""
    detail = detail.encode("utf-8", "backslashreplace").decode("utf-8")[:200]
    return f"slatrail could not process this message ({type(error).__name__}: {detail})"


class InvalidFieldError(Rejection):
    """A field the wire accepts but the incident or its contract bounds (e.g. a timestamp)."""

    code = "invalid_field"


class FirstEventNotReportedError(Rejection):
    code = "first_event_not_reported"


class AlreadyReportedError(Rejection):
    code = "already_reported"


class OutOfOrderError(Rejection):
    code = "out_of_order"


class FromTheFutureError(Rejection):
    code = "future_timestamp"


class TransitionNotAllowedError(Rejection):
    code = "transition_not_allowed"


class UnknownCustomerError(Rejection):
    code = "unknown_customer"


class MessageIdConflictError(Rejection):
    code = "message_id_conflict"
