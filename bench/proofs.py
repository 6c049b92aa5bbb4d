"""The Merkle log at scale: tree build and append, checkpoints, proofs, `verify --checkpoint`.

Usage: python bench/proofs.py [EVENTS]   (default 1,000,000; or SLATRAIL_BENCH_EVENTS)

Builds a SQLite store of EVENTS incident events (10 per incident, each with its message
receipt: twice as many stored records, as `bench/replay.py` does), then in this one process:

  raw          eventsourcing alone: select_notifications + mapper.to_domain_event over every
               stored record (the same-run baseline)
  build        the tree from scratch over every stored record (`MerkleLog.sync`)
  append       10,000 more events (and receipts) recorded, then the tree brought up to them
  checkpoint   `slatrail checkpoint` (tree in step, root, Ed25519 signature, stored): p50/p99
  inclusion    an inclusion proof of a random leaf against the latest size: p50/p99
  consistency  a consistency proof between a random older size and the latest: p50/p99
  log check    `verify --checkpoint`'s pass over the log (every leaf recomputed, compared)
  verify       `verify --checkpoint` as the command runs it (chains, receipts and the log)

Prints each rate as a ratio to the best of two raw runs (first and last: the machine may be
shared; target for build: >= 0.5) and each latency
(target for a proof: < 10 ms).
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.replay import NOW, build_store
from slatrail.domain.incident import Incident
from slatrail.infra.bootstrap import Container
from slatrail.infra.commands.verify import verify_with_checkpoint
from slatrail.infra.logging import configure_logging
from slatrail.infra.merkle_log import MerkleLog
from slatrail.infra.proofs import check_log, new_checkpoint
from slatrail.infra.settings import Settings
from slatrail.infra.signing import new_signer, write_signer

APPEND = 10_000
SAMPLES = 300


def raw_rate(container: Container) -> tuple[int, float]:
    app = container.app
    started = time.perf_counter()
    records, position = 0, 1
    while True:
        notifications = app.recorder.select_notifications(position, 10_000)
        if not notifications:
            break
        for notification in notifications:
            event = app.mapper.to_domain_event(notification)
            records += 1
            _ = isinstance(event, Incident.Event)
        position = notifications[-1].id + 1
    return records, time.perf_counter() - started


def append_events(url: str, count: int, first_incident: int) -> None:
    """`count` more events: whole incidents with ids after the existing ones."""
    import bench.replay as replay_bench

    original = replay_bench.incident_messages

    def shifted(index: int, rng: random.Random, base: Any) -> Any:
        return original(index + first_incident, rng, base)

    replay_bench.incident_messages = shifted  # type: ignore[assignment]
    try:
        build_store(url, count)
    finally:
        replay_bench.incident_messages = original


def latencies(run: Callable[[], object], samples: int = SAMPLES) -> tuple[float, float]:
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    cuts = statistics.quantiles(times, n=100)
    return cuts[49] * 1000, cuts[98] * 1000


def main() -> None:
    events = int(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("SLATRAIL_BENCH_EVENTS", 1e6))
    configure_logging("warning")  # no line per checkpoint made
    with tempfile.TemporaryDirectory(prefix="slatrail-bench-proofs-") as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        key = Path(tmp) / "bench.key"
        settings = Settings(store=url, signing_key=key, checkpoint_settle_s=0)
        write_signer(new_signer(settings.checkpoint_origin), key)
        print(f"building a store of {events:,} events ({2 * events:,} stored records) …")
        print(f"  built in {build_store(url, events):.0f} s")
        container = Container(settings, clock=lambda: NOW)
        tree = MerkleLog(container.app)
        rates: dict[str, float] = {}

        records, seconds = raw_rate(container)
        rates["raw (first)"] = records / seconds
        started = time.perf_counter()
        size = tree.sync()
        rates["tree build from scratch"] = size / (time.perf_counter() - started)

        container.close()
        append_events(url, APPEND, events // 10)
        container = Container(settings, clock=lambda: NOW)
        tree = MerkleLog(container.app)
        started = time.perf_counter()
        new_size = tree.sync()
        append = time.perf_counter() - started
        print(f"append {APPEND:,} events ({new_size - size:,} records): {append * 1000:.0f} ms")

        rng = random.Random(3)
        for name, run, samples in (
            ("checkpoint", lambda: new_checkpoint(container), 50),
            ("inclusion proof", lambda: tree.inclusion_proof(rng.randrange(new_size), new_size),
             SAMPLES),
            ("consistency proof",
             lambda: tree.consistency_proof(rng.randrange(1, new_size), new_size), SAMPLES),
        ):  # fmt: skip
            p50, p99 = latencies(run, samples)
            print(f"{name:<18}: p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  (target for a proof < 10 ms)")

        checkpoint = new_checkpoint(container)
        started = time.perf_counter()
        check = check_log(container, checkpoint)
        rates["verify --checkpoint, log pass"] = check.records / (time.perf_counter() - started)
        assert not check.differences, check.differences[:3]
        started = time.perf_counter()
        outcome = verify_with_checkpoint(container, checkpoint, read_models=False)
        rates["verify --checkpoint, whole"] = check.records / (time.perf_counter() - started)
        assert outcome.ok, outcome.differences[:3]
        records, seconds = raw_rate(container)
        rates["raw (last)"] = records / seconds
        container.close()
    raw = max(rates["raw (first)"], rates["raw (last)"])
    print(
        f"records/s, as a ratio to raw eventsourcing read + decode (best of the run's two, "
        f"{raw:,.0f}/s):"
    )
    for name, rate in rates.items():
        print(f"  {name:<32} {rate:>10,.0f} records/s  {rate / raw:5.2f}")
    print("target: tree build >= 0.5")


if __name__ == "__main__":
    main()
