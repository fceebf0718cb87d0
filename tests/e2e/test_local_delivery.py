"""An instance's own followers get its commits without waiting for Redis (issue 22 goal 1).

A committed event used to reach the sockets of the instance that wrote it only
by the bus: publish, Redis, back to the same process. The instance now hands
it to its own feed as it publishes (server/realtime/hub.py, ``events_committed``);
the bus's copy is a duplicate the feed drops. Here Redis holds every publish
(``CLIENT PAUSE ... WRITE``) while an edit commits: the other member's socket
on the same instance must get the event at once, exactly once, and nothing more
when Redis lets the publish through. The heal is set to a minute so that only
the direct hand-over can deliver within the wait.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from tests.servers import free_port, private_redis, project_with_editors, running_server, server_env
from tests.wsclient import ws

pytestmark = pytest.mark.e2e

PAUSE_MS = 6000


async def test_a_watcher_on_the_writing_instance_gets_the_event_while_redis_holds_publishes(
    cluster_db: str, tmp_path: Path
) -> None:
    port = free_port()
    env = server_env(
        cluster_db, REDIS_URL=f"redis://127.0.0.1:{port}/0", MOODBOARD_FEED_HEAL_MS="60000"
    )
    async with private_redis(port), running_server(env, tmp_path) as server:
        owner, pid, [(_, watcher_token)] = await project_with_editors(server, "Wat")
        async with ws(server.url, owner) as editor, ws(server.url, watcher_token) as watcher:
            for sock in (editor, watcher):
                await sock.expect("ready")
                await sock.send({"type": "join", "ref": "j", "project_id": pid})
                await sock.expect("joined", ref="j")
            room = await editor.request(
                {
                    "type": "edit",
                    "ref": "r",
                    "project_id": pid,
                    "op_id": "room-1",
                    "action": "create",
                    "entity": "room",
                    "data": {"name": "Hall", "room_type": "other"},
                }
            )
            assert room["type"] == "ack", room
            await watcher.expect("event", op_id="room-1")
            redis = aioredis.from_url(f"redis://127.0.0.1:{port}/0")
            try:
                await redis.execute_command("CLIENT", "PAUSE", PAUSE_MS, "WRITE")
                await editor.send(
                    {
                        "type": "edit",
                        "ref": "u",
                        "project_id": pid,
                        "op_id": "rename-1",
                        "action": "update",
                        "entity": "room",
                        "id": room["id"],
                        "base_version": room["version"],
                        "data": {"name": "Great hall"},
                    }
                )
                started = asyncio.get_running_loop().time()
                event = await watcher.expect("event", op_id="rename-1", timeout=PAUSE_MS / 2000)
                assert asyncio.get_running_loop().time() - started < PAUSE_MS / 2000
                assert event["data"] == {"name": "Great hall"}
                ack = await editor.expect("ack", ref="u", timeout=PAUSE_MS / 1000 + 10)
                assert ack["seq"] == event["seq"]
                # Redis let the publish through: its copy is not delivered a second time.
                with pytest.raises(TimeoutError):
                    await watcher.first(lambda f: f.get("seq") == event["seq"], timeout=1.0)
            finally:
                await redis.execute_command("CLIENT", "UNPAUSE")
                await redis.aclose()
