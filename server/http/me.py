"""``/api/me``: the caller's profile, sessions, data export and account deletion."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Response, delete, get
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_204_NO_CONTENT

from server import account_data
from server.access import accounts
from server.access.sessions import list_sessions, revoke_session
from server.errors import NotFound
from server.http.deps import Caller, ClientInfo, Ctx
from server.http.schemas import Me, PasswordBody, Session, to


class MeController(Controller):
    path = "/api/me"
    tags = ["me"]

    @get("/")
    async def me(self, caller: Caller, ctx: Ctx) -> Me:
        """The signed-in user, and the credits one generation costs."""
        user = await accounts.load_user(caller.user_id)
        return to(Me, {**user, "generation_cost": ctx.settings.generation_cost})

    @get("/sessions")
    async def sessions(self, caller: Caller) -> list[Session]:
        """The caller's live sessions, newest first (never their tokens)."""
        rows = await list_sessions(caller.user_id)
        return [to(Session, {**r, "current": r["id"] == caller.session_id}) for r in rows]

    @delete("/sessions/{session_id:uuid}", status_code=HTTP_204_NO_CONTENT)
    async def revoke(
        self, session_id: FromPath[uuid.UUID], caller: Caller, ctx: Ctx, client: ClientInfo
    ) -> None:
        """Revoke one of the caller's sessions (its sockets close)."""
        if not await revoke_session(caller.user_id, session_id):
            raise NotFound("no live session of yours has this id")
        from server.access import audit

        await audit.record(
            "session.revoked",
            actor_id=caller.user_id,
            target_type="session",
            target_id=session_id,
            ip=client.ip,
        )
        await ctx.notifier.sessions_revoked([session_id])

    @get("/export")
    async def export(self, caller: Caller) -> dict[str, Any]:
        """Everything held about the caller, including the credit ledger."""
        return await account_data.export(caller)

    @delete("/", status_code=HTTP_204_NO_CONTENT)
    async def erase(
        self, data: JSONBody[PasswordBody], caller: Caller, ctx: Ctx, client: ClientInfo
    ) -> Response[None]:
        """Delete the account (password re-confirmed); see docs/security.md for the rule."""
        await account_data.erase(
            ctx.engine, ctx.notifier, ctx.throttle, caller, password=data.password, client=client
        )
        return Response(None, status_code=HTTP_204_NO_CONTENT)
