"""Frames written straight to uvicorn's transport (server/transport/wire.py), on a real uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import weakref
from collections.abc import Iterator
from typing import Any

import pytest
from litestar import Litestar, WebSocket, websocket
from litestar.testing import TestClient
from websockets.asyncio.client import connect

from server.realtime.endpoint import release
from server.transport.upgrade import UpgradingHttpProtocol
from server.transport.wire import SCOPE_KEY, DirectWriter, Outgoing
from tests.transport.serving import serving

PAYLOADS = [b'{"n":1}', ('{"note":"' + "é" * 200 + '"}').encode(), b'"' + b"x" * 70_000 + b'"']


async def test_frames_written_to_the_transport_arrive_whole_and_in_order() -> None:
    """Small, non-ASCII and over-64-KiB frames (every length encoding) reach the client intact."""
    writers: list[DirectWriter | None] = []

    async def handler(socket: WebSocket[Any, Any, Any]) -> None:
        await socket.accept()
        writer = DirectWriter.for_scope(socket.scope)
        writers.append(writer)
        assert writer is not None
        for payload in PAYLOADS:
            assert writer.write(Outgoing(payload).wire)
        await socket.send_text("after")  # ASGI send still works, in order, on the same socket
        await socket.receive()

    async with serving(handler) as url, connect(url, max_size=None) as client:
        received = [await client.recv() for _ in range(len(PAYLOADS) + 1)]
    assert received == [p.decode() for p in PAYLOADS] + ["after"]
    assert writers != [None]


async def test_a_reader_that_stops_reading_makes_the_writer_decline_instead_of_buffering() -> None:
    """Once the transport is paused (its buffer is full), ``write`` says no: the caller queues."""
    outcome: asyncio.Future[tuple[int, int]] = asyncio.get_running_loop().create_future()

    async def handler(socket: WebSocket[Any, Any, Any]) -> None:
        await socket.accept()
        writer = DirectWriter.for_scope(socket.scope)
        assert writer is not None
        frame, written = Outgoing(b'"' + b"y" * 8000 + b'"'), 0
        while written < 10_000 and writer.write(frame.wire):
            written += 1
            if written % 50 == 0:
                await asyncio.sleep(0)  # let the loop notice the full socket
        outcome.set_result((written, len(frame.wire)))
        await socket.receive()

    async with serving(handler) as url, connect(url, max_size=None, max_queue=1) as client:
        written, size = await asyncio.wait_for(outcome, 30)
        # It stopped well before 10,000 frames (80 MB): bounded by the socket buffers.
        assert written < 10_000
        # What was written is all there, whole, once the client reads again.
        for _ in range(written):
            assert len(await client.recv()) == size - 4  # 4: this frame's header


def test_outside_uvicorn_there_is_no_direct_writer() -> None:
    """Under another server (here Litestar's test client) frames go through ASGI send."""
    found: list[DirectWriter | None] = []

    @websocket("/ws")
    async def handler(socket: WebSocket[Any, Any, Any]) -> None:
        await socket.accept()
        found.append(DirectWriter.for_scope(socket.scope))
        await socket.send_text("hello")

    with (
        TestClient(app=Litestar(route_handlers=[handler])) as client,
        client.websocket_connect("/ws") as sock,
    ):
        assert sock.receive_text() == "hello"
    assert found == [None]


def test_a_frame_is_serialized_once_for_every_socket() -> None:
    frame = Outgoing(b'{"type":"event"}')
    assert frame.wire is frame.wire
    assert frame.wire == b"\x81\x10" + b'{"type":"event"}'  # FIN + text, unmasked, length 16
    assert frame.text == '{"type":"event"}'
    assert len(frame) == 16


@contextlib.contextmanager
def no_garbage_collector() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


async def test_a_closed_socket_is_freed_at_once_without_a_garbage_collection() -> None:
    """Nothing of a closed socket waits in a reference cycle for the collector.

    uvicorn's HTTP protocol (the upgraded one) and its WebSocket protocol,
    with the transport, parser and queues they hold, go as soon as the
    socket's handler returns (with ``release``, as the endpoint does): a
    reconnect storm leaves no thousands of dead sockets for a full
    collection to walk.
    """
    alive: list[weakref.ref[Any]] = []

    class Recorded(UpgradingHttpProtocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            alive.append(weakref.ref(self))

    async def handler(socket: WebSocket[Any, Any, Any]) -> None:
        try:
            await socket.accept()
            alive.append(weakref.ref(socket.scope[SCOPE_KEY].__self__))  # type: ignore[literal-required]
            await socket.send_text("hello")
            await socket.receive()  # until the client goes
        finally:
            release(socket)

    with no_garbage_collector():
        async with serving(handler, http=Recorded) as url, connect(url) as client:
            assert await client.recv() == "hello"
        # The server has stopped: every task of the socket is done.
        kinds = [type(ref()).__name__ for ref in alive if ref() is not None]
    assert len(alive) == 2
    assert kinds == []


@pytest.mark.parametrize("goes", ["closes", "aborts"])
async def test_a_closed_sockets_websocket_parser_is_freed_at_once(goes: str) -> None:
    """The ``websockets`` connection inside uvicorn's protocol, with its parser, goes at once too.

    Its parser is a generator holding the connection: until it reads an end of
    stream, which uvicorn never hands it, the two are a cycle (with the reader
    and the last frames) that only a full collection frees; a soak's joins and
    leaves piled them up between collections (docs/benchmarks.md, "Session 11").
    """
    alive: list[weakref.ref[Any]] = []

    async def handler(socket: WebSocket[Any, Any, Any]) -> None:
        try:
            await socket.accept()
            protocol = socket.scope[SCOPE_KEY].__self__  # type: ignore[literal-required]
            alive.append(weakref.ref(protocol.conn))
            await socket.send_text("hello")
            await socket.receive()  # until the client goes
        finally:
            release(socket)

    with no_garbage_collector():
        async with serving(handler) as url:
            async with connect(url) as client:
                assert await client.recv() == "hello"
                if goes == "aborts":
                    client.transport.abort()
            for _ in range(100):  # the server's handler returns
                if alive and alive[0]() is None:
                    break
                await asyncio.sleep(0.01)
            kinds = [type(ref()).__name__ for ref in alive if ref() is not None]
    assert len(alive) == 1
    assert kinds == []
