"""The audit log: security-relevant actions with actor, target, address and time."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from server.access.tables import AuditLog

ActorKind = Literal["user", "service", "system", "anonymous"]
AUDIT_PAGE_MAX = 500


async def record(
    action: str,
    *,
    actor_id: uuid.UUID | None,
    actor_kind: ActorKind = "user",
    target_type: str | None = None,
    target_id: uuid.UUID | str | None = None,
    project_id: uuid.UUID | None = None,
    ip: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Append one audit entry (inside the caller's transaction, when there is one)."""
    await AuditLog.insert(
        AuditLog(
            actor_id=actor_id,
            actor_kind=actor_kind,
            action=action,
            target_type=target_type,
            target_id=str(target_id) if target_id is not None else None,
            project_id=project_id,
            ip=ip,
            details=details or {},
        )
    )


async def search(
    *, actor: uuid.UUID | None, action: str | None, after: int, limit: int
) -> list[dict[str, Any]]:
    """Audit entries with ``id > after``, oldest first: page on with the last id seen.

    Filters: ``actor`` (user or service-account id) and ``action`` (exact).
    """
    query = AuditLog.select().where(AuditLog.id > after).order_by(AuditLog.id).limit(limit)
    if actor is not None:
        query = query.where(AuditLog.actor_id == actor)
    if action is not None:
        query = query.where(AuditLog.action == action)
    rows: list[dict[str, Any]] = await query.output(load_json=True)
    return rows
