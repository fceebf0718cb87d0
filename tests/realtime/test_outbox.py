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


def test_a_queue_emptied_takes_frames_again_within_its_bounds() -> None:
    """Drained (its buffer let go), the queue takes frames again, in order, up to its bounds."""
    box: Outbox[str] = Outbox(max_frames=2, max_bytes=5)
    assert len(box) == 0
    assert box.take() is None
    for _ in range(2):
        assert box.offer("ab")
        assert box.offer("cd")
        assert not box.offer("e")  # two frames at most
        assert (len(box), box.size) == (2, 4)
        assert (box.take(), box.take(), box.take()) == ("ab", "cd", None)
        assert (len(box), box.size) == (0, 0)
    assert box.offer("abc")
    assert not box.offer("def")
