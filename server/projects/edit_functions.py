"""The edit functions' fast path: a current-base room or item update as one statement.

On PostgreSQL the most common edit, a socket's update of a room or item whose
base is current, is one call of a database function instead of the general
path's several statements (server/projects/edits.py). A lone edit calls
``moodboard_edit_update``; the edits of one project that arrive while its
previous call is in flight go together to ``moodboard_edit_batch``, one
transaction and one commit for all of them (server/concurrency/group_commit.py,
at most ``MOODBOARD_EDIT_BATCH``). Either answers an edit's seq, or NULL where
the general path must answer (no role, stale base, a seen op_id, a gone
entity); a batch refused as a whole (a deadlock with an outside writer, say)
sends each of its edits to the general path. Both functions check the role
under the project's lock (docs/architecture.md §2).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import asyncpg
import msgspec

from server import metrics
from server.access import policy
from server.concurrency.group_commit import GroupCommit
from server.db.database import Database
from server.types import ProjectId, UserId

# The roles that may edit, for the database function's own permission check.
_EDIT_ROLES = [role for role in policy.RANK if policy.can(role, "project.edit")]
_EDIT_BATCH_SQL = "SELECT moodboard_edit_batch($1, $2, $3, $4, $5, $6::jsonb[], $7, $8, $9)"
_EDIT_UPDATE_SQL = "SELECT moodboard_edit_update($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9)"


@dataclass(frozen=True, slots=True)
class Update:
    """One current-base room or item update, as the batch function takes it."""

    entity: Literal["room", "item"]
    user_id: UserId
    id: uuid.UUID
    base_version: int
    data: dict[str, Any]
    op_id: str | None
    at: datetime


def quick_updates(database: Database) -> GroupCommit[ProjectId, Update, int | None]:
    """The database's group commit of quick updates: one call in flight per project.

    A call takes at most ``database.edit_batch`` of a busy project's waiting
    socket edits (MOODBOARD_EDIT_BATCH); 1 gives every edit a transaction of
    its own.
    """
    return GroupCommit(_batch_runner(database), database.edit_batch)


def _batch_runner(
    database: Database,
) -> Callable[[ProjectId, list[Update]], Awaitable[list[int | None]]]:
    async def run(project_id: ProjectId, updates: list[Update]) -> list[int | None]:
        """Each update's seq, or None where the general path must answer."""
        if len(updates) == 1:
            return [await _update_one(database, project_id, updates[0])]
        try:
            seqs: list[int | None] = await database.statements.fetchval(
                _EDIT_BATCH_SQL,
                project_id,
                [u.entity for u in updates],
                [u.user_id for u in updates],
                [u.id for u in updates],
                [u.base_version for u in updates],
                [msgspec.json.encode(u.data).decode() for u in updates],
                [u.op_id for u in updates],
                [u.at for u in updates],
                _EDIT_ROLES,
            )
        except asyncpg.PostgresError:  # refused as a whole: each edit takes the general path
            return [None] * len(updates)
        written = len(seqs) - seqs.count(None)
        if written:
            metrics.EDIT_BATCH.observe(written)
        return seqs

    return run


async def _update_one(database: Database, project_id: ProjectId, update: Update) -> int | None:
    """A lone update (nothing waited for it): the one-edit function, cheaper than a batch.

    It leaves a retried op_id to the unique index ``event_one_op``, where the
    batch looks it up: a refusal would roll back a batch's other edits.
    """
    try:
        seq: int | None = await database.statements.fetchval(
            _EDIT_UPDATE_SQL,
            update.entity,
            project_id,
            update.user_id,
            update.id,
            update.base_version,
            msgspec.json.encode(update.data).decode(),
            update.op_id,
            update.at,
            _EDIT_ROLES,
        )
    except asyncpg.PostgresError:  # e.g. an event already holds this op_id: a retry
        return None
    if seq is not None:
        metrics.EDIT_BATCH.observe(1)
    return seq
