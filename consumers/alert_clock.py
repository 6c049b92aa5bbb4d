"""The alert timer's clocks: wall-clock time in production, simulated time in tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class TimerClock(Protocol):
    """Where the timer's `now` comes from, and how long it may block waiting for input."""

    def now(self) -> datetime: ...

    def wait_s(self, deadline: datetime | None) -> float:
        """Real seconds the timer may block polling for events before looking at `now()`
        again, given its next deadline (None: nothing scheduled)."""


class SystemClock:
    """Wall-clock time; blocks until the next deadline, at most `max_wait_s` at a time."""

    def __init__(self, max_wait_s: float = 1.0) -> None:
        self.max_wait_s = max_wait_s

    def now(self) -> datetime:
        return datetime.now(UTC)

    def wait_s(self, deadline: datetime | None) -> float:
        if deadline is None:
            return self.max_wait_s
        return min(max((deadline - self.now()).total_seconds(), 0.0), self.max_wait_s)


class ManualClock:
    """Simulated time set by the test (`set`, `advance`); never blocks."""

    def __init__(self, start: datetime) -> None:
        self.current = start

    def now(self) -> datetime:
        return self.current

    def set(self, moment: datetime) -> None:
        self.current = moment

    def advance(self, delta: timedelta) -> None:
        self.current += delta

    def wait_s(self, deadline: datetime | None) -> float:
        return 0.0
