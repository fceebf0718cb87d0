"""The outbound queue: bounded, and a writer that wakes for a frame, a wake or the close."""

from __future__ import annotations

import asyncio

from server.realtime.outbox import Outbox


async def test_the_writer_wakes_for_a_frame_a_wake_or_the_close() -> None:
    """``wait`` returns on offer, wake and close; ``take`` gives the frames in order, then None."""
    box: Outbox[str] = Outbox(max_frames=4)
    waiting = asyncio.create_task(box.wait())
    await asyncio.sleep(0)
    box.wake()
    await asyncio.wait_for(waiting, 5)
    waiting = asyncio.create_task(box.wait())
    await asyncio.sleep(0)
    assert box.offer("a")
    await asyncio.wait_for(waiting, 5)
    assert box.offer("b")
    waiting = asyncio.create_task(box.wait())
    await asyncio.sleep(0)
    box.close()
    await asyncio.wait_for(waiting, 5)
    assert (box.take(), box.take(), box.take()) == ("a", "b", None)
    await asyncio.wait_for(box.wait(), 5)  # closed: returns at once
