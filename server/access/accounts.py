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
from server.access.guesses import verify_guess
from server.access.hashing import hash_in_pool
from server.access.passwords import hash_password, needs_rehash
from server.access.principal import Principal
from server.access.sessions import NewSession, start_session
from server.access.tables import AppUser, UserSession
from server.access.throttle import LoginThrottle, signup_keys, throttle_keys
from server.access.users import canonical_email, create_user
from server.errors import Conflict, RateLimited, Unauthorized
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
    throttle: LoginThrottle,
    *,
    email: str,
    password: str,
    name: str,
    client: Client,
) -> tuple[dict[str, Any], NewSession]:
    """Create an account with its signup credits, and a first session.

    Sign-ups with a taken e-mail (each one tells whether an address has an
    account) are counted per address like failed logins: past the limit, 429
    before anything else is checked. The taken e-mail is found before the slow
    hash (users.create_user), and the hash runs off the event loop.
    """
    keys = signup_keys(client.ip)
    wait = await throttle.attempt(keys)
    if wait is not None:
        await audit.record("signup.throttled", actor_id=None, actor_kind="anonymous", ip=client.ip)
        metrics.RATE_LIMITED.labels("signup").inc()
        raise RateLimited(f"too many failed sign-ups; try again in {wait} s", retry_after=wait)
    try:
        user = await create_user(
            engine,
            email=email,
            password=password,
            name=name,
            signup_credits=settings.signup_credits,
        )
    except Exception as exc:
        if not isinstance(exc, Conflict):
            await throttle.forgive(keys)
        raise  # a taken e-mail stays counted: it tells the caller that address has an account
    await throttle.forgive(keys)
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
    address = canonical_email(email)[:320]
    row = (
        await AppUser.select(AppUser.id, AppUser.password_hash)
        .where((AppUser.email == canonical_email(email)) & AppUser.deleted_at.is_null())
        .first()
    )
    keys = throttle_keys(email, client.ip)
    try:
        ok = await verify_guess(
            throttle, keys, row["password_hash"] if row else _DUMMY_HASH, password, scope="login"
        )
    except RateLimited:
        await audit.record(
            "login.throttled",
            actor_id=None,
            actor_kind="anonymous",
            ip=client.ip,
            details={"email": address},
        )
        raise
    if row is None or not ok:
        await audit.record(
            "login.failed",
            actor_id=None if row is None else row["id"],
            actor_kind="anonymous" if row is None else "user",
            ip=client.ip,
            details={"email": address},
        )
        raise Unauthorized(BAD_LOGIN)
    user_id = UserId(row["id"])
    if needs_rehash(row["password_hash"]):
        await AppUser.update({AppUser.password_hash: await hash_in_pool(password)}).where(
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
