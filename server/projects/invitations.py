"""Invitations: bearer links to join a project with a role (docs/protocol.md §2).

An invitation is valid until it is used, revoked or expired, and only while
the member who made it still holds a role that may invite with that role
(``policy.may_invite``). That is checked when it is accepted, under the
project lock the membership write takes, so a concurrent removal or demotion
of the maker either comes first (and the accept is refused) or waits. Without
it, an owner who was removed could accept their own owner invitation and
take the project back. Owners list the pending ones and revoke them; every
step is audited. Tokens are shown once, stored only as SHA-256.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from piccolo.engine.base import Engine

from server.access import audit
from server.access.policy import RANK, may_invite
from server.access.principal import Principal
from server.access.tables import AppUser
from server.access.tokens import hash_token, new_token
from server.access.users import normalize_email
from server.db.engine import write_transaction
from server.errors import Gone, NotFound
from server.events import log as event_log
from server.events.notify import Notifier
from server.projects import access
from server.projects.membership import check_role, find_member, member_event, member_view
from server.projects.tables import Invitation, Project, ProjectMember
from server.timestamps import rfc3339, utc
from server.types import ProjectId, ProjectRole, UserId

UNKNOWN = "no invitation has this token"
NO_PENDING = "no pending invitation of this project has this id"
MAKER_LOST_ROLE = "this invitation is no longer valid: its maker may no longer invite with its role"


async def invite(
    engine: Engine[Any],
    caller: Principal,
    project_id: ProjectId,
    *,
    email: str,
    role: str,
    ttl_s: int,
    ip: str | None,
) -> dict[str, Any]:
    """Create a single-use invitation; its token is in this answer only."""
    new_role = check_role(role)
    address = normalize_email(email)
    token, token_hash = new_token("invitation")
    invitation_id = uuid.uuid4()
    expires_at = datetime.now(UTC) + timedelta(seconds=ttl_s)
    async with write_transaction(engine):
        await access.require_locked(project_id, caller.user_id, "members.manage")
        await Invitation.insert(
            Invitation(
                id=invitation_id,
                project_id=project_id,
                email=address,
                role=new_role,
                token_hash=token_hash,
                invited_by=caller.user_id,
                expires_at=expires_at,
            )
        )
        await audit.record(
            "invitation.created",
            actor_id=caller.user_id,
            target_type="invitation",
            target_id=invitation_id,
            project_id=project_id,
            ip=ip,
            details={"role": new_role},
        )
    return {"id": str(invitation_id), "token": token, "expires_at": rfc3339(expires_at)}


async def list_pending(caller: Principal, project_id: ProjectId) -> list[dict[str, Any]]:
    """The project's unused, unexpired invitations, oldest first (owners only; no tokens)."""
    await access.require(project_id, caller.user_id, "members.manage")
    rows = (
        await Invitation.select(
            Invitation.id,
            Invitation.email,
            Invitation.role,
            Invitation.invited_by,
            Invitation.created_at,
            Invitation.expires_at,
        )
        .where(
            (Invitation.project_id == project_id)
            & Invitation.used_at.is_null()
            & (Invitation.expires_at > datetime.now(UTC))
        )
        .order_by(Invitation.created_at)
    )
    return [
        {
            "id": str(row["id"]),
            "email": row["email"],
            "role": row["role"],
            "invited_by": None if row["invited_by"] is None else str(row["invited_by"]),
            "created_at": rfc3339(row["created_at"]),
            "expires_at": rfc3339(row["expires_at"]),
        }
        for row in rows
    ]


async def revoke(
    engine: Engine[Any],
    caller: Principal,
    project_id: ProjectId,
    invitation_id: uuid.UUID,
    *,
    ip: str | None,
) -> None:
    """Revoke a pending invitation (owners only): its token then matches nothing (404)."""
    async with write_transaction(engine):
        await access.require_locked(project_id, caller.user_id, "members.manage")
        removed = (
            await Invitation.delete()
            .where(
                (Invitation.id == invitation_id)
                & (Invitation.project_id == project_id)
                & Invitation.used_at.is_null()
            )
            .returning(Invitation.id)
        )
        if not removed:
            raise NotFound(NO_PENDING)
        await audit.record(
            "invitation.revoked",
            actor_id=caller.user_id,
            target_type="invitation",
            target_id=invitation_id,
            project_id=project_id,
            ip=ip,
            details={"reason": "revoked"},
        )


async def lookup(token: str) -> dict[str, Any]:
    """What an invitation link offers, for the page it opens before anyone signs up.

    Anyone holding the link may read it (it is a bearer link): the project's
    name, who invited, the e-mail it was made for and the role. It answers as
    ``accept`` would, so a link that is dead says so before the sign-up.

    Raises:
        NotFound: no invitation has this token (revoked, or its project is gone).
        Gone: it expired, was already used, or its maker may no longer invite
            with its role (410).
    """
    invitation = await Invitation.select().where(Invitation.token_hash == hash_token(token)).first()
    if invitation is None:
        raise NotFound(UNKNOWN)
    project_id = ProjectId(invitation["project_id"])
    project = (
        await Project.select(Project.name, Project.deleted_at)
        .where(Project.id == project_id)
        .first()
    )
    role, project = await _still_usable(invitation, project, datetime.now(UTC))
    maker = invitation["invited_by"]
    inviter = await AppUser.select(AppUser.name).where(AppUser.id == maker).first()
    return {
        "project_id": str(project_id),
        "project_name": project["name"],
        "invited_by_name": inviter["name"] if inviter else "",
        "email": invitation["email"],
        "role": role,
        "expires_at": rfc3339(invitation["expires_at"]),
    }


async def _still_usable(
    invitation: dict[str, Any], project: dict[str, Any] | None, now: datetime
) -> tuple[ProjectRole, dict[str, Any]]:
    """The invitation's role and its live project; NotFound or Gone (410) once it can't be used."""
    if project is None or project["deleted_at"] is not None:
        raise NotFound(UNKNOWN)
    if invitation["used_at"] is not None:
        raise Gone("this invitation was already used")
    if utc(invitation["expires_at"]) <= now:
        raise Gone("this invitation has expired")
    role: ProjectRole = invitation["role"]
    maker = invitation["invited_by"]
    project_id = ProjectId(invitation["project_id"])
    maker_role = None if maker is None else await access.role_on(project_id, UserId(maker))
    if not may_invite(maker_role, role):
        raise Gone(MAKER_LOST_ROLE)
    return role, project


async def accept(
    engine: Engine[Any], notifier: Notifier, caller: Principal, token: str, *, ip: str | None
) -> dict[str, Any]:
    """Use an invitation: the caller becomes a member with its role (or keeps a higher one).

    Raises:
        NotFound: no invitation has this token (revoked, or its project is gone).
        Gone: it expired, was already used, or its maker may no longer invite
            with its role (410).
    """
    now = datetime.now(UTC)
    async with write_transaction(engine):
        invitation = (
            await Invitation.select().where(Invitation.token_hash == hash_token(token)).first()
        )
        if invitation is None:
            raise NotFound(UNKNOWN)
        project_id = ProjectId(invitation["project_id"])
        project = await event_log.lock_project(project_id)  # membership changes serialise
        role, _ = await _still_usable(invitation, project, now)
        claimed = (
            await Invitation.update({Invitation.used_at: now, Invitation.used_by: caller.user_id})
            .where((Invitation.id == invitation["id"]) & Invitation.used_at.is_null())
            .returning(Invitation.id)
        )
        if not claimed:  # someone else used it between our read and this write
            raise Gone("this invitation was already used")
        existing = await find_member(project_id, caller.user_id)
        if existing is None:
            await ProjectMember.insert(
                ProjectMember(
                    project_id=project_id,
                    user_id=caller.user_id,
                    role=role,
                    added_by=invitation["invited_by"],
                )
            )
            kind = "member.created"
        elif RANK[role] > RANK[existing["role"]]:
            await ProjectMember.update({ProjectMember.role: role}).where(
                ProjectMember.id == existing["id"]
            )
            kind = "member.updated"
        else:
            kind = ""
        member = await find_member(project_id, caller.user_id)
        assert member is not None
        events = []
        if kind:
            seq = await event_log.next_seq(project_id)
            events.append(await member_event(project_id, seq, kind, member, caller.user_id))
        await audit.record(
            "invitation.accepted",
            actor_id=caller.user_id,
            target_type="invitation",
            target_id=invitation["id"],
            project_id=project_id,
            ip=ip,
        )
    await notifier.events_committed(events)
    await notifier.access_changed(project_id, [caller.user_id])
    return {**member_view(member), "project_id": str(project_id)}
