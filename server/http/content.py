"""Rooms, items and the event log over REST (docs/protocol.md §2.5).

Writes go through the same service as socket edits (server/projects/edits.py):
PATCH and DELETE carry ``base_version`` and answer 409 with the conflict body
of docs/protocol.md §3.3. An ``Idempotency-Key`` header plays the socket's ``op_id``.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, delete, get, patch, post
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from server.access.principal import Principal
from server.context import AppContext
from server.errors import BadRequest, Conflict
from server.events.reads import read_history
from server.http.deps import Caller, Ctx, strictly
from server.http.schemas import (
    EventPage,
    Item,
    ItemCreateBody,
    Room,
    RoomCreateBody,
    to,
)
from server.projects import access, edits
from server.projects.edits import Action, EditRequest
from server.projects.entities import item_entity, room_entity
from server.projects.tables import Item as ItemTable
from server.projects.tables import Room as RoomTable
from server.projects.validation import EditableEntity
from server.types import ProjectId

MAX_OP_ID = 64
MAX_VERSION = 2**31 - 1  # versions are 32-bit INTEGER columns, as in the socket protocol


def op_id_of(request: Request[Any, Any, Any]) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is not None and not 0 < len(key) <= MAX_OP_ID:
        raise BadRequest(f"Idempotency-Key: 1..{MAX_OP_ID} characters", field="Idempotency-Key")
    return key


async def write(
    ctx: AppContext,
    caller: Principal,
    http: Request[Any, Any, Any],
    project_id: uuid.UUID,
    action: Action,
    entity: EditableEntity,
    *,
    id: uuid.UUID | None = None,
    room_id: uuid.UUID | None = None,
    base_version: int | None = None,
    data: dict[str, Any] | None = None,
) -> dict[str, Any] | None:
    """Apply an edit for a REST call: the entity after it, or 409 with the conflict body.

    The ``Idempotency-Key`` header becomes the edit's ``op_id``.
    """
    request = EditRequest(
        project_id=project_id,
        action=action,
        entity=entity,
        id=id,
        room_id=room_id,
        base_version=base_version,
        data=data,
        op_id=op_id_of(http),
    )
    outcome, after = await edits.apply(ctx.database, ctx.notifier, caller.user_id, request)
    if isinstance(outcome, edits.Conflicted):
        raise Conflict(
            f"{outcome.entity} changed since version {outcome.base_version}",
            **msgspec.to_builtins(outcome),
        )
    if after is None and action != "delete":  # a retried op: read it again
        after = await edits.read_entity(entity, outcome.id, ProjectId(project_id))
    return after


def _new_id(fields: dict[str, Any]) -> uuid.UUID | None:
    """Take the client-chosen id (if any) out of a create body's fields."""
    chosen = fields.pop("id", None)
    return None if chosen is None else uuid.UUID(chosen)


def base_version_of(data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    fields = dict(data)
    version = fields.pop("base_version", None)
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= MAX_VERSION:
        raise BadRequest(
            f"base_version: required, an integer 1..{MAX_VERSION}", field="base_version"
        )
    return version, fields


class ContentController(Controller):
    path = "/api/projects/{project_id:uuid}"
    tags = ["content"]

    @get("/rooms")
    async def list_rooms(self, project_id: FromPath[uuid.UUID], caller: Caller) -> list[Room]:
        """The project's rooms in tab order."""
        await access.require(ProjectId(project_id), caller.user_id, "project.read")
        rows = (
            await RoomTable.select()
            .where(RoomTable.project_id == project_id)
            .order_by(RoomTable.position)
            .output(load_json=True)
        )
        return to(list[Room], [room_entity(r) for r in rows])

    @post("/rooms", status_code=HTTP_201_CREATED)
    async def create_room(
        self,
        request: Request[Any, Any, Any],
        project_id: FromPath[uuid.UUID],
        data: JSONBody[RoomCreateBody],
        caller: Caller,
        ctx: Ctx,
    ) -> Room:
        """Add a room (editors and owners)."""
        fields = msgspec.to_builtins(await strictly(request, data))
        entity = await write(
            ctx, caller, request, project_id, "create", "room", id=_new_id(fields), data=fields
        )
        return to(Room, entity)

    @patch("/rooms/{room_id:uuid}")
    async def update_room(
        self,
        request: Request[Any, Any, Any],
        project_id: FromPath[uuid.UUID],
        room_id: FromPath[uuid.UUID],
        data: JSONBody[dict[str, Any]],
        caller: Caller,
        ctx: Ctx,
    ) -> Room:
        """Versioned change of a room: 409 with the current room on conflict."""
        base, fields = base_version_of(data)
        entity = await write(
            ctx,
            caller,
            request,
            project_id,
            "update",
            "room",
            id=room_id,
            base_version=base,
            data=fields,
        )
        return to(Room, entity)

    @delete("/rooms/{room_id:uuid}", status_code=HTTP_204_NO_CONTENT)
    async def delete_room(
        self,
        request: Request[Any, Any, Any],
        project_id: FromPath[uuid.UUID],
        room_id: FromPath[uuid.UUID],
        caller: Caller,
        ctx: Ctx,
        base_version: Annotated[int, QueryParameter(ge=1)],
    ) -> None:
        """Delete a room and its items (``?base_version=``); 409 when stale."""
        await write(
            ctx,
            caller,
            request,
            project_id,
            "delete",
            "room",
            id=room_id,
            base_version=base_version,
        )

    @get("/rooms/{room_id:uuid}/items")
    async def list_items(
        self, project_id: FromPath[uuid.UUID], room_id: FromPath[uuid.UUID], caller: Caller
    ) -> list[Item]:
        """A room's items in stacking order."""
        await access.require(ProjectId(project_id), caller.user_id, "project.read")
        rows = (
            await ItemTable.select()
            .where((ItemTable.project_id == project_id) & (ItemTable.room_id == room_id))
            .order_by(ItemTable.z)
            .output(load_json=True)
        )
        return to(list[Item], [item_entity(r) for r in rows])

    @post("/rooms/{room_id:uuid}/items", status_code=HTTP_201_CREATED)
    async def create_item(
        self,
        request: Request[Any, Any, Any],
        project_id: FromPath[uuid.UUID],
        room_id: FromPath[uuid.UUID],
        data: JSONBody[ItemCreateBody],
        caller: Caller,
        ctx: Ctx,
    ) -> Item:
        """Place an item on a room's board (editors and owners)."""
        fields = msgspec.to_builtins(await strictly(request, data))
        entity = await write(
            ctx,
            caller,
            request,
            project_id,
            "create",
            "item",
            id=_new_id(fields),
            room_id=room_id,
            data=fields,
        )
        return to(Item, entity)

    @patch("/items/{item_id:uuid}")
    async def update_item(
        self,
        request: Request[Any, Any, Any],
        project_id: FromPath[uuid.UUID],
        item_id: FromPath[uuid.UUID],
        data: JSONBody[dict[str, Any]],
        caller: Caller,
        ctx: Ctx,
    ) -> Item:
        """Versioned change of an item: 409 with the current item on conflict."""
        base, fields = base_version_of(data)
        entity = await write(
            ctx,
            caller,
            request,
            project_id,
            "update",
            "item",
            id=item_id,
            base_version=base,
            data=fields,
        )
        return to(Item, entity)

    @delete("/items/{item_id:uuid}", status_code=HTTP_204_NO_CONTENT)
    async def delete_item(
        self,
        request: Request[Any, Any, Any],
        project_id: FromPath[uuid.UUID],
        item_id: FromPath[uuid.UUID],
        caller: Caller,
        ctx: Ctx,
        base_version: Annotated[int, QueryParameter(ge=1)],
    ) -> None:
        """Delete an item (``?base_version=``); 409 when stale."""
        await write(
            ctx,
            caller,
            request,
            project_id,
            "delete",
            "item",
            id=item_id,
            base_version=base_version,
        )

    @get("/events")
    async def events(
        self,
        ctx: Ctx,
        project_id: FromPath[uuid.UUID],
        caller: Caller,
        after: Annotated[int, QueryParameter(ge=0, le=2**53 - 1)] = 0,  # beyond: no such seq
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
    ) -> EventPage:
        """Events with seq > after, in order (at most ``limit``), and the project's seq."""
        await access.require(ProjectId(project_id), caller.user_id, "project.read")
        seq, frames = await read_history(ctx.database, project_id, after, limit)
        return to(EventPage, {"events": [msgspec.to_builtins(f) for f in frames], "seq": seq})
