"""Members' e-mail addresses reach owners only, over the socket as over REST.

Issue 19 item 8: a viewer's ``joined`` snapshot listed every member's e-mail
address, while REST shows the member list to owners only. Now a snapshot
carries names and roles for everyone and e-mail addresses for owners.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.servers import ServerProcess, call, running_server, server_env
from tests.wsclient import signup, ws

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ServerProcess]:
    """One embedded-mode server."""
    tmp: Path = tmp_path_factory.mktemp("privacy")
    async with running_server(server_env(f"sqlite:///{tmp / 'm.sqlite3'}"), tmp) as process:
        yield process


async def _snapshot_members(server: ServerProcess, token: str, pid: str) -> list[dict[str, str]]:
    async with ws(server.url, token) as sock:
        await sock.expect("ready")
        joined = await sock.request({"type": "join", "ref": "j", "project_id": pid})
        assert joined["type"] == "joined", joined
        members: list[dict[str, str]] = joined["snapshot"]["members"]
        return members


async def test_only_owners_see_member_emails_in_the_snapshot(server: ServerProcess) -> None:
    """The owner's snapshot lists e-mails; an editor's and a viewer's list names and roles only."""
    tag = uuid.uuid4().hex[:6]
    people = {
        role: (
            f"{role}-{tag}@example.com",
            await signup(server.url, role, f"{role}-{tag}@example.com"),
        )
        for role in ("owner", "editor", "viewer")
    }
    owner_token = people["owner"][1][1]
    project = (await call(server, "POST", "/api/projects", owner_token, json={"name": "P"})).json()
    for role in ("editor", "viewer"):
        added = await call(
            server,
            "POST",
            f"/api/projects/{project['id']}/members",
            owner_token,
            json={"email": people[role][0], "role": role},
        )
        assert added.status_code == 201, added.text
    seen = await _snapshot_members(server, owner_token, project["id"])
    assert sorted(m["email"] for m in seen) == sorted(email for email, _ in people.values())
    for role in ("editor", "viewer"):
        seen = await _snapshot_members(server, people[role][1][1], project["id"])
        assert sorted(m["role"] for m in seen) == ["editor", "owner", "viewer"]
        assert all(set(m) == {"user_id", "name", "role", "created_at"} for m in seen), seen
        assert not any("@" in str(value) for m in seen for value in m.values())


async def test_owners_and_others_joining_at_once_still_get_their_own_kind(
    server: ServerProcess,
) -> None:
    """Joins at once share snapshot reads (server/realtime/snapshots.py), never across kinds."""
    tag = uuid.uuid4().hex[:6]
    owner_email = f"o-{tag}@example.com"
    _, owner = await signup(server.url, "O", owner_email)
    viewer_email = f"v-{tag}@example.com"
    _, viewer = await signup(server.url, "V", viewer_email)
    project = (await call(server, "POST", "/api/projects", owner, json={"name": "P"})).json()
    added = await call(
        server,
        "POST",
        f"/api/projects/{project['id']}/members",
        owner,
        json={"email": viewer_email, "role": "viewer"},
    )
    assert added.status_code == 201, added.text
    tokens = [owner, viewer] * 6
    seen = await asyncio.gather(*(_snapshot_members(server, t, project["id"]) for t in tokens))
    for token, members in zip(tokens, seen, strict=True):
        emails = sorted(m.get("email", "") for m in members)
        assert emails == (sorted([owner_email, viewer_email]) if token == owner else ["", ""])
