"""`slatrail prove`: inclusion proofs of an incident's events, or a consistency proof between two
checkpoints (JSON; docs/audit.md §9)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from slatrail.infra.bootstrap import Container
from slatrail.infra.errors import UsageError
from slatrail.infra.proofs import (
    checkpoint_from,
    consistency_document,
    incident_proofs,
    proof_document,
)
from slatrail.infra.render import to_json


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "prove",
        help="inclusion proofs of an incident's events, or consistency of two checkpoints",
    )
    parser.add_argument("incident", nargs="?", help="the incident whose events to prove")
    parser.add_argument("--position", type=int, help="only the event at this position")
    parser.add_argument(
        "--checkpoint",
        type=Path,
        help="prove against this checkpoint (default: the latest stored one)",
    )
    parser.add_argument(
        "--consistency",
        nargs=2,
        type=Path,
        metavar=("OLD", "NEW"),
        help="a consistency proof from checkpoint OLD to checkpoint NEW",
    )
    parser.add_argument("--key", help="the verifier key (text or file; default: the settings')")
    parser.set_defaults(handler=run)


def run(container: Container, args: argparse.Namespace) -> int:
    if args.consistency is not None:
        if args.incident is not None or args.position is not None:
            raise UsageError("prove: give an incident or --consistency OLD NEW, not both")
        old, new = (checkpoint_from(container, path, args.key) for path in args.consistency)
        print(to_json(consistency_document(container, old, new)))
        return 0
    if args.incident is None:
        raise UsageError("prove: name an incident, or give --consistency OLD NEW")
    if args.position is not None and args.position < 1:
        raise UsageError("prove: --position counts from 1")
    checkpoint = checkpoint_from(container, args.checkpoint, args.key)
    proofs = incident_proofs(container, args.incident, checkpoint, args.position)
    print(to_json(proof_document(checkpoint, proofs)))
    return 0
