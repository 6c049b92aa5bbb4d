"""One alert timer across several `slatrail serve` processes: a leader, with fail-over.

Every `serve` runs the `alerts` worker, but only the leader runs a timer. Leadership is a
consumer-group lease: each worker joins one group on a lease topic, and the member the broker
assigns partition 0 of it is the leader. When the leader dies (even by kill -9) the broker
evicts it after the session timeout and hands partition 0 to a survivor, whose timer then
starts as after a restart (docs/escalation.md): it loads the store, reads `incidents.alerts`
back to learn which alert keys were already published, catches up on `incidents.events` from
the shared committed offsets, and publishes what is due and not yet out. So an alert is
neither lost (the new leader fires what the old one had not) nor doubled (it skips the keys on
the topic). A leader that learns it lost the lease closes its timer.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import structlog

from slatrail.consumers.runtime import Worker
from slatrail.consumers.streams import Partition, Source

log = structlog.get_logger("slatrail.alerts")

IDLE_POLL_S = 0.5  # how long a follower waits on the lease between looks


class LeaderGatedTimer:
    """Worker (`consumers.runtime.Worker`): runs `timer` only while holding the lease."""

    name = "alerts"

    def __init__(
        self, timer: Worker, *, lease_factory: Callable[[], Source], lease_topic: str
    ) -> None:
        self.timer = timer
        self.lease_factory = lease_factory
        self.lease_partition: Partition = (lease_topic, 0)
        self.lease: Source | None = None
        self.leading = False

    def open(self) -> None:
        self.lease = self.lease_factory()

    def step(self, stop: threading.Event) -> int:
        assert self.lease is not None
        self.lease.poll(0.0 if self.leading else IDLE_POLL_S, 1)  # heartbeats, rebalances
        holds = self.lease_partition in self.lease.assignment()
        if holds and not self.leading:
            log.info("alert_timer_leader_acquired", lease=self.lease_partition[0])
            self.timer.open()
            self.leading = True
        elif not holds and self.leading:
            log.warning("alert_timer_leader_lost", lease=self.lease_partition[0])
            self.leading = False
            self.timer.close()
        return self.timer.step(stop) if self.leading else 0

    def close(self) -> None:
        if self.leading:
            self.leading = False
            self.timer.close()
        if self.lease is not None:
            self.lease.close()
            self.lease = None

    def stats(self) -> dict[str, Any]:
        if not self.leading:
            return {"role": "follower (another serve holds the alert timer's lease)"}
        return {"role": "leader", **self.timer.stats()}
