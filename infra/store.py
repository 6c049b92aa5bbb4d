"""Opening the event store: store URLs, the eventsourcing persistence environment (SQLite or
PostgreSQL), and the checks that name why a store cannot be used. The application it opens is
`application.service.SlatrailApplication`."""

from __future__ import annotations

import math
import os
import re
import sqlite3
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

from eventsourcing.persistence import PersistenceError

from slatrail.application.lazy_log import LazyLogger
from slatrail.application.service import DamagedStoreError, SlatrailApplication
from slatrail.domain.contract_version import ContractSource
from slatrail.infra.batch_reads import event_rows_of, stored_events_of
from slatrail.infra.errors import StoreMissingError, StoreUnavailableError, UsageError
from slatrail.infra.redact import redact_url

log = LazyLogger("slatrail.store")


class StoreURLError(UsageError, ValueError):
    """A --store (or read-model) URL slatrail cannot use (exit 2)."""


STORE_TABLE = "stored_events"  # eventsourcing's SQLite table (PostgreSQL: slatrail_events)
PG_TABLE = "slatrail_events"
DEFAULT_CONNECT_TIMEOUT_S = 5.0
URL_HINT = "use sqlite:///relative/path, sqlite:////absolute/path or postgresql://user:password@host:port/db"
# eventsourcing's recorders, keeping the incident index too (infra/incident_index.py)
SQLITE_RECORDER_TOPIC = "slatrail.infra.incident_index:IndexedSQLiteRecorder"
POSTGRES_RECORDER_TOPIC = "slatrail.infra.incident_index_pg:IndexedPostgresRecorder"
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


@dataclass(frozen=True, slots=True)
class StoreLocation:
    """A parsed store URL: an SQLite path, or PostgreSQL connection parameters."""

    scheme: str  # "sqlite" or "postgresql"
    path: str = ""  # sqlite
    host: str = "127.0.0.1"
    port: int = 5432
    user: str = "postgres"
    password: str = ""
    dbname: str = ""

    def libpq_url(self, connect_timeout_s: float) -> str:
        """The PostgreSQL parameters as a well-formed URL (every part percent-encoded)."""
        host = f"[{self.host}]" if ":" in self.host else quote(self.host, safe="")
        auth = quote(self.user, safe="") + (
            f":{quote(self.password, safe='')}" if self.password else ""
        )
        timeout = effective_timeout_s(connect_timeout_s)
        return (
            f"postgresql://{auth}@{host}:{self.port}/{quote(self.dbname, safe='')}"
            f"?connect_timeout={timeout}"
        )


def effective_timeout_s(connect_timeout_s: float) -> int:
    """libpq's connect_timeout: whole seconds, at least 2."""
    return max(2, math.ceil(connect_timeout_s))


def parse_store_url(url: str, what: str = "store") -> StoreLocation:
    """`sqlite:///path` or `postgresql://user:pw@host:port/db`; a clear error (never showing the
    password) for anything else. A password holding `/ ? # @` must be percent-encoded: URL
    parsers (ours, libpq's) would otherwise read part of it as the host, port or path."""
    shown = redact_url(url)
    match = _SCHEME.match(url)
    scheme = match.group(1).lower() if match else ""
    if scheme == "sqlite":
        path = unquote(url[len("sqlite://") :])
        if not path.startswith("/") or len(path) == 1:
            raise StoreURLError(f"sqlite {what} URL needs a path: {shown!r} ({URL_HINT})")
        path = path[1:]  # sqlite:///relative.db, sqlite:////absolute.db
        if path == ":memory:":
            path = "file::memory:?mode=memory&cache=shared"
        return StoreLocation("sqlite", path=path)
    if scheme not in ("postgresql", "postgres"):
        raise StoreURLError(f"unsupported {what} URL {shown!r}: {URL_HINT}")
    rest = url[match.end() :] if match else url
    at = rest.rfind("@")
    userinfo, hostpart = (rest[:at], rest[at + 1 :]) if at >= 0 else ("", rest)
    if any(c in userinfo for c in "/?#@"):
        raise StoreURLError(
            f"the user or password in the {what} URL {shown!r} holds '/', '?', '#' or '@': "
            "percent-encode them (%2F, %3F, %23, %40)"
        )
    if "#" in hostpart:
        raise StoreURLError(f"unexpected '#' in the {what} URL {shown!r}: percent-encode it (%23)")
    user, _, password = userinfo.partition(":")
    parsed = urlsplit("postgresql://" + hostpart)
    try:
        port = parsed.port
    except ValueError:
        port_text = parsed.netloc.rsplit(":", 1)[-1] if ":" in parsed.netloc else "?"
        raise StoreURLError(
            f"bad port {port_text!r} in the {what} URL {shown!r}: a number from 1 to 65535"
        ) from None
    if port == 0:
        raise StoreURLError(f"bad port 0 in the {what} URL {shown!r}: a number from 1 to 65535")
    dbname = unquote(parsed.path.lstrip("/"))
    if not dbname:
        raise StoreURLError(f"postgresql {what} URL needs a database name: {shown!r}")
    return StoreLocation(
        "postgresql",
        host=unquote(parsed.hostname or "") or "127.0.0.1",
        port=port or 5432,
        user=unquote(user) or "postgres",
        password=unquote(password),
        dbname=dbname,
    )


def persistence_env(
    store_url: str, connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S
) -> dict[str, str]:
    """eventsourcing environment for `sqlite:///path` or `postgresql://user:pw@host:port/db`."""
    location = parse_store_url(store_url)
    if location.scheme == "sqlite":
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": location.path,
            "APPLICATION_RECORDER_TOPIC": SQLITE_RECORDER_TOPIC,
        }
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "APPLICATION_RECORDER_TOPIC": POSTGRES_RECORDER_TOPIC,
        "POSTGRES_DBNAME": location.dbname,
        "POSTGRES_HOST": location.host,
        "POSTGRES_PORT": str(location.port),
        "POSTGRES_USER": location.user,
        "POSTGRES_PASSWORD": location.password,
        "POSTGRES_POOL_SIZE": "5",
        "POSTGRES_MAX_OVERFLOW": "10",
        "POSTGRES_CONNECT_TIMEOUT": str(effective_timeout_s(connect_timeout_s)),
        # the library's stored-procedure insert would bypass the recorder that writes the
        # incident index in the events' transaction (infra/incident_index_pg.py)
        "POSTGRES_ENABLE_DB_FUNCTIONS": "n",
    }


def sqlite_path(store_url: str, what: str = "store") -> str | None:
    location = parse_store_url(store_url, what)
    return location.path if location.scheme == "sqlite" else None


def open_application(
    store_url: str,
    contracts: ContractSource,
    *,
    read_only: bool = False,
    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
) -> SlatrailApplication:
    """Connect to the store named by `store_url`.

    A writing command creates the tables if needed; a `read_only` one never creates anything:
    a missing store (SQLite file or slatrail's PostgreSQL table) is a `StoreMissingError`.
    PostgreSQL is probed first, so an unreachable server fails within `connect_timeout_s`
    naming the cause (refused, timeout, authentication failed)."""
    location = parse_store_url(store_url)
    shown = redact_url(store_url)
    if location.scheme == "sqlite":
        check_sqlite_store(location.path, shown, read_only=read_only)
    else:
        probe_postgres(location, shown, connect_timeout_s, read_only=read_only)
    env = persistence_env(store_url, connect_timeout_s)
    env["CREATE_TABLE"] = "n" if read_only else "y"
    try:
        app = SlatrailApplication(
            contracts, env=env, stored_events_of=stored_events_of, event_rows_of=event_rows_of
        )
        if not read_only and app.index_is_stale():
            log.warning("incident_index_building", store=shown)
            app.rebuild_index()
        return app
    except (PersistenceError, sqlite3.Error) as error:  # unwritable file, server gone, …
        raise StoreUnavailableError(
            f"cannot open the store {shown}: {store_error_text(error, location)}"
        ) from None


def store_error_text(error: BaseException, location: StoreLocation | None = None) -> str:
    """One line for a database error, with a hint for the usual SQLite causes."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if location is not None and location.password:
        text = text.replace(location.password, "***")
    if location is not None and location.scheme == "sqlite" and "readonly" in text.replace("-", ""):
        text += " (the store file or its directory is read-only)"
    elif location is not None and location.scheme == "sqlite" and "unable to open" in text:
        path = location.path
        if not _writable(path):
            text += (
                f" ({path} or its directory is read-only: SQLite writes {os.path.basename(path)}"
                "-wal and -shm beside the store, even to read it)"
            )
    return text


def _writable(path: str) -> bool:
    directory = os.path.dirname(path) or "."
    return os.access(directory, os.W_OK) and (not os.path.exists(path) or os.access(path, os.W_OK))


def check_sqlite_store(path: str, shown: str, *, read_only: bool) -> None:
    """Refuse, with one clear line, an SQLite store that is missing (for a read-only command),
    a directory, not a database, truncated, someone else's database, or read-only (for a
    writing command)."""
    if path.startswith("file:"):  # :memory: and URI filenames: nothing to look at
        return
    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory):
        raise StoreUnavailableError(
            f"cannot open the store {shown}: directory {directory} does not exist"
        )
    if os.path.isdir(path):
        raise StoreUnavailableError(f"cannot open the store {shown}: {path} is a directory")
    if not os.path.exists(path):
        if read_only:
            raise StoreMissingError(
                f"no store at {shown}: nothing was ever recorded there (this command never "
                "creates a store; check --store / SLATRAIL_STORE)"
            )
        if not os.access(directory, os.W_OK):
            raise StoreUnavailableError(
                f"cannot create the store {shown}: directory {directory} is read-only"
            )
        return
    tables = _sqlite_tables(path, shown)
    if STORE_TABLE not in tables:
        if read_only:
            raise StoreMissingError(
                f"no store at {shown}: {path} is "
                + (
                    "an empty file"
                    if not tables
                    else "an SQLite database without slatrail's tables"
                )
                + " (this command never creates a store; check --store / SLATRAIL_STORE)"
            )
        if tables:
            raise StoreUnavailableError(
                f"cannot use {shown} as the store: {path} is an SQLite database of something "
                f"else (tables {', '.join(sorted(tables)[:5])})"
            )
    if not read_only and not _writable(path):
        raise StoreUnavailableError(
            f"cannot write the store {shown}: {path} or its directory is read-only"
        )


def _sqlite_tables(path: str, shown: str) -> set[str]:
    """The table names of an existing SQLite file; DamagedStoreError if it is not one."""
    try:
        with open(path, "rb") as handle:
            header = handle.read(100)
            size = os.fstat(handle.fileno()).st_size
    except OSError as error:
        raise StoreUnavailableError(
            f"cannot read the store {shown}: {error.strerror or error}"
        ) from None
    if size == 0:
        return set()
    if len(header) < 100 or not header.startswith(b"SQLite format 3\x00"):
        raise DamagedStoreError(f"{shown}: {path} is not an SQLite database")
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    valid_count = header[24:28] == header[92:96]
    if valid_count and pages and size < pages * page_size:
        raise DamagedStoreError(
            f"{shown}: {path} is truncated ({size} bytes; its header says {pages} pages of "
            f"{page_size} bytes)"
        )
    try:
        db = sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True)
        try:
            rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        finally:
            db.close()
    except sqlite3.DatabaseError as error:
        text = str(error)
        if "not a database" in text or "malformed" in text:
            raise DamagedStoreError(f"{shown}: {path}: {text}") from None
        raise StoreUnavailableError(
            f"cannot open the store {shown}: "
            f"{store_error_text(error, StoreLocation('sqlite', path=path))}"
        ) from None
    return {str(row[0]) for row in rows}


def probe_postgres(
    location: StoreLocation, shown: str, connect_timeout_s: float, *, read_only: bool = False
) -> None:
    """One direct connection, bounded by `connect_timeout_s`, that names why it failed."""
    import psycopg

    try:
        with psycopg.connect(location.libpq_url(connect_timeout_s), autocommit=True) as conn:
            exists = conn.execute("SELECT to_regclass(%s)", (PG_TABLE,)).fetchone()
    except psycopg.Error as error:
        raise StoreUnavailableError(
            f"cannot open the store {shown}: {postgres_cause(error, location, connect_timeout_s)}"
        ) from None
    if read_only and (exists is None or exists[0] is None):
        raise StoreMissingError(
            f"no store at {shown}: database {location.dbname!r} has no {PG_TABLE} table "
            "(this command never creates a store; check --store / SLATRAIL_STORE)"
        )


def postgres_cause(error: BaseException, location: StoreLocation, timeout_s: float) -> str:
    """Why a PostgreSQL connection failed, in a few words (never the password)."""
    import psycopg

    text = str(error)
    where = f"{location.host}:{location.port}"
    lowered = text.lower()
    if isinstance(error, psycopg.errors.ConnectionTimeout) or "timeout expired" in lowered:
        return (
            f"timeout: no answer from {where} within {effective_timeout_s(timeout_s)} s "
            "(SLATRAIL_STORE_CONNECT_TIMEOUT_S)"
        )
    if "connection refused" in lowered:
        return f"connection refused by {where} (is PostgreSQL running and listening there?)"
    if "authentication failed" in lowered or "no password supplied" in lowered:
        return f"authentication failed for user {location.user!r} on {where}"
    if "does not exist" in lowered and "database" in lowered:
        return f"database {location.dbname!r} does not exist on {where}"
    if "translate host name" in lowered or "name or service not known" in lowered:
        return f"unknown host {location.host!r}"
    first = next((line.strip() for line in text.splitlines() if line.strip()), type(error).__name__)
    if location.password:
        first = first.replace(location.password, "***")
    return first
