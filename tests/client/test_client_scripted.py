"""The client against a scripted peer on a real socket: what a healthy server never does.

A real server never skips a seq or asks a client to slow down in a test's
time, so these cases use a small WebSocket server that plays the server's
side of docs/protocol.md §3 from a script.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve

from server.client import Backoff, Client, Unauthorized

TIMEOUT_S = 10.0
FAST = Backoff(base_s=0.01, cap_s=0.05)
PID = uuid.uuid4()
USER = {"id": str(uuid.uuid4()), "name": "Ann", "email": "ann@example.com"}
Script = Callable[[ServerConnection, int], Awaitable[None]]


@asynccontextmanager
async def scripted(script: Script) -> AsyncIterator[str]:
    """Serve ``script(socket, n)`` for the n-th connection (0-based); yield the base URL."""
    count = 0

    async def handler(socket: ServerConnection) -> None:
        nonlocal count
        count += 1
        await script(socket, count - 1)

    async with serve(handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"http://127.0.0.1:{port}"


async def send(socket: ServerConnection, **frame: Any) -> None:
    await socket.send(json.dumps(frame))


async def receive(socket: ServerConnection) -> dict[str, Any]:
    frame: dict[str, Any] = json.loads(await asyncio.wait_for(socket.recv(), TIMEOUT_S))
    return frame


def event(seq: int, x: int) -> dict[str, Any]:
    return {
        "type": "event",
        "project_id": str(PID),
        "seq": seq,
        "kind": "project.updated",
        "entity": "project",
        "id": str(PID),
        "version": seq + 1,
        "data": {"name": f"v{x}"},
        "actor_id": None,
        "op_id": None,
        "at": "2026-01-01T00:00:00Z",
    }


async def test_a_gap_drops_the_socket_and_resumes_from_the_last_applied_seq() -> None:
    """Events 1, 3: the client applies 1, reconnects with last_seq 1 and gets 2, 3 in order."""
    joins: list[dict[str, Any]] = []

    async def script(socket: ServerConnection, n: int) -> None:
        await send(socket, type="ready", protocol=1, connection_id=f"c{n}", user=USER)
        join = await receive(socket)
        joins.append(join)
        if n == 0:
            project = {"id": str(PID), "name": "v0", "version": 1, "seq": 0}
            snapshot = {"project": project, "rooms": [], "items": []}
            await send(
                socket,
                type="joined",
                ref=join["ref"],
                project_id=str(PID),
                seq=0,
                mode="snapshot",
                presence={},
                snapshot=snapshot,
            )
            await send(socket, **event(1, 1))
            await send(socket, **event(3, 3))  # 2 is missing
        else:
            await send(
                socket,
                type="joined",
                ref=join["ref"],
                project_id=str(PID),
                seq=3,
                mode="replay",
                presence={},
            )
            await send(socket, **event(2, 2))
            await send(socket, **event(3, 3))
        await socket.wait_closed()

    async with scripted(script) as url, Client(url, token="t", backoff=FAST) as client:
        stream = client.events(PID)
        state = await client.join(PID)
        seen = [(await stream.next(TIMEOUT_S)).seq for _ in range(3)]
        assert seen == [1, 2, 3]
        assert (client.gaps, client.connects) == (1, 2)
        assert [j.get("last_seq") for j in joins] == [None, 1]
        assert state.project is not None
        assert (state.seq, state.project["name"], state.project["version"]) == (3, "v3", 4)


async def test_an_unauthorized_close_is_not_retried() -> None:
    """A 4401 close ends the client with Unauthorized after one attempt, no reconnect loop."""
    attempts = 0

    async def script(socket: ServerConnection, n: int) -> None:
        nonlocal attempts
        attempts += 1
        await socket.close(4401, "invalid or expired token")

    async with scripted(script) as url:
        client = Client(url, token="stale", backoff=FAST)
        with pytest.raises(Unauthorized):
            await client.start()
        await client.close()
    assert attempts == 1


async def test_a_rate_limited_edit_is_sent_again_with_the_same_op_id() -> None:
    """A rate_limited error means 'not applied': the edit goes again and its ack completes it."""
    op_ids: list[str] = []

    async def script(socket: ServerConnection, n: int) -> None:
        await send(socket, type="ready", protocol=1, connection_id="c", user=USER)
        for answer in ("rate_limited", "ack"):
            edit = await receive(socket)
            op_ids.append(edit["op_id"])
            if answer == "rate_limited":
                await send(socket, type="error", ref=edit["ref"], code=answer, message="slow")
            else:
                await send(
                    socket,
                    type="ack",
                    ref=edit["ref"],
                    op_id=edit["op_id"],
                    id=edit["id"],
                    version=1,
                    seq=1,
                    merged=False,
                )
        await socket.wait_closed()

    async with scripted(script) as url, Client(url, token="t", backoff=FAST) as client:
        room = uuid.uuid4()
        result = await asyncio.wait_for(
            client.create(PID, "room", {"name": "Hall", "room_type": "other"}, id=room),
            TIMEOUT_S,
        )
        assert (result.id, result.seq) == (room, 1)
        assert op_ids[0] == op_ids[1] == result.op_id
