"""`slatrail web`: the read API, live SLA board, metrics and health over HTTP (docs/web.md)."""

from __future__ import annotations

import argparse
import contextlib
import signal
from pathlib import Path
from types import FrameType
from typing import Any

import structlog
import uvicorn

from slatrail.infra.bootstrap import Container
from slatrail.infra.commands.options import add_read_model_option
from slatrail.infra.web.app import create_app
from slatrail.infra.web.compose import web_context
from slatrail.infra.web.server import bind, config, parse_listen

log = structlog.get_logger("slatrail.web")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "web", help="read API, live SLA board, metrics and health over HTTP"
    )
    parser.add_argument(
        "--listen", help="HOST:PORT to listen on (default 127.0.0.1:8080)  [SLATRAIL_WEB_LISTEN]"
    )
    parser.add_argument("--tokens", type=Path, help="tokens file  [SLATRAIL_TOKENS_FILE]")
    add_read_model_option(parser)
    parser.set_defaults(handler=run)


def run(container: Container, args: argparse.Namespace) -> int:
    overrides: dict[str, Any] = {}
    if args.listen:
        overrides["web_listen"] = args.listen
    if args.tokens:
        overrides["tokens_file"] = args.tokens
    if overrides:
        container.settings = container.settings.model_copy(update=overrides)
    listen = container.settings.web_listen
    parse_listen(listen)  # a usage error before anything opens
    app = create_app(web_context(container, from_read_model=args.from_read_model))
    server = uvicorn.Server(config(app, listen))
    sock = bind(listen)
    # Our own handlers: uvicorn's would re-raise the signal after its graceful shutdown (the
    # process would die of SIGTERM instead of exiting 0, as every slatrail command does).
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]

    def stop(signum: int, frame: FrameType | None) -> None:
        log.info("signal_received", signal=signal.Signals(signum).name)
        server.should_exit = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("web_starting", listen=listen, from_read_model=args.from_read_model)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    log.info("web_stopped")
    return 0
