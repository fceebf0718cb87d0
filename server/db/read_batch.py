"""Concurrent calls of a hot fixed read share one statement: one per batch, not one per socket.

In a reconnect storm every socket authenticates and resumes at once, two
fixed statements per socket (server/db/raw.py: ``authenticate``,
``read_resume_as``), and asyncpg's client-side cost per statement (building
the message, the round trip's futures, decoding the answer) is the largest
single share of a resume's server CPU. So these reads run the way presence
enters and socket edits do (server/concurrency/group_commit.py): with one key
per engine, a read that finds no call in flight runs at once, in its
caller's task, as the single-row statement it always was (a lone read waits
for nothing and costs what it did); the reads that arrive while a call is in
flight go together in the engine's next call, one statement for up to
``MAX_BATCH`` of them, each caller answered from its own rows.

A statement is one snapshot, so each caller's rows are one consistent view,
as its own statement would have given. When the statement fails, each
caller of its batch gets the error; a caller that gave up while it waited (a
closed socket) is dropped. Only on PostgreSQL outside a transaction
(:func:`server.db.raw.statement_engine`): elsewhere callers keep their
general path.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Generic, Literal, TypeVar

from piccolo.engine.postgres import PostgresEngine

from server import metrics
from server.concurrency.group_commit import MAX_BATCH, GroupCommit
from server.db.engine import statement_runner

T = TypeVar("T")
R = TypeVar("R")

Read = Literal["session", "resume"]


class ReadBatch(Generic[T, R]):
    """One read, batched per engine: ``one`` answers a lone item, ``many`` a batch of two or more.

    ``one(runner, item)`` keeps the cheapest statement for a lone read;
    ``many(runner, items)`` answers every item, in order, from one statement.
    ``runner`` is the engine's statement runner (lane or pool).
    """

    def __init__(
        self,
        read: Read,
        one: Callable[[Any, T], Awaitable[R]],
        many: Callable[[Any, list[T]], Awaitable[list[R]]],
        *,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self._one = one
        self._many = many
        self._size = metrics.READ_BATCH.labels(read)
        # Keyed by the engine itself: a key lives only while its call is in flight,
        # so an engine is held no longer than its reads, and a new one never meets
        # an old one's state (as an id could).
        self._calls: GroupCommit[PostgresEngine, T, R] = GroupCommit(self._run, max_batch)

    async def __call__(self, engine: PostgresEngine, item: T) -> R:
        """``item``'s answer: read now when the engine has no call of this read in flight."""
        return await self._calls.submit(engine, item)

    async def _run(self, engine: PostgresEngine, items: list[T]) -> list[R]:
        self._size.observe(len(items))
        runner = statement_runner(engine)
        if len(items) == 1:
            return [await self._one(runner, items[0])]
        return await self._many(runner, items)
