"""`slatrail --help` lists every command without importing it, and the lines it lists are the
ones each command registers."""

from __future__ import annotations

import argparse
import subprocess
import sys

from slatrail.infra.cli import command_in
from slatrail.infra.commands import COMMANDS, command_modules


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
HEAVY = ("eventsourcing", "slatrail.infra.bootstrap", "psycopg")
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
