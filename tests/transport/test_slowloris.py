"""Slow handshakes and connection floods: a header deadline and a connection cap.

Issue 19 item 5: a connection that sent half an HTTP request (or nothing)
stayed open 75 s and more, and nothing capped connections per instance, so a
few hundred slow clients held a server's file descriptors. Now the request
headers must arrive within ``MOODBOARD_HEADER_TIMEOUT_MS`` of the connection
(or of the first byte of a following request on a kept-alive one), and past
``MOODBOARD_MAX_CONNECTIONS`` open connections (HTTP and WebSocket) a new one
is answered 503 and closed. Times are measured and bounded loosely, never
asserted tightly: this machine is shared.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import pytest

from tests.servers import ServerProcess, running_server, server_env
from tests.wsclient import signup, ws

pytestmark = pytest.mark.e2e
HALF_REQUEST = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow"
WAIT_S = 30.0  # far above any deadline used here: only a connection held forever fails


@asynccontextmanager
async def _server(tmp: Path, **env: str) -> AsyncIterator[ServerProcess]:
    async with running_server(server_env(f"sqlite:///{tmp / 'm.sqlite3'}", **env), tmp) as s:
        yield s


_writers: list[asyncio.StreamWriter] = []


@pytest.fixture(autouse=True)
async def _close_connections() -> AsyncIterator[None]:
    """Every raw connection a test opened is closed after it."""
    yield
    while _writers:
        writer = _writers.pop()
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def _open(
    server: ServerProcess, first: bytes
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    _writers.append(writer)
    if first:
        writer.write(first)
        await writer.drain()
    return reader, writer


async def _seconds_until_closed(
    reader: asyncio.StreamReader, started: float
) -> tuple[float, bytes]:
    """How long the server kept the connection, and what it said before closing."""
    said = await asyncio.wait_for(reader.read(), WAIT_S)  # b"" or a response, then EOF
    return time.monotonic() - started, said


async def test_half_requests_and_silent_connections_are_closed_by_the_deadline(
    tmp_path: Path,
) -> None:
    """Connections that never finish their headers are closed soon after the deadline."""
    async with _server(tmp_path, MOODBOARD_HEADER_TIMEOUT_MS="1000") as server:
        started = time.monotonic()
        slow = [await _open(server, HALF_REQUEST) for _ in range(3)]
        silent = [await _open(server, b"") for _ in range(2)]
        held = await asyncio.gather(
            *(_seconds_until_closed(reader, started) for reader, _ in [*slow, *silent])
        )
        for seconds, said in held:
            assert 0.9 <= seconds < WAIT_S, held
            assert b"200" not in said
        # A connection that sends its headers in time is served as ever.
        reader, _ = await _open(server, HALF_REQUEST + b"\r\n\r\n")
        status = await asyncio.wait_for(reader.readline(), WAIT_S)
        assert status.startswith(b"HTTP/1.1 200"), status


async def test_past_the_cap_new_connections_get_503(tmp_path: Path) -> None:
    """At MOODBOARD_MAX_CONNECTIONS, a new connection is refused; held ones still work."""
    async with AsyncExitStack() as stack:
        server = await stack.enter_async_context(
            _server(tmp_path, MOODBOARD_MAX_CONNECTIONS="6", MOODBOARD_HEADER_TIMEOUT_MS="60000")
        )
        _, token = await signup(server.url, "cap", "cap@example.com")
        sock = await stack.enter_async_context(ws(server.url, token))  # sockets count too
        await sock.expect("ready")
        held = [await _open(server, HALF_REQUEST) for _ in range(5)]
        refused = []
        for _ in range(3):
            # Read before writing: a request sent to a closing connection may reset it.
            reader, _ = await _open(server, b"")
            refused.append(await asyncio.wait_for(reader.read(), WAIT_S))
        for answer in refused:
            assert answer.startswith(b"HTTP/1.1 503"), answer
        # The connections under the cap are untouched: a held one finishes its request.
        reader, writer = held[0]
        writer.write(b"\r\n\r\n")
        status = await asyncio.wait_for(reader.readline(), WAIT_S)
        assert status.startswith(b"HTTP/1.1 200"), status
        pong = await sock.request({"type": "ping", "ref": "still"})
        assert pong == {"type": "pong", "ref": "still"}
