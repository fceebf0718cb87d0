"""Service-account keys: checked on every worker call, rotated with a grace period.

A rotation issues a new key and keeps the old one working until
``previous_key_expires_at`` (or until an admin ends it), so an operator can
hand the new key to workers one by one and no claim fails in between. One
previous key at most: a second rotation retires the first one's key for good.
Revoking the account ends both keys. ``last_used_at`` and
``previous_key_last_used_at`` (written at most once a minute per key) tell
an admin whether a worker still calls with the old key before ending it
(docs/operations.md "Rotating secrets").
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from piccolo.engine.base import Engine

from server import metrics
from server.access import audit
from server.access.principal import ServicePrincipal
from server.access.tables import ServiceAccount
from server.access.tokens import hash_token, new_token
from server.db.engine import write_transaction
from server.errors import Conflict, NotFound
from server.types import UserId

TOUCH_INTERVAL = timedelta(seconds=60)
MAX_GRACE = timedelta(days=30)
DEFAULT_GRACE = timedelta(hours=24)


async def authenticate_service(key: str) -> ServicePrincipal | None:
    """The service account of an API key (its current key, or its previous one in its grace),
    or None (unknown, expired or revoked)."""
    key_hash = hash_token(key)
    now = datetime.now(UTC)
    row = (
        await ServiceAccount.select(
            ServiceAccount.id,
            ServiceAccount.name,
            ServiceAccount.key_hash,
            ServiceAccount.last_used_at,
            ServiceAccount.previous_key_last_used_at,
        )
        .where(
            (
                (ServiceAccount.key_hash == key_hash)
                | (
                    (ServiceAccount.previous_key_hash == key_hash)
                    & (ServiceAccount.previous_key_expires_at > now)
                )
            )
            & ServiceAccount.revoked_at.is_null()
        )
        .first()
    )
    if row is None:
        metrics.AUTH_FAILURES.labels("service_key").inc()
        return None
    current = row["key_hash"] == key_hash
    if not current:
        metrics.AUTH_RETIRED_KEY.labels("service_key").inc()
    stamp = ServiceAccount.last_used_at if current else ServiceAccount.previous_key_last_used_at
    used = row["last_used_at" if current else "previous_key_last_used_at"]
    if used is None or now - used >= TOUCH_INTERVAL:
        await ServiceAccount.update({stamp: now}).where(ServiceAccount.id == row["id"])
    return ServicePrincipal(account_id=row["id"], name=row["name"])


def _actor(by: UserId | None) -> dict[str, Any]:
    return {"actor_id": by, "actor_kind": "user" if by is not None else "system"}


async def rotate_key(
    engine: Engine[Any],
    account_id: uuid.UUID,
    *,
    grace: timedelta = DEFAULT_GRACE,
    by: UserId | None,
    ip: str | None,
) -> dict[str, Any]:
    """A new key for the account (no permission check: callers decide); the old one keeps
    working for ``grace`` (0: not at all). ``{id, name, key, previous_key_expires_at}``.

    Raises:
        NotFound: no service account has this id.
        Conflict: it is revoked (for good), or another rotation of it won the race.
    """
    key, key_hash = new_token("service")
    now = datetime.now(UTC)
    expires = now + grace if grace > timedelta(0) else None
    async with write_transaction(engine):
        row = (
            await ServiceAccount.select(
                ServiceAccount.name, ServiceAccount.key_hash, ServiceAccount.revoked_at
            )
            .where(ServiceAccount.id == account_id)
            .first()
        )
        if row is None:
            raise NotFound("no such service account")
        if row["revoked_at"] is not None:
            raise Conflict("this service account is revoked for good: create a new one")
        changed = await (
            ServiceAccount.update(
                {
                    ServiceAccount.key_hash: key_hash,
                    ServiceAccount.previous_key_hash: row["key_hash"] if expires else None,
                    ServiceAccount.previous_key_expires_at: expires,
                    ServiceAccount.previous_key_last_used_at: None,
                }
            )
            .where((ServiceAccount.id == account_id) & (ServiceAccount.key_hash == row["key_hash"]))
            .returning(ServiceAccount.id)
        )
        if not changed:
            raise Conflict("the key was rotated at the same moment; try again")
        await audit.record(
            "service_account.key_rotated",
            **_actor(by),
            target_type="service_account",
            target_id=account_id,
            ip=ip,
            details={"name": row["name"], "grace_seconds": int(grace.total_seconds())},
        )
    return {"id": account_id, "name": row["name"], "key": key, "previous_key_expires_at": expires}


async def end_previous_key(
    engine: Engine[Any], account_id: uuid.UUID, *, by: UserId | None, ip: str | None
) -> None:
    """Stop accepting the key the last rotation retired, before its grace ends; a no-op when
    there is none.

    Raises:
        NotFound: no service account has this id.
    """
    async with write_transaction(engine):
        if not await ServiceAccount.exists().where(ServiceAccount.id == account_id):
            raise NotFound("no such service account")
        ended = await (
            ServiceAccount.update(
                {
                    ServiceAccount.previous_key_hash: None,
                    ServiceAccount.previous_key_expires_at: None,
                }
            )
            .where(
                (ServiceAccount.id == account_id) & ServiceAccount.previous_key_hash.is_not_null()
            )
            .returning(ServiceAccount.name)
        )
        if ended:
            await audit.record(
                "service_account.previous_key_ended",
                **_actor(by),
                target_type="service_account",
                target_id=account_id,
                ip=ip,
                details={"name": ended[0]["name"]},
            )
