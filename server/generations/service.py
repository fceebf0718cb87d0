"""Generation requests: credits reserved with the queued row, listing, reading, cancelling.

A request reserves ``MOODBOARD_GENERATION_COST`` credits and inserts the
``queued`` generation in one transaction (402 when the balance is short; never
below zero, server/credits/service.py). Cancelling before success refunds the
cost once: the project row lock serialises a cancel with anything else that
finishes the generation. Every status change is a ``generation.*`` event.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from piccolo.engine.base import Engine

from server.access.principal import Principal
from server.credits.service import apply_change
from server.db.engine import write_transaction
from server.errors import BadRequest, Conflict, Forbidden, NotFound
from server.events import log as event_log
from server.events.notify import Notifier
from server.generations.tables import Generation
from server.log import get_logger
from server.projects import access
from server.projects.entities import generation_entity
from server.projects.tables import Room
from server.projects.validation import clean_json, clean_text
from server.types import ProjectId

log = get_logger(__name__)

FINISHED = ("succeeded", "failed", "canceled")
MAX_PROMPT = 2000
NO_GENERATION = "generation not found, or you have no access to it"


async def generation_row(generation_id: uuid.UUID) -> dict[str, Any] | None:
    """The generation's row (JSON columns decoded), or None."""
    row: dict[str, Any] | None = (
        await Generation.select()
        .where(Generation.id == generation_id)
        .output(load_json=True)
        .first()
    )
    return row


async def refund(row: dict[str, Any], *, actor_id: uuid.UUID | None = None) -> None:
    """Give a generation's cost back to its requester; call inside the finishing transaction.

    An erased requester gets nothing back (there is no balance left to credit).
    """
    if not row["cost"] or row["requested_by"] is None:
        return
    try:
        await apply_change(
            row["requested_by"],
            int(row["cost"]),
            "generation.refund",
            generation_id=row["id"],
            actor_id=actor_id,
        )
    except NotFound:  # no statement failed: the transaction goes on without the refund
        log.info("generation.refund_skipped", generation_id=str(row["id"]), reason="erased")


async def request(
    engine: Engine[Any],
    notifier: Notifier,
    caller: Principal,
    project_id: ProjectId,
    *,
    room_id: uuid.UUID,
    prompt: str,
    params: dict[str, Any],
    cost: int,
) -> dict[str, Any]:
    """Queue a generation, paying ``cost`` credits (InsufficientCredits: 402)."""
    prompt = clean_text("prompt", prompt, MAX_PROMPT)
    params = clean_json("params", params)
    generation_id = uuid.uuid4()
    async with write_transaction(engine):
        await access.require_locked(project_id, caller.user_id, "generation.request")
        if not await Room.exists().where((Room.id == room_id) & (Room.project_id == project_id)):
            raise BadRequest("room_id: not a room of this project", field="room_id")
        if cost:
            await apply_change(
                caller.user_id, -cost, "generation.reserve", generation_id=generation_id
            )
        await Generation.insert(
            Generation(
                id=generation_id,
                project_id=project_id,
                room_id=room_id,
                requested_by=caller.user_id,
                prompt=prompt,
                params=params,
                cost=cost,
            )
        )
        row = await generation_row(generation_id)
        assert row is not None
        entity = generation_entity(row)
        event = await event_log.append(
            project_id,
            kind="generation.queued",
            entity="generation",
            entity_id=generation_id,
            version=1,
            data=entity,
            actor_id=caller.user_id,
        )
    await notifier.events_committed([event])
    return entity


async def get(caller: Principal, generation_id: uuid.UUID) -> dict[str, Any]:
    """A generation of a project the caller can read (403 otherwise, missing or not)."""
    row = await generation_row(generation_id)
    if row is None or await access.role_on(row["project_id"], caller.user_id) is None:
        raise Forbidden(NO_GENERATION)
    return generation_entity(row)


async def history(
    caller: Principal,
    project_id: ProjectId,
    *,
    status: str | None,
    before: datetime | None,
    limit: int,
) -> list[dict[str, Any]]:
    """The project's generations, newest first, filtered by status, created before a time."""
    await access.require(project_id, caller.user_id, "project.read")
    query = Generation.select().where(Generation.project_id == project_id)
    if status is not None:
        query = query.where(Generation.status == status)
    if before is not None:
        query = query.where(Generation.created_at < before)
    rows = (
        await query.order_by(Generation.created_at, ascending=False)
        .limit(limit)
        .output(load_json=True)
    )
    return [generation_entity(row) for row in rows]


async def cancel(
    engine: Engine[Any], notifier: Notifier, caller: Principal, generation_id: uuid.UUID
) -> dict[str, Any]:
    """Cancel a generation that has not finished, refunding its cost (409 when finished)."""
    row = await generation_row(generation_id)
    if row is None:
        raise Forbidden(NO_GENERATION)
    project_id = ProjectId(row["project_id"])
    async with write_transaction(engine):
        await event_log.lock_row(Generation, generation_id)  # the lock order: row, project
        await event_log.lock_project(project_id)  # serialises with completion, and access
        if await access.role_on(project_id, caller.user_id) is None:
            raise Forbidden(NO_GENERATION)
        await access.require(project_id, caller.user_id, "generation.request")
        row = await generation_row(generation_id)
        assert row is not None
        if row["status"] in FINISHED:
            raise Conflict(
                f"the generation already finished ({row['status']})", status_now=row["status"]
            )
        now = datetime.now(UTC)
        version = int(row["version"]) + 1
        await Generation.update(
            {
                Generation.status: "canceled",
                Generation.finished_at: now,
                Generation.version: version,
                Generation.lease_owner: None,
                Generation.lease_expires_at: None,
            }
        ).where(Generation.id == generation_id)
        await refund(row, actor_id=caller.user_id)
        row = await generation_row(generation_id)
        assert row is not None
        entity = generation_entity(row)
        event = await event_log.append(
            project_id,
            kind="generation.canceled",
            entity="generation",
            entity_id=generation_id,
            version=version,
            data=entity,
            actor_id=caller.user_id,
        )
    await notifier.events_committed([event])
    return entity
