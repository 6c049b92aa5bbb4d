"""`slatrail verify`: hash chains, receipts and read models; exit 1 on any difference."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from slatrail.application.service import INCIDENT_TOPICS
from slatrail.infra.bootstrap import Container
from slatrail.infra.errors import EmptyStoreError
from slatrail.infra.exports import AnchorsError, read_anchors
from slatrail.infra.progress import Progress
from slatrail.infra.redact import redact_url
from slatrail.infra.render import echo, to_json
from slatrail.infra.verify import Verification, verify_store


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
    # contract version 1 alone (recorded on a store's first use) is no history to verify
    if not app.recorder.select_notifications(1, 1, topics=INCIDENT_TOPICS):
        raise EmptyStoreError(
            f"the store {redact_url(container.settings.store)} holds no events: nothing to verify "
            "(check --store / SLATRAIL_STORE)"
        )
    progress = Progress(app.recorder.max_notification_id(), unit="records", label="events")
    try:
        result = verify_store(
            container,
            anchors=anchors,
            progress=progress.advance,
            read_models=not args.skip_read_models,
        )
    finally:
        progress.close()
    if args.format == "json":
        print(to_json(result.as_json()))
    else:
        echo(render(result))
    return 0 if result.ok else 1


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
