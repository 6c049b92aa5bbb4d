"""Web API latency and throughput on a store of 100,000 incidents, next to the framework's floor.

Usage: python bench/web.py [INCIDENTS]   (default 100,000; or SLATRAIL_BENCH_INCIDENTS)

Builds a SQLite store of INCIDENTS incidents straight through the Incident aggregate: 99 % of
them resolved (reported, acknowledged, resolved), 1 % open with running clocks. Starts
`slatrail web` on a loopback port in its own process (rate limit lifted), waits until its board
has read the store, then measures, in the same run:

  livez     GET /livez                    (no token, no store: the framework's floor)
  incident  GET /v1/incidents/{id}        (a random incident, token checked, store read)
  board     GET /v1/board?customer=C      (one customer's open incidents, as of now)

each at 100 requests/s (open loop, 6 s; p50/p99 latency, target p99 < 50 ms) and at saturation
(closed loop, 4 connections, 5 s; requests/s, target >= 50 % of livez's). Prints the figures and
the ratios to livez.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._data import CUSTOMERS, wire_message
from slatrail.domain.incident import Incident
from slatrail.domain.messages import fingerprint, to_fact
from slatrail.domain.receipt import MessageReceipt
from slatrail.infra.bootstrap import read_contracts
from slatrail.infra.store import open_application
from slatrail.infra.web.tokens import add_token
from slatrail.infra.wire import decode

PER_SAVE = 2000
RATE = 100
PACED_S = 6.0
SATURATION_S = 5.0
CONNECTIONS = 4


def build_store(url: str, incidents: int) -> float:
    contracts = read_contracts(None)
    app = open_application(url, contracts)
    rng = random.Random(7)
    now = datetime.now(UTC).replace(microsecond=0)
    started = time.perf_counter()
    batch: list[Any] = []
    for index in range(incidents):
        incident_id = f"WEB-{index:07d}"
        is_open = index % 100 == 0
        ago = timedelta(minutes=rng.randint(1, 120))
        if not is_open:
            ago = timedelta(days=rng.randint(2, 60), minutes=rng.randint(0, 1440))
        at = now - ago
        steps: list[tuple[str, dict[str, Any] | None]] = [
            ("reported", {"customer": CUSTOMERS[index % 3], "title": "calls drop",
                          "priority": rng.choice(["P1", "P2", "P3", "P4"])}),
            ("acknowledged", None),
        ]  # fmt: skip
        if not is_open:
            steps.append(("resolved", {"resolution": "fixed"}))
        incident: Incident | None = None
        for number, (kind, data) in enumerate(steps, start=1):
            at += timedelta(minutes=rng.randint(1, 30) if not is_open else 0, seconds=number)
            message = wire_message(incident_id, number, kind, min(at, now), data)
            decoded, obj = decode(json.dumps(message))
            fact = to_fact(decoded)
            if incident is None:
                incident = Incident.report(fact, contracts=contracts, now=now)
            else:
                incident.record(fact, now=now)
            batch.append(MessageReceipt.issue(
                message_id=fact.message_id, incident_id=incident_id,
                fingerprint=fingerprint(obj), position=number, now=now,
            ))  # fmt: skip
        batch.append(incident)
        if len(batch) >= PER_SAVE * 4:
            app.save(*batch)
            batch = []
    if batch:
        app.save(*batch)
    app.close()
    return time.perf_counter() - started


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Client:
    def __init__(self, port: int, token: str) -> None:
        self.port, self.token = port, token
        self.local = threading.local()

    def get(self, path: str) -> float:
        for attempt in (1, 2):
            conn = getattr(self.local, "conn", None)
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                self.local.conn = conn
            started = time.perf_counter()
            try:
                conn.request("GET", path, headers={"Authorization": f"Bearer {self.token}"})
                answer = conn.getresponse()
                answer.read()
                break
            except (http.client.RemoteDisconnected, ConnectionError):
                self.local.conn = None  # the server closed an idle keep-alive connection
                if attempt == 2:
                    raise
        if answer.status != 200:
            raise RuntimeError(f"{path}: HTTP {answer.status}")
        return time.perf_counter() - started


def paced(client: Client, paths: list[str], rate: float, seconds: float) -> list[float]:
    """Open loop: a request every 1/rate s (spread over CONNECTIONS threads)."""
    latencies: list[float] = []
    lock = threading.Lock()
    start = time.perf_counter() + 0.1
    total = int(rate * seconds)

    def run(offset: int) -> None:
        rng = random.Random(offset)
        for n in range(offset, total, CONNECTIONS):
            wait = start + n / rate - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            latency = client.get(rng.choice(paths))
            with lock:
                latencies.append(latency)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(CONNECTIONS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies


def saturated(client: Client, paths: list[str], seconds: float) -> float:
    """Closed loop on CONNECTIONS connections: requests per second."""
    counts = [0] * CONNECTIONS
    deadline = time.perf_counter() + seconds

    def run(i: int) -> None:
        rng = random.Random(i)
        while time.perf_counter() < deadline:
            client.get(rng.choice(paths))
            counts[i] += 1

    started = time.perf_counter()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(CONNECTIONS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.perf_counter() - started)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def main() -> None:
    incidents = int(sys.argv[1] if len(sys.argv) > 1 else
                    os.environ.get("SLATRAIL_BENCH_INCIDENTS", "100000"))  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        store = f"sqlite:///{tmp}/web.db"
        built = build_store(store, incidents)
        print(f"store: {incidents:,} incidents built in {built:.0f} s")
        token = add_token(Path(tmp) / "tokens.json", "bench", "auditor", [])
        port = free_port()
        env = {**os.environ, "SLATRAIL_WEB_RATE_PER_S": "1000000",
               "SLATRAIL_WEB_RATE_BURST": "1000000", "SLATRAIL_LOG_LEVEL": "warning"}  # fmt: skip
        server = subprocess.Popen(
            [sys.executable, "-m", "slatrail.infra.cli", "--store", store, "web", "--listen",
             f"127.0.0.1:{port}", "--tokens", f"{tmp}/tokens.json"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            client = Client(port, token)
            started = time.perf_counter()
            while True:
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                    conn.request("GET", "/readyz")
                    if conn.getresponse().status == 200:
                        break
                except OSError:
                    pass
                if server.poll() is not None or time.perf_counter() - started > 600:
                    raise SystemExit("slatrail web did not become ready")
                time.sleep(0.5)
            waited = time.perf_counter() - started
            print(f"web ready (board read model loaded) after {waited:.0f} s")
            rng = random.Random(1)
            ids = [f"/v1/incidents/WEB-{rng.randrange(incidents):07d}" for _ in range(2000)]
            board = [f"/v1/board?customer={CUSTOMERS[0]}"]
            rows = json.loads(_body(port, token, board[0]))["rows"]
            print(f"board of {CUSTOMERS[0]}: {len(rows)} open incidents")
            cases = {"livez": ["/livez"], "incident": ids, "board": board}
            figures: dict[str, dict[str, float]] = {}
            for name, paths in cases.items():
                for path in paths[:20]:
                    client.get(path)  # warm up
                lat = paced(client, paths, RATE, PACED_S)
                rps = saturated(client, paths, SATURATION_S)
                figures[name] = {
                    "p50_ms": 1000 * statistics.median(lat),
                    "p99_ms": 1000 * percentile(lat, 99),
                    "saturation_rps": rps,
                }
            floor = figures["livez"]
            print(f"\n{'endpoint':10} {'p50 ms':>8} {'p99 ms':>8} {'sat. req/s':>11} "
                  f"{'p99 / livez':>12} {'req/s / livez':>14}")  # fmt: skip
            for name, f in figures.items():
                print(f"{name:10} {f['p50_ms']:8.2f} {f['p99_ms']:8.2f} "
                      f"{f['saturation_rps']:11.0f} "
                      f"{f['p99_ms'] / floor['p99_ms']:12.2f} "
                      f"{f['saturation_rps'] / floor['saturation_rps']:14.2f}")  # fmt: skip
            print(f"\ntargets at {RATE} req/s: p99 < 50 ms; saturation >= 0.5 x livez")
        finally:
            server.terminate()
            server.wait(20)


def _body(port: int, token: str, path: str) -> bytes:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
    return conn.getresponse().read()


if __name__ == "__main__":
    main()
