"""Queries at scale: each command as a whole process, as a ratio to `slatrail --help` start-up
measured in the same run, with its peak memory.

Usage: python bench/scale.py [INCIDENTS] [--keep DIR [--build-only]]
(default 200,000 incidents; ≈6 events each, 30 customers, two years of reports, 2% still open)

--keep DIR builds the store in DIR and keeps it; a later run with the same DIR and count times
the commands on it without building again (the build of 200,000 incidents takes minutes).

Builds the store through the application (the contracts recorded as version 1, then
`SlatrailApplication.record`, 2,000 messages per batch: the same path as `slatrail ingest`,
without the JSON Lines file), then times:

  sla --customer C --state open     target < 0.5 s
  sla --incident ID                 target < 0.3 s
  report --month M --customer C     target < 1 s
  report --month M                  target < 3 s
  escalations                       target < 1 s
every one under 300 MiB peak (the process's own maximum resident set).

Then `slatrail verify` as a whole process against reading and decoding every stored record
with eventsourcing's own machinery (`recorder.select_notifications` pages and
`mapper.to_domain_event`, also a whole process, same store, same run): the ratio
read+decode ÷ verify, target ≥ 0.5 (verify at most twice the cost of just decoding the store).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._bytecode import compile_slatrail
from bench._data import wire_message
from slatrail.domain.contract_version import SINCE_EVER
from slatrail.infra.bootstrap import read_contracts, sample_contracts_text
from slatrail.infra.store import open_application
from slatrail.infra.wire import decode

START = datetime(2025, 1, 1, tzinfo=UTC)
DAYS = 730
NOW = START + timedelta(days=DAYS + 10)
CUSTOMERS = 30
BATCH = 2000
MIB = 1024 * 1024

# Runs the command given in argv and prints its wall time and the child's peak RSS (KiB).
WRAP = """
import resource, subprocess, sys, time
started = time.perf_counter()
done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
elapsed = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(elapsed, peak, done.returncode)
sys.stderr.write(done.stderr.decode()[-400:])
"""


# Reads and decodes every stored record with eventsourcing's machinery: verify's baseline.
READ_DECODE = """
import sys
from slatrail.infra.bootstrap import read_contracts
from slatrail.infra.store import open_application
app = open_application(sys.argv[1], read_contracts(None), read_only=True)
position, decoded = 1, 0
while True:
    page = app.recorder.select_notifications(position, 10_000)
    if not page:
        break
    for notification in page:
        app.mapper.to_domain_event(notification)
    decoded += len(page)
    position = page[-1].id + 1
print(decoded, file=sys.stderr)
"""


def contracts_text() -> str:
    """The shipped sample plus customers up to CUSTOMERS, cycling through its tiers."""
    text = sample_contracts_text()
    tiers = ("enterprise", "priority", "standard")
    extra = [
        f'\n[customers.cust-{n:02d}]\ntier = "{tiers[n % 3]}"\nname = "Customer {n}"\n'
        f'timezone = "Asia/Shanghai"\n'
        for n in range(CUSTOMERS - 3)
    ]
    return text + "".join(extra)


def customers() -> list[str]:
    return ["acme-rtc", "brightcall", "chatnest"] + [f"cust-{n:02d}" for n in range(CUSTOMERS - 3)]


def incident(index: int, rng: random.Random, names: list[str]) -> list[dict[str, Any]]:
    incident_id = f"SC-{index:07d}"
    at = START + timedelta(minutes=rng.randint(0, DAYS * 24 * 60))
    if at > NOW - timedelta(days=12):
        at = NOW - timedelta(days=12)
    data = {"customer": names[index % len(names)], "title": "calls drop",
            "priority": rng.choice(["P1", "P2", "P3", "P4"]), "outage": index % 7 == 0}  # fmt: skip
    steps: list[tuple[str, dict[str, Any] | None]] = [("reported", data), ("acknowledged", None)]
    if rng.random() >= 0.02:  # 2% still open
        steps += [
            ("workaround_provided", {"description": "backup cluster"}),
            ("resolved", {"resolution": "fixed"}),
            ("postmortem_published", {"summary": "s", "root_cause": "r", "action_items": []}),
        ]
        if rng.random() < 0.2:
            steps.insert(2, ("priority_changed", {"priority": "P2", "reason": "fewer users"}))
    out = []
    for n, (kind, body) in enumerate(steps, start=1):
        at += timedelta(minutes=rng.randint(1, 600))
        out.append(wire_message(incident_id, n, kind, at, body))
    return out


def build(store: str, contracts_path: Path, count: int) -> int:
    app = open_application(store, read_contracts(contracts_path))
    # as `ingest` does on a store's first use: the contracts recorded as version 1
    app.record_contracts(
        contracts_path.read_text(), source=str(contracts_path), effective_from=SINCE_EVER,
        actor="bench", reason="first use of the store", now=NOW,
    )  # fmt: skip
    rng = random.Random(12)
    names = customers()
    pending: list[Any] = []
    events = 0
    for index in range(count):
        for message in incident(index, rng, names):
            pending.append(decode(json.dumps(message).encode()))
        if len(pending) >= BATCH:
            events += len(pending)
            outcomes = app.record(pending, now=NOW)
            assert all(o.status == "accepted" for o in outcomes), outcomes[:3]
            pending = []
    if pending:
        events += len(pending)
        app.record(pending, now=NOW)
    app.close()
    return events


def timed(argv: list[str], env: dict[str, str], rounds: int = 2) -> tuple[float, float, int]:
    """(best seconds, peak MiB, exit code) of running `argv` as a whole process."""
    best = (float("inf"), 0.0, 0)
    for _ in range(rounds):
        done = subprocess.run(
            [sys.executable, "-c", WRAP, *argv], env=env, capture_output=True, text=True,
            check=True,
        )  # fmt: skip
        elapsed, peak_kib, code = done.stdout.split()
        if done.stderr.strip() and int(code) not in (0,):
            print(done.stderr.strip(), file=sys.stderr)
        if float(elapsed) < best[0]:
            best = (float(elapsed), int(peak_kib) / 1024, int(code))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description="queries at scale")
    parser.add_argument("incidents", nargs="?", type=int, default=200_000)
    parser.add_argument("--keep", type=Path, help="build the store here and keep it")
    parser.add_argument("--build-only", action="store_true", help="with --keep: only build")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.keep or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        run(workdir, args.incidents, timing=not (args.keep and args.build_only))


def run(workdir: Path, count: int, *, timing: bool) -> None:
    contracts = workdir / "contracts.toml"
    database = workdir / f"scale-{count}.db"
    if not (database.exists() and contracts.exists()):  # a kept store is only read
        contracts.write_text(contracts_text())
    store = f"sqlite:///{database}"
    if database.exists():
        print(f"store: {database} (kept from an earlier run, {count} incidents)")
    else:
        started = time.perf_counter()
        events = build(store, contracts, count)
        built = time.perf_counter() - started
        rate = events / built
        print(f"store: {count} incidents, {events} events, {CUSTOMERS} customers, "
              f"built in {built:.0f} s ({rate:,.0f} events/s through record)")  # fmt: skip
    if not timing:
        return
    compile_slatrail()
    env = {**os.environ, "SLATRAIL_STORE": store, "SLATRAIL_CONTRACTS": str(contracts),
           "SLATRAIL_LOG_LEVEL": "error"}  # fmt: skip
    cli = [sys.executable, "-m", "slatrail.infra.cli"]
    month = "2026-06"
    commands: list[tuple[str, list[str], float | None]] = [
        ("sla --customer C --state open", ["sla", "--customer", "cust-05", "--state", "open",
                                           "--as-of", "2027-01-10T00:00:00Z"], 0.5),
        ("sla --incident ID", ["sla", "--incident", f"SC-{count // 2:07d}"], 0.3),
        ("report --month M --customer C", ["report", "--month", month, "--customer",
                                           "cust-05", "--format", "json"], 1.0),
        ("report --month M", ["report", "--month", month, "--format", "json"], 3.0),
        ("escalations", ["escalations", "--as-of", "2027-01-10T00:00:00Z"], 1.0),
        ("sla --state open (all customers)", ["sla", "--state", "open", "--format", "json",
                                              "--as-of", "2027-01-10T00:00:00Z"], None),
    ]  # fmt: skip
    baseline, base_peak, _ = timed([*cli, "--help"], env, rounds=3)
    print(f"baseline `slatrail --help`: {baseline:.3f} s, {base_peak:.0f} MiB peak")
    print(f"{'command':36} {'s':>7} {'× --help':>9} {'peak MiB':>9}  target")
    for name, argv, target in commands:
        seconds, peak, code = timed([*cli, *argv], env)
        goal = f"< {target} s" if target is not None else "-"
        flag = "" if code in (0, 1) else f"  (exit {code})"
        print(f"{name:36} {seconds:7.2f} {seconds / baseline:9.1f} {peak:9.0f}  {goal}, "
              f"< 300 MiB{flag}")  # fmt: skip
    raw, raw_peak, _ = timed([sys.executable, "-c", READ_DECODE, store], env)
    verify, verify_peak, code = timed([*cli, "verify", "--format", "json"], env)
    flag = "" if code == 0 else f"  (exit {code})"
    print(f"{'read+decode (eventsourcing)':36} {raw:7.2f} {raw / baseline:9.1f} {raw_peak:9.0f}")
    print(f"{'verify':36} {verify:7.2f} {verify / baseline:9.1f} {verify_peak:9.0f}{flag}")
    print(f"verify: {raw / verify:.2f}× raw eventsourcing read+decode (target ≥ 0.5)")


if __name__ == "__main__":
    main()
