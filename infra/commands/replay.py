"""`slatrail replay`: rebuild read models, the SLA ledger and the incident index from the event
store, resumable (tracking position)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from slatrail.application.selection import selected_histories
from slatrail.application.service import IndexedRecorder, SlatrailApplication
from slatrail.domain.contract_version import ContractBook
from slatrail.infra.bootstrap import Container
from slatrail.infra.progress import Progress
from slatrail.infra.read_model_store import ReadModelStore
from slatrail.infra.redact import redact_url
from slatrail.projections.incident_index import EntryBuilder, IndexQuery
from slatrail.projections.ledger import incident_ledger
from slatrail.projections.read_models import READ_MODELS, SLA, STORE_SOURCE, TrackedEvent

BATCH = 5000


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "replay", help="rebuild read models from the event store, with a progress bar"
    )
    parser.add_argument(
        "--projection",
        choices=READ_MODELS,
        action="append",
        help="only this read model (repeatable; default: all)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted replay after the read models' tracking position "
        "instead of starting over",
    )
    parser.set_defaults(handler=run)


@dataclass
class ReplayResult:
    names: tuple[str, ...]
    started_after: int  # notification id the replay continued after (0: from the start)
    last: int  # last notification id applied
    events: int
    written: int
    seconds: float


def replay(
    app: SlatrailApplication,
    store: ReadModelStore,
    names: Sequence[str] = READ_MODELS,
    *,
    resume: bool = False,
    batch: int = BATCH,
    progress: Callable[[int, int], None] | None = None,
    on_start: Callable[[int, int], None] | None = None,
    index: dict[str, EntryBuilder] | None = None,
) -> ReplayResult:
    """Feed every recorded event (after the tracking position when resuming) to `names`, and
    to `index` (one incident index row built per incident) when given.

    Each batch is written with its tracking position in one transaction, so an interrupted
    replay loses nothing and `resume=True` continues where it stopped.
    """
    names = tuple(names)
    if resume:
        after = min(store.position(name, STORE_SOURCE) or 0 for name in names)
    else:
        store.reset(names)
        after = 0
    end = app.recorder.max_notification_id() or 0
    if on_start is not None:
        on_start(after, end)
    started = time.perf_counter()
    events = written = 0
    last = after
    pending: list[TrackedEvent] = []

    def flush() -> None:
        nonlocal events, written, last
        if not pending:
            return
        written += store.apply(pending, read_models=names)
        events += len(pending)
        if progress is not None:
            progress(pending[-1].position - last, len(pending))
        last = pending[-1].position
        pending.clear()

    for notification_id, event in app.all_events(start=after + 1, page=batch):
        pending.append(TrackedEvent(STORE_SOURCE, notification_id, event))
        if index is not None:
            index.setdefault(event.incident_id, EntryBuilder()).add(event)
        if len(pending) >= batch:
            flush()
    flush()
    if progress is not None:
        progress(max(end - last, 0), 0)  # the store's last records are not incident events
    return ReplayResult(names, after, last, events, written, time.perf_counter() - started)


def rebuild_index(app: SlatrailApplication, builders: dict[str, EntryBuilder] | None) -> int | None:
    """Write the incident index afresh (docs/scale.md#the-incident-index): from `builders`, fed
    by the replay's own pass over every event, or (None: the replay resumed) from a pass of
    its own. Returns the incidents indexed; None when the store has no index table."""
    recorder = app.recorder
    if not isinstance(recorder, IndexedRecorder) or not recorder.has_index():
        return None
    if builders is None:
        return app.rebuild_index()
    entries = [e for b in builders.values() if (e := b.entry()) is not None]
    recorder.replace_index(entries)
    return len(entries)


def rebuild_ledger(
    app: SlatrailApplication, store: ReadModelStore, contracts: ContractBook
) -> tuple[int, int]:
    """The ledger table computed afresh from every incident in the store (one chunk of
    incidents at a time), stamped with the store's notification id read before and the
    latest contract version: a later event makes it stale until the projection consumer
    applies it (docs/scale.md#the-sla-ledger). Returns (that id, intervals written)."""
    position = app.recorder.max_notification_id() or 0
    ledgers = (
        (events[0].occurred_at, incident_ledger(events, contracts))
        for events in selected_histories(app, IndexQuery())
        if events
    )
    return position, store.rebuild_ledger(ledgers, position, contracts.latest.version)


def run(container: Container, args: argparse.Namespace) -> int:
    names = tuple(dict.fromkeys(args.projection or READ_MODELS))
    bar: Progress | None = None

    def start(after: int, end: int) -> None:
        nonlocal bar
        bar = Progress(max(end - after, 0), unit="notifications", label="events")
        what = f"resuming after notification {after}" if after else "from the start"
        print(f"replaying {', '.join(names)} into {redact_url(container.read_model_url)} ({what}, "
              f"store head {end})", file=sys.stderr)  # fmt: skip

    def advance(notifications: int, events: int) -> None:
        if bar is not None:
            bar.advance(notifications, events)

    builders: dict[str, EntryBuilder] | None = None if args.resume else {}
    try:
        result = replay(
            container.app, container.read_models, names, resume=args.resume, batch=BATCH,
            progress=advance, on_start=start, index=builders,
        )  # fmt: skip
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
        done = {name: container.read_models.position(name, STORE_SOURCE) for name in names}
        print(f"slatrail replay: interrupted; applied up to notification "
              f"{min((p or 0) for p in done.values())}. "
              f"Run `slatrail replay --resume` to continue.", file=sys.stderr)  # fmt: skip
        return 130
    if bar is not None:
        bar.close()
    indexed = rebuild_index(container.app, builders)
    if indexed is None:
        print("incident index: the store has none (a writing command creates it)",
              file=sys.stderr)  # fmt: skip
    else:
        print(f"incident index: {indexed} incidents rebuilt from the events", file=sys.stderr)
    if SLA in names:
        started = time.perf_counter()
        position, intervals = rebuild_ledger(
            container.app, container.read_models, container.contract_book
        )
        print(f"SLA ledger: {intervals} intervals computed at notification {position} "
              f"in {time.perf_counter() - started:.1f}s", file=sys.stderr)  # fmt: skip
    rate = result.events / result.seconds if result.seconds > 0 else 0.0
    print(f"replayed {result.events} events into {', '.join(names)} "
          f"({result.written} rows written) in {result.seconds:.1f}s, {rate:,.0f} events/s; "
          f"tracking at notification {result.last}")  # fmt: skip
    return 0
