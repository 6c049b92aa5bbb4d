"""Event relay: the event store is the outbox; every recorded event goes to `incidents.events`.

Loop: read the incident events after the relayed position (notification-log order), send each
as a `slatrail.event/v1` envelope keyed by incident_id (idempotent producer, acks=all, ordered
per partition), wait until the broker acknowledged all of them, then store the new position in
the store's database. A crash or broker outage at any point re-sends from the last stored
position: at least once, in order per incident, never skipping.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import structlog

from slatrail.consumers.projection_ports import EnvelopeEncoder, OutboxPort
from slatrail.consumers.runtime import wait_for_flush
from slatrail.consumers.streams import Outgoing, Sink

log = structlog.get_logger("slatrail.relay")


class EventRelay:
    """Worker: store notification log → `incidents.events`, position tracked after acks."""

    name = "relay"

    def __init__(
        self,
        outbox_factory: Callable[[], OutboxPort],
        sink_factory: Callable[[], Sink],
        *,
        envelopes: EnvelopeEncoder,
        topic: str,
        batch_size: int = 500,
        poll_interval_s: float = 0.02,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.outbox_factory = outbox_factory
        self.sink_factory = sink_factory
        self.envelopes = envelopes
        self.topic = topic
        self.batch_size = batch_size
        self.poll_interval_s = poll_interval_s
        self.clock = clock
        self.outbox: OutboxPort | None = None
        self.sink: Sink | None = None
        self.relayed_position: int | None = None
        self.leader = False
        self.published = 0
        self.lag: int | None = None
        self._lag_checked = 0.0
        self.last_delay_s: float | None = None
        # where the relay's time goes (docs/scale.md, "Pipeline latency"): in the health log
        self.seconds = dict.fromkeys(("read", "wait", "send", "flush", "save"), 0.0)

    # -- worker protocol ---------------------------------------------------------------

    def open(self) -> None:
        self.outbox = self.outbox_factory()
        self.sink = self.sink_factory()
        self.relayed_position = None

    def close(self) -> None:
        if self.sink is not None:
            self.sink.close()
        if self.outbox is not None:
            self.outbox.close()
        self.sink = self.outbox = None
        self.leader = False

    def stats(self) -> dict[str, Any]:
        return {
            "leader": self.leader,
            "position": self.relayed_position,
            "lag_notifications": self.lag,
            "published": self.published,
            "unacknowledged": self.sink.pending() if self.sink is not None else None,
            "last_batch_store_to_ack_s": self.last_delay_s,
            "seconds": {k: round(v, 2) for k, v in self.seconds.items()},
        }

    def step(self, stop: threading.Event) -> int:
        assert self.outbox is not None and self.sink is not None
        if not self.outbox.leadership.acquire():
            if self.leader:
                log.warning("relay_leadership_lost")
            self.leader = False
            self.relayed_position = None
            stop.wait(1.0)
            return 0
        if not self.leader:
            self.leader = True
            log.info("relay_leader", position=self.outbox.position())
        if self.relayed_position is None:
            self.relayed_position = self.outbox.position()
        self._update_lag()
        started = time.perf_counter()
        items = self.outbox.events_after(self.relayed_position, self.batch_size)
        read = time.perf_counter()
        self.seconds["read"] += read - started
        if not items:
            self.outbox.wait(self.poll_interval_s)
            self.seconds["wait"] += time.perf_counter() - read
            return 0
        for notification_id, event in items:
            self.sink.send(
                Outgoing(
                    self.topic,
                    event.incident_id.encode("utf-8"),
                    self.envelopes.encode(notification_id, event),
                    self.envelopes.headers(notification_id),
                )
            )
        sent = time.perf_counter()
        self.seconds["send"] += sent - read
        if not wait_for_flush(self.sink.flush, stop, worker=self.name, pending=self.sink.pending):
            return 0  # stopping before the acks: the next run re-sends from the stored position
        acknowledged = time.perf_counter()
        self.seconds["flush"] += acknowledged - sent
        last = items[-1][0]
        self.outbox.save(last)
        self.seconds["save"] += time.perf_counter() - acknowledged
        self.relayed_position = last
        self.published += len(items)
        self.last_delay_s = round((self.clock() - items[0][1].recorded_at).total_seconds(), 3)
        return len(items)

    def _update_lag(self) -> None:
        now = time.monotonic()
        if self.outbox is None or now - self._lag_checked < 1.0:
            return
        self._lag_checked = now
        position = self.relayed_position or 0
        # The head also counts receipts: only report a lag when an event is really waiting.
        waiting = self.outbox.events_after(position, 1)
        self.lag = max(self.outbox.head() - position, 0) if waiting else 0
