"""Reading a caller's role on a project from the database and asking the policy.

A project the caller cannot read answers exactly like one that does not exist
(403 ``forbidden``, docs/protocol.md §2.1), so ids cannot be probed.
"""

from __future__ import annotations

import uuid
from typing import Any

from server.access import policy
from server.db.raw import runner_of
from server.errors import Forbidden
from server.events.log import lock_project
from server.projects.tables import Project, ProjectMember
from server.types import ProjectId, ProjectRole, UserId

NO_ACCESS = "project not found, or you have no access to it"

# One round trip: the project's state, the direct role, every team grant's role.
_ROLES_SQL = """
SELECT 'project' AS via, CASE WHEN p.deleted_at IS NULL THEN 'live' ELSE 'deleted' END AS role
FROM project p WHERE p.id = {}
UNION ALL
SELECT 'direct' AS via, m.role AS role FROM project_member m
WHERE m.project_id = {} AND m.user_id = {}
UNION ALL
SELECT 'team' AS via, g.role AS role FROM project_team_grant g
JOIN team_member t ON t.team_id = g.team_id
WHERE g.project_id = {} AND t.user_id = {}
"""
_ROLES_PG = _ROLES_SQL.format("$1", "$1", "$2", "$1", "$2")

_READABLE_SQL = """
SELECT m.project_id AS project_id, m.role AS role FROM project_member m WHERE m.user_id = {}
UNION ALL
SELECT g.project_id AS project_id, g.role AS role FROM project_team_grant g
JOIN team_member t ON t.team_id = g.team_id WHERE t.user_id = {}
"""


async def role_on(project_id: ProjectId, user_id: UserId) -> ProjectRole | None:
    """The user's effective role on a live project (None: no access or no such project)."""
    runner = runner_of(Project)
    rows: Any
    if runner is not None:  # every socket join asks: the fixed statement (server/db/raw.py)
        rows = await runner.fetch(_ROLES_PG, project_id, user_id)
    else:
        rows = await Project.raw(_ROLES_SQL, project_id, project_id, user_id, project_id, user_id)
    state = next((row["role"] for row in rows if row["via"] == "project"), None)
    if state is None:
        return None
    direct = next((row["role"] for row in rows if row["via"] == "direct"), None)
    teams = [row["role"] for row in rows if row["via"] == "team"]
    return policy.role_for(direct, teams, deleted=state == "deleted")


async def require_locked(
    project_id: ProjectId, user_id: UserId, action: policy.Action
) -> ProjectRole:
    """``require``, after taking the project's write lock (inside a write transaction).

    A write is checked against the access that holds when it commits
    (docs/architecture.md §2): every change of access to a project takes
    this lock too, so a removal or downgrade either commits before the
    check (which then sees it) or waits for the write. Checked before the
    lock, a write could commit after a removal that preceded it.
    """
    await lock_project(project_id)
    return await require(project_id, user_id, action)


async def require(project_id: ProjectId, user_id: UserId, action: policy.Action) -> ProjectRole:
    """The caller's role if the policy lets them do ``action``; raises Forbidden otherwise.

    A caller who can read the project but not do ``action`` is told which
    role it needs; anyone else gets the same answer as for a missing project.
    """
    role = await role_on(project_id, user_id)
    if role is None:
        raise Forbidden(NO_ACCESS)
    if not policy.can(role, action):
        raise Forbidden(f"your role ({role}) does not allow {action}")
    return role


async def readable_roles(user_id: UserId) -> dict[uuid.UUID, ProjectRole]:
    """Every project (live or not) the user has a role on, with the effective role."""
    rows = await Project.raw(_READABLE_SQL, user_id, user_id)
    by_project: dict[uuid.UUID, list[ProjectRole]] = {}
    for row in rows:
        key = (
            row["project_id"]
            if isinstance(row["project_id"], uuid.UUID)
            else uuid.UUID(str(row["project_id"]))
        )
        by_project.setdefault(key, []).append(row["role"])
    result: dict[uuid.UUID, ProjectRole] = {}
    for project_id, roles in by_project.items():
        best = policy.highest(roles)
        if best is not None:
            result[project_id] = best
    return result


async def direct_owner_count(project_id: ProjectId) -> int:
    """How many direct owners the project has (the last one cannot leave, docs/protocol.md §2.4)."""
    count: int = await ProjectMember.count().where(
        (ProjectMember.project_id == project_id) & (ProjectMember.role == "owner")
    )
    return count
