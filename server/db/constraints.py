"""Every index and CHECK invariant of the schema, and why it exists.

docs/schema.md is generated from this list. Single-column unique keys come from
the table definitions (``unique=True``); composite unique keys, secondary and
partial indexes and CHECK constraints from the "constraints and indexes"
migration. ``tests/db/test_schema.py`` compares this list with what the
migrations really create, on both engines.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class IndexSpec:
    """One index: on which table and columns, unique or not, partial or not, and why."""

    table: str
    columns: tuple[str, ...]
    why: str
    unique: bool = False
    where: str | None = None


@dataclass(frozen=True, slots=True)
class CheckSpec:
    """A CHECK invariant (a trigger pair on SQLite) and what it protects."""

    table: str
    name: str
    why: str


PRIMARY_KEY_NOTE = (
    "Every table has a primary key `id` (UUID; BIGSERIAL for the append-only logs), "
    "the path for every fetch by id."
)

INDEXES: tuple[IndexSpec, ...] = (
    IndexSpec(
        "app_user",
        ("email",),
        "login looks a user up by email; one account per email.",
        unique=True,
    ),
    IndexSpec(
        "user_session",
        ("token_hash",),
        "every request and socket authenticates by the token's hash.",
        unique=True,
    ),
    IndexSpec(
        "user_session",
        ("user_id", "created_at"),
        "GET /api/me/sessions and revoking all of a user's sessions.",
    ),
    IndexSpec("user_session", ("expires_at",), "maintenance deletes expired sessions."),
    IndexSpec(
        "service_account",
        ("key_hash",),
        "the worker API authenticates by the key's hash.",
        unique=True,
    ),
    IndexSpec(
        "service_account",
        ("previous_key_hash",),
        "a worker still calling with the key a rotation retired, during its grace period.",
    ),
    IndexSpec(
        "team_member",
        ("team_id", "user_id"),
        "one membership per user and team; lists a team's members.",
        unique=True,
    ),
    IndexSpec(
        "team_member", ("user_id",), "a user's teams, for effective roles through team grants."
    ),
    IndexSpec(
        "user_settings", ("user_id",), "one settings row per user, fetched by user.", unique=True
    ),
    IndexSpec("project", ("owner_id",), "a user's own projects; account erasure finds them."),
    IndexSpec("project", ("team_id",), "a team's projects."),
    IndexSpec(
        "project_member",
        ("project_id", "user_id"),
        "one membership per user and project; "
        "the role check of every call; a project's member list.",
        unique=True,
    ),
    IndexSpec(
        "project_member", ("user_id",), "GET /api/projects: the projects a user is a member of."
    ),
    IndexSpec(
        "project_team_grant",
        ("project_id", "team_id"),
        "one grant per team and project; a project's grants in the role check.",
        unique=True,
    ),
    IndexSpec("project_team_grant", ("team_id",), "projects reachable through a user's teams."),
    IndexSpec(
        "invitation",
        ("token_hash",),
        "accepting an invitation looks it up by the token's hash.",
        unique=True,
    ),
    IndexSpec("invitation", ("project_id",), "a project's invitations."),
    IndexSpec("invitation", ("expires_at",), "maintenance deletes expired invitations."),
    IndexSpec(
        "room",
        ("project_id", "position"),
        "snapshot and GET rooms: a project's rooms in tab order.",
    ),
    IndexSpec("item", ("project_id",), "snapshot: every item of a project."),
    IndexSpec("item", ("room_id", "z"), "GET a room's items in stacking order; room deletion."),
    IndexSpec(
        "project_resource",
        ("project_id", "created_at"),
        "a project's assets, newest first; storage accounting.",
    ),
    IndexSpec(
        "generation",
        ("project_id", "created_at"),
        "GET generations of a project, newest first, paged with before=.",
    ),
    IndexSpec(
        "generation", ("room_id",), "deleting a room nulls its generations' room_id without a scan."
    ),
    IndexSpec(
        "generation",
        ("created_at",),
        "workers claim the oldest queued job; partial, so it holds only the queue.",
        where="status = 'queued'",
    ),
    IndexSpec(
        "generation",
        ("lease_expires_at",),
        "the sweep finds running jobs whose lease expired; partial, running jobs only.",
        where="status = 'running'",
    ),
    IndexSpec(
        "event",
        ("project_id", "seq"),
        "replay and gap fill read seq > N in order; no seq twice in a project.",
        unique=True,
    ),
    IndexSpec(
        "event",
        ("project_id", "op_id"),
        "idempotency: a retried op_id finds its plain ack; no op applies twice.",
        unique=True,
    ),
    IndexSpec(
        "operation",
        ("project_id", "op_id"),
        "a retried op_id finds its first outcome (conflicts and merged acks).",
        unique=True,
    ),
    IndexSpec("operation", ("at",), "maintenance forgets outcomes older than the retry window."),
    IndexSpec("credit_ledger", ("user_id", "at"), "a user's ledger in order (export, audits)."),
    IndexSpec("audit_log", ("at",), "GET /api/admin/audit pages by time."),
    IndexSpec("audit_log", ("actor_id", "at"), "audit filtered by actor."),
    IndexSpec("audit_log", ("action", "at"), "audit filtered by action."),
)

CHECKS: tuple[CheckSpec, ...] = (
    CheckSpec("app_user", "app_user_role_known", "platform role is user or admin."),
    CheckSpec(
        "app_user",
        "app_user_credits_never_negative",
        "a balance never goes below zero, whatever the concurrency (docs/architecture.md §9.4).",
    ),
    CheckSpec("team_member", "team_member_role_known", "team role is owner or member."),
    CheckSpec("project", "project_version_positive", "versions start at 1."),
    CheckSpec("project", "project_seq_never_negative", "seq starts at 0 (no event yet)."),
    CheckSpec(
        "project", "project_storage_within_quota", "stored resources fit the project's allocation."
    ),
    CheckSpec("project_member", "project_member_role_known", "owner, editor or viewer."),
    CheckSpec("project_team_grant", "project_team_grant_role_known", "owner, editor or viewer."),
    CheckSpec("invitation", "invitation_role_known", "owner, editor or viewer."),
    CheckSpec(
        "room",
        "room_type_known",
        "room_type is one of the eight types of docs/protocol.md §2.9, even for outside writers.",
    ),
    CheckSpec("room", "room_version_positive", "versions start at 1."),
    CheckSpec("item", "item_kind_known", "kind is image, note, color, asset or generation."),
    CheckSpec("item", "item_size_positive", "w and h are greater than zero."),
    CheckSpec("item", "item_version_positive", "versions start at 1."),
    CheckSpec("project_resource", "project_resource_size_never_negative", "sizes are bytes."),
    CheckSpec(
        "generation",
        "generation_status_known",
        "status is one of the five of docs/protocol.md §2.9.",
    ),
    CheckSpec("generation", "generation_progress_in_range", "progress is 0..100."),
    CheckSpec("generation", "generation_cost_never_negative", "a cost is never a gift."),
    CheckSpec("generation", "generation_version_positive", "versions start at 1."),
    CheckSpec(
        "credit_ledger",
        "credit_ledger_balance_never_negative",
        "the balance after each change is never below zero.",
    ),
)
