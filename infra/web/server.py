"""Serving the web application with uvicorn: `slatrail web` in the foreground, `serve --http`
in a thread beside the workers."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import threading

import uvicorn
from fastapi import FastAPI

from slatrail.infra.errors import UsageError

MAX_CONNECTIONS = 200
KEEP_ALIVE_S = 5
GRACE_S = 3


def parse_listen(text: str) -> tuple[str, int]:
    """`HOST:PORT`, `[::1]:PORT` or `:PORT` (loopback)."""
    host, sep, port = text.strip().rpartition(":")
    if not sep:
        raise UsageError(f"--listen {text!r}: expected HOST:PORT, e.g. 127.0.0.1:8080")
    host = host.strip("[]") or "127.0.0.1"
    try:
        number = int(port)
        if not 0 <= number <= 65535:
            raise ValueError
    except ValueError:
        raise UsageError(f"--listen {text!r}: the port is 0 to 65535") from None
    if host != "localhost":
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise UsageError(f"--listen {text!r}: the host is an IP address or localhost") from None
    return host, number


def bind(listen: str) -> socket.socket:
    """The listening socket, bound before anything starts: an address in use or not ours is a
    usage error (exit 2), not a failure of a half-started server."""
    host, port = parse_listen(listen)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named: asyncio sets TCP_NODELAY on accepted connections only when the socket's
    # protocol says TCP (Python 3.11 checks `proto`, which is 0 unless given), and without it a
    # response written in two parts waits for the client's delayed ACK: ≈ 40 ms per request
    # on a kept-alive connection.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise UsageError(f"cannot listen on {listen}: {error.strerror or error}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def config(app: FastAPI, listen: str) -> uvicorn.Config:
    host, port = parse_listen(listen)
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,  # requests are logged by the app, with the token's name only
        limit_concurrency=MAX_CONNECTIONS,
        timeout_keep_alive=KEEP_ALIVE_S,
        h11_max_incomplete_event_size=16 * 1024,  # request line + headers
        server_header=False,
        timeout_graceful_shutdown=GRACE_S,  # then open board streams are closed
    )


class BackgroundServer:
    """uvicorn in a thread (for `serve --http`): started, then stopped with `stop()`."""

    def __init__(self, app: FastAPI, listen: str) -> None:
        self.server = uvicorn.Server(config(app, listen))
        self.socket = bind(listen)
        self.thread = threading.Thread(target=self._run, name="slatrail-http", daemon=True)

    def _run(self) -> None:
        asyncio.run(self.server.serve(sockets=[self.socket]))

    def start(self, timeout_s: float = 10.0) -> None:
        self.thread.start()
        deadline = threading.Event()
        for _ in range(int(timeout_s / 0.05)):
            if self.server.started or not self.thread.is_alive():
                break
            deadline.wait(0.05)
        if not self.server.started:
            raise UsageError("the HTTP server did not start (is the address in use?)")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.socket.close()
