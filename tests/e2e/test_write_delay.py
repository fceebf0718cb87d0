"""Frames held for the write delay (MOODBOARD_WRITE_DELAY_US) still arrive whole, in order, first.

Under uvicorn a socket's frames go out at most once per write delay while
they are dense (server/realtime/write_rounds.py). Here the delay is
the largest allowed (100 ms), so nearly every frame of these tests waits:
none may be lost, reordered or overtaken by the socket's close.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from server.realtime.socket_state import Limits
from tests.e2e.test_socket import flood, project, rename, user
from tests.servers import ServerProcess, running_server, server_env
from tests.wsclient import ws

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("write_delay")
    env = server_env(
        f"sqlite:///{tmp / 'm.sqlite3'}",
        MOODBOARD_WRITE_DELAY_US="100000",
        MOODBOARD_SOCKET_RATE="20",
        MOODBOARD_SOCKET_BURST="20",
    )
    async with running_server(env, tmp) as process:
        yield process


async def test_held_frames_arrive_in_order_at_every_socket(server: ServerProcess) -> None:
    """Events made back to back reach two sockets complete and in seq order, then a pong."""
    _, token = await user(server)
    created = await project(server, token)
    pid, edits = created["id"], 40
    async with ws(server.url, token) as a, ws(server.url, token) as b:
        for sock in (a, b):
            await sock.expect("ready")
            await sock.request({"type": "join", "ref": "j", "project_id": pid})
        await rename(server, token, pid, edits)
        for sock in (a, b):
            await sock.send({"type": "ping", "ref": "after"})
            frames = [await sock.recv()]
            while frames[-1]["type"] != "pong":
                frames.append(await sock.recv())
            events = [f for f in frames if f["type"] == "event"]  # (and b's join, at a)
            assert [f["seq"] for f in events] == [created["seq"] + 1 + i for i in range(edits)]
            assert [f["data"]["name"] for f in events] == [f"n{i}" for i in range(edits)]
            assert frames[-1] == {"type": "pong", "ref": "after"}


async def test_a_close_writes_the_held_frames_before_it(server: ServerProcess) -> None:
    """A flood's answers and rate_limited errors, held when the 4429 close comes, go out first."""
    _, token = await user(server)
    async with ws(server.url, token) as sock:
        await sock.expect("ready")
        kinds = await flood(sock)
        assert sock.connection.close_code == 4429
        assert kinds.count("pong") >= 20  # the burst's answers, none lost to the close
        # Every refusal before the one that closes: most were held when the close came.
        assert kinds.count("rate_limited") == Limits().max_violations - 1
