"""`slatrail checkpoint`: sign the Merkle log's root over every stored record; print, store it."""

from __future__ import annotations

import argparse
from typing import Any

from slatrail.infra.bootstrap import Container
from slatrail.infra.pathargs import output_file
from slatrail.infra.proofs import new_checkpoint


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "checkpoint", help="bring the Merkle log up to the store and print a signed checkpoint"
    )
    parser.add_argument("--output", type=output_file, help="also write the checkpoint to this file")
    parser.set_defaults(handler=run)


def run(container: Container, args: argparse.Namespace) -> int:
    checkpoint = new_checkpoint(container)
    if args.output is not None:
        args.output.write_text(checkpoint.note, encoding="utf-8")
    print(checkpoint.note, end="")
    return 0
