"""Logs a person can read on a terminal, JSON for machines: `--log-format`, and a quiet demo."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

SLATRAIL = str(Path(sys.executable).parent / "slatrail")


def run(tmp_path: Path, *args: str, tty: bool = False) -> tuple[int, str, str]:
    """`slatrail ARGS` in tmp_path; stderr is a terminal when `tty` (stdout always a pipe)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLATRAIL_")}
    if not tty:
        done = subprocess.run([SLATRAIL, *args], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=120, check=False)  # fmt: skip
        return done.returncode, done.stdout, done.stderr
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen([SLATRAIL, *args], cwd=tmp_path, env=env,
                                stdout=subprocess.PIPE, stderr=slave)  # fmt: skip
        os.close(slave)
        chunks = []
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the child closed its end
                break
            if not chunk:
                break
            chunks.append(chunk)
        out = proc.stdout.read() if proc.stdout else b""
        code = proc.wait(120)
    finally:
        os.close(master)
    return code, out.decode(), b"".join(chunks).decode(errors="replace")


@pytest.fixture
def bad_input(tmp_path: Path) -> Path:
    path = tmp_path / "bad.jsonl"
    path.write_text("not json\n")
    return path


def test_log_format_json_writes_one_json_object_a_line(tmp_path: Path, bad_input: Path) -> None:
    code, _, err = run(tmp_path, "--log-format", "json", "ingest", str(bad_input), tty=True)
    assert code == 1
    logged = [line for line in err.splitlines() if "message_rejected" in line]
    events = [json.loads(line) for line in logged]  # on a terminal too
    assert any(e["event"] == "message_rejected" and e["code"] == "invalid_json" for e in events)


def test_log_format_console_is_readable_key_values(tmp_path: Path, bad_input: Path) -> None:
    code, _, err = run(tmp_path, "--log-format", "console", "ingest", str(bad_input))
    assert code == 1
    line = next(x for x in err.splitlines() if "message_rejected" in x)
    assert not line.lstrip().startswith("{")
    assert "[warning" in line and "code=invalid_json" in line


def test_auto_is_console_on_a_terminal_and_json_otherwise(tmp_path: Path, bad_input: Path) -> None:
    _, _, on_terminal = run(tmp_path, "ingest", str(bad_input), tty=True)
    line = next(x for x in on_terminal.splitlines() if "message_rejected" in x)
    assert not line.lstrip().startswith("{") and "code=invalid_json" in line
    _, _, piped = run(tmp_path, "ingest", str(bad_input))
    line = next(x for x in piped.splitlines() if "message_rejected" in x)
    assert json.loads(line)["code"] == "invalid_json"


def test_an_unknown_log_format_is_a_usage_error(tmp_path: Path) -> None:
    code, _, err = run(tmp_path, "--log-format", "xml", "verify")
    assert code == 2 and "--log-format" in err


@pytest.mark.parametrize("tty", [True, False])
def test_demo_greets_with_its_summary_not_with_warnings(tmp_path: Path, tty: bool) -> None:
    code, out, err = run(tmp_path, "demo", tty=tty)
    assert code == 0, err
    assert out.startswith("slatrail demo — ")
    assert "rejected 3 (" in out  # the expected rejects are summarised …
    assert "message_rejected" not in err  # … not logged one by one
    assert not [line for line in err.splitlines() if '"level": "warning"' in line]
