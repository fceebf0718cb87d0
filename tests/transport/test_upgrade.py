"""The WebSocket upgrade given httptools' parsed request (server/transport/upgrade.py), on uvicorn.

Whatever the handshake, the client must get what uvicorn alone would give it,
and the app the same scope.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from litestar import WebSocket
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.asyncio.client import connect
from websockets.http11 import Request

from server.transport.upgrade import WebSocketProtocol
from tests.transport.serving import serving

UVICORN_ALONE = {"http": HttpToolsProtocol, "ws": WebSocketsSansIOProtocol}
KEY = "dGhlIHNhbXBsZSBub25jZQ=="
SCOPE_KEYS = ("path", "raw_path", "query_string", "headers", "subprotocols", "scheme")
PER_CONNECTION = (b"host", b"sec-websocket-key")  # the port and the key differ each time


class Recording(WebSocketProtocol):
    """Keeps the requests handed to it already parsed."""

    handed: list[Request] = []

    def upgrade(self, request: Request) -> None:
        self.handed.append(request)
        super().upgrade(request)


async def echo_scope(socket: WebSocket[Any, Any, Any]) -> None:
    await socket.accept(subprotocols=socket.scope["subprotocols"][0])
    scope: dict[str, Any] = {key: socket.scope[key] for key in SCOPE_KEYS}  # type: ignore[literal-required]
    scope["headers"] = [(k, v) for k, v in scope["headers"] if k not in PER_CONNECTION]
    await socket.send_text(repr(scope))
    message = await socket.receive_text()
    await socket.send_text(message.upper())
    await socket.close()


async def scope_seen(url: str) -> str:
    """A socket with a query, a cookie, subprotocols and a Latin-1 header: the app's scope."""
    async with connect(
        url + "?room=k%C3%BCche&x=1",
        subprotocols=["moodboard.v1", "other"],  # type: ignore[list-item]
        additional_headers={"Cookie": "mb_session=abc", "X-Name": "café"},
    ) as client:
        seen = str(await client.recv())
        await client.send("hello")
        assert await client.recv() == "HELLO"  # frames flow both ways after the upgrade
        assert client.subprotocol == "moodboard.v1"
    return seen


async def test_an_ordinary_handshake_is_not_parsed_again_and_the_app_sees_the_same_scope() -> None:
    Recording.handed.clear()
    async with serving(echo_scope, ws=Recording) as url:
        ours = await scope_seen(url)
    async with serving(echo_scope, **UVICORN_ALONE) as url:  # type: ignore[arg-type]
        alone = await scope_seen(url)
    assert [request.path for request in Recording.handed] == ["/ws?room=k%C3%BCche&x=1"]
    assert ours == alone
    assert "(b'x-name', b'caf\\xe9')" in ours  # sent as Latin-1, kept as bytes
    assert "'subprotocols': ['moodboard.v1', 'other']" in ours


def _request(method: str = "GET", extra: str = "", drop: str = "") -> bytes:
    head = (
        f"{method} /ws?x=1 HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
    return head.replace(drop, "").encode("latin-1")


UNUSUAL = {
    "POST": _request("POST"),
    "no version": _request(drop="Sec-WebSocket-Version: 13\r\n"),
    "version 8": _request().replace(b"Version: 13", b"Version: 8"),
    "a body": _request(extra="Content-Length: 3\r\n") + b"abc",
    "130 headers": _request(extra="".join(f"X-H{i}: v\r\n" for i in range(130))),
    "a 9000-byte header": _request(extra="X-Long: " + "a" * 9000 + "\r\n"),
}


async def first_line(url: str, data: bytes) -> bytes:
    """The status line of the answer to ``data`` (or that none came within half a second)."""
    port = int(url.split(":")[2].split("/")[0])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    try:
        answer = await asyncio.wait_for(reader.read(500), 0.5)
    except TimeoutError:
        answer = b"(no answer)"
    writer.close()
    return answer.split(b"\r\n")[0]


@pytest.mark.parametrize("case", list(UNUSUAL))
async def test_an_unusual_handshake_gets_uvicorns_own_answer(case: str) -> None:
    Recording.handed.clear()
    async with serving(echo_scope, ws=Recording) as url:
        ours = await first_line(url, UNUSUAL[case])
    async with serving(echo_scope, **UVICORN_ALONE) as url:  # type: ignore[arg-type]
        alone = await first_line(url, UNUSUAL[case])
    assert ours == alone
    if case in ("a body", "130 headers", "a 9000-byte header", "POST"):
        assert Recording.handed == []  # websockets' own parser judged it
