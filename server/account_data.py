"""An account's data as a whole: export it (portability) and erase it (docs/security.md).

Both span the domains: the user's sessions, memberships and teams (access),
their credit ledger (credits), the projects they own and the events that
name them (projects, events). So they live here, beside the domains rather
than inside one of them: a use case that spans domains gets its own module.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from piccolo.engine.base import Engine

from server.access import audit
from server.access.accounts import Client, user_view
from server.access.guesses import confirm_password
from server.access.principal import Principal
from server.access.sessions import list_sessions, revoke_all_sessions
from server.access.tables import AppUser, AuditLog, Team, TeamMember, UserSession, UserSettings
from server.access.throttle import LoginThrottle
from server.credits.service import ledger
from server.db.engine import write_transaction
from server.events import log as event_log
from server.events.log import EventRecord
from server.events.notify import Notifier
from server.events.tables import Event
from server.projects.service import soft_delete
from server.projects.tables import Project, ProjectMember
from server.timestamps import rfc3339
from server.types import ProjectId, UserId

ERASED_NAME = "Deleted user"


async def export(caller: Principal) -> dict[str, Any]:
    """Everything the platform holds about the caller, as JSON (data portability)."""
    user = await AppUser.select().where(AppUser.id == caller.user_id).first()
    assert user is not None
    settings = (
        await UserSettings.select(UserSettings.settings)
        .where(UserSettings.user_id == caller.user_id)
        .output(load_json=True)
        .first()
    )
    memberships = await ProjectMember.select(
        ProjectMember.project_id,
        ProjectMember.project_id.name.as_alias("project_name"),
        ProjectMember.role,
        ProjectMember.created_at,
    ).where(ProjectMember.user_id == caller.user_id)
    teams = await TeamMember.select(
        TeamMember.team_id,
        TeamMember.team_id.name.as_alias("team_name"),
        TeamMember.role,
    ).where(TeamMember.user_id == caller.user_id)
    audit_rows = (
        await AuditLog.select(
            AuditLog.at,
            AuditLog.action,
            AuditLog.target_type,
            AuditLog.target_id,
            AuditLog.ip,
        )
        .where(AuditLog.actor_id == caller.user_id)
        .order_by(AuditLog.id)
    )
    return {
        "user": {**user_view(user), "avatar_url": user["avatar_url"]},
        "settings": settings["settings"] if settings else {},
        "sessions": [_plain(s) for s in await list_sessions(caller.user_id)],
        "memberships": [_plain(m) for m in memberships],
        "teams": [_plain(t) for t in teams],
        "credit_ledger": await ledger(caller.user_id),
        "audit": [_plain(a) for a in audit_rows],
    }


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in row.items():
        if isinstance(value, datetime):
            out[key] = rfc3339(value)
        elif isinstance(value, uuid.UUID):
            out[key] = str(value)
        else:
            out[key] = value
    return out


async def erase(
    engine: Engine[Any],
    notifier: Notifier,
    throttle: LoginThrottle,
    caller: Principal,
    *,
    password: str,
    client: Client,
) -> None:
    """Delete the caller's account (the password re-confirmed).

    The rule (docs/security.md): sessions are revoked; the user row stays as an
    anonymous tombstone (so history keeps its shape) with e-mail, name, password
    and avatar erased; addresses and e-mails are erased from the audit log and
    names from the event log. Each project the user is the only direct owner
    of passes to its longest-standing other member (editors before viewers);
    with no other member it is deleted. So does each team the user is the only
    owner of (to its longest-standing other member; deleted, with its grants,
    when it has none). Credits ledger rows are kept.
    """
    await confirm_password(throttle, caller, password, ip=client.ip)  # throttled like a login
    changed_projects: list[ProjectId] = []
    events: list[EventRecord] = []
    async with write_transaction(engine):
        for project_id in await _solely_owned(caller.user_id):
            events.append(await _hand_over_or_delete(project_id, caller))
            changed_projects.append(project_id)
        departures = await _leave_projects(caller.user_id)
        events.extend(departures)
        await ProjectMember.delete().where(ProjectMember.user_id == caller.user_id)
        await _hand_over_or_delete_teams(caller.user_id)
        await TeamMember.delete().where(TeamMember.user_id == caller.user_id)
        await UserSettings.delete().where(UserSettings.user_id == caller.user_id)
        revoked = await revoke_all_sessions(caller.user_id)
        await UserSession.update({UserSession.ip: None, UserSession.user_agent: None}).where(
            UserSession.user_id == caller.user_id
        )
        await AppUser.update(
            {
                AppUser.email: f"deleted-{caller.user_id}@invalid",
                AppUser.name: ERASED_NAME,
                AppUser.password_hash: "",
                AppUser.avatar_url: None,
                AppUser.deleted_at: datetime.now(UTC),
            }
        ).where(AppUser.id == caller.user_id)
        await AuditLog.update({AuditLog.ip: None, AuditLog.details: {}}).where(
            (AuditLog.actor_id == caller.user_id) | (AuditLog.target_id == str(caller.user_id))
        )
        await _scrub_member_events(caller.user_id)
        await audit.record(
            "account.deleted", actor_id=caller.user_id, target_type="user", target_id=caller.user_id
        )
    await notifier.sessions_revoked(revoked)
    await notifier.events_committed(events)
    for project_id in changed_projects:
        await notifier.access_changed(project_id, None)
    for event in departures:
        await notifier.access_changed(event.project_id, [caller.user_id])


async def _leave_projects(user_id: UserId) -> list[EventRecord]:
    """A ``member.deleted`` event in each live project the user is leaving (docs/protocol.md §3.2).

    Removing a membership is a change of the project's state like any other, so
    its subscribers (and later replays) must learn of it.
    """
    rows = await ProjectMember.select(ProjectMember.project_id).where(
        (ProjectMember.user_id == user_id) & ProjectMember.project_id.deleted_at.is_null()
    )
    return [
        await event_log.append(
            ProjectId(row["project_id"]),
            kind="member.deleted",
            entity="member",
            entity_id=user_id,
            version=None,
            data={},
            actor_id=user_id,
        )
        for row in rows
    ]


async def _solely_owned(user_id: UserId) -> list[ProjectId]:
    # Live projects only: a deleted one is neither handed over nor deleted again.
    owned = await ProjectMember.select(ProjectMember.project_id).where(
        (ProjectMember.user_id == user_id)
        & (ProjectMember.role == "owner")
        & ProjectMember.project_id.deleted_at.is_null()
    )
    result = []
    for row in owned:
        owners = await ProjectMember.count().where(
            (ProjectMember.project_id == row["project_id"]) & (ProjectMember.role == "owner")
        )
        if owners == 1:
            result.append(ProjectId(row["project_id"]))
    return result


async def _hand_over_or_delete_teams(user_id: UserId) -> None:
    """Each team only ``user_id`` owns: to its longest-standing other member, or deleted.

    A deleted team takes its project grants with it (cascade); it had no
    member but the user, whose access ends with the account anyway.
    """
    owned = await TeamMember.select(TeamMember.team_id).where(
        (TeamMember.user_id == user_id) & (TeamMember.role == "owner")
    )
    for row in owned:
        team_id = row["team_id"]
        owners = await TeamMember.count().where(
            (TeamMember.team_id == team_id) & (TeamMember.role == "owner")
        )
        if owners > 1:
            continue
        heir = (
            await TeamMember.select(TeamMember.id)
            .where((TeamMember.team_id == team_id) & (TeamMember.user_id != user_id))
            .order_by(TeamMember.created_at)
            .first()
        )
        if heir is None:
            await Team.delete().where(Team.id == team_id)
        else:
            await TeamMember.update({TeamMember.role: "owner"}).where(TeamMember.id == heir["id"])


async def _hand_over_or_delete(project_id: ProjectId, caller: Principal) -> EventRecord:
    others = (
        await ProjectMember.select(
            ProjectMember.id,
            ProjectMember.user_id,
            ProjectMember.role,
            ProjectMember.user_id.name.as_alias("name"),
        )
        .where((ProjectMember.project_id == project_id) & (ProjectMember.user_id != caller.user_id))
        .order_by(ProjectMember.created_at)
    )
    if not others:
        return await soft_delete(project_id, caller)
    heir = next((m for m in others if m["role"] == "editor"), others[0])
    await ProjectMember.update({ProjectMember.role: "owner"}).where(ProjectMember.id == heir["id"])
    await Project.update({Project.owner_id: heir["user_id"]}).where(Project.id == project_id)
    return await event_log.append(
        project_id,
        kind="member.updated",
        entity="member",
        entity_id=heir["user_id"],
        version=None,
        data={"user_id": str(heir["user_id"]), "name": heir["name"], "role": "owner"},
        actor_id=None,
    )


async def _scrub_member_events(user_id: UserId) -> None:
    """Replace the erased user's name in the ``member.*`` events that carry it."""
    rows = (
        await Event.select(Event.id, Event.data)
        .where((Event.entity == "member") & (Event.entity_id == user_id))
        .output(load_json=True)
    )
    for row in rows:
        if "name" in row["data"]:
            await Event.update({Event.data: {**row["data"], "name": ERASED_NAME}}).where(
                Event.id == row["id"]
            )
