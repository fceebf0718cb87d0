"""Access taken away while Redis is down still ends live access (issue 18, case 2).

A real server on PostgreSQL and a Redis of the test's own, stopped in the
middle. The removal and the logout commit (REST 204) but their control
messages cannot be published; the instance's own access check, which reads
the database, must still take the removed member out of the project and
close the logged-out socket, while Redis is down and after it is back.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.servers import (
    call,
    free_port,
    private_redis,
    project_with_editors,
    running_server,
    server_env,
)
from tests.wsclient import ws

pytestmark = pytest.mark.e2e


async def test_a_removal_and_a_logout_while_redis_is_down_end_live_access(
    cluster_db: str, tmp_path: Path
) -> None:
    """Removed member gets ``left`` (access_revoked), logged-out socket 4401, Redis down or not."""
    port = free_port()
    env = server_env(cluster_db, REDIS_URL=f"redis://127.0.0.1:{port}/0")
    async with private_redis(port) as redis, running_server(env, tmp_path) as server:
        owner, pid, [(member_id, member), (_, leaver)] = await project_with_editors(
            server, "Mem", "Lea"
        )
        async with ws(server.url, member) as removed, ws(server.url, leaver) as logged_out:
            for sock in (removed, logged_out):
                await sock.expect("ready")
                await sock.send({"type": "join", "ref": "j", "project_id": pid})
                await sock.expect("joined", ref="j")
            redis.terminate()
            await redis.wait()
            gone = await call(server, "DELETE", f"/api/projects/{pid}/members/{member_id}", owner)
            assert gone.status_code == 204
            assert (await call(server, "POST", "/api/auth/logout", leaver)).status_code == 204
            left = await removed.expect("left", timeout=10)
            assert (left["project_id"], left["reason"]) == (pid, "access_revoked")
            assert await logged_out.closed(timeout=10) == 4401
            async with private_redis(port):  # Redis is back: the removal still holds
                await removed.send({"type": "join", "ref": "again", "project_id": pid})
                refused = await removed.expect("error", ref="again", timeout=10)
                assert refused["code"] == "forbidden"
