"""`slatrail witness`: accept a checkpoint only if it is consistent with the last one accepted
(the split-view defence; docs/audit.md §9)."""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import os
from pathlib import Path
from typing import Any

from slatrail.domain.merkle import verify_consistency
from slatrail.infra.bootstrap import Container
from slatrail.infra.errors import EXIT_FINDING, UsageError
from slatrail.infra.merkle_log import MerkleLog
from slatrail.infra.proofs import verifier_of
from slatrail.infra.render import echo
from slatrail.infra.signing import Checkpoint, CheckpointError, open_checkpoint, read_note


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "witness",
        help="accept a checkpoint only if it is consistent with the last one accepted",
    )
    parser.add_argument("checkpoint", type=Path, help="the new checkpoint")
    parser.add_argument(
        "--state",
        type=Path,
        default=Path("witness-state.checkpoint"),
        help="the last accepted checkpoint (default: witness-state.checkpoint)",
    )
    parser.add_argument(
        "--proof",
        type=Path,
        help="a consistency proof (`slatrail prove --consistency`) from the state's checkpoint "
        "to the new one; without it the proof is asked of the store (--store)",
    )
    parser.add_argument("--key", help="the log's verifier key (text or file)")
    parser.set_defaults(handler=run)


class Refused(UsageError):
    exit_code = EXIT_FINDING


def run(container: Container, args: argparse.Namespace) -> int:
    verifier = verifier_of(container, args.key)
    try:
        new = open_checkpoint(read_note(args.checkpoint), verifier)
    except CheckpointError as error:
        raise Refused(f"witness refuses {args.checkpoint}: {error}") from None
    if not args.state.exists():
        _accept(args.state, new)
        echo(f"accepted (first checkpoint seen): {new.origin} size {new.size}")
        return 0
    try:
        old = open_checkpoint(read_note(args.state), verifier)
    except CheckpointError as error:
        raise UsageError(
            f"the witness state {args.state} is not a valid checkpoint: {error}"
        ) from None
    if new.size < old.size:
        raise Refused(
            f"witness refuses: size {new.size} is smaller than the accepted {old.size} (rollback)"
        )
    proof = _proof(container, args.proof, old, new)
    if not verify_consistency(old.size, new.size, old.root, new.root, proof):
        raise Refused(
            f"witness refuses: the checkpoint of size {new.size} is not consistent with the "
            f"accepted one of size {old.size} (a split view or a rewritten history)"
        )
    _accept(args.state, new)
    echo(f"accepted: {new.origin} size {old.size} → {new.size}, consistent")
    return 0


def _proof(
    container: Container, path: Path | None, old: Checkpoint, new: Checkpoint
) -> list[bytes]:
    if path is None:
        return MerkleLog(container.app).consistency_proof(old.size, new.size)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        if (document["old"]["tree_size"], document["new"]["tree_size"]) != (old.size, new.size):
            raise Refused(
                f"witness refuses: the proof in {path} is for sizes "
                f"{document['old']['tree_size']} → {document['new']['tree_size']}, not "
                f"{old.size} → {new.size}"
            )
        return [base64.b64decode(h, validate=True) for h in document["proof"]]
    except (OSError, ValueError, KeyError, TypeError, binascii.Error) as error:
        raise UsageError(f"{path} is not a consistency proof: {error}") from None


def _accept(state: Path, checkpoint: Checkpoint) -> None:
    temporary = state.with_name(state.name + ".tmp")
    try:
        temporary.write_text(checkpoint.note, encoding="utf-8")
        os.replace(temporary, state)
    except OSError as error:
        raise UsageError(f"cannot write the witness state {state}: {error.strerror}") from None
