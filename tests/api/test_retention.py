"""Event-log retention: the last N events or D days stay; older resumes get snapshots."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from server.events.reads import read_events, read_resume
from server.events.retention import prune
from server.events.tables import Event
from tests.api.conftest import Api
from tests.delete_probe import delete_statement_sizes


async def _project_with_history(api: Api, rooms: int) -> tuple[dict[str, str], str, int]:
    owner = await api.register("owner")
    project = await api.project(owner)
    for i in range(rooms):
        response = await api.client.post(
            f"/api/projects/{project['id']}/rooms", json={"name": f"r{i}"}, headers=owner.auth
        )
        assert response.status_code == 201
    head = project["seq"] + rooms
    return owner.auth, project["id"], head


async def test_prune_keeps_the_last_events_and_the_recent_ones(api: Api) -> None:
    """Old events beyond the last N go; recent ones stay whatever their number."""
    auth, pid, head = await _project_with_history(api, 10)
    removed = await prune(keep_events=3, keep_days=1)
    assert removed.events == 0  # everything is recent: nothing may go yet
    old = datetime.now(UTC) - timedelta(days=5)
    await Event.update({Event.at: old}).where(Event.project_id == uuid.UUID(pid))
    removed = await prune(keep_events=3, keep_days=1)
    assert removed.events == head - 3
    # This project's events only: the database may hold other tests' projects.
    left = [
        r["seq"]
        for r in await Event.select(Event.seq)
        .where(Event.project_id == uuid.UUID(pid))
        .order_by(Event.seq)
    ]
    assert left == [head - 2, head - 1, head]
    page = (
        await api.client.get(f"/api/projects/{pid}/events", params={"after": 0}, headers=auth)
    ).json()
    assert [e["seq"] for e in page["events"]] == left


async def test_resume_beyond_the_log_falls_back_to_a_snapshot(api: Api) -> None:
    """A last_seq the log no longer covers gets no replay (None: the join sends a snapshot)."""
    _, pid, head = await _project_with_history(api, 6)
    old = datetime.now(UTC) - timedelta(days=5)
    await Event.update({Event.at: old}).where(Event.project_id == uuid.UUID(pid))
    await prune(keep_events=2, keep_days=1)
    # The socket's resume reads the head and the events in one query.
    assert await read_resume(uuid.UUID(pid), head - 2) == (
        head,
        await read_events(uuid.UUID(pid), head - 2, head),
    )
    assert await read_resume(uuid.UUID(pid), head) == (head, [])
    assert await read_resume(uuid.UUID(pid), head - 3) == (head, None)
    assert await read_resume(uuid.UUID(pid), head + 1) == (head, None)
    assert await read_resume(uuid.uuid4(), 0) is None  # no such project


async def test_stale_write_without_history_conflicts(api: Api) -> None:
    """When the versions after a base are pruned, a stale PATCH conflicts instead of merging."""
    owner = await api.register("owner")
    project = await api.project(owner)
    url = f"/api/projects/{project['id']}"
    for i in range(3):
        response = await api.client.patch(
            url, json={"base_version": 1 + i, "name": f"n{i}"}, headers=owner.auth
        )
        assert response.status_code == 200
    old = datetime.now(UTC) - timedelta(days=5)
    await Event.update({Event.at: old}).where(Event.project_id == uuid.UUID(project["id"]))
    await prune(keep_events=1, keep_days=1)
    stale = await api.client.patch(
        url, json={"base_version": 1, "description": "d"}, headers=owner.auth
    )
    assert stale.status_code == 409  # would have merged with the full history
    assert stale.json()["fields"] == ["description"]


async def test_prune_goes_in_batches(api: Api) -> None:
    """The first prune of a long log: many statements of at most ``batch`` rows each."""
    _, pid, head = await _project_with_history(api, 10)
    await Event.update({Event.at: datetime.now(UTC) - timedelta(days=5)}).where(
        Event.project_id == uuid.UUID(pid)
    )
    statements = await delete_statement_sizes(api.ctx.engine, "event")
    removed = await prune(keep_events=1, keep_days=1, batch=3)
    assert removed.events == head - 1
    assert [r["seq"] for r in await Event.select(Event.seq)] == [head]
    if statements is not None:  # PostgreSQL: each statement within the batch
        sizes = await statements()
        assert sum(sizes) == head - 1
        assert max(sizes) <= 3
