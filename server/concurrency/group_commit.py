"""Group commit per project: one write in flight, the ones arriving meanwhile go together next.

A project's writers serialise on its row until commit (docs/architecture.md §2, the write
path), so two socket edits of one project can never run side by side in
the database: the second waits for the first's lock, holding a connection,
and then pays a commit (a WAL flush) of its own. Here a project has at most
one call in flight from this instance; edits that arrive meanwhile wait in
memory and go to the database together, as one call, in one transaction with
one commit, as soon as it returns. A lone edit waits for nothing; a busy
project's edits share their lock, their round trip and their flush.

Different projects never wait for each other. This module only orders the
calls; what a call does (and that its items are independent of one
another) is the caller's: see ``server/projects/edits.py``. Presence enters
use it too, with one key for the whole instance: the enters arriving while
one script call is in flight go to Redis together in the next
(``server/realtime/presence.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from server.tasks import spawn

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")
R = TypeVar("R")

MAX_BATCH = 64  # items in one call at most; the rest wait for the next


class GroupCommit(Generic[K, T, R]):
    """Runs ``run(key, items)`` for one key at a time, batching what arrives meanwhile.

    ``run`` answers one result per item, in order. When it raises, every
    item of that call gets the error.
    """

    def __init__(
        self, run: Callable[[K, list[T]], Awaitable[list[R]]], max_batch: int = MAX_BATCH
    ) -> None:
        self._run = run
        self._max_batch = max_batch
        # A key is here while a call of it is in flight; its list holds who waits for the next.
        self._waiting: dict[K, list[tuple[T, asyncio.Future[R]]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def busy(self, key: K) -> bool:
        """Whether a call of ``key`` is in flight."""
        return key in self._waiting

    async def submit(self, key: K, item: T) -> R:
        """``item``'s result: run now when ``key`` is idle, else in the key's next call."""
        waiting = self._waiting.get(key)
        if waiting is None:  # idle: run it alone, in the caller's task (no hand-over)
            self._waiting[key] = []
            try:
                (result,) = await self._run(key, [item])
                return result
            finally:
                self._next(key)
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        waiting.append((item, future))
        return await future

    def _next(self, key: K) -> None:
        """The key's call returned: start the next one with what waits, or mark it idle.

        An item whose caller gave up while it waited (a closed socket) is dropped,
        never run: its caller may be undoing it already (a leave after a cancelled
        join) and must not see it done after that.
        """
        waiting = self._waiting.get(key, [])
        batch: list[tuple[T, asyncio.Future[R]]] = []
        taken = 0
        for pending in waiting:
            if len(batch) == self._max_batch:
                break
            taken += 1
            if not pending[1].done():
                batch.append(pending)
        if not batch:
            self._waiting.pop(key, None)
            return
        del waiting[:taken]
        spawn(self._run_batch(key, batch), name="group-commit", keep_in=self._tasks)

    async def _run_batch(self, key: K, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            results = await self._run(key, [item for item, _ in batch])
        except asyncio.CancelledError:  # the loop is shutting down: no call will follow
            for _, future in batch + self._waiting.pop(key, []):
                future.cancel()
            raise
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
        else:
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():  # its caller gave up (a closed socket): nobody to tell
                    future.set_result(result)
        finally:
            self._next(key)
