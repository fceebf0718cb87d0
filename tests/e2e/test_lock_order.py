"""One lock order for every writer: outside statements and server edits never deadlock (issue 18).

An outside writer's multi-row UPDATE locks each item row, then its triggers
lock the project row (to take the next seq). Server edits must take their
locks in the same order (the entity rows, then the project row): taken the
other way round, the two wait for each other until PostgreSQL's deadlock
detector aborts one of them.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.servers import call, running_server, server_env
from tests.wsclient import signup, ws

pytestmark = pytest.mark.e2e
ITEMS = 6
ROUNDS = 15  # 90 socket edits: inside the socket's rate burst (docs/protocol.md §6)


async def test_outside_statements_and_server_edits_never_deadlock(
    cluster_db: str, redis_url: str, tmp_path: Path
) -> None:
    """Whole-project outside UPDATEs racing socket and REST edits of the same items: none aborts."""
    env = server_env(cluster_db, REDIS_URL=redis_url)
    async with running_server(env, tmp_path) as server:
        _, token = await signup(server.url, "Own", f"o-{uuid.uuid4().hex[:8]}@example.com")
        pid = (await call(server, "POST", "/api/projects", token, json={"name": "P"})).json()["id"]
        room = (
            await call(server, "POST", f"/api/projects/{pid}/rooms", token, json={"name": "R"})
        ).json()
        items = [
            (
                await call(
                    server,
                    "POST",
                    f"/api/projects/{pid}/rooms/{room['id']}/items",
                    token,
                    json={"kind": "note"},
                )
            ).json()
            for _ in range(ITEMS)
        ]
        sql = await asyncpg.connect(cluster_db)
        deadlocks: list[str] = []

        async def outside_writer() -> None:
            for _ in range(ROUNDS):
                try:
                    await sql.execute(
                        "UPDATE item SET y = y + 1 WHERE project_id = $1", uuid.UUID(pid)
                    )
                except asyncpg.DeadlockDetectedError as exc:
                    deadlocks.append(str(exc))

        async def socket_editor() -> list[dict[str, Any]]:
            async with ws(server.url, token) as sock:
                await sock.expect("ready")
                await sock.send({"type": "join", "ref": "j", "project_id": pid})
                await sock.expect("joined", ref="j")
                answers = []
                for n in range(ROUNDS):
                    # Several updates at once: they go to the database as one batch.
                    for i, item in enumerate(items):
                        await sock.send(
                            {
                                "type": "edit",
                                "ref": f"{n}-{i}",
                                "op_id": uuid.uuid4().hex,
                                "project_id": pid,
                                "action": "update",
                                "entity": "item",
                                "id": item["id"],
                                "base_version": 1,
                                "data": {"x": float(n)},
                            }
                        )
                    for i in range(len(items)):
                        answers.append(await sock.first(lambda f, r=f"{n}-{i}": f.get("ref") == r))
                return answers

        try:
            _, answers = await asyncio.gather(outside_writer(), socket_editor())
        finally:
            await sql.close()
        assert deadlocks == []
        # Every edit got an answer a client can act on (stale bases merge or conflict).
        assert {a["type"] for a in answers} <= {"ack", "conflict"}
        assert "deadlock detected" not in server.log()
