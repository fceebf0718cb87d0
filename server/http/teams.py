"""``/api/teams``: teams and their members."""

from __future__ import annotations

import uuid

from litestar import Controller, delete, get, post
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from server.access import teams
from server.http.deps import Caller, ClientInfo, Ctx
from server.http.schemas import (
    Team,
    TeamCreateBody,
    TeamDetail,
    TeamMemberAdded,
    TeamMemberCreateBody,
    to,
)
from server.types import UserId


class TeamController(Controller):
    path = "/api/teams"
    tags = ["teams"]

    @post("/", status_code=HTTP_201_CREATED)
    async def create(
        self, data: JSONBody[TeamCreateBody], caller: Caller, ctx: Ctx, client: ClientInfo
    ) -> Team:
        """Create a team; the caller is its owner."""
        return to(Team, await teams.create_team(ctx.engine, caller, name=data.name, ip=client.ip))

    @get("/")
    async def list(self, caller: Caller) -> list[Team]:
        """The caller's teams."""
        return to(list[Team], await teams.list_teams(caller))

    @get("/{team_id:uuid}")
    async def read(self, team_id: FromPath[uuid.UUID], caller: Caller) -> TeamDetail:
        """A team of the caller's, with its members."""
        return to(TeamDetail, await teams.get_team(caller, team_id))

    @post("/{team_id:uuid}/members", status_code=HTTP_201_CREATED)
    async def add_member(
        self,
        team_id: FromPath[uuid.UUID],
        data: JSONBody[TeamMemberCreateBody],
        caller: Caller,
        ctx: Ctx,
        client: ClientInfo,
    ) -> TeamMemberAdded:
        """Add a user by e-mail (team owners only)."""
        added = await teams.add_team_member(
            ctx.engine,
            ctx.notifier,
            caller,
            team_id,
            email=data.email,
            role=data.role,
            ip=client.ip,
        )
        return to(TeamMemberAdded, added)

    @delete("/{team_id:uuid}/members/{user_id:uuid}", status_code=HTTP_204_NO_CONTENT)
    async def remove_member(
        self,
        team_id: FromPath[uuid.UUID],
        user_id: FromPath[uuid.UUID],
        caller: Caller,
        ctx: Ctx,
        client: ClientInfo,
    ) -> None:
        """Remove a member (team owners, or the member leaving)."""
        await teams.remove_team_member(
            ctx.engine, ctx.notifier, caller, team_id, UserId(user_id), ip=client.ip
        )
