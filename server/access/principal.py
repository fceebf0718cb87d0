"""Who is calling: the authenticated user (and session), or a service account."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

from server.types import PlatformRole, UserId

Via = Literal["bearer", "cookie"]


@dataclass(frozen=True, slots=True)
class Principal:
    """A signed-in user, through one of their sessions."""

    user_id: UserId
    session_id: uuid.UUID
    email: str
    name: str
    role: PlatformRole
    via: Via

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True, slots=True)
class ServicePrincipal:
    """A service account (generation worker), authenticated by its API key."""

    account_id: uuid.UUID
    name: str
