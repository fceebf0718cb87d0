"""The realtime half of the client (PROTOCOL.md 3): one socket, resumed forever.

A background task owns the socket: it connects (bearer token or session
cookie at the handshake, 3.1), waits for ``ready``, joins every project the
caller joined again with the ``last_seq`` its local state reached (3.2), sends
every edit still waiting for an answer (the offline queue: the same ``op_id``
again, so a resent edit is applied once, 3.3), then reads frames until the
socket closes, and reconnects after an exponential backoff with full jitter.
Only a refused credential (4401) or :meth:`Client.close` stops it.

The pure parts live beside it: ``state.py`` (applying snapshot and events
exactly once), ``rebase.py`` (what a conflict turns into), ``backoff.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

import msgspec
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from server.client import rebase
from server.client.backoff import Backoff
from server.client.errors import (
    ClientError,
    Closed,
    EditConflict,
    EventsOverflow,
    QueueFull,
    ServerRefused,
    Unauthorized,
)
from server.client.state import Applied, ProjectState
from server.log import get_logger
from server.realtime import protocol as p

log = get_logger(__name__)
CLOSE_UNAUTHORIZED = 4401  # PROTOCOL.md 3.5: the only close after which retrying is pointless
Id = uuid.UUID | str


@dataclass(frozen=True, slots=True)
class EditResult:
    """A committed edit: the server's ack, plus how many rebases it took."""

    op_id: str
    id: uuid.UUID
    version: int | None
    seq: int
    merged: bool
    rebased: int = 0


@dataclass(slots=True)
class _Pending:
    """An edit waiting for its ack: the caller's intent and the attempt on the wire."""

    edit: p.Edit
    future: asyncio.Future[EditResult]
    rebase: bool = True
    rebased: int = 0
    conflicts: list[p.Conflict] = field(default_factory=list)


class EventStream:
    """Events as an async iterator, in seq order, each once (``Client.events``).

    The buffer is bounded: a consumer more than ``maxsize`` events behind gets
    the events it has, then :class:`EventsOverflow`, never a silent skip.
    """

    def __init__(self, client: Client, project_id: uuid.UUID | None, maxsize: int) -> None:
        self._client = client
        self.project_id = project_id
        self.maxsize = maxsize
        self._items: deque[p.EventFrame] = deque()
        self._wake = asyncio.Event()
        self._ended = False
        self._error: ClientError | None = None

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> p.EventFrame:
        while not self._items:
            if self._ended:
                if self._error is not None:
                    raise self._error
                raise StopAsyncIteration
            self._wake.clear()
            await self._wake.wait()
        return self._items.popleft()

    async def next(self, timeout_s: float) -> p.EventFrame:
        """The next event, or TimeoutError after ``timeout_s`` seconds."""
        return await asyncio.wait_for(self.__anext__(), timeout_s)

    def close(self) -> None:
        """Stop receiving; the iteration ends after what is buffered."""
        self._client._streams.discard(self)
        self._finish(None)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _offer(self, event: p.EventFrame) -> None:
        if self.project_id is not None and event.project_id != self.project_id:
            return
        if len(self._items) >= self.maxsize:
            self._client._streams.discard(self)
            self._finish(EventsOverflow(f"more than {self.maxsize} events not consumed"))
            return
        self._items.append(event)
        self._wake.set()

    def _finish(self, error: ClientError | None) -> None:
        if not self._ended:
            self._ended, self._error = True, error
            self._wake.set()


class Client:
    """A realtime connection of one user that survives disconnects (see the module docstring).

    ``states[project_id]`` is the materialised project (``ProjectState``),
    ``presence[project_id]`` who is there. Use as an async context manager or
    call :meth:`start` and :meth:`close`.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        cookie: str | None = None,
        origin: str | None = None,
        backoff: Backoff | None = None,
        max_pending: int = 1000,
        event_buffer: int = 10_000,
        presence_interval_s: float = 0.05,
        open_timeout_s: float = 10.0,
        max_frame_bytes: int = 64 * 2**20,
    ) -> None:
        if token is None and cookie is None:
            raise ValueError("give a token or a session cookie")
        self.url = (
            base_url.rstrip("/").replace("http://", "ws://", 1).replace("https://", "wss://", 1)
            + "/ws"
        )
        self._headers: dict[str, str] = {}
        if token is not None:
            self._headers["Authorization"] = f"Bearer {token}"
        else:
            self._headers["Cookie"] = f"moodboard_session={cookie}"
        self.origin = origin
        self.backoff = backoff or Backoff()
        self.max_pending = max_pending
        self.event_buffer = event_buffer
        self.presence_interval_s = presence_interval_s
        self.open_timeout_s = open_timeout_s
        self.max_frame_bytes = max_frame_bytes

        self.states: dict[uuid.UUID, ProjectState] = {}
        self.presence: dict[uuid.UUID, dict[str, p.PresenceEntry]] = {}
        self.user: p.UserInfo | None = None
        self.connection_id: str | None = None
        self.connects = 0  # sockets that reached ``ready``; > 1 means it reconnected
        self.duplicates_dropped = 0
        self.gaps = 0
        self.last_close_code: int | None = None
        self.join_modes: dict[uuid.UUID, list[p.JoinMode]] = {}  # each ``joined``'s mode

        self._joined: set[uuid.UUID] = set()  # projects to (re)join on every socket
        self._pending: dict[str, _Pending] = {}
        self._requests: dict[str, asyncio.Future[p.ServerFrame]] = {}
        self._streams: set[EventStream] = set()
        self._presence_latest: dict[uuid.UUID, dict[str, Any]] = {}
        self._presence_sent_at: dict[uuid.UUID, float] = {}
        self._presence_mine: dict[uuid.UUID, dict[str, Any]] = {}  # restored after a rejoin
        self._presence_timers: dict[uuid.UUID, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._refs = itertools.count(1)
        self._ws: ClientConnection | None = None
        self._ready = asyncio.Event()
        self._changed = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._closing = False
        self._failure: ClientError | None = None

    # --- lifecycle -----------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def start(self, *, wait: bool = True) -> None:
        """Start the connection task; with ``wait``, until the first ``ready``.

        Raises:
            Unauthorized: the credentials were refused.
            TimeoutError: no ``ready`` within ``open_timeout_s`` (it keeps trying).
        """
        if self._runner is None:
            self._runner = asyncio.create_task(self._run(), name="moodboard-client")
        if wait:
            await self.wait_ready(self.open_timeout_s)

    async def wait_ready(self, timeout_s: float) -> None:
        """Wait until a socket is authenticated (after a reconnect too)."""
        assert self._runner is not None, "start() first"
        ready = asyncio.ensure_future(self._ready.wait())
        await asyncio.wait(
            {ready, self._runner}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED
        )
        ready.cancel()
        self._raise_if_failed()
        if not self._ready.is_set():
            raise TimeoutError(f"not connected within {timeout_s} s")

    @property
    def connected(self) -> bool:
        """True while a socket is authenticated."""
        return self._ready.is_set()

    async def close(self) -> None:
        """Close the socket (1000) and stop; waiting edits and joins fail with ``Closed``."""
        self._closing = True
        for timer in self._presence_timers.values():
            timer.cancel()
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        for task in list(self._tasks):
            task.cancel()
        self._fail_all(self._failure or Closed("the client was closed"))

    def disconnect(self) -> None:
        """Drop the current socket abruptly (it reconnects and resumes): for tests and tools."""
        if self._ws is not None:
            self._ws.transport.abort()

    # --- projects ------------------------------------------------------------------------------

    async def join(
        self, project_id: Id, *, last_seq: int | None = None, timeout_s: float = 30.0
    ) -> ProjectState:
        """Join a project; returns its state once it is synced to the ``joined`` seq.

        Without ``last_seq`` the server sends a snapshot. With one (a seq the
        caller already processed elsewhere), only later events follow and the
        state holds just what they say (``complete`` is False).

        Raises:
            ServerRefused: ``forbidden`` (no access) or another refusal.
        """
        pid = uuid.UUID(str(project_id))
        state = self.states.get(pid)
        if state is None:
            state = self.states[pid] = ProjectState(pid, seq=last_seq or 0)
        self._joined.add(pid)
        try:
            reply = await self._request(
                p.Join(project_id=pid, last_seq=self._resume_seq(state), ref=_join_ref(pid)),
                timeout_s,
            )
        except BaseException:
            self._joined.discard(pid)
            raise
        assert isinstance(reply, p.Joined)
        await self.wait_for_seq(pid, reply.seq, timeout_s)
        return state

    async def leave(self, project_id: Id, *, timeout_s: float = 10.0) -> None:
        """Stop following a project (its state stays as it was)."""
        pid = uuid.UUID(str(project_id))
        self._joined.discard(pid)
        self._presence_mine.pop(pid, None)
        if self.connected:
            await self._request(p.Leave(project_id=pid, ref=f"leave:{pid}"), timeout_s)

    def events(self, project_id: Id | None = None, *, maxsize: int | None = None) -> EventStream:
        """Applied events from now on (of one project, or all), each once, in seq order."""
        stream = EventStream(
            self,
            None if project_id is None else uuid.UUID(str(project_id)),
            maxsize or self.event_buffer,
        )
        self._streams.add(stream)
        return stream

    async def wait_for_seq(self, project_id: Id, seq: int, timeout_s: float = 30.0) -> None:
        """Wait until the local state of ``project_id`` has applied every event up to ``seq``."""
        pid = uuid.UUID(str(project_id))

        def reached() -> bool:
            state = self.states.get(pid)
            return state is not None and state.seq >= seq

        await self.wait_until(reached, timeout_s)

    async def wait_until(self, condition: Callable[[], bool], timeout_s: float = 30.0) -> None:
        """Wait until ``condition()`` holds; it is checked after every state or connection change.

        Raises:
            TimeoutError: not within ``timeout_s``.
            Closed, Unauthorized: the client stopped first.
        """

        async def wait() -> None:
            while not condition():
                self._raise_if_failed()
                if self._closing:
                    raise Closed("the client was closed")
                await self._changed.wait()

        await asyncio.wait_for(wait(), timeout_s)

    # --- edits ---------------------------------------------------------------------------------

    async def edit(
        self,
        project_id: Id,
        action: p.EditAction,
        entity: p.EditEntity,
        *,
        id: Id | None = None,
        base_version: int | None = None,
        room_id: Id | None = None,
        data: dict[str, Any] | None = None,
        op_id: str | None = None,
        rebase_conflicts: bool = True,
        sync: bool = True,
    ) -> EditResult:
        """Send an edit (queued while offline) and wait for its ack.

        A conflicting update is rebased: the same fields are sent again on the
        current version (``rebase.py``). ``sync`` also waits until the local
        state of a joined project holds the edit's event.

        Raises:
            EditConflict: the conflict could not be rebased (the entity is gone,
                or ``rebase_conflicts`` is False).
            ServerRefused: the server refused the edit (forbidden, bad_request, ...).
            QueueFull: ``max_pending`` edits are already waiting.
        """
        self._raise_if_failed()
        if len(self._pending) >= self.max_pending:
            raise QueueFull(f"{self.max_pending} edits are waiting for an answer")
        pid = uuid.UUID(str(project_id))
        op = op_id or new_op_id()
        message = p.Edit(
            project_id=pid,
            op_id=op,
            ref=op,
            action=action,
            entity=entity,
            id=None if id is None else uuid.UUID(str(id)),
            base_version=base_version,
            room_id=None if room_id is None else uuid.UUID(str(room_id)),
            data=data,
        )
        future: asyncio.Future[EditResult] = asyncio.get_running_loop().create_future()
        pending = _Pending(edit=message, future=future, rebase=rebase_conflicts)
        self._pending[op] = pending
        await self._send_edit(message)
        result = await future
        if sync and pid in self._joined:
            await self.wait_for_seq(pid, result.seq)
        return result

    async def create(
        self,
        project_id: Id,
        entity: p.EditEntity,
        data: dict[str, Any],
        *,
        room_id: Id | None = None,
        id: Id | None = None,
        op_id: str | None = None,
    ) -> EditResult:
        """Create a room or an item (``room_id`` for an item); ``id`` defaults to a new UUID."""
        return await self.edit(
            project_id,
            "create",
            entity,
            id=id or uuid.uuid4(),
            room_id=room_id,
            data=data,
            op_id=op_id,
        )

    async def update(
        self,
        project_id: Id,
        entity: p.EditEntity,
        id: Id,
        data: dict[str, Any],
        *,
        base_version: int | None = None,
        op_id: str | None = None,
        rebase_conflicts: bool = True,
    ) -> EditResult:
        """Set fields; ``base_version`` defaults to the version in the local state."""
        return await self.edit(
            project_id,
            "update",
            entity,
            id=id,
            base_version=base_version or self._local_version(project_id, entity, id),
            data=data,
            op_id=op_id,
            rebase_conflicts=rebase_conflicts,
        )

    async def delete(
        self,
        project_id: Id,
        entity: p.EditEntity,
        id: Id,
        *,
        base_version: int | None = None,
        op_id: str | None = None,
    ) -> EditResult:
        """Delete; ``base_version`` defaults to the version in the local state."""
        return await self.edit(
            project_id,
            "delete",
            entity,
            id=id,
            base_version=base_version or self._local_version(project_id, entity, id),
            op_id=op_id,
        )

    @property
    def pending(self) -> int:
        """Edits sent or queued and not answered yet."""
        return len(self._pending)

    # --- presence and liveness -----------------------------------------------------------------

    def set_presence(self, project_id: Id, state: dict[str, Any]) -> None:
        """Publish this connection's cursor/selection; throttled, the latest state wins."""
        pid = uuid.UUID(str(project_id))
        self._presence_latest[pid] = state
        if pid in self._presence_timers:
            return  # a send is already scheduled; it will carry this latest state
        due = self._presence_sent_at.get(pid, -1e9) + self.presence_interval_s
        delay = max(0.0, due - time.monotonic())
        self._presence_timers[pid] = asyncio.get_running_loop().call_later(
            delay, self._flush_presence, pid
        )

    async def ping(self, timeout_s: float = 10.0) -> float:
        """Round trip of an application ``ping`` in seconds."""
        started = time.monotonic()
        await self._request(p.Ping(ref=f"ping:{next(self._refs)}"), timeout_s)
        return time.monotonic() - started

    # --- the connection task --------------------------------------------------------------------

    async def _run(self) -> None:
        attempt = 0
        while not self._closing:
            try:
                async with connect(
                    self.url,
                    additional_headers=self._headers,
                    origin=self.origin,  # type: ignore[arg-type]
                    open_timeout=self.open_timeout_s,
                    max_size=self.max_frame_bytes,
                    proxy=None,
                ) as ws:
                    self._ws = ws
                    if await self._read(ws):
                        attempt = 0
            except InvalidStatus as exc:
                if exc.response.status_code in (401, 403):
                    self._failure = ClientError(f"the server refused the socket: {exc}")
                    break
                log.info("client.connect_failed", url=self.url, error=str(exc))
            except (OSError, TimeoutError, InvalidHandshake, ConnectionClosed) as exc:
                log.info("client.connect_failed", url=self.url, error=str(exc))
            finally:
                self._ws = None
                self._ready.clear()
                self._notify()
            if self.last_close_code == CLOSE_UNAUTHORIZED:
                self._failure = Unauthorized("the server refused the credentials (4401)")
                break
            if self._closing:
                break
            await asyncio.sleep(self.backoff.delay(attempt))
            attempt += 1
        self._fail_all(self._failure or Closed("the client was closed"))

    async def _read(self, ws: ClientConnection) -> bool:
        """Serve one socket until it closes; True if it got as far as ``ready``."""
        self.last_close_code = None
        got_ready = False
        try:
            async for raw in ws:
                try:
                    frame = p.decode_server(raw)
                except (msgspec.ValidationError, msgspec.DecodeError) as exc:
                    log.warning("client.bad_frame", error=str(exc))
                    continue
                if isinstance(frame, p.Ready):
                    got_ready = True
                await self._dispatch(ws, frame)
        except ConnectionClosed:
            pass
        self.last_close_code = ws.close_code
        return got_ready

    async def _dispatch(self, ws: ClientConnection, frame: p.ServerFrame) -> None:
        if isinstance(frame, p.EventFrame):
            self._on_event(ws, frame)
        elif isinstance(frame, p.Ack):
            self._on_ack(frame)
        elif isinstance(frame, p.Conflict):
            await self._on_conflict(frame)
        elif isinstance(frame, p.Joined):
            self._on_joined(frame)
        elif isinstance(frame, p.PresenceDiff):
            here = self.presence.setdefault(frame.project_id, {})
            for connection_id in frame.leaves:
                here.pop(connection_id, None)
            here.update(frame.joins)
            self._notify()
        elif isinstance(frame, p.Left):
            if frame.reason == "access_revoked":
                self._joined.discard(frame.project_id)
        elif isinstance(frame, p.Ready):
            self.user, self.connection_id = frame.user, frame.connection_id
            if frame.ref is None:  # the handshake's ready: a fresh socket, resume on it
                self.connects += 1
                self._ready.set()
                self._notify()
                await self._resume()
        elif isinstance(frame, p.Error):
            await self._on_error(frame)
        self._answer(frame)

    async def _resume(self) -> None:
        """Join again with ``last_seq``, then resend every unanswered edit in order."""
        for pid in list(self._joined):
            state = self.states[pid]
            await self._send(
                p.Join(project_id=pid, last_seq=self._resume_seq(state), ref=_join_ref(pid))
            )
        for pending in list(self._pending.values()):
            await self._send(pending.edit)

    # --- frames in ------------------------------------------------------------------------------

    def _on_joined(self, frame: p.Joined) -> None:
        state = self.states.setdefault(frame.project_id, ProjectState(frame.project_id))
        self.join_modes.setdefault(frame.project_id, []).append(frame.mode)
        if frame.mode == "snapshot":
            state.load_snapshot(frame.seq, frame.snapshot or {})
        self.presence[frame.project_id] = dict(frame.presence)
        mine = self._presence_mine.get(frame.project_id)
        if mine is not None and frame.project_id not in self._presence_latest:
            # A new socket joined with an empty state: put the cursor back where it was.
            self.set_presence(frame.project_id, mine)
        self._notify()

    def _on_event(self, ws: ClientConnection, event: p.EventFrame) -> None:
        state = self.states.get(event.project_id)
        if state is None or event.project_id not in self._joined:
            return
        outcome = state.apply(event)
        if outcome is Applied.APPLIED:
            for stream in list(self._streams):
                stream._offer(event)
            self._notify()
        elif outcome is Applied.DUPLICATE:
            self.duplicates_dropped += 1
        else:
            # Never build on a hole: drop this socket; the resume asks for last_seq + 1 on.
            self.gaps += 1
            log.warning(
                "client.gap", project_id=str(event.project_id), have=state.seq, got=event.seq
            )
            ws.transport.abort()

    def _on_ack(self, frame: p.Ack) -> None:
        pending = self._pending.pop(frame.op_id, None)
        if pending is None or pending.future.done():
            return
        pending.future.set_result(
            EditResult(
                op_id=frame.op_id,
                id=frame.id,
                version=frame.version,
                seq=frame.seq,
                merged=frame.merged,
                rebased=len(pending.conflicts),
            )
        )

    async def _on_conflict(self, frame: p.Conflict) -> None:
        pending = self._pending.pop(frame.op_id, None)
        if pending is None or pending.future.done():
            return
        decision: rebase.Decision = rebase.Surface("rebasing was not asked for")
        if pending.rebase:
            decision = rebase.decide(
                pending.edit, frame, attempt=pending.rebased, new_op_id=new_op_id()
            )
        if isinstance(decision, rebase.Surface):
            pending.future.set_exception(EditConflict(frame, decision.reason))
            return
        retry = msgspec.structs.replace(decision.edit, ref=decision.edit.op_id)
        pending.edit = retry
        pending.rebased += 1
        pending.conflicts.append(frame)
        self._pending[retry.op_id] = pending
        await self._send_edit(retry)

    async def _on_error(self, frame: p.Error) -> None:
        pending = None if frame.ref is None else self._pending.get(frame.ref)
        if pending is None:
            if frame.ref is None:
                log.info("client.error", code=frame.code, message=frame.message)
            elif frame.ref.startswith("join:"):
                self._joined.discard(uuid.UUID(frame.ref.removeprefix("join:")))
            return
        if frame.code == "rate_limited":
            # Not applied: send it again after a pause (same op_id, so at most once).
            asyncio.get_running_loop().call_later(
                self.backoff.ceiling(1), lambda: self._spawn(self._send_edit(pending.edit))
            )
            return
        del self._pending[frame.ref or ""]
        if not pending.future.done():
            pending.future.set_exception(ServerRefused(frame))

    def _answer(self, frame: p.ServerFrame) -> None:
        ref = getattr(frame, "ref", None)
        if ref is None:
            return
        future = self._requests.pop(ref, None)
        if future is not None and not future.done():
            if isinstance(frame, p.Error):
                future.set_exception(ServerRefused(frame))
            else:
                future.set_result(frame)

    # --- frames out -----------------------------------------------------------------------------

    async def _send(self, message: p.ClientFrame) -> bool:
        """Send if a socket is ready; False when offline (the resume sends it later)."""
        ws = self._ws
        if ws is None or not self._ready.is_set():
            return False
        try:
            await ws.send(p.encode_client(message).decode())
        except ConnectionClosed:
            return False
        return True

    async def _send_edit(self, edit: p.Edit) -> None:
        if edit.op_id in self._pending:
            await self._send(edit)

    async def _request(self, message: p.ClientFrame, timeout_s: float) -> p.ServerFrame:
        """Send a frame with a ref; wait for the reply carrying it (sent on connect if offline)."""
        self._raise_if_failed()
        assert message.ref is not None
        future: asyncio.Future[p.ServerFrame] = asyncio.get_running_loop().create_future()
        self._requests[message.ref] = future
        try:
            if not await self._send(message) and not isinstance(message, p.Join):
                await self.wait_ready(timeout_s)
                await self._send(message)
            return await asyncio.wait_for(future, timeout_s)
        finally:
            self._requests.pop(message.ref, None)

    def _flush_presence(self, pid: uuid.UUID) -> None:
        self._presence_timers.pop(pid, None)
        state = self._presence_latest.pop(pid, None)
        if state is None or pid not in self._joined:
            return
        self._presence_sent_at[pid] = time.monotonic()
        self._presence_mine[pid] = state
        self._spawn(self._send(p.Presence(project_id=pid, state=state)))

    # --- helpers --------------------------------------------------------------------------------

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def _resume_seq(self, state: ProjectState) -> int | None:
        return state.seq if state.complete or state.seq > 0 else None

    def _local_version(self, project_id: Id, entity: str, id: Id) -> int:
        state = self.states.get(uuid.UUID(str(project_id)))
        version = None if state is None else state.version_of(entity, uuid.UUID(str(id)))
        if version is None:
            raise ValueError(f"{entity} {id} is not in the local state; pass base_version")
        return version

    def _raise_if_failed(self) -> None:
        if self._failure is not None:
            raise self._failure
        if self._runner is not None and self._runner.done() and not self._closing:
            raise Closed("the connection task ended")

    def _fail_all(self, error: ClientError) -> None:
        for pending in self._pending.values():
            if not pending.future.done():
                pending.future.set_exception(error)
        self._pending.clear()
        for future in self._requests.values():
            if not future.done():
                future.set_exception(error)
        for stream in list(self._streams):
            stream._finish(None if isinstance(error, Closed) else error)
        self._streams.clear()
        self._notify()


def new_op_id() -> str:
    """A fresh client operation id (PROTOCOL.md 3.3: at most 64 characters)."""
    return f"c-{uuid.uuid4().hex}"


def _join_ref(project_id: uuid.UUID) -> str:
    return f"join:{project_id}"
