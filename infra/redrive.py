"""Redrive: dead letters re-submitted through the path of new messages (docs/redrive.md).

Each dead letter's original is rebuilt (`raw_base64` bytes, `raw` text or the `message`
object), decoded by `infra.wire.decode` and recorded by `SlatrailApplication.record` with the
dead letter's reference as the event's `redrive` marker. A message already recorded is a
duplicate (its receipt has the same fingerprint), so redriving twice changes nothing.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog

from slatrail.application.outcomes import Decoded, IngestCounts, Outcome, Status
from slatrail.application.service import SlatrailApplication
from slatrail.domain.errors import InvalidMessageError
from slatrail.domain.model import parse_instant
from slatrail.infra.deadletters import DeadLetter, NotRedrivable, from_record, original_bytes
from slatrail.infra.rejections import rejection_record
from slatrail.infra.wire import decode

log = structlog.get_logger("slatrail.redrive")

BATCH_SIZE = 500


@dataclass(frozen=True)
class Filter:
    """Which dead letters to redrive: all of the given codes, incident and time (AND)."""

    codes: frozenset[str] | None = None
    incident: str | None = None
    since: datetime | None = None

    def keeps(self, entry: dict[str, Any]) -> bool:
        if self.codes is not None and entry.get("code") not in self.codes:
            return False
        if self.incident is not None and _incident_of(entry) != self.incident:
            return False
        if self.since is not None:
            try:
                rejected_at = parse_instant(str(entry.get("rejected_at")))
            except ValueError:
                return False
            if rejected_at < self.since:
                return False
        return True


def _incident_of(entry: dict[str, Any]) -> str | None:
    incident = entry.get("incident_id")
    if isinstance(incident, str):
        return incident
    message = entry.get("message")
    if isinstance(message, dict) and isinstance(message.get("incident_id"), str):
        return str(message["incident_id"])
    return None


@dataclass
class RedriveCounts:
    read: int = 0
    outcomes: IngestCounts = field(default_factory=IngestCounts)
    skipped: int = 0
    not_redrivable: list[dict[str, Any]] = field(default_factory=list)

    def add(self, outcome: Outcome) -> None:
        self.outcomes.add(outcome)

    @property
    def accepted(self) -> int:
        return self.outcomes.accepted

    @property
    def duplicate(self) -> int:
        return self.outcomes.duplicate

    @property
    def still_rejected(self) -> int:
        return self.outcomes.rejected

    @property
    def by_code(self) -> dict[str, int]:
        return self.outcomes.by_code

    @property
    def unresolved(self) -> int:
        """Dead letters in scope whose message is still not recorded."""
        return self.still_rejected + len(self.not_redrivable)

    def as_json(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "accepted": self.accepted,
            "duplicate": self.duplicate,
            "still_rejected": self.still_rejected,
            "still_rejected_by_code": dict(sorted(self.by_code.items())),
            "skipped_by_filter": self.skipped,
            "not_redrivable": len(self.not_redrivable),
            "not_redrivable_entries": self.not_redrivable,
        }


StillRejected = Callable[[DeadLetter, bytes, Outcome], None]


class Redriver:
    """Feeds dead letters to the application in batches; counts and reports every outcome."""

    def __init__(
        self,
        app: SlatrailApplication,
        clock: Callable[[], datetime],
        on_still_rejected: StillRejected,
        *,
        keep: Filter | None = None,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        self.app = app
        self.clock = clock
        self.on_still_rejected = on_still_rejected
        self.filter = keep or Filter()
        self.batch_size = batch_size
        self.counts = RedriveCounts()
        self._batch: list[tuple[Decoded, DeadLetter, bytes]] = []

    def feed(self, letter: DeadLetter) -> None:
        self.counts.read += 1
        entry = letter.entry
        if entry is None:
            self._not_redrivable(letter, letter.problem or "unreadable", {})
            return
        if not self.filter.keeps(entry):
            self.counts.skipped += 1
            return
        try:
            raw = original_bytes(entry)
        except NotRedrivable as error:
            self._not_redrivable(letter, str(error), entry)
            return
        try:
            decoded = decode(raw)
        except InvalidMessageError as error:
            self._done(letter, raw, Outcome.rejected(error))
            return
        self._batch.append((decoded, letter, raw))
        if len(self._batch) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        if not self._batch:
            return
        batch, self._batch = self._batch, []
        outcomes = self.app.record(
            [item[0] for item in batch], now=self.clock(), redrive=[item[1].ref for item in batch]
        )
        for (_, letter, raw), outcome in zip(batch, outcomes, strict=True):
            self._done(letter, raw, outcome)

    def _done(self, letter: DeadLetter, raw: bytes, outcome: Outcome) -> None:
        self.counts.add(outcome)
        if outcome.status == Status.REJECTED:
            log.warning(
                "redrive_still_rejected",
                dead_letter=letter.ref,
                incident_id=outcome.incident_id,
                message_id=outcome.message_id,
                code=outcome.code,
            )
            self.on_still_rejected(letter, raw, outcome)
        elif outcome.status == Status.ACCEPTED:
            log.debug("redriven", dead_letter=letter.ref, incident_id=outcome.incident_id,
                     message_id=outcome.message_id, position=outcome.position)  # fmt: skip

    def _not_redrivable(self, letter: DeadLetter, reason: str, entry: dict[str, Any]) -> None:
        item: dict[str, Any] = {"dead_letter": letter.ref, "reason": reason}
        for key in ("code", "incident_id", "topic", "partition", "offset"):
            if entry.get(key) is not None:
                item[key] = entry[key]
        self.counts.not_redrivable.append(item)
        log.warning("dead_letter_not_redrivable", dead_letter=letter.ref, reason=reason)


def redrive(
    letters: Iterable[DeadLetter],
    app: SlatrailApplication,
    clock: Callable[[], datetime],
    on_still_rejected: StillRejected,
    keep: Filter | None = None,
) -> RedriveCounts:
    redriver = Redriver(app, clock, on_still_rejected, keep=keep)
    for letter in letters:
        redriver.feed(letter)
    redriver.flush()
    return redriver.counts


def still_rejected_entry(
    letter: DeadLetter, raw: bytes, outcome: Outcome, rejected_at: datetime
) -> dict[str, Any]:
    """The dead letter of a redrive that failed again: the usual entry of its original, the
    new code and reason, `redrive_of` (the dead letter redriven) and the first one's origin."""
    entry = rejection_record(raw, outcome, line=None, rejected_at=rejected_at)
    if "raw_base64" not in entry and not _is_utf8(raw):
        entry.update(raw=None, raw_base64=base64.b64encode(raw).decode("ascii"))
    first = letter.entry or {}
    for key in ("line", "topic", "partition", "offset", "key", "timestamp"):
        if key in first:
            entry[key] = first[key]
    entry["redrive_of"] = letter.ref
    return entry


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# -- the rejected topic ---------------------------------------------------------------------


class TopicNotFoundError(LookupError):
    """The rejected topic does not exist on the broker."""


def read_topic(
    config: dict[str, Any], topic: str, *, timeout_s: float = 30.0
) -> Iterator[DeadLetter]:
    """Every dead letter of `topic`, from the beginning of each partition to its high watermark
    as first fetched (what redrive itself adds later is not read). A plain consumer: assigned
    partitions, no group, nothing committed."""
    from slatrail.infra.kafka_client import TopicPartition, new_consumer

    consumer = new_consumer(
        **config,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=BATCH_SIZE,
        fetch_max_wait_ms=100,
    )
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            raise TopicNotFoundError(f"topic {topic!r} does not exist")
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        # The end is the fetch high watermark (Tansu answers end_offsets() short of the last
        # records of a batch), frozen at the first fetch of each partition.
        end: dict[TopicPartition, int] = {}
        deadline = time.monotonic() + timeout_s
        while True:
            batch = consumer.poll(timeout_ms=300)
            for tp in tps:
                high = consumer.highwater(tp)
                if tp not in end and high is not None:
                    end[tp] = high
            progressed = False
            for tp, records in sorted(batch.items(), key=lambda item: item[0].partition):
                for record in records:
                    if tp in end and record.offset >= end[tp]:
                        continue
                    progressed = True
                    yield from_record(topic, record.partition, record.offset, record.value)
            done = [tp for tp in tps if tp in end and consumer.position(tp) >= end[tp]]
            consumer.pause(*done)
            if len(done) == len(tps):
                return
            if progressed:
                deadline = time.monotonic() + timeout_s
            elif time.monotonic() > deadline:
                missing = sorted(tp.partition for tp in tps if tp not in done)
                raise TimeoutError(
                    f"{topic}: partitions {missing} did not reach their end in {timeout_s:.0f} s"
                )
    finally:
        consumer.close(autocommit=False)
