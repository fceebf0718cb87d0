"""The broker seam: an in-process bus (embedded mode) or Redis pub/sub (REDIS_URL).

Backends move bytes only: ``publish(channel, payload)``; ``subscribe`` and
``unsubscribe`` per channel; every received payload goes to the one
``on_message`` callback the hub installs. The hub subscribes upstream on a
project's first local subscriber and unsubscribes on its last (as
encode/broadcaster does). Redis may drop messages or restart: that may delay an
event, never lose it, because the receiving side fills gaps from the event
log (``on_reconnect`` tells it when to look).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from server import metrics
from server.concurrency.backoff import Backoff
from server.log import get_logger, swallowed
from server.tasks import spawn

log = get_logger(__name__)
OnMessage = Callable[[str, bytes], None]
OnReconnect = Callable[[], Coroutine[Any, Any, None]]
RECONNECT_BACKOFF = Backoff(base_s=0.05, cap_s=5.0)


class BrokerUnavailable(RuntimeError):
    """The broker did not confirm a subscription in time (Redis down?)."""


class Broker(Protocol):
    """Moves payloads between instances (or within one)."""

    on_message: OnMessage | None
    on_reconnect: OnReconnect | None

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def subscribe(self, channel: str) -> None: ...
    async def unsubscribe(self, channel: str) -> None: ...
    async def publish(self, channel: str, payload: bytes) -> None: ...


class MemoryBroker:
    """One process, no network: publishing calls the subscribers' callback directly."""

    def __init__(self) -> None:
        self.on_message: OnMessage | None = None
        self.on_reconnect: OnReconnect | None = None
        self._channels: set[str] = set()

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        self._channels.clear()

    async def subscribe(self, channel: str) -> None:
        self._channels.add(channel)

    async def unsubscribe(self, channel: str) -> None:
        self._channels.discard(channel)

    async def publish(self, channel: str, payload: bytes) -> None:
        if channel in self._channels and self.on_message is not None:
            self.on_message(channel, payload)


def _retrieve(future: asyncio.Future[None]) -> None:
    """Mark a batch's error as seen: its callers may all have given up waiting."""
    if not future.cancelled():
        future.exception()


class RedisBroker:
    """Redis pub/sub: one subscriber connection per instance, one reader task.

    ``subscribe`` returns once Redis confirmed the subscription, so a caller
    that subscribes and then reads the database cannot miss an event
    published after that read. When the connection drops, the reader
    reconnects after a backoff with full jitter (every instance lost the same
    Redis: they must not come back in one wave), subscribes again to every channel and calls
    ``on_reconnect`` (events published meanwhile must come from the log).

    Publishes are sent in batches: every ``publish`` made while the previous
    batch is on its way (or in the same turn of the event loop) goes out in
    the next pipeline, in call order, and each caller returns when its batch
    is sent (or raises its error). Under load that is one write and one read
    for many events instead of one each; alone, a publish waits for nothing.
    The batch is bounded by its waiting callers: each caller has one publish
    in it at most.

    Callers name channels without ``MOODBOARD_REDIS_PREFIX``: the broker puts
    it before them on the wire and takes it off what it receives.
    """

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        backoff: Backoff = RECONNECT_BACKOFF,
        confirm_timeout_s: float = 5.0,
        prefix: str = "",
    ) -> None:
        self.on_message: OnMessage | None = None
        self.on_reconnect: OnReconnect | None = None
        self.reconnects = 0
        self._client = client
        self._backoff = backoff
        self._confirm_timeout_s = confirm_timeout_s
        self._prefix = prefix  # on the wire only: callers name channels without it
        self._channels: set[str] = set()  # with the prefix
        self._pending: dict[str, list[asyncio.Future[None]]] = {}
        self._subscribing = 0  # subscribe commands on their way (not yet in pubsub.subscribed)
        self._incomplete = False  # the last resubscription failed partway
        self._pubsub: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._outgoing: list[tuple[str, bytes]] = []
        self._outgoing_sent: asyncio.Future[None] | None = None
        self._sender: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._pubsub = self._client.pubsub()
        self._reader = spawn(self._read(), name="redis-bus-reader")

    async def stop(self) -> None:
        if self._sender is not None:
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender
        if self._outgoing_sent is not None:  # queued, never sent: its callers stop waiting
            self._outgoing_sent.cancel()
            self._outgoing, self._outgoing_sent = [], None
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._pubsub is not None:
            with swallowed(log, "bus.close_failed"):
                await self._pubsub.aclose()
        for futures in self._pending.values():
            for future in futures:
                future.cancel()

    async def subscribe(self, channel: str) -> None:
        channel = self._prefix + channel
        self._channels.add(channel)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.setdefault(channel, []).append(future)
        # On a connection error the reader reconnects and subscribes to every channel again.
        self._subscribing += 1
        try:
            with contextlib.suppress(*self.RECOVERABLE):
                await self._subscribe(channel)
        finally:
            self._subscribing -= 1
        try:
            await asyncio.wait_for(future, self._confirm_timeout_s)
        except TimeoutError:
            # The channel stays wanted: the reader subscribes to it when Redis is back.
            raise BrokerUnavailable(f"Redis did not confirm {channel}") from None

    async def unsubscribe(self, channel: str) -> None:
        channel = self._prefix + channel
        self._channels.discard(channel)
        with contextlib.suppress(*self.RECOVERABLE):
            await self._unsubscribe(channel)

    # What differs on a Redis Cluster (server/realtime/bus_sharded.py): the commands.
    MESSAGE, SUBSCRIBED = "message", "subscribe"
    RECOVERABLE: tuple[type[Exception], ...] = (RedisConnectionError, RedisTimeoutError, OSError)

    async def _subscribe(self, *channels: str) -> None:
        await self._pubsub.subscribe(*channels)

    async def _unsubscribe(self, channel: str) -> None:
        await self._pubsub.unsubscribe(channel)

    async def _next_message(self) -> dict[str, Any] | None:
        message: dict[str, Any] | None = await self._pubsub.get_message(timeout=1.0)
        return message

    def _queue_publish(self, pipeline: Any, channel: str, payload: bytes) -> None:
        pipeline.publish(channel, payload)

    async def _reconnecting(self) -> None:
        """Before subscribing again after a failure (a cluster refreshes its slot map)."""

    async def publish(self, channel: str, payload: bytes) -> None:
        if self._outgoing_sent is None:
            self._outgoing_sent = asyncio.get_running_loop().create_future()
            self._outgoing_sent.add_done_callback(_retrieve)
        sent = self._outgoing_sent
        self._outgoing.append((self._prefix + channel, payload))
        if self._sender is None or self._sender.done():
            self._sender = spawn(self._send_batches(), name="redis-bus-publisher")
        # shield: a caller that gives up must not cancel its batch-mates' future
        await asyncio.shield(sent)

    async def _send_batches(self) -> None:
        while self._outgoing_sent is not None:
            batch, sent = self._outgoing, self._outgoing_sent
            self._outgoing, self._outgoing_sent = [], None
            try:
                pipeline = self._client.pipeline(transaction=False)
                for channel, payload in batch:
                    self._queue_publish(pipeline, channel, payload)
                await pipeline.execute()
            except Exception as exc:
                sent.set_exception(exc)
            except asyncio.CancelledError:
                sent.cancel()
                raise
            else:
                sent.set_result(None)

    def _resubscribe_failed(self, exc: Exception) -> None:
        log.info("bus.resubscribe_failed", error=repr(exc))
        self._incomplete = True  # some channels may be subscribed, not all: try again

    def _other(self, kind: str, channel: str) -> None:
        """A pub/sub message that is neither data nor a confirmation (an unsubscribe)."""

    def _confirm(self, channel: str) -> None:
        for future in self._pending.pop(channel, []):
            if not future.done():
                future.set_result(None)

    async def _read(self) -> None:
        failures = 0
        while True:
            try:
                if self._incomplete:
                    raise RedisConnectionError("resubscription incomplete")
                if not self._pubsub.subscribed:
                    if self._channels and not self._subscribing:  # a resubscription failed
                        raise RedisConnectionError("not subscribed")
                    await asyncio.sleep(0.05)  # nothing to read until a first subscribe
                    continue
                message = await self._next_message()
                failures = 0
                if message is None:
                    continue
                kind = message["type"]
                channel = message["channel"].decode()
                if kind == self.MESSAGE and self.on_message is not None:
                    self.on_message(channel[len(self._prefix) :], message["data"])
                elif kind == self.SUBSCRIBED:
                    self._confirm(channel)
                else:
                    self._other(kind, channel)
            except asyncio.CancelledError:
                raise
            except self.RECOVERABLE as exc:
                delay = self._backoff.delay(failures)
                failures += 1
                log.warning("bus.disconnected", error=repr(exc), retry_in_s=round(delay, 3))
                await asyncio.sleep(delay)
                await self._resubscribe()

    async def _resubscribe(self) -> None:
        with swallowed(log, "bus.close_failed"):  # the old connection is broken anyway
            await asyncio.wait_for(self._pubsub.aclose(), self._confirm_timeout_s)
        self._pubsub = self._client.pubsub()
        try:
            async with asyncio.timeout(self._confirm_timeout_s):  # a hung step: try again
                await self._reconnecting()
                if self._channels:
                    await self._subscribe(*self._channels)
        except self.RECOVERABLE as exc:
            self._resubscribe_failed(exc)
            return  # still down: the reader loop retries
        except TimeoutError as exc:
            self._resubscribe_failed(exc)
            return
        self._incomplete = False
        self.reconnects += 1
        metrics.BUS_RECONNECTS.inc()
        log.info("bus.reconnected", channels=len(self._channels))
        if self.on_reconnect is not None:
            spawn(self.on_reconnect(), name="redis-bus-reconnected", keep_in=self._tasks)
