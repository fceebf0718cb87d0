"""The event layer's reads: a project's snapshot, its resume, its log ranges and head seqs.

A joining socket receives a snapshot at seq S, or a replay (docs/protocol.md §3.2):
``read_snapshot``, ``read_resume`` and ``read_resume_as`` (with the reader's
role, batched). The feed fills gaps with ``read_fill`` (in pieces) and heals with
``project_seqs``; the REST events endpoint pages with ``read_events`` and
``current_seq``.

The snapshot is read in one transaction that sees one consistent state
(REPEATABLE READ on PostgreSQL; a read transaction in SQLite's WAL mode), and
S is the project's seq inside it: every event up to S is in the snapshot and
none after it.

With a read replica (``MOODBOARD_DATABASE_REPLICA_URL``, the database's
``replica``), the snapshot, the replay of a resume and the REST history read
there when the replica has replayed the project as far as the reader must
see: the project's seq on the primary, read first (one indexed row, with the
role check a replay makes anyway), is the least the answer may show, and a
replica whose seq for the project is lower (:func:`replica_serves`) leaves
the read to the primary. An edit acked before the read began is at or below
that seq, so a join after an ack never shows older state than the ack. A
replica that does not answer leaves the read to the primary too. The feed's
gap reads stay on the primary: they are asked for events the primary just
announced.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeVar, get_args

import asyncpg
import msgspec
from piccolo.engine.base import Engine

from server import metrics
from server.access import policy
from server.db.database import Database
from server.db.engine import REPLICA
from server.db.raw import runner_of
from server.db.read_batch import ReadBatch
from server.events.tables import Event
from server.generations.tables import Generation
from server.log import get_logger
from server.projects.access import role_on
from server.projects.entities import generation_entity, item_entity, project_entity, room_entity
from server.projects.membership import list_members
from server.projects.tables import Item, Project, Room
from server.realtime import protocol as p
from server.timestamps import rfc3339
from server.types import ProjectId, ProjectRole, UserId

R = TypeVar("R")


log = get_logger(__name__)
FILL_MOST = 1000  # the most events one gap fill reads (read_fill); the core asks on for more

ReplicaRead = Literal["snapshot", "replay", "history"]
# Each read's series is in /metrics from the start, at zero.
_SERVED = {
    (read, source): metrics.REPLICA_READS.labels(read, source)
    for read in get_args(ReplicaRead)
    for source in ("replica", "primary")
}
# What a replica that cannot answer raises: refused, down, or gone while reading.
_REPLICA_FAILURES = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


def replica_serves(replica_seq: int | None, needed_seq: int | None) -> bool:
    """Whether the replica may answer a read that must show the project up to ``needed_seq``.

    ``replica_seq`` is the project's seq on the replica (None: it has not
    replayed the project's creation yet); ``needed_seq`` the project's seq on
    the primary when the read began (None: no such project there either).
    The replica's answer is as of its own seq, never older than what was
    committed before the read: every acked edit the reader knows of.
    """
    if needed_seq is None:
        return False  # let the primary say the project does not exist
    return replica_seq is not None and replica_seq >= needed_seq


class _ReplicaBehind(Exception):
    """The replica has not replayed the project as far as the read must show."""


async def _from_replica(read: ReplicaRead, answer: Awaitable[R]) -> R | None:
    """The replica's answer, or None: it is behind or does not answer (the primary then reads)."""
    try:
        value = await answer
    except _ReplicaBehind:
        _SERVED[read, "primary"].inc()
        return None
    except _REPLICA_FAILURES as exc:
        log.warning("replica.read_failed", read=read, error=repr(exc))
        _SERVED[read, "primary"].inc()
        return None
    _SERVED[read, "replica"].inc()
    return value


@dataclass(frozen=True, slots=True)
class Snapshot:
    seq: int
    state: dict[str, Any]


async def read_snapshot(
    database: Database, project_id: uuid.UUID, *, reader: uuid.UUID
) -> Snapshot:
    """Project, rooms, items, generations and members, all as of one seq.

    Members' e-mail addresses go only to a ``reader`` who may manage members
    (owners), as over REST; everyone else gets their names and roles. From
    the replica when it has caught up with the primary's seq (module docstring).
    """
    with_emails = policy.can(await role_on(ProjectId(project_id), UserId(reader)), "members.manage")
    return await read_snapshot_as(database, project_id, with_emails=with_emails)


async def read_snapshot_as(
    database: Database, project_id: uuid.UUID, *, with_emails: bool
) -> Snapshot:
    """``read_snapshot`` for a reader whose right to the members' e-mails is known."""
    if database.replica is not None:
        needed = await current_seq(project_id)
        if needed is not None:
            taken = await _from_replica(
                "snapshot",
                _snapshot(database.replica, project_id, with_emails, node=REPLICA, needed=needed),
            )
            if taken is not None:
                return taken
    return await _snapshot(database.engine, project_id, with_emails)


async def _snapshot(
    engine: Engine[Any],
    project_id: uuid.UUID,
    with_emails: bool,
    *,
    node: str | None = None,
    needed: int | None = None,
) -> Snapshot:
    """The snapshot read on ``engine`` (the primary, or the replica's ``node`` of it).

    Raises:
        _ReplicaBehind: the project's seq there is below ``needed``.
    """
    async with engine.transaction():
        if engine.engine_type == "postgres":
            await engine.run_ddl("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        project = await Project.select().where(Project.id == project_id).first().run(node=node)
        if needed is not None and not replica_serves(
            None if project is None else int(project["seq"]), needed
        ):
            raise _ReplicaBehind
        if project is None:
            raise LookupError(f"project {project_id} does not exist")
        rooms = (
            await Room.select()
            .where(Room.project_id == project_id)
            .order_by(Room.position)
            .output(load_json=True)
            .run(node=node)
        )
        items = (
            await Item.select()
            .where(Item.project_id == project_id)
            .order_by(Item.z)
            .output(load_json=True)
            .run(node=node)
        )
        generations = (
            await Generation.select()
            .where(Generation.project_id == project_id)
            .order_by(Generation.created_at)
            .output(load_json=True)
            .run(node=node)
        )
        members = await list_members(ProjectId(project_id), node=node)
    if not with_emails:
        members = [{k: v for k, v in m.items() if k != "email"} for m in members]
    return Snapshot(
        seq=int(project["seq"]),
        state={
            "project": project_entity(project),
            "rooms": [room_entity(r) for r in rooms],
            "items": [item_entity(i) for i in items],
            "generations": [generation_entity(g) for g in generations],
            "members": members,
        },
    )


async def project_seqs(project_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    """The current seq of each of these projects (one query)."""
    rows = await Project.select(Project.id, Project.seq).where(Project.id.is_in(project_ids))
    return {row["id"]: int(row["seq"]) for row in rows}


async def current_seq(project_id: uuid.UUID, *, node: str | None = None) -> int | None:
    """The project's seq (on the primary, or on ``node``); None when it does not exist there."""
    row = await Project.select(Project.seq).where(Project.id == project_id).first().run(node=node)
    return None if row is None else int(row["seq"])


def event_frame(row: dict[str, Any]) -> p.EventFrame:
    """An event row (JSON loaded) as the event frame of docs/protocol.md §3.2."""
    return p.EventFrame(
        project_id=row["project_id"],
        seq=int(row["seq"]),
        kind=row["kind"],
        entity=row["entity"],
        id=row["entity_id"],
        version=row["version"],
        data=row["data"],
        actor_id=row["actor_id"],
        op_id=row["op_id"],
        at=rfc3339(row["at"]) or "",
    )


async def read_events(
    project_id: uuid.UUID, after: int, upto: int, *, node: str | None = None
) -> list[p.EventFrame]:
    """The logged events with ``after < seq <= upto``, in order (on the primary, or ``node``)."""
    rows = (
        await Event.select()
        .where((Event.project_id == project_id) & (Event.seq > after) & (Event.seq <= upto))
        .order_by(Event.seq)
        .output(load_json=True)
        .run(node=node)
    )
    return [event_frame(row) for row in rows]


async def read_fill(project_id: uuid.UUID, after: int, upto: int) -> list[p.EventFrame]:
    """The first ``FILL_MOST`` logged events of the range ``after < seq <= upto``.

    A gap after a long outage can span many thousands of events: it is read in
    pieces, and the delivery core (server/delivery/) asks on for the rest once a
    piece is out, so a fill's memory and statement time stay bounded.
    """
    return await read_events(project_id, after, min(upto, after + FILL_MOST))


async def read_history(
    database: Database, project_id: uuid.UUID, after: int, limit: int
) -> tuple[int, list[p.EventFrame]]:
    """The REST history page: the project's seq and its events after ``after`` (at most ``limit``).

    The seq comes from the primary; the events from the replica when its seq
    for the project has reached the page's last one.
    """
    seq = await current_seq(project_id) or 0
    upto = min(seq, after + limit)
    if database.replica is not None and upto > after:
        frames = await _from_replica("history", _replica_events(project_id, after, upto))
        if frames is not None:
            return seq, frames
    return seq, await read_events(project_id, after, upto)


async def _replica_events(project_id: uuid.UUID, after: int, upto: int) -> list[p.EventFrame]:
    if not replica_serves(await current_seq(project_id, node=REPLICA), upto):
        raise _ReplicaBehind
    return await read_events(project_id, after, upto, node=REPLICA)


# A logged event's columns, as event_frame takes them (every resume statement returns them).
_EVENT_COLUMNS = """e.project_id AS project_id, e.seq AS seq, e.kind AS kind,
       e.entity AS entity, e.entity_id AS entity_id, e.version AS version, e.data AS data,
       e.actor_id AS actor_id, e.op_id AS op_id, e.at AS at"""
# A user's standing on project p: its state, the direct role, the roles of the user's
# team grants (server/projects/access.py reads the same three for role_on).
_STANDING_COLUMNS = """p.deleted_at IS NOT NULL AS deleted,
       (SELECT m.role FROM project_member m WHERE m.project_id = p.id AND m.user_id = {user})
           AS direct,
       ARRAY(SELECT g.role FROM project_team_grant g JOIN team_member t ON t.team_id = g.team_id
             WHERE g.project_id = p.id AND t.user_id = {user}) AS teams"""

# The project's seq S and the logged events after last_seq up to S, in one statement:
# one consistent view (PostgreSQL: the statement's snapshot; SQLite: one read).
_RESUME = """
SELECT p.seq AS head, {events}
FROM project p
LEFT JOIN event e ON e.project_id = p.id AND e.seq > {after} AND e.seq <= p.seq
WHERE p.id = {project}
ORDER BY e.seq
"""
_RESUME_SQL = _RESUME.format(events=_EVENT_COLUMNS, after="{}", project="{}")  # Piccolo's
_RESUME_PG = _RESUME.format(events=_EVENT_COLUMNS, after="$2", project="$1")

# The same read, with the user's standing on the project on every row (PostgreSQL only).
_RESUME_AS = """
SELECT p.seq AS head, {standing}, {events}
FROM project p
LEFT JOIN event e ON e.project_id = p.id AND e.seq > $2 AND e.seq <= p.seq
WHERE p.id = $1
ORDER BY e.seq
"""
_RESUME_AS_PG = _RESUME_AS.format(
    standing=_STANDING_COLUMNS.format(user="$3"), events=_EVENT_COLUMNS
)
# The same read for several callers at once (a batch of concurrent resumes): one row per
# (caller, event), or one row with no event; ``position`` (from 1) says whose. A project
# that does not exist still gives its caller one row, with a NULL head. The events are a
# subquery the planner cannot merge into the join (OFFSET 0): each caller's range is then
# an index range scan (project_id, seq > last_seq, seq <= head). As a plain join, the
# planner used only one bound in the index and filtered the rest, reading every event
# of each project up to its head: 45 ms a statement against 0.15 ms with 1,000 events
# per project, and whole seconds of a reconnect storm once the log is long.
_RESUMES_AS = """
SELECT r.position AS position, p.seq AS head, {standing}, {events}
FROM unnest($1::uuid[], $2::bigint[], $3::uuid[]) WITH ORDINALITY
     AS r(project_id, last_seq, user_id, position)
LEFT JOIN project p ON p.id = r.project_id
LEFT JOIN LATERAL (
    SELECT * FROM event e WHERE e.project_id = p.id AND e.seq > r.last_seq AND e.seq <= p.seq
    ORDER BY e.seq OFFSET 0
) e ON true
ORDER BY r.position, e.seq
"""
_RESUMES_AS_PG = _RESUMES_AS.format(
    standing=_STANDING_COLUMNS.format(user="r.user_id"), events=_EVENT_COLUMNS
)


async def read_resume(
    project_id: uuid.UUID, last_seq: int
) -> tuple[int, list[p.EventFrame] | None] | None:
    """A resume's read: the project's seq S and exactly the events ``last_seq + 1 .. S``.

    The events are None when the log no longer holds them all (retention) or
    ``last_seq`` is ahead of the project: the client needs a snapshot. None
    when the project does not exist.
    """
    runner = runner_of(Project)
    rows: Any
    if runner is not None:  # every resume reads this: the fixed statement (server/db/raw.py)
        rows = await runner.fetch(_RESUME_PG, project_id, last_seq)
    else:
        rows = await Project.raw(_RESUME_SQL, last_seq, project_id)
    return _resumed(rows, last_seq)


@dataclass(frozen=True, slots=True)
class ResumeAs:
    """A resume's read together with the reader's role (None: no access, or no project)."""

    role: ProjectRole | None
    resumed: tuple[int, list[p.EventFrame] | None] | None


async def read_resume_as(
    database: Database, user_id: uuid.UUID, project_id: uuid.UUID, last_seq: int
) -> ResumeAs | None:
    """``role_on`` and ``read_resume`` in one statement; None where that cannot be done.

    A reconnect storm runs one per socket: one round trip instead of two, and
    the calls that arrive together share one statement (server/db/read_batch.py).
    Only on PostgreSQL (server/db/raw.py): elsewhere the caller asks the two
    questions apart.
    """
    if database.statement_runner() is None:
        return None
    replica = database.replica
    # With a replica the primary answers the role and its seq only (a last_seq past
    # any head reads no events); the replay comes from the replica when it caught up.
    asked = last_seq if replica is None else _HEAD_ONLY
    rows = await database.owned(_resumes).read((project_id, asked, user_id))
    if not rows:
        return ResumeAs(role=None, resumed=None)
    first = rows[0]
    role = policy.role_for(first["direct"], first["teams"], deleted=first["deleted"])
    if role is None:
        return ResumeAs(role=None, resumed=None)
    if replica is None:
        return ResumeAs(role=role, resumed=_resumed(rows, last_seq))
    needed = int(first["head"])
    resumed = await _from_replica("replay", _replica_resume(replica, project_id, last_seq, needed))
    if resumed is None:
        resumed = await read_resume(project_id, last_seq)
    return ResumeAs(role=role, resumed=resumed)


_HEAD_ONLY = 2**62  # a last_seq past every project's head: the resume read returns no event


async def _replica_resume(
    replica: Any, project_id: uuid.UUID, last_seq: int, needed: int
) -> tuple[int, list[p.EventFrame] | None]:
    """The resume read on the replica, when it has replayed the project up to ``needed``."""
    resumed = _resumed(await replica.pool.fetch(_RESUME_PG, project_id, last_seq), last_seq)
    if resumed is None or not replica_serves(resumed[0], needed):
        raise _ReplicaBehind
    return resumed


_Resuming = tuple[uuid.UUID, int, uuid.UUID]  # project_id, last_seq, user_id


async def _resume_as_rows(runner: Any, asked: _Resuming) -> list[Any]:
    """A lone call's rows: the single-caller statement."""
    rows: list[Any] = await runner.fetch(_RESUME_AS_PG, *asked)
    return rows


async def _resumes_as_rows(runner: Any, asked: list[_Resuming]) -> list[list[Any]]:
    """Each call's rows of one statement, as its own statement would have answered them."""
    rows = await runner.fetch(
        _RESUMES_AS_PG,
        [project_id for project_id, _, _ in asked],
        [last_seq for _, last_seq, _ in asked],
        [user_id for _, _, user_id in asked],
    )
    answers: list[list[Any]] = [[] for _ in asked]
    for row in rows:
        if row["head"] is not None:  # NULL: no such project, no rows
            answers[row["position"] - 1].append(row)
    return answers


def _resumes(database: Database) -> ReadBatch[_Resuming, list[Any]]:
    """The database's batched resume reads (one statement in flight)."""
    return ReadBatch(database, "resume", _resume_as_rows, _resumes_as_rows)


def _resumed(rows: Any, last_seq: int) -> tuple[int, list[p.EventFrame] | None] | None:
    """The project's seq and the events after ``last_seq`` of a resume query's rows."""
    if not rows:
        return None
    head = int(rows[0]["head"])
    if last_seq > head:
        return head, None
    events = [row for row in rows if row["seq"] is not None]
    if len(events) != head - last_seq:
        return head, None  # retention removed some
    return head, [event_frame(_loaded(row)) for row in events]


def _loaded(row: Any) -> dict[str, Any]:
    """An event row of the resume query with its JSON and time decoded, as event_frame takes it."""
    loaded = dict(row)
    if isinstance(loaded["data"], str | bytes):  # JSON columns come back as text from raw SQL
        loaded["data"] = msgspec.json.decode(loaded["data"])
    if isinstance(loaded["at"], str):  # SQLite
        loaded["at"] = datetime.fromisoformat(loaded["at"])
    return loaded
