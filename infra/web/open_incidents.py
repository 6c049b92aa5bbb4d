"""The web server's own read model of open incidents, fed by the event store's notification
log (like the relay): what the live board and the open-incident metrics are computed from.

It keeps each open incident's events in memory; a resolved incident leaves it, a reopened one
comes back with its whole history. `refresh()` reads only what was recorded since its last
position, so a board request never scans the store. `generation` moves whenever something was
read, which is what the board's event stream watches.

The first refresh starts from the store's incident index when there is one (`start`): the
open incidents' histories as of the log's head, then the log from that head on — so start-up
costs the open incidents, not the store's whole history. Events recorded while it loads are
read again from the head; applying one twice changes nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

from slatrail.domain.model import IncidentEvent

MAX_EVENTS_PER_REFRESH = 50_000


class EventLog(Protocol):
    def all_events(
        self, *, start: int = ..., page: int = ...
    ) -> Iterator[tuple[int, IncidentEvent]]: ...

    def incident_events(self, incident_id: str) -> list[IncidentEvent]: ...


# The log's head and the histories of the incidents open there (None: no index, read it all).
OpenStart = Callable[[], tuple[int, Iterable[list[IncidentEvent]]] | None]


class OpenIncidents:
    def __init__(self, log: EventLog, start: OpenStart | None = None) -> None:
        self.log = log
        self._start = start
        self.position = 0  # last notification id read
        self.generation = 0
        self.loaded = False  # read up to the store's end at least once
        self._open: dict[str, list[IncidentEvent]] = {}
        self._lock = threading.Lock()  # one refresh at a time; readers take a snapshot

    def refresh(self) -> bool:
        """Read what was recorded since the last call (at most MAX_EVENTS_PER_REFRESH: call
        again until it returns False); True if anything was read."""
        with self._lock:
            started = self._start_from_index()
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
            if read or started:
                self.generation += 1
            if read < MAX_EVENTS_PER_REFRESH:
                self.loaded = True
            return read > 0 or started

    def _start_from_index(self) -> bool:
        """On the first refresh: the open incidents from the index (True if it was used)."""
        start, self._start = self._start, None
        if start is None or self.position:
            return False
        found = start()
        if found is None:
            return False
        head, histories = found
        self._open = {events[0].incident_id: events for events in histories if events}
        self.position = head
        return True

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
