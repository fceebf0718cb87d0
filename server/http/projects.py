"""``/api/projects``: create, list, read, versioned PATCH, delete."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, delete, get, patch, post
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from server.errors import ValidationFailed
from server.http.content import write
from server.http.deps import Caller, Ctx, strictly
from server.http.schemas import Project, ProjectCreateBody, ProjectListed, ProjectPatchBody, to
from server.projects import service
from server.types import ProjectId


class ProjectController(Controller):
    path = "/api/projects"
    tags = ["projects"]

    @post("/", status_code=HTTP_201_CREATED)
    async def create(self, data: JSONBody[ProjectCreateBody], caller: Caller, ctx: Ctx) -> Project:
        """Create a project; the caller is its owner (a team_id grants the team editor)."""
        entity = await service.create_project(
            ctx.engine,
            ctx.notifier,
            caller,
            name=data.name,
            description=data.description,
            team_id=data.team_id,
        )
        return to(Project, entity)

    @get("/")
    async def list(self, caller: Caller) -> list[ProjectListed]:
        """Every project the caller can read, with their role on it."""
        return to(list[ProjectListed], await service.list_projects(caller))

    @get("/{project_id:uuid}")
    async def read(self, project_id: FromPath[uuid.UUID], caller: Caller) -> Project:
        """One project (403 when it does not exist or the caller cannot read it)."""
        return to(Project, await service.get_project(caller, ProjectId(project_id)))

    @patch("/{project_id:uuid}")
    async def update(
        self,
        request: Request[Any, Any, Any],
        project_id: FromPath[uuid.UUID],
        data: JSONBody[ProjectPatchBody],
        caller: Caller,
        ctx: Ctx,
    ) -> Project:
        """Versioned change of name/description: 409 with the current project on conflict."""
        data = await strictly(request, data)
        changes = data.changes()
        if not changes:
            raise ValidationFailed("no field to change: send at least one of name, description")
        entity = await write(
            ctx,
            caller,
            request,
            project_id,
            "update",
            "project",
            id=project_id,
            base_version=data.base_version,
            data=changes,
        )
        return to(Project, entity)

    @delete("/{project_id:uuid}", status_code=HTTP_204_NO_CONTENT)
    async def remove(self, project_id: FromPath[uuid.UUID], caller: Caller, ctx: Ctx) -> None:
        """Delete the project (owners only); it disappears everywhere."""
        await service.delete_project(ctx.engine, ctx.notifier, caller, ProjectId(project_id))
