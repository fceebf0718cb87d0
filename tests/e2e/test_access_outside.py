"""Access ended by an outside writer's SQL, or by time, ends live access (no control message).

The instance's access check reads everything only when the database's
access-change counter moved or a held session's expiry passed
(server/realtime/access_rounds.py): these are the two ways a change reaches
it with nothing published on the bus.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import asyncpg
import pytest

from tests.servers import project_with_editors, running_server, server_env
from tests.wsclient import ws

pytestmark = pytest.mark.e2e


async def test_an_outside_removal_and_an_expiry_end_live_access(
    cluster_db: str, redis_url: str, tmp_path: Path
) -> None:
    env = server_env(cluster_db, REDIS_URL=redis_url)
    async with running_server(env, tmp_path) as server:
        _, pid, [(member_id, member), (brief_id, brief)] = await project_with_editors(
            server, "Mem", "Bri"
        )
        db = await asyncpg.connect(cluster_db)
        try:
            # Brief's session is cut to a few seconds before her socket opens: from then on
            # nothing changes in the database; only the clock ends her session.
            await db.execute(
                "UPDATE user_session SET expires_at = now() + interval '4 seconds' "
                "WHERE user_id = $1",
                uuid.UUID(brief_id),
            )
            async with ws(server.url, member) as removed, ws(server.url, brief) as expiring:
                for sock in (removed, expiring):
                    await sock.expect("ready")
                    await sock.send({"type": "join", "ref": "j", "project_id": pid})
                    await sock.expect("joined", ref="j")
                await db.execute(  # an outside writer: no REST call, no control message
                    "DELETE FROM project_member WHERE project_id = $1 AND user_id = $2",
                    uuid.UUID(pid),
                    uuid.UUID(member_id),
                )
                left = await removed.expect("left", timeout=10)
                assert (left["project_id"], left["reason"]) == (pid, "access_revoked")
                assert await expiring.closed(timeout=15) == 4401
        finally:
            await db.close()
