"""`slatrail ledger export` on the demo store: CSV and Parquet (read back with pyarrow)."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest

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


def _run(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLATRAIL_")}
    return subprocess.run(
        [SLATRAIL, *args], cwd=directory, env=env, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip


def _csv(demo: Path, *args: str) -> list[list[str]]:
    done = _run(demo, "ledger", "export", "--format", "csv", *args)
    assert done.returncode == 0, done.stderr
    return list(csv.reader(io.StringIO(done.stdout)))


def test_csv_has_the_documented_columns_and_the_computed_at_risk_interval(demo: Path) -> None:
    rows = _csv(demo)
    assert rows[0] == COLUMNS
    assert AT_RISK in rows
    body = rows[1:]
    assert {r[1] for r in body} == {"acme-rtc", "brightcall", "chatnest"}
    # every clock of every incident starts at its report: four metrics per incident
    incidents = {r[0] for r in body}
    firsts = {(r[0], r[2]) for r in body}
    assert len(firsts) == 4 * len(incidents)
    out = demo / "ledger.csv"
    assert _run(demo, "ledger", "export", "--format", "csv", "--output", str(out)).returncode == 0
    assert out.read_bytes().startswith(b"incident_id,customer,metric,from,to,")
    assert out.read_bytes().count(b"\r\n") == len(rows)  # RFC 4180 line ends


def test_customer_and_window_select_overlapping_intervals(demo: Path) -> None:
    rows = _csv(demo, "--customer", "brightcall", "--from", "2026-10-02T15:00:00Z",
                "--to", "2026-10-02T15:30:00Z")  # fmt: skip
    body = rows[1:]
    assert AT_RISK in body
    assert {r[1] for r in body} == {"brightcall"}
    for row in body:
        assert row[3] < "2026-10-02T15:30:00Z"
        assert row[4] == "" or row[4] > "2026-10-02T15:00:00Z"
    everything = _csv(demo, "--customer", "brightcall")[1:]
    assert len(body) < len(everything)


def test_parquet_reads_back_with_typed_columns_and_the_same_rows(demo: Path) -> None:
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
    assert len(rows) == len(_csv(demo)) - 1
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
