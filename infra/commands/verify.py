"""`slatrail verify`: hash chains, receipts and read models; exit 1 on any difference."""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import sys
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

from slatrail.application.service import INCIDENT_TOPICS
from slatrail.infra.bootstrap import Container
from slatrail.infra.errors import EmptyStoreError
from slatrail.infra.exports import AnchorsError, read_anchors
from slatrail.infra.merkle_log import MerkleLog
from slatrail.infra.progress import Progress
from slatrail.infra.proofs import LogCheck, check_log, checkpoint_from, verifier_of
from slatrail.infra.redact import redact_url
from slatrail.infra.render import echo, to_json
from slatrail.infra.settings import Settings
from slatrail.infra.signing import Checkpoint, KeyError_
from slatrail.infra.verify import PARALLEL_FROM, Verification, verify_store


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "verify", help="recompute every hash chain and projection; exit 1 on any difference"
    )
    parser.add_argument(
        "--anchors",
        type=Path,
        help="an earlier `slatrail export` (JSONL or CSV): its chain heads must still be in "
        "the store, with the same hashes",
    )
    parser.add_argument(
        "--checkpoint",
        type=Path,
        help="a signed checkpoint (`slatrail checkpoint`): the history it commits to must be "
        "unchanged, and nothing stored after it back-dated (default: the latest stored one)",
    )
    parser.add_argument("--key", help="the checkpoint's verifier key (text or file)")
    parser.add_argument(
        "--skip-read-models",
        action="store_true",
        help="check the chains only, not the stored read models",
    )
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.set_defaults(handler=run)


def run(container: Container, args: argparse.Namespace) -> int:
    anchors = None
    if args.anchors is not None:
        try:
            anchors = read_anchors(args.anchors)
        except AnchorsError as error:
            echo(f"slatrail verify: {error}", file=sys.stderr)
            return 2
    app = container.app
    notes: list[str] = []
    checkpoint = _checkpoint(container, args, notes)
    # contract version 1 alone (recorded on a store's first use) is no history to verify
    no_history = not app.recorder.select_notifications(1, 1, topics=INCIDENT_TOPICS)
    if no_history and checkpoint is None:
        raise EmptyStoreError(
            f"the store {redact_url(container.settings.store)} holds no events: nothing to verify "
            "(check --store / SLATRAIL_STORE)"
        )
    progress = Progress(app.recorder.max_notification_id(), unit="records", label="events")
    try:
        result = verify_with_checkpoint(
            container,
            checkpoint,
            anchors=anchors,
            progress=progress.advance,
            read_models=not args.skip_read_models,
        )
    finally:
        progress.close()
    result.notes[:0] = notes
    if args.format == "json":
        print(to_json(result.as_json()))
    else:
        echo(render(result))
    return 0 if result.ok else 1


def _checkpoint(
    container: Container, args: argparse.Namespace, notes: list[str]
) -> Checkpoint | None:
    """--checkpoint FILE, else the latest stored checkpoint (if any, and a key to check it)."""
    if args.checkpoint is None:
        if MerkleLog(container.app).latest_checkpoint() is None:
            return None
        try:
            verifier_of(container, args.key)
        except KeyError_ as error:
            notes.append(f"the store's latest checkpoint was not checked: {error}")
            return None
    return checkpoint_from(container, args.checkpoint, args.key)


def verify_with_checkpoint(
    container: Container, checkpoint: Checkpoint | None, **options: Any
) -> Verification:
    """`verify_store`, and with a checkpoint the log check — in its own process for a large
    store, beside the chains and receipts."""
    app = container.app
    with contextlib.ExitStack() as stack:
        log_check: Future[LogCheck] | None = None
        if checkpoint is not None and (app.recorder.max_notification_id() or 0) >= PARALLEL_FROM:
            pool = stack.enter_context(
                ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
            )
            log_check = pool.submit(check_log_of, container.settings, checkpoint)
        result = verify_store(container, **options)
        if checkpoint is not None:
            check = log_check.result() if log_check else check_log(container, checkpoint)
            add_log_check(result, checkpoint, check)
    return result


def check_log_of(settings: Settings, checkpoint: Checkpoint) -> LogCheck:
    """`check_log` in a worker process (opens its own store)."""
    container = Container(settings, store_read_only=True)
    try:
        return check_log(container, checkpoint)
    finally:
        container.close()


def add_log_check(result: Verification, checkpoint: Checkpoint, check: LogCheck) -> None:
    result.differences.extend(check.differences)
    result.notes.extend(check.notes())
    result.notes.append(
        f"Merkle log: {check.records} records checked against the checkpoint of "
        f"{checkpoint.origin} at size {checkpoint.size}"
    )


def render(result: Verification) -> str:
    s = result.summary
    lines = [
        f"verified {s.events} events of {s.incidents} incidents and {s.receipts} message "
        f"receipts: {'OK' if result.ok else f'{len(result.differences)} difference(s)'}",
    ]
    if s.contract_versions:
        lines.append(f"verified the chain of {s.contract_versions} contract version(s)")
    if result.read_models:
        lines.append(f"read models compared with a rebuild: {', '.join(result.read_models)}")
    lines.extend(f"note: {note}" for note in result.notes)
    lines.extend(f"  {d.line()}" for d in result.differences)
    return "\n".join(lines)
