"""Maintenance jobs: what the database (and Redis) may forget, run by one instance at a time.

``moodboard maintenance`` runs them once (from cron, say); with
``MOODBOARD_MAINTENANCE_INTERVAL_S`` > 0 every server instance also runs them
periodically, and on PostgreSQL a session advisory lock makes sure only one
instance (or the command) works at a time; the others skip that round. The
lock lives on a connection opened for it: if its process dies, PostgreSQL
ends the session and the lock with it.

The jobs, each deleting only what its rule names (docs/operations.md "Maintenance"):

- the event log and op outcomes: server/events/retention.py;
- sessions that ended (expired, or revoked) more than ``keep_days`` ago;
- invitations that ended (expired unused, or used) more than ``keep_days`` ago;
- presence entries in Redis of instances that stopped heartbeating (normally
  the live instances reap them; this covers the case where none is running);
- purge: projects deleted, and erased accounts' sessions, more than
  ``purge_after_days`` ago (server/ops/purge.py);
- statistics: ``ANALYZE`` of the pruned tables (PostgreSQL), ``PRAGMA optimize``
  (SQLite). VACUUM is autovacuum's job (see docs/operations.md).

Every delete goes at most ``policy.batch_rows`` rows per statement. Each
round's counts, its end time and its failures are exported on ``/metrics``
(server/metrics.py, ``maintenance_*``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine

from server import metrics
from server.access.tables import UserSession
from server.db.batches import delete_in_batches
from server.db.engine import ServerPostgresEngine
from server.events.retention import prune
from server.log import get_logger
from server.ops.purge import Purged, purge
from server.projects.tables import Invitation
from server.realtime.presence import RedisPresence
from server.settings import MaintenancePolicy

log = get_logger(__name__)
LOCK_KEY = 0x6D6F6F64_626F6172 & 0x7FFFFFFFFFFFFFFF  # "moodboar": one bigint for the job
ANALYZED = ("event", "operation", "user_session", "invitation", "project", "item")


@dataclass(frozen=True, slots=True)
class Report:
    """How many rows (or presence entries) each job removed."""

    events: int
    operations: int
    sessions: int
    invitations: int
    presence: int
    purged: Purged = field(default_factory=Purged)

    def summary(self) -> str:
        return (
            f"event log: {self.events} events and {self.operations} op outcomes pruned; "
            f"{self.sessions} ended sessions, {self.invitations} ended invitations and "
            f"{self.presence} stale presence entries deleted; purged: "
            f"{self.purged.projects} deleted projects ({self.purged.rows} rows, "
            f"{self.purged.files} files), {self.purged.sessions} sessions of erased accounts"
        )


@contextlib.asynccontextmanager
async def exclusive(engine: Engine[Any]) -> AsyncIterator[bool]:
    """Yields True when this process may run the jobs now (False: another one is)."""
    if not isinstance(engine, PostgresEngine):
        yield True  # SQLite: one embedded instance
        return
    # A connection of its own, not a pool one: the jobs need the pool meanwhile. A
    # direct session (MOODBOARD_DATABASE_LISTEN_URL): behind a transaction-mode pooler
    # the lock would stay on a server connection after this one closed.
    if isinstance(engine, ServerPostgresEngine):
        connection = await asyncpg.connect(engine.session_dsn)
    else:
        connection = await engine.get_new_connection()
    try:
        yield bool(await connection.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_KEY))
    finally:
        await connection.close()  # ends the session: the lock goes with it


async def delete_ended_sessions(keep_days: int, now: datetime, batch: int = 1000) -> int:
    """Sessions that expired or were revoked more than ``keep_days`` ago."""
    cutoff = now - timedelta(days=keep_days)
    return await delete_in_batches(
        UserSession,
        (UserSession.expires_at < cutoff) | (UserSession.revoked_at < cutoff),
        batch=batch,
    )


async def delete_ended_invitations(keep_days: int, now: datetime, batch: int = 1000) -> int:
    """Invitations that expired unused, or were used, more than ``keep_days`` ago."""
    cutoff = now - timedelta(days=keep_days)
    return await delete_in_batches(
        Invitation,
        (Invitation.used_at.is_null() & (Invitation.expires_at < cutoff))
        | (Invitation.used_at < cutoff),
        batch=batch,
    )


async def reap_presence(client: aioredis.Redis, prefix: str = "mb:") -> int:
    """Remove the presence entries of instances whose heartbeat expired.

    No leaves are announced from here: a live instance reaping the same entries
    announces them, and with no live instance there is nobody to tell.
    """
    return await RedisPresence(client, "maintenance", prefix=prefix).reap_dead()


async def analyze(engine: Engine[Any]) -> None:
    """Fresh planner statistics after the deletes."""
    if isinstance(engine, PostgresEngine):
        await engine.run_ddl(f"ANALYZE {', '.join(ANALYZED)}")
    else:
        await engine.run_ddl("PRAGMA optimize")


async def run_once(
    engine: Engine[Any],
    policy: MaintenancePolicy,
    *,
    redis: aioredis.Redis | None = None,
    redis_prefix: str = "mb:",
    now: datetime | None = None,
) -> Report | None:
    """Run every job once; None when another instance holds the lock (nothing done)."""
    now = now or datetime.now(UTC)
    async with exclusive(engine) as mine:
        if not mine:
            return None
        batch = policy.batch_rows
        pruned = await prune(
            keep_events=policy.keep_events, keep_days=policy.keep_event_days, now=now, batch=batch
        )
        report = Report(
            events=pruned.events,
            operations=pruned.operations,
            sessions=await delete_ended_sessions(policy.keep_ended_days, now, batch),
            invitations=await delete_ended_invitations(policy.keep_ended_days, now, batch),
            presence=0 if redis is None else await reap_presence(redis, redis_prefix),
            purged=await purge(
                after_days=policy.purge_after_days,
                now=now,
                batch=batch,
                storage_dir=policy.storage_dir,
            ),
        )
        await analyze(engine)
    metrics.maintenance_done(
        {
            "events": report.events,
            "operations": report.operations,
            "sessions": report.sessions,
            "invitations": report.invitations,
            "purge": report.purged.rows,
        },
        projects=report.purged.projects,
        files=report.purged.files,
    )
    log.info(
        "maintenance.done",
        events=report.events,
        operations=report.operations,
        sessions=report.sessions,
        invitations=report.invitations,
        presence=report.presence,
        purged_projects=report.purged.projects,
        purged_rows=report.purged.rows,
        purged_files=report.purged.files,
        purged_sessions=report.purged.sessions,
    )
    return report


async def run_periodically(
    engine: Engine[Any],
    policy: MaintenancePolicy,
    interval_s: float,
    redis: aioredis.Redis | None,
    redis_prefix: str = "mb:",
) -> None:
    """The in-server loop: a round every ``interval_s`` (the first one after a full interval)."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            if await run_once(engine, policy, redis=redis, redis_prefix=redis_prefix) is None:
                log.info("maintenance.skipped", reason="another instance holds the lock")
        except Exception as exc:  # a failed round is retried next interval
            metrics.MAINTENANCE_FAILURES.inc()
            log.error("maintenance.failed", error=repr(exc))
