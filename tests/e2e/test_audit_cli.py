"""Auditors at the command line: bitemporal answers, `audit`, `export` verified by the
documented independent code, `verify` with anchors — the `slatrail` console script in a scratch
directory, over a store whose `recorded_at` instants were pinned when it was written."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from slatrail.domain.model import GENESIS_HASH, incident_uuid
from slatrail.infra.bootstrap import read_contracts
from slatrail.infra.store import open_application
from slatrail.infra.wire import decode
from tests.builders import line, reported_data, utc, wire

pytestmark = pytest.mark.e2e

SLATRAIL = str(Path(sys.executable).parent / "slatrail")
DOCS = Path(__file__).resolve().parents[2] / "docs" / "audit.md"
# A Python without slatrail installed: the documented code must run on its own.
BARE_PYTHON = str(Path(sys.base_prefix) / "bin" / "python3")

T10 = utc(2026, 3, 2, 10)
MIN = timedelta(minutes=1)

Run = Callable[..., subprocess.CompletedProcess[str]]


def record(app: Any, message: dict[str, Any], *, now: Any) -> None:
    outcome = app.record([decode(line(message))], now=now)[0]
    assert outcome.status == "accepted", outcome


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """LATE: enterprise P1 (response 15m) reported 10:00, acknowledged 10:10 but recorded only
    at 10:40. OTHER: brightcall P3, reported the next day, with a quote and non-ASCII text."""
    path = tmp_path / "store.db"
    app = open_application(f"sqlite:///{path}", read_contracts(None))
    late = {"incident_id": "LATE"}
    record(app, wire("reported", T10, reported_data("acme-rtc", "P1"), **late), now=T10)
    record(app, wire("triaged", T10 + 2 * MIN, {"priority": "P1"}, **late), now=T10 + 2 * MIN)
    record(app, wire("acknowledged", T10 + 10 * MIN, **late), now=T10 + 40 * MIN)
    record(app, wire("resolved", T10 + 60 * MIN, {"resolution": "fixed"}, **late),
           now=T10 + 61 * MIN)  # fmt: skip
    other = {"incident_id": "OTHER", "actor": "王芳"}
    next_day = T10 + 24 * 60 * MIN
    data = reported_data("brightcall", "P3", description='日志 "quoted"\nline two')
    record(app, wire("reported", next_day, data, **other), now=next_day)
    record(app, wire("acknowledged", next_day + 30 * MIN, **other), now=next_day + 31 * MIN)
    app.close()
    return path


@pytest.fixture
def slatrail(tmp_path: Path, store: Path) -> Run:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLATRAIL_")}
    env.update(SLATRAIL_STORE=f"sqlite:///{store}", SLATRAIL_LOG_LEVEL="error")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [SLATRAIL, *args], cwd=tmp_path, env=env,
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip

    return run


def response(run: Run, *args: str) -> dict[str, Any]:
    done = run("sla", "--incident", "LATE", "--format", "json", *args)
    assert done.returncode == 0, done.stderr
    clock: dict[str, Any] = json.loads(done.stdout)[0]["metrics"]["response"]
    return clock


# -- bitemporal ----------------------------------------------------------------------------


def test_a_late_acknowledgement_is_met_in_event_time_but_was_breached_as_known_then(
    slatrail: Run,
) -> None:
    as_of = response(slatrail, "--as-of", "2026-03-02T10:30:00Z")
    assert (as_of["status"], as_of["elapsed_s"], as_of["stopped_at"]) == (
        "met", 600.0, "2026-03-02T10:10:00Z"
    )  # fmt: skip
    known = response(slatrail, "--as-known-at", "2026-03-02T10:30:00Z")
    assert (known["status"], known["elapsed_s"], known["stopped_at"]) == ("breached", 1800.0, None)
    both = response(
        slatrail, "--as-of", "2026-03-02T10:30:00Z", "--as-known-at", "2026-03-02T10:30:00Z"
    )
    assert both == known
    # Reproducible forever: the same questions give the same answers later.
    assert response(slatrail, "--as-known-at", "2026-03-02T10:30:00Z") == known
    after = response(slatrail, "--as-of", "2026-03-02T10:30:00Z", "--as-known-at",
                     "2026-03-02T10:41:00Z")  # fmt: skip
    assert after == as_of


def test_report_and_audit_take_both_time_options(slatrail: Run) -> None:
    known = slatrail("audit", "LATE", "--as-known-at", "2026-03-02T10:30:00Z", "--format", "json")
    assert known.returncode == 0, known.stderr
    assert [e["type"] for e in json.loads(known.stdout)] == ["reported", "triaged"]
    report = slatrail("report", "--month", "2026-03", "--customer", "acme-rtc", "--format",
                      "json", "--as-known-at", "2026-03-02T10:30:00Z")  # fmt: skip
    assert report.returncode == 0, report.stderr


# -- audit ---------------------------------------------------------------------------------


def test_the_audit_trail_shows_every_field_the_hash_and_what_each_event_caused(
    slatrail: Run,
) -> None:
    done = slatrail("audit", "LATE", "--as-of", "2026-03-02T12:00:00Z")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith("audit trail of LATE as of 2026-03-02T12:00:00Z — 4 events")
    assert re.search(
        r"3\s+2026-03-02T10:10:00Z\s+2026-03-02T10:40:00Z\s+acknowledged\s+li\.wei", out
    )
    assert "↳ response clock stopped: met 10m/15m (recorded 30m after it occurred, after the " \
           "due time 2026-03-02T10:15:00Z: as known then, it was breached)" in out  # fmt: skip
    assert "↳ resolution clock stopped: met 1h/4h" in out
    assert "↳ postmortem clock started, due 2026-03-07T11:00:00Z" in out
    trail = json.loads(slatrail("audit", "LATE", "--format", "json").stdout)
    assert [e["prev_hash"] for e in trail[1:]] == [e["hash"] for e in trail[:-1]]
    assert trail[0]["prev_hash"] == GENESIS_HASH
    assert {"at", "kind", "metric", "text"} == set(trail[2]["annotations"][0])


# -- export, verified by the documented code -----------------------------------------------


def documented_program(name: str) -> str:
    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.S)
    [program] = [b for b in blocks if b.startswith(f"# {name}:")]
    imports = re.findall(r"^\s*(?:import|from)\s+([\w.]+)", program, re.M)
    assert not {"domain", "infra", "projections", "consumers", "slatrail"} & {
        i.split(".")[0] for i in imports
    }
    return program


def run_documented(name: str, tmp_path: Path, export: Path) -> subprocess.CompletedProcess[str]:
    script = tmp_path / name
    script.write_text(documented_program(name), encoding="utf-8")
    return subprocess.run(
        [BARE_PYTHON, "-I", str(script), str(export)], cwd=tmp_path,
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_the_documented_program_is_about_twenty_lines_and_imports_no_slatrail() -> None:
    for name in ("verify_export.py", "verify_export_csv.py"):
        assert len(documented_program(name).splitlines()) <= 26


def test_a_jsonl_export_verifies_with_the_documented_program(slatrail: Run, tmp_path: Path) -> None:
    export = tmp_path / "export.jsonl"
    done = slatrail("export", "--output", str(export))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"exported 6 events of 2 incidents to {export} (jsonl)"
    records = [json.loads(line) for line in export.read_text(encoding="utf-8").splitlines()]
    assert records[0]["record"] == "export" and records[0]["format"] == "slatrail.export/v1"
    assert records[-1]["record"] == "chain_heads"
    assert sorted(h["incident_id"] for h in records[-1]["heads"]) == ["LATE", "OTHER"]
    checked = run_documented("verify_export.py", tmp_path, export)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.strip() == "OK: 2 incidents, 6 events verified"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.replace('"actor": "li.wei"', '"actor": "li.wej"', 1), "does not verify"),
        (lambda t: t.replace('"fixed"', '"fixes"'), "LATE #4 does not verify"),
        (lambda t: "\n".join(t.splitlines()[:-1]) + "\n", "chain heads do not match"),
        (
            lambda t: "\n".join(x for x in t.splitlines() if '"position": 2' not in x) + "\n",
            "does not verify",
        ),
    ],
    ids=["altered-actor", "altered-data", "truncated", "deleted-events"],
)
def test_the_documented_program_rejects_a_tampered_export(
    slatrail: Run, tmp_path: Path, change: Callable[[str], str], message: str
) -> None:
    export = tmp_path / "export.jsonl"
    assert slatrail("export", "--output", str(export)).returncode == 0
    tampered = tmp_path / "tampered.jsonl"
    tampered.write_text(change(export.read_text(encoding="utf-8")), encoding="utf-8")
    checked = run_documented("verify_export.py", tmp_path, tampered)
    assert checked.returncode == 1
    assert message in checked.stderr


def test_a_csv_export_verifies_with_the_documented_csv_program(
    slatrail: Run, tmp_path: Path
) -> None:
    export = tmp_path / "export.csv"
    assert slatrail("export", "--format", "csv", "--output", str(export)).returncode == 0
    rows = export.read_text(encoding="utf-8").splitlines()
    assert rows[0] == ("record,incident_id,position,type,occurred_at,recorded_at,actor,source,"
                       "message_id,data,prev_hash,hash,in_range,redrive,"
                       "leaf_index,inclusion_path")  # fmt: skip
    assert [r.split(",")[0] for r in rows[-2:]] == ["chain_head", "chain_head"]
    checked = run_documented("verify_export_csv.py", tmp_path, export)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.strip() == "OK: 2 incidents, 6 events verified"
    tampered = tmp_path / "tampered.csv"
    tampered.write_text(export.read_text(encoding="utf-8").replace("王芳", "王方"), "utf-8")
    assert run_documented("verify_export_csv.py", tmp_path, tampered).returncode == 1


AWKWARD = 'li "wei",\r\nops'  # CR, LF, quote and comma: each must survive a CSV round trip


def test_a_csv_export_of_cr_lf_quotes_and_commas_round_trips_and_verifies(
    slatrail: Run, store: Path, tmp_path: Path
) -> None:
    """RFC 4180: a field holding CR was written unquoted (bare LF line ends), so every CSV
    reader split the row and the documented verifier crashed on an honest export."""
    app = open_application(f"sqlite:///{store}", read_contracts(None))
    odd = {"incident_id": "ODD", "actor": AWKWARD, "source": "pager\rduty"}  # a CR alone
    day = T10 + 48 * 60 * MIN
    title = 'drop\r\n"a", b'
    record(app, wire("reported", day, reported_data("acme-rtc", "P2", title=title), **odd),
           now=day)  # fmt: skip
    change = {"priority": "P1", "reason": 'more\rusers, "all"\n'}
    record(app, wire("priority_changed", day + MIN, change, incident_id="ODD",
                     actor="=HYPERLINK(\"http://x\")"), now=day + MIN)  # fmt: skip
    app.close()
    export = tmp_path / "export.csv"
    assert slatrail("export", "--format", "csv", "--output", str(export)).returncode == 0
    raw = export.read_bytes().decode("utf-8")
    rows = list(csv.reader(io.StringIO(raw, newline=""), strict=True))
    assert len(rows) == 1 + 8 + 3  # header, events, one chain head per incident
    assert all(len(row) == len(rows[0]) for row in rows)
    assert raw.endswith("\r\n") and raw.count("\r\n") >= len(rows)  # CRLF after every record
    odd_rows = [dict(zip(rows[0], row, strict=True)) for row in rows if row[1] == "ODD"]
    reported, changed, head = odd_rows
    assert (reported["actor"], reported["source"]) == (AWKWARD, "pager\rduty")
    assert json.loads(reported["data"])["title"] == title
    assert changed["actor"] == '=HYPERLINK("http://x")'  # exact: the audit export is not altered
    assert json.loads(changed["data"])["reason"] == 'more\rusers, "all"\n'
    assert head["record"] == "chain_head" and head["hash"] == changed["hash"]
    checked = run_documented("verify_export_csv.py", tmp_path, export)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.strip() == "OK: 3 incidents, 8 events verified"
    tampered = tmp_path / "tampered.csv"
    tampered.write_bytes(raw.replace("pager\rduty", "pager\rdutz").encode("utf-8"))
    assert run_documented("verify_export_csv.py", tmp_path, tampered).returncode == 1
    assert slatrail("verify", "--anchors", str(export)).returncode == 0
    jsonl = tmp_path / "export.jsonl"
    assert slatrail("export", "--output", str(jsonl)).returncode == 0
    assert run_documented("verify_export.py", tmp_path, jsonl).returncode == 0


def test_a_filtered_export_holds_whole_chains_marking_what_is_in_range(
    slatrail: Run, tmp_path: Path
) -> None:
    export = tmp_path / "window.jsonl"
    done = slatrail("export", "--from", "2026-03-02T10:30:00Z", "--to", "2026-03-02T12:00:00Z",
                    "--output", str(export))  # fmt: skip
    assert done.returncode == 0, done.stderr
    events = [r for r in map(json.loads, export.read_text().splitlines()) if r["record"] == "event"]
    assert [(e["incident_id"], e["position"], e["in_range"]) for e in events] == [
        ("LATE", 1, False), ("LATE", 2, False), ("LATE", 3, False), ("LATE", 4, True),
    ]  # fmt: skip
    assert run_documented("verify_export.py", tmp_path, export).returncode == 0
    by_customer = slatrail("export", "--customer", "brightcall", "--format", "csv")
    assert by_customer.returncode == 0
    assert {row.split(",")[1] for row in by_customer.stdout.splitlines()[1:]} == {"OTHER"}


# -- verify and its anchors -----------------------------------------------------------------


def forge_consistently(store: Path, incident_id: str, position: int, actor: str) -> None:
    """What someone holding the database and the code can do: change an event and recompute
    every later hash, so that the chain and the receipts are consistent again."""
    app = open_application(f"sqlite:///{store}", read_contracts(None))
    events = app.incident_events(incident_id)
    app.close()
    conn = sqlite3.connect(store)
    prev = events[position - 2].hash if position > 1 else GENESIS_HASH
    for event in events[position - 1 :]:
        changed = replace(event, prev_hash=prev, actor=actor if event.position == position
                          else event.actor)  # fmt: skip
        changed = replace(changed, hash=changed.computed_hash())
        key = (incident_uuid(incident_id).hex, event.position)
        (state,) = conn.execute(
            "SELECT state FROM stored_events WHERE originator_id = ? AND originator_version = ?",
            key,
        ).fetchone()
        body = json.loads(state)
        body.update(actor=changed.actor, prev_hash=changed.prev_hash, hash=changed.hash)
        conn.execute(
            "UPDATE stored_events SET state = ? WHERE originator_id = ? AND originator_version = ?",
            (json.dumps(body).encode(), *key),
        )
        prev = changed.hash
    conn.commit()
    conn.close()


def test_verify_exits_1_on_tampering_and_anchors_catch_a_consistent_rewrite(
    slatrail: Run, store: Path, tmp_path: Path
) -> None:
    assert slatrail("verify").returncode == 0
    anchors = tmp_path / "anchors.jsonl"
    assert slatrail("export", "--output", str(anchors)).returncode == 0
    assert slatrail("verify", "--anchors", str(anchors)).returncode == 0
    forge_consistently(store, "LATE", 2, "someone.else")
    assert slatrail("verify").returncode == 0  # consistent: only an anchor can tell
    done = slatrail("verify", "--anchors", str(anchors))
    assert done.returncode == 1
    assert "LATE #4: anchor_mismatch: anchored hash" in done.stdout
    csv_anchors = tmp_path / "anchors.csv"
    csv_anchors.write_text("record,incident_id,position,hash\n", encoding="utf-8")
    bad = slatrail("verify", "--anchors", str(csv_anchors))
    assert bad.returncode == 2
    assert "no chain heads in it" in bad.stderr
