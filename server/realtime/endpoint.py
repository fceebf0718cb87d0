"""``GET /ws``: the Litestar socket handler, a thin pump around ``Connection``.

Origin is checked before the upgrade (403; cross-site WebSocket hijacking
defence, docs/security.md "Origin"); a missing Origin (a non-browser client) is allowed.
Credentials at the handshake (cookie or Bearer) are checked after accepting,
so a bad one closes with 4401 that a browser can see.

The handshake's headers are read straight from the ASGI scope (Litestar's
``headers`` and ``cookies`` would keep a parsed copy in the scope for as
long as the socket is open) and, once the credentials are checked, dropped
from it: nothing reads them later, and an idle socket holds about 2.5 KiB
less (docs/performance.md "Idle memory").
"""

from __future__ import annotations

import functools
import itertools
import uuid
from typing import Any
from urllib.parse import unquote

import structlog
from litestar import WebSocket, websocket
from litestar.connection import ASGIConnection
from litestar.exceptions import PermissionDeniedException, WebSocketDisconnect
from litestar.handlers.base import BaseRouteHandler

from server import metrics
from server.access.cookies import COOKIE_NAME, unsign
from server.access.origins import origin_allowed
from server.access.principal import Principal
from server.access.sessions import authenticate
from server.access.tokens import token_kind
from server.context import AppContext
from server.errors import CloseCode
from server.realtime.connection import Connection
from server.realtime.hub import Realtime
from server.realtime.socket_state import Limits, SocketStateMachine

_ids = itertools.count(1)


async def origin_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Refuse the upgrade (HTTP 403) when a browser's Origin is not allowed.

    A coroutine although it never waits: Litestar runs a plain function guard
    in a worker thread, a thread hop per socket opened.
    """
    origin = _header(connection.scope, b"origin")
    if origin is None:
        return
    ctx: AppContext = connection.app.state.ctx
    if not origin_allowed(
        origin,
        own=ctx.settings.own_origins,
        allowed=ctx.settings.allowed_origins,
    ):
        raise PermissionDeniedException("this Origin may not open sockets here")


def _header(scope: Any, name: bytes) -> str | None:
    """The first value of the header ``name`` (lower case) in an ASGI scope, or None.

    Compared without regard to case, as Litestar's ``headers`` do: uvicorn's own
    upgrade path hands on the names as the client wrote them.
    """
    for key, value in scope["headers"]:
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


def _cookie(scope: Any, name: str) -> str | None:
    """The cookie ``name`` of the handshake, or None; as Litestar reads it, the last one wins.

    Our cookie's value is never quoted (``sign`` makes it URL-safe), so unlike
    Litestar this does not undo a quoted string's escapes.
    """
    found = None
    for key, value in scope["headers"]:
        if key.lower() != b"cookie":
            continue
        for part in value.decode("latin-1").split(";"):
            cookie_name, sep, cookie_value = part.partition("=")
            if sep and cookie_name.strip() == name:
                found = unquote(cookie_value.strip())
    return found


async def _handshake(
    socket: WebSocket[Any, Any, Any], ctx: AppContext
) -> tuple[Principal | None, bool]:
    """The principal of the handshake's credentials; (None, True) when they are bad."""
    ttl = ctx.settings.session_ttl_s
    header = _header(socket.scope, b"authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or token_kind(token.strip()) == "service":
            return None, True
        principal = await authenticate(ctx.database, token.strip(), ttl_s=ttl, via="bearer")
        return principal, principal is None
    cookie = _cookie(socket.scope, COOKIE_NAME)
    if cookie is not None:
        token_value = unsign(cookie, ctx.settings.verification_keys)
        principal = (
            None
            if token_value is None
            else await authenticate(ctx.database, token_value, ttl_s=ttl, via="cookie")
        )
        return principal, principal is None
    return None, False


@websocket("/ws", guards=[origin_guard])
async def ws_endpoint(socket: WebSocket[Any, Any, Any]) -> None:
    """One socket: any number of project subscriptions (docs/protocol.md §3)."""
    ctx: AppContext = socket.app.state.ctx
    realtime: Realtime = socket.app.state.realtime
    connection_id = f"{realtime.instance_id}.{next(_ids)}"  # unique across instances
    # The socket's own task (uvicorn runs each in one): bound here, the id is on
    # every line logged while serving it, and goes with the task.
    structlog.contextvars.bind_contextvars(connection_id=connection_id)
    try:
        # Served here, not one coroutine further down: an idle socket waits for its
        # next frame with every coroutine between it and uvicorn suspended, each a
        # few hundred bytes (docs/performance.md "Idle memory").
        opened = await _open(socket, ctx, realtime, connection_id)
        if opened is not None:
            connection, principal, failed = opened
            with metrics.OPEN_SOCKETS.track_inprogress():
                await connection.run(principal, failed)
    finally:
        release(socket)


async def _open(
    socket: WebSocket[Any, Any, Any], ctx: AppContext, realtime: Realtime, connection_id: str
) -> tuple[Connection, Principal | None, bool] | None:
    """The accepted socket's connection and its handshake's credentials; None when refused."""
    if realtime.draining:
        await _refuse_while_draining(socket)
        return None
    await socket.accept()
    if realtime.draining:  # the drain began during the handshake
        await socket.close(code=int(CloseCode.SERVICE_RESTART), reason="server restarting")
        return None
    settings = ctx.settings
    limits = _limits(
        settings.max_joins_per_socket,
        float(settings.socket_rate),
        float(settings.socket_burst),
        settings.auth_timeout_s,
    )
    connection = Connection(
        socket,
        SocketStateMachine(connection_id, limits),
        realtime,
        database=ctx.database,
        session_ttl_s=settings.session_ttl_s,
        outbox_frames=settings.outbox_frames,
    )
    principal, failed = await _handshake(socket, ctx)
    socket.scope["headers"] = []  # read: not kept for the socket's lifetime
    return connection, principal, failed


@functools.lru_cache(maxsize=8)
def _limits(max_joins: int, rate: float, burst: float, auth_timeout_s: float) -> Limits:
    """One (frozen) ``Limits`` for every socket, not one each."""
    return Limits(max_joins=max_joins, rate=rate, burst=burst, auth_timeout_s=auth_timeout_s)


async def _refuse_while_draining(socket: WebSocket[Any, Any, Any]) -> None:
    """Answer the upgrade HTTP 503 (ASGI's denial response): a balancer retries elsewhere.

    Accepted and then closed with 1012, the socket would count as served: a
    proxy would not try the next instance, and the client would reconnect
    through the balancer once more (docs/operations.md "Stopping an instance").
    """
    start: Any = {
        "type": "websocket.http.response.start",
        "status": 503,
        "headers": [(b"retry-after", b"1"), (b"content-type", b"text/plain; charset=utf-8")],
    }
    await socket.send(start)
    body: Any = {"type": "websocket.http.response.body", "body": DRAINING_REFUSAL}
    await socket.send(body)


DRAINING_REFUSAL = b"this instance is draining (SIGTERM); connect to another one\n"


def release(socket: WebSocket[Any, Any, Any]) -> None:
    """Break the reference cycle Litestar's ``WebSocket`` makes with its send and receive.

    Litestar wraps both in closures over the ``WebSocket`` itself, and the
    wrapped ``receive`` holds uvicorn's protocol (its bound method): left as
    they are, everything of a closed socket (the protocol, its transport,
    parser, queues and the handshake's request and response, about 90
    objects) stays in memory until a full garbage collection, and a reconnect
    storm leaves thousands of them for that collection to walk. Cut, it all
    goes the moment the socket's handler returns. Nothing sends or receives
    on the socket after that; if something did, it would get the disconnect.
    """
    socket.receive = _closed
    socket.send = _closed


async def _closed(*_: Any) -> Any:
    raise WebSocketDisconnect(detail="the socket is closed")


def new_instance_id() -> str:
    """A short id for this server process (presence entries, connection ids)."""
    return uuid.uuid4().hex[:10]
