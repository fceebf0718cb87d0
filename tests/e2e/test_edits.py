"""Socket edits: acks, merges, conflicts, idempotency, validation (docs/protocol.md §3.3)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.conftest import ENGINES, create_pg_database, drop_pg_database, require
from tests.servers import ServerProcess, running_server, server_env
from tests.wsclient import Ws, signup, ws

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module", params=ENGINES)
async def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ServerProcess]:
    """A server on each engine (PostgreSQL answers most updates in its one-statement path)."""
    tmp = tmp_path_factory.mktemp("edits")
    if request.param == "postgres":
        require("PostgreSQL")
        url = await create_pg_database("moodboard_edits")
    else:
        url = f"sqlite:///{tmp / 'm.sqlite3'}"
    try:
        async with running_server(server_env(url), tmp) as process:
            yield process
    finally:
        if request.param == "postgres":
            await drop_pg_database(url)


class Board:
    """An owner with a project and a room, and a joined socket."""

    def __init__(self, server: ServerProcess, token: str, project: dict[str, Any]) -> None:
        self.server, self.token, self.project = server, token, project
        self.pid = project["id"]
        self.n = 0

    def edit(self, **fields: Any) -> dict[str, Any]:
        self.n += 1
        return {
            "type": "edit",
            "ref": f"e{self.n}",
            "project_id": self.pid,
            "op_id": fields.pop("op_id", str(uuid.uuid4())),
            **fields,
        }

    async def rest(self, method: str, path: str, token: str | None = None, **kw: Any) -> Any:
        async with httpx.AsyncClient(base_url=self.server.url) as client:
            return await client.request(
                method, path, headers={"Authorization": f"Bearer {token or self.token}"}, **kw
            )


async def board(server: ServerProcess) -> Board:
    _, token = await signup(server.url, "Owner", f"o-{uuid.uuid4().hex[:8]}@example.com")
    async with httpx.AsyncClient(base_url=server.url) as client:
        created = await client.post(
            "/api/projects", json={"name": "Flat"}, headers={"Authorization": f"Bearer {token}"}
        )
    return Board(server, token, created.json())


async def join(sock: Ws, b: Board) -> dict[str, Any]:
    await sock.expect("ready")
    reply = await sock.request({"type": "join", "ref": "j", "project_id": b.pid})
    assert reply["type"] == "joined"
    return reply


async def test_create_update_merge_conflict_delete(server: ServerProcess) -> None:
    """The whole life of an item: every edit acked or refused as docs/protocol.md §3.3 says."""
    b = await board(server)
    async with ws(server.url, b.token) as sock:
        joined = await join(sock, b)
        seq = joined["seq"]
        room = await sock.request(
            b.edit(action="create", entity="room", data={"name": "Kitchen", "room_type": "kitchen"})
        )
        assert (room["type"], room["version"], room["seq"], room["merged"]) == (
            "ack",
            1,
            seq + 1,
            False,
        )
        event = await sock.expect("event")
        assert (event["kind"], event["id"], event["data"]["name"]) == (
            "room.created",
            room["id"],
            "Kitchen",
        )
        item_id = str(uuid.uuid4())
        item = await sock.request(
            b.edit(
                action="create",
                entity="item",
                id=item_id,
                room_id=room["id"],
                data={"kind": "note", "x": 1},
            )
        )
        assert (item["id"], item["version"]) == (item_id, 1)
        created = await sock.expect("event", kind="item.created")
        assert created["data"] == {
            "id": item_id,
            "project_id": b.pid,
            "room_id": room["id"],
            "kind": "note",
            "x": 1.0,
            "y": 0.0,
            "w": 200.0,
            "h": 200.0,
            "rotation": 0.0,
            "z": 0.0,
            "data": {},
            "version": 1,
        }
        moved = await sock.request(
            b.edit(
                action="update", entity="item", id=item_id, base_version=1, data={"x": 10, "y": 20}
            )
        )
        assert (moved["type"], moved["version"], moved["merged"]) == ("ack", 2, False)
        updated = await sock.expect("event", kind="item.updated")
        assert (updated["data"], updated["version"]) == ({"x": 10.0, "y": 20.0}, 2)

        merged = await sock.request(
            b.edit(action="update", entity="item", id=item_id, base_version=1, data={"w": 50})
        )
        assert (merged["type"], merged["version"], merged["merged"]) == ("ack", 3, True)
        conflict = await sock.request(
            b.edit(
                action="update", entity="item", id=item_id, base_version=1, data={"x": 99, "h": 5}
            )
        )
        assert conflict["type"] == "conflict"
        assert (conflict["base_version"], conflict["current_version"], conflict["fields"]) == (
            1,
            3,
            ["x"],
        )
        assert (conflict["current"]["x"], conflict["current"]["w"]) == (10.0, 50.0)
        stale_delete = await sock.request(
            b.edit(action="delete", entity="item", id=item_id, base_version=2)
        )
        assert stale_delete["type"] == "conflict"
        deleted = await sock.request(
            b.edit(action="delete", entity="item", id=item_id, base_version=3)
        )
        assert (deleted["type"], deleted["version"]) == ("ack", 4)
        gone = await sock.request(
            b.edit(action="update", entity="item", id=item_id, base_version=3, data={"x": 1})
        )
        assert (gone["type"], gone["current"], gone["current_version"]) == ("conflict", None, None)
        items = await b.rest("GET", f"/api/projects/{b.pid}/rooms/{room['id']}/items")
        assert items.json() == []


async def test_op_id_makes_edits_idempotent(server: ServerProcess) -> None:
    """Resending an op_id answers the first outcome again and applies nothing twice."""
    b = await board(server)
    async with ws(server.url, b.token) as sock:
        await join(sock, b)
        room = await sock.request(
            b.edit(action="create", entity="room", data={"name": "Hall"}, op_id="create-hall")
        )
        again = await sock.request(
            b.edit(action="create", entity="room", data={"name": "Hall"}, op_id="create-hall")
        )
        assert {k: again[k] for k in ("type", "id", "version", "seq", "merged")} == {
            k: room[k] for k in ("type", "id", "version", "seq", "merged")
        }
        rooms = await b.rest("GET", f"/api/projects/{b.pid}/rooms")
        assert len(rooms.json()) == 1
        first = await sock.request(
            b.edit(
                action="update",
                entity="room",
                id=room["id"],
                base_version=1,
                data={"name": "A"},
                op_id="rename",
            )
        )
        await sock.request(
            b.edit(
                action="update", entity="room", id=room["id"], base_version=2, data={"name": "B"}
            )
        )
        conflict = await sock.request(
            b.edit(
                action="update",
                entity="room",
                id=room["id"],
                base_version=1,
                data={"name": "C"},
                op_id="late",
            )
        )
        assert conflict["type"] == "conflict"
        assert (
            await sock.request(
                b.edit(
                    action="update",
                    entity="room",
                    id=room["id"],
                    base_version=1,
                    data={"name": "C"},
                    op_id="late",
                )
            )
        )["type"] == "conflict"
        replay = await sock.request(
            b.edit(
                action="update",
                entity="room",
                id=room["id"],
                base_version=1,
                data={"name": "A"},
                op_id="rename",
            )
        )
        assert (replay["type"], replay["seq"]) == ("ack", first["seq"])
        names = (await b.rest("GET", f"/api/projects/{b.pid}/rooms")).json()
        assert [r["name"] for r in names] == ["B"]
        events = (
            await b.rest("GET", f"/api/projects/{b.pid}/events", params={"after": 0, "limit": 1000})
        ).json()
        op_ids = [e["op_id"] for e in events["events"] if e["op_id"]]
        assert (op_ids.count("create-hall"), op_ids.count("rename")) == (1, 1)  # once each
        assert "late" not in op_ids  # a conflict writes no event, even when retried


async def test_bad_edits_name_the_field_and_change_nothing(server: ServerProcess) -> None:
    """Invalid fields, unknown fields, foreign ids: bad_request or not_found, nothing written."""
    b = await board(server)
    other = await board(server)
    async with ws(server.url, b.token) as sock:
        joined = await join(sock, b)
        room = await sock.request(b.edit(action="create", entity="room", data={"name": "R"}))
        cases = [
            (
                dict(action="create", entity="room", data={"name": "X", "room_type": "garage"}),
                "room_type",
            ),
            (
                dict(action="create", entity="item", room_id=room["id"], data={"kind": "video"}),
                "kind",
            ),
            (
                dict(
                    action="create",
                    entity="item",
                    room_id=room["id"],
                    data={"kind": "note", "w": 0},
                ),
                "w",
            ),
            (
                dict(
                    action="create",
                    entity="item",
                    room_id=room["id"],
                    data={"kind": "note", "x": "far"},
                ),
                "x",
            ),
            (
                dict(
                    action="create",
                    entity="item",
                    room_id=room["id"],
                    data={"kind": "note", "data": {"blob": "x" * 17_000}},
                ),
                "data",
            ),
            (
                dict(
                    action="create",
                    entity="item",
                    room_id=room["id"],
                    data={"kind": "note", "colour": "red"},
                ),
                "colour",
            ),
            (
                dict(action="update", entity="room", id=room["id"], data={"name": "Y"}),
                "base_version",
            ),
            (
                dict(
                    action="create", entity="item", room_id=str(uuid.uuid4()), data={"kind": "note"}
                ),
                "room_id",
            ),
            (dict(action="delete", entity="project", id=b.pid, base_version=1), "action"),
        ]
        for fields, field in cases:
            reply = await sock.request(b.edit(**fields))
            assert reply["type"] == "error", (fields, reply)
            assert reply["code"] == "bad_request"
            assert reply["message"].startswith(f"{field}: "), reply
        async with ws(server.url, other.token) as other_sock:
            await join(other_sock, other)
            foreign = await other_sock.request(
                other.edit(action="create", entity="room", data={"name": "Theirs"})
            )
        # b cannot touch another project's room through its own project
        reply = await sock.request(
            b.edit(
                action="update",
                entity="room",
                id=foreign["id"],
                base_version=1,
                data={"name": "Mine"},
            )
        )
        assert (reply["type"], reply["code"]) == ("error", "not_found")
        reply = await sock.request(
            b.edit(action="create", entity="item", room_id=foreign["id"], data={"kind": "note"})
        )
        assert (reply["type"], reply["code"]) == ("error", "bad_request")
        events = (
            await b.rest("GET", f"/api/projects/{b.pid}/events", params={"after": joined["seq"]})
        ).json()
        assert [e["kind"] for e in events["events"]] == ["room.created"]
        theirs = (await other.rest("GET", f"/api/projects/{other.pid}/rooms")).json()
        assert [r["name"] for r in theirs] == ["Theirs"]


async def test_viewers_and_downgraded_editors_cannot_edit(server: ServerProcess) -> None:
    """A viewer's edit is forbidden; an editor demoted while connected is refused next time."""
    b = await board(server)
    editor_id, editor = await signup(server.url, "Ed", f"ed-{uuid.uuid4().hex[:8]}@example.com")
    me = (await b.rest("GET", "/api/me", editor)).json()
    await b.rest(
        "POST", f"/api/projects/{b.pid}/members", json={"email": me["email"], "role": "editor"}
    )
    async with ws(server.url, editor) as sock:
        await join(sock, b)
        ok = await sock.request(b.edit(action="create", entity="room", data={"name": "Ok"}))
        assert ok["type"] == "ack"
        demoted = await b.rest(
            "PATCH", f"/api/projects/{b.pid}/members/{editor_id}", json={"role": "viewer"}
        )
        assert demoted.status_code == 200
        refused = await sock.request(b.edit(action="create", entity="room", data={"name": "No"}))
        assert (refused["type"], refused["code"]) == ("error", "forbidden")


async def test_events_endpoint_pages_the_log(server: ServerProcess) -> None:
    """GET events?after=&limit= returns the events after a seq in order, and the head seq."""
    b = await board(server)
    for i in range(5):
        response = await b.rest("POST", f"/api/projects/{b.pid}/rooms", json={"name": f"r{i}"})
        assert response.status_code == 201
    page = (
        await b.rest("GET", f"/api/projects/{b.pid}/events", params={"after": 1, "limit": 3})
    ).json()
    assert page["seq"] == b.project["seq"] + 5
    assert [e["seq"] for e in page["events"]] == [2, 3, 4]
    assert all(e["type"] == "event" and e["project_id"] == b.pid for e in page["events"])
    bad = await b.rest("GET", f"/api/projects/{b.pid}/events", params={"limit": 5000})
    assert bad.status_code == 400
