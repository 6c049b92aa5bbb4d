"""The alert timer's drivers: reading `incidents.alerts` back over Kafka, and the file clock."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from slatrail.consumers.alert_timer import FiredReader, alert_keys
from slatrail.consumers.streams import Record
from slatrail.domain.model import parse_instant

CLOCK_FILE_ENV = "SLATRAIL_ALERT_CLOCK_FILE"
"""Testing hook: when set, the timer of `serve` reads simulated time from this file."""


class FileClock:
    """Simulated time read from a file holding one RFC 3339 instant (written by a test driver
    in another process); re-read whenever the file changes; blocks `poll_s` at most."""

    def __init__(self, path: Path, poll_s: float = 0.05) -> None:
        self.path = path
        self.poll_s = poll_s
        self._seen: tuple[int, int] | None = None
        self._now: datetime | None = None

    def now(self) -> datetime:
        stat = self.path.stat()
        signature = (stat.st_mtime_ns, stat.st_size)
        if self._now is None or signature != self._seen:
            text = self.path.read_text(encoding="utf-8").strip()
            if text:  # a writer may be between truncate and write: keep the last instant
                self._now = parse_instant(text)
                self._seen = signature
        if self._now is None:
            raise ValueError(f"{self.path}: no instant in the clock file")
        return self._now

    def wait_s(self, deadline: datetime | None) -> float:
        return self.poll_s


def kafka_fired_reader(
    config: Mapping[str, Any], topic: str, *, timeout_s: float = 120.0
) -> FiredReader:
    """Reads every partition of `topic` from the beginning to its end.

    The end is the high watermark of the fetch responses, not only `end_offsets`: Tansu 0.6
    answers ListOffsets(latest) with the last batch's base offset + 1, short of the last
    records when that batch held several. Raises TimeoutError when the end is not reached in
    `timeout_s` (the worker restarts rather than fire everything again).
    """

    def read(keep: Callable[[str], bool]) -> set[str]:
        from slatrail.infra.kafka_client import TopicPartition, new_consumer

        consumer = new_consumer(
            **{k: v for k, v in config.items() if k != "client_id"},
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        try:
            partitions = consumer.partitions_for_topic(topic) or set()
            assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
            if not assigned:
                return set()
            consumer.assign(assigned)
            consumer.seek_to_beginning(*assigned)
            listed = consumer.end_offsets(assigned)
            keys: set[str] = set()
            deadline = time.monotonic() + timeout_s
            while True:
                batches = consumer.poll(timeout_ms=300, max_records=5000)
                for tp, messages in batches.items():
                    keys |= alert_keys(
                        (
                            Record(tp.topic, tp.partition, m.offset, m.key, m.value)
                            for m in messages
                        ),
                        keep,
                    )
                if not batches and all(_at_end(consumer, tp, listed[tp]) for tp in assigned):
                    return keys
                if time.monotonic() > deadline:
                    raise TimeoutError(f"could not read {topic} to its end in {timeout_s:.0f} s")
        finally:
            consumer.close()

    return read


def _at_end(consumer: Any, tp: Any, listed: int) -> bool:
    high = consumer.highwater(tp)
    position = consumer.position(tp)
    return high is not None and position >= max(high, listed)


CLOCK_FILE_ENV = "SLATRAIL_ALERT_CLOCK_FILE"
"""Testing hook: when set, the timer of `serve` reads simulated time from this file."""
