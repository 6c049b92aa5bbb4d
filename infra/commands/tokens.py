"""`slatrail tokens add|remove|list`: the web API's bearer tokens (docs/web.md, "Tokens")."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from slatrail.infra.bootstrap import Container
from slatrail.infra.render import echo, table, to_json
from slatrail.infra.timearg import instant
from slatrail.infra.web.tokens import ROLES, add_token, list_tokens, remove_token


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("tokens", help="bearer tokens of the web API")
    parser.add_argument("--tokens", type=Path, help="tokens file  [SLATRAIL_TOKENS_FILE]")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="make a token and print it (once)")
    add.add_argument("name", help="the token's name (shown in logs instead of the token)")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument(
        "--customer", action="append", default=[], help="a customer a viewer sees (repeatable)"
    )
    add.add_argument(
        "--expires", type=instant, help="RFC 3339 instant from which the token is refused"
    )
    remove = actions.add_parser("remove", help="remove a token (it stops working at once)")
    remove.add_argument("name")
    show = actions.add_parser("list", help="the tokens' names, roles and customers")
    show.add_argument("--format", choices=("table", "json"), default="table")
    parser.set_defaults(handler=run)


def run(container: Container, args: argparse.Namespace) -> int:
    path = args.tokens or container.settings.tokens_file
    if args.action == "add":
        secret = add_token(path, args.name, args.role, args.customer, args.expires)
        print(secret)
        print(f"token {args.name!r} ({args.role}) added to {path}; it is shown only now",
              file=sys.stderr)  # fmt: skip
        return 0
    if args.action == "remove":
        if not remove_token(path, args.name):
            echo(f"slatrail tokens: no token {args.name!r} in {path}")
            return 1
        echo(f"token {args.name!r} removed from {path}")
        return 0
    entries = list_tokens(path)
    if args.format == "json":
        print(to_json(entries))
    else:
        rows = [[e["name"], e["role"], ", ".join(e["customers"]), e.get("expires_at") or "-"]
                for e in entries]  # fmt: skip
        echo(table(["name", "role", "customers", "expires"], rows))
    return 0
