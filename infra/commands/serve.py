"""`slatrail serve`: the Kafka workers, one thread each, until SIGTERM/SIGINT.

Workers (see docs/streaming.md): `inbound` (incidents.inbound → store, refusals →
incidents.rejected), `relay` (store → incidents.events), `projections` (incidents.events →
read models), `alerts` (incidents.events → the alert timer → incidents.alerts). This is where
each is wired: the builders below hand every worker its clients, codecs and clock.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import structlog
from pydantic import SecretStr

from slatrail.application.selection import unsettled_events
from slatrail.consumers.alert_clock import SystemClock, TimerClock
from slatrail.consumers.alert_leader import LeaderGatedTimer
from slatrail.consumers.alert_timer import AlertTimerWorker
from slatrail.consumers.checkpoints import CheckpointWorker
from slatrail.consumers.inbound import InboundConsumer
from slatrail.consumers.projections import ProjectionConsumer
from slatrail.consumers.relay import EventRelay
from slatrail.consumers.runtime import Backoff, Supervisor, Worker
from slatrail.consumers.streams import OnAssign, Source
from slatrail.infra.alert_drivers import CLOCK_FILE_ENV, FileClock, kafka_fired_reader
from slatrail.infra.bootstrap import CONTRACTS_CHECK_S, Container
from slatrail.infra.cloudevents import CloudEventsSink
from slatrail.infra.kafka import KafkaNotConfiguredError, quiet_kafka_logging, redact_config
from slatrail.infra.kafka_envelope import ENVELOPES, decode_envelope
from slatrail.infra.kafka_outbox import Outbox
from slatrail.infra.proofs import new_checkpoint
from slatrail.infra.redact import redact_url
from slatrail.infra.rejections import KafkaDeadLetters
from slatrail.infra.wire import decode

log = structlog.get_logger("slatrail.serve")

WorkerBuilder = Callable[[Container], Worker]


_RECORDED = threading.Event()
"""Set by the inbound consumer after each recorded batch: wakes the relay in this process."""


def build_inbound(container: Container) -> Worker:
    s, kafka = container.settings, container.kafka()
    return InboundConsumer(
        container.app,
        lambda: kafka.source([s.topic_inbound, s.topic_retry], s.group_inbound),
        kafka.sink,
        decode=decode,
        dead_letters=KafkaDeadLetters(),
        rejected_topic=s.topic_rejected,
        retry_topic=s.topic_retry,
        park_timeout_s=s.park_timeout_s,
        clock=container.clock,
        batch_size=s.kafka_batch_size,
        unreachable_after_s=_unreachable_after(container),
        on_recorded=_RECORDED.set,
    )


def _cloudevents_sink(
    container: Container, on_alert: Callable[[dict[str, Any]], None] | None = None
) -> Callable[[], CloudEventsSink]:
    """The Kafka sink, adding CloudEvents headers on incidents.events and incidents.alerts."""
    s, kafka = container.settings, container.kafka()
    return lambda: CloudEventsSink(
        kafka.sink(), events_topic=s.topic_events, alerts_topic=s.topic_alerts, on_alert=on_alert
    )


def build_relay(container: Container) -> Worker:
    s = container.settings
    app = container.app
    return EventRelay(
        lambda: Outbox(app, s.store, name=f"relay:{s.topic_events}", recorded=_RECORDED),
        _cloudevents_sink(container),
        envelopes=ENVELOPES,
        topic=s.topic_events,
        batch_size=s.kafka_batch_size,
        poll_interval_s=s.relay_poll_interval_s,
    )


def build_projections(container: Container, *, read_models: Any = None) -> Worker:
    s, kafka = container.settings, container.kafka()

    def source(on_assign: OnAssign) -> Any:
        return kafka.source([s.topic_events], s.group_projections, on_assign=on_assign)

    return ProjectionConsumer(
        container.read_models if read_models is None else read_models,
        source,
        envelopes=ENVELOPES,
        batch_size=s.kafka_batch_size,
        unreachable_after_s=_unreachable_after(container),
        contracts=lambda: container.contract_book,  # keeps the SLA ledger (docs/scale.md)
        recorded=container.app.incident_notifications,
    )


def build_alert_timer(
    container: Container,
    *,
    clock: TimerClock | None = None,
    on_alert: Callable[[dict[str, Any]], None] | None = None,
) -> Worker:
    """The alert timer (docs/escalation.md): simulated time from a file when the testing hook
    `SLATRAIL_ALERT_CLOCK_FILE` is set, else wall-clock time."""
    if clock is None:
        path = os.environ.get(CLOCK_FILE_ENV)
        clock = FileClock(Path(path)) if path else SystemClock()
    s, kafka = container.settings, container.kafka()
    app = container.app
    worker = AlertTimerWorker(
        container.live_contracts,  # follows `contracts apply` (docs/reference/contracts.md)
        source_factory=lambda: kafka.assigned_source(
            [s.topic_events], s.group_alerts, s.kafka_batch_size
        ),
        sink_factory=_cloudevents_sink(container, on_alert),
        fired_reader=kafka_fired_reader(kafka.config(), s.topic_alerts),
        decode_event=decode_envelope,
        alerts_topic=s.topic_alerts,
        clock=clock,
        history=app.incident_events,
        batch_size=s.kafka_batch_size,
    )
    # start-up plans only what may still alert, from the incident index (docs/scale.md)
    worker.store_events = lambda: unsettled_events(app, since=worker.clock.now() - worker.catch_up)
    lease = lease_topic(s.topic_alerts)

    def lease_source() -> Source:
        if s.topic_create:
            kafka.ensure_topics([lease])
        return kafka.source([lease], f"{s.group_alerts}-leader")

    # one timer across every serve process: the holder of the lease (consumers/alert_leader.py)
    return LeaderGatedTimer(worker, lease_factory=lease_source, lease_topic=lease)


def lease_topic(alerts_topic: str) -> str:
    """The alert timer's lease topic: partition 0's holder runs the timer."""
    return f"{alerts_topic}.leader"


def build_checkpoints(container: Container) -> Worker:
    """Periodic signed checkpoints of the Merkle log on `incidents.checkpoints`."""
    s, kafka = container.settings, container.kafka()

    def make() -> tuple[str, int, bytes]:
        checkpoint = new_checkpoint(container)
        message = {"schema": CHECKPOINT_SCHEMA, **checkpoint.as_json()}
        return checkpoint.origin, checkpoint.size, json.dumps(message).encode("utf-8")

    return CheckpointWorker(
        make,
        kafka.sink,
        topic=s.topic_checkpoints,
        interval_s=s.checkpoint_interval_s,
        headers=(("slatrail-schema", CHECKPOINT_SCHEMA.encode()),),
    )


CHECKPOINT_SCHEMA = "slatrail.checkpoint/v1"


def _unreachable_after(container: Container) -> float:
    """Heartbeat silence after which a consumer reports the broker unreachable."""
    return max(6.0, 2 * container.settings.kafka_heartbeat_interval_ms / 1000 + 1)


WORKER_BUILDERS: dict[str, WorkerBuilder] = {
    "inbound": build_inbound,
    "relay": build_relay,
    "projections": build_projections,
    "alerts": build_alert_timer,
    "checkpoints": build_checkpoints,
}
"""Every worker `serve` runs, by name (`checkpoints` by default only where the signing key is)."""


def default_workers(container: Container) -> list[str]:
    """All workers; the checkpoint worker only on a host holding the signing key."""
    names = list(WORKER_BUILDERS)
    if not container.settings.signing_key.is_file():
        names.remove("checkpoints")
    return names


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the Kafka workers: inbound consumer, event relay, projections, alert timer, "
        "checkpoints",
    )
    parser.add_argument(
        "--workers",
        help=f"comma-separated subset to run (default: all of {', '.join(WORKER_BUILDERS)})",
    )
    parser.add_argument("--read-model", help="read-model database URL  [SLATRAIL_READ_MODEL]")
    parser.add_argument(
        "--partitions", type=int, help="partitions of topics created  [SLATRAIL_TOPIC_PARTITIONS]"
    )
    parser.add_argument(
        "--no-create-topics", action="store_true", help="do not create missing topics"
    )
    parser.add_argument(
        "--health-interval", type=float, help="seconds between health logs (default 10)"
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--processes",
        action="store_true",
        help="one child process per worker, the default (several cores; children die with "
        "this process)  [SLATRAIL_SERVE_PROCESSES=true]",
    )
    mode.add_argument(
        "--threads",
        action="store_true",
        help="all workers as threads of this one process  [SLATRAIL_SERVE_PROCESSES=false]",
    )
    parser.add_argument(
        "--http",
        metavar="ADDR",
        help="also serve the web API, board, /metrics and /readyz on HOST:PORT (docs/web.md); "
        "the workers then run as threads of this process",
    )
    parser.set_defaults(handler=run)


def safe_url(url: str) -> str:
    return redact_url(url)  # any URL shape (a password holding / or # too)


def run(container: Container, args: argparse.Namespace) -> int:
    overrides: dict[str, Any] = {}
    if args.read_model:
        overrides["read_model"] = args.read_model
    if args.partitions:
        overrides["topic_partitions"] = args.partitions
    if args.no_create_topics:
        overrides["topic_create"] = False
    if args.health_interval is not None:
        overrides["health_interval_s"] = args.health_interval
    if args.processes:
        overrides["serve_processes"] = True
    if args.threads or args.http:
        overrides["serve_processes"] = False
    parent = os.environ.pop(CHILD_ENV, None)
    if parent is not None:
        _die_with_parent(int(parent))
        overrides["serve_processes"] = False
    if overrides:
        container.settings = container.settings.model_copy(update=overrides)
    # a recorded contract version is taken up without a restart (docs/reference/contracts.md)
    container.contracts_check_s = CONTRACTS_CHECK_S
    names = default_workers(container) if not args.workers else args.workers.split(",")
    unknown = [n for n in names if n not in WORKER_BUILDERS]
    if unknown:
        print(f"slatrail serve: unknown worker(s) {', '.join(unknown)}", file=sys.stderr)
        return 2
    kafka = container.kafka()
    try:
        config = kafka.config()
    except KafkaNotConfiguredError as error:
        print(f"slatrail serve: {error}", file=sys.stderr)
        return 2
    quiet_kafka_logging()
    sys.setswitchinterval(0.001)  # I/O threads (Kafka clients, relay) get the GIL sooner
    stop = threading.Event()
    _install_signal_handlers(stop)
    s = container.settings
    log.info(
        "serve_starting",
        workers=names,
        kafka=redact_config(config),
        store=safe_url(s.store),
        read_model=safe_url(container.read_model_url),
        topics=kafka.topics.all(),
    )
    container.app  # noqa: B018 - open the store (and the read models) before the threads
    if "projections" in names:
        container.read_models  # noqa: B018
    if s.topic_create and not _create_topics(container, stop):
        return 0
    if s.serve_processes:
        return _run_children(container, names, stop)
    web = _Http(container, args.http) if args.http else None
    builders = web.builders() if web is not None else WORKER_BUILDERS
    supervisor = Supervisor(
        [builders[name](container) for name in names],
        health_interval_s=s.health_interval_s,
    )
    if web is not None:
        web.start(supervisor, from_read_model="projections" in names)
    supervisor.start()
    while not stop.wait(0.5):
        pass
    log.info("serve_stopping")
    if web is not None:
        web.stop()
    supervisor.stop()
    clean = supervisor.join(timeout_s=30)
    log.info("serve_stopped", clean=clean)
    return 0


class _Http:
    """`serve --http ADDR`: the web application beside the workers, with their metrics (read
    from the workers' own counters at scrape time) and their health in `/readyz`."""

    def __init__(self, container: Container, listen: str) -> None:
        from prometheus_client import CollectorRegistry

        from slatrail.infra.web.metrics import Instruments
        from slatrail.infra.web.server import parse_listen

        parse_listen(listen)
        self.listen = listen
        self.settings = container.settings
        self.instruments = Instruments(CollectorRegistry())
        self.server: Any = None
        self.container: Container | None = None

    def builders(self) -> dict[str, WorkerBuilder]:
        from slatrail.infra.web.metrics import TimedReadModels

        alerts = self.instruments.alerts

        def projections(container: Container) -> Worker:
            timed = TimedReadModels(container.read_models, self.instruments.apply_seconds)
            return build_projections(container, read_models=timed)

        def alert_timer(container: Container) -> Worker:
            return build_alert_timer(
                container, on_alert=lambda body: alerts.labels(kind=str(body["kind"])).inc()
            )

        return {**WORKER_BUILDERS, "projections": projections, "alerts": alert_timer}

    def start(self, supervisor: Supervisor, *, from_read_model: bool) -> None:
        from slatrail.infra.web.app import create_app
        from slatrail.infra.web.compose import web_context
        from slatrail.infra.web.server import BackgroundServer

        # The web reads through its own connections, never the workers'.
        self.container = Container(
            self.settings, store_read_only=True, contracts_check_s=CONTRACTS_CHECK_S
        )
        context = web_context(
            self.container, from_read_model=from_read_model, workers=supervisor.states,
            instruments=self.instruments,
        )  # fmt: skip
        self.server = BackgroundServer(create_app(context), self.listen)
        self.server.start()
        log.info("http_listening", listen=self.listen)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
        if self.container is not None:
            self.container.close()


CHILD_ENV = "SLATRAIL_SERVE_CHILD_OF"


def _run_children(container: Container, names: list[str], stop: threading.Event) -> int:
    """`--processes`: one `serve --workers NAME` child per worker, restarted if it dies."""
    env = {**os.environ, **_settings_env(container), CHILD_ENV: str(os.getpid())}
    env["SLATRAIL_TOPIC_CREATE"] = "false"
    children: dict[str, subprocess.Popen[bytes]] = {}
    restart_at: dict[str, float] = {name: 0.0 for name in names}
    started_at: dict[str, float] = {}
    backoff = {name: Backoff(1.0, 15.0) for name in names}
    while not stop.is_set():
        for name in names:
            child = children.get(name)
            if child is not None and child.poll() is None:
                continue
            if child is not None:
                delay = backoff[name].failed(time.monotonic() - started_at[name])
                log.error(
                    "worker_process_exited",
                    worker=name,
                    pid=child.pid,
                    code=child.returncode,
                    restart_in_s=delay,
                )
                children.pop(name)
                restart_at[name] = time.monotonic() + delay
            if time.monotonic() >= restart_at[name]:
                argv = [
                    sys.executable,
                    "-m",
                    "slatrail.infra.cli",
                    *_child_args(sys.argv[1:], name),
                ]
                children[name] = subprocess.Popen(argv, env=env)
                started_at[name] = time.monotonic()
                log.info("worker_process_started", worker=name, pid=children[name].pid)
        stop.wait(0.5)
    log.info("serve_stopping")
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 30
    clean = True
    for child in children.values():
        try:
            child.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            clean = False
            child.kill()
    log.info("serve_stopped", clean=clean)
    return 0


def _child_args(args: list[str], worker: str) -> list[str]:
    """This command line for one worker: same options, without --processes / --workers."""
    if "serve" not in args:  # not started from the command line (e.g. main([...]) in a test)
        args = ["serve"]
    out: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg == "--workers":
            skip = True
        elif arg not in ("--processes", "--threads") and not arg.startswith("--workers="):
            out.append(arg)
    return [*out, "--workers", worker]


def _settings_env(container: Container) -> dict[str, str]:
    """The effective settings as `SLATRAIL_*` variables, for child processes."""
    env: dict[str, str] = {}
    for name, value in container.settings:
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        elif isinstance(value, bool):
            value = "true" if value else "false"
        env[f"SLATRAIL_{name.upper()}"] = str(value)
    env["SLATRAIL_READ_MODEL"] = container.read_model_url
    return env


def _die_with_parent(parent: int) -> None:
    """A `--processes` child: get SIGKILL when the parent dies (even by kill -9)."""
    with contextlib.suppress(Exception):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before prctl
        os._exit(1)


def _create_topics(container: Container, stop: threading.Event) -> bool:
    """Create missing topics, retrying while the broker is unreachable; False if stopped."""
    backoff = 1.0
    while not stop.is_set():
        try:
            container.kafka().ensure_topics()
            return True
        except Exception as error:
            log.warning("broker_unreachable", step="create_topics", error=repr(error))
        stop.wait(backoff)
        backoff = min(backoff * 2, 15.0)
    return False


def _install_signal_handlers(stop: threading.Event) -> None:
    def handle(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            return
        log.info("signal_received", signal=signal.Signals(signum).name, at=time.time())
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
