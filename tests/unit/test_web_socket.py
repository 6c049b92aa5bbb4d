"""The web's listening socket names TCP, so asyncio sets TCP_NODELAY on every accepted
connection: without it each answer on a kept-alive connection waited ≈ 40 ms for the client's
delayed acknowledgement (docs/web.md, *Benchmark*)."""

from __future__ import annotations

import asyncio
import socket

from slatrail.infra.web.server import bind


def test_accepted_connections_of_the_web_socket_get_tcp_nodelay() -> None:
    listening = bind("127.0.0.1:0")
    port = listening.getsockname()[1]
    flags: list[int] = []

    async def serve() -> None:
        def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            peer = writer.get_extra_info("socket")
            flags.append(peer.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(accepted, sock=listening)
        async with server:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            for _ in range(100):
                if flags:
                    break
                await asyncio.sleep(0.01)
            writer.close()

    asyncio.run(serve())
    assert flags and flags[0] != 0
