"""Presence fan-out sends a large project's presence less often than a small one's (period())."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from server.delivery.stream import JoinedStream
from server.realtime import protocol as p
from server.realtime.bus import MemoryBroker
from server.realtime.hub import Realtime
from server.realtime.presence import MemoryPresence
from server.transport.wire import Outgoing


class Member:
    """What the hub needs of a joined socket: its id, user, streams, and presence delivery."""

    def __init__(self, project_id: uuid.UUID, n: int) -> None:
        self.id = f"test.{n}"
        self.user = p.UserInfo(id=uuid.uuid4(), name=f"m{n}", email=f"m{n}@example.com")
        self.streams: dict[uuid.UUID, Any] = {project_id: None}
        self.diffs = 0

    def deliver_presence(self, _project_id: uuid.UUID, _frame: Any) -> bool:
        self.diffs += 1
        return True


async def diffs_seen(members: int, seconds: float = 0.6) -> int:
    """Presence diffs one member gets while another moves its cursor every 5 ms."""
    project_id = uuid.uuid4()
    hub = Realtime(
        broker=MemoryBroker(), presence=MemoryPresence(), instance_id="test", presence_flush_s=0.01
    )
    await hub.start()
    try:
        joined = [Member(project_id, n) for n in range(members)]
        for member in joined:
            stream: JoinedStream[Outgoing] = JoinedStream(max_held=100)
            await hub.subscribe(member, project_id, stream)  # type: ignore[arg-type]  # a socket
        mover, watcher = joined[0], joined[1]
        await asyncio.sleep(0.05)
        watcher.diffs = 0
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while loop.time() < end:
            hub.presence.update(mover, project_id, {"x": loop.time()})  # type: ignore[arg-type]
            await asyncio.sleep(0.005)
        return watcher.diffs
    finally:
        await hub.stop()


async def test_a_large_projects_presence_goes_out_less_often_than_a_small_ones() -> None:
    small, large = await diffs_seen(3), await diffs_seen(100)
    assert small >= 10  # every 10 ms (presence_flush_s) while the cursor moves
    assert 1 <= large <= 5  # 100 members: every 200 ms, so about 3 in 0.6 s
