"""The live SLA board at `/` (docs/web.md, "Board"): a server-rendered list, its rows as a
fragment, the same rows as JSON, and a server-sent event stream saying when they changed."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from importlib.resources import files
from typing import TYPE_CHECKING, Annotated, Any

import jinja2
from fastapi import FastAPI, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, Response, StreamingResponse

from slatrail.infra.web.board import Row
from slatrail.infra.web.deps import Who
from slatrail.infra.web.problems import Problem
from slatrail.infra.web.tokens import Principal

if TYPE_CHECKING:
    from slatrail.infra.web.app import WebContext

METRICS = ("response", "workaround", "resolution", "postmortem")
STATUSES = ("breached", "at_risk", "running", "paused", "pending", "met", "not_applicable")
PRIORITIES = ("P1", "P2", "P3", "P4")
POLL_S = 0.25
KEEPALIVE_S = 15.0
STREAM_MAX_S = 3600.0  # then the browser's EventSource reconnects
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
_STATIC = {
    "board.css": "text/css; charset=utf-8",
    "board.js": "text/javascript; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("slatrail.infra.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.globals["left"] = left_text
    return env


def left_text(seconds: float) -> str:
    """`1h 05m left`, `overdue 3m 10s` (the page's script keeps counting)."""
    s = int(abs(seconds))
    d, h, m = s // 86400, s % 86400 // 3600, s % 3600 // 60
    if d:
        text = f"{d}d {h}h"
    elif h:
        text = f"{h}h {m:02d}m"
    else:
        text = f"{m}m {s % 60:02d}s"
    return f"overdue {text}" if seconds < 0 else f"{text} left"


def row_json(row: Row) -> dict[str, Any]:
    return {
        "incident_id": row.incident_id, "customer": row.customer, "priority": row.priority,
        "state": row.state, "title": row.title, "status": row.status,
        "escalation_level": row.level, "escalation_reason": row.reason, "left_s": row.left_s,
        "clocks": {c.metric: {"status": c.status, "due_at": c.due_at, "left_s": c.left_s}
                   for c in row.clocks},
    }  # fmt: skip


Customer = Annotated[str | None, Query(max_length=200)]
Priority = Annotated[str | None, Query(pattern="^(|P[1-4])$")]
Status = Annotated[str | None, Query(pattern="^(|" + "|".join(STATUSES) + ")$")]


def add_board_routes(app: FastAPI, context: WebContext) -> None:
    env = _environment()
    cache = context.board
    assert cache is not None
    rendered = Rendered()

    def scoped(
        who: Principal, customer: str | None, priority: str | None, status: str | None
    ) -> tuple[list[Row], str, dict[str, Any], datetime]:
        customer = customer or None
        if customer is not None and not who.sees(customer):
            raise Problem("not_found", f"no customer {customer!r}")
        board = cache.board()
        allowed = None if who.all_customers else who.customers
        if customer is not None:
            allowed = frozenset({customer})
        rows = board.keep(allowed, priority=priority or None, status=status or None)
        filters = {"customer": customer, "priority": priority or None, "status": status or None}
        kept = {k: v for k, v in filters.items() if v}
        query = ("?" + urllib.parse.urlencode(kept)) if kept else ""
        return rows, query, filters, board.at

    def customers_of(who: Principal) -> list[str]:
        every = sorted(context.container.contract_book.customers())
        return [c for c in every if who.sees(c)]

    @app.get("/", response_class=HTMLResponse, tags=["board"])
    def board_page(
        who: Who, customer: Customer = None, priority: Priority = None, status: Status = None
    ) -> Response:
        """The live SLA board (HTML)."""
        rows, query, filters, at = scoped(who, customer, priority, status)
        page = env.get_template("board.html.j2").render(
            rows=rows, query=query, filters=filters, as_of=_stamp(at),
            customers=customers_of(who), priorities=PRIORITIES, statuses=STATUSES,
            metrics=METRICS,
        )  # fmt: skip
        return HTMLResponse(page, headers=SECURITY_HEADERS)

    @app.get("/board/rows", response_class=HTMLResponse, include_in_schema=False)
    def board_rows(
        who: Who, customer: Customer = None, priority: Priority = None, status: Status = None
    ) -> Response:
        rows, query, _, at = scoped(who, customer, priority, status)
        fragment = rendered.get(
            ("rows", who.customers if not who.all_customers else None, query), at,
            lambda: env.get_template("board_rows.html.j2").render(rows=rows).encode(),
        )  # fmt: skip
        return Response(fragment, media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS)

    @app.get("/v1/board", tags=["board"])
    def board_json(
        who: Who, customer: Customer = None, priority: Priority = None, status: Status = None
    ) -> Response:
        """The board's rows as JSON: open incidents ordered by time left."""
        rows, query, _, at = scoped(who, customer, priority, status)
        body = rendered.get(
            ("json", who.customers if not who.all_customers else None, query), at,
            lambda: json.dumps(
                {"as_of": _stamp(at), "rows": [row_json(r) for r in rows]},
                ensure_ascii=False, separators=(",", ":"),
            ).encode(),
        )  # fmt: skip
        return Response(body, media_type="application/json")

    @app.get("/v1/board/events", tags=["board"], response_class=StreamingResponse)
    async def board_events(
        request: Request, who: Who, customer: Customer = None, priority: Priority = None,
        status: Status = None,
    ) -> Response:  # fmt: skip
        """Server-sent events: `changed` when an event was recorded or an alert came due."""
        await run_in_threadpool(scoped, who, customer, priority, status)  # 404 before streaming

        async def stream() -> AsyncIterator[bytes]:
            started = last_beat = time.monotonic()
            seen = cache.incidents.generation
            fired: datetime | None = None
            yield b"retry: 1000\n\n"
            while time.monotonic() - started < STREAM_MAX_S:
                if await request.is_disconnected():
                    return
                board = await run_in_threadpool(cache.board)
                due = board.next_change
                now = datetime.now(UTC)
                if board.generation != seen or (due is not None and now >= due and fired != due):
                    seen, fired = board.generation, due if due is not None and now >= due else fired
                    data = json.dumps({"generation": board.generation, "as_of": _stamp(now)})
                    yield f"event: changed\ndata: {data}\n\n".encode()
                elif time.monotonic() - last_beat >= KEEPALIVE_S:
                    last_beat = time.monotonic()
                    yield b": keep-alive\n\n"
                await asyncio.sleep(POLL_S)

        return StreamingResponse(
            stream(), media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )  # fmt: skip

    @app.get("/static/{name}", include_in_schema=False)
    def static(who: Who, name: str) -> Response:
        if name not in _STATIC:
            raise Problem("not_found", "no such file")
        body = files("slatrail.infra.web").joinpath("static", name).read_bytes()
        return Response(body, media_type=_STATIC[name], headers=SECURITY_HEADERS)


class Rendered:
    """Answers rendered from one board, shared by the requests with the same scope and filters
    until the board is recomputed (at most once a second)."""

    MAX = 256

    def __init__(self) -> None:
        self._at: datetime | None = None
        self._bodies: dict[Any, bytes] = {}
        self._lock = threading.Lock()

    def get(self, key: Any, at: datetime, render: Callable[[], bytes]) -> bytes:
        with self._lock:
            if at != self._at:
                self._at, self._bodies = at, {}
            body = self._bodies.get(key)
        if body is None:
            body = render()
            with self._lock:
                if at == self._at and len(self._bodies) < self.MAX:
                    self._bodies[key] = body
        return body


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
