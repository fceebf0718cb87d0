"""Who may work on a project: direct members and team grants (invitations: invitations.py).

Only owners manage them (docs/protocol.md §2.4); any member may leave. The
last direct owner can be neither removed nor demoted (409). Every change is
an event in the project's log (``member.*``), an audit entry, and a
notification so live sockets re-check access (docs/architecture.md §5).
Removing or demoting a member ends the invitations they may no longer make.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from piccolo.engine.base import Engine

from server.access import audit
from server.access.policy import Action, may_invite
from server.access.principal import Principal
from server.access.tables import AppUser, Team, TeamMember
from server.access.users import normalize_email
from server.db.engine import write_transaction
from server.errors import Conflict, Forbidden, NotFound, ValidationFailed
from server.events import log as event_log
from server.events.log import EventRecord
from server.events.notify import Notifier
from server.projects import access
from server.projects.tables import Invitation, ProjectMember, ProjectTeamGrant
from server.timestamps import rfc3339
from server.types import PROJECT_ROLES, ProjectId, ProjectRole, UserId

LAST_OWNER = "the project's last owner cannot be removed or demoted; add another owner first"


def check_role(role: str) -> ProjectRole:
    if role not in PROJECT_ROLES:
        raise ValidationFailed("role: must be owner, editor or viewer", field="role")
    return role


def member_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "user_id": str(row["user_id"]),
        "name": row["name"],
        "email": row["email"],
        "role": row["role"],
        "created_at": rfc3339(row["created_at"]),
    }


async def list_members(project_id: ProjectId, *, node: str | None = None) -> list[dict[str, Any]]:
    """The project's direct members, oldest first (on the primary, or on ``node``)."""
    rows = (
        await ProjectMember.select(
            ProjectMember.user_id,
            ProjectMember.user_id.name.as_alias("name"),
            ProjectMember.user_id.email.as_alias("email"),
            ProjectMember.role,
            ProjectMember.created_at,
        )
        .where(ProjectMember.project_id == project_id)
        .order_by(ProjectMember.created_at)
        .run(node=node)
    )
    return [member_view(row) for row in rows]


async def find_member(project_id: ProjectId, user_id: UserId) -> dict[str, Any] | None:
    row: dict[str, Any] | None = (
        await ProjectMember.select(
            ProjectMember.id,
            ProjectMember.user_id,
            ProjectMember.user_id.name.as_alias("name"),
            ProjectMember.user_id.email.as_alias("email"),
            ProjectMember.role,
            ProjectMember.created_at,
        )
        .where((ProjectMember.project_id == project_id) & (ProjectMember.user_id == user_id))
        .first()
    )
    return row


async def member_event(
    project_id: ProjectId, seq: int, kind: str, member: dict[str, Any], actor: UserId | None
) -> EventRecord:
    data = (
        {}
        if kind == "member.deleted"
        else {"user_id": str(member["user_id"]), "name": member["name"], "role": member["role"]}
    )
    return await event_log.append(
        project_id,
        kind=kind,
        entity="member",
        entity_id=member["user_id"],
        version=None,
        data=data,
        actor_id=actor,
        seq=seq,
    )


async def add_member(
    engine: Engine[Any],
    notifier: Notifier,
    caller: Principal,
    project_id: ProjectId,
    *,
    email: str,
    role: str,
    ip: str | None,
) -> dict[str, Any]:
    """Add an existing user by email with ``role`` (owners only)."""
    new_role = check_role(role)
    address = normalize_email(email)
    async with write_transaction(engine):
        await access.require_locked(project_id, caller.user_id, "members.manage")
        user = (
            await AppUser.select(AppUser.id)
            .where((AppUser.email == address) & AppUser.deleted_at.is_null())
            .first()
        )
        if user is None:
            raise NotFound(
                "email: no user has this e-mail; send an invitation instead", field="email"
            )
        seq = await event_log.next_seq(project_id)  # locks the project: changes serialise
        if await find_member(project_id, user["id"]) is not None:
            raise Conflict("email: this user is already a member", field="email")
        await ProjectMember.insert(
            ProjectMember(
                project_id=project_id, user_id=user["id"], role=new_role, added_by=caller.user_id
            )
        )
        member = await find_member(project_id, user["id"])
        assert member is not None
        event = await member_event(project_id, seq, "member.created", member, caller.user_id)
        await audit.record(
            "member.added",
            actor_id=caller.user_id,
            target_type="user",
            target_id=user["id"],
            project_id=project_id,
            ip=ip,
            details={"role": new_role},
        )
    await notifier.events_committed([event])
    await notifier.access_changed(project_id, [UserId(user["id"])])
    return member_view(member)


async def change_role(
    engine: Engine[Any],
    notifier: Notifier,
    caller: Principal,
    project_id: ProjectId,
    user_id: UserId,
    *,
    role: str,
    ip: str | None,
) -> dict[str, Any]:
    """Change a member's role (owners only); the last owner cannot be demoted (409)."""
    new_role = check_role(role)
    async with write_transaction(engine):
        await access.require_locked(project_id, caller.user_id, "members.manage")
        member = await find_member(project_id, user_id)
        if member is None:
            raise NotFound("this user is not a member of the project")
        if member["role"] == new_role:
            return member_view(member)  # no change: no event, no seq taken
        if member["role"] == "owner" and await access.direct_owner_count(project_id) <= 1:
            raise Conflict(LAST_OWNER)
        await ProjectMember.update({ProjectMember.role: new_role}).where(
            ProjectMember.id == member["id"]
        )
        member = {**member, "role": new_role}
        await end_lost_invitations(
            project_id, [user_id], actor=caller.user_id, reason="maker_demoted", ip=ip
        )
        seq = await event_log.next_seq(project_id)
        event = await member_event(project_id, seq, "member.updated", member, caller.user_id)
        await audit.record(
            "member.role_changed",
            actor_id=caller.user_id,
            target_type="user",
            target_id=user_id,
            project_id=project_id,
            ip=ip,
            details={"role": new_role},
        )
    await notifier.events_committed([event])
    await notifier.access_changed(project_id, [user_id])
    return member_view(member)


async def remove_member(
    engine: Engine[Any],
    notifier: Notifier,
    caller: Principal,
    project_id: ProjectId,
    user_id: UserId,
    *,
    ip: str | None,
) -> None:
    """Remove a member (owners; or a member leaving); never the last owner (409)."""
    async with write_transaction(engine):
        action: Action = "project.read" if user_id == caller.user_id else "members.manage"
        await access.require_locked(project_id, caller.user_id, action)
        seq = await event_log.next_seq(project_id)
        member = await find_member(project_id, user_id)
        if member is None:
            raise NotFound("this user is not a member of the project")
        if member["role"] == "owner" and await access.direct_owner_count(project_id) <= 1:
            raise Conflict(LAST_OWNER)
        await ProjectMember.delete().where(ProjectMember.id == member["id"])
        await end_lost_invitations(
            project_id, [user_id], actor=caller.user_id, reason="maker_removed", ip=ip
        )
        event = await member_event(project_id, seq, "member.deleted", member, caller.user_id)
        await audit.record(
            "member.removed",
            actor_id=caller.user_id,
            target_type="user",
            target_id=user_id,
            project_id=project_id,
            ip=ip,
        )
    await notifier.events_committed([event])
    await notifier.access_changed(project_id, [user_id])


async def end_lost_invitations(
    project_id: ProjectId,
    makers: Sequence[UserId],
    *,
    actor: UserId,
    reason: str,
    ip: str | None,
) -> None:
    """Revoke the pending invitations of ``makers`` that their role no longer allows.

    docs/protocol.md §2: "removing or demoting them ends it". Called inside the
    transaction of a change to a maker's role (direct or through a team),
    after the change: their effective role as the transaction now sees it
    decides. Accepting checks the maker's role again (invitations.py), which
    covers changes that do not pass here (an erased account, SQL typed in);
    this makes the end final, so a maker who gets the role back does not
    revive them.
    """
    if not makers:
        return
    pending = await Invitation.select(Invitation.id, Invitation.role, Invitation.invited_by).where(
        (Invitation.project_id == project_id)
        & Invitation.invited_by.is_in(list(makers))
        & Invitation.used_at.is_null()
    )
    roles = {
        maker: await access.role_on(project_id, UserId(maker))
        for maker in {row["invited_by"] for row in pending}
    }
    ended = [row["id"] for row in pending if not may_invite(roles[row["invited_by"]], row["role"])]
    if not ended:
        return
    await Invitation.delete().where(Invitation.id.is_in(ended))
    for invitation_id in ended:
        await audit.record(
            "invitation.revoked",
            actor_id=actor,
            target_type="invitation",
            target_id=invitation_id,
            project_id=project_id,
            ip=ip,
            details={"reason": reason},
        )


async def _team_member_ids(team_id: uuid.UUID) -> list[UserId]:
    rows = await TeamMember.select(TeamMember.user_id).where(TeamMember.team_id == team_id)
    return [UserId(row["user_id"]) for row in rows]


async def grant_team(
    engine: Engine[Any],
    notifier: Notifier,
    caller: Principal,
    project_id: ProjectId,
    *,
    team_id: uuid.UUID,
    role: str,
    ip: str | None,
) -> tuple[dict[str, Any], bool]:
    """Give every member of a team ``role`` on the project (project owners who are in the team).

    Granting again changes the role. Returns the grant and whether it is new.
    """
    new_role = check_role(role)
    async with write_transaction(engine):
        await access.require_locked(project_id, caller.user_id, "members.manage")
        if not await Team.exists().where(Team.id == team_id):
            raise NotFound("team_id: no such team", field="team_id")
        if not await TeamMember.exists().where(
            (TeamMember.team_id == team_id) & (TeamMember.user_id == caller.user_id)
        ):
            raise Forbidden(
                "team_id: you can only grant access to teams you belong to", field="team_id"
            )
        existing = (
            await ProjectTeamGrant.select(ProjectTeamGrant.id)
            .where(
                (ProjectTeamGrant.project_id == project_id) & (ProjectTeamGrant.team_id == team_id)
            )
            .first()
        )
        if existing is None:
            await ProjectTeamGrant.insert(
                ProjectTeamGrant(
                    project_id=project_id, team_id=team_id, role=new_role, granted_by=caller.user_id
                )
            )
        else:
            await ProjectTeamGrant.update({ProjectTeamGrant.role: new_role}).where(
                ProjectTeamGrant.id == existing["id"]
            )
        affected = await _team_member_ids(team_id)
        await end_lost_invitations(
            project_id, affected, actor=caller.user_id, reason="maker_demoted", ip=ip
        )
        await audit.record(
            "team_grant.set",
            actor_id=caller.user_id,
            target_type="team",
            target_id=team_id,
            project_id=project_id,
            ip=ip,
            details={"role": new_role},
        )
    await notifier.access_changed(project_id, affected)
    grant = {"project_id": str(project_id), "team_id": str(team_id), "role": new_role}
    return grant, existing is None


async def revoke_team_grant(
    engine: Engine[Any],
    notifier: Notifier,
    caller: Principal,
    project_id: ProjectId,
    team_id: uuid.UUID,
    *,
    ip: str | None,
) -> None:
    """Take a team's grant away: its members keep only their own memberships."""
    async with write_transaction(engine):
        await access.require_locked(project_id, caller.user_id, "members.manage")
        removed = (
            await ProjectTeamGrant.delete()
            .where(
                (ProjectTeamGrant.project_id == project_id) & (ProjectTeamGrant.team_id == team_id)
            )
            .returning(ProjectTeamGrant.id)
        )
        if not removed:
            raise NotFound("this team has no grant on the project")
        affected = await _team_member_ids(team_id)
        await end_lost_invitations(
            project_id, affected, actor=caller.user_id, reason="maker_removed", ip=ip
        )
        await audit.record(
            "team_grant.removed",
            actor_id=caller.user_id,
            target_type="team",
            target_id=team_id,
            project_id=project_id,
            ip=ip,
        )
    await notifier.access_changed(project_id, affected)


async def list_team_grants(project_id: ProjectId) -> list[dict[str, Any]]:
    rows = await ProjectTeamGrant.select(
        ProjectTeamGrant.team_id,
        ProjectTeamGrant.team_id.name.as_alias("name"),
        ProjectTeamGrant.role,
    ).where(ProjectTeamGrant.project_id == project_id)
    return [{"team_id": str(r["team_id"]), "name": r["name"], "role": r["role"]} for r in rows]
