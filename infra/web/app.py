"""The ASGI application (FastAPI): routes, limits, errors (docs/web.md).

Handlers are plain functions: FastAPI runs them in its thread pool, where the store is read
through the composition root's `Container`, exactly as the CLI reads it.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

import structlog
from eventsourcing.persistence import PersistenceError
from fastapi import FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from prometheus_client import CollectorRegistry
from starlette.exceptions import HTTPException
from starlette.responses import HTMLResponse, JSONResponse, Response

from slatrail.application.service import DamagedStoreError
from slatrail.domain.contracts import ContractsError
from slatrail.infra.bootstrap import Container
from slatrail.infra.commands.report import render_csv
from slatrail.infra.errors import OperatorError
from slatrail.infra.report_html import render_html
from slatrail.infra.timearg import instant, month
from slatrail.infra.web import answers
from slatrail.infra.web.auth import Authenticator, RateLimiter
from slatrail.infra.web.board import BoardCache
from slatrail.infra.web.deps import MAX_LOGIN_BYTES, AsOf, KnownAt, Who
from slatrail.infra.web.health import Readiness
from slatrail.infra.web.metrics import Instruments
from slatrail.infra.web.problems import Problem, problem_response
from slatrail.infra.web.tokens import TokenFile

log = structlog.get_logger("slatrail.web")

MAX_TARGET_BYTES = 2048  # path + query string
MAX_BODY_BYTES = 0  # every route is a GET: no body accepted
READ_ROLES = ("viewer", "auditor", "admin")
ALL_READ = ("auditor", "admin")
STATES = ("open", "awaiting_customer", "resolved")
STATUSES = ("not_applicable", "pending", "met", "breached", "paused", "at_risk", "running")
PRIORITIES = ("P1", "P2", "P3", "P4")
ReportedBound = Annotated[
    str | None, Query(max_length=64, description="RFC 3339 instant: the reported window's bound")
]


@dataclass
class WebContext:
    """What the routes need, built by the composition root (`slatrail web`, `serve --http`)."""

    container: Container
    tokens: TokenFile
    from_read_model: bool = False
    rate_per_s: float = 20.0
    rate_burst: int = 60
    request_timeout_s: float = 10.0
    board: BoardCache | None = None
    registry: CollectorRegistry | None = None
    instruments: Instruments | None = None
    readiness: Readiness | None = None
    extra_routes: list[Callable[[FastAPI, WebContext], None]] = field(default_factory=list)
    background: list[Callable[[], Coroutine[Any, Any, None]]] = field(default_factory=list)


def _instant(name: str, text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return instant(text)
    except argparse.ArgumentTypeError as error:
        raise Problem("usage", f"{name}: {error}") from None


def create_app(context: WebContext) -> FastAPI:
    auth = Authenticator(context.tokens, RateLimiter(context.rate_per_s, context.rate_burst))
    container = context.container
    settled = answers.SettledAnswers()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        tasks: list[asyncio.Task[None]] = [asyncio.create_task(run()) for run in context.background]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()

    app = FastAPI(
        title="slatrail",
        summary="SLA clocks, audit trails, escalations and monthly reports of support incidents",
        version="1",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,  # served below, behind a token like every other endpoint
        lifespan=lifespan,
    )
    app.state.auth = auth

    @app.middleware("http")
    async def limits(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        target = len(request.url.path.encode()) + len(request.url.query.encode())
        length = request.headers.get("content-length")
        response: Response
        if target > MAX_TARGET_BYTES:
            response = problem_response(
                "uri_too_long", f"path and query are limited to {MAX_TARGET_BYTES} bytes"
            )
        elif _has_body(request, length):
            response = problem_response("too_large", "this request may not carry a body")
        else:
            try:
                response = await asyncio.wait_for(call_next(request), context.request_timeout_s)
            except TimeoutError:
                response = problem_response(
                    "timeout", f"no answer within {context.request_timeout_s:g} s"
                )
        if context.instruments is not None:
            route = request.scope.get("route")
            context.instruments.http.labels(
                route=getattr(route, "path", "unmatched"), status=str(response.status_code)
            ).inc()
        log.info(
            "http_request", method=request.method, path=request.url.path,
            status=response.status_code, token=getattr(request.state, "token", None),
            ms=round(1000 * (time.perf_counter() - started), 1),
        )  # fmt: skip
        return response

    @app.exception_handler(Problem)
    async def on_problem(request: Request, error: Problem) -> Response:
        return problem_response(
            error.code, error.detail, instance=request.url.path, headers=error.headers
        )

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, error: RequestValidationError) -> Response:
        parts = []
        for e in error.errors()[:5]:
            where = ".".join(str(p) for p in e.get("loc", ()) if p not in ("query", "path"))
            parts.append(f"{where}: {e.get('msg', 'invalid')}")
        return problem_response("usage", "; ".join(parts) or "invalid request",
                                instance=request.url.path)  # fmt: skip

    @app.exception_handler(HTTPException)
    async def on_http(request: Request, error: HTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "usage")
        detail = "no such endpoint" if error.status_code == 404 else str(error.detail)
        return problem_response(code, detail, instance=request.url.path)

    @app.exception_handler(Exception)
    async def on_error(request: Request, error: Exception) -> Response:
        if isinstance(error, DamagedStoreError):
            return problem_response("store_damaged", str(error), instance=request.url.path)
        if isinstance(error, OperatorError | ContractsError):
            code = "not_found" if getattr(error, "exit_code", 2) == 1 else "store_unavailable"
            return problem_response(code, str(error), instance=request.url.path)
        if isinstance(error, PersistenceError | sqlite3.Error):
            log.error("web_store_error", error=type(error).__name__)
            return problem_response("store_unavailable", "the store failed while reading",
                                    instance=request.url.path)  # fmt: skip
        log.error("web_internal_error", error=type(error).__name__, exc_info=True)
        return problem_response("internal", f"internal error ({type(error).__name__})",
                                instance=request.url.path)  # fmt: skip

    @app.get("/openapi.json", include_in_schema=False)
    def openapi(who: Who) -> dict[str, Any]:
        return app.openapi()

    @app.get("/v1/incidents", tags=["incidents"])
    def list_incidents(
        who: Who,
        customer: str | None = None,
        state: Annotated[str | None, Query(pattern="^(" + "|".join(STATES) + ")$")] = None,
        status: Annotated[str | None, Query(pattern="^(" + "|".join(STATUSES) + ")$")] = None,
        priority: Annotated[str | None, Query(pattern="^P[1-4]$")] = None,
        since: ReportedBound = None,
        until: ReportedBound = None,
        as_of: AsOf = None,
        as_known_at: KnownAt = None,
        limit: Annotated[int, Query(ge=1, le=answers.MAX_LIMIT)] = answers.DEFAULT_LIMIT,
        cursor: Annotated[str | None, Query(max_length=600)] = None,
    ) -> Response:
        """The objects of `slatrail sla --format json`, ordered by report time, a page at a time:
        `next_cursor` (null on the last page) continues after the page's last incident.
        `since`/`until`: only incidents reported in that window (as `sla --since/--until`)."""
        window = _instant("since", since), _instant("until", until)
        return JSONResponse(answers.incidents_page(
            container, who, answers.Filters(customer, state, status, priority, *window),
            as_of=_instant("as_of", as_of), as_known_at=_instant("as_known_at", as_known_at),
            limit=limit, cursor=cursor, from_read_model=context.from_read_model,
        ))  # fmt: skip

    @app.get("/v1/incidents/{incident_id}", tags=["incidents"])
    def get_incident(
        who: Who, incident_id: str, as_of: AsOf = None, as_known_at: KnownAt = None
    ) -> Response:
        """One incident's clocks with their explanation (`sla --incident ID --explain`)."""
        return JSONResponse(answers.incident(
            container, who, incident_id, as_of=_instant("as_of", as_of),
            as_known_at=_instant("as_known_at", as_known_at),
            from_read_model=context.from_read_model, cache=settled,
        ))  # fmt: skip

    @app.get("/v1/incidents/{incident_id}/audit", tags=["incidents"])
    def get_audit(
        who: Who, incident_id: str, as_of: AsOf = None, as_known_at: KnownAt = None
    ) -> Response:
        """The incident's audit trail with what each event caused (`audit ID`)."""
        return JSONResponse(answers.audit(
            container, who, incident_id, as_of=_instant("as_of", as_of),
            as_known_at=_instant("as_known_at", as_known_at),
            from_read_model=context.from_read_model,
        ))  # fmt: skip

    @app.get("/v1/escalations", tags=["escalations"])
    def get_escalations(
        who: Who,
        customer: str | None = None,
        level: Annotated[int | None, Query(ge=1, le=4)] = None,
        all: bool = False,
        as_of: AsOf = None,
        as_known_at: KnownAt = None,
    ) -> Response:
        """Open incidents (with `all`, resolved too) by escalation level (`escalations`)."""
        return JSONResponse(answers.escalations(
            container, who, customer=customer, level=level, include_resolved=all,
            as_of=_instant("as_of", as_of), as_known_at=_instant("as_known_at", as_known_at),
            from_read_model=context.from_read_model,
        ))  # fmt: skip

    @app.get(
        "/v1/reports/{customer}/{period}",
        tags=["reports"],
        responses={200: {"content": {"text/csv": {}, "text/html": {}}}},
    )
    def get_report(
        who: Who,
        customer: str,
        period: Annotated[str, Path(description="YYYY-MM")],
        format: Annotated[str, Query(pattern="^(json|csv|html)$")] = "json",
        as_of: AsOf = None,
        as_known_at: KnownAt = None,
    ) -> Response:
        """One customer's monthly report (`report --month M --customer C`): JSON, CSV or HTML."""
        try:
            the_month = month(period)
        except argparse.ArgumentTypeError as error:
            raise Problem("usage", f"month: {error}") from None
        documents = answers.reports(
            container, who, customer, the_month, as_of=_instant("as_of", as_of),
            as_known_at=_instant("as_known_at", as_known_at),
        )  # fmt: skip
        if format == "csv":
            return Response(render_csv(documents), media_type="text/csv; charset=utf-8")
        if format == "html":
            page = render_html(
                documents,
                generated_at=container.clock(),
                source=container.contract_book.latest.source,
                checkpoint=documents[0].get("checkpoint") if documents else None,
            )
            return HTMLResponse(page)
        return JSONResponse(documents)

    from slatrail.infra.web.routes_board import add_board_routes
    from slatrail.infra.web.routes_ops import add_ops_routes

    add_ops_routes(app, context)
    if context.board is not None:
        add_board_routes(app, context)
    for add in context.extra_routes:
        add(app, context)
    return app


def _has_body(request: Request, length: str | None) -> bool:
    """Only `POST /login` carries a body (at most MAX_LOGIN_BYTES)."""
    if request.method == "POST" and request.url.path == "/login":
        try:
            return length is None or not 0 <= int(length) <= MAX_LOGIN_BYTES
        except ValueError:
            return True
    return (length is not None and length.strip() != "0") or "transfer-encoding" in request.headers
