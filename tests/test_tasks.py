"""Background tasks (server/tasks.py): an exception nobody awaits is still logged."""

from __future__ import annotations

import asyncio

import structlog

from server.tasks import spawn


async def fail() -> None:
    raise ValueError("boom")


async def test_a_background_tasks_exception_is_logged_with_its_name() -> None:
    """A spawned task that raises leaves one error record naming it and the exception."""
    kept: set[asyncio.Task[object]] = set()
    with structlog.testing.capture_logs() as records:
        task = spawn(fail(), name="doomed", keep_in=kept)
        await asyncio.wait({task}, timeout=5)
        await asyncio.sleep(0)  # done-callbacks run in the next loop turn
    failed = [r for r in records if r["event"] == "task.failed"]
    assert [(r["log_level"], r["task"], r["coroutine"]) for r in failed] == [
        ("error", "doomed", "fail")
    ]
    assert "ValueError('boom')" in failed[0]["error"]
    assert kept == set()  # let go once done


async def test_a_cancelled_or_successful_task_logs_nothing() -> None:
    """Cancellation is how the server stops its tasks: not a failure."""
    with structlog.testing.capture_logs() as records:
        sleeper = spawn(asyncio.sleep(60), name="sleeper")
        done = spawn(asyncio.sleep(0), name="quick")
        await asyncio.sleep(0)
        sleeper.cancel()
        await asyncio.wait({sleeper, done}, timeout=5)
        await asyncio.sleep(0)
    assert [r for r in records if r["event"] == "task.failed"] == []
