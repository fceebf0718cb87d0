"""Stored files of a project (generated pictures, uploads), counted against its storage.

The bytes live in a directory (``MOODBOARD_STORAGE_DIR``), content-addressed:
``<project_id>/<sha256>``. A file is written (atomically: temporary name, then
rename) before the transaction that records it; the ``project_resource`` row
and the project's ``storage_bytes`` change together in that transaction, with
one conditional UPDATE that refuses to pass ``storage_quota_bytes`` (413).
A transaction that fails after the write leaves an unreferenced file, never a
row without its bytes. Several instances share the directory (a shared volume
past one machine; docs/generations.md).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from server.errors import BadRequest, NotFound, TooLarge
from server.projects import access
from server.projects.tables import Project, ProjectResource
from server.timestamps import rfc3339
from server.types import ProjectId, UserId

CONTENT_TYPES = {
    "image/png": "png",
    "image/svg+xml": "svg",
    "image/jpeg": "jpg",
    "image/webp": "webp",
    "image/gif": "gif",
}
NO_RESOURCE = "no resource with this id in this project"


@dataclass(frozen=True, slots=True)
class StoredFile:
    """Bytes already in the storage directory, not yet recorded."""

    key: str
    sha256: str
    size: int
    content_type: str


def resource_url(project_id: ProjectId, resource_id: uuid.UUID) -> str:
    """Where a signed-in reader of the project fetches the bytes."""
    return f"/api/projects/{project_id}/resources/{resource_id}"


def _write(root: Path, key: str, data: bytes) -> None:
    path = root / key
    if path.exists():  # content-addressed: same key, same bytes
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}.partial")
    partial.write_bytes(data)
    os.replace(partial, path)


async def write_file(
    storage_dir: str, project_id: ProjectId, content_type: str, data: bytes
) -> StoredFile:
    """Put ``data`` in the storage directory; call before :func:`record`."""
    if content_type not in CONTENT_TYPES:
        raise BadRequest(f"content-type: one of {', '.join(CONTENT_TYPES)}", field="content-type")
    if not data:
        raise BadRequest("body: the file is empty", field="body")
    digest = hashlib.sha256(data).hexdigest()
    key = f"{project_id}/{digest}.{CONTENT_TYPES[content_type]}"
    await asyncio.to_thread(_write, Path(storage_dir), key, data)
    return StoredFile(key=key, sha256=digest, size=len(data), content_type=content_type)


async def check_room_for(project_id: ProjectId, size: int) -> None:
    """413 now when ``size`` more bytes cannot fit the project's quota (:func:`record` checks
    again, atomically: this only spares writing a file that could not be recorded)."""
    row = await (
        Project.select(Project.storage_bytes, Project.storage_quota_bytes)
        .where(Project.id == project_id)
        .first()
    )
    if row is not None and row["storage_bytes"] + size > row["storage_quota_bytes"]:
        raise TooLarge(
            f"the project's storage quota does not hold {size} more bytes", size_bytes=size
        )


async def record(
    project_id: ProjectId,
    stored: StoredFile,
    *,
    kind: str,
    name: str,
    room_id: uuid.UUID | None,
    metadata: dict[str, Any],
    created_by: UserId | None = None,
) -> dict[str, Any]:
    """Record a written file as a resource of the project; call inside a write transaction.

    Raises:
        TooLarge: the project's storage would pass its quota; nothing recorded.
    """
    counted = (
        await Project.update({Project.storage_bytes: Project.storage_bytes + stored.size})
        .where(
            (Project.id == project_id)
            & (Project.storage_bytes <= Project.storage_quota_bytes - stored.size)
        )
        .returning(Project.storage_bytes)
    )
    if not counted:
        raise TooLarge(
            f"the project's storage quota does not hold {stored.size} more bytes",
            size_bytes=stored.size,
        )
    resource_id = uuid.uuid4()
    await ProjectResource.insert(
        ProjectResource(
            id=resource_id,
            project_id=project_id,
            room_id=room_id,
            kind=kind,
            name=name[:255],
            content_type=stored.content_type,
            size_bytes=stored.size,
            sha256=stored.sha256,
            storage_key=stored.key,
            metadata=metadata,
            created_by=created_by,
        )
    )
    row = await _row(project_id, resource_id)
    assert row is not None
    return resource_entity(row)


def resource_entity(row: dict[str, Any]) -> dict[str, Any]:
    """A resource as the API shows it (never its storage key)."""
    project_id = ProjectId(row["project_id"])
    return {
        "id": str(row["id"]),
        "project_id": str(project_id),
        "room_id": None if row["room_id"] is None else str(row["room_id"]),
        "kind": row["kind"],
        "name": row["name"],
        "content_type": row["content_type"],
        "size": row["size_bytes"],
        "size_bytes": row["size_bytes"],  # its name before the contract said `size`
        "sha256": row["sha256"],
        "metadata": row["metadata"],
        "url": resource_url(project_id, row["id"]),
        "created_at": rfc3339(row["created_at"]),
    }


async def _row(project_id: ProjectId, resource_id: uuid.UUID) -> dict[str, Any] | None:
    row: dict[str, Any] | None = (
        await ProjectResource.select()
        .where(
            (ProjectResource.id == resource_id)
            & (ProjectResource.project_id == project_id)
            & ProjectResource.deleted_at.is_null()
        )
        .output(load_json=True)
        .first()
    )
    return row


async def same_bytes(
    project_id: ProjectId, sha256: str, content_type: str
) -> dict[str, Any] | None:
    """A live resource of the project with exactly these bytes (as the API shows it), if any."""
    row: dict[str, Any] | None = (
        await ProjectResource.select()
        .where(
            (ProjectResource.project_id == project_id)
            & (ProjectResource.sha256 == sha256)
            & (ProjectResource.content_type == content_type)
            & ProjectResource.deleted_at.is_null()
        )
        .order_by(ProjectResource.created_at)
        .output(load_json=True)
        .first()
    )
    return None if row is None else resource_entity(row)


async def exists(project_id: ProjectId, resource_id: uuid.UUID) -> bool:
    """True when the resource is a live one of this project."""
    return await _row(project_id, resource_id) is not None


async def read(
    storage_dir: str, user_id: UserId, project_id: ProjectId, resource_id: uuid.UUID
) -> tuple[dict[str, Any], bytes]:
    """A resource of a project the caller can read, and its bytes (403 otherwise)."""
    await access.require(project_id, user_id, "project.read")
    row = await _row(project_id, resource_id)
    if row is None:
        raise NotFound(NO_RESOURCE)
    path = Path(storage_dir) / row["storage_key"]
    try:
        data = await asyncio.to_thread(path.read_bytes)
    except FileNotFoundError:
        raise NotFound(NO_RESOURCE) from None
    return resource_entity(row), data
