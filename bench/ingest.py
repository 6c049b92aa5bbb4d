"""Ingest throughput: `slatrail ingest` of N events vs naive `Application.save()` per aggregate.

Usage: python bench/ingest.py [EVENTS]   (default 100000)
Prints events/s of both on SQLite files in the same temp dir, and the ratio (target ≥ 1.0).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._data import jsonl


class Probe(Aggregate):
    @event("Created")
    def __init__(self, n: int, payload: str) -> None:
        self.n = n
        self.payload = payload


def naive_saves(db: Path, count: int) -> float:
    """events/s of one `Application.save()` per new aggregate (one event each)."""
    app = Application(env={"PERSISTENCE_MODULE": "eventsourcing.sqlite",
                           "SQLITE_DBNAME": str(db), "CREATE_TABLE": "y"})  # fmt: skip
    payload = "x" * 200
    started = time.perf_counter()
    for n in range(count):
        app.save(Probe(n, payload))
    elapsed = time.perf_counter() - started
    app.close()
    return count / elapsed


def slatrail_ingest(workdir: Path, events: int) -> tuple[float, str]:
    source = workdir / "bench.jsonl"
    source.write_text(jsonl(events))
    env = {**os.environ, "SLATRAIL_STORE": f"sqlite:///{workdir / 'slatrail.db'}",
           "SLATRAIL_LOG_LEVEL": "error"}  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "slatrail.infra.cli", "ingest", str(source)],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"ingest failed ({done.returncode}): {done.stdout}{done.stderr}")
    return events / elapsed, done.stdout.strip()


def main() -> None:
    events = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        ingest_rate, summary = slatrail_ingest(workdir, events)
        baseline_count = min(events, 20_000)
        baseline = naive_saves(workdir / "naive.db", baseline_count)
    print(f"slatrail ingest: {events} events, {ingest_rate:,.0f} events/s ({summary})")
    print(f"baseline eventsourcing Application.save() one aggregate per call "
          f"({baseline_count} saves): {baseline:,.0f} events/s")  # fmt: skip
    print(f"ratio ingest/baseline: {ingest_rate / baseline:.2f} (target >= 1.0)")


if __name__ == "__main__":
    main()
