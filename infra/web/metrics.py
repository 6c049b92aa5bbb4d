"""Prometheus metrics (docs/web.md, "Metrics"), read at scrape time from what already counts:
the workers' own counters and health (`serve --http`), the open-incident board, the store.

Names follow Prometheus conventions: `slatrail_` prefix, base units (seconds), `_total` for
counters; labels never carry an incident id (only customer, metric, status, worker, partition,
code, kind).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from slatrail.consumers.runtime import WorkerState
from slatrail.consumers.streams import Outgoing
from slatrail.infra.web.board import BoardCache

APPLY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
STATES = ("starting", "running", "degraded", "stalled", "stopped")


class Instruments:
    """The counters and histograms the composition root updates as things happen."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.apply_seconds = Histogram(
            "slatrail_projection_apply_seconds",
            "Time to write one batch of events into the read models",
            buckets=APPLY_BUCKETS,
            registry=registry,
        )
        self.alerts = Counter(
            "slatrail_alerts_fired", "Alerts published to incidents.alerts, by kind",
            ["kind"], registry=registry,
        )  # fmt: skip
        self.http = Counter(
            "slatrail_http_requests", "HTTP requests answered, by route and status code",
            ["route", "status"], registry=registry,
        )  # fmt: skip

    def count_alerts(self, messages: Sequence[Outgoing], alerts_topic: str) -> None:
        for message in messages:
            if message.topic != alerts_topic:
                continue
            try:
                kind = str(json.loads(message.value).get("kind", "unknown"))
            except (ValueError, AttributeError):
                kind = "unknown"
            self.alerts.labels(kind=kind).inc()


class TimedReadModels:
    """The read-model store as the projection worker uses it, timing each `apply`."""

    def __init__(self, store: Any, histogram: Histogram) -> None:
        self._store = store
        self._histogram = histogram

    def apply(self, batch: Any, **options: Any) -> int:
        started = time.perf_counter()
        try:
            return int(self._store.apply(batch, **options))
        finally:
            self._histogram.observe(time.perf_counter() - started)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


class BoardCollector(Collector):
    """Open incidents per customer, and their clocks by customer, metric and status."""

    def __init__(self, board: BoardCache) -> None:
        self.board = board

    def collect(self) -> Iterator[Metric]:
        board = self.board.board()
        incidents = GaugeMetricFamily(
            "slatrail_open_incidents", "Open incidents, by customer", labels=["customer"]
        )
        clocks = GaugeMetricFamily(
            "slatrail_clocks", "Clocks of open incidents, by customer, metric and status",
            labels=["customer", "metric", "status"],
        )  # fmt: skip
        per_customer: dict[str, int] = {}
        per_clock: dict[tuple[str, str, str], int] = {}
        for row in board.rows:
            per_customer[row.customer] = per_customer.get(row.customer, 0) + 1
            for cell in row.clocks:
                key = (row.customer, cell.metric, cell.status)
                per_clock[key] = per_clock.get(key, 0) + 1
        for customer, n in sorted(per_customer.items()):
            incidents.add_metric([customer], n)
        for labels, n in sorted(per_clock.items()):
            clocks.add_metric(list(labels), n)
        yield incidents
        yield clocks


class WorkerCollector(Collector):
    """What `serve`'s workers count and report, read from their states and `stats()`."""

    def __init__(
        self,
        states: Sequence[WorkerState],
        relay_lag_s: Callable[[int | None], float | None] | None = None,
    ) -> None:
        self.states = states
        self.relay_lag_s = relay_lag_s

    def collect(self) -> Iterator[Metric]:
        state = GaugeMetricFamily(
            "slatrail_worker_state", "1 for each worker's current health state",
            labels=["worker", "state"],
        )  # fmt: skip
        restarts = CounterMetricFamily(
            "slatrail_worker_restarts", "Worker restarts after a failure", labels=["worker"]
        )
        processed = CounterMetricFamily(
            "slatrail_worker_processed", "Items each worker handled", labels=["worker"]
        )
        messages = CounterMetricFamily(
            "slatrail_inbound_messages", "Inbound messages by outcome", labels=["outcome"]
        )
        rejected = CounterMetricFamily(
            "slatrail_inbound_rejected", "Inbound messages rejected, by code", labels=["code"]
        )
        relayed = CounterMetricFamily(
            "slatrail_events_relayed", "Recorded events published to incidents.events"
        )
        lag = GaugeMetricFamily(
            "slatrail_consumer_lag_messages", "Messages not yet read, by worker and partition",
            labels=["worker", "topic", "partition"],
        )  # fmt: skip
        relay_lag = GaugeMetricFamily(
            "slatrail_relay_lag_seconds",
            "Age of the oldest recorded event not yet published (0 when caught up)",
        )
        for s in self.states:
            name = s.worker.name
            for candidate in STATES:
                state.add_metric([name, candidate], 1.0 if s.state == candidate else 0.0)
            restarts.add_metric([name], s.restarts)
            processed.add_metric([name], s.processed)
            try:
                stats = s.worker.stats()
            except Exception:  # a scrape never takes a worker down
                continue
            if "rejected_by_code" in stats:
                messages.add_metric(["accepted"], stats["accepted"])
                messages.add_metric(["duplicate"], stats["duplicate"])
                messages.add_metric(["rejected"], stats["rejected"])
                for code, n in stats["rejected_by_code"].items():
                    rejected.add_metric([code], n)
            if "published" in stats:
                relayed.add_metric([], stats["published"])
                if self.relay_lag_s is not None:
                    seconds = self.relay_lag_s(stats.get("position"))
                    if seconds is not None:
                        relay_lag.add_metric([], seconds)
            for (topic, partition), behind in partition_lag(s.worker):
                lag.add_metric([name, topic, str(partition)], behind)
        yield from (state, restarts, processed, messages, rejected, relayed, lag, relay_lag)


def partition_lag(worker: Any) -> Iterable[tuple[tuple[str, int], int]]:
    """Per-partition lag from a worker's Kafka consumer: the high-water mark less the position,
    both as the client last saw them (no request to the broker)."""
    consumer = getattr(getattr(worker, "source", None), "consumer", None)
    if consumer is None:
        return []
    out = []
    try:
        for tp in sorted(consumer.assignment()):
            high = consumer.highwater(tp)
            position = consumer.position(tp, timeout_ms=0)
            if high is not None and position is not None:
                out.append(((tp.topic, tp.partition), max(0, int(high) - int(position))))
    except Exception:  # the consumer is being reopened: no figure this scrape
        return []
    return out


def relay_lag_from(
    first_after: Callable[[int], datetime | None], clock: Callable[[], datetime]
) -> Callable[[int | None], float | None]:
    """Seconds since the first event after the relay's position was recorded (0: none)."""

    def lag(position: int | None) -> float | None:
        if position is None:
            return None
        recorded = first_after(position)
        return 0.0 if recorded is None else max(0.0, (clock() - recorded).total_seconds())

    return lag
