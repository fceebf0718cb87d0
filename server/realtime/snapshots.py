"""Snapshots for joins: the joins of a project arriving while its snapshot is read share the next.

A join without ``last_seq`` gets the project whole, as of a seq S
(docs/protocol.md §3.2). When many sockets join one project at once (a
town-hall board filling, everyone reconnecting after a deploy), each read
the same rows and encoded the same state: with a few hundred items that was
most of what a join cost (docs/performance.md, "Big rooms"). Here a project
has at most one snapshot read in flight on this instance (per kind: with or
without the members' e-mail addresses, which only owners see); the joins
arriving meanwhile share the next read, and its state is encoded once
(``msgspec.Raw``) for all of them.

Why a shared read keeps the join's promise: every caller subscribed to the
project's live stream before it asked, and the read it gets begins after it
asked (the read already in flight when it came is not its read), so its
snapshot is taken after its subscription, as a read of its own would be;
the handover then sends what came after S (docs/architecture.md §3).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import msgspec

from server.concurrency.group_commit import GroupCommit
from server.db.database import Database
from server.events.reads import read_snapshot_as

SHARED_MAX = 10_000  # joins answered by one read at most (each costs it nothing)
_encoder = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class SharedSnapshot:
    """A snapshot as ``joined.snapshot`` carries it: its seq, its state encoded once."""

    seq: int
    state: msgspec.Raw


class Snapshots:
    """The instance's snapshot reads for joins, one in flight per project and kind."""

    def __init__(self) -> None:
        self._reads: GroupCommit[tuple[uuid.UUID, bool], Database, SharedSnapshot] = GroupCommit(
            self._read, SHARED_MAX
        )

    async def read(
        self, database: Database, project_id: uuid.UUID, *, with_emails: bool
    ) -> SharedSnapshot:
        """The project's snapshot, read after this call began (maybe for other joins too).

        Raises:
            LookupError: the project does not exist.
        """
        return await self._reads.submit((project_id, with_emails), database)

    @staticmethod
    async def _read(key: tuple[uuid.UUID, bool], waiting: list[Database]) -> list[SharedSnapshot]:
        project_id, with_emails = key
        # Every caller passes the instance's one Database.
        taken = await read_snapshot_as(waiting[0], project_id, with_emails=with_emails)
        shared = SharedSnapshot(taken.seq, msgspec.Raw(_encoder.encode(taken.state)))
        return [shared] * len(waiting)
