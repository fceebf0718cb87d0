"""Maintenance jobs (server/ops/maintenance.py) delete exactly what their rules name."""

from __future__ import annotations

import asyncio
import dataclasses
import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from server import metrics
from server.access.tables import UserSession
from server.access.users import create_user
from server.db.tables import TABLES
from server.ops.maintenance import LOCK_KEY, reap_presence, run_once, run_periodically
from server.projects.tables import Invitation, Project
from server.realtime.presence import RedisPresence
from server.realtime.protocol import PresenceEntry
from server.settings import MaintenancePolicy
from tests.api.conftest import app_for, serving
from tests.servers import server_env

DAY = timedelta(days=1)
POLICY = MaintenancePolicy(keep_events=10_000, keep_event_days=30, keep_ended_days=7)


async def counts() -> dict[str, int]:
    return {t._meta.tablename: await t.count() for t in TABLES}


async def seed(engine: Any) -> tuple[dict[str, uuid.UUID], dict[str, uuid.UUID]]:
    """Sessions and invitations in every state; returns their ids by name."""
    user = await create_user(
        engine,
        email=f"m-{uuid.uuid4().hex[:8]}@example.com",
        password="correct horse battery",
        name="M",
        signup_credits=5,
    )
    project = Project(name="P", owner_id=user.id)
    await project.save()
    now = datetime.now(UTC)
    sessions = {  # name: (expires_at, revoked_at)
        "live": (now + DAY, None),
        "expired_recently": (now - DAY, None),
        "expired_long_ago": (now - 10 * DAY, None),
        "revoked_recently": (now + DAY, now - DAY),
        "revoked_long_ago": (now + 30 * DAY, now - 10 * DAY),
    }
    session_ids = {}
    for name, (expires_at, revoked_at) in sessions.items():
        session_ids[name] = uuid.uuid4()
        await UserSession.insert(
            UserSession(
                id=session_ids[name],
                user_id=user.id,
                token_hash=uuid.uuid4().hex,
                expires_at=expires_at,
                revoked_at=revoked_at,
            )
        )
    invitations = {  # name: (expires_at, used_at)
        "open": (now + DAY, None),
        "expired_recently": (now - DAY, None),
        "expired_long_ago": (now - 10 * DAY, None),
        "used_recently": (now - 20 * DAY, now - DAY),
        "used_long_ago": (now + DAY, now - 10 * DAY),
    }
    invitation_ids = {}
    for name, (expires_at, used_at) in invitations.items():
        invitation_ids[name] = uuid.uuid4()
        await Invitation.insert(
            Invitation(
                id=invitation_ids[name],
                project_id=project.id,
                email="guest@example.com",
                role="viewer",
                token_hash=uuid.uuid4().hex,
                expires_at=expires_at,
                used_at=used_at,
                used_by=None if used_at is None else user.id,
            )
        )
    return session_ids, invitation_ids


async def test_jobs_delete_only_what_ended_long_ago(engine: Any) -> None:
    """Sessions and invitations that ended over 7 days ago go; everything else stays."""
    sessions, invitations = await seed(engine)
    before = await counts()
    report = await run_once(engine, POLICY)
    assert report is not None
    assert (report.sessions, report.invitations, report.events, report.presence) == (2, 2, 0, 0)
    # The run's database is shared with other tests: look at this test's rows only.
    seeded = set(sessions.values()) | set(invitations.values())
    left_sessions = {r["id"] for r in await UserSession.select(UserSession.id)} & seeded
    assert left_sessions == {sessions[n] for n in ("live", "expired_recently", "revoked_recently")}
    left_invitations = {r["id"] for r in await Invitation.select(Invitation.id)} & seeded
    assert left_invitations == {
        invitations[n] for n in ("open", "expired_recently", "used_recently")
    }
    after = await counts()
    removed = {t: before[t] - after[t] for t in before if before[t] != after[t]}
    assert removed == {"user_session": 2, "invitation": 2}
    again = await run_once(engine, POLICY)
    assert again is not None
    assert (again.sessions, again.invitations) == (0, 0)


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_only_one_runner_at_a_time(database_url: str, engine: Any) -> None:
    """While another holder has the advisory lock, a run does nothing and says so."""
    await seed(engine)
    before = await counts()
    holder = await asyncpg.connect(database_url)
    try:
        assert await holder.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_KEY)
        assert await run_once(engine, POLICY) is None
        assert await counts() == before
    finally:
        await holder.close()  # the session ends: so does its lock
    report = await run_once(engine, POLICY)
    assert report is not None
    assert report.sessions == 2


@pytest.mark.redis
async def test_presence_of_dead_instances_is_reaped(redis_url: str) -> None:
    """Entries of an instance whose heartbeat expired go; a live instance's stay."""
    prefix = f"mbtest-{uuid.uuid4().hex[:8]}:"
    client = aioredis.from_url(redis_url)
    try:
        dead = RedisPresence(client, "dead", prefix=prefix)
        live = RedisPresence(client, "live", prefix=prefix)
        project = uuid.uuid4()
        entry = PresenceEntry(user_id=uuid.uuid4(), name="A", state={})
        for presence, connection in ((dead, "dead.1"), (dead, "dead.2"), (live, "live.1")):
            await presence._heartbeat()
            await presence.put(project, connection, entry)
        await client.delete(f"{prefix}instance:dead:alive")  # its heartbeat expired
        assert await reap_presence(client, prefix=prefix) == 2
        assert set(await live.members(project)) == {"live.1"}
        assert {m.decode() for m in await client.smembers(f"{prefix}instances")} == {"live"}
        assert await reap_presence(client, prefix=prefix) == 0
    finally:
        keys = [k async for k in client.scan_iter(f"{prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def test_maintenance_command_reports_what_it_did(engine: Any, database_url: str) -> None:
    """``moodboard maintenance`` runs the jobs and prints one line of counts."""
    await seed(engine)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server.cli",
        "maintenance",
        env=server_env(database_url),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    assert "2 ended sessions, 2 ended invitations" in out.decode()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_running_server_runs_the_jobs_by_itself(database_url: str, engine: Any) -> None:
    """With MOODBOARD_MAINTENANCE_INTERVAL_S=1 the server deletes ended rows on its own.

    A round deletes sessions, then invitations: the test waits for both while the server runs
    (stopping it right after the sessions went would cancel the round before the invitations).
    """
    await seed(engine)
    app = app_for(database_url, MOODBOARD_MAINTENANCE_INTERVAL_S="1")
    async with serving(app):
        for _ in range(200):  # the first round comes one interval after the start
            if (await UserSession.count(), await Invitation.count()) == (3, 3):
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(
                "no maintenance round within 20 s: "
                f"{await UserSession.count()} sessions, {await Invitation.count()} invitations"
            )


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_failed_round_is_counted(engine: Any) -> None:
    """A round that raises is logged and counted (MoodboardMaintenanceFailing), then retried."""
    before = metrics.MAINTENANCE_FAILURES._value.get()
    broken = dataclasses.replace(POLICY, batch_rows=0)  # every batched delete refuses it
    loop = asyncio.create_task(run_periodically(engine, broken, 0.05, None))
    try:
        for _ in range(100):
            if metrics.MAINTENANCE_FAILURES._value.get() >= before + 2:
                break
            await asyncio.sleep(0.02)
    finally:
        loop.cancel()
    assert metrics.MAINTENANCE_FAILURES._value.get() >= before + 2  # and the loop went on
