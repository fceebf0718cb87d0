"""The per-project event log: every durable change, numbered 1, 2, 3 ... per project."""

from __future__ import annotations

from piccolo.columns import (
    JSONB,
    UUID,
    BigInt,
    BigSerial,
    ForeignKey,
    Integer,
    OnDelete,
    Timestamptz,
    Varchar,
)
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from server.access.tables import AppUser
from server.projects.tables import Project


class Event(Table, tablename="event"):
    """One change of a project's state (docs/protocol.md §3.2), written in its transaction."""

    id = BigSerial(primary_key=True)
    project_id = ForeignKey(Project, on_delete=OnDelete.cascade, null=False)
    seq = BigInt(help_text="Per-project sequence number, no gaps.")
    kind = Varchar(length=32, help_text="<entity>.<created|updated|deleted>, generation.<status>.")
    entity = Varchar(length=16)
    entity_id = UUID()
    version = Integer(null=True, default=None)
    data = JSONB(default={})
    actor_id = ForeignKey(
        AppUser, on_delete=OnDelete.set_null, null=True, help_text="Null: outside."
    )
    op_id = Varchar(
        length=64,
        null=True,
        default=None,
        help_text="Client operation id; a retry of a plain ack is answered from here.",
    )
    at = Timestamptz(default=TimestamptzNow())


class Operation(Table, tablename="operation"):
    """The outcome of a client operation (``op_id``): a retry gets it again (docs/protocol.md §3.3).

    Conflicts and merged acks: a conflict writes no event, but its retry must
    still answer the same conflict and apply nothing. A plain ack needs no
    row here: its event carries the op_id and says the whole outcome (see
    server/projects/edits.py, ``earlier_outcome``).
    """

    id = BigSerial(primary_key=True)
    project_id = ForeignKey(Project, on_delete=OnDelete.cascade, null=False)
    op_id = Varchar(length=64)
    user_id = UUID(help_text="Who sent it: the same op_id from someone else is refused.")
    outcome = JSONB(help_text="The ack or conflict frame, without its ref.")
    at = Timestamptz(default=TimestamptzNow())
