"""The auditor's offline verifier of docs/audit.md §9, extracted from the docs: it accepts the
checkpoints, inclusion proofs (of `prove` and of an export) and consistency proofs slatrail
makes, run by a Python without slatrail; and refuses each with one bit flipped in any field,
and a checkpoint checked with another key."""

from __future__ import annotations

import base64
import contextlib
import csv
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from slatrail.domain.merkle import leaf_hash, verify_inclusion
from slatrail.domain.model import canonical_json
from slatrail.infra.bootstrap import read_contracts
from slatrail.infra.cli import main
from slatrail.infra.store import open_application
from slatrail.infra.wire import decode
from tests.builders import line as message_line
from tests.builders import reported_data, utc, wire
from tests.e2e.test_audit_cli import BARE_PYTHON, DOCS, MIN, T10

pytestmark = pytest.mark.e2e

NAME = "verify_log.py"
Check = Callable[[str, str, str], tuple[int, str]]


def program() -> str:
    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.S)
    [text] = [b for b in blocks if b.startswith(f"# {NAME}:")]
    return str(text)


def test_the_documented_verifier_is_under_100_lines_and_imports_no_slatrail() -> None:
    text = program()
    assert len(text.splitlines()) < 100
    imported = set(re.findall(r"^(?:import|from)\s+([\w., ]+)", text, re.M))
    modules = {m.strip().split(".")[0] for line in imported for m in line.split(",")}
    assert modules <= {"base64", "hashlib", "json", "sys", "cryptography"}, modules


def record(store: Path, incident: str, kind: str, at: Any, data: Any = None) -> None:
    app = open_application(f"sqlite:///{store}", read_contracts(None))
    message = wire(kind, at, data, incident_id=incident, message_id=f"{incident}-{kind}")
    assert app.record([decode(message_line(message))], now=at + MIN)[0].status == "accepted"
    app.close()


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """LATE (four events) and OTHER (two): twelve stored records with their receipts."""
    path = tmp_path / "store.db"
    record(path, "LATE", "reported", T10, reported_data("acme-rtc", "P1"))
    record(path, "LATE", "triaged", T10 + 2 * MIN, {"priority": "P1"})
    record(path, "LATE", "acknowledged", T10 + 10 * MIN)
    record(path, "LATE", "resolved", T10 + 60 * MIN, {"resolution": "fixed"})
    data = reported_data("brightcall", "P3", description='日志 "quoted"\nline two')
    record(path, "OTHER", "reported", T10 + 24 * 60 * MIN, data)
    record(path, "OTHER", "acknowledged", T10 + 25 * 60 * MIN)
    return path


@pytest.fixture
def files(tmp_path: Path, store: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A signing key, two checkpoints (the second after one more event), `prove` outputs and a
    JSONL export, made by slatrail over a real SQLite store."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SLATRAIL_STORE", f"sqlite:///{store}")
    monkeypatch.setenv("SLATRAIL_LOG_LEVEL", "error")

    def run(*args: str) -> str:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main(list(args)) == 0
        return out.getvalue()

    run("keys", "init")
    run("keys", "init", "--output", "other.key")
    run("checkpoint", "--output", "old.checkpoint")
    Path("proof.json").write_text(run("prove", "OTHER"))
    run("export", "--output", "export.jsonl")
    run("checkpoint", "--output", "new.checkpoint")
    Path("consistency.json").write_text(
        run("prove", "--consistency", "old.checkpoint", "new.checkpoint")
    )
    return {
        "key": Path("slatrail-signing.key.pub").read_text().strip(),
        "other": Path("other.key.pub").read_text().strip(),
        "dir": tmp_path,
    }


@pytest.fixture
def check(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Check:
    """The documented program run in this process (fast, for the many tampered inputs)."""
    text = program()

    def run(key: str, mode: str, path: str) -> tuple[int, str]:
        monkeypatch.setattr(sys, "argv", [NAME, key, mode, path])
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            try:
                exec(compile(text, NAME, "exec"), {"__name__": "__main__"})
            except SystemExit as done:
                return 1, str(done.code)
        return 0, out.getvalue()

    return run


def test_a_python_without_slatrail_accepts_every_honest_file(
    files: dict[str, Any], tmp_path: Path
) -> None:
    script = tmp_path / NAME
    script.write_text(program())
    # only `cryptography` (and its cffi backend) beside the standard library
    site = Path(__import__("cryptography").__file__).parent.parent
    path = tmp_path / "site"
    path.mkdir()
    for entry in site.iterdir():
        if entry.name.startswith(("cryptography", "cffi", "_cffi_backend", "pycparser")):
            (path / entry.name).symlink_to(entry)
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(path)}
    for mode, name, expected in (
        ("checkpoint", "old.checkpoint", "OK: checkpoint of 12 records"),
        ("inclusion", "proof.json", "OK: 2 events included in the checkpoint of 12 records"),
        ("inclusion", "export.jsonl", "OK: 6 events included in the checkpoint of 12 records"),
        ("consistency", "consistency.json", "OK: size 12 extends size 12"),
    ):
        done = subprocess.run(
            [BARE_PYTHON, str(script), files["key"], mode, name], cwd=tmp_path, env=env,
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(expected), done.stdout


def _flip_b64(text: str) -> str:
    raw = bytearray(base64.b64decode(text))
    raw[len(raw) // 2] ^= 0x04
    return base64.b64encode(bytes(raw)).decode()


def _flip_note(note: str, line: int) -> list[str]:
    """The note with one bit flipped in its line `line` (text lines, then the signature)."""
    lines = note.split("\n")
    if lines[line].startswith("\u2014"):
        dash, name, blob = lines[line].split(" ")
        lines[line] = f"{dash} {name} {_flip_b64(blob)}"
    elif line == 2:
        lines[line] = _flip_b64(lines[line])
    else:
        lines[line] = lines[line][:-1] + chr(ord(lines[line][-1]) ^ 1)
    return ["\n".join(lines)]


def test_a_flipped_bit_in_any_field_of_a_checkpoint_is_refused(
    files: dict[str, Any], check: Check
) -> None:
    note = Path("old.checkpoint").read_text()
    assert check(files["key"], "checkpoint", "old.checkpoint")[0] == 0
    assert check(files["other"], "checkpoint", "old.checkpoint")[0] == 1  # another key
    for line in (0, 1, 2, 3, 5):  # origin, size, root, known-at, signature
        [bad] = _flip_note(note, line)
        Path("bad.checkpoint").write_text(bad)
        code, why = check(files["key"], "checkpoint", "bad.checkpoint")
        assert code == 1 and why.startswith("REJECTED"), (line, why)


def test_a_flipped_bit_in_any_field_of_an_inclusion_proof_is_refused(
    files: dict[str, Any], check: Check
) -> None:
    honest = json.loads(Path("proof.json").read_text())
    assert check(files["key"], "inclusion", "proof.json")[0] == 0
    assert check(files["other"], "inclusion", "proof.json")[0] == 1
    tampered: list[dict[str, Any]] = []
    for n in range(len(honest["proofs"][1]["path"])):
        doc = json.loads(json.dumps(honest))
        doc["proofs"][1]["path"][n] = _flip_b64(doc["proofs"][1]["path"][n])
        tampered.append(doc)
    doc = json.loads(json.dumps(honest))
    doc["proofs"][0]["leaf_index"] ^= 1
    tampered.append(doc)
    for member, value in honest["proofs"][0]["event"].items():
        doc = json.loads(json.dumps(honest))
        event = doc["proofs"][0]["event"]
        if isinstance(value, str):
            event[member] = value[:-1] + chr(ord(value[-1]) ^ 1)
        elif isinstance(value, int):
            event[member] = value ^ 1
        elif value is None:
            event[member] = "x"
        else:
            event[member] = {**value, "title": value["title"] + "!"}
        tampered.append(doc)
    for line in (1, 2, 5):
        doc = json.loads(json.dumps(honest))
        [doc["checkpoint"]["note"]] = _flip_note(honest["checkpoint"]["note"], line)
        tampered.append(doc)
    for doc in tampered:
        Path("bad.json").write_text(json.dumps(doc, indent=2))
        code, why = check(files["key"], "inclusion", "bad.json")
        assert code == 1 and why.startswith("REJECTED"), why


def test_a_tampered_export_event_is_refused(files: dict[str, Any], check: Check) -> None:
    lines = Path("export.jsonl").read_text().splitlines()
    assert check(files["key"], "inclusion", "export.jsonl")[0] == 0
    record = json.loads(lines[3])
    record["actor"] = "mallory"
    Path("bad.jsonl").write_text("\n".join([*lines[:3], json.dumps(record), *lines[4:]]))
    code, why = check(files["key"], "inclusion", "bad.jsonl")
    assert code == 1 and "is not in the log" in why


def test_a_csv_export_carries_the_checkpoint_and_each_events_inclusion_proof(
    files: dict[str, Any], check: Check
) -> None:
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["export", "--format", "csv", "--output", "export.csv"]) == 0
    with Path("export.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    [row] = [r for r in rows if r["record"] == "checkpoint"]
    assert rows[0] is row  # first, as the JSONL header carries it
    checkpoint = json.loads(row["data"])
    assert (int(row["position"]), row["hash"]) == (checkpoint["tree_size"], checkpoint["root"])
    Path("csv.checkpoint").write_text(checkpoint["note"])
    assert check(files["key"], "checkpoint", "csv.checkpoint")[0] == 0
    jsonl = [json.loads(text) for text in Path("export.jsonl").read_text().splitlines()]
    proofs = {(r["incident_id"], r["position"]): r["inclusion"] for r in jsonl if "inclusion" in r}
    events = [r for r in rows if r["record"] == "event"]
    assert len(events) == len(proofs) == 6
    root = base64.b64decode(checkpoint["root"])
    for r in events:
        proof = {"leaf_index": int(r["leaf_index"]), "path": r["inclusion_path"].split()}
        assert proof == proofs[(r["incident_id"], int(r["position"]))]  # the JSONL's proof
        event = {k: r[k] for k in ("incident_id", "type", "occurred_at", "recorded_at", "actor",
                                   "message_id", "prev_hash", "hash")}  # fmt: skip
        event.update(position=int(r["position"]), source=r["source"] or None)
        event.update(data=json.loads(r["data"]))
        path = [base64.b64decode(p) for p in proof["path"]]
        size, leaf = checkpoint["tree_size"], leaf_hash(canonical_json(event))
        assert verify_inclusion(proof["leaf_index"], size, leaf, path, root)
        forged = leaf_hash(canonical_json({**event, "actor": "mallory"}))
        assert not verify_inclusion(proof["leaf_index"], size, forged, path, root)


def test_a_flipped_bit_in_any_field_of_a_consistency_proof_is_refused(
    files: dict[str, Any], check: Check, store: Path
) -> None:
    # a consistency proof with a real path: from the old checkpoint to one after two more
    # events of another incident
    from slatrail.infra.bootstrap import read_contracts
    from slatrail.infra.store import open_application
    from slatrail.infra.wire import decode
    from tests.builders import reported_data, wire

    app = open_application(f"sqlite:///{store}", read_contracts(None))
    now = utc(2026, 3, 5, 9)
    message = wire("reported", now, reported_data("acme-rtc", "P2"), incident_id="THIRD")
    assert app.record([decode(message_line(message))], now=now)[0].status == "accepted"
    app.close()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["checkpoint", "--output", "third.checkpoint"]) == 0
    with contextlib.redirect_stdout(out := io.StringIO()):
        assert main(["prove", "--consistency", "old.checkpoint", "third.checkpoint"]) == 0
    honest = json.loads(out.getvalue())
    assert honest["proof"]
    Path("c.json").write_text(out.getvalue())
    assert check(files["key"], "consistency", "c.json") == (0, "OK: size 14 extends size 12\n")
    tampered = []
    for n in range(len(honest["proof"])):
        doc = json.loads(json.dumps(honest))
        doc["proof"][n] = _flip_b64(doc["proof"][n])
        tampered.append(doc)
    for which in ("old", "new"):
        for number in (1, 2, 5):
            doc = json.loads(json.dumps(honest))
            [doc[which]["note"]] = _flip_note(honest[which]["note"], number)
            tampered.append(doc)
    for doc in tampered:
        Path("bad.json").write_text(json.dumps(doc))
        code, why = check(files["key"], "consistency", "bad.json")
        assert code == 1 and why.startswith("REJECTED"), why


def test_a_monthly_report_in_every_format_carries_the_checkpoint_it_was_computed_at(
    files: dict[str, Any], check: Check
) -> None:
    def report(*args: str) -> str:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main(["report", "--month", "2026-03", *args]) == 0
        return out.getvalue()

    reports = json.loads(report("--format", "json"))
    checkpoints = {json.dumps(r["checkpoint"], sort_keys=True) for r in reports}
    assert len(checkpoints) == 1
    checkpoint = reports[0]["checkpoint"]
    assert checkpoint["tree_size"] == 12  # every stored record the figures were computed from
    Path("report.checkpoint").write_text(checkpoint["note"])
    assert check(files["key"], "checkpoint", "report.checkpoint")[0] == 0
    root = checkpoint["root"]
    text = report("--format", "csv")
    assert text.splitlines()[0].endswith(",checkpoint_origin,checkpoint_tree_size,checkpoint_root")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert len(rows) == 1 + len(reports)
    assert all(row[-3:] == ["slatrail.local/incidents", "12", root] for row in rows[1:])
    Path("csv.checkpoint").write_text(rows[1][-4])  # the signed note, exactly
    assert check(files["key"], "checkpoint", "csv.checkpoint") == (
        0, f"OK: checkpoint of 12 records, root {root}\n"
    )  # fmt: skip
    assert f"computed at checkpoint slatrail.local/incidents size 12 root {root}" in report()
    report("--format", "html", "--output", "report.html")
    page = Path("report.html").read_text()
    assert f"12 records · root {root}" in page and "\u2014 slatrail.local/incidents " in page


def test_the_signing_key_is_private_never_overwritten_and_never_printed(
    files: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    key = Path("slatrail-signing.key")
    assert key.stat().st_mode & 0o777 == 0o600
    secret = key.read_text().strip()
    capsys.readouterr()
    assert main(["keys", "init"]) == 2  # never over an existing key
    assert key.read_text().strip() == secret
    key.chmod(0o640)
    assert main(["checkpoint"]) == 2  # a key others can read is refused
    out = capsys.readouterr()
    assert "readable by others" in out.err
    # PRIVATE+KEY+<name>+<key id>+<base64 seed>: the seed's base64 may itself hold "+"
    seed = secret.split("+", 4)[4]
    assert len(seed) > 40 and seed not in out.out + out.err


def test_plain_verify_uses_the_latest_stored_checkpoint_or_says_why_not(
    files: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    capsys.readouterr()
    assert main(["verify", "--skip-read-models"]) == 0
    assert "records checked against the checkpoint" in capsys.readouterr().out
    Path("slatrail-signing.key.pub").unlink()  # a host without the verifier key
    monkeypatch.setenv("SLATRAIL_SIGNING_KEY", "elsewhere.key")
    assert main(["verify", "--skip-read-models"]) == 0
    assert "latest checkpoint was not checked: no verifier key" in capsys.readouterr().out


def test_a_witness_accepts_only_consistent_growth_signed_by_the_key_without_the_store(
    files: dict[str, Any], store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record(store, "THIRD", "reported", utc(2026, 3, 5, 9), reported_data("acme-rtc", "P2"))
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["checkpoint", "--output", "third.checkpoint"]) == 0
    with contextlib.redirect_stdout(out := io.StringIO()):
        assert main(["prove", "--consistency", "old.checkpoint", "third.checkpoint"]) == 0
    Path("grow.json").write_text(out.getvalue())
    key = files["key"]
    nowhere = ["--store", f"sqlite:///{files['dir'] / 'absent.db'}"]  # the auditor has no store

    def witness(*args: str) -> int:
        return main([*nowhere, "witness", *args, "--state", "w.state", "--key", key])

    assert witness("old.checkpoint") == 0  # the first one seen
    assert witness("third.checkpoint", "--proof", "grow.json") == 0
    assert Path("w.state").read_text() == Path("third.checkpoint").read_text()
    assert witness("old.checkpoint", "--proof", "grow.json") == 1  # a rollback
    assert main([*nowhere, "witness", "third.checkpoint", "--state", "w2.state", "--key",
                 files["other"]]) == 1  # fmt: skip
    assert Path("w.state").read_text() == Path("third.checkpoint").read_text()
    assert not (files["dir"] / "absent.db").exists()
