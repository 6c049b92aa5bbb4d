"""`verify` and `replay` throughput over a SQLite store, against the raw eventsourcing rate.

Usage: python bench/replay.py [EVENTS]   (default 1,000,000; or SLATRAIL_BENCH_EVENTS)

Builds a store of EVENTS incident events (10 per incident, with their message receipts: twice
as many stored records) straight through the Incident aggregate, many aggregates per
`Application.save`. Then, each phase in a fresh process (so its peak RSS is its own):

  raw     eventsourcing alone: recorder.select_notifications + mapper.to_domain_event over
          every stored record (the baseline)
  verify  `slatrail verify` without read models: every record decoded, every hash
          recomputed, chains, receipts (receipts in a second process from 200,000 records)
  replay  `slatrail replay`: every event into both read models (SQLite file next to the store)
  verify+ `slatrail verify` with both read models compared as well (their rows summarised in
          a third process)

Phases are interleaved and repeated (SLATRAIL_BENCH_ROUNDS, default 2; best of each kept),
since the machine may be shared. Prints events/s of each, the ratio to the baseline (target
>= 0.5) and peak memory per process (target < 1 GiB).
"""

from __future__ import annotations

import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._data import incident_messages
from slatrail.application.service import SlatrailApplication
from slatrail.domain.incident import Incident
from slatrail.domain.messages import fingerprint, to_fact
from slatrail.domain.receipt import MessageReceipt
from slatrail.infra.bootstrap import read_contracts
from slatrail.infra.store import open_application
from slatrail.infra.wire import decode

BASE = datetime(2026, 9, 1, tzinfo=UTC)
NOW = BASE + timedelta(days=40)  # the receiver's clock: after every generated event
PER_SAVE = 1000  # incidents per Application.save
GIB = 1024**3
ROUNDS = int(os.environ.get("SLATRAIL_BENCH_ROUNDS", "2"))


def build_store(url: str, events: int) -> float:
    """`events` incident events (10 per incident) plus their receipts; returns seconds."""
    contracts = read_contracts(None)
    app = open_application(url, contracts)
    rng = random.Random(7)
    started = time.perf_counter()
    batch: list[Any] = []
    for index in range(events // 10):
        incident: Incident | None = None
        for number, message in enumerate(incident_messages(index, rng, BASE)):
            decoded, obj = decode(json.dumps(message))
            fact = to_fact(decoded)
            if incident is None:
                incident = Incident.report(fact, contracts=contracts, now=NOW)
            else:
                incident.record(fact, now=NOW)
            batch.append(
                MessageReceipt.issue(
                    message_id=fact.message_id,
                    incident_id=fact.incident_id,
                    fingerprint=fingerprint(obj),
                    position=number + 1,
                    now=NOW,
                )
            )
        batch.append(incident)
        if len(batch) >= PER_SAVE * 11:
            app.save(*batch)
            batch = []
    if batch:
        app.save(*batch)
    app.close()
    return time.perf_counter() - started


def phase(name: str, url: str) -> dict[str, Any]:
    """Run one phase in this process; returns events, seconds and peak RSS."""
    from slatrail.infra.bootstrap import Container
    from slatrail.infra.commands.replay import replay
    from slatrail.infra.settings import Settings
    from slatrail.infra.verify import verify_store

    container = Container(Settings(store=url))
    app: SlatrailApplication = container.app
    started = time.perf_counter()
    if name == "raw":
        events = 0
        position = 1
        while True:
            notifications = app.recorder.select_notifications(position, 10_000)
            if not notifications:
                break
            for notification in notifications:
                event = app.mapper.to_domain_event(notification)
                events += isinstance(event, Incident.Event)
            position = notifications[-1].id + 1
        ok = True
    elif name == "verify":
        outcome = verify_store(container, read_models=False)
        events, ok = outcome.summary.events, outcome.ok
    elif name == "replay":
        result = replay(app, container.read_models)
        events, ok = result.events, True
    elif name == "verify+":
        outcome = verify_store(container)
        events, ok = outcome.summary.events, outcome.ok and len(outcome.read_models) == 2
    else:
        raise SystemExit(f"unknown phase {name!r}")
    seconds = time.perf_counter() - started
    container.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    helper = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # verify's worker
    return {"phase": name, "events": events, "seconds": seconds, "ok": ok, "peak": peak,
            "helper_peak": helper}  # fmt: skip


def run_phase(name: str, url: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--phase", name, url],
        capture_output=True, text=True, check=False,
        env={**os.environ, "SLATRAIL_LOG_LEVEL": "error"},
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"phase {name} failed:\n{done.stdout}{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--phase":
        print(json.dumps(phase(sys.argv[2], sys.argv[3])))
        return
    events = int(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("SLATRAIL_BENCH_EVENTS", 1e6))
    events -= events % 10
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        built = build_store(url, events)
        size = (Path(tmp) / "bench.db").stat().st_size
        print(f"store: {events:,} events of {events // 10:,} incidents (+ {events:,} receipts), "
              f"built in {built:.0f}s, {size / 2**20:,.0f} MiB")  # fmt: skip
        results: dict[str, dict[str, Any]] = {}
        for _ in range(ROUNDS):  # interleaved, best of ROUNDS: the machine may be shared
            for name in ("raw", "verify", "replay", "verify+"):
                result = run_phase(name, url)
                if name not in results or result["seconds"] < results[name]["seconds"]:
                    results[name] = result
    raw_rate = results["raw"]["events"] / results["raw"]["seconds"]
    for name, result in results.items():
        rate = result["events"] / result["seconds"]
        helper = (
            f" (+ worker {result['helper_peak'] / 2**20:.0f} MiB)" if result["helper_peak"] else ""
        )
        print(f"{name:8} {result['events']:>10,} events in {result['seconds']:7.1f}s "
              f"= {rate:>9,.0f} events/s  ratio to raw {rate / raw_rate:4.2f}  "
              f"peak RSS {result['peak'] / 2**20:5.0f} MiB{helper}  "
              f"{'ok' if result['ok'] else 'DIFFERENCES'}")  # fmt: skip
    worst = max(max(r["peak"], r["helper_peak"]) for r in results.values())
    ratios = {n: (r["events"] / r["seconds"]) / raw_rate for n, r in results.items() if n != "raw"}
    print(f"targets: verify/raw {ratios['verify']:.2f}, with read models "
          f"{ratios['verify+']:.2f} (>= 0.5); replay/raw {ratios['replay']:.2f} (>= 0.5); "
          f"peak memory per process {worst / 2**20:.0f} MiB (< {GIB / 2**20:.0f})")  # fmt: skip


if __name__ == "__main__":
    main()
