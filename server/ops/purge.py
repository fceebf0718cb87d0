"""Purge: what was deleted goes for good, a grace period after the deletion.

Deleting a project (``DELETE /api/projects/{id}``, or the erasure of its
last owner) is a soft delete: ``project.deleted_at`` is set and the project
disappears from every list, call and socket, but its rows and files stay, so
an operator can undo a mistaken deletion (``UPDATE project SET deleted_at =
NULL``). ``MOODBOARD_PURGE_AFTER_DAYS`` later the maintenance job purges it:

- every row of the project, children first: events, op outcomes,
  generations, resources (and their files in ``MOODBOARD_STORAGE_DIR``, the
  project's directory ``<project_id>/`` included), items, rooms,
  invitations, team grants, memberships, the audit entries that name it, and
  last the project row itself. A run cut short leaves the project row (still
  deleted), so the next run carries on where it stopped.

An erased account (docs/security.md "Personal data") keeps, by the erasure
rule, an anonymous tombstone row, its credit ledger rows (accounting) and its
audit entries (address and details already erased). After the same grace
period its remaining sessions go, whatever ``MOODBOARD_ENDED_RETENTION_DAYS``
says (they hold token hashes and nothing that still works).

Every delete goes at most ``batch`` rows per statement (server/db/batches.py).
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from piccolo.table import Table

from server.access.tables import AuditLog, UserSession
from server.db.batches import delete_in_batches
from server.events.tables import Event, Operation
from server.generations.tables import Generation
from server.log import get_logger
from server.projects.tables import (
    Invitation,
    Item,
    Project,
    ProjectMember,
    ProjectResource,
    ProjectTeamGrant,
    Room,
)

log = get_logger(__name__)

# Every table with a project_id, children before parents (items before rooms).
PROJECT_TABLES: tuple[type[Table], ...] = (
    Event,
    Operation,
    Generation,
    Item,
    Room,
    Invitation,
    ProjectTeamGrant,
    ProjectMember,
)


@dataclass(frozen=True, slots=True)
class Purged:
    """What one purge removed."""

    projects: int = 0
    rows: int = 0  # every row of every table: the projects' and the sessions' rows
    files: int = 0
    sessions: int = 0  # of erased accounts


async def purge(*, after_days: int, now: datetime, batch: int, storage_dir: str | None) -> Purged:
    """Purge the projects deleted, and the erased accounts' sessions, over ``after_days`` ago."""
    cutoff = now - timedelta(days=after_days)
    projects = rows = files = 0
    while True:
        due = await Project.select(Project.id).where(Project.deleted_at < cutoff).limit(batch)
        for row in due:
            purged_rows, purged_files = await purge_project(
                row["id"], cutoff=cutoff, batch=batch, storage_dir=storage_dir
            )
            projects += 1
            rows += purged_rows
            files += purged_files
        if len(due) < batch:
            break
    sessions = await delete_in_batches(
        UserSession, UserSession.user_id.deleted_at < cutoff, batch=batch
    )
    return Purged(projects=projects, rows=rows + sessions, files=files, sessions=sessions)


async def purge_project(
    project_id: uuid.UUID, *, cutoff: datetime, batch: int, storage_dir: str | None
) -> tuple[int, int]:
    """Every row and file of one deleted project; (rows, files) removed."""
    rows = files = 0
    root = Path(storage_dir) if storage_dir else None
    while True:  # a batch's rows, then its files (a run cut short between leaves files
        # in the project's directory, which the end of the next run removes)
        resources = (
            await ProjectResource.select(ProjectResource.id, ProjectResource.storage_key)
            .where(ProjectResource.project_id == project_id)
            .limit(batch)
        )
        if resources:
            await ProjectResource.delete().where(
                ProjectResource.id.is_in([r["id"] for r in resources])
            )
            rows += len(resources)
        if root is not None:  # file system calls off the event loop (this runs in the server)
            keys = [r["storage_key"] for r in resources]
            files += await asyncio.to_thread(_unlink_all, root, keys)
        if len(resources) < batch:
            break
    for table in PROJECT_TABLES:
        rows += await delete_in_batches(
            table,
            table._meta.get_column_by_name("project_id") == project_id,
            batch=batch,
        )
    rows += await delete_in_batches(AuditLog, AuditLog.project_id == project_id, batch=batch)
    if root is not None:
        files += await asyncio.to_thread(_remove_directory, root / str(project_id))
    gone = (
        await Project.delete()
        .where((Project.id == project_id) & (Project.deleted_at < cutoff))
        .returning(Project.id)
    )
    rows += len(gone)
    log.info("purge.project", project_id=str(project_id), rows=rows, files=files)
    return rows, files


def _unlink_all(root: Path, keys: list[str]) -> int:
    """Remove the files of ``keys`` under ``root``; how many were there."""
    removed = 0
    for key in keys:
        path = (root / key).resolve()
        if not path.is_relative_to(root.resolve()):  # never from our keys; if so, not ours
            log.warning("purge.outside_storage", storage_key=key)
            continue
        try:
            path.unlink()
        except FileNotFoundError:  # two resources of the same bytes share one file
            continue
        removed += 1
    return removed


def _remove_directory(directory: Path) -> int:
    """The project's storage directory: left-overs (a write whose row never committed)."""
    if not directory.is_dir():
        return 0
    count = sum(1 for path in directory.rglob("*") if path.is_file())
    shutil.rmtree(directory)
    return count
