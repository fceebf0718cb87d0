"""A user's picture upload: ``POST /api/projects/{pid}/resources`` (docs/protocol.md §2).

Editors and owners store a PNG, JPEG, WebP or GIF picture as a project
resource; an ``image`` item then shows it by ``data.resource_id``. The type is
read from the bytes (:mod:`server.projects.picture_types`): a type the route
does not take, or bytes that are not that type, is a 415, before anything is
written. The size is counted on the bytes received (413 past
``MOODBOARD_STORAGE_MAX_UPLOAD_BYTES``, checked as they arrive by the HTTP
layer) and against the project's storage quota (413, nothing recorded), as
:mod:`server.projects.resources` does for a worker's pictures. The same bytes
uploaded again to the project answer the resource already stored (one file,
counted once).
"""

from __future__ import annotations

import hashlib
from typing import Any

from piccolo.engine.base import Engine

from server.db.engine import write_transaction
from server.errors import BadRequest, UnsupportedMediaType
from server.projects import access, resources
from server.projects.picture_types import UPLOAD_TYPES, sniff
from server.types import ProjectId, UserId


def check_declared_type(content_type: str) -> str:
    """The declared picture type, normalised; 415 for any other."""
    declared = content_type.split(";", 1)[0].strip().lower()
    if declared not in UPLOAD_TYPES:
        shown = declared or "none"
        raise UnsupportedMediaType(
            f"content-type: {shown}; an upload is one of {', '.join(UPLOAD_TYPES)}",
            field="content-type",
        )
    return declared


def check_bytes(declared: str, data: bytes) -> None:
    """415 unless ``data`` is a picture of the declared type (read from its first bytes)."""
    if not data:
        raise BadRequest("body: the file is empty", field="body")
    actual = sniff(data)
    if actual != declared:
        found = f"a {actual} picture" if actual else "not a picture this server takes"
        raise UnsupportedMediaType(
            f"body: the bytes are {found}, not {declared}", field="body", content_type=actual
        )


async def upload(
    engine: Engine[Any],
    storage_dir: str,
    user_id: UserId,
    project_id: ProjectId,
    *,
    content_type: str,
    data: bytes,
) -> dict[str, Any]:
    """Store an editor's picture as a resource of the project; the resource as the API shows it.

    Raises:
        Forbidden: the caller may not edit the project (or cannot read it).
        UnsupportedMediaType: not one of the four types, or bytes that are not it.
        TooLarge: the project's storage quota does not hold it; nothing recorded.
    """
    declared = check_declared_type(content_type)
    check_bytes(declared, data)
    await access.require(project_id, user_id, "project.edit")  # no file for a refused caller
    digest = hashlib.sha256(data).hexdigest()
    if (known := await resources.same_bytes(project_id, digest, declared)) is not None:
        return known  # the same picture again: stored and counted once
    await resources.check_room_for(project_id, len(data))  # no file for one that cannot fit
    stored = await resources.write_file(storage_dir, project_id, declared, data)
    async with write_transaction(engine):
        await access.require_locked(project_id, user_id, "project.edit")
        if (known := await resources.same_bytes(project_id, digest, declared)) is not None:
            return known  # uploaded by someone else meanwhile
        return await resources.record(
            project_id,
            stored,
            kind="upload",
            name=f"upload.{resources.CONTENT_TYPES[declared]}",
            room_id=None,
            metadata={},
            created_by=user_id,
        )
