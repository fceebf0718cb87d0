"""Events as an async iterator with a bounded buffer (``Client.events``)."""

from __future__ import annotations

import asyncio
import uuid
from collections import deque
from collections.abc import Callable
from typing import Self

from server.client.errors import ClientError, EventsOverflow
from server.realtime import protocol as p


class EventStream:
    """Events as an async iterator, in seq order, each once (``Client.events``).

    The buffer is bounded: a consumer more than ``maxsize`` events behind gets
    the events it has, then :class:`EventsOverflow`, never a silent skip.
    """

    def __init__(
        self,
        project_id: uuid.UUID | None,
        maxsize: int,
        on_close: Callable[[EventStream], None],
    ) -> None:
        self._on_close = on_close
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
        self._on_close(self)
        self.finish(None)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def offer(self, event: p.EventFrame) -> None:
        if self.project_id is not None and event.project_id != self.project_id:
            return
        if len(self._items) >= self.maxsize:
            self._on_close(self)
            self.finish(EventsOverflow(f"more than {self.maxsize} events not consumed"))
            return
        self._items.append(event)
        self._wake.set()

    def finish(self, error: ClientError | None) -> None:
        if not self._ended:
            self._ended, self._error = True, error
            self._wake.set()
