"""Many accounts for one workload: W5's one account per socket, W6's big room.

A registration over REST hashes a password with argon2, about 200 ms of the
server's CPU on one hashing thread: the 1,000 accounts of a W5 storm would be
minutes of setup that load the server before it is measured. The benchmark
writes them into its own database instead, in three statements: users that
share the benchmark user's password hash, one session each (a new token, stored
as its SHA-256 as the server stores its own, ``server.access.tokens``), and a
membership in the project each account belongs to. The server reads these rows
as it reads any account's: a socket's token is looked up and its role checked
on every join and resume, which is what the workload measures.

On the baseline any token joins anything: the benchmark token, repeated.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import asyncpg

from load_tests.bench.harness import Target
from server.access.tokens import new_token

SESSION_DAYS = 1
# The columns written; the others take their defaults (role "user", 0 credits, timestamps now).
USER_COLUMNS = ("id", "email", "name", "password_hash", "updated_at")
SESSION_COLUMNS = ("id", "user_id", "token_hash", "created_at", "expires_at")
MEMBER_COLUMNS = ("id", "project_id", "user_id", "role", "added_by")


async def member_accounts(
    target: Target, projects: Sequence[str], count: int, role: str = "editor"
) -> list[str]:
    """Tokens of ``count`` new accounts; account ``i`` is a member of ``projects[i % len]``."""
    if target.baseline:
        return [target.token] * count
    if target.database_url is None:
        raise RuntimeError(f"{target.name}: no database URL to write the accounts to")
    stamp = f"{time.monotonic_ns():x}"
    now = datetime.now(UTC)
    users = [uuid.uuid4() for _ in range(count)]
    tokens, hashes = zip(*(new_token("session") for _ in range(count)), strict=True)
    connection = await asyncpg.connect(target.database_url)
    try:
        async with connection.transaction():
            owner, password_hash = await connection.fetchrow(
                "SELECT u.id, u.password_hash FROM project p JOIN app_user u ON u.id = p.owner_id"
                " WHERE p.id = $1",
                uuid.UUID(projects[0]),
            )
            user_rows = [
                (user, f"bench-{stamp}-{n}@example.com", f"Member {n}", password_hash, now)
                for n, user in enumerate(users)
            ]
            session_rows = [
                (uuid.uuid4(), user, token_hash, now, now + timedelta(days=SESSION_DAYS))
                for user, token_hash in zip(users, hashes, strict=True)
            ]
            member_rows = [
                (uuid.uuid4(), uuid.UUID(projects[n % len(projects)]), user, role, owner)
                for n, user in enumerate(users)
            ]
            await connection.copy_records_to_table(
                "app_user", columns=USER_COLUMNS, records=user_rows
            )
            await connection.copy_records_to_table(
                "user_session", columns=SESSION_COLUMNS, records=session_rows
            )
            await connection.copy_records_to_table(
                "project_member", columns=MEMBER_COLUMNS, records=member_rows
            )
    finally:
        await connection.close()
    return list(tokens)
