"""The checkpoint worker of `slatrail serve`: every `interval_s`, a new signed checkpoint of the
Merkle log, published on `incidents.checkpoints` (docs/audit.md §9, docs/streaming.md)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import structlog

from slatrail.consumers.runtime import wait_for_flush
from slatrail.consumers.streams import Outgoing, Sink

log = structlog.get_logger("slatrail.checkpoints")

Signed = tuple[str, int, bytes]
"""(origin, tree size, the encoded `slatrail.checkpoint/v1` message)."""


class CheckpointWorker:
    name = "checkpoints"

    def __init__(
        self,
        make: Callable[[], Signed],
        sink_factory: Callable[[], Sink],
        *,
        topic: str,
        interval_s: float,
        headers: tuple[tuple[str, bytes], ...] = (),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.make = make
        self.sink_factory = sink_factory
        self.topic = topic
        self.interval_s = interval_s
        self.headers = headers
        self.monotonic = monotonic
        self.sink: Sink | None = None
        self.next_at = 0.0
        self.published = 0
        self.last_size: int | None = None

    def open(self) -> None:
        self.sink = self.sink_factory()

    def close(self) -> None:
        if self.sink is not None:
            self.sink.close()
        self.sink = None

    def stats(self) -> dict[str, Any]:
        return {"published": self.published, "tree_size": self.last_size}

    def step(self, stop: threading.Event) -> int:
        assert self.sink is not None
        wait = self.next_at - self.monotonic()
        if wait > 0:
            stop.wait(min(wait, 1.0))
            return 0
        origin, size, value = self.make()
        self.sink.send(Outgoing(self.topic, origin.encode("utf-8"), value, self.headers))
        if not wait_for_flush(self.sink.flush, stop, worker=self.name, pending=self.sink.pending):
            return 0  # the checkpoint is stored; the next one is published after the restart
        self.published += 1
        self.last_size = size
        self.next_at = self.monotonic() + self.interval_s
        log.info("checkpoint_published", topic=self.topic, origin=origin, tree_size=size)
        return 1
