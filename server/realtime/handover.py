"""What a socket does when its ``JoinedStream`` holds, releases or asks for the log.

The stream (server/delivery/stream.py) decides; this carries it out on one
connection: frames a release lets go of are sent in order; a gap is read
from the event log (retried while the database does not answer: the stream
keeps holding, bounded, and a stream that holds too much closes its socket
4503, so its client resumes and loses nothing); nothing is sent for a stream
that ended or was replaced meanwhile. The common verdicts (send, skip, hold)
never come here: the feed's dispatch loop handles them inline (server/realtime/feed.py).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING

from server.delivery.feed import ReadLog
from server.delivery.stream import JoinedStream, Release, Verdict
from server.errors import CloseCode
from server.events.reads import read_fill
from server.log import get_logger
from server.realtime import protocol as p
from server.transport.wire import Outgoing

if TYPE_CHECKING:
    from server.realtime.connection import Connection

log = get_logger(__name__)
GAP_RETRY_S = 0.25  # the first wait after a gap read failed; it doubles up to GAP_RETRY_MAX_S
GAP_RETRY_MAX_S = 5.0
TOO_MUCH_HELD = "too much waited for an earlier event; resume"


def act(
    connection: Connection,
    project_id: uuid.UUID,
    stream: JoinedStream[Outgoing],
    verdict: Verdict,
) -> None:
    """Carry out a verdict other than send, skip or hold."""
    if verdict is Verdict.READ:
        connection.realtime.spawn(read_gap(connection, project_id, stream, stream.missing()))
    elif verdict is Verdict.RELEASE:
        release(connection, project_id, stream, stream.take())
    elif verdict is Verdict.OVERFLOW:
        connection.realtime.spawn(connection.close(CloseCode.TOO_SLOW, TOO_MUCH_HELD))


def release(
    connection: Connection,
    project_id: uuid.UUID,
    stream: JoinedStream[Outgoing],
    released: Release[Outgoing],
) -> None:
    """Send what the stream let go of, in order; read the next gap if it asks for one."""
    for frame in released.frames:
        connection.send(frame)
    if released.read is not None:
        connection.realtime.spawn(read_gap(connection, project_id, stream, released.read))


async def read_gap(
    connection: Connection,
    project_id: uuid.UUID,
    stream: JoinedStream[Outgoing],
    read: ReadLog | None,
) -> None:
    """Read the stream's missing events from the log and release what follows them."""
    wait = GAP_RETRY_S
    while read is not None:
        try:
            frames = await read_fill(project_id, read.after, read.upto)
        except Exception as exc:
            log.warning(
                "ws.gap_read_failed",
                connection_id=connection.id,
                project_id=str(project_id),
                error=repr(exc),
            )
            await asyncio.sleep(wait)
            wait = min(wait * 2, GAP_RETRY_MAX_S)
            if connection.streams.get(project_id) is not stream:
                return
            read = stream.fill_failed()
            continue
        if connection.streams.get(project_id) is not stream:
            return  # left, revoked or joined again meanwhile: this read is for nobody
        released = stream.filled([(frame.seq, Outgoing(p.encode(frame))) for frame in frames])
        for frame in released.frames:
            connection.send(frame)
        read = released.read
