"""A Litestar socket route under a real uvicorn, with serve.py's protocols (or others)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from litestar import Litestar, websocket
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from server.transport.upgrade import UpgradingHttpProtocol, WebSocketProtocol
from server.transport.wire import expose_send


@contextlib.asynccontextmanager
async def serving(
    handler: Any,
    http: type[HttpToolsProtocol] = UpgradingHttpProtocol,
    ws: type[WebSocketsSansIOProtocol] = WebSocketProtocol,
) -> AsyncIterator[str]:
    """``handler`` as a Litestar socket route under a real uvicorn, as serve.py runs it."""
    app = Litestar(route_handlers=[websocket("/ws")(handler)])
    config = uvicorn.Config(
        expose_send(app),
        host="127.0.0.1",
        port=0,
        http=http,
        ws=ws,
        ws_per_message_deflate=False,
        log_config=None,
        lifespan="off",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn says so by a flag alone
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"ws://127.0.0.1:{port}/ws"
    finally:
        server.should_exit = True
        await task
