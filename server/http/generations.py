"""Generations over REST (docs/protocol.md §2.6): request (credits reserved), read, cancel."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from litestar import Controller, Request, get, post
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED

from server.generations import service
from server.http.deps import Caller, Ctx, strictly
from server.http.schemas import Generation, GenerationRequestBody, to
from server.types import ProjectId

Status = Literal["queued", "running", "succeeded", "failed", "canceled"]


class ProjectGenerationController(Controller):
    path = "/api/projects/{project_id:uuid}/generations"
    tags = ["generations"]

    @post("/", status_code=HTTP_202_ACCEPTED)
    async def request_generation(
        self,
        request: Request[Any, Any, Any],
        project_id: FromPath[uuid.UUID],
        data: JSONBody[GenerationRequestBody],
        caller: Caller,
        ctx: Ctx,
    ) -> Generation:
        """Queue a generation; its cost is reserved now (402 when the balance is short)."""
        data = await strictly(request, data)
        entity = await service.request(
            ctx.engine,
            ctx.notifier,
            caller,
            ProjectId(project_id),
            room_id=data.room_id,
            prompt=data.prompt,
            params=data.params,
            cost=ctx.settings.generation_cost,
        )
        return to(Generation, entity)

    @get("/")
    async def history(
        self,
        project_id: FromPath[uuid.UUID],
        caller: Caller,
        status: Annotated[Status | None, QueryParameter()] = None,
        before: Annotated[datetime | None, QueryParameter()] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
    ) -> list[Generation]:
        """The project's generations, newest first (``before``: created before this time)."""
        rows = await service.history(
            caller, ProjectId(project_id), status=status, before=before, limit=limit
        )
        return to(list[Generation], rows)


class GenerationController(Controller):
    path = "/api/generations"
    tags = ["generations"]

    @get("/{generation_id:uuid}")
    async def read(self, generation_id: FromPath[uuid.UUID], caller: Caller) -> Generation:
        """One generation of a project the caller can read."""
        return to(Generation, await service.get(caller, generation_id))

    @post("/{generation_id:uuid}/cancel", status_code=HTTP_200_OK)
    async def cancel(
        self, generation_id: FromPath[uuid.UUID], caller: Caller, ctx: Ctx
    ) -> Generation:
        """Cancel before it finishes (refunded); 409 when it already finished."""
        return to(Generation, await service.cancel(ctx.engine, ctx.notifier, caller, generation_id))
