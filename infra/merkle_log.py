"""The Merkle log kept in the store's own database (SQLite or PostgreSQL).

Three tables beside the events: `slatrail_merkle_leaves` (one row per stored record, leaf index
= its rank in notification-log order, with its notification id and leaf hash),
`slatrail_merkle_nodes` (every complete subtree above the leaves) and `slatrail_checkpoints`
(the signed checkpoints made). `sync` appends, in one transaction per page, every stored record
after the last one in the tree — read in notification-id order in the same transaction, so it
can never skip or reorder a record — and the complete subtrees each leaf closes. A root or a
proof at any size then reads O(log n) rows (docs/audit.md §9).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError, OperationalError, StoredEvent

from slatrail.application.service import INCIDENT_TOPICS, SlatrailApplication
from slatrail.domain.log_entries import event_leaf, record_leaf
from slatrail.domain.merkle import (
    EMPTY_ROOT,
    Node,
    complete_nodes,
    consistency_ranges,
    hashes_of,
    inclusion_ranges,
    leaf_hash,
    node_hash,
    proof_nodes,
)
from slatrail.domain.model import IncidentEvent
from slatrail.infra.batch_reads import is_postgres_recorder
from slatrail.infra.errors import EXIT_FINDING, OperatorError

LEAVES = "slatrail_merkle_leaves"
NODES = "slatrail_merkle_nodes"
CHECKPOINTS = "slatrail_checkpoints"
PAGE = 5_000
_INCIDENT_TOPICS = frozenset(INCIDENT_TOPICS)
_LOCK_KEY = 0x534C4D4B  # pg_advisory_xact_lock key of the tree's appenders ("SLMK")


def _schema(blob: str, big: str, serial: str) -> list[str]:
    return [
        f"CREATE TABLE IF NOT EXISTS {LEAVES} (leaf_index {big} PRIMARY KEY, "
        f"notification_id {big} NOT NULL UNIQUE, aggregate_id TEXT NOT NULL, "
        f"version {big} NOT NULL, leaf_hash {blob} NOT NULL)",
        f"CREATE INDEX IF NOT EXISTS {LEAVES}_aggregate ON {LEAVES} (aggregate_id, version)",
        f"CREATE TABLE IF NOT EXISTS {NODES} (level INTEGER NOT NULL, idx {big} NOT NULL, "
        f"hash {blob} NOT NULL, PRIMARY KEY (level, idx))",
        f"CREATE TABLE IF NOT EXISTS {CHECKPOINTS} (seq {serial}, tree_size {big} NOT NULL, "
        "note TEXT NOT NULL)",
    ]


@dataclass(frozen=True, slots=True)
class StoredLeaf:
    leaf_index: int
    notification_id: int
    aggregate_id: str
    version: int
    leaf_hash: bytes


def stored_record_leaf(
    app: SlatrailApplication, stored: StoredEvent, event: IncidentEvent | None = None
) -> bytes:
    """The leaf bytes of one stored record (docs/audit.md §9); `event` if already decoded."""
    event = event or decoded_event(app, stored)
    if event is not None:
        return event_leaf(event)
    aggregate_id = stored.originator_id
    hex_id = aggregate_id.hex if isinstance(aggregate_id, UUID) else str(aggregate_id)
    return record_leaf(hex_id, stored.originator_version, stored.topic, stored.state)


def decoded_event(app: SlatrailApplication, stored: StoredEvent) -> IncidentEvent | None:
    """The incident event a stored record holds, None for other records or damaged bytes."""
    if stored.topic not in _INCIDENT_TOPICS:
        return None
    try:
        event: Any = app.mapper.to_domain_event(stored)
        record: IncidentEvent = event.to_record()
    except Exception:  # damaged: committed to by its bytes (and verify reports it)
        return None
    return record


class MerkleLog:
    """The tree over every stored record of `app`'s store, in notification-log order."""

    def __init__(self, app: SlatrailApplication) -> None:
        self.app = app
        recorder: Any = app.recorder
        self.datastore: Any = recorder.datastore
        self.events_table: str = recorder.events_table_name
        self.postgres = is_postgres_recorder(recorder)
        self._created = False

    # -- SQL plumbing ------------------------------------------------------------------

    def _sql(self, text: str) -> str:
        return text.replace("?", "%s") if self.postgres else text

    def _exec(self, c: Any, sql: str, params: Sequence[Any] = ()) -> None:
        c.execute(self._sql(sql), params)

    def _notifications_sql(self) -> str:
        column = "notification_id" if self.postgres else "rowid"
        return (
            f"SELECT {column} AS id, originator_id, originator_version, topic, state "
            f"FROM {self.events_table} WHERE {column} > ? ORDER BY {column} LIMIT ?"
        )

    def exists(self) -> bool:
        """Whether the tree's tables exist (a read-only command never creates them)."""
        if self._created:
            return True
        with self.datastore.transaction(commit=False) as c:
            if self.postgres:
                c.execute("SELECT to_regclass(%s) AS t", (CHECKPOINTS,))
                found = c.fetchone()["t"] is not None
            else:
                c.execute("SELECT name FROM sqlite_master WHERE name = ?", (CHECKPOINTS,))
                found = c.fetchone() is not None
        self._created = found
        return found

    def create(self) -> None:
        if self._created:
            return
        statements = (
            _schema("BYTEA", "BIGINT", "BIGSERIAL PRIMARY KEY")
            if self.postgres
            else _schema("BLOB", "INTEGER", "INTEGER PRIMARY KEY AUTOINCREMENT")
        )
        with self.datastore.transaction(commit=True) as c:
            if self.postgres:
                c.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            for statement in statements:
                c.execute(statement)
        self._created = True

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        if not self.exists():
            return []
        with self.datastore.transaction(commit=False) as c:
            self._exec(c, sql, params)
            return list(c.fetchall())

    # -- appending ---------------------------------------------------------------------

    def sync(self, *, page: int = PAGE) -> int:
        """Append every stored record not in the tree yet; the new size."""
        self.create()
        conflicts = 0
        while True:
            try:
                size, added = self._append_page(page)
            except (IntegrityError, OperationalError, sqlite3.IntegrityError,
                    sqlite3.OperationalError):  # fmt: skip
                # another process appended the same page first (SQLite has no advisory lock):
                # its rows are the same; read the tree again and go on from there
                conflicts += 1
                if conflicts > 5:
                    raise
                time.sleep(0.05 * conflicts)
                continue
            if not added:
                return size

    def _append_page(self, page: int) -> tuple[int, int]:
        with self.datastore.transaction(commit=True) as c:
            if self.postgres:
                c.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            self._exec(
                c,
                f"SELECT leaf_index AS i, notification_id AS n FROM {LEAVES} "
                "ORDER BY leaf_index DESC LIMIT 1",
            )
            row = c.fetchone()
            size, last = (int(row["i"]) + 1, int(row["n"])) if row else (0, 0)
            self._exec(c, self._notifications_sql(), (last, page))
            rows = c.fetchall()
            if not rows:
                return size, 0
            stack = self._frontier(c, size)
            leaves, nodes = [], []
            for offset, row in enumerate(rows):
                raw_id = row["originator_id"]  # SQLite: 32 hex digits; PostgreSQL: a UUID
                hex_id = raw_id.hex if isinstance(raw_id, UUID) else raw_id
                version, topic, state = row["originator_version"], row["topic"], row["state"]
                if topic in _INCIDENT_TOPICS:
                    stored = StoredEvent(UUID(hex=hex_id), version, topic, bytes(state))
                    leaf = stored_record_leaf(self.app, stored)
                else:  # no need to decode it
                    leaf = record_leaf(hex_id, version, topic, bytes(state))
                index = size + offset
                digest = leaf_hash(leaf)
                leaves.append((index, row["id"], hex_id, version, digest))
                stack.append((0, index, digest))
                while len(stack) > 1 and stack[-1][0] == stack[-2][0]:
                    level, _, right = stack.pop()
                    _, left_index, left = stack.pop()
                    merged = (level + 1, left_index >> 1, node_hash(left, right))
                    stack.append(merged)
                    nodes.append(merged)
            c.executemany(self._sql(f"INSERT INTO {LEAVES} VALUES (?, ?, ?, ?, ?)"), leaves)
            if nodes:
                c.executemany(self._sql(f"INSERT INTO {NODES} VALUES (?, ?, ?)"), nodes)
            return size + len(rows), len(rows)

    def _frontier(self, c: Any, size: int) -> list[tuple[int, int, bytes]]:
        """The complete subtrees of the right edge of the tree of `size` leaves."""
        wanted = complete_nodes(0, size)
        found = self._fetch_nodes(c, wanted)
        return [(level, index, found[(level, index)]) for level, index in wanted]

    def _fetch_nodes(self, c: Any, wanted: Sequence[Node] | set[Node]) -> dict[Node, bytes]:
        found: dict[Node, bytes] = {}
        leaves = sorted(index for level, index in wanted if level == 0)
        inner = sorted((level, index) for level, index in wanted if level > 0)
        for chunk in _chunks(leaves, 500):
            marks = ",".join("?" * len(chunk))
            self._exec(
                c,
                f"SELECT leaf_index AS i, leaf_hash AS h FROM {LEAVES} "
                f"WHERE leaf_index IN ({marks})",
                chunk,
            )
            found.update({(0, int(r["i"])): bytes(r["h"]) for r in c.fetchall()})
        for chunk in _chunks(inner, 250):
            where = " OR ".join("(level = ? AND idx = ?)" for _ in chunk)
            self._exec(
                c,
                f"SELECT level AS l, idx AS i, hash AS h FROM {NODES} WHERE {where}",
                [v for node in chunk for v in node],
            )
            found.update({(int(r["l"]), int(r["i"])): bytes(r["h"]) for r in c.fetchall()})
        missing = [n for n in wanted if n not in found]
        if missing:
            raise TreeDamagedError(f"the Merkle log lacks node {missing[0]}: run `slatrail verify`")
        return found

    # -- reading -----------------------------------------------------------------------

    def size(self) -> int:
        rows = self._read(f"SELECT MAX(leaf_index) AS i FROM {LEAVES}")
        return int(rows[0]["i"]) + 1 if rows and rows[0]["i"] is not None else 0

    def _hashes(self, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        with self.datastore.transaction(commit=False) as c:
            nodes = self._fetch_nodes(c, proof_nodes(ranges))
        return hashes_of(ranges, nodes)

    def root(self, size: int) -> bytes:
        self._check_size(size)
        return self._hashes([(0, size)])[0] if size else EMPTY_ROOT

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        self._check_size(size)
        return self._hashes(inclusion_ranges(index, size))

    def consistency_proof(self, old: int, new: int) -> list[bytes]:
        self._check_size(new)
        return self._hashes(consistency_ranges(old, new))

    def _check_size(self, size: int) -> None:
        have = self.size()
        if size > have:
            raise TreeDamagedError(
                f"the Merkle log holds {have} records, not {size}: the store lost records "
                "since that checkpoint (run `slatrail verify --checkpoint`)"
            )

    def leaves_of(self, aggregate_id: UUID) -> list[StoredLeaf]:
        rows = self._read(
            f"SELECT * FROM {LEAVES} WHERE aggregate_id = ? ORDER BY version", (aggregate_id.hex,)
        )
        return [_leaf(r) for r in rows]

    def leaf_of(self, aggregate_id: UUID, version: int) -> StoredLeaf | None:
        rows = self._read(
            f"SELECT * FROM {LEAVES} WHERE aggregate_id = ? AND version = ?",
            (aggregate_id.hex, version),
        )
        return _leaf(rows[0]) if rows else None

    def leaf_at(self, index: int) -> StoredLeaf | None:
        rows = self._read(f"SELECT * FROM {LEAVES} WHERE leaf_index = ?", (index,))
        return _leaf(rows[0]) if rows else None

    def iter_leaves(self, page: int = 20_000) -> Iterator[StoredLeaf]:
        after = -1
        while True:
            rows = self._read(
                f"SELECT * FROM {LEAVES} WHERE leaf_index > ? ORDER BY leaf_index LIMIT ?",
                (after, page),
            )
            if not rows:
                return
            for row in rows:
                yield _leaf(row)
            after = int(rows[-1]["leaf_index"])

    # -- checkpoints -------------------------------------------------------------------

    def store_checkpoint(self, size: int, note: str) -> None:
        self.create()
        with self.datastore.transaction(commit=True) as c:
            self._exec(
                c, f"INSERT INTO {CHECKPOINTS} (tree_size, note) VALUES (?, ?)", (size, note)
            )

    def latest_checkpoint(self) -> str | None:
        rows = self._read(f"SELECT note FROM {CHECKPOINTS} ORDER BY seq DESC LIMIT 1")
        return str(rows[0]["note"]) if rows else None


class TreeDamagedError(OperatorError):
    """The tree's own tables lack what they must hold (altered, or the store truncated)."""

    exit_code = EXIT_FINDING
    prefix = "the Merkle log is damaged: "


def _leaf(row: Any) -> StoredLeaf:
    return StoredLeaf(
        int(row["leaf_index"]),
        int(row["notification_id"]),
        str(row["aggregate_id"]),
        int(row["version"]),
        bytes(row["leaf_hash"]),
    )


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
