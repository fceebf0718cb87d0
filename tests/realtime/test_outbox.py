"""The outbound queue's writer hand-off, and writing in place until a write has to wait."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

import pytest

from server.realtime.outbox import Outbox, start


async def test_a_write_that_never_waits_finishes_in_place() -> None:
    """``start`` runs a coroutine that does not wait to its end and returns None."""
    done: list[str] = []

    async def write() -> None:
        done.append("written")

    assert start(write()) is None
    assert done == ["written"]


async def test_a_write_that_waits_is_finished_by_whoever_awaits_the_rest() -> None:
    """A write blocked on a full transport resumes where it stopped, with the awaited value."""
    drained: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    steps: list[str] = []

    async def write() -> None:
        steps.append("started")
        steps.append(await drained)
        await asyncio.sleep(0)  # a second wait: the rest goes on in the awaiting task
        steps.append("finished")

    rest = start(write())
    assert rest is not None
    assert steps == ["started"]
    task = asyncio.create_task(_finish(rest))
    drained.set_result("drained")
    await asyncio.wait_for(task, 5)
    assert steps == ["started", "drained", "finished"]


async def _finish(rest: Awaitable[None]) -> None:
    await rest


async def test_cancelling_the_rest_cancels_the_write() -> None:
    """Cancelling the task that finishes a blocked write raises inside the write (cleanup runs)."""
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    cleaned: list[bool] = []

    async def write() -> None:
        try:
            await never
        finally:
            cleaned.append(True)

    rest = start(write())
    assert rest is not None
    task = asyncio.create_task(_finish(rest))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cleaned == [True]


async def test_an_error_before_waiting_reaches_the_caller() -> None:
    """A write that fails at once (the peer is gone) raises from ``start`` itself."""

    async def write() -> None:
        raise ConnectionResetError("gone")

    with pytest.raises(ConnectionResetError):
        start(write())


async def test_the_writer_wakes_for_a_frame_a_wake_or_the_close() -> None:
    """``wait`` returns on offer, wake and close; ``next`` drains in order, then None."""
    box = Outbox(max_frames=4)
    waiting = asyncio.create_task(box.wait())
    await asyncio.sleep(0)
    box.wake()
    await asyncio.wait_for(waiting, 5)
    waiting = asyncio.create_task(box.next())
    await asyncio.sleep(0)
    assert box.offer("a")
    assert box.offer("b")
    assert await asyncio.wait_for(waiting, 5) == "a"
    box.close()
    assert await box.next() == "b"
    assert await box.next() is None
