"""Operator errors through the real `slatrail` console script (ISSUE 9 §4).

Every error is one line `slatrail…: <problem>` with a documented exit code (docs/decisions.md,
"Operator errors and exit codes"), never a traceback, never a password — in stdout, stderr and
the logs, in both log formats.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

import pytest

from slatrail.infra.ingest import BATCH_SIZE
from tests.builders import CONTRACTS_TOML, jsonl, reported_data, wire

pytestmark = pytest.mark.e2e

SLATRAIL = str(Path(sys.executable).parent / "slatrail")

# The password pieces: none may appear anywhere, whatever the URL's shape.
PIECES = ("PwOne7x", "PwTwo8y", "PwThree9z")
PLAIN = "".join(PIECES)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def bad_store_urls(port: int) -> dict[str, str]:
    """Every URL shape that printed the password before (ISSUE 9 §4), plus the unreachable
    server and a password given as a query parameter."""
    a, b, c = PIECES
    return {
        "mysql": f"mysql://ops:{PLAIN}@db.example:3306/slatrail",
        "postgresq": f"postgresq://ops:{PLAIN}@db.example/slatrail",
        "no_dbname": f"postgresql://ops:{PLAIN}@127.0.0.1:{port}",
        "hash": f"postgresql://ops:{a}#{b}{c}@127.0.0.1:{port}/slatrail",
        "slash": f"postgresql://ops:{a}/{b}{c}@127.0.0.1:{port}/slatrail",
        "at_and_query": f"postgresql://ops:{a}@{b}?{c}@127.0.0.1:{port}/slatrail",
        "port_70000": f"postgresql://ops:{PLAIN}@127.0.0.1:70000/slatrail",
        "port_text": f"postgresql://ops:{PLAIN}@127.0.0.1:five/slatrail",
        "refused": f"postgresql://ops:{PLAIN}@127.0.0.1:{port}/slatrail",
        "encoded": f"postgresql://ops:{quote(a + '/' + b + '#' + c, safe='')}@127.0.0.1:{port}/db",
        "query_password": f"postgresql://ops@127.0.0.1:{port}/slatrail?password={PLAIN}",
        "no_scheme": f"ops:{PLAIN}@127.0.0.1:{port}/slatrail",
    }


def leaks(text: str) -> list[str]:
    found = [p for p in PIECES if p in text]
    return found + (["percent-encoded password"] if quote(PIECES[0] + "/") in text else [])


def env_without_settings(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLATRAIL_", "POSTGRES_"))}
    return {**env, **extra}


@pytest.fixture
def run(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    def run(
        *args: str, stdin: str | None = None, timeout: float = 120, **extra_env: str
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [SLATRAIL, *args], cwd=tmp_path, env=env_without_settings(**extra_env), input=stdin,
            capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip

    return run


@pytest.fixture
def contracts_file(tmp_path: Path) -> Path:
    path = tmp_path / "contracts.toml"
    path.write_text(CONTRACTS_TOML, encoding="utf-8")
    return path


def messages(count: int, prefix: str = "I") -> list[dict[str, object]]:
    return [
        wire(
            "reported",
            "2026-03-02T09:00:00Z",
            reported_data("acme", "P3"),
            incident_id=f"{prefix}-{n}",
            message_id=f"{prefix}-{n}-m",
        )
        for n in range(count)
    ]


@pytest.fixture
def store(run, tmp_path: Path, contracts_file: Path) -> str:
    """A small SQLite store holding two incidents; returns its URL."""
    source = tmp_path / "in.jsonl"
    source.write_text(jsonl(messages(2)), encoding="utf-8")
    url = f"sqlite:///{tmp_path}/store.db"
    done = run("--store", url, "--contracts", str(contracts_file), "ingest", str(source))
    assert done.returncode == 0, done.stderr
    return url


def commands(run) -> list[str]:
    """The commands `slatrail --help` lists."""
    done = run("--help")
    assert done.returncode == 0
    section = done.stdout.split("positional arguments:", 1)[1].split("options:", 1)[0]
    names = re.findall(r"^ {4}(\w[\w-]*)\s", section, flags=re.MULTILINE)
    assert {"demo", "ingest", "sla", "audit", "verify", "export", "report"} <= set(names)
    return names


def argv_for(command: str, tmp_path: Path, port: int) -> list[str]:
    """Enough arguments for `command` to reach its store (or, for publish, its broker)."""
    source = tmp_path / "in.jsonl"
    if not source.exists():
        source.write_text(jsonl(messages(2)), encoding="utf-8")
    extra = {
        "ingest": [str(source)],
        "publish": [str(source)],
        "audit": ["I-0"],
        "report": ["--month", "2026-03"],
        "demo": ["--out-dir", str(tmp_path / "demo")],
    }
    prefix = ["--kafka", f"127.0.0.1:{port}"] if command in ("serve", "publish") else []
    return [*prefix, command, *extra.get(command, [])]


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    """The operator's error line: the last stderr line not a JSON log line."""
    assert "Traceback" not in done.stderr, done.stderr
    lines = [ln for ln in done.stderr.splitlines() if ln.strip() and not ln.startswith("{")]
    assert lines, done.stderr
    assert lines[-1].startswith("slatrail"), done.stderr
    return lines[-1]


# -- 1. no code path prints a password --------------------------------------------------------


SWEPT = ["mysql", "postgresq", "no_dbname", "hash", "slash", "at_and_query", "port_70000",
         "refused", "query_password", "no_scheme"]  # fmt: skip


@pytest.mark.parametrize("shape", SWEPT)
def test_no_command_prints_the_store_password_whatever_the_url(run, tmp_path, shape) -> None:
    port = closed_port()
    url = bad_store_urls(port)[shape]
    turn = SWEPT.index(shape)
    # publish never opens the store (it stops at the broker, after Kafka's connect timeout):
    # one shape is enough for it
    names = [name for name in commands(run) if name != "publish" or turn == 0]

    def attempt(job: tuple[str, str, str]) -> tuple[str, str, subprocess.CompletedProcess[str]]:
        command, fmt, how = job
        argv = ["--log-level", "debug", *argv_for(command, tmp_path, port)]
        if how == "flag":
            done = run("--store", url, *argv, timeout=60, SLATRAIL_LOG_FORMAT=fmt)
        else:
            done = run(*argv, timeout=60, SLATRAIL_STORE=url, SLATRAIL_LOG_FORMAT=fmt)
        return command, fmt, done

    # each command in both log formats across the shapes (JSON with --store, console with
    # SLATRAIL_STORE), alternating, to keep the sweep short
    styles = (("json", "flag"), ("console", "env"))
    jobs = [(c, *styles[(i + turn) % 2]) for i, c in enumerate(names)]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(attempt, jobs))
    for command, fmt, done in results:
        where = f"{command} ({fmt} logs): {done.stdout}{done.stderr}"
        assert not leaks(done.stdout + done.stderr), where
        assert done.returncode in (1, 2), where
        assert "Traceback" not in done.stderr, where
        if command != "publish":  # publish never opens the store (it stops at the broker)
            assert one_line_error(done).startswith("slatrail"), where


@pytest.mark.parametrize("shape", ["mysql", "slash", "port_70000", "refused"])
def test_no_read_model_url_prints_its_password(run, tmp_path, store, shape) -> None:
    url = bad_store_urls(closed_port())[shape]
    runs = [
        ("sla", "--from-read-model"), ("audit", "I-0", "--from-read-model"),
        ("escalations", "--from-read-model"), ("replay",), ("verify",),
    ]  # fmt: skip
    for argv in runs:
        for fmt in ("json", "console"):
            done = run(
                "--store", store, "--log-level", "debug", *argv,
                SLATRAIL_READ_MODEL=url, SLATRAIL_LOG_FORMAT=fmt, timeout=60,
            )  # fmt: skip
            where = f"{argv} {fmt}: {done.stdout}{done.stderr}"
            assert not leaks(done.stdout + done.stderr), where
            assert done.returncode == 2, where
            assert "read-model" in one_line_error(done) or "read models" in done.stderr, where


def test_the_one_redaction_hides_the_password_of_any_url_shape() -> None:
    import slatrail.infra.store
    from slatrail.infra.redact import Scrubber, redact_url

    assert (
        slatrail.infra.store.redact_url is redact_url
    )  # the store's messages use the one redaction
    for url in bad_store_urls(5432).values():
        assert not leaks(redact_url(url)), url
    assert redact_url("sqlite:////var/lib/a@b:c.db") == "sqlite:////var/lib/a@b:c.db"
    assert redact_url("postgresql://ops:pw@h:5/db") == "postgresql://ops:***@h:5/db"
    assert redact_url("postgresql://h/db?sslmode=require&password=x") == (
        "postgresql://h/db?sslmode=require&password=***"
    )
    scrub = Scrubber(urls=[bad_store_urls(5432)["slash"]])
    # a parser's error quoting a piece of the password cut at the '/'
    assert scrub(f"Port could not be cast to integer value as '{PIECES[0]}'") == (
        "Port could not be cast to integer value as '***'"
    )


# -- 2. one line for each operator error --------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["sla", "--as-of", "0001-01-01T00:00:00+01:00"], "argument --as-of: timestamp"),
        (["sla", "--as-known-at", "9999-12-31T23:59:59-01:00"], "out of range"),
        (["export", "--from", "0001-01-01T00:00:00+01:00"], "argument --from: timestamp"),
        (["export", "--to", "1969-12-31T23:59:59Z"], "out of range"),
        (["escalations", "--as-of", "0001-01-01T00:00:00+01:00"], "out of range"),
        (["audit", "X", "--as-of", "0001-01-01T00:00:00+01:00"], "out of range"),
        (["report", "--month", "0001-01"], "argument --month: '0001-01' is out of range"),
        (["report", "--month", "2026-13"], "not a month"),
        (["report", "--quarter", "0001-Q1"], "argument --quarter: '0001-Q1' is out of range"),
        (["report", "--month", "2026-10", "--as-of", "0001-01-01T00:00:00+01:00"], "--as-of"),
        (["demo", "--month", "0001-01"], "out of range"),
        (["demo", "--month", "9998-12"], "in the future"),
        (["demo", "--month", "tomorrow"], "not a month"),
    ],
)
def test_out_of_range_instants_and_periods_are_one_line_usage_errors(
    run, store, argv, words
) -> None:
    done = run("--store", store, *argv)
    assert done.returncode == 2, done.stderr
    line = one_line_error(done)
    assert words in line, line
    assert done.stderr.count("\n") <= 2, done.stderr  # the error line (+ its log line)


def test_the_last_month_and_quarter_accepted_give_a_report(run, store) -> None:
    for argv in (["--month", "9998-12"], ["--quarter", "9998-Q4"], ["--month", "1970-01"]):
        done = run("--store", store, "report", *argv, "--as-of", "2026-03-03T00:00:00Z")
        assert done.returncode == 0, done.stderr
        assert "Monthly service report as of 2026-03-03T00:00:00Z" in done.stdout


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("postgresql://ops:pw@127.0.0.1:70000/db", "bad port '70000'"),
        ("postgresql://ops:pw@127.0.0.1:0/db", "bad port 0"),
        ("postgresql://ops:pw@127.0.0.1:http/db", "bad port 'http'"),
        ("sqlite://x.db", "needs a path"),
    ],
)
def test_a_bad_port_or_path_in_the_store_url_is_one_line(run, url, words) -> None:
    done = run("--store", url, "ingest", "-", stdin="")
    assert done.returncode == 2, done.stderr
    assert words in one_line_error(done)


def test_a_store_file_that_is_not_a_database_is_named(run, tmp_path, contracts_file) -> None:
    (tmp_path / "notes.db").write_text("shopping list: milk, eggs\n" * 20)
    for argv in (["sla"], ["verify"], ["ingest", "-"]):
        done = run("--store", "sqlite:///notes.db", *argv, stdin="")
        assert done.returncode == 1, done.stderr
        line = one_line_error(done)
        assert "the store is damaged" in line and "not an SQLite database" in line, line
    assert (tmp_path / "notes.db").read_text().startswith("shopping list")


def test_a_truncated_store_is_named(run, store, tmp_path) -> None:
    path = tmp_path / "store.db"
    with sqlite3.connect(path) as db:  # fold the WAL into the file, then cut it
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = path.stat().st_size
    assert size > 8192
    with path.open("r+b") as handle:
        handle.truncate(size // 2)
    for argv in (["sla"], ["audit", "I-0"], ["verify"], ["export"], ["ingest", "-"]):
        done = run("--store", store, *argv, stdin="")
        assert done.returncode == 1, (argv, done.stderr)
        line = one_line_error(done)
        assert "the store is damaged" in line and "truncated" in line, line


def test_a_store_damaged_inside_is_one_line_not_a_traceback(run, store, tmp_path) -> None:
    path = tmp_path / "store.db"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
    data = bytearray(path.read_bytes())
    for offset in range(page_size, len(data)):  # garble every page but the header page
        data[offset] = 0xA5
    path.write_bytes(bytes(data))
    done = run("--store", store, "sla")
    assert done.returncode == 1, done.stderr
    assert "the store is damaged" in one_line_error(done)


def _read_only(tmp_path: Path, argv: list[str]) -> list[str]:
    """`argv` run with `tmp_path/ro` read-only: chmod when not root; as root (which ignores
    file modes) a read-only bind mount in a private mount namespace."""
    ro = tmp_path / "ro"
    if os.geteuid() != 0:
        for path in ro.iterdir():
            path.chmod(0o444)
        ro.chmod(0o555)
        return argv
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("running as root without unshare: cannot make a read-only store")
    probe = subprocess.run(
        [unshare, "-m", "--propagation", "private", "true"], capture_output=True, check=False
    )
    if probe.returncode != 0:
        pytest.skip(f"running as root and cannot unshare a mount namespace: {probe.stderr!r}")
    script = (
        f'mount --bind "{ro}" "{ro}" && mount -o remount,bind,ro "{ro}" '
        f'&& ! touch "{ro}/probe" 2>/dev/null && exec "$@"'
    )
    return [unshare, "-m", "--propagation", "private", "sh", "-c", script, "sh", *argv]


@pytest.mark.parametrize("argv", [["sla"], ["ingest", "-"], ["verify"]])
def test_a_read_only_store_is_one_line(run, store, tmp_path, argv) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    shutil.copy(tmp_path / "store.db", ro / "store.db")
    with sqlite3.connect(ro / "store.db") as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for leftover in ro.glob("store.db-*"):
        leftover.unlink()
    command = _read_only(tmp_path, [SLATRAIL, "--store", f"sqlite:///{ro}/store.db", *argv])
    done = subprocess.run(
        command, cwd=tmp_path, env=env_without_settings(), input="", capture_output=True,
        text=True, timeout=120, check=False,
    )  # fmt: skip
    try:
        assert done.returncode == 2, done.stderr
        line = one_line_error(done)
        assert "read-only" in line, line
    finally:
        ro.chmod(0o755)


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["export", "--output", "."], "argument --output: . is a directory"),
        (["export", "--output", "in.jsonl/x.jsonl"], "in.jsonl is not a directory"),
        (["export", "--output", "no/such/dir/x.jsonl"], "directory no/such/dir does not exist"),
        (["report", "--month", "2026-03", "--output", "."], "argument --output: . is a directory"),
        (["report", "--month", "2026-03", "--output", "in.jsonl/r.csv"], "not a directory"),
        (["report", "--month", "2026-03", "--format", "html", "--output", "in.jsonl/r.html"],
         "not a directory"),
        (["ingest", "in.jsonl", "--rejected", "."], "argument --rejected: . is a directory"),
        (["ingest", "in.jsonl", "--rejected", "in.jsonl/dead.jsonl"], "not a directory"),
        (["demo", "--out-dir", "in.jsonl"], "in.jsonl is a file"),
    ],
)  # fmt: skip
def test_an_output_that_cannot_be_written_is_one_line_before_any_work(
    run, store, tmp_path, argv, words
) -> None:
    before = (tmp_path / "store.db").stat().st_mtime_ns
    done = run("--store", store, *argv)
    assert done.returncode == 2, done.stderr
    assert words in one_line_error(done)
    assert (tmp_path / "store.db").stat().st_mtime_ns == before


def test_an_unwritable_output_directory_is_one_line(run, store, tmp_path) -> None:
    out = tmp_path / "ro"
    out.mkdir()
    command = _read_only(
        tmp_path, [SLATRAIL, "--store", store, "export", "--output", f"{out}/x.jsonl"]
    )
    done = subprocess.run(
        command, cwd=tmp_path, env=env_without_settings(), capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    out.chmod(0o755)
    assert done.returncode == 2, done.stderr
    assert "not writable" in one_line_error(done)


def test_contracts_that_are_not_utf8_are_named(run, tmp_path) -> None:
    (tmp_path / "latin1.toml").write_bytes(CONTRACTS_TOML.replace("acme", "acmé").encode("latin-1"))
    done = run("--contracts", "latin1.toml", "ingest", "-", stdin="")
    assert done.returncode == 2, done.stderr
    line = one_line_error(done)
    assert "latin1.toml: not UTF-8" in line, line


def test_a_customer_time_zone_that_does_not_exist_fails_at_load_naming_customer_and_key(
    run, tmp_path, store
) -> None:
    text = CONTRACTS_TOML.replace(
        "[customers.acme]\n", '[customers.acme]\ntimezone = "Mars/Olympus"\n'
    )
    assert "Mars/Olympus" in text
    (tmp_path / "tz.toml").write_text(text, encoding="utf-8")
    for argv in (["report", "--month", "2026-03"], ["sla"], ["ingest", "-"]):
        done = run("--store", store, "--contracts", "tz.toml", *argv, stdin="")
        assert done.returncode == 2, done.stderr
        line = one_line_error(done)
        assert "customers.acme.timezone" in line and "Mars/Olympus" in line, line


@pytest.mark.parametrize("url", ["foo://x", "sqlite://", "postgresql://h"])
def test_a_bad_read_model_url_is_one_line(run, store, url) -> None:
    done = run("--store", store, "sla", "--from-read-model", SLATRAIL_READ_MODEL=url)
    assert done.returncode == 2, done.stderr
    assert "read-model URL" in one_line_error(done)


def test_an_invalid_setting_is_named_without_its_value(run) -> None:
    done = run("sla", SLATRAIL_STORE_CONNECT_TIMEOUT_S=PLAIN)
    assert done.returncode == 2, done.stderr
    line = one_line_error(done)
    assert "SLATRAIL_STORE_CONNECT_TIMEOUT_S" in line
    assert not leaks(done.stdout + done.stderr)


def test_a_usage_error_is_one_line_naming_the_flag(run) -> None:
    done = run("sla", "--as-of", "yesterday")
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0, done.stderr
    assert done.stderr.startswith("slatrail sla: argument --as-of: not an RFC 3339 timestamp")


def _fault(tmp_path: Path, message: str) -> dict[str, str]:
    """A sitecustomize that makes `sla` hit an unexpected exception (a stand-in for a bug)."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(
        "import slatrail.infra.commands.sla as sla\n"
        "def broken(container, args):\n"
        f"    raise RuntimeError({message!r})\n"
        "sla.run = broken\n"
    )
    return {"PYTHONPATH": os.pathsep.join([str(hook), os.environ.get("PYTHONPATH", "")])}


def test_an_unexpected_error_is_one_line_exit_70_without_secret(run, tmp_path) -> None:
    url = bad_store_urls(5432)["refused"]
    env = _fault(tmp_path, f"boom while talking to {url} (password {PLAIN})")
    done = run("--store", url, "sla", **env)
    assert done.returncode == 70, done.stderr
    assert "Traceback" not in done.stderr
    line = one_line_error(done)
    assert line.startswith("slatrail: internal error (RuntimeError: boom while talking to")
    assert "--log-level debug" in line
    assert not leaks(done.stdout + done.stderr), done.stderr
    debug = run("--store", url, "--log-level", "debug", "sla", SLATRAIL_LOG_FORMAT="json", **env)
    assert debug.returncode == 70
    assert "Traceback" in debug.stderr and "raise RuntimeError" in debug.stderr
    assert not leaks(debug.stdout + debug.stderr), debug.stderr


# -- 3. read-only commands never create a store ----------------------------------------------


READ_ONLY = [
    ["sla"], ["audit", "X"], ["escalations"], ["report", "--month", "2026-03"], ["export"],
    ["verify"], ["replay"], ["sla", "--from-read-model"], ["audit", "X", "--from-read-model"],
]  # fmt: skip


@pytest.mark.parametrize("argv", READ_ONLY)
def test_a_read_only_command_on_a_mistyped_store_creates_nothing_and_exits_1(
    run, tmp_path, argv
) -> None:
    done = run("--store", "sqlite:///stroe.db", *argv)
    assert done.returncode == 1, done.stderr
    line = one_line_error(done)
    if "--from-read-model" in argv:
        assert "no read models at sqlite:///stroe-read.db" in line, line
    else:
        assert "no store at sqlite:///stroe.db" in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == [], list(tmp_path.iterdir())


def test_the_default_store_is_not_created_by_a_read_only_command(run, tmp_path) -> None:
    done = run("sla")
    assert done.returncode == 1
    assert "no store at sqlite:///slatrail.db" in one_line_error(done)
    assert not (tmp_path / "slatrail.db").exists()


def test_verify_of_an_empty_store_exits_1(run, tmp_path) -> None:
    done = run("--store", "sqlite:///empty.db", "ingest", "-", stdin="")
    assert done.returncode == 0, done.stderr
    verify = run("--store", "sqlite:///empty.db", "verify")
    assert verify.returncode == 1, verify.stderr
    assert "holds no events: nothing to verify" in one_line_error(verify)
    (tmp_path / "zero.db").write_bytes(b"")
    zero = run("--store", "sqlite:///zero.db", "verify")
    assert zero.returncode == 1
    assert "no store at sqlite:///zero.db: zero.db is an empty file" in one_line_error(zero)


def test_read_models_are_not_created_by_reading_them(run, store, tmp_path) -> None:
    done = run("--store", store, "audit", "I-0", "--from-read-model")
    assert done.returncode == 1
    assert "no read models at" in one_line_error(done)
    assert not (tmp_path / "store-read.db").exists()


def test_verify_without_read_models_creates_none(run, store, tmp_path) -> None:
    done = run("--store", store, "verify")
    assert done.returncode == 0, done.stderr
    assert "no read models at" in done.stdout
    assert not (tmp_path / "store-read.db").exists()
    again = run("--store", store, "verify")  # still "no read models", not "empty (never fed)"
    assert "no read models at" in again.stdout


# -- 4. PostgreSQL that cannot be reached: fast, naming the cause (no server needed) -------------


def test_a_closed_port_fails_fast_saying_refused(run) -> None:
    port = closed_port()
    started = time.monotonic()
    done = run("--store", f"postgresql://ops:{PLAIN}@127.0.0.1:{port}/slatrail", "sla")
    took = time.monotonic() - started
    assert done.returncode == 2, done.stderr
    line = one_line_error(done)
    assert f"connection refused by 127.0.0.1:{port}" in line, line
    assert took < 10, took
    assert not leaks(done.stdout + done.stderr)


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A socket on 127.0.0.1 that accepts connections and never says a word."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    try:
        yield int(server.getsockname()[1])
    finally:
        server.close()


@pytest.mark.parametrize(("setting", "bound"), [(None, 10.0), ("2", 5.0)])
def test_a_server_that_never_answers_times_out_within_the_connect_timeout(
    run, silent_server, setting, bound
) -> None:
    extra = {} if setting is None else {"SLATRAIL_STORE_CONNECT_TIMEOUT_S": setting}
    url = f"postgresql://ops:{PLAIN}@127.0.0.1:{silent_server}/slatrail"
    started = time.monotonic()
    done = run("--store", url, "ingest", "-", stdin="", **extra)
    took = time.monotonic() - started
    assert done.returncode == 2, done.stderr
    line = one_line_error(done)
    assert f"timeout: no answer from 127.0.0.1:{silent_server}" in line, line
    assert took < bound, took
    assert not leaks(done.stdout + done.stderr)


# -- Ctrl-C during ingest ---------------------------------------------------------------------


def _store_count(path: Path, topic_like: str = "%") -> int:
    """Stored rows (of the topics like `topic_like`); 0 while the store or table is missing."""
    if not path.exists():
        return 0
    with sqlite3.connect(path) as db:
        try:
            query = "SELECT count(*) FROM stored_events WHERE topic LIKE ?"
            return int(db.execute(query, [topic_like]).fetchone()[0])
        except sqlite3.OperationalError:
            return 0


def _incidents(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(
            db.execute(
                "SELECT count(*) FROM stored_events WHERE topic LIKE '%Reported'"
            ).fetchone()[0]
        )


def _ingest_from_a_pipe(tmp_path: Path, contracts_file: Path) -> subprocess.Popen[str]:
    """`slatrail ingest -` on the store s.db, its standard input a pipe this test writes."""
    return subprocess.Popen(
        [SLATRAIL, "--store", "sqlite:///s.db", "--contracts", str(contracts_file), "ingest",
         "-"],
        cwd=tmp_path, env=env_without_settings(), stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _wait(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_ctrl_c_while_ingest_waits_for_input_records_what_was_read_and_exits_130(
    tmp_path, contracts_file
) -> None:
    good = messages(BATCH_SIZE + 100)
    bad = ['{"not": "a message"}', "{torn"]
    proc = _ingest_from_a_pipe(tmp_path, contracts_file)
    assert proc.stdin is not None
    proc.stdin.write(jsonl(good) + "\n".join(bad) + "\n")
    proc.stdin.flush()
    # the first batch is recorded; the rest is recorded when the pipe is quiet, or at Ctrl-C
    assert _wait(lambda: _store_count(tmp_path / "s.db") >= BATCH_SIZE, 60), proc.poll()
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err, err
    assert f"accepted {len(good)}, duplicate 0, rejected 2" in out, out
    assert f"interrupted after {len(good) + 2} lines" in err, err
    assert _incidents(tmp_path / "s.db") == len(good)  # the batch in flight was recorded
    dead = (tmp_path / "slatrail-stdin.rejected.jsonl").read_text().splitlines()
    assert len(dead) == 2
    assert all(json.loads(line)["code"] for line in dead)  # whole lines


def test_ingest_from_a_quiet_pipe_records_what_came_without_waiting_for_a_full_batch(
    tmp_path, contracts_file
) -> None:
    proc = _ingest_from_a_pipe(tmp_path, contracts_file)
    assert proc.stdin is not None
    try:
        first, second = messages(3, "A"), messages(2, "B")
        # the last line arrives in two writes: only whole lines are recorded
        text = jsonl(first)
        proc.stdin.write(text[:-20])
        proc.stdin.flush()
        assert _wait(lambda: _store_count(tmp_path / "s.db", "%Reported") == 2, 30), proc.poll()
        proc.stdin.write(text[-20:] + jsonl(second))
        proc.stdin.flush()
        assert _wait(lambda: _store_count(tmp_path / "s.db", "%Reported") == 5, 30), proc.poll()
        assert proc.poll() is None  # still reading: recorded while the pipe stays open
        out, err = proc.communicate(timeout=60)  # closes the pipe: the input ends
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "accepted 5, duplicate 0, rejected 0" in out, out
    assert _incidents(tmp_path / "s.db") == 5


def test_ctrl_c_while_ingest_is_recording_finishes_the_batch_and_keeps_counts_true(
    tmp_path, contracts_file
) -> None:
    lines = []
    for n, message in enumerate(messages(20_000, "C")):
        lines.append(json.dumps(message))
        if n % 50 == 0:
            lines.append(json.dumps({"schema": "nope", "n": n}))
    (tmp_path / "big.jsonl").write_text("\n".join(lines) + "\n")
    proc = subprocess.Popen(
        [SLATRAIL, "--store", "sqlite:///s.db", "--contracts", str(contracts_file), "ingest",
         "big.jsonl"],
        cwd=tmp_path, env=env_without_settings(), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    # incidents, not any row: the contract history is recorded before the first line is read
    assert _wait(lambda: _store_count(tmp_path / "s.db", "%Reported") > 0, 60), proc.poll()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err, err
    found = re.search(r"accepted (\d+), duplicate 0, rejected (\d+)", out)
    assert found, out
    accepted, rejected = int(found.group(1)), int(found.group(2))
    assert 0 < accepted < 20_000, out
    assert rejected > 0, out  # the first batch's lines hold rejected ones
    assert _incidents(tmp_path / "s.db") == accepted  # counts say exactly what was recorded
    dead = (tmp_path / "big.rejected.jsonl").read_text().splitlines()
    assert len(dead) == rejected
    assert all(json.loads(line)["code"] == "unsupported_schema" for line in dead)
    again = subprocess.run(
        [SLATRAIL, "--store", "sqlite:///s.db", "--contracts", str(contracts_file), "ingest",
         "big.jsonl", "--rejected", "again.jsonl"],
        cwd=tmp_path, env=env_without_settings(), capture_output=True, text=True, timeout=600,
        check=False,
    )  # fmt: skip
    assert f"accepted {20_000 - accepted}, duplicate {accepted}" in again.stdout, again.stderr
