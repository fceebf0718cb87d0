"""One socket at work: it pumps frames through the state machine and runs its effects.

The reader loop decodes each frame and feeds ``SocketStateMachine``
(socket_state.py); the effects it returns are carried out here (sending,
authenticating, joining (join.py), leaving, presence). Under uvicorn, the
frames a socket is sent are held and go to its transport together, in one
write, at the next write round (write_rounds.py, transport/wire.py): the end of this
turn of the event loop, or, while frames are dense, up to
MOODBOARD_WRITE_DELAY_US later, and once writing takes more than its share
of the loop, up to 20 ms later (write_budget.py). Under load a socket then
costs one system call for several events. Frames a socket cannot take now (a slow reader) go
into the bounded outbox that a writer task drains onto the socket; when the
outbox is full the socket closes with 4503 (the client resumes with
``last_seq``), never an unbounded queue, never a silent drop.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable
from typing import Any

from litestar import WebSocket

from server import metrics
from server.access.principal import Principal
from server.access.sessions import authenticate
from server.db.database import Database
from server.delivery.stream import OVERFLOW, SEND, JoinedStream
from server.errors import CloseCode, ServerError
from server.log import get_logger, swallowed
from server.projects import edits
from server.projects.edits import EditRequest
from server.realtime import handover
from server.realtime import protocol as p
from server.realtime.hub import Realtime
from server.realtime.join import join
from server.realtime.outbox import Outbox
from server.realtime.socket_state import (
    ApplyEdit,
    Authenticate,
    Close,
    Effect,
    JoinProject,
    LeaveProject,
    Send,
    SetPresence,
    SocketStateMachine,
)
from server.tasks import spawn
from server.transport.wire import DirectWriter, Outgoing
from server.types import UserId

log = get_logger(__name__)
FLUSH_ON_CLOSE_S = 1.0
EDIT_FAILED = "the edit was not applied (a server error); send it again with the same op_id"
# The most a close frame may wait for a peer that stopped reading (its transport full):
# then the connection is aborted. uvicorn's own send would wait for ever. A slow reader
# closed 4503 has this long to read its backlog and the close; a drain gives each close
# less (DRAIN_CLOSE_DEADLINE_S), so that the whole stop fits in docs/protocol.md §1's 10 s.
CLOSE_DEADLINE_S = 10.0
DRAIN_CLOSE_DEADLINE_S = 2.0
MAX_HELD_FRAMES = 64  # frames held for one write at the next write round, at most


def _wire_of(frame: p.ServerFrame) -> Outgoing:
    return Outgoing(p.encode(frame))


class Connection:
    """The server side of one WebSocket."""

    # Slots: thousands of idle sockets each keep one (docs/performance.md "Idle memory").
    __slots__ = (
        "_auth_timer",
        "_direct",
        "_held",
        "_next_round",
        "_send",
        "_writer",
        "_writing",
        "closed",
        "database",
        "machine",
        "outbox",
        "realtime",
        "session_ttl_s",
        "socket",
        "streams",
    )

    def __init__(
        self,
        socket: WebSocket[Any, Any, Any],
        machine: SocketStateMachine,
        realtime: Realtime,
        *,
        database: Database,
        session_ttl_s: int,
        outbox_frames: int,
    ) -> None:
        self.socket = socket
        self.machine = machine
        self.realtime = realtime
        self.database = database
        self.session_ttl_s = session_ttl_s
        self.outbox: Outbox[Outgoing] = Outbox(max_frames=outbox_frames)
        self.streams: dict[uuid.UUID, JoinedStream[Outgoing]] = {}
        self.closed = False
        self._writer: asyncio.Task[None] | None = None
        self._send = socket.send  # the ASGI send, below Litestar's send_text helpers
        self._direct = DirectWriter.for_scope(socket.scope)  # None: not under uvicorn
        self._held: list[Outgoing] = []  # for the transport at the next write round
        self._next_round = realtime.write_rounds.add
        self._writing = False  # the writer task is writing a queued frame
        self._auth_timer: asyncio.TimerHandle | None = None

    @property
    def id(self) -> str:
        return self.machine.connection_id

    @property
    def user(self) -> p.UserInfo | None:
        return self.machine.user

    @property
    def user_id(self) -> uuid.UUID | None:
        return None if self.machine.user is None else self.machine.user.id

    @property
    def session_id(self) -> uuid.UUID | None:
        return self.machine.session_id

    # --- the pump -------------------------------------------------------------------------

    async def run(self, handshake: Principal | None, handshake_failed: bool) -> None:
        """Serve the socket until it closes (it is already accepted)."""
        try:
            await self._start(handshake, handshake_failed)
            while not self.closed:
                message = await self.socket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                effects = self._effects_of(message, time.monotonic())
                # Neither is kept while the socket waits for its next frame, maybe for hours.
                del message
                await self.execute(effects)
                del effects
        finally:
            await self._cleanup()

    async def _start(self, handshake: Principal | None, handshake_failed: bool) -> None:
        if handshake_failed:
            await self.execute(self.machine.authentication_failed())
        elif handshake is not None:
            await self._authenticated(handshake, None)
        else:
            loop = asyncio.get_running_loop()
            self._auth_timer = loop.call_later(
                self.machine.limits.auth_timeout_s,
                lambda: self.realtime.spawn(self.execute(self.machine.auth_deadline())),
            )

    def _effects_of(self, message: Any, now: float) -> list[Effect]:
        """What the state machine makes of a received ASGI message."""
        text = message.get("text")
        if not isinstance(text, str):
            return self.machine.receive_invalid(p.binary_frame_error(), now)
        try:
            frame = p.decode(text)
        except p.ProtocolError as exc:
            return self.machine.receive_invalid(exc, now)
        metrics.received(frame)
        return self.machine.receive(frame, now)

    async def execute(self, effects: list[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, Send):
                self.send_frame(effect.frame)
            elif isinstance(effect, Close):
                await self.close(effect.code, effect.reason)
            elif isinstance(effect, Authenticate):
                principal = await authenticate(
                    self.database, effect.token, ttl_s=self.session_ttl_s, via="bearer"
                )
                if principal is None:
                    await self.execute(self.machine.authentication_failed())
                else:
                    await self._authenticated(principal, effect.ref)
            elif isinstance(effect, JoinProject):
                await join(self, effect.project_id, effect.last_seq, effect.ref)
            elif isinstance(effect, LeaveProject):
                await self.leave(effect.project_id)
                self.send_frame(p.Left(ref=effect.ref, project_id=effect.project_id))
            elif isinstance(effect, SetPresence):
                self.realtime.presence.update(self, effect.project_id, effect.state)
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
                self.database, self.realtime, UserId(self.user_id), request, want_entity=False
            )
        except ServerError as exc:
            self.send_frame(p.Error(ref=edit.ref, code=exc.code, message=exc.detail))
            return
        except Exception:  # nothing was written (the transaction rolled back): say so, keep going
            log.exception("ws.edit_failed", connection_id=self.id, project_id=str(edit.project_id))
            self.send_frame(p.Error(ref=edit.ref, code="internal", message=EDIT_FAILED))
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
        if self.machine.user is None and not self.realtime.sockets.register(
            self, principal.user_id
        ):
            await self.close(CloseCode.RATE_LIMITED, "too many sockets for this user")
            return
        await self.execute(self.machine.authenticated(user, principal.session_id, ref))

    # --- output ---------------------------------------------------------------------------

    @property
    def buffered_bytes(self) -> int:
        """Bytes sent to this socket still in this process: its outbox, its transport's buffer."""
        return self.outbox.size + (0 if self._direct is None else self._direct.buffered())

    def send_frame(self, frame: p.ServerFrame) -> None:
        metrics.sent(frame)
        self.send(_wire_of(frame))

    def send(self, frame: Outgoing) -> bool:
        """Write a frame, or queue it; a full outbox closes the socket with 4503 (it resumes).

        Returns False when the socket is closed (nothing written or queued).
        """
        if self.closed:
            return False
        if self._direct is not None and not self._writing and not len(self.outbox):
            # Nothing ahead of it (order kept): held for the transport, no task to wake.
            if not self._held:
                self._next_round(self)
            self._held.append(frame)
            if len(self._held) >= MAX_HELD_FRAMES:  # a long replay: no need to hold it all
                self.write_held()
            return True
        self._queue(frame)
        return True

    def write_held(self) -> None:
        """Write the frames held since the last write round, in one go (the round calls it)."""
        held = self._held  # emptied in place: no new list per socket and turn (GC)
        if not held:
            return
        if self.closed or self._direct is None:
            held.clear()
            return
        data = held[0].wire if len(held) == 1 else b"".join([f.wire for f in held])
        if self._direct.write(data):
            held.clear()
            return
        # The transport is paused (or closing): the writer's ASGI send waits for it.
        frames = held[:]
        held.clear()
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
            self._writer = spawn(self._write_loop(), name=f"ws-writer-{self.id}")
        else:
            self.outbox.wake()

    def _write(self, frame: Outgoing) -> Awaitable[None]:
        return self._send({"type": "websocket.send", "bytes": None, "text": frame.text})

    def deliver_presence(self, project_id: uuid.UUID, frame: Outgoing) -> bool:
        """A presence diff; returns whether it went to the socket now."""
        stream = self.streams.get(project_id)
        if stream is None:
            return False
        verdict = stream.presence(frame)
        if verdict is SEND:
            return self.send(frame)
        if verdict is OVERFLOW:
            handover.act(self, project_id, stream, verdict)
        return False

    async def _write_loop(self) -> None:
        """Write the queued frames onto the socket, in order, until the outbox closes."""
        with swallowed(log, "ws.writer_stopped", connection_id=self.id):  # the peer is gone
            while True:
                frame = self.outbox.take()
                if frame is not None:
                    self._writing = True
                    await self._write(frame)
                    self._writing = False
                elif self.outbox.closed:
                    return
                else:
                    await self.outbox.wait()

    # --- leaving ------------------------------------------------------------------------

    async def leave(self, project_id: uuid.UUID) -> None:
        """Stop following the project and leave its presence (the frame is the caller's)."""
        self.machine.left(project_id)
        stream = self.streams.pop(project_id, None)
        if stream is None:
            return
        stream.end()  # nothing more of the project reaches the socket, whatever is in flight
        # The bus may be down: the socket has left all the same (its stream ended), and
        # a presence entry left behind expires with this instance's heartbeat.
        with swallowed(log, "ws.unfollow_failed", level=logging.INFO, connection_id=self.id):
            await self.realtime.unsubscribe(self, project_id)
        with swallowed(log, "ws.presence_exit_failed", level=logging.INFO, connection_id=self.id):
            await self.realtime.presence.exit(self, project_id)

    async def revoke(self, project_id: uuid.UUID) -> None:
        """The user lost access while joined: ``left`` with reason access_revoked."""
        if project_id in self.streams:
            await self.leave(project_id)
            self.send_frame(p.Left(project_id=project_id, reason="access_revoked"))

    async def session_ended(self, revoked: set[uuid.UUID]) -> None:
        await self.execute(self.machine.session_revoked(revoked))

    # --- closing ------------------------------------------------------------------------

    async def close(
        self, code: CloseCode, reason: str, *, deadline_s: float = CLOSE_DEADLINE_S
    ) -> None:
        """Close the socket with ``code`` (once), within ``deadline_s`` whatever the peer does.

        Frames already queued (an error explaining the close, say) are written
        first, for at most ``FLUSH_ON_CLOSE_S``; a client too slow to keep up
        (4503) gets no such grace: its queue is what is wrong. A close frame
        that cannot be written by the deadline (the peer stopped reading) is
        given up and the connection aborted.
        """
        if self.closed:
            return
        self.write_held()  # what was sent before the close goes first (an error explaining it)
        self.machine.close(code, reason)
        metrics.closed(int(code))
        self.closed = True
        self.outbox.close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + deadline_s
        writer = self._writer
        if writer is not None:
            if code is CloseCode.TOO_SLOW:
                writer.cancel()
            else:
                # A slow or gone peer: the close goes on without the flush.
                with swallowed(log, "ws.flush_on_close_failed", connection_id=self.id):
                    flush_s = min(FLUSH_ON_CLOSE_S, deadline_s / 2)
                    await asyncio.wait_for(asyncio.shield(writer), flush_s)
                writer.cancel()
        try:
            left = max(deadline - loop.time(), 0.0)
            await asyncio.wait_for(self.socket.close(code=int(code), reason=reason), left)
        except TimeoutError:
            log.info("ws.close_aborted", connection_id=self.id, code=int(code))
            metrics.CLOSES_ABORTED.inc()
            if self._direct is not None:
                self._direct.abort()
        except Exception as exc:  # the peer is gone
            log.debug("ws.close_failed", connection_id=self.id, error=repr(exc))

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
            # The bus may be down: presence entries then expire with the instance's TTL.
            with swallowed(log, "ws.leave_failed", level=logging.INFO, connection_id=self.id):
                await self.leave(project_id)
        self.realtime.sockets.unregister(self)
