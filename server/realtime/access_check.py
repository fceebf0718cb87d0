"""The durable side of access: every instance re-checks its own sockets in the database.

A change of access (a member removed or made a viewer, a team grant or team
membership changed, a session logged out, revoked or expired, an account
erased, a project deleted) is first a committed row in PostgreSQL, then a
control message on the bus (control.py) so that every instance acts at
once. A control message published while Redis is down is gone: nothing
retries it. So each instance also reads, on its own, the state of every
session and every (project, user) pair its sockets hold: every
``MOODBOARD_ACCESS_CHECK_MS`` (1 s) and at once after the bus reconnects;
a round reads everything only when the database's access-change counter
moved (or a session expired, or every 30 s), else only what is new
(server/realtime/access_rounds.py).
A socket whose login session ended closes with 4401; a socket that lost
access to a project it follows gets ``left`` with reason ``access_revoked``
(docs/architecture.md §5). At most three statements a round, whatever the
number of sockets; a round that finds everything in order changes nothing.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from server import metrics
from server.access.tables import UserSession
from server.concurrency.backoff import Backoff
from server.db.raw import runner_of
from server.log import get_logger
from server.projects.access import role_on
from server.realtime.access_rounds import AccessRounds, Pair
from server.realtime.registry import SocketRegistry
from server.types import ProjectId, UserId

if TYPE_CHECKING:
    from server.realtime.connection import Connection

log = get_logger(__name__)
ACCESS_CHECK_S = 1.0
# After a failed round (the database restarting), the next comes this soon, doubling up to the
# period: a revocation whose control message was lost meanwhile waits for the database, not for
# a whole period after it is back (chaos: a logout just before a PostgreSQL restart).
RETRY_AFTER_FAILURE_S = 0.1

_LIVE_SESSIONS_PG = """
SELECT id, expires_at FROM user_session
WHERE id = ANY($1::uuid[]) AND revoked_at IS NULL AND expires_at > now()
"""
# Bumped by triggers on every change that can end access (migration 2026-12-07T16:00).
_ACCESS_CHANGES_PG = "SELECT n FROM access_change WHERE id = 1"

# The pairs that still have a role: a live project, and a direct membership or a team grant.
_PAIRS_WITH_ACCESS_PG = """
SELECT t.p AS project_id, t.u AS user_id
FROM unnest($1::uuid[], $2::uuid[]) AS t(p, u)
WHERE EXISTS (SELECT 1 FROM project pr WHERE pr.id = t.p AND pr.deleted_at IS NULL)
  AND (EXISTS (SELECT 1 FROM project_member m WHERE m.project_id = t.p AND m.user_id = t.u)
       OR EXISTS (SELECT 1 FROM project_team_grant g
                  JOIN team_member tm ON tm.team_id = g.team_id
                  WHERE g.project_id = t.p AND tm.user_id = t.u))
"""


async def access_changes() -> int | None:
    """The database's access-change counter (None on SQLite: there, every round reads all)."""
    runner = runner_of(UserSession)
    if runner is None:
        return None
    value = await runner.fetchval(_ACCESS_CHANGES_PG)
    return None if value is None else int(value)


async def live_sessions(session_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, datetime]:
    """Which of these login sessions are neither revoked nor expired, and when each expires."""
    ids = list(session_ids)
    if not ids:
        return {}
    runner = runner_of(UserSession)
    if runner is not None:
        rows = await runner.fetch(_LIVE_SESSIONS_PG, ids)
    else:  # SQLite (embedded mode): the general path
        rows = await UserSession.select(UserSession.id, UserSession.expires_at).where(
            UserSession.id.is_in(ids)
            & UserSession.revoked_at.is_null()
            & (UserSession.expires_at > datetime.now(UTC))
        )
    return {_uuid(row["id"]): _aware(row["expires_at"]) for row in rows}


def _uuid(value: uuid.UUID | str) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(value)


def _aware(value: datetime | str) -> datetime:
    """SQLite hands timestamps back as naive UTC (or text)."""
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


async def pairs_with_access(pairs: Iterable[Pair]) -> set[Pair]:
    """Which (project, user) pairs still have a role on a live project (one statement)."""
    wanted = list(set(pairs))
    if not wanted:
        return set()
    runner = runner_of(UserSession)
    if runner is not None:
        rows = await runner.fetch(
            _PAIRS_WITH_ACCESS_PG, [p for p, _ in wanted], [u for _, u in wanted]
        )
        return {(row["project_id"], row["user_id"]) for row in rows}
    # SQLite (embedded mode, one instance, a handful of sockets): one role read a pair.
    allowed = set()
    for project_id, user_id in wanted:
        if await role_on(ProjectId(project_id), UserId(user_id)) is not None:
            allowed.add((project_id, user_id))
    return allowed


class AccessCheck:
    """Re-checks, from the database, the access of every socket on this instance.

    A round reads everything only when something may have ended access since
    the last full one (server/realtime/access_rounds.py); otherwise only the
    sessions and pairs that are new since the last round.
    """

    def __init__(self, sockets: SocketRegistry, *, period_s: float = ACCESS_CHECK_S) -> None:
        self._sockets = sockets
        self.period_s = period_s
        self._lock = asyncio.Lock()  # one round at a time; a forced one waits its turn
        self.rounds = AccessRounds()
        self.full_rounds = 0
        self._sockets_seen = -1  # the registry's change count the last listing saw

    async def run_forever(self) -> None:
        """A round every ``period_s`` until cancelled; a failed round is logged and retried soon."""
        retries = Backoff(base_s=min(RETRY_AFTER_FAILURE_S, self.period_s), cap_s=self.period_s)
        failures = 0
        while True:
            await asyncio.sleep(retries.ceiling(failures - 1) if failures else self.period_s)
            try:
                await self.check(forced=False)
            except Exception as exc:  # the database hiccuped: try again soon, then less often
                log.warning("access_check.failed", error=repr(exc))
                failures += 1
            else:
                failures = 0

    async def check(self, *, forced: bool = True) -> None:
        """One round: end the sockets of ended sessions, revoke lost project access.

        ``forced`` (the default: a bus reconnect, a test) reads everything.
        """
        async with self._lock:
            counter = await access_changes()  # before the sockets are listed: see the module
            now, wall = time.monotonic(), datetime.now(UTC)
            changes = self._sockets.changes
            if (
                not forced
                and changes == self._sockets_seen
                and not self.rounds.due_full(counter=counter, now=now, wall=wall)
            ):
                return  # nothing changed, in the database or among the sockets: no walk
            self._sockets_seen = changes
            connections = tuple(self._sockets.connections.values())
            followed = self._followed()
            plan = self.rounds.plan(
                counter=counter,
                now=now,
                wall=wall,
                sessions={c.session_id for c in connections if c.session_id is not None},
                pairs={(p, u) for _, p, u in followed},
                forced=forced,
            )
            self.full_rounds += plan.full
            try:
                await self._check_sessions(connections, plan.sessions)
                await self._check_projects(
                    [f for f in followed if (f[1], f[2]) in plan.pairs], plan.pairs
                )
            except BaseException:
                self.rounds.failed()
                self._sockets_seen = -1
                raise

    def _followed(self) -> list[tuple[Connection, uuid.UUID, uuid.UUID]]:
        # Only the sockets that follow a project now are judged, on the answer for their
        # own pair: one that joins while the statement runs is not in it, and is left be.
        return [
            (connection, project_id, connection.user_id)
            for project_id, followers in self._sockets.followers.items()
            for connection in tuple(followers)
            if connection.user_id is not None
        ]

    async def _check_sessions(
        self, connections: tuple[Connection, ...], held: frozenset[uuid.UUID]
    ) -> None:
        if not held:
            return
        live = await live_sessions(held)
        self.rounds.sessions_expire(list(live.values()))
        ended = set(held - live.keys())
        if not ended:
            return
        log.info("access_check.sessions_ended", sessions=len(ended))
        metrics.ACCESS_CHECK_REVOCATIONS.labels("session").inc(len(ended))
        for connection in connections:
            if connection.session_id in ended and not connection.closed:
                await connection.session_ended(ended)

    async def _check_projects(
        self, checked: list[tuple[Connection, uuid.UUID, uuid.UUID]], pairs: frozenset[Pair]
    ) -> None:
        if not checked:
            return
        allowed = await pairs_with_access(pairs)
        lost = [(c, p) for c, p, u in checked if (p, u) not in allowed]
        if lost:
            log.info("access_check.access_lost", sockets=len(lost))
            metrics.ACCESS_CHECK_REVOCATIONS.labels("project").inc(len(lost))
        for connection, project_id in lost:
            await connection.revoke(project_id)
