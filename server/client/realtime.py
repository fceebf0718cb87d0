"""The realtime half of the client (docs/protocol.md §3): one socket, resumed forever.

A background task owns the socket: it connects (bearer token or session
cookie at the handshake, 3.1), waits for ``ready``, joins every project the
caller joined again with the ``last_seq`` its local state reached (3.2), sends
every edit still waiting for an answer (the offline queue: the same ``op_id``
again, so a resent edit is applied once, 3.3), then reads frames until the
socket closes, and reconnects after an exponential backoff with full jitter.
Only a refused credential (4401) or :meth:`Client.close` stops it.

The parts without I/O live beside it: ``state.py`` (snapshot and events
applied exactly once), ``pending.py`` and ``rebase.py`` (unanswered edits and
what a conflict turns into), ``presence.py`` (the throttle), ``stream.py``
(the events iterator) and ``backoff.py``; the edit calls are in ``edits.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
import uuid
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

import msgspec
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from server.client.edits import EditMethods, Id
from server.client.errors import (
    ClientError,
    Closed,
    ServerRefused,
    Unauthorized,
)
from server.client.pending import PendingEdits
from server.client.presence import PresenceThrottle
from server.client.state import Applied, ProjectState
from server.client.stream import EventStream
from server.concurrency.backoff import Backoff
from server.log import get_logger
from server.realtime import protocol as p
from server.tasks import spawn

log = get_logger(__name__)
CLOSE_UNAUTHORIZED = 4401  # docs/protocol.md §5: the only close after which retrying is pointless


class Client(EditMethods):
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
        max_rebases: int = 5,
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
        self.event_buffer = event_buffer
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
        self.revoked: set[uuid.UUID] = set()  # projects the server made us leave (3.2)

        self._joined: set[uuid.UUID] = set()  # projects to (re)join on every socket
        self._edits = PendingEdits(max_pending, max_rebases=max_rebases)
        self._requests: dict[str, asyncio.Future[p.ServerFrame]] = {}
        self._streams: set[EventStream] = set()
        self._presence = PresenceThrottle(presence_interval_s, self._send_presence)
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
        try:
            await self.start()
        except BaseException:
            await self.close()  # no connection task left running behind a failed start
            raise
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
        self._presence.cancel()
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
            ClientError: the project is already joined (leave it first).
        """
        pid = uuid.UUID(str(project_id))
        if pid in self._joined:
            raise ClientError(f"project {pid} is already joined; leave it first")
        self.revoked.discard(pid)
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
        self._presence.forget(pid)
        if self.connected:
            await self._request(p.Leave(project_id=pid, ref=f"leave:{pid}"), timeout_s)

    def events(self, project_id: Id | None = None, *, maxsize: int | None = None) -> EventStream:
        """Applied events from now on (of one project, or all), each once, in seq order."""
        stream = EventStream(
            None if project_id is None else uuid.UUID(str(project_id)),
            maxsize or self.event_buffer,
            self._streams.discard,
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

    # --- presence and liveness -----------------------------------------------------------------

    def set_presence(self, project_id: Id, state: dict[str, Any]) -> None:
        """Publish this connection's cursor/selection; throttled, the latest state wins."""
        self._presence.set(uuid.UUID(str(project_id)), state)

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
            self._edits.acked(frame)
        elif isinstance(frame, p.Conflict):
            retry = self._edits.conflicted(frame)
            if retry is not None:
                await self._send_edit(retry)
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
                self.revoked.add(frame.project_id)
                self._notify()
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
        for edit in self._edits.unanswered():
            await self._send(edit)

    # --- frames in ------------------------------------------------------------------------------

    def _on_joined(self, frame: p.Joined) -> None:
        state = self.states.setdefault(frame.project_id, ProjectState(frame.project_id))
        self.join_modes.setdefault(frame.project_id, []).append(frame.mode)
        # Decoded frames hold JSON objects (a server sends them encoded once, as msgspec.Raw).
        snapshot, presence = frame.snapshot, frame.presence
        assert not isinstance(snapshot, msgspec.Raw)
        assert not isinstance(presence, msgspec.Raw)
        if frame.mode == "snapshot":
            state.load_snapshot(frame.seq, snapshot or {})
        self.presence[frame.project_id] = dict(presence)
        self._presence.restore(frame.project_id)  # a new socket's presence starts empty
        self._notify()

    def _on_event(self, ws: ClientConnection, event: p.EventFrame) -> None:
        state = self.states.get(event.project_id)
        if state is None or event.project_id not in self._joined:
            return
        outcome = state.apply(event)
        if outcome is Applied.APPLIED:
            for stream in list(self._streams):
                stream.offer(event)
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

    async def _on_error(self, frame: p.Error) -> None:
        if frame.ref is not None and frame.ref in self._edits:
            again = self._edits.refused(frame)
            if again is not None:  # rate limited, not applied: the same op_id after a pause
                asyncio.get_running_loop().call_later(
                    self.backoff.ceiling(1), lambda: self._spawn(self._send_edit(again))
                )
        elif frame.ref is None:
            log.info("client.error", code=frame.code, message=frame.message)
        elif frame.ref.startswith("join:"):
            self._joined.discard(uuid.UUID(frame.ref.removeprefix("join:")))

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

    def _send_presence(self, pid: uuid.UUID, state: dict[str, Any]) -> None:
        if pid in self._joined:
            self._spawn(self._send(p.Presence(project_id=pid, state=state)))

    # --- helpers --------------------------------------------------------------------------------

    def _spawn(self, coro: Any) -> None:
        spawn(coro, name="moodboard-client-send", keep_in=self._tasks)

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def _resume_seq(self, state: ProjectState) -> int | None:
        return state.seq if state.complete or state.seq > 0 else None

    def _raise_if_failed(self) -> None:
        if self._failure is not None:
            raise self._failure
        if self._runner is not None and self._runner.done() and not self._closing:
            raise Closed("the connection task ended")

    def _fail_all(self, error: ClientError) -> None:
        self._edits.fail_all(error)
        for future in self._requests.values():
            if not future.done():
                future.set_exception(error)
        for stream in list(self._streams):
            stream.finish(None if isinstance(error, Closed) else error)
        self._streams.clear()
        self._notify()


def _join_ref(project_id: uuid.UUID) -> str:
    return f"join:{project_id}"
