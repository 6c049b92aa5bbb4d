"""`slatrail` — the one entry point (SPEC §10)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import structlog

from domain.contracts import ContractsError
from infra.bootstrap import Container
from infra.commands import command_modules
from infra.logging import LOG_FORMATS, configure_logging
from infra.settings import Settings
from infra.store import DamagedStoreError, StoreURLError

EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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
        help="contracts TOML file (default: the shipped sample)  [SLATRAIL_CONTRACTS]",
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
    for module in command_modules():
        module.register(subparsers)
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
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
    return Settings(**overrides)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    settings = settings_from(args)
    configure_logging(settings.log_level, settings.log_format)
    container = Container(settings)
    try:
        code: int = args.handler(container, args)
        return code
    except (ContractsError, StoreURLError) as error:
        structlog.get_logger("slatrail").error("configuration_error", error=str(error))
        print(f"slatrail: {error}", file=sys.stderr)
        return EXIT_USAGE
    except DamagedStoreError as error:
        structlog.get_logger("slatrail").error("damaged_store", error=str(error))
        print(f"slatrail: the store is damaged: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0
    finally:
        container.close()


if __name__ == "__main__":
    sys.exit(main())
