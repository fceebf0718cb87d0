"""One socket at work: it pumps frames through the state machine and runs its effects.

The reader loop decodes each frame and feeds ``ConnectionSession``; the
effects it returns are carried out here (sending, authenticating, joining,
leaving, presence). Under uvicorn, the frames a socket is sent go to its
transport together, in one write, at the hub's next ``uncork`` (wire.py):
the end of this turn of the event loop, or, while frames are dense, up to
MOODBOARD_WRITE_DELAY_US later. Under load a socket then costs one system
call for several events. Frames a socket cannot take now (a slow reader) go
into the bounded outbox that a writer task drains onto the socket; when the
outbox is full the socket closes with 4503 (the client resumes with
``last_seq``), never an unbounded queue, never a silent drop.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

from litestar import WebSocket

from server import metrics
from server.access.principal import Principal
from server.access.sessions import authenticate
from server.errors import CloseCode, ServerError
from server.log import get_logger
from server.projects import edits
from server.projects.access import NO_ACCESS, role_on
from server.projects.edits import EditRequest
from server.realtime import protocol as p
from server.realtime.bus import BrokerUnavailable
from server.realtime.hub import Realtime
from server.realtime.outbox import Outbox, start
from server.realtime.recent import Recent
from server.realtime.session import (
    ApplyEdit,
    Authenticate,
    Close,
    ConnectionSession,
    Effect,
    JoinProject,
    LeaveProject,
    Send,
    SetPresence,
)
from server.realtime.snapshot import REPLAYED_EVENTS, read_resume, read_resume_as, read_snapshot
from server.realtime.wire import DirectWriter, Outgoing
from server.types import ProjectId, UserId

log = get_logger(__name__)
FLUSH_ON_CLOSE_S = 1.0
CORK_FRAMES = 64  # frames held for one write at the next uncork, at most
# Replayed events' frames, encoded once for every socket that replays them (as
# snapshot.py decodes each once): a reconnect storm replays a project's few events
# to each of its sockets.
_replay_wire: Recent[tuple[uuid.UUID, int], Outgoing] = Recent(REPLAYED_EVENTS)


def _wire_of(frame: p.ServerFrame) -> Outgoing:
    return Outgoing(p.encode(frame))


@dataclass(slots=True)
class Stream:
    """A joined project on this socket: the last seq delivered, and the join-time buffer."""

    last_seq: int = 0
    buffer: list[tuple[int | None, Outgoing]] | None = field(default_factory=list)


class Connection:
    """The server side of one WebSocket."""

    def __init__(
        self,
        socket: WebSocket[Any, Any, Any],
        session: ConnectionSession,
        realtime: Realtime,
        *,
        engine: Any,
        session_ttl_s: int,
        outbox_frames: int,
    ) -> None:
        self.socket = socket
        self.session = session
        self.realtime = realtime
        self.engine = engine
        self.session_ttl_s = session_ttl_s
        self.outbox: Outbox[Outgoing] = Outbox(max_frames=outbox_frames)
        self.streams: dict[uuid.UUID, Stream] = {}
        self.closed = False
        self._writer: asyncio.Task[None] | None = None
        self._send = socket.send  # the ASGI send, below Litestar's send_text helpers
        self._direct = DirectWriter.for_scope(socket.scope)  # None: not under uvicorn
        self._corked: list[Outgoing] = []  # for the transport at the hub's next uncork
        self._stalled: Awaitable[None] | None = None  # a direct write waiting for the socket
        self._writing = False  # the writer task is writing a queued frame
        self._auth_timer: asyncio.TimerHandle | None = None

    @property
    def id(self) -> str:
        return self.session.connection_id

    @property
    def user(self) -> p.UserInfo | None:
        return self.session.user

    @property
    def user_id(self) -> uuid.UUID | None:
        return None if self.session.user is None else self.session.user.id

    @property
    def session_id(self) -> uuid.UUID | None:
        return self.session.session_id

    # --- the pump -------------------------------------------------------------------------

    async def run(self, handshake: Principal | None, handshake_failed: bool) -> None:
        """Serve the socket until it closes (it is already accepted)."""
        try:
            if handshake_failed:
                await self.execute(self.session.authentication_failed())
            elif handshake is not None:
                await self._authenticated(handshake, None)
            else:
                loop = asyncio.get_running_loop()
                self._auth_timer = loop.call_later(
                    self.session.limits.auth_timeout_s,
                    lambda: self.realtime.spawn(self.execute(self.session.auth_deadline())),
                )
            while not self.closed:
                message = await self.socket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                now = time.monotonic()
                text = message.get("text")
                if not isinstance(text, str):
                    effects = self.session.receive_invalid(p.binary_frame_error(), now)
                else:
                    try:
                        frame = p.decode(text)
                    except p.ProtocolError as exc:
                        effects = self.session.receive_invalid(exc, now)
                    else:
                        metrics.received(frame)
                        effects = self.session.receive(frame, now)
                await self.execute(effects)
        finally:
            await self._cleanup()

    async def execute(self, effects: list[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, Send):
                self.send_frame(effect.frame)
            elif isinstance(effect, Close):
                await self.close(effect.code, effect.reason)
            elif isinstance(effect, Authenticate):
                principal = await authenticate(effect.token, ttl_s=self.session_ttl_s, via="bearer")
                if principal is None:
                    await self.execute(self.session.authentication_failed())
                else:
                    await self._authenticated(principal, effect.ref)
            elif isinstance(effect, JoinProject):
                await self._join(effect.project_id, effect.last_seq, effect.ref)
            elif isinstance(effect, LeaveProject):
                await self._leave(effect.project_id)
                self.send_frame(p.Left(ref=effect.ref, project_id=effect.project_id))
            elif isinstance(effect, SetPresence):
                self.realtime.presence_update(self, effect.project_id, effect.state)
            elif isinstance(effect, ApplyEdit):
                await self._edit(effect.edit)

    async def _edit(self, edit: p.Edit) -> None:
        """An ``edit`` frame: ack or conflict to the author; the event goes to everyone."""
        assert self.user_id is not None
        request = EditRequest(
            project_id=edit.project_id,
            action=edit.action,
            entity=edit.entity,
            id=edit.id,
            base_version=edit.base_version,
            room_id=edit.room_id,
            data=edit.data,
            op_id=edit.op_id,
        )
        try:
            outcome, _ = await edits.apply(
                self.engine, self.realtime, UserId(self.user_id), request, want_entity=False
            )
        except ServerError as exc:
            self.send_frame(p.Error(ref=edit.ref, code=exc.code, message=exc.detail))
            return
        if isinstance(outcome, edits.Acked):
            self.send_frame(
                p.Ack(
                    ref=edit.ref,
                    op_id=edit.op_id,
                    id=outcome.id,
                    version=outcome.version,
                    seq=outcome.seq,
                    merged=outcome.merged,
                )
            )
        else:
            self.send_frame(
                p.Conflict(
                    ref=edit.ref,
                    op_id=edit.op_id,
                    entity=outcome.entity,
                    id=outcome.id,
                    base_version=outcome.base_version,
                    current_version=outcome.current_version,
                    current=outcome.current,
                    fields=outcome.fields,
                )
            )

    async def _authenticated(self, principal: Principal, ref: str | None) -> None:
        if self._auth_timer is not None:
            self._auth_timer.cancel()
        user = p.UserInfo(id=principal.user_id, name=principal.name, email=principal.email)
        if self.session.user is None and not self.realtime.register(self, principal.user_id):
            await self.close(CloseCode.RATE_LIMITED, "too many sockets for this user")
            return
        await self.execute(self.session.authenticated(user, principal.session_id, ref))

    # --- output ---------------------------------------------------------------------------

    def send_frame(self, frame: p.ServerFrame) -> None:
        metrics.sent(frame)
        self.send(_wire_of(frame))

    def send(self, frame: Outgoing) -> bool:
        """Write a frame, or queue it; a full outbox closes the socket with 4503 (it resumes).

        Returns False when the socket is closed (nothing written or queued).
        """
        if self.closed:
            return False
        if self._stalled is None and not self._writing and not len(self.outbox):
            # Nothing ahead of it (order kept): write it now, no task to wake.
            if self._direct is not None:
                if not self._corked:
                    self.realtime.uncork_soon(self)
                self._corked.append(frame)
                if len(self._corked) >= CORK_FRAMES:  # a long replay: no need to hold it all
                    self.uncork()
                return True
            try:
                self._stalled = start(self._write(frame))  # outbox.py
            except Exception:  # the peer is gone: the reader sees the disconnect
                return True
            if self._stalled is not None:  # the transport is full: the writer finishes it
                self._wake_writer()
            return True
        self._queue(frame)
        return True

    def uncork(self) -> None:
        """Write the frames sent since the last uncork, in one go (the hub calls it)."""
        corked = self._corked  # emptied in place: no new list per socket and turn (GC)
        if not corked:
            return
        if self.closed or self._direct is None:
            corked.clear()
            return
        data = corked[0].wire if len(corked) == 1 else b"".join([f.wire for f in corked])
        if self._direct.write(data):
            corked.clear()
            return
        # The transport is paused (or closing): the writer's ASGI send waits for it.
        frames = corked[:]
        corked.clear()
        for frame in frames:
            if not self._queue(frame):
                return

    def _queue(self, frame: Outgoing) -> bool:
        """Into the outbox for the writer; False (and a 4503 close) when it is full."""
        if self.outbox.offer(frame):
            self._wake_writer()
            return True
        log.info("ws.too_slow", connection_id=self.id, queued=len(self.outbox))
        self.realtime.spawn(self.close(CloseCode.TOO_SLOW, "too slow to keep up; resume"))
        return False

    def _wake_writer(self) -> None:
        """Start the writer task, on the first frame a socket could not take at once.

        Most sockets never need one (their frames go straight out): a reconnect
        storm of a thousand sockets makes no thousand tasks.
        """
        if self._writer is None and not self.closed:
            self._writer = asyncio.create_task(self._write_loop(), name=f"ws-writer-{self.id}")
        else:
            self.outbox.wake()

    def _write(self, frame: Outgoing) -> Awaitable[None]:
        return self._send({"type": "websocket.send", "bytes": None, "text": frame.text})

    def deliver_event(self, project_id: uuid.UUID, seq: int, frame: Outgoing) -> bool:
        """An event from the bus: once, in order, after the join's read (docs/architecture.md §3.2).

        Returns whether it went to the socket now (the hub counts those).
        """
        stream = self.streams.get(project_id)
        if stream is None:
            return False
        if stream.buffer is not None:
            self._buffer(stream, seq, frame)
        elif seq > stream.last_seq:
            stream.last_seq = seq
            return self.send(frame)
        return False

    def deliver_presence(self, project_id: uuid.UUID, frame: Outgoing) -> bool:
        """A presence diff; returns whether it went to the socket now."""
        stream = self.streams.get(project_id)
        if stream is None:
            return False
        if stream.buffer is not None:
            self._buffer(stream, None, frame)
            return False
        return self.send(frame)

    def _buffer(self, stream: Stream, seq: int | None, frame: Outgoing) -> None:
        assert stream.buffer is not None
        if len(stream.buffer) >= self.outbox.max_frames:
            self.realtime.spawn(self.close(CloseCode.TOO_SLOW, "too slow to keep up; resume"))
            return
        stream.buffer.append((seq, frame))

    async def _write_loop(self) -> None:
        """Finish a stalled direct write, then write what queued behind it, in order."""
        with contextlib.suppress(Exception):
            while True:
                if self._stalled is not None:
                    await self._stalled
                    self._stalled = None
                frame = self.outbox.take()
                if frame is not None:
                    self._writing = True
                    await self._write(frame)
                    self._writing = False
                elif self.outbox.closed:
                    return
                else:
                    await self.outbox.wait()

    # --- joining and leaving -----------------------------------------------------------------

    async def _join(self, project_id: uuid.UUID, last_seq: int | None, ref: str | None) -> None:
        user = self.session.user
        assert user is not None
        # A resume checks the role in the statement that reads its events, after
        # subscribing (server/realtime/snapshot.py, read_resume_as): a storm of
        # resumes costs one database round trip per socket, not two. Nothing of
        # the project reaches the socket before the role is known: events wait in
        # the stream's buffer, presence is entered after.
        if last_seq is None and await role_on(ProjectId(project_id), UserId(user.id)) is None:
            self._refuse(project_id, ref)
            return
        stream = self.streams[project_id] = Stream()
        # Subscribe first, then read at a known seq S, then hand over what came after S.
        try:
            await self.realtime.subscribe(self, project_id)
        except BrokerUnavailable:
            await self._bus_down(project_id, ref)
            return
        replay: list[p.EventFrame] | None = None
        seq: int | None = None
        if last_seq is not None:
            allowed, resumed = await self._read_resume(UserId(user.id), project_id, last_seq)
            if not allowed:
                self.streams.pop(project_id, None)
                await self.realtime.unsubscribe(self, project_id)
                self._refuse(project_id, ref)
                return
            if resumed is not None:
                seq, replay = resumed
        snapshot = None
        if replay is None:
            taken = await read_snapshot(self.engine, project_id)
            seq, snapshot = taken.seq, taken.state
        assert seq is not None
        try:
            presence = await self.realtime.presence_enter(
                self, project_id, p.PresenceEntry(user_id=user.id, name=user.name, state={})
            )
        except BrokerUnavailable:
            await self._bus_down(project_id, ref)
            return
        metrics.JOINS.labels("snapshot" if replay is None else "replay").inc()
        self.send_frame(
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
            metrics.sent(frame)
            self.send(_replay_wire.get((frame.project_id, frame.seq), _wire_of, frame))
        stream.last_seq = seq
        self.realtime.feed_start(project_id, seq)
        buffered, stream.buffer = stream.buffer or [], None
        # Presence diffs first (they have no seq), then events in seq order.
        buffered.sort(key=lambda entry: -1 if entry[0] is None else entry[0])
        for event_seq, queued in buffered:
            if event_seq is None:
                self.send(queued)
            elif event_seq > stream.last_seq:
                stream.last_seq = event_seq
                self.send(queued)
        self.session.join_done(project_id)

    async def _read_resume(
        self, user_id: UserId, project_id: uuid.UUID, last_seq: int
    ) -> tuple[bool, tuple[int, list[p.EventFrame] | None] | None]:
        """Whether the user may read the project, and the resume read (read_resume's answer)."""
        both = await read_resume_as(user_id, project_id, last_seq)
        if both is not None:
            return both.role is not None, both.resumed
        if await role_on(ProjectId(project_id), user_id) is None:
            return False, None
        return True, await read_resume(project_id, last_seq)

    def _refuse(self, project_id: uuid.UUID, ref: str | None) -> None:
        self.session.join_failed(project_id)
        self.send_frame(p.Error(ref=ref, code="forbidden", message=NO_ACCESS))

    async def _bus_down(self, project_id: uuid.UUID, ref: str | None) -> None:
        """Redis did not answer while joining: undo the join, tell the client to retry."""
        with contextlib.suppress(Exception):  # Redis is down: leaving may fail too
            await self._leave(project_id)
        self.session.join_failed(project_id)
        self.send_frame(
            p.Error(
                ref=ref,
                code="internal",
                message="the message bus is unavailable; join again later",
            )
        )

    async def _leave(self, project_id: uuid.UUID) -> None:
        self.session.left(project_id)
        if self.streams.pop(project_id, None) is None:
            return
        await self.realtime.unsubscribe(self, project_id)
        await self.realtime.presence_exit(self, project_id)

    async def revoke(self, project_id: uuid.UUID) -> None:
        """The user lost access while joined: ``left`` with reason access_revoked."""
        if project_id in self.streams:
            await self._leave(project_id)
            self.send_frame(p.Left(project_id=project_id, reason="access_revoked"))

    async def session_ended(self, revoked: set[uuid.UUID]) -> None:
        await self.execute(self.session.session_revoked(revoked))

    # --- closing ------------------------------------------------------------------------

    async def close(self, code: CloseCode, reason: str) -> None:
        """Close the socket with ``code`` (once).

        Frames already queued (an error explaining the close, say) are written
        first, for at most ``FLUSH_ON_CLOSE_S``; a client too slow to keep up
        (4503) gets no such grace: its queue is what is wrong.
        """
        if self.closed:
            return
        self.uncork()  # what was sent before the close goes first (an error explaining it)
        self.session.close(code, reason)
        metrics.closed(int(code))
        self.closed = True
        self.outbox.close()
        writer = self._writer
        if writer is not None:
            if code is CloseCode.TOO_SLOW:
                writer.cancel()
            else:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(asyncio.shield(writer), FLUSH_ON_CLOSE_S)
                writer.cancel()
        with contextlib.suppress(Exception):
            await self.socket.close(code=int(code), reason=reason)

    async def _cleanup(self) -> None:
        self.closed = True
        if self._auth_timer is not None:
            self._auth_timer.cancel()
        # Forget the writer: a cancelled task keeps its CancelledError, whose traceback
        # holds the writer's frame and so this connection; holding the task here would
        # close a cycle, and every socket's objects would wait for a full GC to go.
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.cancel()
        for project_id in list(self.streams):
            with contextlib.suppress(Exception):
                await self._leave(project_id)
        self.realtime.unregister(self)
