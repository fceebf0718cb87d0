"""The instance's realtime runtime: it wires the parts together and routes the bus.

One ``Realtime`` per server instance. Its parts, one module each:

- ``registry.py``: the local sockets, by user and by followed project;
- ``write_rounds.py``: every socket's frames written together, once per round
  (``write_budget.py``: when a round waits);
- ``feed.py``: each followed project's events, to its sockets once and in order;
- ``presence_fanout.py``: presence changes, coalesced, out and in;
- ``control.py``: sessions revoked and access changes, between instances.

Here: the lifetime (start, stop, the SIGTERM drain), the upstream
subscription (on a project's first local follower; dropped after its last),
the routing of each bus message, decoded once, to the part that handles it
(an event's frame is the same bytes for every socket: transport/wire.py; docs/architecture.md
§3), and the ``Notifier`` the services call after they commit:
committed events, revoked sessions and access changes go out on the bus to
every instance.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import msgspec

from server import metrics, tasks
from server.events.log import EventRecord
from server.log import get_logger
from server.realtime import envelope as env
from server.realtime import protocol as p
from server.realtime.access_check import ACCESS_CHECK_S, AccessCheck
from server.realtime.bus import Broker
from server.realtime.control import Control
from server.realtime.feed import HEAL_S, Feeds
from server.realtime.presence import PresenceStore
from server.realtime.presence_fanout import PRESENCE_FLUSH_S, PresenceFanout
from server.realtime.registry import SocketRegistry
from server.realtime.snapshots import Snapshots
from server.realtime.write_rounds import WRITE_DELAY_S, WriteRounds
from server.timestamps import rfc3339
from server.transport.wire import Outgoing
from server.types import ProjectId, UserId

if TYPE_CHECKING:
    from server.delivery.stream import JoinedStream
    from server.realtime.connection import Connection

log = get_logger(__name__)


class Realtime:
    """Local sockets, their subscriptions, and the instance's side of the bus."""

    def __init__(
        self,
        *,
        broker: Broker,
        presence: PresenceStore,
        instance_id: str,
        max_sockets_per_user: int = 50,
        presence_flush_s: float = PRESENCE_FLUSH_S,
        write_delay_s: float = WRITE_DELAY_S,
        feed_heal_s: float = HEAL_S,
        access_check_s: float = ACCESS_CHECK_S,
    ) -> None:
        self.broker = broker
        self.instance_id = instance_id
        # True from the SIGTERM on (set in the signal handler, transport/serve.py): /readyz
        # answers 503 and new upgrades are refused with 503 (realtime/endpoint.py).
        self.draining = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self.sockets = SocketRegistry(max_sockets_per_user)
        self.write_rounds = WriteRounds(write_delay_s)
        self.feeds = Feeds(self.sockets.followers, self.spawn, heal_s=feed_heal_s)
        self.presence = PresenceFanout(
            presence,
            self.sockets.followers,
            publish=self._publish,
            spawn=self.spawn,
            flush_s=presence_flush_s,
        )
        self.snapshots = Snapshots()
        self.control = Control(self.sockets, broker, publish=self._publish, spawn=self.spawn)
        self.access_check = AccessCheck(self.sockets, period_s=access_check_s)
        self._arrive = self.feeds.arrive  # bound once: called for every event from the bus
        self._upstream: dict[uuid.UUID, asyncio.Lock] = {}
        self._healer: asyncio.Task[None] | None = None
        self._checker: asyncio.Task[None] | None = None

    # --- lifetime ---------------------------------------------------------------------

    async def start(self) -> None:
        self.broker.on_message = self._on_bus
        await self.broker.start()
        self.spawn(self.control.subscribe())  # Redis may be down at start: /readyz says so
        await self.presence.store.start()
        self._healer = tasks.spawn(self.feeds.heal_forever(), name="feed-heal")
        self._checker = tasks.spawn(self.access_check.run_forever(), name="access-check")
        self.broker.on_reconnect = self._bus_reconnected

    async def _bus_reconnected(self) -> None:
        """What the bus may have lost meanwhile: events (from the log) and access changes."""
        await self.feeds.heal()
        await self.access_check.check()

    async def stop(self) -> None:
        for task in (self._healer, self._checker):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self.presence.flush()
        for task in list(self._tasks):
            task.cancel()
        await self.presence.store.stop()
        await self.broker.stop()

    def spawn(self, coro: Any) -> None:
        """Run ``coro`` in the background, keeping a reference until it ends."""
        tasks.spawn(coro, keep_in=self._tasks)

    async def drain(self, window_s: float, batches: int = 10) -> None:
        """Close every socket with 1012, in batches over ``window_s`` (docs/protocol.md §1).

        Bounded whatever the clients do: each batch starts on its own schedule
        (a slow close does not push the next one back), and each close has a
        deadline, past which its connection is aborted (a peer that stopped
        reading can hold a close frame for ever). The drain ends at most
        ``DRAIN_CLOSE_DEADLINE_S`` after the window.
        """
        from server.errors import CloseCode
        from server.realtime.connection import DRAIN_CLOSE_DEADLINE_S

        self.draining = True
        connections = list(self.sockets.connections.values())
        if not connections:
            return
        size = max(1, -(-len(connections) // batches))
        rounds = -(-len(connections) // size)
        pause = window_s / rounds
        log.info("realtime.draining", sockets=len(connections), window_s=window_s)
        closing: list[asyncio.Task[None]] = []
        for start in range(0, len(connections), size):
            closing.extend(
                tasks.spawn(
                    c.close(
                        CloseCode.SERVICE_RESTART,
                        "server restarting",
                        deadline_s=DRAIN_CLOSE_DEADLINE_S,
                    ),
                    name="drain",
                )
                for c in connections[start : start + size]
            )
            if start + size < len(connections):
                await asyncio.sleep(pause)
        # Every close has its own deadline; this one only guards against a close that hangs
        # in a way the deadline does not cover.
        _, stuck = await asyncio.wait(closing, timeout=DRAIN_CLOSE_DEADLINE_S + 1.0)
        for task in stuck:
            task.cancel()
        if stuck:
            log.warning("realtime.drain_stuck_closes", sockets=len(stuck))

    # --- following projects -------------------------------------------------------------

    async def subscribe(
        self, connection: Connection, project_id: uuid.UUID, stream: JoinedStream[Outgoing]
    ) -> None:
        """Follow a project with its stream; the first local follower subscribes upstream."""
        async with self._upstream.setdefault(project_id, asyncio.Lock()):
            if self.sockets.follow(connection, project_id, stream):
                self.feeds.open(project_id)
                await self.broker.subscribe(env.project_channel(project_id))

    async def unsubscribe(self, connection: Connection, project_id: uuid.UUID) -> None:
        """Stop following; the last local follower unsubscribes this instance upstream."""
        async with self._upstream.setdefault(project_id, asyncio.Lock()):
            if self.sockets.unfollow(connection, project_id):
                self.feeds.close(project_id)
                await self.broker.unsubscribe(env.project_channel(project_id))

    # --- the Notifier the services call after commit -----------------------------------------

    async def _publish(self, channel: str, payload: bytes) -> None:
        """Publish, never failing the caller: its change is committed already.

        A lost event is delayed, not lost: the feeds of every instance find it
        in the log (gap fill, heal loop). A lost control message delays a
        revocation until the next one; it is logged loudly.
        """
        try:
            await self.broker.publish(channel, payload)
        except Exception as exc:
            metrics.BUS_PUBLISH_FAILURES.inc()
            log.error("bus.publish_failed", channel=channel, error=repr(exc))

    async def events_committed(self, events: Sequence[EventRecord]) -> None:
        for record in events:
            frame = p.EventFrame(
                project_id=record.project_id,
                seq=record.seq,
                kind=record.kind,
                entity=record.entity,
                id=record.id,
                version=record.version,
                data=record.data,
                actor_id=record.actor_id,
                op_id=record.op_id,
                at=rfc3339(record.at) or "",
            )
            metrics.event_committed(record.entity, record.data)
            encoded = p.encode(frame)
            envelope = env.EventEnvelope(
                project_id=record.project_id,
                seq=record.seq,
                frame=msgspec.Raw(encoded),
                published_at=metrics.published_at(),
            )
            # This instance's own followers get it now, not after a Redis round trip: the
            # feed orders it by seq like any arrival, and the bus's copy is then a duplicate
            # it drops (docs/architecture.md §3). The sockets are written in the next write
            # round, after the publish below has gone out to the other instances.
            self._arrive(record.project_id, record.seq, Outgoing(encoded))
            await self._publish(env.project_channel(record.project_id), env.encode(envelope))

    async def sessions_revoked(self, session_ids: Sequence[uuid.UUID]) -> None:
        await self.control.sessions_revoked(session_ids)

    async def access_changed(
        self, project_id: ProjectId, user_ids: Sequence[UserId] | None
    ) -> None:
        await self.control.access_changed(project_id, user_ids)

    # --- the bus -----------------------------------------------------------------------

    def _on_bus(self, _channel: str, payload: bytes) -> None:
        try:
            message = env.decode(payload)
        except msgspec.MsgspecError as exc:
            log.error("bus.undecodable", error=str(exc))
            return
        if isinstance(message, env.EventEnvelope):
            # decoded once, written to N sockets
            self._arrive(message.project_id, message.seq, Outgoing(bytes(message.frame)))
            metrics.fanned_out(message.published_at)
        elif isinstance(message, env.PresenceEnvelope):
            self.presence.deliver(message)
        else:
            self.control.received(message)
