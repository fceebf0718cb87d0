"""Several server processes sharing PostgreSQL and Redis: fan-out, presence, revocation, drain."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from websockets.asyncio.client import connect

from server.realtime.envelope import project_channel
from server.settings import load_settings
from tests.conftest import free_port
from tests.servers import ServerProcess, call, private_redis, running_server, server_env
from tests.wsclient import Ws, signup, ws

pytestmark = pytest.mark.e2e


async def shared_project(
    a: ServerProcess,
) -> tuple[dict[str, Any], tuple[str, str], tuple[str, str]]:
    """A project owned by one user with a second user as editor; (project, owner, editor)."""
    suffix = uuid.uuid4().hex[:8]
    owner = await signup(a.url, "Owner", f"owner-{suffix}@example.com")
    editor = await signup(a.url, "Editor", f"editor-{suffix}@example.com")
    created = (await call(a, "POST", "/api/projects", owner[1], json={"name": "Flat"})).json()
    added = await call(
        a,
        "POST",
        f"/api/projects/{created['id']}/members",
        owner[1],
        json={"email": f"editor-{suffix}@example.com", "role": "editor"},
    )
    assert added.status_code == 201
    return created, owner, editor


async def subscribers(redis_url: str, database_url: str, project_id: str) -> int:
    """How many instances subscribe to the project's channel (PUBSUB NUMSUB)."""
    client = aioredis.from_url(redis_url)
    prefix = load_settings(server_env(database_url, REDIS_URL=redis_url)).redis_prefix
    try:
        [(_, count)] = await client.pubsub_numsub(prefix + project_channel(uuid.UUID(project_id)))
        return int(count)
    finally:
        await client.aclose()


async def joined(sock: Ws, project_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Wait for ready, join the project; (ready, joined) frames."""
    ready = await sock.expect("ready")
    reply = await sock.request({"type": "join", "ref": "j", "project_id": project_id})
    assert reply["type"] == "joined", reply
    return ready, reply


async def test_two_instances_share_events_presence_and_revocation(
    cluster_db: str, redis_url: str, tmp_path: Path
) -> None:
    """Clients on two instances see each other's presence and events; removal and logout cross."""
    env = server_env(cluster_db, REDIS_URL=redis_url)
    async with running_server(env, tmp_path) as a, running_server(env, tmp_path) as b:
        created, owner, editor = await shared_project(a)
        pid = created["id"]
        async with ws(a.url, owner[1]) as on_a, ws(b.url, editor[1]) as on_b:
            ready_a, _ = await joined(on_a, pid)
            ready_b, joined_b = await joined(on_b, pid)
            diff = await on_a.expect("presence_diff")
            assert list(diff["joins"]) == [ready_b["connection_id"]]
            # b's join saw a, connected to the other instance, in the presence map
            assert set(joined_b["presence"]) == {ready_a["connection_id"], ready_b["connection_id"]}
            await on_b.send({"type": "presence", "project_id": pid, "state": {"cursor": [3, 4]}})
            moved = await on_a.expect("presence_diff")
            assert moved["joins"][ready_b["connection_id"]]["state"] == {"cursor": [3, 4]}

            patched = await call(
                b,
                "PATCH",
                f"/api/projects/{pid}",
                editor[1],
                json={"base_version": 1, "description": "from b"},
            )
            assert patched.status_code == 200
            for sock in (on_a, on_b):
                event = await sock.expect("event")
                assert (event["kind"], event["seq"]) == ("project.updated", patched.json()["seq"])

            async with ws(a.url, owner[1]) as second_on_a:  # same project, same instance
                await joined(second_on_a, pid)
                assert (
                    await subscribers(redis_url, cluster_db, pid) == 2
                )  # one per instance, not per socket
            removed = await call(a, "DELETE", f"/api/projects/{pid}/members/{editor[0]}", owner[1])
            assert removed.status_code == 204
            left = await on_b.expect("left", timeout=1.0)  # evicted on the other instance
            assert left["reason"] == "access_revoked"
            assert (
                await subscribers(redis_url, cluster_db, pid) == 1
            )  # b's last local follower left

            async with ws(b.url, owner[1]) as second_on_b:
                await second_on_b.expect("ready")
                assert (await call(a, "POST", "/api/auth/logout", owner[1])).status_code == 204
                assert await on_a.closed(timeout=1.0) == 4401
                assert await second_on_b.closed(timeout=1.0) == 4401


async def test_a_killed_instance_leaves_presence(
    cluster_db: str, redis_url: str, tmp_path: Path
) -> None:
    """SIGKILL one instance: its clients' presence entries leave on the survivor (< 30 s)."""
    env = server_env(cluster_db, REDIS_URL=redis_url, MOODBOARD_PRESENCE_TTL_S="3")
    async with running_server(env, tmp_path) as survivor, running_server(env, tmp_path) as doomed:
        created, owner, editor = await shared_project(survivor)
        pid = created["id"]
        async with ws(survivor.url, owner[1]) as watcher, ws(doomed.url, editor[1]) as victim:
            await joined(watcher, pid)
            ready, _ = await joined(victim, pid)
            seen = await watcher.expect("presence_diff")
            assert ready["connection_id"] in seen["joins"]
            doomed.process.kill()
            await doomed.process.wait()
            leave = await watcher.expect("presence_diff", timeout=30)
            assert list(leave["leaves"]) == [ready["connection_id"]]
            async with httpx.AsyncClient(base_url=survivor.url) as client:
                assert (await client.get("/readyz")).status_code == 200


async def test_sigterm_drains_sockets_with_1012_and_exits_0(tmp_path: Path) -> None:
    """SIGTERM closes every socket with 1012 (spread over the drain window) and exits 0."""
    env = server_env(f"sqlite:///{tmp_path / 'm.sqlite3'}", MOODBOARD_DRAIN_WINDOW_MS="500")
    async with running_server(env, tmp_path) as server:
        _, token = await signup(server.url, "U", "drain@example.com")
        async with contextlib.AsyncExitStack() as stack:
            sockets = [await stack.enter_async_context(ws(server.url, token)) for _ in range(12)]
            for sock in sockets:
                await sock.expect("ready")
            server.process.send_signal(signal.SIGTERM)
            codes = await asyncio.gather(*(sock.closed(timeout=10) for sock in sockets))
            assert codes == [1012] * 12
            assert await asyncio.wait_for(server.process.wait(), 10) == 0


@contextlib.asynccontextmanager
async def a_reader_and_one_that_stops(
    server: ServerProcess, email: str
) -> AsyncIterator[tuple[str, str, Ws, Ws]]:
    """(token, project id, a socket that reads nothing, one that reads), both joined.

    The first has a 4 KiB receive buffer and a queue of one frame: once that
    is full it stops reading, and the server's writes to it back up.
    """
    _, token = await signup(server.url, "U", email)
    created = (await call(server, "POST", "/api/projects", token, json={"name": "F"})).json()
    pid = created["id"]
    small = socket.socket()
    small.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    small.connect(("127.0.0.1", server.port))
    # Neither pings: on a loaded machine a pong stuck behind megabytes of frames would
    # close the client 1011 after 20 s, which is not what these tests are about.
    async with (
        ws(server.url, token, sock=small, max_queue=1, ping_interval=None) as stopped,
        ws(server.url, token, ping_interval=None) as reading,
    ):
        await joined(stopped, pid)
        await joined(reading, pid)
        yield token, pid, stopped, reading


async def a_big_edit(server: ServerProcess, token: str, pid: str, version: int) -> str:
    """The project's description set to a 9 KB text, distinct per version (1..8999); the text.

    Each makes an event of about 9 KB for every member: a few hundred fill a slow reader.
    """
    description = "x" * (9000 - version)
    patched = await call(
        server,
        "PATCH",
        f"/api/projects/{pid}",
        token,
        json={"base_version": version, "description": description},
    )
    assert patched.status_code == 200
    return description


async def test_a_client_that_never_reads_is_closed_4503(tmp_path: Path) -> None:
    """A subscriber that never reads is closed with 4503 while another keeps receiving."""
    env = server_env(f"sqlite:///{tmp_path / 'm.sqlite3'}", MOODBOARD_OUTBOX_FRAMES="16")
    async with (
        running_server(env, tmp_path) as server,
        a_reader_and_one_that_stops(server, "slow@example.com") as (token, pid, slow, fast),
    ):
        received = 0
        for version in range(1, 400):
            description = await a_big_edit(server, token, pid, version)
            event = await fast.expect("event")
            assert event["data"]["description"] == description
            received += 1
            if "ws.too_slow" in server.log():  # its close began: it has 10 s to read it
                break
        # The slow socket's frames are stuck in our buffers: read what is there, then the close
        # (at once: a client that cannot take its close within 10 s is aborted, 1006).
        while True:
            try:
                await slow.recv(timeout=10)
            except Exception:
                break
        assert slow.connection.close_code == 4503
        assert received >= 16


async def test_sigterm_exits_in_time_while_a_client_has_stopped_reading(tmp_path: Path) -> None:
    """Issue 18 case 3: a client that stopped reading gets aborted; the others 1012; exit < 10 s."""
    env = server_env(
        f"sqlite:///{tmp_path / 'm.sqlite3'}",
        MOODBOARD_DRAIN_WINDOW_MS="500",
        MOODBOARD_OUTBOX_FRAMES="100000",  # the stalled socket must still be open at SIGTERM
    )
    async with (
        running_server(env, tmp_path) as server,
        a_reader_and_one_that_stops(server, "stalled@example.com") as (
            token,
            pid,
            stalled,
            reading,
        ),
    ):
        room = (
            await call(server, "POST", f"/api/projects/{pid}/rooms", token, json={"name": "R"})
        ).json()
        note = {"kind": "note", "data": {"text": "x" * 15_000}}
        items = f"/api/projects/{pid}/rooms/{room['id']}/items"
        for _ in range(20):  # 320 events of 15 KB: ~5 MB the stalled client never reads
            created = await asyncio.gather(
                *(call(server, "POST", items, token, json=note) for _ in range(16))
            )
            assert all(response.status_code == 201 for response in created)
        for _ in range(320):
            await reading.expect("event")
        assert stalled.connection.close_code is None
        server.process.send_signal(signal.SIGTERM)
        assert await reading.closed(timeout=10) == 1012
        assert await asyncio.wait_for(server.process.wait(), 10) == 0


async def test_a_burst_of_joins_waits_for_redis_connections_instead_of_failing(
    cluster_db: str, redis_url: str, tmp_path: Path
) -> None:
    """200 sockets joining at once through a 4-connection Redis pool all get ``joined``."""
    sockets = 200
    env = server_env(
        cluster_db,
        REDIS_URL=redis_url,
        MOODBOARD_REDIS_POOL_SIZE="4",
        MOODBOARD_MAX_SOCKETS_PER_USER=str(sockets),
    )
    async with running_server(env, tmp_path) as server:
        token = (await signup(server.url, "Crowd", f"crowd-{uuid.uuid4().hex[:8]}@example.com"))[1]
        pid = (await call(server, "POST", "/api/projects", token, json={"name": "Busy"})).json()[
            "id"
        ]
        url, auth = server.url.replace("http://", "ws://") + "/ws", f"Bearer {token}"
        opened = [
            Ws(connection)
            for connection in await asyncio.gather(
                *(connect(url, additional_headers={"Authorization": auth}) for _ in range(sockets))
            )
        ]
        try:
            for sock in opened:
                await sock.expect("ready")
            replies = await asyncio.gather(
                *(
                    sock.request({"type": "join", "ref": "j", "project_id": pid}, timeout=60)
                    for sock in opened
                )
            )
            assert [r["type"] for r in replies] == ["joined"] * sockets
            assert all(sock.connection.close_code is None for sock in opened)
            # The last join saw every socket in the presence map.
            assert max(len(r["presence"]) for r in replies) == sockets
            assert "publish_failed" not in server.log()
        finally:
            for sock in opened:  # cut, not closed one by one: 200 closing handshakes take long
                sock.connection.transport.abort()


async def test_a_join_while_redis_is_down_gets_an_error_and_the_socket_stays(
    tmp_path: Path,
) -> None:
    """With Redis gone, a join gets an ``internal`` error frame, not a 4500 close."""
    if shutil.which("redis-server") is None:
        pytest.skip("needs redis-server to run a private Redis")
    port = free_port()
    env = server_env(f"sqlite:///{tmp_path / 'm.sqlite3'}", REDIS_URL=f"redis://127.0.0.1:{port}/0")
    async with private_redis(port) as redis, running_server(env, tmp_path) as server:
        token = (await signup(server.url, "Solo", f"solo-{uuid.uuid4().hex[:8]}@example.com"))[1]
        pid = (await call(server, "POST", "/api/projects", token, json={"name": "P"})).json()["id"]
        async with ws(server.url, token) as first, ws(server.url, token) as second:
            await joined(first, pid)  # the instance follows the project already
            await second.expect("ready")
            redis.terminate()
            await redis.wait()
            reply = await second.request({"type": "join", "ref": "j", "project_id": pid}, 30)
            assert (reply["type"], reply["code"]) == ("error", "internal")
            assert (await second.request({"type": "ping", "ref": "p"}))["type"] == "pong"
