"""Writes race a change of access (issue 18, case 5): none commits under access already taken.

A real server on PostgreSQL. A member fires many writes at once (REST, the
general write path; socket edits, the edit functions) while an owner removes
them or makes them a viewer. Whatever the interleaving, the event log must
never show one of their writes after the change of access: every write is
checked under the project lock that the change takes too.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import asyncpg
import pytest

from tests.servers import call, running_server, server_env
from tests.wsclient import signup, ws

pytestmark = pytest.mark.e2e
ROUNDS = 4
WRITES = 24


async def writes_after_their_access_ended(sql: asyncpg.Connection, project_id: str) -> list[str]:
    """Events by a user at a seq after an event that took their edit rights away."""
    rows = await sql.fetch(
        "SELECT seq, kind, entity_id, actor_id, data FROM event WHERE project_id = $1 ORDER BY seq",
        uuid.UUID(project_id),
    )
    lost: dict[uuid.UUID, int] = {}  # user -> seq at which they lost the right to edit
    found = []
    for row in rows:
        if row["kind"] in ("member.deleted", "member.updated") and row["entity_id"] is not None:
            data = row["data"] or "{}"
            if row["kind"] == "member.deleted" or '"viewer"' in data:
                lost[row["entity_id"]] = row["seq"]
            else:
                lost.pop(row["entity_id"], None)
        elif row["kind"] == "member.created" and row["entity_id"] is not None:
            lost.pop(row["entity_id"], None)
        elif row["actor_id"] in lost:
            found.append(f"{row['kind']} at seq {row['seq']} after seq {lost[row['actor_id']]}")
    return found


async def test_no_write_commits_after_its_author_lost_access(
    cluster_db: str, redis_url: str, tmp_path: Path
) -> None:
    """Removal or downgrade racing a burst of the member's writes: none is logged after it."""
    env = server_env(cluster_db, REDIS_URL=redis_url)
    async with running_server(env, tmp_path) as server:
        owner_id, owner = await signup(server.url, "Own", f"o-{uuid.uuid4().hex[:8]}@example.com")
        member_id, member = await signup(server.url, "Mem", f"m-{uuid.uuid4().hex[:8]}@example.com")
        email = (await call(server, "GET", "/api/me", member)).json()["email"]
        pid = (await call(server, "POST", "/api/projects", owner, json={"name": "P"})).json()["id"]
        sql = await asyncpg.connect(cluster_db)
        try:
            for round_ in range(ROUNDS):
                added = await call(
                    server,
                    "POST",
                    f"/api/projects/{pid}/members",
                    owner,
                    json={"email": email, "role": "editor"},
                )
                assert added.status_code in (200, 201), added.text
                async with ws(server.url, member) as sock:
                    await sock.expect("ready")
                    await sock.send({"type": "join", "ref": "j", "project_id": pid})
                    await sock.expect("joined", ref="j")
                    rest_writes = [
                        call(
                            server, "POST", f"/api/projects/{pid}/rooms", member, json={"name": "r"}
                        )
                        for _ in range(WRITES)
                    ]
                    socket_writes = [
                        sock.send(
                            {
                                "type": "edit",
                                "ref": f"e{n}",
                                "op_id": uuid.uuid4().hex,
                                "project_id": pid,
                                "action": "create",
                                "entity": "room",
                                "data": {"name": f"s{n}"},
                            }
                        )
                        for n in range(WRITES)
                    ]
                    if round_ % 2:
                        change = call(
                            server,
                            "PATCH",
                            f"/api/projects/{pid}/members/{member_id}",
                            owner,
                            json={"role": "viewer"},
                        )
                    else:
                        change = call(
                            server, "DELETE", f"/api/projects/{pid}/members/{member_id}", owner
                        )
                    results = await asyncio.gather(*rest_writes, *socket_writes, change)
                    assert results[-1].status_code in (200, 204)
                if round_ % 2:  # a viewer: remove before the next round adds them back
                    gone = await call(
                        server, "DELETE", f"/api/projects/{pid}/members/{member_id}", owner
                    )
                    assert gone.status_code == 204
            assert owner_id
            assert await writes_after_their_access_ended(sql, pid) == []
        finally:
            await sql.close()
