"""One generation's row, read under the lock order, and its entity and event after a change.

Every transaction that changes a generation locks its row, then its
project's row (``event_log.lock_row``, ``lock_project``: the lock order of
docs/architecture.md §2), then reads the generation (``locked``); after
the change, ``logged`` appends the ``generation.*`` event carrying the whole
entity (docs/architecture.md §6). Shared by the queue's transitions and the
progress events.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from server.events import log as event_log
from server.events.log import EventRecord
from server.generations.service import generation_row
from server.generations.tables import Generation
from server.projects import resources
from server.projects.entities import generation_entity
from server.types import ProjectId


def ms(delta: timedelta) -> int:
    """A duration in whole milliseconds, never negative."""
    return max(0, int(delta.total_seconds() * 1000))


def project_id_of(value: Any) -> ProjectId:
    return ProjectId(value if isinstance(value, uuid.UUID) else uuid.UUID(str(value)))


async def locked(generation_id: uuid.UUID) -> dict[str, Any] | None:
    """The generation's row, read after locking it and then its project (the lock order)."""
    first = (
        await Generation.select(Generation.project_id).where(Generation.id == generation_id).first()
    )
    if first is None:
        return None
    await event_log.lock_row(Generation, generation_id)
    await event_log.lock_project(project_id_of(first["project_id"]))
    return await generation_row(generation_id)


async def entity(generation_id: uuid.UUID) -> dict[str, Any]:
    """The generation as docs/protocol.md's entity, as it is now."""
    row = (
        await Generation.select()
        .where(Generation.id == generation_id)
        .output(load_json=True)
        .first()
    )
    assert row is not None
    return generation_entity(row)


async def logged(
    generation_id: uuid.UUID, project_id: ProjectId, kind: str, version: int
) -> tuple[dict[str, Any], EventRecord]:
    """The entity now, and its event appended to the project's log."""
    now = await entity(generation_id)
    event = await event_log.append(
        project_id,
        kind=kind,
        entity="generation",
        entity_id=generation_id,
        version=version,
        data=now,
        actor_id=None,
    )
    return now, event


async def is_resource(project_id: ProjectId, asset: Any) -> bool:
    """Whether ``asset`` names a resource of the project."""
    try:
        resource_id = uuid.UUID(str(asset))
    except ValueError:
        return False
    return await resources.exists(project_id, resource_id)
