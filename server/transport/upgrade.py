"""uvicorn's HTTP-to-WebSocket upgrade, without a dead socket's reference cycle or a second parse.

uvicorn parses a request with httptools; when it is a WebSocket upgrade, it
writes the parsed request back out as bytes and feeds them to its WebSocket
protocol, where the ``websockets`` library parses them again, in Python: about
5 % of the server's CPU in a reconnect storm, where every socket is new. Here
the request that httptools parsed goes to ``websockets`` as the ``Request``
its parser would have returned, and ``websockets`` then checks the handshake
(``ServerProtocol.accept``) as before.

Only an ordinary handshake takes that way: anything ``websockets``' parser
might refuse or judge differently (a method other than GET, a body, too many
or too long headers, a non-ASCII target) goes through uvicorn's own path, so
the answer to it is the one uvicorn alone would give.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from websockets.datastructures import Headers
from websockets.http11 import MAX_LINE_LENGTH, MAX_NUM_HEADERS, Request
from websockets.protocol import Protocol

from server.transport.lean import LeanWebSocketProtocol

_BODY_HEADERS = (b"content-length", b"transfer-encoding")


def parsed_request(
    method: str, target: bytes, headers: Iterable[tuple[bytes, bytes]]
) -> Request | None:
    """The handshake as ``websockets``' parser would return it; None when that parser must judge.

    ``headers`` are httptools', as uvicorn keeps them (names in lower case,
    values without surrounding whitespace); ``websockets`` compares names
    without regard to case.
    """
    headers = list(headers)
    # "GET " + target + " HTTP/1.1\r\n" must fit websockets' longest line.
    if method != "GET" or len(headers) > MAX_NUM_HEADERS or len(target) + 15 > MAX_LINE_LENGTH:
        return None
    fields = Headers()
    try:
        path = target.decode("ascii")
        for name, value in headers:
            if name in _BODY_HEADERS or len(name) + len(value) + 4 > MAX_LINE_LENGTH:
                return None
            fields[name.decode("ascii")] = value.decode("latin-1")
    except UnicodeDecodeError:
        return None
    return Request(path, fields)


class WebSocketProtocol(LeanWebSocketProtocol):
    """uvicorn's websockets-sansio protocol (lean.py), which can take its request parsed."""

    __slots__ = ()

    def upgrade(self, request: Request) -> None:
        """Handle ``request`` as if it had been read from the socket; only frames follow it."""
        conn = self.conn
        # websockets' server parser reads the request, then frames: start at the frames.
        conn.parser = Protocol.parse(conn)
        next(conn.parser)
        self.handle_connect(request)


class UpgradingHttpProtocol(HttpToolsProtocol):
    """uvicorn's HTTP protocol: hands a WebSocket its parsed request, then lets go of its parser.

    The parser calls back into the protocol through bound methods, a reference
    cycle. For a plain HTTP connection that is fine; for one upgraded to a
    WebSocket, uvicorn keeps nothing of the HTTP protocol but that cycle,
    which then holds the transport and flow control of a socket long closed
    until a full garbage collection: one per socket of a reconnect storm.
    """

    def handle_websocket_upgrade(self) -> None:
        kind: Any = self.ws_protocol_class
        request = None
        if isinstance(kind, type) and issubclass(kind, WebSocketProtocol):
            request = parsed_request(self.scope["method"], self.url, self.scope["headers"])
        if request is None:
            super().handle_websocket_upgrade()
        else:
            self.connections.discard(self)
            protocol = kind(
                config=self.config, server_state=self.server_state, app_state=self.app_state
            )
            protocol.connection_made(self.transport)
            protocol.upgrade(request)
            self.transport.set_protocol(protocol)
        # The transport now feeds the WebSocket protocol; this one gets no more data.
        self.parser = None  # type: ignore[assignment]
