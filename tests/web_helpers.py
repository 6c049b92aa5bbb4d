"""A real uvicorn server on a loopback port around the web application, and a small client."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slatrail.infra.bootstrap import Container
from slatrail.infra.settings import Settings
from slatrail.infra.web.app import WebContext, create_app
from slatrail.infra.web.compose import web_context
from slatrail.infra.web.server import BackgroundServer
from slatrail.infra.web.tokens import add_token
from tests.builders import wire
from tests.servers import free_port

# A scripted store on the shipped sample contracts: two customers, open and resolved incidents.
SCRIPT = [
    wire("reported", "2026-10-05T09:00:00Z",
         {"customer": "acme-rtc", "title": "calls drop", "priority": "P2"}, incident_id="A-1"),
    wire("acknowledged", "2026-10-05T09:10:00Z", incident_id="A-1"),
    wire("reported", "2026-10-05T10:00:00Z",
         {"customer": "acme-rtc", "title": "login slow", "priority": "P3"}, incident_id="A-2"),
    wire("acknowledged", "2026-10-05T10:05:00Z", incident_id="A-2"),
    wire("resolved", "2026-10-05T12:00:00Z", {"resolution": "fixed"}, incident_id="A-2"),
    wire("reported", "2026-10-05T11:00:00Z",
         {"customer": "brightcall", "title": "no audio", "priority": "P1"}, incident_id="B-1"),
    wire("reported", "2026-10-06T08:00:00Z",
         {"customer": "acme-rtc", "title": "SDK crash", "priority": "P1"}, incident_id="A-3"),
]  # fmt: skip


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Web:
    base: str
    tokens: dict[str, str]
    tokens_file: Path
    context: WebContext

    def get(self, path: str, token: str | None = "auditor", **headers: str) -> Answer:
        request = urllib.request.Request(self.base + path, headers=headers)
        if token is not None:
            request.add_header("Authorization", f"Bearer {self.tokens.get(token, token)}")
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return Answer(answer.status, dict(answer.headers), answer.read())
        except urllib.error.HTTPError as error:
            return Answer(error.code, dict(error.headers), error.read())


def make_tokens(path: Path) -> dict[str, str]:
    return {
        "auditor": add_token(path, "audit-team", "auditor", []),
        "admin": add_token(path, "ops", "admin", []),
        "viewer": add_token(path, "acme-manager", "viewer", ["acme-rtc"]),
        "removed": add_token(path, "gone", "viewer", ["acme-rtc"]),
    }


@contextmanager
def running_web(
    settings: Settings, tokens_file: Path, *, from_read_model: bool = False, **limits: Any
) -> Iterator[Web]:
    tokens = make_tokens(tokens_file)
    settings = settings.model_copy(update={"tokens_file": tokens_file, **limits})
    container = Container(settings, store_read_only=True, read_models_read_only=True)
    context = web_context(container, from_read_model=from_read_model)
    port = free_port()
    server = BackgroundServer(create_app(context), f"127.0.0.1:{port}")
    server.start()
    try:
        yield Web(f"http://127.0.0.1:{port}", tokens, tokens_file, context)
    finally:
        server.stop()
        container.close()
