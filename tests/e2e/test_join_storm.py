"""Many sockets joining one project at once, while it is edited (docs/protocol.md §3.2, §3.4).

The joins of a project that arrive while its snapshot is read share the next
read (server/realtime/snapshots.py) and the presence map a batch of enters
read (server/realtime/presence.py). Each joiner must still get a snapshot
that agrees with its seq, then every later event once and in order, and a
presence map with itself in it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest

from server.client import RestClient
from tests.servers import ServerProcess, running_server, server_env
from tests.wsclient import Ws, signup, ws

pytestmark = pytest.mark.e2e
JOINERS = 24
EDITS = 40


@pytest.fixture(scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ServerProcess]:
    """One embedded-mode server."""
    tmp: Path = tmp_path_factory.mktemp("join-storm")
    async with running_server(server_env(f"sqlite:///{tmp / 'm.sqlite3'}"), tmp) as process:
        yield process


async def _edit_item(sock: Ws, pid: str, item: str) -> int:
    """``EDITS`` updates of the item, one after another; the last ack's seq."""
    version, seq = 1, 0
    for n in range(EDITS):
        op = f"storm-{n}"
        ack = await sock.request(
            {
                "type": "edit",
                "ref": op,
                "op_id": op,
                "project_id": pid,
                "action": "update",
                "entity": "item",
                "id": item,
                "base_version": version,
                "data": {"x": n},
            }
        )
        assert ack["type"] == "ack", ack
        version, seq = ack["version"], ack["seq"]
        await asyncio.sleep(0.005)
    return seq


async def _join(
    sockets: AsyncExitStack, server: ServerProcess, token: str, pid: str
) -> tuple[Ws, dict[str, Any], str]:
    """A joined socket (closed with ``sockets``), its ``joined`` frame and its connection id."""
    sock = await sockets.enter_async_context(ws(server.url, token))
    ready = await sock.expect("ready")
    joined = await sock.request({"type": "join", "ref": "j", "project_id": pid})
    assert joined["type"] == "joined", joined
    return sock, joined, ready["connection_id"]


async def test_sockets_joining_at_once_during_edits_each_get_a_consistent_start(
    server: ServerProcess,
) -> None:
    """Each joiner: a snapshot that matches its seq, every later event once, itself in presence."""
    _, token = await signup(server.url, "Host", f"host-{uuid.uuid4().hex[:6]}@example.com")
    async with RestClient(server.url, token=token) as rest:
        project = await rest.create_project("Town hall")
        room = await rest.create_room(project.id, "r", "other")
        item = str((await rest.create_item(project.id, room.id, "note")).id)
    pid = str(project.id)
    async with AsyncExitStack() as sockets:
        writer = await sockets.enter_async_context(ws(server.url, token))
        await writer.expect("ready")
        joined = await writer.request({"type": "join", "ref": "w", "project_id": pid})
        assert joined["type"] == "joined", joined
        editing = asyncio.create_task(_edit_item(writer, pid, item))
        await asyncio.sleep(0.02)
        joiners = await asyncio.gather(
            *(_join(sockets, server, token, pid) for _ in range(JOINERS))
        )
        head = await editing
        for sock, joined, connection_id in joiners:
            assert connection_id in joined["presence"]
            start = joined["seq"]
            (mine,) = [i for i in joined["snapshot"]["items"] if i["id"] == item]
            seqs, version = [], mine["version"]
            while start + len(seqs) < head:
                frame = await sock.expect("event")
                seqs.append(frame["seq"])
                if frame["kind"] == "item.updated" and frame["id"] == item:
                    assert frame["version"] == version + 1, (frame, version)
                    version = frame["version"]
            assert seqs == list(range(start + 1, head + 1))
            assert version == EDITS + 1  # the snapshot's version plus every update after it
