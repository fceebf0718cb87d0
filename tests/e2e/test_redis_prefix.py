"""A restore rehearsal on production's Redis stays apart: MOODBOARD_REDIS_PREFIX (issue 23).

The rehearsal's database is a copy of production's (same projects, same
sessions), and both servers use the same Redis. With their default prefixes
(derived from the database names) neither sees the other's presence or
events; given the same prefix explicitly, they do (the leak the prefix exists
to prevent).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest

from server.settings import load_settings
from tests.conftest import PG_ADMIN_URL, drop_pg_database, with_database
from tests.servers import call, running_server, server_env
from tests.wsclient import Ws, signup, ws

pytestmark = pytest.mark.e2e

QUIET_S = 1.5  # how long a socket must hear nothing from the other deployment


async def _copy_database(source_url: str) -> str:
    """``CREATE DATABASE ... TEMPLATE``: the restored copy (no one may be connected to it)."""
    source = urlsplit(source_url).path.lstrip("/")
    name = f"{source[:40]}_restored"
    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{source}"')
    finally:
        await conn.close()
    return with_database(PG_ADMIN_URL, name)


async def _join(sock: Ws, pid: str) -> tuple[str, set[str]]:
    """(connection id, the connection ids in the joined presence)."""
    ready = await sock.expect("ready")
    reply = await sock.request({"type": "join", "ref": "j", "project_id": pid})
    assert reply["type"] == "joined", reply
    return ready["connection_id"], set(reply["presence"])


async def _heard_nothing(sock: Ws) -> None:
    try:
        frame = await sock.first(lambda f: f["type"] in ("event", "presence_diff"), QUIET_S)
    except TimeoutError:
        return
    pytest.fail(f"heard the other deployment: {frame}")


async def test_a_rehearsal_with_its_own_prefix_does_not_see_production(
    cluster_db: str, redis_url: str, tmp_path: Path
) -> None:
    """Same Redis, same project ids: apart by default, together with one explicit prefix."""
    production = server_env(cluster_db, REDIS_URL=redis_url)
    async with running_server(production, tmp_path) as a:
        _, token = await signup(a.url, "Owner", "owner-prefix@example.com")
        pid = (await call(a, "POST", "/api/projects", token, json={"name": "P"})).json()["id"]
    restored_url = await _copy_database(cluster_db)
    try:
        rehearsal = server_env(restored_url, REDIS_URL=redis_url)
        assert load_settings(rehearsal).redis_prefix != load_settings(production).redis_prefix
        shared = load_settings(production).redis_prefix
        leaking = server_env(restored_url, REDIS_URL=redis_url, MOODBOARD_REDIS_PREFIX=shared)
        async with running_server(production, tmp_path) as a, ws(a.url, token) as on_a:
            a_id, a_sees = await _join(on_a, pid)
            async with running_server(rehearsal, tmp_path) as r, ws(r.url, token) as on_r:
                r_id, r_sees = await _join(on_r, pid)
                assert (a_sees, r_sees) == ({a_id}, {r_id})  # nobody of the other deployment
                renamed = await call(
                    r, "PATCH", f"/api/projects/{pid}", token, json={"base_version": 1, "name": "R"}
                )
                assert renamed.status_code == 200
                assert (await on_r.expect("event"))["data"]["name"] == "R"
                await _heard_nothing(on_a)
            # The same prefix given to both: the rehearsal's socket is in production's presence.
            async with running_server(leaking, tmp_path) as r, ws(r.url, token) as on_r:
                _, r_sees = await _join(on_r, pid)
                assert a_id in r_sees
    finally:
        await asyncio.shield(drop_pg_database(restored_url))
