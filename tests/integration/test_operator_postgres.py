"""Operator errors against the real PostgreSQL server (ISSUE 9 §4): a wrong password fails fast
naming the cause, read-only commands never create slatrail's tables, no password is printed."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
import pytest

from tests.builders import CONTRACTS_TOML, jsonl, reported_data, wire
from tests.servers import PostgresServer

pytestmark = pytest.mark.integration

SLATRAIL = str(Path(sys.executable).parent / "slatrail")
WRONG = "WrongPw4Test/x#y"
WRONG_PIECES = ("WrongPw4Test", "WrongPw4Test/x#y", quote("WrongPw4Test/x#y", safe=""))

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def run(tmp_path: Path) -> Run:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLATRAIL_", "POSTGRES_"))}

    def run(*args: str, stdin: str | None = None, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [SLATRAIL, *args], cwd=tmp_path, env={**env, **extra}, input=stdin,
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip

    return run


def with_password(url: str, password: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    user = parts.username or "postgres"
    return urlunsplit(parts._replace(netloc=f"{user}:{quote(password, safe='')}@{host}"))


def error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in done.stderr, done.stderr
    lines = [ln for ln in done.stderr.splitlines() if ln.strip() and not ln.startswith("{")]
    assert lines and lines[-1].startswith("slatrail"), done.stderr
    return lines[-1]


def tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
    return {row[0] for row in rows}


def test_a_wrong_password_fails_fast_saying_authentication_failed(
    run, postgres_url, postgres_server: PostgresServer
) -> None:
    url = with_password(postgres_url, WRONG)
    for fmt in ("json", "console"):
        started = time.monotonic()
        done = run("--store", url, "--log-level", "debug", "ingest", "-", stdin="",
                   SLATRAIL_LOG_FORMAT=fmt)  # fmt: skip
        took = time.monotonic() - started
        assert done.returncode == 2, done.stderr
        line = error_line(done)
        assert "authentication failed for user" in line, line
        assert took < 10, took
        output = done.stdout + done.stderr
        assert not any(p in output for p in WRONG_PIECES), output
        assert postgres_server.password not in output


def test_a_database_that_does_not_exist_is_named(run, postgres_server: PostgresServer) -> None:
    url = postgres_server.url_for("slatrail_no_such_db")
    done = run("--store", url, "ingest", "-", stdin="")
    assert done.returncode == 2, done.stderr
    assert "database 'slatrail_no_such_db' does not exist" in error_line(done)
    assert postgres_server.password not in done.stdout + done.stderr


@pytest.mark.parametrize(
    "argv",
    [["sla"], ["audit", "X"], ["escalations"], ["report", "--month", "2026-03"], ["export"],
     ["verify"], ["replay"], ["sla", "--from-read-model"]],
)  # fmt: skip
def test_a_read_only_command_never_creates_the_postgresql_store(run, postgres_url, argv) -> None:
    before = tables(postgres_url)
    done = run("--store", postgres_url, *argv)
    assert done.returncode == 1, done.stderr
    line = error_line(done)
    assert "no store at" in line or "no read models" in line, line
    assert "has no slatrail_events table" in line or "read" in line
    assert tables(postgres_url) == before


def test_verify_of_an_empty_postgresql_store_exits_1(run, postgres_url) -> None:
    done = run("--store", postgres_url, "ingest", "-", stdin="")
    assert done.returncode == 0, done.stderr
    verify = run("--store", postgres_url, "verify")
    assert verify.returncode == 1, verify.stderr
    assert "holds no events: nothing to verify" in error_line(verify)


def test_commands_on_a_real_postgresql_store_never_print_its_password(
    run, postgres_url, postgres_server: PostgresServer, tmp_path
) -> None:
    secret = postgres_server.password
    (tmp_path / "contracts.toml").write_text(CONTRACTS_TOML, encoding="utf-8")
    message = wire("reported", "2026-03-02T09:00:00Z", reported_data("acme", "P3"),
                   incident_id="PG-1")  # fmt: skip
    (tmp_path / "in.jsonl").write_text(jsonl([message, "{torn"]), encoding="utf-8")
    base = ["--store", postgres_url, "--log-level", "debug"]
    runs = [
        ["ingest", "in.jsonl"], ["sla"], ["audit", "PG-1"], ["escalations"], ["export"],
        ["report", "--month", "2026-03"], ["replay"], ["verify"], ["sla", "--from-read-model"],
    ]  # fmt: skip
    for index, argv in enumerate(runs):
        fmt = ("json", "console")[index % 2]
        done = run(*base, "--contracts", "contracts.toml", *argv, SLATRAIL_LOG_FORMAT=fmt)
        assert done.returncode in (0, 1), (argv, done.stderr)
        assert secret not in done.stdout + done.stderr, argv
        assert "Traceback" not in done.stderr
    demo = run(*base, "demo", "--out-dir", "demo", SLATRAIL_LOG_FORMAT="json")
    assert demo.returncode == 0, demo.stderr
    assert "slatrail demo — 2026-10, store postgresql://" in demo.stdout
    assert ":***@" in demo.stdout
    assert secret not in demo.stdout + demo.stderr
