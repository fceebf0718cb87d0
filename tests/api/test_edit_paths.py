"""Socket edits (one statement on PostgreSQL) and REST edits (the general path) write the same.

``edits.apply(..., want_entity=False)`` is what a socket ``edit`` frame calls;
on PostgreSQL a current-base room or item update then runs as one database
function, and anything else falls back to the general path. Each test makes
the same change both ways, to twin entities, and compares what a client and
the log see.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
from piccolo.engine.postgres import PostgresEngine

from server import metrics
from server.errors import BadRequest
from server.events.tables import Event
from server.projects import edits
from server.projects.edits import Acked, Conflicted, EditRequest
from server.types import ProjectId, UserId
from tests.api.conftest import Account, Api, RecordingNotifier, app_for, serving


class Twins:
    """An owner's project with two identical rooms, each holding one identical item."""

    def __init__(self, api: Api, owner: Account, pid: str) -> None:
        self.api, self.owner, self.pid = api, owner, pid
        self.rooms: list[str] = []
        self.items: list[str] = []

    async def rest(self, method: str, path: str, **kw: Any) -> Any:
        response = await self.api.client.request(
            method, f"/api/projects/{self.pid}{path}", headers=self.owner.auth, **kw
        )
        assert response.status_code < 300, response.text
        return response.json()

    async def listed(self, entity: str) -> dict[str, dict[str, Any]]:
        """The wire form of the twins' rooms or items, by id."""
        if entity == "room":
            return {e["id"]: e for e in await self.rest("GET", "/rooms")}
        found = {}
        for room in self.rooms:
            found.update({e["id"]: e for e in await self.rest("GET", f"/rooms/{room}/items")})
        return found

    async def apply(
        self, *, socket: bool, who: Account | None = None, **fields: Any
    ) -> edits.Outcome:
        request = EditRequest(project_id=uuid.UUID(self.pid), **fields)
        user = UserId(uuid.UUID((who or self.owner).id))
        outcome, _ = await edits.apply(
            self.api.ctx.database, self.api.ctx.notifier, user, request, want_entity=not socket
        )
        return outcome


async def twins(api: Api) -> Twins:
    owner = await api.register("owner")
    board = Twins(api, owner, (await api.project(owner))["id"])
    for _ in range(2):
        room = await board.rest("POST", "/rooms", json={"name": "Kitchen"})
        item = await board.rest(
            "POST", f"/rooms/{room['id']}/items", json={"kind": "note", "data": {"t": "a"}}
        )
        board.rooms.append(room["id"])
        board.items.append(item["id"])
    return board


def _without(entity: dict[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in entity.items() if k not in names}


async def _outcome(board: Twins, op_id: str) -> dict[str, Any]:
    """The op's outcome as a retry would get it."""
    user = UserId(uuid.UUID(board.owner.id))
    outcome = await edits.earlier_outcome(ProjectId(uuid.UUID(board.pid)), op_id, user)
    assert outcome is not None
    return _without(msgspec.to_builtins(outcome), "id", "seq")


async def test_item_and_room_updates_write_the_same_both_ways(api: Api) -> None:
    """A current-base update gives the same ack, entity, event row, op outcome and event out."""
    board = await twins(api)
    notifier = api.ctx.notifier
    assert isinstance(notifier, RecordingNotifier)
    item = {"x": 12.5, "w": 3, "rotation": -0.1, "kind": "color", "data": {"hex": "#fff", "n": 1}}
    room = {"name": " Pantry ", "room_type": "kitchen", "attributes": {"m2": 9}, "position": 2}
    for entity, ids, data in (("item", board.items, item), ("room", board.rooms, room)):
        acks, sent = [], []
        for socket, entity_id in zip((True, False), ids, strict=True):
            op_id = uuid.uuid4().hex
            outcome = await board.apply(
                socket=socket,
                action="update",
                entity=entity,
                id=uuid.UUID(entity_id),
                base_version=1,
                data=dict(data),
                op_id=op_id,
            )
            assert isinstance(outcome, Acked)
            acks.append((outcome.version, outcome.merged))
            sent.append(notifier.events[-1])
            assert await _outcome(board, op_id) == {"type": "ack", "version": 2, "merged": False}
        assert acks == [(2, False), (2, False)]
        first, second = sent
        assert (first.kind, first.entity, first.version, first.actor_id) == (
            second.kind,
            second.entity,
            second.version,
            second.actor_id,
        )
        assert msgspec.json.encode(first.data) == msgspec.json.encode(second.data)
        assert second.seq == first.seq + 1
        listed = await board.listed(entity)
        assert _without(listed[ids[0]], "id", "room_id") == _without(
            listed[ids[1]], "id", "room_id"
        )
    rows = await Event.select().where(Event.op_id.is_not_null()).output(load_json=True)
    by_entity: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_entity.setdefault(row["entity"], []).append(
            _without(row, "id", "seq", "entity_id", "op_id", "at")
        )
    assert all(len(v) == 2 and v[0] == v[1] for v in by_entity.values())


async def test_what_the_quick_path_declines_answers_the_same_both_ways(api: Api) -> None:
    """Merges, conflicts, retried op_ids, bad fields and viewers get the same answers."""
    board = await twins(api)
    viewer = await api.register("viewer")
    await api.add_member(board.owner, board.pid, viewer, "viewer")

    async def both(**fields: Any) -> list[Any]:
        answers = []
        for socket, item in zip((True, False), board.items, strict=True):
            try:
                outcome: Any = await board.apply(socket=socket, id=uuid.UUID(item), **fields)
                answer = msgspec.to_builtins(outcome)
                answer.pop("id")
                if isinstance(outcome, Conflicted) and outcome.current is not None:
                    answer["current"] = _without(outcome.current, "id", "room_id")
            except Exception as exc:  # the error a client would get
                answer = (type(exc).__name__, str(exc))
            answers.append(answer)
        return answers

    async def same(**fields: Any) -> Any:
        first, second = await both(**fields)
        if isinstance(first, dict) and "seq" in first:
            assert second.pop("seq") == first.pop("seq") + 1
        assert first == second
        return first

    update = {"action": "update", "entity": "item"}
    assert (await same(**update, base_version=1, data={"x": 1.0}))["version"] == 2
    merged = await same(**update, base_version=1, data={"y": 2.0})  # stale, no overlap
    assert (merged["type"], merged["merged"]) == ("ack", True)
    conflict = await same(**update, base_version=1, data={"x": 3.0})  # stale, overlaps
    assert (conflict["type"], conflict["fields"]) == ("conflict", ["x"])
    assert (await same(**update, base_version=3, data={"w": -1}))[0] == "ValidationFailed"
    assert (await same(**update, base_version=3, data={"nope": 1}))[0] == "BadRequest"
    refused = await same(**update, base_version=3, data={"x": 4.0}, who=viewer)
    assert refused[0] == "Forbidden"
    for socket, item in zip((True, False), board.items, strict=True):
        op_id = f"retry-{socket}"
        fields: dict[str, Any] = {**update, "id": uuid.UUID(item), "op_id": op_id}
        first = await board.apply(socket=socket, base_version=3, data={"z": 5.0}, **fields)
        again = await board.apply(socket=socket, base_version=3, data={"z": 6.0}, **fields)
        assert isinstance(first, Acked)
        assert again == first
    items = await board.listed("item")
    assert _without(items[board.items[0]], "id", "room_id") == _without(
        items[board.items[1]], "id", "room_id"
    )
    assert items[board.items[0]]["z"] == 5.0


async def test_a_retried_op_id_gets_its_first_outcome_whichever_path_either_took(api: Api) -> None:
    """A retry gets its first ack, conflict or merge again, and applies nothing."""
    board = await twins(api)
    stranger = await api.register("stranger")
    await api.add_member(board.owner, board.pid, stranger, "editor")
    item = uuid.UUID(board.items[0])
    update: dict[str, Any] = {"action": "update", "entity": "item", "id": item}
    for first_socket, retry_socket in ((True, True), (True, False), (False, True), (False, False)):
        version = (await board.listed("item"))[str(item)]["version"]
        op_id = uuid.uuid4().hex
        first = await board.apply(
            socket=first_socket, base_version=version, data={"x": 1.0}, op_id=op_id, **update
        )
        assert first == Acked(id=item, version=version + 1, seq=first.seq, merged=False)
        # The retry's base is current now: applying it would make version + 2.
        again = await board.apply(
            socket=retry_socket, base_version=version + 1, data={"x": 9.0}, op_id=op_id, **update
        )
        assert again == first
        with pytest.raises(BadRequest, match="op_id"):
            await board.apply(
                socket=retry_socket,
                who=stranger,
                base_version=version + 1,
                data={"x": 9.0},
                op_id=op_id,
                **update,
            )
        now = (await board.listed("item"))[str(item)]
        assert (now["version"], now["x"]) == (version + 1, 1.0)
    version = (await board.listed("item"))[str(item)]["version"]
    await board.apply(socket=True, base_version=version, data={"y": 3.0}, **update)
    for socket in (True, False):  # a merge and a conflict, each retried at a current base
        merged_op, conflict_op = uuid.uuid4().hex, uuid.uuid4().hex
        merged = await board.apply(
            socket=socket,
            base_version=version,
            data={"w" if socket else "rotation": 5.0},  # fields no one changed since
            op_id=merged_op,
            **update,
        )
        assert isinstance(merged, Acked)
        assert merged.merged
        conflict = await board.apply(
            socket=socket, base_version=version, data={"y": 4.0}, op_id=conflict_op, **update
        )
        assert isinstance(conflict, Conflicted)
        current = (await board.listed("item"))[str(item)]["version"]
        for op_id, outcome in ((merged_op, merged), (conflict_op, conflict)):
            for retry_socket in (True, False):
                again = await board.apply(
                    socket=retry_socket,
                    base_version=current,
                    data={"h": 7.0},
                    op_id=op_id,
                    **update,
                )
                assert again == outcome
        assert (await board.listed("item"))[str(item)]["version"] == current
    assert (await board.listed("item"))[str(item)]["h"] != 7.0


@pytest.fixture(params=[64, 1])
async def batched(
    request: pytest.FixtureRequest, engine: Any, database_url: str
) -> AsyncIterator[tuple[Api, int]]:
    """The app with MOODBOARD_EDIT_BATCH set to the param (``engine`` empties the tables)."""
    app = app_for(database_url, MOODBOARD_EDIT_BATCH=str(request.param))
    async with serving(app) as client:
        yield Api(app, client), request.param


async def test_concurrent_socket_edits_of_one_project_lose_nothing(
    batched: tuple[Api, int],
) -> None:
    """Edits racing into one project (one database call in flight, the rest batched) all count.

    With MOODBOARD_EDIT_BATCH=1 every edit has a transaction of its own, with the same outcomes.

    Forty updates at once over the project's items: per item, one edit per
    field from the same base (the first applies, the others merge), a
    viewer's edits (refused, and nothing of them written), and each op sent
    twice (one outcome, applied once). Whatever batch each landed in, the
    outcome is the one the edits would get one after the other.
    """
    api, batch = batched
    board = await twins(api)
    viewer = await api.register("viewer")
    await api.add_member(board.owner, board.pid, viewer, "viewer")
    room = board.rooms[0]
    for _ in range(2):
        item = await board.rest("POST", f"/rooms/{room}/items", json={"kind": "note", "data": {}})
        board.items.append(item["id"])
    fields = ("x", "y", "w", "h", "rotation")
    sends: list[tuple[str, str, Account, str]] = []  # item, field, author, op_id
    for item_id in board.items:
        for name in fields:
            sends.append((item_id, name, board.owner, uuid.uuid4().hex))
        sends.append((item_id, "z", viewer, uuid.uuid4().hex))
    sends += sends[::3]  # every third op again: a client's retry racing its first send

    async def send(item_id: str, name: str, who: Account, op_id: str) -> Any:
        try:
            return await board.apply(
                socket=True,
                who=who,
                action="update",
                entity="item",
                id=uuid.UUID(item_id),
                base_version=1,
                data={name: 7.0},
                op_id=op_id,
            )
        except Exception as exc:  # the error a client would get
            return type(exc).__name__

    before = _batched_edits()
    outcomes = await asyncio.gather(*(send(*s) for s in sends))
    if isinstance(api.ctx.engine, PostgresEngine):  # the race did make batches, if allowed
        assert (_batched_edits() > before) == (batch > 1)
    by_op: dict[str, Any] = {}
    for (_, _, who, op_id), outcome in zip(sends, outcomes, strict=True):
        if who is viewer:
            assert outcome == "Forbidden"
        else:
            assert isinstance(outcome, Acked), outcome
            assert by_op.setdefault(op_id, outcome) == outcome  # a retry: the first answer
    seqs = sorted(outcome.seq for outcome in by_op.values())
    assert len(set(seqs)) == len(by_op) == len(board.items) * len(fields)
    items = await board.listed("item")
    for item_id in board.items:
        item = items[item_id]
        assert item["version"] == 1 + len(fields)  # every edit applied, each once
        assert all(item[name] == 7.0 for name in fields)
        assert item["z"] != 7.0  # the viewer's edit wrote nothing
    ours = Event.project_id == board.pid
    rows = await Event.select(Event.seq).where(ours & Event.op_id.is_not_null())
    assert sorted(row["seq"] for row in rows) == seqs  # one event per applied op
    logged = [row["seq"] for row in await Event.select(Event.seq).where(ours).order_by(Event.seq)]
    assert logged == list(range(logged[0], logged[0] + len(logged)))  # no gap in the log


def _batched_edits() -> float:
    """Edits the database got in batches of more than one, so far (moodboard_edit_batch_size)."""
    samples = {s.name: s.value for s in metrics.EDIT_BATCH.collect()[0].samples}
    return samples["moodboard_edit_batch_size_sum"] - samples["moodboard_edit_batch_size_count"]
