"""The event store seen as the relay's outbox: new events, relayed position, leadership.

* The relayed position is an eventsourcing `Tracking` record in the store's own database
  (`tracking` table on SQLite, `slatrail_tracking` on PostgreSQL), written only after the
  broker acknowledged the events up to it.
* One relay at a time per store and topic: a lock file next to a SQLite store
  (`fcntl.flock`, released when the process dies), a session advisory lock on PostgreSQL.
  The lock only saves duplicate work: correctness never depends on it (tracking only moves
  forward; the envelope carries the position, consumers de-duplicate).
* New events: PostgreSQL `LISTEN` on the store's notification channel wakes the relay up.
  On SQLite it looks every 2 ms at the database's `data_version` (a counter SQLite changes
  when another connection commits: a look costs microseconds, where reading the notification
  log costs a query), and reads the store when it changed or after the poll interval.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from itertools import islice
from typing import IO, Any
from urllib.parse import quote

import structlog
from eventsourcing.persistence import IntegrityError, Tracking, TrackingRecorder

from slatrail.application.service import SlatrailApplication
from slatrail.consumers.projection_ports import RelayLock
from slatrail.domain.model import IncidentEvent
from slatrail.infra.store import persistence_env

log = structlog.get_logger("slatrail.relay")


class _FileLock:
    def __init__(self, path: str) -> None:
        self.path = path
        self._file: IO[str] | None = None

    def acquire(self) -> bool:
        if self._file is not None:
            return True
        handle = open(self.path, "a+")  # noqa: SIM115 - held while leader
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._file = handle
        return True

    def release(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None


_PROCESS_LOCKS: dict[str, threading.Lock] = {}


class _ProcessLock:
    """For in-memory stores: only one relay per process."""

    def __init__(self, name: str) -> None:
        self._lock = _PROCESS_LOCKS.setdefault(name, threading.Lock())
        self._held = False

    def acquire(self) -> bool:
        if not self._held:
            self._held = self._lock.acquire(blocking=False)
        return self._held

    def release(self) -> None:
        if self._held:
            self._lock.release()
            self._held = False


class _AdvisoryLock:
    """A PostgreSQL session advisory lock on a dedicated connection (checked every second)."""

    def __init__(self, url: str, name: str) -> None:
        self.url = url
        self.key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
        self._conn: Any = None
        self._checked = 0.0

    def acquire(self) -> bool:
        import psycopg

        try:
            if self._conn is not None:
                if time.monotonic() - self._checked >= 1.0:
                    self._conn.execute("SELECT 1")
                    self._checked = time.monotonic()
                return True
            conn = psycopg.connect(self.url, autocommit=True, connect_timeout=10)
            row = conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
            if not row or not row[0]:
                conn.close()
                return False
            self._conn, self._checked = conn, time.monotonic()
            return True
        except psycopg.Error as error:
            log.warning("relay_lock_lost", error=repr(error))
            self.release()
            return False

    def release(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None


class _PgWaiter:
    """Sleeps until the store NOTIFYs a new event (or the timeout)."""

    def __init__(self, url: str, channel: str) -> None:
        self.url = url
        self.channel = channel
        self._conn: Any = None

    def wait(self, timeout_s: float) -> None:
        import psycopg
        from psycopg import sql

        try:
            if self._conn is None:
                self._conn = psycopg.connect(self.url, autocommit=True, connect_timeout=10)
                self._conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
            for _ in self._conn.notifies(timeout=timeout_s, stop_after=1):
                break
        except psycopg.Error:
            self.close()
            time.sleep(timeout_s)

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None


class _SleepWaiter:
    """Polls; an in-process `recorded` event (set by the inbound consumer) cuts the wait."""

    def __init__(self, recorded: threading.Event | None) -> None:
        self.recorded = recorded or threading.Event()

    def wait(self, timeout_s: float) -> None:
        if self.recorded.wait(timeout_s):
            self.recorded.clear()

    def close(self) -> None:
        pass


class _SqliteWaiter:
    """Waits until another connection committed to the SQLite database (its `data_version`
    moved), the in-process `recorded` event is set, or the timeout."""

    CHECK_S = 0.002

    def __init__(self, path: str, recorded: threading.Event | None) -> None:
        self.path = path
        self.recorded = recorded or threading.Event()
        self._conn: sqlite3.Connection | None = None
        self._seen: int | None = None  # the version when the relay last went to read

    def _version(self) -> int | None:
        try:
            if self._conn is None:
                self._conn = sqlite3.connect(
                    f"file:{quote(self.path)}?mode=ro", uri=True, check_same_thread=False
                )
            row = self._conn.execute("PRAGMA data_version").fetchone()
            return int(row[0])
        except sqlite3.Error:
            self.close()
            return None

    def wait(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        # A commit after the last wait returned (e.g. while the relay was reading) counts:
        # the version is compared with the one seen then, not with the one now.
        seen = self._seen if self._seen is not None else self._version()
        while True:
            remaining = deadline - time.monotonic()
            if self.recorded.wait(min(self.CHECK_S, max(remaining, 0.0))):
                self.recorded.clear()
                break
            version = self._version()
            if version is None or seen is None:  # cannot look: plain polling
                if self.recorded.wait(max(deadline - time.monotonic(), 0.0)):
                    self.recorded.clear()
                break
            if version != seen or remaining <= self.CHECK_S:
                break
        self._seen = self._version()

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None
        self._seen = None


class Outbox:
    """What the relay needs from the store; see the module docstring."""

    def __init__(
        self,
        app: SlatrailApplication,
        store_url: str,
        *,
        name: str,
        recorded: threading.Event | None = None,
    ) -> None:
        self.app = app
        self.name = name
        self._tracking: TrackingRecorder | None = None
        env = persistence_env(store_url)
        sqlite_path = env.get("SQLITE_DBNAME")
        self.leadership: RelayLock
        self._waiter: _PgWaiter | _SleepWaiter | _SqliteWaiter
        if sqlite_path is None:
            self.leadership = _AdvisoryLock(store_url, f"slatrail-relay:{name}")
            channel = str(getattr(app.recorder, "channel_name", "slatrail_events"))
            self._waiter = _PgWaiter(store_url, channel)
        elif "mode=memory" in sqlite_path:
            self.leadership = _ProcessLock(f"{sqlite_path}:{name}")
            self._waiter = _SleepWaiter(recorded)
        else:
            lock_name = name.replace("/", "_").replace(":", "_")
            self.leadership = _FileLock(f"{sqlite_path}.{lock_name}.lock")
            self._waiter = _SqliteWaiter(sqlite_path, recorded)

    @property
    def tracking(self) -> TrackingRecorder:
        if self._tracking is None:
            self._tracking = self.app.factory.tracking_recorder()
        return self._tracking

    def position(self) -> int:
        """Last notification id acknowledged by the broker (0: none)."""
        return self.tracking.max_tracking_id(self.name) or 0

    def save(self, notification_id: int) -> None:
        try:
            self.tracking.insert_tracking(Tracking(self.name, notification_id))
        except IntegrityError:
            # Only if another relay got further (lost lock): never move backwards.
            log.warning("relay_position_not_advanced", position=notification_id)

    def events_after(self, position: int, limit: int) -> list[tuple[int, IncidentEvent]]:
        events: Iterator[tuple[int, IncidentEvent]] = self.app.all_events(
            start=position + 1, page=limit
        )
        return list(islice(events, limit))

    def head(self) -> int:
        """Highest notification id in the store (events and receipts)."""
        return self.app.recorder.max_notification_id() or 0

    def wait(self, timeout_s: float) -> None:
        self._waiter.wait(timeout_s)

    def close(self) -> None:
        self.leadership.release()
        self._waiter.close()
