"""Concurrent calls of a hot fixed read share one statement: one per batch, not one per socket.

In a reconnect storm every socket authenticates and resumes at once, two
fixed statements per socket (server/db/raw.py: ``authenticate``,
``read_resume_as``), and asyncpg's client-side cost per statement (building
the message, the round trip's futures, decoding the answer) is the largest
single share of a resume's server CPU. So these reads run the way presence
enters and socket edits do (server/concurrency/group_commit.py): per
database, a read that finds no call in flight runs at once, in its
caller's task, as the single-row statement it always was (a lone read waits
for nothing and costs what it did); the reads that arrive while a call is in
flight go together in the database's next call, one statement for up to
``MAX_BATCH`` of them, each caller answered from its own rows.

A statement is one snapshot, so each caller's rows are one consistent view,
as its own statement would have given. When the statement fails, each
caller of its batch gets the error; a caller that gave up while it waited (a
closed socket) is dropped. Only on PostgreSQL outside a transaction
(:meth:`server.db.database.Database.statement_runner`): elsewhere callers
keep their general path. Each database has its own batch of each read
(:meth:`server.db.database.Database.owned`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Generic, Literal, TypeVar, get_args

from server import metrics
from server.concurrency.group_commit import MAX_BATCH, GroupCommit
from server.db.database import Database

T = TypeVar("T")
R = TypeVar("R")

Read = Literal["session", "resume"]

# Each read's series is in /metrics from the start, at zero, before any database reads.
_SIZES = {read: metrics.READ_BATCH.labels(read) for read in get_args(Read)}


class ReadBatch(Generic[T, R]):
    """One read on one database, batched: ``one`` answers a lone item, ``many`` a batch.

    ``one(runner, item)`` keeps the cheapest statement for a lone read;
    ``many(runner, items)`` answers every item, in order, from one statement.
    ``runner`` is the database's statement runner (statement connections or pool).
    """

    def __init__(
        self,
        database: Database,
        read: Read,
        one: Callable[[Any, T], Awaitable[R]],
        many: Callable[[Any, list[T]], Awaitable[list[R]]],
        *,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self._database = database
        self._one = one
        self._many = many
        self._size = _SIZES[read]
        # One key: the database's calls of this read, one in flight at a time.
        self._calls: GroupCommit[None, T, R] = GroupCommit(self._run, max_batch)

    async def read(self, item: T) -> R:
        """``item``'s answer: read now when no call of this read is in flight."""
        return await self._calls.submit(None, item)

    async def _run(self, _key: None, items: list[T]) -> list[R]:
        self._size.observe(len(items))
        # Looked up when the statement runs: it may run later, in another task.
        runner = self._database.statements
        if len(items) == 1:
            return [await self._one(runner, items[0])]
        return await self._many(runner, items)
