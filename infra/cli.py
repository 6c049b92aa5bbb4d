"""`slatrail` — the one entry point (docs/reference/commands.md).

Errors reach the operator as one line, `slatrail: <message>`, never a traceback and never a
password (docs/decisions.md, "Operator errors and exit codes"): 1 for a finding (rejections,
differences, no store), 2 for usage and configuration errors, 70 for a bug in slatrail (the
traceback only with `--log-level debug`), 130 when interrupted.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from slatrail.application.lazy_log import LazyLogger
from slatrail.infra.commands import COMMANDS, command_module
from slatrail.infra.errors import (
    EXIT_FINDING,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    OperatorError,
)
from slatrail.infra.logging import LOG_FORMATS, configure_logging
from slatrail.infra.redact import Scrubber

if TYPE_CHECKING:  # start-up imports only what the command being run needs
    from slatrail.infra.bootstrap import Container
    from slatrail.infra.settings import Settings

# Commands that only read the event store: they never create it (a missing store is exit 1).
STORE_READERS = frozenset(
    {
        "sla",
        "audit",
        "escalations",
        "report",
        "export",
        "ledger",
        "verify",
        "replay",
        "prove",
        "witness",
        "checkpoint",
        "web",
    }
)
# Commands that only read the read-model database (`--from-read-model`, verify's comparison).
READ_MODEL_READERS = frozenset({"sla", "audit", "escalations", "verify", "web", "ledger"})


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: `slatrail sla: argument --as-of: … (see --help)`, exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


# Global options that take a value (to find the command in argv without parsing it).
_VALUED = frozenset({"--store", "--contracts", "--kafka", "--log-level", "--log-format"})


def command_in(arguments: Sequence[str]) -> str | None:
    """The command named in `arguments` (the first word after the global options), if any."""
    skip = False
    for argument in arguments:
        if skip:
            skip = False
        elif argument in _VALUED:
            skip = True
        elif not argument.startswith("-"):
            return argument if argument in COMMANDS else None
    return None


def build_parser(command: str | None = None, *, every: bool = False) -> argparse.ArgumentParser:
    """The parser with `command`'s own options (all of them with `every`); the other
    commands are listed with their help line only, so their modules are not imported."""
    parser = Parser(
        prog="slatrail",
        description="Event-sourced incident lifecycle and SLA compliance.",
    )
    parser.add_argument(
        "--store",
        help="sqlite:///path (default sqlite:///slatrail.db) or "
        "postgresql://user:pw@host:port/db  [SLATRAIL_STORE]",
    )
    parser.add_argument(
        "--contracts",
        type=Path,
        help="contracts TOML file (default: the shipped sample): version 1 of an empty store; "
        "once versions are recorded it must be the one in force  [SLATRAIL_CONTRACTS]",
    )
    parser.add_argument(
        "--kafka", help="Kafka bootstrap servers HOST:PORT  [SLATRAIL_KAFKA_BOOTSTRAP]"
    )
    parser.add_argument("--log-level", default=None, help="debug, info, warning, error")
    parser.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default=None,
        help="console (readable), json (one object a line) or auto: console when stderr is a "
        "terminal  [SLATRAIL_LOG_FORMAT]",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, line in COMMANDS.items():
        if every or name == command:
            command_module(name).register(subparsers)
        else:
            subparsers.add_parser(name, help=line, add_help=False)
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    from pydantic import ValidationError

    from slatrail.infra.settings import Settings

    overrides = {
        key: value
        for key, value in (
            ("store", args.store),
            ("contracts", args.contracts),
            ("kafka_bootstrap", args.kafka),
            ("log_level", args.log_level),
            ("log_format", args.log_format),
        )
        if value is not None
    }
    try:
        return Settings(**overrides)
    except ValidationError as error:  # never echo the value: it may be a secret
        problems = "; ".join(
            f"SLATRAIL_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
            for e in error.errors(include_url=False, include_input=False)
        )
        raise OperatorError(f"invalid setting: {problems}") from None


def _scrubber(argv: Sequence[str], settings: Settings | None = None) -> Scrubber:
    """Every URL and password the operator gave, from the command line, the environment and
    the settings, so that no message or traceback can show one."""
    urls = [a for a in argv if "://" in a or "@" in a]
    secrets = []
    for name, value in os.environ.items():
        if not name.startswith(("SLATRAIL_", "POSTGRES_", "PG")):
            continue
        if "://" in value or "@" in value:
            urls.append(value)
        if any(word in name for word in ("PASSWORD", "SECRET", "TOKEN")):
            secrets.append(value)
    if settings is not None:
        urls += [settings.store, settings.read_model or ""]
        if settings.kafka_sasl_password is not None:
            secrets.append(settings.kafka_sasl_password.get_secret_value())
    return Scrubber(urls=urls, secrets=secrets)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    scrub = _scrubber(arguments)
    debug = "debug" in (a.lower() for a in arguments)
    configure_logging(
        os.environ.get("SLATRAIL_LOG_LEVEL", "info"), os.environ.get("SLATRAIL_LOG_FORMAT", "auto")
    )
    log = LazyLogger("slatrail")
    container: Container | None = None
    try:
        args = build_parser(command_in(arguments)).parse_args(arguments)
        if not hasattr(args, "handler"):  # the command was not where command_in looked
            args = build_parser(args.command).parse_args(arguments)
        settings = settings_from(args)
        scrub = _scrubber(arguments, settings)
        debug = settings.log_level.lower() == "debug"
        configure_logging(settings.log_level, settings.log_format)
        from slatrail.infra.bootstrap import Container

        container = Container(
            settings,
            store_read_only=getattr(args, "store_reader", args.command in STORE_READERS),
            read_models_read_only=args.command in READ_MODEL_READERS,
        )
        code: int = args.handler(container, args)
        return code
    except OperatorError as error:
        return _operator_error(error, scrub, log)
    except KeyboardInterrupt:
        print("slatrail: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return 0
    except Exception as error:
        if _is_operator_error(error):
            return _operator_error(error, scrub, log)
        if _is_store_error(error):
            return _store_error(error, scrub, log)
        return _internal_error(error, scrub, log, debug)
    finally:
        if container is not None:
            try:
                container.close()
            except Exception as error:  # closing must not turn an answer into a traceback
                log.warning("close_failed", error=scrub(repr(error)))


def _loaded(module: str, name: str) -> type[BaseException] | None:
    """An exception class of `module` if that module was imported (else nothing there raised
    it): the error handling itself must not import the store or the domain."""
    found = sys.modules.get(module)
    return getattr(found, name, None) if found is not None else None


def _is_operator_error(error: Exception) -> bool:
    kinds = [
        _loaded("slatrail.application.service", "DamagedStoreError"),
        _loaded("slatrail.domain.contracts", "ContractsError"),
        _loaded("slatrail.infra.read_model_store", "ReadModelURLError"),
    ]
    return any(kind is not None and isinstance(error, kind) for kind in kinds)


def _is_store_error(error: Exception) -> bool:
    persistence = _loaded("eventsourcing.persistence", "PersistenceError")
    return isinstance(error, sqlite3.Error) or (
        persistence is not None and isinstance(error, persistence)
    )


def _operator_error(error: Exception, scrub: Scrubber, log: LazyLogger) -> int:
    exit_code: int = getattr(error, "exit_code", EXIT_USAGE)
    message = scrub(getattr(error, "prefix", "") + str(error))
    log.error("operator_error", error=message, exit_code=exit_code)
    print(f"slatrail: {message}", file=sys.stderr)
    return exit_code


def _store_error(error: Exception, scrub: Scrubber, log: LazyLogger) -> int:
    """The store failed while in use."""
    text = scrub(str(error).strip().splitlines()[0] if str(error).strip() else repr(error))
    damaged = "malformed" in text or "not a database" in text
    message = f"the store is damaged: {text}" if damaged else f"the store failed: {text}"
    log.error("store_error", error=message)
    print(f"slatrail: {message}", file=sys.stderr)
    return EXIT_FINDING if damaged else EXIT_USAGE


def _internal_error(error: Exception, scrub: Scrubber, log: LazyLogger, debug: bool) -> int:
    """Last resort: a bug in slatrail, still one line, no secret."""
    text = scrub(str(error).strip().splitlines()[0] if str(error).strip() else "")[:300]
    what = type(error).__name__ + (f": {text}" if text else "")
    log.error("internal_error", error=what)
    if debug:
        print(scrub(traceback.format_exc()), file=sys.stderr, end="")
    print(
        f"slatrail: internal error ({what}); "
        + ("the traceback is above" if debug else "rerun with --log-level debug for details"),
        file=sys.stderr,
    )
    return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
