"""The `slatrail` console script as a user runs it: a subprocess in a scratch directory."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.builders import CONTRACTS_TOML, jsonl, reported_data, wire

pytestmark = pytest.mark.e2e

SLATRAIL = str(Path(sys.executable).parent / "slatrail")

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def slatrail(tmp_path: Path) -> Run:
    """Factory: run `slatrail ARGS…` in `tmp_path` with no SLATRAIL_* settings inherited."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLATRAIL_")}

    def run(
        *args: str, stdin: str | None = None, **extra_env: str
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [SLATRAIL, *args], cwd=tmp_path, env={**env, **extra_env}, input=stdin,
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip

    return run


@pytest.fixture
def contracts_file(tmp_path: Path) -> Path:
    path = tmp_path / "contracts.toml"
    path.write_text(CONTRACTS_TOML, encoding="utf-8")
    return path


def counts_of(output: str) -> tuple[int, int, int]:
    found = re.search(r"accepted (\d+), duplicate (\d+), rejected (\d+)", output)
    assert found, output
    accepted, duplicate, rejected = (int(n) for n in found.groups())
    return accepted, duplicate, rejected


def test_help_lists_the_commands_and_global_options(slatrail) -> None:
    done = slatrail("--help")
    assert done.returncode == 0
    for word in ("demo", "ingest", "sla", "audit", "--store", "--contracts", "--kafka"):
        assert word in done.stdout


def test_a_command_is_required(slatrail) -> None:
    done = slatrail()
    assert done.returncode == 2
    assert "COMMAND" in done.stderr


def test_demo_simulates_a_month_and_a_second_run_records_nothing_new(
    slatrail, tmp_path: Path
) -> None:
    first = slatrail("demo")
    assert first.returncode == 0, first.stderr
    assert "slatrail demo — 2026-10" in first.stdout
    assert "SLA summary as of 2026-11-01T00:00:00Z" in first.stdout
    for customer in ("acme-rtc", "brightcall", "chatnest"):
        assert customer in first.stdout
    accepted, duplicate, rejected = counts_of(first.stdout)
    assert accepted > 100
    assert (tmp_path / "slatrail.db").exists()
    assert (tmp_path / "slatrail-demo-2026-10.jsonl").exists()
    dead = (tmp_path / "slatrail-demo-2026-10.rejected.jsonl").read_text().splitlines()
    assert len(dead) == rejected
    assert {json.loads(d)["code"] for d in dead} <= {
        "message_id_conflict", "out_of_order", "unknown_customer",
    }  # fmt: skip

    second = slatrail("demo")
    assert second.returncode == 0, second.stderr
    # the deliberately faulty deliveries are refused again; everything else is a duplicate
    assert counts_of(second.stdout) == (0, accepted + duplicate, rejected)
    summary = first.stdout.split("SLA summary", 1)[1]
    assert second.stdout.split("SLA summary", 1)[1] == summary


@pytest.fixture
def ingested(slatrail, contracts_file: Path, tmp_path: Path) -> Callable[..., Run]:
    """Two incidents ingested into `tmp_path/store.db`; returns a runner bound to that store."""
    messages = [
        wire("reported", "2026-03-02T10:00:00Z", reported_data("acme", "P3"), incident_id="P3-1"),
        wire("awaiting_customer", "2026-03-02T12:15:00Z", {"reason": "logs"}, incident_id="P3-1"),
        wire("customer_responded", "2026-03-02T12:45:00Z", incident_id="P3-1"),
        wire("reported", "2026-03-02T09:00:00Z", reported_data("acme", "P2"), incident_id="P2-1"),
        wire("triaged", "2026-03-02T09:05:00Z", {"priority": "P1"}, incident_id="P2-1"),
    ]
    source = tmp_path / "in.jsonl"
    source.write_text(jsonl(messages), encoding="utf-8")
    base = ("--store", f"sqlite:///{tmp_path}/store.db", "--contracts", str(contracts_file))
    done = slatrail(*base, "ingest", str(source))
    assert done.returncode == 0, done.stderr
    assert counts_of(done.stdout) == (5, 0, 0)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return slatrail(*base, *args)

    return run


def test_sla_explain_prints_the_table_and_how_each_clock_was_counted(ingested) -> None:
    done = ingested("sla", "--explain", "--as-of", "2026-03-02T13:00:00Z")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "SLA as of 2026-03-02T13:00:00Z — 2 incidents" in out
    header = next(line for line in out.splitlines() if line.startswith("incident"))
    for column in ("customer", "tier", "priority", "state", "response", "postmortem"):
        assert column in header
    p2_row = next(line for line in out.splitlines() if line.startswith("P2-1 "))
    assert "P1 (claimed P2)" in p2_row
    # P3-1: office hours Berlin (UTC+1), 11:00-12:00 + 13:00-13:15 + 13:45-14:00 local
    assert "P3-1 (acme, claimed P3" in out
    assert (
        "resolution: running — priority P3, calendar office, target 86400 s, counted 5400.0 s"
        in (out)
    )
    assert "paused 2026-03-02T12:15:00Z → 2026-03-02T12:45:00Z" in out
    assert "counted 2026-03-02T10:00:00Z → 2026-03-02T11:00:00Z" in out
    assert "counted 2026-03-02T12:00:00Z → 2026-03-02T12:15:00Z" in out
    assert "counted 2026-03-02T12:45:00Z → 2026-03-02T13:00:00Z" in out
    assert "priority P1 from 2026-03-02T09:05:00Z" in out


def test_sla_json_and_audit_json_from_the_console_script(ingested) -> None:
    done = ingested("sla", "--format", "json", "--as-of", "2026-03-02T13:00:00Z")
    assert done.returncode == 0, done.stderr
    view = {item["incident_id"]: item for item in json.loads(done.stdout)}
    assert view["P2-1"]["priority"] == "P1"
    assert view["P2-1"]["metrics"]["response"]["status"] == "breached"  # 4 h of 15 min
    assert view["P3-1"]["metrics"]["response"]["elapsed_s"] == 7200  # never paused
    audit = ingested("audit", "P3-1", "--format", "json")
    assert audit.returncode == 0, audit.stderr
    assert [e["type"] for e in json.loads(audit.stdout)] == [
        "reported", "awaiting_customer", "customer_responded",
    ]  # fmt: skip


@pytest.mark.parametrize("command", [("sla",), ("audit", "P3-1"), ("export", "--format", "jsonl")])
def test_a_stored_event_that_no_longer_decodes_is_named_not_a_traceback(
    ingested, tmp_path, command
) -> None:
    with sqlite3.connect(tmp_path / "store.db") as db:
        changed = db.execute(
            "UPDATE stored_events SET state = ? WHERE topic LIKE '%AwaitingCustomer'",
            (b"{not json",),
        ).rowcount
    assert changed == 1
    done = ingested(*command)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "the store is damaged" in done.stderr
    assert "cannot be decoded" in done.stderr
    assert "slatrail verify" in done.stderr


def test_ingest_reads_standard_input_and_keeps_its_dead_letters_in_the_directory(
    slatrail, contracts_file, tmp_path
) -> None:
    good = wire("reported", "2026-03-02T09:00:00Z", reported_data("acme", "P2"), incident_id="S")
    bad = wire("reopened", "2026-03-02T09:10:00Z", {"reason": "r"}, incident_id="S")
    done = slatrail(
        "--store", f"sqlite:///{tmp_path}/s.db", "--contracts", str(contracts_file),
        "ingest", "-", stdin=jsonl([good, bad]),
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert counts_of(done.stdout) == (1, 0, 1)
    assert "rejected transition_not_allowed: 1" in done.stdout
    [dead] = (tmp_path / "slatrail-stdin.rejected.jsonl").read_text().splitlines()
    assert json.loads(dead)["message"] == bad


def test_ingest_of_a_missing_file_says_so(slatrail, contracts_file, tmp_path) -> None:
    done = slatrail(
        "--store", f"sqlite:///{tmp_path}/s.db", "--contracts", str(contracts_file),
        "ingest", "no-such-file.jsonl",
    )  # fmt: skip
    assert done.returncode == 2
    assert "no-such-file.jsonl" in done.stderr


# -- configuration errors --------------------------------------------------------------------------


def test_a_missing_contracts_file_is_named_and_exits_2(slatrail) -> None:
    done = slatrail("--contracts", "missing.toml", "sla")
    assert done.returncode == 2
    assert "slatrail: missing.toml: cannot read" in done.stderr
    assert "Traceback" not in done.stderr


def test_contracts_that_are_not_toml_are_named_with_the_position(slatrail, tmp_path) -> None:
    (tmp_path / "broken.toml").write_text("at_risk_threshold = \n")
    done = slatrail("--contracts", "broken.toml", "sla")
    assert done.returncode == 2
    assert "broken.toml: not valid TOML" in done.stderr
    assert "line 1" in done.stderr


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ('response = "15m"', 'response = "15x"', "tiers.gold.P1.response"),
        ('tier = "gold"', 'tier = "platinum"', "customers.acme.tier"),
        ('calendar = "office", response = "4h"', 'calendar = "shop", response = "4h"',
         "tiers.gold.P3.calendar"),
        ('timezone = "Europe/Berlin"\nweekdays = ["mon", "tue", "wed", "thu", "fri"]',
         'timezone = "Europe/Berlyn"\nweekdays = ["mon", "tue", "wed", "thu", "fri"]',
         "calendars.office"),
        ("at_risk_threshold = 0.75", "at_risk_threshold = 1.5", "at_risk_threshold"),
    ],
)  # fmt: skip
def test_a_bad_contracts_key_is_named_with_the_file_and_exits_2(
    slatrail, tmp_path, old, new, key
) -> None:
    assert old in CONTRACTS_TOML
    (tmp_path / "bad.toml").write_text(CONTRACTS_TOML.replace(old, new, 1))
    done = slatrail("--contracts", "bad.toml", "sla")
    assert done.returncode == 2, done.stderr
    assert "slatrail: bad.toml: " in done.stderr
    assert key in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("mysql://db/slatrail", "unsupported store URL"),
        ("sqlite://", "needs a path"),
        ("postgresql://127.0.0.1:5432", "needs a database name"),
        ("sqlite:////no/such/directory/slatrail.db", "cannot open the store"),
    ],
)
def test_a_bad_store_url_gives_a_clear_error_and_exits_2(slatrail, url, words) -> None:
    done = slatrail("--store", url, "sla")
    assert done.returncode == 2, done.stderr
    assert "slatrail: " in done.stderr
    assert words in done.stderr
    assert "Traceback" not in done.stderr


def test_an_unreachable_postgresql_store_is_a_clear_error_without_the_password(slatrail) -> None:
    done = slatrail(
        "--store", "postgresql://ops:s3cret@127.0.0.1:9/slatrail", "sla",
        POSTGRES_CONNECT_TIMEOUT="1",
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "cannot open the store postgresql://ops:***@127.0.0.1:9/slatrail" in done.stderr
    assert "s3cret" not in done.stderr
    assert "Traceback" not in done.stderr


def test_sla_selects_by_state_status_and_report_window(ingested) -> None:
    """`--state`, `--status`, `--since/--until` (reported window) select from the index."""
    as_of = ("--as-of", "2026-03-02T13:00:00Z", "--format", "json")

    def ids(*options: str) -> list[str]:
        done = ingested("sla", *as_of, *options)
        assert done.returncode == 0, done.stderr
        return [item["incident_id"] for item in json.loads(done.stdout)]

    assert ids() == ["P2-1", "P3-1"]  # report order
    assert ids("--state", "open") == ["P2-1", "P3-1"]
    assert ids("--state", "resolved") == []
    assert ids("--status", "breached") == ["P2-1"]  # its response clock: 4 h of 15 min
    assert ids("--since", "2026-03-02T09:30:00Z") == ["P3-1"]
    assert ids("--until", "2026-03-02T09:30:00Z") == ["P2-1"]
    assert ids("--customer", "dayco") == []
    bad = ingested("sla", "--state", "closed")
    assert bad.returncode == 2 and "--state" in bad.stderr
