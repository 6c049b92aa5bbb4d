"""A small progress bar on stderr, only when stderr is a terminal."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(
        self,
        total: int | None,
        unit: str = "B",
        stream: TextIO | None = None,
        label: str = "lines",
    ) -> None:
        self.total = total
        self.unit = unit
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty()
        self.done = 0
        self.items = 0
        self.started = time.monotonic()
        self._last_draw = 0.0

    def advance(self, amount: int, items: int = 1) -> None:
        self.done += amount
        self.items += items
        now = time.monotonic()
        if self.enabled and now - self._last_draw >= 0.1:
            self._last_draw = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        elapsed = max(now - self.started, 1e-9)
        rate = self.items / elapsed
        if self.total:
            fraction = min(self.done / self.total, 1.0)
            filled = int(fraction * 30)
            eta = (elapsed / fraction - elapsed) if fraction > 0 else 0.0
            bar = "#" * filled + "-" * (30 - filled)
            text = (
                f"\r[{bar}] {fraction:6.1%} {self.items} {self.label} {rate:,.0f}/s ETA {eta:4.0f}s"
            )
        else:
            text = f"\r{self.items} {self.label} {rate:,.0f}/s"
        self.stream.write(text)
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self._draw(time.monotonic())
            self.stream.write("\n")
            self.stream.flush()
