"""Bounds on connections: a deadline for request headers, and a cap per instance.

uvicorn closes an idle kept-alive connection (``timeout_keep_alive``), but a
connection that has sent nothing, or half a request's headers, it keeps
forever: a few hundred such slow clients (slowloris) hold a server's file
descriptors and memory. And uvicorn's ``limit_concurrency`` answers 503 only
to HTTP requests whose headers are complete, never to a WebSocket upgrade,
and counts the connection asking: at the cap, every request of every open
connection would get 503. So here:

- the headers of a request must be complete within ``header_timeout_s`` of
  the connection, or of the first byte of a following request on a
  kept-alive one; otherwise the connection is closed;
- a connection that arrives while ``max_connections`` are open (HTTP and
  WebSocket alike: uvicorn keeps both in one set) is answered 503 at once
  and closed, before any byte of it is read.
"""

from __future__ import annotations

import asyncio

from server.log import get_logger
from server.transport.upgrade import UpgradingHttpProtocol

log = get_logger(__name__)
_REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"retry-after: 1\r\n"
    b"connection: close\r\n"
    b"content-length: 29\r\n"
    b"\r\n"
    b"too many connections; retry\n"
)


class GuardedHttpProtocol(UpgradingHttpProtocol):
    """The HTTP protocol of serve.py, with a header deadline and a connection cap."""

    max_connections = 10_000
    header_timeout_s = 10.0
    _header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.max_connections:
            log.warning("http.connection_refused", reason="max_connections")
            transport.write(_REFUSAL)
            transport.close()
            return
        super().connection_made(transport)
        self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        if self.transport is None:  # refused in connection_made: nothing was set up
            return
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.transport is None:  # refused: whatever it sends is dropped
            return
        super().data_received(data)

    def on_message_begin(self) -> None:
        # The next request of a kept-alive connection: its headers get a deadline too.
        self._arm_header_deadline()
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._disarm_header_deadline()
        super().on_headers_complete()

    def _arm_header_deadline(self) -> None:
        if self._header_deadline is None:
            self._header_deadline = self.loop.call_later(self.header_timeout_s, self._too_slow)

    def _disarm_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _too_slow(self) -> None:
        self._header_deadline = None
        if not self.transport.is_closing():
            log.info("http.header_timeout", timeout_s=self.header_timeout_s)
            self.transport.close()


def guarded_protocol(*, max_connections: int, header_timeout_s: float) -> type[GuardedHttpProtocol]:
    """The protocol class uvicorn builds per connection, with these bounds."""
    return type(
        "GuardedHttpProtocol",
        (GuardedHttpProtocol,),
        {"max_connections": max_connections, "header_timeout_s": header_timeout_s},
    )
