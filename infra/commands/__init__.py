"""One module per `slatrail` command; each exposes `register(subparsers)`."""

from __future__ import annotations

from importlib import import_module
from types import ModuleType

COMMAND_MODULES = (
    "demo",
    "ingest",
    "redrive",
    "sla",
    "audit",
    "verify",
    "export",
    "replay",
    "report",
    "escalations",
    "publish",
    "serve",
    "schema",
    "web",
    "tokens",
    "keys",
    "checkpoint",
    "prove",
    "witness",
    "contracts",
    "restatements",
    "whatif",
)


def command_modules() -> list[ModuleType]:
    return [import_module(f"slatrail.infra.commands.{name}") for name in COMMAND_MODULES]
