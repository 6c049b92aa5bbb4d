"""The alert timer runs only while its serve holds the lease (partition 0 of the lease topic)."""

from __future__ import annotations

import threading
from typing import Any

from slatrail.consumers.alert_leader import LeaderGatedTimer
from slatrail.consumers.streams import Partition, Record


class Lease:
    """A lease source whose assignment the test sets (a fake: unit tests only)."""

    def __init__(self) -> None:
        self.held: set[Partition] = set()
        self.closed = False

    def poll(self, timeout_s: float, max_records: int) -> list[Record]:
        return []

    def assignment(self) -> set[Partition]:
        return set(self.held)

    def close(self) -> None:
        self.closed = True

    def __getattr__(self, name: str) -> Any:  # the rest of `Source`, never used by the gate
        raise AttributeError(name)


class Timer:
    name = "alerts"

    def __init__(self) -> None:
        self.calls: list[str] = []

    def open(self) -> None:
        self.calls.append("open")

    def step(self, stop: threading.Event) -> int:
        self.calls.append("step")
        return 1

    def close(self) -> None:
        self.calls.append("close")

    def stats(self) -> dict[str, Any]:
        return {"pending_alerts": 0}


def test_the_timer_runs_only_while_the_lease_is_held() -> None:
    lease, timer = Lease(), Timer()
    gate = LeaderGatedTimer(timer, lease_factory=lambda: lease, lease_topic="alerts.leader")  # type: ignore[arg-type]
    stop = threading.Event()
    gate.open()
    assert gate.step(stop) == 0 and timer.calls == []  # a follower does nothing
    assert "follower" in gate.stats()["role"]
    lease.held = {("alerts.leader", 1)}  # another partition of the lease is not the lease
    assert gate.step(stop) == 0 and timer.calls == []
    lease.held = {("alerts.leader", 0), ("alerts.leader", 1)}
    assert gate.step(stop) == 1 and timer.calls == ["open", "step"]
    assert gate.stats()["role"] == "leader"
    lease.held = set()  # lost in a rebalance: the timer stops
    assert gate.step(stop) == 0 and timer.calls == ["open", "step", "close"]
    lease.held = {("alerts.leader", 0)}
    gate.step(stop)
    gate.close()
    assert timer.calls[-3:] == ["open", "step", "close"] and lease.closed
