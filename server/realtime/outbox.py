"""A connection's bounded outbound queue (docs/architecture.md §3).

Frames are queued already encoded; a connection's writer task, started with
its first queued frame, drains the queue onto the socket. ``offer`` never
blocks and never drops silently: when the queue is full it says so, and the
caller closes the connection with 4503 so the client resumes with
``last_seq`` and loses nothing.

Under uvicorn most frames never come here: the connection hands them straight
to the transport (transport/wire.py). The queue is for the socket that cannot
take a frame now (the transport's buffer is full: a slow reader), and for
every frame under any other server (the test client, hypercorn), where the
writer task's ASGI ``send`` writes them.

So most sockets' queues stay empty all their lives: the deque (a block of 64
slots, about 760 bytes, even when empty) is made for the first queued frame
and dropped when the queue is empty again (docs/performance.md "Idle memory").
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sized
from dataclasses import dataclass
from typing import Generic, TypeVar

DEFAULT_MAX_FRAMES = 1024
DEFAULT_MAX_BYTES = 4 * 1024 * 1024
F = TypeVar("F", bound=Sized)


@dataclass(slots=True)
class Outbox(Generic[F]):
    """At most ``max_frames`` frames and ``max_bytes`` (by ``len``) waiting to be written."""

    max_frames: int = DEFAULT_MAX_FRAMES
    max_bytes: int = DEFAULT_MAX_BYTES
    _frames: deque[F] | tuple[()] = ()  # () while empty (see above)
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
        frames = self._frames
        if len(frames) >= self.max_frames or self._size + len(frame) > self.max_bytes:
            return False
        if not isinstance(frames, deque):
            frames = self._frames = deque()
        frames.append(frame)
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
        frames = self._frames
        if not frames:
            return None
        assert isinstance(frames, deque)
        frame = frames.popleft()
        self._size -= len(frame)
        if not frames:
            self._frames = ()
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
