"""Purge (server/ops/purge.py): a deleted project, past the grace period, leaves no row and no file.

Driven through the REST API on both engines: a project with rooms, items,
a generation, a stored file, members, an invitation and its event log is
deleted; maintenance inside the grace period keeps every row of it, and
after it nothing in any table names the project and its storage directory is
gone, while a live project next to it is untouched. The erasure rule of
docs/security.md is then checked end to end: after an account is erased and
the purge has run, no table holds its e-mail, name or user agent.
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from server.db.engine import write_transaction
from server.db.tables import TABLES
from server.ops.maintenance import run_once
from server.projects import resources
from server.settings import MaintenancePolicy
from server.types import ProjectId
from tests.api.conftest import PASSWORD, Account, Api
from tests.delete_probe import delete_statement_sizes

PNG = b"\x89PNG\r\n\x1a\n" + b"purge-test" * 10
BATCH = 3


async def rows_naming(*needles: str) -> dict[str, int]:
    """Per table, the rows whose text holds any of ``needles``."""
    found: dict[str, int] = {}
    for table in TABLES:
        hits = sum(1 for row in await table.select() if any(n in str(row) for n in needles))
        if hits:
            found[table._meta.tablename] = hits
    return found


async def filled_project(api: Api, owner: Account, member: Account, name: str) -> str:
    """A project with a room, items, a generation, a stored file, a member, an invitation."""
    pid = (await api.project(owner, name))["id"]
    base = f"/api/projects/{pid}"
    room = (await api.client.post(f"{base}/rooms", json={"name": "R"}, headers=owner.auth)).json()
    for i in range(4):
        made = await api.client.post(
            f"{base}/rooms/{room['id']}/items",
            json={"kind": "note", "data": {"text": f"n{i}"}},
            headers=owner.auth,
        )
        assert made.status_code == 201, made.text
    asked = await api.client.post(
        f"{base}/generations", json={"room_id": room["id"], "prompt": "oak"}, headers=owner.auth
    )
    assert asked.status_code == 202, asked.text
    await api.add_member(owner, pid, member, "editor")
    invited = await api.client.post(
        f"{base}/invitations",
        json={"email": "guest@example.com", "role": "viewer"},
        headers=owner.auth,
    )
    assert invited.status_code == 201, invited.text
    stored = await resources.write_file(
        api.ctx.settings.storage_dir, ProjectId(pid), "image/png", PNG
    )
    async with write_transaction(api.ctx.engine):
        await resources.record(
            ProjectId(pid), stored, kind="upload", name="a.png", room_id=None, metadata={}
        )
    return str(pid)


def policy(api: Api) -> MaintenancePolicy:
    """Purge after 30 days, 3 rows per statement; ended sessions and invitations kept (the
    purge is what must remove them here)."""
    return dataclasses.replace(
        api.ctx.settings.maintenance_policy,
        purge_after_days=30,
        batch_rows=BATCH,
        keep_ended_days=36_500,
    )


async def test_a_purged_project_leaves_no_row_and_no_file(api: Api) -> None:
    owner, member = await api.register("owner"), await api.register("member")
    doomed = await filled_project(api, owner, member, "Doomed")
    kept = await filled_project(api, owner, member, "Kept")
    storage = Path(api.ctx.settings.storage_dir)
    assert any((storage / doomed).iterdir())
    deleted = await api.client.delete(f"/api/projects/{doomed}", headers=owner.auth)
    assert deleted.status_code == 204
    before = await rows_naming(doomed)
    assert {
        "project",
        "room",
        "item",
        "event",
        "generation",
        "project_resource",
        "project_member",
        "invitation",
    } <= set(before)
    kept_before = await rows_naming(kept)

    now = datetime.now(UTC)
    report = await run_once(api.ctx.engine, policy(api), now=now + timedelta(days=29))
    assert report is not None
    assert report.purged.projects == 0
    assert await rows_naming(doomed) == before  # the grace period: everything still there

    statements = await delete_statement_sizes(api.ctx.engine, "event")
    report = await run_once(api.ctx.engine, policy(api), now=now + timedelta(days=31))
    assert report is not None
    assert (report.purged.projects, report.purged.files) == (1, 1)
    assert report.purged.rows >= sum(before.values())
    assert await rows_naming(doomed) == {}
    assert not (storage / doomed).exists()
    assert await rows_naming(kept) == kept_before  # its neighbour is untouched
    assert any((storage / kept).iterdir())
    if statements is not None:  # PostgreSQL: no statement deleted more than a batch
        sizes = await statements()
        assert len(sizes) > 1, sizes
        assert max(sizes) <= BATCH, sizes

    metrics = (await api.client.get("/metrics")).text
    assert "moodboard_purged_projects_total " in metrics
    assert 'moodboard_maintenance_deleted_rows_total{job="purge"}' in metrics
    assert "moodboard_maintenance_last_success_timestamp " in metrics


async def test_erasure_leaves_nothing_personal_after_the_purge(api: Api) -> None:
    """docs/security.md "Personal data", end to end: erase, purge, search every table."""
    name = f"Zebulon{uuid.uuid4().hex[:6]}"
    erased = await api.register(name)
    heir = await api.register("heir")
    agent = f"ErasureAgent/{uuid.uuid4().hex[:6]}"
    login = await api.client.post(
        "/api/auth/login",
        json={"email": erased.email, "password": PASSWORD},
        headers={"User-Agent": agent},
    )
    assert login.status_code == 200
    api.client.cookies.clear()
    alone = await filled_project(api, erased, heir, "Alone")
    removed = await api.client.delete(
        f"/api/projects/{alone}/members/{heir.id}", headers=erased.auth
    )
    assert removed.status_code == 204  # only the erased user is left in it: it goes with them
    shared = await filled_project(api, erased, heir, "Shared")
    assert await rows_naming(erased.email, name, agent)

    gone = await api.client.request(
        "DELETE", "/api/me", json={"password": PASSWORD}, headers=erased.auth
    )
    assert gone.status_code == 204, gone.text
    report = await run_once(api.ctx.engine, policy(api), now=datetime.now(UTC) + timedelta(days=31))
    assert report is not None
    assert report.purged.projects == 1
    assert await rows_naming(erased.email, name, agent) == {}
    assert await rows_naming(alone) == {}
    assert not (Path(api.ctx.settings.storage_dir) / alone).exists()
    # The shared project passed to the heir, with everything the erased user made in it.
    listed = await api.client.get("/api/projects", headers=heir.auth)
    assert shared in listed.text
    assert "user_session" not in await rows_naming(erased.id)
