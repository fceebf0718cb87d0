"""uvicorn's WebSocket protocol, keeping only what an open socket needs (idle memory).

An idle joined socket costs the server what its objects hold for as long as
it is open. uvicorn's websockets-sansio protocol, as it is, holds there:

- the handshake's ``Request`` and ``Response`` (``websockets``), with their
  headers, though nothing reads them after the upgrade was answered;
- an ``asyncio.Queue`` for the app's ``receive`` and an ``asyncio.Event`` for
  write flow control: four ``collections.deque`` between them, each of which
  allocates a block of 64 slots up front (about 760 bytes apiece), for a queue
  that holds one message at a time (uvicorn stops reading until the app took it);
- more instance attributes than CPython shares a dictionary's keys for (30),
  so each protocol has a whole dictionary of its own (about 1.6 KiB).

:class:`LeanWebSocketProtocol` lets go of the handshake once it is answered,
and has a small queue and flag with the same behaviour in their place; the
attributes that uvicorn sets after ``__init__`` or that are replaced here are
slots. Together about 7 KiB per socket (docs/performance.md "Idle memory").
uvicorn's own code runs unchanged: only what it calls ``self.queue``,
``self.writable`` and ``self.receive`` are ours.

And a closed socket's ``websockets`` connection goes the moment the socket
is lost. Its parser is a generator that holds the connection (``self`` in its
frame) and waits for more data, or, after a close, for an end of stream that
uvicorn never hands it, and even then stays suspended: connection and parser
are a reference cycle (with the reader and the frames last parsed) that only
a full garbage collection frees. Under steady joins and leaves they piled up
between collections, about 15,000 blocks and 1 MiB more after each (the
soak, docs/benchmarks.md "Session 11"). Nothing reads from a lost
connection, so :meth:`LeanWebSocketProtocol.connection_lost` closes the
parser, which ends the cycle.
"""

from __future__ import annotations

import asyncio
from typing import Any, Generic, TypeVar

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

T = TypeVar("T")


class ReceiveQueue(Generic[T]):
    """The app's incoming messages, in order: what uvicorn needs of an ``asyncio.Queue``.

    Unbounded like uvicorn's (uvicorn bounds it: it stops reading the socket
    while a message waits). The list of messages is made on the first one
    that has to wait, and dropped when the queue is empty again.
    """

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: list[T] | None = None
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: T) -> None:
        if self._items is None:
            self._items = [item]
        else:
            self._items.append(item)
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items) if self._items else 0

    def get_nowait(self) -> T:
        """The oldest message; ``asyncio.QueueEmpty`` when there is none."""
        items = self._items
        if not items:
            raise asyncio.QueueEmpty
        item = items.pop(0)
        if not items:
            self._items = None
        return item

    def arrival(self) -> asyncio.Future[None]:
        """A future done at the next ``put_nowait`` (one waiter at a time: the socket's app)."""
        waiter = self._waiter
        if waiter is None or waiter.done():
            waiter = self._waiter = asyncio.get_running_loop().create_future()
        return waiter

    async def get(self) -> T:
        """The oldest message, once there is one."""
        while not self._items:
            await self.arrival()
        return self.get_nowait()


class WritableFlag:
    """Whether the transport takes more data now: what uvicorn needs of an ``asyncio.Event``.

    Set while the transport is not paused; ``wait`` returns once it is set.
    The list of waiters exists only while someone waits (a slow reader).
    """

    __slots__ = ("_set", "_waiters")

    def __init__(self) -> None:
        self._set = False
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        if self._set:
            return
        self._set = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> bool:
        if self._set:
            return True
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = [waiter]
        else:
            self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if self._waiters is not None and waiter in self._waiters:
                self._waiters.remove(waiter)
        return True


class LeanWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets-sansio protocol, with less kept per open socket (see the module)."""

    # uvicorn's attributes that are slots here: the ones replaced, and the ones it
    # sets after __init__ (so the rest stay few enough to share their keys).
    __slots__ = (
        "close_timer",
        "curr_msg_data_type",
        "frames",
        "initial_response",
        "last_ping_rtt",
        "pending_ping_payload",
        "ping_sent_at",
        "ping_timer",
        "pong_timer",
        "queue",
        "request",
        "response",
        "scope",
        "writable",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = ReceiveQueue()  # type: ignore[assignment]
        self.writable = WritableFlag()  # type: ignore[assignment]
        self.writable.set()

    async def receive(self) -> Any:
        """uvicorn's ``receive``, waiting in this coroutine alone (not in a queue's as well)."""
        queue: ReceiveQueue[Any] = self.queue  # type: ignore[assignment]
        while queue.empty():
            await queue.arrival()
        message = queue.get_nowait()
        if self.read_paused and queue.empty():
            self.read_paused = False
            self.transport.resume_reading()
        return message

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        # No data comes after this (uvicorn calls data_received no more): close the
        # parser, a generator holding the connection, to end their cycle (see above).
        self.conn.parser.close()

    def start_keepalive(self) -> None:
        # uvicorn calls this once the upgrade's answer is written: nothing reads the
        # handshake's request and response after that.
        self.request = None  # type: ignore[assignment]
        self.response = None  # type: ignore[assignment]
        super().start_keepalive()
