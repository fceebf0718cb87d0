"""The database itself refuses states the protocol forbids, on both engines."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from server.access.tables import AppUser
from server.db.engine import write_transaction
from server.events.tables import Event
from server.generations.tables import Generation
from server.projects.tables import Item, Project, Room


async def _user(email: str = "owner@example.com") -> uuid.UUID:
    user_id = uuid.uuid4()
    await AppUser.insert(AppUser(id=user_id, email=email, name="Owner", password_hash="x"))
    return user_id


async def _project_with_item() -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    """Rows written as the server writes them (the outside-writer triggers stay quiet)."""
    owner = await _user()
    project, room, item = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    async with write_transaction(Project._meta.db):
        await Project.insert(Project(id=project, name="Flat", owner_id=owner))
        await Room.insert(Room(id=room, project_id=project, name="Kitchen", room_type="kitchen"))
        await Item.insert(Item(id=item, project_id=project, room_id=room, kind="note"))
    return project, room, item


async def test_credit_balance_cannot_go_negative(engine: Any) -> None:
    """An UPDATE that would make a balance negative fails and changes nothing."""
    user_id = await _user()
    await AppUser.update({AppUser.credits: 3}).where(AppUser.id == user_id)
    with pytest.raises(Exception, match="credits_never_negative"):
        await AppUser.update({AppUser.credits: AppUser.credits - 4}).where(AppUser.id == user_id)
    row = await AppUser.select(AppUser.credits).where(AppUser.id == user_id).first()
    assert row == {"credits": 3}


@pytest.mark.parametrize(
    ("values", "constraint"),
    [
        ({Item.w: 0}, "item_size_positive"),
        ({Item.h: -1}, "item_size_positive"),
        ({Item.kind: "video"}, "item_kind_known"),
        ({Item.version: 0}, "item_version_positive"),
    ],
)
async def test_item_invariants(engine: Any, values: dict[Any, Any], constraint: str) -> None:
    """Items keep a positive size, a known kind and a positive version, even for raw writers."""
    _, _, item = await _project_with_item()
    with pytest.raises(Exception, match=constraint):
        await Item.update(values).where(Item.id == item)


async def test_room_type_and_generation_status_are_checked(engine: Any) -> None:
    """Unknown room types and generation statuses are refused."""
    project, room, _ = await _project_with_item()
    with pytest.raises(Exception, match="room_type_known"):
        await Room.update({Room.room_type: "garage"}).where(Room.id == room)
    generation = uuid.uuid4()
    await Generation.insert(Generation(id=generation, project_id=project, prompt="oak"))
    with pytest.raises(Exception, match="generation_status_known"):
        await Generation.update({Generation.status: "paused"}).where(Generation.id == generation)
    with pytest.raises(Exception, match="generation_progress_in_range"):
        await Generation.update({Generation.progress: 101}).where(Generation.id == generation)


def _event(project: uuid.UUID, seq: int, op_id: str | None) -> Event:
    return Event(
        project_id=project,
        seq=seq,
        kind="item.updated",
        entity="item",
        entity_id=uuid.uuid4(),
        op_id=op_id,
    )


async def test_event_seq_and_op_id_are_unique_per_project(engine: Any) -> None:
    """A seq or an op_id appears once per project; other projects and null op_ids are free."""
    project, _, _ = await _project_with_item()
    other = uuid.uuid4()
    owner = (await Project.select(Project.owner_id).first())["owner_id"]
    async with write_transaction(Project._meta.db):
        await Project.insert(Project(id=other, name="Other", owner_id=owner))
    await Event.insert(_event(project, 1, "op-1"), _event(project, 2, None))
    await Event.insert(_event(project, 3, None))  # several events without an op
    await Event.insert(_event(other, 1, "op-1"))  # same seq and op_id, other project
    with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
        await Event.insert(_event(project, 2, "op-2"))
    with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
        await Event.insert(_event(project, 4, "op-1"))
    assert await Event.count().where(Event.project_id == project) == 3


async def test_deleting_a_project_removes_its_content(engine: Any) -> None:
    """Rooms, items and events go with their project (ON DELETE CASCADE)."""
    project, _, _ = await _project_with_item()
    await Event.insert(_event(project, 1, None))
    await Project.delete().where(Project.id == project)
    for table in (Room, Item, Event):
        assert await table.count() == 0
