"""Sessions: created at login, looked up by token hash, sliding expiry, revocable.

A session's token is shown once (login answer, cookie) and stored only as its
SHA-256 (server/access/tokens.py). Expiry slides: activity pushes
``expires_at`` forward, written at most once per ``TOUCH_INTERVAL`` so a busy
client does not turn every request into a write.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from server import metrics
from server.access.principal import Principal, Via
from server.access.tables import UserSession
from server.access.tokens import hash_token, new_token
from server.db.database import Database
from server.db.read_batch import ReadBatch
from server.types import UserId

TOUCH_INTERVAL = timedelta(seconds=60)
MAX_USER_AGENT = 512


@dataclass(frozen=True, slots=True)
class NewSession:
    """A just-created session and its token (the only time the token exists in clear)."""

    id: uuid.UUID
    token: str
    expires_at: datetime


def now() -> datetime:
    return datetime.now(UTC)


async def start_session(
    user_id: UserId, *, ttl_s: int, ip: str | None, user_agent: str | None
) -> NewSession:
    """Create a session for ``user_id``; the caller hands the token to the client."""
    token, token_hash = new_token("session")
    session_id = uuid.uuid4()
    expires_at = now() + timedelta(seconds=ttl_s)
    await UserSession.insert(
        UserSession(
            id=session_id,
            user_id=user_id,
            token_hash=token_hash,
            expires_at=expires_at,
            ip=ip,
            user_agent=(user_agent or "")[:MAX_USER_AGENT] or None,
        )
    )
    return NewSession(id=session_id, token=token, expires_at=expires_at)


# The live session of a token hash and its user, as authenticate's general path reads it.
_LIVE_SESSIONS = """
SELECT s.token_hash AS token_hash, s.id AS id, s.last_seen_at AS last_seen_at,
       u.id AS user_id, u.email AS email, u.name AS name, u.role AS role
FROM user_session s JOIN app_user u ON u.id = s.user_id
WHERE s.token_hash {} AND s.revoked_at IS NULL AND s.expires_at > $2 AND u.deleted_at IS NULL
"""
_SESSION_SQL = _LIVE_SESSIONS.format("= $1")
# The same for several token hashes at once (a batch of concurrent calls): each row says whose.
_SESSIONS_SQL = _LIVE_SESSIONS.format("= ANY($1::text[])")
# Slide the expiry; a no-op when a concurrent request of the same session did it already.
_TOUCH_SQL = """
UPDATE user_session SET last_seen_at = $2, expires_at = $3 WHERE id = $1 AND last_seen_at <= $4
"""


async def authenticate(database: Database, token: str, *, ttl_s: int, via: Via) -> Principal | None:
    """The principal of a live session token, or None (unknown, expired, revoked, erased).

    Every socket and request comes through here: on PostgreSQL it is one fixed
    statement on the statement connections (server/db/raw.py), shared by the
    calls that arrive together (server/db/read_batch.py); elsewhere the
    Piccolo query.
    """
    current = now()
    token_hash = hash_token(token)
    runner = database.statement_runner()
    row: Any
    if runner is not None:
        row = await database.owned(_live_sessions).read((token_hash, current))
    else:
        row = (
            await UserSession.select(
                UserSession.id,
                UserSession.last_seen_at,
                UserSession.user_id.id.as_alias("user_id"),
                UserSession.user_id.email.as_alias("email"),
                UserSession.user_id.name.as_alias("name"),
                UserSession.user_id.role.as_alias("role"),
            )
            .where(
                (UserSession.token_hash == token_hash)
                & UserSession.revoked_at.is_null()
                & (UserSession.expires_at > current)
                & UserSession.user_id.deleted_at.is_null()
            )
            .first()
        )
    if row is None:
        metrics.AUTH_FAILURES.labels("token").inc()
        return None
    if current - _aware(row["last_seen_at"]) >= TOUCH_INTERVAL:
        touching = database.owned(_touching)
        if row["id"] not in touching:
            touching.add(row["id"])
            try:
                await _touch(runner, row["id"], current, ttl_s)
            finally:
                touching.discard(row["id"])
    return Principal(
        user_id=UserId(row["user_id"]),
        session_id=row["id"],
        email=row["email"],
        name=row["name"],
        role=row["role"],
        via=via,
    )


def _touching(_database: Database) -> set[uuid.UUID]:
    """Sessions whose expiry a call on this database is sliding now.

    Calls of the same session arriving meanwhile (a reconnect storm of one
    user's many sockets: a batch reads them all stale at once) skip it: each
    would wait on the row's lock and its commit, holding a statement
    connection the other sockets' reads need, only to update nothing.
    """
    return set()


async def _touch(runner: Any | None, session_id: uuid.UUID, current: datetime, ttl_s: int) -> None:
    """Slide the session's expiry to ``current`` + ``ttl_s``."""
    expires_at = current + timedelta(seconds=ttl_s)
    if runner is not None:
        stale = current - TOUCH_INTERVAL
        await runner.execute(_TOUCH_SQL, session_id, current, expires_at, stale)
    else:
        await UserSession.update(
            {UserSession.last_seen_at: current, UserSession.expires_at: expires_at}
        ).where(UserSession.id == session_id)


async def _session_row(runner: Any, asked: tuple[str, datetime]) -> Any:
    """A lone call's row: the single-row statement."""
    return await runner.fetchrow(_SESSION_SQL, *asked)


async def _session_rows(runner: Any, asked: list[tuple[str, datetime]]) -> list[Any]:
    """Each call's row (or None) of one statement; two calls of one token both get its row.

    Expiry is judged at the latest of the callers' clocks: a few milliseconds
    stricter, at most, than each caller's own.
    """
    hashes = list(dict.fromkeys(token_hash for token_hash, _ in asked))
    rows = await runner.fetch(_SESSIONS_SQL, hashes, max(at for _, at in asked))
    found = {row["token_hash"]: row for row in rows}
    return [found.get(token_hash) for token_hash, _ in asked]


def _live_sessions(database: Database) -> ReadBatch[tuple[str, datetime], Any]:
    """The database's batched reads of live sessions (one statement in flight)."""
    return ReadBatch(database, "session", _session_row, _session_rows)


async def list_sessions(user_id: UserId) -> list[dict[str, Any]]:
    """The user's live sessions, newest first (never their tokens)."""
    rows: list[dict[str, Any]] = (
        await UserSession.select(
            UserSession.id,
            UserSession.created_at,
            UserSession.last_seen_at,
            UserSession.expires_at,
            UserSession.ip,
            UserSession.user_agent,
        )
        .where(
            (UserSession.user_id == user_id)
            & UserSession.revoked_at.is_null()
            & (UserSession.expires_at > now())
        )
        .order_by(UserSession.created_at, ascending=False)
    )
    return rows


async def revoke_session(user_id: UserId, session_id: uuid.UUID) -> bool:
    """Revoke one of the user's sessions; False when it is not theirs or already gone."""
    revoked = (
        await UserSession.update({UserSession.revoked_at: now()})
        .where(
            (UserSession.id == session_id)
            & (UserSession.user_id == user_id)
            & UserSession.revoked_at.is_null()
        )
        .returning(UserSession.id)
    )
    return bool(revoked)


async def revoke_all_sessions(user_id: UserId) -> list[uuid.UUID]:
    """Revoke every live session of the user; returns their ids."""
    rows = (
        await UserSession.update({UserSession.revoked_at: now()})
        .where((UserSession.user_id == user_id) & UserSession.revoked_at.is_null())
        .returning(UserSession.id)
    )
    return [row["id"] for row in rows]


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; they were written as UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
