"""Teams: groups of users that project owners can grant a role to as one."""

from __future__ import annotations

import uuid
from typing import Any

from piccolo.engine.base import Engine

from server.access import audit
from server.access.principal import Principal
from server.access.tables import AppUser, Team, TeamMember
from server.access.users import normalize_email
from server.db.engine import write_transaction
from server.errors import Conflict, Forbidden, NotFound, ValidationFailed
from server.events.log import lock_project
from server.events.notify import Notifier
from server.projects.membership import end_lost_invitations
from server.projects.tables import ProjectTeamGrant
from server.timestamps import rfc3339
from server.types import TEAM_ROLES, ProjectId, UserId

MAX_NAME = 200
NO_TEAM = "team not found, or you are not one of its members"


def _team_view(row: dict[str, Any], role: str) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "name": row["name"],
        "created_at": rfc3339(row["created_at"]),
        "role": role,
    }


async def _team_role(team_id: uuid.UUID, user_id: UserId) -> str | None:
    row = (
        await TeamMember.select(TeamMember.role)
        .where((TeamMember.team_id == team_id) & (TeamMember.user_id == user_id))
        .first()
    )
    return None if row is None else str(row["role"])


async def create_team(
    engine: Engine[Any], caller: Principal, *, name: str, ip: str | None
) -> dict[str, Any]:
    """Create a team; the caller is its first owner."""
    name = name.strip()
    if not name or len(name) > MAX_NAME:
        raise ValidationFailed(f"name: must be 1..{MAX_NAME} characters", field="name")
    team_id = uuid.uuid4()
    async with write_transaction(engine):
        await Team.insert(Team(id=team_id, name=name, created_by=caller.user_id))
        await TeamMember.insert(TeamMember(team_id=team_id, user_id=caller.user_id, role="owner"))
        await audit.record(
            "team.created", actor_id=caller.user_id, target_type="team", target_id=team_id, ip=ip
        )
        row = await Team.select().where(Team.id == team_id).first()
    assert row is not None
    return _team_view(row, "owner")


async def list_teams(caller: Principal) -> list[dict[str, Any]]:
    """The caller's teams with their role in each."""
    rows = (
        await TeamMember.select(
            TeamMember.team_id.id.as_alias("id"),
            TeamMember.team_id.name.as_alias("name"),
            TeamMember.team_id.created_at.as_alias("created_at"),
            TeamMember.role,
        )
        .where(TeamMember.user_id == caller.user_id)
        .order_by(TeamMember.created_at)
    )
    return [_team_view(row, row["role"]) for row in rows]


async def get_team(caller: Principal, team_id: uuid.UUID) -> dict[str, Any]:
    """A team the caller belongs to, with its members."""
    role = await _team_role(team_id, caller.user_id)
    team = await Team.select().where(Team.id == team_id).first()
    if role is None or team is None:
        raise Forbidden(NO_TEAM)
    members = (
        await TeamMember.select(
            TeamMember.user_id,
            TeamMember.user_id.name.as_alias("name"),
            TeamMember.user_id.email.as_alias("email"),
            TeamMember.role,
        )
        .where(TeamMember.team_id == team_id)
        .order_by(TeamMember.created_at)
    )
    view = _team_view(team, role)
    view["members"] = [{**m, "user_id": str(m["user_id"])} for m in members]
    return view


async def _projects_of(team_id: uuid.UUID) -> list[ProjectId]:
    rows = await ProjectTeamGrant.select(ProjectTeamGrant.project_id).where(
        ProjectTeamGrant.team_id == team_id
    )
    return [ProjectId(row["project_id"]) for row in rows]


async def add_team_member(
    engine: Engine[Any],
    notifier: Notifier,
    caller: Principal,
    team_id: uuid.UUID,
    *,
    email: str,
    role: str,
    ip: str | None,
) -> dict[str, Any]:
    """Add a user to a team (team owners only); they inherit the team's project grants."""
    if role not in TEAM_ROLES:
        raise ValidationFailed("role: must be owner or member", field="role")
    address = normalize_email(email)
    async with write_transaction(engine):
        if await _team_role(team_id, caller.user_id) != "owner":
            raise Forbidden("only the team's owners can add members")
        user = (
            await AppUser.select(AppUser.id, AppUser.name, AppUser.email)
            .where((AppUser.email == address) & AppUser.deleted_at.is_null())
            .first()
        )
        if user is None:
            raise NotFound("email: no user has this e-mail", field="email")
        if await _team_role(team_id, user["id"]) is not None:
            raise Conflict("email: this user is already in the team", field="email")
        await TeamMember.insert(TeamMember(team_id=team_id, user_id=user["id"], role=role))
        await audit.record(
            "team.member_added",
            actor_id=caller.user_id,
            target_type="user",
            target_id=user["id"],
            ip=ip,
            details={"team_id": str(team_id), "role": role},
        )
        projects = await _projects_of(team_id)
    for project_id in projects:
        await notifier.access_changed(project_id, [UserId(user["id"])])
    return {
        "team_id": str(team_id),
        "user_id": str(user["id"]),
        "name": user["name"],
        "email": user["email"],
        "role": role,
    }


async def remove_team_member(
    engine: Engine[Any],
    notifier: Notifier,
    caller: Principal,
    team_id: uuid.UUID,
    user_id: UserId,
    *,
    ip: str | None,
) -> None:
    """Remove a user from a team (team owners, or the user leaving); not the last owner."""
    async with write_transaction(engine):
        caller_role = await _team_role(team_id, caller.user_id)
        if caller_role is None or (caller_role != "owner" and user_id != caller.user_id):
            raise Forbidden("only the team's owners can remove other members")
        role = await _team_role(team_id, user_id)
        if role is None:
            raise NotFound("this user is not in the team")
        owners = await TeamMember.count().where(
            (TeamMember.team_id == team_id) & (TeamMember.role == "owner")
        )
        if role == "owner" and owners <= 1:
            raise Conflict("the team's last owner cannot leave; add another owner first")
        # A write by this user to a project through the team either commits before the
        # removal or is checked after it (docs/architecture.md §2): its projects' rows are
        # locked first, in one order (by id) so two such removals cannot deadlock.
        for project_id in sorted(await _projects_of(team_id)):
            await lock_project(project_id)
        await TeamMember.delete().where(
            (TeamMember.team_id == team_id) & (TeamMember.user_id == user_id)
        )
        await audit.record(
            "team.member_removed",
            actor_id=caller.user_id,
            target_type="user",
            target_id=user_id,
            ip=ip,
            details={"team_id": str(team_id)},
        )
        projects = await _projects_of(team_id)
        for project_id in projects:  # docs/protocol.md §2: losing the role ends their invitations
            await end_lost_invitations(
                project_id, [user_id], actor=caller.user_id, reason="maker_removed", ip=ip
            )
    for project_id in projects:
        await notifier.access_changed(project_id, [user_id])
