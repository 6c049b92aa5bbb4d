"""structlog set-up: JSON lines when not on a terminal, readable key=values on one.

`--log-format json|console|auto` (`SLATRAIL_LOG_FORMAT`, default auto: console when stderr is a
terminal, JSON otherwise — what a log shipper reads). `expected_rejections()` marks a block
whose refused messages are expected and summarised by the command (the demo's deliberate bad
input): their `message_rejected` lines are logged at debug instead of warning.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib.abc
import importlib.machinery
import logging
import sys
from collections.abc import Iterator, MutableMapping, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # structlog is imported by the first module that logs (start-up)
    import structlog

LOG_FORMATS = ("auto", "console", "json")

_EXPECTED = contextvars.ContextVar("slatrail_expected_rejections", default=False)
_LEVEL = {"value": logging.INFO}
_PENDING: dict[str, tuple[str, str]] = {}


def _stderr_logger(*_: object) -> structlog.PrintLogger:
    import structlog

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
            import structlog

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
    """Configure structlog now if it is imported, else as soon as something imports it: a
    command that never logs never pays for importing it."""
    _PENDING["config"] = (level, fmt)
    if "structlog" in sys.modules:
        _apply()
    elif not any(isinstance(finder, _ConfigureOnImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _ConfigureOnImport())


def _apply() -> None:
    import structlog

    level, fmt = _PENDING["config"]
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


class _ConfigureOnImport(importlib.abc.MetaPathFinder):
    """Finds nothing itself: when `structlog` is first imported it wraps the real loader so
    that the pending configuration is applied right after the module has run."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "structlog":
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and isinstance(spec.loader, importlib.abc.Loader):
            spec.loader = _ThenConfigure(spec.loader)
        return spec


class _ThenConfigure(importlib.abc.Loader):
    def __init__(self, loader: importlib.abc.Loader) -> None:
        self.loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self.loader.exec_module(module)
        _apply()
