"""Bounded work for any instant (decisions.md), through the `slatrail` console script: a
business-calendar incident evaluated as of the last second the command line accepts (the end of
year 9998) answers in seconds (it did not finish in two minutes), an instant beyond it is one
usage line, and a target of 99999999 days is refused when the contracts are
loaded, on one line naming the key."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.builders import CONTRACTS_TOML, jsonl, reported_data, wire

pytestmark = pytest.mark.e2e

SLATRAIL = str(Path(sys.executable).parent / "slatrail")
END = "9998-12-31T23:59:59Z"  # the last second --as-of accepts (docs/decisions.md)
BUDGET_S = 30.0  # generous for a loaded machine (a second or two of it is the computation)


def run(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLATRAIL_")}
    started = time.monotonic()
    done = subprocess.run(
        [SLATRAIL, *args], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    return done, time.monotonic() - started


@pytest.fixture
def store(tmp_path: Path) -> tuple[str, ...]:
    """One open P3 incident of acme, on the Berlin office-hours calendar."""
    (tmp_path / "contracts.toml").write_text(CONTRACTS_TOML, encoding="utf-8")
    (tmp_path / "in.jsonl").write_text(
        jsonl(
            [
                wire(
                    "reported",
                    "2026-03-02T09:00:00Z",
                    reported_data("acme", "P3"),
                    incident_id="P3-1",
                )
            ]
        ),
        encoding="utf-8",
    )
    base = ("--store", f"sqlite:///{tmp_path}/store.db", "--contracts", "contracts.toml")
    done, _ = run(tmp_path, *base, "ingest", "in.jsonl")
    assert done.returncode == 0, done.stderr
    return base


def test_sla_as_of_the_last_accepted_second_answers_in_seconds(tmp_path: Path, store) -> None:
    done, took = run(tmp_path, *store, "sla", "--format", "json", "--as-of", END)
    assert done.returncode == 0, done.stderr
    assert took < BUDGET_S, took
    (view,) = json.loads(done.stdout)
    resolution = view["metrics"]["resolution"]
    assert resolution["status"] == "breached"
    assert resolution["due_at"] == "2026-03-06T10:30:00Z"
    # 42.5 h a week for ~7973 years, exactly: a whole number of seconds, far beyond a float's
    # integer precision in microseconds.
    assert resolution["elapsed_s"] > 5e10
    assert view["escalation_level"] == 4


@pytest.mark.parametrize(
    "command",
    [
        ("sla", "--explain", "--as-of", END),
        ("escalations", "--as-of", END),
        ("audit", "P3-1", "--as-of", END),
        ("report", "--month", "2026-03", "--as-of", END),
    ],
)
def test_every_view_as_of_the_last_accepted_second_answers_in_seconds(
    tmp_path: Path, store, command
) -> None:
    done, took = run(tmp_path, *store, *command)
    assert done.returncode == 0, done.stderr
    assert took < BUDGET_S, took
    assert "Traceback" not in done.stderr
    assert "P3-1" in done.stdout
    if "--explain" in command:
        assert "… only the first 1000 intervals shown" in done.stdout


def test_an_instant_in_year_9999_is_one_usage_line(tmp_path: Path, store) -> None:
    done, took = run(tmp_path, *store, "sla", "--as-of", "9999-12-31T23:59:59Z")
    assert done.returncode == 2, done.stderr
    assert took < BUDGET_S, took
    (line,) = done.stderr.strip().splitlines()
    assert "9999-12-31T23:59:59Z" in line and "Traceback" not in done.stderr


def test_a_contract_target_of_99999999_days_is_refused_on_one_line_naming_the_key(
    tmp_path: Path,
) -> None:
    text = CONTRACTS_TOML.replace('response = "4h"', 'response = "99999999d"', 1)
    (tmp_path / "huge.toml").write_text(text, encoding="utf-8")
    done, took = run(tmp_path, "--contracts", "huge.toml", "sla")
    assert done.returncode == 2, done.stderr
    assert took < BUDGET_S
    assert "Traceback" not in done.stderr
    (line,) = [x for x in done.stderr.splitlines() if x.startswith("slatrail: huge.toml: ")]
    assert "tiers.gold.P3.response" in line
    assert "99999999d" in line and "3660 days" in line
