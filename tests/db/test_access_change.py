"""The access-change counter: every change that can end access moves it, once a transaction.

The access check reads everything only when it moved (server/realtime/access_rounds.py),
so a change that ends access and leaves it still would go unnoticed for up to 30 s.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest


@pytest.fixture
async def db(pg_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(pg_url)
    try:
        yield conn
    finally:
        await conn.close()


async def counter(db: asyncpg.Connection) -> int:
    return int(await db.fetchval("SELECT n FROM access_change WHERE id = 1"))


async def world(db: asyncpg.Connection) -> dict[str, uuid.UUID]:
    """A project with two members, a team granted it with one member, two sessions."""
    tag = uuid.uuid4().hex[:8]
    ids: dict[str, uuid.UUID] = {}
    for name in ("owner", "ann", "ben"):
        ids[name] = await db.fetchval(
            "INSERT INTO app_user (email, name) VALUES ($1, $2) RETURNING id",
            f"{name}-{tag}@example.com",
            name,
        )
    ids["project"] = await db.fetchval(
        "INSERT INTO project (name, owner_id) VALUES ('p', $1) RETURNING id", ids["owner"]
    )
    ids["team"] = await db.fetchval(
        "INSERT INTO team (name, created_by) VALUES ('t', $1) RETURNING id", ids["owner"]
    )
    for user in ("owner", "ann"):
        await db.execute(
            "INSERT INTO project_member (project_id, user_id, role) VALUES ($1, $2, 'editor')",
            ids["project"],
            ids[user],
        )
    await db.execute(
        "INSERT INTO team_member (team_id, user_id) VALUES ($1, $2)", ids["team"], ids["ben"]
    )
    await db.execute(
        "INSERT INTO project_team_grant (project_id, team_id, role) VALUES ($1, $2, 'viewer')",
        ids["project"],
        ids["team"],
    )
    for user in ("ann", "ben"):
        ids[f"{user}_session"] = await db.fetchval(
            "INSERT INTO user_session (user_id, token_hash, expires_at) "
            "VALUES ($1, $2, now() + interval '1 day') RETURNING id",
            ids[user],
            uuid.uuid4().hex,
        )
    return ids


async def test_inserts_and_a_session_touch_leave_it_still(db: asyncpg.Connection) -> None:
    before = await counter(db)
    ids = await world(db)
    await db.execute(
        "UPDATE user_session SET last_seen_at = now(), expires_at = expires_at + interval '1 h' "
        "WHERE id = $1",
        ids["ann_session"],
    )
    await db.execute("UPDATE project SET seq = seq + 1, name = 'q' WHERE id = $1", ids["project"])
    await db.execute(
        "UPDATE project_member SET role = 'viewer' WHERE project_id = $1", ids["project"]
    )
    assert await counter(db) == before


@pytest.mark.parametrize(
    "change",
    [
        "DELETE FROM project_member WHERE user_id = $ann",
        "DELETE FROM team_member WHERE user_id = $ben",
        "DELETE FROM project_team_grant WHERE project_id = $project",
        "DELETE FROM team WHERE id = $team",  # cascades to its members and grants
        "UPDATE project SET deleted_at = now() WHERE id = $project",
        "DELETE FROM project WHERE id = $project",
        "UPDATE user_session SET revoked_at = now() WHERE id = $ann_session",
        "UPDATE user_session SET expires_at = now() WHERE id = $ann_session",
        "DELETE FROM user_session WHERE id = $ben_session",
        "DELETE FROM app_user WHERE id = $ann",  # cascades to her membership and session
    ],
)
async def test_each_change_that_can_end_access_moves_it_once(
    db: asyncpg.Connection, change: str
) -> None:
    ids = await world(db)
    before = await counter(db)
    sql = change
    for name, value in sorted(ids.items(), key=lambda kv: -len(kv[0])):  # $ann_session first
        sql = sql.replace(f"${name}", f"'{value}'")
    async with db.transaction():
        await db.execute(sql)
        assert await counter(db) == before  # deferred: bumped as the transaction commits
    assert await counter(db) == before + 1


async def test_one_transaction_of_many_changes_moves_it_once(db: asyncpg.Connection) -> None:
    ids = await world(db)
    before = await counter(db)
    async with db.transaction():
        await db.execute("DELETE FROM project_member WHERE project_id = $1", ids["project"])
        await db.execute(
            "UPDATE user_session SET revoked_at = now() WHERE user_id = $1", ids["ann"]
        )
    assert await counter(db) == before + 1
    rollback = db.transaction()  # a rolled-back change moves nothing
    await rollback.start()
    await db.execute("DELETE FROM team_member WHERE user_id = $1", ids["ben"])
    await rollback.rollback()
    assert await counter(db) == before + 1
    await db.execute("DELETE FROM team_member WHERE user_id = $1", ids["ben"])
    assert await counter(db) == before + 2
