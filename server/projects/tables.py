"""Projects and what lives in them: members, team grants, invitations, rooms,
board items and stored resources (assets).

Column names are the entity field names of docs/protocol.md §2.9, because
outside writers (workers, psql) may update ``project``, ``room`` and ``item``
directly and the event log speaks the same names.
"""

from __future__ import annotations

from piccolo.columns import (
    JSONB,
    UUID,
    BigInt,
    DoublePrecision,
    ForeignKey,
    Integer,
    OnDelete,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from server.access.tables import AppUser, Team


class Project(Table, tablename="project"):
    """A design project: the unit of access, of the event log and of ``seq``."""

    id = UUID(primary_key=True)
    name = Varchar(length=200)
    description = Text(default="")
    owner_id = ForeignKey(
        AppUser, on_delete=OnDelete.restrict, null=False, help_text="Creator / main owner."
    )
    team_id = ForeignKey(Team, on_delete=OnDelete.set_null, null=True)
    settings = JSONB(default={}, help_text="Collaboration settings (e.g. default role).")
    version = Integer(default=1, help_text="+1 per committed change of the project's fields.")
    seq = BigInt(
        default=0, help_text="Last event seq; the write path bumps it (docs/architecture.md §2)."
    )
    storage_bytes = BigInt(default=0, help_text="Bytes used by the project's resources.")
    storage_quota_bytes = BigInt(default=1_073_741_824, help_text="Resource allocation.")
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())
    deleted_at = Timestamptz(null=True, default=None, help_text="Soft delete: gone everywhere.")


class ProjectMember(Table, tablename="project_member"):
    """A user's direct role on a project."""

    id = UUID(primary_key=True)
    project_id = ForeignKey(Project, on_delete=OnDelete.cascade, null=False)
    user_id = ForeignKey(AppUser, on_delete=OnDelete.cascade, null=False)
    role = Varchar(length=16)
    added_by = ForeignKey(AppUser, on_delete=OnDelete.set_null, null=True)
    created_at = Timestamptz(default=TimestamptzNow())


class ProjectTeamGrant(Table, tablename="project_team_grant"):
    """A role on a project given to every member of a team (access inheritance)."""

    id = UUID(primary_key=True)
    project_id = ForeignKey(Project, on_delete=OnDelete.cascade, null=False)
    team_id = ForeignKey(Team, on_delete=OnDelete.cascade, null=False)
    role = Varchar(length=16)
    granted_by = ForeignKey(AppUser, on_delete=OnDelete.set_null, null=True)
    created_at = Timestamptz(default=TimestamptzNow())


class Invitation(Table, tablename="invitation"):
    """A single-use, expiring invitation to join a project with a role."""

    id = UUID(primary_key=True)
    project_id = ForeignKey(Project, on_delete=OnDelete.cascade, null=False)
    email = Varchar(length=320)
    role = Varchar(length=16)
    token_hash = Varchar(length=64, unique=True, secret=True, help_text="SHA-256 of the token.")
    invited_by = ForeignKey(AppUser, on_delete=OnDelete.set_null, null=True)
    created_at = Timestamptz(default=TimestamptzNow())
    expires_at = Timestamptz()
    used_at = Timestamptz(null=True, default=None)
    used_by = ForeignKey(AppUser, on_delete=OnDelete.set_null, null=True)


class Room(Table, tablename="room"):
    """A room of the project (kitchen, bedroom...): a tab with its own board."""

    id = UUID(primary_key=True)
    project_id = ForeignKey(Project, on_delete=OnDelete.cascade, null=False)
    name = Varchar(length=200)
    room_type = Varchar(length=32, default="other")
    attributes = JSONB(default={}, help_text="Dimensions, style, palette, notes; <= 16 KiB.")
    position = DoublePrecision(default=0.0, help_text="Order among the project's rooms.")
    version = Integer(default=1)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class Item(Table, tablename="item"):
    """A thing placed on a room's board: an image, note, colour, asset or generation."""

    id = UUID(primary_key=True)
    project_id = ForeignKey(Project, on_delete=OnDelete.cascade, null=False)
    room_id = ForeignKey(Room, on_delete=OnDelete.cascade, null=False)
    kind = Varchar(length=16)
    x = DoublePrecision(default=0.0)
    y = DoublePrecision(default=0.0)
    w = DoublePrecision(default=200.0)
    h = DoublePrecision(default=200.0)
    rotation = DoublePrecision(default=0.0)
    z = DoublePrecision(default=0.0)
    data = JSONB(default={}, help_text="Kind-specific content; <= 16 KiB.")
    version = Integer(default=1)
    created_by = ForeignKey(AppUser, on_delete=OnDelete.set_null, null=True)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class ProjectResource(Table, tablename="project_resource"):
    """A stored file of a project (upload or generated picture), counted against its storage."""

    id = UUID(primary_key=True)
    project_id = ForeignKey(Project, on_delete=OnDelete.cascade, null=False)
    room_id = ForeignKey(Room, on_delete=OnDelete.set_null, null=True)
    kind = Varchar(length=16, default="upload", help_text="upload or generation.")
    name = Varchar(length=255)
    content_type = Varchar(length=127)
    size_bytes = BigInt()
    sha256 = Varchar(length=64)
    storage_key = Varchar(length=1024, help_text="Where the bytes live (path or object key).")
    metadata = JSONB(default={}, help_text="Width, height, source generation, ...")
    created_by = ForeignKey(AppUser, on_delete=OnDelete.set_null, null=True)
    created_at = Timestamptz(default=TimestamptzNow())
    deleted_at = Timestamptz(null=True, default=None)
