"""Identity tables: users, sessions, service accounts, teams, audit, user settings.

Secrets are stored only as SHA-256 hashes of high-entropy random tokens
(sessions, invitations, API keys) or as argon2id hashes (passwords).
"""

from __future__ import annotations

from piccolo.columns import (
    JSONB,
    UUID,
    BigSerial,
    ForeignKey,
    Integer,
    OnDelete,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class AppUser(Table, tablename="app_user"):
    """A person who signs in: profile, platform role and credit balance."""

    id = UUID(primary_key=True)
    email = Varchar(length=320, unique=True, help_text="Lower-cased; the login name.")
    name = Varchar(length=200)
    avatar_url = Varchar(length=2048, null=True, default=None)
    password_hash = Text(secret=True, help_text="argon2id hash; never leaves the server.")
    role = Varchar(length=16, default="user", help_text="Platform role: user or admin.")
    credits = Integer(default=0, help_text="Balance; never below zero (check constraint).")
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())
    deleted_at = Timestamptz(null=True, default=None, help_text="Set when erased (anonymised).")


class UserSession(Table, tablename="user_session"):
    """A signed-in session; the bearer token is stored only as its hash."""

    id = UUID(primary_key=True)
    user_id = ForeignKey(AppUser, on_delete=OnDelete.cascade, null=False)
    token_hash = Varchar(length=64, unique=True, secret=True, help_text="SHA-256 of the token.")
    created_at = Timestamptz(default=TimestamptzNow())
    expires_at = Timestamptz(help_text="Sliding: pushed forward on activity.")
    last_seen_at = Timestamptz(default=TimestamptzNow())
    ip = Varchar(length=45, null=True, default=None)
    user_agent = Varchar(length=512, null=True, default=None)
    revoked_at = Timestamptz(null=True, default=None)


class ServiceAccount(Table, tablename="service_account"):
    """A non-human caller (a generation worker); authenticates the worker API only."""

    id = UUID(primary_key=True)
    name = Varchar(length=200)
    key_hash = Varchar(length=64, unique=True, secret=True, help_text="SHA-256 of the API key.")
    created_by = ForeignKey(AppUser, on_delete=OnDelete.set_null, null=True)
    created_at = Timestamptz(default=TimestamptzNow())
    last_used_at = Timestamptz(null=True, default=None)
    revoked_at = Timestamptz(null=True, default=None)
    previous_key_hash = Varchar(
        length=64,
        null=True,
        default=None,
        index=True,
        secret=True,
        help_text="SHA-256 of the key a rotation retired; valid until previous_key_expires_at.",
    )
    previous_key_expires_at = Timestamptz(null=True, default=None)
    previous_key_last_used_at = Timestamptz(null=True, default=None)


class Team(Table, tablename="team"):
    """A group of users that can be granted a role on projects as one."""

    id = UUID(primary_key=True)
    name = Varchar(length=200)
    created_by = ForeignKey(AppUser, on_delete=OnDelete.set_null, null=True)
    created_at = Timestamptz(default=TimestamptzNow())


class TeamMember(Table, tablename="team_member"):
    """A user's membership of a team (team owners manage its members)."""

    id = UUID(primary_key=True)
    team_id = ForeignKey(Team, on_delete=OnDelete.cascade, null=False)
    user_id = ForeignKey(AppUser, on_delete=OnDelete.cascade, null=False)
    role = Varchar(length=16, default="member")
    created_at = Timestamptz(default=TimestamptzNow())


class UserSettings(Table, tablename="user_settings"):
    """Per-user preferences (theme, notifications, defaults); one row per user."""

    id = UUID(primary_key=True)
    user_id = ForeignKey(AppUser, on_delete=OnDelete.cascade, null=False, unique=True)
    settings = JSONB(default={})
    updated_at = Timestamptz(default=TimestamptzNow())


class AuditLog(Table, tablename="audit_log"):
    """Security-relevant actions: who did what to whom, from where, when."""

    id = BigSerial(primary_key=True)
    at = Timestamptz(default=TimestamptzNow())
    actor_id = UUID(null=True, default=None, help_text="User or service account; null if none.")
    actor_kind = Varchar(length=16, default="user", help_text="user, service, system, anonymous.")
    action = Varchar(length=64, help_text="e.g. login.failed, member.added, credits.adjusted.")
    target_type = Varchar(length=32, null=True, default=None)
    target_id = Varchar(length=64, null=True, default=None)
    project_id = UUID(null=True, default=None)
    ip = Varchar(length=45, null=True, default=None)
    details = JSONB(default={})
