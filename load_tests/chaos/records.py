"""What a chaos run records while it runs, and what it reads from the database at the end.

Plain data only: the actors and faults append these, the checker reads them.
Times are ``time.monotonic()`` seconds of this process.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

ReceivedKind = Literal["joined", "event", "left", "closed", "join_refused"]


@dataclass(frozen=True)
class Received:
    """One thing a recording client got on one of its sockets, with its receive time.

    ``conn`` counts the client's sockets (1, 2, ...), ``session`` its logins:
    a logout ends one session, and the client logs in again for the next.
    """

    t: float
    client: str
    user_id: str
    conn: int
    session: int
    kind: ReceivedKind
    project_id: str | None = None
    seq: int | None = None
    mode: str | None = None  # joined: snapshot or replay
    last_seq: int | None = None  # joined: the last_seq the join sent
    event_kind: str | None = None  # event: item.updated, member.deleted, ...
    entity: str | None = None
    id: str | None = None
    version: int | None = None
    data: dict[str, Any] | None = None
    snapshot_items: list[dict[str, Any]] | None = None
    reason: str | None = None  # left: access_revoked or none (asked); join_refused: the code
    code: int | None = None  # closed: the close code (1006: cut without a close frame)


@dataclass
class AccessChange:
    """A member removed from a project (or made viewer), and when it got access back."""

    user_id: str
    project_id: str
    how: Literal["removed", "downgraded"]
    answered_at: float  # the 204 / 200 arrived
    restore_sent_at: float | None = None  # the re-add / upgrade was sent


@dataclass(frozen=True)
class SessionEnd:
    """A recording client's session logged out (the 204 arrived at ``answered_at``).

    ``answered_wall`` is the same moment on the wall clock, to compare with the
    event log's commit times.
    """

    client: str
    session: int
    answered_at: float
    answered_wall: float = 0.0


@dataclass(frozen=True)
class OutsideWrite:
    """One SQL statement of the outside writer: the seqs its rows got, when it committed."""

    project_id: str
    first_seq: int
    last_seq: int
    committed_at: float


@dataclass(frozen=True)
class Fault:
    """One injected fault, from its start to the moment it was over (restarted, read again)."""

    kind: str
    start: float
    end: float
    detail: str


@dataclass(frozen=True)
class Pause:
    """A client that stopped reading its socket from ``start`` to ``end``."""

    client: str
    start: float
    end: float


@dataclass(frozen=True)
class Drain:
    """A SIGTERMed instance: how long it took to exit (None: not within the wait)."""

    instance: int
    exit_s: float | None


@dataclass
class Journal:
    """Everything recorded during a run."""

    received: list[Received] = field(default_factory=list)
    access_changes: list[AccessChange] = field(default_factory=list)
    session_ends: list[SessionEnd] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    drains: list[Drain] = field(default_factory=list)
    pauses: list[Pause] = field(default_factory=list)
    edits: dict[str, int] = field(default_factory=dict)  # outcome (via) -> count
    outside_statements: int = 0
    outside_writes: list[OutsideWrite] = field(default_factory=list)


@dataclass(frozen=True)
class LoggedEvent:
    """A row of the database's event log."""

    project_id: str
    seq: int
    kind: str
    entity: str
    entity_id: str
    actor_id: str | None
    data: dict[str, Any]
    at: float = 0.0  # its commit time (the row's ``at``), wall-clock seconds since the epoch


@dataclass
class DatabaseState:
    """The database at the end of the run: heads, items, the event log."""

    heads: dict[str, int]  # project id -> seq
    items: dict[str, dict[str, dict[str, Any]]]  # project id -> item id -> row
    events: list[LoggedEvent]
