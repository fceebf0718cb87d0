"""The instance's realtime runtime: local fan-out, the bus, presence and control messages.

One ``Realtime`` per server instance. It keeps the local sockets by project,
subscribes upstream on a project's first local subscriber and unsubscribes on
its last, decodes each bus message once and hands the same text to every
local subscriber, serialized once as a WebSocket frame (wire.py; docs/architecture.md
§3). It is also the
``Notifier`` the services call after they commit: committed events, revoked
sessions and access changes go out on the bus to every instance.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec
from redis.exceptions import RedisError

from server import metrics
from server.events.log import EventRecord
from server.log import get_logger
from server.projects.access import role_on
from server.projects.entities import rfc3339
from server.realtime import envelope as env
from server.realtime import protocol as p
from server.realtime.bus import Broker, BrokerUnavailable
from server.realtime.presence import PresenceStore
from server.realtime.presence_batch import Change, PresenceBatch, diff, period, without
from server.realtime.snapshot import project_seqs, read_events
from server.realtime.wire import Outgoing
from server.types import ProjectId, UserId

if TYPE_CHECKING:
    from server.realtime.connection import Connection

log = get_logger(__name__)
PRESENCE_FLUSH_S = 0.05  # a project's presence changes go out at most this often (coalesced)
HEAL_S = 2.0  # how often the log's head is compared with what this instance delivered
WRITE_DELAY_S = 0.002  # sockets' frames are written at most this often while traffic is dense
# After a long uncork (many sockets), the next waits as long as it took, but never longer:
# the most a write can add to a frame's latency, whatever an uncork cost (a GC pause in it).
LONGEST_UNCORK_GAP_S = 0.02


@dataclass(slots=True)
class Feed:
    """One project's events on this instance: delivered up to ``head``, in order, once.

    Events from the bus (or found in the log) that arrive early wait in
    ``pending`` until the gap before them is filled from the event log.
    """

    head: int | None = None
    pending: dict[int, Outgoing] = field(default_factory=dict)
    filling: bool = False


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
    ) -> None:
        self.broker = broker
        self.presence = presence
        self.instance_id = instance_id
        self.max_sockets_per_user = max_sockets_per_user
        self.presence_flush_s = presence_flush_s
        self.write_delay_s = write_delay_s
        self.connections: dict[str, Connection] = {}
        self.draining = False
        self._by_user: dict[uuid.UUID, set[Connection]] = {}
        self._subscribers: dict[uuid.UUID, set[Connection]] = {}
        self._feeds: dict[uuid.UUID, Feed] = {}
        self.gap_fills = 0
        self._upstream: dict[uuid.UUID, asyncio.Lock] = {}
        self._presence_batches: dict[uuid.UUID, PresenceBatch] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._corked: list[Connection] = []  # sockets with frames to write at the next uncork
        self._uncorked_at = float("-inf")  # the loop's time at the end of the last uncork
        self._uncork_gap = 0.0  # how long after it the next may run (see uncork_soon)
        self._healer: asyncio.Task[None] | None = None

    # --- lifetime ---------------------------------------------------------------------

    async def start(self) -> None:
        self.broker.on_message = self._on_bus
        self.presence.on_orphans = self._announce_leaves
        await self.broker.start()
        self.spawn(self._subscribe_control())  # Redis may be down at start: /readyz says so
        await self.presence.start()
        self._healer = asyncio.create_task(self._heal_loop(), name="feed-heal")
        self.broker.on_reconnect = self.heal

    async def stop(self) -> None:
        if self._healer is not None:
            self._healer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._healer
        # Presence changes still waiting for their batch go out now: a leave never
        # sent would stay in other instances' clients until they rejoin.
        for project_id, batch in list(self._presence_batches.items()):
            if batch:
                await self._publish_changes(project_id, batch.take())
        for task in list(self._tasks):
            task.cancel()
        await self.presence.stop()
        await self.broker.stop()

    async def _subscribe_control(self) -> None:
        while True:
            try:
                await self.broker.subscribe(env.CONTROL_CHANNEL)
                return
            except BrokerUnavailable:
                log.warning("realtime.control_subscription_pending")

    def uncork_soon(self, connection: Connection) -> None:
        """Have ``connection`` write the frames it is sent now at the next uncork.

        One uncork writes every socket's frames, each socket's in one write
        (one system call). It runs at the end of this turn of the event loop,
        or, when the last one was less than ``write_delay_s`` ago, once that
        much time has passed since it: while events are dense (a busy
        project), each socket then gets several in one write, for at most
        ``write_delay_s`` of added latency; a quiet socket's frame goes out
        at once. Writing is most of a delivery's cost (the kernel's TCP
        path, for the sender and the receiver), so under load this is the
        fan-out's largest saving (docs/performance.md, Round 3, "Write delay").

        An uncork that took longer than the delay (a thousand sockets: about
        5 ms) is followed by a gap as long as itself, up to
        ``LONGEST_UNCORK_GAP_S``: writing then takes at most about half of the
        loop's time, and as events get denser each write carries more of them
        instead of the loop falling behind them (W1 with 1,000 subscribers:
        about three times the deliveries a second; docs/performance.md,
        Round 5). A delay of 0 turns both off.
        """
        if not self._corked:
            loop = asyncio.get_running_loop()
            due = self._uncorked_at + self._uncork_gap
            if due > loop.time():
                loop.call_at(due, self._uncork)
            else:
                loop.call_soon(self._uncork)
        self._corked.append(connection)

    def _uncork(self) -> None:
        started = time.perf_counter()  # uvloop's clock counts milliseconds
        corked, self._corked = self._corked, []
        for connection in corked:
            try:
                connection.uncork()
            except Exception as exc:  # one broken socket must not keep frames from the rest
                log.warning("ws.write_failed", connection_id=connection.id, error=repr(exc))
        took = time.perf_counter() - started
        self._uncorked_at = asyncio.get_running_loop().time()
        self._uncork_gap = (
            min(max(self.write_delay_s, took), LONGEST_UNCORK_GAP_S) if self.write_delay_s else 0.0
        )

    def spawn(self, coro: Any) -> None:
        """Run ``coro`` in the background, keeping a reference until it ends."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self, window_s: float, batches: int = 10) -> None:
        """Close every socket with 1012, in batches over ``window_s`` (docs/protocol.md §1)."""
        from server.errors import CloseCode

        self.draining = True
        connections = list(self.connections.values())
        if not connections:
            return
        size = max(1, -(-len(connections) // batches))
        pause = window_s / max(1, -(-len(connections) // size))
        log.info("realtime.draining", sockets=len(connections), window_s=window_s)
        for start in range(0, len(connections), size):
            await asyncio.gather(
                *(
                    c.close(CloseCode.SERVICE_RESTART, "server restarting")
                    for c in connections[start : start + size]
                )
            )
            if start + size < len(connections):
                await asyncio.sleep(pause)

    # --- local registry -----------------------------------------------------------------

    def register(self, connection: Connection, user_id: uuid.UUID) -> bool:
        """Count a socket against its user's limit; False when the user has too many."""
        sockets = self._by_user.setdefault(user_id, set())
        if connection not in sockets and len(sockets) >= self.max_sockets_per_user:
            return False
        sockets.add(connection)
        self.connections[connection.id] = connection
        return True

    def unregister(self, connection: Connection) -> None:
        self.connections.pop(connection.id, None)
        if connection.user_id is not None:
            sockets = self._by_user.get(connection.user_id)
            if sockets is not None:
                sockets.discard(connection)
                if not sockets:
                    del self._by_user[connection.user_id]

    async def subscribe(self, connection: Connection, project_id: uuid.UUID) -> None:
        """Follow a project; the first local follower subscribes this instance upstream."""
        async with self._upstream.setdefault(project_id, asyncio.Lock()):
            followers = self._subscribers.setdefault(project_id, set())
            first = not followers
            followers.add(connection)
            if first:
                self._feeds[project_id] = Feed()
                await self.broker.subscribe(env.project_channel(project_id))

    async def unsubscribe(self, connection: Connection, project_id: uuid.UUID) -> None:
        """Stop following; the last local follower unsubscribes this instance upstream."""
        async with self._upstream.setdefault(project_id, asyncio.Lock()):
            followers = self._subscribers.get(project_id)
            if followers is None or connection not in followers:
                return
            followers.discard(connection)
            if not followers:
                del self._subscribers[project_id]
                self._feeds.pop(project_id, None)
                await self.broker.unsubscribe(env.project_channel(project_id))

    def followers(self, project_id: uuid.UUID) -> int:
        return len(self._subscribers.get(project_id, ()))

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
            envelope = env.EventEnvelope(
                project_id=record.project_id,
                seq=record.seq,
                frame=msgspec.Raw(p.encode(frame)),
                published_at=metrics.published_at(),
            )
            await self._publish(env.project_channel(record.project_id), env.encode(envelope))

    async def sessions_revoked(self, session_ids: Sequence[uuid.UUID]) -> None:
        if session_ids:
            envelope = env.SessionsRevoked(session_ids=list(session_ids))
            await self._publish(env.CONTROL_CHANNEL, env.encode(envelope))

    async def access_changed(
        self, project_id: ProjectId, user_ids: Sequence[UserId] | None
    ) -> None:
        envelope = env.AccessChanged(
            project_id=project_id, user_ids=None if user_ids is None else list(user_ids)
        )
        await self._publish(env.CONTROL_CHANNEL, env.encode(envelope))

    # --- presence ------------------------------------------------------------------------

    async def presence_enter(
        self, connection: Connection, project_id: uuid.UUID, entry: p.PresenceEntry
    ) -> dict[str, p.PresenceEntry]:
        """Add the socket to the project's presence; returns the full map (itself included).

        The others hear of it in the project's next coalesced ``presence_diff``.

        Raises:
            BrokerUnavailable: Redis did not answer (the join fails with an error frame).
        """
        try:
            members = await self.presence.enter(project_id, connection.id, entry)
        except (RedisError, OSError) as exc:
            raise BrokerUnavailable(f"presence unavailable: {exc!r}") from exc
        self._presence_batch(project_id).joined(connection.id, entry)
        return members

    def presence_update(
        self, connection: Connection, project_id: uuid.UUID, state: dict[str, Any]
    ) -> None:
        """Queue a state change; the project's next diff stores and sends the latest one."""
        user = connection.user
        if user is None:
            return
        entry = p.PresenceEntry(user_id=user.id, name=user.name, state=state)
        self._presence_batch(project_id).state(connection.id, entry, connection)

    async def presence_exit(self, connection: Connection, project_id: uuid.UUID) -> None:
        entry = await self.presence.remove(project_id, connection.id)
        if entry is not None:  # a state change still queued is dropped: it left (_store)
            self._presence_batch(project_id).left(connection.id, entry)

    def _presence_batch(self, project_id: uuid.UUID) -> PresenceBatch:
        """The project's batch of changes; the first change starts its sender."""
        batch = self._presence_batches.get(project_id)
        if batch is None:
            batch = self._presence_batches[project_id] = PresenceBatch()
            self.spawn(self._send_presence(project_id, batch))
        return batch

    async def _send_presence(self, project_id: uuid.UUID, batch: PresenceBatch) -> None:
        """Send the project's changes: the first at once, then at most once a period.

        A quiet project's join goes out in the next turn of the loop; under load
        the changes made meanwhile go out together (docs/protocol.md §3.4: coalesced,
        latest wins). Ends, dropping the batch, when a period passed with none.
        """
        try:
            await asyncio.sleep(0)  # the changes of this turn of the loop go together
            while batch:
                await self._publish_changes(project_id, batch.take())  # never raises
                members = len(self._subscribers.get(project_id, ()))
                await asyncio.sleep(period(members, self.presence_flush_s))
        finally:
            if self._presence_batches.get(project_id) is batch:
                del self._presence_batches[project_id]

    async def _publish_changes(self, project_id: uuid.UUID, changes: dict[str, Change]) -> None:
        """Store the batch's state changes, then publish it as one ``presence_diff``."""
        for connection_id, change in list(changes.items()):
            if not change.store:
                continue
            try:
                stored = await self._store(project_id, connection_id, change)
            except Exception as exc:  # Redis hiccup: this state is lost, the rest goes out
                log.warning("presence.store_failed", error=repr(exc))
                stored = False
            if not stored:
                del changes[connection_id]
        made = diff(project_id, changes)
        if made is None:
            return
        frame, sources = made
        envelope = env.PresenceEnvelope(
            project_id=project_id, source=None, sources=sources, frame=msgspec.Raw(p.encode(frame))
        )
        await self._publish(env.project_channel(project_id), env.encode(envelope))

    async def _store(self, project_id: uuid.UUID, connection_id: str, change: Change) -> bool:
        """Write a state change to the shared map; False when its socket left meanwhile."""
        owner = change.owner
        if owner is None or project_id not in owner.streams:
            return False
        await self.presence.put(project_id, connection_id, change.entry)
        if project_id not in owner.streams:  # it left while we wrote: take the entry out again
            await self.presence.remove(project_id, connection_id)
            return False
        return True

    async def _announce_leaves(
        self, project_id: uuid.UUID, leaves: dict[str, p.PresenceEntry]
    ) -> None:
        """Entries of a dead instance, reaped: told to everyone (none of them is ours)."""
        frame = p.PresenceDiff(project_id=project_id, joins={}, leaves=leaves)
        envelope = env.PresenceEnvelope(
            project_id=project_id, source=None, frame=msgspec.Raw(p.encode(frame))
        )
        await self._publish(env.project_channel(project_id), env.encode(envelope))

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
            self._deliver_presence(message)
        elif isinstance(message, env.SessionsRevoked):
            revoked = set(message.session_ids)
            for connection in tuple(self.connections.values()):
                if connection.session_id in revoked:
                    self.spawn(connection.session_ended(revoked))
        else:
            self.spawn(self._recheck(message.project_id, message.user_ids))

    def _deliver_presence(self, message: env.PresenceEnvelope) -> None:
        """A presence diff to every local member, each source without its own entry."""
        project_id, shared, sent = message.project_id, Outgoing(bytes(message.frame)), 0
        sources = set(message.sources)
        frame: p.PresenceDiff | None = None
        for connection in tuple(self._subscribers.get(project_id, ())):
            connection_id = connection.id
            if connection_id == message.source:
                continue
            if connection_id not in sources:
                sent += connection.deliver_presence(project_id, shared)
                continue
            if frame is None:
                frame = msgspec.json.decode(bytes(message.frame), type=p.PresenceDiff)
            own = without(frame, connection_id)
            if own is not None:
                sent += connection.deliver_presence(project_id, Outgoing(p.encode(own)))
        metrics.PRESENCE_FRAMES_SENT.inc(sent)

    async def _recheck(self, project_id: uuid.UUID, user_ids: list[uuid.UUID] | None) -> None:
        """Access changed: sockets that lost it get ``left`` (access_revoked)."""
        wanted = None if user_ids is None else set(user_ids)
        for connection in tuple(self._subscribers.get(project_id, ())):
            user_id = connection.user_id
            if user_id is None or (wanted is not None and user_id not in wanted):
                continue
            if await role_on(ProjectId(project_id), UserId(user_id)) is None:
                await connection.revoke(project_id)

    # --- gap-free delivery (docs/architecture.md §3) -------------------------------

    def feed_start(self, project_id: uuid.UUID, seq: int) -> None:
        """A join read the project at ``seq``: the feed delivers in order from there."""
        feed = self._feeds.get(project_id)
        if feed is not None and feed.head is None:
            feed.head = seq
            feed.pending = {s: t for s, t in feed.pending.items() if s > seq}
            self._drain(project_id, feed)

    def _dispatch(self, project_id: uuid.UUID, seq: int, frame: Outgoing) -> None:
        sent = 0
        for connection in tuple(self._subscribers.get(project_id, ())):
            sent += connection.deliver_event(project_id, seq, frame)
        metrics.EVENT_FRAMES_SENT.inc(sent)  # once per event, not per socket: a locked counter

    def _arrive(self, project_id: uuid.UUID, seq: int, frame: Outgoing) -> None:
        feed = self._feeds.get(project_id)
        if feed is None:
            return
        if feed.head is None:  # no join has finished its read yet: joiners buffer and sort
            self._dispatch(project_id, seq, frame)
            return
        if seq <= feed.head:
            return  # delivered already (a duplicate from the bus, the log or NOTIFY)
        feed.pending[seq] = frame
        self._drain(project_id, feed)
        if feed.pending:
            self.notice(project_id, max(feed.pending))

    def _drain(self, project_id: uuid.UUID, feed: Feed) -> None:
        assert feed.head is not None
        while feed.head + 1 in feed.pending:
            feed.head += 1
            self._dispatch(project_id, feed.head, feed.pending.pop(feed.head))

    def notice(self, project_id: uuid.UUID, seq: int) -> None:
        """The log holds events up to ``seq`` (NOTIFY, the heal loop, a later event)."""
        feed = self._feeds.get(project_id)
        if feed is None or feed.head is None or seq <= feed.head or feed.filling:
            return
        feed.filling = True
        self.spawn(self._fill(project_id, feed, seq))

    async def _fill(self, project_id: uuid.UUID, feed: Feed, upto: int) -> None:
        """Read the missing events from the log and deliver everything in order."""
        try:
            assert feed.head is not None
            frames = await read_events(project_id, feed.head, upto)
            if frames:
                self.gap_fills += 1
                metrics.GAP_FILLS.inc()
                log.info(
                    "feed.gap_filled",
                    project_id=str(project_id),
                    after=feed.head,
                    upto=upto,
                    events=len(frames),
                )
            for frame in frames:
                if feed.head is not None and frame.seq > feed.head:
                    feed.pending.setdefault(frame.seq, Outgoing(p.encode(frame)))
            self._drain(project_id, feed)
        except Exception as exc:  # the database hiccuped: the heal loop tries again
            log.warning("feed.fill_failed", project_id=str(project_id), error=repr(exc))
        finally:
            feed.filling = False

    async def heal(self) -> None:
        """Compare every followed project's seq in the database with what was delivered."""
        for project_id, seq in (await self._logged_seqs()).items():
            self.notice(project_id, seq)

    async def _logged_seqs(self) -> dict[uuid.UUID, int]:
        """The log's head of every followed project; records the largest lag behind it."""
        followed = [pid for pid, feed in self._feeds.items() if feed.head is not None]
        heads = await project_seqs(followed) if followed else {}
        feeds = ((self._feeds.get(pid), seq) for pid, seq in heads.items())
        lags = [
            seq - feed.head for feed, seq in feeds if feed is not None and feed.head is not None
        ]
        metrics.FEED_LAG.set(max(lags, default=0))
        return heads

    async def _heal_loop(self) -> None:
        # Catches what no later event reveals: the last event of a burst lost by the
        # bus, a NOTIFY lost while the listener reconnected. It fills up to the seqs
        # the log had one round earlier: an event committed since then may still be
        # on its way over the bus (under load, most projects have one), and filling
        # those from the log would only duplicate the bus's work.
        earlier: dict[uuid.UUID, int] = {}
        while True:
            await asyncio.sleep(HEAL_S)
            try:
                logged = await self._logged_seqs()
            except Exception as exc:
                log.warning("feed.heal_failed", error=repr(exc))
                continue
            for project_id, seq in earlier.items():
                self.notice(project_id, seq)
            earlier = logged
