"""Whether the transport fast paths work with the installed uvicorn and websockets.

Both fast paths fall back silently by design: :class:`~server.transport.wire.DirectWriter`
declines when uvicorn's ``send`` is not what it expects, and the upgrade takes
uvicorn's own path when its hook is not called. A library upgrade could turn
either off and nothing would fail. So at startup :func:`probe` serves one
WebSocket handshake in memory (a socket pair, no port), through the very
protocol classes the server runs, and sees which paths it took;
:func:`report` logs the answer once and sets ``moodboard_transport_fast_path``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from dataclasses import dataclass
from typing import Any

import uvicorn
from uvicorn.server import ServerState
from websockets.asyncio.client import connect
from websockets.http11 import Request
from websockets.version import version as websockets_version

from server import metrics
from server.log import get_logger
from server.transport.upgrade import WebSocketProtocol
from server.transport.wire import DirectWriter, Outgoing, expose_send

log = get_logger(__name__)
PROBE_TIMEOUT_S = 5.0
_PROBE_FRAME = b'{"probe":true}'


@dataclass(frozen=True, slots=True, kw_only=True)
class FastPaths:
    """Which transport fast paths a socket takes (True) or not (False)."""

    direct_write: bool  # fan-out frames written straight to the transport (wire.py)
    fast_upgrade: bool  # the handshake httptools parsed is not parsed again (upgrade.py)


@dataclass(slots=True)
class _Seen:
    upgraded: bool = False
    direct_write: bool = False


async def probe(
    http: type[asyncio.Protocol],
    ws: type[asyncio.Protocol] | None,
    *,
    per_message_deflate: bool = False,
) -> FastPaths:
    """Serve one handshake and one frame through ``http`` and ``ws``; which fast paths ran.

    Nothing of the app is involved: the probe has its own ASGI app. Any
    failure (a library that changed under us) means a path is off.
    """
    if ws is None:  # uvicorn serves no WebSocket at all
        return FastPaths(direct_write=False, fast_upgrade=False)
    seen = _Seen()
    done = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        try:
            await receive()  # websocket.connect
            await send({"type": "websocket.accept"})
            writer = DirectWriter.for_scope(scope)
            seen.direct_write = writer is not None and writer.write(Outgoing(_PROBE_FRAME).wire)
            if not seen.direct_write:
                await send({"type": "websocket.send", "text": _PROBE_FRAME.decode()})
            await receive()  # until the client closes
        finally:
            done.set()

    if issubclass(ws, WebSocketProtocol):

        def upgrade(self: WebSocketProtocol, request: Request) -> None:
            seen.upgraded = True
            WebSocketProtocol.upgrade(self, request)

        ws = type("ProbedWebSocketProtocol", (ws,), {"upgrade": upgrade})
    config = uvicorn.Config(
        expose_send(app),
        http=http,
        ws=ws,
        ws_per_message_deflate=per_message_deflate,
        lifespan="off",
        log_config=None,
        proxy_headers=False,
    )
    config.load()
    state = ServerState()
    server_side, client_side = socket.socketpair()
    transport: asyncio.BaseTransport | None = None
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_S):
            transport, _ = await asyncio.get_running_loop().connect_accepted_socket(
                lambda: http(config=config, server_state=state, app_state={}),  # type: ignore[call-arg]
                server_side,
            )
            async with connect("ws://probe/", sock=client_side, compression=None) as client:
                frame = await client.recv()
            await done.wait()
        arrived = frame == _PROBE_FRAME.decode()
    except Exception as exc:
        log.warning("transport.probe_failed", error=repr(exc))
        return FastPaths(direct_write=False, fast_upgrade=False)
    finally:
        if transport is not None:
            transport.close()
        for sock in (server_side, client_side):
            with contextlib.suppress(OSError):
                sock.close()
    return FastPaths(direct_write=seen.direct_write and arrived, fast_upgrade=seen.upgraded)


def report(paths: FastPaths, *, wanted: FastPaths) -> None:
    """Log the fast paths once (a warning when one that is wanted is off) and set the gauge."""
    metrics.transport_fast_paths(direct_write=paths.direct_write, fast_upgrade=paths.fast_upgrade)
    lost = (paths.direct_write < wanted.direct_write) or (paths.fast_upgrade < wanted.fast_upgrade)
    (log.warning if lost else log.info)(
        "transport.fast_paths",
        direct_write=paths.direct_write,
        fast_upgrade=paths.fast_upgrade,
        fast_upgrade_configured=wanted.fast_upgrade,
        uvicorn=uvicorn.__version__,
        websockets=websockets_version,
    )
