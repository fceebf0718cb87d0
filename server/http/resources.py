"""Stored project files over REST (docs/protocol.md §2, docs/generations.md).

``POST /api/projects/{pid}/resources``: an editor uploads a picture (raw
bytes, ``Content-Type`` one of the four picture types); the body is counted
as it arrives and refused (413) past ``MOODBOARD_STORAGE_MAX_UPLOAD_BYTES``
before it is all read. ``GET .../resources/{rid}``: readers of the project get
the bytes with their content type. Pictures are served so a browser shows
them but never runs them: ``nosniff``, and a Content-Security-Policy that
forbids scripts (an SVG is a document).
"""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath
from litestar.status_codes import HTTP_201_CREATED

from server.errors import TooLarge
from server.http.deps import Caller, Ctx
from server.http.schemas import Resource, to
from server.projects import access, resources, uploads
from server.types import ProjectId

HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; sandbox",
    "Cache-Control": "private, max-age=31536000, immutable",  # content-addressed bytes
}


async def read_body(request: Request[Any, Any, Any], limit: int) -> bytes:
    """The request body, refused (413) as soon as it passes ``limit`` bytes."""
    announced = request.headers.get("content-length", "")
    if announced.isdigit() and int(announced) > limit:
        raise TooLarge(f"body: {announced} bytes; the limit is {limit}", limit_bytes=limit)
    chunks: list[bytes] = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise TooLarge(f"body: over {limit} bytes, the limit", limit_bytes=limit)
        chunks.append(chunk)
    return b"".join(chunks)


class ResourceController(Controller):
    path = "/api/projects/{project_id:uuid}/resources"
    tags = ["resources"]

    @post(
        "/",
        status_code=HTTP_201_CREATED,
        request_max_body_size=None,  # read_body enforces the configured limit
    )
    async def upload(
        self,
        request: Request[Any, Any, Any],
        project_id: FromPath[uuid.UUID],
        caller: Caller,
        ctx: Ctx,
    ) -> Resource:
        """Upload a picture (raw PNG, JPEG, WebP or GIF bytes, with their Content-Type)."""
        pid = ProjectId(project_id)
        # The cheap refusals first, before a byte of the body is read.
        await access.require(pid, caller.user_id, "project.edit")
        declared = uploads.check_declared_type(request.headers.get("content-type", ""))
        data = await read_body(request, ctx.settings.storage_max_upload_bytes)
        stored = await uploads.upload(
            ctx.engine,
            ctx.settings.storage_dir,
            caller.user_id,
            pid,
            content_type=declared,
            data=data,
        )
        return to(Resource, stored)

    @get("/{resource_id:uuid}", media_type="application/octet-stream")
    async def read(
        self,
        request: Request[Any, Any, Any],
        project_id: FromPath[uuid.UUID],
        resource_id: FromPath[uuid.UUID],
        caller: Caller,
        ctx: Ctx,
    ) -> Response[bytes]:
        """The bytes of a resource of a project the caller can read."""
        entity, data = await resources.read(
            ctx.settings.storage_dir, caller.user_id, ProjectId(project_id), resource_id
        )
        etag = f'"{entity["sha256"]}"'
        headers = {**HEADERS, "ETag": etag}
        if etag in request.headers.get("if-none-match", ""):
            return Response(b"", status_code=304, headers=headers)
        return Response(data, media_type=entity["content_type"], headers=headers)
