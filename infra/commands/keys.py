"""`slatrail keys init`: the Ed25519 key pair that signs the Merkle log's checkpoints."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from slatrail.infra.bootstrap import Container
from slatrail.infra.render import echo
from slatrail.infra.signing import new_signer, write_signer


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("keys", help="the key pair that signs checkpoints")
    actions = parser.add_subparsers(dest="keys_action", required=True)
    init = actions.add_parser(
        "init",
        help="write a new signing key (mode 0600) and print the verifier key for auditors",
    )
    init.add_argument(
        "--output",
        type=Path,
        help="where to write the private key (default: SLATRAIL_SIGNING_KEY)",
    )
    init.set_defaults(handler=run)


def run(container: Container, args: argparse.Namespace) -> int:
    path = args.output or container.settings.signing_key
    signer = new_signer(container.settings.checkpoint_origin)
    public = write_signer(signer, path)
    echo(f"signing key written to {path} (mode 0600; keep it secret, never share it)")
    echo(f"verifier key (also in {public}), for auditors and witnesses:")
    echo(signer.verifier_key())
    return 0
