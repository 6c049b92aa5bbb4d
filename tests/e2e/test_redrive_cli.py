"""`slatrail redrive --file`: dead letters of `ingest` re-submitted once their cause is fixed —
the console script in a scratch directory, over a real SQLite store (docs/redrive.md)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.builders import CONTRACTS_TOML, jsonl, reported_data, wire
from tests.e2e.test_audit_cli import run_documented

pytestmark = pytest.mark.e2e

SLATRAIL = str(Path(sys.executable).parent / "slatrail")
GLOBEX = '\n[customers.globex]\ntier = "gold"\n'
START = (datetime.now(UTC) - timedelta(days=3)).replace(microsecond=0)
MIN = timedelta(minutes=1)

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def contracts_file(tmp_path: Path) -> Path:
    path = tmp_path / "contracts.toml"
    path.write_text(CONTRACTS_TOML, encoding="utf-8")  # acme and dayco: no globex yet
    return path


@pytest.fixture
def slatrail(tmp_path: Path, contracts_file: Path) -> Run:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLATRAIL_")}
    env.update(
        SLATRAIL_STORE=f"sqlite:///{tmp_path / 'store.db'}",
        SLATRAIL_CONTRACTS=str(contracts_file),
        SLATRAIL_LOG_LEVEL="error",
    )

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [SLATRAIL, *args], cwd=tmp_path, env=env,
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip

    return run


def messages() -> list[dict[str, Any] | str]:
    g = {"incident_id": "G-1"}
    return [
        wire("reported", START, reported_data("globex", "P1"), message_id="g-1", **g),  # 1
        wire("reported", START, reported_data("acme", "P2"), incident_id="A-1"),  # 2 ok
        wire("acknowledged", START + 5 * MIN, message_id="g-2", **g),  # 3
        '{"schema": "slatrail.incident/v1", "message_id": ',  # 4 not JSON
        wire("resolved", START + 60 * MIN, {"resolution": "fixed"}, message_id="g-3", **g),  # 5
    ]


@pytest.fixture
def dead_letters(slatrail: Run, tmp_path: Path) -> Path:
    """`ingest` of the five lines: globex is not in the contracts, line 4 is not JSON."""
    path = tmp_path / "incidents.jsonl"
    path.write_text(jsonl(messages()), encoding="utf-8")
    done = slatrail("ingest", str(path))
    assert done.returncode == 1, done.stderr
    dead = tmp_path / "incidents.rejected.jsonl"
    entries = [json.loads(text) for text in dead.read_text().splitlines()]
    # (a line that does not decode is refused at once, the others when their batch is recorded)
    assert [(e["line"], e["code"]) for e in entries] == [
        (4, "invalid_json"),
        (1, "unknown_customer"),
        (3, "first_event_not_reported"),
        (5, "first_event_not_reported"),
    ]
    return dead


def redrive(run: Run, *args: str) -> tuple[int, dict[str, Any]]:
    done = run("redrive", "--format", "json", *args)
    assert done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout)


def add_globex(run: Run, contracts_file: Path) -> None:
    """Fix the cause: globex signs; the corrected contracts are recorded as a new version."""
    contracts_file.write_text(CONTRACTS_TOML + GLOBEX, encoding="utf-8")
    since = ("--effective-from", "1970-01-01T00:00:00Z")
    done = run("contracts", "apply", str(contracts_file), *since, "--reason", "globex signed")
    assert done.returncode == 0, done.stderr


def test_redrive_after_adding_the_customer_records_the_messages_marked_as_redriven(
    slatrail: Run, dead_letters: Path, contracts_file: Path, tmp_path: Path
) -> None:
    before = dead_letters.read_bytes()
    add_globex(slatrail, contracts_file)
    code, counts = redrive(slatrail, "--file", str(dead_letters))
    assert code == 1  # the line that is not JSON is still rejected
    assert counts == {
        "source": str(dead_letters),
        "read": 4,
        "accepted": 3,
        "duplicate": 0,
        "still_rejected": 1,
        "still_rejected_by_code": {"invalid_json": 1},
        "skipped_by_filter": 0,
        "not_redrivable": 0,
        "not_redrivable_entries": [],
        "rejected_file": str(tmp_path / "incidents.redrive.rejected.jsonl"),
    }
    assert dead_letters.read_bytes() == before  # never appended to the file being redriven
    [again] = (tmp_path / "incidents.redrive.rejected.jsonl").read_text().splitlines()
    entry = json.loads(again)
    assert (entry["code"], entry["line"], entry["redrive_of"]) == (
        "invalid_json", 4, "file:incidents.rejected.jsonl:1"
    )  # fmt: skip
    assert entry["raw"] == messages()[3]
    # The recorded events say where they came from, in the audit trail …
    trail = json.loads(slatrail("audit", "G-1", "--format", "json").stdout)
    assert [(e["type"], e.get("redrive")) for e in trail] == [
        ("reported", "file:incidents.rejected.jsonl:2"),
        ("acknowledged", "file:incidents.rejected.jsonl:3"),
        ("resolved", "file:incidents.rejected.jsonl:4"),
    ]
    table = slatrail("audit", "G-1").stdout
    assert "recorded by redrive of the dead letter file:incidents.rejected.jsonl:2" in table
    other = json.loads(slatrail("audit", "A-1", "--format", "json").stdout)
    assert "redrive" not in other[0]  # ingested directly: no marker
    # … the chains verify, and the export verifies with the documented independent programs.
    verified = slatrail("verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    for fmt, program in (("jsonl", "verify_export.py"), ("csv", "verify_export_csv.py")):
        export = tmp_path / f"export.{fmt}"
        assert slatrail("export", "--format", fmt, "--output", str(export)).returncode == 0
        checked = run_documented(program, tmp_path, export)
        assert checked.returncode == 0, checked.stderr
        assert checked.stdout.strip() == "OK: 2 incidents, 4 events verified"
    tampered = tmp_path / "tampered.jsonl"
    text = (tmp_path / "export.jsonl").read_text(encoding="utf-8")
    tampered.write_text(text.replace(', "redrive": "file:incidents.rejected.jsonl:3"', ""))
    assert tampered.read_text() != text
    assert run_documented("verify_export.py", tmp_path, tampered).returncode == 1


def test_redriving_twice_is_harmless_the_second_time_all_duplicates(
    slatrail: Run, dead_letters: Path, contracts_file: Path, tmp_path: Path
) -> None:
    add_globex(slatrail, contracts_file)
    redrive(slatrail, "--file", str(dead_letters))
    audit_before = slatrail("audit", "G-1", "--format", "json").stdout
    code, counts = redrive(slatrail, "--file", str(dead_letters))
    assert code == 1
    assert (counts["accepted"], counts["duplicate"], counts["still_rejected"]) == (0, 3, 1)
    assert slatrail("audit", "G-1", "--format", "json").stdout == audit_before
    # the one that failed again is in the failed-again file once
    assert len((tmp_path / "incidents.redrive.rejected.jsonl").read_text().splitlines()) == 1
    table = slatrail("redrive", "--file", str(dead_letters))
    assert "accepted 0, duplicate 3, still rejected 1, not redrivable 0, skipped by filter 0" in (
        table.stdout
    )
    assert "(1 already there, not repeated)" in table.stdout


def test_without_the_fix_the_dead_letters_are_still_rejected(
    slatrail: Run, dead_letters: Path
) -> None:
    code, counts = redrive(slatrail, "--file", str(dead_letters))
    assert code == 1
    assert counts["accepted"] == 0
    assert counts["still_rejected_by_code"] == {
        "first_event_not_reported": 2,
        "invalid_json": 1,
        "unknown_customer": 1,
    }
    assert "no incident 'G-1'" in slatrail("audit", "G-1", "--format", "json").stdout


def test_filters_by_code_incident_and_time(
    slatrail: Run, dead_letters: Path, contracts_file: Path
) -> None:
    add_globex(slatrail, contracts_file)
    code, counts = redrive(slatrail, "--file", str(dead_letters), "--code", "unknown_customer")
    assert code == 0
    assert (counts["read"], counts["accepted"], counts["skipped_by_filter"]) == (4, 1, 3)
    trail = json.loads(slatrail("audit", "G-1", "--format", "json").stdout)
    assert [e["type"] for e in trail] == ["reported"]
    code, counts = redrive(slatrail, "--file", str(dead_letters), "--since", "2999-01-01T00:00:00Z")
    assert code == 0
    assert (counts["accepted"], counts["skipped_by_filter"]) == (0, 4)
    code, counts = redrive(slatrail, "--file", str(dead_letters), "--incident", "G-1",
                           "--code", "first_event_not_reported,unknown_customer")  # fmt: skip
    assert code == 0
    assert (counts["accepted"], counts["duplicate"], counts["skipped_by_filter"]) == (2, 1, 1)
    trail = json.loads(slatrail("audit", "G-1", "--format", "json").stdout)
    assert [e["type"] for e in trail] == ["reported", "acknowledged", "resolved"]


def test_raw_base64_truncated_and_unreadable_dead_letters(slatrail: Run, tmp_path: Path) -> None:
    good = wire("reported", START, reported_data("acme", "P3", title="Ünïcode"), incident_id="B-1")
    original = json.dumps(good, ensure_ascii=False).encode("utf-8")
    entries = [
        {"code": "unknown_customer", "incident_id": "B-1", "message": None, "raw": None,
         "raw_base64": base64.b64encode(original).decode(), "rejected_at": "2026-11-01T00:00:00Z"},
        {"code": "invalid_encoding", "message": None, "raw": None,
         "raw_base64": base64.b64encode(b"\xff\xfe not utf-8").decode(),
         "rejected_at": "2026-11-01T00:00:00Z"},
        {"code": "too_large", "message": None, "raw": None, "truncated": True,
         "raw_bytes": 3_000_000, "raw_sha256": "ab" * 32, "raw_prefix_base64": "",
         "topic": "incidents.inbound", "partition": 2, "offset": 77,
         "rejected_at": "2026-11-01T00:00:00Z"},
    ]  # fmt: skip
    path = tmp_path / "mixed.rejected.jsonl"
    text = "".join(json.dumps(e) + "\n" for e in entries) + '{"code": "invalid_js'
    path.write_text(text, encoding="utf-8")
    code, counts = redrive(slatrail, "--file", str(path))
    assert code == 1
    assert (counts["accepted"], counts["still_rejected"], counts["not_redrivable"]) == (1, 1, 2)
    assert counts["still_rejected_by_code"] == {"invalid_encoding": 1}
    [failed] = (tmp_path / "mixed.redrive.rejected.jsonl").read_text().splitlines()
    assert base64.b64decode(json.loads(failed)["raw_base64"]) == b"\xff\xfe not utf-8"
    truncated, torn = counts["not_redrivable_entries"]
    assert truncated["dead_letter"] == "file:mixed.rejected.jsonl:3"
    assert (truncated["topic"], truncated["partition"], truncated["offset"]) == (
        "incidents.inbound", 2, 77
    )  # fmt: skip
    assert "truncated" in truncated["reason"] and "incidents.inbound/2/77" in truncated["reason"]
    assert torn["dead_letter"] == "file:mixed.rejected.jsonl:4"
    trail = json.loads(slatrail("audit", "B-1", "--format", "json").stdout)
    assert trail[0]["data"]["title"] == "Ünïcode"
    assert trail[0]["redrive"] == "file:mixed.rejected.jsonl:1"
    table = slatrail("redrive", "--file", str(path)).stdout
    assert "not redrivable file:mixed.rejected.jsonl:3: truncated dead letter" in table


def test_operator_errors_are_one_line_with_exit_2(slatrail: Run, tmp_path: Path) -> None:
    missing = slatrail("redrive", "--file", str(tmp_path / "nope.rejected.jsonl"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr
    (tmp_path / "x.rejected.jsonl").write_text("")
    same = slatrail("redrive", "--file", "x.rejected.jsonl", "--rejected", "x.rejected.jsonl")
    assert same.returncode == 2 and "must not be the file being redriven" in same.stderr
    no_kafka = slatrail("redrive")
    assert no_kafka.returncode == 2 and "--kafka" in no_kafka.stderr
    (tmp_path / "y.rejected.jsonl").write_text('{"code": "invalid_json", "raw": "{nope"}\n')
    folder = slatrail("redrive", "--file", "y.rejected.jsonl", "--rejected", str(tmp_path))
    assert folder.returncode == 2 and str(tmp_path) in folder.stderr
    assert len(folder.stderr.strip().splitlines()) == 1
    outputs = missing.stderr + same.stderr + no_kafka.stderr + folder.stderr
    assert "Traceback" not in outputs
