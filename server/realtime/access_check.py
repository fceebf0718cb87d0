"""The durable side of access: every instance re-checks its own sockets in the database.

A change of access (a member removed or made a viewer, a team grant or team
membership changed, a session logged out, revoked or expired, an account
erased, a project deleted) is first a committed row in PostgreSQL, then a
control message on the bus (control.py) so that every instance acts at
once. A control message published while Redis is down is gone: nothing
retries it. So each instance also reads, on its own, the state of every
session and every (project, user) pair its sockets hold: every
``MOODBOARD_ACCESS_CHECK_MS`` (1 s) and at once after the bus reconnects.
A socket whose login session ended closes with 4401; a socket that lost
access to a project it follows gets ``left`` with reason ``access_revoked``
(docs/architecture.md §5). Two statements a round, whatever the number of
sockets; a round that finds everything in order changes nothing.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from server import metrics
from server.access.tables import UserSession
from server.db.raw import runner_of
from server.log import get_logger
from server.projects.access import role_on
from server.realtime.registry import SocketRegistry
from server.types import ProjectId, UserId

if TYPE_CHECKING:
    from server.realtime.connection import Connection

log = get_logger(__name__)
ACCESS_CHECK_S = 1.0

_LIVE_SESSIONS_PG = """
SELECT id FROM user_session
WHERE id = ANY($1::uuid[]) AND revoked_at IS NULL AND expires_at > now()
"""

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

Pair = tuple[uuid.UUID, uuid.UUID]  # (project, user)


async def live_sessions(session_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    """Which of these login sessions are neither revoked nor expired (one statement)."""
    ids = list(session_ids)
    if not ids:
        return set()
    runner = runner_of(UserSession)
    if runner is not None:
        rows = await runner.fetch(_LIVE_SESSIONS_PG, ids)
    else:  # SQLite (embedded mode): the general path
        rows = await UserSession.select(UserSession.id).where(
            UserSession.id.is_in(ids)
            & UserSession.revoked_at.is_null()
            & (UserSession.expires_at > datetime.now(UTC))
        )
    return {row["id"] if isinstance(row["id"], uuid.UUID) else uuid.UUID(row["id"]) for row in rows}


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
    """Re-checks, from the database, the access of every socket on this instance."""

    def __init__(self, sockets: SocketRegistry, *, period_s: float = ACCESS_CHECK_S) -> None:
        self._sockets = sockets
        self.period_s = period_s
        self._lock = asyncio.Lock()  # one round at a time; a forced one waits its turn

    async def run_forever(self) -> None:
        """A round every ``period_s`` until cancelled; a failed round is logged and retried."""
        while True:
            await asyncio.sleep(self.period_s)
            try:
                await self.check()
            except Exception as exc:  # the database hiccuped: the next round tries again
                log.warning("access_check.failed", error=repr(exc))

    async def check(self) -> None:
        """One round: end the sockets of ended sessions, revoke lost project access."""
        async with self._lock:
            connections = tuple(self._sockets.connections.values())
            await self._check_sessions(connections)
            await self._check_projects()

    async def _check_sessions(self, connections: tuple[Connection, ...]) -> None:
        held = {c.session_id for c in connections if c.session_id is not None}
        if not held:
            return
        ended = held - await live_sessions(held)
        if not ended:
            return
        log.info("access_check.sessions_ended", sessions=len(ended))
        metrics.ACCESS_CHECK_REVOCATIONS.labels("session").inc(len(ended))
        for connection in connections:
            if connection.session_id in ended and not connection.closed:
                await connection.session_ended(ended)

    async def _check_projects(self) -> None:
        # Only the sockets that follow a project now are judged, on the answer for their
        # own pair: one that joins while the statement runs is not in it, and is left be.
        checked: list[tuple[Connection, uuid.UUID, uuid.UUID]] = [
            (connection, project_id, connection.user_id)
            for project_id, followers in self._sockets.followers.items()
            for connection in tuple(followers)
            if connection.user_id is not None
        ]
        if not checked:
            return
        allowed = await pairs_with_access((p, u) for _, p, u in checked)
        lost = [(c, p) for c, p, u in checked if (p, u) not in allowed]
        if lost:
            log.info("access_check.access_lost", sockets=len(lost))
            metrics.ACCESS_CHECK_REVOCATIONS.labels("project").inc(len(lost))
        for connection, project_id in lost:
            await connection.revoke(project_id)
