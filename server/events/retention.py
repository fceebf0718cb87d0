"""Event-log retention (issue "collaborative editing", item 8; docs/architecture.md §3).

A project's log keeps at least its last ``keep_events`` events, and every
event younger than ``keep_days``; older ones are deleted. A client resuming
from a ``last_seq`` the log no longer covers gets a snapshot instead
(server/events/reads.py, read_resume), and a stale write whose history
is gone conflicts rather than merges (server/projects/merge.py).
Outcomes of client operations kept in ``operation`` (conflicts, merged
acks) are kept for ``keep_days`` too: a client retrying such an op_id later
than that is treated as a new edit. A plain ack is its event row, so it is
remembered as long as the log keeps that event (at least ``keep_days``).

Deletes go ``batch`` rows per statement (server/db/batches.py), and the
projects are read ``batch`` at a time: the first prune of an old database is
many short transactions, not one long one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from server.db.batches import delete_in_batches
from server.events.tables import Event, Operation
from server.projects.tables import Project


@dataclass(frozen=True, slots=True)
class Pruned:
    events: int
    operations: int


async def prune(
    *, keep_events: int, keep_days: float, now: datetime | None = None, batch: int = 1000
) -> Pruned:
    """Delete what every project's log may forget; how many rows went."""
    cutoff = (now or datetime.now(UTC)) - timedelta(days=keep_days)
    removed = 0
    after = None  # projects in id order, a page at a time
    while True:
        where = Project.seq > keep_events
        if after is not None:
            where &= Project.id > after
        page = (
            await Project.select(Project.id, Project.seq)
            .where(where)
            .order_by(Project.id)
            .limit(batch)
        )
        for project in page:
            removed += await delete_in_batches(
                Event,
                (Event.project_id == project["id"])
                & (Event.seq <= project["seq"] - keep_events)
                & (Event.at < cutoff),
                batch=batch,
            )
        if len(page) < batch:
            break
        after = page[-1]["id"]
    operations = await delete_in_batches(Operation, Operation.at < cutoff, batch=batch)
    return Pruned(events=removed, operations=operations)
