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
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from server.events.tables import Event, Operation
from server.projects.tables import Project


@dataclass(frozen=True, slots=True)
class Pruned:
    events: int
    operations: int


async def prune(*, keep_events: int, keep_days: float, now: datetime | None = None) -> Pruned:
    """Delete what every project's log may forget; how many rows went."""
    cutoff = (now or datetime.now(UTC)) - timedelta(days=keep_days)
    removed = 0
    for project in await Project.select(Project.id, Project.seq).where(Project.seq > keep_events):
        rows = (
            await Event.delete()
            .where(
                (Event.project_id == project["id"])
                & (Event.seq <= project["seq"] - keep_events)
                & (Event.at < cutoff)
            )
            .returning(Event.id)
        )
        removed += len(rows)
    operations = await Operation.delete().where(Operation.at < cutoff).returning(Operation.id)
    return Pruned(events=removed, operations=len(operations))
