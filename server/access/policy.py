"""The permission policy: pure functions, no I/O (docs/architecture.md §5).

Every endpoint, and later the socket, asks here. Roles on a project are
ordered owner > editor > viewer; a user's effective role is the highest of
their direct membership and every team grant they hold (access inheritance).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from server.types import ProjectRole

RANK: dict[ProjectRole, int] = {"viewer": 1, "editor": 2, "owner": 3}

Action = Literal[
    "project.read",  # GET project, rooms, items, generations, events; join the socket
    "project.edit",  # change content: project fields, rooms, items
    "project.delete",
    "members.read",
    "members.manage",  # add/remove/change members, invitations, team grants
    "generation.request",
]

_MINIMUM: dict[Action, ProjectRole] = {
    "project.read": "viewer",
    "members.read": "viewer",
    "project.edit": "editor",
    "generation.request": "editor",
    "project.delete": "owner",
    "members.manage": "owner",
}


def highest(roles: Iterable[ProjectRole | None]) -> ProjectRole | None:
    """The highest of ``roles`` (None entries ignored); None when there is none."""
    best: ProjectRole | None = None
    for role in roles:
        if role is not None and (best is None or RANK[role] > RANK[best]):
            best = role
    return best


def role_for(
    direct: ProjectRole | None, team_grants: Iterable[ProjectRole], *, deleted: bool = False
) -> ProjectRole | None:
    """A user's effective role on a project.

    Args:
        direct: the role of the user's own membership, if any.
        team_grants: the roles granted to teams the user belongs to.
        deleted: the project is deleted; nobody has a role on it any more.
    """
    if deleted:
        return None
    return highest([direct, *team_grants])


def can(role: ProjectRole | None, action: Action) -> bool:
    """Whether a user with ``role`` (None: no role) may do ``action``."""
    return role is not None and RANK[role] >= RANK[_MINIMUM[action]]


def may_invite(role: ProjectRole | None, invited_role: ProjectRole) -> bool:
    """Whether a member with ``role`` may invite someone as ``invited_role``.

    docs/protocol.md §2: an invitation is valid only while its maker still may, so
    this is asked when it is made and again when it is accepted.
    """
    return can(role, "members.manage") and role is not None and RANK[role] >= RANK[invited_role]
