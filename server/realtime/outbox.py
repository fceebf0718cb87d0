"""A connection's bounded outbound queue (DESIGN.md "delivery path").

Frames are queued as already-encoded text; one writer task per connection
drains the queue onto the socket. ``offer`` never blocks and never drops
silently: when the queue is full it says so, and the caller closes the
connection with 4503 so the client resumes with ``last_seq`` and loses nothing.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field

DEFAULT_MAX_FRAMES = 1024
DEFAULT_MAX_BYTES = 4 * 1024 * 1024


@dataclass(slots=True)
class Outbox:
    """At most ``max_frames`` frames and ``max_bytes`` characters waiting to be written."""

    max_frames: int = DEFAULT_MAX_FRAMES
    max_bytes: int = DEFAULT_MAX_BYTES
    _frames: deque[str] = field(default_factory=deque)
    _size: int = 0
    _ready: asyncio.Event = field(default_factory=asyncio.Event)
    _closed: bool = False

    def __len__(self) -> int:
        return len(self._frames)

    @property
    def size(self) -> int:
        """Characters waiting."""
        return self._size

    @property
    def closed(self) -> bool:
        return self._closed

    def offer(self, frame: str) -> bool:
        """Queue ``frame``; False (nothing queued) when the queue is full or closed."""
        if self._closed:
            return False
        if len(self._frames) >= self.max_frames or self._size + len(frame) > self.max_bytes:
            return False
        self._frames.append(frame)
        self._size += len(frame)
        self._ready.set()
        return True

    def close(self) -> None:
        """No more frames; the writer finishes what is queued, then stops."""
        self._closed = True
        self._ready.set()

    async def next(self) -> str | None:
        """The next frame to write, waiting for one; None once closed and drained."""
        while not self._frames:
            if self._closed:
                return None
            self._ready.clear()
            await self._ready.wait()
        frame = self._frames.popleft()
        self._size -= len(frame)
        return frame
