"""A resume (join with last_seq) checks access in the statement that reads the replay
(PostgreSQL) or apart (SQLite): on both, a refused resume gets nothing of the project.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.servers import ServerProcess, call, running_server, server_env
from tests.wsclient import Ws, signup, ws

pytestmark = pytest.mark.e2e


@pytest.fixture(params=["sqlite", "postgres"])
def server_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        url: str = request.getfixturevalue("cluster_db")
        return url
    return f"sqlite:///{tmp_path / 'm.sqlite3'}"


@pytest.fixture
async def server(server_db: str, tmp_path: Path) -> AsyncIterator[ServerProcess]:
    async with running_server(server_env(server_db), tmp_path) as process:
        yield process


async def account(server: ServerProcess) -> tuple[str, str]:
    return await signup(server.url, "r", f"r-{uuid.uuid4().hex[:10]}@example.com")


async def resume(sock: Ws, project_id: str, last_seq: int) -> dict[str, Any]:
    return await sock.request(
        {"type": "join", "ref": "r", "project_id": project_id, "last_seq": last_seq}
    )


async def rename(server: ServerProcess, token: str, pid: str, version: int, name: str) -> None:
    patched = await call(
        server, "PATCH", f"/api/projects/{pid}", token, json={"base_version": version, "name": name}
    )
    assert patched.status_code == 200, patched.text


async def test_a_member_resumes_and_a_stranger_is_refused_and_hears_nothing(
    server: ServerProcess,
) -> None:
    _, owner = await account(server)
    _, stranger = await account(server)
    created = (await call(server, "POST", "/api/projects", owner, json={"name": "A"})).json()
    pid, seq = created["id"], created["seq"]
    await rename(server, owner, pid, 1, "B")
    async with ws(server.url, owner) as member, ws(server.url, stranger) as outsider:
        await member.expect("ready")
        await outsider.expect("ready")
        joined = await resume(member, pid, seq)
        assert (joined["mode"], joined["seq"]) == ("replay", seq + 1)
        assert (await member.expect("event"))["data"] == {"name": "B"}
        for project_id in (pid, str(uuid.uuid4())):  # not a member; no such project
            refused = await resume(outsider, project_id, seq)
            assert (refused["type"], refused["code"]) == ("error", "forbidden")
        await rename(server, owner, pid, 2, "C")
        assert (await member.expect("event"))["data"] == {"name": "C"}
        # Written to every subscriber in one pass: had the outsider stayed subscribed,
        # its copy would be on the wire before this pong.
        assert await outsider.request(ping("p1")) == {"type": "pong", "ref": "p1"}


async def test_resuming_a_deleted_project_is_refused(server: ServerProcess) -> None:
    _, owner = await account(server)
    created = (await call(server, "POST", "/api/projects", owner, json={"name": "A"})).json()
    assert (
        await call(server, "DELETE", f"/api/projects/{created['id']}", owner)
    ).status_code == 204
    async with ws(server.url, owner) as sock:
        await sock.expect("ready")
        refused = await resume(sock, created["id"], created["seq"])
        assert (refused["type"], refused["code"]) == ("error", "forbidden")


def ping(ref: str) -> dict[str, str]:
    return {"type": "ping", "ref": ref}


async def test_a_team_grant_is_enough_to_resume(server: ServerProcess) -> None:
    """Access through a team (no direct membership) counts for a resume, as for a join."""
    _, owner = await account(server)
    _, teammate = await account(server)
    created = (await call(server, "POST", "/api/projects", owner, json={"name": "A"})).json()
    pid = created["id"]
    team = (await call(server, "POST", "/api/teams", owner, json={"name": "Studio"})).json()
    email = (await call(server, "GET", "/api/me", teammate)).json()["email"]
    added = await call(
        server, "POST", f"/api/teams/{team['id']}/members", owner, json={"email": email}
    )
    assert added.status_code == 201, added.text
    granted = await call(
        server,
        "POST",
        f"/api/projects/{pid}/teams",
        owner,
        json={"team_id": team["id"], "role": "viewer"},
    )
    assert granted.status_code == 201, granted.text
    await rename(server, owner, pid, 1, "B")
    async with ws(server.url, teammate) as sock:
        await sock.expect("ready")
        joined = await resume(sock, pid, created["seq"])
        assert (joined["type"], joined["mode"]) == ("joined", "replay")
        assert (await sock.expect("event"))["data"] == {"name": "B"}
