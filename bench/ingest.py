"""Ingest throughput: `slatrail ingest` of N events as a ratio to eventsourcing's own saves.

Usage: python bench/ingest.py [EVENTS] [--postgres [--durable]] [--rounds N]
       (default 100000 events, SQLite, one round)

Same run, same database engine, same machine:
- slatrail: `slatrail ingest FILE` as a whole process (start-up included), 10 messages per
  incident interleaved like a live stream; every message is decoded, checked, hash-chained,
  and stored as an incident event plus its receipt;
- batched: eventsourcing `Application.save()` of 250 new one-event aggregates per call
  (no decoding, no rules: the library's own pace on this database);
- per-save: `Application.save()` of one new aggregate per call.
Prints events/s of each and the ratios slatrail ÷ batched (target ≥ 0.5) and slatrail ÷
per-save (keep ≥ 2). `--postgres` runs on a throwaway PostgreSQL (tests/servers.py), with
fsync and synchronous commit off like the test server; `--durable` with both on, as in
production (every commit waits for the disk: what one aggregate per save pays per event).
`--rounds N` repeats the three measurements N times, each round on fresh databases, and prints
every round's ratios and their medians: on a shared machine one round's ratio moves with the
load of the moment.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._bytecode import compile_slatrail
from bench._data import jsonl

BATCH = 250


class Probe(Aggregate):
    @event("Created")
    def __init__(self, n: int, payload: str) -> None:
        self.n = n
        self.payload = payload


def library_saves(env: dict[str, str], count: int, per_save: int) -> float:
    """events/s of `Application.save()` of `per_save` new one-event aggregates per call."""
    app = Application(env={**env, "CREATE_TABLE": "y"})
    payload = "x" * 200
    started = time.perf_counter()
    for first in range(0, count, per_save):
        app.save(*(Probe(n, payload) for n in range(first, min(count, first + per_save))))
    elapsed = time.perf_counter() - started
    app.close()
    return count / elapsed


def slatrail_ingest(workdir: Path, events: int, store: str) -> tuple[float, str]:
    source = workdir / "bench.jsonl"
    source.write_text(jsonl(events))
    env = {**os.environ, "SLATRAIL_STORE": store, "SLATRAIL_LOG_LEVEL": "error"}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "slatrail.infra.cli", "ingest", str(source)],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"ingest failed ({done.returncode}): {done.stdout}{done.stderr}")
    return events / elapsed, done.stdout.strip()


@contextlib.contextmanager
def stores(
    workdir: Path, postgres: bool, durable: bool = False
) -> Iterator[tuple[str, dict[str, str], dict[str, str]]]:
    """(slatrail store URL, env of the batched baseline, env of the per-save baseline)."""
    if not postgres:
        yield (
            f"sqlite:///{workdir / 'slatrail.db'}",
            {"PERSISTENCE_MODULE": "eventsourcing.sqlite",
             "SQLITE_DBNAME": str(workdir / "batched.db")},
            {"PERSISTENCE_MODULE": "eventsourcing.sqlite",
             "SQLITE_DBNAME": str(workdir / "single.db")},
        )  # fmt: skip
        return
    from tests.servers import postgres_env_from_url, start_postgres

    with start_postgres(durable=durable) as pg:
        yield (
            pg.create_database("bench_slatrail"),
            postgres_env_from_url(pg.create_database("bench_batched")),
            postgres_env_from_url(pg.create_database("bench_single")),
        )


def one_round(
    events: int, postgres: bool, durable: bool = False
) -> tuple[float, str, float, float]:
    """(slatrail events/s, its summary, batched events/s, per-save events/s), same run."""
    single_count = min(events, 10_000)
    with tempfile.TemporaryDirectory() as tmp, stores(Path(tmp), postgres, durable) as urls:
        store, batched_env, single_env = urls
        ingest_rate, summary = slatrail_ingest(Path(tmp), events, store)
        batched = library_saves(batched_env, events, BATCH)
        single = library_saves(single_env, single_count, 1)
    return ingest_rate, summary, batched, single


def main() -> None:
    argv = sys.argv[1:]
    rounds = 1
    if "--rounds" in argv:
        at = argv.index("--rounds")
        rounds = int(argv[at + 1])
        del argv[at : at + 2]
    args = [a for a in argv if not a.startswith("--")]
    postgres = "--postgres" in argv
    durable = "--durable" in argv
    events = int(args[0]) if args else 100_000
    single_count = min(events, 10_000)
    engine = (
        ("PostgreSQL, every commit flushed" if durable else "PostgreSQL, fsync off")
        if postgres
        else "SQLite"
    )
    print(f"engine: {engine}")
    compile_slatrail()
    to_batched: list[float] = []
    to_single: list[float] = []
    for number in range(1, rounds + 1):
        ingest_rate, summary, batched, single = one_round(events, postgres, durable)
        to_batched.append(ingest_rate / batched)
        to_single.append(ingest_rate / single)
        if rounds > 1:
            print(f"round {number}:")
        print(f"slatrail ingest (whole process): {events} events, {ingest_rate:,.0f} events/s "
              f"({summary})")  # fmt: skip
        print(
            f"eventsourcing save, {BATCH} aggregates per call ({events}): {batched:,.0f} events/s"
        )
        print(
            f"eventsourcing save, one aggregate per call ({single_count}): {single:,.0f} events/s"
        )
        print(f"ratio slatrail / batched save: {to_batched[-1]:.2f} (target >= 0.5)")
        print(f"ratio slatrail / one-per-save: {to_single[-1]:.2f} (keep >= 2)")
    if rounds > 1:
        batched_median = statistics.median(to_batched)
        print(f"median of {rounds} rounds: slatrail / batched save {batched_median:.2f}, "
              f"slatrail / one-per-save {statistics.median(to_single):.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
