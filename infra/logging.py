"""structlog set-up: JSON lines when not on a terminal, readable key=values on one.

`--log-format json|console|auto` (`SLATRAIL_LOG_FORMAT`, default auto: console when stderr is a
terminal, JSON otherwise — what a log shipper reads). `expected_rejections()` marks a block
whose refused messages are expected and summarised by the command (the demo's deliberate bad
input): their `message_rejected` lines are logged at debug instead of warning.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import sys
from collections.abc import Iterator, MutableMapping
from typing import Any

import structlog

LOG_FORMATS = ("auto", "console", "json")

_EXPECTED = contextvars.ContextVar("slatrail_expected_rejections", default=False)
_LEVEL = {"value": logging.INFO}


def _stderr_logger(*_: object) -> structlog.PrintLogger:
    # Looked up at each logger creation, so a replaced sys.stderr (tests, daemons) is honoured.
    return structlog.PrintLogger(sys.stderr)


@contextlib.contextmanager
def expected_rejections() -> Iterator[None]:
    token = _EXPECTED.set(True)
    try:
        yield
    finally:
        _EXPECTED.reset(token)


def _quiet_expected(_: Any, method: str, event: MutableMapping[str, Any]) -> Any:
    if _EXPECTED.get() and event.get("event") == "message_rejected":
        if _LEVEL["value"] > logging.DEBUG:
            raise structlog.DropEvent
        event["level"] = "debug"
    return event


def wants_console(fmt: str, stream: Any = None) -> bool:
    stream = sys.stderr if stream is None else stream
    if fmt == "console":
        return True
    if fmt == "json":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def configure_logging(level: str = "info", fmt: str = "auto") -> None:
    renderer: structlog.typing.Processor
    if wants_console(fmt):
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    else:
        renderer = structlog.processors.JSONRenderer()
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    _LEVEL["value"] = numeric
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            _quiet_expected,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )
