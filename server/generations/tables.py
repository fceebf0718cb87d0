"""Generations: each row is a request, its job in the queue, and its history."""

from __future__ import annotations

from piccolo.columns import (
    JSONB,
    UUID,
    ForeignKey,
    Integer,
    OnDelete,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from server.access.tables import AppUser, ServiceAccount
from server.projects.tables import Project, Room


class Generation(Table, tablename="generation"):
    """A picture made from a prompt, paid in credits; the table is the job queue.

    Workers claim ``queued`` rows with ``FOR UPDATE SKIP LOCKED`` and hold a
    lease (``lease_owner`` until ``lease_expires_at``) that progress renews.
    """

    id = UUID(primary_key=True)
    project_id = ForeignKey(Project, on_delete=OnDelete.cascade, null=False)
    room_id = ForeignKey(Room, on_delete=OnDelete.set_null, null=True)
    requested_by = ForeignKey(AppUser, on_delete=OnDelete.set_null, null=True)
    prompt = Text()
    params = JSONB(default={})
    status = Varchar(length=16, default="queued")
    progress = Integer(default=0)
    stage = Varchar(length=64, null=True, default=None)
    cost = Integer(default=0, help_text="Credits reserved at request time.")
    result = JSONB(null=True, default=None, help_text="e.g. {url, width, height, asset_id}.")
    error = Text(null=True, default=None)
    attempts = Integer(default=0)
    lease_owner = Varchar(length=128, null=True, default=None, help_text="worker_id holding it.")
    lease_account_id = ForeignKey(ServiceAccount, on_delete=OnDelete.set_null, null=True)
    lease_expires_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    started_at = Timestamptz(null=True, default=None)
    finished_at = Timestamptz(null=True, default=None)
    queue_wait_ms = Integer(null=True, default=None, help_text="created -> first claim.")
    run_ms = Integer(null=True, default=None, help_text="first claim -> finished.")
    stage_timings = JSONB(default={}, help_text="Milliseconds spent per stage.")
    version = Integer(default=1)
