"""`slatrail contracts apply|list|show|diff`: contract versions as recorded history
(docs/reference/contracts.md#versions)."""

from __future__ import annotations

import argparse
import getpass
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from slatrail.domain.contract_diff import diff_versions, render_diff
from slatrail.domain.contract_version import (
    ContractBook,
    ContractVersion,
    canonical_content,
    holiday_tables_text,
)
from slatrail.domain.model import format_instant
from slatrail.infra.bootstrap import Container, read_contracts_text
from slatrail.infra.errors import UsageError
from slatrail.infra.render import echo, table, terminal_safe, to_json
from slatrail.infra.timearg import instant


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("contracts", help="record and inspect contract versions")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    apply = actions.add_parser("apply", help="validate a contracts file and record it as a version")
    apply.add_argument("file", type=Path, metavar="FILE")
    apply.add_argument(
        "--effective-from", type=instant, required=True,
        help="from when the version measures incidents (may lie in the past: a restatement)",
    )  # fmt: skip
    apply.add_argument("--reason", required=True, help="why (recorded with the version)")
    apply.add_argument("--actor", help="who (default: the login name)")
    apply.set_defaults(handler=run_apply, store_reader=False)

    listing = actions.add_parser("list", help="every recorded version")
    listing.add_argument("--as-known-at", type=instant, help="only versions recorded by then")
    listing.add_argument("--format", choices=("table", "json"), default="table")
    listing.set_defaults(handler=run_list, store_reader=True)

    show = actions.add_parser("show", help="one version's content (default: the one in force)")
    show.add_argument("version", nargs="?", type=int, metavar="VERSION")
    show.add_argument("--as-known-at", type=instant, help="as recorded by then")
    show.add_argument("--format", choices=("table", "json"), default="table")
    show.set_defaults(handler=run_show, store_reader=True)

    diff = actions.add_parser("diff", help="what changed between two versions")
    diff.add_argument("old", type=int, metavar="V1")
    diff.add_argument("new", type=int, metavar="V2")
    diff.add_argument("--format", choices=("table", "json"), default="table")
    diff.set_defaults(handler=run_diff, store_reader=True)


def run_apply(container: Container, args: argparse.Namespace) -> int:
    text, source = read_contracts_text(args.file)
    actor = args.actor or _login()
    if not args.reason.strip():
        raise UsageError("contracts apply: --reason must not be blank")
    container.first_version_from_file = False  # on an empty store FILE is version 1
    app = container.app
    book = app.contract_book()
    if book is not None and _same_as_latest(book, text, source, args.effective_from):
        echo(
            f"unchanged: {terminal_safe(source)} is version {book.latest.version} with the "
            "same effective_from; nothing recorded"
        )
        return 0
    version = app.record_contracts(
        text, source=source, effective_from=args.effective_from, actor=actor,
        reason=args.reason, now=container.clock(),
    )  # fmt: skip
    echo(
        f"recorded contract version {version.version} (sha256 {version.sha256}), effective "
        f"from {format_instant(version.effective_from)}, by {terminal_safe(version.actor)}: "
        f"{terminal_safe(version.reason)}"
    )
    return 0


def _same_as_latest(book: ContractBook, text: str, source: str, effective_from: datetime) -> bool:
    """The same content, effective_from and holiday tables (a `holidays` package that now
    gives other tables makes the same file a new version)."""
    contracts, _, sha256 = canonical_content(text, source)
    latest = book.latest
    return (
        sha256 == latest.sha256
        and effective_from == latest.effective_from
        and holiday_tables_text(contracts) == latest.holidays
    )


def _login() -> str:
    try:
        return getpass.getuser() or "operator"
    except (OSError, KeyError):
        return "operator"


def run_list(container: Container, args: argparse.Namespace) -> int:
    book = container.contracts_known_at(args.as_known_at)
    now = container.clock()
    current = book.in_force(now).version
    if args.format == "json":
        print(to_json([{**v.summary(), "in_force": v.version == current} for v in book.versions]))
        return 0
    rows = [
        [
            v.version, format_instant(v.effective_from), format_instant(v.recorded_at),
            v.actor, v.reason, v.sha256[:12], "yes" if v.version == current else "",
        ]
        for v in book.versions
    ]  # fmt: skip
    headers = ["version", "effective_from", "recorded_at", "actor", "reason", "sha256", "in force"]
    echo(table(headers, rows))
    return 0


def _version(book: ContractBook, number: int) -> ContractVersion:
    found = book.version(number)
    if found is None:
        known = ", ".join(str(v.version) for v in book.versions)
        raise UsageError(f"no contract version {number} (known: {known})")
    return found


def run_show(container: Container, args: argparse.Namespace) -> int:
    book = container.contracts_known_at(args.as_known_at)
    version = (
        _version(book, args.version)
        if args.version is not None
        else book.in_force(args.as_known_at or container.clock())
    )
    if args.format == "json":
        print(to_json(version.as_json()))
        return 0
    lines = [
        f"{key}: {json.dumps(value, ensure_ascii=False) if isinstance(value, dict) else value}"
        for key, value in version.summary().items()
    ]
    lines.append("content:")
    lines.append(json.dumps(json.loads(version.content), indent=2, ensure_ascii=False))
    echo("\n".join(terminal_safe(line) if "\n" not in line else line for line in lines))
    return 0


def run_diff(container: Container, args: argparse.Namespace) -> int:
    book = container.contract_book
    old, new = _version(book, args.old), _version(book, args.new)
    changes = diff_versions(old.content, new.content, old.holidays, new.holidays)
    if args.format == "json":
        print(to_json({"old": old.version, "new": new.version,
                       "changes": [c.as_json() for c in changes]}))  # fmt: skip
        return 0
    echo(render_diff(old.version, new.version, changes))
    return 0
