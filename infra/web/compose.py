"""Building the web application from the settings: the one place `slatrail web` and
`slatrail serve --http` wire it (tokens file, read side, limits, board, metrics, health)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from datetime import datetime

import structlog
from prometheus_client import CollectorRegistry
from starlette.concurrency import run_in_threadpool

from slatrail.application.selection import open_histories
from slatrail.consumers.runtime import WorkerState
from slatrail.domain.model import IncidentEvent
from slatrail.infra.bootstrap import Container
from slatrail.infra.errors import UsageError
from slatrail.infra.web.app import WebContext
from slatrail.infra.web.board import BoardCache
from slatrail.infra.web.health import Readiness
from slatrail.infra.web.metrics import (
    BoardCollector,
    Instruments,
    WorkerCollector,
    relay_lag_from,
)
from slatrail.infra.web.open_incidents import OpenIncidents
from slatrail.infra.web.tokens import TokenFile

log = structlog.get_logger("slatrail.web")
REFRESH_S = 0.25


def web_context(
    container: Container,
    *,
    from_read_model: bool,
    workers: Sequence[WorkerState] = (),
    instruments: Instruments | None = None,
) -> WebContext:
    s = container.settings
    tokens = TokenFile(s.tokens_file)
    if not len(tokens):
        raise UsageError(
            f"no tokens in {s.tokens_file} (SLATRAIL_TOKENS_FILE): every endpoint but /livez "
            "and /readyz needs one; create one with `slatrail tokens add NAME --role auditor`"
        )
    app = container.app  # open the store before the request threads share it
    if from_read_model:
        container.read_models  # noqa: B018

    def open_start() -> tuple[int, Iterable[list[IncidentEvent]]] | None:
        if app.index_is_stale():  # recorded before the index: read the log
            return None
        head = app.recorder.max_notification_id() or 0  # before the index: nothing missed
        histories = open_histories(app)
        return None if histories is None else (head, list(histories))

    incidents = OpenIncidents(app, open_start)
    board = BoardCache(incidents, lambda: container.contract_book, container.clock)
    if instruments is None:
        instruments = Instruments(CollectorRegistry())
    registry = instruments.registry
    registry.register(BoardCollector(board))

    def first_after(position: int) -> datetime | None:
        for _, event in app.all_events(start=position + 1, page=1):
            return event.recorded_at
        return None

    relay_lag = relay_lag_from(first_after, container.clock)
    relay_state = next((w for w in workers if w.worker.name == "relay"), None)
    if workers:
        registry.register(WorkerCollector(workers, relay_lag))
    readiness = Readiness(
        store_answers=app.recorder.max_notification_id,
        workers=workers,
        relay_lag_s=(
            (lambda: relay_lag(relay_state.worker.stats().get("position")))
            if relay_state is not None else None
        ),
        max_lag_s=s.web_ready_lag_s,
        extra=[lambda: ("board", incidents.loaded)],
    )  # fmt: skip

    async def keep_board_fresh() -> None:
        failing = False
        while True:
            try:
                while await run_in_threadpool(incidents.refresh) and not incidents.loaded:
                    pass
                if incidents.loaded:
                    await run_in_threadpool(board.update)
                if failing:
                    log.info("board_refresh_recovered")
                failing = False
            except Exception as error:  # the store is down: the board stays as it was
                if not failing:
                    log.warning("board_refresh_failed", error=type(error).__name__)
                failing = True
            await asyncio.sleep(REFRESH_S)

    return WebContext(
        container,
        tokens,
        from_read_model=from_read_model,
        rate_per_s=s.web_rate_per_s,
        rate_burst=s.web_rate_burst,
        request_timeout_s=s.web_request_timeout_s,
        board=board,
        registry=registry,
        instruments=instruments,
        readiness=readiness,
        background=[keep_board_fresh],
    )
