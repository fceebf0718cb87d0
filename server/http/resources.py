"""Stored project files over REST: GET /api/projects/{pid}/resources/{rid} (docs/generations.md).

Readers of the project get the bytes with their content type. Pictures are
served so a browser shows them but never runs them: ``nosniff``, and a
Content-Security-Policy that forbids scripts (an SVG is a document).
"""

from __future__ import annotations

import uuid

from litestar import Controller, Response, get
from litestar.params import FromPath

from server.http.deps import Caller, Ctx
from server.projects import resources
from server.types import ProjectId

HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; sandbox",
    "Cache-Control": "private, max-age=31536000, immutable",  # content-addressed bytes
}


class ResourceController(Controller):
    path = "/api/projects/{project_id:uuid}/resources"
    tags = ["resources"]

    @get("/{resource_id:uuid}", media_type="application/octet-stream")
    async def read(
        self,
        project_id: FromPath[uuid.UUID],
        resource_id: FromPath[uuid.UUID],
        caller: Caller,
        ctx: Ctx,
    ) -> Response[bytes]:
        """The bytes of a resource of a project the caller can read."""
        entity, data = await resources.read(
            ctx.settings.storage_dir, caller.user_id, ProjectId(project_id), resource_id
        )
        headers = {**HEADERS, "ETag": f'"{entity["sha256"]}"'}
        return Response(data, media_type=entity["content_type"], headers=headers)
