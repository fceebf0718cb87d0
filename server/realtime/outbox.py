"""A connection's bounded outbound queue (docs/architecture.md §3), and writing without a task.

Frames are queued already encoded; a connection's writer task, started with
its first queued frame, drains the queue onto the socket. ``offer`` never
blocks and never drops silently: when the queue is full it says so, and the
caller closes the connection with 4503 so the client resumes with
``last_seq`` and loses nothing.

Most of the time nothing is queued and the socket can take a frame at once:
the connection then writes it in place (under uvicorn straight to the
transport, realtime/wire.py; elsewhere through ASGI ``send``, run by
:func:`start`) instead of queueing it and waking a task, which costs more
than the write itself when one event goes to a thousand sockets. The queue
is for the socket that cannot take a frame now (the transport's buffer is
full: a slow reader).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Generator, Sized
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

DEFAULT_MAX_FRAMES = 1024
DEFAULT_MAX_BYTES = 4 * 1024 * 1024
F = TypeVar("F", bound=Sized)


@dataclass(slots=True)
class Outbox(Generic[F]):
    """At most ``max_frames`` frames and ``max_bytes`` (by ``len``) waiting to be written."""

    max_frames: int = DEFAULT_MAX_FRAMES
    max_bytes: int = DEFAULT_MAX_BYTES
    _frames: deque[F] = field(default_factory=deque)
    _size: int = 0
    _waiter: asyncio.Future[None] | None = None
    _closed: bool = False

    def __len__(self) -> int:
        return len(self._frames)

    @property
    def size(self) -> int:
        """The summed ``len`` of the frames waiting."""
        return self._size

    @property
    def closed(self) -> bool:
        return self._closed

    def offer(self, frame: F) -> bool:
        """Queue ``frame``; False (nothing queued) when the queue is full or closed."""
        if self._closed:
            return False
        if len(self._frames) >= self.max_frames or self._size + len(frame) > self.max_bytes:
            return False
        self._frames.append(frame)
        self._size += len(frame)
        self.wake()
        return True

    def close(self) -> None:
        """No more frames; the writer finishes what is queued, then stops."""
        self._closed = True
        self.wake()

    def wake(self) -> None:
        """Wake the writer waiting in :meth:`wait` (something for it to do)."""
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def take(self) -> F | None:
        """The oldest queued frame, or None when nothing is queued."""
        if not self._frames:
            return None
        frame = self._frames.popleft()
        self._size -= len(frame)
        return frame

    async def wait(self) -> None:
        """Return on the next :meth:`offer`, :meth:`close` or :meth:`wake` (at once if closed)."""
        if self._closed:
            return
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    async def next(self) -> F | None:
        """The next frame to write, waiting for one; None once closed and drained."""
        while (frame := self.take()) is None:
            if self._closed:
                return None
            await self.wait()
        return frame


def start(awaitable: Awaitable[None]) -> Awaitable[None] | None:
    """Run ``awaitable`` here until it first has to wait.

    Returns None when it finished without waiting (a socket write that the
    transport took at once), else an awaitable that finishes it, for a task
    to await. Raises what ``awaitable`` raised before waiting.
    """
    coro = awaitable.__await__()
    try:
        blocked_on = coro.send(None)
    except StopIteration:
        return None
    return _Rest(coro, blocked_on)


class _Rest:
    """The rest of a coroutine that :func:`start` ran up to its first wait.

    Awaited in a task, it hands the task what the coroutine waits on, then
    resumes the coroutine with what the task sends or throws, like ``await``.
    """

    def __init__(self, coro: Generator[Any, Any, None], blocked_on: Any) -> None:
        self._coro = coro
        self._blocked_on = blocked_on

    def __await__(self) -> Generator[Any, Any, None]:
        coro, waiting_on = self._coro, self._blocked_on
        while True:
            try:
                value = yield waiting_on
            except BaseException as exc:  # the task was cancelled: pass it on
                try:
                    waiting_on = coro.throw(exc)
                except StopIteration:
                    return
            else:
                try:
                    waiting_on = coro.send(value)
                except StopIteration:
                    return
