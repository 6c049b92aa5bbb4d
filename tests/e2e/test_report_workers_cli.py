"""`slatrail report --workers N` as a user runs it: the same report as one process, the same
one-line error when a worker meets a damaged store, and a clear refusal of a bad count."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.builders import CONTRACTS_TOML, jsonl
from tests.integration.test_report_workers import EXTRA, messages

pytestmark = pytest.mark.e2e

SLATRAIL = str(Path(sys.executable).parent / "slatrail")

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def report(tmp_path: Path) -> Run:
    """Runs `slatrail report ARGS…` on a store of five customers' incidents."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLATRAIL_")}
    contracts = tmp_path / "contracts.toml"
    contracts.write_text(CONTRACTS_TOML + EXTRA, encoding="utf-8")
    source = tmp_path / "in.jsonl"
    source.write_text(jsonl(messages(120)), encoding="utf-8")
    base = [SLATRAIL, "--store", f"sqlite:///{tmp_path}/store.db", "--contracts", str(contracts)]

    def run(*args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*base, *args], cwd=tmp_path, env={**env, **extra_env}, capture_output=True,
            text=True, timeout=120, check=False,
        )  # fmt: skip

    done = run("ingest", str(source))
    assert done.returncode == 0, done.stderr
    return lambda *args, **extra_env: run(
        "report", "--month", "2026-06", "--as-of", "2026-07-03T00:00:00Z", *args, **extra_env
    )


def test_workers_give_the_report_of_one_process_byte_for_byte(report: Run) -> None:
    one = report("--format", "json", "--workers", "1")
    assert one.returncode == 0, one.stderr
    assert one.stdout.count('"customer": ') == 5
    for args, env in ((("--workers", "3"), {}), ((), {"SLATRAIL_REPORT_WORKERS": "2"}), ((), {})):
        many = report("--format", "json", *args, **env)
        assert many.returncode == 0, many.stderr
        assert many.stdout == one.stdout
    assert (
        report("--format", "csv", "--workers", "3").stdout
        == report("--format", "csv", "--workers", "1").stdout
    )


def test_a_damaged_store_is_the_same_one_line_error_with_workers(
    report: Run, tmp_path: Path
) -> None:
    with sqlite3.connect(tmp_path / "store.db") as db:
        changed = db.execute(
            "UPDATE stored_events SET state = ? WHERE topic LIKE '%AwaitingCustomer' "
            "AND originator_id IN (SELECT originator_id FROM stored_events "
            'WHERE CAST(state AS TEXT) LIKE \'%"customer":"cyan"%\')',
            (b"{not json",),
        ).rowcount
    assert changed >= 1
    one = report("--workers", "1", SLATRAIL_LOG_LEVEL="critical")
    many = report("--workers", "3", SLATRAIL_LOG_LEVEL="critical")
    assert one.returncode == many.returncode == 1
    assert many.stderr == one.stderr
    assert many.stderr.startswith("slatrail: the store is damaged: stored event ")
    assert "Traceback" not in many.stderr and many.stderr.count("\n") == 1


@pytest.mark.parametrize("count", ["0", "65", "two"])
def test_a_bad_worker_count_is_a_usage_error(report: Run, count: str) -> None:
    done = report("--workers", count)
    assert done.returncode == 2
    assert "--workers" in done.stderr and "Traceback" not in done.stderr
    setting = report(SLATRAIL_REPORT_WORKERS=count)
    assert setting.returncode == 2, setting.stderr
    assert "report_workers" in setting.stderr.lower() or "REPORT_WORKERS" in setting.stderr


def test_with_workers_the_store_is_opened_again_for_restatements_and_the_checkpoint(
    report: Run, tmp_path: Path
) -> None:
    restated = ("--format", "json", "--restated-since", "2026-06-20T00:00:00Z")
    one = report(*restated, "--workers", "1")
    many = report(*restated, "--workers", "3")
    assert one.returncode == many.returncode == 0, many.stderr
    assert many.stdout == one.stdout and '"restated": [' in many.stdout
    keys = subprocess.run(
        [SLATRAIL, "keys", "init"], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert keys.returncode == 0, keys.stderr
    signed = [json.loads(report("--format", "json", "--workers", n).stdout) for n in ("1", "3")]
    for reports in signed:
        checkpoints = {json.dumps(r.pop("checkpoint"), sort_keys=True) for r in reports}
        assert len(checkpoints) == 1 and json.loads(checkpoints.pop())["tree_size"] > 0
    assert signed[0] == signed[1]
