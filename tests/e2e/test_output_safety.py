"""What a hostile actor, title or reason does to a terminal (decisions.md): nothing. Every table
and text output of the `slatrail` console script shows control characters and bidi overrides as
visible escapes; JSON output holds the exact strings; `report --format csv` cannot start a
formula. The store is a real SQLite file; the hostile events are written as a store recorded
before control characters were refused at ingest would hold them (hash chain recomputed)."""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import subprocess
import sys
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from slatrail.domain.model import GENESIS_HASH, IncidentEvent, incident_uuid
from slatrail.infra.bootstrap import read_contracts
from slatrail.infra.store import open_application
from slatrail.infra.wire import decode
from tests.builders import CONTRACTS_TOML, line, reported_data, utc, wire
from tests.e2e.test_audit_cli import run_documented

pytestmark = pytest.mark.e2e

SLATRAIL = str(Path(sys.executable).parent / "slatrail")
BIDI_CONTROLS = set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")

CLEAR = "\x1b[2J"
ACTOR = f"mallory{CLEAR}\x1b]0;owned\x07\rli.wei\u202eexe.txt\u2066x\u2069\x9b31m\x7f"
TITLE = f'Calls drop{CLEAR}\r\n"quoted", and \u202egnp.exe\x07\x00\u2028\x85end'
REASON = f"customer asked{CLEAR}\x1b[31m\r\u2067RED\u2069\x07"
CUSTOMER = f"evil{CLEAR}\u202eco"  # a contracts key: the contracts file is not checked for this
T10 = utc(2026, 3, 2, 10)
AS_OF = "2026-03-02T12:00:00Z"


def acted_on(text: str) -> list[str]:
    """Characters a terminal would act on (or reorder the line for); the line breaks aside."""
    return [
        c
        for c in text
        if c != "\n"
        and (unicodedata.category(c) == "Cc" or c in BIDI_CONTROLS or c in "\u2028\u2029")
    ]


@dataclass(frozen=True)
class Done:
    returncode: int
    stdout: str  # decoded by hand: a text-mode pipe would turn a raw \r into \n
    stderr: str


Run = Callable[..., Done]


def rewrite_history(store: Path, incident_id: str, change: Callable[[IncidentEvent], Any]) -> None:
    """Change recorded events in place and recompute the chain: what a store recorded before
    ingest refused control characters holds. `change(event)` returns {field: new value}."""
    app = open_application(f"sqlite:///{store}", read_contracts(None))
    events = app.incident_events(incident_id)
    app.close()
    conn = sqlite3.connect(store)
    prev = GENESIS_HASH
    for event in events:
        updates = change(event) or {}
        changed = replace(event, prev_hash=prev, **updates)
        changed = replace(changed, hash=changed.computed_hash())
        key = (incident_uuid(incident_id).hex, event.position)
        (state,) = conn.execute(
            "SELECT state FROM stored_events WHERE originator_id = ? AND originator_version = ?",
            key,
        ).fetchone()
        body = json.loads(state)
        body.update(updates, prev_hash=changed.prev_hash, hash=changed.hash)
        conn.execute(
            "UPDATE stored_events SET state = ? WHERE originator_id = ? AND originator_version = ?",
            (json.dumps(body).encode(), *key),
        )
        prev = changed.hash
    # Such a store predates the incident index (docs/scale.md): queries read it whole.
    conn.execute("DROP TABLE IF EXISTS slatrail_incident_index")
    conn.commit()
    conn.close()


def hostile(event: IncidentEvent) -> dict[str, Any]:
    updates: dict[str, Any] = {"actor": ACTOR}
    if event.type == "reported":
        updates["data"] = {**event.data, "customer": CUSTOMER, "title": TITLE}
    if event.type == "escalated":
        updates["data"] = {**event.data, "reason": REASON}
    return updates


@pytest.fixture
def contracts_file(tmp_path: Path) -> Path:
    path = tmp_path / "contracts.toml"
    path.write_text(
        CONTRACTS_TOML + f'\n[customers.{json.dumps(CUSTOMER)}]\ntier = "gold"\n', "utf-8"
    )
    return path


@pytest.fixture
def store(tmp_path: Path, contracts_file: Path) -> Path:
    """EVIL: a gold P1 reported 10:00, acknowledged 10:05, escalated by hand to level 3 at
    10:20 — then given the hostile actor, customer, title and reason."""
    path = tmp_path / "store.db"
    app = open_application(f"sqlite:///{path}", read_contracts(contracts_file))
    ids = {"incident_id": "EVIL"}
    for message, at in [
        (wire("reported", T10, reported_data("acme", "P1"), **ids), T10),
        (wire("acknowledged", utc(2026, 3, 2, 10, 5), **ids), utc(2026, 3, 2, 10, 5)),
        (wire("escalated", utc(2026, 3, 2, 10, 20), {"level": 3, "reason": "customer asked"},
              **ids), utc(2026, 3, 2, 10, 20)),
    ]:  # fmt: skip
        (outcome,) = app.record([decode(line(message))], now=at)
        assert outcome.status == "accepted", outcome
    app.close()
    rewrite_history(path, "EVIL", hostile)
    return path


@pytest.fixture
def slatrail(tmp_path: Path, store: Path, contracts_file: Path) -> Run:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLATRAIL_")}
    env.update(SLATRAIL_STORE=f"sqlite:///{store}", SLATRAIL_CONTRACTS=str(contracts_file),
               SLATRAIL_LOG_LEVEL="error")  # fmt: skip

    def run(*args: str, stdin: bytes | None = None) -> Done:
        done = subprocess.run(
            [SLATRAIL, *args], cwd=tmp_path, env=env, input=stdin,
            capture_output=True, timeout=120, check=False,
        )  # fmt: skip
        return Done(done.returncode, done.stdout.decode("utf-8"), done.stderr.decode("utf-8"))

    return run


def shown(run: Run, *args: str, code: int = 0) -> str:
    done = run(*args)
    assert done.returncode == code, done.stderr
    assert acted_on(done.stdout) == [], (args, done.stdout)
    assert acted_on(done.stderr) == [], (args, done.stderr)
    return done.stdout


def test_the_store_verifies_as_an_honest_older_store_would(slatrail: Run) -> None:
    done = slatrail("verify", "--skip-read-models")
    assert done.returncode == 0, done.stdout
    assert acted_on(done.stdout) == []


def test_sla_and_its_explanation_show_the_hostile_text_escaped(slatrail: Run) -> None:
    out = shown(slatrail, "sla", "--as-of", AS_OF)
    assert "evil\\x1b[2J\\u202eco" in out
    explained = shown(slatrail, "sla", "--as-of", AS_OF, "--explain", "--incident", "EVIL")
    assert (
        "manual escalation: customer asked\\x1b[2J\\x1b[31m\\r\\u2067RED\\u2069\\x07" in explained
    )


def test_the_audit_trail_shows_actor_title_and_reason_escaped(slatrail: Run) -> None:
    out = shown(slatrail, "audit", "EVIL", "--as-of", AS_OF)
    assert (
        "mallory\\x1b[2J\\x1b]0;owned\\x07\\rli.wei\\u202eexe.txt\\u2066x\\u2069\\x9b31m\\x7f"
        in out
    )
    assert '"title":"Calls drop\\u001b[2J' in out  # the data column: its JSON text, shortened
    assert '"customer":"evil\\u001b[2J\\u202eco"' in out
    assert "escalation level 1 → 3: manual escalation: customer asked\\x1b[2J" in out
    assert [row.split()[0] for row in out.split("\n") if row[:1].isdigit()] == ["1", "2", "3"]


def test_escalations_show_the_reason_escaped(slatrail: Run) -> None:
    out = shown(slatrail, "escalations", "--as-of", AS_OF)
    assert "customer asked\\x1b[2J\\x1b[31m\\r\\u2067RED\\u2069\\x07" in out
    history = shown(slatrail, "escalations", "--as-of", AS_OF, "--explain", "--incident", "EVIL")
    assert "level 3 asked: customer asked\\x1b[2J\\x1b[31m\\r\\u2067RED\\u2069\\x07" in history


def test_the_report_table_shows_the_customer_escaped(slatrail: Run) -> None:
    out = shown(slatrail, "report", "--month", "2026-03", "--as-of", AS_OF)
    assert "evil\\x1b[2J\\u202eco" in out


def test_json_output_holds_the_exact_strings_and_no_raw_control_character(
    slatrail: Run,
) -> None:
    (sla,) = json.loads(shown(slatrail, "sla", "--incident", "EVIL", "--explain",
                              "--as-of", AS_OF, "--format", "json"))  # fmt: skip
    assert sla["customer"] == CUSTOMER
    assert sla["escalation_reason"] == f"manual escalation: {REASON}"
    trail = json.loads(shown(slatrail, "audit", "EVIL", "--as-of", AS_OF, "--format", "json"))
    assert {e["actor"] for e in trail} == {ACTOR}
    assert trail[0]["data"]["title"] == TITLE
    assert trail[2]["data"]["reason"] == REASON
    (state,) = json.loads(shown(slatrail, "escalations", "--as-of", AS_OF, "--format", "json"))
    assert state["reason"] == f"manual escalation: {REASON}"
    reports = json.loads(shown(slatrail, "report", "--month", "2026-03", "--as-of", AS_OF,
                               "--format", "json"))  # fmt: skip
    assert CUSTOMER in {r["customer"] for r in reports}


def test_the_audit_export_keeps_the_exact_values(slatrail: Run, tmp_path: Path) -> None:
    exported = slatrail("export", "--format", "csv")
    assert exported.returncode == 0, exported.stderr
    rows = list(csv.DictReader(io.StringIO(exported.stdout, newline="")))
    events = [row for row in rows if row["record"] == "event"]
    assert {row["actor"] for row in events} == {ACTOR}
    assert json.loads(events[0]["data"])["title"] == TITLE


def test_the_jsonl_export_keeps_the_exact_values_on_lines_no_splitter_cuts(
    slatrail: Run, tmp_path: Path
) -> None:
    exported = slatrail("export")
    assert exported.returncode == 0, exported.stderr
    lines = exported.stdout.splitlines()  # splits on U+2028 and U+0085 too
    assert len(lines) == 1 + 3 + 1  # header, the three events, the chain heads
    events = [json.loads(text) for text in lines[1:-1]]
    assert [e["actor"] for e in events] == [ACTOR] * 3
    assert events[0]["data"]["title"] == TITLE
    assert acted_on(exported.stdout) == []
    for form, program in (("jsonl", "verify_export.py"), ("csv", "verify_export_csv.py")):
        export = tmp_path / f"export.{form}"
        assert slatrail("export", "--format", form, "--output", str(export)).returncode == 0
        checked = run_documented(program, tmp_path, export)
        assert checked.returncode == 0, checked.stderr
        assert checked.stdout.strip() == "OK: 1 incidents, 3 events verified"


def test_the_report_csv_cannot_start_a_formula(slatrail: Run, tmp_path: Path) -> None:
    out = tmp_path / "report.csv"
    done = slatrail("report", "--month", "2026-03", "--as-of", AS_OF, "--format", "csv",
                    "--output", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr
    text = out.read_bytes().decode("utf-8")
    assert text.endswith("\r\n") and text.count("\n") == text.count("\r\n")  # RFC 4180 CRLF
    stdout = slatrail("report", "--month", "2026-03", "--as-of", AS_OF, "--format", "csv")
    assert stdout.stdout == text  # the same bytes on standard output
    header, *rows = list(csv.reader(io.StringIO(text, newline="")))
    assert CUSTOMER in {row[header.index("customer")] for row in rows}  # no formula start: exact


def test_ingest_messages_show_a_hostile_file_name_escaped(slatrail: Run, tmp_path: Path) -> None:
    name = f"in{CLEAR}\r\u202e.jsonl"
    source = tmp_path / name
    good = wire("reported", T10, reported_data("acme", "P2", title="ops\r\n\"x\", y"),
                incident_id="HONEST", actor="ops\r\nlead")  # fmt: skip
    source.write_bytes(line(good) + b"\n" + b"not json\n")
    out = shown(slatrail, "ingest", name, code=1)
    assert "accepted 1, duplicate 0, rejected 1" in out
    assert "written to in\\x1b[2J\\r\\u202e.rejected.jsonl" in out
    missing = slatrail("ingest", f"gone{CLEAR}\r.jsonl")
    assert missing.returncode == 2
    assert acted_on(missing.stderr) == [] and "gone\\x1b[2J\\r.jsonl" in missing.stderr
    (audit,) = [e for e in json.loads(shown(slatrail, "audit", "HONEST", "--format", "json"))]
    assert audit["actor"] == "ops\r\nlead" and audit["data"]["title"] == 'ops\r\n"x", y'
    trail = shown(slatrail, "audit", "HONEST")
    assert "ops\\r\\nlead" in trail


def test_verify_shows_a_hostile_anchors_path_escaped(slatrail: Run) -> None:
    done = slatrail("verify", "--anchors", f"gone{CLEAR}\u202e.csv")
    assert done.returncode == 2
    assert acted_on(done.stderr) == [] and "gone\\x1b[2J\\u202e.csv" in done.stderr
