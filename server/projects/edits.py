"""Versioned edits of projects, rooms and items: the write path of docs/architecture.md §2.

One transaction per change: permission check, project row lock, the op_id's
earlier outcome if any, the version-checked write (field-level merge of
docs/protocol.md §3.3), the event row with the next seq, the op's outcome; commit;
then the events go to the notifier. Socket ``edit`` frames and REST writes
both come through :func:`apply`.

On PostgreSQL the most common edit, a room or item update whose base is
current, first tries one database function: the same steps in one statement
and one round trip (server/projects/edit_functions.py). It writes nothing
for an edit it cannot simply apply and answers NULL for it; the general path
below then gives the answer. So both paths behave the same, and SQLite only
ever takes the general path.

Where an op's outcome is kept: a plain ack (not merged) is its event row,
which carries the op_id (unique per project), the entity's id, the new
version and the seq; only conflicts and merged acks, which no event
describes, get an ``operation`` row. That spares the common edit a second
row (see the migration "a plain ack's outcome is its event row").
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import msgspec
from piccolo.engine.postgres import PostgresEngine
from piccolo.table import Table

from server import metrics
from server.db.database import Database
from server.db.engine import write_transaction
from server.errors import BadRequest, NotFound, ServerError
from server.events import log as event_log
from server.events.log import EventRecord
from server.events.notify import Notifier
from server.events.tables import Event, Operation
from server.projects import access
from server.projects.edit_functions import Update, quick_updates
from server.projects.entities import item_entity, plain, project_entity, room_entity
from server.projects.merge import Apply, decide
from server.projects.tables import Item, Project, Room
from server.projects.validation import EditableEntity, clean
from server.timestamps import rfc3339
from server.types import ProjectId, UserId

Action = Literal["create", "update", "delete"]


@dataclass(frozen=True, slots=True)
class EditRequest:
    """One edit, as the socket's ``edit`` frame or a REST write describes it."""

    project_id: uuid.UUID
    action: Action
    entity: EditableEntity
    id: uuid.UUID | None = None
    base_version: int | None = None
    room_id: uuid.UUID | None = None
    data: dict[str, Any] | None = None
    op_id: str | None = None


class Acked(msgspec.Struct, tag="ack", frozen=True):
    """The edit committed (``merged`` when its base was stale but nothing overlapped)."""

    id: uuid.UUID
    version: int
    seq: int
    merged: bool


class Conflicted(msgspec.Struct, tag="conflict", frozen=True):
    """Nothing was written: the fields another version changed, and the entity now."""

    entity: str
    id: uuid.UUID
    base_version: int | None
    current_version: int | None
    current: dict[str, Any] | None
    fields: list[str]


Outcome = Acked | Conflicted
_outcomes: msgspec.json.Decoder[Outcome] = msgspec.json.Decoder(Outcome)

_TABLES: dict[str, tuple[type[Table], Callable[[dict[str, Any]], dict[str, Any]]]] = {
    "project": (Project, project_entity),
    "room": (Room, room_entity),
    "item": (Item, item_entity),
}


@dataclass(slots=True)
class _Work:
    """What one edit produced inside its transaction."""

    outcome: Outcome
    entity: dict[str, Any] | None
    events: list[EventRecord]


async def apply(
    database: Database,
    notifier: Notifier,
    user_id: UserId,
    request: EditRequest,
    *,
    want_entity: bool = True,
) -> tuple[Outcome, dict[str, Any] | None]:
    """Apply one edit; the outcome (ack or conflict) and the entity after it (None if gone).

    Args:
        want_entity: False when the caller only needs the outcome (a socket
            edit): the entity may then be None although it exists, which lets
            PostgreSQL take the one-round-trip path.

    Raises:
        Forbidden: the caller may not edit the project (or cannot see it).
        BadRequest / ValidationFailed: a bad field, naming it; nothing written.
        NotFound: the id is not an entity of this project.
    """
    project_id = ProjectId(request.project_id)
    engine = database.engine
    if not want_entity and isinstance(engine, PostgresEngine):
        work = await _quick_update(database, project_id, user_id, request)
        if work is not None:
            metrics.edit_outcome(work.outcome)
            await notifier.events_committed(work.events)
            return work.outcome, None
    async with write_transaction(engine):
        # The lock order (docs/architecture.md §2): the entity's row, then the project's.
        changed = _TABLES.get(request.entity) if request.entity != "project" else None
        if request.action != "create" and changed is not None and request.id is not None:
            await event_log.lock_row(changed[0], request.id)
        await access.require_locked(project_id, user_id, "project.edit")
        if request.op_id is not None:
            earlier = await earlier_outcome(project_id, request.op_id, user_id)
            if earlier is not None:
                return earlier, None
        work = await _dispatch(project_id, user_id, request)
        if request.op_id is not None and not _told_by_event(work.outcome):
            await Operation.insert(
                Operation(
                    project_id=project_id,
                    op_id=request.op_id,
                    user_id=user_id,
                    outcome=msgspec.json.decode(msgspec.json.encode(work.outcome)),
                )
            )
    metrics.edit_outcome(work.outcome)
    if work.events:
        await notifier.events_committed(work.events)
    return work.outcome, work.entity


async def _quick_update(
    database: Database, project_id: ProjectId, user_id: UserId, request: EditRequest
) -> _Work | None:
    """A current-base room or item update in one statement; None: take the general path.

    Nothing is written when this answers None, and every error (a bad field,
    no access, ...) is left to the general path, which checks in its own order.
    """
    if (
        request.action != "update"
        or request.entity == "project"
        or request.id is None
        or request.base_version is None
        or database.statements is None
    ):
        return None
    try:
        fields = clean(request.entity, request.data or {}, creating=False)
    except ServerError:
        return None
    if "room_id" in fields:  # moving an item: the general path checks the room
        return None
    entity: Literal["room", "item"] = "room" if request.entity == "room" else "item"
    update = Update(
        entity=entity,
        user_id=user_id,
        id=request.id,
        base_version=request.base_version,
        data=plain(fields),
        op_id=request.op_id,
        at=datetime.now(UTC),
    )
    seq = await database.owned(quick_updates).submit(project_id, update)
    if seq is None:
        return None
    version = update.base_version + 1
    event = EventRecord(
        project_id=project_id,
        seq=seq,
        kind=f"{update.entity}.updated",
        entity=update.entity,
        id=update.id,
        version=version,
        data=update.data,
        actor_id=user_id,
        op_id=update.op_id,
        at=update.at,
    )
    outcome = Acked(id=update.id, version=version, seq=seq, merged=False)
    return _Work(outcome=outcome, entity=None, events=[event])


def _told_by_event(outcome: Outcome) -> bool:
    """True when the op's event row says all of its outcome: a plain (not merged) ack."""
    return isinstance(outcome, Acked) and not outcome.merged


async def earlier_outcome(project_id: ProjectId, op_id: str, user_id: UserId) -> Outcome | None:
    """What the op_id got the first time (a retry gets it again), or None if it is new.

    Conflicts and merged acks are in ``operation``; a plain ack is read back
    from the event that carries the op_id.

    Raises:
        BadRequest: another user sent this op_id.
    """
    row = (
        await Operation.select(Operation.user_id, Operation.outcome)
        .where((Operation.project_id == project_id) & (Operation.op_id == op_id))
        .first()
    )
    if row is not None:
        _same_sender(row["user_id"], user_id)
        raw = row["outcome"]
        return _outcomes.decode(raw if isinstance(raw, str | bytes) else msgspec.json.encode(raw))
    event = (
        await Event.select(Event.actor_id, Event.entity_id, Event.version, Event.seq)
        .where((Event.project_id == project_id) & (Event.op_id == op_id))
        .first()
    )
    if event is None:
        return None
    _same_sender(event["actor_id"], user_id)
    return Acked(
        id=uuid.UUID(str(event["entity_id"])),
        version=int(event["version"]),
        seq=int(event["seq"]),
        merged=False,
    )


def _same_sender(sender: Any, user_id: UserId) -> None:
    if str(sender) != str(user_id):
        raise BadRequest("op_id: already used by another client; use a fresh UUID", field="op_id")


async def _dispatch(project_id: ProjectId, user_id: UserId, request: EditRequest) -> _Work:
    if request.entity == "project":
        if request.action != "update":
            raise BadRequest(
                "action: projects are only updated here; create and delete them over REST",
                field="action",
            )
        if request.id is not None and request.id != project_id:
            raise BadRequest("id: must be the project's own id", field="id")
        return await _update(project_id, user_id, request, project_id)
    if request.action == "create":
        return await _create(project_id, user_id, request)
    if request.id is None:
        raise BadRequest("id: required to update or delete", field="id")
    if request.action == "update":
        return await _update(project_id, user_id, request, request.id)
    return await _delete(project_id, user_id, request, request.id)


async def _room_of_project(project_id: ProjectId, room_id: Any) -> uuid.UUID:
    if room_id is None:
        raise BadRequest("room_id: required for an item", field="room_id")
    try:
        room = uuid.UUID(str(room_id))
    except ValueError:
        raise BadRequest("room_id: must be a UUID", field="room_id") from None
    if not await Room.exists().where((Room.id == room) & (Room.project_id == project_id)):
        raise BadRequest("room_id: not a room of this project", field="room_id")
    return room


async def read_entity(
    entity: EditableEntity, entity_id: uuid.UUID, project_id: ProjectId
) -> dict[str, Any] | None:
    """The wire form of an entity of the project, or None."""
    row = await _read(entity, entity_id, project_id)
    return None if row is None else _TABLES[entity][1](row)


async def _read(entity: str, entity_id: uuid.UUID, project_id: ProjectId) -> dict[str, Any] | None:
    table, _ = _TABLES[entity]
    where: Any = table._meta.primary_key == entity_id
    if entity != "project":
        where = where & (table._meta.get_column_by_name("project_id") == project_id)
    row: dict[str, Any] | None = await table.select().where(where).output(load_json=True).first()
    return row


async def _gone(
    project_id: ProjectId, request: EditRequest, entity_id: uuid.UUID, fields: list[str]
) -> _Work:
    """The entity is not there: a conflict if it was deleted, else it never was ours."""
    deleted = await Event.exists().where(
        (Event.project_id == project_id)
        & (Event.entity_id == entity_id)
        & (Event.kind == f"{request.entity}.deleted")
    )
    if not deleted:
        raise NotFound(f"id: no {request.entity} with this id in this project", field="id")
    conflict = Conflicted(
        entity=request.entity,
        id=entity_id,
        base_version=request.base_version,
        current_version=None,
        current=None,
        fields=sorted(fields),
    )
    return _Work(outcome=conflict, entity=None, events=[])


async def _create(project_id: ProjectId, user_id: UserId, request: EditRequest) -> _Work:
    data = dict(request.data or {})
    if request.entity == "item" and request.room_id is not None:
        data.setdefault("room_id", str(request.room_id))
    fields = clean(request.entity, data, creating=True)
    entity_id = request.id or uuid.uuid4()
    table, to_entity = _TABLES[request.entity]
    if await table.exists().where(table._meta.primary_key == entity_id):
        raise BadRequest("id: an entity with this id already exists", field="id")
    values: dict[str, Any] = {"id": entity_id, "project_id": project_id, "version": 1, **fields}
    if request.entity == "item":
        values["room_id"] = await _room_of_project(project_id, fields.get("room_id"))
        values["created_by"] = user_id
    await table.insert(table(**values))
    row = await _read(request.entity, entity_id, project_id)
    assert row is not None
    entity = to_entity(row)
    event = await event_log.append(
        project_id,
        kind=f"{request.entity}.created",
        entity=request.entity,
        entity_id=entity_id,
        version=1,
        data=entity,
        actor_id=user_id,
        op_id=request.op_id,
    )
    return _Work(
        outcome=Acked(id=entity_id, version=1, seq=event.seq, merged=False),
        entity=entity,
        events=[event],
    )


async def _update(
    project_id: ProjectId, user_id: UserId, request: EditRequest, entity_id: uuid.UUID
) -> _Work:
    fields = clean(request.entity, request.data or {}, creating=False)
    if request.base_version is None:
        raise BadRequest("base_version: required to update", field="base_version")
    row = await _read(request.entity, entity_id, project_id)
    if row is None or (request.entity == "project" and row["deleted_at"] is not None):
        return await _gone(project_id, request, entity_id, list(fields))
    table, to_entity = _TABLES[request.entity]
    if "room_id" in fields:
        fields["room_id"] = await _room_of_project(project_id, fields["room_id"])
    current = int(row["version"])
    changed: set[str] = set()
    known = 0
    if request.base_version != current:  # only a stale write needs the history
        changed, known = await event_log.fields_changed_since(
            project_id, request.entity, entity_id, request.base_version
        )
    decision = decide(
        action="update",
        fields=fields,
        base_version=request.base_version,
        current_version=current,
        changed_since_base=changed,
        versions_known=known,
    )
    if not isinstance(decision, Apply):
        conflict = Conflicted(
            entity=request.entity,
            id=entity_id,
            base_version=request.base_version,
            current_version=current,
            current=to_entity(row),
            fields=list(decision.fields),
        )
        return _Work(outcome=conflict, entity=None, events=[])
    values: dict[Any, Any] = {table._meta.get_column_by_name(k): v for k, v in fields.items()}
    values[table._meta.get_column_by_name("version")] = current + 1
    now = datetime.now(UTC)
    values[table._meta.get_column_by_name("updated_at")] = now
    await table.update(values).where(table._meta.primary_key == entity_id)
    event = await event_log.append(
        project_id,
        kind=f"{request.entity}.updated",
        entity=request.entity,
        entity_id=entity_id,
        version=current + 1,
        data=plain(fields),
        actor_id=user_id,
        op_id=request.op_id,
    )
    entity = {**to_entity(row), **plain(fields), "version": current + 1}
    if "updated_at" in entity:
        entity["updated_at"] = rfc3339(now)
    if "seq" in entity:  # the project's own seq moved with this event
        entity["seq"] = event.seq
    return _Work(
        outcome=Acked(id=entity_id, version=current + 1, seq=event.seq, merged=decision.merged),
        entity=entity,
        events=[event],
    )


async def _delete(
    project_id: ProjectId, user_id: UserId, request: EditRequest, entity_id: uuid.UUID
) -> _Work:
    if request.base_version is None:
        raise BadRequest("base_version: required to delete", field="base_version")
    row = await _read(request.entity, entity_id, project_id)
    if row is None:
        return await _gone(project_id, request, entity_id, [])
    table, to_entity = _TABLES[request.entity]
    current = int(row["version"])
    decision = decide(
        action="delete",
        fields=(),
        base_version=request.base_version,
        current_version=current,
        changed_since_base=(),
        versions_known=0,
    )
    if not isinstance(decision, Apply):
        conflict = Conflicted(
            entity=request.entity,
            id=entity_id,
            base_version=request.base_version,
            current_version=current,
            current=to_entity(row),
            fields=[],
        )
        return _Work(outcome=conflict, entity=None, events=[])
    events: list[EventRecord] = []
    if request.entity == "room":
        # A room's items go with it: each gets its own event, so every client's
        # materialised state drops them too.
        for item in await Item.select(Item.id, Item.version).where(Item.room_id == entity_id):
            await Item.delete().where(Item.id == item["id"])
            events.append(
                await event_log.append(
                    project_id,
                    kind="item.deleted",
                    entity="item",
                    entity_id=item["id"],
                    version=int(item["version"]) + 1,
                    data={},
                    actor_id=user_id,
                )
            )
    await table.delete().where(table._meta.primary_key == entity_id)
    event = await event_log.append(
        project_id,
        kind=f"{request.entity}.deleted",
        entity=request.entity,
        entity_id=entity_id,
        version=current + 1,
        data={},
        actor_id=user_id,
        op_id=request.op_id,
    )
    events.append(event)
    return _Work(
        outcome=Acked(id=entity_id, version=current + 1, seq=event.seq, merged=False),
        entity=None,
        events=events,
    )
