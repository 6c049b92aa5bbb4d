"""The web server's own read model of open incidents, fed by the event store's notification
log (like the relay): what the live board and the open-incident metrics are computed from.

It keeps each open incident's events in memory; a resolved incident leaves it, a reopened one
comes back with its whole history. `refresh()` reads only what was recorded since its last
position, so a board request never scans the store. `generation` moves whenever something was
read, which is what the board's event stream watches.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Protocol

from slatrail.domain.model import IncidentEvent

MAX_EVENTS_PER_REFRESH = 50_000


class EventLog(Protocol):
    def all_events(
        self, *, start: int = ..., page: int = ...
    ) -> Iterator[tuple[int, IncidentEvent]]: ...

    def incident_events(self, incident_id: str) -> list[IncidentEvent]: ...


class OpenIncidents:
    def __init__(self, log: EventLog) -> None:
        self.log = log
        self.position = 0  # last notification id read
        self.generation = 0
        self.loaded = False  # read up to the store's end at least once
        self._open: dict[str, list[IncidentEvent]] = {}
        self._lock = threading.Lock()  # one refresh at a time; readers take a snapshot

    def refresh(self) -> bool:
        """Read what was recorded since the last call (at most MAX_EVENTS_PER_REFRESH: call
        again until it returns False); True if anything was read."""
        with self._lock:
            opened = dict(self._open)
            read = 0
            for notification_id, event in self.log.all_events(start=self.position + 1):
                self._apply(opened, event)
                self.position = notification_id
                read += 1
                if read >= MAX_EVENTS_PER_REFRESH:
                    break
            if read:
                self._open = opened
                self.generation += 1
            if read < MAX_EVENTS_PER_REFRESH:
                self.loaded = True
            return read > 0

    def _apply(self, opened: dict[str, list[IncidentEvent]], event: IncidentEvent) -> None:
        events = opened.get(event.incident_id)
        if event.type == "reported":
            opened[event.incident_id] = [event]
        elif events is not None:
            if event.position > events[-1].position:
                opened[event.incident_id] = [*events, event]
        elif event.type == "reopened":
            opened[event.incident_id] = [
                e for e in self.log.incident_events(event.incident_id)
                if e.position <= event.position
            ]  # fmt: skip
        if event.type == "resolved":
            opened.pop(event.incident_id, None)

    def histories(self) -> list[list[IncidentEvent]]:
        """Every open incident's events (a snapshot: refreshes replace, never mutate it)."""
        return list(self._open.values())
