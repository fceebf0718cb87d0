"""Background tasks whose failures are seen.

asyncio reports the exception of a task nobody awaits only when the task is
garbage collected, if ever ("Task exception was never retrieved"), without
the context of what the task was. Every task the server starts and does not
await itself goes through :func:`spawn`, whose done-callback logs the
exception at once, with the task's name.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from server.log import get_logger

log = get_logger(__name__)
T = TypeVar("T")


def log_failure(task: asyncio.Future[Any]) -> None:
    """A done-callback: log the task's exception, if it ended with one (not a cancellation)."""
    if task.cancelled():
        return
    error = task.exception()
    if error is not None:
        name = task.get_name() if isinstance(task, asyncio.Task) else repr(task)
        coro = task.get_coro() if isinstance(task, asyncio.Task) else None
        log.error(
            "task.failed",
            task=name,
            coroutine=getattr(coro, "__qualname__", None),
            error=repr(error),
            exc_info=error,
        )


def spawn(
    coro: Coroutine[Any, Any, T],
    *,
    name: str | None = None,
    keep_in: set[asyncio.Task[Any]] | None = None,
) -> asyncio.Task[T]:
    """Start ``coro`` as a task whose exception is logged when it ends.

    Args:
        coro: what the task runs.
        name: the task's name, in the log line of its failure.
        keep_in: a set that holds the task until it is done (the event loop
            keeps only a weak reference to a task).
    """
    task = asyncio.get_running_loop().create_task(coro, name=name)
    task.add_done_callback(log_failure)
    if keep_in is not None:
        keep_in.add(task)
        task.add_done_callback(keep_in.discard)
    return task
