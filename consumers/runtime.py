"""Running workers: one thread each, restarted after a failure, with periodic health logs.

A worker is anything with `name`, `open()`, `step(stop)`, `close()` and `stats()`:
`open` creates its clients (and may fail: the broker is down), `step` does one unit of work
(one poll batch) and returns how many items it handled, `stats` returns counters for the
health log. A worker may also have `health() -> (state, reason)` to report what only it can
see (a stalled partition, no partitions held). `slatrail serve` builds the list of workers.

Health states (docs/streaming.md): `starting` (opening, or not yet done a step since it
(re)opened), `running`, `degraded` (working, but: failed recently, holds no partitions, broker
unreachable, …), `stalled` (makes no progress on some or all of its input: failing again and
again, a partition stopped at a batch it cannot decode). Every state but `running` has a reason.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

from slatrail.consumers.streams import Source

log = structlog.get_logger("slatrail.serve")


class Worker(Protocol):
    name: str

    def open(self) -> None: ...

    def step(self, stop: threading.Event) -> int: ...

    def close(self) -> None: ...

    def stats(self) -> dict[str, Any]: ...


STATES = ("starting", "running", "degraded", "stalled")
_RANK = {state: rank for rank, state in enumerate(STATES)}


@dataclass
class WorkerState:
    worker: Worker
    state: str = "starting"
    reason: str | None = "opening its clients"
    processed: int = 0
    restarts: int = 0
    failures_in_a_row: int = 0
    last_error: str | None = None
    last_failure_at: float | None = None
    restart_in_s: float | None = None
    since: float = field(default_factory=time.monotonic)
    thread: threading.Thread | None = None

    def set(self, state: str, reason: str | None) -> None:
        self.state, self.reason = state, reason


def worst(*states: tuple[str, str | None]) -> tuple[str, str | None]:
    """The least healthy of several (state, reason) pairs (`starting` < … < `stalled`)."""
    return max(states, key=lambda pair: _RANK.get(pair[0], 0))


class Supervisor:
    """Runs each worker in its own thread until `stop()`; logs health every `interval_s`."""

    def __init__(
        self,
        workers: Sequence[Worker],
        *,
        health_interval_s: float = 10.0,
        min_backoff_s: float = 0.5,
        max_backoff_s: float = 15.0,
        stable_after_s: float = 30.0,
        recent_failure_s: float = 60.0,
        stalled_after_failures: int = 3,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.states = [WorkerState(worker) for worker in workers]
        self.health_interval_s = health_interval_s
        self.min_backoff_s = min_backoff_s
        self.max_backoff_s = max_backoff_s
        self.stable_after_s = stable_after_s
        self.recent_failure_s = recent_failure_s
        self.stalled_after_failures = stalled_after_failures
        self.clock = clock
        self.stopping = threading.Event()
        self._health: threading.Thread | None = None

    def start(self) -> None:
        for state in self.states:
            state.thread = threading.Thread(
                target=self._run, args=(state,), name=f"slatrail-{state.worker.name}", daemon=True
            )
            state.thread.start()
        if self.health_interval_s > 0:
            self._health = threading.Thread(
                target=self._health_loop, name="slatrail-health", daemon=True
            )
            self._health.start()

    def stop(self) -> None:
        self.stopping.set()

    def join(self, timeout_s: float = 30.0) -> bool:
        """Wait for every worker to finish its current step and close; False on timeout."""
        deadline = self.clock() + timeout_s
        for state in self.states:
            if state.thread is not None:
                state.thread.join(max(0.0, deadline - self.clock()))
        if self._health is not None:
            self._health.join(1.0)
        alive = [s.worker.name for s in self.states if s.thread and s.thread.is_alive()]
        if alive:
            log.warning("workers_did_not_stop", workers=alive, timeout_s=timeout_s)
        return not alive

    def _run(self, state: WorkerState) -> None:
        """Open, step until a failure, close, wait, again. The back-off doubles with every
        failure (min … max) and starts over only once the worker stayed up `stable_after_s`:
        a worker that opens fine and fails at its first batch backs off too."""
        worker = state.worker
        backoff = self.min_backoff_s
        while not self.stopping.is_set():
            opened_at: float | None = None
            try:
                if state.restarts:
                    state.set("starting", f"restart {state.restarts} after {state.last_error}")
                worker.open()
                opened_at = self.clock()
                state.restart_in_s = None
                log.info("worker_started", worker=worker.name)
                stepped = False
                while not self.stopping.is_set():
                    state.processed += worker.step(self.stopping)
                    if not stepped or state.failures_in_a_row:
                        stepped = True
                        if self.clock() - opened_at >= self.stable_after_s:
                            state.failures_in_a_row = 0
                            backoff = self.min_backoff_s
                    self._judge(state)
            except Exception as error:
                if opened_at is not None and self.clock() - opened_at >= self.stable_after_s:
                    state.failures_in_a_row = 0  # it had been fine for a while: start over
                    backoff = self.min_backoff_s
                state.restarts += 1
                state.failures_in_a_row += 1
                state.last_error = repr(error)
                state.last_failure_at = self.clock()
                state.restart_in_s = backoff
                level = (
                    "stalled"
                    if state.failures_in_a_row >= self.stalled_after_failures
                    else "degraded"
                )
                state.set(
                    level,
                    f"failed {state.failures_in_a_row} time(s) in a row, last: {error!r}; "
                    f"restarting in {backoff:g} s",
                )
                log.error(
                    "worker_failed",
                    worker=worker.name,
                    error=repr(error),
                    failures_in_a_row=state.failures_in_a_row,
                    restart_in_s=backoff,
                    exc_info=True,
                )
            finally:
                with contextlib.suppress(Exception):
                    worker.close()
            if self.stopping.wait(backoff):
                break
            backoff = min(backoff * 2, self.max_backoff_s)
        state.set("stopped", None)
        log.info("worker_stopped", worker=worker.name, processed=state.processed)

    def _judge(self, state: WorkerState) -> None:
        """State after a successful step: the worker's own view, and recent failures."""
        own: tuple[str, str | None] = ("running", None)
        health = getattr(state.worker, "health", None)
        if callable(health):
            try:
                own = health()
            except Exception as error:  # health must never take the worker down
                own = ("degraded", f"health check failed: {error!r}")
        recent: tuple[str, str | None] = ("running", None)
        if (
            state.last_failure_at is not None
            and self.clock() - state.last_failure_at < self.recent_failure_s
        ):
            ago = self.clock() - state.last_failure_at
            recent = (
                "degraded",
                f"failed {ago:.0f} s ago ({state.failures_in_a_row} in a row): {state.last_error}",
            )
        state.set(*worst(own, recent))

    def _health_loop(self) -> None:
        last = {id(s): (self.clock(), s.processed) for s in self.states}
        while not self.stopping.wait(self.health_interval_s):
            for state in self.states:
                then, count = last[id(state)]
                now = self.clock()
                rate = (state.processed - count) / max(now - then, 1e-9)
                last[id(state)] = (now, state.processed)
                log.info("health", **health_fields(state, rate))


def health_fields(state: WorkerState, rate_per_s: float) -> dict[str, Any]:
    """The supervisor's view of a worker plus the worker's own `stats()`; a stats key that
    would shadow one of the supervisor's is kept as `worker_<key>` (never a crash)."""
    fields: dict[str, Any] = {
        "worker": state.worker.name,
        "state": state.state,
        "reason": state.reason,
        "processed": state.processed,
        "rate_per_s": round(rate_per_s, 1),
        "restarts": state.restarts,
        "failures_in_a_row": state.failures_in_a_row,
        "restart_in_s": state.restart_in_s,
        "last_error": state.last_error,
    }
    try:
        extra = state.worker.stats()
    except Exception as error:  # stats must never take the service down
        extra = {"stats_error": repr(error)}
    for key, value in extra.items():
        fields[f"worker_{key}" if key in fields or key == "event" else key] = value
    return fields


class BrokerWatch:
    """Turns a consumer's heartbeat silence into `broker_unreachable` / `..._again` logs."""

    def __init__(self, worker: str, *, threshold_s: float = 6.0, every_s: float = 5.0) -> None:
        self.worker = worker
        self.threshold_s = threshold_s
        self.every_s = every_s
        self.silence_s: float | None = None
        self.down_since: float | None = None
        self._warned = 0.0
        self._checked = 0.0

    def due(self) -> bool:
        """True about once a second (reading client metrics is not free)."""
        now = time.monotonic()
        if now - self._checked < 1.0:
            return False
        self._checked = now
        return True

    def observe(self, silence_s: float | None) -> None:
        self.silence_s = None if silence_s is None else round(silence_s, 1)
        now = time.monotonic()
        if silence_s is not None and silence_s >= self.threshold_s:
            if self.down_since is None:
                self.down_since = now - silence_s
            if now - self._warned >= self.every_s:
                self._warned = now
                log.warning("broker_unreachable", worker=self.worker, silent_s=round(silence_s, 1))
        elif self.down_since is not None:
            log.info(
                "broker_reachable_again", worker=self.worker, down_s=round(now - self.down_since, 1)
            )
            self.down_since = None


def wait_for_flush(
    flush: Callable[[float], None],
    stop: threading.Event,
    *,
    worker: str,
    pending: Callable[[], int],
    warn_after_s: float = 5.0,
    give_up_on_stop: bool = True,
) -> bool:
    """Flush until acknowledged; logs `broker_unreachable` every few seconds while waiting.

    Returns False if `stop` was set before everything was acknowledged (the caller must then
    not record progress). Delivery errors propagate.
    """
    started = time.monotonic()
    warned_at = started
    while True:
        try:
            flush(1.0)
        except TimeoutError:
            now = time.monotonic()
            if now - warned_at >= warn_after_s:
                warned_at = now
                log.warning(
                    "broker_unreachable",
                    worker=worker,
                    waiting_s=round(now - started, 1),
                    pending=pending(),
                )
            if give_up_on_stop and stop.is_set():
                return False
            continue
        if time.monotonic() - started >= warn_after_s:
            log.info(
                "broker_reachable_again",
                worker=worker,
                waited_s=round(time.monotonic() - started, 1),
            )
        return True


JOIN_GRACE_S = 30.0
"""A consumer holding no partitions this long after it opened is `degraded`, not `starting`."""


def consumer_health(
    source: Source | None, watch: BrokerWatch, opened_at: float
) -> tuple[str, str | None]:
    """The health of a group consumer as only it can see it (see `Supervisor`)."""
    if source is None:
        return ("starting", "opening its clients")
    stalled = source.stalled()
    if stalled:
        parts = "; ".join(
            f"{s.topic}:{s.partition} stopped at offset {s.offset}: {s.error}"
            for _, s in sorted(stalled.items())
        )
        return ("stalled", f"cannot decode a batch: {parts}")
    if watch.down_since is not None:
        return ("degraded", f"broker unreachable for {watch.silence_s} s")
    if not source.assignment():
        if time.monotonic() - opened_at < JOIN_GRACE_S:
            return ("starting", "joining the consumer group")
        return ("degraded", "holds no partitions (more consumers than partitions?)")
    return ("running", None)


class Backoff:
    """Delays before restarting something that failed: min, 2 × min, … max; back to min once
    it stayed up `stable_after_s` (so a crash loop slows down, a rare failure restarts fast)."""

    def __init__(self, min_s: float, max_s: float, stable_after_s: float = 30.0) -> None:
        self.min_s, self.max_s, self.stable_after_s = min_s, max_s, stable_after_s
        self.next_s = min_s

    def failed(self, up_s: float) -> float:
        """The delay to wait now, after a run that lasted `up_s` seconds."""
        if up_s >= self.stable_after_s:
            self.next_s = self.min_s
        delay = self.next_s
        self.next_s = min(self.next_s * 2, self.max_s)
        return delay
