"""Start-up of the single-incident commands: each as a whole process, as a ratio to
`slatrail --help` measured in the same run.

Usage: python bench/startup.py [--incidents 300] [--rounds 9] [--other-tree DIR]

Builds a small SQLite store (bench/scale.py's incidents), then runs `--help`, `sla --incident
ID`, `sla --incident ID --format json` and `audit ID` in turn, `--rounds` times, and prints the
best wall time and the best CPU time (user + system) of each: on a shared machine the CPU time
is the steadier figure. `--other-tree DIR` also times the code in DIR in the same rounds
(DIR/slatrail/{domain,…} — e.g. an older commit's folders linked there), as the baseline.
Target: `sla --incident ID` < 0.3 s.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._bytecode import compile_slatrail
from bench.scale import build, contracts_text

COMMANDS = {
    "--help": ["--help"],
    "sla --incident ID": ["sla", "--incident", "{id}"],
    "sla --incident ID --format json": ["sla", "--incident", "{id}", "--format", "json"],
    "audit ID": ["audit", "{id}"],
}


def run_once(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-m", "slatrail.infra.cli", *argv], env=env, stdout=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{argv} failed (exit {os.waitstatus_to_exitcode(status)})")
    return elapsed, usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description="single-incident command start-up")
    parser.add_argument("--incidents", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--other-tree", type=Path, help="also time the code in this tree")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        contracts = Path(tmp) / "contracts.toml"
        contracts.write_text(contracts_text())
        store = f"sqlite:///{Path(tmp) / 'store.db'}"
        build(store, contracts, args.incidents)
        compile_slatrail()
        incident = f"SC-{args.incidents // 2:07d}"
        env = {**os.environ, "SLATRAIL_STORE": store, "SLATRAIL_CONTRACTS": str(contracts),
               "SLATRAIL_LOG_LEVEL": "error"}  # fmt: skip
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: byte code cached
        trees = {"this tree": env}
        if args.other_tree:
            trees["other tree"] = {**env, "PYTHONPATH": str(args.other_tree.resolve())}
        best: dict[tuple[str, str], list[float]] = {}
        for _ in range(args.rounds + 1):  # the first round only writes the byte code
            for tree, tree_env in trees.items():
                for name, argv in COMMANDS.items():
                    wall, cpu = run_once([a.format(id=incident) for a in argv], tree_env)
                    key = (tree, name)
                    seen = best.setdefault(key, [float("inf"), float("inf")])
                    seen[0], seen[1] = min(seen[0], wall), min(seen[1], cpu)
    print(f"{args.incidents} incidents, best of {args.rounds} rounds")
    for tree in trees:
        base_wall, base_cpu = best[(tree, "--help")]
        print(f"{tree}:")
        for name in COMMANDS:
            wall, cpu = best[(tree, name)]
            print(f"  {name:32} wall {wall:6.3f} s ({wall / base_wall:4.1f}× --help)   "
                  f"cpu {cpu:6.3f} s ({cpu / base_cpu:4.1f}× --help)")  # fmt: skip


if __name__ == "__main__":
    main()
