"""Projects: create, list, read, delete (updates are edits: server/projects/edits.py).

Every change follows the write path of docs/architecture.md §2 in one transaction: permission
check, next seq (which locks the project row), version-checked write, event
row; then, after commit, the events go to the notifier.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from piccolo.engine.base import Engine

from server.access.principal import Principal
from server.access.tables import TeamMember
from server.db.engine import write_transaction
from server.errors import Forbidden
from server.events import log as event_log
from server.events.log import EventRecord
from server.events.notify import Notifier
from server.projects import access
from server.projects.entities import project_entity
from server.projects.tables import Project, ProjectMember, ProjectTeamGrant
from server.projects.validation import clean
from server.types import ProjectId

TEAM_PROJECT_ROLE = "editor"  # what a team gets on a project created for it


async def _project_row(project_id: ProjectId) -> dict[str, Any]:
    row: dict[str, Any] | None = await Project.select().where(Project.id == project_id).first()
    if row is None:
        raise Forbidden(access.NO_ACCESS)
    return row


async def create_project(
    engine: Engine[Any],
    notifier: Notifier,
    caller: Principal,
    *,
    name: str,
    description: str = "",
    team_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    """Create a project owned by the caller (and granted to ``team_id``'s members as editors)."""
    clean("project", {"name": name, "description": description}, creating=True)
    project_id = ProjectId(uuid.uuid4())
    events: list[EventRecord] = []
    async with write_transaction(engine):
        if team_id is not None:
            in_team = await TeamMember.exists().where(
                (TeamMember.team_id == team_id) & (TeamMember.user_id == caller.user_id)
            )
            if not in_team:
                raise Forbidden("team_id: you are not a member of this team", field="team_id")
        await Project.insert(
            Project(
                id=project_id,
                name=name.strip(),
                description=description,
                owner_id=caller.user_id,
                team_id=team_id,
            )
        )
        await ProjectMember.insert(
            ProjectMember(project_id=project_id, user_id=caller.user_id, role="owner")
        )
        if team_id is not None:
            await ProjectTeamGrant.insert(
                ProjectTeamGrant(
                    project_id=project_id,
                    team_id=team_id,
                    role=TEAM_PROJECT_ROLE,
                    granted_by=caller.user_id,
                )
            )
        seq = await event_log.next_seq(project_id)
        row = await _project_row(project_id)
        entity = project_entity(row)
        events.append(
            await event_log.append(
                project_id,
                kind="project.created",
                entity="project",
                entity_id=project_id,
                version=row["version"],
                data=entity,
                actor_id=caller.user_id,
                seq=seq,
            )
        )
        events.append(
            await event_log.append(
                project_id,
                kind="member.created",
                entity="member",
                entity_id=caller.user_id,
                version=None,
                data={"user_id": str(caller.user_id), "name": caller.name, "role": "owner"},
                actor_id=caller.user_id,
            )
        )
        row = await _project_row(project_id)
    await notifier.events_committed(events)
    return project_entity(row)


async def list_projects(caller: Principal) -> list[dict[str, Any]]:
    """Every live project the caller can read, most recently changed first, with their role."""
    roles = await access.readable_roles(caller.user_id)
    if not roles:
        return []
    rows = await (
        Project.select()
        .where(Project.id.is_in(list(roles)) & Project.deleted_at.is_null())
        .order_by(Project.updated_at, ascending=False)
    )
    return [{**project_entity(row), "role": roles[row["id"]]} for row in rows]


async def get_project(caller: Principal, project_id: ProjectId) -> dict[str, Any]:
    """The project, if the caller can read it (403 otherwise, missing or not)."""
    await access.require(project_id, caller.user_id, "project.read")
    return project_entity(await _project_row(project_id))


async def delete_project(
    engine: Engine[Any], notifier: Notifier, caller: Principal, project_id: ProjectId
) -> None:
    """Soft-delete the project (owners only): it disappears from every list, call and socket."""
    async with write_transaction(engine):
        await access.require_locked(project_id, caller.user_id, "project.delete")
        event = await soft_delete(project_id, caller)
    await notifier.events_committed([event])
    await notifier.access_changed(project_id, None)


async def soft_delete(project_id: ProjectId, caller: Principal | None) -> EventRecord:
    """Mark the project deleted and log it; call inside a write transaction."""
    seq = await event_log.next_seq(project_id)
    row = await _project_row(project_id)
    now = datetime.now(UTC)
    await Project.update(
        {Project.deleted_at: now, Project.updated_at: now, Project.version: row["version"] + 1}
    ).where(Project.id == project_id)
    return await event_log.append(
        project_id,
        kind="project.deleted",
        entity="project",
        entity_id=project_id,
        version=row["version"] + 1,
        data={},
        actor_id=None if caller is None else caller.user_id,
        seq=seq,
    )
