"""Deletes in bounded batches: no statement (no transaction) removes more than ``batch`` rows.

The maintenance jobs delete what may be a large backlog (the first event-log
prune of an old database, a purged project's whole history). One ``DELETE``
for all of it is one long transaction that holds its row locks, bloats the
WAL in one go and, with ``RETURNING``, sends every id back. Here each round
reads at most ``batch`` primary keys matching the condition (which may
follow a foreign key), then deletes those rows in a statement of its own, outside any
transaction: each round commits by itself, so an interrupted run keeps what it
did and the next one carries on.
"""

from __future__ import annotations

from typing import Any

from piccolo.table import Table


async def delete_in_batches(table: type[Table], where: Any, *, batch: int) -> int:
    """Delete every row of ``table`` matching ``where``, ``batch`` rows per statement; how many."""
    if batch < 1:
        raise ValueError("batch must be at least 1")
    key = table._meta.primary_key
    deleted = 0
    while True:
        rows = await table.select(key).where(where).limit(batch)
        if not rows:
            return deleted
        ids = [row[key._meta.name] for row in rows]
        await table.delete().where(key.is_in(ids))
        deleted += len(ids)
        if len(ids) < batch:
            return deleted
