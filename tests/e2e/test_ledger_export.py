"""`slatrail ledger export` on the demo store: CSV and Parquet (read back with pyarrow)."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.builders import jsonl, reported_data, wire

pytestmark = pytest.mark.e2e

SLATRAIL = str(Path(sys.executable).parent / "slatrail")
COLUMNS = [
    "incident_id", "customer", "metric", "from", "to", "status", "priority",
    "target_s", "due_at", "counted_s", "contract_version",
]  # fmt: skip
# The demo's P1 at brightcall: 8 h resolution target on 24x7, at risk from 6 h (75 %) of
# counted time until it was resolved 28,530 s in — a computed crossing, not an event.
AT_RISK = [
    "BRIG-202610-001", "brightcall", "resolution", "2026-10-02T13:51:28Z",
    "2026-10-02T15:46:58Z", "at_risk", "P1", "28800", "2026-10-02T15:51:28Z", "21600.0", "1",
]  # fmt: skip


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("ledger-demo")
    done = _run(directory, "demo")
    assert done.returncode == 0, done.stderr
    return directory


def _run(directory: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLATRAIL_")}
    return subprocess.run(
        [SLATRAIL, "--log-format", "json", *args], cwd=directory, env=env, input=stdin,
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def full_csv(demo: Path) -> str:
    """The whole ledger as CSV, computed from the events (no read models yet), as written."""
    out = demo / "ledger.csv"
    done = _run(demo, "ledger", "export", "--format", "csv", "--output", str(out))
    assert done.returncode == 0, done.stderr
    assert "ledger intervals" in done.stdout
    return out.read_bytes().decode("utf-8")


def _rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def _csv(demo: Path, *args: str) -> list[list[str]]:
    done = _run(demo, "ledger", "export", "--format", "csv", *args)
    assert done.returncode == 0, done.stderr
    return _rows(done.stdout)


def test_csv_has_the_documented_columns_and_the_computed_at_risk_interval(full_csv: str) -> None:
    rows = _rows(full_csv)
    assert rows[0] == COLUMNS
    assert full_csv.count("\r\n") == len(rows)  # RFC 4180 line ends
    assert AT_RISK in rows
    body = rows[1:]
    assert {r[1] for r in body} == {"acme-rtc", "brightcall", "chatnest"}
    # every clock of every incident starts at its report: four metrics per incident
    incidents = {r[0] for r in body}
    assert len({(r[0], r[2]) for r in body}) == 4 * len(incidents)


def test_customer_and_window_select_overlapping_intervals(demo: Path, full_csv: str) -> None:
    rows = _csv(demo, "--customer", "brightcall", "--from", "2026-10-02T15:00:00Z",
                "--to", "2026-10-02T15:30:00Z")  # fmt: skip
    body = rows[1:]
    assert AT_RISK in body
    expected = [
        r for r in _rows(full_csv)[1:]
        if r[1] == "brightcall" and r[3] < "2026-10-02T15:30:00Z"
        and (r[4] == "" or r[4] > "2026-10-02T15:00:00Z")
    ]  # fmt: skip
    assert body == expected
    assert len(body) < len([r for r in _rows(full_csv) if r[1] == "brightcall"])


def test_parquet_reads_back_with_typed_columns_and_the_same_rows(demo: Path, full_csv: str) -> None:
    out = demo / "ledger.parquet"
    done = _run(demo, "ledger", "export", "--format", "parquet", "--output", str(out))
    assert done.returncode == 0, done.stderr
    assert "ledger intervals" in done.stdout
    table = pq.read_table(out)
    assert table.column_names == COLUMNS
    types = {f.name: str(f.type) for f in table.schema}
    assert types["from"] == types["to"] == types["due_at"] == "timestamp[us, tz=UTC]"
    assert (types["target_s"], types["counted_s"]) == ("int64", "double")
    rows = table.to_pylist()
    assert len(rows) == len(_rows(full_csv)) - 1
    assert {
        "incident_id": "BRIG-202610-001", "customer": "brightcall", "metric": "resolution",
        "from": datetime(2026, 10, 2, 13, 51, 28, tzinfo=UTC),
        "to": datetime(2026, 10, 2, 15, 46, 58, tzinfo=UTC),
        "status": "at_risk", "priority": "P1", "target_s": 28800,
        "due_at": datetime(2026, 10, 2, 15, 51, 28, tzinfo=UTC),
        "counted_s": 21600.0, "contract_version": 1,
    } in rows  # fmt: skip


def test_an_empty_window_is_a_usage_error(demo: Path) -> None:
    done = _run(demo, "ledger", "export", "--format", "csv",
                "--from", "2026-10-10T00:00:00Z", "--to", "2026-10-09T00:00:00Z")  # fmt: skip
    assert done.returncode == 2
    assert "--to (default: now) must be later than --from" in done.stderr
    assert "Traceback" not in done.stderr


def test_replay_materialises_the_ledger_and_a_later_event_makes_it_stale(
    demo: Path, full_csv: str, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    shutil.copytree(demo, store)
    status = ["ledger", "status", "--as-of", "2026-10-02T15:00:00Z"]
    computed = _run(store, *status, "--format", "json")
    assert '"source": "events"' in computed.stderr
    replayed = _run(store, "replay")
    assert replayed.returncode == 0, replayed.stderr
    assert "SLA ledger: " in replayed.stderr
    assert "incident index: " in replayed.stderr
    from_table = _run(store, "ledger", "export", "--format", "csv")
    assert '"source": "table"' in from_table.stderr
    assert from_table.stdout.replace("\n", "\r\n") == full_csv  # (text mode read LF)
    counted = _run(store, *status, "--format", "json")
    assert '"source": "table"' in counted.stderr
    assert counted.stdout == computed.stdout  # one GROUP BY, the same answer
    rows = json.loads(counted.stdout)["clocks"]
    assert {"customer": "brightcall", "clock": "resolution", "total": 1} | {
        "counts": {**dict.fromkeys(json.loads(counted.stdout)["statuses"], 0), "at_risk": 1}
    } in rows  # the demo's P1 at risk then (AT_RISK above)
    with closing(sqlite3.connect(store / "slatrail-read.db")) as db, db:
        db.execute("UPDATE rm_sla_ledger SET status = 'breached' WHERE status = 'at_risk' "
                   "AND incident_id = 'BRIG-202610-001'")  # fmt: skip
    verified = _run(store, "verify")
    assert verified.returncode == 1, verified.stdout
    assert "BRIG-202610-001: read_model_drift: SLA ledger: the stored intervals differ" in (
        verified.stdout
    )
    assert "ACME-202610-001" not in verified.stdout
    message = wire("reported", "2026-10-15T10:00:00Z", reported_data(customer="brightcall",
                   priority="P2"), incident_id="LATE-1")  # fmt: skip
    assert _run(store, "ingest", "-", stdin=jsonl([message])).returncode == 0
    stale = _run(store, "ledger", "export", "--format", "csv", "--customer", "brightcall")
    assert '"source": "events"' in stale.stderr
    assert "LATE-1,brightcall,response,2026-10-15T10:00:00Z," in stale.stdout
