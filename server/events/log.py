"""Appending to and reading the per-project event log (docs/protocol.md §3.2).

The log is step 5 of the write path (docs/architecture.md §2).

``append`` must run inside the transaction of the change it records: it takes
the project's next ``seq`` with ``UPDATE project SET seq = seq + 1 ...
RETURNING seq``, which also serialises the writers of one project, and inserts
the event row. The caller publishes the returned events after commit.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from piccolo.table import Table

from server.events.tables import Event
from server.projects.tables import Project
from server.types import ProjectId, UserId

Entity = Literal["project", "room", "item", "member", "generation"]


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One committed (or about to be committed) event, as the event frame carries it."""

    project_id: ProjectId
    seq: int
    kind: str
    entity: Entity
    id: uuid.UUID
    version: int | None
    data: dict[str, Any]
    actor_id: UserId | None
    op_id: str | None
    at: datetime = field(default_factory=lambda: datetime.now(UTC))


async def next_seq(project_id: ProjectId) -> int:
    """Take the project's next seq (and its row lock until commit)."""
    rows = (
        await Project.update({Project.seq: Project.seq + 1})
        .where(Project.id == project_id)
        .returning(Project.seq)
    )
    if not rows:
        raise LookupError(f"project {project_id} does not exist")
    seq: int = rows[0]["seq"]
    return seq


async def append(
    project_id: ProjectId,
    *,
    kind: str,
    entity: Entity,
    entity_id: uuid.UUID,
    version: int | None,
    data: dict[str, Any],
    actor_id: UserId | None,
    op_id: str | None = None,
    seq: int | None = None,
) -> EventRecord:
    """Record one change in the project's log; call inside the change's transaction.

    Args:
        seq: a seq already taken with :func:`next_seq` in this transaction, or
            None to take the next one here.
    """
    if seq is None:
        seq = await next_seq(project_id)
    record = EventRecord(
        project_id=project_id,
        seq=seq,
        kind=kind,
        entity=entity,
        id=entity_id,
        version=version,
        data=data,
        actor_id=actor_id,
        op_id=op_id,
    )
    await Event.insert(
        Event(
            project_id=project_id,
            seq=seq,
            kind=kind,
            entity=entity,
            entity_id=entity_id,
            version=version,
            data=data,
            actor_id=actor_id,
            op_id=op_id,
            at=record.at,
        )
    )
    return record


async def fields_changed_since(
    project_id: ProjectId, entity: Entity, entity_id: uuid.UUID, base_version: int
) -> tuple[set[str], int]:
    """Which fields the updates after ``base_version`` changed, and how many versions they cover.

    The merge rule (server/projects/merge.py) needs both: when the log no
    longer holds every version after ``base_version`` (retention), the count
    falls short and the caller must assume every field changed.
    """
    rows = (
        await Event.select(Event.data, Event.version)
        .where(
            (Event.project_id == project_id)
            & (Event.entity == entity)
            & (Event.entity_id == entity_id)
            & (Event.version > base_version)
        )
        .output(load_json=True)
    )
    changed: set[str] = set()
    for row in rows:
        changed.update(row["data"])
    return changed, len({row["version"] for row in rows})


async def lock_row(table: type[Table], row_id: uuid.UUID) -> None:
    """Lock one row of a project's entity (room, item, generation) until commit.

    The lock order of every writer (docs/architecture.md §2): the entity rows
    it changes first, then the project's row (``lock_project``). Outside
    writers cannot take them the other way: their triggers run after their
    row is locked, and then lock the project's row for the next seq. A server
    write that locked the project first could deadlock with them. Nothing on
    SQLite (one writer at a time).
    """
    if table._meta.db.engine_type == "postgres":
        await (
            table.select(table._meta.primary_key)
            .where(table._meta.primary_key == row_id)
            .lock_rows("UPDATE")
        )


async def lock_project(project_id: ProjectId) -> dict[str, Any] | None:
    """Lock the project's row until commit (its writers serialise); its seq and deleted_at.

    On SQLite the IMMEDIATE write transaction already holds the database's
    write lock, so a plain read is enough there.
    """
    query = Project.select(Project.seq, Project.deleted_at).where(Project.id == project_id)
    if Project._meta.db.engine_type == "postgres":
        query = query.lock_rows("UPDATE")
    row: dict[str, Any] | None = await query.first()
    return row
