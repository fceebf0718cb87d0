"""The lean WebSocket protocol (server/transport/lean.py): less kept per socket, same behaviour."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from litestar import WebSocket
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.asyncio.client import connect

from server.transport.lean import LeanWebSocketProtocol, ReceiveQueue, WritableFlag
from server.transport.upgrade import WebSocketProtocol
from server.transport.wire import SCOPE_KEY
from tests.transport.serving import serving

TIMEOUT_S = 5.0


async def test_the_receive_queue_gives_messages_in_order_and_waits_for_the_next() -> None:
    """Messages come out in the order they went in; a get waits until one arrives."""
    queue: ReceiveQueue[str] = ReceiveQueue()
    queue.put_nowait("a")
    queue.put_nowait("b")
    assert await queue.get() == "a"
    assert await queue.get() == "b"
    waiting = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    assert not waiting.done()
    queue.put_nowait("c")
    assert await asyncio.wait_for(waiting, TIMEOUT_S) == "c"
    assert queue.empty()
    with pytest.raises(asyncio.QueueEmpty):
        queue.get_nowait()


async def test_a_cancelled_receive_loses_no_message() -> None:
    """A get cancelled while waiting leaves the next message for the next get."""
    queue: ReceiveQueue[str] = ReceiveQueue()
    waiting = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    queue.put_nowait("kept")
    assert await asyncio.wait_for(queue.get(), TIMEOUT_S) == "kept"


async def test_the_writable_flag_holds_writers_while_cleared() -> None:
    """Writers wait while the transport is paused and all go on when it resumes."""
    flag = WritableFlag()
    flag.set()
    assert flag.is_set()
    assert await asyncio.wait_for(flag.wait(), TIMEOUT_S)
    flag.clear()
    writers = [asyncio.create_task(flag.wait()) for _ in range(3)]
    await asyncio.sleep(0)
    assert not any(w.done() for w in writers)
    flag.set()
    assert await asyncio.wait_for(asyncio.gather(*writers), TIMEOUT_S) == [True] * 3


@pytest.mark.parametrize("protocol", [LeanWebSocketProtocol, WebSocketProtocol])
async def test_an_open_socket_keeps_no_handshake_and_frames_flow(
    protocol: type[WebSocketsSansIOProtocol],
) -> None:
    """After the upgrade is answered the handshake is let go; a burst arrives whole, in order."""
    kept: list[Any] = []
    burst = [f"frame {n}" for n in range(200)]

    async def handler(socket: WebSocket[Any, Any, Any]) -> None:
        await socket.accept()
        server = socket.scope[SCOPE_KEY].__self__  # type: ignore[literal-required]
        kept.append((server.request, server.response))
        received = [await socket.receive_text() for _ in burst]
        await socket.send_text(str(received == burst))
        await socket.close()

    async with serving(handler, ws=protocol) as url, connect(url, compression=None) as client:
        for text in burst:  # faster than the app reads: uvicorn pauses and resumes reading
            await client.send(text)
        assert await asyncio.wait_for(client.recv(), TIMEOUT_S) == "True"
    assert kept == [(None, None)]
