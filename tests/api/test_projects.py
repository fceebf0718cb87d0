"""Projects over REST: versioned PATCH with field-level merge, soft delete, event log."""

from __future__ import annotations

import asyncio
from typing import Any

from server.events.tables import Event
from tests.api.conftest import PASSWORD, Api, app_for, serving
from tests.conftest import free_port


async def test_stale_patch_merges_or_conflicts_by_field(api: Api) -> None:
    """A stale PATCH merges when its fields were untouched since its base, else 409 (overlap)."""
    owner = await api.register("owner")
    project = await api.project(owner)
    url = f"/api/projects/{project['id']}"
    first = await api.client.patch(url, json={"base_version": 1, "name": "A"}, headers=owner.auth)
    assert first.json()["version"] == 2
    merged = await api.client.patch(
        url, json={"base_version": 1, "description": "south facing"}, headers=owner.auth
    )
    assert merged.status_code == 200
    assert merged.json()["version"] == 3
    assert (merged.json()["name"], merged.json()["description"]) == ("A", "south facing")

    conflict = await api.client.patch(
        url, json={"base_version": 1, "name": "B"}, headers=owner.auth
    )
    assert conflict.status_code == 409
    assert conflict.headers["content-type"].startswith("application/problem+json")
    body = conflict.json()
    assert body["code"] == "conflict"
    assert (body["entity"], body["id"]) == ("project", project["id"])
    assert (body["base_version"], body["current_version"], body["fields"]) == (1, 3, ["name"])
    assert body["current"]["name"] == "A"
    assert body["current"]["version"] == 3
    after = (await api.client.get(url, headers=owner.auth)).json()
    assert (after["name"], after["version"]) == ("A", 3)  # the conflict wrote nothing


async def test_concurrent_patches_never_lose_an_update(api: Api) -> None:
    """Ten PATCHes of the name from the same base: one wins, nine conflict, versions stay dense."""
    owner = await api.register("owner")
    project = await api.project(owner)
    url = f"/api/projects/{project['id']}"
    results = await asyncio.gather(
        *(
            api.client.patch(url, json={"base_version": 1, "name": f"n{i}"}, headers=owner.auth)
            for i in range(10)
        )
    )
    statuses = sorted(r.status_code for r in results)
    assert statuses == [200] + [409] * 9
    winner = next(r.json() for r in results if r.status_code == 200)
    current = (await api.client.get(url, headers=owner.auth)).json()
    assert (current["name"], current["version"]) == (winner["name"], 2)
    seqs = [row["seq"] for row in await Event.select(Event.seq).order_by(Event.seq)]
    assert seqs == list(range(1, current["seq"] + 1))  # no gap, no duplicate


async def test_patch_rejects_unknown_or_empty_changes(api: Api) -> None:
    """Unknown fields are 400 naming them; a PATCH with nothing to change is 422."""
    owner = await api.register("owner")
    project = await api.project(owner)
    url = f"/api/projects/{project['id']}"
    unknown = await api.client.patch(
        url, json={"base_version": 1, "owner_id": owner.id}, headers=owner.auth
    )
    assert unknown.status_code == 400
    assert unknown.json()["detail"].startswith("owner_id: ")
    empty = await api.client.patch(url, json={"base_version": 1}, headers=owner.auth)
    assert empty.status_code == 422
    assert (await api.client.get(url, headers=owner.auth)).json()["version"] == 1


async def test_deleted_project_disappears_everywhere(api: Api) -> None:
    """After DELETE (owner only) the project is 403 for everyone and gone from every list."""
    owner = await api.register("owner")
    editor = await api.register("editor")
    project = await api.project(owner)
    await api.add_member(owner, project["id"], editor, "editor")
    url = f"/api/projects/{project['id']}"
    assert (await api.client.delete(url, headers=editor.auth)).status_code == 403
    assert (await api.client.delete(url, headers=owner.auth)).status_code == 204
    for who in (owner, editor):
        assert (await api.client.get(url, headers=who.auth)).status_code == 403
        assert (await api.client.get("/api/projects", headers=who.auth)).json() == []
    assert (await api.client.delete(url, headers=owner.auth)).status_code == 403
    kinds = [row["kind"] for row in await Event.select(Event.kind).order_by(Event.seq)]
    assert kinds[-1] == "project.deleted"
    assert project["id"] in {str(pid) for pid, _ in api.ctx.notifier.access}  # type: ignore[attr-defined]


async def test_patch_answers_the_project_as_it_now_is(api: Api) -> None:
    """A PATCH's answer is the project after it: new version, new seq, new updated_at."""
    owner = await api.register("owner")
    project = await api.project(owner)
    url = f"/api/projects/{project['id']}"
    patched = (
        await api.client.patch(url, json={"base_version": 1, "name": "N"}, headers=owner.auth)
    ).json()
    fetched = (await api.client.get(url, headers=owner.auth)).json()
    assert patched == fetched
    assert (patched["version"], patched["seq"]) == (2, project["seq"] + 1)


async def test_writes_succeed_while_the_bus_is_down(engine: Any, database_url: str) -> None:
    """With Redis unreachable a committed write still answers success (delivery comes later)."""
    dead = f"redis://127.0.0.1:{free_port()}/0"
    async with serving(app_for(database_url, REDIS_URL=dead)) as client:
        response = await client.post(
            "/api/auth/register",
            json={"email": "bus@example.com", "password": PASSWORD, "name": "Bus"},
        )
        assert response.status_code == 201
        auth = {"Authorization": f"Bearer {response.json()['token']}"}
        created = await client.post("/api/projects", json={"name": "Offline bus"}, headers=auth)
        assert created.status_code == 201
        pid = created.json()["id"]
        patched = await client.patch(
            f"/api/projects/{pid}", json={"base_version": 1, "name": "B"}, headers=auth
        )
        assert patched.status_code == 200
        events = (await client.get(f"/api/projects/{pid}/events", headers=auth)).json()
        assert [e["kind"] for e in events["events"]] == [
            "project.created",
            "member.created",
            "project.updated",
        ]


async def test_an_idempotency_key_makes_a_retried_write_apply_once(api: Api) -> None:
    """A REST write retried with the same Idempotency-Key answers as before and writes nothing."""
    owner = await api.register("owner")
    project = await api.project(owner)
    base = f"/api/projects/{project['id']}"
    room = (
        await api.client.post(
            f"{base}/rooms", json={"name": "Kitchen", "room_type": "kitchen"}, headers=owner.auth
        )
    ).json()
    create = {"kind": "note", "x": 1, "y": 2, "w": 30, "h": 40, "data": {"text": "hi"}}
    once = {**owner.auth, "Idempotency-Key": "create-note-1"}
    made = [
        await api.client.post(f"{base}/rooms/{room['id']}/items", json=create, headers=once)
        for _ in range(2)
    ]
    assert [r.status_code for r in made] == [201, 201]
    assert made[0].json() == made[1].json()
    item = made[0].json()
    move = {**owner.auth, "Idempotency-Key": "move-note-1"}
    moved = [
        await api.client.patch(
            f"{base}/items/{item['id']}", json={"base_version": 1, "x": 99}, headers=move
        )
        for _ in range(2)
    ]
    assert [r.status_code for r in moved] == [200, 200]
    assert [r.json()["version"] for r in moved] == [2, 2]
    items = (await api.client.get(f"{base}/rooms/{room['id']}/items", headers=owner.auth)).json()
    assert [(i["id"], i["x"], i["version"]) for i in items] == [(item["id"], 99, 2)]
    events = (await api.client.get(f"{base}/events", headers=owner.auth)).json()["events"]
    assert [e["kind"] for e in events if e.get("entity") == "item"] == [
        "item.created",
        "item.updated",
    ]

    too_long = {**owner.auth, "Idempotency-Key": "k" * 65}
    refused = await api.client.patch(
        f"{base}/items/{item['id']}", json={"base_version": 2, "x": 5}, headers=too_long
    )
    assert refused.status_code == 400
    assert "Idempotency-Key" in refused.json()["detail"]
    after = (await api.client.get(f"{base}/rooms/{room['id']}/items", headers=owner.auth)).json()
    assert (after[0]["x"], after[0]["version"]) == (99, 2)
