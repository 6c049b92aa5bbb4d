"""Alert timer at scale: N open incidents (default 100,000) with pending deadlines.

Measures
  * the time to (re)build the timer's queue: from events already in memory (planning only),
    from the event store (SQLite, `SlatrailApplication.all_events`, what `serve` does) and from
    the `sla` read model (`ReadModelStore.histories`);
  * the timer's memory (tracemalloc: everything the timer holds, events and heap);
  * alerts fired per second: building the alert documents when a day of deadlines comes due,
    and with JSON encoding + an in-memory sink (optionally a real broker: --kafka HOST:PORT);
  * new events applied per second (each one recomputes its incident's plan).

  * with --startup: the timer's start-up on a store of CLOSED settled incidents (default
    100,000) and OPEN open ones (default 1,000), built through the application like
    bench/scale.py: what `serve`'s alert timer does before it is ready (open the store, select
    the unsettled incidents from the incident index, load and plan them), target < 2 s; and,
    same run, the same timer planning every incident of the store (before the index).

Usage: python bench/timer.py [INCIDENTS] [--skip-store] [--kafka HOST:PORT]
       python bench/timer.py --startup [--closed N] [--open N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._data import wire_message
from slatrail.consumers.alert_scheduler import AlertTimer, encode_alert
from slatrail.consumers.streams import Outgoing
from slatrail.domain.incident import Incident
from slatrail.domain.messages import to_fact
from slatrail.domain.model import IncidentEvent
from slatrail.infra.bootstrap import read_contracts
from slatrail.infra.read_model_store import ReadModelStore
from slatrail.infra.store import open_application
from slatrail.infra.wire import decode
from slatrail.projections.read_models import SLA, TrackedEvent
from tests.memory_broker import MemoryBroker

NOW = datetime(2026, 10, 14, 10, tzinfo=UTC)  # a Wednesday
CUSTOMERS = ("acme-rtc", "brightcall", "chatnest")


def messages(index: int, rng: random.Random) -> list[dict[str, Any]]:
    """An open incident reported in the 8 hours before NOW, in one of several states."""
    incident_id = f"OPEN-{index:07d}"
    at = NOW - timedelta(minutes=rng.randint(1, 8 * 60))
    steps: list[tuple[str, dict[str, Any] | None]] = [
        ("reported", {"customer": CUSTOMERS[index % 3], "title": "calls drop",
                      "priority": rng.choice(["P1", "P2", "P3", "P4"]), "outage": index % 7 == 0}),
    ]  # fmt: skip
    if rng.random() < 0.8:
        steps.append(("triaged", {"priority": rng.choice(["P1", "P2", "P3", "P4"])}))
    if rng.random() < 0.5:
        steps.append(("acknowledged", None))
    if rng.random() < 0.2:
        steps.append(("awaiting_customer", {"reason": "logs"}))
        if rng.random() < 0.5:
            steps.append(("customer_responded", None))
    out = []
    for n, (kind, data) in enumerate(steps, start=1):
        at = min(at + timedelta(minutes=rng.randint(0, 20)), NOW)
        out.append(wire_message(incident_id, n, kind, at, data))
    return out


def generate(count: int) -> list[list[dict[str, Any]]]:
    rng = random.Random(5)
    return [messages(index, rng) for index in range(count)]


def records(incidents: list[list[dict[str, Any]]]) -> list[IncidentEvent]:
    contracts = read_contracts(None)
    out: list[IncidentEvent] = []
    for batch in incidents:
        facts = [to_fact(decode(json.dumps(m))[0]) for m in batch]
        incident = Incident.report(facts[0], contracts=contracts, now=NOW)
        for fact in facts[1:]:
            incident.record(fact, now=NOW)
        out.extend(
            e.to_record() for e in incident.collect_events() if isinstance(e, Incident.Event)
        )
    return out


def timed(label: str, action: Any) -> Any:
    gc.collect()
    started = time.perf_counter()
    result = action()
    elapsed = time.perf_counter() - started
    print(f"  {label}: {elapsed:.2f} s")
    return result, elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("incidents", nargs="?", type=int, default=100_000)
    parser.add_argument("--skip-store", action="store_true")
    parser.add_argument("--kafka", help="also produce the alerts to this broker")
    parser.add_argument("--startup", action="store_true", help="time the timer's start-up")
    parser.add_argument("--closed", type=int, default=100_000)
    parser.add_argument("--open", type=int, default=1_000)
    parser.add_argument("--keep", type=Path, help="--startup: build the store here and keep it")
    args = parser.parse_args()
    if args.startup:
        with tempfile.TemporaryDirectory() as tmp:
            startup(args.keep or Path(tmp), args.closed, args.open)
        return
    contracts = read_contracts(None)
    n = args.incidents

    print(f"generating {n:,} open incidents …")
    incidents = generate(n)
    events = records(incidents)
    print(f"  {len(events):,} events")

    print("rebuild the queue")
    timer, plan_s = timed(
        "from events in memory (plan every incident)",
        lambda: _load(AlertTimer(contracts), events),
    )
    pending = timer.pending()
    print(f"    {pending:,} pending alerts; {n / plan_s:,.0f} incidents/s")

    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_store:
            store_url = f"sqlite:///{tmp}/bench.db"
            app = open_application(store_url, contracts)
            timed("(setup) writing the store", lambda: _write_store(app, incidents))
            timed(
                "from the event store (read all events + plan)",
                lambda: _load(AlertTimer(contracts), (e for _, e in app.all_events())),
            )
            stored = [e for _, e in app.all_events()]
            app.close()
        else:
            stored = events
        read_models = ReadModelStore(f"sqlite:///{tmp}/read.db")
        tracked = [TrackedEvent("store", i, e) for i, e in enumerate(stored, start=1)]
        timed(
            "(setup) writing the read model", lambda: read_models.apply(tracked, read_models=[SLA])
        )
        timed(
            "from the sla read model (read all rows + plan)",
            lambda: _load(
                AlertTimer(contracts),
                (e for h in read_models.histories(SLA).values() for e in h),
            ),
        )
        read_models.close()

    print("memory")
    del timer
    gc.collect()
    tracemalloc.start()
    timer = _load(AlertTimer(contracts), events)
    held, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    tracked_n, in_memory = timer.tracked()
    print(
        f"  timer state: {held / 2**20:.1f} MiB for {tracked_n:,} incidents "
        f"({in_memory:,} holding events) and {timer.pending():,} pending alerts "
        f"= {held / tracked_n:,.0f} bytes per incident"
    )

    print("firing")
    horizon = NOW + timedelta(hours=24)
    fired, fire_s = timed(
        "alerts due over the next 24 h (documents)", lambda: _fire_all(timer, horizon)
    )
    print(f"    {len(fired):,} alerts, {len(fired) / fire_s:,.0f} alerts/s")
    broker = MemoryBroker(partitions=4)
    sink = broker.sink()
    _, send_s = timed("encoding + in-memory sink", lambda: _send(sink, fired))
    print(f"    {len(fired) / (fire_s + send_s):,.0f} alerts/s end to end (in memory)")
    if args.kafka:
        from slatrail.infra.kafka import KafkaClients
        from slatrail.infra.settings import Settings

        kafka_sink = KafkaClients(Settings(kafka_bootstrap=args.kafka)).sink()
        _, kafka_s = timed(
            "encoding + Kafka (acks=all, idempotent)", lambda: _send(kafka_sink, fired)
        )
        print(f"    {len(fired) / (fire_s + kafka_s):,.0f} alerts/s end to end (Kafka)")
        kafka_sink.close()

    print("applying new events")
    timer2 = _load(AlertTimer(contracts), events)
    acks = _acks(events)
    _, apply_s = timed(
        f"{len(acks):,} acknowledgements (replan each incident)",
        lambda: [timer2.apply(e, now=NOW) for e in acks],
    )
    print(f"    {len(acks) / apply_s:,.0f} events/s")


def closed_messages(index: int, rng: random.Random) -> list[dict[str, Any]]:
    """A settled incident of the two years before NOW - 10 days: resolved, its post-mortem
    published (so none pending), every event older than the timer's catch-up horizon."""
    incident_id = f"DONE-{index:07d}"
    at = NOW - timedelta(days=10) - timedelta(minutes=rng.randint(3_000, 730 * 24 * 60))
    steps: list[tuple[str, dict[str, Any] | None]] = [
        ("reported", {"customer": CUSTOMERS[index % 3], "title": "calls drop",
                      "priority": rng.choice(["P1", "P2", "P3", "P4"]), "outage": index % 7 == 0}),
        ("acknowledged", None),
        ("workaround_provided", {"description": "backup cluster"}),
        ("resolved", {"resolution": "fixed"}),
        ("postmortem_published", {"summary": "s", "root_cause": "r", "action_items": []}),
    ]  # fmt: skip
    out = []
    for n, (kind, data) in enumerate(steps, start=1):
        at += timedelta(minutes=rng.randint(1, 500))
        out.append(wire_message(incident_id, n, kind, at, data))
    return out


def build_startup_store(store: str, closed: int, opened: int) -> int:
    """The store through the application (`record`, 2,000 messages a batch, as ingest does)."""
    app = open_application(store, read_contracts(None))
    rng = random.Random(21)
    incidents = [closed_messages(i, rng) for i in range(closed)] + generate(opened)
    pending: list[Any] = []
    count = 0
    for messages_of in incidents:
        pending += [decode(json.dumps(m).encode()) for m in messages_of]
        if len(pending) >= 2000:
            count += len(pending)
            app.record(pending, now=NOW)
            pending = []
    if pending:
        count += len(pending)
        app.record(pending, now=NOW)
    app.close()
    return count


def startup(workdir: Path, closed: int, opened: int) -> None:
    """`serve`'s alert timer start-up on a store of `closed` settled and `opened` open
    incidents: open the store, select the unsettled incidents (incident index), load, plan."""
    from slatrail.application.selection import unsettled_events

    workdir.mkdir(parents=True, exist_ok=True)
    database = workdir / f"timer-{closed}-{opened}.db"
    store = f"sqlite:///{database}"
    if database.exists():
        print(f"store: {database} (kept from an earlier run)")
    else:
        started = time.perf_counter()
        events = build_startup_store(store, closed, opened)
        print(f"store: {closed:,} closed + {opened:,} open incidents, {events:,} events, "
              f"built in {time.perf_counter() - started:.0f} s")  # fmt: skip
    contracts = read_contracts(None)
    catch_up = timedelta(days=7)

    def start(select: bool) -> tuple[float, float, AlertTimer]:
        gc.collect()
        started = time.perf_counter()
        app = open_application(store, contracts, read_only=True)
        opened_s = time.perf_counter() - started
        timer = AlertTimer(contracts, catch_up=catch_up, history=app.incident_events)
        if select:
            timer.load(unsettled_events(app, since=NOW - catch_up), now=NOW)
        else:
            timer.load((e for _, e in app.all_events()), now=NOW)
        elapsed = time.perf_counter() - started
        app.close()
        return elapsed, opened_s, timer

    best = min((start(select=True) for _ in range(3)), key=lambda r: r[0])
    whole = start(select=False)
    tracked, _ = best[2].tracked()
    assert best[2].next_deadline() == whole[2].next_deadline()
    assert best[2].pending() == whole[2].pending()
    print(f"timer start-up (open store + select unsettled from the index + load + plan), "
          f"best of 3: {best[0]:.2f} s (store opened in {best[1]:.2f} s), {tracked:,} "
          f"incidents planned, {best[2].pending():,} pending alerts; target < 2 s")  # fmt: skip
    print(f"  baseline, same run: planning every incident of the store {whole[0]:.2f} s "
          f"({whole[2].tracked()[0]:,} incidents) = {whole[0] / best[0]:.1f}x the start-up; "
          f"same pending alerts and next deadline")  # fmt: skip


def _load(timer: AlertTimer, events: Any) -> AlertTimer:
    timer.load(events, now=NOW)
    return timer


def _write_store(app: Any, incidents: list[list[dict[str, Any]]]) -> None:
    batch: list[Any] = []
    for incident in incidents:
        for message in incident:
            batch.append(decode(json.dumps(message)))
        if len(batch) >= 2000:
            app.record(batch, now=NOW)
            batch = []
    if batch:
        app.record(batch, now=NOW)


def _fire_all(timer: AlertTimer, horizon: datetime) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    moment = NOW
    while (deadline := timer.next_deadline()) is not None and deadline <= horizon:
        moment = max(moment, deadline)
        out.extend(timer.due(moment))
    return out


def _send(sink: Any, documents: list[dict[str, Any]]) -> None:
    for document in documents:
        sink.send(
            Outgoing("incidents.alerts", document["incident_id"].encode(), encode_alert(document))
        )
    sink.flush(60)


def _acks(events: list[IncidentEvent]) -> list[IncidentEvent]:
    """An `acknowledged` for every incident not yet acknowledged (positions continue)."""
    last: dict[str, IncidentEvent] = {}
    acked: set[str] = set()
    for event in events:
        last[event.incident_id] = event
        if event.type == "acknowledged":
            acked.add(event.incident_id)
    out = []
    for incident_id, event in last.items():
        if incident_id in acked:
            continue
        out.append(
            IncidentEvent(
                incident_id=incident_id, position=event.position + 1,
                type=type(event.type)("acknowledged"), occurred_at=NOW, recorded_at=NOW,
                actor="bench", source=None, message_id=f"{incident_id}-ack", data={},
                prev_hash=event.hash, hash="",
            )
        )  # fmt: skip
    return out


if __name__ == "__main__":
    main()
