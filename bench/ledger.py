"""The SLA ledger export at scale: computed from the events, and read from the table `replay`
materialises, each a whole process, as a ratio to `slatrail --help` in the same run.

Usage: python bench/ledger.py [INCIDENTS]   (default 20,000; the store of bench/scale.py)
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.scale import build, contracts_text, timed


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        contracts = workdir / "contracts.toml"
        contracts.write_text(contracts_text())
        store = f"sqlite:///{workdir / 'scale.db'}"
        started = time.perf_counter()
        events = build(store, contracts, count)
        print(f"store: {count} incidents, {events} events, built in "
              f"{time.perf_counter() - started:.0f} s")  # fmt: skip
        env = {**os.environ, "SLATRAIL_STORE": store, "SLATRAIL_CONTRACTS": str(contracts),
               "SLATRAIL_LOG_LEVEL": "error"}  # fmt: skip
        cli = [sys.executable, "-m", "slatrail.infra.cli"]
        out = str(workdir / "ledger.parquet")
        export = ["ledger", "export", "--format", "parquet", "--output", out]
        one = [*export, "--customer", "cust-05"]
        baseline, base_peak, _ = timed([*cli, "--help"], env, rounds=3)
        print(f"baseline `slatrail --help`: {baseline:.3f} s, {base_peak:.0f} MiB peak")
        print(f"{'command':44} {'s':>7} {'× --help':>9} {'peak MiB':>9}")

        def show(name: str, argv: list[str], rounds: int = 2) -> None:
            seconds, peak, code = timed([*cli, *argv], env, rounds=rounds)
            flag = "" if code == 0 else f"  (exit {code})"
            print(f"{name:44} {seconds:7.2f} {seconds / baseline:9.1f} {peak:9.0f}{flag}")

        show("ledger export (computed from the events)", export)
        show("ledger export --customer C (computed)", one)
        show("replay (read models + ledger table)", ["replay"], rounds=1)
        show("ledger export (from the table)", export)
        show("ledger export --customer C (from the table)", one)


if __name__ == "__main__":
    main()
