"""A structlog logger that imports structlog on its first use.

Importing structlog costs about as much as a single-incident command's own work (it imports
asyncio), so the modules on that path (the application service, the store, the composition
root, the CLI) hold one of these instead: a command that never logs never imports it.
"""

from __future__ import annotations

from typing import Any


class LazyLogger:
    """`structlog.get_logger(name)`, looked up when a method is first called."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._logger: Any = None

    def __getattr__(self, method: str) -> Any:
        if method.startswith("__"):
            raise AttributeError(method)
        if self._logger is None:
            import structlog

            self._logger = structlog.get_logger(self._name)
        return getattr(self._logger, method)
