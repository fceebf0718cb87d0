"""Platform administration: service accounts and credit adjustments (admins only)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from piccolo.engine.base import Engine

from server.access import audit, service_keys
from server.access.accounts import load_user
from server.access.principal import Principal
from server.access.tables import ServiceAccount
from server.access.tokens import new_token
from server.credits.service import apply_change
from server.db.engine import write_transaction
from server.errors import Forbidden, NotFound, ValidationFailed
from server.types import UserId

ADMINS_ONLY = "this needs the platform admin role"


def require_admin(caller: Principal) -> None:
    if not caller.is_admin:
        raise Forbidden(ADMINS_ONLY)


async def create_service_account(
    engine: Engine[Any], caller: Principal, *, name: str, ip: str | None
) -> dict[str, Any]:
    """A new service account; its key is in this answer only (stored hashed)."""
    require_admin(caller)
    return await new_service_account(engine, name=name, created_by=caller.user_id, ip=ip)


async def new_service_account(
    engine: Engine[Any], *, name: str, created_by: UserId | None, ip: str | None
) -> dict[str, Any]:
    """Create a service account (no permission check: callers decide); ``{id, name, key}``.

    ``moodboard create-service-account`` calls this directly (an operator at
    the server's console), the admin API through :func:`create_service_account`.
    """
    name = name.strip()
    if not name or len(name) > 200:
        raise ValidationFailed("name: must be 1..200 characters", field="name")
    key, key_hash = new_token("service")
    account_id = uuid.uuid4()
    async with write_transaction(engine):
        await ServiceAccount.insert(
            ServiceAccount(id=account_id, name=name, key_hash=key_hash, created_by=created_by)
        )
        await audit.record(
            "service_account.created",
            actor_id=created_by,
            actor_kind="user" if created_by is not None else "system",
            target_type="service_account",
            target_id=account_id,
            ip=ip,
            details={"name": name},
        )
    return {"id": str(account_id), "name": name, "key": key}


async def list_service_accounts(engine: Engine[Any], caller: Principal) -> list[dict[str, Any]]:
    """Every service account, oldest first, without its key (only its hash is stored)."""
    require_admin(caller)
    rows: list[dict[str, Any]] = (
        await ServiceAccount.select(
            ServiceAccount.id,
            ServiceAccount.name,
            ServiceAccount.created_at,
            ServiceAccount.last_used_at,
            ServiceAccount.revoked_at,
            ServiceAccount.previous_key_expires_at,
            ServiceAccount.previous_key_last_used_at,
        )
        .order_by(ServiceAccount.created_at)
        .run()
    )
    return rows


async def rotate_service_account(
    engine: Engine[Any],
    caller: Principal,
    account_id: uuid.UUID,
    *,
    grace_hours: int,
    ip: str | None,
) -> dict[str, Any]:
    """A new key for a worker (admins only); the old one works ``grace_hours`` longer."""
    require_admin(caller)
    return await service_keys.rotate_key(
        engine, account_id, grace=timedelta(hours=grace_hours), by=caller.user_id, ip=ip
    )


async def end_previous_service_key(
    engine: Engine[Any], caller: Principal, account_id: uuid.UUID, *, ip: str | None
) -> None:
    """Stop accepting the key the last rotation retired, now (admins only)."""
    require_admin(caller)
    await service_keys.end_previous_key(engine, account_id, by=caller.user_id, ip=ip)


async def revoke_service_account(
    engine: Engine[Any], caller: Principal, account_id: uuid.UUID, *, ip: str | None
) -> None:
    """Revoke a service account's key (admins only); see :func:`end_service_account`."""
    require_admin(caller)
    await end_service_account(engine, account_id, revoked_by=caller.user_id, ip=ip)


async def end_service_account(
    engine: Engine[Any], account_id: uuid.UUID, *, revoked_by: UserId | None, ip: str | None
) -> None:
    """Revoke a service account's key for good (no permission check: callers decide).

    Every call with the key is looked up in the database (server/access/sessions.py),
    so the next one is refused (401), on every instance. Revoking twice is a no-op.

    Raises:
        NotFound: no service account has this id.
    """
    async with write_transaction(engine):
        exists = await ServiceAccount.exists().where(ServiceAccount.id == account_id)
        if not exists:
            raise NotFound("no such service account")
        revoked = await (
            ServiceAccount.update({ServiceAccount.revoked_at: datetime.now(UTC)})
            .where((ServiceAccount.id == account_id) & ServiceAccount.revoked_at.is_null())
            .returning(ServiceAccount.name)
        )
        if revoked:
            await audit.record(
                "service_account.revoked",
                actor_id=revoked_by,
                actor_kind="user" if revoked_by is not None else "system",
                target_type="service_account",
                target_id=account_id,
                ip=ip,
                details={"name": revoked[0]["name"]},
            )


async def adjust_credits(
    engine: Engine[Any],
    caller: Principal,
    user_id: UserId,
    *,
    delta: int,
    reason: str,
    ip: str | None,
) -> dict[str, Any]:
    """Add or remove credits (never below zero: 402 if the balance does not cover it)."""
    require_admin(caller)
    if delta == 0:
        raise ValidationFailed("delta: must not be zero", field="delta")
    reason = reason.strip()
    if not reason:
        raise ValidationFailed("reason: must not be empty", field="reason")
    async with write_transaction(engine):
        balance = await apply_change(user_id, delta, f"admin: {reason}", actor_id=caller.user_id)
        await audit.record(
            "credits.adjusted",
            actor_id=caller.user_id,
            target_type="user",
            target_id=user_id,
            ip=ip,
            details={"delta": delta, "reason": reason, "balance": balance},
        )
    return await load_user(user_id)
