"""Platform administration: service accounts and credit adjustments (admins only)."""

from __future__ import annotations

import uuid
from typing import Any

from piccolo.engine.base import Engine

from server.access import audit
from server.access.accounts import load_user
from server.access.principal import Principal
from server.access.tables import ServiceAccount
from server.access.tokens import new_token
from server.credits.service import apply_change
from server.db.engine import write_transaction
from server.errors import Forbidden, ValidationFailed
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
