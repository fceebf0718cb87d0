"""The hub's uncork: every socket's held frames go out together, at most once per write delay."""

from __future__ import annotations

import asyncio

from server.realtime.bus import MemoryBroker
from server.realtime.hub import Realtime
from server.realtime.presence import MemoryPresence


class Held:
    """What the hub needs of a socket with frames held for it: ``uncork``, and an id to log."""

    def __init__(self, name: str, broken: bool = False) -> None:
        self.id = name
        self.broken = broken
        self.writes = 0

    def uncork(self) -> None:
        self.writes += 1
        if self.broken:
            raise OSError("the transport broke")


def hub(write_delay_s: float) -> Realtime:
    return Realtime(
        broker=MemoryBroker(),
        presence=MemoryPresence(),
        instance_id="test",
        write_delay_s=write_delay_s,
    )


async def turns(n: int = 3) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def test_a_socket_that_fails_to_write_does_not_keep_frames_from_the_others() -> None:
    realtime = hub(write_delay_s=0)
    sockets = [Held("a"), Held("b", broken=True), Held("c")]
    for socket in sockets:
        realtime.uncork_soon(socket)  # type: ignore[arg-type]  # a socket, as far as the hub goes
    await turns()
    assert [s.writes for s in sockets] == [1, 1, 1]


async def test_frames_soon_after_a_write_wait_for_the_delay_then_go_together() -> None:
    realtime = hub(write_delay_s=0.05)
    first, second, third = Held("a"), Held("b"), Held("c")
    realtime.uncork_soon(first)  # type: ignore[arg-type]
    await turns()
    assert first.writes == 1  # quiet until now: written at the end of the turn
    realtime.uncork_soon(second)  # type: ignore[arg-type]
    await turns()
    realtime.uncork_soon(third)  # type: ignore[arg-type]
    await turns()
    assert (second.writes, third.writes) == (0, 0)  # dense: held for the delay
    await asyncio.sleep(0.1)
    assert (first.writes, second.writes, third.writes) == (1, 1, 1)  # then in one uncork
