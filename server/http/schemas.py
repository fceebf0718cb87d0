"""Request and response bodies of the REST API (docs/protocol.md §2.10), as msgspec Structs.

Request bodies forbid unknown fields (docs/protocol.md §0: never silently stored) and
carry their limits, so a bad body fails in the decoder with a message naming
the field. Responses are typed so the OpenAPI schema describes them exactly.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

import msgspec

# PostgreSQL text and jsonb cannot hold U+0000 (SQLite can): every string that
# is stored refuses it in the decoder, so both engines answer 400, never 500.
NO_NUL = r"^[^\x00]*$"
Email = Annotated[str, msgspec.Meta(min_length=3, max_length=320, pattern=NO_NUL)]
Password = Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]  # hashed, never stored
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=NO_NUL)]
Description = Annotated[str, msgspec.Meta(max_length=10_000, pattern=NO_NUL)]
Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=NO_NUL)]
Version = Annotated[int, msgspec.Meta(ge=1, le=2**31 - 1)]
ProjectRoleName = Literal["owner", "editor", "viewer"]
TeamRoleName = Literal["owner", "member"]


class Body(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A request body: unknown fields are an error."""


class RegisterBody(Body):
    email: Email
    password: Password
    name: Name


class LoginBody(Body):
    email: Email
    password: Password


class PasswordBody(Body):
    password: Password


class ProjectCreateBody(Body):
    name: Name
    description: Description = ""
    team_id: uuid.UUID | None = None


class ProjectPatchBody(Body):
    base_version: Version
    name: Name | msgspec.UnsetType = msgspec.UNSET
    description: Description | msgspec.UnsetType = msgspec.UNSET

    def changes(self) -> dict[str, Any]:
        return {
            f: getattr(self, f)
            for f in ("name", "description")
            if getattr(self, f) is not msgspec.UNSET
        }


class MemberCreateBody(Body):
    email: Email
    role: ProjectRoleName


class MemberPatchBody(Body):
    role: ProjectRoleName


class InvitationCreateBody(Body):
    email: Email
    role: ProjectRoleName


class TeamCreateBody(Body):
    name: Name


class TeamMemberCreateBody(Body):
    email: Email
    role: TeamRoleName = "member"


class TeamGrantBody(Body):
    team_id: uuid.UUID
    role: ProjectRoleName


class ServiceAccountCreateBody(Body):
    name: Name


class ServiceAccountRotateBody(Body):
    """How long the key being retired keeps working (0: not at all; at most 30 days)."""

    grace_hours: Annotated[int, msgspec.Meta(ge=0, le=720)] = 24


class CreditAdjustBody(Body):
    delta: Annotated[int, msgspec.Meta(ge=-(10**9), le=10**9)]
    reason: Reason


# --- responses ---------------------------------------------------------------


class User(msgspec.Struct):
    id: uuid.UUID
    email: str
    name: str
    role: Literal["user", "admin"]
    credits: int
    created_at: datetime


class Me(User):
    """The signed-in user, with what a generation costs them now (for the page's Generate)."""

    generation_cost: int


class AuthResult(msgspec.Struct):
    user: User
    token: str


class Session(msgspec.Struct):
    id: uuid.UUID
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    ip: str | None
    user_agent: str | None
    current: bool


class Project(msgspec.Struct):
    id: uuid.UUID
    name: str
    description: str
    owner_id: uuid.UUID
    team_id: uuid.UUID | None
    version: int
    seq: int
    created_at: datetime
    updated_at: datetime


class ProjectListed(Project):
    role: ProjectRoleName


class Member(msgspec.Struct):
    user_id: uuid.UUID
    name: str
    email: str
    role: ProjectRoleName
    created_at: datetime


class AcceptedInvitation(Member):
    project_id: uuid.UUID


class InvitationCreated(msgspec.Struct):
    id: uuid.UUID
    token: str
    expires_at: datetime


class InvitationPreview(msgspec.Struct):
    """What an invitation link offers, shown before the sign-up (never its token)."""

    project_id: uuid.UUID
    project_name: str
    invited_by_name: str
    email: str
    role: ProjectRoleName
    expires_at: datetime


class PendingInvitation(msgspec.Struct):
    """An unused, unexpired invitation as owners see it: never its token."""

    id: uuid.UUID
    email: str
    role: ProjectRoleName
    invited_by: uuid.UUID | None
    created_at: datetime
    expires_at: datetime


class Team(msgspec.Struct):
    id: uuid.UUID
    name: str
    created_at: datetime
    role: TeamRoleName


class TeamMember(msgspec.Struct):
    user_id: uuid.UUID
    name: str
    email: str
    role: TeamRoleName


class TeamDetail(Team):
    members: list[TeamMember]


class TeamMemberAdded(TeamMember):
    team_id: uuid.UUID


class TeamGrant(msgspec.Struct):
    project_id: uuid.UUID
    team_id: uuid.UUID
    role: ProjectRoleName


class ServiceAccountCreated(msgspec.Struct):
    id: uuid.UUID
    name: str
    key: str


class ServiceAccountRotated(msgspec.Struct):
    """The new key (shown once); the old one works until ``previous_key_expires_at`` (null: no
    longer)."""

    id: uuid.UUID
    name: str
    key: str
    previous_key_expires_at: datetime | None


class ServiceAccountInfo(msgspec.Struct):
    """A service account as admins list it: never its key. ``previous_key_*``: the key the last
    rotation retired, while it still works (expiry) and when a worker last called with it."""

    id: uuid.UUID
    name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    previous_key_expires_at: datetime | None
    previous_key_last_used_at: datetime | None


class AuditEntry(msgspec.Struct):
    id: int
    at: datetime
    actor_id: uuid.UUID | None
    actor_kind: str
    action: str
    target_type: str | None
    target_id: str | None
    project_id: uuid.UUID | None
    ip: str | None
    details: dict[str, Any]


T = TypeVar("T")


def to(kind: type[T], value: Any) -> T:
    """Convert a service's plain dict (or list) into its response type."""
    return msgspec.convert(value, kind, strict=False)


class RoomCreateBody(Body):
    name: Name
    room_type: Literal[
        "living_room",
        "bedroom",
        "kitchen",
        "bathroom",
        "dining_room",
        "office",
        "outdoor",
        "other",
    ] = "other"
    attributes: dict[str, Any] = msgspec.field(default_factory=dict)
    position: float = 0.0
    id: uuid.UUID | None = None


class ItemCreateBody(Body):
    kind: Literal["image", "note", "color", "asset", "generation"]
    x: float = 0.0
    y: float = 0.0
    w: float = 200.0
    h: float = 200.0
    rotation: float = 0.0
    z: float = 0.0
    data: dict[str, Any] = msgspec.field(default_factory=dict)
    id: uuid.UUID | None = None


class Room(msgspec.Struct):
    id: uuid.UUID
    project_id: uuid.UUID
    name: str
    room_type: str
    attributes: dict[str, Any]
    position: float
    version: int


class Item(msgspec.Struct):
    id: uuid.UUID
    project_id: uuid.UUID
    room_id: uuid.UUID
    kind: str
    x: float
    y: float
    w: float
    h: float
    rotation: float
    z: float
    data: dict[str, Any]
    version: int


class Event(msgspec.Struct):
    type: Literal["event"]
    project_id: uuid.UUID
    seq: int
    kind: str
    entity: str
    id: uuid.UUID
    version: int | None
    data: dict[str, Any]
    actor_id: uuid.UUID | None
    op_id: str | None
    at: str


class EventPage(msgspec.Struct):
    events: list[Event]
    seq: int


class GenerationRequestBody(Body):
    room_id: uuid.UUID
    prompt: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
    params: dict[str, Any] = msgspec.field(default_factory=dict)


class Generation(msgspec.Struct):
    id: uuid.UUID
    project_id: uuid.UUID
    room_id: uuid.UUID | None
    requested_by: uuid.UUID | None
    prompt: str
    params: dict[str, Any]
    status: Literal["queued", "running", "succeeded", "failed", "canceled"]
    progress: int
    stage: str | None
    cost: int
    result: dict[str, Any] | None
    error: str | None
    attempts: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    version: int
    queue_wait_ms: int | None = None
    run_ms: int | None = None
    stage_timings: dict[str, int] = msgspec.field(default_factory=dict)


WorkerId = Annotated[str, msgspec.Meta(min_length=1, max_length=128, pattern=NO_NUL)]
Stage = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=NO_NUL)]


class ClaimBody(Body):
    worker_id: WorkerId


class ProgressBody(Body):
    progress: Annotated[int, msgspec.Meta(ge=0, le=100)]
    stage: Stage | None = None
    worker_id: WorkerId | None = None  # extension: must match the claim's (docs/generations.md)


class CompleteBody(Body):
    result: dict[str, Any]
    worker_id: WorkerId | None = None


class FailBody(Body):
    error: Annotated[str, msgspec.Meta(min_length=1, max_length=2000, pattern=NO_NUL)]
    retryable: bool = False
    worker_id: WorkerId | None = None


class ClaimedGeneration(Generation):
    """A claimed job: the generation, its room (for palette and style), the lease's end."""

    room: Room | None = None
    lease_expires_at: datetime | None = None


class Resource(msgspec.Struct):
    """A stored picture of a project: `size` in bytes (`size_bytes` is the same, kept for
    clients of the worker API that read it); `url` serves the bytes to readers."""

    id: uuid.UUID
    project_id: uuid.UUID
    room_id: uuid.UUID | None
    kind: str
    name: str
    content_type: str
    size: int
    size_bytes: int
    sha256: str
    metadata: dict[str, Any]
    url: str
    created_at: datetime
