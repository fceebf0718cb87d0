"""Typed ids and small vocabularies shared by every module."""

from __future__ import annotations

from typing import Literal, NewType
from uuid import UUID

UserId = NewType("UserId", UUID)
ProjectId = NewType("ProjectId", UUID)
TeamId = NewType("TeamId", UUID)
RoomId = NewType("RoomId", UUID)
ItemId = NewType("ItemId", UUID)
GenerationId = NewType("GenerationId", UUID)
ConnectionId = NewType("ConnectionId", str)
Seq = NewType("Seq", int)
Version = NewType("Version", int)

PlatformRole = Literal["user", "admin"]
ProjectRole = Literal["owner", "editor", "viewer"]
TeamRole = Literal["owner", "member"]
RoomType = Literal[
    "living_room", "bedroom", "kitchen", "bathroom", "dining_room", "office", "outdoor", "other"
]
ItemKind = Literal["image", "note", "color", "asset", "generation"]
GenerationStatus = Literal["queued", "running", "succeeded", "failed", "canceled"]

PLATFORM_ROLES: tuple[PlatformRole, ...] = ("user", "admin")
PROJECT_ROLES: tuple[ProjectRole, ...] = ("owner", "editor", "viewer")
TEAM_ROLES: tuple[TeamRole, ...] = ("owner", "member")
ROOM_TYPES: tuple[RoomType, ...] = (
    "living_room",
    "bedroom",
    "kitchen",
    "bathroom",
    "dining_room",
    "office",
    "outdoor",
    "other",
)
ITEM_KINDS: tuple[ItemKind, ...] = ("image", "note", "color", "asset", "generation")
GENERATION_STATUSES: tuple[GenerationStatus, ...] = (
    "queued",
    "running",
    "succeeded",
    "failed",
    "canceled",
)
