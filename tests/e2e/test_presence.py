"""Coalesced presence (docs/protocol.md §3.4) seen from real sockets: everyone converges, nobody
is told about itself, a join and leave inside one batch leaves no ghost.

The servers run with a wide batch window (MOODBOARD_PRESENCE_FLUSH_MS=300), so
sockets joining together land in one ``presence_diff`` with several joins:
the frame whose per-socket copies drop each source's own entry.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.servers import ServerProcess, running_server, server_env
from tests.wsclient import TIMEOUT_S, Ws, signup, ws

pytestmark = pytest.mark.e2e
WINDOW_MS = "300"


class Member:
    """One socket in a project: its presence map as a client keeps it (joined + diffs)."""

    def __init__(self, sock: Ws, connection_id: str) -> None:
        self.sock = sock
        self.id = connection_id
        self.view: dict[str, dict[str, Any]] = {}
        self.told_about_itself = 0  # diffs whose joins held this socket's own entry

    async def join(self, project_id: str) -> None:
        reply = await self.sock.request({"type": "join", "ref": "j", "project_id": project_id})
        assert reply["type"] == "joined", reply
        assert self.id in reply["presence"]  # its own entry is in joined.presence
        self.view = dict(reply["presence"])

    async def leave(self, project_id: str) -> None:
        reply = await self.sock.request({"type": "leave", "ref": "l", "project_id": project_id})
        assert reply["type"] == "left", reply

    async def until(self, done: Callable[[Member], bool], timeout_s: float = TIMEOUT_S) -> None:
        """Apply presence diffs (leaves, then joins, as the client library does) until ``done``."""
        while not done(self):
            diff = await self.sock.expect("presence_diff", timeout=timeout_s)
            assert not set(diff["joins"]) & set(diff["leaves"]), diff
            if self.id in diff["joins"]:
                self.told_about_itself += 1
            for connection_id in diff["leaves"]:
                self.view.pop(connection_id, None)
            self.view.update(diff["joins"])

    async def marker(self, project_id: str, mark: int) -> None:
        """Set a state that the others wait for: it goes out after every earlier change."""
        await self.sock.send({"type": "presence", "project_id": project_id, "state": {"m": mark}})

    def saw_marker(self, of: Member, mark: int) -> bool:
        return self.view.get(of.id, {}).get("state") == {"m": mark}


@contextlib.asynccontextmanager
async def members(urls: list[str], token: str) -> AsyncIterator[list[Member]]:
    """A socket on each of ``urls`` (ready, not joined)."""
    async with contextlib.AsyncExitStack() as stack:
        out = []
        for url in urls:
            sock = await stack.enter_async_context(ws(url, token))
            ready = await sock.expect("ready")
            out.append(Member(sock, ready["connection_id"]))
        yield out


async def board(server: ServerProcess) -> tuple[str, str]:
    """A user and a project of theirs: (token, project id)."""
    _, token = await signup(server.url, "p", f"p-{uuid.uuid4().hex[:10]}@example.com")
    async with httpx.AsyncClient(base_url=server.url) as client:
        response = await client.post(
            "/api/projects", json={"name": "Flat"}, headers={"Authorization": f"Bearer {token}"}
        )
        response.raise_for_status()
        return token, str(response.json()["id"])


async def sync(watcher: Member, others: list[Member], project_id: str, mark: int) -> None:
    """Wait until everyone saw ``watcher``'s marker: every earlier change reached them."""
    await watcher.marker(project_id, mark)
    await asyncio.gather(*(m.until(lambda m: m.saw_marker(watcher, mark)) for m in others))


async def joining_together_converges(urls: list[str], server: ServerProcess) -> None:
    token, pid = await board(server)
    async with members(urls, token) as crowd:
        watcher, joiners = crowd[0], crowd[1:]
        await watcher.join(pid)
        await asyncio.gather(*(m.join(pid) for m in joiners))  # one batch, several sources
        everyone = {m.id for m in crowd}
        await asyncio.gather(*(m.until(lambda m: set(m.view) == everyone) for m in crowd))
        await sync(watcher, joiners, pid, 1)
        for m in crowd:
            assert set(m.view) == everyone, (m.id, m.view)
            assert m.told_about_itself == 0, m.id


@pytest.fixture
async def embedded(tmp_path: Path) -> AsyncIterator[ServerProcess]:
    env = server_env(f"sqlite:///{tmp_path / 'm.sqlite3'}", MOODBOARD_PRESENCE_FLUSH_MS=WINDOW_MS)
    async with running_server(env, tmp_path) as server:
        yield server


async def test_sockets_joining_together_all_see_each_other_and_never_themselves(
    embedded: ServerProcess,
) -> None:
    """Six sockets join at once: each ends with all seven entries, none told of its own join."""
    await joining_together_converges([embedded.url] * 7, embedded)


async def test_a_join_and_leave_inside_one_batch_leaves_no_ghost(
    embedded: ServerProcess,
) -> None:
    """A socket joining and leaving within one window is gone for everyone, including a socket
    whose joined.presence (read meanwhile) held it."""
    token, pid = await board(embedded)
    async with members([embedded.url] * 4, token) as (watcher, passing, late, first):
        await watcher.join(pid)
        await first.join(pid)  # goes out at once: the window after it is a batch
        await watcher.until(lambda m: first.id in m.view)
        await passing.join(pid)
        await late.join(pid)  # its joined.presence holds `passing`
        assert passing.id in late.view
        await passing.leave(pid)
        await sync(watcher, [first, late], pid, 1)
        await sync(first, [watcher], pid, 2)
        here = {watcher.id, first.id, late.id}
        for m in (watcher, first, late):
            assert set(m.view) == here, (m.id, m.view)


async def test_leaving_and_joining_again_inside_one_batch_keeps_the_socket(
    embedded: ServerProcess,
) -> None:
    """Leave then join again within one window: the others still have it, with its new entry."""
    token, pid = await board(embedded)
    async with members([embedded.url] * 3, token) as (watcher, other, mover):
        await watcher.join(pid)
        await other.join(pid)
        await mover.join(pid)
        everyone = {watcher.id, other.id, mover.id}
        await asyncio.gather(
            *(m.until(lambda m: set(m.view) == everyone) for m in (watcher, other))
        )
        await mover.marker(pid, 7)
        await watcher.until(lambda m: m.saw_marker(mover, 7))
        await mover.leave(pid)
        await mover.join(pid)  # a fresh entry: the state of before is gone
        await sync(watcher, [other, mover], pid, 2)
        await sync(other, [watcher], pid, 3)
        for m in (watcher, other, mover):
            assert set(m.view) == everyone, (m.id, m.view)
            assert m.view[mover.id]["state"] == {}
        assert mover.told_about_itself == 0


async def test_sockets_on_two_instances_joining_together_converge(
    cluster_db: str, redis_url: str, tmp_path: Path
) -> None:
    """Over Redis: sockets on two instances join at once; each sees all, never itself."""
    env = server_env(cluster_db, REDIS_URL=redis_url, MOODBOARD_PRESENCE_FLUSH_MS=WINDOW_MS)
    async with running_server(env, tmp_path) as a, running_server(env, tmp_path) as b:
        await joining_together_converges([a.url, b.url, a.url, b.url, a.url, b.url], a)


async def test_leaves_still_waiting_for_their_batch_go_out_when_an_instance_stops(
    cluster_db: str, redis_url: str, tmp_path: Path
) -> None:
    """SIGTERM closes an instance's sockets; their leaves, batched, still reach the others."""
    env = server_env(
        cluster_db,
        REDIS_URL=redis_url,
        MOODBOARD_PRESENCE_FLUSH_MS="3000",  # the leaves are surely waiting when it stops
        MOODBOARD_DRAIN_WINDOW_MS="0",
    )
    async with running_server(env, tmp_path) as a, running_server(env, tmp_path) as b:
        token, pid = await board(a)
        async with members([a.url, b.url, b.url], token) as (watcher, *leaving):
            await watcher.join(pid)
            for m in leaving:
                await m.join(pid)
            everyone = {watcher.id, *(m.id for m in leaving)}
            # Each diff may wait a flush period on each instance (twice 3 s): on a loaded
            # machine (CI's) that has taken longer than the usual 10 s.
            await watcher.until(lambda m: set(m.view) == everyone, timeout_s=3 * TIMEOUT_S)
            assert await b.stop() == 0
            await watcher.until(lambda m: set(m.view) == {watcher.id}, timeout_s=3 * TIMEOUT_S)
