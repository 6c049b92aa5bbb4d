"""`slatrail schema NAME`: one machine-readable contract (JSON Schema or AsyncAPI) on stdout."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from slatrail.infra.bootstrap import Container
from slatrail.infra.errors import UsageError
from slatrail.infra.schemas import build, names, path_of, render, write


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "schema",
        help="print a message's JSON Schema or the AsyncAPI document (--list: their names)",
    )
    parser.add_argument("name", nargs="?", help="e.g. message.reported, envelope, asyncapi")
    parser.add_argument("--list", action="store_true", help="the names, one a line, with files")
    parser.add_argument(
        "--write", type=Path, metavar="DIR", help="write every document under DIR (as schemas/)"
    )
    parser.set_defaults(handler=run)


def run(container: Container, args: argparse.Namespace) -> int:
    if args.list:
        for name in names():
            print(f"{name}\t{path_of(name)}")
        return 0
    if args.write is not None:
        for path in write(args.write):
            print(path)
        return 0
    if args.name is None:
        raise UsageError("schema: give a NAME, --list or --write DIR")
    try:
        document = build(args.name)
    except KeyError:
        raise UsageError(
            f"schema: no schema {args.name!r} (one of: {', '.join(names())})"
        ) from None
    sys.stdout.write(render(document))
    return 0
