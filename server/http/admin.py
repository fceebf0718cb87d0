"""``/api/admin``: service accounts, credit adjustments, the audit log (platform admins)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, delete, get, post
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from server.access import admin, audit
from server.http.deps import Caller, ClientInfo, Ctx, strictly
from server.http.schemas import (
    NO_NUL,
    AuditEntry,
    CreditAdjustBody,
    ServiceAccountCreateBody,
    ServiceAccountCreated,
    ServiceAccountInfo,
    ServiceAccountRotateBody,
    ServiceAccountRotated,
    User,
    to,
)
from server.types import UserId


class AdminController(Controller):
    path = "/api/admin"
    tags = ["admin"]

    @post("/service-accounts", status_code=HTTP_201_CREATED)
    async def create_service_account(
        self, data: JSONBody[ServiceAccountCreateBody], caller: Caller, ctx: Ctx, client: ClientInfo
    ) -> ServiceAccountCreated:
        """A worker's identity; its key is shown once and stored hashed."""
        created = await admin.create_service_account(
            ctx.engine, caller, name=data.name, ip=client.ip
        )
        return to(ServiceAccountCreated, created)

    @get("/service-accounts")
    async def list_service_accounts(self, caller: Caller, ctx: Ctx) -> list[ServiceAccountInfo]:
        """Every service account, oldest first, with when it was last used or revoked."""
        rows = await admin.list_service_accounts(ctx.engine, caller)
        return to(list[ServiceAccountInfo], rows)

    @delete("/service-accounts/{account_id:uuid}", status_code=HTTP_204_NO_CONTENT)
    async def revoke_service_account(
        self, account_id: FromPath[uuid.UUID], caller: Caller, ctx: Ctx, client: ClientInfo
    ) -> None:
        """Revoke a worker's key: its next call is refused (401), on every instance."""
        await admin.revoke_service_account(ctx.engine, caller, account_id, ip=client.ip)

    @post("/service-accounts/{account_id:uuid}/rotate", status_code=HTTP_200_OK)
    async def rotate_service_account(
        self,
        request: Request[Any, Any, Any],
        account_id: FromPath[uuid.UUID],
        data: JSONBody[ServiceAccountRotateBody],
        caller: Caller,
        ctx: Ctx,
        client: ClientInfo,
    ) -> ServiceAccountRotated:
        """A new key for a worker, shown once; the old key keeps working for ``grace_hours``
        (default 24, 0: not at all), so workers can be given the new one one by one."""
        data = await strictly(request, data)
        rotated = await admin.rotate_service_account(
            ctx.engine, caller, account_id, grace_hours=data.grace_hours, ip=client.ip
        )
        return to(ServiceAccountRotated, rotated)

    @delete("/service-accounts/{account_id:uuid}/previous-key", status_code=HTTP_204_NO_CONTENT)
    async def end_previous_service_key(
        self, account_id: FromPath[uuid.UUID], caller: Caller, ctx: Ctx, client: ClientInfo
    ) -> None:
        """Stop accepting the key the last rotation retired, before its grace period ends."""
        await admin.end_previous_service_key(ctx.engine, caller, account_id, ip=client.ip)

    @post("/users/{user_id:uuid}/credits", status_code=HTTP_200_OK)
    async def adjust_credits(
        self,
        request: Request[Any, Any, Any],
        user_id: FromPath[uuid.UUID],
        data: JSONBody[CreditAdjustBody],
        caller: Caller,
        ctx: Ctx,
        client: ClientInfo,
    ) -> User:
        """Add or remove credits, with a ledger row and an audit entry."""
        data = await strictly(request, data)
        user = await admin.adjust_credits(
            ctx.engine,
            caller,
            UserId(user_id),
            delta=data.delta,
            reason=data.reason,
            ip=client.ip,
        )
        return to(User, user)

    @get("/audit")
    async def audit_log(
        self,
        caller: Caller,
        actor: Annotated[uuid.UUID | None, QueryParameter()] = None,
        action: Annotated[str | None, QueryParameter(max_length=64, pattern=NO_NUL)] = None,
        after: Annotated[int, QueryParameter(ge=0, le=2**53 - 1)] = 0,  # exact in JSON numbers
        limit: Annotated[int, QueryParameter(ge=1, le=audit.AUDIT_PAGE_MAX)] = 100,
    ) -> list[AuditEntry]:
        """Audit entries with id > after, oldest first, filtered by actor and action."""
        admin.require_admin(caller)
        rows = await audit.search(actor=actor, action=action, after=after, limit=limit)
        return to(list[AuditEntry], rows)
