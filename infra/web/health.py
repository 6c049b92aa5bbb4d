"""`/livez` and `/readyz` (docs/web.md, "Health"): the HTTP status code is the contract.

Live: the server answers. Ready: the store answers, the read models are caught up within
`web_ready_lag_s` (under `serve`: the relay's lag in seconds), and no worker is stalled,
failing or starting again (`serve`'s workers all `running`).
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from slatrail.consumers.runtime import WorkerState

CHECK_TIMEOUT_S = 2.0
_POOL = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="slatrail-ready")


@dataclass
class Readiness:
    store_answers: Callable[[], object]
    workers: Sequence[WorkerState] = ()
    relay_lag_s: Callable[[], float | None] | None = None
    max_lag_s: float = 30.0
    extra: list[Callable[[], tuple[str, bool]]] = field(default_factory=list)

    def check(self) -> tuple[bool, dict[str, Any]]:
        checks: dict[str, Any] = {}
        try:
            _POOL.submit(self.store_answers).result(timeout=CHECK_TIMEOUT_S)
            checks["store"] = "ok"
        except Exception as error:  # any failure to answer is "not ready"; no detail leaks
            checks["store"] = "timeout" if isinstance(error, TimeoutError) else "failed"
        if self.workers:
            checks["workers"] = {s.worker.name: s.state for s in self.workers}
        if self.relay_lag_s is not None:
            try:
                lag = self.relay_lag_s()
            except Exception:
                lag = None
            checks["relay_lag_s"] = lag
            checks["read_models"] = "ok" if lag is not None and lag <= self.max_lag_s else "behind"
        for extra in self.extra:
            name, ok = extra()
            checks[name] = "ok" if ok else "not ready"
        ready = (
            checks["store"] == "ok"
            and all(state == "running" for state in checks.get("workers", {}).values())
            and checks.get("read_models", "ok") == "ok"
            and all(checks[name] in ("ok",) for name in checks
                    if name not in ("store", "workers", "relay_lag_s", "read_models"))
        )  # fmt: skip
        return ready, checks
