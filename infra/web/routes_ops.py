"""`/livez`, `/readyz` (no token) and `/metrics` (auditor, admin), and the board's login."""

from __future__ import annotations

import urllib.parse
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from slatrail.infra.web.auth import require_role
from slatrail.infra.web.deps import COOKIE, Who

if TYPE_CHECKING:
    from slatrail.infra.web.app import WebContext

_LOGIN_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>slatrail · sign in</title><link rel="stylesheet" href="data:,"></head>
<body style="font:16px system-ui;margin:2rem"><h1>slatrail</h1>
<form method="post" action="/login"><label>Token
<input name="token" type="password" autocomplete="off" required size="50"></label>
<button type="submit">Open the board</button></form></body></html>"""


def add_ops_routes(app: FastAPI, context: WebContext) -> None:
    @app.get("/livez", tags=["health"])
    def livez() -> dict[str, str]:
        """200 while the server answers."""
        return {"status": "live"}

    @app.get("/readyz", tags=["health"])
    async def readyz() -> Response:
        """200 when ready (the store answers, read models caught up, no worker stalled or
        failing), else 503; the body says which check failed."""
        assert context.readiness is not None
        ready, checks = await run_in_threadpool(context.readiness.check)
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)

    @app.get("/metrics", tags=["metrics"], response_class=Response)
    def metrics(who: Who) -> Response:
        """Prometheus text exposition (auditor and admin tokens)."""
        require_role(who, "auditor", "admin")
        assert context.registry is not None
        return Response(generate_latest(context.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/login", include_in_schema=False)
    def login_page() -> Response:
        return HTMLResponse(_LOGIN_PAGE, headers={"Cache-Control": "no-store"})

    @app.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        body = await request.body()
        fields = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
        token = (fields.get("token") or [""])[0].strip()
        auth = request.app.state.auth
        found = await run_in_threadpool(auth.principal, f"Bearer {token}")  # 401 / 429 as usual
        request.state.token = found.name
        answer = RedirectResponse("/", status_code=303)
        answer.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/",
                          secure=request.url.scheme == "https")  # fmt: skip
        return answer
