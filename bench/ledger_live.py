"""The SLA ledger kept live: what keeping it costs the projection consumer's batches, what a
contract version re-measuring every incident costs, and `ledger status` from the table against
computing it — each as a ratio to a baseline measured in the same run.

* apply: every recorded event, in batches of 500 (the consumer's default), into a fresh
  read-model database without the ledger (baseline) and with it — in store order (each
  incident's events together) and in occurred order (as a live stream spreads them);
* remeasure: a version recorded since ever (every incident re-measured), 200 per call, as a
  ratio to the baseline apply of the same store;
* `ledger status` as a whole process, from the current table and computed from the events,
  as a ratio to `slatrail --help`.

Usage: python bench/ledger_live.py [INCIDENTS]   (default 5,000; the store of bench/scale.py)
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.scale import build, contracts_text, timed
from slatrail.domain.contract_version import SINCE_EVER, ContractBook
from slatrail.infra.bootstrap import read_contracts
from slatrail.infra.read_model_store import ReadModelStore
from slatrail.infra.store import open_application
from slatrail.projections.read_models import STORE_SOURCE, TrackedEvent

BATCH = 500
AT = "2025-06-15T12:00:00Z"


def apply_all(url: str, batches: list[list[TrackedEvent]], book: ContractBook | None) -> float:
    store = ReadModelStore(url)
    started = time.perf_counter()
    for batch in batches:
        store.apply(batch, contracts=book, notification=batch[-1].position)
    seconds = time.perf_counter() - started
    store.close()
    return seconds


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 5_000
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        contracts = workdir / "contracts.toml"
        contracts.write_text(contracts_text())
        store = f"sqlite:///{workdir / 'scale.db'}"
        events = build(store, contracts, count)
        app = open_application(store, read_contracts(contracts))
        app.record_contracts(
            contracts_text(), source="contracts.toml", effective_from=SINCE_EVER,
            actor="bench", reason="first", now=datetime.now(UTC),
        )  # fmt: skip
        book = app.contract_book()
        assert book is not None
        recorded = [TrackedEvent(STORE_SOURCE, n, e) for n, e in app.all_events()]
        batches = [recorded[i : i + BATCH] for i in range(0, len(recorded), BATCH)]
        print(f"store: {count} incidents, {events} events, {len(batches)} batches of {BATCH}")
        plain = apply_all(f"sqlite:///{workdir / 'plain.db'}", batches, None)
        read = f"sqlite:///{workdir / 'scale-read.db'}"
        live = apply_all(read, batches, book)
        # as a live stream delivers them: in occurred order, incidents spread over batches
        live_order = sorted((e.event for e in recorded), key=lambda e: e.occurred_at)
        streamed = [TrackedEvent(STORE_SOURCE, n, e) for n, e in enumerate(live_order, 1)]
        spread = [streamed[i : i + BATCH] for i in range(0, len(streamed), BATCH)]
        plain_s = apply_all(f"sqlite:///{workdir / 'plain-s.db'}", spread, None)
        live_s = apply_all(f"sqlite:///{workdir / 'live-s.db'}", spread, book)
        print(f"apply without the ledger (baseline): {plain:7.2f} s, "
              f"{len(recorded) / plain:8.0f} events/s")  # fmt: skip
        rate = len(recorded) / live
        print(f"apply keeping the ledger:            {live:7.2f} s, "
              f"{rate:8.0f} events/s, {live / plain:.2f}× the baseline")  # fmt: skip

        rate = len(recorded) / live_s
        print(f"in occurred order: baseline {plain_s:.2f} s, keeping the ledger {live_s:.2f} s "
              f"({rate:.0f} events/s), {live_s / plain_s:.2f}× the baseline")  # fmt: skip

        # a restatement measuring every incident again: at risk from 70 % instead of 75 %
        text = contracts_text().replace("at_risk_threshold = 0.75", "at_risk_threshold = 0.70")
        assert text != contracts_text()
        app.record_contracts(
            text, source="contracts.toml", effective_from=SINCE_EVER, actor="bench",
            reason="restated", now=datetime.now(UTC),
        )  # fmt: skip
        book = app.contract_book()
        assert book is not None
        rm = ReadModelStore(read)
        started = time.perf_counter()
        recomputed = calls = 0
        while rm.ledger_version() != book.latest.version:
            recomputed += rm.remeasure(book)
            calls += 1
        seconds = time.perf_counter() - started
        rm.close()
        print(f"remeasure (every incident, {calls} calls): {seconds:7.2f} s for {recomputed} "
              f"incidents, {seconds / plain:.2f}× the baseline apply")  # fmt: skip
        app.close()

        # the commands measure by the recorded versions (no --contracts file)
        env = {**os.environ, "SLATRAIL_STORE": store, "SLATRAIL_LOG_LEVEL": "error"}
        cli = [sys.executable, "-m", "slatrail.infra.cli"]
        baseline, base_peak, _ = timed([*cli, "--help"], env, rounds=3)
        print(f"baseline `slatrail --help`: {baseline:.3f} s, {base_peak:.0f} MiB peak")
        status = ["ledger", "status", "--as-of", AT]
        for name, extra in (
            ("ledger status (from the table)", {}),
            ("ledger status (computed: no table)", {"SLATRAIL_READ_MODEL": read + "-none"}),
        ):
            seconds, peak, code = timed([*cli, *status], {**env, **extra}, rounds=2)
            flag = "" if code == 0 else f"  (exit {code})"
            print(f"{name:40} {seconds:7.2f} s {seconds / baseline:6.1f}× --help "
                  f"{peak:6.0f} MiB{flag}")  # fmt: skip


if __name__ == "__main__":
    main()
