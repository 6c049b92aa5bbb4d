"""One module per `slatrail` command; each exposes `register(subparsers)`.

`COMMANDS` names every command with its one-line help, so `slatrail --help` lists them
without importing any (start-up imports only the module of the command being run;
`tests/e2e/test_cli_startup.py` checks the lines equal what each module registers)."""

from __future__ import annotations

from importlib import import_module
from types import ModuleType

COMMANDS: dict[str, str] = {
    "demo": "simulate a month of incidents, ingest them and print the SLA summary",
    "ingest": "record JSON Lines messages (FILE or - for stdin)",
    "redrive": "re-submit dead letters (incidents.rejected, or --file X.rejected.jsonl)",
    "sla": "SLA clocks of incidents",
    "audit": "an incident's audit trail",
    "verify": "recompute every hash chain and projection; exit 1 on any difference",
    "export": "the audit trail for external auditors: whole hash chains and their heads",
    "replay": "rebuild read models from the event store, with a progress bar",
    "report": "monthly service report per customer (SLA attainment, availability)",
    "escalations": "open incidents by escalation level, with the reason",
    "publish": "publish JSON Lines messages to incidents.inbound (FILE or -)",
    "serve": (
        "run the Kafka workers: inbound consumer, event relay, projections, alert timer, "
        "checkpoints"
    ),
    "schema": "print a message's JSON Schema or the AsyncAPI document (--list: their names)",
    "web": "read API, live SLA board, metrics and health over HTTP",
    "tokens": "bearer tokens of the web API",
    "keys": "the key pair that signs checkpoints",
    "checkpoint": "bring the Merkle log up to the store and print a signed checkpoint",
    "prove": "inclusion proofs of an incident's events, or consistency of two checkpoints",
    "witness": "accept a checkpoint only if it is consistent with the last one accepted",
    "contracts": "record and inspect contract versions",
    "restatements": "figures that changed between two knowledge instants, and why",
    "whatif": "the report under a draft contract next to the recorded one",
    "ledger": "the SLA ledger: status intervals of every clock, clocks per status",
}
COMMAND_MODULES = tuple(COMMANDS)


def command_module(name: str) -> ModuleType:
    return import_module(f"slatrail.infra.commands.{name}")


def command_modules() -> list[ModuleType]:
    return [command_module(name) for name in COMMAND_MODULES]
