"""Which event may follow which state (reference/wire.md), and the state each event leads to."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from slatrail.domain.errors import TransitionNotAllowedError
from slatrail.domain.model import EventType, State, format_instant

_ALLOWED: dict[State, frozenset[EventType]] = {
    State.OPEN: frozenset(
        {
            EventType.TRIAGED,
            EventType.PRIORITY_CHANGED,
            EventType.ACKNOWLEDGED,
            EventType.AWAITING_CUSTOMER,
            EventType.WORKAROUND_PROVIDED,
            EventType.ESCALATED,
            EventType.RESOLVED,
        }
    ),
    State.AWAITING_CUSTOMER: frozenset(
        {
            EventType.TRIAGED,
            EventType.PRIORITY_CHANGED,
            EventType.ACKNOWLEDGED,
            EventType.CUSTOMER_RESPONDED,
            EventType.WORKAROUND_PROVIDED,
            EventType.ESCALATED,
            EventType.RESOLVED,
        }
    ),
    State.RESOLVED: frozenset({EventType.REOPENED, EventType.POSTMORTEM_PUBLISHED}),
}

_NEXT: dict[EventType, State] = {
    EventType.REPORTED: State.OPEN,
    EventType.AWAITING_CUSTOMER: State.AWAITING_CUSTOMER,
    EventType.CUSTOMER_RESPONDED: State.OPEN,
    EventType.RESOLVED: State.RESOLVED,
    EventType.REOPENED: State.OPEN,
}


def check_transition(
    state: State, event: EventType, *, acknowledged: bool, incident_id: str
) -> None:
    """Raise `TransitionNotAllowedError` when `event` may not happen in `state`."""
    if event not in _ALLOWED[state]:
        raise TransitionNotAllowedError(
            f"{event} is not allowed while the incident is {state}", incident_id=incident_id
        )
    if event is EventType.ACKNOWLEDGED and acknowledged:
        raise TransitionNotAllowedError(
            "acknowledged is not allowed: the incident was already acknowledged",
            incident_id=incident_id,
        )


def next_state(state: State, event: EventType) -> State:
    return _NEXT.get(event, state)


def replay_lifecycle(
    happened: Sequence[tuple[datetime, int, EventType]], *, incident_id: str = ""
) -> tuple[State, bool]:
    """Check a whole history in occurred order (`reported` first); return the state and whether
    it was acknowledged. Raises `TransitionNotAllowedError` naming the first broken rule and
    the event that breaks it."""
    state, acknowledged = State.OPEN, False
    for at, _, event in happened[1:]:
        try:
            check_transition(state, event, acknowledged=acknowledged, incident_id=incident_id)
        except TransitionNotAllowedError as error:
            raise TransitionNotAllowedError(
                f"{event} at {format_instant(at)}: {error}", incident_id=incident_id
            ) from None
        state = next_state(state, event)
        acknowledged = acknowledged or event is EventType.ACKNOWLEDGED
    return state, acknowledged
