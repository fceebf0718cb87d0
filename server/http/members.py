"""Project members, invitations and team grants (owners manage; docs/protocol.md §2.4)."""

from __future__ import annotations

import uuid

from litestar import Controller, Response, delete, get, patch, post
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from server.http.deps import Caller, ClientInfo, Ctx
from server.http.schemas import (
    AcceptedInvitation,
    InvitationCreateBody,
    InvitationCreated,
    InvitationPreview,
    Member,
    MemberCreateBody,
    MemberPatchBody,
    PendingInvitation,
    TeamGrant,
    TeamGrantBody,
    to,
)
from server.projects import access, invitations, membership
from server.types import ProjectId, UserId


class MemberController(Controller):
    path = "/api/projects/{project_id:uuid}"
    tags = ["members"]

    @get("/members")
    async def list_members(self, project_id: FromPath[uuid.UUID], caller: Caller) -> list[Member]:
        """The project's direct members (owners only)."""
        await access.require(ProjectId(project_id), caller.user_id, "members.manage")
        return to(list[Member], await membership.list_members(ProjectId(project_id)))

    @post("/members", status_code=HTTP_201_CREATED)
    async def add_member(
        self,
        project_id: FromPath[uuid.UUID],
        data: JSONBody[MemberCreateBody],
        caller: Caller,
        ctx: Ctx,
        client: ClientInfo,
    ) -> Member:
        """Add an existing user by e-mail with a role."""
        member = await membership.add_member(
            ctx.engine,
            ctx.notifier,
            caller,
            ProjectId(project_id),
            email=data.email,
            role=data.role,
            ip=client.ip,
        )
        return to(Member, member)

    @patch("/members/{user_id:uuid}")
    async def change_role(
        self,
        project_id: FromPath[uuid.UUID],
        user_id: FromPath[uuid.UUID],
        data: JSONBody[MemberPatchBody],
        caller: Caller,
        ctx: Ctx,
        client: ClientInfo,
    ) -> Member:
        """Change a member's role; 409 for the last owner."""
        member = await membership.change_role(
            ctx.engine,
            ctx.notifier,
            caller,
            ProjectId(project_id),
            UserId(user_id),
            role=data.role,
            ip=client.ip,
        )
        return to(Member, member)

    @delete("/members/{user_id:uuid}", status_code=HTTP_204_NO_CONTENT)
    async def remove_member(
        self,
        project_id: FromPath[uuid.UUID],
        user_id: FromPath[uuid.UUID],
        caller: Caller,
        ctx: Ctx,
        client: ClientInfo,
    ) -> None:
        """Remove a member (or leave); 409 for the last owner."""
        await membership.remove_member(
            ctx.engine,
            ctx.notifier,
            caller,
            ProjectId(project_id),
            UserId(user_id),
            ip=client.ip,
        )

    @post("/invitations", status_code=HTTP_201_CREATED)
    async def invite(
        self,
        project_id: FromPath[uuid.UUID],
        data: JSONBody[InvitationCreateBody],
        caller: Caller,
        ctx: Ctx,
        client: ClientInfo,
    ) -> InvitationCreated:
        """A single-use, expiring invitation; the token is shown once."""
        created = await invitations.invite(
            ctx.engine,
            caller,
            ProjectId(project_id),
            email=data.email,
            role=data.role,
            ttl_s=ctx.settings.invitation_ttl_s,
            ip=client.ip,
        )
        return to(InvitationCreated, created)

    @get("/invitations")
    async def list_invitations(
        self, project_id: FromPath[uuid.UUID], caller: Caller
    ) -> list[PendingInvitation]:
        """The pending invitations, oldest first (owners only; tokens are never shown again)."""
        pending = await invitations.list_pending(caller, ProjectId(project_id))
        return to(list[PendingInvitation], pending)

    @delete("/invitations/{invitation_id:uuid}", status_code=HTTP_204_NO_CONTENT)
    async def revoke_invitation(
        self,
        project_id: FromPath[uuid.UUID],
        invitation_id: FromPath[uuid.UUID],
        caller: Caller,
        ctx: Ctx,
        client: ClientInfo,
    ) -> None:
        """Revoke a pending invitation: accepting it is then 404."""
        await invitations.revoke(
            ctx.engine, caller, ProjectId(project_id), invitation_id, ip=client.ip
        )

    @get("/teams")
    async def list_grants(self, project_id: FromPath[uuid.UUID], caller: Caller) -> list[TeamGrant]:
        """The teams with a role on the project (owners only)."""
        await access.require(ProjectId(project_id), caller.user_id, "members.manage")
        grants = await membership.list_team_grants(ProjectId(project_id))
        return [to(TeamGrant, {**g, "project_id": project_id}) for g in grants]

    @post("/teams", status_code=HTTP_201_CREATED)
    async def grant(
        self,
        project_id: FromPath[uuid.UUID],
        data: JSONBody[TeamGrantBody],
        caller: Caller,
        ctx: Ctx,
        client: ClientInfo,
    ) -> Response[TeamGrant]:
        """Give every member of a team a role on the project (200 when it changed a grant)."""
        grant, created = await membership.grant_team(
            ctx.engine,
            ctx.notifier,
            caller,
            ProjectId(project_id),
            team_id=data.team_id,
            role=data.role,
            ip=client.ip,
        )
        status = HTTP_201_CREATED if created else HTTP_200_OK
        return Response(to(TeamGrant, grant), status_code=status)

    @delete("/teams/{team_id:uuid}", status_code=HTTP_204_NO_CONTENT)
    async def revoke_grant(
        self,
        project_id: FromPath[uuid.UUID],
        team_id: FromPath[uuid.UUID],
        caller: Caller,
        ctx: Ctx,
        client: ClientInfo,
    ) -> None:
        """Take a team's grant away."""
        await membership.revoke_team_grant(
            ctx.engine, ctx.notifier, caller, ProjectId(project_id), team_id, ip=client.ip
        )


class InvitationController(Controller):
    path = "/api/invitations"
    tags = ["members"]

    @get("/{token:str}")
    async def preview(self, token: FromPath[str]) -> InvitationPreview:
        """What the link offers: project, inviter, e-mail and role (no sign-in needed).

        404 unknown or revoked; 410 expired, used, or its maker may no longer invite.
        """
        return to(InvitationPreview, await invitations.lookup(token))

    @post("/{token:str}/accept", status_code=HTTP_200_OK)
    async def accept(
        self, token: FromPath[str], caller: Caller, ctx: Ctx, client: ClientInfo
    ) -> AcceptedInvitation:
        """Join the project with the invitation's role.

        404 unknown or revoked; 410 expired, used, or its maker may no longer invite.
        """
        member = await invitations.accept(ctx.engine, ctx.notifier, caller, token, ip=client.ip)
        return to(AcceptedInvitation, member)
