"""Joining a project on a socket: the join's own read, then the handover to the feed.

A join subscribes first, then reads the project at a known seq S (a
snapshot, or on a resume the events after ``last_seq``), then hands over:
what the feed dispatched meanwhile waited in the socket's ``JoinedStream``,
and after the ``joined`` frame (and the replay) only the events after S go
out, in seq order, any gap read from the log (docs/architecture.md §3; the
rules are the stream's, server/delivery/stream.py). Nothing is lost between
the read and the feed, and nothing is sent twice.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from server import metrics
from server.access import policy
from server.db.database import Database
from server.delivery.stream import JoinedStream
from server.events.reads import read_resume, read_resume_as
from server.log import get_logger, swallowed
from server.projects.access import NO_ACCESS, role_on
from server.realtime import handover
from server.realtime import protocol as p
from server.realtime.bus import BrokerUnavailable
from server.transport.wire import Outgoing
from server.types import ProjectId, UserId

if TYPE_CHECKING:
    from server.realtime.connection import Connection

log = get_logger(__name__)


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
    # the stream, presence is entered after.
    role = None if last_seq is not None else await role_on(ProjectId(project_id), UserId(user.id))
    if last_seq is None and role is None:
        _refuse(connection, project_id, ref)
        return
    stream: JoinedStream[Outgoing] = JoinedStream(max_held=connection.outbox.max_frames)
    connection.streams[project_id] = stream
    realtime = connection.realtime
    # Subscribe first, then read at a known seq S, then hand over what came after S.
    try:
        await realtime.subscribe(connection, project_id, stream)
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
            stream.end()
            await realtime.unsubscribe(connection, project_id)
            _refuse(connection, project_id, ref)
            return
        if resumed is not None:
            seq, replay = resumed
    snapshot = None
    if replay is None:
        if role is None:  # a resume the log could not serve: the role decides the e-mails
            role = await role_on(ProjectId(project_id), UserId(user.id))
        # Shared with the joins of the project that asked meanwhile (server/realtime/snapshots.py).
        taken = await realtime.snapshots.read(
            connection.database, project_id, with_emails=policy.can(role, "members.manage")
        )
        seq, snapshot = taken.seq, taken.state
    assert seq is not None
    if stream.ended:
        return  # revoked (or the socket closed) while reading: nothing of it goes out
    try:
        presence = await realtime.presence.enter(
            connection, project_id, p.PresenceEntry(user_id=user.id, name=user.name, state={})
        )
    except BrokerUnavailable:
        await _bus_down(connection, project_id, ref)
        return
    if stream.ended:  # revoked while entering: the entry goes again
        with swallowed(log, "ws.leave_failed", connection_id=connection.id):
            await realtime.presence.exit(connection, project_id)
        return
    metrics.JOINS.labels("snapshot" if replay is None else "replay").inc()
    connection.send_frame(
        p.Joined(
            ref=ref,
            project_id=project_id,
            seq=seq,
            mode="snapshot" if replay is None else "replay",
            presence=presence.encoded,
            snapshot=snapshot,
        )
    )
    for frame in replay or ():
        connection.send_frame(frame)
    # Live from S + 1: what was held goes out (presence first), any gap is read; then
    # the feed learns of S (the project's first join starts the feed's run there).
    handover.release(
        connection, project_id, stream, stream.read_done(seq, realtime.feeds.head(project_id))
    )
    realtime.feeds.start(project_id, seq)
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
