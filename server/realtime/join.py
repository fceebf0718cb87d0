"""Joining a project on a socket: the join's own read, then the handover to the feed.

A join subscribes first, then reads the project at a known seq S (a
snapshot, or on a resume the events after ``last_seq``), then hands over:
what the feed delivered meanwhile waited in the stream's buffer, and after
the ``joined`` frame (and the replay) only the events after S go out, in seq
order (docs/architecture.md §3). Nothing is lost between the read and the
feed, and nothing is sent twice.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from server import metrics
from server.db.database import Database
from server.events.reads import read_resume, read_resume_as, read_snapshot
from server.log import get_logger, swallowed
from server.projects.access import NO_ACCESS, role_on
from server.realtime import protocol as p
from server.realtime.bus import BrokerUnavailable
from server.transport.wire import Outgoing
from server.types import ProjectId, UserId

if TYPE_CHECKING:
    from server.realtime.connection import Connection

log = get_logger(__name__)


@dataclass(slots=True)
class Stream:
    """A joined project on this socket: the last seq delivered, and the join-time buffer."""

    last_seq: int = 0
    buffer: list[tuple[int | None, Outgoing]] | None = field(default_factory=list)


async def join(
    connection: Connection, project_id: uuid.UUID, last_seq: int | None, ref: str | None
) -> None:
    """Join ``project_id`` on ``connection``: ``joined`` (snapshot or replay), then live events."""
    user = connection.machine.user
    assert user is not None
    # A resume checks the role in the statement that reads its events, after
    # subscribing (server/events/reads.py, read_resume_as): a storm of
    # resumes costs one database round trip per socket, not two. Nothing of
    # the project reaches the socket before the role is known: events wait in
    # the stream's buffer, presence is entered after.
    if last_seq is None and await role_on(ProjectId(project_id), UserId(user.id)) is None:
        _refuse(connection, project_id, ref)
        return
    stream = connection.streams[project_id] = Stream()
    realtime = connection.realtime
    # Subscribe first, then read at a known seq S, then hand over what came after S.
    try:
        await realtime.subscribe(connection, project_id)
    except BrokerUnavailable:
        await _bus_down(connection, project_id, ref)
        return
    replay: list[p.EventFrame] | None = None
    seq: int | None = None
    if last_seq is not None:
        allowed, resumed = await _read_resume(
            connection.database, UserId(user.id), project_id, last_seq
        )
        if not allowed:
            connection.streams.pop(project_id, None)
            await realtime.unsubscribe(connection, project_id)
            _refuse(connection, project_id, ref)
            return
        if resumed is not None:
            seq, replay = resumed
    snapshot = None
    if replay is None:
        taken = await read_snapshot(connection.database.engine, project_id)
        seq, snapshot = taken.seq, taken.state
    assert seq is not None
    try:
        presence = await realtime.presence.enter(
            connection, project_id, p.PresenceEntry(user_id=user.id, name=user.name, state={})
        )
    except BrokerUnavailable:
        await _bus_down(connection, project_id, ref)
        return
    metrics.JOINS.labels("snapshot" if replay is None else "replay").inc()
    connection.send_frame(
        p.Joined(
            ref=ref,
            project_id=project_id,
            seq=seq,
            mode="snapshot" if replay is None else "replay",
            presence=presence,
            snapshot=snapshot,
        )
    )
    for frame in replay or ():
        connection.send_frame(frame)
    stream.last_seq = seq
    realtime.feeds.start(project_id, seq)
    buffered, stream.buffer = stream.buffer or [], None
    # Presence diffs first (they have no seq), then events in seq order.
    buffered.sort(key=lambda entry: -1 if entry[0] is None else entry[0])
    for event_seq, queued in buffered:
        if event_seq is None:
            connection.send(queued)
        elif event_seq > stream.last_seq:
            stream.last_seq = event_seq
            connection.send(queued)
    connection.machine.join_done(project_id)


async def _read_resume(
    database: Database, user_id: UserId, project_id: uuid.UUID, last_seq: int
) -> tuple[bool, tuple[int, list[p.EventFrame] | None] | None]:
    """Whether the user may read the project, and the resume read (read_resume's answer)."""
    both = await read_resume_as(database, user_id, project_id, last_seq)
    if both is not None:
        return both.role is not None, both.resumed
    if await role_on(ProjectId(project_id), user_id) is None:
        return False, None
    return True, await read_resume(project_id, last_seq)


def _refuse(connection: Connection, project_id: uuid.UUID, ref: str | None) -> None:
    connection.machine.join_failed(project_id)
    connection.send_frame(p.Error(ref=ref, code="forbidden", message=NO_ACCESS))


async def _bus_down(connection: Connection, project_id: uuid.UUID, ref: str | None) -> None:
    """Redis did not answer while joining: undo the join, tell the client to retry."""
    # Redis is down: leaving may fail too.
    with swallowed(log, "ws.leave_failed", connection_id=connection.id):
        await connection.leave(project_id)
    connection.machine.join_failed(project_id)
    connection.send_frame(
        p.Error(
            ref=ref,
            code="internal",
            message="the message bus is unavailable; join again later",
        )
    )
