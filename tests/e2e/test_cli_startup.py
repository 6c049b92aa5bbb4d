"""`slatrail --help` lists every command without importing it, and the lines it lists are the
ones each command registers; the single-incident commands import only what they need."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from slatrail.domain.contract_version import SINCE_EVER
from slatrail.infra.bootstrap import read_contracts, sample_contracts_text
from slatrail.infra.cli import command_in
from slatrail.infra.commands import COMMANDS, command_modules
from slatrail.infra.store import open_application
from slatrail.infra.wire import decode
from tests.builders import line, reported_data, utc, wire


def test_every_listed_help_line_is_the_one_its_command_registers() -> None:
    parser = argparse.ArgumentParser()
    subparsers = parser.add_subparsers()
    for module in command_modules():
        module.register(subparsers)
    registered = {a.dest: a.help for a in subparsers._choices_actions}
    assert registered == COMMANDS


def test_the_command_is_found_after_global_options() -> None:
    assert command_in(["--store", "sla", "audit", "X"]) == "audit"
    assert command_in(["--store=sqlite:///x.db", "--log-level", "debug", "sla"]) == "sla"
    assert command_in(["--help"]) is None
    assert command_in(["nonsense", "sla"]) is None


PROBE = """
import sys, contextlib, io
from slatrail.infra.cli import main
with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
    main(sys.argv[1:])
commands = sorted(m.rsplit(".", 1)[1] for m in sys.modules if ".infra.commands." in m)
HEAVY = ("eventsourcing", "slatrail.infra.bootstrap", "psycopg", "structlog", "pydantic")
heavy = sorted(m for m in HEAVY if m in sys.modules)
print(commands, heavy)
"""


def test_a_command_imports_no_other_command_and_help_imports_none() -> None:
    for argv, expected in (
        (["--help"], "[] []"),
        (["schema", "--list"], "['schema'] "),
    ):
        done = subprocess.run(
            [sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, check=True
        )
        last = done.stdout.strip().splitlines()[-1]
        assert last.startswith(expected), argv


# What a single-incident command never needs (docs/scale.md, "Start-up"): structlog (and the
# asyncio it imports) until something is logged, pydantic-settings, the wire-message models
# (only commands that decode messages build them), the read-model store, the `holidays`
# package (the recorded contract version holds its holiday tables) and the monthly reports.
NOT_FOR_ONE_INCIDENT = (
    "structlog", "asyncio", "pydantic_settings", "slatrail.domain.messages",
    "slatrail.infra.read_model_store", "psycopg", "holidays", "slatrail.projections.report",
)  # fmt: skip

LEAN = """
import sys, contextlib, io
from slatrail.infra.cli import main
with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
    code = main(sys.argv[2:])
print(code, sorted(m for m in sys.argv[1].split(",") if m in sys.modules))
"""


@pytest.fixture
def one_incident_store(tmp_path: Path) -> dict[str, str]:
    path = tmp_path / "store.db"
    app = open_application(f"sqlite:///{path}", read_contracts(None))
    at = utc(2026, 10, 12, 10)
    # as `ingest` and `serve` do on a store's first use: the sample recorded as version 1
    app.record_contracts(
        sample_contracts_text(), source="sample", effective_from=SINCE_EVER, actor="slatrail",
        reason="first use of the store", now=at,
    )  # fmt: skip
    messages = [
        wire("reported", at, reported_data("brightcall", "P2"), incident_id="ONE"),
        wire("acknowledged", at.replace(minute=20), incident_id="ONE"),
    ]
    outcomes = app.record([decode(line(m)) for m in messages], now=at.replace(hour=11))
    assert [o.status for o in outcomes] == ["accepted", "accepted"]
    app.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLATRAIL_")}
    return {**env, "SLATRAIL_STORE": f"sqlite:///{path}"}


@pytest.mark.parametrize(
    "argv",
    [
        ["sla", "--incident", "ONE"],
        ["sla", "--incident", "ONE", "--format", "json"],
        ["audit", "ONE"],
        ["audit", "ONE", "--format", "json"],
        ["--contracts", "{sample}", "sla", "--incident", "ONE"],
    ],
    ids=" ".join,
)
def test_a_single_incident_command_imports_nothing_it_does_not_need(
    argv: list[str], one_incident_store: dict[str, str], tmp_path: Path
) -> None:
    """Also with the recorded version's file given (`--contracts`): it is compared with the
    record by its canonical content, not built."""
    sample = tmp_path / "sample.toml"
    sample.write_text(sample_contracts_text())
    argv = [a.format(sample=sample) for a in argv]
    done = subprocess.run(
        [sys.executable, "-c", LEAN, ",".join(NOT_FOR_ONE_INCIDENT), *argv],
        capture_output=True, text=True, check=True, env=one_incident_store,
    )  # fmt: skip
    assert done.stdout.strip().splitlines()[-1] == "0 []", done.stderr


def test_logging_is_configured_when_structlog_is_first_imported(
    one_incident_store: dict[str, str],
) -> None:
    """A command that logs after start-up (a missing incident is not logged; a bad store URL
    is) still logs in the configured format, though structlog was imported only then."""
    done = subprocess.run(
        [sys.executable, "-m", "slatrail.infra.cli", "--log-format", "json",
         "--store", "sqlite:////nonexistent-dir/x.db", "sla", "--incident", "ONE"],
        capture_output=True, text=True, env=one_incident_store,
    )  # fmt: skip
    first = done.stderr.splitlines()[0]
    assert done.returncode == 2, done.stderr
    assert first.startswith("{") and '"event": "operator_error"' in first, done.stderr
