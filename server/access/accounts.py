"""Accounts: sign up, log in and out, the caller's profile.

Exporting and erasing an account reach into credits, projects and events:
they are a use case of their own (server/account_data.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from piccolo.engine.base import Engine

from server import metrics
from server.access import audit
from server.access.passwords import hash_password, needs_rehash, verify_password
from server.access.principal import Principal
from server.access.sessions import NewSession, start_session
from server.access.tables import AppUser, UserSession
from server.access.throttle import LoginThrottle, throttle_keys
from server.access.users import create_user
from server.errors import RateLimited, Unauthorized
from server.events.notify import Notifier
from server.settings import Settings
from server.timestamps import rfc3339
from server.types import UserId

BAD_LOGIN = "wrong e-mail or password"
# Verified when the e-mail is unknown, so both failures take the same time.
_DUMMY_HASH = hash_password("not a real password, only for timing")


@dataclass(frozen=True, slots=True)
class Client:
    """Where a request came from (audit, sessions, throttling)."""

    ip: str | None
    user_agent: str | None


def user_view(row: dict[str, Any]) -> dict[str, Any]:
    """The user of docs/protocol.md §2.9: ``{id, email, name, role, credits, created_at}``."""
    return {
        "id": str(row["id"]),
        "email": row["email"],
        "name": row["name"],
        "role": row["role"],
        "credits": row["credits"],
        "created_at": rfc3339(row["created_at"]),
    }


async def load_user(user_id: UserId) -> dict[str, Any]:
    row = await AppUser.select().where(AppUser.id == user_id).first()
    if row is None:
        raise Unauthorized("this account no longer exists")
    return user_view(row)


async def register(
    engine: Engine[Any],
    settings: Settings,
    *,
    email: str,
    password: str,
    name: str,
    client: Client,
) -> tuple[dict[str, Any], NewSession]:
    """Create an account with its signup credits, and a first session."""
    user = await create_user(
        engine, email=email, password=password, name=name, signup_credits=settings.signup_credits
    )
    session = await start_session(
        user.id, ttl_s=settings.session_ttl_s, ip=client.ip, user_agent=client.user_agent
    )
    await audit.record(
        "user.registered", actor_id=user.id, target_type="user", target_id=user.id, ip=client.ip
    )
    return await load_user(user.id), session


async def login(
    settings: Settings, throttle: LoginThrottle, *, email: str, password: str, client: Client
) -> tuple[dict[str, Any], NewSession]:
    """Check the password and open a session.

    Raises:
        RateLimited: too many failures for this account or address (Retry-After).
        Unauthorized: unknown e-mail or wrong password (one message for both).
    """
    keys = throttle_keys(email, client.ip)
    wait = await throttle.retry_after(keys)
    if wait is not None:
        await audit.record(
            "login.throttled",
            actor_id=None,
            actor_kind="anonymous",
            ip=client.ip,
            details={"email": email.strip().lower()[:320]},
        )
        metrics.RATE_LIMITED.labels("login").inc()
        raise RateLimited(f"too many failed logins; try again in {wait} s", retry_after=wait)
    row = (
        await AppUser.select(AppUser.id, AppUser.password_hash)
        .where((AppUser.email == email.strip().lower()) & AppUser.deleted_at.is_null())
        .first()
    )
    ok = verify_password(row["password_hash"] if row else _DUMMY_HASH, password)
    if row is None or not ok:
        metrics.AUTH_FAILURES.labels("password").inc()
        await throttle.record_failure(keys)
        await audit.record(
            "login.failed",
            actor_id=None if row is None else row["id"],
            actor_kind="anonymous" if row is None else "user",
            ip=client.ip,
            details={"email": email.strip().lower()[:320]},
        )
        raise Unauthorized(BAD_LOGIN)
    user_id = UserId(row["id"])
    if needs_rehash(row["password_hash"]):
        await AppUser.update({AppUser.password_hash: hash_password(password)}).where(
            AppUser.id == user_id
        )
    session = await start_session(
        user_id, ttl_s=settings.session_ttl_s, ip=client.ip, user_agent=client.user_agent
    )
    await audit.record(
        "login.succeeded",
        actor_id=user_id,
        target_type="session",
        target_id=session.id,
        ip=client.ip,
    )
    return await load_user(user_id), session


async def logout(notifier: Notifier, caller: Principal, *, client: Client) -> None:
    """Revoke the caller's current session everywhere (its sockets close, 4401)."""
    await UserSession.update({UserSession.revoked_at: datetime.now(UTC)}).where(
        (UserSession.id == caller.session_id) & UserSession.revoked_at.is_null()
    )
    await audit.record(
        "logout",
        actor_id=caller.user_id,
        target_type="session",
        target_id=caller.session_id,
        ip=client.ip,
    )
    await notifier.sessions_revoked([caller.session_id])
