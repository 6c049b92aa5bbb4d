"""Contract versions and late facts at the command line: `contracts apply|list|diff`, the
`--contracts` mismatch rule, a report reproduced byte for byte as known earlier, `restatements`
and `whatif` — over a store whose recording instants were pinned when it was written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from slatrail.domain.contract_version import SINCE_EVER
from slatrail.infra.bootstrap import read_contracts, sample_contracts_text
from slatrail.infra.store import open_application
from slatrail.infra.wire import decode
from tests.builders import line, reported_data, utc, wire

pytestmark = pytest.mark.e2e

SLATRAIL = str(Path(sys.executable).parent / "slatrail")
T10 = utc(2026, 3, 2, 10)
MIN = timedelta(minutes=1)
SENT = "2026-03-02T11:30:00Z"  # when the March report was sent: the late ack was not in yet
Run = Callable[..., subprocess.CompletedProcess[str]]
LONGER = sample_contracts_text().replace('response = "15m"', 'response = "30m"', 1)


def record(app: Any, message: dict[str, Any], *, now: Any) -> None:
    outcome = app.record([decode(line(message))], now=now)[0]
    assert outcome.status == "accepted", outcome


@pytest.fixture
def slatrail(tmp_path: Path) -> Run:
    """LATE: acme-rtc P1 (response 15m) reported 10:00, resolved 11:00; its acknowledged
    of 10:20 was recorded at 12:00, after the resolution (a publisher replaying its outbox)."""
    store = tmp_path / "store.db"
    app = open_application(f"sqlite:///{store}", read_contracts(None))
    app.record_contracts(
        sample_contracts_text(), source="sample", effective_from=SINCE_EVER, actor="slatrail",
        reason="first use of the store", now=T10 - 60 * MIN,
    )  # fmt: skip
    late = {"incident_id": "LATE"}
    record(app, wire("reported", T10, reported_data("acme-rtc", "P1"), **late), now=T10)
    record(app, wire("triaged", T10 + 2 * MIN, {"priority": "P1"}, **late), now=T10 + 2 * MIN)
    record(app, wire("resolved", T10 + 60 * MIN, {"resolution": "fixed"}, **late),
           now=T10 + 61 * MIN)  # fmt: skip
    record(app, wire("acknowledged", T10 + 20 * MIN, **late), now=T10 + 120 * MIN)
    app.close()
    (tmp_path / "longer.toml").write_text(LONGER, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLATRAIL_")}
    env.update(SLATRAIL_STORE=f"sqlite:///{store}", SLATRAIL_LOG_LEVEL="error")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [SLATRAIL, *args], cwd=tmp_path, env=env,
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip

    return run


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_versions_late_facts_restatements_and_whatif(slatrail: Run) -> None:
    report = ("report", "--month", "2026-03", "--customer", "acme-rtc", "--format", "json")
    as_sent = ok(slatrail(*report, "--as-known-at", SENT))
    draft = ("--contracts", "longer.toml", "--month", "2026-03", "--customer", "acme-rtc")
    whatif = json.loads(ok(slatrail("whatif", *draft, "--format", "json")))
    (row,) = whatif["rows"]
    assert row["flips"][0]["incident_id"] == "LATE"
    assert (row["flips"][0]["recorded"], row["flips"][0]["draft"]) == ("breached", "met")
    assert len(json.loads(ok(slatrail("contracts", "list", "--format", "json")))) == 1

    effective = ("--effective-from", "2026-03-01T00:00:00Z")
    applied = ok(slatrail("contracts", "apply", "longer.toml", *effective, "--reason", "P1 30m"))
    assert applied.startswith("recorded contract version 2 ")
    assert ok(slatrail("contracts", "diff", "1", "2")) == (
        "contract version 1 → 2: 1 change(s)\n"
        "tiers and targets:\n"
        "  tiers.enterprise.P1.response: 15m → 30m\n"
    )

    # the report as sent, byte for byte, after a new version and a late event were recorded
    assert ok(slatrail(*report, "--as-known-at", SENT)) == as_sent
    now = json.loads(ok(slatrail(*report)))[0]
    assert now["contract_versions"] == [2]
    assert json.loads(as_sent)[0]["contract_versions"] == [1]

    period = ("--month", "2026-03", "--known-at", SENT, "--as-of", "2026-04-01T00:00:00Z")
    found = json.loads(ok(slatrail("restatements", *period, "--format", "json")))
    (clock,) = [c for c in found["clocks"] if c["metric"] == "response"]
    assert (clock["old_status"], clock["new_status"]) == ("breached", "met")
    assert any(c.startswith("late event acknowledged") for c in clock["causes"])
    assert "contract version 1 → 2" in clock["causes"]


def test_a_contracts_file_that_differs_from_the_record_is_refused(
    slatrail: Run, tmp_path: Path
) -> None:
    done = slatrail("--contracts", "longer.toml", "sla")
    assert done.returncode == 2
    assert "differs from the recorded contract version 1" in done.stderr
    assert "slatrail contracts apply longer.toml" in done.stderr
