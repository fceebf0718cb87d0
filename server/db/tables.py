"""The registry of every table, in dependency order (referenced tables first)."""

from __future__ import annotations

from piccolo.table import Table

from server.access.tables import (
    AppUser,
    AuditLog,
    ServiceAccount,
    Team,
    TeamMember,
    UserSession,
    UserSettings,
)
from server.credits.tables import CreditLedger
from server.events.tables import Event, Operation
from server.generations.tables import Generation
from server.projects.tables import (
    Invitation,
    Item,
    Project,
    ProjectMember,
    ProjectResource,
    ProjectTeamGrant,
    Room,
)

TABLES: tuple[type[Table], ...] = (
    AppUser,
    UserSession,
    ServiceAccount,
    Team,
    TeamMember,
    UserSettings,
    AuditLog,
    Project,
    ProjectMember,
    ProjectTeamGrant,
    Invitation,
    Room,
    Item,
    ProjectResource,
    Generation,
    Event,
    Operation,
    CreditLedger,
)
