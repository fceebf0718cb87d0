"""Writing a WebSocket frame straight to the socket's transport, below ASGI (the fan-out path).

ASGI gives an app one way to send: ``await send({"type": "websocket.send", ...})``.
Under uvicorn, each such call runs Litestar's send wrapper, uvicorn's send
coroutine and the ``websockets`` frame serializer, for every socket: most of
the cost of handing one event to a thousand sockets. Yet a server-to-client
text frame is the same bytes for every socket (servers never mask, and
serve.py negotiates no compression). So the hub serializes an event's frame
once (:class:`Outgoing`), and each socket whose transport can take it now gets
it with one ``transport.write`` (:class:`DirectWriter`).

That needs the transport, which ASGI hides. :func:`expose_send` wraps the app
given to uvicorn and records the server's own ``send`` in the socket's scope.
A :class:`DirectWriter` exists only when that ``send`` belongs to uvicorn's
websockets-sansio protocol (serve.py's, see upgrade.py) and the socket
negotiated no extension. Anywhere else (another ASGI server, the test
client), and whenever the socket is closing or its transport is paused
(a slow reader), frames go through ASGI ``send`` as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame, Opcode

SCOPE_KEY = "moodboard.server_send"


def expose_send(app: ASGIApp) -> ASGIApp:
    """``app``, with each WebSocket's scope holding the server's own ``send`` (see above)."""

    async def exposed(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.WEBSOCKET:
            await app(scope, receive, send)
            return
        scope[SCOPE_KEY] = send  # type: ignore[literal-required]  # an ASGI scope is open
        try:
            await app(scope, receive, send)
        finally:
            # uvicorn's protocol holds the scope, and ``send`` is the protocol's bound
            # method: left in place, the pair is a reference cycle, and the closed
            # socket's whole protocol (transport, parser, queues: about 80 objects)
            # would wait for a full garbage collection instead of going at once.
            del scope[SCOPE_KEY]  # type: ignore[misc]  # an ASGI scope is open

    return exposed


class Outgoing:
    """One encoded text frame, for one socket or many: its payload, and its wire bytes made once."""

    __slots__ = ("_wire", "payload")

    def __init__(self, payload: bytes) -> None:
        self.payload = payload  # UTF-8 JSON, as msgspec encodes it
        self._wire: bytes | None = None

    def __len__(self) -> int:
        return len(self.payload)

    @property
    def text(self) -> str:
        """For ASGI ``send``, which takes a text frame as ``str``."""
        return self.payload.decode()

    @property
    def wire(self) -> bytes:
        """The whole WebSocket frame (FIN, text opcode, unmasked), serialized by ``websockets``."""
        if self._wire is None:
            self._wire = Frame(Opcode.TEXT, self.payload).serialize(mask=False)
        return self._wire


class DirectWriter:
    """Whole frames onto one uvicorn socket's transport, when it can take them now."""

    __slots__ = ("_protocol",)

    def __init__(self, protocol: WebSocketsSansIOProtocol) -> None:
        self._protocol = protocol

    @classmethod
    def for_scope(cls, scope: Mapping[str, Any]) -> DirectWriter | None:
        """A writer for an accepted socket, or None when frames must go through ASGI ``send``."""
        protocol = getattr(scope.get(SCOPE_KEY), "__self__", None)
        if not isinstance(protocol, WebSocketsSansIOProtocol):
            return None
        if not protocol.handshake_complete or protocol.conn.extensions:
            return None  # not accepted yet, or frames would need per-socket encoding
        return cls(protocol)

    def abort(self) -> None:
        """Drop the connection now, unwritten data and all (a peer that stopped reading).

        A close frame waits behind everything the peer has not read; when it
        cannot go out in time (a drain, docs/protocol.md §1), this is what ends
        the socket: the transport closes without flushing, the peer sees a reset.
        """
        self._protocol.transport.abort()

    def buffered(self) -> int:
        """Bytes written to the transport that the kernel has not taken yet (a slow reader's)."""
        return int(self._protocol.transport.get_write_buffer_size())

    def write(self, frames: bytes) -> bool:
        """Write whole frames now; False (nothing written) when they must wait or go through ASGI.

        uvicorn's own ``send`` waits while the transport is paused (its buffer
        above the high-water mark: a slow reader) and refuses a closing
        socket; so does this, by declining. Three checks cover every way a
        socket stops taking frames: our close frame sets ``close_sent``; the
        peer's close frame, a lost connection and a server shutdown all close
        the transport (uvicorn's ``handle_close``, ``connection_lost``).
        """
        protocol = self._protocol
        if protocol.close_sent or not protocol.writable.is_set() or protocol.transport.is_closing():
            return False
        protocol.transport.write(frames)
        return True
